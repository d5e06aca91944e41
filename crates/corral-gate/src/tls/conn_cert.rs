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

/// The client verifier new handshakes use, replaced at each reload (`None` without mutual
/// TLS), and its generation apart, so that a request compares one integer when nothing was
/// reloaded.
#[derive(Debug)]
pub struct TrustCell {
    generation: AtomicU64,
    trust: ArcSwap<Option<ClientTrust>>,
}

impl TrustCell {
    pub fn new(trust: Option<ClientTrust>) -> TrustCell {
        TrustCell {
            generation: AtomicU64::new(trust.as_ref().map_or(0, |t| t.generation)),
            trust: ArcSwap::from_pointee(trust),
        }
    }

    /// Puts `trust` in service: the verifier first, then its generation, so that a reader who
    /// sees the new generation finds the new verifier.
    pub fn store(&self, trust: Option<ClientTrust>) {
        let generation = trust.as_ref().map_or(0, |t| t.generation);
        self.trust.store(Arc::new(trust));
        self.generation.store(generation, Ordering::Release);
    }

    /// The generation in service.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The verifier in service.
    pub fn load_full(&self) -> Arc<Option<ClientTrust>> {
        self.trust.load_full()
    }
}

/// Where reloads put their client verifier.
pub type CurrentTrust = Arc<TrustCell>;

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
    /// Whether a name constraint applies to the chain (then the CNs do not bind), as of the
    /// verifier it was last verified with.
    name_constrained: AtomicBool,
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
            identity: ClientIdentity::of(leaf),
            name_constrained: AtomicBool::new(constrained),
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
        if self.current.generation() == self.verified.load(Ordering::Relaxed) {
            return Ok(());
        }
        let current = self.current.load_full();
        let Some(trust) = current.as_ref() else {
            return Err(Stale::NoVerifier);
        };
        let (leaf, intermediates) = self.chain.split_first().ok_or(Stale::NoVerifier)?;
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(now).unwrap_or(0),
        ));
        trust
            .verifier
            .verify_client_cert(leaf, intermediates, at)
            .map_err(|e| Stale::NoLongerValid(e.to_string()))?;
        // The new client CAs may carry name constraints the old ones did not (or no longer).
        self.name_constrained.store(
            super::identity::name_constrained(&self.chain, &trust.constrained_anchors),
            Ordering::Relaxed,
        );
        self.verified.store(trust.generation, Ordering::Relaxed);
        Ok(())
    }

    /// Every name `client_cert_names` is matched against: the CNs unless a name constraint
    /// applies to the chain (webpki checks constraints on DNS names only), then the DNS names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.identity
            .names(!self.name_constrained.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa,
        KeyPair, NameConstraints,
    };

    struct Ca {
        cert: rcgen::Certificate,
        key: KeyPair,
    }

    fn ca_params(permitted: Option<&str>) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, "CA");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.name_constraints = permitted.map(|d| NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::DnsName(d.to_owned())],
            excluded_subtrees: Vec::new(),
        });
        p
    }

    fn ca() -> Ca {
        let key = KeyPair::generate().unwrap();
        Ca {
            cert: ca_params(None).self_signed(&key).unwrap(),
            key,
        }
    }

    fn leaf(ca: &Ca, until_year: i32) -> CertificateDer<'static> {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, "app-1");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.not_before = rcgen::date_time_ymd(2024, 1, 1);
        p.not_after = rcgen::date_time_ymd(until_year, 1, 1);
        p.signed_by(&KeyPair::generate().unwrap(), &ca.cert, &ca.key)
            .unwrap()
            .der()
            .clone()
    }

    fn trust(cas: &[&Ca], generation: u64) -> ClientTrust {
        let mut roots = rustls::RootCertStore::empty();
        let mut constrained = Vec::new();
        for ca in cas {
            roots.add(ca.cert.der().clone()).unwrap();
            constrained.extend(super::super::identity::constrained_subject(ca.cert.der()));
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        ClientTrust {
            generation,
            verifier,
            constrained_anchors: constrained.into(),
        }
    }

    const Y2030: i64 = 1_893_456_000;

    #[test]
    fn an_expired_certificate_is_refused_for_good() {
        let a = ca();
        let t = trust(&[&a], 1);
        let current: CurrentTrust = Arc::new(TrustCell::new(Some(t.clone())));
        let c = ConnCert::new(&[leaf(&a, 2030)], &t, current).unwrap();
        assert_eq!(c.check(Y2030 - 10), Ok(()));
        assert_eq!(c.check(Y2030 + 1), Err(Stale::Expired(Y2030)));
        assert_eq!(c.check(Y2030 - 10), Err(Stale::AlreadyRefused));
    }

    #[test]
    fn after_a_reload_the_chain_is_verified_again() {
        let a = ca();
        let b = ca();
        let t1 = trust(&[&a, &b], 1);
        let current: CurrentTrust = Arc::new(TrustCell::new(Some(t1.clone())));
        let c = ConnCert::new(&[leaf(&a, 2030)], &t1, Arc::clone(&current)).unwrap();
        let now = Y2030 - 86_400;
        assert_eq!(c.check(now), Ok(()));
        assert_eq!(c.names().collect::<Vec<_>>(), vec!["app-1"]);
        // A reload that keeps the CA: verified again, still fine.
        current.store(Some(trust(&[&a], 2)));
        assert_eq!(c.check(now), Ok(()));
        // The CA becomes name-constrained: the CN stops binding.
        // (The same name and key, so the leaf still chains to it.)
        let constrained = Ca {
            cert: ca_params(Some("team-a.example"))
                .self_signed(&a.key)
                .unwrap(),
            key: KeyPair::generate().unwrap(),
        };
        current.store(Some(trust(&[&constrained], 3)));
        assert_eq!(c.check(now), Ok(()));
        assert!(c.names().next().is_none());
        // A reload without its CA: refused, and for good.
        current.store(Some(trust(&[&b], 4)));
        assert!(matches!(c.check(now), Err(Stale::NoLongerValid(_))));
        current.store(Some(trust(&[&a], 5)));
        assert_eq!(c.check(now), Err(Stale::AlreadyRefused));
        // Mutual TLS turned off by a reload.
        let d = ConnCert::new(&[leaf(&a, 2030)], &t1, Arc::clone(&current)).unwrap();
        current.store(None);
        assert_eq!(d.check(now), Err(Stale::NoVerifier));
        assert!(ConnCert::new(&[], &t1, current).is_none());
    }
}
