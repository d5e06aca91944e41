//! Error responses in the client's dialect. Messages are fixed texts or policy messages that are
//! safe to show; no upstream address or library error text ever reaches a client.

use bytes::Bytes;
use corral_policy::route::Dialect;
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Response, StatusCode};
use serde_json::json;

/// Header naming the policy rule that refused a request, for operators and scripts.
pub const RULE_HEADER: &str = "x-corral-rule";

/// Header the OpenAI and Anthropic SDKs obey over their own retry policy (`"false"`: raise the
/// error at once).
pub const SHOULD_RETRY_HEADER: &str = "x-should-retry";

/// Longest `Retry-After` an SDK is left to wait out by itself. Past it (a spent token quota,
/// hours away), `x-should-retry: false`: the Anthropic SDKs sleep for any `Retry-After` before
/// each of their retries, and would hold the caller for hours on an answer known in advance.
pub const SDK_RETRY_MAX_SECS: u64 = 60;

/// One refusal or failure, before it is shaped for a dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: StatusCode,
    /// Stable snake_case name; the audit reason and the OpenAI `code`.
    pub rule: &'static str,
    pub message: String,
    /// Seconds for `Retry-After` (a 503 without one says 1).
    pub retry_after: Option<u64>,
}

impl Failure {
    pub fn new(status: u16, rule: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            rule,
            message: message.into(),
            retry_after: None,
        }
    }

    /// With a `Retry-After` of `secs`.
    #[must_use]
    pub fn retry_after(mut self, secs: u64) -> Failure {
        self.retry_after = Some(secs);
        self
    }

    pub fn unauthorized() -> Failure {
        Failure::new(
            401,
            "unauthenticated",
            "missing or invalid API key; send Authorization: Bearer <key>",
        )
    }

    /// The key a running request authenticated with was revoked, rotated, deleted or expired.
    pub fn key_no_longer_valid() -> Failure {
        // The same words as the error event that ends such a stream.
        Failure::new(
            401,
            "key_no_longer_valid",
            crate::stream::StreamError::KeyNoLongerValid.to_string(),
        )
    }

    /// The gate's shutdown grace period ended before the upstream answered.
    pub fn gate_shutdown() -> Failure {
        Failure::new(
            503,
            "gate_shutdown",
            crate::stream::StreamError::Shutdown.to_string(),
        )
    }

    pub fn upstream_unavailable() -> Failure {
        Failure::new(502, "upstream_unavailable", "upstream unavailable")
    }

    pub fn upstream_timeout() -> Failure {
        Failure::new(504, "upstream_timeout", "upstream did not respond in time")
    }

    pub fn internal() -> Failure {
        Failure::new(500, "internal_error", "internal error")
    }
}

/// The OpenAI / Anthropic error `type` for a status.
fn error_type(dialect: Dialect, status: StatusCode) -> &'static str {
    match (dialect, status.as_u16()) {
        (_, 401) => "authentication_error",
        (_, 403) => "permission_error",
        (_, 404) => "not_found_error",
        (Dialect::Anthropic, 413) => "request_too_large",
        (_, 429) => "rate_limit_error",
        (Dialect::Anthropic, 504) => "timeout_error",
        (Dialect::Anthropic, 529) => "overloaded_error",
        (Dialect::Anthropic, s) if s >= 500 => "api_error",
        (_, s) if s >= 500 => "server_error",
        _ => "invalid_request_error",
    }
}

/// What a 401 for a missing or unknown key tells an Anthropic client, whose SDKs send the key
/// in `x-api-key`.
const UNAUTHENTICATED_ANTHROPIC: &str =
    "missing or invalid API key; send x-api-key: <key> (or Authorization: Bearer <key>)";

/// The JSON error body for `dialect`.
pub fn error_body(dialect: Dialect, failure: &Failure) -> Vec<u8> {
    let message = match dialect {
        Dialect::Anthropic if failure.rule == "unauthenticated" => UNAUTHENTICATED_ANTHROPIC,
        _ => failure.message.as_ref(),
    };
    let value = match dialect {
        Dialect::Ollama => json!({ "error": message }),
        Dialect::OpenAi => json!({
            "error": {
                "message": message,
                "type": error_type(dialect, failure.status),
                "param": null,
                "code": failure.rule,
            }
        }),
        // Anthropic's shape, plus OpenAI's `code` (the rule), which Anthropic clients ignore.
        Dialect::Anthropic => json!({
            "type": "error",
            "error": {
                "type": error_type(dialect, failure.status),
                "message": message,
                "code": failure.rule,
            }
        }),
    };
    serde_json::to_vec(&value).unwrap_or_else(|_| b"{}".to_vec())
}

