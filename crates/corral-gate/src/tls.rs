//! TLS server configuration from PEM files (rustls with the ring provider).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use crate::error::GateError;
use crate::settings::TlsFiles;

/// Loads the certificate chain and key and builds a server configuration offering h2 and
/// http/1.1. Every failure names the file and what is wrong with it.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, GateError> {
    let certs = load_certs(&files.cert)?;
    let key = load_key(&files.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| GateError::TlsConfig {
            cert: files.cert.clone(),
            key: files.key.clone(),
            reason: e.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| GateError::TlsConfig {
            cert: files.cert.clone(),
            key: files.key.clone(),
            reason: describe_pair_error(&e),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn open(what: &'static str, path: &Path) -> Result<BufReader<File>, GateError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| GateError::TlsRead {
            what,
            path: path.to_owned(),
            source,
        })
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, GateError> {
    let mut reader = open("certificate", path)?;
    let certs = rustls_pemfile::certs(&mut reader)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| GateError::TlsInvalid {
            what: "certificate",
            path: path.to_owned(),
            reason: format!("not valid PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(GateError::TlsInvalid {
            what: "certificate",
            path: path.to_owned(),
            reason: "no PEM CERTIFICATE block found".to_owned(),
        });
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, GateError> {
    let mut reader = open("key", path)?;
    match rustls_pemfile::private_key(&mut reader) {
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

fn describe_pair_error(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InconsistentKeys(_) => {
            "the private key does not belong to the certificate".to_owned()
        }
        other => other.to_string(),
    }
}

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
        })
        .unwrap_err();
        assert!(
            no_cert.to_string().contains("no PEM CERTIFICATE"),
            "{no_cert}"
        );

        let no_key = server_config(&TlsFiles {
            cert: cert_p.clone(),
            key: junk,
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
        })
        .unwrap_err();
        assert!(
            matches!(mismatched, GateError::TlsConfig { .. }),
            "{mismatched}"
        );
    }
}
