//! The streamed answers: Ollama NDJSON, OpenAI SSE, Anthropic SSE, Responses SSE, pull progress.

use bytes::Bytes;
use serde_json::{json, Value};

use crate::body::{StreamShape, FAILURE_MESSAGE};
use crate::shapes::{digest_of, tool_arguments, word, CREATED_AT, CREATED_UNIX, PROMPT_TOKENS};

pub(crate) fn ndjson(v: &Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

pub(crate) fn sse(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

fn sse_event(event: &str, v: &Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {v}\n\n"))
}

/// Final counters of a native generation, shared by the streamed and whole answers.
pub(crate) fn done_fields(obj: &mut serde_json::Map<String, Value>, eval_count: usize) {
    obj.insert("done".into(), json!(true));
    obj.insert("done_reason".into(), json!("stop"));
    obj.insert("total_duration".into(), json!(4_883_583_458u64));
    obj.insert("load_duration".into(), json!(1_334_875u64));
    obj.insert("prompt_eval_count".into(), json!(PROMPT_TOKENS));
    obj.insert("prompt_eval_duration".into(), json!(342_546_000u64));
    obj.insert("eval_count".into(), json!(eval_count));
    obj.insert("eval_duration".into(), json!(4_535_599_000u64));
}

/// A tool call to emit: `(function name, arguments object)`.
pub(crate) type ToolCall = (String, Value);

pub(crate) fn tool_call_for(tool: Option<(String, Option<Value>)>) -> Option<ToolCall> {
    tool.map(|(name, params)| {
        let args = tool_arguments(params.as_ref());
        (name, args)
    })
}

pub(crate) struct Generate {
    pub model: String,
}

impl StreamShape for Generate {
    fn chunk(&self, i: usize) -> Bytes {
        ndjson(&json!({
            "model": self.model, "created_at": CREATED_AT, "response": word(i), "done": false
        }))
    }
    fn suffix(&self, sent: usize) -> Vec<Bytes> {
        let mut last = json!({
            "model": self.model, "created_at": CREATED_AT, "response": "",
            "context": [128006, 882, 128007]
        });
        if let Some(o) = last.as_object_mut() {
            done_fields(o, sent);
        }
        vec![ndjson(&last)]
    }
}

pub(crate) struct Chat {
    pub model: String,
    pub tool: Option<ToolCall>,
}

pub(crate) fn ollama_tool_calls(t: &ToolCall) -> Value {
    json!([{ "function": { "index": 0, "name": t.0, "arguments": t.1 } }])
}

impl StreamShape for Chat {
    fn prefix(&self) -> Vec<Bytes> {
        match &self.tool {
            Some(t) => vec![ndjson(&json!({
                "model": self.model, "created_at": CREATED_AT,
                "message": { "role": "assistant", "content": "", "tool_calls": ollama_tool_calls(t) },
                "done": false
            }))],
            None => Vec::new(),
        }
    }
    fn chunk(&self, i: usize) -> Bytes {
        ndjson(&json!({
            "model": self.model, "created_at": CREATED_AT,
            "message": { "role": "assistant", "content": word(i) }, "done": false
        }))
    }
    fn suffix(&self, sent: usize) -> Vec<Bytes> {
        let mut last = json!({
            "model": self.model, "created_at": CREATED_AT,
            "message": { "role": "assistant", "content": "" }
        });
        if let Some(o) = last.as_object_mut() {
            done_fields(o, sent);
        }
        vec![ndjson(&last)]
    }
}

pub(crate) fn openai_tool_calls(t: &ToolCall) -> Value {
    json!([{
        "id": "call_mock0001", "index": 0, "type": "function",
        "function": { "name": t.0, "arguments": t.1.to_string() }
    }])
}

pub(crate) fn openai_usage(completion: usize) -> Value {
    json!({
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": completion,
        "total_tokens": PROMPT_TOKENS as usize + completion
    })
}

pub(crate) struct OpenAiChat {
    pub model: String,
    pub include_usage: bool,
    pub tool: Option<ToolCall>,
}

impl OpenAiChat {
    fn frame(&self, delta: Value, finish: Value) -> Bytes {
        sse(&json!({
            "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": CREATED_UNIX,
            "model": self.model, "system_fingerprint": "fp_ollama",
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }]
        }))
    }
}

