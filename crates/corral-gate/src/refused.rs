//! Requests hyper refuses itself. hyper's HTTP/1 parser answers a request head it cannot read
//! (bad syntax, a field name with a space or a control byte, more than 100 fields, more than
//! 64 KiB) with a bare `400` or `431` and no body, and the gate's service never sees the request.
//!
//! [`Watched`] wraps a connection's byte stream. When the first request of an HTTP/1 connection
//! is refused that way, it sends hyper's answer on with a JSON error body in the dialect of the
//! path the request line named, like every other refusal of the gate. Only the first request
//! is answered so: until the service has seen a request, every byte written to the connection
//! is hyper's own, so nothing the gate or the upstream says can be mistaken for hyper's answer.
//! A later request on a kept-alive connection refused by hyper gets hyper's bare answer.
//! HTTP/2 connections (their first bytes are the preface) pass untouched: h2 refuses malformed
//! requests with stream resets, which carry no body.
//!
//! [`ConnWatch`] is what the service and the stream share; after the connection ends the server
//! asks it what was answered and which request line came first, for the audit record. It also
//! counts the connection's requests in flight ([`InFlight`]), so the server can close a
//! connection that has had none for a while, whatever its protocol.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use corral_policy::route::{dialect_for_path, Dialect};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::reply::{error_body, Failure};

/// How many of a connection's first bytes are kept to name its first request.
const FIRST_BYTES: usize = 128;
/// The HTTP/2 connection preface starts so.
const H2_PREFACE_START: &[u8] = b"PRI ";
/// The header line hyper's own answers carry (they have no body).
const EMPTY_LENGTH: &[u8] = b"\r\ncontent-length: 0\r\n";

/// What the service and the byte stream of one connection share.
#[derive(Debug)]
pub struct ConnWatch {
    /// The service has been handed a request on this connection.
    served: AtomicBool,
    /// Status of the answer hyper wrote itself to the first request (0: none seen).
    answered: AtomicU16,
    /// The request line of that first request.
    first: Mutex<Option<FirstLine>>,
    /// When the connection opened (after its TLS handshake).
    opened: Instant,
    /// Requests handed to the service whose response has not ended.
    in_flight: AtomicUsize,
    /// Milliseconds after `opened` at which the last request ended (0: none has).
    idle_since_ms: AtomicU64,
    /// The connection is to be closed once no request is in flight (a client certificate
    /// that stopped being valid).
    closing: AtomicBool,
    closing_now: tokio::sync::Notify,
}

impl Default for ConnWatch {
    fn default() -> Self {
        ConnWatch {
            served: AtomicBool::new(false),
            answered: AtomicU16::new(0),
            first: Mutex::new(None),
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            closing_now: tokio::sync::Notify::new(),
        }
    }
}

/// A request of the connection in flight: from when the service is handed it until its
/// response body is dropped (or, with no response, its future is).
#[derive(Debug)]
pub struct InFlight(Arc<ConnWatch>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let since = u64::try_from(self.0.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.idle_since_ms.store(since, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Release);
    }
}

impl ConnWatch {
    /// Called by the service for every request it is handed; the request counts as in flight
    /// until the returned guard is dropped.
    pub fn serving(self: &Arc<Self>) -> InFlight {
        self.served.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Acquire);
        InFlight(Arc::clone(self))
    }

    /// How long the connection has had no request in flight (since it opened, or since its
    /// last request ended); `None` while one is.
    pub fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = Duration::from_millis(self.idle_since_ms.load(Ordering::Relaxed));
        Some(self.opened.elapsed().saturating_sub(since))
    }

    /// Asks for the connection to be closed once its requests in flight have ended.
    pub fn close_soon(&self) {
        self.closing.store(true, Ordering::Relaxed);
        self.closing_now.notify_one();
    }

    /// Whether [`ConnWatch::close_soon`] was called.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// Resolves once [`ConnWatch::close_soon`] has been called.
    pub async fn closing(&self) {
        if !self.is_closing() {
            self.closing_now.notified().await;
        }
    }

    /// Whether the service has been handed any request on this connection.
    pub fn served(&self) -> bool {
        self.served.load(Ordering::Relaxed)
    }

    /// The status hyper answered the connection's first request with, if it answered it
    /// itself.
    pub fn answered(&self) -> Option<u16> {
        match self.answered.load(Ordering::Relaxed) {
            0 => None,
            s => Some(s),
        }
    }

    /// The request line of the first request, when hyper answered it itself.
    pub fn first_line(&self) -> Option<FirstLine> {
        self.first.lock().ok().and_then(|first| first.clone())
    }
}

/// The first request line of a connection, as far as it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstLine {
    pub method: Option<String>,
    pub target: String,
}

impl FirstLine {
    /// Reads `METHOD SP TARGET ...` from the start of `bytes`; the target is cut at the first
    /// space, line end or the end of what was kept.
    pub fn parse(bytes: &[u8]) -> FirstLine {
        let line_end = bytes
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .unwrap_or(bytes.len());
        let line = &bytes[..line_end];
        let mut parts = line.splitn(3, |&b| b == b' ');
        let method = parts
            .next()
            .filter(|m| !m.is_empty() && m.len() <= 16)
            .filter(|m| http::Method::from_bytes(m).is_ok())
            .map(|m| String::from_utf8_lossy(m).into_owned());
        // Without a method the bytes are not a request line (a TLS handshake on the plain
        // port): nothing of them is kept as a path.
        let target = parts
            .next()
            .filter(|_| method.is_some())
            .map(|t| String::from_utf8_lossy(t).into_owned())
            .unwrap_or_default();
        FirstLine { method, target }
    }

