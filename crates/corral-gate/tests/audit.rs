//! Audit records: one per request, allowed and refused, with ECS fields and the upstream's token
//! counts, never prompt text or secrets, intact chain after a graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// An ECS field by dotted name, nested (`{"event":{"action":..}}`) or flat (`"event.action"`).
fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    if let Some(x) = v.get(name) {
        return Some(x);
    }
    let mut cur = v;
    let parts: Vec<&str> = name.split('.').collect();
    let mut i = 0;
    while i < parts.len() {
        // Allow mixed forms such as {"http":{"request.method":..}}.
        let mut found = None;
        for j in (i + 1..=parts.len()).rev() {
            if let Some(x) = cur.get(parts[i..j].join(".")) {
                found = Some((x, j));
                break;
            }
        }
        let (x, j) = found?;
        cur = x;
        i = j;
    }
    Some(cur)
}

fn s<'a>(v: &'a Value, name: &str) -> &'a str {
    field(v, name)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{name} missing in {v}"))
}

const MARKER: &str = "PROMPT-MARKER-7f3a9c";

fn by_path<'a>(recs: &'a [Value], path: &str) -> Vec<&'a Value> {
    recs.iter()
        .filter(|r| field(r, "url.path").and_then(Value::as_str) == Some(path))
        .collect()
}

