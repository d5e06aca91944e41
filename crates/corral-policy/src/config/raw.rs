//! The file as written (raw structs) and its validation into [`Config`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::values::{is_unlimited, parse_duration, parse_size};
use super::{AuditSection, Config, ConfigError, Policy, ServerSection, UpstreamAddr};
use crate::client_cert::CertNamePattern;
use crate::model::ModelPattern;
use crate::route::EndpointClass;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    policies: BTreeMap<String, RawPolicy>,
    oidc: Option<super::oidc::RawOidc>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    upstream: Option<String>,
    idle_timeout: Option<toml::Value>,
    connect_timeout: Option<toml::Value>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    tls_client_crl: Option<Vec<PathBuf>>,
    allow_plaintext: Option<bool>,
    metrics_listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    path: Option<PathBuf>,
    max_bytes: Option<toml::Value>,
    keep: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    endpoints: Option<Vec<String>>,
    models: Option<Vec<String>>,
    tools: Option<bool>,
    images: Option<bool>,
    cloud: Option<bool>,
    max_num_ctx: Option<toml::Value>,
    max_num_predict: Option<toml::Value>,
    max_keep_alive: Option<toml::Value>,
    min_keep_alive: Option<toml::Value>,
    max_body_bytes: Option<toml::Value>,
    max_requests_per_minute: Option<toml::Value>,
    max_concurrent_requests: Option<toml::Value>,
    max_tokens_per_hour: Option<toml::Value>,
    max_tokens_per_day: Option<toml::Value>,
    client_cert_names: Option<Vec<String>>,
}

/// What a listen address looks like, for messages about one that is not.
pub(crate) const LISTEN_HINT: &str =
    "expected an IP address and a port such as \"127.0.0.1:11435\" \
     or \"[::1]:11435\" (host names such as localhost are not resolved)";

/// Longest policy name accepted.
const MAX_POLICY_NAME: usize = 64;

pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| from_toml_error(text, &e))?;
    let mut config = Config::builtin();
    config.server = server(raw.server)?;
    config.audit = audit(raw.audit)?;
    for (name, rp) in raw.policies {
        let p = policy(&name, rp)?;
        config.policies.insert(name, Arc::new(p));
    }
    if let Some(o) = raw.oidc {
        config.oidc = Some(Arc::new(super::oidc::section(o, &config.policies)?));
    }
    Ok(config)
}

fn server(raw: RawServer) -> Result<ServerSection, ConfigError> {
    let mut s = ServerSection::default();
    if let Some(listen) = raw.listen {
        let addr = listen.trim().parse().map_err(|_| {
            ConfigError::at(
                "server.listen",
                format!("invalid socket address {}: {LISTEN_HINT}", quoted(&listen)),
            )
        })?;
        s.listen = Some(addr);
    }
    if let Some(listen) = raw.metrics_listen {
        let addr = listen.trim().parse().map_err(|_| {
            ConfigError::at(
                "server.metrics_listen",
                format!("invalid socket address {}: {LISTEN_HINT}", quoted(&listen)),
            )
        })?;
        s.metrics_listen = Some(addr);
    }
    if let Some(up) = raw.upstream {
        let addr = UpstreamAddr::parse(&up).map_err(|m| {
            ConfigError::at(
                "server.upstream",
                format!("invalid URL {}: {m}", quoted(&up)),
            )
        })?;
        s.upstream = Some(addr);
    }
    if let Some(v) = raw.idle_timeout {
        s.idle_timeout = Some(timeout("server.idle_timeout", &v)?);
    }
    if let Some(v) = raw.connect_timeout {
        s.connect_timeout = Some(timeout("server.connect_timeout", &v)?);
    }
    match (&raw.tls_cert, &raw.tls_key) {
        (Some(_), None) => {
            return Err(ConfigError::at(
                "server.tls_key",
                "required when server.tls_cert is set",
            ))
        }
        (None, Some(_)) => {
            return Err(ConfigError::at(
                "server.tls_cert",
                "required when server.tls_key is set",
            ))
        }
        _ => {}
    }
    for (key, path) in [
        ("server.tls_cert", &raw.tls_cert),
        ("server.tls_key", &raw.tls_key),
    ] {
        if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(ConfigError::at(key, "must not be empty"));
        }
    }
    s.tls_cert = raw.tls_cert;
    s.tls_key = raw.tls_key;
    if raw
        .tls_client_ca
        .as_ref()
        .is_some_and(|p| p.as_os_str().is_empty())
    {
        return Err(ConfigError::at("server.tls_client_ca", "must not be empty"));
    }
    s.tls_client_ca = raw.tls_client_ca;
    let crls = raw.tls_client_crl.unwrap_or_default();
    if let Some(i) = crls.iter().position(|p| p.as_os_str().is_empty()) {
        return Err(ConfigError::at(
            format!("server.tls_client_crl[{i}]"),
            "must not be empty",
        ));
    }
    s.tls_client_crl = crls;
    s.allow_plaintext = raw.allow_plaintext.unwrap_or(false);
    Ok(s)
}

