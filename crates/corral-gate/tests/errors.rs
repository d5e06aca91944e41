//! Upstream failures in the client's dialect: down → 502, silent past the idle timeout → 504,
//! upstream error statuses passed on; nothing internal leaks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

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
