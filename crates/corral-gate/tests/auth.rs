//! Authentication: bearer and basic keys, refusals with `WWW-Authenticate`, and key changes made
//! by another process taking effect without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use common::*;
use corral_store::KeyStore;

async fn tags_with(h: &Harness, auth: Option<&str>) -> Reply {
    h.get("/api/tags", auth).await
}

fn assert_401(r: &Reply, what: &str) {
    assert_eq!(r.status, 401, "{what}: {}", r.text());
    let www = r.header("www-authenticate").unwrap_or_default();
    assert!(
        www.to_ascii_lowercase().starts_with("bearer"),
        "{what}: WWW-Authenticate was {www:?}"
    );
    assert!(r.json()["error"].is_string(), "{what}: Ollama error shape");
}

#[tokio::test]
async fn bearer_key_is_accepted_and_listing_is_served() {
    let h = Harness::start().await;
    let r = tags_with(&h, Some(&h.bearer("alice"))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["models"].is_array());
}

#[tokio::test]
async fn basic_auth_with_key_as_password_is_accepted() {
    let h = Harness::start().await;
    for user in ["", "alice", "anything"] {
        let cred =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", h.key("alice")));
        let r = tags_with(&h, Some(&format!("Basic {cred}"))).await;
        assert_eq!(r.status, 200, "user {user:?}: {}", r.text());
    }
}

#[tokio::test]
async fn key_as_basic_username_is_not_a_password() {
    let h = Harness::start().await;
    let cred = base64::engine::general_purpose::STANDARD.encode(format!("{}:", h.key("alice")));
    assert_401(
        &tags_with(&h, Some(&format!("Basic {cred}"))).await,
        "key as user name",
    );
}

#[tokio::test]
async fn missing_malformed_and_wrong_keys_get_401_and_reach_nothing() {
    let h = Harness::start().await;
    let key = h.key("alice").to_string();
    let mut tampered = key.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'a' { 'b' } else { 'a' });
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("empty bearer", Some("Bearer ".into())),
        ("bearer without space", Some(format!("Bearer{key}"))),
        ("tampered secret", Some(format!("Bearer {tampered}"))),
        (
            "unknown id",
            Some("Bearer crl_AAAAAAAAAAAA_0000000000000000000000000000000000000000000".into()),
        ),
        ("not a corral key", Some("Bearer sk-proj-abcdef".into())),
        ("other scheme", Some(format!("Token {key}"))),
        (
            "digest scheme",
            Some(format!("Digest username=\"a\", response=\"{key}\"")),
        ),
        ("basic not base64", Some("Basic !!!not-base64!!!".into())),
        (
            "basic without colon",
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(&key)
            )),
        ),
        ("key with trailing junk", Some(format!("Bearer {key}x"))),
        (
            "two keys in one header",
            Some(format!("Bearer {key}, Bearer {key}")),
        ),
    ];
    for (what, auth) in &cases {
        assert_401(&tags_with(&h, auth.as_deref()).await, what);
    }
    // Unauthenticated requests never reach the upstream, listings included.
    assert!(h.forwarded().is_empty(), "{:?}", h.forwarded());
}

#[tokio::test]
async fn revoked_key_is_refused() {
    let h = Harness::start().await;
    let store = KeyStore::open(&h.data_dir).unwrap();
    store.revoke("alice").unwrap();
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let r = tags_with(&h, Some(&h.bearer("alice"))).await;
        if r.status == 401 {
            assert_401(&r, "revoked");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "revocation not effective within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Other keys are unaffected.
    assert_eq!(tags_with(&h, Some(&h.bearer("root"))).await.status, 200);
    // The first 401 may come from a request that authenticated just before the reload and was
    // cut during the exchange (`key_no_longer_valid`); every request after it meets the
    // revoked key at the door.
    assert_401(&tags_with(&h, Some(&h.bearer("alice"))).await, "revoked");
    // The client hears `unauthenticated`; the record says why.
    let rec = h
        .wait_audit(T, |r| r["corral"]["reason"] == "revoked_key")
        .await
        .expect("the revoked key is recorded as such");
    assert_eq!(rec["http"]["response"]["status_code"], 401);
}

#[tokio::test]
async fn the_record_of_a_refused_key_says_why() {
    let h = Harness::start().await;
    let key = h.key("alice").to_string();
    let mut tampered = key.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'a' { 'b' } else { 'a' });
    for (auth, reason) in [
        ("Bearer sk-proj-abcdef".to_string(), "malformed_key"),
        (format!("Bearer {tampered}"), "unknown_key"),
    ] {
        assert_401(&tags_with(&h, Some(&auth)).await, reason);
        h.wait_audit(T, |r| r["corral"]["reason"] == reason)
            .await
            .unwrap_or_else(|| panic!("no record with reason {reason}"));
    }
    assert_401(&tags_with(&h, None).await, "no key");
    h.wait_audit(T, |r| r["corral"]["reason"] == "unauthenticated")
        .await
        .expect("a request without a key is recorded as unauthenticated");
}

