//! The policy decision for one request.
//!
//! Checks run in a fixed order and the first refusal wins:
//!
//! 1. endpoint class (`endpoint_class`, 403);
//! 2. body shape: a JSON object on JSON routes, no field names that Go's case-insensitive
//!    JSON decoding would read differently from us (`bad_request`, 400), a model where the
//!    route needs one (`bad_request`, 400);
//! 3. model allow-list (`model_not_allowed`, 403) for every model the request names;
//! 4. cloud models (`cloud_denied`, 403);
//! 5. `_debug_render_only`, which shows the model's template, without discovery, and a web
//!    search tool that Ollama runs on the server's ollama.com account, without account
//!    (`endpoint_class`, 403); tool definitions, and tool calls or results replayed as
//!    history (`tools_denied`, 403);
//! 6. image input, and, where content is a list of typed parts, any part of a type not known
//!    to carry only text (`images_denied`, 403);
//! 7. clamps, which rewrite the body instead of refusing;
//! 8. a streamed `/v1` completion that does not ask for token usage is made to ask
//!    (`stream_options.include_usage`), so the audit record gets the upstream's counts; the
//!    gate then drops the usage chunk the client did not ask for ([`Verdict::hide_usage`]).

mod clamp;
mod content;
mod fields;
mod history;
mod parts;
mod stream_usage;

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::config::Policy;
use crate::inspect;
use crate::model;
use crate::route::{BodyKind, EndpointClass, RouteMatch};
use parts::NonText;

pub use clamp::{format_go_duration, parse_keep_alive, KeepAlive};

/// What the gate forwards, after a request was allowed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verdict {
    /// The normalised model the request names, when it names one (for `/api/copy`, the
    /// source).
    pub model: Option<String>,
    /// Whether the upstream response will stream (NDJSON on `/api/*`, SSE on `/v1/*`).
    pub stream: bool,
    /// True when clamps changed the body: the gate must re-serialise it.
    pub modified: bool,
    /// Names of the clamps applied: `num_ctx`, `num_predict`, `max_tokens`,
    /// `max_completion_tokens`, `max_output_tokens`, `keep_alive`.
    pub clamps: Vec<&'static str>,
    /// The gate asked the upstream for a streamed usage chunk the client did not ask for:
    /// the response must pass through a [`crate::usage::UsageChunkFilter`].
    pub hide_usage: bool,
}

/// A refusal. `message` is safe to show to the client: it names the policy and the rule,
/// never a key or anything from the request other than a sanitised model name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Denial {
    pub status: u16,
    /// Stable rule name: `endpoint_class`, `model_not_allowed`, `cloud_denied`,
    /// `tools_denied`, `images_denied`, `clamp_unenforceable`, `bad_request`.
    pub rule: &'static str,
    pub message: String,
}

