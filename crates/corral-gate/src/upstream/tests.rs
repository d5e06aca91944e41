//! The upstream client against small raw-socket servers on port 0.

use super::*;
use bytes::Bytes;
use http_body_util::BodyExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Listens on a loopback port 0 and runs `conn` on each accepted connection in a task of its
/// own; returns the port and the count of connections accepted.
async fn serve_each<F, Fut>(conn: F) -> (u16, Arc<AtomicUsize>)
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        loop {
            let (s, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(conn(s));
        }
    });
    (port, accepted)
}

/// A keep-alive HTTP/1 server answering every request with `body`; counts connections.
async fn server(body: &'static str) -> (u16, Arc<AtomicUsize>) {
    serve_each(move |mut s| async move {
        let mut buf = vec![0u8; 4096];
        let mut seen = Vec::new();
        loop {
            let n = match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            seen.extend_from_slice(&buf[..n]);
            while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                seen.drain(..end + 4);
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if s.write_all(resp.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    })
    .await
}

fn get() -> Request<UpBody> {
    Request::builder()
        .uri("/api/version")
        .header("host", "127.0.0.1")
        .body(UpBody::Full(None))
        .unwrap()
}

/// A server that reads one request head per connection (and `body_len` body bytes), answers
/// with `reply`, and keeps the connection open until the client closes it. Sends what it read
/// on `seen`.
async fn raw_server(
    reply: &'static [u8],
) -> (
    u16,
    Arc<AtomicUsize>,
    tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (port, accepted) = serve_each(move |mut s| {
        let tx = tx.clone();
        async move {
            let mut seen = Vec::new();
            let mut buf = vec![0u8; 4096];
            // Up to the end of a chunked body, or a head without a body.
            loop {
                let n = match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen);
                let chunked = text.contains("transfer-encoding: chunked");
                if (chunked && text.ends_with("0\r\n\r\n"))
                    || (!chunked && text.contains("\r\n\r\n"))
                {
                    break;
                }
            }
            let _ = tx.send(seen);
            let _ = s.write_all(reply).await;
            let _ = s.read(&mut buf).await;
        }
    })
    .await;
    (port, accepted, rx)
}

/// Reads one request head (these tests send no request bodies); false when the client left.
async fn read_request(s: &mut tokio::net::TcpStream) -> bool {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    true
}

/// A server that answers the first request of each connection with `reply` and then closes
/// the connection: at once, or (`at_next`) only once the next request on it has arrived, so
/// that request is lost as it would be with an upstream closing an idle connection under it.
/// Counts connections.
async fn closing_server(reply: &'static [u8], at_next: bool) -> (u16, Arc<AtomicUsize>) {
    serve_each(move |mut s| async move {
        if !read_request(&mut s).await || s.write_all(reply).await.is_err() {
            return;
        }
        if at_next {
            read_request(&mut s).await;
        }
        let _ = s.shutdown().await;
    })
    .await
}

/// The idle timeout of the tests' requests.
const IDLE: Duration = Duration::from_secs(10);

fn pool(port: u16, max_idle: usize) -> Arc<Pool> {
    Pool::new("127.0.0.1", port, Duration::from_secs(2), max_idle)
}

/// Sends a GET and reads its whole answer body.
async fn get_body(pool: &Arc<Pool>) -> Bytes {
    let resp = pool.send(get(), IDLE).await.unwrap();
    resp.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test]
async fn a_finished_body_hands_its_connection_back_for_reuse() {
    let (port, accepted) = server("{\"version\":\"0.12.0\"}").await;
    let pool = pool(port, 8);
    for _ in 0..5 {
        let body = get_body(&pool).await;
        assert_eq!(body, Bytes::from_static(b"{\"version\":\"0.12.0\"}"));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(pool.idle_len(), 1);
}

#[tokio::test]
async fn idle_connections_unused_past_the_limit_are_closed_and_newer_ones_kept() {
    let (port, accepted) = server("{}").await;
    let pool = pool(port, 8);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(pool.send(get(), IDLE).await.unwrap().into_body());
    }
    let mut bodies = held.into_iter();
    let _ = bodies.next().unwrap().collect().await.unwrap();
    let _ = bodies.next().unwrap().collect().await.unwrap();
    let older = Instant::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let _ = bodies.next().unwrap().collect().await.unwrap();
    assert_eq!(pool.idle_len(), 3);

    pool.sweep();
    assert_eq!(pool.idle_len(), 3, "nothing is old yet");
    // Just past the limit for the two handed back first, not for the third.
    pool.sweep_at(older + IDLE_KEEP + Duration::from_millis(10));
    assert_eq!(pool.idle_len(), 1);
    // The one kept is the newest and still carries requests.
    get_body(&pool).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
    pool.sweep_at(Instant::now() + IDLE_KEEP + Duration::from_secs(1));
    assert_eq!(pool.idle_len(), 0);
}

#[tokio::test]
async fn a_swept_connection_is_closed_at_the_upstream() {
    let (closed_tx, mut closed_rx) = tokio::sync::mpsc::unbounded_channel();
    let (port, _) = serve_each(move |mut s| {
        let closed = closed_tx.clone();
        async move {
            let mut buf = vec![0u8; 4096];
            let mut answered = false;
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) if !answered => {
                        answered = true;
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                            .await;
                    }
                    Ok(_) => {}
                }
            }
            let _ = closed.send(());
        }
    })
    .await;
    let pool = pool(port, 8);
    get_body(&pool).await;
    assert_eq!(pool.idle_len(), 1);
    pool.sweep_at(Instant::now() + IDLE_KEEP + Duration::from_secs(1));
    tokio::time::timeout(Duration::from_secs(5), closed_rx.recv())
        .await
        .expect("the upstream saw the connection close")
        .unwrap();
}

