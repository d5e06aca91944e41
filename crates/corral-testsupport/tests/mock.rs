//! The mock against a real HTTP client: shapes, scripted behaviour, recording, raw HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use corral_testsupport::{raw_http, MockOllama, PROMPT_TOKENS, SLOW_CHUNKS};
use http::{Request, Response};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

const T: Duration = Duration::from_secs(10);

struct Conn(JoinHandle<()>);
impl Drop for Conn {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn open(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (Response<Incoming>, Conn) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut tx, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    let conn = Conn(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = tokio::time::timeout(T, tx.send_request(req))
        .await
        .unwrap()
        .unwrap();
    (resp, conn)
}

async fn call(addr: SocketAddr, method: &str, path: &str, body: Value) -> (u16, String, Bytes) {
    let b = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let (resp, _c) = open(addr, method, path, &b).await;
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = tokio::time::timeout(T, resp.into_body().collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    (status, ct, body)
}

fn lines(b: &[u8]) -> Vec<Value> {
    std::str::from_utf8(b)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn sse_data(b: &[u8]) -> Vec<String> {
    std::str::from_utf8(b)
        .unwrap()
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            e.lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap()
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn discovery_routes_have_ollama_shapes() {
    let m = MockOllama::start().await;
    let (s, ct, b) = call(m.addr(), "GET", "/", Value::Null).await;
    assert_eq!(
        (s, ct.as_str(), &b[..]),
        (200, "text/plain; charset=utf-8", &b"Ollama is running"[..])
    );
    let (s, _, b) = call(m.addr(), "GET", "/api/version", Value::Null).await;
    assert_eq!(s, 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&b).unwrap()["version"],
        corral_testsupport::VERSION
    );
    let (_, ct, b) = call(m.addr(), "GET", "/api/tags", Value::Null).await;
    assert!(ct.starts_with("application/json"));
    let tags: Value = serde_json::from_slice(&b).unwrap();
    let models = tags["models"].as_array().unwrap();
    assert!(models
        .iter()
        .any(|m| m["remote_host"].is_string() && m["name"].as_str().unwrap().ends_with(":cloud")));
    assert!(models
        .iter()
        .any(|m| m["capabilities"] == json!(["embedding"])));
    for m in models {
        assert_eq!(m["digest"].as_str().unwrap().len(), 64);
        assert!(m["details"]["family"].is_string());
    }
    let (_, _, b) = call(m.addr(), "GET", "/api/ps", Value::Null).await;
    assert!(serde_json::from_slice::<Value>(&b).unwrap()["models"][0]["size_vram"].is_u64());
    let (_, _, b) = call(m.addr(), "POST", "/api/show", json!({"model": "llava:7b"})).await;
    let show: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(show["capabilities"], json!(["completion", "vision"]));
    let (_, _, b) = call(m.addr(), "GET", "/v1/models", Value::Null).await;
    let v1: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v1["object"], "list");
    assert_eq!(v1["data"][0]["object"], "model");
    let (s, _, _) = call(m.addr(), "GET", "/v1/models/llama3.2:latest", Value::Null).await;
    assert_eq!(s, 200);
    let (s, _, b) = call(m.addr(), "GET", "/v1/models/nope", Value::Null).await;
    assert_eq!(s, 404);
    assert!(serde_json::from_slice::<Value>(&b).unwrap()["error"]["message"].is_string());
    let (s, _, b) = call(m.addr(), "GET", "/api/nothing", Value::Null).await;
    assert_eq!(
        (s, &b[..]),
        (404, &br#"{"error":"404 page not found"}"#[..])
    );
    let (s, _, _) = call(m.addr(), "GET", "/api/chat", Value::Null).await;
    assert_eq!(s, 404);
    assert_eq!(m.request_count(), 10);
}

#[tokio::test]
async fn native_generation_streams_and_whole_answers() {
    let m = MockOllama::start().await;
    let (s, ct, b) = call(
        m.addr(),
        "POST",
        "/api/chat",
        json!({"model": "llama3.2", "messages": []}),
    )
    .await;
    assert_eq!((s, ct.as_str()), (200, "application/x-ndjson"));
    let l = lines(&b);
    assert_eq!(l.len(), 5);
    assert_eq!(l[0]["message"]["content"], "Hello");
    let last = &l[4];
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert_eq!(last["prompt_eval_count"], PROMPT_TOKENS);
    assert_eq!(last["eval_count"], 4);
    for f in [
        "total_duration",
        "load_duration",
        "prompt_eval_duration",
        "eval_duration",
    ] {
        assert!(last[f].is_u64(), "{f}");
    }
    let (_, ct, b) = call(
        m.addr(),
        "POST",
        "/api/generate",
        json!({"model": "x", "prompt": "p", "stream": false}),
    )
    .await;
    assert!(ct.starts_with("application/json"));
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["response"], "Hello from the mock");
    assert_eq!(v["eval_count"], 4);
    // Tools give a tool call with arguments shaped by the declared parameters.
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}}]);
    let (_, _, b) = call(
        m.addr(),
        "POST",
        "/api/chat",
        json!({"model": "llama3.2", "messages": [], "tools": tools, "stream": false}),
    )
    .await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    let tc = &v["message"]["tool_calls"][0]["function"];
    assert_eq!(tc["name"], "get_weather");
    assert_eq!(tc["arguments"], json!({"city": "Paris", "days": 1}));
    let (_, _, b) = call(
        m.addr(),
        "POST",
        "/api/chat",
        json!({"model": "llama3.2", "messages": [], "tools": tools}),
    )
    .await;
    assert_eq!(
        lines(&b)[0]["message"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    let (_, _, b) = call(
        m.addr(),
        "POST",
        "/api/embed",
        json!({"model": "e", "input": ["a", "b", "c"]}),
    )
    .await;
    assert_eq!(
        serde_json::from_slice::<Value>(&b).unwrap()["embeddings"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let (_, _, b) = call(
        m.addr(),
        "POST",
        "/api/embeddings",
        json!({"model": "e", "prompt": "a"}),
    )
    .await;
    assert_eq!(
        serde_json::from_slice::<Value>(&b).unwrap()["embedding"]
            .as_array()
            .unwrap()
            .len(),
        8
    );
    let (s, _, b) = call(m.addr(), "POST", "/api/chat", json!({"messages": []})).await;
    assert_eq!(s, 400);
    assert_eq!(
        serde_json::from_slice::<Value>(&b).unwrap()["error"],
        "model is required"
    );
}

#[tokio::test]
async fn openai_and_anthropic_shapes() {
    let m = MockOllama::start().await;
    let (_, ct, b) = call(m.addr(), "POST", "/v1/chat/completions",
        json!({"model": "llama3.2", "messages": [], "stream": true, "stream_options": {"include_usage": true}})).await;
    assert_eq!(ct, "text/event-stream");
    let d = sse_data(&b);
    assert_eq!(d.last().unwrap(), "[DONE]");
    let usage: Value = serde_json::from_str(&d[d.len() - 2]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 4);
    let first: Value = serde_json::from_str(&d[0]).unwrap();
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["choices"][0]["delta"]["content"], "Hello");
    let (_, _, b) = call(
        m.addr(),
        "POST",
        "/v1/chat/completions",
        json!({"model": "llama3.2", "messages": []}),
    )
    .await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["usage"]["total_tokens"], PROMPT_TOKENS + 4);
    let (_, _, b) = call(
        m.addr(),
        "POST",
        "/v1/chat/completions",
        json!({"model": "llama3.2", "messages": [],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}),
    )
    .await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let args = v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .unwrap();
    assert!(serde_json::from_str::<Value>(args).unwrap().is_object());
    let (_, _, b) = call(
        m.addr(),
        "POST",
        "/v1/completions",
        json!({"model": "x", "prompt": "p", "stream": true}),
    )
    .await;
    assert_eq!(sse_data(&b).last().unwrap(), "[DONE]");
    let (_, _, b) = call(
        m.addr(),
        "POST",
        "/v1/embeddings",
        json!({"model": "e", "input": "x", "encoding_format": "base64"}),
    )
    .await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["data"][0]["embedding"].as_str().unwrap().len(), 44); // 8 × f32 in base64
    let (_, _, b) = call(
        m.addr(),
        "POST",
        "/v1/messages",
        json!({"model": "x", "max_tokens": 5, "messages": [], "stream": true}),
    )
    .await;
    let t = std::str::from_utf8(&b).unwrap();
    assert!(t.starts_with("event: message_start\ndata: {"), "{t}");
    assert!(t.contains("event: message_delta"));
    assert!(t.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
    let (_, _, b) = call(
        m.addr(),
        "POST",
        "/v1/messages",
        json!({"model": "x", "max_tokens": 5, "messages": []}),
    )
    .await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["usage"]["input_tokens"], PROMPT_TOKENS);
    let (_, _, b) = call(
        m.addr(),
        "POST",
        "/v1/responses",
        json!({"model": "x", "input": "hi"}),
    )
    .await;
    assert_eq!(
        serde_json::from_slice::<Value>(&b).unwrap()["status"],
        "completed"
    );
    let (s, _, _) = call(
        m.addr(),
        "POST",
        "/api/pull",
        json!({"model": "x", "stream": false}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _, _) = call(m.addr(), "POST", "/api/blobs/sha256:abc", Value::Null).await;
    assert_eq!(s, 201);
}

/// Ollama answers `HEAD /api/blobs/<digest>` with 404 when it lacks the blob (scanners probe
/// with the all-zero digest to see whether the admin routes answer without credentials).
#[tokio::test]
async fn head_on_an_absent_blob_is_404_like_ollama() {
    let m = MockOllama::start().await;
    let digest = format!("sha256:{}", "0".repeat(64));
    let (s, _, body) = call(
        m.addr(),
        "HEAD",
        &format!("/api/blobs/{digest}"),
        Value::Null,
    )
    .await;
    assert_eq!((s, body.len()), (404, 0));
}

#[tokio::test]
async fn slow_models_stream_slowly_and_first_chunk_is_immediate() {
    let m = MockOllama::start().await;
    let start = Instant::now();
    let (resp, _c) = open(m.addr(), "POST", "/api/chat", r#"{"model":"slow:latest"}"#).await;
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(
        start.elapsed() < Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
    assert!(first.starts_with(b"{"));
    let rest = body.collect().await.unwrap().to_bytes();
    assert!(start.elapsed() >= Duration::from_millis(150 * (SLOW_CHUNKS as u64 - 1)));
    assert_eq!(lines(&rest).len(), SLOW_CHUNKS);
    let r = m.last_request().unwrap();
    assert!(r.completed && !r.disconnected);
}

#[tokio::test]
async fn disconnects_are_recorded_promptly() {
    let m = MockOllama::start().await;
    let (resp, conn) = open(
        m.addr(),
        "POST",
        "/api/generate",
        r#"{"model":"endless","prompt":"x"}"#,
    )
    .await;
    let mut body = resp.into_body();
    body.frame().await.unwrap().unwrap();
    assert!(m
        .wait_for_disconnect(Duration::from_millis(100))
        .await
        .is_none());
    drop(body);
    drop(conn);
    let t = Instant::now();
    let r = m
        .wait_for_disconnect(Duration::from_secs(2))
        .await
        .expect("disconnect seen");
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    assert!(r.disconnected && !r.completed);

    // During a stall (nothing being written) and during a cold start (no headers yet).
    for model in ["stall", "cold"] {
        m.clear();
        let addr = m.addr();
        let body = format!(r#"{{"model":"{model}"}}"#);
        let task = tokio::spawn(async move {
            let (resp, c) = open(addr, "POST", "/api/chat", &body).await;
            let mut b = resp.into_body();
            let _ = b.frame().await;
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(c);
        });
        assert!(m.wait_for_requests(1, T).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            m.wait_for_disconnect(Duration::ZERO).await.is_none(),
            "{model}"
        );
        task.abort();
        assert!(
            m.wait_for_disconnect(Duration::from_secs(2))
                .await
                .is_some(),
            "{model}"
        );
    }
}

#[tokio::test]
async fn scripted_errors_and_aborts() {
    let m = MockOllama::start().await;
    let (s, _, b) = call(m.addr(), "POST", "/api/chat", json!({"model": "error500"})).await;
    assert_eq!(s, 500);
    assert!(serde_json::from_slice::<Value>(&b).unwrap()["error"].is_string());
    let (s, _, b) = call(
        m.addr(),
        "POST",
        "/v1/chat/completions",
        json!({"model": "error429"}),
    )
    .await;
    assert_eq!(s, 429);
    assert!(serde_json::from_slice::<Value>(&b).unwrap()["error"]["message"].is_string());
    let (resp, _c) = open(m.addr(), "POST", "/api/chat", r#"{"model":"close"}"#).await;
    let err = resp.into_body().collect().await;
    assert!(
        err.is_err(),
        "an aborted chunked body must fail on the client"
    );
    let r = m.last_request().unwrap();
    assert!(r.aborted_by_mock);
    let start = Instant::now();
    let (resp, _c) = open(m.addr(), "POST", "/api/chat", r#"{"model":"cold"}"#).await;
    assert!(start.elapsed() >= Duration::from_millis(1400));
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn global_knobs_apply_to_every_request() {
    let m = MockOllama::builder()
        .chunks(7)
        .header_delay(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let t = Instant::now();
    let (_, _, b) = call(m.addr(), "POST", "/api/generate", json!({"model": "x"})).await;
    assert!(t.elapsed() >= Duration::from_millis(200));
    assert_eq!(lines(&b).len(), 8);
    let m = MockOllama::builder()
        .error_status(503)
        .start()
        .await
        .unwrap();
    let (s, _, _) = call(m.addr(), "GET", "/api/tags", Value::Null).await;
    assert_eq!(s, 503);
}

#[tokio::test]
async fn records_what_arrived() {
    let m = MockOllama::start().await;
    let raw = b"POST /api/chat?x=1 HTTP/1.1\r\nHost: h\r\nX-One: a\r\nX-One: b\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: ";
    let body = corral_testsupport::codec::gzip(br#"{"model":"llama3.2","stream":false}"#);
    let mut req = raw.to_vec();
    req.extend_from_slice(format!("{}\r\nConnection: close\r\n\r\n", body.len()).as_bytes());
    req.extend_from_slice(&body);
    let r = raw_http(m.addr(), &req).await.unwrap();
    assert_eq!(r.status, Some(200), "{r:?}");
    assert_eq!(r.json().unwrap()["done"], true);
    let rec = m.last_request().unwrap();
    assert_eq!(
        (rec.method.as_str(), rec.path.as_str(), rec.target.as_str()),
        ("POST", "/api/chat", "/api/chat?x=1")
    );
    assert_eq!(rec.header_all("x-one"), vec![&b"a"[..], &b"b"[..]]);
    assert_eq!(rec.body, body, "the recorded body is the raw one");
    assert!(rec.completed);
}

#[tokio::test]
async fn raw_http_reports_closed_and_silent_servers() {
    let closer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closer.local_addr().unwrap();
    tokio::spawn(async move {
        let (s, _) = closer.accept().await.unwrap();
        drop(s);
        let (_s, _) = closer.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
    });
    let r = raw_http(addr, b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    assert!(r.closed_without_response && r.status.is_none());
    let r = corral_testsupport::raw_http_timeout(
        addr,
        b"GET / HTTP/1.1\r\n\r\n",
        Duration::from_millis(200),
    )
    .await
    .unwrap();
    assert!(r.timed_out && r.status.is_none());
}

#[tokio::test]
async fn fast_mode_answers_without_recording() {
    let m = MockOllama::builder().fast(true).start().await.unwrap();
    let (s, ct, b) = call(m.addr(), "POST", "/api/chat", json!({"model": "x"})).await;
    assert_eq!((s, ct.as_str()), (200, "application/x-ndjson"));
    assert_eq!(lines(&b).last().unwrap()["done"], true);
    let (_, ct, _) = call(
        m.addr(),
        "POST",
        "/api/chat",
        json!({"model": "x", "stream": false}),
    )
    .await;
    assert!(ct.starts_with("application/json"));
    let (_, ct, _) = call(
        m.addr(),
        "POST",
        "/v1/chat/completions",
        json!({"model": "x", "stream": true}),
    )
    .await;
    assert_eq!(ct, "text/event-stream");
    let (s, _, _) = call(m.addr(), "GET", "/nope", Value::Null).await;
    assert_eq!(s, 404);
    assert_eq!(m.request_count(), 4);
    assert!(m.requests().is_empty());
}

#[test]
fn binary_prints_its_address_first() {
    use std::io::{BufRead as _, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mock-ollama"))
        .args(["--listen", "127.0.0.1:0", "--fast"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(addr.port(), 0);
}
