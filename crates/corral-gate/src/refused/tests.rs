use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HYPER_400: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Sat, 05 Dec 2026 00:07:14 GMT\r\n\r\n";

fn split(out: &[u8]) -> (String, serde_json::Value) {
    let at = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(out[..at + 4].to_vec()).unwrap();
    let body = serde_json::from_slice(&out[at + 4..]).unwrap();
    (head, body)
}

#[test]
fn hyper_answers_are_recognised_and_nothing_else() {
    assert_eq!(own_answer(HYPER_400), Some(400));
    let h431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
    assert_eq!(own_answer(h431), Some(431));
    // A body after the head, a non-empty length, a success, a cut head: not hyper's answer.
    let mut with_body = HYPER_400.to_vec();
    with_body.extend_from_slice(b"{}");
    assert_eq!(own_answer(&with_body), None);
    assert_eq!(
        own_answer(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n"),
        None
    );
    assert_eq!(
        own_answer(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"),
        None
    );
    assert_eq!(own_answer(&HYPER_400[..40]), None);
    assert_eq!(
        own_answer(b"HTTP/1.1 4x0 Bad\r\ncontent-length: 0\r\n\r\n"),
        None
    );
    assert_eq!(own_answer(b"0\r\n\r\n"), None);
}

#[test]
fn the_body_is_in_the_dialect_of_the_first_request_line() {
    let out = with_body(HYPER_400, 400, Dialect::OpenAi);
    let (head, body) = split(&out);
    assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n"));
    assert!(head.contains("\r\ncontent-type: application/json\r\n"));
    assert!(head.contains("\r\ndate: "));
    let len = out.len() - head.len();
    assert!(
        head.contains(&format!("\r\ncontent-length: {len}\r\n")),
        "{head}"
    );
    assert_eq!(body["error"]["code"], "malformed_request");

    let line = FirstLine::parse(b"POST /v1/messages HTTP/1.1\r\nX A: b\r\n");
    assert_eq!(line.method.as_deref(), Some("POST"));
    assert_eq!(line.target, "/v1/messages");
    assert_eq!(line.dialect(), Dialect::Anthropic);
    assert_eq!(FirstLine::parse(b"GET /api/ta").dialect(), Dialect::Ollama);
    assert_eq!(
        FirstLine::parse(b"POST /v1/chat/completions HTTP/1.1").dialect(),
        Dialect::OpenAi
    );
    let junk = FirstLine::parse(b"\x16\x03\x01\x00");
    assert_eq!(junk.method, None);
    assert_eq!(junk.target, "");
    // A ClientHello has spaces in it; what follows one is not a path.
    let hello =
        FirstLine::parse(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 /\x8a\x17junk more");
    assert_eq!(hello.method, None);
    assert_eq!(hello.target, "");
}

/// Drives a `Watched` over one end of a duplex pipe: the client end writes `request`, the
/// test reads it through the wrapper, then writes `answer` through it as hyper would.
async fn through(request: &[u8], served: bool, answer: &[u8]) -> (Vec<u8>, Arc<ConnWatch>) {
    let (mut client, server) = tokio::io::duplex(64);
    let watch = Arc::new(ConnWatch::default());
    let mut w = Watched::new(server, Arc::clone(&watch));
    client.write_all(request).await.unwrap();
    let mut got = vec![0; request.len()];
    w.read_exact(&mut got).await.unwrap();
    if served {
        watch.serving();
    }
    let answer = answer.to_vec();
    let writer = tokio::spawn(async move {
        w.write_all(&answer).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut out = Vec::new();
    client.read_to_end(&mut out).await.unwrap();
    writer.await.unwrap();
    (out, watch)
}

#[tokio::test]
async fn the_first_request_gets_a_json_body_even_through_a_small_pipe() {
    let (out, watch) = through(
        b"POST /api/chat HTTP/1.1\r\nX A: b\r\n\r\n",
        false,
        HYPER_400,
    )
    .await;
    let (_, body) = split(&out);
    assert_eq!(body["error"], "malformed HTTP request");
    assert_eq!(watch.answered(), Some(400));
    let first = watch.first_line().unwrap();
    assert_eq!(first.target, "/api/chat");
}

#[tokio::test]
async fn nothing_is_rewritten_once_a_request_was_served_or_on_http2() {
    let (out, watch) = through(b"GET / HTTP/1.1\r\n\r\n", true, HYPER_400).await;
    assert_eq!(out, HYPER_400);
    assert_eq!(watch.answered(), None);
    let (out, watch) = through(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", false, HYPER_400).await;
    assert_eq!(out, HYPER_400);
    assert_eq!(watch.answered(), None);
}
