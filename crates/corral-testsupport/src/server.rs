//! The mock server: accept loop, per-request recording, behaviour, and the handle tests hold.

use std::convert::Infallible;
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::behaviour::MockBehaviour;
use crate::body::MockBody;
use crate::record::{RecordedRequest, Recorder};
use crate::routes::{self, Reply};
use crate::shapes::{error_body, Dialect};
use crate::{fast, MAX_MOCK_BODY};

struct Shared {
    recorder: Recorder,
    /// Connections accepted so far.
    connections: std::sync::atomic::AtomicUsize,
    behaviour: Mutex<MockBehaviour>,
    fast: Option<fast::FastReplies>,
    http: auto::Builder<TokioExecutor>,
}

impl Shared {
    fn behaviour(&self) -> MockBehaviour {
        self.behaviour
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Configures and starts a [`MockOllama`].
#[derive(Debug, Clone)]
pub struct MockBuilder {
    listen: SocketAddr,
    behaviour: MockBehaviour,
    fast: bool,
    record: bool,
}

impl Default for MockBuilder {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            behaviour: MockBehaviour::default(),
            fast: false,
            record: true,
        }
    }
}

impl MockBuilder {
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }
    pub fn behaviour(mut self, b: MockBehaviour) -> Self {
        self.behaviour = b;
        self
    }
    pub fn chunk_delay(mut self, d: Duration) -> Self {
        self.behaviour.chunk_delay = d;
        self
    }
    pub fn header_delay(mut self, d: Duration) -> Self {
        self.behaviour.header_delay = d;
        self
    }
    pub fn chunks(mut self, n: usize) -> Self {
        self.behaviour.chunks = n;
        self
    }
    pub fn error_status(mut self, status: u16) -> Self {
        self.behaviour.error_status = Some(status);
        self
    }
    pub fn close_after(mut self, chunks: usize) -> Self {
        self.behaviour.close_after = Some(chunks);
        self
    }
    pub fn stall_after(mut self, chunks: usize) -> Self {
        self.behaviour.stall_after = Some(chunks);
        self
    }
    pub fn slow_delay(mut self, d: Duration) -> Self {
        self.behaviour.slow_delay = d;
        self
    }
    pub fn cold_delay(mut self, d: Duration) -> Self {
        self.behaviour.cold_delay = d;
        self
    }
    /// Benchmark mode: precomputed answers for the common routes, no recording.
    pub fn fast(mut self, on: bool) -> Self {
        self.fast = on;
        self
    }
    /// Keep (default) or skip the per-request log; a counter is kept either way.
    pub fn record(mut self, on: bool) -> Self {
        self.record = on;
        self
    }

    pub async fn start(self) -> std::io::Result<MockOllama> {
        let listener = TcpListener::bind(self.listen).await?;
        let addr = listener.local_addr()?;
        let mut http = auto::Builder::new(TokioExecutor::new());
        http.http1().timer(TokioTimer::new()).keep_alive(true);
        let shared = Arc::new(Shared {
            recorder: Recorder::new(self.record && !self.fast),
            connections: std::sync::atomic::AtomicUsize::new(0),
            behaviour: Mutex::new(self.behaviour),
            fast: self.fast.then(fast::FastReplies::new),
            http,
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), stopped));
        Ok(MockOllama {
            addr,
            shared,
            stop,
            task,
        })
    }
}

/// A running mock Ollama. Dropping it stops the listener and every open connection.
pub struct MockOllama {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for MockOllama {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockOllama")
            .field("addr", &self.addr)
            .finish()
    }
}

impl MockOllama {
    pub fn builder() -> MockBuilder {
        MockBuilder::default()
    }

    /// Starts a mock with the default behaviour on 127.0.0.1, port 0.
    #[allow(clippy::expect_used)]
    pub async fn start() -> MockOllama {
        // Binding an ephemeral loopback port only fails on a broken host; tests cannot go on.
        MockOllama::builder()
            .start()
            .await
            .expect("bind the mock Ollama on 127.0.0.1:0")
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_behaviour(&self, b: MockBehaviour) {
        *self
            .shared
            .behaviour
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = b;
    }

    pub fn behaviour(&self) -> MockBehaviour {
        self.shared.behaviour()
    }

    /// Every request that reached the mock, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorder.requests()
    }

    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.requests().pop()
    }

    pub fn request_count(&self) -> usize {
        self.shared.recorder.count()
    }

    /// TCP connections accepted so far (a keep-alive client reuses one).
    pub fn connection_count(&self) -> usize {
        self.shared
            .connections
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn clear(&self) {
        self.shared.recorder.clear();
    }

    /// Waits until at least `n` requests arrived; returns whether they did within `timeout`.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        self.shared
            .recorder
            .wait_until(timeout, |r| (r.len() >= n).then_some(()))
            .await
            .is_some()
    }

    /// Waits until a request's client went away before its response ended; returns that request.
    pub async fn wait_for_disconnect(&self, timeout: Duration) -> Option<RecordedRequest> {
        self.shared
            .recorder
            .wait_until(timeout, |r| r.iter().find(|q| q.disconnected).cloned())
            .await
    }

    /// Waits until the response to request `seq` is over (completed, aborted or abandoned).
    pub async fn wait_for_end(&self, seq: usize, timeout: Duration) -> Option<RecordedRequest> {
        self.shared
            .recorder
            .wait_until(timeout, |r| {
                r.iter()
                    .find(|q| q.seq == seq && (q.completed || q.disconnected || q.aborted_by_mock))
                    .cloned()
            })
            .await
    }

    /// Stops accepting and closes every connection (also done on drop).
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
        self.task.abort();
    }
}

