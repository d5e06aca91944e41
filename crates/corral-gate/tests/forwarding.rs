//! What the upstream receives: canonical path, its own Host, no credentials, no hop-by-hop
//! headers, decoded and inspected bodies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine as _;
use bytes::Bytes;
use common::*;
use corral_testsupport::codec;
use serde_json::json;

#[tokio::test]
async fn authorization_never_reaches_upstream() {
    let h = Harness::start().await;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("u:{}", h.key("alice")));
    for auth in [h.bearer("alice"), format!("Basic {basic}")] {
        h.mock.clear();
        let r = send(
            h.addr,
            "POST",
            "/api/chat",
            &[
                ("authorization", auth.clone()),
                ("proxy-authorization", auth.clone()),
                ("cookie", format!("session={}", h.key("alice"))),
                ("content-type", "application/json".into()),
            ],
            chat_body("llama3.2", false).to_string().into(),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let got = h.forwarded();
        assert_eq!(got.len(), 1);
        let req = &got[0];
        assert!(!req.has_header("authorization"), "{:?}", req.headers);
        assert!(!req.has_header("proxy-authorization"), "{:?}", req.headers);
        let all: Vec<u8> = req.headers.iter().flat_map(|(_, v)| v.clone()).collect();
        let key = h.key("alice").as_bytes();
        assert!(
            !all.windows(key.len()).any(|w| w == key),
            "the key reached upstream in a header"
        );
    }
}

