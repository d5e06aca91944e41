//! Detection of tool definitions and image input in request bodies, and the list helpers the
//! other detectors share.

use serde_json::{Map, Value};

/// True when the body defines tools: a non-empty `tools` (native chat, /v1 chat,
/// /v1/responses, /v1/messages) or legacy `functions` (/v1 chat). Any value other than
/// `null`, `[]` or `{}` counts: a shape we do not understand is not waved through.
pub(super) fn has_tools(obj: &Map<String, Value>) -> bool {
    ["tools", "functions"]
        .iter()
        .any(|k| obj.get(*k).is_some_and(non_empty))
}

/// True when the body asks Ollama for the rendered prompt instead of a generation
/// (`_debug_render_only`, on the native and /v1 chat and generate routes). Any value but
/// `null` and `false` counts.
pub(super) fn renders_only(obj: &Map<String, Value>) -> bool {
    obj.get("_debug_render_only")
        .is_some_and(|v| !matches!(v, Value::Null | Value::Bool(false)))
}

/// True when the body defines a web search tool that Ollama runs itself: on `/v1/messages`
/// a tool whose `type` starts with `web_search` (`web_search_20250305`), on `/v1/responses`
/// `web_search`, `web_search_preview` and their dated variants (and `web_fetch*`, see
/// [`is_server_web_tool`]). When the model calls it,
/// Ollama queries ollama.com's web search with the server's signed-in account, as
/// `/api/experimental/web_search` (account class) does. Checked on every inference route's
/// `tools`; Go reads the tool's `type` field under any case, so every key that folds onto
/// `type` counts.
pub(super) fn has_server_web_search(obj: &Map<String, Value>) -> bool {
    let Some(Value::Array(tools)) = obj.get("tools") else {
        return false;
    };
    tools.iter().any(|tool| {
        let Value::Object(t) = tool else {
            return false;
        };
        t.iter().any(|(k, v)| {
            let is_type = k == "type" || super::fields::go_fold(k).as_deref() == Some("type");
            // Ollama compares exactly; any case and surrounding spaces are refused too, so
            // that a server that normalises the type cannot be reached around this check.
            is_type && v.as_str().is_some_and(is_server_web_tool)
        })
    })
}

/// A tool type naming a web tool the server runs: `web_search*`, and `web_fetch*` (the other
/// half of ollama.com's web API, `/api/experimental/web_fetch`, and Anthropic's companion
/// server tool), in any case.
fn is_server_web_tool(t: &str) -> bool {
    let t = t.trim();
    ["web_search", "web_fetch"].iter().any(|p| {
        t.get(..p.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(p))
    })
}

/// True when the body carries image input in any of the shapes Ollama accepts. A transcription
/// always does: Ollama hands the uploaded file to the model as the user message's `images`
/// (`openai.FromTranscriptionRequest`), where a vision model reads a PNG as an image, and what
/// the file holds is not the gate's to guess.
pub(super) fn has_images(route: &str, obj: &Map<String, Value>) -> bool {
    let roots: &[&str] = match route {
        "v1.audio.transcriptions" => return true,
        "api.generate" => &["images"],
        "api.chat" | "v1.chat.completions" => &["messages"],
        "v1.responses" => &["input"],
        "v1.messages" => &["messages", "system"],
        _ => &[],
    };
    roots.iter().any(|r| match obj.get(*r) {
        Some(v) if *r == "images" => non_empty(v),
        Some(v) => scan(v, 0),
        None => false,
    })
}

/// Part types that carry an image: /v1 chat `image_url`, /v1/responses `input_image`,
/// /v1/messages `image`.
pub(super) const IMAGE_TYPES: &[&str] = &["image_url", "input_image", "image"];

/// Looks through message structures (including nested content such as Anthropic
/// `tool_result` blocks) for image parts or native `images` lists. Tool-call arguments
/// (`tool_calls`, `arguments`, a `tool_use` block's `input`) are model output replayed as
/// history, not image input, and are skipped.
fn scan(v: &Value, depth: usize) -> bool {
    if depth > 256 {
        return true;
    }
    match v {
        Value::Array(a) => a.iter().any(|x| scan(x, depth + 1)),
        Value::Object(o) => {
            if o.get("images").is_some_and(non_empty) || o.get("image_url").is_some_and(non_empty) {
                return true;
            }
            if let Some(Value::String(t)) = o.get("type") {
                if IMAGE_TYPES.contains(&t.as_str()) {
                    return true;
                }
            }
            let tool_use = super::fields::is_tool_use(o);
            let skipped = |k: &str| {
                matches!(k, "tool_calls" | "arguments" | "function_call")
                    || (tool_use && k == "input")
            };
            o.iter()
                .filter(|(k, _)| !skipped(k))
                .any(|(_, x)| scan(x, depth + 1))
        }
        _ => false,
    }
}

pub(super) fn non_empty(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::String(s) => !s.is_empty(),
        Value::Bool(b) => *b,
        Value::Number(_) => true,
    }
}

/// The objects of a list; anything else (which Ollama refuses to decode) yields none.
pub(super) fn objects(v: Option<&Value>) -> impl Iterator<Item = &Map<String, Value>> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}