impl Drop for MockOllama {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    // Connections live in the set, so stopping the loop drops (and closes) all of them.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    shared.connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    conns.spawn(serve_conn(stream, Arc::clone(&shared)));
                }
                // Out of descriptors or similar: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
}

async fn serve_conn(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let svc_shared = Arc::clone(&shared);
    let svc = service_fn(move |req| handle(req, Arc::clone(&svc_shared)));
    let _ = shared
        .http
        .serve_connection(TokioIo::new(stream), svc)
        .await;
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<MockBody>, Infallible> {
    if let Some(fast) = &shared.fast {
        shared.recorder.tick();
        return Ok(fast.answer(req).await);
    }
    let received_at = Instant::now();
    let (parts, body) = req.into_parts();
    let body = match http_body_util::Limited::new(body, MAX_MOCK_BODY)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.to_string(), |pq| pq.as_str().to_string());
    let path = parts.uri.path().to_string();
    let method = parts.method.as_str().to_string();
    let decoded = decode_body(&parts.headers, &body);
    let json: Option<serde_json::Value> = decoded
        .as_deref()
        .and_then(|b| serde_json::from_slice(b).ok());
    let record = RecordedRequest {
        seq: 0,
        method: method.clone(),
        target,
        path: path.clone(),
        version: format!("{:?}", parts.version),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
            .collect(),
        body,
        received_at,
        disconnected: false,
        completed: false,
        aborted_by_mock: false,
    };
    let mut guard = shared.recorder.push(record);
    let b = shared
        .behaviour()
        .for_model(routes::model_of(json.as_ref()));
    if !b.header_delay.is_zero() {
        // If the client leaves now, hyper drops this future and the guard records it.
        tokio::time::sleep(b.header_delay).await;
    }
    if let Some(code) = b.error_status {
        guard.finish();
        let msg = match code {
            404 => "model not found, try pulling it first",
            500 => "llama runner process has terminated: exit status 2",
            503 => "server busy, please try again.  maximum pending requests exceeded",
            _ => "mock error",
        };
        return Ok(json_response(
            code,
            &error_body(Dialect::of(&path), code, msg),
        ));
    }
    if decoded.is_none() {
        guard.finish();
        return Ok(json_response(
            400,
            &error_body(Dialect::of(&path), 400, "unsupported content encoding"),
        ));
    }
    let reply = routes::route(&method, &path, json.as_ref(), b.chunks);
    let resp = match reply {
        Reply::Stream {
            content_type,
            shape,
        } => {
            let mut r = Response::new(MockBody::stream(shape, b, guard));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            return Ok(r);
        }
        Reply::Json(code, v) => json_response(code, &v),
        Reply::Text(code, t) => {
            let mut r = Response::new(MockBody::full(Bytes::from_static(t.as_bytes())));
            *r.status_mut() = status(code);
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r
        }
        Reply::Empty(code) => {
            let mut r = Response::new(MockBody::empty());
            *r.status_mut() = status(code);
            r
        }
    };
    guard.finish();
    Ok(resp)
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

pub(crate) fn json_response(code: u16, v: &serde_json::Value) -> Response<MockBody> {
    let mut r = Response::new(MockBody::full(routes::json_bytes(v)));
    *r.status_mut() = status(code);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// Decodes a `Content-Encoding`d body like Ollama would (zstd, and gzip for good measure);
/// `None` for an encoding it cannot read. The recorded body stays as received.
fn decode_body(headers: &http::HeaderMap, body: &Bytes) -> Option<Vec<u8>> {
    let Some(enc) = headers.get(header::CONTENT_ENCODING) else {
        return Some(body.to_vec());
    };
    let enc = enc.to_str().ok()?.trim().to_ascii_lowercase();
    let limit = MAX_MOCK_BODY as u64;
    let mut out = Vec::new();
    match enc.as_str() {
        "" | "identity" => return Some(body.to_vec()),
        "gzip" => {
            flate2::read::GzDecoder::new(body.as_ref())
                .take(limit)
                .read_to_end(&mut out)
                .ok()?;
        }
        "zstd" => {
            zstd::stream::read::Decoder::new(body.as_ref())
                .ok()?
                .take(limit)
                .read_to_end(&mut out)
                .ok()?;
        }
        _ => return None,
    }
    Some(out)
}
