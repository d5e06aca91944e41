//! A deliberately small HTTP/1.1 client, every read bounded in bytes and time, because the
//! servers on the other end may be hostile. The requests of one endpoint's fingerprint share a
//! keep-alive connection ([`Session`]) where the server allows it: a fresh TCP (and TLS)
//! handshake per request would cost more than the requests themselves.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::tls::TlsContext;

/// Header bytes accepted before the body cap applies.
pub const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 100;

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub connect_timeout: Duration,
    /// Whole exchange: connect, TLS, write, read.
    pub request_timeout: Duration,
    pub max_body: usize,
    /// Extra attempts after a timeout (never after any other failure).
    pub retries: u32,
    pub user_agent: String,
    /// Caps new connections per second across the whole scan.
    pub pacer: Option<Arc<Pacer>>,
}

/// Spaces connection attempts evenly: each caller reserves the next free slot.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next: std::sync::Mutex<tokio::time::Instant>,
}

impl Pacer {
    pub fn per_second(rate: u32) -> Option<Arc<Pacer>> {
        (rate > 0).then(|| {
            Arc::new(Pacer {
                interval: Duration::from_secs(1) / rate,
                next: std::sync::Mutex::new(tokio::time::Instant::now()),
            })
        })
    }

    pub async fn wait(&self) {
        let slot = match self.next.lock() {
            Ok(mut next) => {
                let now = tokio::time::Instant::now();
                let slot = (*next).max(now);
                *next = slot + self.interval;
                slot
            }
            Err(_) => return,
        };
        tokio::time::sleep_until(slot).await;
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(5),
            max_body: 512 * 1024,
            retries: 1,
            user_agent: crate::USER_AGENT.to_string(),
            pacer: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("connection refused")]
    Refused,
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("timed out")]
    Timeout,
    #[error("i/o error: {0}")]
    Io(String),
    #[error("empty reply")]
    Empty,
    #[error("reply looks like TLS")]
    TlsLooking,
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    #[error("malformed HTTP response: {0}")]
    Malformed(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body hit the size cap and was cut.
    pub truncated: bool,
    /// Certificate verification failure, recorded rather than fatal.
    pub cert_error: Option<String>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Where to send a request.
#[derive(Debug, Clone, Copy)]
pub struct Conn<'a> {
    pub ip: IpAddr,
    pub port: u16,
    pub host: Option<&'a str>,
    pub tls: bool,
}

fn host_header(c: &Conn<'_>) -> String {
    let host = match (c.host, c.ip) {
        (Some(h), _) => h.to_string(),
        (None, IpAddr::V6(a)) => format!("[{a}]"),
        (None, IpAddr::V4(a)) => a.to_string(),
    };
    let default = if c.tls { 443 } else { 80 };
    if c.port == default {
        host
    } else {
        format!("{host}:{}", c.port)
    }
}

