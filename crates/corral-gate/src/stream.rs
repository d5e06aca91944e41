//! The response body the gate hands to hyper: either a small buffered body (errors, filtered
//! listings) or the upstream body passed through chunk by chunk. Dropping it drops the upstream
//! body, which closes the upstream connection: a client that leaves cancels the generation.
//! When it is dropped, finished or not, it emits the request's audit record.
//!
//! A stream that fails after it started (the upstream goes quiet past the idle timeout, or its
//! connection breaks) ends with an error event in the client's dialect, as Ollama ends its own
//! failed streams, so clients raise an API error instead of a transport error: NDJSON gets
//! `{"error":"..."}`, OpenAI SSE a `data: {"error":{...}}` event, Anthropic SSE an `error`
//! event. A length-delimited body cannot be extended, so it is cut short instead. A stream whose
//! key is revoked or expires while it runs ends the same way, and so does one still running when
//! the gate's shutdown grace period is over.
//!
//! When the gate asked the upstream for a usage chunk the client did not ask for, the body
//! passes through a [`UsageChunkFilter`] that takes that chunk out again (after the tap has
//! read its counts).

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use corral_policy::route::Dialect;
use corral_policy::usage::{ResponseFormat, UsageChunkFilter, UsageTap};
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::audit::AuditSink;
use crate::context::{Ending, RequestCtx};
use crate::keys::Lease;
use crate::refused::InFlight;
use crate::upstream::UpstreamBody;

/// Stands in for a deadline too far out to compute (about 30 years: no stream waits that long).
const FAR_FUTURE: Duration = Duration::from_secs(86400 * 365 * 30);

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Errors that end a streamed response early. hyper aborts the client connection (HTTP/1) or
/// resets the stream (HTTP/2), so the client sees a truncated response, not a complete one.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("upstream idle for longer than the idle timeout")]
    IdleTimeout,
    #[error("upstream stream failed")]
    Upstream,
    #[error("the API key was revoked or expired while the request ran")]
    KeyNoLongerValid,
    #[error("the gate is shutting down; the request was cut")]
    Shutdown,
}

/// What the gate reads in an upstream body besides passing it on, for the audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Only an error the upstream reports inside an NDJSON or SSE body.
    Errors,
    /// Also the upstream's token counts (inference routes).
    Tokens,
    /// Also whether a generation's stream reached its end marker (`done: true`, `[DONE]`,
    /// `message_stop`, `response.completed`); one that ends without it was cut short.
    Generation,
}

enum Kind {
    Full(Option<Bytes>),
    Stream(Streaming),
}

/// The upstream body owns its connection: it goes back to the pool when the body has been read
/// to its end, and dropping the body before that closes it, which cancels the generation.
struct Streaming {
    upstream: UpstreamBody,
    /// Armed only when the upstream makes the body wait: an answer already in the buffer never
    /// touches the timer wheel.
    idle: Option<Pin<Box<Sleep>>>,
    /// When the upstream last sent something (or the body was created).
    last_data: Instant,
    timeout: Duration,
    /// The upstream body failed; reported on the next poll, after hyper has flushed.
    failed: bool,
    /// How to end this stream with an error event; `None` when it cannot take one.
    farewell: Option<(Dialect, ResponseFormat)>,
    /// The error event has been sent: the body is over.
    done: bool,
    /// Takes out the usage chunk the client did not ask for.
    hide_usage: Option<UsageChunkFilter>,
    /// The key's lease; the stream is cut when it ends.
    lease: Lease,
    /// Registered only when the body has to wait, as `idle` is.
    lease_ended: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
}

/// Response body of every gate response.
pub struct GateBody {
    kind: Kind,
    /// Reads token counts (inference) and errors the upstream reports inside a body it began
    /// as a success (every NDJSON or SSE stream, and inference answers).
    tap: Option<UsageTap>,
    /// What the tap is read for.
    reading: Reading,
    bytes_out: u64,
    ending: Option<Ending>,
    audit: Option<(Box<RequestCtx>, AuditSink)>,
    /// Keeps the request counted as in flight on its connection until the body is dropped.
    in_flight: Option<InFlight>,
}

impl GateBody {
    /// A buffered body.
    pub fn full(bytes: Bytes) -> GateBody {
        GateBody {
            kind: Kind::Full((!bytes.is_empty()).then_some(bytes)),
            tap: None,
            reading: Reading::Errors,
            bytes_out: 0,
            ending: None,
            audit: None,
            in_flight: None,
        }
    }

