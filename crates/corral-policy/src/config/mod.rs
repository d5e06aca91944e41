//! Typed configuration.
//!
//! The TOML file is read into raw structs with `deny_unknown_fields`, then validated into the
//! typed [`Config`]; every error names the key path it is about
//! (`policies.user.max_num_ctx: must be a positive integer`). Sections:
//!
//! ```toml
//! [server]            # where the gate listens and what it forwards to
//! [audit]             # the audit log file and its rotation
//! [policies.NAME]     # one table per policy; keys are bound to a policy by name
//! [oidc]              # optional: access tokens from an identity provider (oidc.rs)
//! ```
//!
//! The built-in policies `user` and `admin` exist unless the file redefines them; a
//! redefinition starts from the built-in's values, so only the keys that differ need be
//! written. A new policy starts from the `user` values.

mod oidc;
mod raw;
mod upstream;
mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::client_cert::{self, CertNamePattern};
use crate::model::{self, ModelPattern};
use crate::route::{BodyKind, EndpointClass};

pub use oidc::{IdpUrl, OidcSection, MAX_LEEWAY};
pub use upstream::{UpstreamAddr, UpstreamAddrError, OLLAMA_DEFAULT_PORT};
pub use values::parse_size;

/// Parses a listen address (`server.listen`, `--listen`): an IP address and a port. The
/// error says what is expected; host names are not resolved.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.trim().parse().map_err(|_| raw::LISTEN_HINT.to_string())
}

/// Largest configuration file read, in bytes.
pub const MAX_CONFIG_BYTES: u64 = MIB;

/// 1 MiB.
const MIB: u64 = 1024 * 1024;

/// Body limit for inspected (JSON and multipart) bodies when a policy sets none: the gate
/// must hold the whole body to inspect it, so "unlimited" never applies to them.
pub const DEFAULT_INSPECTED_BODY_LIMIT: u64 = 32 * MIB;

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub server: ServerSection,
    pub audit: AuditSection,
    /// Policies by name; always contains `user` and `admin`.
    pub policies: BTreeMap<String, Arc<Policy>>,
    /// `[oidc]`, when tokens from an identity provider are accepted.
    pub oidc: Option<Arc<OidcSection>>,
}

/// `[server]`: the listener and the upstream. Every key is optional; command-line flags
/// override them, and what neither sets takes the gate's default (noted per key).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerSection {
    /// `listen` — socket address to listen on (default `"127.0.0.1:11435"`). A non-loopback
    /// address requires TLS or `allow_plaintext = true`.
    pub listen: Option<SocketAddr>,
    /// `upstream` — where Ollama listens: `http://`, a host and an optional port (80), no
    /// path, query or credentials, or `host:port` / `host` (port 11434) as OLLAMA_HOST is
    /// written (default `"http://127.0.0.1:11434"`). Read by [`UpstreamAddr::parse`], as
    /// `--upstream` is: the gate takes the value as read here and parses nothing again.
    pub upstream: Option<UpstreamAddr>,
    /// `idle_timeout` — longest silence from upstream, before the response starts and
    /// between two chunks, before the request fails with 504: a duration such as `"10m"` or a
    /// number of seconds, > 0 (default 5 minutes). There is no total timeout: generations run
    /// for as long as they keep producing.
    pub idle_timeout: Option<Duration>,
    /// `connect_timeout` — time allowed to connect to upstream, e.g. `"5s"` (default), > 0.
    pub connect_timeout: Option<Duration>,
    /// `tls_cert` — PEM certificate chain file; set together with `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// `tls_key` — PEM private key file; set together with `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// `tls_client_ca` — PEM bundle of the CA certificates client certificates must chain
    /// to: when set, every TLS handshake must present one (mutual TLS). Needs `tls_cert`.
    pub tls_client_ca: Option<PathBuf>,
    /// `tls_client_crl` — PEM certificate revocation lists checked against client
    /// certificates (a list of files). Needs `tls_client_ca`.
    pub tls_client_crl: Vec<PathBuf>,
    /// `allow_plaintext` — permit listening on a non-loopback address without TLS
    /// (default `false`): keys would cross the network in clear text.
    pub allow_plaintext: bool,
    /// `metrics_listen` — socket address of the Prometheus metrics listener (`GET /metrics`,
    /// plain HTTP, no key); none by default. A non-loopback address requires
    /// `allow_plaintext = true`.
    pub metrics_listen: Option<SocketAddr>,
}

/// Longest `server.idle_timeout` and `server.connect_timeout` (and `--idle-timeout`): a year.
/// Far longer values overflow the clock when a deadline is computed from them.
pub const MAX_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

