//! Which headers cross the gate. Both directions are allow-lists: a header not named here is
//! dropped, so credentials, cookies, proxy headers and hop-by-hop headers never pass.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::Authority;
use http::{Uri, Version};

/// Request headers copied from the client to the upstream.
const REQUEST_ALLOW: [HeaderName; 3] = [header::CONTENT_TYPE, header::ACCEPT, header::USER_AGENT];

/// Response headers copied from the upstream to the client. `content-length` is handled apart
/// because it is only valid while the body is passed unchanged.
const RESPONSE_ALLOW: [HeaderName; 8] = [
    header::CONTENT_TYPE,
    header::CONTENT_ENCODING,
    header::CACHE_CONTROL,
    header::CONTENT_DISPOSITION,
    header::ETAG,
    header::LAST_MODIFIED,
    header::EXPIRES,
    header::RETRY_AFTER,
];

/// Headers for the upstream request: the allow-listed client headers that the client did not
/// also name in `Connection` (which marks them hop-by-hop), `Host` set to the upstream, and
/// `Accept-Encoding: identity` so that the usage tap and the listing filter see plain bytes.
pub fn upstream_request_headers(client: &HeaderMap, upstream_host: &HeaderValue) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(REQUEST_ALLOW.len() + 2);
    copy_allowed(client, &mut out, |name| REQUEST_ALLOW.contains(name));
    out.insert(header::HOST, upstream_host.clone());
    out.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    out
}

/// Headers for the client response: allow-listed upstream headers, and `content-length` only
/// when `keep_length` (the body passes unchanged).
pub fn client_response_headers(upstream: &HeaderMap, keep_length: bool) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(RESPONSE_ALLOW.len() + 1);
    copy_allowed(upstream, &mut out, |name| {
        RESPONSE_ALLOW.contains(name) || (keep_length && name == header::CONTENT_LENGTH)
    });
    out
}

/// Appends to `to` every field of `from` whose name is `allowed` and not listed in `from`'s
/// `Connection` header, in order. One pass over the (few) fields rather than a lookup per
/// allowed name; `Connection` is parsed only when there is one.
fn copy_allowed(from: &HeaderMap, to: &mut HeaderMap, allowed: impl Fn(&HeaderName) -> bool) {
    let listed = from.contains_key(header::CONNECTION);
    for (name, value) in from {
        if allowed(name) && !(listed && named_in_connection(from, name)) {
            to.append(name.clone(), value.clone());
        }
    }
}

/// True when the `Connection` header lists `name` (RFC 9110 §7.6.1: such headers are
/// hop-by-hop and must not be forwarded).
pub fn named_in_connection(headers: &HeaderMap, name: &HeaderName) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|v| {
        v.to_str()
            .unwrap_or("")
            .split(',')
            .any(|token| token.trim().eq_ignore_ascii_case(name.as_str()))
    })
}

/// Request framing problems that hyper may let through on some protocol versions:
/// several `Content-Length` values, `Content-Length` together with `Transfer-Encoding`, or a
/// `Transfer-Encoding` other than exactly `chunked` (hyper decodes the chunked layer and would
/// pass, say, `gzip, chunked` bodies on still gzip-coded). Each is a smuggling or evasion
/// signal, so the request is refused rather than interpreted.
///
/// hyper's HTTP/1 parser itself drops `Content-Length` when `Transfer-Encoding` is present
/// (RFC 9112 §6.3: the body is read as chunked and the connection closed afterwards), so on
/// HTTP/1 that pair never reaches this check; differing repeated lengths it refuses itself.
pub fn ambiguous_framing(headers: &HeaderMap) -> bool {
    let mut codings = headers.get_all(header::TRANSFER_ENCODING).iter();
    if let Some(te) = codings.next() {
        if codings.next().is_some() || !te.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked")
        {
            return true;
        }
    }
    let mut lengths = headers.get_all(header::CONTENT_LENGTH).iter();
    let first = lengths.next();
    if lengths.next().is_some() {
        return true;
    }
    if let Some(v) = first {
        if v.as_bytes().contains(&b',') {
            return true;
        }
        if headers.contains_key(header::TRANSFER_ENCODING) {
            return true;
        }
    }
    false
}

