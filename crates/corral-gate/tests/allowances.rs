//! Per-key allowances end to end: request rate, running requests and token quotas, refused
//! with 429 and `Retry-After` in the client's dialect, nothing forwarded, and on record.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(5);

async fn limited(policy_toml: &str) -> Harness {
    Harness::builder()
        .config(&format!("[policies.user]\n{policy_toml}"))
        .start()
        .await
}

/// A whole-answer chat with an allowed model, as key `key`.
async fn chat(h: &Harness, key: &str) -> Reply {
    h.post_json("/api/chat", key, &chat_body("llama3.2", false))
        .await
}

fn retry_after(r: &Reply) -> u64 {
    r.header("retry-after")
        .expect("a 429 says when to retry")
        .parse()
        .expect("Retry-After is whole seconds")
}

async fn record_with_reason(h: &Harness, reason: &str) -> Value {
    h.wait_audit(T, |r| r["corral"]["reason"] == reason)
        .await
        .unwrap_or_else(|| panic!("no audit record with reason {reason}"))
}

#[tokio::test]
async fn the_request_rate_is_held_per_key_in_each_dialect() {
    let h = limited("max_requests_per_minute = 3\n").await;
    for i in 0..3 {
        let r = chat(&h, "alice").await;
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
    }
    let forwarded = h.forwarded().len();
    assert_eq!(forwarded, 3);

    // Native dialect: Ollama's error shape.
    let r = chat(&h, "alice").await;
    assert_eq!(r.status, 429, "{}", r.text());
    let wait = retry_after(&r);
    assert!((1..=20).contains(&wait), "Retry-After {wait}");
    let v = r.json();
    assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
    let msg = v["error"].as_str().unwrap();
    assert!(msg.contains("3 requests per minute"), "{msg}");

    // OpenAI dialect: its shape, its type for 429, the rule as the code.
    let body = json!({"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]});
    let r = h.post_json("/v1/chat/completions", "alice", &body).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(retry_after(&r) >= 1);
    let v = r.json();
    assert_eq!(v["error"]["type"], "rate_limit_error", "{v}");
    assert_eq!(v["error"]["code"], "rate_limited", "{v}");

    // Anthropic dialect.
    let body = json!({"model": "llama3.2", "max_tokens": 8,
                      "messages": [{"role": "user", "content": "hi"}]});
    let r = h.post_json("/v1/messages", "alice", &body).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["error"]["type"], "rate_limit_error");

    // Discovery counts too: every authenticated request is one of the key's.
    let r = h.get("/api/tags", Some(&h.bearer("alice"))).await;
    assert_eq!(r.status, 429, "{}", r.text());

    assert_eq!(
        h.forwarded().len(),
        forwarded,
        "nothing refused was forwarded"
    );

    // Another key (another policy, no limit) is not held back by alice's use.
    for _ in 0..5 {
        let r = chat(&h, "root").await;
        assert_eq!(r.status, 200, "{}", r.text());
    }

    let rec = record_with_reason(&h, "rate_limited").await;
    assert_eq!(rec["http"]["response"]["status_code"], 429, "{rec}");
    assert_eq!(rec["event"]["action"], "deny", "{rec}");
    assert_eq!(rec["corral"]["decision"], "deny", "{rec}");
    assert_eq!(rec["user"]["name"], "alice", "{rec}");
}

#[tokio::test]
async fn an_unknown_key_is_refused_before_any_allowance_is_spent() {
    let h = limited("max_requests_per_minute = 1\n").await;
    for _ in 0..5 {
        let r = h.get("/api/tags", Some("Bearer crl_nope_nope")).await;
        assert_eq!(r.status, 401);
    }
    // A refused class (admin for a user key) is refused before the allowance too.
    let r = h
        .post_json("/api/pull", "alice", &json!({"model": "llama3.2"}))
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = chat(&h, "alice").await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn running_requests_are_limited_until_their_answers_end() {
    let h = limited("max_concurrent_requests = 1\n").await;
    let (resp, _c) = h
        .stream_json("/api/chat", "alice", &chat_body("slow", true))
        .await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    assert!(next_data(&mut body, T).await.unwrap().is_some());

    // While the stream runs, a second request of the same key is refused.
    let r = chat(&h, "alice").await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(retry_after(&r), 1);
    // A short wait is the SDKs' to retry after.
    assert_eq!(r.header("x-should-retry"), None);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("may have 1 at once"));
    assert_eq!(h.forwarded().len(), 1);

    // Once it has ended, the key may send again.
    read_all(&mut body, T).await.unwrap();
    record_with_reason(&h, "concurrency_limited").await;
    h.wait_audit(T, |r| {
        r["url"]["path"] == "/api/chat" && r["corral"]["decision"] == "allow"
    })
    .await
    .expect("the stream's record");
    let r = chat(&h, "alice").await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn a_client_that_leaves_gives_its_place_back() {
    let h = limited("max_concurrent_requests = 1\n").await;
    let (resp, conn) = h
        .stream_json("/api/chat", "alice", &chat_body("slow", true))
        .await;
    let mut body = resp.into_body();
    assert!(next_data(&mut body, T).await.unwrap().is_some());
    drop(body);
    drop(conn);
    h.wait_audit(T, |r| r["corral"]["reason"] == "client_disconnected")
        .await
        .expect("the cancelled stream's record");
    let r = chat(&h, "alice").await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn a_token_quota_is_charged_with_the_upstreams_counts() {
    // One chat costs PROMPT_TOKENS plus its completion: more than this quota.
    let h = limited("max_tokens_per_day = 10\n").await;
    let r = chat(&h, "alice").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let first = h
        .wait_audit(T, |r| r["corral"]["decision"] == "allow")
        .await
        .expect("the first request's record");
    assert!(
        first["corral"]["prompt_tokens"].as_u64().unwrap() >= 10,
        "{first}"
    );

    let r = chat(&h, "alice").await;
    assert_eq!(r.status, 429, "{}", r.text());
    let msg = r.json()["error"].as_str().unwrap().to_string();
    assert!(msg.contains("10 tokens per day"), "{msg}");
    // Hours away: the whole overshoot has to be earned back at 10 a day.
    assert!(retry_after(&r) > 3600, "{:?}", r.header("retry-after"));
    // Too long for an SDK to sleep through before its retries: they are told not to.
    assert_eq!(r.header("x-should-retry"), Some("false"));
    assert_eq!(h.forwarded().len(), 1);
    record_with_reason(&h, "token_quota_exhausted").await;

    // Another key is not charged for alice's tokens.
    let r = chat(&h, "root").await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn a_rotated_key_keeps_its_count() {
    let h = limited("max_requests_per_minute = 1\n").await;
    let r = chat(&h, "alice").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let store = corral_store::KeyStore::open(&h.data_dir).unwrap();
    let (_, secret) = store.rotate("alice").unwrap();
    let bearer = format!("Bearer {}", secret.expose());
    // Within the reload interval the new secret authenticates; the allowance is the name's.
    let deadline = std::time::Instant::now() + T;
    loop {
        let r = send(
            h.addr,
            "GET",
            "/api/tags",
            &[("authorization", bearer.clone())],
            bytes::Bytes::new(),
        )
        .await;
        if r.status != 401 {
            assert_eq!(r.status, 429, "{}", r.text());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "new secret never accepted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_stream_its_client_leaves_is_charged_for_what_it_streamed() {
    // The counts come in a stream's last line: a client that leaves before it has still had
    // the tokens streamed so far, and is charged for them.
    let h = limited("max_tokens_per_day = 2\n").await;
    let (resp, conn) = h
        .stream_json("/api/chat", "alice", &chat_body("slow", true))
        .await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    for _ in 0..2 {
        assert!(next_data(&mut body, T).await.unwrap().is_some());
    }
    drop(body);
    drop(conn);
    let rec = h
        .wait_audit(T, |r| r["corral"]["reason"] == "client_disconnected")
        .await
        .expect("the cancelled stream's record");
    // The record keeps to the upstream's counts: it sent none.
    assert!(rec["corral"]["completion_tokens"].is_null(), "{rec}");
    let r = chat(&h, "alice").await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(h.forwarded().len(), 1);
}

#[tokio::test]
async fn a_request_abandoned_before_its_answer_is_charged_for_its_prompt() {
    // No answer, so no counts: the prompt the upstream read is charged as its body's size.
    let h = limited("max_tokens_per_day = 100\n").await;
    let mut body = chat_body("cold", false);
    body["messages"][0]["content"] = Value::String("why is the sky blue? ".repeat(50));
    let task = h.post_json_in_background("/api/chat", "alice", &body);
    assert!(h.mock.wait_for_requests(1, T).await);
    task.abort();
    let rec = h
        .wait_audit(T, |r| r["corral"]["reason"] == "client_disconnected")
        .await
        .expect("the abandoned request's record");
    assert!(rec["corral"]["prompt_tokens"].is_null(), "{rec}");
    let r = chat(&h, "alice").await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(
        r.json()["error"]
            .as_str()
            .map(|m| m.contains("100 tokens per day")),
        Some(true)
    );
}

#[tokio::test]
async fn a_refused_request_is_not_charged_for_its_body() {
    // Only what the upstream read is charged: a request refused by the policy is not.
    let h = limited("max_tokens_per_day = 100\n").await;
    let mut refused = chat_body("gpt-oss:120b-cloud", false);
    refused["messages"][0]["content"] = Value::String("x".repeat(4000));
    let r = h.post_json("/api/chat", "alice", &refused).await;
    assert_eq!(r.status, 403, "{}", r.text());
    record_with_reason(&h, "cloud_denied").await;
    let r = chat(&h, "alice").await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn a_spent_token_quota_stays_spent_across_a_restart() {
    let mut h = limited("max_tokens_per_day = 10\nmax_requests_per_minute = 100\n").await;
    let r = chat(&h, "alice").await;
    assert_eq!(r.status, 200, "{}", r.text());
    h.wait_audit(T, |r| r["corral"]["decision"] == "allow")
        .await
        .expect("the first request's record");
    let r = chat(&h, "alice").await;
    assert_eq!(r.status, 429, "{}", r.text());
    let before = retry_after(&r);

    // Stopped gracefully (within the 5 s between writes) and started again on the same store.
    h.restart().await;
    let r = chat(&h, "alice").await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(
        r.json()["error"]
            .as_str()
            .map(|m| m.contains("10 tokens per day")),
        Some(true)
    );
    let after = retry_after(&r);
    assert!(
        after <= before && after + 60 >= before,
        "Retry-After {before} s before the restart, {after} s after"
    );
    let rec = record_with_reason(&h, "token_quota_exhausted").await;
    assert_eq!(rec["user"]["name"], "alice", "{rec}");
    assert_eq!(
        h.forwarded().len(),
        1,
        "nothing forwarded after the restart"
    );

    // Another key with the same policy was never charged: it starts full.
    let store = corral_store::KeyStore::open(&h.data_dir).unwrap();
    let (_, secret) = store.create("bob", "user", None).unwrap();
    let deadline = std::time::Instant::now() + T;
    loop {
        let r = send(
            h.addr,
            "POST",
            "/api/chat",
            &[
                ("authorization", format!("Bearer {}", secret.expose())),
                ("content-type", "application/json".to_string()),
            ],
            bytes::Bytes::from(chat_body("llama3.2", false).to_string()),
        )
        .await;
        if r.status != 401 {
            assert_eq!(r.status, 200, "{}", r.text());
            break;
        }
        assert!(std::time::Instant::now() < deadline, "bob never accepted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Spends alice's day quota of 10 and checks she is refused.
async fn spend_alice(h: &Harness) {
    let r = chat(h, "alice").await;
    assert_eq!(r.status, 200, "{}", r.text());
    h.wait_audit(T, |r| r["corral"]["decision"] == "allow")
        .await
        .expect("the first request's record");
    let r = chat(h, "alice").await;
    assert_eq!(r.status, 429, "{}", r.text());
}

#[tokio::test]
async fn a_saved_row_that_cannot_be_read_costs_only_its_own_key_its_state() {
    let mut h = limited("max_tokens_per_day = 10\n").await;
    spend_alice(&h).await;
    h.stop().await;
    // Another key's row edited by hand to a time no date can hold.
    let db = rusqlite::Connection::open(h.data_dir.join(corral_store::DB_FILE)).unwrap();
    db.execute(
        "INSERT INTO allowance_state VALUES ('nora', NULL, NULL, 9223372036854775807, 0, NULL, NULL, NULL)",
        [],
    )
    .unwrap();
    drop(db);
    h.start_again().await;
    let r = chat(&h, "alice").await;
    assert_eq!(r.status, 429, "alice's spent quota is kept: {}", r.text());
}
#[tokio::test]
async fn a_limit_raised_across_a_restart_counts_what_was_spent_against_the_new_one() {
    let mut h = limited("max_tokens_per_day = 10\n").await;
    spend_alice(&h).await;
    // The operator raises the quota: what alice spent (a few tokens) is far below it.
    h.set_config("[policies.user]\nmax_tokens_per_day = 1000000\n");
    h.restart().await;
    let r = chat(&h, "alice").await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn a_limit_lowered_across_a_restart_counts_what_was_spent_against_the_new_one() {
    let mut h = limited("max_tokens_per_day = 1000000\n").await;
    let r = chat(&h, "alice").await;
    assert_eq!(r.status, 200, "{}", r.text());
    h.wait_audit(T, |r| r["corral"]["decision"] == "allow")
        .await
        .expect("the first request's record");
    // Lowered below what alice already spent today: she has nothing left.
    h.set_config("[policies.user]\nmax_tokens_per_day = 10\n");
    h.restart().await;
    let r = chat(&h, "alice").await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(retry_after(&r) > 3_600, "{}", retry_after(&r));
}