#[tokio::test]
async fn key_created_by_another_store_instance_works_within_one_second() {
    let h = Harness::start().await;
    let store = KeyStore::open(&h.data_dir).unwrap();
    let (_, secret) = store.create("late", "user", None).unwrap();
    let auth = format!("Bearer {}", secret.expose());
    let start = Instant::now();
    loop {
        let r = tags_with(&h, Some(&auth)).await;
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 401, "{}", r.text());
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "new key not accepted within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Rotation: the old secret stops working, the new one works, both within a second.
    let (_, rotated) = store.rotate("late").unwrap();
    let new_auth = format!("Bearer {}", rotated.expose());
    let start = Instant::now();
    loop {
        let old = tags_with(&h, Some(&auth)).await.status;
        let new = tags_with(&h, Some(&new_auth)).await.status;
        if old == 401 && new == 200 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "rotation not effective within 1 s (old {old}, new {new})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn expired_key_is_refused() {
    let h = Harness::start().await;
    let store = KeyStore::open(&h.data_dir).unwrap();
    let (_, secret) = store
        .create("brief", "user", Some(Duration::from_secs(1)))
        .unwrap();
    let auth = format!("Bearer {}", secret.expose());
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let start = Instant::now();
    loop {
        let r = tags_with(&h, Some(&auth)).await;
        if r.status == 401 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "expired key still accepted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn v1_auth_errors_use_openai_shape() {
    let h = Harness::start().await;
    let r = send(
        h.addr,
        "POST",
        "/v1/chat/completions",
        &[("content-type", "application/json".into())],
        Bytes::from(chat_body("llama3.2", false).to_string()),
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap_or_default()
        .starts_with("Bearer"));
    let v = r.json();
    assert!(v["error"]["message"].is_string(), "{v}");
    assert!(v["error"]["type"].is_string(), "{v}");
    assert_eq!(h.forwarded().len(), 0);
}

#[tokio::test]
async fn error_bodies_never_echo_the_presented_secret() {
    let h = Harness::start().await;
    let bogus = "crl_AAAAAAAAAAAA_SECRETSECRETSECRETSECRETSECRETSECRETSECRET1";
    let r = tags_with(&h, Some(&format!("Bearer {bogus}"))).await;
    assert_eq!(r.status, 401);
    assert!(!r.text().contains("SECRETSECRET"), "{}", r.text());
    // A real key that is refused by policy is not echoed either.
    let r = h
        .post_json(
            "/api/pull",
            "alice",
            &serde_json::json!({"model": "llama3.2"}),
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(!r.text().contains(h.key("alice")), "{}", r.text());
}

/// Reads `body` to its end, for at most `limit`; returns what came and whether the connection
/// ended cleanly.
async fn drain(body: &mut hyper::body::Incoming, limit: Duration) -> (String, Result<(), String>) {
    let mut got = Vec::new();
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let e = Err("still streaming".to_string());
            return (String::from_utf8_lossy(&got).into_owned(), e);
        }
        match next_data(body, left).await {
            Ok(Some(chunk)) => got.extend_from_slice(&chunk),
            Ok(None) => return (String::from_utf8_lossy(&got).into_owned(), Ok(())),
            Err(e) => return (String::from_utf8_lossy(&got).into_owned(), Err(e)),
        }
    }
}

#[tokio::test]
async fn revoking_a_key_cuts_its_running_streams_and_no_others() {
    let h = Harness::start().await;
    let (alice, _c1) = h
        .stream_json("/api/chat", "alice", &chat_body("endless", true))
        .await;
    let (root, _c2) = h
        .stream_json("/api/chat", "root", &chat_body("endless", true))
        .await;
    assert_eq!(
        (alice.status().as_u16(), root.status().as_u16()),
        (200, 200)
    );
    let (mut alice, mut root) = (alice.into_body(), root.into_body());
    for _ in 0..3 {
        next_data(&mut alice, T).await.unwrap().unwrap();
        next_data(&mut root, T).await.unwrap().unwrap();
    }

    KeyStore::open(&h.data_dir)
        .unwrap()
        .revoke("alice")
        .unwrap();
    let revoked = Instant::now();
    let (rest, end) = drain(&mut alice, Duration::from_secs(5)).await;
    assert!(
        revoked.elapsed() < Duration::from_millis(1500),
        "stream of a revoked key still ran after {:?}",
        revoked.elapsed()
    );
    end.expect("the stream ends with an error line, not a broken connection");
    let last: serde_json::Value = serde_json::from_str(rest.lines().last().unwrap()).unwrap();
    assert_eq!(
        last,
        serde_json::json!({"error": "the API key was revoked or expired while the request ran"})
    );
    assert!(!rest.contains("\"done\":true"));
    // The generation is abandoned upstream too.
    assert!(h
        .mock
        .wait_for_disconnect(Duration::from_secs(2))
        .await
        .is_some());
    let rec = h
        .wait_audit(T, |r| r["corral"]["reason"] == "key_no_longer_valid")
        .await
        .expect("the cut is recorded");
    assert_eq!(rec["user"]["name"], "alice");
    assert_eq!(rec["http"]["response"]["status_code"], 200);

    // Another key's stream goes on.
    for _ in 0..3 {
        let chunk = next_data(&mut root, T).await.unwrap().unwrap();
        assert!(!chunk.is_empty());
    }
}

#[tokio::test]
async fn a_key_revoked_while_the_upstream_works_gets_401_at_once() {
    let h = Harness::builder()
        .mock(corral_testsupport::MockOllama::builder().cold_delay(Duration::from_secs(30)))
        .start()
        .await;
    let addr = h.addr;
    let auth = h.bearer("alice");
    let call = tokio::spawn(async move {
        let body = serde_json::json!({
            "model": "cold",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": false,
        });
        let headers = [
            ("authorization", auth),
            ("content-type", "application/json".to_string()),
        ];
        send(
            addr,
            "POST",
            "/v1/chat/completions",
            &headers,
            Bytes::from(body.to_string()),
        )
        .await
    });
    // The chat request itself is with the upstream (not only the gate's catalogue fetch).
    let deadline = Instant::now() + T;
    while h.forwarded().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the request never reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    KeyStore::open(&h.data_dir)
        .unwrap()
        .revoke("alice")
        .unwrap();
    let revoked = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("answered before the upstream")
        .unwrap();
    assert!(revoked.elapsed() < Duration::from_millis(1500));
    assert_eq!(r.status, 401, "{}", r.text());
    let err = &r.json()["error"];
    assert_eq!(err["code"], "key_no_longer_valid");
    assert_eq!(err["type"], "authentication_error");
    assert!(h
        .mock
        .wait_for_disconnect(Duration::from_secs(2))
        .await
        .is_some());
    // Recorded as the authentication failure it is, not as an upstream error.
    let rec = h
        .wait_audit(T, |r| r["corral"]["reason"] == "key_no_longer_valid")
        .await
        .expect("the refusal is recorded");
    assert_eq!(rec["event"]["action"], "auth_failure", "{rec}");
    assert_eq!(rec["http"]["response"]["status_code"], 401, "{rec}");
}

#[tokio::test]
async fn a_key_that_expires_mid_stream_is_cut_like_a_revoked_one() {
    let h = Harness::start().await;
    let store = KeyStore::open(&h.data_dir).unwrap();
    let (_, secret) = store
        .create("brief", "user", Some(Duration::from_secs(2)))
        .unwrap();
    let headers = [
        ("authorization", format!("Bearer {}", secret.expose())),
        ("content-type", "application/json".to_string()),
    ];
    let body = serde_json::json!({
        "model": "endless",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": true,
    });
    // The new key reaches the gate within a reload interval.
    let deadline = Instant::now() + Duration::from_secs(1);
    let (resp, _c) = loop {
        let (resp, c) = open(
            h.addr,
            "POST",
            "/v1/chat/completions",
            &headers,
            Bytes::from(body.to_string()),
        )
        .await;
        if resp.status() == 200 || Instant::now() > deadline {
            break (resp, c);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let started = Instant::now();
    let (rest, end) = drain(&mut body, Duration::from_secs(5)).await;
    end.expect("ends with an error event");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let last = rest
        .lines()
        .rev()
        .find(|l| l.starts_with("data: "))
        .unwrap();
    let event: serde_json::Value = serde_json::from_str(&last["data: ".len()..]).unwrap();
    assert_eq!(event["error"]["code"], "key_no_longer_valid");
    assert_eq!(event["error"]["type"], "authentication_error");
}

#[tokio::test]
async fn anthropic_clients_key_in_x_api_key_is_accepted_and_never_forwarded() {
    let h = Harness::start().await;
    let body = serde_json::json!({
        "model": "llama3.2",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}],
    });
    let post = |headers: Vec<(&'static str, String)>| {
        let body = Bytes::from(body.to_string());
        async move {
            let mut all = headers;
            all.push(("content-type", "application/json".to_string()));
            all.push(("anthropic-version", "2023-06-01".to_string()));
            send(h.addr, "POST", "/v1/messages", &all, body).await
        }
    };
    let key = h.key("alice").to_string();
    let r = post(vec![("x-api-key", key.clone())]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let req = &h.forwarded()[0];
    assert!(!req.has_header("x-api-key"), "{:?}", req.headers);
    let all: Vec<u8> = req.headers.iter().flat_map(|(_, v)| v.clone()).collect();
    assert!(!all.windows(key.len()).any(|w| w == key.as_bytes()));

    // The same key in both headers is one key; two different keys are refused.
    let r = post(vec![
        ("x-api-key", key.clone()),
        ("authorization", h.bearer("alice")),
    ])
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    h.mock.clear();
    for headers in [
        vec![
            ("x-api-key", h.key("root").to_string()),
            ("authorization", h.bearer("alice")),
        ],
        vec![("x-api-key", "sk-ant-api03-abcdef".to_string())],
    ] {
        let r = post(headers).await;
        assert_eq!(r.status, 401, "{}", r.text());
        assert_eq!(r.json()["type"], "error");
        assert_eq!(r.json()["error"]["type"], "authentication_error");
    }
    assert!(h.forwarded().is_empty());
}
