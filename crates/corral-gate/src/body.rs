//! Request bodies: reading under a size limit and decoding `Content-Encoding` with a bounded
//! output, so the bytes inspected by the policy are exactly the bytes forwarded.

use std::io::Read;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, CONTENT_ENCODING, CONTENT_LENGTH};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

/// Compressed bodies above this size are decoded off the async runtime.
const DECODE_INLINE_MAX: usize = 64 * 1024;
/// zstd frames may ask for a window this large at most (16 MiB), bounding decoder memory.
const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// Why a request body was not accepted. Each maps to one client status.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    /// Over the policy's `max_body_bytes`; for a JSON body whose policy sets none (`admin`),
    /// over the most the gate reads to inspect one
    /// ([`corral_policy::config::DEFAULT_INSPECTED_BODY_LIMIT`]).
    #[error(
        "request body is larger than this key's policy allows (its max_body_bytes; a JSON body \
         is read up to 32 MiB when the policy sets no limit)"
    )]
    TooLarge,
    #[error("unsupported Content-Encoding; use gzip, zstd or none")]
    UnsupportedEncoding,
    #[error("request body could not be decoded as its Content-Encoding says")]
    BadEncoding,
    #[error("request body could not be read")]
    Read,
    #[error("request body was not received in time")]
    Timeout,
}

impl BodyError {
    /// The refusal for this error, in the words the client is shown.
    pub fn failure(self) -> crate::reply::Failure {
        let rule = match self {
            BodyError::TooLarge => "body_too_large",
            BodyError::UnsupportedEncoding => "unsupported_encoding",
            BodyError::BadEncoding => "bad_encoding",
            BodyError::Read => "bad_body",
            BodyError::Timeout => "body_timeout",
        };
        crate::reply::Failure::new(self.status(), rule, self.to_string())
    }

    pub fn status(&self) -> u16 {
        match self {
            BodyError::TooLarge => 413,
            BodyError::UnsupportedEncoding => 415,
            BodyError::BadEncoding | BodyError::Read => 400,
            BodyError::Timeout => 408,
        }
    }
}

/// A streamed request body that counts the bytes taken from it into `count`.
pub struct Counted<B> {
    inner: B,
    count: Arc<AtomicU64>,
}

impl<B> Counted<B> {
    pub fn new(inner: B, count: Arc<AtomicU64>) -> Counted<B> {
        Counted { inner, count }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Counted<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.count.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body's content coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

/// The request's `Content-Encoding`. Several values (stacked codings) and unknown codings are
/// refused: anything the gate cannot decode would reach upstream uninspected.
pub fn content_encoding(headers: &HeaderMap) -> Result<Encoding, BodyError> {
    let mut values = headers.get_all(CONTENT_ENCODING).iter();
    let Some(value) = values.next() else {
        return Ok(Encoding::Identity);
    };
    if values.next().is_some() {
        return Err(BodyError::UnsupportedEncoding);
    }
    let text = value
        .to_str()
        .map_err(|_| BodyError::UnsupportedEncoding)?
        .trim();
    if text.eq_ignore_ascii_case("identity") {
        Ok(Encoding::Identity)
    } else if text.eq_ignore_ascii_case("gzip") || text.eq_ignore_ascii_case("x-gzip") {
        Ok(Encoding::Gzip)
    } else if text.eq_ignore_ascii_case("zstd") {
        Ok(Encoding::Zstd)
    } else {
        Err(BodyError::UnsupportedEncoding)
    }
}

/// The declared `Content-Length`, if any and parseable (hyper has already refused malformed
/// framing on HTTP/1; this is for the early 413).
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Reads a whole body, failing with `TooLarge` as soon as more than `limit` bytes arrive.
pub async fn read_limited<B>(
    body: B,
    limit: usize,
    size_hint: Option<u64>,
) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes>,
{
    let mut body = std::pin::pin!(body);
    let hint = size_hint.unwrap_or(0).min(limit as u64) as usize;
    let mut first: Option<Bytes> = None;
    let mut buf: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Read)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        let have = first.as_ref().map_or(0, Bytes::len) + buf.as_ref().map_or(0, BytesMut::len);
        if have + data.len() > limit {
            return Err(BodyError::TooLarge);
        }
        // The common case is one chunk: keep it without copying.
        match (&mut first, &mut buf) {
            (None, None) => first = Some(data),
            (Some(f), None) => {
                let mut b = BytesMut::with_capacity(hint.max(f.len() + data.len()));
                b.extend_from_slice(f);
                b.extend_from_slice(&data);
                first = None;
                buf = Some(b);
            }
            (_, Some(b)) => b.extend_from_slice(&data),
        }
    }
    Ok(match (first, buf) {
        (_, Some(b)) => b.freeze(),
        (Some(f), None) => f,
        (None, None) => Bytes::new(),
    })
}

/// Decodes `data` to at most `limit` bytes (a decompression bomb is `TooLarge`). Large inputs
/// are decoded on the blocking pool.
pub async fn decode(encoding: Encoding, data: Bytes, limit: usize) -> Result<Bytes, BodyError> {
    if encoding == Encoding::Identity {
        return Ok(data);
    }
    if data.len() <= DECODE_INLINE_MAX {
        return decode_sync(encoding, &data, limit);
    }
    tokio::task::spawn_blocking(move || decode_sync(encoding, &data, limit))
        .await
        .map_err(|_| BodyError::BadEncoding)?
}

/// The synchronous decoder behind [`decode`].
pub fn decode_sync(encoding: Encoding, data: &[u8], limit: usize) -> Result<Bytes, BodyError> {
    let reader: Box<dyn Read + '_> = match encoding {
        Encoding::Identity => return Ok(Bytes::copy_from_slice(data)),
        Encoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(data)),
        Encoding::Zstd => {
            let mut d = zstd::stream::read::Decoder::with_buffer(data)
                .map_err(|_| BodyError::BadEncoding)?;
            d.window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(|_| BodyError::BadEncoding)?;
            Box::new(d)
        }
    };
    let mut out = Vec::with_capacity((data.len() * 4).min(limit).max(64));
    let read = reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| BodyError::BadEncoding)?;
    if read > limit {
        return Err(BodyError::TooLarge);
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
