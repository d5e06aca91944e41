//! Shared set-up for the gate's integration tests: a mock Ollama, a key store and an audit log
//! in a temporary directory, and a gate bound on 127.0.0.1:0 in front of the mock.
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use corral_audit::{AuditLog, Rotation};
use corral_gate::{Gate, GateSettings};
use corral_policy::config::Config;
use corral_policy::config::UpstreamAddr;
use corral_store::KeyStore;
use corral_testsupport::{MockBuilder, MockOllama};
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use serde_json::Value;
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use corral_testsupport::{raw_http, raw_http_timeout, RawResponse};

/// Time limit for one ordinary exchange in a test.
pub const T: Duration = Duration::from_secs(10);

/// A policy file exercising every knob; tests pick a key bound to the policy they need.
pub const POLICIES: &str = r#"
[policies.user]
models = ["llama3.2", "qwen3", "llava", "nomic-embed-text", "slow*", "cold*", "stall*",
          "close*", "endless*", "long*", "error*", "gpt-oss", "glm-4.6", "kimi-k2"]
max_body_bytes = 65536

[policies.notools]
models = ["*"]
tools = false
images = false

[policies.clamped]
models = ["*"]
max_num_ctx = 2048
max_num_predict = 128
max_keep_alive = "5m"

[policies.cloudy]
models = ["*"]
cloud = true
"#;

/// Keys created for every harness: name → policy.
pub const KEYS: &[(&str, &str)] = &[
    ("alice", "user"),
    ("root", "admin"),
    ("nora", "notools"),
    ("clara", "clamped"),
    ("cleo", "cloudy"),
];

pub struct Harness {
    pub mock: MockOllama,
    pub addr: SocketAddr,
    pub dir: TempDir,
    pub data_dir: PathBuf,
    pub audit_path: PathBuf,
    /// Secrets by key name.
    pub keys: HashMap<String, String>,
    /// What started the gate, to start another on the same directory ([`Harness::restart`]).
    builder: HarnessBuilder,
    shutdown: Option<oneshot::Sender<()>>,
    gate: Option<JoinHandle<Result<(), corral_gate::GateError>>>,
    audit: Option<JoinHandle<Result<(), corral_audit::AuditError>>>,
}

#[derive(Default)]
pub struct HarnessBuilder {
    config: Option<String>,
    idle_timeout: Option<Duration>,
    mock: Option<MockBuilder>,
    upstream: Option<String>,
    audit_path: Option<PathBuf>,
    shutdown_grace: Option<Duration>,
    idle_connection_timeout: Option<Duration>,
    oidc_refetch: Option<Duration>,
}

impl HarnessBuilder {
    pub fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.to_string());
        self
    }
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = Some(d);
        self
    }
    pub fn mock(mut self, m: MockBuilder) -> Self {
        self.mock = Some(m);
        self
    }
    /// Points the gate somewhere other than the mock (e.g. a closed port).
    pub fn upstream(mut self, url: &str) -> Self {
        self.upstream = Some(url.to_string());
        self
    }
    /// How long in-flight requests may run on once the gate is stopped.
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.shutdown_grace = Some(d);
        self
    }
    /// How long a connection may go with no request in flight.
    pub fn idle_connection_timeout(mut self, d: Duration) -> Self {
        self.idle_connection_timeout = Some(d);
        self
    }
    /// Shortest time between two fetches of the OIDC key set made for tokens' sake.
    pub fn oidc_refetch(mut self, d: Duration) -> Self {
        self.oidc_refetch = Some(d);
        self
    }
    /// Writes the audit log at `path` instead of in the harness's directory.
    pub fn audit_path(mut self, path: PathBuf) -> Self {
        self.audit_path = Some(path);
        self
    }

    pub async fn start(mut self) -> Harness {
        let mock = self
            .mock
            .take()
            .unwrap_or_else(MockOllama::builder)
            .start()
            .await
            .expect("mock starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join("data");
        let store = KeyStore::open(&data_dir).expect("key store opens");
        let mut keys = HashMap::new();
        for (name, policy) in KEYS {
            let (_, secret) = store.create(name, policy, None).expect("key created");
            keys.insert(name.to_string(), secret.expose().to_string());
        }
        drop(store);
        let audit_path = self
            .audit_path
            .clone()
            .unwrap_or_else(|| dir.path().join("audit.ndjson"));
        let upstream = self.upstream.clone().unwrap_or_else(|| mock.url());
        let (addr, shutdown, gate, audit) =
            self.start_gate(&data_dir, &audit_path, &upstream).await;
        Harness {
            mock,
            addr,
            dir,
            data_dir,
            audit_path,
            keys,
            builder: self,
            shutdown: Some(shutdown),
            gate: Some(gate),
            audit: Some(audit),
        }
    }

    /// A gate (and its audit worker) on the key store in `data_dir`.
    async fn start_gate(
        &self,
        data_dir: &std::path::Path,
        audit_path: &std::path::Path,
        upstream: &str,
    ) -> (
        SocketAddr,
        oneshot::Sender<()>,
        JoinHandle<Result<(), corral_gate::GateError>>,
        JoinHandle<Result<(), corral_audit::AuditError>>,
    ) {
        let store = KeyStore::open(data_dir).expect("key store opens");
        let (handle, worker) = AuditLog::open(
            audit_path,
            Rotation {
                max_bytes: 0,
                keep: 1,
            },
        )
        .expect("audit log opens");
        let audit = tokio::spawn(async move { worker.run().await });
        let config = match &self.config {
            Some(t) => Config::from_toml_str(t).expect("test config is valid"),
            None => Config::builtin(),
        };
        let mut settings = GateSettings::new(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            UpstreamAddr::parse(upstream).expect("upstream parses"),
            Arc::new(config),
        );
        settings.connect_timeout = Duration::from_secs(2);
        if let Some(d) = self.idle_timeout {
            settings.idle_timeout = d;
        }
        let mut gate = Gate::bind(settings, store, handle)
            .await
            .expect("gate binds");
        if let Some(d) = self.shutdown_grace {
            gate.set_shutdown_grace(d);
        }
        if let Some(d) = self.idle_connection_timeout {
            gate.set_idle_connection_timeout(d);
        }
        if let Some(d) = self.oidc_refetch {
            gate.set_oidc_refetch_interval(d);
        }
        let addr = gate.local_addr();
        let (tx, rx) = oneshot::channel::<()>();
        let gate = tokio::spawn(gate.run(async move {
            let _ = rx.await;
        }));
        (addr, tx, gate, audit)
    }
}

