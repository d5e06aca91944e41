//! Typed content parts, which must all be text under `images = false`.
//!
//! Where a dialect's content is a list of typed parts, a part of a type the gate does not know
//! may be one Ollama reads as model input other than text, now or in a later release (an image,
//! a file, audio): under `images = false` only the types known to carry text alone pass. What
//! Ollama reads, per route:
//!
//! - `/v1/chat/completions` (`openai.FromChatRequest`): a message's `content` is a string or a
//!   list of parts; `text` is text, `image_url` an image, any other type an error.
//! - `/v1/responses` (`openai/responses.go`, `ResponsesInputMessage.UnmarshalJSON`,
//!   `unmarshalResponsesInputItem`): `input` is a string or a list of items. A `message` (or an
//!   item with a `role` and no `type`) has parts `input_text`, `output_text` (text) and
//!   `input_image`; any other part type, `input_file` among them, is an error. The
//!   `function_call`, `custom_tool_call` and `reasoning` items carry strings, and so does the
//!   `output` of `function_call_output` and `custom_tool_call_output`, which later releases also
//!   read as a list of parts. Any other item type is an error.
//! - `/v1/messages` (`anthropic.FromMessagesRequest`, `convertMessage`): blocks `text`,
//!   `thinking`, `tool_use`, `server_tool_use` and `web_search_tool_result` are text, `image` an
//!   image; a `tool_result` holds a string or `text` and `image` blocks; other types (`document`,
//!   `redacted_thinking`...) are dropped. Of `system` blocks only `text` is read.
//!
//! Keys are compared exactly: a key Go would read under another spelling is refused before
//! this (`fields::refuse_ambiguous_keys`).

use serde_json::{Map, Value};

use super::content::{objects, IMAGE_TYPES};
use super::fields::responses_item_type;

/// Why content is not text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NonText {
    /// A part of a type that carries an image.
    Image,
    /// A part of a type not known to carry text alone, or content of a shape Ollama does not
    /// read as text.
    Unknown,
}

/// Part types that are text on /v1/chat/completions, and in Anthropic `tool_result` and
/// `system` blocks.
const TEXT: &[&str] = &["text"];
/// Part types that are text on /v1/responses.
const RESPONSES_TEXT: &[&str] = &["input_text", "output_text"];
/// Anthropic message blocks that carry text, or tool calls and results, alone (`tool_result`,
/// whose content may hold images, is looked into). `redacted_thinking`, which Ollama drops,
/// holds an opaque string.
const ANTHROPIC_BLOCKS: &[&str] = &[
    "text",
    "thinking",
    "redacted_thinking",
    "tool_use",
    "server_tool_use",
    "web_search_tool_result",
];

/// The first content of the body that is not text (see the module docs), if any.
pub(super) fn first_non_text(route: &str, obj: &Map<String, Value>) -> Option<NonText> {
    match route {
        "v1.chat.completions" => {
            objects(obj.get("messages")).find_map(|m| parts(m.get("content"), TEXT))
        }
        "v1.responses" => responses(obj),
        "v1.messages" => parts(obj.get("system"), TEXT).or_else(|| {
            objects(obj.get("messages")).find_map(|m| match m.get("content") {
                Some(Value::Array(blocks)) => blocks.iter().find_map(anthropic_block),
                other => parts(other, &[]),
            })
        }),
        _ => None,
    }
}

fn responses(obj: &Map<String, Value>) -> Option<NonText> {
    let Some(Value::Array(items)) = obj.get("input") else {
        // A string is text; anything else Ollama refuses.
        return None;
    };
    items.iter().find_map(|item| {
        let Value::Object(i) = item else {
            return Some(NonText::Unknown);
        };
        match responses_item_type(i) {
            Some("message") => parts(i.get("content"), RESPONSES_TEXT),
            Some("function_call_output" | "custom_tool_call_output") => {
                parts(i.get("output"), RESPONSES_TEXT)
            }
            Some("function_call" | "custom_tool_call" | "reasoning") => None,
            _ => Some(NonText::Unknown),
        }
    })
}

fn anthropic_block(block: &Value) -> Option<NonText> {
    match type_of(block) {
        Some("tool_result") => parts(block.get("content"), TEXT),
        Some(t) if ANTHROPIC_BLOCKS.contains(&t) => None,
        t => Some(classify(t)),
    }
}

/// Content that is absent, `null` or a string is text; a list must hold only objects whose
/// `type` is one of `text`; anything else is not known to be text.
fn parts(content: Option<&Value>, text: &[&str]) -> Option<NonText> {
    match content {
        None | Some(Value::Null | Value::String(_)) => None,
        Some(Value::Array(a)) => a.iter().find_map(|p| match type_of(p) {
            Some(t) if text.contains(&t) => None,
            t => Some(classify(t)),
        }),
        Some(_) => Some(NonText::Unknown),
    }
}

fn classify(t: Option<&str>) -> NonText {
    match t {
        Some(t) if IMAGE_TYPES.contains(&t) => NonText::Image,
        _ => NonText::Unknown,
    }
}

/// The `type` of a part, when it is an object with a string `type`.
fn type_of(part: &Value) -> Option<&str> {
    part.get("type").and_then(Value::as_str)
}