/// `[audit]`: the audit log.
/// Smallest `audit.max_bytes`: a file must hold at least one line of the longest length the
/// audit verifier reads (the audit writer refuses less as well).
pub const MIN_AUDIT_ROTATE_BYTES: u64 = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSection {
    /// `path` — audit log file; default `audit.ndjson` in the data directory.
    pub path: Option<PathBuf>,
    /// `max_bytes` — rotate the file when it reaches this size; bytes as an integer or a size
    /// string such as `"100MiB"` (default) or `"1GB"`. At least [`MIN_AUDIT_ROTATE_BYTES`].
    pub max_bytes: u64,
    /// `keep` — number of rotated files kept, 1 to 10000 (default 10).
    pub keep: usize,
}

/// `[policies.NAME]`: what a key bound to this policy may do. Names use `a-z 0-9 _ -`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The table name.
    pub name: String,
    /// `endpoints` — endpoint classes allowed: any of `"inference"`, `"discovery"`, `"ops"`,
    /// `"admin"`, `"account"`, or `["all"]`. Default `["inference", "discovery"]`. An empty
    /// list is a configuration error (a key is disabled by revoking it).
    pub endpoints: BTreeSet<EndpointClass>,
    /// `models` — allow-list of model-name globs: `*` any run of characters, `?` one
    /// character; a pattern without a tag matches every tag (`"llama3.2"` = `llama3.2:*`).
    /// Names are compared lower-case without the default `registry.ollama.ai/library/`
    /// prefix. Default `["*"]`. Empty only when no allowed class names models
    /// ([`EndpointClass::names_models`]: `["account"]`); otherwise a configuration error.
    pub models: Vec<ModelPattern>,
    /// `tools` — allow tool/function definitions in chat requests (default `true`).
    pub tools: bool,
    /// `images` — allow image input (vision) (default `true`).
    pub images: bool,
    /// `cloud` — allow cloud models (`:cloud`, `-cloud` tags, entries with `remote_host`),
    /// which run on ollama.com under the server owner's account (default `false`).
    pub cloud: bool,
    /// `max_num_ctx` — largest `options.num_ctx` forwarded; larger values are lowered to it.
    /// Positive integer, or `"unlimited"`. Default 32768.
    pub max_num_ctx: Option<u64>,
    /// `max_num_predict` — largest number of tokens generated (`options.num_predict`,
    /// `max_tokens`, `max_completion_tokens`, `max_output_tokens`); requests asking for more,
    /// for unlimited, or for nothing in particular get this value. Positive integer, or
    /// `"unlimited"` (default).
    pub max_num_predict: Option<u64>,
    /// `max_keep_alive` — longest `keep_alive` forwarded, e.g. `"30m"` (default); longer
    /// values and negative ones ("forever") are lowered to it. A duration > 0 or a number
    /// of seconds > 0, or `"unlimited"`.
    pub max_keep_alive: Option<Duration>,
    /// `min_keep_alive` — shortest `keep_alive` forwarded, e.g. `"5m"`; shorter values are
    /// raised to it, `0` included, which would unload the model at once: on a shared server one
    /// key could otherwise make every other key's next request wait for a cold load. A
    /// duration > 0, not longer than `max_keep_alive`, or `"none"` (default).
    pub min_keep_alive: Option<Duration>,
    /// `max_body_bytes` — largest request body, as bytes or a size string (`"32MiB"`,
    /// default). `"unlimited"` lifts the limit for blob uploads only: JSON and multipart
    /// bodies are still held to 32 MiB because they are inspected in memory.
    pub max_body_bytes: Option<u64>,
    /// `max_requests_per_minute` — requests each key of this policy may send a minute: a
    /// key quiet for a minute may send them all at once, then one every `60 s / n`.
    /// Positive integer, or `"unlimited"` (default).
    pub max_requests_per_minute: Option<u64>,
    /// `max_concurrent_requests` — requests each key of this policy may have running at once
    /// (a request runs until its answer has ended). Positive integer, or `"unlimited"`
    /// (default).
    pub max_concurrent_requests: Option<u64>,
    /// `max_tokens_per_hour` — prompt and completion tokens (the upstream's counts) each key
    /// of this policy may spend an hour. Positive integer, or `"unlimited"` (default).
    pub max_tokens_per_hour: Option<u64>,
    /// `max_tokens_per_day` — as `max_tokens_per_hour`, per 24 hours.
    pub max_tokens_per_day: Option<u64>,
    /// `client_cert_names` — globs (as `models`, ignoring case) over the names of the
    /// client certificate the connection presented: a key of this policy is refused (403
    /// `client_certificate`) unless the certificate's subject CN or one of its DNS names
    /// matches one. Absent (`None`): keys are not bound to certificates. Needs
    /// `server.tls_client_ca` ([`Config::check_client_certs`]).
    pub client_cert_names: Option<Vec<CertNamePattern>>,
}