#[tokio::test]
async fn a_body_dropped_before_its_end_closes_its_connection() {
    let (port, accepted, _seen) =
        raw_server(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n").await;
    let pool = pool(port, 8);
    for _ in 0..3 {
        let resp = pool.send(get(), IDLE).await.unwrap();
        let mut body = resp.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, Bytes::from_static(b"abc"));
        assert!(!body.is_end_stream());
        drop(body);
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
    assert_eq!(pool.idle_len(), 0);
}

#[tokio::test]
async fn bodies_held_at_once_open_connections_and_at_most_max_idle_stay() {
    let (port, accepted) = server("{}").await;
    let pool = pool(port, 2);
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(pool.send(get(), IDLE).await.unwrap().into_body());
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 4);
    for body in held {
        let _ = body.collect().await.unwrap();
    }
    assert_eq!(pool.idle_len(), 2);
}

#[tokio::test]
async fn a_connection_closed_by_the_upstream_is_replaced_and_the_request_resent() {
    let (port, accepted) =
        closing_server(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}", false).await;
    let pool = pool(port, 8);
    // Straight after each answer: the close may or may not have arrived yet.
    for _ in 0..20 {
        let body = get_body(&pool).await;
        assert_eq!(body, Bytes::from_static(b"{}"));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 20);
}