#[tokio::test]
async fn host_is_the_upstreams_and_hop_by_hop_headers_are_dropped() {
    let h = Harness::start().await;
    let r = send(
        h.addr,
        "POST",
        "/api/chat",
        &[
            ("authorization", h.bearer("alice")),
            ("content-type", "application/json".into()),
            ("connection", "keep-alive, x-secret-hop".into()),
            ("x-secret-hop", "1".into()),
            ("keep-alive", "timeout=5".into()),
            ("te", "trailers".into()),
            ("trailer", "x-foo".into()),
            ("proxy-connection", "keep-alive".into()),
            ("x-original-url", "/api/pull".into()),
            ("x-forwarded-host", "evil.example".into()),
            ("user-agent", "ollama-python/0.4.7".into()),
            ("accept", "application/x-ndjson".into()),
        ],
        chat_body("llama3.2", false).to_string().into(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let req = h.forwarded().pop().unwrap();
    assert_eq!(req.header("host"), Some(h.mock.addr().to_string().as_str()));
    for hop in [
        "connection",
        "x-secret-hop",
        "keep-alive",
        "te",
        "trailer",
        "proxy-connection",
        "upgrade",
        "transfer-encoding",
        "x-original-url",
    ] {
        assert!(!req.has_header(hop), "{hop} forwarded: {:?}", req.headers);
    }
    assert_eq!(req.path, "/api/chat");
    assert_eq!(req.method, "POST");
    assert_eq!(req.json().unwrap()["model"], "llama3.2");
}

#[tokio::test]
async fn header_tricks_do_not_change_the_route() {
    let h = Harness::start().await;
    let r = send(
        h.addr,
        "POST",
        "/api/chat",
        &[
            ("authorization", h.bearer("alice")),
            ("content-type", "application/json".into()),
            ("x-http-method-override", "DELETE".into()),
            ("x-original-url", "/api/delete".into()),
            ("x-rewrite-url", "/api/pull".into()),
            ("x-forwarded-prefix", "/api/pull".into()),
        ],
        chat_body("llama3.2", false).to_string().into(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let req = h.forwarded().pop().unwrap();
    assert_eq!(
        (req.method.as_str(), req.target.as_str()),
        ("POST", "/api/chat")
    );
    for x in [
        "x-http-method-override",
        "x-original-url",
        "x-rewrite-url",
        "x-forwarded-prefix",
    ] {
        assert!(!req.has_header(x), "{x} forwarded");
    }
}

async fn post_encoded(h: &Harness, key: &str, path: &str, enc: &str, body: Vec<u8>) -> Reply {
    send(
        h.addr,
        "POST",
        path,
        &[
            ("authorization", h.bearer(key)),
            ("content-type", "application/json".into()),
            ("content-encoding", enc.into()),
        ],
        Bytes::from(body),
    )
    .await
}

#[tokio::test]
async fn gzip_and_zstd_bodies_are_decoded_inspected_and_forwarded_plain() {
    let h = Harness::with_policies().await;
    let plain = chat_body("llama3.2", false).to_string();
    for (enc, body) in [
        ("gzip", codec::gzip(plain.as_bytes())),
        ("zstd", codec::zstd(plain.as_bytes())),
    ] {
        h.mock.clear();
        for path in ["/api/chat", "/v1/chat/completions"] {
            let r = post_encoded(&h, "alice", path, enc, body.clone()).await;
            assert_eq!(r.status, 200, "{enc} {path}: {}", r.text());
        }
        for req in h.forwarded() {
            // Forwarded decoded (so upstream sees what the gate inspected), or at least with
            // an encoding header that matches the body; never an encoding header on plain bytes.
            match req.header("content-encoding") {
                None => assert_eq!(req.json().unwrap()["model"], "llama3.2", "{enc}"),
                Some(e) => panic!("{enc}: upstream received content-encoding {e}"),
            }
        }
    }
}

#[tokio::test]
async fn compressed_bodies_naming_refused_models_are_refused() {
    let h = Harness::with_policies().await;
    let secret = chat_body("secret-model", false).to_string();
    let cloud = chat_body("gpt-oss:120b-cloud", false).to_string();
    let cases = [
        (
            "gzip",
            codec::gzip(secret.as_bytes()),
            "/api/chat",
            "model_not_allowed",
        ),
        (
            "zstd",
            codec::zstd(secret.as_bytes()),
            "/v1/chat/completions",
            "model_not_allowed",
        ),
        (
            "zstd",
            codec::zstd(secret.as_bytes()),
            "/api/chat",
            "model_not_allowed",
        ),
        (
            "gzip",
            codec::gzip(cloud.as_bytes()),
            "/api/chat",
            "cloud_denied",
        ),
        (
            "zstd",
            codec::zstd(cloud.as_bytes()),
            "/v1/chat/completions",
            "cloud_denied",
        ),
    ];
    for (enc, body, path, rule) in cases {
        let r = post_encoded(&h, "alice", path, enc, body).await;
        assert_eq!(r.status, 403, "{enc} {path}: {}", r.text());
        assert_eq!(r.header("x-corral-rule"), Some(rule), "{enc} {path}");
    }
    assert!(h.forwarded().is_empty(), "{:?}", h.forwarded());
}

#[tokio::test]
async fn unknown_encodings_are_refused() {
    let h = Harness::start().await;
    let plain = chat_body("llama3.2", false).to_string();
    for (enc, body) in [
        ("br", plain.clone().into_bytes()),
        ("deflate", codec::deflate(plain.as_bytes())),
        ("compress", plain.clone().into_bytes()),
        ("x-bogus", plain.clone().into_bytes()),
    ] {
        let r = post_encoded(&h, "alice", "/api/chat", enc, body).await;
        assert_eq!(r.status, 415, "{enc}: {}", r.text());
    }
    assert!(h.forwarded().is_empty());
}

#[tokio::test]
async fn official_client_shapes_pass_through_unchanged() {
    let h = Harness::start().await;
    // openai SDK default: base64 embeddings.
    let r = h
        .post_json(
            "/v1/embeddings",
            "alice",
            &json!({"model": "nomic-embed-text", "input": ["a"], "encoding_format": "base64"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["data"][0]["embedding"].is_string());
    let r = h
        .get("/v1/models/llama3.2:latest", Some(&h.bearer("alice")))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["id"], "llama3.2:latest");
    let r = h
        .post_json("/api/show", "alice", &json!({"model": "llama3.2"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["capabilities"].is_array());
}

#[tokio::test]
async fn finished_answers_hand_the_upstream_connection_back_for_reuse() {
    let h = Harness::start().await;
    let auth = [
        ("authorization", h.bearer("alice")),
        ("content-type", "application/json".to_string()),
    ];
    for stream in [false, true, false, true] {
        let r = send(
            h.addr,
            "POST",
            "/api/chat",
            &auth,
            chat_body("llama3.2", stream).to_string().into(),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    for path in ["/api/tags", "/api/version", "/v1/models"] {
        let r = send(h.addr, "GET", path, &auth[..1], Bytes::new()).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    // One after another, every request (and any catalogue refresh) rode one connection.
    assert_eq!(h.mock.connection_count(), 1);
}

/// A blob upload (`ollama create` sends model files this way) streamed through in `pieces`
/// chunks `gap` apart, on a raw connection; returns the status line and the body.
/// Opens a connection and sends the head of a chunked blob upload with `key`.
async fn open_upload(h: &Harness, key: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let digest = format!("sha256:{}", "ab".repeat(32));
    let mut s = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let head = format!(
        "POST /api/blobs/{digest} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        h.addr,
        h.key(key)
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s
}

/// Sends one chunk of `len` bytes; false when the gate already closed the connection.
async fn send_piece(s: &mut tokio::net::TcpStream, len: usize) -> bool {
    use tokio::io::AsyncWriteExt;
    let mut chunk = format!("{len:x}\r\n").into_bytes();
    chunk.extend(std::iter::repeat_n(b'g', len));
    chunk.extend_from_slice(b"\r\n");
    s.write_all(&chunk).await.is_ok()
}

async fn upload_in_pieces(
    h: &Harness,
    key: &str,
    pieces: usize,
    piece: usize,
    gap: std::time::Duration,
) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = open_upload(h, key).await;
    for _ in 0..pieces {
        tokio::time::sleep(gap).await;
        // The gate may answer and close before the whole body is sent.
        if !send_piece(&mut s, piece).await {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(T, s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.lines().next().unwrap_or("").to_owned();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

/// The audit record of the (one) blob upload a test made.
async fn upload_record(h: &Harness) -> serde_json::Value {
    h.wait_audit(T, |r| {
        r["url"]["path"]
            .as_str()
            .unwrap_or("")
            .starts_with("/api/blobs/")
    })
    .await
    .expect("the upload is recorded")
}

/// The idle timeout is for silence, not for the length of an upload: a multi-gigabyte model
/// file takes longer than five minutes on most links.
#[tokio::test]
async fn a_steady_upload_longer_than_the_idle_timeout_goes_through() {
    let h = Harness::builder()
        .idle_timeout(std::time::Duration::from_millis(300))
        .start()
        .await;
    let gap = std::time::Duration::from_millis(60);
    let (status, body) = upload_in_pieces(&h, "root", 12, 4096, gap).await;
    assert!(status.contains(" 201 "), "{status} {body}");
    let sent = h.forwarded();
    let upload = sent
        .iter()
        .find(|r| r.path.starts_with("/api/blobs/"))
        .expect("the upload reached upstream");
    assert_eq!(upload.body.len(), 12 * 4096);
    // A chunked upload declares no length: the record counts what was forwarded.
    let rec = upload_record(&h).await;
    assert_eq!(rec["corral"]["bytes_in"], 12 * 4096, "{rec}");
}

/// A streamed upload that breaks the policy's size limit midway is the client's error (413),
/// not a gateway failure, and the upstream never gets a complete body.
#[tokio::test]
async fn a_streamed_upload_over_the_limit_is_413() {
    let h = Harness::builder()
        .config(
            r#"
[policies.admin]
endpoints = ["all"]
models = ["*"]
cloud = true
max_body_bytes = 65536
"#,
        )
        .start()
        .await;
    let (status, body) =
        upload_in_pieces(&h, "root", 8, 16384, std::time::Duration::from_millis(5)).await;
    assert!(status.contains(" 413 "), "{status} {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["error"].as_str().unwrap().contains("larger"), "{v}");
    let rec = upload_record(&h).await;
    assert_eq!(rec["corral"]["reason"], "body_too_large", "{rec}");
    // The client's fault, recorded as a refusal, not as a failure of the upstream.
    assert_eq!(rec["event"]["action"], "bad_request", "{rec}");
    assert_eq!(rec["corral"]["decision"], "deny", "{rec}");
    assert_eq!(rec["http"]["response"]["status_code"], 413, "{rec}");
    assert!(h
        .forwarded()
        .iter()
        .all(|r| !r.completed || r.body.len() <= 65536));
}

/// A client that goes away in the middle of an upload ended the request itself: recorded as a
/// client that left (499, `client_disconnected`), not as a malformed body or an upstream failure.
#[tokio::test]
async fn a_client_that_leaves_mid_upload_is_recorded_as_gone() {
    let h = Harness::start().await;
    let mut s = open_upload(&h, "root").await;
    for _ in 0..3 {
        assert!(send_piece(&mut s, 4096).await);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    drop(s);
    let rec = upload_record(&h).await;
    assert_eq!(rec["http"]["response"]["status_code"], 499, "{rec}");
    assert_eq!(rec["corral"]["reason"], "client_disconnected", "{rec}");
    assert_eq!(rec["event"]["action"], "proxy", "{rec}");
    assert_eq!(rec["event"]["outcome"], "failure", "{rec}");
}

/// Anthropic's SDK calls its beta messages API (Claude Code does) as
/// `POST /v1/messages?beta=true`: accepted, and forwarded without the query; any other query
/// is still refused before the upstream.
#[tokio::test]
async fn the_anthropic_beta_query_is_accepted_on_messages_only() {
    let h = Harness::start().await;
    let body = serde_json::json!({"model": "llama3.2", "max_tokens": 20,
        "messages": [{"role": "user", "content": "hi"}]});
    let r = h.post_json("/v1/messages?beta=true", "alice", &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["type"], "message");
    let sent = h.forwarded();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].target, "/v1/messages");
    for target in [
        "/v1/messages?beta=true&x=1",
        "/v1/chat/completions?beta=true",
    ] {
        let r = h.post_json(target, "alice", &body).await;
        assert_eq!(r.status, 400, "{target}: {}", r.text());
    }
    assert_eq!(h.forwarded().len(), 1, "nothing more reached upstream");
}

/// A string cut in the middle of a surrogate pair (JavaScript's `slice` on text with an
/// emoji) is sent by `JSON.stringify` as a lone `\ud83d` escape. Go's decoder, which Ollama
/// uses, reads each such escape as U+FFFD and serves the request; so does the gate, which
/// decides on that reading and forwards exactly it. A model name is read the same way, so it
/// cannot differ between the decision and Ollama.
#[tokio::test]
async fn lone_surrogate_escapes_are_read_as_ollama_reads_them() {
    let h = Harness::builder().config(POLICIES).start().await;
    let headers = vec![
        ("authorization", h.bearer("alice")),
        ("content-type", "application/json".to_string()),
    ];
    let cases = [
        (
            "/api/chat",
            r#"{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"I like \ud83d"}]}"#,
            r#"{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"I like \ufffd"}]}"#,
        ),
        (
            "/v1/chat/completions",
            r#"{"model":"llama3.2","messages":[{"role":"user","content":"\ude00 \ud83d\u0041 \ud83d\ude00 \\ud83d"}]}"#,
            r#"{"model":"llama3.2","messages":[{"role":"user","content":"\ufffd \ufffd\u0041 \ud83d\ude00 \\ud83d"}]}"#,
        ),
    ];
    for (path, body, as_go_reads_it) in cases {
        h.mock.clear();
        let r = send(h.addr, "POST", path, &headers, Bytes::from(body)).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let sent = h.forwarded().pop().unwrap();
        assert_eq!(
            sent.body,
            Bytes::from(as_go_reads_it),
            "{path}: {}",
            String::from_utf8_lossy(&sent.body)
        );
    }
    // The model is decided on as Ollama reads it too: alice's allow-list has `llama3.2`,
    // which a name with a replacement character in it is not.
    h.mock.clear();
    let body = r#"{"model":"llama3.2\ud800","messages":[],"stream":false}"#;
    let r = send(h.addr, "POST", "/api/chat", &headers, Bytes::from(body)).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(h.forwarded().is_empty());
}