impl StreamShape for OpenAiChat {
    fn prefix(&self) -> Vec<Bytes> {
        match &self.tool {
            Some(t) => vec![self.frame(
                json!({ "role": "assistant", "content": "", "tool_calls": openai_tool_calls(t) }),
                Value::Null,
            )],
            None => Vec::new(),
        }
    }
    fn chunk(&self, i: usize) -> Bytes {
        self.frame(
            json!({ "role": "assistant", "content": word(i) }),
            Value::Null,
        )
    }
    fn suffix(&self, sent: usize) -> Vec<Bytes> {
        let reason = if self.tool.is_some() {
            "tool_calls"
        } else {
            "stop"
        };
        let mut out =
            vec![self.frame(json!({ "role": "assistant", "content": "" }), json!(reason))];
        if self.include_usage {
            out.push(sse(&json!({
                "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": CREATED_UNIX,
                "model": self.model, "system_fingerprint": "fp_ollama",
                "choices": [], "usage": openai_usage(sent)
            })));
        }
        out.push(Bytes::from_static(b"data: [DONE]\n\n"));
        out
    }
    fn failure(&self) -> Bytes {
        sse(
            &json!({ "error": { "message": FAILURE_MESSAGE, "type": "api_error", "param": null, "code": null } }),
        )
    }
}

pub(crate) struct OpenAiCompletion {
    pub model: String,
    pub include_usage: bool,
}

impl OpenAiCompletion {
    fn frame(&self, text: &str, finish: Value) -> Bytes {
        sse(&json!({
            "id": "cmpl-mock", "object": "text_completion", "created": CREATED_UNIX,
            "model": self.model, "system_fingerprint": "fp_ollama",
            "choices": [{ "text": text, "index": 0, "logprobs": null, "finish_reason": finish }]
        }))
    }
}

impl StreamShape for OpenAiCompletion {
    fn chunk(&self, i: usize) -> Bytes {
        self.frame(&word(i), Value::Null)
    }
    fn suffix(&self, sent: usize) -> Vec<Bytes> {
        let mut out = vec![self.frame("", json!("stop"))];
        if self.include_usage {
            out.push(sse(&json!({
                "id": "cmpl-mock", "object": "text_completion", "created": CREATED_UNIX,
                "model": self.model, "system_fingerprint": "fp_ollama",
                "choices": [], "usage": openai_usage(sent)
            })));
        }
        out.push(Bytes::from_static(b"data: [DONE]\n\n"));
        out
    }
    fn failure(&self) -> Bytes {
        sse(
            &json!({ "error": { "message": FAILURE_MESSAGE, "type": "api_error", "param": null, "code": null } }),
        )
    }
}

pub(crate) struct Anthropic {
    pub model: String,
    pub tool: Option<ToolCall>,
}

