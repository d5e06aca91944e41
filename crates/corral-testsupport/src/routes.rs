//! Which answer a request gets: Ollama's route table, reproduced with recorded-shape bodies.

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::body::StreamShape;
use crate::shapes::{self, error_body, Dialect, PROMPT_TOKENS};
use crate::streams::{self, done_fields, ollama_tool_calls, openai_tool_calls, openai_usage};

/// What the router decided; the server turns it into a response under the request's behaviour.
pub(crate) enum Reply {
    Json(u16, Value),
    Text(u16, &'static str),
    Empty(u16),
    Stream {
        content_type: &'static str,
        shape: Box<dyn StreamShape>,
    },
}

pub(crate) const NDJSON: &str = "application/x-ndjson";
pub(crate) const SSE: &str = "text/event-stream";

/// The model a request names (`model`, or `name` for older clients).
pub(crate) fn model_of(json: Option<&Value>) -> Option<&str> {
    let j = json?;
    j.get("model")
        .or_else(|| j.get("name"))
        .and_then(Value::as_str)
}

fn stream_flag(json: Option<&Value>, default: bool) -> bool {
    json.and_then(|j| j.get("stream"))
        .and_then(Value::as_bool)
        .unwrap_or(default)
}

fn include_usage(json: Option<&Value>) -> bool {
    json.and_then(|j| j.pointer("/stream_options/include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

pub(crate) fn not_found() -> Reply {
    Reply::Json(404, json!({ "error": "404 page not found" }))
}

fn bad_request(dialect: Dialect, msg: &str) -> Reply {
    Reply::Json(400, error_body(dialect, 400, msg))
}

/// Routes one request. `chunks` is the content-chunk count used for whole (non-streamed)
/// answers so their token counts match a stream's.
pub(crate) fn route(method: &str, path: &str, json: Option<&Value>, chunks: usize) -> Reply {
    let post_needs_model = matches!(
        path,
        "/api/generate"
            | "/api/chat"
            | "/api/embed"
            | "/api/embeddings"
            | "/api/show"
            | "/v1/chat/completions"
            | "/v1/completions"
            | "/v1/embeddings"
            | "/v1/messages"
            | "/v1/responses"
    );
    let model = model_of(json).unwrap_or_default().to_string();
    if method == "POST" && post_needs_model && model.is_empty() {
        return bad_request(Dialect::of(path), "model is required");
    }
    let tool = streams::tool_call_for(shapes::first_tool(json.and_then(|j| j.get("tools"))));
    match (method, path) {
        ("GET" | "HEAD", "/") => Reply::Text(200, "Ollama is running"),
        ("GET" | "HEAD", "/api/version") => Reply::Json(200, shapes::version()),
        ("GET" | "HEAD", "/api/tags") => Reply::Json(200, shapes::tags()),
        ("GET", "/api/ps") => Reply::Json(200, shapes::ps()),
        ("GET", "/api/status") => Reply::Json(200, json!({ "status": "ok" })),
        ("POST", "/api/show") => Reply::Json(200, shapes::show(&model)),
        ("POST", "/api/generate") => {
            if stream_flag(json, true) {
                stream(NDJSON, streams::Generate { model })
            } else {
                let text: String = (0..chunks).map(shapes::word).collect();
                let mut v = json!({
                    "model": model, "created_at": shapes::CREATED_AT, "response": text,
                    "context": [128006, 882, 128007]
                });
                if let Some(o) = v.as_object_mut() {
                    done_fields(o, chunks);
                }
                Reply::Json(200, v)
            }
        }
        ("POST", "/api/chat") => {
            if stream_flag(json, true) {
                stream(NDJSON, streams::Chat { model, tool })
            } else {
                let text: String = (0..chunks).map(shapes::word).collect();
                let mut message = json!({ "role": "assistant", "content": text });
                if let (Some(t), Some(m)) = (&tool, message.as_object_mut()) {
                    m.insert("content".into(), json!(""));
                    m.insert("tool_calls".into(), ollama_tool_calls(t));
                }
                let mut v = json!({
                    "model": model, "created_at": shapes::CREATED_AT, "message": message
                });
                if let Some(o) = v.as_object_mut() {
                    done_fields(o, chunks);
                }
                Reply::Json(200, v)
            }
        }
        ("POST", "/api/embed") => {
            let n = shapes::input_count(json.and_then(|j| j.get("input")));
            let embeddings: Vec<Vec<f32>> = (0..n).map(shapes::embedding).collect();
            Reply::Json(
                200,
                json!({
                    "model": model, "embeddings": embeddings,
                    "total_duration": 14_143_917u64, "load_duration": 1_019_500u64,
                    "prompt_eval_count": PROMPT_TOKENS
                }),
            )
        }
        ("POST", "/api/embeddings") => {
            Reply::Json(200, json!({ "embedding": shapes::embedding(0) }))
        }
        ("POST", "/api/pull" | "/api/push" | "/api/create") => {
            if stream_flag(json, true) {
                stream(NDJSON, streams::Progress { model })
            } else {
                Reply::Json(200, json!({ "status": "success" }))
            }
        }
        ("POST", "/api/copy") | ("DELETE", "/api/delete") => Reply::Empty(200),
        // Ollama answers 404 (`blob "..." not found`) for a digest it does not hold; the mock
        // keeps no uploads, so every digest is absent, like the all-zero one scanners probe with.
        ("HEAD", p) if p.starts_with("/api/blobs/sha256:") => {
            let digest = &p["/api/blobs/".len()..];
            Reply::Json(
                404,
                json!({ "error": format!("blob {digest:?} not found") }),
            )
        }
        ("POST", p) if p.starts_with("/api/blobs/sha256:") => Reply::Empty(201),
        ("POST", "/api/me") => Reply::Json(
            200,
            json!({ "id": "u_mock", "name": "owner", "email": "owner@example.com", "plan": "free" }),
        ),
        ("POST", "/api/signout") => Reply::Json(200, json!({})),
        ("DELETE", p) if p.starts_with("/api/user/keys/") => Reply::Empty(200),
        ("POST", "/api/experimental/web_search") => Reply::Json(
            200,
            json!({ "results": [{ "title": "Example", "url": "https://example.com/", "content": "Example Domain" }] }),
        ),
        ("POST", "/api/experimental/web_fetch") => Reply::Json(
            200,
            json!({ "title": "Example", "content": "Example Domain", "links": [] }),
        ),
        ("GET", "/api/experimental/model-recommendations") => {
            Reply::Json(200, json!({ "recommendations": [] }))
        }
        ("GET", "/v1/models") => Reply::Json(200, shapes::v1_models()),
        ("GET", p) if p.starts_with("/v1/models/") => {
            let name = &p["/v1/models/".len()..];
            match shapes::find(name) {
                Some(m) => Reply::Json(200, shapes::v1_model(m.name)),
                None => Reply::Json(
                    404,
                    error_body(Dialect::OpenAi, 404, &format!("model \"{name}\" not found")),
                ),
            }
        }
        ("POST", "/v1/chat/completions") => {
            let include_usage = include_usage(json);
            if stream_flag(json, false) {
                stream(
                    SSE,
                    streams::OpenAiChat {
                        model,
                        include_usage,
                        tool,
                    },
                )
            } else {
                let text: String = (0..chunks).map(shapes::word).collect();
                let (message, finish) = match &tool {
                    Some(t) => (
                        json!({ "role": "assistant", "content": "", "tool_calls": openai_tool_calls(t) }),
                        "tool_calls",
                    ),
                    None => (json!({ "role": "assistant", "content": text }), "stop"),
                };
                Reply::Json(
                    200,
                    json!({
                        "id": "chatcmpl-mock", "object": "chat.completion",
                        "created": shapes::CREATED_UNIX, "model": model,
                        "system_fingerprint": "fp_ollama",
                        "choices": [{ "index": 0, "message": message, "finish_reason": finish }],
                        "usage": openai_usage(chunks)
                    }),
                )
            }
        }
        ("POST", "/v1/completions") => {
            if stream_flag(json, false) {
                let include_usage = include_usage(json);
                stream(
                    SSE,
                    streams::OpenAiCompletion {
                        model,
                        include_usage,
                    },
                )
            } else {
                let text: String = (0..chunks).map(shapes::word).collect();
                Reply::Json(
                    200,
                    json!({
                        "id": "cmpl-mock", "object": "text_completion",
                        "created": shapes::CREATED_UNIX, "model": model,
                        "system_fingerprint": "fp_ollama",
                        "choices": [{ "text": text, "index": 0, "logprobs": null, "finish_reason": "stop" }],
                        "usage": openai_usage(chunks)
                    }),
                )
            }
        }
        ("POST", "/v1/embeddings") => Reply::Json(200, v1_embeddings(json, &model)),
        ("POST", "/v1/messages") => {
            if stream_flag(json, false) {
                stream(SSE, streams::Anthropic { model, tool })
            } else {
                let text: String = (0..chunks).map(shapes::word).collect();
                let mut content = vec![json!({ "type": "text", "text": text })];
                if let Some((name, args)) = &tool {
                    content.push(json!({ "type": "tool_use", "id": "toolu_mock", "name": name, "input": args }));
                }
                let stop = if tool.is_some() {
                    "tool_use"
                } else {
                    "end_turn"
                };
                Reply::Json(
                    200,
                    json!({
                        "id": "msg_mock", "type": "message", "role": "assistant", "model": model,
                        "content": content, "stop_reason": stop, "stop_sequence": null,
                        "usage": { "input_tokens": PROMPT_TOKENS, "output_tokens": chunks }
                    }),
                )
            }
        }
        ("POST", "/v1/responses") => {
            if stream_flag(json, false) {
                stream(SSE, streams::Responses { model })
            } else {
                let text: String = (0..chunks).map(shapes::word).collect();
                Reply::Json(
                    200,
                    streams::response_object(&model, &text, "completed", chunks),
                )
            }
        }
        ("POST", "/v1/audio/transcriptions") => {
            Reply::Json(200, json!({ "text": "Hello from the mock Ollama." }))
        }
        _ => not_found(),
    }
}

fn stream(content_type: &'static str, shape: impl StreamShape) -> Reply {
    Reply::Stream {
        content_type,
        shape: Box::new(shape),
    }
}

/// `/v1/embeddings`: floats, or base64 little-endian f32 when asked (the openai SDK's default).
fn v1_embeddings(json: Option<&Value>, model: &str) -> Value {
    let n = shapes::input_count(json.and_then(|j| j.get("input")));
    let b64 = json
        .and_then(|j| j.get("encoding_format"))
        .and_then(Value::as_str)
        == Some("base64");
    let data: Vec<Value> = (0..n)
        .map(|i| {
            let e = shapes::embedding(i);
            let embedding = if b64 {
                let bytes: Vec<u8> = e.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(e)
            };
            json!({ "object": "embedding", "embedding": embedding, "index": i })
        })
        .collect();
    json!({
        "object": "list", "data": data, "model": model,
        "usage": { "prompt_tokens": PROMPT_TOKENS, "total_tokens": PROMPT_TOKENS }
    })
}

/// Body bytes of a JSON reply.
pub(crate) fn json_bytes(v: &Value) -> Bytes {
    Bytes::from(v.to_string())
}