impl Denial {
    fn new(status: u16, rule: &'static str, message: String) -> Denial {
        Denial {
            status,
            rule,
            message,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Denial {
        Denial::new(400, "bad_request", message.into())
    }
}

/// The top-level body fields [`evaluate`] may rewrite: the clamps' fields and
/// `stream_options`. Every other field reaches the upstream as the client wrote it.
pub const REWRITTEN_FIELDS: &[&str] = &[
    "options",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "keep_alive",
    "stream_options",
];

/// The bytes to forward for a body [`evaluate`] rewrote ([`Verdict::modified`]): `original`
/// (the bytes `body` was parsed from) with only the [`REWRITTEN_FIELDS`] that changed written
/// anew, so that key order and number spellings elsewhere stay the client's (see
/// [`inspect::rewrite_members`]). `None` when `body` is not an object.
pub fn rewritten_body(original: &[u8], body: &Value) -> Option<Vec<u8>> {
    let Value::Object(obj) = body else {
        return None;
    };
    inspect::rewrite_members(original, obj, REWRITTEN_FIELDS)
}

/// Decides one request against `policy`.
///
/// `body` is the parsed request body: required (a JSON object) on JSON routes that name a
/// model, optional on the account routes; `None` for an empty body. For multipart routes
/// use [`evaluate_multipart`]. `is_remote` tells whether a normalised model name is a
/// remote (cloud) model known from `/api/tags`. Clamps are applied to `body` in place.
pub fn evaluate(
    policy: &Policy,
    m: &RouteMatch,
    body: Option<&mut Value>,
    is_remote: &dyn Fn(&str) -> bool,
) -> Result<Verdict, Denial> {
    let route = m.route;
    if !policy.allows_class(route.class) {
        return Err(class_denied(policy, route.class, None));
    }
    let mut verdict = Verdict {
        stream: fields::default_stream(route.name),
        ..Verdict::default()
    };

    if matches!(route.body, BodyKind::None | BodyKind::Binary) {
        if let Some(name) = m.model_param() {
            verdict.model = Some(check_model(policy, &name, is_remote)?.into_owned());
        }
        return Ok(verdict);
    }

    let spec = fields::model_spec(route.name);
    let obj: Option<&mut Map<String, Value>> = match body {
        Some(Value::Object(o)) => Some(o),
        Some(_) => return Err(Denial::bad_request("request body must be a JSON object")),
        None => None,
    };
    let Some(obj) = obj else {
        if spec == fields::ModelSpec::None {
            return Ok(verdict);
        }
        return Err(Denial::bad_request("request body must be a JSON object"));
    };
    fields::refuse_ambiguous_keys(obj)?;

    let models = fields::models(obj, spec)?;
    for (i, name) in models.iter().enumerate() {
        let n = check_model(policy, name, is_remote)?;
        if i == 0 {
            verdict.model = Some(n.into_owned());
        }
    }

    if route.class == EndpointClass::Inference {
        if !policy.allows_class(EndpointClass::Discovery) && content::renders_only(obj) {
            // Ollama answers `_debug_render_only` with the rendered prompt: the model's
            // template and system prompt, which `/api/show` (discovery) would show.
            return Err(class_denied(
                policy,
                EndpointClass::Discovery,
                Some("_debug_render_only shows the model's template"),
            ));
        }
        if !policy.allows_class(EndpointClass::Account) && content::has_server_web_search(obj) {
            // Ollama runs these tools itself: it answers the model's search calls from
            // ollama.com, signed with the server's account (`/api/experimental/web_search`).
            return Err(class_denied(
                policy,
                EndpointClass::Account,
                Some("a web_search or web_fetch tool makes Ollama use ollama.com's web API with the server's account"),
            ));
        }
        if let Some(why) = (!policy.tools).then(|| tool_use(route.name, obj)).flatten() {
            return Err(Denial::new(
                403,
                "tools_denied",
                format!(
                    "policy \"{}\" does not allow tool calling{why}",
                    policy.name
                ),
            ));
        }
        if let Some(why) = (!policy.images)
            .then(|| image_input(route.name, obj))
            .flatten()
        {
            return Err(Denial::new(
                403,
                "images_denied",
                format!("policy \"{}\" does not allow image input{why}", policy.name),
            ));
        }
        clamp::apply(policy, route.name, obj, &mut verdict)?;
    }

    if let Some(Value::Bool(s)) = obj.get("stream") {
        verdict.stream = *s;
    }
    if route.class == EndpointClass::Inference && verdict.stream {
        stream_usage::request(route.name, obj, &mut verdict);
    }
    Ok(verdict)
}

/// Why a `/v1/responses` continuation is refused under `tools = false` or `images = false`
/// (see [`history::continues_stored_response`]).
const STORED: &str = " (previous_response_id makes Ollama replay stored turns the gate cannot inspect; send the conversation in input)";

/// Whether the body uses tool calling: `Some` with what to add to the refusal's message.
fn tool_use(route: &str, obj: &Map<String, Value>) -> Option<&'static str> {
    if content::has_tools(obj) {
        Some("")
    } else if history::has_tool_history(route, obj) {
        Some(" (the messages replay tool calls or tool results)")
    } else if history::continues_stored_response(route, obj) {
        Some(STORED)
    } else {
        None
    }
}

/// Whether the body carries image input, or content parts not known to be text: `Some` with
/// what to add to the refusal's message.
fn image_input(route: &str, obj: &Map<String, Value>) -> Option<&'static str> {
    if content::has_images(route, obj) {
        return Some("");
    }
    if history::continues_stored_response(route, obj) {
        return Some(STORED);
    }
    parts::first_non_text(route, obj).map(|n| match n {
        NonText::Image => "",
        NonText::Unknown => " (content parts must be of a type known to carry only text)",
    })
}

