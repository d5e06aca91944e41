//! The upstream response body, read straight from the upstream socket by whoever polls it.
//!
//! No task drives the connection: the request's own task reads the socket when hyper asks for
//! the next frame, so each chunk costs one read and no hand-off between tasks. At the end of
//! the body the connection goes back to the pool; a body dropped before its end closes the
//! connection, and with it the upstream's generation.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};

use super::chunked::{self, ChunkError, Step};
use super::wire::Framing;
use super::{Pool, UpConn};

/// Smallest free space offered to a socket read.
const READ_CHUNK: usize = 16 * 1024;

/// Why an upstream body ended early.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("reading the upstream response failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the upstream closed the connection before the body ended")]
    Truncated,
    #[error("malformed chunked body: {0}")]
    Chunked(#[from] ChunkError),
}

enum Decode {
    Length(u64),
    Chunked(chunked::Decoder),
    Close,
}

/// A response body from the upstream.
pub struct UpstreamBody {
    /// `None` once the body has ended (the connection is back in the pool or closed).
    conn: Option<UpConn>,
    decode: Decode,
    pool: Arc<Pool>,
    reusable: bool,
    /// The body failed: every later poll fails too, never a clean end.
    failed: bool,
}

impl UpstreamBody {
    pub(super) fn new(conn: UpConn, framing: Framing, reusable: bool, pool: Arc<Pool>) -> Self {
        let decode = match framing {
            Framing::Length(n) => Decode::Length(n),
            Framing::Chunked => Decode::Chunked(chunked::Decoder::new()),
            Framing::Close => Decode::Close,
        };
        let mut body = UpstreamBody {
            conn: Some(conn),
            decode,
            pool,
            reusable,
            failed: false,
        };
        if matches!(body.decode, Decode::Length(0)) {
            body.finish();
        }
        body
    }

    /// The body has ended: the connection goes back to the pool when it can carry another
    /// request (nothing after this response, keep-alive), otherwise it is closed.
    fn finish(&mut self) {
        if let Some(conn) = self.conn.take() {
            if self.reusable && conn.buf.is_empty() {
                self.pool.put(conn);
            }
        }
    }

    /// The body cannot go on: the connection is closed and the body stays failed.
    fn fail(&mut self, e: BodyError) -> BodyError {
        self.conn = None;
        self.failed = true;
        e
    }

    /// One step on what is buffered: data, the end, or `None` when the socket must be read.
    fn take_buffered(&mut self) -> Result<Option<Option<Bytes>>, BodyError> {
        let Some(conn) = self.conn.as_mut() else {
            return if self.failed {
                Err(BodyError::Truncated)
            } else {
                Ok(Some(None))
            };
        };
        let (step, ended) = match &mut self.decode {
            Decode::Length(left) => {
                if conn.buf.is_empty() {
                    return Ok(None);
                }
                let take = usize::try_from(*left).map_or(conn.buf.len(), |l| l.min(conn.buf.len()));
                let data = conn.buf.split_to(take).freeze();
                *left -= take as u64;
                (Some(data), *left == 0)
            }
            Decode::Chunked(dec) => match dec.decode(&mut conn.buf)? {
                None => return Ok(None),
                Some(Step::End) => (None, true),
                Some(Step::Data(data)) => {
                    let (data, ended) = merge_buffered_chunks(dec, &mut conn.buf, data);
                    (Some(data), ended)
                }
            },
            Decode::Close => {
                if conn.buf.is_empty() {
                    return Ok(None);
                }
                (Some(conn.buf.split().freeze()), false)
            }
        };
        if ended {
            self.finish();
        }
        Ok(Some(step))
    }
}

/// `first` and the data of every further chunk already in `buf`, as one piece: chunk
/// boundaries mean nothing to the client (NDJSON and SSE carry their own framing), and a burst
/// read in one go then passes on as one frame, one write. Also says whether the body's end was
/// among what was buffered, so the connection is back in the pool as soon as the last data is
/// handed on. A malformed chunk after the first stops the merge; the decoder, whose refusals
/// repeat (see [`chunked::Decoder::decode`]), reports it at the next step, after the good data
/// has gone out.
pub(crate) fn merge_buffered_chunks(
    dec: &mut chunked::Decoder,
    buf: &mut BytesMut,
    first: Bytes,
) -> (Bytes, bool) {
    let mut merged: Option<BytesMut> = None;
    let ended = loop {
        match dec.decode(buf) {
            Ok(Some(Step::Data(more))) => {
                let m = merged.get_or_insert_with(|| {
                    let mut m = BytesMut::with_capacity(first.len() + more.len() + buf.len());
                    m.extend_from_slice(&first);
                    m
                });
                m.extend_from_slice(&more);
            }
            Ok(Some(Step::End)) => break true,
            Ok(None) | Err(_) => break false,
        }
    };
    (merged.map_or(first, BytesMut::freeze), ended)
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            match this.take_buffered() {
                Err(e) => return Poll::Ready(Some(Err(this.fail(e)))),
                Ok(Some(Some(data))) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Ok(Some(None)) => return Poll::Ready(None),
                Ok(None) => {}
            }
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match ready!(poll_fill(conn, cx)) {
                Ok(0) => {
                    if matches!(this.decode, Decode::Close) {
                        // Framed by the close: never reusable (see `wire::parse_response`).
                        this.finish();
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Err(this.fail(BodyError::Truncated))));
                }
                Ok(_) => {}
                Err(e) => return Poll::Ready(Some(Err(this.fail(e.into())))),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.conn.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.decode, &self.conn) {
            (_, None) => SizeHint::with_exact(0),
            (Decode::Length(n), Some(_)) => SizeHint::with_exact(*n),
            _ => SizeHint::default(),
        }
    }
}

/// Reads what the socket has into the connection's buffer; `Ok(0)` at end of stream.
///
/// Through `AsyncRead`, not `try_read_buf`: a read that fills less than the free space tells
/// tokio the socket is drained, so its read readiness is cleared and [`UpConn::is_reusable`]
/// can see a quiet idle connection without a system call.
pub(super) fn poll_fill(conn: &mut UpConn, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
    if conn.buf.capacity() - conn.buf.len() < READ_CHUNK / 4 {
        conn.buf.reserve(READ_CHUNK);
    }
    tokio_util::io::poll_read_buf(Pin::new(&mut conn.stream), cx, &mut conn.buf)
}