pub fn build_request(
    cfg: &HttpConfig,
    c: &Conn<'_>,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    keep_alive: bool,
) -> Vec<u8> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nAccept: */*\r\nConnection: {}\r\n",
        host_header(c),
        cfg.user_agent,
        if keep_alive { "keep-alive" } else { "close" }
    )
    .into_bytes();
    if let Some(b) = body {
        req.extend_from_slice(
            format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                b.len()
            )
            .as_bytes(),
        );
        req.extend_from_slice(b);
    } else {
        req.extend_from_slice(b"\r\n");
    }
    req
}

/// An open connection kept between the requests of one endpoint.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>, Option<String>),
}

/// The keep-alive connection of one endpoint's probe. Requests through it are sequential; a
/// connection the server closed or cut is replaced by a fresh one.
#[derive(Default)]
pub struct Session {
    idle: std::sync::Mutex<Option<Stream>>,
}

impl Session {
    fn take(&self) -> Option<Stream> {
        self.idle.lock().ok().and_then(|mut g| g.take())
    }
    fn put(&self, s: Stream) {
        if let Ok(mut g) = self.idle.lock() {
            *g = Some(s);
        }
    }
}

/// Sends one request, retrying only when it timed out. With a `session`, an idle connection
/// left by the previous request is used first, and the connection is left there for the next.
pub async fn request(
    cfg: &HttpConfig,
    tls: &TlsContext,
    c: &Conn<'_>,
    session: Option<&Session>,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> Result<Response, HttpError> {
    let keep_alive = session.is_some();
    let req = build_request(cfg, c, method, path, body, keep_alive);
    let head = method == "HEAD";
    if let Some(stream) = session.and_then(Session::take) {
        // The tls flag may have changed since the connection was opened (plain HTTP answered
        // "use TLS"): only a connection of the same kind is reused.
        if matches!(stream, Stream::Tls(..)) == c.tls {
            let r =
                tokio::time::timeout(cfg.request_timeout, on_stream(cfg, stream, &req, head)).await;
            match r {
                Ok(Ok((resp, back))) => {
                    if let (Some(s), Some(back)) = (session, back) {
                        s.put(back);
                    }
                    return Ok(resp);
                }
                // A server that hangs on a reused connection is slow, not gone.
                Err(_) if cfg.retries == 0 => return Err(HttpError::Timeout),
                // Closed while idle, or cut: a fresh connection below.
                _ => {}
            }
        }
    }
    let mut attempt = 0;
    loop {
        // Waiting for a slot is not the server's fault, so it is outside the timeout.
        if let Some(p) = &cfg.pacer {
            p.wait().await;
        }
        let r = tokio::time::timeout(cfg.request_timeout, once(cfg, tls, c, &req, head)).await;
        match r.unwrap_or(Err(HttpError::Timeout)) {
            Err(HttpError::Timeout) if attempt < cfg.retries => attempt += 1,
            Ok((resp, back)) => {
                if let (Some(s), Some(back), true) = (session, back, keep_alive) {
                    s.put(back);
                }
                return Ok(resp);
            }
            Err(e) => return Err(e),
        }
    }
}

async fn on_stream(
    cfg: &HttpConfig,
    stream: Stream,
    req: &[u8],
    head: bool,
) -> Result<(Response, Option<Stream>), HttpError> {
    let limit = MAX_HEAD + cfg.max_body;
    match stream {
        Stream::Plain(mut s) => {
            let (resp, reuse) = exchange(&mut s, req, head, limit).await?;
            Ok((resp, reuse.then_some(Stream::Plain(s))))
        }
        Stream::Tls(mut s, cert) => {
            let (mut resp, reuse) = exchange(&mut *s, req, head, limit).await?;
            resp.cert_error.clone_from(&cert);
            Ok((resp, reuse.then_some(Stream::Tls(s, cert))))
        }
    }
}

async fn once(
    cfg: &HttpConfig,
    tls: &TlsContext,
    c: &Conn<'_>,
    req: &[u8],
    head: bool,
) -> Result<(Response, Option<Stream>), HttpError> {
    let addr = SocketAddr::new(c.ip, c.port);
    let tcp = match tokio::time::timeout(cfg.connect_timeout, connect(addr)).await {
        Err(_) => return Err(HttpError::Timeout),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(HttpError::Refused)
        }
        Ok(Err(e)) => return Err(HttpError::Connect(e.kind().to_string())),
        Ok(Ok(s)) => s,
    };
    let _ = tcp.set_nodelay(true);
    if c.tls {
        let (stream, cert) = tls.connect(tcp, c.ip, c.host).await?;
        let cert = cert.lock().map(|g| g.clone()).unwrap_or(None);
        on_stream(cfg, Stream::Tls(Box::new(stream), cert), req, head).await
    } else {
        on_stream(cfg, Stream::Plain(tcp), req, head).await
    }
}

/// A non-blocking connect that notices a refusal the kernel already has (a closed port on a
/// nearby host answers RST at once) without registering the socket with the reactor: most
/// targets of a sweep are closed, and that registration was a third of their system time.
async fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_nonblocking(true)?;
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc_einprogress()) => {
            if let Some(e) = sock.take_error()? {
                return Err(e);
            }
        }
        Err(e) => return Err(e),
    }
    let stream = TcpStream::from_std(std::net::TcpStream::from(sock))?;
    stream.writable().await?;
    match stream.take_error()? {
        Some(e) => Err(e),
        None => Ok(stream),
    }
}

/// `EINPROGRESS` on Linux (115) and the BSDs/macOS (36).
fn libc_einprogress() -> i32 {
    if cfg!(target_os = "linux") || cfg!(target_os = "android") {
        115
    } else {
        36
    }
}

#[derive(Clone, Copy)]
enum BodyLen {
    None,
    Exact(usize),
    Chunked,
    UntilClose,
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn body_len(head: &[u8], head_only: bool) -> BodyLen {
    let text = String::from_utf8_lossy(head);
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if head_only || (100..200).contains(&status) || status == 204 || status == 304 {
        return BodyLen::None;
    }
    for line in text.lines().skip(1) {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
        {
            return BodyLen::Chunked;
        }
        if k.eq_ignore_ascii_case("content-length") {
            if let Ok(n) = v.parse() {
                return BodyLen::Exact(n);
            }
        }
    }
    BodyLen::UntilClose
}

/// Writes `req` and reads one response. The flag says whether the connection can carry another
/// request: the response ended where its framing said, and the server did not ask to close.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    req: &[u8],
    head_only: bool,
    limit: usize,
) -> Result<(Response, bool), HttpError> {
    s.write_all(req)
        .await
        .map_err(|e| HttpError::Io(e.kind().to_string()))?;
    s.flush()
        .await
        .map_err(|e| HttpError::Io(e.kind().to_string()))?;
    let mut buf: Vec<u8> = Vec::with_capacity(2048);
    let mut chunk = [0u8; 8192];
    let mut framing: Option<(usize, BodyLen)> = None;
    let mut truncated = false;
    let mut complete = false;
    loop {
        let n = match s.read(&mut chunk).await {
            Ok(n) => n,
            // A reset after a complete reply is common from servers that close abruptly.
            Err(_) if !buf.is_empty() => 0,
            Err(e) => return Err(HttpError::Io(e.kind().to_string())),
        };
        if n == 0 {
            break;
        }
        let data = chunk.get(..n).unwrap_or(&[]);
        if buf.is_empty() && matches!(data.first(), Some(0x15 | 0x16)) {
            return Err(HttpError::TlsLooking);
        }
        let room = limit.saturating_sub(buf.len());
        if n > room {
            buf.extend_from_slice(data.get(..room).unwrap_or(&[]));
            truncated = true;
            break;
        }
        buf.extend_from_slice(data);
        if framing.is_none() {
            if let Some(end) = find_head_end(&buf) {
                framing = Some((end, body_len(buf.get(..end).unwrap_or(&[]), head_only)));
            } else if buf.len() > MAX_HEAD {
                return Err(HttpError::Malformed("header too large"));
            }
        }
        let done = match framing {
            Some((_, BodyLen::None)) => true,
            Some((end, BodyLen::Exact(n))) => buf.len() >= end.saturating_add(n),
            // Every complete chunked body ends with CRLF; only then is it walked.
            Some((end, BodyLen::Chunked)) => {
                buf.ends_with(b"\r\n") && chunked_len(buf.get(end..).unwrap_or(&[])).is_some()
            }
            _ => false,
        };
        if done {
            complete = true;
            break;
        }
    }
    if buf.is_empty() {
        return Err(HttpError::Empty);
    }
    let mut resp = parse_response(&buf, head_only)?;
    resp.truncated |= truncated;
    let exact = framing.is_some_and(|(end, len)| match len {
        BodyLen::Exact(n) => buf.len() == end.saturating_add(n),
        BodyLen::None => buf.len() == end,
        BodyLen::Chunked => chunked_len(buf.get(end..).unwrap_or(&[])) == Some(buf.len() - end),
        BodyLen::UntilClose => false,
    });
    let reuse = complete && exact && !resp.truncated && keeps_alive(&buf, &resp);
    Ok((resp, reuse))
}

/// HTTP/1.1 keeps the connection unless told otherwise; HTTP/1.0 only when told to.
fn keeps_alive(buf: &[u8], resp: &Response) -> bool {
    let conn = resp.header("connection").map(str::to_ascii_lowercase);
    if buf.starts_with(b"HTTP/1.1") {
        !conn.is_some_and(|c| c.contains("close"))
    } else {
        conn.is_some_and(|c| c.contains("keep-alive"))
    }
}

/// Parses a complete or cut-off HTTP/1.x response. Pure, so it can be fuzzed.
pub fn parse_response(buf: &[u8], head_only: bool) -> Result<Response, HttpError> {
    if !buf.starts_with(b"HTTP/") {
        return Err(HttpError::Malformed("no status line"));
    }
    let (head, rest, complete_head) = match find_head_end(buf) {
        Some(end) => (
            buf.get(..end).unwrap_or(&[]),
            buf.get(end..).unwrap_or(&[]),
            true,
        ),
        None => (buf, &[][..], false),
    };
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..1000).contains(s))
        .ok_or(HttpError::Malformed("bad status"))?;
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        if headers.len() >= MAX_HEADERS {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().chars().take(1024).collect()));
        }
    }
    let mut resp = Response {
        status,
        headers,
        truncated: !complete_head,
        ..Response::default()
    };
    if head_only {
        return Ok(resp);
    }
    match body_len(head, false) {
        BodyLen::Chunked => {
            let (body, ok) = dechunk(rest);
            resp.body = body;
            resp.truncated |= !ok;
        }
        BodyLen::Exact(n) => {
            resp.truncated |= rest.len() < n;
            resp.body = rest.get(..n.min(rest.len())).unwrap_or(&[]).to_vec();
        }
        BodyLen::None => {}
        BodyLen::UntilClose => resp.body = rest.to_vec(),
    }
    Ok(resp)
}

/// The length of the complete chunked body (last chunk and trailer section included) at the
/// start of `rest`, or `None` while it is incomplete or when it is not chunked encoding. Walks
/// chunk headers only, so a chunk whose data ends in `0\r\n\r\n` does not end the body.
pub(crate) fn chunked_len(rest: &[u8]) -> Option<usize> {
    let mut at = 0usize;
    loop {
        let (size, head) = chunk_header(rest.get(at..)?)?;
        at += head;
        if size == 0 {
            // Trailer fields, then an empty line.
            loop {
                let eol = line_end(rest.get(at..)?)?;
                at += eol + 2;
                if eol == 0 {
                    return Some(at);
                }
            }
        }
        at = at.checked_add(size)?.checked_add(2)?;
        if rest.get(at - 2..at)? != b"\r\n" {
            return None;
        }
    }
}

/// Where the first CRLF in `b` starts.
fn line_end(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

/// The chunk header (`SIZE[;ext]\r\n`) at the start of `rest`: the chunk's size and the
/// header's length with its CRLF.
fn chunk_header(rest: &[u8]) -> Option<(usize, usize)> {
    let eol = line_end(rest)?;
    let text = std::str::from_utf8(rest.get(..eol)?).ok()?;
    let size = usize::from_str_radix(text.split(';').next().unwrap_or("").trim(), 16).ok()?;
    Some((size, eol + 2))
}

/// Decodes chunked encoding; returns what could be decoded and whether it ended cleanly.
pub(crate) fn dechunk(mut rest: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some((size, head)) = chunk_header(rest) else {
            return (out, false);
        };
        rest = rest.get(head..).unwrap_or(&[]);
        if size == 0 {
            return (out, true);
        }
        let Some(data) = rest.get(..size) else {
            out.extend_from_slice(rest);
            return (out, false);
        };
        out.extend_from_slice(data);
        rest = rest.get(size + 2..).unwrap_or(&[]);
    }
}

/// Shared state a fingerprint run carries to its requests.
#[derive(Clone)]
pub struct Client {
    pub cfg: Arc<HttpConfig>,
    pub tls: Arc<TlsContext>,
}

impl Client {
    pub async fn get(
        &self,
        c: &Conn<'_>,
        session: Option<&Session>,
        path: &str,
    ) -> Result<Response, HttpError> {
        request(&self.cfg, &self.tls, c, session, "GET", path, None).await
    }
    pub async fn head(
        &self,
        c: &Conn<'_>,
        session: Option<&Session>,
        path: &str,
    ) -> Result<Response, HttpError> {
        request(&self.cfg, &self.tls, c, session, "HEAD", path, None).await
    }
    pub async fn post_json(
        &self,
        c: &Conn<'_>,
        session: Option<&Session>,
        path: &str,
        body: &[u8],
    ) -> Result<Response, HttpError> {
        request(&self.cfg, &self.tls, c, session, "POST", path, Some(body)).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_chunked_and_close_delimited() {
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhelloEXTRA",
            false,
        )
        .unwrap();
        assert_eq!(
            (r.status, r.body.as_slice(), r.truncated),
            (200, &b"hello"[..], false)
        );
        assert_eq!(r.header("x-a"), Some("b"));
        let r = parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n", false).unwrap();
        assert_eq!((r.body.as_slice(), r.truncated), (&b"abcde"[..], false));
        let r = parse_response(b"HTTP/1.0 404 Not Found\r\n\r\nbye", false).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, &b"bye"[..]));
        let r =
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort", false).unwrap();
        assert!(r.truncated);
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            false,
        )
        .unwrap();
        assert!(r.truncated);
    }

    #[test]
    fn chunked_length_walks_chunk_headers() {
        assert_eq!(chunked_len(b"3\r\nabc\r\n0\r\n\r\n"), Some(13));
        assert_eq!(chunked_len(b"0;ext=1\r\n\r\n"), Some(11));
        assert_eq!(chunked_len(b"0\r\nX-T: 1\r\n\r\nNEXT"), Some(13));
        // Data that looks like the last chunk is data.
        assert_eq!(chunked_len(b"5\r\nab0\r\n\r\n"), None);
        assert_eq!(chunked_len(b"4\r\nx0\r\n\r\n"), None);
        assert_eq!(chunked_len(b"0\r\nX-T: 1\r\n"), None);
        assert_eq!(chunked_len(b"3\r\nabcXY0\r\n\r\n"), None);
        assert_eq!(chunked_len(b"zz\r\n"), None);
        assert_eq!(chunked_len(b"ffffffffffffffffff\r\n"), None);
        assert_eq!(chunked_len(b""), None);
    }

    #[tokio::test]
    async fn a_chunked_body_ends_where_its_last_chunk_says() {
        use tokio::io::AsyncWriteExt;
        let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        let cases: [(&[&str], &[u8]); 3] = [
            // A read that ends with data looking like the last chunk is not the end.
            (&["4\r\nx0\r\n\r\n", "3\r\nyz!\r\n0\r\n\r\n"], b"x0\r\nyz!"),
            // A last chunk with an extension, and one with a trailer, are the end.
            (&["2\r\nok\r\n0;done\r\n\r\n"], b"ok"),
            (&["2\r\nok\r\n0\r\nX-T: 1\r\n", "\r\n"], b"ok"),
        ];
        for (pieces, body) in cases {
            let (mut client, mut server) = tokio::io::duplex(1 << 16);
            let pieces: Vec<String> = pieces.iter().map(|p| p.to_string()).collect();
            let head = head.to_string();
            // The server keeps the connection open: only the framing can end the exchange.
            let writer = tokio::spawn(async move {
                let mut req = [0u8; 64];
                let _ = tokio::io::AsyncReadExt::read(&mut server, &mut req).await;
                server.write_all(head.as_bytes()).await.unwrap();
                for p in pieces {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    server.write_all(p.as_bytes()).await.unwrap();
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
                drop(server);
            });
            let (resp, reuse) = tokio::time::timeout(
                Duration::from_secs(2),
                exchange(&mut client, b"GET / HTTP/1.1\r\n\r\n", false, 1 << 20),
            )
            .await
            .expect("the framing ends the exchange")
            .unwrap();
            assert_eq!(resp.body, body);
            assert!(!resp.truncated);
            assert!(
                reuse,
                "a complete chunked reply leaves the connection usable"
            );
            writer.abort();
        }
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(
            parse_response(b"SSH-2.0-OpenSSH\r\n", false),
            Err(HttpError::Malformed("no status line"))
        );
        assert_eq!(
            parse_response(b"HTTP/1.1 abc\r\n\r\n", false),
            Err(HttpError::Malformed("bad status"))
        );
        assert!(parse_response(b"HTTP/1.1 200", false).is_ok_and(|r| r.truncated));
    }

    #[tokio::test]
    async fn pacer_spaces_connections() {
        assert!(Pacer::per_second(0).is_none());
        let p = Pacer::per_second(20).unwrap();
        let t = tokio::time::Instant::now();
        for _ in 0..5 {
            p.wait().await;
        }
        // Slots at 0, 50, 100, 150, 200 ms.
        assert!(
            t.elapsed() >= Duration::from_millis(195),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn requests_name_corral_and_close() {
        let cfg = HttpConfig::default();
        let c = Conn {
            ip: "::1".parse().unwrap(),
            port: 11434,
            host: None,
            tls: false,
        };
        let req = String::from_utf8(build_request(
            &cfg,
            &c,
            "POST",
            "/api/show",
            Some(b"{}"),
            false,
        ))
        .unwrap();
        assert!(req.starts_with("POST /api/show HTTP/1.1\r\nHost: [::1]:11434\r\n"));
        assert!(req.contains(&format!(
            "User-Agent: corral-scan/{}\r\n",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(
            req.contains("Connection: close\r\n") && req.ends_with("Content-Length: 2\r\n\r\n{}")
        );
    }
}
