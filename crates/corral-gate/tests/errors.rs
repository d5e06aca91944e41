//! Upstream failures in the client's dialect: down → 502, silent past the idle timeout → 504,
//! upstream error statuses passed on; nothing internal leaks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use corral_testsupport::{unused_addr, MockOllama};
use serde_json::json;

fn assert_no_internals(r: &Reply, upstream: &str) {
    let t = r.text();
    for leak in [
        upstream,
        "hyper",
        "Connection refused",
        "os error",
        "tcp connect",
    ] {
        assert!(!t.contains(leak), "response leaks {leak:?}: {t}");
    }
}

#[tokio::test]
async fn upstream_down_is_502_in_each_dialect() {
    let down = unused_addr();
    let h = Harness::builder()
        .upstream(&format!("http://{down}"))
        .start()
        .await;
    let r = h
        .post_json("/api/chat", "alice", &chat_body("llama3.2", true))
        .await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.json()["error"].is_string(), "{}", r.text());
    assert_no_internals(&r, &down.to_string());

    let r = h
        .post_json(
            "/v1/chat/completions",
            "alice",
            &chat_body("llama3.2", false),
        )
        .await;
    assert_eq!(r.status, 502, "{}", r.text());
    let v = r.json();
    assert!(v["error"]["message"].is_string(), "{v}");
    assert!(v["error"]["type"].is_string(), "{v}");
    assert_no_internals(&r, &down.to_string());

    let r = h
        .post_json(
            "/v1/messages",
            "alice",
            &json!({"model": "llama3.2", "max_tokens": 8, "messages": []}),
        )
        .await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json()["type"], "error", "{}", r.text());

    let r = h.get("/api/tags", Some(&h.bearer("alice"))).await;
    assert_eq!(r.status, 502, "{}", r.text());
}

/// A gate started before Ollama (or running while it restarts) says the upstream is down, not
/// that a model list is missing, and serves again soon after Ollama is up.
#[tokio::test]
async fn an_upstream_that_comes_up_is_served_soon_and_until_then_reported_down() {
    let down = unused_addr();
    let h = Harness::builder()
        .upstream(&format!("http://{down}"))
        .start()
        .await;
    let body = chat_body("llama3.2", false);
    let ask = || h.post_json("/v1/chat/completions", "alice", &body);
    let r = ask().await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(
        r.json()["error"]["code"],
        "upstream_unavailable",
        "{}",
        r.text()
    );
    let r = ask().await;
    assert_eq!(
        r.json()["error"]["code"],
        "upstream_unavailable",
        "a request that did not itself try is told the same: {}",
        r.text()
    );

    let _up = MockOllama::builder().listen(down).start().await.unwrap();
    // Well before the 30 s between two refreshes of a catalogue that was read.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = ask().await;
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 502, "{}", r.text());
        assert!(
            Instant::now() < deadline,
            "still refused after the upstream came up: {}",
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn upstream_silent_before_headers_is_504() {
    let h = Harness::builder()
        .mock(MockOllama::builder().cold_delay(Duration::from_secs(5)))
        .idle_timeout(Duration::from_millis(400))
        .start()
        .await;
    let started = Instant::now();
    let r = h
        .post_json("/api/chat", "alice", &chat_body("cold", true))
        .await;
    let took = started.elapsed();
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(r.json()["error"].is_string());
    assert!(took < Duration::from_secs(3), "504 after {took:?}");
    assert!(
        took >= Duration::from_millis(350),
        "504 after only {took:?}"
    );
    // The abandoned upstream request is cancelled.
    assert!(h
        .mock
        .wait_for_disconnect(Duration::from_secs(2))
        .await
        .is_some());

    let r = h
        .post_json("/v1/chat/completions", "alice", &chat_body("cold", false))
        .await;
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(r.json()["error"]["message"].is_string(), "{}", r.text());
}

#[tokio::test]
async fn upstream_error_statuses_reach_the_client() {
    let h = Harness::start().await;
    let r = h
        .post_json("/api/chat", "alice", &chat_body("error500", false))
        .await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.json()["error"].is_string());
    let r = h
        .post_json("/api/chat", "alice", &chat_body("error404", false))
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = h
        .post_json(
            "/v1/chat/completions",
            "alice",
            &chat_body("error503", false),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.json()["error"]["message"].is_string(), "{}", r.text());
}

#[tokio::test]
async fn unknown_routes_and_methods_in_each_dialect() {
    let h = Harness::start().await;
    let r = h.get("/api/nonexistent", Some(&h.bearer("root"))).await;
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].is_string());
    let r = h.get("/v1/nonexistent", Some(&h.bearer("root"))).await;
    assert_eq!(r.status, 404);
    assert!(r.json()["error"]["message"].is_string(), "{}", r.text());
    let r = h.get("/api/chat", Some(&h.bearer("root"))).await;
    assert_eq!(r.status, 405);
    assert!(
        r.header("allow").unwrap_or_default().contains("POST"),
        "{:?}",
        r.headers
    );
    // Routing is decided before authentication: no key needed to learn a path is unknown,
    // and no key-validity oracle on unknown paths.
    let r = h.get("/api/nonexistent", None).await;
    assert_eq!(r.status, 404);
    assert!(h.forwarded().is_empty());
}

