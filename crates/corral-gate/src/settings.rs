//! What the gate is told at start-up: where to listen, where Ollama is, TLS, timeouts, policies.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use corral_policy::config::Config;
use http::uri::{Authority, Scheme, Uri};

use crate::error::GateError;

/// Ollama's own default port, used when an upstream is given as a bare host.
pub const OLLAMA_DEFAULT_PORT: u16 = 11434;

/// Settings of one gate. Build with [`GateSettings::new`] and adjust the public fields.
#[derive(Debug, Clone)]
pub struct GateSettings {
    /// Address to listen on (port 0 picks a free port; see [`crate::Gate::local_addr`]).
    pub listen: SocketAddr,
    /// Where Ollama listens.
    pub upstream: Upstream,
    /// Serve TLS with this certificate chain and key.
    pub tls: Option<TlsFiles>,
    /// Allow a non-loopback listen address without TLS.
    pub allow_plaintext: bool,
    /// Longest silence from upstream: before the response head (a cold model load happens
    /// there, so the default is generous) and between two chunks of a streamed body.
    pub idle_timeout: Duration,
    /// Longest wait for the TCP connection to upstream.
    pub connect_timeout: Duration,
    /// Policies.
    pub config: Arc<Config>,
    /// How often the key store is polled for changes made by other processes.
    pub key_reload_interval: Duration,
}

impl GateSettings {
    /// Default idle timeout: long enough for a cold load of a large model before the first byte.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
    /// Default upstream connect timeout.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default key store poll interval (a key change takes effect well within one second).
    pub const DEFAULT_KEY_RELOAD_INTERVAL: Duration = Duration::from_millis(250);
    /// Default grace period for in-flight requests at shutdown (see `Gate::set_shutdown_grace`).
    pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

    /// Settings with the defaults: no TLS, plaintext only on loopback.
    pub fn new(listen: SocketAddr, upstream: Upstream, config: Arc<Config>) -> Self {
        GateSettings {
            listen,
            upstream,
            tls: None,
            allow_plaintext: false,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            config,
            key_reload_interval: Self::DEFAULT_KEY_RELOAD_INTERVAL,
        }
    }
}

/// Whether a listen address only accepts connections from this host: a loopback address,
/// also written as an IPv4-mapped IPv6 one (`[::ffff:127.0.0.1]`).
pub fn is_loopback_listen(addr: &SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

/// PEM files of the server certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The upstream Ollama: scheme and authority only, never a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    scheme: Scheme,
    authority: Authority,
}

impl Upstream {
    /// Parses `http://host:port`, `host:port` or `host` (Ollama's `OLLAMA_HOST` forms).
    /// A path other than `/`, a query, or user info is refused: the gate chooses every path.
    pub fn parse(url: &str) -> Result<Upstream, GateError> {
        let bad = |reason: &str| GateError::InvalidUpstream {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = url.trim();
        let with_scheme = if trimmed.contains("://") {
            trimmed.to_owned()
        } else {
            format!("http://{trimmed}")
        };
        let uri: Uri = with_scheme
            .parse()
            .map_err(|_| bad("not a URL of the form http://host:port"))?;
        let scheme = uri.scheme().cloned().ok_or_else(|| bad("missing scheme"))?;
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(bad("the scheme must be http"));
        }
        if scheme == Scheme::HTTPS {
            return Err(bad(
                "https upstreams are not supported; run the gate on the Ollama host and reach \
                 Ollama over http on loopback",
            ));
        }
        let authority = uri.authority().ok_or_else(|| bad("missing host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("user info is not allowed"));
        }
        if authority.host().is_empty() {
            return Err(bad("missing host"));
        }
        if let Some(pq) = uri.path_and_query() {
            if pq.query().is_some() || !(pq.path().is_empty() || pq.path() == "/") {
                return Err(bad(
                    "a path or query is not allowed; give only scheme, host and port",
                ));
            }
        }
        let authority = if authority.port().is_some() {
            authority.clone()
        } else {
            // A bare host means Ollama's port, as with OLLAMA_HOST; an explicit http:// without a
            // port means port 80, as in any URL.
            let port = if trimmed.contains("://") {
                80
            } else {
                OLLAMA_DEFAULT_PORT
            };
            let host = authority.host();
            let text = if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            text.parse().map_err(|_| bad("invalid host"))?
        };
        Ok(Upstream { scheme, authority })
    }

    /// `host:port` as sent in the `Host` header.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Host without brackets or port.
    pub fn host(&self) -> &str {
        let h = self.authority.host();
        h.trim_start_matches('[').trim_end_matches(']')
    }

    /// The upstream's TCP port.
    pub fn port(&self) -> u16 {
        self.authority.port_u16().unwrap_or(OLLAMA_DEFAULT_PORT)
    }
}

impl FromStr for Upstream {
    type Err = GateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Upstream::parse(s)
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn parses_ollama_forms() {
        let u = Upstream::parse("http://127.0.0.1:11434").unwrap();
        assert_eq!(u.to_string(), "http://127.0.0.1:11434");
        assert_eq!(u.port(), 11434);
        assert_eq!(u.host(), "127.0.0.1");
        assert_eq!(
            Upstream::parse("http://127.0.0.1:11434/").unwrap().port(),
            11434
        );
        assert_eq!(
            Upstream::parse("localhost").unwrap().to_string(),
            "http://localhost:11434"
        );
        assert_eq!(Upstream::parse("10.0.0.2:9000").unwrap().port(), 9000);
        assert_eq!(Upstream::parse("http://ollama").unwrap().port(), 80);
        let v6 = Upstream::parse("http://[::1]:11434").unwrap();
        assert_eq!(v6.host(), "::1");
        assert_eq!(v6.authority().as_str(), "[::1]:11434");
    }

    #[test]
    fn refuses_paths_queries_userinfo_and_other_schemes() {
        for bad in [
            "http://127.0.0.1:11434/api",
            "http://127.0.0.1:11434/?x=1",
            "http://user:pw@127.0.0.1:11434",
            "ftp://127.0.0.1",
            "https://127.0.0.1:11434",
            "",
            "http://",
        ] {
            let err = Upstream::parse(bad).unwrap_err();
            assert!(
                matches!(err, GateError::InvalidUpstream { .. }),
                "{bad}: {err}"
            );
        }
        let https = Upstream::parse("https://x:1").unwrap_err().to_string();
        assert!(
            https.contains("https upstreams are not supported"),
            "{https}"
        );
    }

    #[test]
    fn host_and_port_for_connecting() {
        let u = Upstream::parse("127.0.0.1:5").unwrap();
        assert_eq!((u.host(), u.port()), ("127.0.0.1", 5));
        let v6 = Upstream::parse("http://[::1]:11434").unwrap();
        assert_eq!((v6.host(), v6.port()), ("::1", 11434));
    }
}
