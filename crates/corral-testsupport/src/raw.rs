//! Raw HTTP/1 over TCP, for hostile requests that a well-behaved client refuses to build.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Default limit for one raw exchange.
pub const RAW_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest response the helper keeps.
const MAX_RESPONSE: usize = 4 << 20;

/// What came back for a raw request.
#[derive(Debug, Clone, Default)]
pub struct RawResponse {
    /// e.g. `HTTP/1.1 403 Forbidden`; empty when no response arrived.
    pub status_line: String,
    /// Status code, when a response arrived.
    pub status: Option<u16>,
    /// Header lines (names lower-case), in order.
    pub headers: Vec<(String, String)>,
    /// Body, de-chunked.
    pub body: Vec<u8>,
    /// The server closed the connection without sending a response.
    pub closed_without_response: bool,
    /// Nothing complete arrived within the time limit.
    pub timed_out: bool,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// `(status_line, headers, body)`.
    pub fn into_parts(self) -> (String, Vec<(String, String)>, Vec<u8>) {
        (self.status_line, self.headers, self.body)
    }
}

/// Sends `request` verbatim to `addr` and reads one response, within [`RAW_TIMEOUT`].
pub async fn raw_http(addr: SocketAddr, request: &[u8]) -> std::io::Result<RawResponse> {
    raw_http_timeout(addr, request, RAW_TIMEOUT).await
}

/// As [`raw_http`] with an explicit limit. Only a failed connect is an error; a server that
/// closes or stays silent is reported in the [`RawResponse`].
pub async fn raw_http_timeout(
    addr: SocketAddr,
    request: &[u8],
    timeout: Duration,
) -> std::io::Result<RawResponse> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let (mut rd, mut wr) = stream.into_split();
    let req = request.to_vec();
    // Write concurrently: a server may answer (413) and close before the body is sent.
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&req).await;
        let _ = wr.flush().await;
        wr
    });
    let head_request = request.starts_with(b"HEAD ");
    let mut buf = Vec::new();
    let mut out = RawResponse::default();
    let read = tokio::time::timeout(timeout, async {
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(done) = try_parse(&buf, head_request, &mut out) {
                if done {
                    return;
                }
            }
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    // End of stream: a body framed by close is whatever arrived.
                    let _ = try_parse(&buf, head_request, &mut out);
                    out.closed_without_response = out.status.is_none();
                    return;
                }
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.len() > MAX_RESPONSE {
                        return;
                    }
                }
            }
        }
    })
    .await;
    if read.is_err() {
        let _ = try_parse(&buf, head_request, &mut out);
        out.timed_out = true;
    }
    writer.abort();
    Ok(out)
}

fn is_chunked(out: &RawResponse) -> bool {
    out.header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

/// `None`: headers incomplete. `Some(false)`: headers parsed, body incomplete.
/// `Some(true)`: a complete response is in `out`.
fn try_parse(buf: &[u8], head_request: bool, out: &mut RawResponse) -> Option<bool> {
    let (head_len, code) = parse_head(buf, out)?;
    if (100..200).contains(&code) && code != 101 {
        // Interim response (100 Continue): the real one follows.
        return try_parse(&buf[head_len..], head_request, out);
    }
    let rest = &buf[head_len..];
    if head_request || code == 204 || code == 304 {
        out.body.clear();
        return Some(true);
    }
    if is_chunked(out) {
        return Some(match dechunk(rest) {
            Some(b) => {
                out.body = b;
                true
            }
            None => {
                out.body = rest.to_vec();
                false
            }
        });
    }
    if let Some(len) = out
        .header("content-length")
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        out.body = rest[..rest.len().min(len)].to_vec();
        return Some(rest.len() >= len);
    }
    out.body = rest.to_vec();
    Some(false)
}

fn parse_head(buf: &[u8], out: &mut RawResponse) -> Option<(usize, u16)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end - 4]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default().to_string();
    let code = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())?;
    out.status_line = status_line;
    out.status = Some(code);
    out.headers = lines
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            Some((n.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    Some((end, code))
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_str = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size_str = size_str.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_str, 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        if rest.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_chunked_and_interim() {
        let mut out = RawResponse::default();
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi";
        assert_eq!(try_parse(r, false, &mut out), Some(true));
        assert_eq!(out.body, b"hi");
        let mut out = RawResponse::default();
        let r = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 403 Forbidden\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        assert_eq!(try_parse(r, false, &mut out), Some(true));
        assert_eq!(out.status, Some(403));
        assert_eq!(out.body, b"abc");
        let mut out = RawResponse::default();
        assert_eq!(try_parse(b"HTTP/1.1 200 OK\r\n", false, &mut out), None);
        let mut out = RawResponse::default();
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhi";
        assert_eq!(try_parse(r, false, &mut out), Some(false));
    }
}
