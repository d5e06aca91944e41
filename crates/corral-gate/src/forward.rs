//! The upstream side: the fresh request built for each forwarded call (canonical path,
//! allow-listed headers, the body the policy saw), sent on a pooled connection.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_LENGTH};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;

use http_body_util::LengthLimitError;

use crate::body::BodyError;
use crate::headers::upstream_request_headers;
use crate::reply::Failure;
use crate::stream::BoxError;
use crate::upstream::{Pool, PoolError, UpstreamBody};
use corral_policy::config::UpstreamAddr;

/// Request body sent upstream.
pub enum UpBody {
    /// A body the gate has read (and inspected) in full; `None` once sent or when empty.
    Full(Option<Bytes>),
    /// A binary upload streamed through under the policy's size limit.
    Stream(UnsyncBoxBody<Bytes, BoxError>),
}

impl Body for UpBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            UpBody::Full(slot) => Poll::Ready(slot.take().map(|b| Ok(Frame::data(b)))),
            UpBody::Stream(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpBody::Full(slot) => slot.is_none(),
            UpBody::Stream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            UpBody::Full(None) => SizeHint::with_exact(0),
            UpBody::Stream(body) => body.size_hint(),
        }
    }
}

pub type UpstreamClient = Arc<Pool>;

/// Idle upstream connections kept for reuse.
const MAX_IDLE: usize = 256;

/// The pooled client for the upstream.
pub fn client(upstream: &UpstreamAddr, connect_timeout: Duration) -> UpstreamClient {
    Pool::new(upstream.host(), upstream.port(), connect_timeout, MAX_IDLE)
}

/// Builds the upstream request. `declared_length` is the client's `Content-Length` for a
/// streamed binary body (a full body carries its own exact length).
pub fn build_request(
    host: &HeaderValue,
    method: Method,
    path: PathAndQuery,
    client_headers: &HeaderMap,
    body: UpBody,
    declared_length: Option<u64>,
) -> Result<Request<UpBody>, Failure> {
    // Origin-form: the connection already goes to the upstream, and `Host` names it.
    let uri = Uri::from(path);
    let mut headers = upstream_request_headers(client_headers, host);
    match &body {
        UpBody::Full(Some(b)) => {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(b.len() as u64));
        }
        UpBody::Full(None) => {
            if method == Method::POST || method == Method::DELETE {
                headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
            }
        }
        UpBody::Stream(_) => {
            if let Some(n) = declared_length {
                headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
            }
        }
    }
    let mut req = Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    Ok(req)
}

/// Sends a request, waiting at most `idle_timeout` at a time (for the response head; for a
/// streamed upload also between its pieces, which may take far longer as a whole). A connection
/// failure is a 502, a silent upstream a 504; neither says more to the client. A streamed
/// request body that fails is the client's doing: over the policy's limit 413, not sent in
/// time 408, unreadable 400; a client that goes away mid-body is recorded as gone (499). The
/// body's connection returns to the pool once the body has been read to its end.
pub async fn send(
    client: &UpstreamClient,
    req: Request<UpBody>,
    idle_timeout: Duration,
) -> Result<Response<UpstreamBody>, Failure> {
    match client.send(req, idle_timeout).await {
        Ok(sent) => Ok(sent),
        Err(PoolError::Timeout) => {
            tracing::warn!("upstream idle for longer than the idle timeout before its answer");
            Err(Failure::upstream_timeout())
        }
        Err(PoolError::Body(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(BodyError::TooLarge.failure())
        }
        Err(PoolError::Body(e)) if client_left(e.as_ref()) => Err(Failure::new(
            crate::proxy::CLIENT_CLOSED_REQUEST,
            "client_disconnected",
            "the client closed the connection before sending the whole request body",
        )),
        Err(PoolError::Body(_) | PoolError::BodyLength) => Err(BodyError::Read.failure()),
        Err(PoolError::BodyTimeout) => Err(BodyError::Timeout.failure()),
        Err(e) => {
            tracing::warn!(error = %e, connect = e.is_connect(), "upstream request failed");
            Err(Failure::upstream_unavailable())
        }
    }
}

/// Whether a streamed request body failed because its client went away mid-body (the
/// connection closed or reset), rather than because it sent something unreadable.
fn client_left(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(err) = cause {
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_canceled() {
                return true;
            }
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            ) {
                return true;
            }
        }
        cause = err.source();
    }
    false
}

/// The canonical upstream path for a matched route: its checked path (`RouteMatch::path`),
/// which `corral_policy::path::check` guarantees is canonical and query-free.
pub fn canonical_path(checked_target: &str) -> Result<PathAndQuery, Failure> {
    PathAndQuery::from_maybe_shared(Bytes::copy_from_slice(checked_target.as_bytes()))
        .map_err(|_| Failure::new(400, "bad_path", "bad request path"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use http::header::{AUTHORIZATION, HOST};

    #[test]
    fn request_carries_only_what_it_should() {
        let up = UpstreamAddr::parse("http://127.0.0.1:11434").unwrap();
        let host = HeaderValue::from_str(&up.authority()).unwrap();
        let mut client_headers = HeaderMap::new();
        client_headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer crl_a_b"));
        client_headers.insert(HOST, HeaderValue::from_static("gate.example"));
        client_headers.insert(CONTENT_LENGTH, HeaderValue::from_static("999"));
        let req = build_request(
            &host,
            Method::POST,
            canonical_path("/api/chat").unwrap(),
            &client_headers,
            UpBody::Full(Some(Bytes::from_static(b"{}"))),
            None,
        )
        .unwrap();
        assert_eq!(req.uri(), "/api/chat");
        assert_eq!(req.headers()[HOST], "127.0.0.1:11434");
        assert_eq!(req.headers()[CONTENT_LENGTH], "2");
        assert!(!req.headers().contains_key(AUTHORIZATION));
    }
}
