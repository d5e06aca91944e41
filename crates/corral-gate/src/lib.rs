//! corral's gate: an authenticating, default-deny, streaming reverse proxy in front of Ollama.
//!
//! A request goes through fixed phases (see `docs/ARCHITECTURE.md`, "The request's path"):
//! route ([`corral_policy::route`]) → authenticate (key snapshot) → read and decode the body
//! under the policy's limit → decide ([`corral_policy::decide`]) → forward a fresh request
//! with the canonical path and allow-listed headers → stream the answer back (listings are
//! buffered and filtered) → one audit record when the response ends.
//!
//! Modules: [`settings`] (what the gate is told), `server` (listener, TLS, shutdown), `proxy`
//! (the phases), `auth`, `body`, `headers`, `forward`, `upstream` (keep-alive upstream
//! connections, read by the request's own task), `stream`, `reply` (errors in the client's
//! dialect), `refused` (hyper's own answers to unreadable heads), `keys` (snapshot reload, saving last-used times and allowance state), `oidc` (identity-provider tokens: key set fetching and refresh), `allowances` (rate limits and token quotas), `carried` (allowance state across restarts), `catalogue` (remote models), `audit`, [`metrics`] (Prometheus counters fed from the audit records), [`selfcheck`].

mod allowances;
mod audit;
mod auth;
mod body;
mod carried;
mod catalogue;
mod context;
mod error;
pub mod fdtable;
mod forward;
mod headers;
mod keys;
pub mod metrics;
mod oidc;
mod proxy;
mod refused;
mod reply;
pub mod selfcheck;
mod server;
pub mod settings;
mod stream;
mod tls;
mod upstream;

use std::time::Duration;

pub use error::GateError;
pub use metrics::{serve_metrics, MetricsSource};
pub use selfcheck::Exposure;
pub use server::{listen_socket, Gate};
pub use settings::{ClientCaFiles, GateSettings, TlsFiles};

/// Loads a TLS certificate chain and key as the gate would, to check them before start-up
/// (`corral config check`, or before anything else is opened). The error names the file and
/// what is wrong with it.
pub fn check_tls_files(files: &TlsFiles) -> Result<(), GateError> {
    tls::server_config(files).map(drop)
}

/// Reads `oidc.ca_file` as the gate would at start-up (`corral config check`); the error
/// names the file and what is wrong with it.
pub fn check_oidc(section: &corral_policy::config::OidcSection) -> Result<(), GateError> {
    oidc::check(section)
}

/// The TLS settings in a few lines (`corral config check`).
pub fn describe_tls(files: &TlsFiles) -> Vec<String> {
    tls::describe(files)
}

/// Warnings about the TLS files: the certificate expires within two weeks, a client
/// revocation list is past its `nextUpdate` (still used; revocations since are unknown).
pub fn tls_warnings(files: &TlsFiles) -> Vec<String> {
    tls::warnings(files)
}

/// Default idle timeout (see [`GateSettings::idle_timeout`]).
pub const DEFAULT_IDLE_TIMEOUT: Duration = GateSettings::DEFAULT_IDLE_TIMEOUT;
/// Default upstream connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = GateSettings::DEFAULT_CONNECT_TIMEOUT;
/// Default key store poll interval.
pub const DEFAULT_KEY_RELOAD_INTERVAL: Duration = GateSettings::DEFAULT_KEY_RELOAD_INTERVAL;

