//! `[oidc]`: access tokens from an identity provider, as an alternative to corral keys.

use std::path::PathBuf;
use std::time::Duration;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::raw::{duration, positive_duration, quoted};
use super::{ConfigError, Policy};
use crate::oidc::{Algorithm, ClaimPath};

/// The validated `[oidc]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSection {
    /// `issuer` — the provider's issuer identifier, compared exactly with a token's `iss` and
    /// with the discovery document's `issuer`. `https://`, or `http://` for a loopback host.
    pub issuer: String,
    /// `{issuer}/.well-known/openid-configuration`, one terminating `/` of the issuer
    /// removed first (OpenID Connect Discovery 1.0 §4.1).
    pub discovery: IdpUrl,
    /// `jwks_uri` — the key set's address, which skips discovery; by default the discovery
    /// document's.
    pub jwks_uri: Option<IdpUrl>,
    /// `audience` — a token's `aud` (a string, or an array of them) must hold it.
    pub audience: String,
    /// `algorithms` — the signature algorithms accepted (default RS256, PS256, ES256, ES384,
    /// EdDSA). HMAC (`HS*`) and `none` are refused.
    pub algorithms: Vec<Algorithm>,
    /// `user_claim` — the claim naming the user (default `sub`).
    pub user_claim: ClaimPath,
    /// `roles_claim` — the claim (a string or an array of strings) whose values
    /// `policies` maps (default `groups`).
    pub roles_claim: ClaimPath,
    /// `[oidc.policies]` — claim value → policy name, in the file's order: the first entry
    /// whose value the token carries decides.
    pub policies: Vec<(String, String)>,
    /// `default_policy` — the policy of a token no entry matches; absent, such a token is
    /// refused (403).
    pub default_policy: Option<String>,
    /// `ca_file` — PEM bundle of the CAs trusted for the provider's certificate, instead of
    /// the built-in web roots.
    pub ca_file: Option<PathBuf>,
    /// `leeway` — clock skew allowed on `exp`, `nbf` and `iat` (default 60 s, 0 to 5 min).
    pub leeway: Duration,
    /// `refresh` — how often the key set is fetched again (default 10 min, 30 s to 24 h).
    pub refresh: Duration,
}

impl std::fmt::Display for OidcSection {
    /// One line for `corral config check`, e.g. `issuer=https://id.example.com/realms/ml
    /// audience=corral algorithms=RS256,ES256 user_claim=sub roles_claim=groups
    /// policies=ml-admins:admin,ml-users:user default_policy=none leeway=60s refresh=10m`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algorithms: Vec<&str> = self.algorithms.iter().map(|a| a.as_str()).collect();
        let policies: Vec<String> = self
            .policies
            .iter()
            .map(|(v, p)| format!("{}:{p}", super::raw::sanitize(v)))
            .collect();
        write!(
            f,
            "issuer={} audience={} algorithms={} user_claim={} roles_claim={} policies={} \
             default_policy={} leeway={} refresh={}",
            super::raw::sanitize(&self.issuer),
            super::raw::sanitize(&self.audience),
            algorithms.join(","),
            super::raw::sanitize(self.user_claim.as_str()),
            super::raw::sanitize(self.roles_claim.as_str()),
            if policies.is_empty() {
                "none".to_owned()
            } else {
                policies.join(",")
            },
            self.default_policy.as_deref().unwrap_or("none"),
            humantime::format_duration(self.leeway),
            humantime::format_duration(self.refresh),
        )
    }
}

/// Longest `oidc.leeway`.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// An `http(s)` address of the identity provider: https, or http for a loopback host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpUrl {
    text: String,
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

impl IdpUrl {
    /// Reads an absolute `https://host[:port][/path][?query]` URL (`http://` only for
    /// `localhost`, `127.0.0.0/8` and `[::1]`). No credentials, no fragment.
    pub fn parse(text: &str) -> Result<IdpUrl, String> {
        let (tls, rest) = if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err("must start with https:// (http:// only for a loopback host)".into());
        };
        if text.contains('#') {
            return Err("must not have a fragment".into());
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain spaces or control characters".into());
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.contains('@') {
            return Err("must not carry credentials".into());
        }
        let (host, port) = split_host_port(authority)?;
        let port = port.unwrap_or(if tls { 443 } else { 80 });
        if !tls && !is_loopback_host(&host) {
            return Err("must use https:// (http:// is accepted only for a loopback host)".into());
        }
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        Ok(IdpUrl {
            text: text.to_owned(),
            tls,
            host,
            port,
            path,
        })
    }

    /// The URL as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether it is `https`.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The host: a name, or an IP address without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Path and query, at least `/`.
    pub fn path_and_query(&self) -> &str {
        &self.path
    }

    /// `host[:port]` for the `Host` header (the port only when not the scheme's default).
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl std::fmt::Display for IdpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn split_host_port(authority: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| "has an unclosed '[' in its host".to_owned())?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("has an invalid IPv6 address".into());
        }
        match after {
            "" => (host, None),
            p => (
                host,
                Some(p.strip_prefix(':').ok_or("has junk after its host")?),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'))
    {
        return Err("has no valid host".into());
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or("has an invalid port")?,
        ),
    };
    Ok((host.to_ascii_lowercase(), port))
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOidc {
    issuer: Option<String>,
    jwks_uri: Option<String>,
    audience: Option<String>,
    algorithms: Option<Vec<String>>,
    user_claim: Option<String>,
    roles_claim: Option<String>,
    #[serde(default)]
    policies: InOrder,
    default_policy: Option<String>,
    ca_file: Option<PathBuf>,
    leeway: Option<toml::Value>,
    refresh: Option<toml::Value>,
}

/// A table of strings kept in the file's order (a map would sort it).
#[derive(Debug, Default)]
struct InOrder(Vec<(String, String)>);

impl<'de> Deserialize<'de> for InOrder {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = InOrder;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table of claim values to policy names")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<InOrder, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry::<String, String>()? {
                    pairs.push(pair);
                }
                Ok(InOrder(pairs))
            }
        }
        d.deserialize_map(V)
    }
}

