//! Tool-call history in request bodies, refused under `tools = false`.
//!
//! A request that defines no tools may still replay tool calls and their results as history.
//! Ollama turns each dialect's shape into `api.Message` tool calls (`ToolCalls`) and messages
//! of role `tool`, and its chat templates and renderers write those into the prompt in the
//! model's own tool-call format whether or not the request defines tools (`deepseek.gotmpl`:
//! `{{ if .ToolCalls }}` under `assistant`, `{{ else if eq .Role "tool" }}`). A client could so
//! run the tool loop a policy without tools refuses: it parses the calls from the text and
//! feeds results back as tool messages. The shapes, per route:
//!
//! - `/api/chat`: a message with `tool_calls`, `tool_name` or `tool_call_id`, or role `tool`.
//! - `/v1/chat/completions` (`openai.FromChatRequest`): a message with `tool_calls` or
//!   `tool_call_id`, role `tool`; the legacy `function_call` and role `function` too.
//! - `/v1/responses` (`openai.FromResponsesRequest`): every input item but a message and
//!   `reasoning`: `function_call`, `function_call_output`, `custom_tool_call(_output)` and the
//!   other `*_call` items, which Ollama reads as tool calls and `tool` messages or refuses;
//!   and a message item of role `tool`, which Ollama passes on as one.
//! - `/v1/messages` (`anthropic.FromMessagesRequest`): `tool_use`, `tool_result`,
//!   `server_tool_use`, `web_search_tool_result` blocks (and any `*_tool_use`,
//!   `*_tool_result`), and role `tool`, which Ollama lower-cases and passes on.
//!
//! Keys are compared exactly: a key Go would read under another spelling is refused before
//! this (`fields::refuse_ambiguous_keys`).

use serde_json::{Map, Value};

use super::content::{non_empty, objects};
use super::fields::responses_item_type;

/// True when the body replays a tool call or a tool's result (see the module docs).
pub(super) fn has_tool_history(route: &str, obj: &Map<String, Value>) -> bool {
    match route {
        "api.chat" | "v1.chat.completions" => objects(obj.get("messages")).any(chat_message),
        "v1.responses" => objects(obj.get("input")).any(responses_item),
        "v1.messages" => objects(obj.get("messages")).any(anthropic_message),
        _ => false,
    }
}

/// True when a `/v1/responses` body continues a stored response: any `previous_response_id`
/// but `null`. Ollama's `ResponsesHistoryMiddleware` (`middleware/responses_history.go`) keeps
/// each answered response's `input` and `output` items and puts them in front of this
/// request's `input` before `openai.FromResponsesRequest` reads it: images, tool calls and tool
/// results the gate never sees in this body. Ollama keys that store by the `Authorization`
/// header, which the gate does not forward, so a stored turn may come from a request another
/// key sent under another policy. (A `""` id is looked up too, and not found; a number is a
/// decoding error. Neither is worth forwarding.)
pub(super) fn continues_stored_response(route: &str, obj: &Map<String, Value>) -> bool {
    route == "v1.responses"
        && obj
            .get("previous_response_id")
            .is_some_and(|v| !v.is_null())
}

/// Message fields that carry a tool call or a tool's result: `tool_calls` (native and /v1),
/// `function_call` (legacy /v1), `tool_call_id` (/v1, native), `tool_name` (native).
const TOOL_FIELDS: &[&str] = &["tool_calls", "function_call", "tool_call_id", "tool_name"];

fn chat_message(m: &Map<String, Value>) -> bool {
    tool_role(m) || TOOL_FIELDS.iter().any(|k| m.get(*k).is_some_and(non_empty))
}

fn responses_item(i: &Map<String, Value>) -> bool {
    match responses_item_type(i) {
        Some("message") => tool_role(i),
        Some("reasoning") => false,
        _ => true,
    }
}

fn anthropic_message(m: &Map<String, Value>) -> bool {
    if tool_role(m) {
        return true;
    }
    let Some(Value::Array(blocks)) = m.get("content") else {
        return false;
    };
    blocks.iter().any(|b| {
        b.get("type").and_then(Value::as_str).is_some_and(|t| {
            ["tool_use", "tool_result"]
                .iter()
                .any(|k| t == *k || t.strip_suffix(k).is_some_and(|p| p.ends_with('_')))
        })
    })
}

/// The role of a tool's result: `tool`, or legacy /v1 `function`, in any case (Ollama
/// lower-cases the role on /v1/messages; templates and renderers differ).
fn tool_role(m: &Map<String, Value>) -> bool {
    m.get("role")
        .and_then(Value::as_str)
        .is_some_and(|r| r.eq_ignore_ascii_case("tool") || r.eq_ignore_ascii_case("function"))
}
