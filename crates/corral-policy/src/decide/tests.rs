use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::config::Policy;
use crate::route::route;

fn no_remote(_: &str) -> bool {
    false
}

fn user() -> Policy {
    Policy::builtin_user()
}

fn admin() -> Policy {
    Policy::builtin_admin()
}

fn strict() -> Policy {
    let mut p = Policy::builtin_user();
    p.name = "strict".to_string();
    p.models = vec![
        crate::model::ModelPattern::parse("llama3.2").unwrap(),
        crate::model::ModelPattern::parse("qwen*:7b").unwrap(),
    ];
    p.tools = false;
    p.images = false;
    p.max_num_predict = Some(512);
    p.max_num_ctx = Some(4096);
    p.max_keep_alive = Some(Duration::from_secs(300));
    p
}

/// [`strict`] with tools allowed: image refusals in tool-call history are tested with it.
fn no_images() -> Policy {
    let mut p = strict();
    p.tools = true;
    p
}

fn eval(
    policy: &Policy,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<(Verdict, Option<Value>), Denial> {
    let m = route(method, path).unwrap();
    let mut body = body;
    let v = evaluate(policy, &m, body.as_mut(), &no_remote)?;
    Ok((v, body))
}

fn denial(policy: &Policy, method: &str, path: &str, body: Option<Value>) -> Denial {
    eval(policy, method, path, body).unwrap_err()
}

#[test]
fn endpoint_class_is_checked_first() {
    let d = denial(
        &user(),
        "POST",
        "/api/pull",
        Some(json!("not even an object")),
    );
    assert_eq!((d.status, d.rule), (403, "endpoint_class"));
    assert_eq!(d.message, "policy \"user\" does not allow admin endpoints");
    let d = denial(&user(), "GET", "/api/ps", None);
    assert_eq!(d.message, "policy \"user\" does not allow ops endpoints");
    let d = denial(&user(), "POST", "/api/me", None);
    assert_eq!(
        d.message,
        "policy \"user\" does not allow account endpoints"
    );
    let d = denial(
        &user(),
        "POST",
        "/api/blobs/sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        None,
    );
    assert_eq!(d.rule, "endpoint_class");
    let d = denial(&user(), "DELETE", "/api/user/keys/abc", None);
    assert_eq!(d.rule, "endpoint_class");
}

#[test]
fn user_may_use_inference_and_discovery() {
    for (m, p, b) in [
        (
            "POST",
            "/api/chat",
            Some(json!({"model": "llama3.2", "messages": []})),
        ),
        (
            "POST",
            "/api/generate",
            Some(json!({"model": "llama3.2", "prompt": "hi"})),
        ),
        (
            "POST",
            "/api/embed",
            Some(json!({"model": "all-minilm", "input": "x"})),
        ),
        (
            "POST",
            "/api/embeddings",
            Some(json!({"model": "all-minilm", "prompt": "x"})),
        ),
        (
            "POST",
            "/v1/chat/completions",
            Some(json!({"model": "llama3.2", "messages": []})),
        ),
        (
            "POST",
            "/v1/completions",
            Some(json!({"model": "llama3.2", "prompt": "x"})),
        ),
        (
            "POST",
            "/v1/embeddings",
            Some(json!({"model": "all-minilm", "input": "x"})),
        ),
        (
            "POST",
            "/v1/responses",
            Some(json!({"model": "llama3.2", "input": "x"})),
        ),
        (
            "POST",
            "/v1/messages",
            Some(json!({"model": "llama3.2", "max_tokens": 10, "messages": []})),
        ),
        ("GET", "/", None),
        ("HEAD", "/", None),
        ("GET", "/api/version", None),
        ("GET", "/api/tags", None),
        ("GET", "/api/status", None),
        ("POST", "/api/show", Some(json!({"model": "llama3.2"}))),
        ("GET", "/v1/models", None),
        ("GET", "/v1/models/llama3.2", None),
    ] {
        let r = eval(&user(), m, p, b);
        assert!(r.is_ok(), "{m} {p}: {r:?}");
    }
}

#[test]
fn admin_may_do_everything() {
    for (m, p, b) in [
        (
            "POST",
            "/api/pull",
            Some(json!({"model": "gpt-oss:120b-cloud"})),
        ),
        ("POST", "/api/push", Some(json!({"model": "me/x"}))),
        (
            "POST",
            "/api/create",
            Some(json!({"model": "x", "from": "llama3.2"})),
        ),
        (
            "POST",
            "/api/copy",
            Some(json!({"source": "a", "destination": "b"})),
        ),
        ("DELETE", "/api/delete", Some(json!({"model": "a"}))),
        ("GET", "/api/ps", None),
        ("POST", "/api/me", None),
        ("POST", "/api/signout", Some(json!({}))),
        (
            "POST",
            "/api/experimental/web_search",
            Some(json!({"query": "x"})),
        ),
        ("GET", "/api/experimental/model-recommendations", None),
        ("DELETE", "/api/user/keys/abc", None),
        (
            "HEAD",
            "/api/blobs/sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            None,
        ),
    ] {
        let r = eval(&admin(), m, p, b);
        assert!(r.is_ok(), "{m} {p}: {r:?}");
    }
}

#[test]
fn json_routes_need_a_json_object() {
    for body in [
        None,
        Some(json!([])),
        Some(json!("x")),
        Some(json!(1)),
        Some(json!(null)),
    ] {
        let d = denial(&user(), "POST", "/api/chat", body.clone());
        assert_eq!((d.status, d.rule), (400, "bad_request"), "{body:?}");
    }
    let d = denial(&admin(), "POST", "/api/me", Some(json!([1])));
    assert_eq!(d.rule, "bad_request");
}

#[test]
fn model_is_required_and_typed() {
    for (p, b) in [
        ("/api/chat", json!({"messages": []})),
        ("/api/chat", json!({"model": ""})),
        ("/api/chat", json!({"model": null})),
        ("/v1/chat/completions", json!({})),
        ("/api/show", json!({})),
        ("/api/generate", json!({"model": 5})),
        ("/api/generate", json!({"model": ["a"]})),
        ("/api/show", json!({"name": {"x": 1}})),
        ("/api/generate", json!({"model": "a".repeat(600)})),
    ] {
        let d = denial(&user(), "POST", p, Some(b.clone()));
        assert_eq!((d.status, d.rule), (400, "bad_request"), "{p} {b}");
    }
    for (p, b) in [
        ("/api/copy", json!({"source": "a"})),
        ("/api/copy", json!({"destination": "a"})),
        ("/api/pull", json!({})),
        ("/api/create", json!({"from": "llama3.2"})),
    ] {
        let d = denial(&admin(), "POST", p, Some(b.clone()));
        assert_eq!(d.rule, "bad_request", "{p} {b}");
    }
}

#[test]
fn model_names_with_whitespace_or_control_characters_are_bad_requests() {
    for name in [
        "llama3.2:latest\n",
        "llama3.2 ",
        " llama3.2",
        "llama\u{0}3.2",
        "llama\t3.2",
        "a\u{85}b",
    ] {
        let d = denial(
            &admin(),
            "POST",
            "/api/chat",
            Some(json!({"model": name, "messages": []})),
        );
        assert_eq!((d.status, d.rule), (400, "bad_request"), "{name:?}");
        assert!(!d.message.contains(name), "{name:?}");
    }
}

#[test]
fn old_clients_send_name() {
    let (v, _) = eval(
        &user(),
        "POST",
        "/api/show",
        Some(json!({"name": "Llama3.2"})),
    )
    .unwrap();
    assert_eq!(v.model.as_deref(), Some("llama3.2:latest"));
}

#[test]
fn model_allowlist() {
    let p = strict();
    for name in [
        "llama3.2",
        "llama3.2:1b",
        "registry.ollama.ai/library/llama3.2",
        "qwen2.5:7b",
    ] {
        let r = eval(&p, "POST", "/api/generate", Some(json!({"model": name})));
        assert!(r.is_ok(), "{name}: {r:?}");
    }
    for name in [
        "mistral",
        "qwen2.5:14b",
        "10.0.0.5:8443/attacker/llama3.2",
        "evil/llama3.2",
        "llama3.21",
    ] {
        let d = denial(&p, "POST", "/api/generate", Some(json!({"model": name})));
        assert_eq!((d.status, d.rule), (403, "model_not_allowed"), "{name}");
        assert!(
            d.message
                .starts_with("policy \"strict\" does not allow model"),
            "{}",
            d.message
        );
    }
}

#[test]
fn both_model_and_name_are_checked() {
    let p = strict();
    let d = denial(
        &p,
        "POST",
        "/api/show",
        Some(json!({"model": "llama3.2", "name": "mistral"})),
    );
    assert_eq!(d.rule, "model_not_allowed");
    let d = denial(
        &p,
        "POST",
        "/api/show",
        Some(json!({"model": "mistral", "name": "llama3.2"})),
    );
    assert_eq!(d.rule, "model_not_allowed");
}

#[test]
fn copy_and_create_check_every_model() {
    let mut p = admin();
    p.models = vec![crate::model::ModelPattern::parse("mine/*").unwrap()];
    assert!(eval(
        &p,
        "POST",
        "/api/copy",
        Some(json!({"source": "mine/a", "destination": "mine/b"}))
    )
    .is_ok());
    let d = denial(
        &p,
        "POST",
        "/api/copy",
        Some(json!({"source": "mine/a", "destination": "llama3.2"})),
    );
    assert_eq!(d.rule, "model_not_allowed");
    let d = denial(
        &p,
        "POST",
        "/api/copy",
        Some(json!({"source": "llama3.2", "destination": "mine/b"})),
    );
    assert_eq!(d.rule, "model_not_allowed");
    let d = denial(
        &p,
        "POST",
        "/api/create",
        Some(json!({"model": "mine/a", "from": "other"})),
    );
    assert_eq!(d.rule, "model_not_allowed");
    let (v, _) = eval(
        &p,
        "POST",
        "/api/copy",
        Some(json!({"source": "mine/a", "destination": "mine/b"})),
    )
    .unwrap();
    assert_eq!(v.model.as_deref(), Some("mine/a:latest"));
}

#[test]
fn model_param_routes_are_checked() {
    let p = strict();
    assert!(eval(&p, "GET", "/v1/models/llama3.2%3Alatest", None).is_ok());
    let d = denial(&p, "GET", "/v1/models/mistral", None);
    assert_eq!(d.rule, "model_not_allowed");
    let d = denial(&user(), "GET", "/v1/models/gpt-oss%3A120b-cloud", None);
    assert_eq!(d.rule, "cloud_denied");
    let (v, _) = eval(&p, "GET", "/v1/models/llama3.2", None).unwrap();
    assert_eq!(v.model.as_deref(), Some("llama3.2:latest"));
}

#[test]
fn cloud_models_are_denied_by_default() {
    for name in [
        "gpt-oss:120b-cloud",
        "qwen3-coder:480b-cloud",
        "kimi:cloud",
        "GPT-OSS:20B-CLOUD",
    ] {
        let d = denial(&user(), "POST", "/api/chat", Some(json!({"model": name})));
        assert_eq!((d.status, d.rule), (403, "cloud_denied"), "{name}");
        assert_eq!(d.message, "policy \"user\" does not allow cloud models");
    }
    let remote = |n: &str| n == "my-remote:latest";
    let m = route("POST", "/api/chat").unwrap();
    let mut b = json!({"model": "My-Remote"});
    let d = evaluate(&user(), &m, Some(&mut b), &remote).unwrap_err();
    assert_eq!(d.rule, "cloud_denied");
    let mut b = json!({"model": "local"});
    assert!(evaluate(&user(), &m, Some(&mut b), &remote).is_ok());
    // Ollama cuts a URL scheme off a name's registry host: the same remote model.
    for name in [
        "https://registry.ollama.ai/library/my-remote",
        "http://REGISTRY.ollama.ai/library/my-remote:latest",
        "://registry.ollama.ai/library/my-remote",
        // Ollama's other name for its registry: the same model.
        "ollama.com/library/my-remote",
        "https://OLLAMA.COM/Library/My-Remote:latest",
    ] {
        let mut b = json!({"model": name});
        let d = evaluate(&user(), &m, Some(&mut b), &remote).unwrap_err();
        assert_eq!(d.rule, "cloud_denied", "{name}");
    }
    let mut p = user();
    p.cloud = true;
    let mut b = json!({"model": "gpt-oss:120b-cloud"});
    assert!(evaluate(&p, &m, Some(&mut b), &remote).is_ok());
}

#[test]
fn allowlist_is_checked_before_cloud() {
    let d = denial(
        &strict(),
        "POST",
        "/api/chat",
        Some(json!({"model": "gpt-oss:120b-cloud"})),
    );
    assert_eq!(d.rule, "model_not_allowed");
}

#[test]
fn tools_denied() {
    let p = strict();
    let fun = json!([{"type": "function", "function": {"name": "f"}}]);
    for (path, body) in [
        (
            "/api/chat",
            json!({"model": "llama3.2", "tools": fun.clone()}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "tools": fun.clone()}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "functions": [{"name": "f"}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "tools": [{"type": "function", "name": "f"}]}),
        ),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "tools": [{"name": "f", "input_schema": {}}]}),
        ),
        (
            "/api/chat",
            json!({"model": "llama3.2", "tools": {"odd": "shape"}}),
        ),
        ("/api/chat", json!({"model": "llama3.2", "tools": "f"})),
    ] {
        let d = denial(&p, "POST", path, Some(body.clone()));
        assert_eq!((d.status, d.rule), (403, "tools_denied"), "{path} {body}");
        assert_eq!(d.message, "policy \"strict\" does not allow tool calling");
    }
    for body in [
        json!({"model": "llama3.2", "tools": []}),
        json!({"model": "llama3.2", "tools": null}),
    ] {
        assert!(
            eval(&p, "POST", "/api/chat", Some(body.clone())).is_ok(),
            "{body}"
        );
    }
    assert!(eval(
        &user(),
        "POST",
        "/api/chat",
        Some(json!({"model": "x", "tools": fun}))
    )
    .is_ok());
}