/// A complete error response: JSON body in the dialect, `WWW-Authenticate` on 401, `Allow` on
/// 405, and the refusing rule on policy refusals.
pub fn error_response<B: From<Bytes>>(
    dialect: Dialect,
    failure: &Failure,
    allow: Option<&[&str]>,
) -> Response<B> {
    let mut resp = Response::new(B::from(Bytes::from(error_body(dialect, failure))));
    *resp.status_mut() = failure.status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if failure.status == StatusCode::UNAUTHORIZED {
        h.insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"corral\""),
        );
    }
    match failure.retry_after {
        Some(secs) => {
            h.insert(RETRY_AFTER, HeaderValue::from(secs));
            if secs > SDK_RETRY_MAX_SECS {
                h.insert(SHOULD_RETRY_HEADER, HeaderValue::from_static("false"));
            }
        }
        None if failure.status == StatusCode::SERVICE_UNAVAILABLE => {
            h.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        None => {}
    }
    if let Some(methods) = allow {
        if let Ok(v) = HeaderValue::from_str(&methods.join(", ")) {
            h.insert(ALLOW, v);
        }
    }
    if failure.status == StatusCode::FORBIDDEN {
        if let Ok(v) = HeaderValue::from_str(failure.rule) {
            h.insert(RULE_HEADER, v);
        }
    }
    resp
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn body(d: Dialect, f: &Failure) -> Value {
        serde_json::from_slice(&error_body(d, f)).unwrap()
    }

    #[test]
    fn ollama_shape() {
        let v = body(Dialect::Ollama, &Failure::unauthorized());
        assert_eq!(v.as_object().unwrap().len(), 1);
        assert!(v["error"].as_str().unwrap().contains("API key"));
    }

    #[test]
    fn openai_shape_and_types() {
        let f = Failure::new(403, "model_not_allowed", "model \"x\" is not allowed");
        let v = body(Dialect::OpenAi, &f);
        assert_eq!(v["error"]["type"], "permission_error");
        assert_eq!(v["error"]["code"], "model_not_allowed");
        assert_eq!(v["error"]["message"], "model \"x\" is not allowed");
        assert!(v["error"]["param"].is_null());
        let cases = [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (404, "not_found_error"),
            (405, "invalid_request_error"),
            (413, "invalid_request_error"),
            (502, "server_error"),
            (504, "server_error"),
        ];
        for (status, ty) in cases {
            let v = body(Dialect::OpenAi, &Failure::new(status, "r", "m"));
            assert_eq!(v["error"]["type"], ty, "{status}");
        }
    }

    #[test]
    fn anthropic_shape() {
        let v = body(Dialect::Anthropic, &Failure::unauthorized());
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "authentication_error");
        assert_eq!(v["error"]["code"], "unauthenticated");
        // Anthropic's SDKs send the key in x-api-key; the other dialects are told of Bearer.
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("send x-api-key: <key>"));
        let v = body(Dialect::OpenAi, &Failure::unauthorized());
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("send Authorization: Bearer <key>"));
        let v = body(Dialect::Anthropic, &Failure::upstream_timeout());
        assert_eq!(v["error"]["type"], "timeout_error");
        let v = body(Dialect::Anthropic, &Failure::upstream_unavailable());
        assert_eq!(v["error"]["type"], "api_error");
    }

    #[test]
    fn response_headers() {
        let r: Response<Bytes> = error_response(Dialect::Ollama, &Failure::unauthorized(), None);
        assert_eq!(r.status(), 401);
        let challenges: Vec<_> = r.headers().get_all(WWW_AUTHENTICATE).iter().collect();
        // One challenge: clients that read a single header value must see Bearer.
        assert_eq!(challenges, ["Bearer realm=\"corral\""]);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        let r: Response<Bytes> = error_response(
            Dialect::Ollama,
            &Failure::new(405, "method_not_allowed", "m"),
            Some(&["GET", "HEAD"]),
        );
        assert_eq!(r.headers()[ALLOW], "GET, HEAD");
        let r: Response<Bytes> = error_response(
            Dialect::OpenAi,
            &Failure::new(403, "tools_denied", "m"),
            None,
        );
        assert_eq!(r.headers()[RULE_HEADER], "tools_denied");
        assert!(!r.headers().contains_key(WWW_AUTHENTICATE));
    }

    #[test]
    fn a_long_wait_tells_sdks_not_to_retry() {
        let at = |secs| -> Response<Bytes> {
            error_response(
                Dialect::Anthropic,
                &Failure::new(429, "token_quota_exhausted", "m").retry_after(secs),
                None,
            )
        };
        let r = at(SDK_RETRY_MAX_SECS);
        assert_eq!(r.headers()[RETRY_AFTER], "60");
        assert!(!r.headers().contains_key(SHOULD_RETRY_HEADER));
        let r = at(SDK_RETRY_MAX_SECS + 1);
        assert_eq!(r.headers()[RETRY_AFTER], "61");
        assert_eq!(r.headers()[SHOULD_RETRY_HEADER], "false");
    }

    #[test]
    fn gateway_failures_do_not_leak() {
        for f in [
            Failure::upstream_unavailable(),
            Failure::upstream_timeout(),
            Failure::internal(),
        ] {
            let text = String::from_utf8(error_body(Dialect::Ollama, &f)).unwrap();
            assert!(
                !text.contains("127.0.0.1") && !text.contains("hyper"),
                "{text}"
            );
        }
    }
}