/// The refusal of a request that needs `class`, which `policy` does not allow; `why` says what
/// in the request needs it when that is not the route itself.
fn class_denied(policy: &Policy, class: EndpointClass, why: Option<&str>) -> Denial {
    let because = why.map(|w| format!(" ({w})")).unwrap_or_default();
    Denial::new(
        403,
        "endpoint_class",
        format!(
            "policy \"{}\" does not allow {class} endpoints{because}",
            policy.name
        ),
    )
}

/// [`evaluate`] for a `multipart/form-data` route: finds the `model` field and decides on
/// it. The body is never modified.
pub fn evaluate_multipart(
    policy: &Policy,
    m: &RouteMatch,
    content_type: &str,
    body: &[u8],
    is_remote: &dyn Fn(&str) -> bool,
) -> Result<Verdict, Denial> {
    if !policy.allows_class(m.route.class) {
        return evaluate(policy, m, None, is_remote);
    }
    let model = inspect::multipart_model(content_type, body)
        .map_err(|e| Denial::bad_request(e.to_string()))?;
    let mut value = Value::Object(Map::new());
    if let (Some(name), Value::Object(o)) = (model, &mut value) {
        o.insert("model".to_string(), Value::String(name));
    }
    let mut verdict = evaluate(policy, m, Some(&mut value), is_remote)?;
    if let Some(max) = policy.max_num_predict {
        // The gate does not rewrite multipart bodies, and Ollama answers a transcription with
        // no output limit (`openai.FromTranscriptionRequest` sets none), steered by the form's
        // `prompt`: a limit this policy sets could not hold.
        return Err(Denial::new(
            403,
            "clamp_unenforceable",
            format!(
                "policy limits generated tokens to {max} (max_num_predict), which cannot be set on a multipart request; this endpoint is not available to it"
            ),
        ));
    }
    verdict.modified = false;
    verdict.clamps.clear();
    verdict.hide_usage = false;
    Ok(verdict)
}

/// Checks one model name against the allow-list and the cloud rule; returns its normalised
/// form (normalised once here, it is what the audit record shows).
fn check_model<'a>(
    policy: &Policy,
    name: &'a str,
    is_remote: &dyn Fn(&str) -> bool,
) -> Result<Cow<'a, str>, Denial> {
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        // No model name has them; Ollama would refuse the name, so the gate does first.
        return Err(Denial::bad_request(
            "model name contains whitespace or control characters",
        ));
    }
    let n = model::normalized(name);
    // Ollama reads a manifest's digest (or a prefix of it) as the model whose manifest it is:
    // which model that is, and whether it is a cloud model's stub, cannot be told from the
    // name, so only `*` allows it, and only a policy with cloud access.
    let by_digest = model::is_digest_reference(name);
    let (not_listed, maybe_cloud) = if by_digest {
        (
            " (a model named by its digest is allowed only by the pattern \"*\")",
            " (a model named by its digest may be one)",
        )
    } else {
        ("", "")
    };
    if !policy.allows_normalized_model(&n) || (by_digest && !policy.allows_every_model()) {
        return Err(Denial::new(
            403,
            "model_not_allowed",
            format!(
                "policy \"{}\" does not allow model \"{}\"{not_listed}",
                policy.name,
                shown(name)
            ),
        ));
    }
    if !policy.cloud && (model::is_cloud_tag(&n) || is_remote(&n) || by_digest) {
        return Err(Denial::new(
            403,
            "cloud_denied",
            format!(
                "policy \"{}\" does not allow cloud models{maybe_cloud}",
                policy.name
            ),
        ));
    }
    Ok(n)
}

/// A model name as it may appear in a message: printable ASCII, bounded.
fn shown(name: &str) -> String {
    let mut s: String = name
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if name.chars().count() > 100 {
        s.push_str("...");
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
