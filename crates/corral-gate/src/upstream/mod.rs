//! The upstream side of the wire: keep-alive HTTP/1.1 connections to Ollama, written and read
//! by the request's own task.
//!
//! A request takes an idle connection (or opens one), writes its head and body, and reads the
//! response head; the body ([`UpstreamBody`]) is then read from the socket as the client's side
//! asks for it. The connection returns to the pool when the body has been read to its end and
//! nothing suggests it cannot carry another request; a body dropped early closes it, which is
//! how a client that leaves cancels the generation. Nothing is spawned: no task per connection
//! and no channel between the socket and the response.
//!
//! Modules: `wire` (request head, response head and framing), `chunked` (the chunked body
//! decoder), `body` (the response body), `addrs` (where the upstream listens).

mod addrs;
mod body;
pub mod chunked;
pub mod wire;

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HeaderValue, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{Method, Request, Response};
use http_body::Body as _;
use http_body_util::combinators::UnsyncBoxBody;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

pub(crate) use body::merge_buffered_chunks;
pub use body::UpstreamBody;

use crate::forward::UpBody;
use crate::stream::BoxError;
use wire::HeadError;

/// Request bodies up to this size are written with the head in one write.
const INLINE_BODY: usize = 64 * 1024;
/// Read buffer of a new connection.
const CONN_BUF: usize = 16 * 1024;
/// How long an unused connection is kept. Ollama's server closes none of its own, so without
/// this a burst would leave up to `max_idle` sockets open on both sides for good.
pub const IDLE_KEEP: Duration = Duration::from_secs(60);

/// Why a request could not be sent or its response head read.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("cannot connect to the upstream: {0}")]
    Connect(String),
    #[error("connecting to the upstream timed out")]
    ConnectTimeout,
    #[error("upstream connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the upstream closed the connection without answering")]
    Closed,
    #[error("bad upstream response: {0}")]
    Head(#[from] HeadError),
    #[error("reading the request body failed: {0}")]
    Body(BoxError),
    #[error("the request body does not match its Content-Length")]
    BodyLength,
    #[error("the client sent no more of the request body within the idle timeout")]
    BodyTimeout,
    #[error("the upstream was idle for longer than the idle timeout")]
    Timeout,
}

impl PoolError {
    /// True when no connection could be made (as opposed to one failing mid-request).
    pub fn is_connect(&self) -> bool {
        matches!(self, PoolError::Connect(_) | PoolError::ConnectTimeout)
    }

    /// True when a reused connection turned out to be closed before anything of the response
    /// arrived: the upstream never saw the request, so it can be sent again on a fresh one.
    fn is_stale(&self) -> bool {
        match self {
            PoolError::Closed => true,
            PoolError::Io(e) => matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionAborted
            ),
            _ => false,
        }
    }
}

/// A connection and what has been read from it but not yet used.
pub(crate) struct UpConn {
    stream: TcpStream,
    buf: BytesMut,
}

impl UpConn {
    /// Still open and quiet: an idle connection with something to read has either been closed
    /// by the upstream or sent bytes nobody asked for; either way it is not used again.
    ///
    /// The runtime's read readiness answers first: when nothing has become readable since the
    /// last read drained the socket (see [`body::poll_fill`]), the connection is quiet and no
    /// system call is made. Otherwise a one-byte read tells closed, chatty and quiet apart.
    /// Either way a close that lands after this check is caught by the stale-connection retry.
    fn is_reusable(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            }
        }
    }
}

/// An idle connection and when it was handed back.
struct Idle {
    conn: UpConn,
    since: Instant,
}

/// The upstream's connections.
///
/// Idle ones form a stack: the most recently used is taken first, so the bottom holds the
/// longest unused, in the order they were handed back; [`Pool::sweep`] closes those kept past
/// [`IDLE_KEEP`].
pub struct Pool {
    addrs: addrs::Addrs,
    connect_timeout: Duration,
    max_idle: usize,
    idle: Mutex<Vec<Idle>>,
}

