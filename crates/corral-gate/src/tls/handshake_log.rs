//! Failed client-certificate handshakes in the log, at most once a minute per reason.
//!
//! Such a connection never gets to HTTP, so it has no audit record; the metrics counter
//! `corral_tls_handshake_failures_total` counts it by [`HandshakeFailure`]. Under mutual TLS
//! a refused client is the first thing an operator looks into (a CRL that does not cover a
//! CA shows to the client only as `unknown ca`), so the reason is logged at warn level with
//! how many times it happened since it was last said.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustls::{CertificateError, Error};

use crate::metrics::HandshakeFailure;

/// How often one reason is said at most.
pub const EVERY: Duration = Duration::from_secs(60);

/// Why a client certificate was refused, in words; `None` for a failure that is not about the
/// client certificate (left at debug level).
pub fn reason(e: &std::io::Error) -> Option<String> {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<Error>())?;
    Some(match inner {
        Error::NoCertificatesPresented => "the client presented no certificate".to_owned(),
        Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => {
                "unknown CA: the client certificate does not chain to a CA of the client CA \
                 bundle"
                    .to_owned()
            }
            CertificateError::UnknownRevocationStatus => {
                "revocation status unknown: no revocation list from the certificate's issuer \
                 among the client CRLs"
                    .to_owned()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the client certificate has expired".to_owned()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the client certificate is not valid yet".to_owned()
            }
            CertificateError::Revoked => "the client certificate is revoked".to_owned(),
            other => format!("invalid client certificate: {other}"),
        },
        _ => return None,
    })
}

/// When each reason was last said, and how many times it happened since.
#[derive(Debug, Default)]
pub struct HandshakeLog {
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

/// Most distinct reasons remembered (each is one of a handful of texts).
const MAX_REASONS: usize = 64;

impl HandshakeLog {
    /// Records a failed handshake; returns the line to log and the count it stands for when
    /// `reason` was not said in the last [`EVERY`].
    pub fn record(&self, reason: &str, now: Instant) -> Option<(String, u64)> {
        let mut seen = self.seen.lock().ok()?;
        if let Some((at, count)) = seen.get_mut(reason) {
            *count += 1;
            if now.duration_since(*at) < EVERY {
                return None;
            }
            let n = *count;
            *at = now;
            *count = 0;
            return Some((reason.to_owned(), n));
        }
        if seen.len() >= MAX_REASONS {
            seen.clear();
        }
        seen.insert(reason.to_owned(), (now, 0));
        Some((reason.to_owned(), 1))
    }

    /// Logs a failed handshake from `peer` (rate-limited), when it is about the client
    /// certificate; every failure stays at debug level.
    pub fn failed(&self, e: &std::io::Error, why: HandshakeFailure, peer: std::net::SocketAddr) {
        tracing::debug!(error = %e, %peer, "TLS handshake failed");
        let Some(reason) = reason(e) else {
            return;
        };
        if let Some((reason, count)) = self.record(&reason, Instant::now()) {
            tracing::warn!(
                %peer,
                metric_reason = why.as_str(),
                count,
                "client certificate refused at the TLS handshake: {reason} ({count} time{} \
                 in the last minute or since last said)",
                if count == 1 { "" } else { "s" }
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn io(e: Error) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn each_reason_is_said_once_a_minute_with_a_count() {
        let log = HandshakeLog::default();
        let t0 = Instant::now();
        assert_eq!(log.record("a", t0), Some(("a".into(), 1)));
        assert_eq!(log.record("a", t0 + Duration::from_secs(1)), None);
        assert_eq!(log.record("a", t0 + Duration::from_secs(2)), None);
        assert_eq!(
            log.record("b", t0 + Duration::from_secs(2)),
            Some(("b".into(), 1))
        );
        assert_eq!(
            log.record("a", t0 + Duration::from_secs(61)),
            Some(("a".into(), 3))
        );
        assert_eq!(log.record("a", t0 + Duration::from_secs(62)), None);
    }

    #[test]
    fn reasons_name_what_is_wrong_with_the_certificate() {
        let unknown = reason(&io(Error::InvalidCertificate(
            CertificateError::UnknownRevocationStatus,
        )))
        .unwrap();
        assert!(unknown.contains("revocation status unknown"), "{unknown}");
        let ca = reason(&io(Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        )))
        .unwrap();
        assert!(ca.contains("unknown CA"), "{ca}");
        let expired = reason(&io(Error::InvalidCertificate(CertificateError::Expired))).unwrap();
        assert!(expired.contains("expired"), "{expired}");
        assert!(reason(&io(Error::NoCertificatesPresented)).is_some());
        assert_eq!(reason(&io(Error::HandshakeNotComplete)), None);
        assert_eq!(reason(&std::io::Error::other("reset")), None);
    }
}
