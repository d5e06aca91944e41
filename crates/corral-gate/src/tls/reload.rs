//! Picking up renewed certificate files while the gate runs.
//!
//! Certificates from an ACME client are replaced every few weeks. The gate looks at the
//! certificate and key files, and under mutual TLS at the client CA bundle and revocation
//! lists, every [`CHECK_INTERVAL`] (and at once when asked, on SIGHUP); when any changed it
//! builds a new configuration with [`super::server_config`], which checks them all as at
//! start-up, and new handshakes use it. A pair that does not load (a renewal half written, a
//! key that does not match, an expired certificate) leaves the previous certificate in
//! service and is reported once per change. Connections already open keep their session;
//! under mutual TLS their next request verifies their client certificate chain again with the
//! new client CA bundle and revocation lists (see [`super::conn_cert`]).

use std::fs::Metadata;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;

use super::conn_cert::{CurrentTrust, TrustCell};
use super::Served;
use crate::error::GateError;
use crate::settings::TlsFiles;

/// How often the certificate and key files are looked at.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(30);
/// How often the coming expiry of the certificate in service is repeated in the log.
const EXPIRY_REMINDER: Duration = Duration::from_secs(24 * 60 * 60);

/// What identifies one version of a file: a rename over it (as ACME clients and editors do)
/// changes the inode, a rewrite in place changes the size or the modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    modified: Option<SystemTime>,
}

impl Stamp {
    fn of(m: &Metadata) -> Stamp {
        #[cfg(unix)]
        let (dev, ino) = {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        };
        #[cfg(not(unix))]
        let (dev, ino) = (0, 0);
        Stamp {
            dev,
            ino,
            len: m.len(),
            modified: m.modified().ok(),
        }
    }
}

/// Every file's stamp (certificate, key, client CA bundle, revocation lists); `None` for a
/// file that cannot be looked at (being replaced, removed).
fn stamps(files: &TlsFiles) -> Vec<Option<Stamp>> {
    files
        .paths()
        .map(|p| std::fs::metadata(p).ok().map(|m| Stamp::of(&m)))
        .collect()
}

/// What one look at the files did.
#[derive(Debug)]
pub enum Checked {
    /// Neither file changed since the last look.
    Unchanged,
    /// A changed pair was loaded and is in service for new handshakes.
    Reloaded,
    /// A changed pair did not load; the previous one stays in service.
    Failed(GateError),
}

/// The configuration new TLS handshakes use, and the files it came from.
pub struct CertReloader {
    files: TlsFiles,
    current: Arc<ArcSwap<Served>>,
    /// The client verifier of `current`, for connections opened before a reload.
    trust: CurrentTrust,
    /// The stamps of the last look, whether or not that pair loaded, so that a bad pair is
    /// reported once rather than at every look.
    seen: Vec<Option<Stamp>>,
    last_reminder: Option<std::time::Instant>,
}

impl CertReloader {
    /// Starts from the configuration loaded at start-up from `files`.
    pub fn new(files: TlsFiles, served: Served) -> CertReloader {
        let seen = stamps(&files);
        CertReloader {
            files,
            trust: Arc::new(TrustCell::new(served.client.clone())),
            current: Arc::new(ArcSwap::from_pointee(served)),
            seen,
            last_reminder: None,
        }
    }

    /// The configuration in service; the accept loop takes it for each new connection.
    pub fn current(&self) -> Arc<ArcSwap<Served>> {
        Arc::clone(&self.current)
    }

    /// The client verifier in service (mutual TLS), which open connections check against.
    pub fn trust(&self) -> CurrentTrust {
        Arc::clone(&self.trust)
    }

    /// Looks at the files; loads them when either changed since the last look (or always,
    /// with `force`: SIGHUP asks for a reload even of files that look the same).
    pub fn check(&mut self, force: bool) -> Checked {
        let now = stamps(&self.files);
        if now == self.seen && !force {
            return Checked::Unchanged;
        }
        self.seen = now;
        match super::served(&self.files) {
            Ok(served) => {
                // The verifier first: a connection accepted in between is verified once more.
                self.trust.store(served.client.clone());
                self.current.store(Arc::new(served));
                // A new certificate gets its own reminder if it is close to its end too.
                self.last_reminder = None;
                Checked::Reloaded
            }
            Err(e) => Checked::Failed(e),
        }
    }

    /// The expiry warning for the certificate files, at most once per [`EXPIRY_REMINDER`].
    #[cfg(test)]
    pub fn expiry_reminder(&mut self) -> Option<String> {
        self.reminders().into_iter().next()
    }

    /// Every warning about the files in service (the certificate's coming expiry, stale
    /// revocation lists), at most once per [`EXPIRY_REMINDER`], and at once after a reload.
    pub fn reminders(&mut self) -> Vec<String> {
        if self
            .last_reminder
            .is_some_and(|at| at.elapsed() < EXPIRY_REMINDER)
        {
            return Vec::new();
        }
        let warnings = super::warnings(&self.files);
        if !warnings.is_empty() {
            self.last_reminder = Some(std::time::Instant::now());
        }
        warnings
    }