impl Policy {
    /// Whether the policy allows routes of `class`.
    pub fn allows_class(&self, class: EndpointClass) -> bool {
        self.endpoints.contains(&class)
    }

    /// Whether `name` (any spelling; normalised here) matches the model allow-list.
    pub fn allows_model(&self, name: &str) -> bool {
        self.allows_normalized_model(&model::normalized(name))
    }

    /// [`Policy::allows_model`] for a name already in normal form ([`model::normalized`]).
    pub fn allows_normalized_model(&self, normalized: &str) -> bool {
        self.models.iter().any(|p| p.matches_normalized(normalized))
    }

    /// Whether the allow-list has the pattern `*`, the only one that allows a model named by
    /// its digest ([`model::is_digest_reference`]).
    pub fn allows_every_model(&self) -> bool {
        self.models.iter().any(ModelPattern::matches_everything)
    }

    /// Whether any per-key allowance (rate, concurrency, tokens) is set.
    pub fn has_allowances(&self) -> bool {
        self.max_requests_per_minute.is_some()
            || self.max_concurrent_requests.is_some()
            || self.max_tokens_per_hour.is_some()
            || self.max_tokens_per_day.is_some()
    }

    /// Whether the client certificate's `names` (its CNs and DNS names) satisfy
    /// `client_cert_names`; always true for a policy without it.
    pub fn allows_client_cert<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> bool {
        self.client_cert_names
            .as_deref()
            .is_none_or(|patterns| client_cert::any_matches(patterns, names))
    }

    /// The body limit the gate applies for a route's body kind; `None` means unlimited.
    pub fn body_limit(&self, kind: BodyKind) -> Option<u64> {
        match kind {
            BodyKind::None => Some(0),
            BodyKind::Json | BodyKind::Multipart => {
                Some(self.max_body_bytes.unwrap_or(DEFAULT_INSPECTED_BODY_LIMIT))
            }
            BodyKind::Binary => self.max_body_bytes,
        }
    }

    /// The built-in `user` policy: inference and discovery on every local model.
    pub fn builtin_user() -> Policy {
        Policy {
            name: "user".to_string(),
            endpoints: [EndpointClass::Inference, EndpointClass::Discovery]
                .into_iter()
                .collect(),
            models: vec![star()],
            tools: true,
            images: true,
            cloud: false,
            max_num_ctx: Some(32768),
            max_num_predict: None,
            max_keep_alive: Some(Duration::from_secs(30 * 60)),
            min_keep_alive: None,
            max_body_bytes: Some(32 * MIB),
            max_requests_per_minute: None,
            max_concurrent_requests: None,
            max_tokens_per_hour: None,
            max_tokens_per_day: None,
            client_cert_names: None,
        }
    }

    /// The built-in `admin` policy: everything, no clamps.
    pub fn builtin_admin() -> Policy {
        Policy {
            name: "admin".to_string(),
            endpoints: EndpointClass::ALL.into_iter().collect(),
            models: vec![star()],
            tools: true,
            images: true,
            cloud: true,
            max_num_ctx: None,
            max_num_predict: None,
            max_keep_alive: None,
            min_keep_alive: None,
            max_body_bytes: None,
            max_requests_per_minute: None,
            max_concurrent_requests: None,
            max_tokens_per_hour: None,
            max_tokens_per_day: None,
            client_cert_names: None,
        }
    }
}