    /// The upstream body, passed through with an idle timeout between chunks and read as
    /// `reading` says (an NDJSON or SSE body is always read for an error the upstream reports
    /// in it). A streamed (NDJSON or SSE) body without a length that
    /// fails midway, or whose `lease` ends, ends with an error event in `dialect`. `hide_usage`
    /// drops the usage-only chunk of an OpenAI event stream (the body then has no known length).
    pub fn streaming(
        upstream: UpstreamBody,
        timeout: Duration,
        format: ResponseFormat,
        dialect: Dialect,
        reading: Reading,
        hide_usage: bool,
        lease: Lease,
    ) -> GateBody {
        let farewell = (format != ResponseFormat::Json
            && (hide_usage || upstream.size_hint().exact().is_none()))
        .then_some((dialect, format));
        GateBody {
            kind: Kind::Stream(Streaming {
                upstream,
                idle: None,
                last_data: Instant::now(),
                timeout,
                failed: false,
                farewell,
                done: false,
                hide_usage: hide_usage.then(UsageChunkFilter::new),
                lease,
                lease_ended: None,
            }),
            tap: (reading != Reading::Errors || format != ResponseFormat::Json)
                .then(|| UsageTap::new(format)),
            reading,
            bytes_out: 0,
            ending: None,
            audit: None,
            in_flight: None,
        }
    }

    /// Counts the request as in flight on its connection for as long as this body lives.
    pub fn hold(&mut self, in_flight: InFlight) {
        self.in_flight = Some(in_flight);
    }

    /// Emit `ctx` as an audit record when this body ends or is dropped.
    pub fn audit_with(&mut self, ctx: Box<RequestCtx>, sink: AuditSink) {
        self.audit = Some((ctx, sink));
    }
}

impl From<Bytes> for GateBody {
    fn from(bytes: Bytes) -> Self {
        GateBody::full(bytes)
    }
}

impl Body for GateBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let GateBody {
            kind,
            tap,
            bytes_out,
            ending,
            ..
        } = self.get_mut();
        let mut count = |data: &Bytes| {
            *bytes_out += data.len() as u64;
            if let Some(tap) = tap {
                tap.feed(data);
            }
        };
        match kind {
            Kind::Full(slot) => match slot.take() {
                Some(data) => {
                    count(&data);
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                None => {
                    *ending = Some(Ending::Complete);
                    Poll::Ready(None)
                }
            },
            Kind::Stream(s) => loop {
                if s.done {
                    return Poll::Ready(None);
                }
                if s.failed {
                    *ending = Some(Ending::UpstreamError);
                    return Poll::Ready(Some(Err(Box::new(StreamError::Upstream))));
                }
                if s.lease.is_ended() {
                    let (end, e) = lease_end(&s.lease);
                    *ending = Some(end);
                    return Poll::Ready(Some(s.fail(e, bytes_out)));
                }
                match Pin::new(&mut s.upstream).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                        Ok(data) => {
                            s.last_data = Instant::now();
                            if let Some(tap) = tap {
                                tap.feed(&data);
                            }
                            let data = match &mut s.hide_usage {
                                Some(filter) => Bytes::from(filter.feed(&data)),
                                None => data,
                            };
                            if data.is_empty() {
                                continue;
                            }
                            *bytes_out += data.len() as u64;
                            return Poll::Ready(Some(Ok(Frame::data(data))));
                        }
                        // Trailers are not part of the Ollama API; they are not forwarded.
                        Err(_) => continue,
                    },
                    Poll::Ready(Some(Err(_))) => {
                        if s.farewell.is_some() {
                            *ending = Some(Ending::UpstreamError);
                            return Poll::Ready(Some(s.fail(StreamError::Upstream, bytes_out)));
                        }
                        // hyper drops output it has not yet written when a body fails. Pause
                        // once so the head and the chunks before the failure reach the
                        // client, which then sees the answer cut short rather than none.
                        s.failed = true;
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    Poll::Ready(None) => {
                        *ending = Some(Ending::Complete);
                        s.done = true;
                        let rest = held_back(&mut s.hide_usage);
                        if rest.is_empty() {
                            return Poll::Ready(None);
                        }
                        *bytes_out += rest.len() as u64;
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(rest)))));
                    }
                    Poll::Pending => {
                        // Saturating: a timeout set through the library is not bounded.
                        let deadline = s
                            .last_data
                            .checked_add(s.timeout)
                            .unwrap_or_else(|| s.last_data + FAR_FUTURE);
                        let idle = s
                            .idle
                            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                        if idle.deadline() != deadline {
                            idle.as_mut().reset(deadline);
                        }
                        if idle.as_mut().poll(cx).is_ready() {
                            *ending = Some(Ending::IdleTimeout);
                            return Poll::Ready(Some(s.fail(StreamError::IdleTimeout, bytes_out)));
                        }
                        let lease = &s.lease;
                        let ended = s.lease_ended.get_or_insert_with(|| Box::pin(lease.ended()));
                        if ended.as_mut().poll(cx).is_ready() {
                            let (end, e) = lease_end(&s.lease);
                            *ending = Some(end);
                            return Poll::Ready(Some(s.fail(e, bytes_out)));
                        }
                        return Poll::Pending;
                    }
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(slot) => slot.is_none(),
            Kind::Stream(s) => {
                s.done
                    || (s.upstream.is_end_stream()
                        && s.hide_usage.as_ref().is_none_or(UsageChunkFilter::is_empty))
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Stream(s) if s.hide_usage.is_some() => SizeHint::default(),
            Kind::Stream(s) => s.upstream.size_hint(),
        }
    }
}

