//! Keep-alive HTTP/1 connections to the upstream.
//!
//! A request takes an idle connection (or opens one), and the [`Conn`] handed back with the
//! response returns it to the pool only when the response body has been read to the end.
//! A body dropped early drops the connection with it, which closes it: the upstream sees the
//! client leave and stops generating. Nothing is spawned per request; each connection has one
//! task that drives it.

use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::forward::UpBody;

/// Why a request could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("cannot connect to the upstream: {0}")]
    Connect(String),
    #[error("connecting to the upstream timed out")]
    ConnectTimeout,
    #[error("upstream request failed: {0}")]
    Request(#[from] hyper::Error),
}

impl PoolError {
    /// True when no connection could be made (as opposed to one failing mid-request).
    pub fn is_connect(&self) -> bool {
        matches!(self, PoolError::Connect(_) | PoolError::ConnectTimeout)
    }
}

/// The upstream's connections.
pub struct Pool {
    host: String,
    port: u16,
    connect_timeout: Duration,
    max_idle: usize,
    idle: Mutex<Vec<SendRequest<UpBody>>>,
}

impl Pool {
    pub fn new(host: &str, port: u16, connect_timeout: Duration, max_idle: usize) -> Arc<Pool> {
        Arc::new(Pool {
            host: host.to_owned(),
            port,
            connect_timeout,
            max_idle,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Sends `req` (origin-form URI, `Host` set) on a pooled connection, or on a new one when
    /// none is idle or every idle one turns out closed before the request went out.
    pub async fn send(
        self: &Arc<Self>,
        mut req: Request<UpBody>,
    ) -> Result<(Response<Incoming>, Conn), PoolError> {
        while let Some(mut sender) = self.take_idle() {
            // A connection goes back to the pool as soon as its last body ended; it is ready
            // once its driver has seen that end, or closed if the upstream hung up meanwhile.
            if poll_fn(|cx| sender.poll_ready(cx)).await.is_err() {
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok((resp, self.conn(sender))),
                Err(mut e) => match e.take_message() {
                    // Never written: the connection closed under us; try the next one.
                    Some(back) => req = back,
                    None => return Err(PoolError::Request(e.into_error())),
                },
            }
        }
        let mut sender = self.connect().await?;
        let resp = sender.send_request(req).await?;
        Ok((resp, self.conn(sender)))
    }

    fn conn(self: &Arc<Self>, sender: SendRequest<UpBody>) -> Conn {
        Conn {
            sender: Some(sender),
            pool: Arc::clone(self),
        }
    }

    fn take_idle(&self) -> Option<SendRequest<UpBody>> {
        self.idle.lock().ok()?.pop()
    }

    fn put(&self, sender: SendRequest<UpBody>) {
        if sender.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            // Connections that closed while idle are dropped when taken.
            if idle.len() < self.max_idle {
                idle.push(sender);
            }
        }
    }

    async fn connect(&self) -> Result<SendRequest<UpBody>, PoolError> {
        let stream = tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| PoolError::ConnectTimeout)?
        .map_err(|e| PoolError::Connect(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }

    /// Idle connections held now.
    #[cfg(test)]
    pub(crate) fn idle_len(&self) -> usize {
        self.idle.lock().map_or(0, |i| i.len())
    }
}

/// The connection a response arrived on. [`Conn::release`] it once the body has been read to
/// the end; dropping it instead closes the connection.
pub struct Conn {
    sender: Option<SendRequest<UpBody>>,
    pool: Arc<Pool>,
}

impl Conn {
    /// Returns the connection to the pool for the next request.
    pub fn release(mut self) {
        if let Some(sender) = self.sender.take() {
            self.pool.put(sender);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A keep-alive HTTP/1 server answering every request with `body`; counts connections.
    async fn server(body: &'static str) -> (u16, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut seen = Vec::new();
                    loop {
                        let n = match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        seen.extend_from_slice(&buf[..n]);
                        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            seen.drain(..end + 4);
                            let resp = format!(
                                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                                body.len()
                            );
                            if s.write_all(resp.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (port, accepted)
    }

    fn get() -> Request<UpBody> {
        Request::builder()
            .uri("/api/version")
            .header("host", "127.0.0.1")
            .body(UpBody::Full(None))
            .unwrap()
    }

    #[tokio::test]
    async fn a_released_connection_is_reused() {
        let (port, accepted) = server("{\"version\":\"0.12.0\"}").await;
        let pool = Pool::new("127.0.0.1", port, Duration::from_secs(2), 8);
        for _ in 0..5 {
            let (resp, conn) = pool.send(get()).await.unwrap();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, Bytes::from_static(b"{\"version\":\"0.12.0\"}"));
            conn.release();
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(pool.idle_len(), 1);
    }

    #[tokio::test]
    async fn a_dropped_connection_is_not_reused() {
        let (port, accepted) = server("{}").await;
        let pool = Pool::new("127.0.0.1", port, Duration::from_secs(2), 8);
        for _ in 0..3 {
            let (resp, conn) = pool.send(get()).await.unwrap();
            drop(resp);
            drop(conn);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
        assert_eq!(pool.idle_len(), 0);
    }

    #[tokio::test]
    async fn concurrent_requests_open_connections_and_keep_at_most_max_idle() {
        let (port, accepted) = server("{}").await;
        let pool = Pool::new("127.0.0.1", port, Duration::from_secs(2), 2);
        let mut held = Vec::new();
        for _ in 0..4 {
            let (resp, conn) = pool.send(get()).await.unwrap();
            let _ = resp.into_body().collect().await.unwrap();
            held.push(conn);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 4);
        for conn in held {
            conn.release();
        }
        assert_eq!(pool.idle_len(), 2);
    }

    #[tokio::test]
    async fn a_connection_closed_by_the_upstream_is_replaced() {
        // Answers once per connection, then closes it.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                        .await;
                    let _ = s.shutdown().await;
                });
            }
        });
        let pool = Pool::new("127.0.0.1", port, Duration::from_secs(2), 8);
        for _ in 0..3 {
            let (resp, conn) = pool.send(get()).await.unwrap();
            let _ = resp.into_body().collect().await.unwrap();
            conn.release();
            // Let the driver notice the close.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn nothing_listening_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let pool = Pool::new("127.0.0.1", port, Duration::from_secs(2), 8);
        let err = pool.send(get()).await.err().unwrap();
        assert!(err.is_connect(), "{err}");
    }
}