pub(super) fn section(
    raw: RawOidc,
    policies: &std::collections::BTreeMap<String, std::sync::Arc<Policy>>,
) -> Result<OidcSection, ConfigError> {
    let issuer = raw
        .issuer
        .ok_or_else(|| ConfigError::at("oidc.issuer", "required when [oidc] is present"))?;
    let discovery = discovery_url(&issuer).map_err(|m| ConfigError::at("oidc.issuer", m))?;
    let jwks_uri = raw
        .jwks_uri
        .map(|u| IdpUrl::parse(&u).map_err(|m| ConfigError::at("oidc.jwks_uri", m)))
        .transpose()?;
    let audience = raw.audience.filter(|a| !a.is_empty()).ok_or_else(|| {
        ConfigError::at(
            "oidc.audience",
            "required: the audience tokens for corral carry in \"aud\"",
        )
    })?;
    let algorithms = match raw.algorithms {
        None => Algorithm::DEFAULT.to_vec(),
        Some(list) => algorithms(&list)?,
    };
    let claim = |key: &str, v: Option<String>, default: &str| {
        let name = v.unwrap_or_else(|| default.to_owned());
        ClaimPath::parse(&name).ok_or_else(|| {
            ConfigError::at(
                format!("oidc.{key}"),
                "must be a claim name or a dotted path such as \"realm_access.roles\"",
            )
        })
    };
    let user_claim = claim("user_claim", raw.user_claim, "sub")?;
    let roles_claim = claim("roles_claim", raw.roles_claim, "groups")?;
    for (value, policy) in &raw.policies.0 {
        if !policies.contains_key(policy) {
            return Err(ConfigError::at(
                format!("oidc.policies.{}", quoted(value)),
                format!("no policy named {}", quoted(policy)),
            ));
        }
    }
    if let Some(p) = &raw.default_policy {
        if !policies.contains_key(p) {
            return Err(ConfigError::at(
                "oidc.default_policy",
                format!("no policy named {}", quoted(p)),
            ));
        }
    }
    if raw.policies.0.is_empty() && raw.default_policy.is_none() {
        return Err(ConfigError::at(
            "oidc.policies",
            "no token could be given a policy: map claim values to policies, or set oidc.default_policy",
        ));
    }
    if raw
        .ca_file
        .as_ref()
        .is_some_and(|p| p.as_os_str().is_empty())
    {
        return Err(ConfigError::at("oidc.ca_file", "must not be empty"));
    }
    let leeway = match raw.leeway {
        None => Duration::from_secs(60),
        // Zero is allowed: no clock skew tolerated.
        Some(v) => duration("oidc.leeway", &v)?,
    };
    if leeway > MAX_LEEWAY {
        return Err(ConfigError::at("oidc.leeway", "must be at most 5m"));
    }
    let refresh = match raw.refresh {
        None => Duration::from_secs(600),
        Some(v) => positive_duration("oidc.refresh", &v)?,
    };
    if !(Duration::from_secs(30)..=Duration::from_secs(24 * 3600)).contains(&refresh) {
        return Err(ConfigError::at("oidc.refresh", "must be from 30s to 24h"));
    }
    Ok(OidcSection {
        issuer,
        discovery,
        jwks_uri,
        audience,
        algorithms,
        user_claim,
        roles_claim,
        policies: raw.policies.0,
        default_policy: raw.default_policy,
        ca_file: raw.ca_file,
        leeway,
        refresh,
    })
}

/// The discovery document's address for `issuer` (OpenID Connect Discovery 1.0 §4.1): one
/// terminating `/` removed, then `/.well-known/openid-configuration` appended, so
/// `https://x/realms/a/` is discovered at `https://x/realms/a/.well-known/openid-configuration`
/// and still compared exactly, slash and all, with the document's and the tokens' issuer. An
/// issuer has no query and no fragment (§2 of the core spec); one with either would make the
/// appended path part of them.
fn discovery_url(issuer: &str) -> Result<IdpUrl, String> {
    IdpUrl::parse(issuer)?;
    if issuer.contains('?') {
        return Err("must not have a query: an issuer is scheme, host and path only".into());
    }
    let base = issuer.strip_suffix('/').unwrap_or(issuer);
    IdpUrl::parse(&format!("{base}/.well-known/openid-configuration"))
}

fn algorithms(list: &[String]) -> Result<Vec<Algorithm>, ConfigError> {
    if list.is_empty() {
        return Err(ConfigError::at(
            "oidc.algorithms",
            "must name at least one algorithm",
        ));
    }
    let mut out = Vec::new();
    for (i, name) in list.iter().enumerate() {
        let path = format!("oidc.algorithms[{i}]");
        if name.eq_ignore_ascii_case("none") || name.to_ascii_uppercase().starts_with("HS") {
            return Err(ConfigError::at(
                path,
                format!(
                    "{} is refused: unsigned and shared-secret (HMAC) tokens are never accepted",
                    quoted(name)
                ),
            ));
        }
        let alg = Algorithm::parse(name).ok_or_else(|| {
            ConfigError::at(
                &path,
                format!(
                    "unknown algorithm {} (expected RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA)",
                    quoted(name)
                ),
            )
        })?;
        if !out.contains(&alg) {
            out.push(alg);
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