#[test]
fn tool_history_is_refused_without_tools() {
    // Ollama renders replayed tool calls and tool results into the prompt in the model's
    // tool-call format, with or without tool definitions.
    let p = strict();
    let call = json!([{"function": {"name": "f", "arguments": {"x": 1}}}]);
    let oa_call =
        json!([{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]);
    for (path, body) in [
        (
            "/api/chat",
            json!({"model": "llama3.2", "messages": [{"role": "tool", "content": "result"}]}),
        ),
        (
            "/api/chat",
            json!({"model": "llama3.2", "messages": [{"role": "TOOL", "content": "result"}]}),
        ),
        (
            "/api/chat",
            json!({"model": "llama3.2", "messages": [{"role": "assistant", "content": "", "tool_calls": call.clone()}]}),
        ),
        (
            "/api/chat",
            json!({"model": "llama3.2", "messages": [{"role": "user", "content": "x", "tool_name": "f"}]}),
        ),
        (
            "/api/chat",
            json!({"model": "llama3.2", "messages": [{"role": "user", "content": "x", "tool_call_id": "c1"}]}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": [{"role": "assistant", "content": null, "tool_calls": oa_call.clone()}]}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": [{"role": "tool", "tool_call_id": "c1", "content": "sunny"}]}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": [{"role": "Tool", "content": [{"type": "text", "text": "sunny"}]}]}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": [{"role": "function", "name": "f", "content": "sunny"}]}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": [{"role": "assistant", "content": null, "function_call": {"name": "f", "arguments": "{}"}}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": [{"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": [{"type": "function_call_output", "call_id": "c1", "output": "sunny"}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": [{"type": "custom_tool_call", "call_id": "c1", "name": "f", "input": "x"}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": [{"type": "custom_tool_call_output", "call_id": "c1", "output": "x"}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": [{"type": "web_search_call", "id": "w"}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": [{"type": "item_reference", "id": "fc_1"}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": [{"role": "tool", "content": "sunny"}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": [{"type": "message", "role": "tool", "content": "sunny"}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": [{"type": 7, "role": "user", "content": "x"}]}),
        ),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 5, "messages": [{"role": "assistant", "content": [
            {"type": "tool_use", "id": "t", "name": "f", "input": {}}]}]}),
        ),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 5, "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t", "content": "sunny"}]}]}),
        ),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 5, "messages": [{"role": "assistant", "content": [
            {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {"query": "x"}}]}]}),
        ),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 5, "messages": [{"role": "user", "content": [
            {"type": "web_search_tool_result", "tool_use_id": "s", "content": []}]}]}),
        ),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 5, "messages": [{"role": "assistant", "content": [
            {"type": "mcp_tool_use", "id": "m", "name": "f", "server_name": "s", "input": {}}]}]}),
        ),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 5, "messages": [{"role": "tool", "content": "sunny"}]}),
        ),
    ] {
        let d = denial(&p, "POST", path, Some(body.clone()));
        assert_eq!((d.status, d.rule), (403, "tools_denied"), "{path} {body}");
        assert_eq!(
            d.message,
            "policy \"strict\" does not allow tool calling (the messages replay tool calls or tool results)"
        );
        // A policy with tools lets the same history through.
        assert!(
            eval(&user(), "POST", path, Some(body.clone())).is_ok(),
            "{path} {body}"
        );
    }
    // Go reads these keys under any case: another spelling is refused before it could hide one.
    for (path, body) in [
        (
            "/api/chat",
            json!({"model": "llama3.2", "messages": [{"role": "assistant", "Tool_Calls": call.clone()}]}),
        ),
        (
            "/api/chat",
            json!({"model": "llama3.2", "messages": [{"ROLE": "tool", "content": "x"}]}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": [{"role": "assistant", "tool_call\u{17f}": oa_call.clone()}]}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": [{"role": "user", "content": "x", "Tool_Call_ID": "c1"}]}),
        ),
        (
            "/api/chat",
            json!({"model": "llama3.2", "messages": [{"role": "user", "content": "x", "TOOL_NAME": "f"}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": [{"Role": "tool", "content": "sunny"}]}),
        ),
    ] {
        let d = denial(&p, "POST", path, Some(body.clone()));
        assert_eq!((d.status, d.rule), (400, "bad_request"), "{path} {body}");
        assert!(
            d.message.starts_with("ambiguous field name"),
            "{}",
            d.message
        );
    }
    // Conversations without tools pass.
    for (path, body) in [
        (
            "/api/chat",
            json!({"model": "llama3.2", "messages": [
            {"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello", "thinking": "greet", "tool_calls": [], "tool_name": ""},
            {"role": "user", "content": "a tool_use please"}]}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "assistant", "content": "hello", "tool_calls": null, "name": "bot"}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": "call a function"}),
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "instructions": "be brief", "input": [
            {"role": "user", "content": "hi"},
            {"type": "reasoning", "id": "r", "summary": [], "encrypted_content": "..."},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hello"}]}]}),
        ),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 5, "system": "be brief", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "greet", "signature": "s"},
                {"type": "text", "text": "hello"}]}]}),
        ),
    ] {
        assert!(
            eval(&p, "POST", path, Some(body.clone())).is_ok(),
            "{path} {body}"
        );
    }
}

