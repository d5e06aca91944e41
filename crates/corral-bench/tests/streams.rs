#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The streams load against small real servers on port 0.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use corral_bench::streams::{self, Failure, StreamsConfig, Target};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[derive(Clone, Copy)]
enum Mode {
    /// `lines` NDJSON lines `gap` apart, the last one `"done":true`.
    Slow {
        lines: usize,
        gap: Duration,
        done: bool,
    },
    /// A 500 with an Ollama error body.
    Error,
    /// Headers, one line, then silence.
    Hang,
}

async fn server(mode: Mode) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| async move {
                        assert_eq!(req.headers().get("authorization").unwrap(), "Bearer k");
                        let _ = req.into_body().collect().await;
                        let (tx, rx) =
                            tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
                        let status = match mode {
                            Mode::Error => 500,
                            _ => 200,
                        };
                        tokio::spawn(async move {
                            match mode {
                                Mode::Slow { lines, gap, done } => {
                                    for i in 0..lines {
                                        tokio::time::sleep(gap).await;
                                        let last = done && i + 1 == lines;
                                        let line = format!("{{\"message\":{{\"content\":\"x\"}},\"done\":{last}}}\n");
                                        if tx
                                            .send(Ok(Frame::data(Bytes::from(line))))
                                            .await
                                            .is_err()
                                        {
                                            return;
                                        }
                                    }
                                }
                                Mode::Error => {
                                    let _ = tx
                                        .send(Ok(Frame::data(Bytes::from_static(
                                            b"{\"error\":\"boom\"}",
                                        ))))
                                        .await;
                                }
                                Mode::Hang => {
                                    let _ = tx
                                        .send(Ok(Frame::data(Bytes::from_static(
                                            b"{\"done\":false}\n",
                                        ))))
                                        .await;
                                    tokio::time::sleep(Duration::from_secs(30)).await;
                                }
                            }
                        });
                        let body = StreamBody::new(tokio_stream(rx));
                        Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .status(status)
                                .header("content-type", "application/x-ndjson")
                                .body(body)
                                .unwrap(),
                        )
                    },
                );
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

/// A receiver as a body stream.
fn tokio_stream<T>(mut rx: tokio::sync::mpsc::Receiver<T>) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

fn config(addr: SocketAddr, concurrency: usize) -> StreamsConfig {
    StreamsConfig {
        target: Target {
            addr,
            host: addr.to_string(),
            path: "/api/chat".into(),
        },
        method: http::Method::POST,
        authorization: Some("Bearer k".into()),
        body: Bytes::from_static(b"{\"model\":\"slow\",\"stream\":true}"),
        concurrency,
        ramp: Duration::from_millis(50),
        deadline: Duration::from_secs(20),
        expect_done: true,
        watch_pids: vec![std::process::id()],
        sample_every: Duration::from_millis(5),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_streams_complete_and_overlap() {
    let addr = server(Mode::Slow {
        lines: 10,
        gap: Duration::from_millis(30),
        done: true,
    })
    .await;
    let report = streams::run(config(addr, 200)).await;
    assert_eq!(report.requested, 200);
    assert_eq!(report.completed, 200, "{report:?}");
    assert_eq!(report.failed, 0);
    assert_eq!(report.lines, 2000);
    // Streams last ~300 ms and start within 50 ms, so all of them overlap.
    assert_eq!(report.peak_open, 200);
    let fb = report.first_byte_ms.p50.unwrap();
    let total = report.total_ms.p50.unwrap();
    assert!(
        fb < total,
        "first byte {fb} ms should precede the end {total} ms"
    );
    assert!(total >= 270.0, "{total}");
    assert!(report.rss_peak_kb > 0 && report.hwm_kb >= report.rss_peak_kb / 2);
    assert!(report.rss_at_peak_open_kb > 0);
    let kv = report.to_kv();
    assert!(
        kv.contains(" completed=200 failed=0 peak_open=200 "),
        "{kv}"
    );
    assert!(kv.ends_with(" errors=-"), "{kv}");
}

#[tokio::test]
async fn missing_done_line_is_a_failure() {
    let addr = server(Mode::Slow {
        lines: 3,
        gap: Duration::from_millis(1),
        done: false,
    })
    .await;
    let report = streams::run(config(addr, 5)).await;
    assert_eq!(report.completed, 0);
    assert_eq!(report.errors.get(&Failure::NoDone), Some(&5));
}

#[tokio::test]
async fn error_status_is_a_failure() {
    let addr = server(Mode::Error).await;
    let report = streams::run(config(addr, 4)).await;
    assert_eq!(report.failed, 4);
    assert_eq!(report.errors.get(&Failure::Status), Some(&4));
    assert_eq!(report.peak_open, 0);
    let kv = report.to_kv();
    assert!(kv.contains(" first_byte_p50_ms=- "), "{kv}");
    assert!(kv.ends_with(" errors=status:4"), "{kv}");
}

#[tokio::test]
async fn refused_connections_are_failures() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let report = streams::run(config(addr, 3)).await;
    assert_eq!(report.errors.get(&Failure::Connect), Some(&3));
}

#[tokio::test]
async fn deadline_cuts_hanging_streams_in_time() {
    let addr = server(Mode::Hang).await;
    let mut cfg = config(addr, 6);
    cfg.deadline = Duration::from_millis(500);
    let started = std::time::Instant::now();
    let report = streams::run(cfg).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(report.errors.get(&Failure::Deadline), Some(&6));
    assert_eq!(report.peak_open, 6);
    assert_eq!(report.completed, 0);
}
