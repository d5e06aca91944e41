//! Errors of the gate as a library (start-up and run time). Errors shown to HTTP clients live in
//! `reply.rs` and never carry these texts.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// What went wrong setting up or running the gate.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The upstream URL cannot be used.
    #[error("invalid upstream {url:?}: {reason}")]
    InvalidUpstream { url: String, reason: String },

    /// A TLS file could not be read.
    #[error("cannot read TLS {what} file {}: {source}", .path.display())]
    TlsRead {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A TLS file was read but its content is not usable.
    #[error("TLS {what} file {}: {reason}", .path.display())]
    TlsInvalid {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },

    /// The certificate and key do not form a usable server configuration.
    #[error("TLS certificate {} and key {} cannot be used together: {reason}", .cert.display(), .key.display())]
    TlsConfig {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },

    /// The configuration cannot work with these settings (client certificates).
    #[error("{0}")]
    Config(corral_policy::config::ConfigError),

    /// A non-loopback listen address without TLS and without `allow_plaintext`.
    #[error(
        "refusing to listen on {addr} without TLS: it is not a loopback address, so API keys and \
         prompts would cross the network in clear text. Use --tls-cert/--tls-key (server.tls_cert \
         and server.tls_key), or --allow-plaintext (server.allow_plaintext = true) if the network \
         between clients and this host is trusted"
    )]
    PlaintextRefused { addr: SocketAddr },

    /// The listen socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },

    /// The key store could not be read at start-up.
    #[error("key store: {0}")]
    Store(#[from] corral_store::StoreError),

    /// The `[oidc]` section cannot be put in service (its CA file).
    #[error("{0}")]
    Oidc(String),

    /// A background task of the gate failed.
    #[error("gate task failed: {0}")]
    Task(String),
}