    /// Looks at the files and logs what happened: a reload at info level, a pair that did not
    /// load as an error (the previous certificate is still served), an expiry within
    /// [`super::EXPIRY_WARNING_DAYS`] as a daily warning.
    pub fn check_and_log(&mut self, force: bool) {
        match self.check(force) {
            Checked::Unchanged => {}
            Checked::Reloaded => tracing::info!(
                cert = %self.files.cert.display(),
                "TLS certificate reloaded; new connections use it"
            ),
            Checked::Failed(e) => tracing::error!(
                error = %e,
                "cannot reload the {}; still serving the previous TLS configuration",
                reloading(&e)
            ),
        }
        for warning in self.reminders() {
            tracing::warn!("{warning}");
        }
    }
}

/// What a failed reload was loading, for its log line.
fn reloading(e: &GateError) -> &'static str {
    match e {
        GateError::TlsRead { what, .. } | GateError::TlsInvalid { what, .. } => match *what {
            "client CA" => "client CA bundle",
            "client CRL" => "client revocation lists",
            _ => "server certificate and key",
        },
        _ => "server certificate and key",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn pair() -> (String, String) {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        (ck.cert.pem(), ck.key_pair.serialize_pem())
    }

    /// Replaces `path` by rename, as ACME clients do: a new inode every time, so a change is
    /// seen even when the size is the same and the clock's tick has not moved.
    fn put(path: &std::path::Path, content: impl AsRef<[u8]>) {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    fn served(r: &CertReloader) -> Arc<rustls::ServerConfig> {
        Arc::clone(&r.current().load().config)
    }

    #[test]
    fn a_certificate_near_its_end_is_reminded_of_once_a_day_and_anew_when_renewed() {
        use chrono::Datelike;
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            client: None,
        };
        let key = rcgen::KeyPair::generate().unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        let ending_in = |days: i64| {
            let end = chrono::Utc::now() + chrono::Duration::days(days);
            let mut p = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(end.year(), end.month() as u8, end.day() as u8);
            p.self_signed(&key).unwrap().pem()
        };
        std::fs::write(&files.cert, ending_in(5)).unwrap();
        let first = super::super::served(&files).unwrap();
        let mut r = CertReloader::new(files.clone(), first);
        let warning = r.expiry_reminder().expect("within 14 days");
        assert!(warning.contains("cert.pem"), "{warning}");
        assert_eq!(
            r.expiry_reminder(),
            None,
            "said once a day, not at every look"
        );
        // A renewal that is near its end too is said at once.
        put(&files.cert, ending_in(9));
        assert!(matches!(r.check(false), Checked::Reloaded));
        assert!(r.expiry_reminder().is_some());
        // One with a long life is not.
        put(&files.cert, ending_in(90));
        assert!(matches!(r.check(false), Checked::Reloaded));
        assert_eq!(r.expiry_reminder(), None);
    }

    #[test]
    fn a_failed_reload_names_what_it_was_loading() {
        let err = |what| GateError::TlsInvalid {
            what,
            path: "x".into(),
            reason: String::new(),
        };
        assert_eq!(reloading(&err("client CA")), "client CA bundle");
        assert_eq!(reloading(&err("client CRL")), "client revocation lists");
        assert_eq!(reloading(&err("certificate")), "server certificate and key");
        assert_eq!(reloading(&err("key")), "server certificate and key");
    }

    #[test]
    fn a_changed_pair_is_loaded_and_a_bad_one_leaves_the_old_in_service() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            client: None,
        };
        let (c1, k1) = pair();
        std::fs::write(&files.cert, &c1).unwrap();
        std::fs::write(&files.key, &k1).unwrap();
        let loaded = super::super::served(&files).unwrap();
        let first = Arc::clone(&loaded.config);
        let mut r = CertReloader::new(files.clone(), loaded);
        assert!(matches!(r.check(false), Checked::Unchanged));
        assert!(Arc::ptr_eq(&served(&r), &first));

        // A renewal written by rename (new inode): loaded.
        let (c2, k2) = pair();
        put(&files.cert, &c2);
        put(&files.key, &k2);
        assert!(matches!(r.check(false), Checked::Reloaded));
        let second = served(&r);
        assert!(!Arc::ptr_eq(&second, &first));
        assert!(matches!(r.check(false), Checked::Unchanged));

        // Half a renewal: the new certificate with the old key. Reported once, old pair kept.
        let (c3, _k3) = pair();
        put(&files.cert, &c3);
        match r.check(false) {
            Checked::Failed(e) => assert!(e.to_string().contains("cert.pem"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert!(Arc::ptr_eq(&served(&r), &second));
        assert!(matches!(r.check(false), Checked::Unchanged));

        // Garbage in the key file: still the old pair.
        put(&files.key, "not a key");
        assert!(matches!(r.check(false), Checked::Failed(_)));
        assert!(Arc::ptr_eq(&served(&r), &second));

        // A forced look at a good pair reloads even when nothing changed since.
        put(&files.cert, &c2);
        put(&files.key, &k2);
        assert!(matches!(r.check(false), Checked::Reloaded));
        let third = served(&r);
        assert!(matches!(r.check(true), Checked::Reloaded));
        assert!(!Arc::ptr_eq(&served(&r), &third));

        // Files removed: the pair in service stays.
        let before = served(&r);
        std::fs::remove_file(&files.cert).unwrap();
        assert!(matches!(r.check(false), Checked::Failed(_)));
        assert!(Arc::ptr_eq(&served(&r), &before));
    }
}