impl Pool {
    pub fn new(host: &str, port: u16, connect_timeout: Duration, max_idle: usize) -> Arc<Pool> {
        Arc::new(Pool {
            addrs: addrs::Addrs::new(host, port),
            connect_timeout,
            max_idle,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Sends `req` (origin-form URI, `Host` set, `Content-Length` set for a body whose length
    /// is known) and reads the response head. A buffered body is sent again on a fresh
    /// connection when a reused one turns out to have been closed by the upstream.
    ///
    /// `idle` bounds each wait: for a buffered request, sending it and the response head
    /// together; for a streamed upload, which may take far longer than that as a whole, each
    /// piece of the body from the client ([`PoolError::BodyTimeout`]), each write to the
    /// upstream and the response head ([`PoolError::Timeout`]).
    pub async fn send(
        self: &Arc<Self>,
        req: Request<UpBody>,
        idle: Duration,
    ) -> Result<Response<UpstreamBody>, PoolError> {
        let (mut parts, body) = req.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str);
        let mut head = BytesMut::new();
        match body {
            UpBody::Full(bytes) => {
                wire::encode_request(&parts.method, path, &parts.headers, &mut head);
                let rest = match bytes {
                    Some(b) if b.len() <= INLINE_BODY => {
                        head.put_slice(&b);
                        None
                    }
                    other => other,
                };
                let head = head.freeze();
                let sent = async {
                    loop {
                        let (mut conn, reused) = self.checkout().await?;
                        match exchange(&mut conn, &head, rest.as_ref(), &parts.method).await {
                            Ok(h) => return Ok(self.response(conn, h)),
                            Err(e) if reused && e.is_stale() => continue,
                            Err(e) => return Err(e),
                        }
                    }
                };
                within(idle, PoolError::Timeout, sent).await?
            }
            UpBody::Stream(mut body) => {
                let chunked = !parts.headers.contains_key(CONTENT_LENGTH);
                if chunked {
                    parts
                        .headers
                        .insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
                }
                let declared = crate::body::declared_length(&parts.headers);
                wire::encode_request(&parts.method, path, &parts.headers, &mut head);
                // A streamed body can be read only once: no retry, so no idle connection the
                // upstream may be closing; a fresh one.
                let mut conn = self.connect().await?;
                let upload = Upload {
                    chunked,
                    declared,
                    idle,
                };
                match upload.send(&mut conn, &head, &mut body).await {
                    Ok(()) => {}
                    // The upstream answered before it had read the whole body, and closed
                    // (Ollama does so for a blob it already has): its answer is the response.
                    Err(e) if e.is_stale() => {
                        let early = within(
                            idle,
                            PoolError::Timeout,
                            read_head(&mut conn, &parts.method),
                        )
                        .await;
                        let Ok(Ok(mut h)) = early else {
                            return Err(e);
                        };
                        h.reusable = false;
                        return Ok(self.response(conn, h));
                    }
                    Err(e) => return Err(e),
                }
                let h = within(
                    idle,
                    PoolError::Timeout,
                    read_head(&mut conn, &parts.method),
                )
                .await??;
                Ok(self.response(conn, h))
            }
        }
    }

    fn response(self: &Arc<Self>, conn: UpConn, head: wire::Head) -> Response<UpstreamBody> {
        let body = UpstreamBody::new(conn, head.framing, head.reusable, Arc::clone(self));
        let mut resp = Response::new(body);
        *resp.status_mut() = head.status;
        *resp.headers_mut() = head.headers;
        resp
    }

    /// An idle connection that still looks open, else a new one; says which.
    async fn checkout(&self) -> Result<(UpConn, bool), PoolError> {
        while let Some(conn) = self.take_idle() {
            if conn.is_reusable() {
                return Ok((conn, true));
            }
        }
        Ok((self.connect().await?, false))
    }

    fn take_idle(&self) -> Option<UpConn> {
        self.idle.lock().ok()?.pop().map(|i| i.conn)
    }

    /// Returns a connection whose last response has been read to the end.
    pub(crate) fn put(&self, conn: UpConn) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < self.max_idle {
                // Read under the lock, so `since` never decreases up the stack.
                let since = Instant::now();
                idle.push(Idle { conn, since });
            }
        }
    }

    /// Closes the idle connections unused for longer than [`IDLE_KEEP`]; the gate calls this
    /// every few seconds.
    pub fn sweep(&self) {
        self.sweep_at(Instant::now());
    }

    fn sweep_at(&self, now: Instant) {
        let expired: Vec<Idle> = match self.idle.lock() {
            Ok(mut idle) => {
                let n =
                    idle.partition_point(|i| now.saturating_duration_since(i.since) > IDLE_KEEP);
                idle.drain(..n).collect()
            }
            Err(_) => Vec::new(),
        };
        // Closed here, after the lock is released.
        drop(expired);
    }

    async fn connect(&self) -> Result<UpConn, PoolError> {
        let stream = self
            .addrs
            .connect(self.connect_timeout)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::TimedOut => PoolError::ConnectTimeout,
                _ => PoolError::Connect(e.to_string()),
            })?;
        let _ = stream.set_nodelay(true);
        Ok(UpConn {
            stream,
            buf: BytesMut::with_capacity(CONN_BUF),
        })
    }

    /// Idle connections held now.
    #[cfg(test)]
    pub(crate) fn idle_len(&self) -> usize {
        self.idle.lock().map_or(0, |i| i.len())
    }
}