#[test]
fn images_denied() {
    let p = strict();
    for (path, body) in [
        (
            "/api/generate",
            json!({"model": "llama3.2", "images": ["aGk="]}),
        ),
        (
            "/api/chat",
            json!({"model": "llama3.2", "messages": [{"role": "user", "content": "x", "images": ["aGk="]}]}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "what"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGk="}}
            ]}]}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": [{"role": "user", "content": [{"image_url": "data:x"}]}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": [{"role": "user", "content": [
                {"type": "input_image", "image_url": "data:image/png;base64,aGk="}
            ]}]}),
        ),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 5, "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "aGk="}}
            ]}]}),
        ),
    ] {
        let d = denial(&p, "POST", path, Some(body.clone()));
        assert_eq!((d.status, d.rule), (403, "images_denied"), "{path} {body}");
        assert_eq!(d.message, "policy \"strict\" does not allow image input");
    }
    let d = denial(
        &no_images(),
        "POST",
        "/v1/messages",
        Some(
            json!({"model": "llama3.2", "max_tokens": 5, "messages": [{"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image", "source": {}}]}
            ]}]}),
        ),
    );
    assert_eq!((d.status, d.rule), (403, "images_denied"));
    for (path, body) in [
        ("/api/generate", json!({"model": "llama3.2", "images": []})),
        (
            "/api/generate",
            json!({"model": "llama3.2", "images": null}),
        ),
        (
            "/api/chat",
            json!({"model": "llama3.2", "messages": [{"role": "user", "content": "describe an image"}]}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": [{"role": "user", "content": [{"type": "text", "text": "image"}]}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": "an image_url please"}),
        ),
    ] {
        assert!(
            eval(&p, "POST", path, Some(body.clone())).is_ok(),
            "{path} {body}"
        );
    }
}

#[test]
fn content_parts_not_known_to_be_text_are_refused_without_images() {
    // Under images = false a typed part passes only when its type is one Ollama reads as text:
    // anything else may be an image, a file or audio to Ollama, now or in a later release.
    let p = no_images();
    let unknown = "policy \"strict\" does not allow image input (content parts must be of a type known to carry only text)";
    let plain = "policy \"strict\" does not allow image input";
    let chat = |content: Value| json!({"model": "llama3.2", "messages": [{"role": "user", "content": content}]});
    let responses = |input: Value| json!({"model": "llama3.2", "input": input});
    let anthropic = |content: Value| json!({"model": "llama3.2", "max_tokens": 5, "messages": [{"role": "user", "content": content}]});
    let pdf = json!({"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="});
    for (path, body, message) in [
        (
            "/v1/chat/completions",
            chat(
                json!([{"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}]),
            ),
            unknown,
        ),
        (
            "/v1/chat/completions",
            chat(
                json!([{"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0="}}]),
            ),
            unknown,
        ),
        (
            "/v1/chat/completions",
            chat(json!([{"type": "text", "text": "a"}, {"type": "refusal", "refusal": "no"}])),
            unknown,
        ),
        (
            "/v1/chat/completions",
            chat(json!([{"type": "Text", "text": "a"}])),
            unknown,
        ),
        (
            "/v1/chat/completions",
            chat(json!([{"text": "no type"}])),
            unknown,
        ),
        (
            "/v1/chat/completions",
            chat(json!([{"type": null, "text": "a"}])),
            unknown,
        ),
        (
            "/v1/chat/completions",
            chat(json!(["a bare string"])),
            unknown,
        ),
        (
            "/v1/chat/completions",
            chat(json!({"type": "text", "text": "an object"})),
            unknown,
        ),
        (
            "/v1/responses",
            responses(
                json!([{"role": "user", "content": [{"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}]}]),
            ),
            unknown,
        ),
        (
            "/v1/responses",
            responses(
                json!([{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"}, {"type": "input_audio", "input_audio": {}}]}]),
            ),
            unknown,
        ),
        (
            "/v1/responses",
            responses(
                json!([{"role": "user", "content": {"type": "input_text", "text": "an object"}}]),
            ),
            unknown,
        ),
        (
            "/v1/responses",
            responses(json!([{"type": "input_file", "file_id": "file-1"}])),
            unknown,
        ),
        (
            "/v1/responses",
            responses(json!([{"type": "item_reference", "id": "msg_1"}])),
            unknown,
        ),
        (
            "/v1/responses",
            responses(json!([{"content": "no type and no role"}])),
            unknown,
        ),
        (
            "/v1/responses",
            responses(json!([{"type": 7, "role": "user", "content": "x"}])),
            unknown,
        ),
        (
            "/v1/responses",
            responses(json!(["a bare string"])),
            unknown,
        ),
        (
            "/v1/responses",
            responses(
                json!([{"type": "function_call_output", "call_id": "c", "output": [{"type": "input_image", "image_url": "data:image/png;base64,aGk="}]}]),
            ),
            plain,
        ),
        (
            "/v1/responses",
            responses(
                json!([{"type": "custom_tool_call_output", "call_id": "c", "output": [{"type": "input_file", "file_id": "f"}]}]),
            ),
            unknown,
        ),
        (
            "/v1/responses",
            responses(
                json!([{"type": "function_call_output", "call_id": "c", "output": {"type": "input_text", "text": "x"}}]),
            ),
            unknown,
        ),
        (
            "/v1/messages",
            anthropic(json!([{"type": "document", "source": pdf.clone()}])),
            unknown,
        ),
        (
            "/v1/messages",
            anthropic(
                json!([{"type": "text", "text": "see"}, {"type": "search_result", "source": "u", "title": "t", "content": []}]),
            ),
            unknown,
        ),
        (
            "/v1/messages",
            anthropic(json!([{"type": "container_upload", "file_id": "f"}])),
            unknown,
        ),
        (
            "/v1/messages",
            anthropic(json!([{"text": "no type"}])),
            unknown,
        ),
        (
            "/v1/messages",
            anthropic(json!({"type": "text", "text": "an object"})),
            unknown,
        ),
        (
            "/v1/messages",
            anthropic(
                json!([{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "document", "source": pdf.clone()}]}]),
            ),
            unknown,
        ),
        (
            "/v1/messages",
            anthropic(
                json!([{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "a"}, {"type": "search_result"}]}]),
            ),
            unknown,
        ),
        (
            "/v1/messages",
            anthropic(
                json!([{"type": "tool_result", "tool_use_id": "t", "content": {"type": "image", "source": {}}}]),
            ),
            plain,
        ),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 5, "system": [{"type": "document", "source": pdf.clone()}], "messages": []}),
            unknown,
        ),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 5, "system": {"type": "text", "text": "an object"}, "messages": []}),
            unknown,
        ),
    ] {
        let d = denial(&p, "POST", path, Some(body.clone()));
        assert_eq!((d.status, d.rule), (403, "images_denied"), "{path} {body}");
        assert_eq!(d.message, message, "{path} {body}");
        // A policy with images lets them through (Ollama refuses what it cannot read).
        assert!(
            eval(&user(), "POST", path, Some(body.clone())).is_ok(),
            "{path} {body}"
        );
    }
    // Go reads part, block and item keys under any case: another spelling of a key the gate
    // reads is refused before it could hide a part.
    for (path, body) in [
        (
            "/v1/chat/completions",
            chat(json!([{"TYPE": "input_audio", "input_audio": {}}])),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": [{"role": "user", "Content": [{"type": "file"}]}]}),
        ),
        (
            "/v1/responses",
            responses(
                json!([{"role": "user", "content": [{"Type": "input_file", "file_data": "x"}]}]),
            ),
        ),
        (
            "/v1/responses",
            responses(
                json!([{"type": "function_call_output", "call_id": "c", "Output": [{"type": "input_image"}]}]),
            ),
        ),
        (
            "/v1/messages",
            anthropic(json!([{"Type": "document", "source": pdf.clone()}])),
        ),
        (
            "/v1/messages",
            anthropic(
                json!([{"type": "tool_result", "tool_use_id": "t", "CONTENT": [{"type": "document"}]}]),
            ),
        ),
    ] {
        let d = denial(&p, "POST", path, Some(body.clone()));
        assert_eq!((d.status, d.rule), (400, "bad_request"), "{path} {body}");
        assert!(
            d.message.starts_with("ambiguous field name"),
            "{}",
            d.message
        );
    }
    // Text, and tool calls and results of text, pass.
    for (path, body) in [
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c", "content": [{"type": "text", "text": "sunny"}]},
            {"role": "assistant", "content": []}]}),
        ),
        ("/v1/responses", responses(json!("a string"))),
        (
            "/v1/responses",
            responses(json!([
            {"role": "user", "content": "hi"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"}]},
            {"type": "reasoning", "id": "r", "summary": [{"type": "summary_text", "text": "t"}], "encrypted_content": "e"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "b"}]},
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c", "output": "sunny"},
            {"type": "custom_tool_call", "call_id": "d", "name": "g", "input": "x"},
            {"type": "custom_tool_call_output", "call_id": "d", "output": [{"type": "input_text", "text": "y"}]},
            {"type": "message", "role": "user", "content": null}])),
        ),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 5,
            "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "t", "signature": "s"},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "text", "text": "a", "citations": []},
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {"type": "document"}},
                    {"type": "server_tool_use", "id": "s1", "name": "web_search", "input": {"query": "q"}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
                    {"type": "tool_result", "tool_use_id": "t2", "content": [{"type": "text", "text": "b"}]},
                    {"type": "tool_result", "tool_use_id": "t3"},
                    {"type": "web_search_tool_result", "tool_use_id": "s1", "content": [
                        {"type": "web_search_result", "url": "https://example.com", "title": "t"}]}]}]}),
        ),
    ] {
        assert!(
            eval(&p, "POST", path, Some(body.clone())).is_ok(),
            "{path} {body}"
        );
    }
}

