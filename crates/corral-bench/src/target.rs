//! Parsing the benchmark's target URL; only plain HTTP on loopback is accepted.

use std::net::{SocketAddr, ToSocketAddrs};

use crate::streams::Target;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("not a URL: {0:?}")]
    BadUrl(String),
    #[error("only http:// URLs are supported")]
    Scheme,
    #[error("the URL has no host")]
    NoHost,
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("{0} is not a loopback address: the benchmark stays on this machine")]
    NotLoopback(String),
}

/// `http://HOST[:PORT]/PATH?QUERY` with a host that resolves to a loopback address.
pub fn parse_target(url: &str) -> Result<Target, TargetError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| TargetError::BadUrl(url.to_owned()))?;
    if uri.scheme_str() != Some("http") {
        return Err(TargetError::Scheme);
    }
    let authority = uri.authority().ok_or(TargetError::NoHost)?;
    let host = authority.host().trim_matches(['[', ']']);
    let port = authority.port_u16().unwrap_or(80);
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|_| TargetError::Resolve(host.to_owned()))?
        .collect();
    // Every address must be loopback, so a name cannot smuggle in a remote one.
    let addr = match addrs.first() {
        Some(a) if addrs.iter().all(|a| a.ip().is_loopback()) => *a,
        _ => return Err(TargetError::NotLoopback(host.to_owned())),
    };
    let path = uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    Ok(Target {
        addr,
        host: authority.as_str().to_owned(),
        path,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn loopback_url_with_path_and_query() {
        let t = parse_target("http://127.0.0.1:8080/api/chat?x=1").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(t.host, "127.0.0.1:8080");
        assert_eq!(t.path, "/api/chat?x=1");
    }

    #[test]
    fn ipv6_loopback_and_default_port() {
        let t = parse_target("http://[::1]/").unwrap();
        assert_eq!(t.addr, "[::1]:80".parse().unwrap());
        assert_eq!(t.path, "/");
    }

    #[test]
    fn refuses_remote_and_other_schemes() {
        assert_eq!(
            parse_target("http://192.0.2.1:80/").unwrap_err(),
            TargetError::NotLoopback("192.0.2.1".into())
        );
        assert_eq!(
            parse_target("https://127.0.0.1/").unwrap_err(),
            TargetError::Scheme
        );
        assert_eq!(parse_target("/api/chat").unwrap_err(), TargetError::Scheme);
        assert!(matches!(
            parse_target("http://exa mple/").unwrap_err(),
            TargetError::BadUrl(_)
        ));
    }
}
