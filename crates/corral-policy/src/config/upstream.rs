//! The upstream address (`server.upstream`, `--upstream`): read here once, for the
//! configuration file and the command line alike, into an [`UpstreamAddr`] the gate uses as is.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Ollama's own port: the port of an upstream written without a scheme and without a port
/// (`localhost`, as `OLLAMA_HOST` is written).
pub const OLLAMA_DEFAULT_PORT: u16 = 11434;

/// Port of an `http://` upstream written without one, as in any URL.
const HTTP_DEFAULT_PORT: u16 = 80;

/// Longest host name (RFC 1035), without a trailing dot.
const MAX_HOST_NAME: usize = 253;

/// Longest label of a host name.
const MAX_LABEL: usize = 63;

/// Where the gate reaches Ollama: a host and a port, spoken to in plain HTTP. The gate builds
/// every path itself, so there is no path, query, fragment or credential to carry.
///
/// Written as `http://host[:port][/]` (port 80 when none is given), or as `OLLAMA_HOST` is
/// written, `host:port` or `host` (port 11434). The host is a name (letters, digits, `-` and
/// `.`, compared lower-case), an IPv4 address, or an IPv6 address in brackets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpstreamAddr {
    /// Lower-case host name, or an IP address in its usual form; IPv6 without brackets.
    host: String,
    port: u16,
}

impl Default for UpstreamAddr {
    /// `http://127.0.0.1:11434`, where Ollama listens by default.
    fn default() -> Self {
        UpstreamAddr {
            host: Ipv4Addr::LOCALHOST.to_string(),
            port: OLLAMA_DEFAULT_PORT,
        }
    }
}

/// Why a text is not an upstream address. The message says what is wrong; the caller adds
/// where the text came from (`server.upstream`, `--upstream`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamAddrError {
    #[error("is empty; expected http://host:port, or host:port or host as OLLAMA_HOST is written")]
    Empty,
    #[error("must not contain spaces or control characters")]
    Whitespace,
    #[error(
        "https upstreams are not supported; run the gate on the Ollama host and reach Ollama \
         over http on loopback"
    )]
    Https,
    #[error(
        "unsupported scheme {0:?}: the scheme must be http; an upstream must start with \
         http:// or be host:port or host, as OLLAMA_HOST is written"
    )]
    Scheme(String),
    #[error("must not contain credentials (user:password@); nothing is sent upstream with them")]
    Credentials,
    #[error(
        "must not contain a path; give only scheme, host and port (the gate chooses every path)"
    )]
    Path,
    #[error("must not contain a query or fragment; give only scheme, host and port")]
    QueryOrFragment,
    #[error("missing host")]
    MissingHost,
    #[error("invalid IPv6 address {0:?}")]
    Ipv6(String),
    #[error("invalid host: an IPv6 address must be written in brackets, as in http://[::1]:11434")]
    Ipv6Brackets,
    #[error("invalid IPv4 address {0:?}")]
    Ipv4(String),
    #[error("invalid host {0:?}: a host name is letters, digits, '-', '_' and '.' (labels of 1 to 63, not starting or ending with '-')")]
    Host(String),
    #[error("invalid port {0:?}: must be a number from 1 to 65535")]
    Port(String),
}

impl UpstreamAddr {
    /// Reads an upstream address as `server.upstream` and `--upstream` take it. Spaces around
    /// the text are ignored.
    pub fn parse(text: &str) -> Result<UpstreamAddr, UpstreamAddrError> {
        let s = text.trim();
        if s.is_empty() {
            return Err(UpstreamAddrError::Empty);
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UpstreamAddrError::Whitespace);
        }
        let (rest, default_port) = match s.split_once("://") {
            Some(("http", rest)) => (rest, HTTP_DEFAULT_PORT),
            Some(("https", _)) => return Err(UpstreamAddrError::Https),
            Some((scheme, _)) => return Err(UpstreamAddrError::Scheme(echo(scheme))),
            None => (s, OLLAMA_DEFAULT_PORT),
        };
        let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
        let (path, query) = tail.split_at(tail.find(['?', '#']).unwrap_or(tail.len()));
        if authority.contains('@') {
            return Err(UpstreamAddrError::Credentials);
        }
        if !(path.is_empty() || path == "/") {
            return Err(UpstreamAddrError::Path);
        }
        if !query.is_empty() {
            return Err(UpstreamAddrError::QueryOrFragment);
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (inside, after) = v6
                .split_once(']')
                .ok_or_else(|| UpstreamAddrError::Ipv6(echo(authority)))?;
            let ip: Ipv6Addr = inside
                .parse()
                .map_err(|_| UpstreamAddrError::Ipv6(echo(inside)))?;
            let port = match after {
                "" => default_port,
                _ => match after.strip_prefix(':') {
                    Some(p) => parse_port(p)?,
                    None => return Err(UpstreamAddrError::Port(echo(after))),
                },
            };
            (ip.to_string(), port)
        } else {
            let (host, port) = match authority.split_once(':') {
                Some((_, p)) if p.contains(':') => return Err(UpstreamAddrError::Ipv6Brackets),
                Some((h, p)) => (h, parse_port(p)?),
                None => (authority, default_port),
            };
            (parse_host(host)?, port)
        };
        Ok(UpstreamAddr { host, port })
    }

    /// The host: a lower-case name or an IP address, without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host as an IP address, when it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// `host:port`, brackets around an IPv6 host: the value of the `Host` header sent upstream.
    pub fn authority(&self) -> String {
        match self.ip() {
            Some(IpAddr::V6(ip)) => format!("[{ip}]:{}", self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }

    /// True when the host is a loopback address (an IPv4-mapped one too) or `localhost`.
    pub fn is_loopback(&self) -> bool {
        match self.ip() {
            Some(ip) => ip.to_canonical().is_loopback(),
            None => self.host == "localhost",
        }
    }
}

impl FromStr for UpstreamAddr {
    type Err = UpstreamAddrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UpstreamAddr::parse(s)
    }
}

impl fmt::Display for UpstreamAddr {
    /// `http://host:port`, which [`UpstreamAddr::parse`] reads back as the same address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}", self.authority())
    }
}

/// Part of the text, as named in a message: at most 64 characters.
fn echo(part: &str) -> String {
    part.chars().take(64).collect()
}

fn parse_port(digits: &str) -> Result<u16, UpstreamAddrError> {
    let bad = || UpstreamAddrError::Port(echo(digits));
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match digits.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(bad()),
    }
}

/// A host outside brackets: an IPv4 address or a host name, lower-cased.
fn parse_host(host: &str) -> Result<String, UpstreamAddrError> {
    if host.is_empty() {
        return Err(UpstreamAddrError::MissingHost);
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(ip.to_string());
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let label_ok = |l: &str| {
        (1..=MAX_LABEL).contains(&l.len())
            // `_` too: Docker's embedded DNS resolves container names such as `ollama_1`.
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || name.len() > MAX_HOST_NAME || !name.split('.').all(label_ok) {
        return Err(UpstreamAddrError::Host(echo(host)));
    }
    // A name whose last label is a number would be read as an IPv4 address in one of the old
    // short forms (`127.1`) by the resolver: only the four-part form is taken.
    if name
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(UpstreamAddrError::Ipv4(echo(host)));
    }
    // Without the final dot of a fully qualified name: it names the same host, and Ollama's
    // check of the `Host` header (on a loopback listener) refuses `localhost.` but not
    // `localhost`.
    Ok(name.to_ascii_lowercase())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