#[tokio::test]
async fn a_body_that_is_not_json_says_so_in_each_dialect() {
    let h = Harness::start().await;
    let bodies: [(&str, &str); 3] = [
        (
            r#"{"model":"llama3.2","#,
            "request body is not valid JSON (line 1, column 20)",
        ),
        (
            r#"{"model":"llama3.2","n":1e400}"#,
            "request body is not valid JSON",
        ),
        (r#"["model"]"#, "request body must be a JSON object"),
    ];
    for path in [
        "/api/chat",
        "/v1/chat/completions",
        "/v1/messages",
        "/v1/responses",
    ] {
        for (body, says) in bodies {
            let hdrs = vec![
                ("authorization", h.bearer("alice")),
                ("content-type", "application/json".to_string()),
            ];
            let r = send(h.addr, "POST", path, &hdrs, Bytes::from(body)).await;
            assert_eq!(r.status, 400, "{path} {body}: {}", r.text());
            let v = r.json();
            let message = if path.starts_with("/api/") {
                v["error"].as_str()
            } else {
                v["error"]["message"].as_str()
            };
            let message = message.unwrap_or_else(|| panic!("{path}: {v}"));
            assert!(message.starts_with(says), "{path} {body}: {message}");
        }
    }
    let deep = format!(
        r#"{{"model":"llama3.2","x":{}{}}}"#,
        "[".repeat(500),
        "]".repeat(500)
    );
    let hdrs = vec![("authorization", h.bearer("alice"))];
    let r = send(h.addr, "POST", "/api/chat", &hdrs, Bytes::from(deep)).await;
    assert_eq!(
        r.json()["error"],
        "request body nests too deeply",
        "{}",
        r.text()
    );
    assert!(h.forwarded().is_empty());
}

#[tokio::test]
async fn non_streaming_answers_arrive_whole() {
    let h = Harness::start().await;
    let r = h
        .post_json("/api/chat", "alice", &chat_body("llama3.2", false))
        .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["done"], true);
    assert_eq!(v["message"]["role"], "assistant");
    let r = h
        .post_json(
            "/api/embed",
            "alice",
            &json!({"model": "nomic-embed-text", "input": ["a", "b"]}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["embeddings"].as_array().unwrap().len(), 2);
    let r = h.get("/api/version", Some(&h.bearer("alice"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["version"], corral_testsupport::VERSION);
    let r = h.get("/", Some(&h.bearer("alice"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "Ollama is running");
}

/// Heads hyper refuses before the gate's service sees them: the answer still carries a JSON
/// error in the dialect of the path, one audit record is written, and nothing goes upstream.
#[tokio::test]
async fn heads_the_http_parser_refuses_get_a_json_error_and_an_audit_record() {
    let h = Harness::start().await;
    let key = h.bearer("alice");
    let cases: [(String, u16, &str); 4] = [
        (
            format!("POST /api/chat HTTP/1.1\r\nHost: x\r\nAuthorization: {key}\r\nX Y: z\r\nContent-Length: 2\r\n\r\n{{}}"),
            400,
            "ollama",
        ),
        (
            format!("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: {key}\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{{}}"),
            400,
            "openai",
        ),
        (
            format!("POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: {key}\r\nX: a\r\n b\r\n\r\n"),
            400,
            "anthropic",
        ),
        (
            format!("GET /api/tags HTTP/1.1\r\nHost: x\r\nAuthorization: {key}\r\n{}\r\n", "X-Pad: 1\r\n".repeat(150)),
            431,
            "ollama",
        ),
    ];
    for (raw, status, dialect) in &cases {
        let r = raw_http(h.addr, raw.as_bytes()).await.unwrap();
        assert_eq!(r.status, Some(*status), "{raw:.60}: {r:?}");
        let ct = r.headers.iter().find(|(n, _)| n == "content-type");
        assert_eq!(ct.map(|(_, v)| v.as_str()), Some("application/json"));
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("a JSON body");
        match *dialect {
            "ollama" => assert!(v["error"].is_string(), "{v}"),
            "openai" => assert_eq!(v["error"]["type"], "invalid_request_error", "{v}"),
            _ => assert_eq!(v["type"], "error", "{v}"),
        }
    }
    for want in [400, 431] {
        let rec = h
            .wait_audit(Duration::from_secs(5), |r| {
                r["http"]["response"]["status_code"] == want
            })
            .await
            .unwrap_or_else(|| panic!("no audit record of the {want}"));
        assert_eq!(rec["event"]["action"], "bad_request");
        assert_eq!(rec["corral"]["decision"], "deny");
    }
    let recs = h.audit_records();
    assert_eq!(recs.len(), cases.len(), "one record per refused head");
    assert_eq!(recs[0]["url"]["path"], "/api/chat");
    assert_eq!(recs[0]["http"]["request"]["method"], "POST");
    assert_eq!(recs[0]["corral"]["reason"], "malformed_request");
    assert!(h.forwarded().is_empty(), "nothing reached upstream");

    // After a request was served on a connection, a refused head still ends it with an error
    // status (hyper's own, without a body) and is still audited.
    let two = format!(
        "GET /api/version HTTP/1.1\r\nHost: x\r\nAuthorization: {key}\r\n\r\nGET /api/version HTTP/1.1\r\nX Y: z\r\n\r\n"
    );
    let out = raw_bytes(h.addr, two.as_bytes()).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    let malformed = || {
        h.audit_records()
            .iter()
            .filter(|r| r["corral"]["reason"] == "malformed_request")
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while malformed() < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(malformed(), 4);
}

/// Everything the gate sends on a connection until it closes.
async fn raw_bytes(addr: std::net::SocketAddr, request: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    out
}
