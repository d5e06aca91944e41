//! Response bodies: whole ones, and streams produced by a task so delays, stalls, aborts and
//! client disconnects behave like a real model server.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

use crate::behaviour::{MockBehaviour, ENDLESS_CAP};
use crate::record::InFlight;

/// A streamed answer in some wire format: opening frames, one frame per content chunk, and
/// closing frames that may depend on how many chunks were sent (token counts).
pub(crate) trait StreamShape: Send + 'static {
    fn prefix(&self) -> Vec<Bytes> {
        Vec::new()
    }
    fn chunk(&self, i: usize) -> Bytes;
    fn suffix(&self, sent: usize) -> Vec<Bytes>;
    /// How the server ends this stream when the generation fails after the success status was
    /// sent: Ollama's NDJSON error line unless the format has its own error event.
    fn failure(&self) -> Bytes {
        crate::streams::ndjson(&serde_json::json!({ "error": FAILURE_MESSAGE }))
    }
}

/// The message of a stream's in-band error (see [`crate::MockBehaviour::fail_after`]).
pub const FAILURE_MESSAGE: &str =
    "an error was encountered while running the model: unexpected EOF";

pub(crate) enum Item {
    Data(Bytes),
    Abort,
}

/// The mock's response body.
pub enum MockBody {
    Full(Option<Bytes>),
    Stream(StreamBody),
}

/// Receiving end of a produced stream; dropping it before the end marks the client as gone.
pub struct StreamBody {
    rx: mpsc::Receiver<Item>,
    guard: InFlight,
}

impl MockBody {
    pub fn full(b: impl Into<Bytes>) -> MockBody {
        let b = b.into();
        MockBody::Full(if b.is_empty() { None } else { Some(b) })
    }

    pub fn empty() -> MockBody {
        MockBody::Full(None)
    }

    /// Spawns the producer of `shape` under `behaviour` and returns the body reading it.
    pub(crate) fn stream(
        shape: Box<dyn StreamShape>,
        behaviour: MockBehaviour,
        guard: InFlight,
    ) -> MockBody {
        // Capacity 1: the producer runs at most one chunk ahead of the client (backpressure).
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(produce(tx, shape, behaviour));
        MockBody::Stream(StreamBody { rx, guard })
    }
}

async fn produce(tx: mpsc::Sender<Item>, shape: Box<dyn StreamShape>, b: MockBehaviour) {
    for p in shape.prefix() {
        if tx.send(Item::Data(p)).await.is_err() {
            return;
        }
    }
    let total = if b.endless { ENDLESS_CAP } else { b.chunks };
    let mut sent = 0;
    for i in 0..total {
        if i > 0 && !b.chunk_delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(b.chunk_delay) => {}
                _ = tx.closed() => return,
            }
        }
        if b.stall_after == Some(i) {
            // Hold the connection open, sending nothing, until the client leaves.
            tx.closed().await;
            return;
        }
        if b.close_after == Some(i) {
            let _ = tx.send(Item::Abort).await;
            return;
        }
        if b.end_after == Some(i) {
            // Ends in order, but before the format's end marker (`done`, `[DONE]`, ...).
            return;
        }
        if b.fail_after == Some(i) {
            // The status is long sent: the error goes in the body, which then ends in order.
            let _ = tx.send(Item::Data(shape.failure())).await;
            return;
        }
        if tx.send(Item::Data(shape.chunk(i))).await.is_err() {
            return;
        }
        sent += 1;
    }
    for s in shape.suffix(sent) {
        if tx.send(Item::Data(s)).await.is_err() {
            return;
        }
    }
}

/// Error that aborts a response mid-stream (hyper then closes the connection).
#[derive(Debug)]
pub struct Aborted;

impl std::fmt::Display for Aborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("mock aborted the stream")
    }
}

impl std::error::Error for Aborted {}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Aborted;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Aborted>>> {
        match self.get_mut() {
            MockBody::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            MockBody::Stream(s) => match s.rx.poll_recv(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(Item::Data(d))) => Poll::Ready(Some(Ok(Frame::data(d)))),
                Poll::Ready(Some(Item::Abort)) => {
                    s.guard.abort_by_mock();
                    Poll::Ready(Some(Err(Aborted)))
                }
                Poll::Ready(None) => {
                    s.guard.finish();
                    Poll::Ready(None)
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, MockBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MockBody::Full(Some(d)) => SizeHint::with_exact(d.len() as u64),
            MockBody::Full(None) => SizeHint::with_exact(0),
            MockBody::Stream(_) => SizeHint::default(),
        }
    }
}
