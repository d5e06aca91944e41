//! The facts of one request and their ECS form.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

/// ECS version the records follow.
pub const ECS_VERSION: &str = "8.11.0";

/// Common values of [`AuditRecord::action`].
pub mod action {
    /// Forwarded upstream.
    pub const PROXY: &str = "proxy";
    /// Refused by policy.
    pub const DENY: &str = "deny";
    /// No key, or a key that did not authenticate.
    pub const AUTH_FAILURE: &str = "auth_failure";
    /// Refused before authentication: unknown route, bad path, bad body.
    pub const BAD_REQUEST: &str = "bad_request";
    /// Not the client's fault: upstream unreachable, idle past the limit, or unable to answer
    /// what a decision needed, or the request cut by the gate's shutdown.
    pub const UPSTREAM_ERROR: &str = "upstream_error";
    /// Written by the log itself when it restarts its chain: after a torn last line, after
    /// writes failed and succeed again, or when the path names a new file
    /// (`corral.restart.reason` says which).
    pub const AUDIT_RESTART: &str = "audit_restart";
}

/// ECS `event.outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Unknown,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Unknown => "unknown",
        }
    }
}

/// The gate's decision on the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }

    /// The second ECS `event.type` value.
    pub(crate) fn event_type(&self) -> &'static str {
        match self {
            Decision::Allow => "allowed",
            Decision::Deny => "denied",
        }
    }
}

/// The facts of one request. There is no field for prompt content, bodies, headers or keys;
/// free-text fields are truncated and anything shaped like a corral key is redacted when the
/// record is serialised.
/// A text field that is usually one of a fixed set of names: no allocation for those.
pub type Text = Cow<'static, str>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub timestamp: DateTime<Utc>,
    /// See [`action`].
    pub action: Text,
    pub outcome: Outcome,
    pub source_ip: IpAddr,
    /// Name of the authenticated key.
    pub user_name: Option<String>,
    pub method: Text,
    /// The canonical path, or for a refused request the raw path (escaped by JSON, truncated to
    /// 1 KiB; any query string is dropped).
    pub url_path: String,
    pub status_code: u16,
    pub duration: Duration,
    pub key_id: Option<String>,
    pub policy: Option<String>,
    pub decision: Decision,
    /// Name of the refusing rule or a short message.
    pub reason: Option<Text>,
    pub endpoint_class: Option<Text>,
    /// Route name, e.g. `api.chat`.
    pub route: Option<Text>,
    pub model: Option<String>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub streamed: bool,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub clamps: Vec<Text>,
    pub upstream_status: Option<u16>,
    /// The verified client certificate of the request's connection (mutual TLS), shared by
    /// every request of that connection.
    pub tls_client: Option<Arc<TlsClient>>,
}

/// Most common names written for one certificate.
pub const MAX_COMMON_NAMES: usize = 8;

/// ECS `tls.client.*`: who the client certificate names and which certificate it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsClient {
    /// `tls.client.x509.subject.common_name` (an array in ECS): the subject's CNs, at most
    /// [`MAX_COMMON_NAMES`], each truncated to 256 bytes; omitted when there is none.
    pub common_names: Vec<String>,
    /// `tls.client.hash.sha256`: upper-case hex SHA-256 of the DER leaf certificate.
    pub sha256: String,
}

impl TlsClient {
    fn to_ecs(&self) -> Value {
        let mut client = Map::new();
        client.insert("hash".into(), json!({ "sha256": text(&self.sha256, 64) }));
        if !self.common_names.is_empty() {
            let names: Vec<Value> = self
                .common_names
                .iter()
                .take(MAX_COMMON_NAMES)
                .map(|n| text(n, 256))
                .collect();
            client.insert(
                "x509".into(),
                json!({ "subject": { "common_name": names } }),
            );
        }
        json!({ "client": client })
    }
}

impl AuditRecord {
    /// A record stamped now, with a deny decision, failure outcome and every optional fact empty.
    pub fn new(
        action: impl Into<Text>,
        source_ip: IpAddr,
        method: impl Into<Text>,
        url_path: impl Into<String>,
    ) -> AuditRecord {
        AuditRecord {
            timestamp: Utc::now(),
            action: action.into(),
            outcome: Outcome::Failure,
            source_ip,
            user_name: None,
            method: method.into(),
            url_path: url_path.into(),
            status_code: 0,
            duration: Duration::ZERO,
            key_id: None,
            policy: None,
            decision: Decision::Deny,
            reason: None,
            endpoint_class: None,
            route: None,
            model: None,
            prompt_tokens: None,
            completion_tokens: None,
            streamed: false,
            bytes_in: 0,
            bytes_out: 0,
            clamps: Vec::new(),
            upstream_status: None,
            tls_client: None,
        }
    }