fn audit(raw: RawAudit) -> Result<AuditSection, ConfigError> {
    let mut a = AuditSection::default();
    if let Some(p) = raw.path {
        if p.as_os_str().is_empty() {
            return Err(ConfigError::at("audit.path", "must not be empty"));
        }
        a.path = Some(p);
    }
    if let Some(v) = raw.max_bytes {
        a.max_bytes = size("audit.max_bytes", &v)?;
        if a.max_bytes < super::MIN_AUDIT_ROTATE_BYTES {
            return Err(ConfigError::at(
                "audit.max_bytes",
                "must be at least 64KiB (65536 bytes)",
            ));
        }
    }
    if let Some(k) = raw.keep {
        a.keep = usize::try_from(k)
            .ok()
            .filter(|k| (1..=10_000).contains(k))
            .ok_or_else(|| ConfigError::at("audit.keep", "must be an integer from 1 to 10000"))?;
    }
    Ok(a)
}

fn policy(name: &str, raw: RawPolicy) -> Result<Policy, ConfigError> {
    let base = format!("policies.{name}");
    if name.is_empty()
        || name.len() > MAX_POLICY_NAME
        || !name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
    {
        return Err(ConfigError::at(
            format!("policies.{}", sanitize(name)),
            "policy names use only a-z, 0-9, '_' and '-' (at most 64 characters)",
        ));
    }
    let mut p = if name == "admin" {
        Policy::builtin_admin()
    } else {
        Policy::builtin_user()
    };
    p.name = name.to_string();
    if let Some(list) = raw.endpoints {
        p.endpoints = endpoints(&base, &list)?;
    }
    if p.endpoints.is_empty() {
        // A policy that allows nothing is a mistake or a way to disable keys that the audit
        // log would not show as one: revoking is that way.
        return Err(ConfigError::at(
            format!("{base}.endpoints"),
            "empty list allows nothing; to disable a key, revoke it",
        ));
    }
    if let Some(list) = raw.models {
        p.models = list
            .iter()
            .enumerate()
            .map(|(i, m)| {
                ModelPattern::parse(m)
                    .map_err(|e| ConfigError::at(format!("{base}.models[{i}]"), e.to_string()))
            })
            .collect::<Result<_, _>>()?;
    }
    if p.models.is_empty() {
        if let Some(class) = p.endpoints.iter().find(|c| c.names_models()) {
            return Err(ConfigError::at(
                format!("{base}.models"),
                format!(
                    "empty list allows no model, yet the policy allows {class} endpoints, which name models; list the models, or to disable a key, revoke it"
                ),
            ));
        }
    }
    // A model named by its digest is allowed only by `*` (see `model::is_digest_reference`):
    // a pattern spelling one would never allow anything.
    if let Some(i) = p
        .models
        .iter()
        .position(|m| !m.matches_everything() && crate::model::is_digest_reference(m.as_str()))
    {
        return Err(ConfigError::at(
            format!("{base}.models[{i}]"),
            "reads as a model's digest, which only \"*\" (with cloud = true) allows: the gate cannot tell which model a digest names; write the model's name",
        ));
    }
    p.tools = raw.tools.unwrap_or(p.tools);
    p.images = raw.images.unwrap_or(p.images);
    p.cloud = raw.cloud.unwrap_or(p.cloud);
    if !p.cloud {
        // A pattern for cloud models only would never let anything through: a contradiction
        // the operator should hear about, not a silent deny.
        if let Some(i) = p
            .models
            .iter()
            .position(|m| m.literal_tag().is_some_and(crate::model::is_cloud_tag_part))
        {
            return Err(ConfigError::at(
                format!("{base}.models[{i}]"),
                "names a cloud model, which this policy denies (set cloud = true to allow cloud models)",
            ));
        }
    }
    if let Some(v) = raw.max_num_ctx {
        p.max_num_ctx = limit(&format!("{base}.max_num_ctx"), &v, positive_int)?;
    }
    if let Some(v) = raw.max_num_predict {
        p.max_num_predict = limit(&format!("{base}.max_num_predict"), &v, positive_int)?;
    }
    if let Some(v) = raw.max_keep_alive {
        p.max_keep_alive = limit(&format!("{base}.max_keep_alive"), &v, keep_alive_limit)?;
    }
    if let Some(v) = raw.min_keep_alive {
        let path = format!("{base}.min_keep_alive");
        p.min_keep_alive = limit(&path, &v, keep_alive_limit)?;
        if let (Some(min), Some(max)) = (p.min_keep_alive, p.max_keep_alive) {
            if min > max {
                return Err(ConfigError::at(
                    path,
                    format!(
                        "{} is longer than max_keep_alive ({}): no keep_alive could satisfy both",
                        crate::decide::format_go_duration(min),
                        crate::decide::format_go_duration(max)
                    ),
                ));
            }
        }
    }
    if let Some(v) = raw.max_body_bytes {
        p.max_body_bytes = limit(&format!("{base}.max_body_bytes"), &v, size)?;
    }
    for (value, slot, key) in [
        (
            raw.max_requests_per_minute,
            &mut p.max_requests_per_minute,
            "max_requests_per_minute",
        ),
        (
            raw.max_concurrent_requests,
            &mut p.max_concurrent_requests,
            "max_concurrent_requests",
        ),
        (
            raw.max_tokens_per_hour,
            &mut p.max_tokens_per_hour,
            "max_tokens_per_hour",
        ),
        (
            raw.max_tokens_per_day,
            &mut p.max_tokens_per_day,
            "max_tokens_per_day",
        ),
    ] {
        if let Some(v) = value {
            *slot = limit(&format!("{base}.{key}"), &v, allowance)?;
        }
    }
    if let Some(list) = raw.client_cert_names {
        if list.is_empty() {
            return Err(ConfigError::at(
                format!("{base}.client_cert_names"),
                "empty list matches no certificate; list the names, or leave the key out to \
                 bind no names",
            ));
        }
        p.client_cert_names = Some(
            list.iter()
                .enumerate()
                .map(|(i, n)| {
                    CertNamePattern::parse(n).map_err(|e| {
                        ConfigError::at(format!("{base}.client_cert_names[{i}]"), e.to_string())
                    })
                })
                .collect::<Result<_, _>>()?,
        );
    }
    Ok(p)
}