/// How a streamed request body is written upstream.
struct Upload {
    chunked: bool,
    declared: Option<u64>,
    idle: Duration,
}

impl Upload {
    /// Writes the head and the body as the client sends it, each wait bounded by `idle`.
    async fn send(
        &self,
        conn: &mut UpConn,
        head: &[u8],
        body: &mut UnsyncBoxBody<Bytes, BoxError>,
    ) -> Result<(), PoolError> {
        let Upload {
            chunked,
            declared,
            idle,
        } = *self;
        within(idle, PoolError::Timeout, conn.stream.write_all(head)).await??;
        let mut sent = 0u64;
        loop {
            let next = poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx));
            let Some(frame) = within(idle, PoolError::BodyTimeout, next).await? else {
                break;
            };
            let frame = frame.map_err(PoolError::Body)?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if data.is_empty() {
                continue;
            }
            sent += data.len() as u64;
            if declared.is_some_and(|d| sent > d) {
                return Err(PoolError::BodyLength);
            }
            let stream = &mut conn.stream;
            let write = async {
                if chunked {
                    let size = format!("{:x}\r\n", data.len());
                    stream.write_all(size.as_bytes()).await?;
                    stream.write_all(&data).await?;
                    stream.write_all(b"\r\n").await
                } else {
                    stream.write_all(&data).await
                }
            };
            within(idle, PoolError::Timeout, write).await??;
        }
        if chunked {
            within(
                idle,
                PoolError::Timeout,
                conn.stream.write_all(b"0\r\n\r\n"),
            )
            .await??;
        } else if declared.is_some_and(|d| sent != d) {
            return Err(PoolError::BodyLength);
        }
        Ok(())
    }
}

/// `f`, or `late` when it takes longer than `limit`.
async fn within<F: std::future::Future>(
    limit: Duration,
    late: PoolError,
    f: F,
) -> Result<F::Output, PoolError> {
    tokio::time::timeout(limit, f).await.map_err(|_| late)
}

/// Writes a buffered request and reads the response head.
async fn exchange(
    conn: &mut UpConn,
    head: &Bytes,
    rest: Option<&Bytes>,
    method: &Method,
) -> Result<wire::Head, PoolError> {
    conn.stream.write_all(head).await?;
    if let Some(rest) = rest {
        conn.stream.write_all(rest).await?;
    }
    read_head(conn, method).await
}

async fn read_head(conn: &mut UpConn, method: &Method) -> Result<wire::Head, PoolError> {
    loop {
        if let Some(head) = wire::parse_response(&mut conn.buf, method)? {
            return Ok(head);
        }
        let n = poll_fn(|cx| body::poll_fill(conn, cx)).await?;
        if n == 0 {
            return Err(if conn.buf.is_empty() {
                PoolError::Closed
            } else {
                PoolError::Head(HeadError::Malformed)
            });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