impl StreamShape for Anthropic {
    fn prefix(&self) -> Vec<Bytes> {
        let mut out = vec![sse_event(
            "message_start",
            &json!({ "type": "message_start", "message": {
                "id": "msg_mock", "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": { "input_tokens": PROMPT_TOKENS, "output_tokens": 0 }
            }}),
        )];
        if let Some((name, args)) = &self.tool {
            out.push(sse_event("content_block_start", &json!({
                "type": "content_block_start", "index": 1,
                "content_block": { "type": "tool_use", "id": "toolu_mock", "name": name, "input": {} }
            })));
            out.push(sse_event(
                "content_block_delta",
                &json!({
                    "type": "content_block_delta", "index": 1,
                    "delta": { "type": "input_json_delta", "partial_json": args.to_string() }
                }),
            ));
            out.push(sse_event(
                "content_block_stop",
                &json!({ "type": "content_block_stop", "index": 1 }),
            ));
        }
        out.push(sse_event(
            "content_block_start",
            &json!({ "type": "content_block_start", "index": 0,
                     "content_block": { "type": "text", "text": "" } }),
        ));
        out
    }
    fn chunk(&self, i: usize) -> Bytes {
        sse_event(
            "content_block_delta",
            &json!({ "type": "content_block_delta", "index": 0,
                     "delta": { "type": "text_delta", "text": word(i) } }),
        )
    }
    fn suffix(&self, sent: usize) -> Vec<Bytes> {
        let stop = if self.tool.is_some() {
            "tool_use"
        } else {
            "end_turn"
        };
        vec![
            sse_event(
                "content_block_stop",
                &json!({ "type": "content_block_stop", "index": 0 }),
            ),
            sse_event(
                "message_delta",
                &json!({ "type": "message_delta",
                         "delta": { "stop_reason": stop, "stop_sequence": null },
                         "usage": { "input_tokens": PROMPT_TOKENS, "output_tokens": sent } }),
            ),
            sse_event("message_stop", &json!({ "type": "message_stop" })),
        ]
    }
    fn failure(&self) -> Bytes {
        sse_event(
            "error",
            &json!({ "type": "error", "error": { "type": "api_error", "message": FAILURE_MESSAGE } }),
        )
    }
}

pub(crate) struct Responses {
    pub model: String,
}

pub(crate) fn response_object(model: &str, text: &str, status: &str, out_tokens: usize) -> Value {
    json!({
        "id": "resp_mock", "object": "response", "created_at": CREATED_UNIX, "status": status,
        "model": model,
        "output": [{
            "type": "message", "id": "msg_mock", "status": status, "role": "assistant",
            "content": [{ "type": "output_text", "text": text, "annotations": [] }]
        }],
        "usage": {
            "input_tokens": PROMPT_TOKENS, "output_tokens": out_tokens,
            "total_tokens": PROMPT_TOKENS as usize + out_tokens
        }
    })
}

impl StreamShape for Responses {
    fn prefix(&self) -> Vec<Bytes> {
        vec![sse_event(
            "response.created",
            &json!({ "type": "response.created", "sequence_number": 0,
                     "response": response_object(&self.model, "", "in_progress", 0) }),
        )]
    }
    fn chunk(&self, i: usize) -> Bytes {
        sse_event(
            "response.output_text.delta",
            &json!({ "type": "response.output_text.delta", "sequence_number": i + 1,
                     "item_id": "msg_mock", "output_index": 0, "content_index": 0,
                     "delta": word(i) }),
        )
    }
    fn suffix(&self, sent: usize) -> Vec<Bytes> {
        let text: String = (0..sent).map(word).collect();
        vec![sse_event(
            "response.completed",
            &json!({ "type": "response.completed", "sequence_number": sent + 1,
                     "response": response_object(&self.model, &text, "completed", sent) }),
        )]
    }
    fn failure(&self) -> Bytes {
        sse_event(
            "error",
            &json!({ "type": "error", "sequence_number": 1, "code": "server_error",
                     "message": FAILURE_MESSAGE, "param": null }),
        )
    }
}

/// `/api/pull`, `/api/push`, `/api/create` progress.
pub(crate) struct Progress {
    pub model: String,
}

impl StreamShape for Progress {
    fn prefix(&self) -> Vec<Bytes> {
        vec![ndjson(&json!({ "status": "pulling manifest" }))]
    }
    fn chunk(&self, i: usize) -> Bytes {
        let d = digest_of(&self.model);
        ndjson(&json!({
            "status": format!("pulling {}", &d[..12]), "digest": format!("sha256:{d}"),
            "total": 2_019_393_189u64, "completed": (i as u64 + 1) * 100_000_000
        }))
    }
    fn suffix(&self, _sent: usize) -> Vec<Bytes> {
        vec![
            ndjson(&json!({ "status": "verifying sha256 digest" })),
            ndjson(&json!({ "status": "writing manifest" })),
            ndjson(&json!({ "status": "success" })),
        ]
    }
}
