//! TLS server configuration from PEM files (rustls with the ring provider).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig};

use crate::error::GateError;
use crate::settings::{ClientCaFiles, TlsFiles};

pub mod conn_cert;
pub(crate) mod crl;
pub mod handshake_log;
pub mod identity;
pub mod reload;
pub(crate) mod validity;

use conn_cert::ClientTrust;

/// What new handshakes use: the rustls configuration and, under mutual TLS, the client
/// verifier inside it (kept to verify open connections again after a reload).
#[derive(Debug, Clone)]
pub struct Served {
    pub config: Arc<ServerConfig>,
    pub client: Option<ClientTrust>,
}

/// The generation of the next client verifier built.
static NEXT_GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// [`served`]'s rustls configuration.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, GateError> {
    served(files).map(|s| s.config)
}

/// Loads the certificate chain and key and builds a server configuration offering h2 and
/// http/1.1. Every failure names the file and what is wrong with it; a server certificate
/// that has expired or is not valid yet is refused, as every client would refuse it.
///
/// Under mutual TLS the configuration resumes no session (no session cache, no tickets):
/// rustls takes a resumed session's client certificate from the session it resumes, without
/// verifying it again, so an expired or since revoked certificate would keep working through
/// resumption. Every connection does a full handshake instead.
pub fn served(files: &TlsFiles) -> Result<Served, GateError> {
    let certs = load_certs(&files.cert)?;
    check_dates(&files.cert, &certs, unix_now())?;
    let chain_len = certs.len();
    let key = load_key(&files.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| GateError::TlsConfig {
            cert: files.cert.clone(),
            key: files.key.clone(),
            reason: e.to_string(),
        })?;
    let trust = match &files.client {
        None => None,
        Some(client) => Some(client_verifier(client, provider)?),
    };
    let builder = match &trust {
        None => builder.with_no_client_auth(),
        Some(t) => builder.with_client_cert_verifier(Arc::clone(&t.verifier)),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| GateError::TlsConfig {
            cert: files.cert.clone(),
            key: files.key.clone(),
            reason: describe_pair_error(&e, chain_len),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    if trust.is_some() {
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        // The builder's ticketer produces no tickets; said here so that it stays so.
        debug_assert!(!config.ticketer.enabled());
    }
    Ok(Served {
        config: Arc::new(config),
        client: trust,
    })
}

/// A verifier that requires a client certificate chaining to one of the CAs in `files.ca`
/// and not revoked by `files.crls`. Refused: a CA file without certificates, one holding a
/// certificate that is not a CA (a client's own certificate given by mistake) or that rustls
/// cannot take as a trust anchor, a CRL that is not PEM or does not parse.
fn client_verifier(
    files: &ClientCaFiles,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<ClientTrust, GateError> {
    const CA: &str = "client CA";
    let invalid = |path: &Path, reason: String| GateError::TlsInvalid {
        what: CA,
        path: path.to_owned(),
        reason,
    };
    let certs = load_certs_as(CA, &files.ca)?;
    let mut crls = Vec::new();
    // The issuers of the lists; `None` when one could not be read here (webpki took it).
    let mut crl_issuers = Some(Vec::new());
    for path in &files.crls {
        for (der, facts) in load_crls(path)? {
            match (facts, crl_issuers.as_mut()) {
                (Some(f), Some(issuers)) => issuers.push(f.issuer),
                _ => crl_issuers = None,
            }
            crls.push(der);
        }
    }
    let mut roots = RootCertStore::empty();
    let mut constrained_anchors = Vec::new();
    for (i, cert) in certs.into_iter().enumerate() {
        let n = i + 1;
        match identity::is_ca(&cert) {
            None => {
                return Err(invalid(
                    &files.ca,
                    format!("certificate {n} in the file is not a readable X.509 certificate"),
                ))
            }
            Some(false) => {
                return Err(invalid(
                    &files.ca,
                    format!(
                        "certificate {n} in the file is not a CA certificate (its \
                         basicConstraints do not say CA:TRUE): give the CA that issues the \
                         client certificates, not a client certificate"
                    ),
                ))
            }
            Some(true) => {}
        }
        // With revocation lists, webpki refuses every client whose issuer has none
        // ("unknown revocation status", told to the client as `unknown ca`).
        let uncovered = match (&crl_issuers, identity::subject(&cert)) {
            (Some(issuers), Some(subject)) => !files.crls.is_empty() && !issuers.contains(&subject),
            _ => false,
        };
        if uncovered {
            return Err(invalid(
                &files.ca,
                format!(
                    "client CA {} (certificate {n} in the file) has no revocation list among \
                     the CRL files ({}): with revocation lists set, every client CA needs \
                     one (its clients would all be refused as of unknown revocation status); \
                     add the CRL this CA issues, or remove the CA from the bundle",
                    identity::subject_text(&cert),
                    files
                        .crls
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        constrained_anchors.extend(identity::constrained_subject(&cert));
        roots.add(cert).map_err(|e| {
            invalid(
                &files.ca,
                format!("certificate {n} in the file cannot be used as a CA: {e}"),
            )
        })?;
    }
    let verifier: Arc<dyn ClientCertVerifier> =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .with_crls(crls)
            .build()
            .map_err(|e| {
                // Only a CRL can fail here: the roots were added one by one above.
                let path = files.crls.first().unwrap_or(&files.ca);
                GateError::TlsInvalid {
                    what: "client CRL",
                    path: path.clone(),
                    reason: e.to_string(),
                }
            })?;
    Ok(ClientTrust {
        generation: NEXT_GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        verifier,
        constrained_anchors: constrained_anchors.into(),
    })
}

/// The CRLs of one PEM file, with what [`crl::read`] sees in each; each is parsed now, so
/// that a bad one names its file.
fn load_crls(
    path: &Path,
) -> Result<Vec<(CertificateRevocationListDer<'static>, Option<crl::CrlFacts>)>, GateError> {
    const WHAT: &str = "client CRL";
    let invalid = |reason: String| GateError::TlsInvalid {
        what: WHAT,
        path: path.to_owned(),
        reason,
    };
    let text = read(WHAT, path)?;
    let crls = rustls_pemfile::crls(&mut text.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("not valid PEM: {e}")))?;
    if crls.is_empty() {
        return Err(invalid("no PEM X509 CRL block found".to_owned()));
    }
    for (i, der) in crls.iter().enumerate() {
        webpki::OwnedCertRevocationList::from_der(der).map_err(|e| {
            let n = i + 1;
            match crl::unsupported(der) {
                Some(what) => invalid(format!(
                    "revocation list {n} in the file cannot be used: {what}; {}",
                    crl::V2_REQUIRED
                )),
                None => invalid(format!(
                    "revocation list {n} in the file cannot be read: {e:?}"
                )),
            }
        })?;
    }
    Ok(crls
        .into_iter()
        .map(|der| {
            let facts = crl::read(&der);
            (der, facts)
        })
        .collect())
}

/// Warnings for the client revocation lists of `files` whose `nextUpdate` has passed at
/// `now` (seconds since the Unix epoch). The gate still accepts them, as rustls does by
/// default: the revocations they list still apply, but any since are unknown until a fresh
/// list is published.
pub fn stale_crl_warnings_at(files: &TlsFiles, now: i64) -> Vec<String> {
    let Some(client) = &files.client else {
        return Vec::new();
    };
    let mut warnings = Vec::new();
    for path in &client.crls {
        let Ok(lists) = load_crls(path) else {
            continue;
        };
        for (i, (_, facts)) in lists.iter().enumerate() {
            let Some(next) = facts.as_ref().and_then(|f| f.next_update) else {
                continue;
            };
            let Some(ago) = now.checked_sub(next.unix()).filter(|s| *s > 0) else {
                continue;
            };
            let ago = match ago / 86_400 {
                0 => format!("{} hours ago", ago / 3_600),
                1 => "1 day ago".to_owned(),
                n => format!("{n} days ago"),
            };
            warnings.push(format!(
                "the client CRL file {} (revocation list {}) is stale: its nextUpdate {next} \
                 passed {ago}; the gate still uses it, but certificates revoked since are \
                 not known: publish a fresh CRL (the gate picks it up within 30 s, or at once \
                 on SIGHUP)",
                path.display(),
                i + 1
            ));
        }
    }
    warnings
}

/// The TLS settings in a few lines, for `corral config check`: the server certificate (and
/// its end date), the key, and under mutual TLS the client CAs and revocation lists.
pub fn describe(files: &TlsFiles) -> Vec<String> {
    let until = load_certs(&files.cert)
        .ok()
        .and_then(|c| c.first().and_then(|c| validity::read(c)))
        .map(|d| format!(" (valid until {})", d.not_after))
        .unwrap_or_default();
    let mut lines = vec![
        format!("tls: certificate {}{until}", files.cert.display()),
        format!("tls: key {}", files.key.display()),
    ];
    match &files.client {
        None => lines.push("tls: client certificates not required (no tls_client_ca)".to_owned()),
        Some(client) => {
            let cas = load_certs_as("client CA", &client.ca).unwrap_or_default();
            let names = cas
                .iter()
                .map(|c| identity::subject_text(c))
                .collect::<Vec<_>>()
                .join("; ");
            let n = cas.len();
            lines.push(format!(
                "tls: client certificates required, client CA {} ({n} CA{}: {names})",
                client.ca.display(),
                if n == 1 { "" } else { "s" }
            ));
            if client.crls.is_empty() {
                lines.push("tls: no client revocation lists (tls_client_crl)".to_owned());
            }
            for path in &client.crls {
                let lists = load_crls(path).map(|l| l.len()).unwrap_or(0);
                lines.push(format!(
                    "tls: client revocation list file {} ({lists} list{})",
                    path.display(),
                    if lists == 1 { "" } else { "s" }
                ));
            }
        }
    }
    lines
}

/// Every warning about the TLS files now: the server certificate's coming expiry, stale
/// client revocation lists.
pub fn warnings(files: &TlsFiles) -> Vec<String> {
    let now = unix_now();
    expiry_warning_at(files, now)
        .into_iter()
        .chain(stale_crl_warnings_at(files, now))
        .collect()
}

/// The whole file: a read failure (missing, unreadable, a directory) is told apart from
/// contents that are not PEM.
fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, GateError> {
    let fail = |source| GateError::TlsRead {
        what,
        path: path.to_owned(),
        source,
    };
    let mut text = Vec::new();
    BufReader::new(File::open(path).map_err(fail)?)
        .take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(fail)?;
    if text.len() as u64 > MAX_PEM_BYTES {
        return Err(GateError::TlsInvalid {
            what,
            path: path.to_owned(),
            reason: "larger than 1 MiB: not a PEM file".to_owned(),
        });
    }
    Ok(text)
}

/// Largest certificate chain or key file read.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, GateError> {
    load_certs_as("certificate", path)
}

fn load_certs_as(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, GateError> {
    let text = read(what, path)?;
    let certs = rustls_pemfile::certs(&mut text.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| GateError::TlsInvalid {
            what,
            path: path.to_owned(),
            reason: format!("not valid PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(GateError::TlsInvalid {
            what,
            path: path.to_owned(),
            reason: "no PEM CERTIFICATE block found".to_owned(),
        });
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, GateError> {
    let text = read("key", path)?;
    if is_encrypted_pem(&text) {
        return Err(GateError::TlsInvalid {
            what: "key",
            path: path.to_owned(),
            reason:
                "the private key is encrypted; corral needs it unencrypted (e.g. `openssl pkey \
                     -in KEY -out KEY.plain`, then keep KEY.plain readable by corral only)"
                    .to_owned(),
        });
    }
    match rustls_pemfile::private_key(&mut text.as_slice()) {
        Ok(Some(key)) => Ok(key),
        Ok(None) => Err(GateError::TlsInvalid {
            what: "key",
            path: path.to_owned(),
            reason: "no PEM private key found (expected PRIVATE KEY, RSA PRIVATE KEY or EC \
                     PRIVATE KEY)"
                .to_owned(),
        }),
        Err(e) => Err(GateError::TlsInvalid {
            what: "key",
            path: path.to_owned(),
            reason: format!("not valid PEM: {e}"),
        }),
    }
}

/// Refuses a server certificate (the first in the file) outside its validity period at
/// `now` (seconds since the Unix epoch). A certificate whose dates cannot be read is left to
/// rustls and the clients.
fn check_dates(path: &Path, certs: &[CertificateDer<'_>], now: i64) -> Result<(), GateError> {
    let Some(dates) = certs.first().and_then(|c| validity::read(c)) else {
        return Ok(());
    };
    let reason = match dates.check(now) {
        Ok(()) => return Ok(()),
        Err(validity::OutOfDate::Expired(at)) => format!(
            "the certificate expired on {at}; every client would refuse it (renew it, or \
             issue a new one)"
        ),
        Err(validity::OutOfDate::NotYetValid(at)) => format!(
            "the certificate is not valid before {at}; every client would refuse it until \
             then (check this host's clock)"
        ),
    };
    Err(GateError::TlsInvalid {
        what: "certificate",
        path: path.to_owned(),
        reason,
    })
}

/// How close to its end a certificate's validity must be for [`expiry_warning`] to speak.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// A warning when the server certificate (the first in `files.cert`) expires within
/// [`EXPIRY_WARNING_DAYS`] of `now` (seconds since the Unix epoch): the gate loads it once at
/// start-up and serves it until it stops, so after that date every handshake fails. `None`
/// when it has longer, or when its file or dates cannot be read (that is an error elsewhere).
pub fn expiry_warning_at(files: &TlsFiles, now: i64) -> Option<String> {
    let certs = load_certs(&files.cert).ok()?;
    let dates = certs.first().and_then(|c| validity::read(c))?;
    let left = dates.not_after.unix().checked_sub(now)?;
    if !(0..EXPIRY_WARNING_DAYS * 86_400).contains(&left) {
        return None;
    }
    let days = left / 86_400;
    let when = match days {
        0 => "in less than a day".to_owned(),
        1 => "in 1 day".to_owned(),
        n => format!("in {n} days"),
    };
    Some(format!(
        "the TLS certificate {} expires on {} ({when}); renew it before then, or every \
         client's handshake will fail (the gate picks up renewed files within 30 s, or at once \
         on SIGHUP)",
        files.cert.display(),
        dates.not_after
    ))
}

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// PKCS#8 `ENCRYPTED PRIVATE KEY` blocks and legacy OpenSSL `Proc-Type: 4,ENCRYPTED` headers.
fn is_encrypted_pem(text: &[u8]) -> bool {
    let has = |needle: &[u8]| text.windows(needle.len()).any(|w| w == needle);
    has(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") || has(b"Proc-Type: 4,ENCRYPTED")
}

fn describe_pair_error(e: &rustls::Error, chain_len: usize) -> String {
    match e {
        rustls::Error::InconsistentKeys(_) if chain_len > 1 => {
            "the private key does not belong to the first certificate in the file (the server's \
             own certificate must come first, then the certificates that issued it)"
                .to_owned()
        }
        rustls::Error::InconsistentKeys(_) => {
            "the private key does not belong to the certificate".to_owned()
        }
        // ring refuses RSA keys under 2048 bits and curves it does not implement with this text.
        rustls::Error::General(m) if m.contains("failed to parse private key") => {
            "the private key's type or size is not supported (use RSA of 2048 bits or more, \
             ECDSA P-256 or P-384, or Ed25519)"
                .to_owned()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod client_tests;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        File::create(&p)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        p
    }

    fn pair() -> (String, String) {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        (c.cert.pem(), c.key_pair.serialize_pem())
    }

    #[test]
    fn loads_a_good_pair_with_alpn() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair();
        let files = TlsFiles {
            cert: write(dir.path(), "c.pem", &cert),
            key: write(dir.path(), "k.pem", &key),
            client: None,
        };
        let cfg = server_config(&files).unwrap();
        assert_eq!(
            cfg.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn names_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair();
        let (_, other_key) = pair();
        let cert_p = write(dir.path(), "c.pem", &cert);
        let key_p = write(dir.path(), "k.pem", &key);
        let junk = write(dir.path(), "junk.pem", "hello");

        let missing = server_config(&TlsFiles {
            cert: dir.path().join("nope.pem"),
            key: key_p.clone(),
            client: None,
        })
        .unwrap_err();
        assert!(matches!(
            missing,
            GateError::TlsRead {
                what: "certificate",
                ..
            }
        ));
        assert!(missing.to_string().contains("nope.pem"));

        let no_cert = server_config(&TlsFiles {
            cert: junk.clone(),
            key: key_p.clone(),
            client: None,
        })
        .unwrap_err();
        assert!(
            no_cert.to_string().contains("no PEM CERTIFICATE"),
            "{no_cert}"
        );

        let no_key = server_config(&TlsFiles {
            cert: cert_p.clone(),
            key: junk,
            client: None,
        })
        .unwrap_err();
        assert!(no_key.to_string().contains("junk.pem"), "{no_key}");
        assert!(
            no_key.to_string().contains("no PEM private key"),
            "{no_key}"
        );

        let mismatched = server_config(&TlsFiles {
            cert: cert_p,
            key: write(dir.path(), "k2.pem", &other_key),
            client: None,
        })
        .unwrap_err();
        assert!(
            matches!(mismatched, GateError::TlsConfig { .. }),
            "{mismatched}"
        );
    }

    #[test]
    fn a_certificate_outside_its_dates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let key_p = write(dir.path(), "k.pem", &key.serialize_pem());
        let dated = |name: &str, from: i32, to: i32| {
            let mut p = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
            p.not_before = rcgen::date_time_ymd(from, 1, 1);
            p.not_after = rcgen::date_time_ymd(to, 1, 1);
            write(dir.path(), name, &p.self_signed(&key).unwrap().pem())
        };
        let expired = server_config(&TlsFiles {
            cert: dated("old.pem", 2020, 2021),
            key: key_p.clone(),
            client: None,
        })
        .unwrap_err();
        let text = expired.to_string();
        assert!(
            matches!(
                expired,
                GateError::TlsInvalid {
                    what: "certificate",
                    ..
                }
            ),
            "{text}"
        );
        assert!(text.contains("old.pem"), "{text}");
        assert!(
            text.contains("expired on 2021-01-01 00:00:00 UTC"),
            "{text}"
        );

        // Valid, but not for long: a warning, with the date, only inside the last 14 days.
        let ending = TlsFiles {
            cert: dated("ending.pem", 2020, 2050),
            key: key_p.clone(),
            client: None,
        };
        let end = 2_524_608_000; // 2050-01-01 00:00:00 UTC
        let warning = expiry_warning_at(&ending, end - 3 * 86_400 - 60).unwrap();
        assert!(warning.contains("ending.pem"), "{warning}");
        assert!(
            warning.contains("expires on 2050-01-01 00:00:00 UTC (in 3 days)"),
            "{warning}"
        );
        assert!(expiry_warning_at(&ending, end - 600)
            .unwrap()
            .contains("in less than a day"));
        assert_eq!(expiry_warning_at(&ending, end - 15 * 86_400), None);
        assert_eq!(
            expiry_warning_at(&ending, end + 1),
            None,
            "expired: refused elsewhere"
        );
        assert_eq!(expiry_warning_at(&ending, unix_now()), None);

        let future = server_config(&TlsFiles {
            cert: dated("future.pem", 2090, 2091),
            key: key_p.clone(),
            client: None,
        })
        .unwrap_err()
        .to_string();
        assert!(
            future.contains("not valid before 2090-01-01 00:00:00 UTC"),
            "{future}"
        );

        assert!(server_config(&TlsFiles {
            cert: dated("now.pem", 2020, 2090),
            key: key_p,
            client: None,
        })
        .is_ok());
    }

    #[test]
    fn an_encrypted_key_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = pair();
        let cert_p = write(dir.path(), "cert.pem", &cert);
        for (name, text) in [
            (
                "pkcs8.pem",
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n",
            ),
            (
                "legacy.pem",
                "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
            ),
        ] {
            let err = server_config(&TlsFiles {
                cert: cert_p.clone(),
                key: write(dir.path(), name, text),
                client: None,
            })
            .unwrap_err();
            assert!(err.to_string().contains("is encrypted"), "{name}: {err}");
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn an_unsupported_key_says_which_keys_work() {
        let e =
            rustls::Error::General("failed to parse private key as RSA, ECDSA, or EdDSA".into());
        let text = describe_pair_error(&e, 1);
        assert!(text.contains("2048 bits"), "{text}");
        assert!(!text.contains("unexpected error"), "{text}");
    }

    #[test]
    fn a_chain_in_the_wrong_order_and_a_directory_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair();
        let (other, _) = pair();
        let key_p = write(dir.path(), "k.pem", &key);
        let reversed = server_config(&TlsFiles {
            cert: write(dir.path(), "chain.pem", &format!("{other}{cert}")),
            key: key_p.clone(),
            client: None,
        })
        .unwrap_err();
        assert!(
            reversed.to_string().contains("must come first"),
            "{reversed}"
        );
        let in_order = server_config(&TlsFiles {
            cert: write(dir.path(), "chain2.pem", &format!("{cert}{other}")),
            key: key_p.clone(),
            client: None,
        });
        assert!(in_order.is_ok());

        let a_dir = server_config(&TlsFiles {
            cert: dir.path().to_owned(),
            key: key_p.clone(),
            client: None,
        })
        .unwrap_err();
        assert!(
            matches!(
                a_dir,
                GateError::TlsRead {
                    what: "certificate",
                    ..
                }
            ),
            "{a_dir}"
        );
        let huge = write(dir.path(), "huge.pem", &"#".repeat(2 << 20));
        let too_big = server_config(&TlsFiles {
            cert: huge,
            key: key_p,
            client: None,
        })
        .unwrap_err();
        assert!(
            too_big.to_string().contains("larger than 1 MiB"),
            "{too_big}"
        );
    }
}
