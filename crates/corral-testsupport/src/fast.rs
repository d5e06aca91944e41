//! Benchmark mode: every answer is built once at start-up and served by reference count, so
//! the mock costs next to nothing per request and never dominates a comparison.

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use serde_json::{json, Value};

use crate::body::{MockBody, StreamShape};
use crate::routes::{json_bytes, not_found, route, Reply, NDJSON, SSE};

/// Content chunks in a fast stream.
const FAST_CHUNKS: usize = 3;

pub(crate) struct FastReplies {
    root: Bytes,
    version: Bytes,
    tags: Bytes,
    ps: Bytes,
    v1_models: Bytes,
    chat_stream: Bytes,
    chat_whole: Bytes,
    generate_stream: Bytes,
    generate_whole: Bytes,
    embed: Bytes,
    v1_chat_stream: Bytes,
    v1_chat_whole: Bytes,
    not_found: Bytes,
}

fn whole(method: &str, path: &str, body: &Value) -> Bytes {
    match route(method, path, Some(body), FAST_CHUNKS) {
        Reply::Json(_, v) => json_bytes(&v),
        Reply::Text(_, t) => Bytes::from_static(t.as_bytes()),
        Reply::Stream { shape, .. } => flatten(shape.as_ref()),
        Reply::Empty(_) => Bytes::new(),
    }
}

fn flatten(shape: &dyn StreamShape) -> Bytes {
    let mut out = Vec::new();
    for p in shape.prefix() {
        out.extend_from_slice(&p);
    }
    for i in 0..FAST_CHUNKS {
        out.extend_from_slice(&shape.chunk(i));
    }
    for s in shape.suffix(FAST_CHUNKS) {
        out.extend_from_slice(&s);
    }
    Bytes::from(out)
}

impl FastReplies {
    pub(crate) fn new() -> FastReplies {
        let m = json!({ "model": "llama3.2:latest", "prompt": "hi", "input": "hi" });
        let m_whole = json!({ "model": "llama3.2:latest", "stream": false });
        let v1_stream = json!({ "model": "llama3.2:latest", "stream": true,
                                "stream_options": { "include_usage": true } });
        let get = |p: &str| whole("GET", p, &Value::Null);
        FastReplies {
            root: get("/"),
            version: get("/api/version"),
            tags: get("/api/tags"),
            ps: get("/api/ps"),
            v1_models: get("/v1/models"),
            chat_stream: whole("POST", "/api/chat", &m),
            chat_whole: whole("POST", "/api/chat", &m_whole),
            generate_stream: whole("POST", "/api/generate", &m),
            generate_whole: whole("POST", "/api/generate", &m_whole),
            embed: whole("POST", "/api/embed", &m),
            v1_chat_stream: whole("POST", "/v1/chat/completions", &v1_stream),
            v1_chat_whole: whole("POST", "/v1/chat/completions", &m),
            not_found: match not_found() {
                Reply::Json(_, v) => json_bytes(&v),
                _ => Bytes::new(),
            },
        }
    }

    pub(crate) async fn answer(&self, req: Request<Incoming>) -> Response<MockBody> {
        let (parts, body) = req.into_parts();
        // Drain the body so the connection can be reused; its content barely matters here.
        let body = match body.collect().await {
            Ok(c) => c.to_bytes(),
            Err(_) => Bytes::new(),
        };
        let json = "application/json; charset=utf-8";
        let (code, ctype, bytes) = match (parts.method.as_str(), parts.uri.path()) {
            ("GET" | "HEAD", "/") => (200, "text/plain; charset=utf-8", &self.root),
            ("GET" | "HEAD", "/api/version") => (200, json, &self.version),
            ("GET" | "HEAD", "/api/tags") => (200, json, &self.tags),
            ("GET", "/api/ps") => (200, json, &self.ps),
            ("GET", "/v1/models") => (200, json, &self.v1_models),
            ("POST", "/api/chat") if wants_whole(&body) => (200, json, &self.chat_whole),
            ("POST", "/api/chat") => (200, NDJSON, &self.chat_stream),
            ("POST", "/api/generate") if wants_whole(&body) => (200, json, &self.generate_whole),
            ("POST", "/api/generate") => (200, NDJSON, &self.generate_stream),
            ("POST", "/api/embed") => (200, json, &self.embed),
            ("POST", "/v1/chat/completions") if wants_stream(&body) => {
                (200, SSE, &self.v1_chat_stream)
            }
            ("POST", "/v1/chat/completions") => (200, json, &self.v1_chat_whole),
            _ => (404, json, &self.not_found),
        };
        let mut r = Response::new(MockBody::full(bytes.clone()));
        *r.status_mut() = if code == 200 {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
        r
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn wants_whole(body: &[u8]) -> bool {
    contains(body, b"\"stream\":false") || contains(body, b"\"stream\": false")
}

fn wants_stream(body: &[u8]) -> bool {
    contains(body, b"\"stream\":true") || contains(body, b"\"stream\": true")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fast_bodies_are_well_formed() {
        let f = FastReplies::new();
        let lines: Vec<Value> = std::str::from_utf8(&f.chat_stream)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), FAST_CHUNKS + 1);
        assert_eq!(lines[FAST_CHUNKS]["done"], true);
        let sse = std::str::from_utf8(&f.v1_chat_stream).unwrap();
        assert!(sse.ends_with("data: [DONE]\n\n"));
        assert!(sse.contains("\"usage\""));
        let tags: Value = serde_json::from_slice(&f.tags).unwrap();
        assert!(tags["models"].as_array().unwrap().len() >= 5);
        assert!(wants_whole(br#"{"model":"x","stream": false}"#));
        assert!(!wants_whole(br#"{"model":"x"}"#));
    }
}