/// What is wrong with a request's `Host`, if anything (RFC 9112 §3.2, RFC 9113 §8.3.1): an
/// HTTP/1.1 request must carry exactly one `Host`; no request may carry several; a value must be
/// `host[:port]` (or empty); over HTTP/2 a `Host` must name what `:authority` names. The gate
/// sends the upstream its own `Host`, so this is about refusing requests that other HTTP
/// components could read differently, not about routing.
pub fn host_problem(version: Version, uri: &Uri, headers: &HeaderMap) -> Option<&'static str> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let Some(host) = hosts.next() else {
        return (version == Version::HTTP_11).then_some("an HTTP/1.1 request needs a Host header");
    };
    if hosts.next().is_some() {
        return Some("more than one Host header");
    }
    let value = host.as_bytes();
    if value.is_empty() {
        return None;
    }
    let valid = !value.contains(&b'@')
        && std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.parse::<Authority>().ok())
            .is_some_and(|a| a.as_str().len() == value.len() && numeric_port(&a));
    if !valid {
        return Some("the Host header is not a valid host[:port]");
    }
    match uri.authority() {
        Some(authority)
            if version >= Version::HTTP_2
                && !authority.as_str().as_bytes().eq_ignore_ascii_case(value) =>
        {
            Some("the Host header differs from :authority")
        }
        _ => None,
    }
}