fn endpoints(base: &str, list: &[String]) -> Result<BTreeSet<EndpointClass>, ConfigError> {
    let mut set = BTreeSet::new();
    for (i, e) in list.iter().enumerate() {
        if e == "all" {
            set.extend(EndpointClass::ALL);
        } else if let Some(c) = EndpointClass::parse(e) {
            set.insert(c);
        } else {
            return Err(ConfigError::at(
                format!("{base}.endpoints[{i}]"),
                format!(
                    "unknown endpoint class {} (expected inference, discovery, ops, admin, account or all)",
                    quoted(e)
                ),
            ));
        }
    }
    Ok(set)
}

fn limit<T>(
    path: &str,
    v: &toml::Value,
    parse: fn(&str, &toml::Value) -> Result<T, ConfigError>,
) -> Result<Option<T>, ConfigError> {
    if is_unlimited(v) {
        Ok(None)
    } else {
        parse(path, v).map(Some)
    }
}

fn positive_int(path: &str, v: &toml::Value) -> Result<u64, ConfigError> {
    match v {
        toml::Value::Integer(i) if *i > 0 => Ok(*i as u64),
        _ => Err(ConfigError::at(
            path,
            "must be a positive integer (or \"unlimited\")",
        )),
    }
}

/// Largest allowance accepted: past it, a limit is a typo, not a limit.
const MAX_ALLOWANCE: u64 = 1_000_000_000_000;

fn allowance(path: &str, v: &toml::Value) -> Result<u64, ConfigError> {
    let n = positive_int(path, v)?;
    if n > MAX_ALLOWANCE {
        return Err(ConfigError::at(
            path,
            "must be at most 1000000000000 (or \"unlimited\")",
        ));
    }
    Ok(n)
}

pub(super) fn positive_duration(
    path: &str,
    v: &toml::Value,
) -> Result<std::time::Duration, ConfigError> {
    match duration(path, v)? {
        d if d.is_zero() => Err(ConfigError::at(path, "must be greater than zero")),
        d => Ok(d),
    }
}

/// A duration, zero included.
pub(super) fn duration(path: &str, v: &toml::Value) -> Result<std::time::Duration, ConfigError> {
    parse_duration(v).ok_or_else(|| {
        ConfigError::at(
            path,
            "must be a duration such as \"30s\", \"10m\" or \"1h 30m\", or a number of seconds",
        )
    })
}

/// A timeout: greater than zero and at most [`super::MAX_TIMEOUT`].
fn timeout(path: &str, v: &toml::Value) -> Result<std::time::Duration, ConfigError> {
    let d = positive_duration(path, v)?;
    if d > super::MAX_TIMEOUT {
        return Err(ConfigError::at(path, "must be at most 365d"));
    }
    Ok(d)
}

