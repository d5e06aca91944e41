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