/// True when what follows the host of `authority` is nothing or `:` and digits
/// (`Authority` parsing leaves the port unchecked).
fn numeric_port(authority: &Authority) -> bool {
    match authority.as_str().get(authority.host().len()..) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix(':')
            .is_some_and(|port| port.bytes().all(|b| b.is_ascii_digit())),
        None => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        m
    }

    #[test]
    fn request_headers_drop_credentials_and_hop_by_hop() {
        let client = map(&[
            ("authorization", "Bearer crl_x_y"),
            ("cookie", "a=b"),
            ("proxy-authorization", "Basic eA=="),
            ("x-forwarded-for", "1.2.3.4"),
            ("connection", "keep-alive, user-agent"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("host", "evil.example"),
            ("accept-encoding", "gzip"),
            ("content-type", "application/json"),
            ("accept", "application/x-ndjson"),
            ("user-agent", "ollama-python"),
            ("content-length", "12"),
        ]);
        let host = HeaderValue::from_static("127.0.0.1:11434");
        let out = upstream_request_headers(&client, &host);
        let mut names: Vec<_> = out.keys().map(|k| k.as_str().to_owned()).collect();
        names.sort();
        assert_eq!(names, ["accept", "accept-encoding", "content-type", "host"]);
        assert_eq!(out[header::HOST], "127.0.0.1:11434");
        assert_eq!(out[header::ACCEPT_ENCODING], "identity");
        assert_eq!(out[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn repeated_request_fields_pass_whole_and_in_order() {
        let client = map(&[
            ("accept", "application/x-ndjson"),
            ("authorization", "Bearer crl_x_y"),
            ("accept", "application/json"),
            ("user-agent", "ollama-js"),
        ]);
        let host = HeaderValue::from_static("127.0.0.1:11434");
        let out = upstream_request_headers(&client, &host);
        let accept: Vec<_> = out.get_all(header::ACCEPT).iter().collect();
        assert_eq!(accept, ["application/x-ndjson", "application/json"]);
        assert_eq!(out[header::USER_AGENT], "ollama-js");
        assert!(!out.contains_key(header::AUTHORIZATION));
        assert_eq!(out.len(), 5);
    }

    #[test]
    fn response_headers_are_allow_listed() {
        let up = map(&[
            ("content-type", "application/x-ndjson"),
            ("content-length", "99"),
            ("set-cookie", "s=1"),
            ("connection", "close"),
            ("transfer-encoding", "chunked"),
            ("server", "internal/1.0"),
            ("retry-after", "3"),
        ]);
        let kept = client_response_headers(&up, true);
        assert_eq!(kept.len(), 3);
        assert_eq!(kept[header::CONTENT_LENGTH], "99");
        let altered = client_response_headers(&up, false);
        assert!(!altered.contains_key(header::CONTENT_LENGTH));
        assert!(!altered.contains_key(header::SET_COOKIE));
        assert!(!altered.contains_key(header::SERVER));
    }

    #[test]
    fn response_headers_named_in_connection_stay_behind_and_repeats_pass_whole() {
        let up = map(&[
            ("connection", "keep-alive, ETag"),
            ("etag", "\"v1\""),
            ("cache-control", "no-cache"),
            ("cache-control", "no-store"),
            ("content-type", "application/json"),
        ]);
        let kept = client_response_headers(&up, true);
        assert!(!kept.contains_key(header::ETAG));
        assert!(!kept.contains_key(header::CONNECTION));
        let cache: Vec<_> = kept.get_all(header::CACHE_CONTROL).iter().collect();
        assert_eq!(cache, ["no-cache", "no-store"]);
        assert_eq!(kept[header::CONTENT_TYPE], "application/json");
        assert_eq!(kept.len(), 3);
    }

    #[test]
    fn connection_listed_names_match_case_insensitively() {
        let h = map(&[("connection", "Close, Content-Type")]);
        assert!(named_in_connection(&h, &header::CONTENT_TYPE));
        assert!(!named_in_connection(&h, &header::ACCEPT));
    }

    #[test]
    fn ambiguous_framing_is_detected() {
        assert!(!ambiguous_framing(&map(&[("content-length", "3")])));
        assert!(!ambiguous_framing(&map(&[(
            "transfer-encoding",
            "chunked"
        )])));
        assert!(ambiguous_framing(&map(&[
            ("content-length", "3"),
            ("content-length", "3")
        ])));
        assert!(ambiguous_framing(&map(&[("content-length", "3, 3")])));
        assert!(ambiguous_framing(&map(&[
            ("content-length", "3"),
            ("transfer-encoding", "chunked")
        ])));
        assert!(!ambiguous_framing(&map(&[(
            "transfer-encoding",
            " Chunked "
        )])));
        for te in [
            "gzip, chunked",
            "chunked, chunked",
            "identity",
            "gzip",
            "chunked;x=1",
            "",
        ] {
            assert!(
                ambiguous_framing(&map(&[("transfer-encoding", te)])),
                "{te:?}"
            );
        }
        assert!(ambiguous_framing(&map(&[
            ("transfer-encoding", "gzip"),
            ("transfer-encoding", "chunked")
        ])));
    }

    #[test]
    fn host_is_checked_as_rfc_9112_asks() {
        let uri = Uri::from_static("/api/chat");
        let h11 = Version::HTTP_11;
        assert_eq!(
            host_problem(h11, &uri, &map(&[("host", "127.0.0.1:11435")])),
            None
        );
        assert_eq!(
            host_problem(h11, &uri, &map(&[("host", "gate.example")])),
            None
        );
        assert_eq!(
            host_problem(h11, &uri, &map(&[("host", "[::1]:11435")])),
            None
        );
        assert_eq!(host_problem(h11, &uri, &map(&[("host", "")])), None);
        assert_eq!(host_problem(Version::HTTP_10, &uri, &map(&[])), None);
        assert!(host_problem(h11, &uri, &map(&[])).is_some());
        assert!(host_problem(
            Version::HTTP_10,
            &uri,
            &map(&[("host", "a"), ("host", "a")])
        )
        .is_some());
        for bad in [
            "a b",
            "user@host",
            "x/api/chat",
            "host:port",
            "a?b",
            "a#b",
            "[::1",
        ] {
            assert!(
                host_problem(h11, &uri, &map(&[("host", bad)])).is_some(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn http2_host_must_name_the_authority() {
        let uri = Uri::from_static("http://gate.example:11435/api/chat");
        let h2 = Version::HTTP_2;
        assert_eq!(host_problem(h2, &uri, &map(&[])), None);
        assert_eq!(
            host_problem(h2, &uri, &map(&[("host", "Gate.Example:11435")])),
            None
        );
        assert!(host_problem(h2, &uri, &map(&[("host", "evil.example")])).is_some());
        let no_authority = Uri::from_static("/api/chat");
        assert_eq!(
            host_problem(h2, &no_authority, &map(&[("host", "evil.example")])),
            None
        );
    }
}
