//! Streaming: chunks pass through as they come, client disconnects reach the upstream at once,
//! and upstream stalls or aborts end the stream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use corral_testsupport::{MockOllama, PROMPT_TOKENS, SLOW_CHUNKS};
use serde_json::{json, Value};

fn ndjson_lines(b: &[u8]) -> Vec<Value> {
    std::str::from_utf8(b)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[tokio::test]
async fn ndjson_first_chunk_arrives_before_upstream_finishes() {
    let h = Harness::start().await;
    let started = Instant::now();
    let (resp, _c) = h
        .stream_json("/api/chat", "alice", &chat_body("slow:latest", true))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        "application/x-ndjson"
    );
    let mut body = resp.into_body();
    let first = next_data(&mut body, T).await.unwrap().unwrap();
    let first_at = started.elapsed();
    // The whole stream takes (SLOW_CHUNKS - 1) × 150 ms ≈ 1.35 s.
    assert!(
        first_at < Duration::from_millis(700),
        "first chunk after {first_at:?}"
    );
    let first: Value =
        serde_json::from_slice(first.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(first["done"], false);
    let mut rest = read_all(&mut body, T).await.unwrap();
    let total = started.elapsed();
    assert!(
        total >= Duration::from_millis(1200),
        "stream finished after {total:?}"
    );
    let mut all = serde_json::to_vec(&first).unwrap();
    all.push(b'\n');
    all.append(&mut rest);
    let lines = ndjson_lines(&all);
    assert_eq!(lines.len(), SLOW_CHUNKS + 1);
    let last = lines.last().unwrap();
    assert_eq!(last["done"], true);
    assert_eq!(last["eval_count"], SLOW_CHUNKS);
    assert_eq!(last["prompt_eval_count"], PROMPT_TOKENS);
}

#[tokio::test]
async fn sse_first_chunk_arrives_before_upstream_finishes() {
    let h = Harness::start().await;
    let mut b = chat_body("slow", true);
    b["stream_options"] = json!({"include_usage": true});
    let started = Instant::now();
    let (resp, _c) = h.stream_json("/v1/chat/completions", "alice", &b).await;
    assert_eq!(resp.status(), 200);
    assert!(resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut body = resp.into_body();
    let first = next_data(&mut body, T).await.unwrap().unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
    assert!(first.starts_with(b"data: {"), "{first:?}");
    let rest = read_all(&mut body, T).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1200));
    let text = String::from_utf8(rest).unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(text.contains("\"usage\":{"), "{text}");
}

#[tokio::test]
async fn anthropic_and_responses_streams_pass_through() {
    let h = Harness::start().await;
    let b = json!({"model": "llama3.2", "max_tokens": 64, "stream": true,
                   "messages": [{"role": "user", "content": "hi"}]});
    let (resp, _c) = h.stream_json("/v1/messages", "alice", &b).await;
    assert_eq!(resp.status(), 200);
    let text = String::from_utf8(read_all(&mut resp.into_body(), T).await.unwrap()).unwrap();
    assert!(text.starts_with("event: message_start\n"), "{text}");
    assert!(
        text.trim_end()
            .ends_with("data: {\"type\":\"message_stop\"}"),
        "{text}"
    );

    let b = json!({"model": "llama3.2", "input": "hi", "stream": true});
    let (resp, _c) = h.stream_json("/v1/responses", "alice", &b).await;
    assert_eq!(resp.status(), 200);
    let text = String::from_utf8(read_all(&mut resp.into_body(), T).await.unwrap()).unwrap();
    assert!(text.contains("event: response.completed"), "{text}");
}