#[test]
fn tools_are_checked_before_images() {
    let body = json!({"model": "llama3.2", "tools": [{"x": 1}], "messages": [{"images": ["a"]}]});
    assert_eq!(
        denial(&strict(), "POST", "/api/chat", Some(body)).rule,
        "tools_denied"
    );
}

#[test]
fn a_responses_continuation_is_refused_without_tools_or_images() {
    // Ollama's ResponsesHistoryMiddleware (middleware/responses_history.go) puts the stored
    // turns of `previous_response_id` in front of `input`: images and tool calls the gate
    // never sees, stored under a credential the gate does not forward.
    let body =
        |id: Value| json!({"model": "llama3.2", "previous_response_id": id, "input": "and now?"});
    for id in [
        json!("resp_1"),
        json!(""),
        json!(7),
        json!({"id": "resp_1"}),
    ] {
        let d = denial(&strict(), "POST", "/v1/responses", Some(body(id.clone())));
        assert_eq!((d.status, d.rule), (403, "tools_denied"), "{id}");
        assert!(d.message.contains("previous_response_id"), "{}", d.message);
        let d = denial(
            &no_images(),
            "POST",
            "/v1/responses",
            Some(body(id.clone())),
        );
        assert_eq!((d.status, d.rule), (403, "images_denied"), "{id}");
        assert!(d.message.contains("previous_response_id"), "{}", d.message);
    }
    let mut text_only = strict();
    text_only.images = true;
    let d = denial(
        &text_only,
        "POST",
        "/v1/responses",
        Some(body(json!("resp_1"))),
    );
    assert_eq!(d.rule, "tools_denied");
    // Null is absent to Go; a policy with both allowed continues as before.
    assert!(eval(&strict(), "POST", "/v1/responses", Some(body(Value::Null))).is_ok());
    assert!(eval(
        &user(),
        "POST",
        "/v1/responses",
        Some(body(json!("resp_1")))
    )
    .is_ok());
    // Go reads the field under any case.
    let d = denial(
        &user(),
        "POST",
        "/v1/responses",
        Some(json!({"model": "llama3.2", "Previous_Response_ID": "resp_1", "input": "x"})),
    );
    assert_eq!((d.status, d.rule), (400, "bad_request"));
}

#[test]
fn ambiguous_field_names_are_refused() {
    for body in [
        json!({"model": "llama3.2", "Model": "mistral"}),
        json!({"model": "llama3.2", "MODEL": "mistral"}),
        json!({"model": "llama3.2", "\u{17f}tream": true}),
        json!({"model": "llama3.2", "\u{212a}eep_alive": -1}),
        json!({"model": "llama3.2", "Options": {"num_ctx": 999999}}),
        json!({"model": "llama3.2", "Tools": [{"x": 1}]}),
        json!({"model": "llama3.2", "messages": [{"Images": ["a"]}]}),
        json!({"model": "llama3.2", "options": {"Num_Ctx": 1}}),
    ] {
        let d = denial(&strict(), "POST", "/api/chat", Some(body.clone()));
        assert_eq!((d.status, d.rule), (400, "bad_request"), "{body}");
        assert!(
            d.message.starts_with("ambiguous field name"),
            "{}",
            d.message
        );
    }
    // Keys inside tool schemas and arguments are data, not fields.
    let body = json!({"model": "llama3.2", "tools": [{"function": {"parameters": {"properties": {"Model": {}}}}}],
        "messages": [{"role": "assistant", "tool_calls": [{"function": {"arguments": {"Model": "x"}}}]}]});
    assert!(eval(&user(), "POST", "/api/chat", Some(body)).is_ok());
    let body = json!({"model": "llama3.2", "max_tokens": 5, "messages": [{"role": "assistant", "content": [
        {"type": "tool_use", "id": "t", "name": "lookup", "input": {"Name": "x", "type": "image", "images": ["a"]}}
    ]}]});
    assert!(eval(&no_images(), "POST", "/v1/messages", Some(body)).is_ok());
    let body = json!({"model": "x", "messages": [{"role": "user", "content": "x", "Extra": 1}]});
    assert!(eval(&user(), "POST", "/api/chat", Some(body)).is_ok());
}