/// Entry points for the fuzz targets (`fuzz/fuzz_targets/gate_*.rs`); not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use http::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_ENCODING};

    /// Parses `value` as an `Authorization` header; returns the presented key, if any.
    pub fn authorization(value: &[u8]) -> Option<String> {
        let v = HeaderValue::from_bytes(value).ok()?;
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, v);
        crate::auth::presented_key(&h).map(|p| p.as_str().to_owned())
    }

    /// Reads the names of a DER client certificate (mutual TLS) and whether it is a CA, as the
    /// gate does after a handshake and when it loads the client CA bundle: never panics, the
    /// hash is always 64 upper-case hex digits, and the lists stay bounded.
    pub fn client_identity(der: &[u8]) -> Vec<String> {
        let id = crate::tls::identity::ClientIdentity::of(der);
        assert_eq!(id.audit.sha256.len(), 64);
        assert!(id
            .audit
            .sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
        assert!(id.audit.common_names.len() <= corral_audit::MAX_COMMON_NAMES);
        assert!(id.dns_names.len() <= 64);
        let _ = crate::tls::identity::is_ca(der);
        let _ = crate::tls::identity::constrained_subject(der);
        let _ = crate::tls::identity::name_constrained(&[der, der], &[der.to_vec()]);
        id.names(true).map(str::to_owned).collect()
    }

    /// Reads a DER certificate revocation list as the gate does to explain a refused one, to
    /// check that every client CA has one, and to warn of a stale one.
    pub fn crl(der: &[u8]) -> Option<usize> {
        let facts = crate::tls::crl::read(der)?;
        let _ = crate::tls::crl::unsupported(der);
        let _ = facts.next_update.map(|t| t.unix());
        Some(facts.issuer.len())
    }

    /// Reads the validity period of a DER certificate (as `--tls-cert` is checked at start-up):
    /// `notBefore` and `notAfter` in seconds since the Unix epoch, each checked against the
    /// verdict it gives at its edges.
    pub fn cert_validity(der: &[u8]) -> Option<(i64, i64)> {
        use crate::tls::validity::{read, OutOfDate};
        let v = read(der)?;
        let (before, after) = (v.not_before.unix(), v.not_after.unix());
        assert!(matches!(
            v.check(after.saturating_add(1)),
            Err(OutOfDate::Expired(_))
        ));
        assert!(matches!(
            v.check(before.saturating_sub(1)),
            Err(OutOfDate::NotYetValid(_)) | Err(OutOfDate::Expired(_))
        ));
        if before <= after {
            assert_eq!(v.check(before), Ok(()));
            assert_eq!(v.check(after), Ok(()));
        }
        // Every date it reads can be printed.
        assert!(!v.not_after.to_string().is_empty());
        Some((before, after))
    }

    /// Decodes `body` as the named `Content-Encoding` with an output bound of `limit` bytes;
    /// returns the decoded length or the client status of the refusal.
    pub fn decode(encoding: &[u8], body: &[u8], limit: usize) -> Result<usize, u16> {
        let v = HeaderValue::from_bytes(encoding).map_err(|_| 400u16)?;
        let mut h = HeaderMap::new();
        h.insert(CONTENT_ENCODING, v);
        let enc = crate::body::content_encoding(&h).map_err(|e| e.status())?;
        crate::body::decode_sync(enc, body, limit)
            .map(|b| b.len())
            .map_err(|e| e.status())
    }

    /// Reads `data` as an upstream response arriving in pieces of `step` bytes: the head
    /// (after a `POST`), then, for a chunked answer, the body. Returns the head's status and
    /// the decoded body length, or `None` when the response is refused or incomplete.
    pub fn upstream_response(data: &[u8], step: usize) -> Option<(u16, usize)> {
        use crate::upstream::chunked::{Decoder, Step};
        use crate::upstream::wire::{parse_response, Framing};
        let step = step.max(1);
        let mut buf = bytes::BytesMut::new();
        let mut fed = 0;
        // Appends the next piece; false when everything has been fed.
        let mut feed = |buf: &mut bytes::BytesMut| {
            if fed == data.len() {
                return false;
            }
            let end = (fed + step).min(data.len());
            buf.extend_from_slice(&data[fed..end]);
            fed = end;
            true
        };
        let head = loop {
            if let Some(h) = parse_response(&mut buf, &http::Method::POST).ok()? {
                break h;
            }
            if !feed(&mut buf) {
                return None;
            }
        };
        if head.framing != Framing::Chunked {
            return Some((head.status.as_u16(), 0));
        }
        let mut dec = Decoder::new();
        let mut len = 0;
        loop {
            match dec.decode(&mut buf).ok()? {
                // As the response body takes it: with the chunks buffered behind it (an end
                // among them is `Step::End` at the next decode).
                Some(Step::Data(d)) => {
                    let (merged, _) = crate::upstream::merge_buffered_chunks(&mut dec, &mut buf, d);
                    len += merged.len();
                }
                Some(Step::End) => {
                    assert!(dec.is_done());
                    return Some((head.status.as_u16(), len));
                }
                None if !feed(&mut buf) => return None,
                None => {}
            }
        }
    }
}