impl fmt::Display for Policy {
    /// One line for `corral config check`, e.g. `endpoints=inference,discovery models=*
    /// tools=yes images=yes cloud=no max_num_ctx=32768 max_num_predict=unlimited
    /// max_keep_alive=30m min_keep_alive=none max_body_bytes=33554432
    /// max_requests_per_minute=unlimited
    /// max_concurrent_requests=unlimited max_tokens_per_hour=unlimited
    /// max_tokens_per_day=unlimited`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yes = |b: bool| if b { "yes" } else { "no" };
        let limit = |v: Option<u64>| v.map_or_else(|| "unlimited".to_string(), |n| n.to_string());
        let endpoints: Vec<&str> = self.endpoints.iter().map(|c| c.as_str()).collect();
        let models: Vec<&str> = self.models.iter().map(ModelPattern::as_str).collect();
        write!(
            f,
            "endpoints={} models={} tools={} images={} cloud={} max_num_ctx={} \
             max_num_predict={} max_keep_alive={} min_keep_alive={} max_body_bytes={} \
             max_requests_per_minute={} max_concurrent_requests={} max_tokens_per_hour={} \
             max_tokens_per_day={}",
            if endpoints.is_empty() {
                "none".to_string()
            } else {
                endpoints.join(",")
            },
            if models.is_empty() {
                "none".to_string()
            } else {
                models.join(",")
            },
            yes(self.tools),
            yes(self.images),
            yes(self.cloud),
            limit(self.max_num_ctx),
            limit(self.max_num_predict),
            self.max_keep_alive.map_or_else(
                || "unlimited".to_string(),
                crate::decide::format_go_duration
            ),
            self.min_keep_alive
                .map_or_else(|| "none".to_string(), crate::decide::format_go_duration),
            limit(self.max_body_bytes),
            limit(self.max_requests_per_minute),
            limit(self.max_concurrent_requests),
            limit(self.max_tokens_per_hour),
            limit(self.max_tokens_per_day),
        )?;
        if let Some(names) = &self.client_cert_names {
            let names: Vec<&str> = names.iter().map(CertNamePattern::as_str).collect();
            write!(f, " client_cert_names={}", names.join(","))?;
        }
        Ok(())
    }
}

fn star() -> ModelPattern {
    ModelPattern::any()
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            path: None,
            max_bytes: 100 * MIB,
            keep: 10,
        }
    }
}

impl Config {
    /// The configuration used when no file is given: defaults and the built-in policies.
    pub fn builtin() -> Config {
        let mut policies = BTreeMap::new();
        policies.insert("user".to_string(), Arc::new(Policy::builtin_user()));
        policies.insert("admin".to_string(), Arc::new(Policy::builtin_admin()));
        Config {
            server: ServerSection::default(),
            audit: AuditSection::default(),
            policies,
            oidc: None,
        }
    }

    /// Parses and validates a configuration file's text.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        raw::parse(text)
    }

    /// Makes the file's relative paths (`server.tls_cert`, `server.tls_key`,
    /// `server.tls_client_ca`, `server.tls_client_crl`, `audit.path`, `oidc.ca_file`) relative
    /// to `dir`, the directory the configuration file is in, so that a file means the same
    /// whatever directory the gate is started from.
    pub fn resolve_paths_from(&mut self, dir: &std::path::Path) {
        for p in [
            &mut self.server.tls_cert,
            &mut self.server.tls_key,
            &mut self.server.tls_client_ca,
            &mut self.audit.path,
        ]
        .into_iter()
        .chain(self.oidc.as_mut().map(|o| &mut Arc::make_mut(o).ca_file))
        .flatten()
        .chain(self.server.tls_client_crl.iter_mut())
        {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
    }

    /// The client-certificate settings as the gate will run with them (the file's values with
    /// the command line's over them): `tls` — a server certificate is set; `client_ca` and
    /// `client_crl` — a client CA bundle / revocation lists are set. Client certificates need
    /// TLS, revocation lists need a CA, and a policy binding keys to certificate names
    /// (`client_cert_names`) needs verified certificates, which only a client CA gives.
    pub fn check_client_certs(
        &self,
        tls: bool,
        client_ca: bool,
        client_crl: bool,
    ) -> Result<(), ConfigError> {
        if client_ca && !tls {
            return Err(ConfigError::at(
                "server.tls_client_ca",
                "client certificates are part of TLS: set server.tls_cert and server.tls_key \
                 (or --tls-cert and --tls-key) too",
            ));
        }
        if client_crl && !client_ca {
            return Err(ConfigError::at(
                "server.tls_client_crl",
                "revocation lists are checked against client certificates, which are only asked \
                 for with server.tls_client_ca (or --tls-client-ca): set it too",
            ));
        }
        if !client_ca {
            if let Some(p) = self
                .policies
                .values()
                .find(|p| p.client_cert_names.is_some())
            {
                return Err(ConfigError::at(
                    format!("policies.{}.client_cert_names", p.name),
                    "binds keys to client certificate names, but no client certificate is \
                     verified: set server.tls_client_ca (or --tls-client-ca) to the CA that \
                     issues them; without it the names could never be trusted",
                ));
            }
        }
        Ok(())
    }

    /// The policy called `name`.
    pub fn policy(&self, name: &str) -> Option<Arc<Policy>> {
        self.policies.get(name).cloned()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::builtin()
    }
}

/// A configuration mistake: the key path it is about and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key path, e.g. `policies.user.max_num_ctx`; empty when the file as a whole is
    /// at fault (a TOML syntax error).
    pub path: String,
    pub message: String,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
}

impl ConfigError {
    pub(crate) fn at(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.into(),
            message: message.into(),
            line: None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