#[test]
fn structured_output_schemas_are_data() {
    // The JSON schema of /v1/responses structured output (`text.format.schema`) is a
    // `json.RawMessage` to Ollama (openai/responses.go, `ResponsesTextFormat`), as
    // `response_format` is on /v1/chat/completions: SDKs put class names in `$defs` and field
    // names in `properties` there, whatever their case.
    let schema = json!({"type": "object", "properties": {"Input": {"$ref": "#/$defs/Content"}},
        "$defs": {"Content": {"type": "object", "properties": {"Type": {"type": "string"}}}}});
    let body = json!({"model": "llama3.2", "input": "x",
        "text": {"format": {"type": "json_schema", "name": "answer", "schema": schema}}});
    assert!(eval(&strict(), "POST", "/v1/responses", Some(body)).is_ok());
    let body = json!({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}});
    assert!(eval(&strict(), "POST", "/v1/chat/completions", Some(body)).is_ok());
    // Anthropic's structured output sends the schema in `output_format`, outside any
    // `format` key.
    let body = json!({"model": "llama3.2", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
        "output_format": {"type": "json_schema", "schema": schema}});
    assert!(eval(&strict(), "POST", "/v1/messages", Some(body)).is_ok());
    // The fields around a schema are still read under any case.
    let body = json!({"model": "llama3.2", "max_tokens": 5, "Messages": [],
        "output_format": {"type": "json_schema", "schema": {}}});
    assert_eq!(
        denial(&strict(), "POST", "/v1/messages", Some(body)).rule,
        "bad_request"
    );
}

#[test]
fn a_top_level_tool_use_type_does_not_hide_the_input() {
    // Only a content block's `input` is a tool's arguments. Ollama ignores a top-level
    // `type`, and reads /v1/responses `input` items and their content parts through structs,
    // under any case of their keys (openai/responses.go): `TYPE` is `type`, `IMAGE_URL` is
    // `image_url`, so this body carries an image Ollama decodes.
    for t in ["tool_use", "server_tool_use"] {
        let body = json!({"model": "llama3.2", "type": t, "input": [{"role": "user", "content": [
            {"TYPE": "input_image", "IMAGE_URL": "data:image/png;base64,aGk="}
        ]}]});
        let d = denial(&strict(), "POST", "/v1/responses", Some(body));
        assert_eq!((d.status, d.rule), (400, "bad_request"), "{t}");
        assert!(
            d.message.starts_with("ambiguous field name"),
            "{}",
            d.message
        );
    }
}

#[test]
fn num_ctx_clamp() {
    let (v, b) = eval(
        &user(),
        "POST",
        "/api/chat",
        Some(json!({"model": "x", "options": {"num_ctx": 131072}})),
    )
    .unwrap();
    assert!(v.modified);
    assert_eq!(v.clamps, vec!["num_ctx"]);
    assert_eq!(b.unwrap()["options"]["num_ctx"], json!(32768));
    for n in [json!(32768), json!(2048), json!(-1), json!(0)] {
        let (v, b) = eval(
            &user(),
            "POST",
            "/api/generate",
            Some(json!({"model": "x", "options": {"num_ctx": n.clone()}})),
        )
        .unwrap();
        assert!(!v.modified, "{n}");
        assert_eq!(b.unwrap()["options"]["num_ctx"], n);
    }
    for n in [
        json!(32768.5),
        json!(1e12),
        json!("999999"),
        json!([1]),
        json!(u64::MAX),
    ] {
        let (v, b) = eval(
            &user(),
            "POST",
            "/api/embed",
            Some(json!({"model": "x", "options": {"num_ctx": n.clone()}})),
        )
        .unwrap();
        assert!(v.modified, "{n}");
        assert_eq!(b.unwrap()["options"]["num_ctx"], json!(32768), "{n}");
    }
    // Absent stays absent: the model's own default applies.
    let (v, b) = eval(&user(), "POST", "/api/chat", Some(json!({"model": "x"}))).unwrap();
    assert!(!v.modified);
    assert_eq!(b.unwrap().get("options"), None);
    // Admin has no clamp.
    let (v, _) = eval(
        &admin(),
        "POST",
        "/api/chat",
        Some(json!({"model": "x", "options": {"num_ctx": 1_000_000}})),
    )
    .unwrap();
    assert!(!v.modified);
}

#[test]
fn render_only_requests_need_discovery() {
    let mut p = strict();
    p.endpoints = [EndpointClass::Inference].into_iter().collect();
    let bodies = [
        (
            "/api/chat",
            json!({"model": "llama3.2", "messages": [], "_debug_render_only": true}),
        ),
        (
            "/api/generate",
            json!({"model": "llama3.2", "prompt": "x", "_debug_render_only": true}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": [], "_debug_render_only": 1}),
        ),
        (
            "/v1/completions",
            json!({"model": "llama3.2", "prompt": "x", "_debug_render_only": "yes"}),
        ),
    ];
    for (path, body) in &bodies {
        let d = denial(&p, "POST", path, Some(body.clone()));
        assert_eq!((d.status, d.rule), (403, "endpoint_class"), "{path}");
        assert!(d.message.contains("discovery"), "{}", d.message);
        // With discovery, as `/api/show` would tell the same.
        assert!(eval(&strict(), "POST", path, Some(body.clone())).is_ok());
    }
    for off in [json!(false), json!(null)] {
        let body = json!({"model": "llama3.2", "messages": [], "_debug_render_only": off});
        assert!(eval(&p, "POST", "/api/chat", Some(body)).is_ok());
    }
    // Go would read a case variant as the same field.
    let d = denial(
        &p,
        "POST",
        "/api/chat",
        Some(json!({"model": "llama3.2", "messages": [], "_DEBUG_render_only": true})),
    );
    assert_eq!(d.rule, "bad_request");
}

#[test]
fn server_web_search_tools_need_account() {
    // Ollama runs these tools itself, on ollama.com with the server's account.
    let mut p = user();
    p.name = "tooly".to_string();
    let bodies = [
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 9, "messages": [],
                   "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
        ),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 9, "messages": [],
                   "tools": [{"name": "f", "input_schema": {}}, {"TYPE": "web_search_x", "name": "s"}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": "x", "tools": [{"type": "web_search"}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": "x", "tools": [{"type": "web_search_preview_2025_03_11"}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": "x", "tools": [{"Type": "web_search"}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": "x", "tools": [{"type": " Web_Search "}]}),
        ),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 9, "messages": [],
                   "tools": [{"type": "web_fetch_20250910", "name": "web_fetch"}]}),
        ),
    ];
    for (path, body) in &bodies {
        let d = denial(&p, "POST", path, Some(body.clone()));
        assert_eq!((d.status, d.rule), (403, "endpoint_class"), "{path} {body}");
        assert!(d.message.contains("account"), "{}", d.message);
        assert!(d.message.contains("web_search"), "{}", d.message);
        // A policy with the account class may.
        assert!(
            eval(&admin(), "POST", path, Some(body.clone())).is_ok(),
            "{body}"
        );
    }
    // Client-side tools, and a function merely named web_search, stay tool calls.
    for (path, body) in [
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 9, "messages": [],
                   "tools": [{"name": "web_search", "input_schema": {}}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": "x",
                   "tools": [{"type": "function", "name": "web_search", "parameters": {"type": "web_search"}}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": "x", "tools": [{"type": "tool_search", "execution": "client"}]}),
        ),
    ] {
        assert!(eval(&p, "POST", path, Some(body.clone())).is_ok(), "{body}");
    }
}

#[test]
fn num_predict_clamp() {
    let p = strict();
    let cases = [
        (json!({"model": "llama3.2"}), json!(512)),
        (json!({"model": "llama3.2", "options": null}), json!(512)),
        (json!({"model": "llama3.2", "options": {}}), json!(512)),
        (
            json!({"model": "llama3.2", "options": {"num_predict": -1}}),
            json!(512),
        ),
        (
            json!({"model": "llama3.2", "options": {"num_predict": -2}}),
            json!(512),
        ),
        (
            json!({"model": "llama3.2", "options": {"num_predict": 100000}}),
            json!(512),
        ),
        (
            json!({"model": "llama3.2", "options": {"num_predict": "lots"}}),
            json!(512),
        ),
        (
            json!({"model": "llama3.2", "options": {"num_predict": null}}),
            json!(512),
        ),
        // Ollama generates without limit for 0, and truncates 0.5 to 0.
        (
            json!({"model": "llama3.2", "options": {"num_predict": 0}}),
            json!(512),
        ),
        (
            json!({"model": "llama3.2", "options": {"num_predict": 0.5}}),
            json!(512),
        ),
        (
            json!({"model": "llama3.2", "options": {"num_predict": -0.0}}),
            json!(512),
        ),
    ];
    for path in ["/api/generate", "/api/chat"] {
        for (body, want) in &cases {
            let (v, b) = eval(&p, "POST", path, Some(body.clone())).unwrap();
            assert!(v.modified, "{body}");
            assert_eq!(v.clamps, vec!["num_predict"]);
            assert_eq!(b.unwrap()["options"]["num_predict"], *want, "{body}");
        }
        let (v, b) = eval(
            &p,
            "POST",
            path,
            Some(json!({"model": "llama3.2", "options": {"num_predict": 100, "temperature": 0.5}})),
        )
        .unwrap();
        assert!(!v.modified);
        assert_eq!(
            b.unwrap()["options"],
            json!({"num_predict": 100, "temperature": 0.5})
        );
    }
    let d = denial(
        &p,
        "POST",
        "/api/chat",
        Some(json!({"model": "llama3.2", "options": [1]})),
    );
    assert_eq!(d.rule, "bad_request");
    // Embeddings generate nothing: no num_predict added.
    let (v, _) = eval(&p, "POST", "/api/embed", Some(json!({"model": "llama3.2"}))).unwrap();
    assert!(!v.modified);
    // No max: nothing added.
    let (v, _) = eval(
        &user(),
        "POST",
        "/api/generate",
        Some(json!({"model": "x", "options": {"num_predict": -1}})),
    )
    .unwrap();
    assert!(!v.modified);
}