    /// The ECS object, without `corral.chain`.
    pub fn to_ecs(&self) -> Value {
        let path = self.url_path.split('?').next().unwrap_or("");
        let duration_ns = u64::try_from(self.duration.as_nanos()).unwrap_or(u64::MAX);
        let event_type = ["access", self.decision.event_type()];
        let mut corral = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                corral.insert(k.to_string(), v);
            }
        };
        put("key_id", self.key_id.as_deref().map(|s| text(s, 64)));
        put("policy", self.policy.as_deref().map(|s| text(s, 128)));
        put("decision", Some(json!(self.decision.as_str())));
        put("reason", self.reason.as_deref().map(|s| text(s, 512)));
        put(
            "endpoint_class",
            self.endpoint_class.as_deref().map(|s| text(s, 32)),
        );
        put("route", self.route.as_deref().map(|s| text(s, 64)));
        put("model", self.model.as_deref().map(|s| text(s, 256)));
        put("prompt_tokens", self.prompt_tokens.map(Value::from));
        put("completion_tokens", self.completion_tokens.map(Value::from));
        put("streamed", Some(Value::Bool(self.streamed)));
        put("bytes_in", Some(Value::from(self.bytes_in)));
        put("bytes_out", Some(Value::from(self.bytes_out)));
        put(
            "clamps",
            Some(Value::Array(
                self.clamps.iter().take(32).map(|c| text(c, 64)).collect(),
            )),
        );
        put("upstream_status", self.upstream_status.map(Value::from));

        let mut v = json!({
            "@timestamp": self.timestamp.to_rfc3339_opts(SecondsFormat::Micros, true),
            "ecs": { "version": ECS_VERSION },
            "event": {
                "kind": "event",
                "category": ["web"],
                "type": event_type,
                "action": text(&self.action, 64),
                "outcome": self.outcome.as_str(),
                "duration": duration_ns,
            },
            "source": { "ip": self.source_ip.to_string() },
            "http": {
                "request": { "method": text(&self.method, 32) },
                "response": { "status_code": self.status_code },
            },
            "url": { "path": text(path, 1024) },
            "corral": corral,
        });
        if let (Some(name), Value::Object(m)) = (&self.user_name, &mut v) {
            m.insert("user".into(), json!({ "name": text(name, 128) }));
        }
        if let (Some(tls), Value::Object(m)) = (&self.tls_client, &mut v) {
            m.insert("tls".into(), tls.to_ecs());
        }
        v
    }
}

/// Truncates `s` to at most `max` bytes (on a char boundary, marked with `…`) and redacts key
/// secrets, so neither a huge nor a secret-bearing client value reaches the log.
fn text(s: &str, max: usize) -> Value {
    Value::String(limited(s, max).into_owned())
}

/// `s` with key secrets redacted, truncated to at most `max` bytes on a char boundary (then
/// marked with `…`).
pub(crate) fn limited(s: &str, max: usize) -> Cow<'_, str> {
    let s = redact_keys(s);
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &s[..end]))
}

/// Replaces the secret part of anything shaped like `crl_<12 base62>_<base62...>` with
/// `<redacted>`, keeping the public id.
pub fn redact_keys(s: &str) -> Cow<'_, str> {
    const PREFIX: &[u8] = b"crl_";
    const ID: usize = 12;
    let b = s.as_bytes();
    // Built only once something is redacted: most values (and every key id) have nothing to
    // hide, and those cost no allocation.
    let mut out: Option<String> = None;
    let mut i = 0;
    let mut copied = 0;
    while let Some(start) = find_prefix(b, i, PREFIX) {
        let id_start = start + PREFIX.len();
        let id_end = id_start + ID;
        let id_ok = b
            .get(id_start..id_end)
            .is_some_and(|id| id.iter().all(u8::is_ascii_alphanumeric));
        if id_ok && b.get(id_end) == Some(&b'_') {
            let secret_start = id_end + 1;
            let secret_len = b
                .get(secret_start..)
                .unwrap_or(&[])
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric())
                .count();
            if secret_len > 0 {
                let o = out.get_or_insert_with(|| String::with_capacity(s.len()));
                // Every boundary here is next to an ASCII byte, so on a char boundary.
                o.push_str(&s[copied..secret_start]);
                o.push_str("<redacted>");
                copied = secret_start + secret_len;
                i = copied;
                continue;
            }
        }
        i = id_start;
    }
    match out {
        None => Cow::Borrowed(s),
        Some(mut o) => {
            o.push_str(&s[copied..]);
            Cow::Owned(o)
        }
    }
}

/// Offset of the first `prefix` in `b` at or after `from`: a memchr for its first byte, then a
/// compare, which beats a general substring search on the short values an audit record holds.
fn find_prefix(b: &[u8], from: usize, prefix: &[u8]) -> Option<usize> {
    let first = *prefix.first()?;
    let mut at = from;
    loop {
        let rest = b.get(at..)?;
        let hit = at + memchr::memchr(first, rest)?;
        if b.get(hit..)?.starts_with(prefix) {
            return Some(hit);
        }
        at = hit + 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
