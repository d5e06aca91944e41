#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use corral_ollama::cves_for;
use serde_json::json;

fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
    Response {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
        ..Response::default()
    }
}

#[test]
fn banner_gate_and_tls_hints() {
    assert!(is_ollama_banner(&resp(200, &[], "Ollama is running")));
    assert!(!is_ollama_banner(&resp(404, &[], "Ollama is running")));
    assert!(!is_ollama_banner(&resp(200, &[], "<html>KoboldCpp</html>")));
    let gate = resp(
        401,
        &[("WWW-Authenticate", "Bearer realm=\"corral\"")],
        r#"{"error":"unauthorized"}"#,
    );
    assert!(is_corral_gate(&gate));
    assert!(!is_corral_gate(&resp(
        401,
        &[("WWW-Authenticate", "Basic realm=\"x\"")],
        r#"{"error":"x"}"#
    )));
    assert!(!is_corral_gate(&resp(
        401,
        &[("WWW-Authenticate", "Bearer realm=\"corral\"")],
        "<html>"
    )));
    assert!(wants_tls(&resp(
        400,
        &[],
        "Client sent an HTTP request to an HTTPS server.\n"
    )));
    assert!(!wants_tls(&resp(400, &[], "bad request")));
}

#[test]
fn tags_with_and_without_capabilities() {
    let v = json!({"models":[
        {"name":"llama3.1:8b","model":"llama3.1:8b","details":{"family":"llama","parameter_size":"8.0B","quantization_level":"Q4_K_M"},"capabilities":["completion","tools"]},
        {"name":"gpt-oss:120b-cloud","remote_host":"https://ollama.com:443","details":{"family":"gptoss"},"capabilities":["completion","tools","thinking"]},
        {"name":"10.9.9.9:8443/attacker/leak_model_0","details":{}, "capabilities":[]}
    ]});
    let (models, all) = parse_tags(&v, 100).unwrap();
    assert!(all);
    assert_eq!(models.len(), 3);
    assert_eq!(models[0].quantization.as_deref(), Some("Q4_K_M"));
    assert!(models[0].has("tools") && !models[0].cloud && !models[0].foreign_registry);
    assert!(models[1].cloud);
    assert!(models[2].foreign_registry);
    let old = json!({"models":[{"name":"llava:7b","details":{"family":"llama"}}]});
    let (models, all) = parse_tags(&old, 100).unwrap();
    assert!(!all && models[0].capabilities.is_empty());
    assert!(parse_tags(&json!({"models": 3}), 10).is_none());
    assert_eq!(parse_tags(&v, 1).unwrap().0.len(), 1);
}

#[test]
fn show_capabilities_listed_or_inferred() {
    assert_eq!(
        capabilities_from_show(&json!({"capabilities":["completion","vision"]})),
        vec!["completion", "vision"]
    );
    let inferred = capabilities_from_show(
        &json!({"template":"{{ if .Tools }}x{{ end }}","projector_info":{"clip.has_vision_encoder":true}}),
    );
    assert_eq!(inferred, vec!["completion", "tools", "vision"]);
    assert_eq!(
        capabilities_from_show(&json!({"template":"{{ .Prompt }}"})),
        vec!["completion"]
    );
    assert_eq!(
        parse_ps(&json!({"models":[{"name":"qwen3:8b"}]})),
        Some(vec!["qwen3:8b".to_string()])
    );
    assert_eq!(parse_ps(&json!({"error":"sign in"})), None);
}

#[test]
fn versions_and_cves() {
    // The table itself is tested in corral-ollama; this checks the scanner's view of it.
    let ids = |v: &str| cves_for(v).iter().map(|c| c.id).collect::<Vec<_>>();
    assert!(ids("0.1.33").contains(&"CVE-2024-37032"));
    assert!(!ids("0.1.34").contains(&"CVE-2024-37032"));
    assert_eq!(ids("0.17.0"), vec!["CVE-2026-7482"]);
    assert!(ids("0.17.1").is_empty());
    assert!(ids("0.3.14").contains(&"CVE-2024-39719"));
    assert!(!ids("0.3.15").contains(&"CVE-2024-39719"));
    assert!(ids("0.0.0").is_empty() && ids("banana").is_empty());
    assert!(cves_for("0.17.0")[0].impact.is_critical());
}