impl Harness {
    pub fn builder() -> HarnessBuilder {
        HarnessBuilder::default()
    }

    /// Built-in policies, default settings.
    pub async fn start() -> Harness {
        Harness::builder().start().await
    }

    /// The test policy file.
    pub async fn with_policies() -> Harness {
        Harness::builder().config(POLICIES).start().await
    }

    pub fn key(&self, name: &str) -> &str {
        self.keys.get(name).map(String::as_str).expect("known key")
    }

    pub fn bearer(&self, name: &str) -> String {
        format!("Bearer {}", self.key(name))
    }

    /// Requests that reached the mock other than the gate's own catalogue look-ups.
    pub fn forwarded(&self) -> Vec<corral_testsupport::RecordedRequest> {
        self.mock
            .requests()
            .into_iter()
            .filter(|r| !is_gate_own_request(r))
            .collect()
    }

    /// Stops the gate gracefully and waits until the audit log is flushed.
    pub async fn stop(&mut self) {
        if let Err(e) = self.stop_audit_result().await {
            panic!("audit worker: {e}");
        }
    }

    /// Stops the gate gracefully and starts another, as configured, on the same key store,
    /// audit log and upstream (at a new address).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start_again().await;
    }

    /// Starts another gate after [`Harness::stop`], as configured now (see
    /// [`Harness::set_config`]), on the same key store, audit log and upstream.
    pub async fn start_again(&mut self) {
        let upstream = self
            .builder
            .upstream
            .clone()
            .unwrap_or_else(|| self.mock.url());
        let (addr, shutdown, gate, audit) = self
            .builder
            .start_gate(&self.data_dir, &self.audit_path, &upstream)
            .await;
        self.addr = addr;
        self.shutdown = Some(shutdown);
        self.gate = Some(gate);
        self.audit = Some(audit);
    }

    /// The configuration the next [`Harness::start_again`] (or restart) uses.
    pub fn set_config(&mut self, toml: &str) {
        self.builder.config = Some(toml.to_string());
    }

    /// [`Harness::stop`], returning how the audit writer ended instead of requiring success.
    pub async fn stop_audit_result(&mut self) -> Result<(), corral_audit::AuditError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(g) = self.gate.take() {
            tokio::time::timeout(Duration::from_secs(30), g)
                .await
                .expect("gate stops within 30 s")
                .expect("gate task")
                .expect("gate run ok");
        }
        match self.audit.take() {
            Some(a) => tokio::time::timeout(Duration::from_secs(30), a)
                .await
                .expect("audit worker stops")
                .expect("audit task"),
            None => Ok(()),
        }
    }

    /// Audit records written so far.
    pub fn audit_records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit_path)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
            .collect()
    }

    /// Waits until an audit record satisfies `pred`.
    pub async fn wait_audit(
        &self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.audit_records().into_iter().find(|r| pred(r)) {
                return Some(r);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn get(&self, path: &str, auth: Option<&str>) -> Reply {
        let mut h = vec![];
        if let Some(a) = auth {
            h.push(("authorization", a.to_string()));
        }
        send(self.addr, "GET", path, &h, Bytes::new()).await
    }

    /// Opens a streamed JSON request with `key`; the caller reads the body.
    pub async fn stream_json(
        &self,
        path: &str,
        key: &str,
        body: &Value,
    ) -> (Response<Incoming>, Conn) {
        let h = vec![
            ("authorization", self.bearer(key)),
            ("content-type", "application/json".to_string()),
        ];
        open(self.addr, "POST", path, &h, Bytes::from(body.to_string())).await
    }

    /// A JSON request with `key`, sent from a task of its own: for a test whose client leaves
    /// while the gate works on it (abort the task).
    pub fn post_json_in_background(
        &self,
        path: &str,
        key: &str,
        body: &Value,
    ) -> JoinHandle<(Response<Incoming>, Conn)> {
        let (addr, path, body) = (self.addr, path.to_string(), Bytes::from(body.to_string()));
        let h = vec![
            ("authorization", self.bearer(key)),
            ("content-type", "application/json".to_string()),
        ];
        tokio::spawn(async move { open(addr, "POST", &path, &h, body).await })
    }

    pub async fn post_json(&self, path: &str, key: &str, body: &Value) -> Reply {
        let h = vec![
            ("authorization", self.bearer(key)),
            ("content-type", "application/json".to_string()),
        ];
        send(self.addr, "POST", path, &h, Bytes::from(body.to_string())).await
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The gate may look up `/api/tags` (remote-model catalogue) or `/api/version` on its own.
pub fn is_gate_own_request(r: &corral_testsupport::RecordedRequest) -> bool {
    (r.method == "GET" || r.method == "HEAD")
        && matches!(r.target.as_str(), "/api/tags" | "/api/version" | "/")
}

/// A whole response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The client side of one connection; dropping it closes the socket (a client going away).
pub struct Conn(JoinHandle<()>);

impl Drop for Conn {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Opens an HTTP/1.1 connection and sends one request; the response body is not read.
pub async fn open(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Bytes,
) -> (Response<Incoming>, Conn) {
    let stream = TcpStream::connect(addr).await.expect("connect to gate");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    let conn = Conn(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    let req = b.body(Full::new(body)).expect("request builds");
    let resp = tokio::time::timeout(T, sender.send_request(req))
        .await
        .expect("response head within time limit")
        .expect("response head");
    (resp, conn)
}

/// Sends one request and reads the whole response.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Bytes,
) -> Reply {
    let (resp, _conn) = open(addr, method, path, headers, body).await;
    read_reply(resp).await
}

/// Reads a whole response (HTTP/1 or HTTP/2) into a [`Reply`].
pub async fn read_reply(resp: Response<Incoming>) -> Reply {
    let (parts, body) = resp.into_parts();
    let body = tokio::time::timeout(T, body.collect())
        .await
        .expect("body within time limit")
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

/// Next data frame of a streamed body: `Ok(Some)` data, `Ok(None)` end, `Err(())` time-out or
/// a broken stream.
pub async fn next_data(body: &mut Incoming, timeout: Duration) -> Result<Option<Bytes>, String> {
    loop {
        match tokio::time::timeout(timeout, body.frame()).await {
            Err(_) => return Err("timed out".into()),
            Ok(None) => return Ok(None),
            Ok(Some(Err(e))) => return Err(format!("body error: {e}")),
            Ok(Some(Ok(f))) => {
                if let Ok(d) = f.into_data() {
                    if !d.is_empty() {
                        return Ok(Some(d));
                    }
                }
            }
        }
    }
}

/// The whole stream, or the error that ended it.
pub async fn read_all(body: &mut Incoming, idle: Duration) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        match next_data(body, idle).await? {
            Some(d) => out.extend_from_slice(&d),
            None => return Ok(out),
        }
    }
}

pub fn chat_body(model: &str, stream: bool) -> Value {
    serde_json::json!({
        "model": model,
        "messages": [{ "role": "user", "content": "Why is the sky blue?" }],
        "stream": stream
    })
}

/// A raw HTTP/1.1 request with the usual headers and a JSON body.
pub fn raw_post(addr: SocketAddr, path: &str, auth: &str, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}
