//! Which body fields name models, and refusal of field names Ollama would read differently.

use serde_json::{Map, Value};

use super::Denial;
use crate::model::MAX_NAME_LEN;

/// How a route's body names its model(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ModelSpec {
    /// No model (account routes).
    None,
    /// `model`, or `name` from older clients; both are checked when both are present.
    Model,
    /// `/api/copy`: `source` and `destination`.
    Copy,
    /// `/api/create`: `model` (or `name`) and an optional `from` base model.
    Create,
}

pub(super) fn model_spec(route: &str) -> ModelSpec {
    match route {
        "api.copy" => ModelSpec::Copy,
        "api.create" => ModelSpec::Create,
        "api.me" | "api.signout" | "api.experimental.web_search" | "api.experimental.web_fetch" => {
            ModelSpec::None
        }
        _ => ModelSpec::Model,
    }
}

/// Ollama streams these routes unless the body says `"stream": false`.
pub(super) fn default_stream(route: &str) -> bool {
    matches!(
        route,
        "api.generate" | "api.chat" | "api.pull" | "api.push" | "api.create"
    )
}

/// Every model the body names, primary first. Each must be allowed.
pub(super) fn models(obj: &Map<String, Value>, spec: ModelSpec) -> Result<Vec<&str>, Denial> {
    let mut out = Vec::new();
    match spec {
        ModelSpec::None => {}
        ModelSpec::Model | ModelSpec::Create => {
            push_opt(obj, "model", &mut out)?;
            push_opt(obj, "name", &mut out)?;
            if out.is_empty() {
                return Err(Denial::bad_request("missing \"model\" in request body"));
            }
            if spec == ModelSpec::Create {
                push_opt(obj, "from", &mut out)?;
            }
        }
        ModelSpec::Copy => {
            for key in ["source", "destination"] {
                let before = out.len();
                push_opt(obj, key, &mut out)?;
                if out.len() == before {
                    return Err(Denial::bad_request(format!(
                        "missing \"{key}\" in request body"
                    )));
                }
            }
        }
    }
    Ok(out)
}

/// Adds `obj[key]` when it is a non-empty string. `null` counts as absent, as it does for
/// Go's decoder; any other type is refused rather than guessed at.
fn push_opt<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    out: &mut Vec<&'a str>,
) -> Result<(), Denial> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s.is_empty() => Ok(()),
        Some(Value::String(s)) if s.len() > MAX_NAME_LEN => {
            Err(Denial::bad_request(format!("\"{key}\" is too long")))
        }
        Some(Value::String(s)) => {
            out.push(s);
            Ok(())
        }
        Some(_) => Err(Denial::bad_request(format!("\"{key}\" must be a string"))),
    }
}

/// Field names the decision reads or rewrites.
const WATCHED: &[&str] = &[
    "model",
    "name",
    "source",
    "destination",
    "from",
    "tools",
    "functions",
    "images",
    "messages",
    "content",
    "type",
    "image_url",
    "input",
    "system",
    "options",
    "num_ctx",
    "num_predict",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "keep_alive",
    "stream",
    "stream_options",
    "include_usage",
    "_debug_render_only",
    "role",
    "output",
    "tool_calls",
    "tool_call_id",
    "tool_name",
    "function_call",
    "previous_response_id",
];

/// Subtrees Ollama decodes into free-form maps (exact keys) or that hold client data
/// (tool schemas, arguments, output schemas): a `Model` key there is data, not a field.
/// `schema` is a JSON schema wherever a request has one (`json.RawMessage` to Ollama in
/// `openai.JsonSchema` and `openai.ResponsesTextFormat`), and Anthropic's structured output
/// (`output_format.schema`) sends one outside `format`; its `$defs` are named after the
/// client's classes (`Role`, `Content`, `Output`).
const FREE_FORM: &[&str] = &[
    "tools",
    "functions",
    "arguments",
    "parameters",
    "format",
    "response_format",
    "metadata",
    "schema",
];

/// Go's `encoding/json` matches struct fields case-insensitively, with Unicode folding
/// (`ſ` folds to `s`, the Kelvin sign to `k`), and the last match wins. A body with
/// `{"model":"allowed","Model":"other"}` would be decided on one name and run with the
/// other, so any key that folds onto a watched field without being spelled exactly like it
/// is refused.
pub(super) fn refuse_ambiguous_keys(obj: &Map<String, Value>) -> Result<(), Denial> {
    walk(obj, 0)
}

/// Bodies nest at most serde_json's recursion limit (128), so this recursion is bounded.
fn walk(obj: &Map<String, Value>, depth: usize) -> Result<(), Denial> {
    for (k, v) in obj {
        // Keys already in lower-case ASCII cannot fold onto another spelling; most keys
        // are, so the common path allocates nothing.
        let foldable = k.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii());
        if let Some(folded) = foldable.then(|| go_fold(k)).flatten() {
            if folded != *k && WATCHED.contains(&folded.as_str()) {
                return Err(Denial::bad_request(format!(
                    "ambiguous field name (use \"{folded}\" exactly)"
                )));
            }
        }
        // A content block's `input` holds a tool's arguments; the body's own `input` (the
        // /v1/responses input items) is read by Ollama whatever `type` the body claims.
        let tool_arguments = k == "input" && depth > 0 && is_tool_use(obj);
        if FREE_FORM.contains(&k.as_str()) || tool_arguments {
            continue;
        }
        walk_value(v, depth + 1)?;
    }
    Ok(())
}

/// Anthropic `tool_use` blocks carry the model's arguments in `input`, a free-form map. Only a
/// nested object is such a block: a `type` on the body itself means nothing to Ollama.
pub(super) fn is_tool_use(obj: &Map<String, Value>) -> bool {
    matches!(
        obj.get("type").and_then(Value::as_str),
        Some("tool_use" | "server_tool_use")
    )
}

/// The type Ollama gives a `/v1/responses` input item (`unmarshalResponsesInputItem`): its
/// `type`, or `message` for an item with a `role` and no `type` (the shorthand
/// `{"role", "content"}`). `None` when `type` is not a string, which Ollama refuses.
pub(super) fn responses_item_type(item: &Map<String, Value>) -> Option<&str> {
    let t = match item.get("type") {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return None,
    };
    let has_role = matches!(item.get("role"), Some(Value::String(r)) if !r.is_empty());
    Some(if t.is_empty() && has_role {
        "message"
    } else {
        t
    })
}

fn walk_value(v: &Value, depth: usize) -> Result<(), Denial> {
    if depth > 256 {
        return Err(Denial::bad_request("request body nests too deeply"));
    }
    match v {
        Value::Object(o) => walk(o, depth),
        Value::Array(a) => a.iter().try_for_each(|x| walk_value(x, depth + 1)),
        _ => Ok(()),
    }
}

/// The ASCII key `k` folds to under Go's rules, or `None` if it folds to non-ASCII.
pub(super) fn go_fold(k: &str) -> Option<String> {
    k.chars()
        .map(|c| match c {
            'A'..='Z' => Some(c.to_ascii_lowercase()),
            '\u{017F}' => Some('s'),
            '\u{212A}' => Some('k'),
            c if c.is_ascii() => Some(c),
            _ => None,
        })
        .collect()
}
