//! One streamed request on its own connection.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::{Failure, Gauge, StreamsConfig};

/// What one finished stream measured.
#[derive(Debug, Clone, Copy)]
pub(super) struct Done {
    pub first_byte: Duration,
    pub total: Duration,
    pub lines: u64,
    pub bytes: u64,
}

/// Enough of the end of a stream to hold its last NDJSON line.
const TAIL: usize = 4096;

pub(super) async fn stream(cfg: &StreamsConfig, gauge: &Gauge) -> Result<Done, Failure> {
    let started = Instant::now();
    let tcp = TcpStream::connect(cfg.target.addr)
        .await
        .map_err(|_| Failure::Connect)?;
    let _ = tcp.set_nodelay(true);
    let (mut sender, conn) = http1::handshake::<_, Full<Bytes>>(TokioIo::new(tcp))
        .await
        .map_err(|_| Failure::Handshake)?;
    // The connection task ends with the response or when this stream is dropped.
    let driver = tokio::spawn(conn);
    let _stop = AbortOnDrop(driver);

    let mut req = http::Request::builder()
        .method(cfg.method.clone())
        .uri(cfg.target.path.as_str())
        .header(HOST, cfg.target.host.as_str());
    if !cfg.body.is_empty() {
        req = req.header(CONTENT_TYPE, "application/json");
    }
    if let Some(auth) = &cfg.authorization {
        req = req.header(AUTHORIZATION, auth.as_str());
    }
    let req = req
        .body(Full::new(cfg.body.clone()))
        .map_err(|_| Failure::Send)?;
    let mut resp = sender.send_request(req).await.map_err(|_| Failure::Send)?;
    if resp.status() != http::StatusCode::OK {
        return Err(Failure::Status);
    }

    let mut first_byte = None;
    let mut open = None;
    let (mut lines, mut bytes) = (0u64, 0u64);
    let mut tail: Vec<u8> = Vec::with_capacity(TAIL * 2);
    while let Some(frame) = resp.body_mut().frame().await {
        let frame = frame.map_err(|_| Failure::Body)?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        if first_byte.is_none() {
            first_byte = Some(started.elapsed());
            open = Some(gauge.open());
        }
        bytes += data.len() as u64;
        lines += data.iter().filter(|b| **b == b'\n').count() as u64;
        if cfg.expect_done {
            tail.extend_from_slice(data);
            if tail.len() > TAIL * 2 {
                tail.drain(..tail.len() - TAIL);
            }
        }
    }
    drop(open);
    let first_byte = first_byte.ok_or(Failure::Body)?;
    if cfg.expect_done && !last_line_done(&tail) {
        return Err(Failure::NoDone);
    }
    Ok(Done {
        first_byte,
        total: started.elapsed(),
        lines,
        bytes,
    })
}

/// True when the last non-empty NDJSON line says `"done":true`.
pub(super) fn last_line_done(tail: &[u8]) -> bool {
    let trimmed = tail.trim_ascii_end();
    let last = match trimmed.iter().rposition(|b| *b == b'\n') {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(last) else {
        return false;
    };
    value.get("done").and_then(serde_json::Value::as_bool) == Some(true)
}

struct AbortOnDrop(tokio::task::JoinHandle<Result<(), hyper::Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::last_line_done;

    #[test]
    fn done_line_is_recognised() {
        assert!(last_line_done(
            b"{\"done\":false}\n{\"message\":{},\"done\":true,\"eval_count\":3}\n"
        ));
        assert!(last_line_done(b"{\"done\":true}"));
    }

    #[test]
    fn unfinished_or_broken_streams_are_not_done() {
        assert!(!last_line_done(b"{\"done\":true}\n{\"done\":false}\n"));
        assert!(!last_line_done(b"{\"done\":tr"));
        assert!(!last_line_done(b""));
        assert!(!last_line_done(b"{\"done\":\"true\"}\n"));
    }
}
