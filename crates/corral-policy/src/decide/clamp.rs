//! Clamps: values lowered to the policy's maximum instead of refusing the request.

use std::time::Duration;

use serde_json::{Map, Value};

use super::{Denial, Verdict};
use crate::config::Policy;

/// A parsed `keep_alive`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeepAlive {
    /// Negative values: keep the model loaded forever.
    Forever,
    For(Duration),
}

/// Parses `keep_alive` the way Ollama does: a number of seconds (negative = forever) or a
/// Go duration string (`"5m"`, `"1h30m"`, `"-1s"`). A string of digits is read as seconds.
/// `None` for anything else, including `null`.
pub fn parse_keep_alive(v: &Value) -> Option<KeepAlive> {
    match v {
        Value::Number(n) => n.as_f64().map(seconds),
        Value::String(s) => {
            let t = s.trim();
            if !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
            {
                if let Ok(f) = t.parse::<f64>() {
                    return Some(seconds(f));
                }
            }
            parse_go_duration(s)
        }
        _ => None,
    }
}

fn seconds(f: f64) -> KeepAlive {
    if f < 0.0 {
        return KeepAlive::Forever;
    }
    match Duration::try_from_secs_f64(f) {
        Ok(d) => KeepAlive::For(d),
        Err(_) => KeepAlive::Forever,
    }
}

/// Go's `time.ParseDuration` grammar: `[-+]` then one or more `<number><unit>` with units
/// ns, us, µs, μs, ms, s, m, h; `"0"` alone is zero. Overflow reads as forever, which is
/// then clamped.
fn parse_go_duration(s: &str) -> Option<KeepAlive> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(KeepAlive::For(Duration::ZERO));
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = if num.starts_with('.') {
            format!("0{num}").parse().ok()?
        } else {
            num.trim_end_matches('.').parse().ok()?
        };
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * unit;
    }
    if neg && total > 0.0 {
        return Some(KeepAlive::Forever);
    }
    Some(seconds(total))
}

/// Formats a duration in Go's syntax (`"30m"`, `"1h30m"`, `"1s500ms"`), which Ollama parses.
pub fn format_go_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_string();
    }
    let secs = d.as_secs();
    let sub = d.subsec_nanos();
    let mut out = String::new();
    for (n, unit) in [
        (secs / 3600, "h"),
        ((secs % 3600) / 60, "m"),
        (secs % 60, "s"),
        (u64::from(sub / 1_000_000), "ms"),
        (u64::from((sub / 1_000) % 1_000), "us"),
        (u64::from(sub % 1_000), "ns"),
    ] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

/// Applies every clamp of `policy` to an inference body.
pub(super) fn apply(
    policy: &Policy,
    route: &str,
    obj: &mut Map<String, Value>,
    verdict: &mut Verdict,
) -> Result<(), Denial> {
    if let Some(max) = policy.max_num_ctx {
        if let Some(Value::Object(opts)) = obj.get_mut("options") {
            if let Some(v) = opts.get_mut("num_ctx") {
                if !v.is_null() && !within(v, max) {
                    *v = Value::from(max);
                    mark(verdict, "num_ctx");
                }
            }
        }
    }
    if let Some(max) = policy.max_num_predict {
        match route {
            "api.generate" | "api.chat" => {
                let opts = obj
                    .entry("options")
                    .or_insert_with(|| Value::Object(Map::new()));
                if opts.is_null() {
                    *opts = Value::Object(Map::new());
                }
                let Value::Object(opts) = opts else {
                    return Err(Denial::bad_request("\"options\" must be an object"));
                };
                if bound(opts, "num_predict", max) {
                    mark(verdict, "num_predict");
                }
            }
            "v1.chat.completions" => chat_max_tokens(obj, max, verdict),
            "v1.completions" | "v1.messages" => bound_mark(obj, "max_tokens", max, verdict),
            "v1.responses" => bound_mark(obj, "max_output_tokens", max, verdict),
            _ => {}
        }
    }
    if let Some(max) = policy.max_keep_alive {
        if let Some(v) = obj.get_mut("keep_alive") {
            let over = match (v.is_null(), parse_keep_alive(v)) {
                (true, _) => false,
                (false, Some(KeepAlive::For(d))) => d > max,
                (false, _) => true,
            };
            if over {
                *v = Value::String(format_go_duration(max));
                mark(verdict, "keep_alive");
            }
        }
    }
    if let Some(min) = policy.min_keep_alive {
        // Only a duration can be too short: `null` and absent leave Ollama's default, and a
        // negative value (forever) is `max_keep_alive`'s business.
        if let Some(v) = obj.get_mut("keep_alive") {
            if matches!(parse_keep_alive(v), Some(KeepAlive::For(d)) if d < min) {
                *v = Value::String(format_go_duration(min));
                mark(verdict, "keep_alive");
            }
        }
    }
    Ok(())
}

/// OpenAI chat has two spellings of the output limit; Ollama reads `max_tokens`, newer
/// clients send `max_completion_tokens`. Both are bounded and `max_tokens` is always set so
/// the limit holds whichever one upstream honours.
fn chat_max_tokens(obj: &mut Map<String, Value>, max: u64, verdict: &mut Verdict) {
    let has_mct = obj
        .get("max_completion_tokens")
        .is_some_and(|v| !v.is_null());
    if has_mct && bound(obj, "max_completion_tokens", max) {
        mark(verdict, "max_completion_tokens");
    }
    let has_mt = obj.get("max_tokens").is_some_and(|v| !v.is_null());
    if !has_mt && has_mct {
        let v = obj
            .get("max_completion_tokens")
            .cloned()
            .unwrap_or(Value::from(max));
        obj.insert("max_tokens".to_string(), v);
        mark(verdict, "max_tokens");
    } else if bound(obj, "max_tokens", max) {
        mark(verdict, "max_tokens");
    }
}

fn bound_mark(map: &mut Map<String, Value>, key: &'static str, max: u64, verdict: &mut Verdict) {
    if bound(map, key, max) {
        mark(verdict, key);
    }
}

/// Sets `map[key]` to `max` when it is absent, null, not a number, above `max`, or a
/// number Ollama reads as "no limit": negative, and also zero. Ollama's runners stop at
/// `num_predict` only when it is positive, so `0` generates until the model stops by itself
/// (or the context shifts forever), and `options` numbers are truncated to integers first,
/// so `0.5` is `0` too. Returns whether it changed.
fn bound(map: &mut Map<String, Value>, key: &str, max: u64) -> bool {
    let ok = match map.get(key) {
        Some(v @ Value::Number(n)) => n.as_f64().is_some_and(|f| f >= 1.0) && within(v, max),
        _ => false,
    };
    if !ok {
        map.insert(key.to_string(), Value::from(max));
    }
    !ok
}

/// A number not above `max`. Non-numbers are never within.
fn within(v: &Value, max: u64) -> bool {
    match v {
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => u <= max,
            (None, Some(_), _) => true,
            (None, None, Some(f)) => f <= max as f64,
            _ => false,
        },
        _ => false,
    }
}

fn mark(verdict: &mut Verdict, name: &'static str) {
    verdict.modified = true;
    if !verdict.clamps.contains(&name) {
        verdict.clamps.push(name);
    }
}
