use super::*;
use std::net::Ipv4Addr;

fn sample() -> AuditRecord {
    let mut r = AuditRecord::new(
        action::PROXY,
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        "POST",
        "/api/chat",
    );
    r.timestamp = DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap();
    r.outcome = Outcome::Success;
    r.decision = Decision::Allow;
    r.user_name = Some("alice".into());
    r.status_code = 200;
    r.duration = Duration::from_millis(1500);
    r.key_id = Some("AbCdEfGhIjKl".into());
    r.policy = Some("user".into());
    r.endpoint_class = Some("inference".into());
    r.route = Some("api.chat".into());
    r.model = Some("llama3.2".into());
    r.prompt_tokens = Some(12);
    r.completion_tokens = Some(34);
    r.streamed = true;
    r.bytes_in = 100;
    r.bytes_out = 2000;
    r.clamps = vec!["num_ctx".into()];
    r.upstream_status = Some(200);
    r
}

#[test]
fn ecs_shape() {
    let v = sample().to_ecs();
    assert_eq!(v["@timestamp"], "2023-11-14T22:13:20.123456Z");
    assert_eq!(v["ecs"]["version"], ECS_VERSION);
    assert_eq!(v["event"]["kind"], "event");
    assert_eq!(v["event"]["category"], json!(["web"]));
    assert_eq!(v["event"]["type"], json!(["access", "allowed"]));
    assert_eq!(v["event"]["action"], "proxy");
    assert_eq!(v["event"]["outcome"], "success");
    assert_eq!(v["event"]["duration"], 1_500_000_000u64);
    assert_eq!(v["source"]["ip"], "127.0.0.1");
    assert_eq!(v["user"]["name"], "alice");
    assert_eq!(v["http"]["request"]["method"], "POST");
    assert_eq!(v["http"]["response"]["status_code"], 200);
    assert_eq!(v["url"]["path"], "/api/chat");
    let c = &v["corral"];
    assert_eq!(c["key_id"], "AbCdEfGhIjKl");
    assert_eq!(c["policy"], "user");
    assert_eq!(c["decision"], "allow");
    assert_eq!(c["endpoint_class"], "inference");
    assert_eq!(c["route"], "api.chat");
    assert_eq!(c["model"], "llama3.2");
    assert_eq!(c["prompt_tokens"], 12);
    assert_eq!(c["completion_tokens"], 34);
    assert_eq!(c["streamed"], true);
    assert_eq!(c["bytes_in"], 100);
    assert_eq!(c["bytes_out"], 2000);
    assert_eq!(c["clamps"], json!(["num_ctx"]));
    assert_eq!(c["upstream_status"], 200);
}

#[test]
fn absent_facts_are_omitted_not_null() {
    let r = AuditRecord::new(
        action::AUTH_FAILURE,
        "::1".parse().unwrap(),
        "GET",
        "/api/tags",
    );
    let v = r.to_ecs();
    assert!(v.get("user").is_none());
    assert_eq!(v["source"]["ip"], "::1");
    assert_eq!(v["event"]["type"], json!(["access", "denied"]));
    assert_eq!(v["event"]["outcome"], "failure");
    assert_eq!(v["corral"]["decision"], "deny");
    for k in [
        "key_id",
        "model",
        "prompt_tokens",
        "upstream_status",
        "reason",
    ] {
        assert!(v["corral"].get(k).is_none(), "{k}");
    }
    assert!(!crate::canon::canonical(&v).contains("null"));
}

#[test]
fn hostile_paths_are_truncated_escaped_and_lose_their_query() {
    let mut r = sample();
    r.url_path = format!("/api/{}\n\u{1b}[31m?token=crl_x", "é".repeat(2000));
    let v = r.to_ecs();
    let p = v["url"]["path"].as_str().unwrap();
    assert!(p.len() <= 1024 + '…'.len_utf8());
    assert!(p.ends_with('…'));
    assert!(!p.contains('?'));
    let line = crate::canon::canonical(&v);
    assert!(!line.contains('\n'));
    assert!(!line.contains('\u{1b}'));
    r.url_path = "/a\n\u{1b}b?q".into();
    assert!(crate::canon::canonical(&r.to_ecs()).contains(r#""path":"/a\n\u001bb""#));
}

#[test]
fn key_shaped_strings_are_redacted() {
    let key = format!("crl_{}_{}", "A1b2C3d4E5f6", "x".repeat(43));
    assert_eq!(
        redact_keys(&format!("/api/{key}/x")),
        "/api/crl_A1b2C3d4E5f6_<redacted>/x"
    );
    assert_eq!(
        redact_keys("crl_crl_A1b2C3d4E5f6_zz"),
        "crl_crl_A1b2C3d4E5f6_<redacted>"
    );
    for untouched in [
        "crl_",
        "crl_short_x",
        "no key here",
        "crl_A1b2C3d4E5f6_",
        "ßcrl_é",
    ] {
        assert_eq!(redact_keys(untouched), untouched);
    }
    let mut r = sample();
    r.model = Some(key.clone());
    r.reason = Some(format!("bad {key}").into());
    r.url_path = format!("/{key}");
    let line = crate::canon::canonical(&r.to_ecs());
    assert!(!line.contains(&"x".repeat(43)), "{line}");
}

#[test]
fn a_client_certificate_is_written_as_ecs_tls_client() {
    let mut r = sample();
    assert!(r.to_ecs().get("tls").is_none(), "no certificate, no tls");
    r.tls_client = Some(std::sync::Arc::new(crate::TlsClient {
        common_names: vec!["app-1".into()],
        sha256: "AB".repeat(32),
    }));
    let v = r.to_ecs();
    assert_eq!(
        v["tls"],
        json!({ "client": {
            "hash": { "sha256": "AB".repeat(32) },
            "x509": { "subject": { "common_name": ["app-1"] } },
        }})
    );
    // A certificate without a CN still has its hash.
    r.tls_client = Some(std::sync::Arc::new(crate::TlsClient {
        common_names: Vec::new(),
        sha256: "CD".repeat(32),
    }));
    let v = r.to_ecs();
    assert_eq!(
        v["tls"],
        json!({ "client": { "hash": { "sha256": "CD".repeat(32) } } })
    );
}
