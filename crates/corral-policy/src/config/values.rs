//! Value syntaxes shared by several keys: sizes, durations, the upstream URL.

use std::fmt;
use std::time::Duration;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamScheme {
    Http,
    Https,
}

/// The validated upstream base URL: scheme, host and port, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub scheme: UpstreamScheme,
    /// Host name or IP address; IPv6 addresses without brackets.
    pub host: String,
    pub port: u16,
}

impl Default for Upstream {
    fn default() -> Self {
        Upstream {
            scheme: UpstreamScheme::Http,
            host: "127.0.0.1".to_string(),
            port: 11434,
        }
    }
}

impl Upstream {
    /// Parses `http[s]://host[:port][/]`. Credentials, paths, queries and fragments are
    /// refused: the gate builds every upstream path itself.
    pub fn parse(s: &str) -> Result<Upstream, String> {
        let (scheme, rest) = if let Some(r) = s.strip_prefix("http://") {
            (UpstreamScheme::Http, r)
        } else if let Some(r) = s.strip_prefix("https://") {
            (UpstreamScheme::Https, r)
        } else {
            return Err(
                "must start with http:// (or be host:port or host, as OLLAMA_HOST is written)"
                    .to_string(),
            );
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('@') {
            return Err("must not contain credentials".to_string());
        }
        if authority.contains(['/', '?', '#']) {
            return Err("must not contain a path, query or fragment".to_string());
        }
        let default_port = match scheme {
            UpstreamScheme::Http => 80,
            UpstreamScheme::Https => 443,
        };
        let (host, port, bracketed) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6.find(']').ok_or("unclosed '[' in host")?;
            let host = &v6[..end];
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err("invalid IPv6 address".to_string());
            }
            (host, parse_port(&v6[end + 1..], default_port)?, true)
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, parse_port(&format!(":{p}"), default_port)?, false),
                None => (authority, default_port, false),
            }
        };
        if host.is_empty() {
            return Err("missing host".to_string());
        }
        let host_ok = bracketed
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !host_ok {
            return Err("invalid host".to_string());
        }
        Ok(Upstream {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// `host:port`, with brackets around an IPv6 host; the value for the `Host` header.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// True when the host is a loopback address or `localhost`.
    pub fn is_loopback(&self) -> bool {
        match self.host.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => self.host == "localhost",
        }
    }
}

fn parse_port(s: &str, default: u16) -> Result<u16, String> {
    if s.is_empty() {
        return Ok(default);
    }
    let digits = s.strip_prefix(':').ok_or("invalid port")?;
    match digits.parse::<u16>() {
        Ok(p) if p > 0 && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err("invalid port".to_string()),
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            UpstreamScheme::Http => "http",
            UpstreamScheme::Https => "https",
        };
        write!(f, "{scheme}://{}", self.authority())
    }
}

/// Parses a byte size: digits with an optional unit `B`, `KB`/`MB`/`GB`/`TB` (powers of
/// 1000) or `KiB`/`MiB`/`GiB`/`TiB` (powers of 1024), case-insensitive, optional space.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return None;
    }
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "m" | "mb" => 1000u64.pow(2),
        "g" | "gb" => 1000u64.pow(3),
        "t" | "tb" => 1000u64.pow(4),
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Parses a duration key: a humantime string (`"10m"`, `"1h 30m"`) or integer seconds.
pub(crate) fn parse_duration(v: &toml::Value) -> Option<Duration> {
    match v {
        toml::Value::Integer(i) if *i >= 0 => Some(Duration::from_secs(*i as u64)),
        toml::Value::String(s) => humantime::parse_duration(s.trim()).ok(),
        _ => None,
    }
}

/// The spelling that lifts a limit.
pub(crate) fn is_unlimited(v: &toml::Value) -> bool {
    matches!(v, toml::Value::String(s) if s == "unlimited" || s == "none")
}
