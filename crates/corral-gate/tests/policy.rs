//! Policies end to end: endpoint classes, model allow-lists, listings, clamps, tools, images and
//! cloud models, with refusals in the client's dialect and nothing forwarded when refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use common::*;
use serde_json::{json, Value};

fn assert_refused(h: &Harness, r: &Reply, rule: &str, what: &str) {
    assert_eq!(r.status, 403, "{what}: {}", r.text());
    assert_eq!(
        r.header("x-corral-rule"),
        Some(rule),
        "{what}: refusing rule header; body {}",
        r.text()
    );
    assert!(
        h.forwarded().is_empty(),
        "{what}: forwarded {:?}",
        h.forwarded()
    );
}

fn assert_ollama_error(r: &Reply) {
    let v = r.json();
    let obj = v.as_object().expect("object");
    assert_eq!(
        obj.len(),
        1,
        "Ollama errors are {{\"error\": ...}} only: {v}"
    );
    assert!(!v["error"].as_str().unwrap().is_empty());
}

fn assert_openai_error(r: &Reply, code: &str) {
    let v = r.json();
    assert!(v["error"]["message"].is_string(), "{v}");
    assert!(v["error"]["type"].is_string(), "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
}

#[tokio::test]
async fn user_is_refused_admin_routes_with_the_rule_named() {
    let h = Harness::start().await;
    let cases: &[(&str, &str, Value)] = &[
        ("POST", "/api/pull", json!({"model": "llama3.2"})),
        ("POST", "/api/push", json!({"model": "llama3.2"})),
        (
            "POST",
            "/api/create",
            json!({"model": "x", "from": "llama3.2"}),
        ),
        (
            "POST",
            "/api/copy",
            json!({"source": "llama3.2", "destination": "x"}),
        ),
        ("DELETE", "/api/delete", json!({"model": "llama3.2"})),
        ("POST", "/api/me", json!({})),
        ("POST", "/api/signout", json!({})),
        (
            "POST",
            "/api/experimental/web_search",
            json!({"query": "x"}),
        ),
    ];
    for (method, path, body) in cases {
        let r = send(
            h.addr,
            method,
            path,
            &[
                ("authorization", h.bearer("alice")),
                ("content-type", "application/json".into()),
            ],
            body.to_string().into(),
        )
        .await;
        assert_refused(&h, &r, "endpoint_class", &format!("{method} {path}"));
        assert_ollama_error(&r);
    }
    let r = h.get("/api/ps", Some(&h.bearer("alice"))).await;
    assert_refused(&h, &r, "endpoint_class", "GET /api/ps (ops)");
}

#[tokio::test]
async fn admin_reaches_admin_routes() {
    let h = Harness::start().await;
    let r = h
        .post_json(
            "/api/pull",
            "root",
            &json!({"model": "llama3.2", "stream": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "success");
    let fwd = h.forwarded();
    assert_eq!(fwd.len(), 1);
    assert_eq!(
        (fwd[0].method.as_str(), fwd[0].path.as_str()),
        ("POST", "/api/pull")
    );
}

#[tokio::test]
async fn account_routes_are_reached_without_a_body_as_ollama_signin_sends_them() {
    let h = Harness::start().await;
    for path in ["/api/me", "/api/signout"] {
        let r = common::send(
            h.addr,
            "POST",
            path,
            &[("authorization", h.bearer("root"))],
            bytes::Bytes::new(),
        )
        .await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    let fwd = h.forwarded();
    assert_eq!(fwd.len(), 2, "{fwd:?}");
    // A route that needs a model still refuses an empty body.
    let r = common::send(
        h.addr,
        "POST",
        "/api/chat",
        &[("authorization", h.bearer("root"))],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(h.forwarded().len(), 2);
}

#[tokio::test]
async fn model_allowlist_from_config_in_both_dialects() {
    let h = Harness::with_policies().await;
    let ok = h
        .post_json("/api/chat", "alice", &chat_body("llama3.2", false))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(h.forwarded().len(), 1);
    h.mock.clear();

    let r = h
        .post_json("/api/chat", "alice", &chat_body("secret-model", false))
        .await;
    assert_refused(&h, &r, "model_not_allowed", "/api/chat secret-model");
    assert_ollama_error(&r);

    let r = h
        .post_json(
            "/v1/chat/completions",
            "alice",
            &chat_body("secret-model:latest", false),
        )
        .await;
    assert_refused(&h, &r, "model_not_allowed", "/v1 secret-model");
    assert_openai_error(&r, "model_not_allowed");

    let r = h
        .post_json("/api/show", "alice", &json!({"name": "secret-model"}))
        .await;
    assert_refused(
        &h,
        &r,
        "model_not_allowed",
        "/api/show via legacy name field",
    );

    let r = h
        .post_json(
            "/api/embed",
            "alice",
            &json!({"model": "registry.ollama.ai/library/secret-model:latest", "input": "x"}),
        )
        .await;
    assert_refused(&h, &r, "model_not_allowed", "fully qualified name");

    // The model-less request on a model route is refused, not waved through.
    let r = h
        .post_json("/api/chat", "alice", &json!({"messages": []}))
        .await;
    assert!(
        r.status == 400 || r.status == 403,
        "{} {}",
        r.status,
        r.text()
    );
    assert!(h.forwarded().is_empty());

    let r = h
        .get("/v1/models/secret-model:latest", Some(&h.bearer("alice")))
        .await;
    assert!(
        r.status == 403 || r.status == 404,
        "{} {}",
        r.status,
        r.text()
    );
    assert!(h.forwarded().is_empty());
}

fn names(v: &Value, list: &str, field: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap_or_else(|| panic!("{list} array in {v}"))
        .iter()
        .map(|m| m[field].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn listings_are_filtered_to_the_callers_models() {
    let h = Harness::with_policies().await;
    let tags = h.get("/api/tags", Some(&h.bearer("alice"))).await;
    assert_eq!(tags.status, 200);
    let n = names(&tags.json(), "models", "name");
    assert!(n.contains(&"llama3.2:latest".to_string()), "{n:?}");
    assert!(n.contains(&"nomic-embed-text:latest".to_string()), "{n:?}");
    assert!(!n.iter().any(|m| m.starts_with("secret-model")), "{n:?}");
    // Cloud models are not usable by `user`, so they are not listed either.
    assert!(
        !n.iter()
            .any(|m| m.contains("cloud") || m.starts_with("kimi")),
        "{n:?}"
    );

    let v1 = h.get("/v1/models", Some(&h.bearer("alice"))).await;
    assert_eq!(v1.status, 200);
    let ids = names(&v1.json(), "data", "id");
    assert!(ids.contains(&"llama3.2:latest".to_string()), "{ids:?}");
    assert!(
        !ids.iter()
            .any(|m| m.starts_with("secret-model") || m.contains("cloud")),
        "{ids:?}"
    );

    // Admin sees everything, cloud included.
    let all = h.get("/api/tags", Some(&h.bearer("root"))).await;
    let n = names(&all.json(), "models", "name");
    assert_eq!(n.len(), corral_testsupport::CATALOGUE.len(), "{n:?}");

    let ps = h.get("/api/ps", Some(&h.bearer("root"))).await;
    assert_eq!(ps.status, 200);
    assert!(names(&ps.json(), "models", "name").contains(&"secret-model:latest".to_string()));
}

#[tokio::test]
async fn v1_models_hides_remote_models_before_any_tags_request() {
    // `/v1/models` does not say which models are remote; a fresh gate must not list one that
    // only `/api/tags` would have shown to be remote.
    let h = Harness::with_policies().await;
    let v1 = h.get("/v1/models", Some(&h.bearer("alice"))).await;
    assert_eq!(v1.status, 200, "{}", v1.text());
    let ids = names(&v1.json(), "data", "id");
    assert!(ids.contains(&"llama3.2:latest".to_string()), "{ids:?}");
    assert!(!ids.iter().any(|m| m.starts_with("kimi")), "{ids:?}");
}

#[tokio::test]
async fn a_url_scheme_on_a_remote_models_name_is_still_refused() {
    let h = Harness::with_policies().await;
    for m in [
        "https://registry.ollama.ai/library/kimi-k2:1t",
        "http://registry.ollama.ai/library/glm-4.6:cloud",
    ] {
        let r = h
            .post_json("/api/chat", "alice", &chat_body(m, false))
            .await;
        assert_refused(&h, &r, "cloud_denied", m);
    }
}

#[tokio::test]
async fn ps_is_filtered_for_a_policy_with_ops() {
    let cfg = format!(
        "{POLICIES}\n[policies.watcher]\nendpoints = [\"discovery\", \"ops\"]\nmodels = [\"llama3.2\"]\n"
    );
    let h = Harness::builder().config(&cfg).start().await;
    let store = corral_store::KeyStore::open(&h.data_dir).unwrap();
    let (_, secret) = store.create("wanda", "watcher", None).unwrap();
    let auth = format!("Bearer {}", secret.expose());
    let mut ps = h.get("/api/ps", Some(&auth)).await;
    for _ in 0..50 {
        if ps.status != 401 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        ps = h.get("/api/ps", Some(&auth)).await;
    }
    assert_eq!(ps.status, 200, "{}", ps.text());
    assert_eq!(
        names(&ps.json(), "models", "name"),
        vec!["llama3.2:latest".to_string()]
    );
}

/// `library/*` names the library namespace of the default registry: it must not turn into
/// `*`, which reaches every namespace and every registry.
#[tokio::test]
async fn a_library_pattern_reaches_library_models_only() {
    let cfg = format!(
        "{POLICIES}\n[policies.official]\nendpoints = [\"inference\", \"discovery\"]\nmodels = [\"library/*\"]\n\n[policies.ollamacom]\nendpoints = [\"inference\"]\nmodels = [\"registry.ollama.ai/*\"]\n"
    );
    let h = Harness::builder().config(&cfg).start().await;
    let store = corral_store::KeyStore::open(&h.data_dir).unwrap();
    let (_, lib) = store.create("libby", "official", None).unwrap();
    let (_, reg) = store.create("reggie", "ollamacom", None).unwrap();
    let post = |key: String, model: &'static str| {
        let addr = h.addr;
        async move {
            let h = vec![
                ("authorization", format!("Bearer {key}")),
                ("content-type", "application/json".to_string()),
            ];
            let body = json!({"model": model, "messages": [], "stream": false});
            send(addr, "POST", "/api/chat", &h, Bytes::from(body.to_string())).await
        }
    };
    let mut r = post(lib.expose().to_string(), "llama3.2").await;
    for _ in 0..50 {
        if r.status != 401 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        r = post(lib.expose().to_string(), "llama3.2").await;
    }
    assert_eq!(r.status, 200, "{}", r.text());
    for m in [
        "someone/model",
        "registry.ollama.ai/someone/model",
        "hf.co/attacker/evil",
        "10.0.0.5:8443/team/x",
    ] {
        h.mock.clear();
        let r = post(lib.expose().to_string(), m).await;
        assert_refused(&h, &r, "model_not_allowed", m);
    }
    assert_eq!(post(reg.expose().to_string(), "llama3.2").await.status, 200);
    assert_eq!(
        post(reg.expose().to_string(), "someone/model").await.status,
        200
    );
    for m in ["hf.co/attacker/evil", "10.0.0.5:8443/team/x"] {
        h.mock.clear();
        let r = post(reg.expose().to_string(), m).await;
        assert_refused(&h, &r, "model_not_allowed", m);
    }
}

#[tokio::test]
async fn clamps_are_visible_in_what_upstream_receives() {
    let h = Harness::with_policies().await;
    let body = json!({
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": false,
        "keep_alive": -1,
        "options": {"num_ctx": 131072, "num_predict": 100000, "temperature": 0.2}
    });
    let r = h.post_json("/api/chat", "clara", &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = h.forwarded().pop().unwrap().json().unwrap();
    assert_eq!(sent["options"]["num_ctx"], 2048, "{sent}");
    assert_eq!(sent["options"]["num_predict"], 128, "{sent}");
    assert_eq!(sent["options"]["temperature"], 0.2, "{sent}");
    assert!(keep_alive_secs(&sent["keep_alive"]) <= 300.0, "{sent}");

    h.mock.clear();
    let body = json!({
        "model": "llama3.2", "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 100000, "max_completion_tokens": 100000
    });
    let r = h.post_json("/v1/chat/completions", "clara", &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = h.forwarded().pop().unwrap().json().unwrap();
    for f in ["max_tokens", "max_completion_tokens"] {
        if let Some(v) = sent.get(f) {
            assert!(v.as_u64().unwrap() <= 128, "{f}: {sent}");
        }
    }
    assert!(sent.get("max_tokens").is_some() || sent.get("max_completion_tokens").is_some());

    // Requests under the limits pass unchanged.
    h.mock.clear();
    let small = json!({"model": "llama3.2", "prompt": "hi", "stream": false,
                       "options": {"num_ctx": 1024, "num_predict": 16}, "keep_alive": "1m"});
    assert_eq!(
        h.post_json("/api/generate", "clara", &small).await.status,
        200
    );
    let sent = h.forwarded().pop().unwrap().json().unwrap();
    assert_eq!(sent["options"]["num_ctx"], 1024);
    assert_eq!(sent["options"]["num_predict"], 16);
    assert!(keep_alive_secs(&sent["keep_alive"]) <= 60.0, "{sent}");
}

/// A body the gate rewrites (a clamp, or `stream_options` asked for on the client's behalf)
/// keeps every other field exactly as the client wrote it. Key order is meaning here: Ollama
/// turns a `format` / `response_format` JSON schema into a grammar that writes the properties
/// in the schema's order (a client that puts `reasoning` before `answer` wants it generated
/// first), and a tool's parameters reach the model's prompt in their written order.
#[tokio::test]
async fn a_rewritten_body_keeps_the_clients_field_order() {
    let h = Harness::start().await;
    let schema = r#"{"type":"object","properties":{"reasoning":{"type":"string"},"answer":{"type":"string"},"Confidence":{"type":"number","maximum":1e0}},"required":["reasoning","answer"]}"#;
    let cases = [
        // Native chat: keep_alive -1 is clamped to the user policy's 30m.
        (
            "/api/chat",
            format!(
                r#"{{"model":"llama3.2","messages":[{{"role":"user","content":"hi"}}],"stream":false,"format":{schema},"keep_alive":-1,"options":{{"temperature":0.20,"num_ctx":131072}}}}"#
            ),
        ),
        // OpenAI chat, streamed without include_usage: the gate asks for usage itself.
        (
            "/v1/chat/completions",
            format!(
                r#"{{"model":"llama3.2","stream":true,"response_format":{{"type":"json_schema","json_schema":{{"name":"r","schema":{schema}}}}},"messages":[{{"role":"user","content":"hi"}}]}}"#
            ),
        ),
    ];
    for (path, body) in cases {
        h.mock.clear();
        let headers = vec![
            ("authorization", h.bearer("alice")),
            ("content-type", "application/json".to_string()),
        ];
        let r = send(h.addr, "POST", path, &headers, Bytes::from(body.clone())).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let sent = h.forwarded().pop().unwrap();
        let text = String::from_utf8(sent.body.to_vec()).unwrap();
        assert_ne!(
            text, body,
            "{path}: the gate was expected to rewrite this body"
        );
        assert!(
            text.contains(schema),
            "{path}: the schema reached the upstream changed:\n{text}"
        );
        assert!(
            text.starts_with(r#"{"model":"llama3.2","#),
            "{path}: field order changed:\n{text}"
        );
    }
}

/// Ollama's runners stop at `num_predict` only when it is positive: a zero limit (or an
/// `options` number that truncates to zero) is no limit at all, in every dialect.
#[tokio::test]
async fn a_zero_token_limit_is_clamped_as_no_limit() {
    let h = Harness::with_policies().await;
    let hi = json!([{"role": "user", "content": "hi"}]);
    let cases = [
        (
            "/api/chat",
            json!({"model": "llama3.2", "messages": hi, "stream": false, "options": {"num_predict": 0}}),
            "/options/num_predict",
        ),
        (
            "/api/generate",
            json!({"model": "llama3.2", "prompt": "hi", "stream": false, "options": {"num_predict": 0.5}}),
            "/options/num_predict",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": hi, "max_tokens": 0}),
            "/max_tokens",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": hi, "max_completion_tokens": 0}),
            "/max_tokens",
        ),
        (
            "/v1/completions",
            json!({"model": "llama3.2", "prompt": "hi", "max_tokens": 0}),
            "/max_tokens",
        ),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "messages": hi, "max_tokens": 0}),
            "/max_tokens",
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": "hi", "max_output_tokens": 0}),
            "/max_output_tokens",
        ),
    ];
    for (path, body, field) in cases {
        h.mock.clear();
        let r = h.post_json(path, "clara", &body).await;
        assert_eq!(r.status, 200, "{path} {body}: {}", r.text());
        let sent = h.forwarded().pop().unwrap().json().unwrap();
        assert_eq!(sent.pointer(field), Some(&json!(128)), "{path}: {sent}");
    }
}

#[tokio::test]
async fn builtin_user_cannot_pin_a_model_forever() {
    let h = Harness::start().await;
    for ka in [
        json!(-1),
        json!("-1"),
        json!("-1m"),
        json!("876000h"),
        json!(1e12),
    ] {
        h.mock.clear();
        let body =
            json!({"model": "llama3.2", "prompt": "hi", "stream": false, "keep_alive": ka.clone()});
        let r = h.post_json("/api/generate", "alice", &body).await;
        if r.status == 400 {
            // Refusing an unreadable keep_alive is acceptable; forwarding it is not.
            assert!(h.forwarded().is_empty());
            continue;
        }
        assert_eq!(r.status, 200, "{ka}: {}", r.text());
        let sent = h.forwarded().pop().unwrap().json().unwrap();
        let secs = keep_alive_secs(&sent["keep_alive"]);
        assert!(
            secs > 0.0 && secs <= 1800.0,
            "keep_alive {ka} forwarded as {}",
            sent["keep_alive"]
        );
    }
}

/// keep_alive as Ollama reads it: a number of seconds or a Go duration.
fn keep_alive_secs(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => {
            if let Ok(n) = s.parse::<f64>() {
                return n;
            }
            let mut total = 0.0;
            let mut num = String::new();
            let mut chars = s.chars().peekable();
            while let Some(c) = chars.next() {
                if c.is_ascii_digit() || c == '.' || c == '-' {
                    num.push(c);
                } else {
                    let mut unit = c.to_string();
                    if c == 'm' && chars.peek() == Some(&'s') {
                        unit.push(chars.next().unwrap());
                    }
                    let n: f64 = num.parse().unwrap_or_else(|_| panic!("bad duration {s}"));
                    num.clear();
                    total += n * match unit.as_str() {
                        "h" => 3600.0,
                        "m" => 60.0,
                        "s" => 1.0,
                        "ms" => 0.001,
                        _ => panic!("unit {unit} in {s}"),
                    };
                }
            }
            total
        }
        Value::Null => f64::INFINITY,
        other => panic!("keep_alive {other}"),
    }
}

#[tokio::test]
async fn tools_and_images_are_refused_when_the_policy_says_so() {
    let h = Harness::with_policies().await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let img = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

    let mut b = chat_body("llama3.2", false);
    b["tools"] = tools.clone();
    let r = h.post_json("/api/chat", "nora", &b).await;
    assert_refused(&h, &r, "tools_denied", "/api/chat tools");
    let r = h.post_json("/v1/chat/completions", "nora", &b).await;
    assert_refused(&h, &r, "tools_denied", "/v1 tools");
    assert_openai_error(&r, "tools_denied");
    let mut f = chat_body("llama3.2", false);
    f["functions"] = json!([{"name": "get_weather", "parameters": {}}]);
    let r = h.post_json("/v1/chat/completions", "nora", &f).await;
    assert_refused(&h, &r, "tools_denied", "/v1 legacy functions");

    let b = json!({"model": "llava", "messages": [{"role": "user", "content": "what is this", "images": [img]}]});
    let r = h.post_json("/api/chat", "nora", &b).await;
    assert_refused(&h, &r, "images_denied", "/api/chat images");
    let b = json!({"model": "llava", "prompt": "what is this", "images": [img]});
    let r = h.post_json("/api/generate", "nora", &b).await;
    assert_refused(&h, &r, "images_denied", "/api/generate images");
    let b = json!({"model": "llava", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{img}")}}]}]});
    let r = h.post_json("/v1/chat/completions", "nora", &b).await;
    assert_refused(&h, &r, "images_denied", "/v1 image_url part");

    // The same requests pass for a policy that allows them, and the tool call comes back.
    let mut b = chat_body("llama3.2", false);
    b["tools"] = tools;
    let r = h.post_json("/api/chat", "root", &b).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["message"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
}

#[tokio::test]
async fn tool_call_history_is_refused_when_the_policy_has_no_tools() {
    // Ollama renders replayed tool calls and tool results into the prompt in the model's
    // tool-call format, with or without tool definitions: each dialect's shape is refused,
    // in that dialect's error shape, and nothing reaches Ollama.
    let h = Harness::with_policies().await;
    let chat = json!({"model": "llama3.2", "stream": false, "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"}]});
    let r = h.post_json("/api/chat", "nora", &chat).await;
    assert_refused(&h, &r, "tools_denied", "/api/chat tool history");
    assert_ollama_error(&r);

    let v1 = json!({"model": "llama3.2", "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]});
    let r = h.post_json("/v1/chat/completions", "nora", &v1).await;
    assert_refused(&h, &r, "tools_denied", "/v1 tool message");
    assert_openai_error(&r, "tools_denied");

    let responses = json!({"model": "llama3.2", "input": [
        {"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}]});
    let r = h.post_json("/v1/responses", "nora", &responses).await;
    assert_refused(&h, &r, "tools_denied", "/v1/responses function_call items");
    assert_openai_error(&r, "tools_denied");

    let messages = json!({"model": "llama3.2", "max_tokens": 64, "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}]}]});
    let r = h.post_json("/v1/messages", "nora", &messages).await;
    assert_refused(&h, &r, "tools_denied", "/v1/messages tool blocks");
    let v = r.json();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "permission_error", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("replay tool calls"),
        "{v}"
    );

    // A key whose policy allows tools sends the same history on.
    let r = h.post_json("/api/chat", "root", &chat).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(h.forwarded().len(), 1);
}

#[tokio::test]
async fn content_parts_not_known_to_be_text_are_refused_without_images() {
    // A part type the gate does not know may be an image, a file or audio to Ollama: under
    // images = false it is refused in the client's dialect, and nothing reaches Ollama.
    let h = Harness::with_policies().await;
    let pdf = json!({"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"});
    let messages = json!({"model": "llama3.2", "max_tokens": 64, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "summarise"}, {"type": "document", "source": pdf}]}]});
    let r = h.post_json("/v1/messages", "nora", &messages).await;
    assert_refused(&h, &r, "images_denied", "/v1/messages document block");
    let v = r.json();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "permission_error", "{v}");
    assert_eq!(
        v["error"]["message"],
        "policy \"notools\" does not allow image input (content parts must be of a type known to carry only text)"
    );

    let responses = json!({"model": "llama3.2", "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "summarise"},
        {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQK"}]}]});
    let r = h.post_json("/v1/responses", "nora", &responses).await;
    assert_refused(&h, &r, "images_denied", "/v1/responses input_file part");
    assert_openai_error(&r, "images_denied");

    let chat = json!({"model": "llama3.2", "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}]}]});
    let r = h.post_json("/v1/chat/completions", "nora", &chat).await;
    assert_refused(&h, &r, "images_denied", "/v1 input_audio part");
    assert_openai_error(&r, "images_denied");

    // Text parts pass for the same key.
    let text = json!({"model": "llama3.2", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Why is the sky blue?"}]}]});
    let r = h.post_json("/v1/chat/completions", "nora", &text).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = json!({"model": "llama3.2", "max_tokens": 64, "system": [{"type": "text", "text": "be brief"}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Why is the sky blue?"}]}]});
    let r = h.post_json("/v1/messages", "nora", &text).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(h.forwarded().len(), 2);
}

#[tokio::test]
async fn a_responses_image_under_a_top_level_tool_use_type_is_refused() {
    // Ollama ignores a top-level "type" and reads /v1/responses input items and content parts
    // through structs, under any case of their keys (openai/responses.go): this is an
    // input_image to Ollama, and must not reach it for a policy without images.
    let h = Harness::with_policies().await;
    let img = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
    let b = json!({"model": "llava", "type": "tool_use", "input": [{"role": "user", "content": [
        {"TYPE": "input_image", "IMAGE_URL": format!("data:image/png;base64,{img}")}]}]});
    let r = h.post_json("/v1/responses", "nora", &b).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_openai_error(&r, "bad_request");
    assert!(h.forwarded().is_empty(), "forwarded {:?}", h.forwarded());
}

#[tokio::test]
async fn a_transcription_is_refused_without_images() {
    // Ollama passes the uploaded file to the model as a message image
    // (openai.FromTranscriptionRequest); a vision model reads a PNG sent there as one.
    let h = Harness::with_policies().await;
    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nllava\r\n\
                --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\
                Content-Type: image/png\r\n\r\nPNG\r\n--XyZ--\r\n";
    let headers = vec![
        ("authorization", h.bearer("nora")),
        (
            "content-type",
            "multipart/form-data; boundary=XyZ".to_string(),
        ),
    ];
    let r = send(
        h.addr,
        "POST",
        "/v1/audio/transcriptions",
        &headers,
        Bytes::from(body),
    )
    .await;
    assert_refused(&h, &r, "images_denied", "/v1/audio/transcriptions");
    assert_openai_error(&r, "images_denied");
}

#[tokio::test]
async fn a_web_search_tool_that_ollama_runs_needs_the_account_class() {
    // Ollama answers the model's web_search calls itself, from ollama.com with the server's
    // signed-in account: the account class, whatever the tools rule says.
    let h = Harness::start().await;
    let messages = json!({"model": "llama3.2", "max_tokens": 64,
        "messages": [{"role": "user", "content": "news?"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]});
    let r = h.post_json("/v1/messages", "alice", &messages).await;
    assert_refused(&h, &r, "endpoint_class", "/v1/messages web_search");
    let v = r.json();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "permission_error", "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("account"),
        "{v}"
    );

    let responses = json!({"model": "llama3.2", "input": "news?", "stream": true,
        "tools": [{"type": "web_search_preview"}]});
    let r = h.post_json("/v1/responses", "alice", &responses).await;
    assert_refused(&h, &r, "endpoint_class", "/v1/responses web_search");
    assert_openai_error(&r, "endpoint_class");

    // An ordinary function tool still passes for user, and admin may search.
    let function = json!({"model": "llama3.2", "input": "x",
        "tools": [{"type": "function", "name": "web_search", "parameters": {"type": "object"}}]});
    let r = h.post_json("/v1/responses", "alice", &function).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = h.post_json("/v1/messages", "root", &messages).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn cloud_models_are_refused_for_user() {
    let h = Harness::with_policies().await;
    for m in [
        "gpt-oss:120b-cloud",
        "glm-4.6:cloud",
        "kimi-k2:1t",
        // `ollama.com` is Ollama's other name for its registry: the same remote model.
        "ollama.com/library/kimi-k2:1t",
        "https://Ollama.com/library/kimi-k2:1t",
    ] {
        let r = h
            .post_json("/api/chat", "alice", &chat_body(m, false))
            .await;
        assert_refused(&h, &r, "cloud_denied", m);
        let r = h
            .post_json("/v1/chat/completions", "alice", &chat_body(m, false))
            .await;
        assert_refused(&h, &r, "cloud_denied", m);
    }
    // A policy with cloud = true may use them.
    let r = h
        .post_json("/api/chat", "cleo", &chat_body("glm-4.6:cloud", false))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn a_cloud_model_named_by_its_digest_is_refused_in_every_dialect() {
    // Recent Ollama resolves a manifest's digest, or a 12+ digit prefix of it, to the model
    // whose manifest it is: a cloud model's stub as well (its digest is the same on every
    // server that pulled it). `nora` may use every model but no cloud model.
    let h = Harness::with_policies().await;
    let d = corral_testsupport::shapes::digest_of("gpt-oss:120b-cloud");
    for m in [
        d.clone(),
        d[..12].to_string(),
        format!("sha256-{d}"),
        format!("library/{}:latest", &d[..16]),
    ] {
        for path in [
            "/api/chat",
            "/v1/chat/completions",
            "/v1/messages",
            "/v1/responses",
        ] {
            let body = json!({"model": m, "messages": [], "input": "x", "max_tokens": 8});
            let r = h.post_json(path, "nora", &body).await;
            assert_refused(&h, &r, "cloud_denied", &format!("{path} {m}"));
        }
        // A policy with an allow-list cannot vouch for a digest either.
        let r = h
            .post_json("/api/chat", "alice", &chat_body(&m, false))
            .await;
        assert_refused(&h, &r, "model_not_allowed", &m);
    }
    let r = h
        .post_json("/api/chat", "cleo", &chat_body(&d, false))
        .await;
    assert_eq!(
        r.status,
        200,
        "a policy with every model and cloud: {}",
        r.text()
    );
}

#[tokio::test]
async fn builtin_user_has_cloud_denied_too() {
    let h = Harness::start().await;
    let r = h
        .post_json(
            "/api/generate",
            "alice",
            &json!({"model": "gpt-oss:120b-cloud", "prompt": "x"}),
        )
        .await;
    assert_refused(&h, &r, "cloud_denied", "builtin user, cloud model");
}

/// An upstream that answers `/api/tags` with `tags_status` and everything else with a small
/// chat answer; returns its URL and the request lines it saw.
async fn tags_upstream(
    tags_status: u16,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let log = std::sync::Arc::clone(&log);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Head, then the body its Content-Length announces.
                let (head_end, len) = loop {
                    let Ok(n) = s.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                        break (i + 4, len);
                    }
                };
                while buf.len() < head_end + len {
                    let Ok(n) = s.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let line =
                    String::from_utf8_lossy(&buf[..buf.iter().position(|&b| b == b'\r').unwrap()])
                        .to_string();
                let (status, body) = if line.contains("/api/tags") {
                    (tags_status, r#"{"models":[]}"#.to_string())
                } else {
                    (200, r#"{"model":"llama3.2:latest","message":{"role":"assistant","content":"hi"},"done":true,"prompt_eval_count":3,"eval_count":1}"#.to_string())
                };
                log.lock().unwrap().push(line);
                let resp = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    (url, seen)
}

#[tokio::test]
async fn an_unknown_model_is_refused_while_the_upstream_model_list_cannot_be_read() {
    let (url, seen) = tags_upstream(500).await;
    let mut h = Harness::builder()
        .config(POLICIES)
        .upstream(&url)
        .start()
        .await;
    let r = h
        .post_json("/api/chat", "alice", &chat_body("llama3.2", false))
        .await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("model list"));
    let lines = seen.lock().unwrap().clone();
    assert_eq!(
        lines,
        vec!["GET /api/tags HTTP/1.1".to_string()],
        "the chat never went upstream"
    );
    let rec = h
        .wait_audit(T, |r| r["corral"]["reason"] == "catalogue_unavailable")
        .await
        .expect("the refusal is recorded");
    assert_eq!(rec["corral"]["model"], "llama3.2:latest");
    // The upstream's failure, not a bad request.
    assert_eq!(rec["event"]["action"], "upstream_error");
    assert_eq!(rec["corral"]["decision"], "deny");
    assert_eq!(rec["http"]["response"]["status_code"], 502);
    // A policy that allows cloud models has nothing to verify.
    let r = h
        .post_json("/api/chat", "cleo", &chat_body("llama3.2", false))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    h.stop().await;
}

#[tokio::test]
async fn an_upstream_without_a_model_list_has_no_remote_models() {
    // An OpenAI-compatible server answers /api/tags with 404: nothing there can be remote.
    let (url, seen) = tags_upstream(404).await;
    let mut h = Harness::builder()
        .config(POLICIES)
        .upstream(&url)
        .start()
        .await;
    let r = h
        .post_json("/api/chat", "alice", &chat_body("llama3.2", false))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let lines = seen.lock().unwrap().clone();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("GET /api/tags"));
    assert!(lines[1].starts_with("POST /api/chat"));
    h.stop().await;
}

#[tokio::test]
async fn a_model_the_allow_list_refuses_costs_no_upstream_request_and_is_recorded() {
    let mut h = Harness::with_policies().await;
    let r = h
        .post_json("/api/chat", "alice", &chat_body("secret-model", false))
        .await;
    assert_refused(&h, &r, "model_not_allowed", "secret-model for alice");
    assert_eq!(h.mock.request_count(), 0, "not even a catalogue refresh");
    let rec = h
        .wait_audit(T, |r| r["corral"]["reason"] == "model_not_allowed")
        .await
        .expect("the refusal is recorded");
    assert_eq!(rec["corral"]["model"], "secret-model:latest");
    h.stop().await;
}
