//! OIDC access tokens through the gate, against a mock identity provider on 127.0.0.1:0:
//! identity and policy from the token, every refusal the 401 a bad key gets, the provider
//! down at start-up, key rotation, and a flood of unknown `kid`s that cannot make the gate
//! hammer the provider.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use common::*;
use corral_testsupport::idp::{self, MockIdp, SigningKey};
use serde_json::{json, Value};

fn config(idp: &MockIdp, default_policy: bool) -> String {
    format!(
        r#"
[oidc]
issuer = "{}"
audience = "corral"
user_claim = "preferred_username"
roles_claim = "realm_access.roles"
{}
[oidc.policies]
"ml-admins" = "admin"
"ml-users" = "user"
"#,
        idp.issuer(),
        if default_policy {
            "default_policy = \"user\""
        } else {
            ""
        }
    )
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims(idp: &MockIdp, user: &str, roles: &[&str]) -> Value {
    json!({
        "iss": idp.issuer(),
        "aud": ["account", "corral"],
        "sub": format!("id-{user}"),
        "preferred_username": user,
        "realm_access": {"roles": roles},
        "exp": now() + 300,
        "iat": now(),
    })
}

trait SignOk {
    fn sign_ok(&self, claims: &Value) -> String;
    fn sign_as_ok(&self, kid: &str, claims: &Value) -> String;
}

impl SignOk for SigningKey {
    fn sign_ok(&self, claims: &Value) -> String {
        self.sign(claims).unwrap()
    }
    fn sign_as_ok(&self, kid: &str, claims: &Value) -> String {
        self.sign_as(kid, claims).unwrap()
    }
}

async fn start(idp: &MockIdp) -> Harness {
    Harness::builder().config(&config(idp, false)).start().await
}

async fn post_with(h: &Harness, path: &str, headers: &[(&str, String)], body: &Value) -> Reply {
    let mut headers = headers.to_vec();
    headers.push(("content-type", "application/json".to_owned()));
    send(
        h.addr,
        "POST",
        path,
        &headers,
        Bytes::from(body.to_string()),
    )
    .await
}

async fn tags(h: &Harness, token: &str) -> Reply {
    h.get("/api/tags", Some(&format!("Bearer {token}"))).await
}

fn assert_401(r: &Reply, what: &str) {
    assert_eq!(r.status, 401, "{what}: {}", r.text());
    let www = r.header("www-authenticate").unwrap_or_default();
    assert!(
        www.to_ascii_lowercase().starts_with("bearer"),
        "{what}: WWW-Authenticate was {www:?}"
    );
}

async fn reason_of(h: &Harness, n: usize) -> Value {
    // The n-th 401 record (1-based) once written.
    h.wait_audit(T, |_| {
        h.audit_records()
            .iter()
            .filter(|r| r["http"]["response"]["status_code"] == 401)
            .count()
            >= n
    })
    .await
    .expect("401 audited");
    h.audit_records()
        .into_iter()
        .filter(|r| r["http"]["response"]["status_code"] == 401)
        .nth(n - 1)
        .unwrap()["corral"]["reason"]
        .clone()
}

#[tokio::test]
async fn a_token_is_served_and_audited_as_its_user_and_never_forwarded() {
    let key = SigningKey::generate("k1").unwrap();
    let idp = MockIdp::start(&[&key], true).await.unwrap();
    let mut h = start(&idp).await;
    let token = key.sign_ok(&claims(&idp, "alice", &["ml-users"]));
    let r = tags(&h, &token).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post_with(
        &h,
        "/api/chat",
        &[("x-api-key", token.clone())],
        &chat_body("llama3.2", false),
    )
    .await;
    assert_eq!(r.status, 200, "x-api-key carries a token: {}", r.text());
    h.stop().await;

    let records = h.audit_records();
    let chat = records
        .iter()
        .find(|r| r["url"]["path"] == "/api/chat")
        .expect("chat audited");
    assert_eq!(chat["user"]["name"], "oidc:alice", "{chat}");
    assert_eq!(chat["corral"]["policy"], "user", "{chat}");
    assert_eq!(chat["corral"]["decision"], "allow", "{chat}");
    assert!(chat["corral"].get("key_id").is_none(), "{chat}");
    let signature = token.rsplit('.').next().unwrap();
    let log = std::fs::read_to_string(&h.audit_path).unwrap();
    assert!(!log.contains(signature), "the token is in the audit log");
    let forwarded = h.forwarded();
    assert!(!forwarded.is_empty());
    for req in forwarded {
        for (name, value) in &req.headers {
            assert!(
                name != "authorization" && name != "x-api-key",
                "{name} forwarded"
            );
            assert!(
                !String::from_utf8_lossy(value).contains(signature),
                "the token went upstream in {name}"
            );
        }
    }
    assert_eq!(idp.discovery_hits(), 1, "one fetch at start-up");
    assert_eq!(idp.jwks_hits(), 1);
}

#[tokio::test]
async fn basic_auth_carries_a_token_as_its_password() {
    let key = SigningKey::generate("k1").unwrap();
    let idp = MockIdp::start(&[&key], true).await.unwrap();
    let h = start(&idp).await;
    let token = key.sign_ok(&claims(&idp, "alice", &["ml-users"]));
    let cred = base64::engine::general_purpose::STANDARD.encode(format!("any:{token}"));
    let r = h.get("/api/tags", Some(&format!("Basic {cred}"))).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn the_mapped_policy_decides_admin_may_pull_a_user_may_not() {
    let key = SigningKey::generate("k1").unwrap();
    let idp = MockIdp::start(&[&key], true).await.unwrap();
    let h = start(&idp).await;
    let pull = json!({"model": "llama3.2", "stream": false});
    // In both groups: the table's first entry that matches (ml-admins) decides.
    let admin = key.sign_ok(&claims(&idp, "root", &["ml-users", "ml-admins"]));
    let user = key.sign_ok(&claims(&idp, "bob", &["ml-users"]));
    let r = post_with(
        &h,
        "/api/pull",
        &[("authorization", format!("Bearer {admin}"))],
        &pull,
    )
    .await;
    assert_eq!(r.status, 200, "admin pulls: {}", r.text());
    let r = post_with(
        &h,
        "/api/pull",
        &[("authorization", format!("Bearer {user}"))],
        &pull,
    )
    .await;
    assert_eq!(r.status, 403, "a user may not: {}", r.text());
    let rec = h
        .wait_audit(T, |r| r["user"]["name"] == "oidc:bob")
        .await
        .unwrap();
    assert_eq!(rec["corral"]["policy"], "user", "{rec}");
    assert_eq!(rec["event"]["action"], "deny", "{rec}");
    let rec = h
        .wait_audit(T, |r| r["user"]["name"] == "oidc:root")
        .await
        .unwrap();
    assert_eq!(rec["corral"]["policy"], "admin", "{rec}");
}

#[tokio::test]
async fn a_token_no_entry_maps_is_refused_unless_a_default_policy_is_set() {
    let key = SigningKey::generate("k1").unwrap();
    let idp = MockIdp::start(&[&key], true).await.unwrap();
    let token = key.sign_ok(&claims(&idp, "eve", &["other-team"]));
    let h = start(&idp).await;
    let r = tags(&h, &token).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let rec = h
        .wait_audit(T, |r| r["user"]["name"] == "oidc:eve")
        .await
        .unwrap();
    assert_eq!(rec["corral"]["reason"], "oidc_no_policy", "{rec}");
    drop(h);
    let h = Harness::builder().config(&config(&idp, true)).start().await;
    assert_eq!(tags(&h, &token).await.status, 200);
}

#[tokio::test]
async fn every_token_failure_is_the_401_a_bad_key_gets_with_the_reason_audited() {
    let key = SigningKey::generate("k1").unwrap();
    let stranger = SigningKey::generate("k1").unwrap();
    let idp = MockIdp::start(&[&key], true).await.unwrap();
    let h = start(&idp).await;
    let good = claims(&idp, "alice", &["ml-users"]);
    let with = |changes: Value| {
        let mut c = good.clone();
        for (k, v) in changes.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let none_header = idp::b64(br#"{"alg":"none"}"#);
    let none_body = idp::b64(good.to_string().as_bytes());
    let cases: Vec<(String, &str)> = vec![
        (
            key.sign_ok(&with(json!({"exp": now() - 3600}))),
            "token_expired",
        ),
        (
            key.sign_ok(&with(json!({"nbf": now() + 3600}))),
            "token_not_yet_valid",
        ),
        (
            key.sign_ok(&with(json!({"aud": "other"}))),
            "token_wrong_audience",
        ),
        (
            key.sign_ok(&with(json!({"iss": "https://evil.example"}))),
            "token_wrong_issuer",
        ),
        (stranger.sign_ok(&good), "token_bad_signature"),
        (key.sign_as_ok("k9", &good), "token_unknown_key"),
        (format!("{none_header}.{none_body}."), "token_bad_algorithm"),
        ("a.b.c".to_owned(), "token_malformed"),
    ];
    let bad_key = tags(&h, "crl_nope_nope").await;
    assert_401(&bad_key, "bad key");
    assert_eq!(reason_of(&h, 1).await, "malformed_key");
    for (i, (token, reason)) in cases.iter().enumerate() {
        let r = tags(&h, token).await;
        assert_401(&r, reason);
        assert_eq!(
            r.body, bad_key.body,
            "{reason}: the response tells nothing more"
        );
        assert_eq!(reason_of(&h, i + 2).await, *reason);
    }
    assert!(h.forwarded().is_empty(), "nothing reached the upstream");
    let log = std::fs::read_to_string(&h.audit_path).unwrap();
    for (token, reason) in &cases {
        let last = token.rsplit('.').next().unwrap();
        let payload = token.split('.').nth(1).unwrap();
        for part in [last, payload] {
            assert!(
                part.len() < 8 || !log.contains(part),
                "{reason}: token in the audit log"
            );
        }
    }
}

#[tokio::test]
async fn allowances_are_per_token_user_and_apart_from_keys_of_the_same_name() {
    let key = SigningKey::generate("k1").unwrap();
    let idp = MockIdp::start(&[&key], true).await.unwrap();
    let cfg = format!(
        "[policies.user]\nmax_requests_per_minute = 1\n{}",
        config(&idp, false)
    );
    let h = Harness::builder().config(&cfg).start().await;
    let alice_token = key.sign_ok(&claims(&idp, "alice", &["ml-users"]));
    let bob_token = key.sign_ok(&claims(&idp, "bob", &["ml-users"]));
    // The key named alice spends its minute's allowance...
    assert_eq!(
        h.get("/api/tags", Some(&h.bearer("alice"))).await.status,
        200
    );
    assert_eq!(
        h.get("/api/tags", Some(&h.bearer("alice"))).await.status,
        429
    );
    // ...which is not the token user alice's, who has one of her own, across tokens.
    assert_eq!(tags(&h, &alice_token).await.status, 200);
    let again = key.sign_ok(&claims(&idp, "alice", &["ml-users"]));
    assert_ne!(again, alice_token);
    let r = tags(&h, &again).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(tags(&h, &bob_token).await.status, 200);
    let rec = h
        .wait_audit(T, |r| {
            r["user"]["name"] == "oidc:alice" && r["corral"]["reason"] == "rate_limited"
        })
        .await;
    assert!(rec.is_some(), "the token user's refusal is audited as hers");
}

#[tokio::test]
async fn with_the_provider_down_at_start_keys_work_and_tokens_wait_for_it() {
    let key = SigningKey::generate("k1").unwrap();
    let idp = MockIdp::start(&[&key], false).await.unwrap();
    let h = Harness::builder()
        .config(&config(&idp, false))
        .oidc_refetch(Duration::from_millis(200))
        .start()
        .await;
    let r = h.get("/api/tags", Some(&h.bearer("alice"))).await;
    assert_eq!(r.status, 200, "a key works: {}", r.text());
    let token = key.sign_ok(&claims(&idp, "alice", &["ml-users"]));
    assert_401(&tags(&h, &token).await, "no key set");
    assert_eq!(reason_of(&h, 1).await, "token_keys_unavailable");
    idp.set_up(true);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if tags(&h, &token).await.status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "tokens never worked");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_and_the_last_good_set_survives_an_outage() {
    let old = SigningKey::generate("2025").unwrap();
    let new = SigningKey::generate("2026").unwrap();
    let idp = MockIdp::start(&[&old], true).await.unwrap();
    let h = Harness::builder()
        .config(&config(&idp, false))
        .oidc_refetch(Duration::ZERO)
        .start()
        .await;
    assert_eq!(
        tags(&h, &old.sign_ok(&claims(&idp, "a", &["ml-users"])))
            .await
            .status,
        200
    );
    idp.publish(&[&new]);
    let r = tags(&h, &new.sign_ok(&claims(&idp, "a", &["ml-users"]))).await;
    assert_eq!(r.status, 200, "the new kid is fetched: {}", r.text());
    assert_eq!(idp.jwks_hits(), 2);
    // The provider goes down: a failed fetch keeps the set in service.
    idp.set_up(false);
    assert_401(
        &tags(
            &h,
            &new.sign_as_ok("2027", &claims(&idp, "a", &["ml-users"])),
        )
        .await,
        "unknown",
    );
    let r = tags(&h, &new.sign_ok(&claims(&idp, "a", &["ml-users"]))).await;
    assert_eq!(
        r.status,
        200,
        "the last good set still serves: {}",
        r.text()
    );
}

#[tokio::test]
async fn a_flood_of_unknown_kids_fetches_the_key_set_at_most_once_per_interval() {
    let key = SigningKey::generate("k1").unwrap();
    let idp = MockIdp::start(&[&key], true).await.unwrap();
    let h = Harness::builder()
        .config(&config(&idp, false))
        .oidc_refetch(Duration::from_secs(2))
        .start()
        .await;
    assert_eq!(idp.jwks_hits(), 1);
    // Within the interval of the start-up fetch: no fetch at all.
    let junk = |i: usize| key.sign_as_ok(&format!("junk-{i}"), &claims(&idp, "x", &["ml-users"]));
    for i in 0..20 {
        assert_401(&tags(&h, &junk(i)).await, "junk kid");
    }
    assert_eq!(idp.jwks_hits(), 1, "no fetch within the interval");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut flood = Vec::new();
    for i in 0..50 {
        let (addr, token) = (h.addr, junk(100 + i));
        flood.push(tokio::spawn(async move {
            send(
                addr,
                "GET",
                "/api/tags",
                &[("authorization", format!("Bearer {token}"))],
                Bytes::new(),
            )
            .await
            .status
        }));
    }
    for f in flood {
        assert_eq!(f.await.unwrap(), 401);
    }
    let hits = idp.jwks_hits();
    assert!(
        (2..=3).contains(&hits),
        "50 junk kids after the interval made {} fetches",
        hits - 1
    );
    // A good token is still served from the set in service.
    assert_eq!(
        tags(&h, &key.sign_ok(&claims(&idp, "x", &["ml-users"])))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn an_https_provider_is_trusted_through_ca_file_and_only_so() {
    let key = SigningKey::generate("k1").unwrap();
    let (idp, ca_pem) = MockIdp::start_tls(&[&key]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("idp-ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let token = key.sign_ok(&claims(&idp, "alice", &["ml-users"]));
    let with_ca = format!("{}ca_file = \"{}\"\n", config(&idp, false), ca.display())
        .replace("[oidc.policies]", "")
        .replace("\"ml-admins\" = \"admin\"", "")
        .replace("\"ml-users\" = \"user\"", "default_policy = \"user\"");
    let h = Harness::builder().config(&with_ca).start().await;
    let r = tags(&h, &token).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(idp.jwks_hits(), 1);
    drop(h);
    // Without the CA file the built-in web roots do not know the provider's certificate.
    let h = start(&idp).await;
    assert_401(&tags(&h, &token).await, "untrusted provider");
    assert_eq!(reason_of(&h, 1).await, "token_keys_unavailable");
    assert_eq!(
        idp.jwks_hits(),
        1,
        "no key set was fetched from an untrusted provider"
    );
}

#[tokio::test]
async fn an_unusable_key_set_or_discovery_document_is_not_used() {
    let key = SigningKey::generate("k1").unwrap();
    let idp = MockIdp::start(&[], true).await.unwrap();
    let h = start(&idp).await;
    let token = key.sign_ok(&claims(&idp, "alice", &["ml-users"]));
    assert_401(&tags(&h, &token).await, "empty key set");
    assert_eq!(reason_of(&h, 1).await, "token_keys_unavailable");
    drop(h);
    // A discovery document naming another issuer (OIDC Discovery 4.3).
    let cfg = config(&idp, false).replace("/realms/ml\"", "/realms/ml/\"");
    let h = Harness::builder().config(&cfg).start().await;
    assert_401(&tags(&h, &token).await, "other issuer");
    assert_eq!(reason_of(&h, 1).await, "token_keys_unavailable");
}

#[tokio::test]
async fn keys_no_signature_could_verify_with_are_not_counted_as_a_key_set() {
    let key = SigningKey::generate("k1").unwrap();
    let idp = MockIdp::start(&[], true).await.unwrap();
    let mut off_curve = key.jwk();
    off_curve["y"] = off_curve["x"].clone();
    idp.publish_raw(json!({ "keys": [off_curve.clone()] }));
    let h = start(&idp).await;
    let token = key.sign_ok(&claims(&idp, "alice", &["ml-users"]));
    // Only an off-curve point: no usable key, so not a forgery but a provider problem.
    assert_401(&tags(&h, &token).await, "off-curve key only");
    assert_eq!(reason_of(&h, 1).await, "token_keys_unavailable");
    drop(h);
    // Beside a good key, the bad one is left out and the good one serves.
    let good = SigningKey::generate("k2").unwrap();
    idp.publish_raw(json!({ "keys": [off_curve, good.jwk()] }));
    let h = start(&idp).await;
    let token = good.sign_ok(&claims(&idp, "alice", &["ml-users"]));
    assert_eq!(tags(&h, &token).await.status, 200);
}

#[tokio::test]
async fn user_claims_with_line_breaks_or_bidi_controls_are_refused() {
    let key = SigningKey::generate("k1").unwrap();
    let idp = MockIdp::start(&[&key], true).await.unwrap();
    let h = start(&idp).await;
    for (i, user) in ["alice\u{202e}gnp.exe", "alice\u{2028}x", "al\u{200b}ice"]
        .iter()
        .enumerate()
    {
        let token = key.sign_ok(&claims(&idp, user, &["ml-users"]));
        assert_401(&tags(&h, &token).await, user);
        assert_eq!(reason_of(&h, i + 1).await, "token_no_user");
    }
    let log = std::fs::read_to_string(&h.audit_path).unwrap();
    assert!(!log.contains('\u{2028}') && !log.contains('\u{202e}'));
    let token = key.sign_ok(&claims(&idp, "josé", &["ml-users"]));
    assert_eq!(tags(&h, &token).await.status, 200);
}

#[tokio::test]
async fn an_oversized_token_is_audited_as_too_large_not_as_no_credential() {
    let key = SigningKey::generate("k1").unwrap();
    let idp = MockIdp::start(&[&key], true).await.unwrap();
    let h = start(&idp).await;
    let mut c = claims(&idp, "alice", &["ml-users"]);
    c["padding"] = json!("x".repeat(9_000));
    let token = key.sign_ok(&c);
    assert!(token.len() > 12_000, "past what the gate looks at");
    assert_401(&tags(&h, &token).await, "oversized bearer");
    assert_eq!(reason_of(&h, 1).await, "token_too_large");
    let r = send(
        h.addr,
        "GET",
        "/api/tags",
        &[("x-api-key", token.clone())],
        Bytes::new(),
    )
    .await;
    assert_401(&r, "oversized x-api-key");
    assert_eq!(reason_of(&h, 2).await, "token_too_large");
    // A token just over 8 KiB but under the header limit: verify says so itself.
    c["padding"] = json!("x".repeat(6_000));
    let token = key.sign_ok(&c);
    assert!(token.len() > 8 * 1024 && token.len() < 10_900);
    assert_401(&tags(&h, &token).await, "token over 8 KiB");
    assert_eq!(reason_of(&h, 3).await, "token_too_large");
    // Something of no token's shape stays a request without a usable credential.
    assert_401(&tags(&h, &"a".repeat(12_000)).await, "oversized junk");
    assert_eq!(reason_of(&h, 4).await, "unauthenticated");
    drop(h);
    // Without [oidc], an oversized token is no credential, as before.
    let h = Harness::builder().start().await;
    assert_401(&tags(&h, &token_of_len(12_000)).await, "no [oidc]");
    assert_eq!(reason_of(&h, 1).await, "unauthenticated");
}

fn token_of_len(n: usize) -> String {
    let part = "a".repeat(n / 2);
    format!("{part}.{part}.s")
}