#[test]
fn openai_and_anthropic_token_limits() {
    let p = strict();
    type Case<'a> = (&'a str, Value, &'a [(&'a str, Value)], &'a [&'a str]);
    let cases: &[Case] = &[
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2"}),
            &[("max_tokens", json!(512))],
            &["max_tokens"],
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "max_tokens": 9999}),
            &[("max_tokens", json!(512))],
            &["max_tokens"],
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "max_tokens": -1}),
            &[("max_tokens", json!(512))],
            &["max_tokens"],
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "max_tokens": 10}),
            &[("max_tokens", json!(10))],
            &[],
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "max_completion_tokens": 100}),
            &[
                ("max_completion_tokens", json!(100)),
                ("max_tokens", json!(100)),
            ],
            &["max_tokens"],
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "max_completion_tokens": 100000}),
            &[
                ("max_completion_tokens", json!(512)),
                ("max_tokens", json!(512)),
            ],
            &["max_completion_tokens", "max_tokens"],
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "max_completion_tokens": 100000, "max_tokens": 20}),
            &[
                ("max_completion_tokens", json!(512)),
                ("max_tokens", json!(20)),
            ],
            &["max_completion_tokens"],
        ),
        (
            "/v1/completions",
            json!({"model": "llama3.2"}),
            &[("max_tokens", json!(512))],
            &["max_tokens"],
        ),
        (
            "/v1/completions",
            json!({"model": "llama3.2", "max_tokens": 600}),
            &[("max_tokens", json!(512))],
            &["max_tokens"],
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2"}),
            &[("max_output_tokens", json!(512))],
            &["max_output_tokens"],
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "max_output_tokens": 7}),
            &[("max_output_tokens", json!(7))],
            &[],
        ),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 4096}),
            &[("max_tokens", json!(512))],
            &["max_tokens"],
        ),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 512}),
            &[("max_tokens", json!(512))],
            &[],
        ),
        // 0 is "no limit" to Ollama in every dialect.
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "max_tokens": 0}),
            &[("max_tokens", json!(512))],
            &["max_tokens"],
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "max_completion_tokens": 0}),
            &[
                ("max_completion_tokens", json!(512)),
                ("max_tokens", json!(512)),
            ],
            &["max_completion_tokens", "max_tokens"],
        ),
        (
            "/v1/completions",
            json!({"model": "llama3.2", "max_tokens": 0}),
            &[("max_tokens", json!(512))],
            &["max_tokens"],
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "max_output_tokens": 0}),
            &[("max_output_tokens", json!(512))],
            &["max_output_tokens"],
        ),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 0}),
            &[("max_tokens", json!(512))],
            &["max_tokens"],
        ),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 1}),
            &[("max_tokens", json!(1))],
            &[],
        ),
    ];
    for (path, body, fields, clamps) in cases {
        let (v, b) = eval(&p, "POST", path, Some(body.clone())).unwrap();
        let b = b.unwrap();
        for (k, want) in *fields {
            assert_eq!(b[*k], *want, "{path} {body} {k}");
        }
        assert_eq!(v.clamps, *clamps, "{path} {body}");
        assert_eq!(v.modified, !clamps.is_empty());
    }
    let (v, _) = eval(
        &p,
        "POST",
        "/v1/embeddings",
        Some(json!({"model": "llama3.2", "input": "x"})),
    )
    .unwrap();
    assert!(!v.modified);
}

#[test]
fn keep_alive_clamp() {
    let p = user();
    for ka in [
        json!(-1),
        json!("-1"),
        json!("-1s"),
        json!("-5m"),
        json!("2h"),
        json!("1h30m"),
        json!(3600),
        json!("3600"),
        json!(1e300),
        json!("31m"),
        json!("forever"),
        json!({"x": 1}),
        json!(true),
        json!("1000000000000h"),
    ] {
        let (v, b) = eval(
            &p,
            "POST",
            "/api/generate",
            Some(json!({"model": "x", "keep_alive": ka.clone()})),
        )
        .unwrap();
        assert!(v.modified, "{ka}");
        assert_eq!(v.clamps, vec!["keep_alive"], "{ka}");
        assert_eq!(b.unwrap()["keep_alive"], json!("30m"), "{ka}");
    }
    for ka in [
        json!(0),
        json!("0"),
        json!("5m"),
        json!("30m"),
        json!(1800),
        json!("1800"),
        json!(null),
        json!("10s"),
        json!("1.5h0m").clone(),
    ] {
        let expect_modified = ka == json!("1.5h0m");
        let (v, b) = eval(
            &p,
            "POST",
            "/api/chat",
            Some(json!({"model": "x", "keep_alive": ka.clone()})),
        )
        .unwrap();
        assert_eq!(v.modified, expect_modified, "{ka}");
        if !expect_modified {
            assert_eq!(b.unwrap()["keep_alive"], ka);
        }
    }
    let (v, _) = eval(
        &admin(),
        "POST",
        "/api/chat",
        Some(json!({"model": "x", "keep_alive": -1})),
    )
    .unwrap();
    assert!(!v.modified);
    let (v, b) = eval(
        &strict(),
        "POST",
        "/api/embed",
        Some(json!({"model": "llama3.2", "keep_alive": "-1m"})),
    )
    .unwrap();
    assert_eq!(v.clamps, vec!["keep_alive"]);
    assert_eq!(b.unwrap()["keep_alive"], json!("5m"));
}

#[test]
fn min_keep_alive_raises_short_values_and_unloads() {
    let mut p = user();
    p.min_keep_alive = Some(Duration::from_secs(300));
    // Shorter than five minutes, `0` (unload now) included: raised, and named as a clamp.
    for ka in [
        json!(0),
        json!("0"),
        json!("0s"),
        json!(0.5),
        json!("10s"),
        json!("4m59s"),
        json!(299),
        json!("299"),
    ] {
        for path in ["/api/generate", "/api/chat", "/api/embed"] {
            let (v, b) = eval(
                &p,
                "POST",
                path,
                Some(json!({"model": "x", "keep_alive": ka.clone()})),
            )
            .unwrap();
            assert_eq!(v.clamps, vec!["keep_alive"], "{ka} {path}");
            assert_eq!(b.unwrap()["keep_alive"], json!("5m"), "{ka} {path}");
        }
    }
    // Long enough, absent or null: untouched (Ollama's own default applies to the last two).
    for ka in [json!("5m"), json!(300), json!("10m"), json!(null)] {
        let (v, _) = eval(
            &p,
            "POST",
            "/api/generate",
            Some(json!({"model": "x", "keep_alive": ka.clone()})),
        )
        .unwrap();
        assert!(!v.modified, "{ka}");
    }
    let (v, _) = eval(&p, "POST", "/api/generate", Some(json!({"model": "x"}))).unwrap();
    assert!(!v.modified);
    // Forever is lowered by max_keep_alive, and never below the floor.
    let (v, b) = eval(
        &p,
        "POST",
        "/api/generate",
        Some(json!({"model": "x", "keep_alive": -1})),
    )
    .unwrap();
    assert_eq!(v.clamps, vec!["keep_alive"]);
    assert_eq!(b.unwrap()["keep_alive"], json!("30m"));
    // Without a maximum, forever passes: the floor only raises.
    p.max_keep_alive = None;
    let (v, b) = eval(
        &p,
        "POST",
        "/api/generate",
        Some(json!({"model": "x", "keep_alive": -1})),
    )
    .unwrap();
    assert!(!v.modified);
    assert_eq!(b.unwrap()["keep_alive"], json!(-1));
}