impl Streaming {
    /// Ends the stream for `e`: with whatever the usage filter holds back and an error event
    /// when it can take one, otherwise with an error that makes hyper cut the response short.
    fn fail(&mut self, e: StreamError, bytes_out: &mut u64) -> Result<Frame<Bytes>, BoxError> {
        let Some(last) = self.farewell.take() else {
            return Err(Box::new(e));
        };
        self.done = true;
        let mut event = held_back(&mut self.hide_usage);
        event.extend_from_slice(&error_event(last, e));
        *bytes_out += event.len() as u64;
        Ok(Frame::data(Bytes::from(event)))
    }
}

/// Why a stream whose lease ended is cut: its key, or the gate's shutdown.
fn lease_end(lease: &Lease) -> (Ending, StreamError) {
    if lease.cut_by_shutdown() {
        (Ending::Shutdown, StreamError::Shutdown)
    } else {
        (Ending::KeyNoLongerValid, StreamError::KeyNoLongerValid)
    }
}

/// The bytes a usage filter still holds back (an event the upstream never finished).
fn held_back(filter: &mut Option<UsageChunkFilter>) -> Vec<u8> {
    filter
        .as_mut()
        .map(UsageChunkFilter::finish)
        .unwrap_or_default()
}

/// The last event of a stream that failed midway, in the client's dialect and framing.
fn error_event((dialect, format): (Dialect, ResponseFormat), e: StreamError) -> Bytes {
    let message = e.to_string();
    let code = match e {
        StreamError::IdleTimeout => "upstream_idle_timeout",
        StreamError::Upstream => "upstream_stream_error",
        StreamError::KeyNoLongerValid => "key_no_longer_valid",
        StreamError::Shutdown => "gate_shutdown",
    };
    let error_type = match e {
        StreamError::KeyNoLongerValid => "authentication_error",
        StreamError::IdleTimeout | StreamError::Upstream | StreamError::Shutdown => "api_error",
    };
    let text = match (format, dialect) {
        (ResponseFormat::Sse, Dialect::Anthropic) => format!(
            "event: error\ndata: {}\n\n",
            serde_json::json!({"type": "error", "error": {"type": error_type, "message": message}})
        ),
        (ResponseFormat::Sse, _) => format!(
            "data: {}\n\n",
            serde_json::json!({"error": {"message": message, "type": error_type, "param": null, "code": code}})
        ),
        _ => format!("{}\n", serde_json::json!({ "error": message })),
    };
    Bytes::from(text)
}

impl Drop for GateBody {
    fn drop(&mut self) {
        let Some((mut ctx, sink)) = self.audit.take() else {
            return;
        };
        let ending = match self.ending {
            Some(e) => e,
            None if self.is_end_stream() => Ending::Complete,
            // A buffered body hyper never polled (HEAD, or a client gone before the answer) was
            // still answered in full as far as the gate is concerned.
            None if matches!(self.kind, Kind::Full(_)) => Ending::Complete,
            None if sink.is_cutting() => Ending::Shutdown,
            None => Ending::ClientGone,
        };
        let ending = match &self.tap {
            // The upstream said it failed, in a body that began as a success.
            Some(tap) if ending == Ending::Complete && tap.reported_error() => {
                Ending::UpstreamReported
            }
            // The generation's stream stopped in order but before its end.
            Some(tap)
                if ending == Ending::Complete
                    && self.reading == Reading::Generation
                    && !tap.saw_end() =>
            {
                Ending::UpstreamIncomplete
            }
            _ => ending,
        };
        if ctx.reason.is_none() {
            ctx.reason = ending.reason();
        }
        let usage = match &self.tap {
            Some(tap) if self.reading != Reading::Errors => tap.finish(),
            _ => corral_policy::usage::Usage::default(),
        };
        if let Some(tap) = &self.tap {
            // Cut short (the client left, or the stream was cut): the counts come last, so
            // the key's token quotas are charged for what was streamed.
            if self.reading == Reading::Generation && !tap.saw_end() {
                ctx.cut_short_events = Some(tap.events());
            }
        }
        sink.emit(ctx, ending, self.bytes_out, usage);
    }
}