#[tokio::test]
async fn a_request_lost_on_a_reused_connection_is_sent_again_on_a_fresh_one() {
    // The reused connection looks open when taken and closes only once the request is on it.
    let (port, accepted) =
        closing_server(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}", true).await;
    let pool = pool(port, 8);
    for _ in 0..2 {
        let body = get_body(&pool).await;
        assert_eq!(body, Bytes::from_static(b"{}"));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_fresh_connection_closed_without_an_answer_is_an_error_not_a_retry() {
    let (port, accepted) = closing_server(b"", false).await;
    let err = pool(port, 8).send(get(), IDLE).await.err().unwrap();
    assert!(matches!(err, PoolError::Closed), "{err}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let err = pool(port, 8).send(get(), IDLE).await.err().unwrap();
    assert!(err.is_connect(), "{err}");
}

#[tokio::test]
async fn a_chunked_answer_arrives_piece_by_piece_and_ends() {
    let (port, _, _seen) = raw_server(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n3\r\n1}\n\r\n0\r\n\r\n",
    )
    .await;
    let pool = pool(port, 8);
    let resp = pool.send(get(), IDLE).await.unwrap();
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, Bytes::from_static(b"{\"a\":1}\n"));
    assert_eq!(pool.idle_len(), 1);
}

/// Sends a request to a [`raw_server`] answering `reply` (written in one go, so read in one
/// go) and takes the first frame of the body.
async fn first_frame(reply: &'static [u8]) -> (Arc<Pool>, UpstreamBody, Bytes) {
    let (port, _, _seen) = raw_server(reply).await;
    let pool = pool(port, 8);
    let mut body = pool.send(get(), IDLE).await.unwrap().into_body();
    let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
    (pool, body, frame)
}

#[tokio::test]
async fn chunks_read_together_pass_on_as_one_frame_and_the_end_with_them() {
    // The whole answer is one write, so one read: three chunks and the last-chunk marker.
    let (pool, mut body, frame) = first_frame(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n8\r\n{\"a\":1}\n\r\n8\r\n{\"b\":2}\n\r\n1\r\n\n\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(frame, Bytes::from_static(b"{\"a\":1}\n{\"b\":2}\n\n"));
    // The end was in the same read: the connection is already back, before another poll.
    assert!(body.is_end_stream());
    assert_eq!(pool.idle_len(), 1);
    assert!(body.frame().await.is_none());
}

#[tokio::test]
async fn good_chunks_before_a_malformed_one_reach_the_reader_then_the_error() {
    let (pool, mut body, frame) = first_frame(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\nzz\r\n",
    )
    .await;
    assert_eq!(frame, Bytes::from_static(b"abcde"));
    let err = body.frame().await.unwrap().err().unwrap();
    assert!(
        matches!(err, body::BodyError::Chunked(chunked::ChunkError::BadSize)),
        "{err}"
    );
    assert!(
        body.frame().await.unwrap().is_err(),
        "a failed body stays failed"
    );
    assert_eq!(pool.idle_len(), 0);
}

#[tokio::test]
async fn an_answer_cut_short_is_an_error_and_the_connection_is_not_kept() {
    for reply in [
        &b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\nabc"[..],
        &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n5\r\nab"[..],
    ] {
        let (port, _) = closing_server(reply, false).await;
        let pool = pool(port, 8);
        let resp = pool.send(get(), IDLE).await.unwrap();
        assert!(resp.into_body().collect().await.is_err());
        assert_eq!(pool.idle_len(), 0);
    }
}

#[tokio::test]
async fn a_close_delimited_answer_ends_at_the_close() {
    let (port, _) = closing_server(b"HTTP/1.1 200 OK\r\n\r\nall of it", false).await;
    let pool = pool(port, 8);
    let body = get_body(&pool).await;
    assert_eq!(body, Bytes::from_static(b"all of it"));
    assert_eq!(pool.idle_len(), 0);
}

#[tokio::test]
async fn bad_heads_and_extra_bytes_are_refused() {
    let (port, _, _seen) =
        raw_server(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab").await;
    let err = pool(port, 8).send(get(), IDLE).await.err().unwrap();
    assert!(
        matches!(err, PoolError::Head(HeadError::BadLength)),
        "{err}"
    );

    // Bytes after the end of the answer: the connection is not trusted again.
    let (port, accepted, _seen) =
        raw_server(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n\r\n").await;
    let pool = pool(port, 8);
    for _ in 0..2 {
        let body = get_body(&pool).await;
        assert_eq!(body, Bytes::from_static(b"{}"));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    assert_eq!(pool.idle_len(), 0);
}

/// A server whose connections answer each request with `{}` and, if no second request has
/// come `late` after the first answer, push an unasked-for answer onto the idle connection.
/// Counts connections.
async fn late_bytes_server(late: Duration) -> (u16, Arc<AtomicUsize>) {
    serve_each(move |mut s| async move {
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        if !read_request(&mut s).await || s.write_all(answer).await.is_err() {
            return;
        }
        tokio::select! {
            asked = read_request(&mut s) => {
                if !asked || s.write_all(answer).await.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep(late) => {
                let forged = b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nforged";
                if s.write_all(forged).await.is_err() {
                    return;
                }
            }
        }
        while read_request(&mut s).await {
            if s.write_all(answer).await.is_err() {
                return;
            }
        }
    })
    .await
}

#[tokio::test]
async fn bytes_that_reach_an_idle_connection_later_retire_it() {
    // The answer's last read drained the socket, so the pool knows the connection was quiet
    // then; what arrives while it sits idle must still be seen, never read as the next answer.
    let (port, accepted) = late_bytes_server(Duration::from_millis(20)).await;
    let pool = pool(port, 8);
    for round in 1..=3 {
        let body = get_body(&pool).await;
        assert_eq!(body, Bytes::from_static(b"{}"), "round {round}");
        assert_eq!(pool.idle_len(), 1);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_quiet_idle_connection_carries_the_next_request() {
    // The same server, its late bytes far off: each next request comes first.
    let (port, accepted) = late_bytes_server(Duration::from_secs(60)).await;
    let pool = pool(port, 8);
    for _ in 0..3 {
        let body = get_body(&pool).await;
        assert_eq!(body, Bytes::from_static(b"{}"));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn head_answers_have_no_body_whatever_they_declare() {
    let (port, _, _seen) = raw_server(b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n").await;
    let pool = pool(port, 8);
    let req = Request::builder()
        .method(Method::HEAD)
        .uri("/")
        .header("host", "127.0.0.1")
        .body(UpBody::Full(None))
        .unwrap();
    let resp = pool.send(req, IDLE).await.unwrap();
    assert_eq!(resp.headers()["content-length"], "99");
    let body = resp.into_body();
    assert!(body.is_end_stream());
    assert_eq!(body.collect().await.unwrap().to_bytes(), Bytes::new());
    assert_eq!(pool.idle_len(), 1);
}

#[tokio::test]
async fn request_heads_and_bodies_go_out_as_written() {
    let (port, _, mut seen) = raw_server(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
    let pool = pool(port, 8);
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/chat")
        .header("host", "127.0.0.1:11434")
        .header("content-length", "7")
        .body(UpBody::Full(Some(Bytes::from_static(b"{\"a\":1}"))))
        .unwrap();
    let resp = pool.send(req, IDLE).await.unwrap();
    assert!(resp.into_body().is_end_stream());
    assert_eq!(
        seen.recv().await.unwrap(),
        b"POST /api/chat HTTP/1.1\r\nhost: 127.0.0.1:11434\r\ncontent-length: 7\r\n\r\n{\"a\":1}"
    );
}

/// A request body that arrives in pieces, like a client's upload.
fn streamed(pieces: &[&'static [u8]]) -> UpBody {
    let frames: Vec<Result<http_body::Frame<Bytes>, std::convert::Infallible>> = pieces
        .iter()
        .map(|p| Ok(http_body::Frame::data(Bytes::from_static(p))))
        .collect();
    let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
    UpBody::Stream(http_body_util::combinators::UnsyncBoxBody::new(
        http_body_util::Limited::new(body, 1024),
    ))
}

#[tokio::test]
async fn a_streamed_upload_without_a_length_goes_chunked() {
    let (port, _, mut seen) =
        raw_server(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n").await;
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/blobs/sha256:00")
        .header("host", "h")
        .body(streamed(&[b"abc", b"", b"defgh"]))
        .unwrap();
    let resp = pool(port, 8).send(req, IDLE).await.unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(
        seen.recv().await.unwrap(),
        b"POST /api/blobs/sha256:00 HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n"
    );
}

#[tokio::test]
async fn a_streamed_upload_must_match_its_declared_length() {
    let (port, _, _seen) = raw_server(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n").await;
    for (declared, pieces) in [("4", &[&b"abc"[..]][..]), ("2", &[&b"abc"[..]][..])] {
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/blobs/sha256:00")
            .header("host", "h")
            .header("content-length", declared)
            .body(streamed(pieces))
            .unwrap();
        let err = pool(port, 8).send(req, IDLE).await.err().unwrap();
        assert!(matches!(err, PoolError::BodyLength), "{err}");
    }
}

#[tokio::test]
async fn an_answer_sent_before_the_upload_was_read_is_the_response() {
    // Ollama answers 200 at once for a blob it already has, without reading the body, and
    // closes the connection: the upload then fails to write, but the answer is there.
    let (port, _) = serve_each(|mut s| async move {
        if read_request(&mut s).await {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
                .await;
        }
        // Dropped with the body unread: the kernel resets the connection.
    })
    .await;
    let piece = Bytes::from(vec![b'b'; 256 * 1024]);
    let frames: Vec<Result<http_body::Frame<Bytes>, std::convert::Infallible>> = (0..64)
        .map(|_| Ok(http_body::Frame::data(piece.clone())))
        .collect();
    let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/blobs/sha256:00")
        .header("host", "127.0.0.1")
        .header("content-length", (64 * 256 * 1024).to_string())
        .body(UpBody::Stream(
            http_body_util::combinators::UnsyncBoxBody::new(http_body_util::Limited::new(
                body,
                usize::MAX,
            )),
        ))
        .unwrap();
    let pool = pool(port, 8);
    let resp = pool
        .send(req, IDLE)
        .await
        .expect("the upstream's own answer");
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, Bytes::from_static(b"{}"));
    assert_eq!(
        pool.idle_len(),
        0,
        "a connection the upstream closed is not reused"
    );
}