#[test]
fn keep_alive_parsing() {
    let d = |s: u64| Some(KeepAlive::For(Duration::from_secs(s)));
    assert_eq!(parse_keep_alive(&json!("5m")), d(300));
    assert_eq!(parse_keep_alive(&json!("1h30m")), d(5400));
    assert_eq!(parse_keep_alive(&json!("+1h")), d(3600));
    assert_eq!(parse_keep_alive(&json!("0")), d(0));
    assert_eq!(parse_keep_alive(&json!(".5h")), d(1800));
    assert_eq!(parse_keep_alive(&json!("1.5m")), d(90));
    assert_eq!(parse_keep_alive(&json!("300")), d(300));
    assert_eq!(parse_keep_alive(&json!(300)), d(300));
    assert_eq!(
        parse_keep_alive(&json!("1500ms")),
        Some(KeepAlive::For(Duration::from_millis(1500)))
    );
    assert_eq!(
        parse_keep_alive(&json!("2\u{b5}s")),
        Some(KeepAlive::For(Duration::from_micros(2)))
    );
    assert_eq!(parse_keep_alive(&json!(-1)), Some(KeepAlive::Forever));
    assert_eq!(parse_keep_alive(&json!(-0.5)), Some(KeepAlive::Forever));
    assert_eq!(parse_keep_alive(&json!("-1")), Some(KeepAlive::Forever));
    assert_eq!(parse_keep_alive(&json!("-1ns")), Some(KeepAlive::Forever));
    for bad in [
        json!(""),
        json!("m"),
        json!("5x"),
        json!("1.2.3s"),
        json!("."),
        json!(".s"),
        json!(null),
        json!([]),
    ] {
        assert_eq!(parse_keep_alive(&bad), None, "{bad}");
    }
}

#[test]
fn go_duration_format() {
    assert_eq!(format_go_duration(Duration::from_secs(1800)), "30m");
    assert_eq!(format_go_duration(Duration::from_secs(5400)), "1h30m");
    assert_eq!(format_go_duration(Duration::from_secs(3601)), "1h1s");
    assert_eq!(format_go_duration(Duration::from_millis(1500)), "1s500ms");
    assert_eq!(format_go_duration(Duration::from_nanos(1_001)), "1us1ns");
    assert_eq!(format_go_duration(Duration::ZERO), "0s");
    for secs in [1u64, 59, 60, 61, 3599, 86400, 1_000_000] {
        let s = format_go_duration(Duration::from_secs(secs));
        assert_eq!(
            parse_keep_alive(&json!(s)),
            Some(KeepAlive::For(Duration::from_secs(secs))),
            "{s}"
        );
    }
}

#[test]
fn all_clamps_together() {
    let body = json!({"model": "llama3.2", "keep_alive": -1, "options": {"num_ctx": 100000, "num_predict": -1}});
    let (v, b) = eval(&strict(), "POST", "/api/chat", Some(body)).unwrap();
    assert_eq!(v.clamps, vec!["num_ctx", "num_predict", "keep_alive"]);
    let b = b.unwrap();
    assert_eq!(b["options"], json!({"num_ctx": 4096, "num_predict": 512}));
    assert_eq!(b["keep_alive"], json!("5m"));
}

#[test]
fn stream_flag() {
    let s = |p: &str, b: Value| eval(&admin(), "POST", p, Some(b)).unwrap().0.stream;
    assert!(s("/api/generate", json!({"model": "x"})));
    assert!(s("/api/chat", json!({"model": "x"})));
    assert!(!s("/api/chat", json!({"model": "x", "stream": false})));
    assert!(s("/api/chat", json!({"model": "x", "stream": "no"})));
    assert!(!s("/v1/chat/completions", json!({"model": "x"})));
    assert!(s(
        "/v1/chat/completions",
        json!({"model": "x", "stream": true})
    ));
    assert!(!s("/v1/messages", json!({"model": "x"})));
    assert!(s("/v1/responses", json!({"model": "x", "stream": true})));
    assert!(!s("/api/embed", json!({"model": "x"})));
    assert!(!s("/api/show", json!({"model": "x"})));
    assert!(s("/api/pull", json!({"model": "x"})));
    assert!(!s("/api/pull", json!({"model": "x", "stream": false})));
    assert!(!eval(&user(), "GET", "/api/tags", None).unwrap().0.stream);
}

#[test]
fn messages_never_echo_secrets_or_control_bytes() {
    let d = denial(
        &strict(),
        "POST",
        "/api/chat",
        Some(json!({"model": "crl_x\u{1b}[2J\"\\"})),
    );
    assert!(!d.message.contains('\u{1b}'));
    // Without the control byte the name reaches the allow-list, whose message shows it
    // sanitised: no quote or backslash from the name.
    let d = denial(
        &strict(),
        "POST",
        "/api/chat",
        Some(json!({"model": "crl_x[2J\"\\"})),
    );
    assert_eq!(d.rule, "model_not_allowed");
    assert!(!d.message.contains('\\'));
    assert_eq!(d.message.matches('"').count(), 4, "{}", d.message);
    let d = denial(
        &strict(),
        "POST",
        "/api/chat",
        Some(json!({"model": "m".repeat(500)})),
    );
    assert!(d.message.len() < 200);
}

#[test]
fn multipart_evaluation() {
    let m = route("POST", "/v1/audio/transcriptions").unwrap();
    let ct = "multipart/form-data; boundary=XyZ";
    let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF\r\n--XyZ--\r\n";
    let v = evaluate_multipart(&user(), &m, ct, body, &no_remote).unwrap();
    assert_eq!(v.model.as_deref(), Some("whisper:latest"));
    assert!(!v.modified);
    let d = evaluate_multipart(&strict(), &m, ct, body, &no_remote).unwrap_err();
    assert_eq!(d.rule, "model_not_allowed");
    let d = evaluate_multipart(&user(), &m, "application/json", body, &no_remote).unwrap_err();
    assert_eq!((d.status, d.rule), (400, "bad_request"));
    let d = evaluate_multipart(&user(), &m, ct, b"--XyZ--\r\n", &no_remote).unwrap_err();
    assert_eq!(d.rule, "bad_request");
    let mut p = user();
    p.endpoints.clear();
    let d = evaluate_multipart(&p, &m, "garbage", b"", &no_remote).unwrap_err();
    assert_eq!(d.rule, "endpoint_class");
}

#[test]
fn a_transcription_is_image_input() {
    // Ollama hands the uploaded file to the model as the user message's `images`
    // (openai.FromTranscriptionRequest): a PNG uploaded there is an image to a vision model.
    let m = route("POST", "/v1/audio/transcriptions").unwrap();
    let ct = "multipart/form-data; boundary=XyZ";
    let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nllava\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n\x89PNG\r\n--XyZ--\r\n";
    let mut p = user();
    p.images = false;
    let d = evaluate_multipart(&p, &m, ct, body, &no_remote).unwrap_err();
    assert_eq!((d.status, d.rule), (403, "images_denied"));
    assert!(evaluate_multipart(&user(), &m, ct, body, &no_remote).is_ok());
}

#[test]
fn a_transcription_is_refused_under_a_token_limit_it_cannot_carry() {
    // Multipart bodies are not rewritten, and Ollama sets no output limit on a transcription.
    let m = route("POST", "/v1/audio/transcriptions").unwrap();
    let ct = "multipart/form-data; boundary=XyZ";
    let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nllama3.2\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF\r\n--XyZ--\r\n";
    let mut p = user();
    p.max_num_predict = Some(128);
    let d = evaluate_multipart(&p, &m, ct, body, &no_remote).unwrap_err();
    assert_eq!((d.status, d.rule), (403, "clamp_unenforceable"));
    assert!(d.message.contains("max_num_predict"), "{}", d.message);
    // A model the key may not use is still refused as such first.
    let bad = b"--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nnope\r\n--XyZ--\r\n";
    let mut q = p.clone();
    q.models = vec![crate::model::ModelPattern::parse("llama3.2").unwrap()];
    let d = evaluate_multipart(&q, &m, ct, bad, &no_remote).unwrap_err();
    assert_eq!(d.rule, "model_not_allowed");
    assert!(evaluate_multipart(&user(), &m, ct, body, &no_remote).is_ok());
}

#[test]
fn unmodified_bodies_are_left_alone() {
    let body = json!({"model": "x", "messages": [{"role": "user", "content": "hi"}], "options": {"num_ctx": 10}, "keep_alive": "1m"});
    let (v, b) = eval(&user(), "POST", "/api/chat", Some(body.clone())).unwrap();
    assert!(!v.modified && v.clamps.is_empty());
    assert_eq!(b.unwrap(), body);
}

