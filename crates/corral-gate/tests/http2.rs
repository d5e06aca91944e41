//! The gate over HTTP/2 (prior knowledge on a plain connection, as `curl --http2-prior-knowledge`
//! and gRPC-style clients speak it): authentication, default-deny routing, canonical paths,
//! framing and Host checks, header filtering and audit hold as over HTTP/1.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Method, path, headers, body and the status the gate must answer with.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, String)>, &'a [u8], u16);

/// Sends one request over a fresh HTTP/2 connection; the target is `http://<gate><path>`.
async fn h2(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Reply {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("HTTP/2 handshake with the gate");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut b = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    let req = b.body(Full::new(Bytes::copy_from_slice(body))).unwrap();
    let resp = tokio::time::timeout(T, sender.send_request(req))
        .await
        .expect("answer within the time limit")
        .expect("an HTTP/2 answer, not a stream reset");
    assert_eq!(resp.version(), http::Version::HTTP_2);
    read_reply(resp).await
}

#[tokio::test]
async fn http2_requests_pass_the_same_checks_as_http1() {
    let h = Harness::with_policies().await;
    let user = h.bearer("alice");
    let chat = chat_body("llama3.2", false).to_string();
    let json = ("content-type", "application/json".to_string());

    // Allowed: forwarded over HTTP/1.1 with the upstream's Host and no client credentials.
    let r = h2(
        h.addr,
        "POST",
        "/api/chat",
        &[
            ("authorization", user.clone()),
            ("cookie", "session=1".into()),
            ("proxy-authorization", "Basic eDp5".into()),
            ("x-forwarded-for", "203.0.113.9".into()),
            json.clone(),
        ],
        chat.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let fwd: Vec<_> = h
        .forwarded()
        .into_iter()
        .filter(|q| !is_gate_own_request(q))
        .collect();
    assert_eq!(fwd.len(), 1);
    let names: Vec<&str> = fwd[0].headers.iter().map(|(n, _)| n.as_str()).collect();
    for banned in [
        "authorization",
        "cookie",
        "proxy-authorization",
        "x-forwarded-for",
    ] {
        assert!(
            !names.contains(&banned),
            "{banned} reached upstream: {names:?}"
        );
    }
    let host = fwd[0].headers.iter().find(|(n, _)| n == "host").unwrap();
    assert_eq!(host.1, h.mock.addr().to_string().as_bytes());
    assert_eq!(fwd[0].version, "HTTP/1.1");
    h.mock.clear();

    let pull = br#"{"model":"llama3.2"}"#;
    let refused: Vec<Case> = vec![
        (
            "POST",
            "/api/chat",
            vec![json.clone()],
            chat.as_bytes(),
            401,
        ),
        (
            "POST",
            "/api/chat",
            vec![("authorization", "Bearer crl_x_y".into())],
            chat.as_bytes(),
            401,
        ),
        (
            "POST",
            "/api/pull",
            vec![("authorization", user.clone())],
            pull,
            403,
        ),
        (
            "DELETE",
            "/api/delete",
            vec![("authorization", user.clone())],
            pull,
            403,
        ),
        (
            "GET",
            "/api/chat",
            vec![("authorization", user.clone())],
            b"",
            405,
        ),
        (
            "POST",
            "/api/nope",
            vec![("authorization", user.clone())],
            b"{}",
            404,
        ),
        (
            "POST",
            "//api/chat",
            vec![("authorization", user.clone())],
            chat.as_bytes(),
            400,
        ),
        (
            "POST",
            "/api/./chat",
            vec![("authorization", user.clone())],
            chat.as_bytes(),
            400,
        ),
        (
            "POST",
            "/api/%2e%2e/api/pull",
            vec![("authorization", h.bearer("root"))],
            pull,
            400,
        ),
        (
            "POST",
            "/api%2fchat",
            vec![("authorization", user.clone())],
            chat.as_bytes(),
            400,
        ),
        (
            "POST",
            "/api/chat/",
            vec![("authorization", user.clone())],
            chat.as_bytes(),
            400,
        ),
        (
            "POST",
            "/api/chat;x=1",
            vec![("authorization", user.clone())],
            chat.as_bytes(),
            400,
        ),
        (
            "POST",
            "/api/chat?stream=true",
            vec![("authorization", user.clone())],
            chat.as_bytes(),
            400,
        ),
        (
            "POST",
            "/api/chat",
            vec![
                ("authorization", user.clone()),
                ("host", "evil.example".into()),
            ],
            chat.as_bytes(),
            400,
        ),
        (
            "POST",
            "/api/chat",
            vec![
                ("authorization", user.clone()),
                ("content-encoding", "br".into()),
            ],
            chat.as_bytes(),
            415,
        ),
        (
            "POST",
            "/api/chat",
            vec![("authorization", user.clone())],
            b"model=llama3.2",
            400,
        ),
        (
            "POST",
            "/api/chat",
            vec![("authorization", user.clone())],
            br#"{"model":"secret-model","messages":[]}"#,
            403,
        ),
    ];
    for (method, path, headers, body, want) in &refused {
        let r = h2(h.addr, method, path, headers, body).await;
        assert_eq!(r.status, *want, "{method} {path}: {}", r.text());
        assert!(
            r.json()["error"].is_string(),
            "{method} {path}: {}",
            r.text()
        );
        if *want == 401 {
            assert_eq!(
                r.header("www-authenticate"),
                Some("Bearer realm=\"corral\"")
            );
        }
    }
    let leaked: Vec<String> = h
        .forwarded()
        .iter()
        .filter(|q| !is_gate_own_request(q))
        .map(|q| format!("{} {}", q.method, q.target))
        .collect();
    assert!(
        leaked.is_empty(),
        "reached upstream over HTTP/2: {leaked:?}"
    );

    // The OpenAI dialect over HTTP/2 too.
    let r = h2(h.addr, "POST", "/v1/chat/completions", &[json], b"{}").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["type"], "authentication_error");

    // One audit record per request, refused ones included.
    let want = 1 + refused.len() + 1;
    let recs = tokio::time::timeout(T, async {
        loop {
            let recs = h.audit_records();
            if recs.len() >= want {
                return recs;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    })
    .await
    .expect("every HTTP/2 request audited");
    assert_eq!(recs.len(), want);
    assert_eq!(recs[0]["corral"]["decision"], "allow");
    assert!(recs[1..].iter().all(|r| r["corral"]["decision"] == "deny"));
}

/// A client that resets one HTTP/2 stream cancels that generation at once; the other streams
/// of the connection go on to their end.
#[tokio::test]
async fn a_reset_stream_cancels_its_generation_and_only_that_one() {
    use std::time::{Duration, Instant};
    let h = Harness::start().await;
    let tcp = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let open = |model: &str| {
        let mut sender = sender.clone();
        let req = Request::builder()
            .method("POST")
            .uri(format!("http://{}/api/chat", h.addr))
            .header("authorization", h.bearer("alice"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(chat_body(model, true).to_string())))
            .unwrap();
        async move { sender.send_request(req).await.unwrap() }
    };
    let kept = open("slow").await;
    let cut = open("endless").await;
    assert_eq!(kept.status(), 200);
    assert_eq!(cut.status(), 200);
    let mut cut = cut.into_body();
    assert!(next_data(&mut cut, T).await.unwrap().is_some());
    drop(cut); // RST_STREAM
    let left = Instant::now();
    let gone = h
        .mock
        .wait_for_disconnect(Duration::from_secs(3))
        .await
        .expect("the reset stream's generation is cancelled");
    assert!(
        left.elapsed() < Duration::from_secs(1),
        "{:?}",
        left.elapsed()
    );
    assert!(String::from_utf8_lossy(&gone.body).contains("endless"));
    let rest = read_all(&mut kept.into_body(), T).await.unwrap();
    assert!(String::from_utf8_lossy(&rest).contains("\"done\":true"));
    let rec = h
        .wait_audit(T, |r| r["corral"]["model"] == "endless:latest")
        .await
        .expect("the reset stream is recorded");
    assert_eq!(rec["corral"]["reason"], "client_disconnected");
}

#[tokio::test]
async fn connections_with_no_request_in_flight_are_closed() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let limit = Duration::from_millis(500);
    let h = Harness::builder()
        .idle_connection_timeout(limit)
        .start()
        .await;
    // Silent; part of the HTTP/2 preface (hyper waits for the rest before it can tell the
    // protocol); a whole preface and SETTINGS but no request.
    let openers: [&[u8]; 3] = [
        b"",
        b"PRI * HTTP/2.0\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
    ];
    for opener in openers {
        let mut s = tokio::net::TcpStream::connect(h.addr).await.unwrap();
        s.write_all(opener).await.unwrap();
        let started = Instant::now();
        let mut seen = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut seen)).await;
        assert!(
            closed.is_ok(),
            "{:?}: still open after 10 s",
            String::from_utf8_lossy(opener)
        );
        assert!(started.elapsed() >= limit - Duration::from_millis(100));
    }
    assert!(h.forwarded().is_empty(), "{:?}", h.forwarded());

    // A request in flight keeps its connection open past the limit however long it runs; once
    // the connection has had none for the limit, it is closed, over HTTP/1.1 and over HTTP/2
    // (whose client answers the gate's pings, which alone kept it open for ever).
    let stream = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    let h1 = tokio::spawn(conn);
    let slow = Request::post("/api/chat")
        .header("host", h.addr.to_string())
        .header("authorization", h.bearer("alice"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(Bytes::from(
            chat_body("slow", true).to_string(),
        )))
        .unwrap();
    let started = Instant::now();
    let r = read_reply(sender.send_request(slow).await.unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        started.elapsed() > limit * 2,
        "the stream outlasts the limit: {:?}",
        started.elapsed()
    );
    closed_when_idle(h1, limit, "HTTP/1.1").await.unwrap();

    let tcp = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let (mut h2, h2_conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    let h2_conn = tokio::spawn(h2_conn);
    let req = Request::get(format!("http://{}/api/version", h.addr))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = read_reply(h2.send_request(req).await.unwrap()).await;
    assert_eq!(r.status, 401, "an unauthenticated request: {}", r.text());
    // The client's side of a connection the gate closes may end in an error: either will do.
    let _ = closed_when_idle(h2_conn, limit, "HTTP/2").await;
    drop(h2);
}

/// Waits for the client side of a connection that has gone idle to end, which must happen
/// within 10 s and not before the gate's idle `limit`; its result.
async fn closed_when_idle<T>(conn: tokio::task::JoinHandle<T>, limit: Duration, what: &str) -> T {
    let idle_from = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(10), conn)
        .await
        .unwrap_or_else(|_| panic!("an idle {what} connection is closed"))
        .unwrap();
    assert!(
        idle_from.elapsed() >= limit - Duration::from_millis(100),
        "{what}"
    );
    out
}

/// A refusal sent while an HTTP/2 client is still uploading (a bad key, a route the key may not
/// use, a body over the limit) reaches the client whole.
#[tokio::test]
async fn an_early_refusal_of_a_large_http2_upload_reaches_the_client_whole() {
    let h = Harness::with_policies().await;
    // Larger than the initial flow-control windows, so the upload is still going on.
    let big = format!(
        r#"{{"model":"llama3.2","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(3 * 1024 * 1024)
    );
    let json = ("content-type", "application/json".to_string());
    let cases = [
        // (path, authorization, status, dialect's error text)
        ("/api/chat", "Bearer crl_wrong".to_string(), 401, "API key"),
        ("/api/pull", h.bearer("alice"), 403, "admin"),
        ("/api/chat", h.bearer("alice"), 413, "larger"),
        ("/v1/chat/completions", h.bearer("alice"), 413, "larger"),
    ];
    for (path, auth, status, text) in cases {
        let r = h2(
            h.addr,
            "POST",
            path,
            &[("authorization", auth), json.clone()],
            big.as_bytes(),
        )
        .await;
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert!(r.text().contains(text), "{path}: {}", r.text());
    }
    assert!(h.forwarded().is_empty());
}

/// The same at the frame level: the whole answer, then RST_STREAM with NO_ERROR, not CANCEL
/// (which clients may take as the request having failed and the answer as lost).
#[tokio::test]
async fn the_rest_of_a_refused_http2_upload_is_reset_with_no_error() {
    let h = Harness::with_policies().await;
    let tcp = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let (mut client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = Request::builder()
        .method("POST")
        .uri(format!("http://{}/api/chat", h.addr))
        .header("authorization", "Bearer crl_wrong")
        .header("content-type", "application/json")
        .header("content-length", (4 * 1024 * 1024).to_string())
        .body(())
        .unwrap();
    let (response, mut upload) = client.send_request(req, false).unwrap();
    // What the initial window takes; the rest is never sent.
    upload
        .send_data(Bytes::from(vec![b' '; 16 * 1024]), false)
        .unwrap();
    let response = tokio::time::timeout(T, response).await.unwrap().unwrap();
    assert_eq!(response.status(), 401);
    let mut body = response.into_body();
    let mut text = Vec::new();
    while let Some(chunk) = tokio::time::timeout(T, body.data()).await.unwrap() {
        text.extend_from_slice(&chunk.unwrap());
    }
    assert!(String::from_utf8_lossy(&text).contains("API key"));
    let reason = tokio::time::timeout(T, std::future::poll_fn(|cx| upload.poll_reset(cx)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reason, h2::Reason::NO_ERROR);
}