#[test]
fn other_servers_by_their_signals() {
    let k = |p: &str, r: Response| detect(p, &r).map(|(k, _)| k);
    assert_eq!(
        k(
            "/api/extra/version",
            resp(200, &[], r#"{"result":"KoboldCpp","version":"1.80"}"#)
        ),
        Some(ServerKind::Koboldcpp)
    );
    assert_eq!(
        k("/health/liveliness", resp(200, &[], "\"I'm alive!\"")),
        Some(ServerKind::Litellm)
    );
    assert_eq!(
        k(
            "/health",
            resp(200, &[("Server", "llama.cpp")], r#"{"status":"ok"}"#)
        ),
        Some(ServerKind::LlamaCpp)
    );
    assert_eq!(k("/health", resp(200, &[], r#"{"status":"ok"}"#)), None);
    assert_eq!(
        k(
            "/v1/models",
            resp(
                200,
                &[],
                r#"{"data":[{"id":"m","owned_by":"vllm","max_model_len":4096}]}"#
            )
        ),
        Some(ServerKind::Vllm)
    );
    assert_eq!(
        k(
            "/v1/models",
            resp(
                200,
                &[],
                r#"{"data":[{"id":"m","owned_by":"organization_owner"}]}"#
            )
        ),
        Some(ServerKind::LmStudio)
    );
    assert_eq!(
        k(
            "/v1/models",
            resp(200, &[], r#"{"data":[{"id":"m","owned_by":"library"}]}"#)
        ),
        None
    );
    assert_eq!(
        k(
            "/info",
            resp(
                200,
                &[],
                r#"{"model_id":"x","model_dtype":"f16","max_total_tokens":4096,"version":"2.0"}"#
            )
        ),
        Some(ServerKind::Tgi)
    );
    assert_eq!(
        k(
            "/v1/internal/model/info",
            resp(200, &[], r#"{"model_name":"x"}"#)
        ),
        Some(ServerKind::TextGenerationWebui)
    );
    assert_eq!(
        k("/get_model_info", resp(200, &[], r#"{"model_path":"x"}"#)),
        Some(ServerKind::Sglang)
    );
    assert_eq!(
        k("/", resp(200, &[], "<html><title>LocalAI API</title>")),
        Some(ServerKind::LocalAi)
    );
    assert_eq!(
        k("/api/tags", resp(200, &[], r#"{"models":[]}"#)),
        Some(ServerKind::OllamaCompatible)
    );
    assert_eq!(k("/api/tags", resp(401, &[], r#"{"models":[]}"#)), None);
    let (kind, d) = detect("/api/config", &resp(200, &[], r#"{"name":"Open WebUI","version":"0.6.5","features":{"auth":true,"enable_signup":true},"onboarding":true}"#)).unwrap();
    assert_eq!(kind, ServerKind::OpenWebui);
    assert!(d.open_signup && !d.auth_disabled);
    assert_eq!(d.version.as_deref(), Some("0.6.5"));
}

#[test]
fn excerpts_are_bounded_and_single_line() {
    let e = excerpt("a\nb".repeat(1000).as_bytes());
    assert!(!e.contains('\n'));
    assert!(e.chars().count() <= EXCERPT + 1);
}

#[test]
fn cloud_models_by_tag_or_remote() {
    let none = serde_json::json!({});
    assert!(is_cloud("kimi-k2:cloud", &none));
    assert!(is_cloud("gpt-oss:120b-cloud", &none));
    assert!(!is_cloud("llama3.1:8b", &none));
    assert!(!is_cloud("my-cloud-model:latest", &none));
    assert!(
        !is_cloud("10.0.0.1:5000/x/y-cloud", &none),
        "a registry port is not a tag"
    );
    assert!(is_cloud(
        "x:1",
        &serde_json::json!({"remote_host": "https://ollama.com:443"})
    ));
    assert!(is_cloud("x:1", &serde_json::json!({"remote_model": "x:1"})));
}
