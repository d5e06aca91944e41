//! The client certificate of one connection, checked again for every request on it.
//!
//! rustls verifies a client certificate once, during the handshake; a connection then lives
//! as long as its client keeps it (HTTP/1.1 keep-alive, HTTP/2). Two things can change under
//! it: the certificate reaches its `notAfter`, and the client CA bundle or revocation lists
//! are replaced (a certificate revoked since). Every request therefore checks the leaf's
//! `notAfter` against the clock, and compares the generation of the client verifier its
//! connection was last verified with against the one in service: when they differ (a reload
//! since), the chain the client presented is verified again with the current verifier. When
//! nothing was reloaded the cost is one atomic load and one compare.
//!
//! A connection refused once stays refused: the caller closes it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;

use super::identity::ClientIdentity;

/// The client verifier of one loaded configuration.
#[derive(Debug, Clone)]
pub struct ClientTrust {
    /// Unique per loaded configuration (a reload makes a new one).
    pub generation: u64,
    pub verifier: Arc<dyn ClientCertVerifier>,
    /// The subjects (DER `Name`) of the client CAs that carry a nameConstraints extension.
    pub constrained_anchors: Arc<[Vec<u8>]>,
}

/// The client verifier new handshakes use, replaced at each reload. `None` without mutual TLS.
pub type CurrentTrust = Arc<ArcSwap<Option<ClientTrust>>>;

/// Why a request on a connection with a verified client certificate is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    /// The leaf's `notAfter` (seconds since the Unix epoch) has passed.
    Expired(i64),
    /// The chain no longer verifies with the client CAs and revocation lists in service.
    NoLongerValid(String),
    /// Mutual TLS was turned off by a reload: no verifier to check with.
    NoVerifier,
    /// Refused before on this connection.
    AlreadyRefused,
}

impl Stale {
    /// The message the client is told.
    pub fn message(&self) -> &'static str {
        match self {
            Stale::Expired(_) => {
                "this connection's client certificate has expired; reconnect with a valid one"
            }
            Stale::NoLongerValid(_) | Stale::NoVerifier | Stale::AlreadyRefused => {
                "this connection's client certificate is no longer accepted (revoked, or its CA \
                 is no longer trusted); reconnect with a valid one"
            }
        }
    }
}

/// The verified client certificate of a connection, and what it needs to be checked again.
#[derive(Debug)]
pub struct ConnCert {
    /// Names and audit fields of the leaf.
    pub identity: ClientIdentity,
    /// The leaf's `notAfter`, seconds since the Unix epoch (`None`: unreadable, left to rustls).
    not_after: Option<i64>,
    /// The leaf, then the intermediates the client sent.
    chain: Vec<CertificateDer<'static>>,
    current: CurrentTrust,
    /// The generation of the verifier the chain was last verified with.
    verified: AtomicU64,
    refused: AtomicBool,
}

impl ConnCert {
    /// The connection's certificate chain (leaf first) as verified during the handshake by
    /// `trust`; `current` is where later reloads put their verifier. `None` for an empty chain.
    pub fn new(
        chain: &[CertificateDer<'_>],
        trust: &ClientTrust,
        current: CurrentTrust,
    ) -> Option<ConnCert> {
        let leaf = chain.first()?;
        let constrained = super::identity::name_constrained(chain, &trust.constrained_anchors);
        Some(ConnCert {
            identity: ClientIdentity::of_verified(leaf, constrained),
            not_after: super::validity::read(leaf).map(|v| v.not_after.unix()),
            chain: chain.iter().map(|c| c.clone().into_owned()).collect(),
            current,
            verified: AtomicU64::new(trust.generation),
            refused: AtomicBool::new(false),
        })
    }

    /// Whether a request may still be served on this connection at `now` (seconds since the
    /// Unix epoch). An error is sticky: every later call fails too.
    pub fn check(&self, now: i64) -> Result<(), Stale> {
        if self.refused.load(Ordering::Relaxed) {
            return Err(Stale::AlreadyRefused);
        }
        let verdict = self.check_once(now);
        if verdict.is_err() {
            self.refused.store(true, Ordering::Relaxed);
        }
        verdict
    }

    fn check_once(&self, now: i64) -> Result<(), Stale> {
        if let Some(end) = self.not_after {
            if now > end {
                return Err(Stale::Expired(end));
            }
        }
        let current = self.current.load();
        let Some(trust) = current.as_ref() else {
            return Err(Stale::NoVerifier);
        };
        if trust.generation == self.verified.load(Ordering::Relaxed) {
            return Ok(());
        }
        let (leaf, intermediates) = self.chain.split_first().ok_or(Stale::NoVerifier)?;
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(now).unwrap_or(0),
        ));
        trust
            .verifier
            .verify_client_cert(leaf, intermediates, at)
            .map_err(|e| Stale::NoLongerValid(e.to_string()))?;
        self.verified.store(trust.generation, Ordering::Relaxed);
        Ok(())
    }
}