#[test]
fn streamed_v1_completions_are_made_to_report_usage() {
    for path in ["/v1/chat/completions", "/v1/completions"] {
        for body in [
            json!({"model": "llama3.2", "stream": true}),
            json!({"model": "llama3.2", "stream": true, "stream_options": null}),
            json!({"model": "llama3.2", "stream": true, "stream_options": {}}),
            json!({"model": "llama3.2", "stream": true, "stream_options": {"include_usage": false}}),
        ] {
            let (v, b) = eval(&user(), "POST", path, Some(body.clone())).unwrap();
            assert!(v.hide_usage && v.modified, "{path} {body}");
            assert!(v.clamps.is_empty(), "not a clamp: {:?}", v.clamps);
            assert_eq!(b.unwrap()["stream_options"]["include_usage"], json!(true));
        }
        // Asked for by the client: forwarded as it is, and the client keeps its usage chunk.
        let asked =
            json!({"model": "llama3.2", "stream": true, "stream_options": {"include_usage": true}});
        let (v, b) = eval(&user(), "POST", path, Some(asked.clone())).unwrap();
        assert!(!v.hide_usage && !v.modified);
        assert_eq!(b.unwrap(), asked);
        // Not streamed: usage is in the answer anyway.
        for body in [
            json!({"model": "llama3.2"}),
            json!({"model": "llama3.2", "stream": false}),
        ] {
            let (v, b) = eval(&user(), "POST", path, Some(body.clone())).unwrap();
            assert!(!v.hide_usage && !v.modified);
            assert_eq!(b.unwrap(), body);
        }
        // Not an object: left for Ollama to refuse.
        let odd = json!({"model": "llama3.2", "stream": true, "stream_options": "yes"});
        let (v, b) = eval(&user(), "POST", path, Some(odd.clone())).unwrap();
        assert!(!v.hide_usage);
        assert_eq!(b.unwrap(), odd);
    }
    // Other streams always report usage at their end.
    for (path, body) in [
        ("/api/chat", json!({"model": "llama3.2", "messages": []})),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "stream": true, "max_tokens": 5}),
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "stream": true, "input": "x"}),
        ),
    ] {
        let (v, b) = eval(&user(), "POST", path, Some(body)).unwrap();
        assert!(!v.hide_usage, "{path}");
        assert!(b.unwrap().get("stream_options").is_none(), "{path}");
    }
}

#[test]
fn a_folded_stream_options_key_cannot_keep_usage_off_the_record() {
    // Go reads `ſtream_options` (or `Stream_Options`) as `stream_options`, last match winning;
    // the gate's own `stream_options` would sort before it and lose, so the upstream would
    // send no usage and the audit record would have no token counts.
    for body in [
        json!({"model": "llama3.2", "stream": true, "\u{17f}tream_options": {"include_usage": false}}),
        json!({"model": "llama3.2", "stream": true, "Stream_Options": {"include_usage": false}}),
        json!({"model": "llama3.2", "stream": true, "stream_options": {"include_u\u{17f}age": false}}),
        json!({"model": "llama3.2", "stream": true, "stream_options": {"Include_Usage": false}}),
    ] {
        let d = denial(&user(), "POST", "/v1/chat/completions", Some(body.clone()));
        assert_eq!((d.status, d.rule), (400, "bad_request"), "{body}");
        assert!(
            d.message.starts_with("ambiguous field name"),
            "{}",
            d.message
        );
    }
}

/// The gate writes only [`REWRITTEN_FIELDS`] anew and forwards every other field as the
/// client wrote it, so the decision must never change any other top-level field.
#[test]
fn only_the_rewritten_fields_are_ever_changed() {
    let bodies: &[(&str, Value)] = &[
        (
            "/api/chat",
            json!({"model": "llama3.2", "messages": [], "keep_alive": -1,
            "options": {"num_ctx": 1_000_000, "num_predict": -1}, "format": {"type": "object"}}),
        ),
        (
            "/api/generate",
            json!({"model": "llama3.2", "prompt": "x", "keep_alive": "99h",
            "options": null, "stream": true}),
        ),
        (
            "/api/embed",
            json!({"model": "llama3.2", "input": ["x"], "keep_alive": -1,
            "options": {"num_ctx": 1_000_000}}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": [], "stream": true,
            "max_completion_tokens": 100_000, "stream_options": null}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": [], "stream": true,
            "max_tokens": 0, "stream_options": {"include_usage": false}}),
        ),
        (
            "/v1/completions",
            json!({"model": "llama3.2", "prompt": "x", "stream": true}),
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": "x", "stream": true,
            "max_output_tokens": 100_000}),
        ),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "messages": [], "max_tokens": 100_000,
            "stream": true}),
        ),
    ];
    for policy in [user(), strict()] {
        for (path, body) in bodies {
            let (verdict, after) = eval(&policy, "POST", path, Some(body.clone())).unwrap();
            let (Value::Object(b), Some(Value::Object(a))) = (body, &after) else {
                panic!("{path}: not an object");
            };
            for (k, v) in a {
                if b.get(k) != Some(v) {
                    assert!(verdict.modified, "{path}: {k} changed, verdict unmodified");
                    assert!(
                        REWRITTEN_FIELDS.contains(&k.as_str()),
                        "{path}: {k} changed"
                    );
                }
            }
            for k in b.keys() {
                assert!(a.contains_key(k), "{path}: {k} removed");
            }
            let original = serde_json::to_vec(body).unwrap();
            let forwarded = rewritten_body(&original, after.as_ref().unwrap()).unwrap();
            let forwarded: Value = serde_json::from_slice(&forwarded).unwrap();
            assert_eq!(Some(&forwarded), after.as_ref(), "{path}");
        }
    }
}

#[test]
fn a_model_named_by_its_digest_needs_every_model_and_cloud() {
    // Ollama resolves a manifest by its digest (or a 12+ digit prefix of it), which may be a
    // model the allow-list leaves out or a cloud model's stub: neither can be told from the
    // name, so only a policy that allows every model and cloud models lets it through.
    let d = "65a329e9977c2b27524cfe73dd9b2534101c671b506649a49c6385f0253a8295";
    for name in [
        d.to_string(),
        d[..12].to_string(),
        format!("sha256-{d}"),
        format!("sha256:{d}"),
        format!("library/{}", &d[..16]),
        format!("ollama:sha256-{d}"),
        format!("{}:local", &d[..12]),
    ] {
        let d = denial(&user(), "POST", "/api/chat", Some(json!({"model": name})));
        assert_eq!((d.status, d.rule), (403, "cloud_denied"), "{name}");
        assert!(d.message.contains("digest"), "{}", d.message);
        let mut p = user();
        p.models = vec![crate::model::ModelPattern::parse("*:latest").unwrap()];
        p.cloud = true;
        let d = denial(
            &p,
            "POST",
            "/v1/chat/completions",
            Some(json!({"model": name})),
        );
        assert_eq!((d.status, d.rule), (403, "model_not_allowed"), "{name}");
        assert!(d.message.contains("digest"), "{}", d.message);
        let d = denial(
            &strict(),
            "POST",
            "/v1/messages",
            Some(json!({"model": name})),
        );
        assert_eq!(d.rule, "model_not_allowed", "{name}");
        assert!(eval(&admin(), "POST", "/api/chat", Some(json!({"model": name}))).is_ok());
    }
    let d = denial(&user(), "GET", &format!("/v1/models/sha256-{d}"), None);
    assert_eq!(d.rule, "cloud_denied");
}

#[test]
fn the_classes_that_name_models_are_those_whose_routes_do() {
    // `EndpointClass::names_models` decides whether a policy with no models is a start-up
    // error: it must agree with what the routes of each class read.
    use crate::route::{BodyKind, ROUTES};
    for class in crate::route::EndpointClass::ALL {
        let naming: Vec<&str> = ROUTES
            .iter()
            .filter(|r| r.class == class)
            .filter(|r| {
                (r.body == BodyKind::Json && fields::model_spec(r.name) != fields::ModelSpec::None)
                    || r.body == BodyKind::Multipart
                    || r.path.contains("{model}")
                    || r.listing.is_some()
            })
            .map(|r| r.name)
            .collect();
        assert_eq!(
            class.names_models(),
            !naming.is_empty(),
            "{class}: {naming:?}"
        );
    }
}