#[tokio::test]
async fn long_stream_arrives_complete_and_in_order() {
    let h = Harness::start().await;
    let (resp, _c) = h
        .stream_json(
            "/api/generate",
            "alice",
            &json!({"model": "long", "prompt": "x"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let lines = ndjson_lines(&read_all(&mut resp.into_body(), T).await.unwrap());
    assert_eq!(lines.len(), corral_testsupport::LONG_CHUNKS + 1);
    let text: String = lines
        .iter()
        .map(|l| l["response"].as_str().unwrap())
        .collect();
    let expected: String = (0..corral_testsupport::LONG_CHUNKS)
        .map(corral_testsupport::shapes::word)
        .collect();
    assert_eq!(text, expected);
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_request_promptly() {
    let h = Harness::start().await;
    let (resp, conn) = h
        .stream_json("/api/chat", "alice", &chat_body("endless", true))
        .await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    for _ in 0..3 {
        next_data(&mut body, T).await.unwrap().unwrap();
    }
    assert!(h.mock.wait_for_disconnect(Duration::ZERO).await.is_none());
    let left = Instant::now();
    drop(body);
    drop(conn);
    let gone = h
        .mock
        .wait_for_disconnect(Duration::from_secs(3))
        .await
        .expect("upstream request cancelled after the client left");
    assert_eq!(gone.path, "/api/chat");
    assert!(
        left.elapsed() < Duration::from_secs(1),
        "upstream saw the disconnect only after {:?}",
        left.elapsed()
    );
}

#[tokio::test]
async fn client_disconnect_during_a_cold_start_cancels_upstream() {
    let h = Harness::builder()
        .mock(MockOllama::builder().cold_delay(Duration::from_secs(5)))
        .start()
        .await;
    let task = h.post_json_in_background("/api/chat", "alice", &chat_body("cold", true));
    assert!(h.mock.wait_for_requests(1, T).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    task.abort();
    let left = Instant::now();
    let gone = h.mock.wait_for_disconnect(Duration::from_secs(3)).await;
    assert!(
        gone.is_some(),
        "upstream still waiting for a client that left"
    );
    assert!(
        left.elapsed() < Duration::from_secs(1),
        "{:?}",
        left.elapsed()
    );
    // The generation was started upstream: the request is on record although no response was.
    let record = h
        .wait_audit(T, |r| r["url"]["path"] == "/api/chat")
        .await
        .expect("a request whose client left before the answer still has its audit record");
    assert_eq!(record["corral"]["reason"], "client_disconnected");
    assert_eq!(record["corral"]["decision"], "allow");
    assert_eq!(record["corral"]["model"], "cold:latest");
    assert_eq!(record["http"]["response"]["status_code"], 499);
    assert_eq!(record["event"]["outcome"], "failure");
}

#[tokio::test]
async fn mid_stream_stall_ends_the_stream_after_the_idle_timeout() {
    let h = Harness::builder()
        .idle_timeout(Duration::from_millis(500))
        .start()
        .await;
    let started = Instant::now();
    let (resp, _c) = h
        .stream_json("/api/chat", "alice", &chat_body("stall", true))
        .await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = next_data(&mut body, T).await.unwrap().unwrap();
    assert!(!first.is_empty());
    // Then nothing: the gate ends the stream soon after 500 ms of silence, with an error line
    // as Ollama ends its own failed streams.
    let rest = read_all(&mut body, Duration::from_secs(5)).await.unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "stream ended after {took:?}");
    let rest = String::from_utf8_lossy(&rest);
    assert!(!rest.contains("\"done\":true"));
    let last: serde_json::Value = serde_json::from_str(rest.lines().last().unwrap()).unwrap();
    assert_eq!(
        last,
        serde_json::json!({"error": "upstream idle for longer than the idle timeout"})
    );
    // And the upstream request is abandoned, not left hanging.
    assert!(h
        .mock
        .wait_for_disconnect(Duration::from_secs(2))
        .await
        .is_some());
}

/// An idle timeout too long to add to the clock (the library does not bound it) means no
/// idle limit: the stream goes on. It panicked the connection's task at its first pause.
#[tokio::test]
async fn an_idle_timeout_past_the_clock_does_not_end_the_stream() {
    let h = Harness::builder()
        .idle_timeout(Duration::MAX)
        .mock(MockOllama::builder().slow_delay(Duration::from_millis(50)))
        .start()
        .await;
    let (resp, _c) = h
        .stream_json("/api/chat", "alice", &chat_body("slow", true))
        .await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let all = read_all(&mut body, Duration::from_secs(10)).await.unwrap();
    let lines = ndjson_lines(&all);
    assert_eq!(lines.last().unwrap()["done"], true, "{lines:?}");
}

#[tokio::test]
async fn upstream_abort_mid_stream_is_not_presented_as_a_complete_answer() {
    let h = Harness::start().await;
    let (resp, _c) = h
        .stream_json("/api/chat", "alice", &chat_body("close", true))
        .await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut got = Vec::new();
    let outcome = loop {
        match next_data(&mut body, Duration::from_secs(5)).await {
            Ok(Some(d)) => got.extend_from_slice(&d),
            Ok(None) => break "clean end",
            Err(e) => {
                break if e == "timed out" {
                    "timed out"
                } else {
                    "error"
                }
            }
        }
    };
    assert_eq!(outcome, "clean end", "the stream ends with an error line");
    let got = String::from_utf8_lossy(&got);
    assert!(!got.contains("\"done\":true"));
    // The cut is reported in the API's own shape, not hidden and not as a broken connection.
    let last: serde_json::Value = serde_json::from_str(got.lines().last().unwrap()).unwrap();
    assert_eq!(last, serde_json::json!({"error": "upstream stream failed"}));
    let rec = h
        .wait_audit(T, |r| r["corral"]["reason"] == "upstream_stream_error")
        .await
        .expect("recorded as an upstream failure");
    assert_eq!(rec["event"]["outcome"], "failure");
}

#[tokio::test]
async fn a_stalled_sse_stream_ends_with_an_error_event_in_its_dialect() {
    let h = Harness::builder()
        .idle_timeout(Duration::from_millis(400))
        .start()
        .await;
    let openai = serde_json::json!({"model": "stall", "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let anthropic = serde_json::json!({"model": "stall", "stream": true, "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}]});
    for (path, body, want) in [
        (
            "/v1/chat/completions",
            openai,
            "data: {\"error\":{\"code\":\"upstream_idle_timeout\",\"message\":\"upstream idle for longer than the idle timeout\",\"param\":null,\"type\":\"api_error\"}}\n\n",
        ),
        (
            "/v1/messages",
            anthropic,
            "event: error\ndata: {\"error\":{\"message\":\"upstream idle for longer than the idle timeout\",\"type\":\"api_error\"},\"type\":\"error\"}\n\n",
        ),
    ] {
        let (resp, _c) = h.stream_json(path, "alice", &body).await;
        assert_eq!(resp.status(), 200, "{path}");
        let mut b = resp.into_body();
        let all = read_all(&mut b, Duration::from_secs(5)).await.unwrap();
        let all = String::from_utf8_lossy(&all);
        assert!(all.ends_with(want), "{path}: {all}");
        assert!(all.len() > want.len(), "{path}: chunks before the error");
    }
}

#[tokio::test]
async fn cold_start_within_the_idle_timeout_succeeds() {
    let h = Harness::builder()
        .mock(MockOllama::builder().cold_delay(Duration::from_millis(800)))
        .idle_timeout(Duration::from_secs(3))
        .start()
        .await;
    let started = Instant::now();
    let r = h
        .post_json("/api/chat", "alice", &chat_body("cold", false))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(started.elapsed() >= Duration::from_millis(800));
    assert_eq!(r.json()["done"], true);
}

#[tokio::test]
async fn the_idle_timeout_is_between_chunks_not_for_the_whole_stream() {
    // Chunks 150 ms apart, 400 ms allowed between them: the stream lasts far longer than the
    // idle timeout and must still arrive whole.
    let h = Harness::builder()
        .mock(MockOllama::builder().slow_delay(Duration::from_millis(150)))
        .idle_timeout(Duration::from_millis(400))
        .start()
        .await;
    let started = Instant::now();
    let (resp, _c) = h
        .stream_json("/api/chat", "alice", &chat_body("slow", true))
        .await;
    assert_eq!(resp.status(), 200);
    let lines = ndjson_lines(&read_all(&mut resp.into_body(), T).await.unwrap());
    assert!(started.elapsed() >= Duration::from_millis(1000));
    assert_eq!(lines.len(), SLOW_CHUNKS + 1);
    assert_eq!(lines.last().unwrap()["done"], true);
}

#[tokio::test]
async fn many_concurrent_streams_all_complete() {
    let h = Harness::start().await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let addr = h.addr;
        let auth = h.bearer("alice");
        tasks.push(tokio::spawn(async move {
            let path = if i % 2 == 0 {
                "/api/chat"
            } else {
                "/v1/chat/completions"
            };
            let (resp, _c) = open(
                addr,
                "POST",
                path,
                &[
                    ("authorization", auth),
                    ("content-type", "application/json".into()),
                ],
                chat_body("llama3.2", true).to_string().into(),
            )
            .await;
            assert_eq!(resp.status(), 200);
            read_all(&mut resp.into_body(), T).await.unwrap()
        }));
    }
    for t in tasks {
        let body = t.await.unwrap();
        assert!(!body.is_empty());
    }
    assert_eq!(h.forwarded().len(), 32);
}

/// When the shutdown grace period is over, a stream still running ends with an error event in
/// its dialect (a complete, well-framed response, as for an idle upstream), a request still
/// waiting for the upstream's answer gets a 503 in its dialect, both upstream requests are
/// cancelled, and each request has its audit record.
#[tokio::test]
async fn requests_running_at_the_end_of_the_grace_period_end_in_their_dialect() {
    let mut h = Harness::builder()
        .mock(MockOllama::builder().cold_delay(Duration::from_secs(30)))
        .shutdown_grace(Duration::from_millis(300))
        .start()
        .await;
    let (resp, _c) = h
        .stream_json("/api/chat", "alice", &chat_body("endless", true))
        .await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    assert!(next_data(&mut body, T).await.unwrap().is_some());
    let (sse, _c2) = h
        .stream_json(
            "/v1/chat/completions",
            "alice",
            &json!({"model": "endless", "stream": true,
                "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(sse.status(), 200);
    let mut sse = sse.into_body();
    assert!(next_data(&mut sse, T).await.unwrap().is_some());
    let addr = h.addr;
    let auth = h.bearer("alice");
    let cold = tokio::spawn(async move {
        send(
            addr,
            "POST",
            "/v1/chat/completions",
            &[
                ("authorization", auth),
                ("content-type", "application/json".into()),
            ],
            json!({"model": "cold", "messages": [{"role": "user", "content": "hi"}]})
                .to_string()
                .into(),
        )
        .await
    });
    let deadline = Instant::now() + T;
    while h.forwarded().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the cold request never reached upstream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let reading = tokio::spawn(async move {
        let ndjson = read_all(&mut body, T).await;
        let sse = read_all(&mut sse, T).await;
        (ndjson, sse)
    });
    h.stop().await;
    let (ndjson, sse) = reading.await.unwrap();
    let ndjson = String::from_utf8(ndjson.expect("the NDJSON stream ends cleanly")).unwrap();
    let last: Value = serde_json::from_str(ndjson.lines().last().unwrap()).unwrap();
    assert_eq!(
        last,
        json!({"error": "the gate is shutting down; the request was cut"})
    );
    let sse = String::from_utf8(sse.expect("the SSE stream ends cleanly")).unwrap();
    let event = sse.trim_end().rsplit("\n\n").next().unwrap();
    let v: Value = serde_json::from_str(event.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(v["error"]["code"], "gate_shutdown", "{sse}");
    let cold = cold.await.unwrap();
    assert_eq!(cold.status, 503);
    assert_eq!(cold.json()["error"]["code"], "gate_shutdown");

    let recs = h.audit_records();
    let cut: Vec<&Value> = recs
        .iter()
        .filter(|r| r["corral"]["reason"] == "gate_shutdown")
        .collect();
    assert_eq!(cut.len(), 3, "{recs:?}");
    // The three generations were cancelled upstream.
    let deadline = Instant::now() + T;
    while h.forwarded().iter().filter(|r| r.disconnected).count() < 3 {
        assert!(Instant::now() < deadline, "{:?}", h.forwarded());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A client that closes its side as soon as it has sent the request leaves at once as far as
/// the gate is concerned (nothing more can be told to it reliably), but the request is still
/// on record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_client_closes_at_once_is_still_recorded() {
    use tokio::io::AsyncWriteExt;
    let h = Harness::start().await;
    for i in 0..5 {
        let body = chat_body("slow", true).to_string();
        let req = raw_post(h.addr, "/api/chat", &h.bearer("alice"), "", body.as_bytes());
        let mut s = tokio::net::TcpStream::connect(h.addr).await.unwrap();
        s.write_all(&req).await.unwrap();
        s.shutdown().await.unwrap();
        let n = i + 1;
        let recorded = h
            .wait_audit(T, |_| {
                h.audit_records()
                    .iter()
                    .filter(|r| r["url"]["path"] == "/api/chat")
                    .count()
                    >= n
            })
            .await;
        assert!(recorded.is_some(), "request {n} left no audit record");
    }
    // Once each, never twice (a 499 record and the stream's own).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let records: Vec<_> = h
        .audit_records()
        .into_iter()
        .filter(|r| r["url"]["path"] == "/api/chat")
        .collect();
    assert_eq!(records.len(), 5, "{records:#?}");
}
