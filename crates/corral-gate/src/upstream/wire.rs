//! HTTP/1.1 on the upstream connection: the request head written, the response head read and
//! how the body that follows it is framed (RFC 9112 §6.3). Pure functions over bytes.

use std::mem::MaybeUninit;

use bytes::{BufMut, BytesMut};
use http::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING,
};
use http::{Method, StatusCode};

/// Largest response head accepted from the upstream.
pub const MAX_HEAD: usize = 64 * 1024;
/// Most header fields in a response head.
const MAX_HEADERS: usize = 128;

/// Why a response head is unusable. Each is a 502 for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("malformed response head")]
    Malformed,
    #[error("response head too large")]
    TooLarge,
    #[error("the upstream switched protocols")]
    Upgrade,
    #[error("conflicting or invalid Content-Length")]
    BadLength,
    #[error("unsupported Transfer-Encoding")]
    BadTransferEncoding,
}

/// How the body after a response head ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Exactly this many bytes (0: no body).
    Length(u64),
    Chunked,
    /// Until the upstream closes the connection.
    Close,
}

/// A parsed response head.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub framing: Framing,
    /// The connection may carry another request once this body has been read.
    pub reusable: bool,
}

/// Writes the request head: request line, `headers` (which carry `Host` and the framing
/// header), blank line.
pub fn encode_request(method: &Method, path: &str, headers: &HeaderMap, out: &mut BytesMut) {
    out.reserve(64 + path.len() + headers.len() * 48);
    out.put_slice(method.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(path.as_bytes());
    out.put_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
}

/// Parses a response head from the front of `buf`. `Ok(None)`: incomplete. On success the head
/// has been taken off `buf`; interim (1xx) responses are skipped.
pub fn parse_response(buf: &mut BytesMut, method: &Method) -> Result<Option<Head>, HeadError> {
    loop {
        // Uninitialised slots: initialising 128 of them would cost more than parsing a head.
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut resp, buf, &mut slots);
        let used = match parsed {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                return if buf.len() > MAX_HEAD {
                    Err(HeadError::TooLarge)
                } else {
                    Ok(None)
                };
            }
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
            Err(_) => return Err(HeadError::Malformed),
        };
        if used > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        let code = resp.code.ok_or(HeadError::Malformed)?;
        let status = StatusCode::from_u16(code).map_err(|_| HeadError::Malformed)?;
        let version = resp.version.ok_or(HeadError::Malformed)?;
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(HeadError::Upgrade);
        }
        if status.is_informational() {
            let _ = buf.split_to(used);
            continue;
        }
        // Names are parsed now (the common ones are constants); values are sliced out of the
        // head once it is frozen, so they share its one allocation instead of copying.
        let base = buf.as_ptr() as usize;
        let mut fields = Vec::with_capacity(resp.headers.len());
        for h in resp.headers.iter() {
            let name =
                HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| HeadError::Malformed)?;
            let start = (h.value.as_ptr() as usize).wrapping_sub(base);
            fields.push((name, start..start + h.value.len()));
        }
        let head = buf.split_to(used).freeze();
        let mut headers = HeaderMap::with_capacity(fields.len());
        for (name, range) in fields {
            if range.end > head.len() {
                return Err(HeadError::Malformed);
            }
            let value = HeaderValue::from_maybe_shared(head.slice(range))
                .map_err(|_| HeadError::Malformed)?;
            headers.append(name, value);
        }
        let framing = framing(method, status, &headers)?;
        let close = version == 0 || has_token(&headers, "close");
        let reusable = !close && framing != Framing::Close;
        return Ok(Some(Head {
            status,
            headers,
            framing,
            reusable,
        }));
    }
}

/// RFC 9112 §6.3, strictly: `Transfer-Encoding` must be exactly `chunked` and may not come with
/// a `Content-Length` (the pair is how responses are smuggled; refused, not repaired); several
/// `Content-Length` values must agree.
fn framing(method: &Method, status: StatusCode, headers: &HeaderMap) -> Result<Framing, HeadError> {
    if method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Length(0));
    }
    let mut te = headers.get_all(TRANSFER_ENCODING).iter().peekable();
    if te.peek().is_some() {
        let mut codings = te.flat_map(|v| v.as_bytes().split(|&b| b == b','));
        let only_chunked = codings
            .next()
            .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"))
            && codings.next().is_none();
        if !only_chunked {
            return Err(HeadError::BadTransferEncoding);
        }
        if headers.contains_key(CONTENT_LENGTH) {
            return Err(HeadError::BadLength);
        }
        return Ok(Framing::Chunked);
    }
    let mut length: Option<u64> = None;
    for v in headers.get_all(CONTENT_LENGTH) {
        for part in v.as_bytes().split(|&b| b == b',') {
            let n = parse_length(part.trim_ascii()).ok_or(HeadError::BadLength)?;
            if length.is_some_and(|l| l != n) {
                return Err(HeadError::BadLength);
            }
            length = Some(n);
        }
    }
    Ok(length.map_or(Framing::Close, Framing::Length))
}

