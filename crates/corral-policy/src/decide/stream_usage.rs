//! Token counts for streamed `/v1` completions.
//!
//! Ollama's OpenAI-compatible streams report usage only when the request says
//! `"stream_options":{"include_usage":true}`; without it the audit record of a streamed
//! completion would have no token counts, and a caller could keep its usage off the record by
//! not asking. So the gate asks on the caller's behalf and, since the caller did not ask,
//! removes the extra usage chunk from the answer (see [`crate::usage::UsageChunkFilter`]).

use serde_json::{Map, Value};

use super::Verdict;

/// Routes whose streams carry usage only on request.
fn applies(route: &str) -> bool {
    matches!(route, "v1.chat.completions" | "v1.completions")
}

/// Sets `stream_options.include_usage` on a streamed request that does not already ask for
/// usage, and marks the verdict so the gate hides the usage chunk again. A `stream_options`
/// that is present but not an object is left alone: Ollama refuses such a request itself.
pub(super) fn request(route: &str, obj: &mut Map<String, Value>, verdict: &mut Verdict) {
    if !applies(route) {
        return;
    }
    let opts = obj
        .entry("stream_options")
        .or_insert_with(|| Value::Object(Map::new()));
    if opts.is_null() {
        *opts = Value::Object(Map::new());
    }
    let Value::Object(opts) = opts else {
        return;
    };
    if opts.get("include_usage") == Some(&Value::Bool(true)) {
        return;
    }
    opts.insert("include_usage".to_string(), Value::Bool(true));
    verdict.modified = true;
    verdict.hide_usage = true;
}