#[tokio::test]
async fn allowed_and_refused_requests_are_audited_without_prompt_text() {
    let mut h = Harness::with_policies().await;
    let prompt = json!({"model": "llama3.2",
        "messages": [{"role": "user", "content": format!("{MARKER} tell me a secret")}],
        "stream": true});
    let (resp, _c) = h.stream_json("/api/chat", "alice", &prompt).await;
    assert_eq!(resp.status(), 200);
    read_all(&mut resp.into_body(), T).await.unwrap();

    let mut v1 = json!({"model": "llama3.2", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": MARKER}]});
    let (resp, _c) = h.stream_json("/v1/chat/completions", "alice", &v1).await;
    assert_eq!(resp.status(), 200);
    read_all(&mut resp.into_body(), T).await.unwrap();
    v1["stream"] = json!(false);
    assert_eq!(
        h.post_json("/v1/chat/completions", "alice", &v1)
            .await
            .status,
        200
    );

    let refused = json!({"model": "secret-model", "prompt": MARKER});
    assert_eq!(
        h.post_json("/api/generate", "alice", &refused).await.status,
        403
    );
    assert_eq!(
        h.post_json("/api/pull", "alice", &json!({"model": MARKER}))
            .await
            .status,
        403
    );
    assert_eq!(
        h.get("/api/tags", Some("Bearer crl_nope")).await.status,
        401
    );

    h.stop().await;
    let text = std::fs::read_to_string(&h.audit_path).unwrap();
    assert!(!text.contains(MARKER), "prompt text in the audit log");
    for (name, secret) in &h.keys {
        let secret_part = secret.rsplit('_').next().unwrap();
        assert!(
            !text.contains(secret_part),
            "secret of {name} in the audit log"
        );
    }
    let recs = h.audit_records();
    assert!(recs.len() >= 6, "{} records", recs.len());
    for r in &recs {
        for f in [
            "@timestamp",
            "event.action",
            "event.outcome",
            "source.ip",
            "http.request.method",
            "url.path",
            "http.response.status_code",
            "event.duration",
        ] {
            assert!(field(r, f).is_some(), "{f} missing in {r}");
        }
        assert_eq!(s(r, "source.ip"), "127.0.0.1");
    }

    let chat = by_path(&recs, "/api/chat");
    assert_eq!(chat.len(), 1, "{chat:?}");
    let c = chat[0];
    assert_eq!(s(c, "user.name"), "alice");
    assert_eq!(s(c, "corral.policy"), "user");
    assert_eq!(s(c, "corral.decision"), "allow");
    assert_eq!(s(c, "corral.endpoint_class"), "inference");
    assert!(s(c, "corral.model").starts_with("llama3.2"), "{c}");
    assert_eq!(s(c, "event.outcome"), "success");
    assert_eq!(field(c, "http.response.status_code").unwrap(), 200);
    assert_eq!(
        field(c, "corral.prompt_tokens").unwrap(),
        corral_testsupport::PROMPT_TOKENS
    );
    assert_eq!(field(c, "corral.completion_tokens").unwrap(), 4);
    assert_eq!(field(c, "corral.streamed").unwrap(), true);
    assert!(field(c, "corral.key_id")
        .and_then(Value::as_str)
        .is_some_and(|k| !k.is_empty()));
    assert!(
        field(c, "corral.bytes_out")
            .and_then(Value::as_u64)
            .unwrap()
            > 0
    );

    let v1recs = by_path(&recs, "/v1/chat/completions");
    assert_eq!(v1recs.len(), 2);
    for r in v1recs {
        assert_eq!(
            field(r, "corral.prompt_tokens").unwrap(),
            corral_testsupport::PROMPT_TOKENS,
            "{r}"
        );
        assert_eq!(field(r, "corral.completion_tokens").unwrap(), 4, "{r}");
    }

    let gen = by_path(&recs, "/api/generate");
    assert_eq!(gen.len(), 1);
    assert_eq!(s(gen[0], "corral.decision"), "deny");
    assert_eq!(s(gen[0], "corral.reason"), "model_not_allowed");
    assert_eq!(field(gen[0], "http.response.status_code").unwrap(), 403);
    assert_eq!(s(gen[0], "event.outcome"), "failure");

    let pull = by_path(&recs, "/api/pull");
    assert_eq!(pull.len(), 1);
    assert_eq!(s(pull[0], "corral.reason"), "endpoint_class");
    assert_eq!(s(pull[0], "corral.endpoint_class"), "admin");

    let tags = by_path(&recs, "/api/tags");
    assert!(tags
        .iter()
        .any(|r| field(r, "http.response.status_code").unwrap() == 401));

    let report = corral_audit::verify(&[h.audit_path.clone()]).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.records as usize, recs.len());
}

#[tokio::test]
async fn clamps_and_cancelled_streams_are_recorded() {
    let mut h = Harness::with_policies().await;
    let body = json!({"model": "llama3.2", "prompt": "x", "stream": false,
                      "options": {"num_ctx": 999999}});
    assert_eq!(
        h.post_json("/api/generate", "clara", &body).await.status,
        200
    );
    let (resp, conn) = h
        .stream_json("/api/chat", "alice", &chat_body("endless", true))
        .await;
    let mut b = resp.into_body();
    next_data(&mut b, T).await.unwrap().unwrap();
    drop(b);
    drop(conn);
    assert!(h
        .mock
        .wait_for_disconnect(Duration::from_secs(3))
        .await
        .is_some());
    h.stop().await;
    let recs = h.audit_records();
    let gen = by_path(&recs, "/api/generate");
    let clamps = field(gen[0], "corral.clamps").unwrap();
    assert!(
        clamps.as_array().is_some_and(|a| !a.is_empty()),
        "clamps not recorded: {}",
        gen[0]
    );
    let chat = by_path(&recs, "/api/chat");
    assert_eq!(chat.len(), 1, "the cancelled stream is audited too");
    assert_eq!(field(chat[0], "corral.streamed").unwrap(), true);
}

/// A log that cannot be written: the gate stops serving (503, in the client's dialect) rather
/// than forward requests it cannot record.
#[tokio::test]
async fn requests_are_refused_while_the_audit_log_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("audit.ndjson");
    let mut h = Harness::builder().audit_path(full.clone()).start().await;
    // Opened as a file (a device is refused at start-up), then every write fails with ENOSPC.
    std::fs::remove_file(&full).unwrap();
    std::os::unix::fs::symlink("/dev/full", &full).unwrap();
    // The first records fail to write; from then on the gate refuses.
    let mut refused = None;
    for _ in 0..100 {
        let r = h
            .post_json("/api/chat", "alice", &chat_body("llama3.2", false))
            .await;
        if r.status == 503 {
            refused = Some(r);
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = refused.expect("refused once the audit log failed");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.json()["error"].as_str().unwrap().contains("audit log"));
    let forwarded = h.forwarded().len();
    let v1 = h
        .post_json(
            "/v1/chat/completions",
            "alice",
            &json!({"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(v1.status, 503);
    assert_eq!(v1.json()["error"]["code"], "audit_unavailable");
    assert_eq!(
        h.forwarded().len(),
        forwarded,
        "nothing more reached upstream"
    );
    // At shutdown the writer says how many records it could not write, the refusals included.
    let err = h.stop_audit_result().await.unwrap_err();
    assert!(
        matches!(err, corral_audit::AuditError::Unwritten { records, .. } if records >= 3),
        "{err}"
    );
}

/// A stream still running when the shutdown grace period ends is cut by the gate, and its
/// record says so rather than blaming the client.
#[tokio::test]
async fn a_stream_cut_at_the_end_of_the_grace_period_is_recorded_as_the_gates_doing() {
    let mut h = Harness::builder()
        .shutdown_grace(Duration::from_millis(300))
        .start()
        .await;
    let (resp, _c) = h
        .stream_json("/api/chat", "alice", &chat_body("endless", true))
        .await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    assert!(next_data(&mut body, T).await.unwrap().is_some());
    h.stop().await;
    let rec = h
        .audit_records()
        .into_iter()
        .find(|r| r["corral"]["route"] == "api.chat")
        .expect("the cut stream is recorded");
    assert_eq!(rec["corral"]["reason"], "gate_shutdown", "{rec}");
    assert_eq!(rec["event"]["outcome"], "failure");
}

/// A streamed OpenAI completion whose client did not ask for usage is still audited with the
/// upstream's token counts: the gate asks the upstream for them and keeps the extra usage
/// chunk from the client, which gets the stream it asked for.
#[tokio::test]
async fn streamed_v1_completions_record_tokens_without_include_usage() {
    let mut h = Harness::start().await;
    let chat = json!({"model": "llama3.2", "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let completion = json!({"model": "llama3.2", "stream": true, "prompt": "hi"});
    for (path, body) in [
        ("/v1/chat/completions", &chat),
        ("/v1/completions", &completion),
    ] {
        let (resp, _c) = h.stream_json(path, "alice", body).await;
        assert_eq!(resp.status(), 200);
        assert!(resp.headers().get("content-length").is_none());
        let text = String::from_utf8(read_all(&mut resp.into_body(), T).await.unwrap()).unwrap();
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        assert!(
            !text.contains("\"usage\""),
            "usage chunk the client did not ask for: {text}"
        );
        let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
        // Four content chunks, the finish chunk and [DONE]: every event whole.
        assert_eq!(events.len(), 6, "{text}");
        for e in &events[..5] {
            let v: Value = serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap();
            assert!(!v["choices"].as_array().unwrap().is_empty(), "{e}");
        }
    }
    // The client that asks keeps its usage chunk.
    let mut asked = chat.clone();
    asked["stream_options"] = json!({"include_usage": true});
    let (resp, _c) = h.stream_json("/v1/chat/completions", "alice", &asked).await;
    let text = String::from_utf8(read_all(&mut resp.into_body(), T).await.unwrap()).unwrap();
    assert!(text.contains("\"usage\":{"), "{text}");

    let sent: Vec<Value> = h
        .forwarded()
        .iter()
        .filter(|r| r.target.starts_with("/v1/"))
        .map(|r| r.json().unwrap())
        .collect();
    assert_eq!(sent.len(), 3);
    for b in &sent {
        assert_eq!(b["stream_options"]["include_usage"], true, "{b}");
    }

    h.stop().await;
    let recs = h.audit_records();
    let v1: Vec<&Value> = recs
        .iter()
        .filter(|r| s(r, "url.path").starts_with("/v1/"))
        .collect();
    assert_eq!(v1.len(), 3);
    for r in v1 {
        assert_eq!(field(r, "corral.streamed").unwrap(), true, "{r}");
        assert_eq!(
            field(r, "corral.prompt_tokens").unwrap(),
            corral_testsupport::PROMPT_TOKENS,
            "{r}"
        );
        assert_eq!(field(r, "corral.completion_tokens").unwrap(), 4, "{r}");
    }
}

/// A generation (or pull) that fails after the upstream sent its success status ends with an
/// error inside the body, which the client gets as it was sent; the record says the request
/// failed, and why, instead of calling it a success.
#[tokio::test]
async fn errors_the_upstream_reports_inside_a_stream_make_the_record_a_failure() {
    let mut h = Harness::start().await;
    let streams = [
        ("/api/chat", "alice", chat_body("failing", true)),
        (
            "/api/generate",
            "alice",
            json!({"model": "failing", "prompt": "hi"}),
        ),
        (
            "/v1/chat/completions",
            "alice",
            json!({"model": "failing", "stream": true,
                   "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/v1/messages",
            "alice",
            json!({"model": "failing", "stream": true, "max_tokens": 50,
                   "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/v1/responses",
            "alice",
            json!({"model": "failing", "stream": true, "input": "hi"}),
        ),
        ("/api/pull", "root", json!({"model": "failing"})),
    ];
    for (path, key, body) in &streams {
        let (resp, _c) = h.stream_json(path, key, body).await;
        assert_eq!(resp.status(), 200, "{path}");
        let text = String::from_utf8(read_all(&mut resp.into_body(), T).await.unwrap()).unwrap();
        assert!(
            text.contains(corral_testsupport::FAILURE_MESSAGE),
            "{path}: the upstream's error reaches the client: {text}"
        );
    }
    // The same stream without the failure stays a success.
    let (resp, _c) = h
        .stream_json("/api/chat", "alice", &chat_body("llama3.2", true))
        .await;
    read_all(&mut resp.into_body(), T).await.unwrap();
    h.stop().await;

    let recs = h.audit_records();
    for (path, _, _) in &streams {
        let rec: Vec<&Value> = by_path(&recs, path)
            .into_iter()
            .filter(|r| s(r, "corral.model").starts_with("failing"))
            .collect();
        assert_eq!(rec.len(), 1, "{path}");
        let rec = rec[0];
        assert_eq!(s(rec, "event.outcome"), "failure", "{path}: {rec}");
        assert_eq!(s(rec, "corral.reason"), "upstream_reported_error", "{rec}");
        assert_eq!(s(rec, "event.action"), "proxy", "{rec}");
        assert_eq!(field(rec, "http.response.status_code").unwrap(), 200);
    }
    let ok: Vec<&Value> = by_path(&recs, "/api/chat")
        .into_iter()
        .filter(|r| !s(r, "corral.model").starts_with("failing"))
        .collect();
    assert_eq!(ok.len(), 1);
    assert_eq!(s(ok[0], "event.outcome"), "success", "{}", ok[0]);
    assert!(field(ok[0], "corral.reason").is_none_or(Value::is_null));
}

/// A generation whose stream the upstream ends in order but before its end marker (Ollama's
/// OpenAI layer does so when the generation fails) is recorded as cut short, not as a success;
/// streams that are not generations (a pull's progress) are not held to it.
#[tokio::test]
async fn a_generation_stream_that_stops_before_its_end_is_recorded_as_cut_short() {
    let mut h = Harness::start().await;
    let generations = [
        ("/api/chat", chat_body("truncated", true)),
        (
            "/api/generate",
            json!({"model": "truncated", "prompt": "hi"}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "truncated", "stream": true,
                   "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/v1/completions",
            json!({"model": "truncated", "stream": true, "prompt": "hi"}),
        ),
        (
            "/v1/messages",
            json!({"model": "truncated", "stream": true, "max_tokens": 50,
                   "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "truncated", "stream": true, "input": "hi"}),
        ),
    ];
    for (path, body) in &generations {
        let (resp, _c) = h.stream_json(path, "alice", body).await;
        assert_eq!(resp.status(), 200, "{path}");
        read_all(&mut resp.into_body(), T).await.unwrap();
        // The whole stream, for contrast.
        let mut whole = body.clone();
        whole["model"] = json!("llama3.2");
        let (resp, _c) = h.stream_json(path, "alice", &whole).await;
        read_all(&mut resp.into_body(), T).await.unwrap();
    }
    let (resp, _c) = h
        .stream_json("/api/pull", "root", &json!({"model": "truncated"}))
        .await;
    read_all(&mut resp.into_body(), T).await.unwrap();
    h.stop().await;

    let recs = h.audit_records();
    for (path, _) in &generations {
        for r in by_path(&recs, path) {
            if s(r, "corral.model").starts_with("truncated") {
                assert_eq!(s(r, "event.outcome"), "failure", "{path}: {r}");
                assert_eq!(s(r, "corral.reason"), "upstream_stream_incomplete", "{r}");
            } else {
                assert_eq!(s(r, "event.outcome"), "success", "{path}: {r}");
            }
        }
        assert_eq!(by_path(&recs, path).len(), 2, "{path}");
    }
    let pull = by_path(&recs, "/api/pull");
    assert_eq!(s(pull[0], "event.outcome"), "success", "{}", pull[0]);
}