fn parse_length(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

fn has_token(headers: &HeaderMap, token: &str) -> bool {
    headers.get_all(CONNECTION).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn parse(raw: &[u8], method: &Method) -> Result<Option<Head>, HeadError> {
        let mut buf = BytesMut::from(raw);
        parse_response(&mut buf, method)
    }

    fn framing_of(raw: &str) -> Result<(Framing, bool), HeadError> {
        parse(raw.as_bytes(), &Method::POST).map(|h| {
            let h = h.expect("complete head");
            (h.framing, h.reusable)
        })
    }

    #[test]
    fn request_head_is_plain_http_1_1() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("127.0.0.1:11434"));
        h.insert("content-length", HeaderValue::from_static("2"));
        let mut out = BytesMut::new();
        encode_request(&Method::POST, "/api/chat", &h, &mut out);
        assert_eq!(
            &out[..],
            b"POST /api/chat HTTP/1.1\r\nhost: 127.0.0.1:11434\r\ncontent-length: 2\r\n\r\n"
        );
    }

    #[test]
    fn framing_follows_rfc_9112() {
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n"),
            Ok((Framing::Length(12), true))
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\ncontent-length: 3\r\n\r\n"),
            Ok((Framing::Length(3), true))
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"),
            Ok((Framing::Chunked, true))
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nTransfer-Encoding:  Chunked \r\n\r\n"),
            Ok((Framing::Chunked, true))
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\n\r\n"),
            Ok((Framing::Close, false))
        );
        assert_eq!(
            framing_of(
                "HTTP/1.1 200 OK\r\nconnection: keep-alive, close\r\ncontent-length: 0\r\n\r\n"
            ),
            Ok((Framing::Length(0), false))
        );
        assert_eq!(
            framing_of("HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n"),
            Ok((Framing::Length(0), false))
        );
        assert_eq!(
            framing_of("HTTP/1.1 204 No Content\r\ncontent-length: 9\r\n\r\n"),
            Ok((Framing::Length(0), true))
        );
        let head = parse(
            b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n",
            &Method::HEAD,
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.framing, Framing::Length(0));
    }

    #[test]
    fn refuses_ambiguous_framing() {
        for raw in [
            "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: +1\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: \r\n\r\n",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert_eq!(framing_of(raw), Err(HeadError::BadLength), "{raw}");
        }
        for raw in [
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunkedx\r\n\r\n",
        ] {
            assert_eq!(
                framing_of(raw),
                Err(HeadError::BadTransferEncoding),
                "{raw}"
            );
        }
        assert_eq!(
            framing_of("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n"),
            Err(HeadError::Upgrade)
        );
        assert_eq!(
            framing_of("HTTP/1.1 2000 OK\r\n\r\n"),
            Err(HeadError::Malformed)
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nbad header\r\n\r\n"),
            Err(HeadError::Malformed)
        );
        assert_eq!(framing_of("ICY 200 OK\r\n\r\n"), Err(HeadError::Malformed));
    }

    #[test]
    fn header_fields_keep_their_names_order_and_exact_values() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nX-Trace: a\tb \xe9t\xe9\r\nx-trace: second\r\nContent-Length: 2\r\n\r\n{}NEXT"[..],
        );
        let head = parse_response(&mut buf, &Method::POST).unwrap().unwrap();
        assert_eq!(head.headers["content-type"], "application/x-ndjson");
        let traces: Vec<&[u8]> = head
            .headers
            .get_all("x-trace")
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        assert_eq!(traces, [&b"a\tb \xe9t\xe9"[..], &b"second"[..]]);
        assert_eq!(head.framing, Framing::Length(2));
        // The body and what follows stay in the buffer, untouched by the head's values.
        assert_eq!(&buf[..], b"{}NEXT");
        buf.clear();
        buf.extend_from_slice(b"overwritten");
        assert_eq!(head.headers["content-type"], "application/x-ndjson");
        // A control character in a value is not a header value.
        let mut bad = BytesMut::from(&b"HTTP/1.1 200 OK\r\nx: a\x01b\r\n\r\n"[..]);
        assert_eq!(
            parse_response(&mut bad, &Method::POST).err(),
            Some(HeadError::Malformed)
        );
    }

    #[test]
    fn interim_responses_are_skipped_and_the_rest_stays() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: x\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"[..],
        );
        let head = parse_response(&mut buf, &Method::POST).unwrap().unwrap();
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(&buf[..], b"hi");
    }

    #[test]
    fn partial_heads_wait_and_huge_ones_fail() {
        assert!(parse(b"HTTP/1.1 200 OK\r\ncontent-le", &Method::GET)
            .unwrap()
            .is_none());
        let mut huge = b"HTTP/1.1 200 OK\r\n".to_vec();
        while huge.len() <= MAX_HEAD {
            huge.extend_from_slice(b"x-filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert_eq!(parse(&huge, &Method::GET).unwrap_err(), HeadError::TooLarge);
    }
}