    pub fn dialect(&self) -> Dialect {
        dialect_for_path(&self.target)
    }
}

/// A connection's byte stream, watched for hyper's own answer to its first request.
pub struct Watched<IO> {
    io: IO,
    watch: Arc<ConnWatch>,
    first: [u8; FIRST_BYTES],
    first_len: usize,
    /// The rest of a replacement answer not yet written.
    pending: Vec<u8>,
    pending_at: usize,
}

impl<IO> Watched<IO> {
    pub fn new(io: IO, watch: Arc<ConnWatch>) -> Watched<IO> {
        Watched {
            io,
            watch,
            first: [0; FIRST_BYTES],
            first_len: 0,
            pending: Vec::new(),
            pending_at: 0,
        }
    }

    /// hyper's answer to the first request, with a JSON body, when `buf` is that answer.
    fn replacement(&self, buf: &[u8]) -> Option<Vec<u8>> {
        if self.watch.served() || self.first_len == 0 {
            return None;
        }
        let first = &self.first[..self.first_len];
        let n = first.len().min(H2_PREFACE_START.len());
        if first[..n] == H2_PREFACE_START[..n] {
            return None;
        }
        let status = own_answer(buf)?;
        let line = FirstLine::parse(first);
        let dialect = line.dialect();
        self.watch.answered.store(status, Ordering::Relaxed);
        if let Ok(mut kept) = self.watch.first.lock() {
            *kept = Some(line);
        }
        Some(with_body(buf, status, dialect))
    }
}

impl<IO: AsyncWrite + Unpin> Watched<IO> {
    /// Writes what is left of a replacement answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.pending_at < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.io).poll_write(cx, &self.pending[self.pending_at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending_at += n;
        }
        if !self.pending.is_empty() {
            self.pending = Vec::new();
            self.pending_at = 0;
        }
        Poll::Ready(Ok(()))
    }

    /// Takes `buf` (hyper's whole answer) by sending `answer` in its place.
    fn poll_replace(
        &mut self,
        cx: &mut Context<'_>,
        buf_len: usize,
        answer: Vec<u8>,
    ) -> Poll<io::Result<usize>> {
        self.pending = answer;
        self.pending_at = 0;
        // What is not written now goes out with the next write, flush or shutdown.
        if let Poll::Ready(Err(e)) = self.poll_pending(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf_len))
    }
}

/// The status of `buf` when it is, whole, an answer hyper writes by itself: a status line with
/// a 4xx or 5xx, `content-length: 0` and nothing after the head.
fn own_answer(buf: &[u8]) -> Option<u16> {
    let rest = buf.strip_prefix(b"HTTP/1.1 ")?;
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    if head_end + 4 != buf.len() || !contains(buf, EMPTY_LENGTH) {
        return None;
    }
    let digits = rest.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) || rest.get(3) != Some(&b' ') {
        return None;
    }
    let status = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    (400..600).contains(&status).then_some(status)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The rule and message of hyper's refusal with `status`.
pub fn failure_for(status: u16) -> Failure {
    match status {
        431 => Failure::new(
            431,
            "head_too_large",
            "request head too large: at most 64 KiB and 100 header fields",
        ),
        414 => Failure::new(414, "target_too_long", "request target too long"),
        s => Failure::new(s, "malformed_request", "malformed HTTP request"),
    }
}

/// `head` (hyper's bodiless answer) with a JSON error body in `dialect`.
fn with_body(head: &[u8], status: u16, dialect: Dialect) -> Vec<u8> {
    let body = error_body(dialect, &failure_for(status));
    let fields = format!(
        "\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    let mut out = Vec::with_capacity(head.len() + fields.len() + body.len());
    match head
        .windows(EMPTY_LENGTH.len())
        .position(|w| w == EMPTY_LENGTH)
    {
        Some(at) => {
            out.extend_from_slice(&head[..at]);
            out.extend_from_slice(fields.as_bytes());
            out.extend_from_slice(&head[at + EMPTY_LENGTH.len()..]);
        }
        None => out.extend_from_slice(head),
    }
    out.extend_from_slice(&body);
    out
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        if this.first_len < FIRST_BYTES && !this.watch.served() {
            let new = &buf.filled()[before..];
            let take = new.len().min(FIRST_BYTES - this.first_len);
            this.first[this.first_len..this.first_len + take].copy_from_slice(&new[..take]);
            this.first_len += take;
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(answer) = this.replacement(buf) {
            return this.poll_replace(cx, buf.len(), answer);
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if !this.watch.served() {
            let mut filled = bufs.iter().filter(|b| !b.is_empty());
            if let (Some(only), None) = (filled.next(), filled.next()) {
                if let Some(answer) = this.replacement(only) {
                    return this.poll_replace(cx, only.len(), answer);
                }
            }
        }
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
