//! What the gate is told at start-up: where to listen, where Ollama is, TLS, timeouts, policies.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use corral_policy::config::{Config, UpstreamAddr};

/// Settings of one gate. Build with [`GateSettings::new`] and adjust the public fields.
#[derive(Debug, Clone)]
pub struct GateSettings {
    /// Address to listen on (port 0 picks a free port; see [`crate::Gate::local_addr`]).
    pub listen: SocketAddr,
    /// Where Ollama listens, as `corral_policy` read it (`server.upstream`, `--upstream`): the
    /// gate resolves the host and writes the `Host` header from it, and parses nothing again.
    pub upstream: UpstreamAddr,
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
    pub fn new(listen: SocketAddr, upstream: UpstreamAddr, config: Arc<Config>) -> Self {
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

/// PEM files of the server certificate chain and its private key, and of the client
/// certificate CAs when clients must present a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Mutual TLS: every handshake must present a client certificate chaining to these CAs.
    pub client: Option<ClientCaFiles>,
}

/// `server.tls_client_ca` / `--tls-client-ca` and `server.tls_client_crl` /
/// `--tls-client-crl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCaFiles {
    /// PEM bundle of CA certificates.
    pub ca: PathBuf,
    /// PEM certificate revocation lists.
    pub crls: Vec<PathBuf>,
}

impl TlsFiles {
    /// Every file the TLS configuration is built from, in a fixed order.
    pub fn paths(&self) -> impl Iterator<Item = &std::path::Path> {
        [self.cert.as_path(), self.key.as_path()]
            .into_iter()
            .chain(self.client.iter().flat_map(|c| {
                std::iter::once(c.ca.as_path()).chain(c.crls.iter().map(PathBuf::as_path))
            }))
    }
}