/// Longest duration Go's `time.Duration` holds (about 292 years): a clamp longer than this
/// would be written as a value Ollama cannot parse.
const GO_MAX_DURATION: std::time::Duration = std::time::Duration::from_nanos(i64::MAX as u64);

fn keep_alive_limit(path: &str, v: &toml::Value) -> Result<std::time::Duration, ConfigError> {
    let d = positive_duration(path, v)?;
    if d > GO_MAX_DURATION {
        return Err(ConfigError::at(
            path,
            "must be at most 2562047h (the longest duration Ollama can read)",
        ));
    }
    Ok(d)
}

fn size(path: &str, v: &toml::Value) -> Result<u64, ConfigError> {
    let n = match v {
        toml::Value::Integer(i) if *i >= 0 => Some(*i as u64),
        toml::Value::String(s) => parse_size(s),
        _ => None,
    };
    match n {
        Some(0) => Err(ConfigError::at(path, "must be greater than zero")),
        Some(n) => Ok(n),
        None => Err(ConfigError::at(
            path,
            "must be a number of bytes or a size such as \"32MiB\" or \"1GB\"",
        )),
    }
}

pub(super) fn quoted(s: &str) -> String {
    format!("\"{}\"", sanitize(s))
}

/// Values echoed in messages: printable ASCII only, bounded, so a hostile file cannot put
/// terminal escapes into the operator's console.
pub(super) fn sanitize(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(80)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if s.chars().count() > 80 {
        out.push_str("...");
    }
    out
}

/// Turns a serde/TOML error into one naming the key path, found from the error's span.
fn from_toml_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let message = readable(e.message().trim());
    let Some(span) = e.span() else {
        return ConfigError::at("", message);
    };
    let line = text
        .get(..span.start.min(text.len()))
        .map(|t| t.matches('\n').count() + 1);
    let mut path = key_path_at(text, span.start).unwrap_or_default();
    // In an inline table (`x = { tools = false, bogus = 1 }`) the span is the table's, and the
    // line's key is the table's own: the unknown key is named only in the message.
    // A table header under an unknown key (`[polices.x]`) names more than the key: the path
    // ends at the unknown key.
    if let Some(field) = unknown_field(&message) {
        let parts: Vec<&str> = path.split('.').collect();
        if let Some(at) = parts.iter().rposition(|p| *p == field) {
            path = parts[..=at].join(".");
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(field);
        }
    }
    ConfigError {
        path,
        message,
        line,
    }
}

/// The key named by serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(field, _)| field)
}

/// serde's messages with the names of this module's structs replaced by what the file has, on
/// one line: TOML's syntax errors come as several (`invalid table header` / `expected ...`),
/// and an error is one line of `corral: ...` on stderr.
fn readable(message: &str) -> String {
    let one_line = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    // Rust's and serde's names for what TOML calls otherwise.
    [
        ("struct RawConfig", "a table"),
        ("struct RawServer", "a table"),
        ("struct RawAudit", "a table"),
        ("struct RawPolicy", "a table"),
        ("struct RawOidc", "a table"),
        ("expected a map", "expected a table"),
        ("expected a sequence", "expected an array"),
        ("expected i64", "expected an integer"),
    ]
    .iter()
    .fold(one_line, |m, (from, to)| m.replace(from, to))
}

/// The dotted key path of the key or value at byte `offset`: the nearest table header above
/// it plus the key on its line (or the key whose multi-line value it is in).
pub(super) fn key_path_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let before = text.get(..offset)?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let mut table: Vec<String> = Vec::new();
    let mut key: Option<String> = None;
    for line in text[..line_start].lines() {
        let t = line.trim();
        if let Some(h) = header(t) {
            table = h;
            key = None;
        } else if let Some(k) = line_key(t) {
            key = Some(k);
        }
    }
    let current = text[line_start..line_end].trim();
    if let Some(h) = header(current) {
        return Some(h.join("."));
    }
    if let Some(k) = line_key(current) {
        key = Some(k);
    }
    let mut parts = table;
    if let Some(k) = key {
        parts.push(k);
    }
    (!parts.is_empty()).then(|| parts.join("."))
}

fn header(line: &str) -> Option<Vec<String>> {
    let inner = line.strip_prefix('[')?;
    let inner = inner.strip_prefix('[').unwrap_or(inner);
    let end = inner.find(']')?;
    Some(dotted(&inner[..end]))
}

fn line_key(line: &str) -> Option<String> {
    if line.starts_with('#') || line.starts_with('[') {
        return None;
    }
    let eq = line.find('=')?;
    let k = dotted(&line[..eq]).join(".");
    (!k.is_empty() && !k.contains(['"', '\'', ',', '{'])).then_some(k)
}

fn dotted(s: &str) -> Vec<String> {
    s.split('.')
        .map(|p| p.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
        .filter(|p| !p.is_empty())
        .collect()
}
