//! Request-target canonicalisation.
//!
//! The gate never repairs a suspicious target: it accepts only targets that are already in
//! the one canonical form Ollama's router sees, and refuses everything else. A target that
//! passes [`check`] is forwarded upstream byte for byte, so there is no second parser whose
//! interpretation could differ from ours.
//!
//! Accepted: origin-form (`/a/b`), ASCII only, segments made of `A-Z a-z 0-9 - . _ ~ : @ =`,
//! no empty, `.` or `..` segments, no trailing slash (except the root `/`), no query, no
//! fragment. The only percent-encoding accepted is `%3A`/`%3a` (an encoded `:`), because
//! OpenAI SDKs encode the colon of a model tag in `/v1/models/{model}`; no other Ollama route
//! needs a `%`, and no fixed route segment contains a `:`, so an encoded colon elsewhere can
//! only miss the route table.

/// Longest request-target accepted, in bytes.
pub const MAX_TARGET_LEN: usize = 2048;

/// Why a request-target was refused. `Display` is safe to show to clients: it never echoes
/// the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("empty request path")]
    Empty,
    #[error("request target longer than 2048 bytes")]
    TooLong,
    #[error("request target must be an absolute path starting with '/'")]
    NotOriginForm,
    #[error("query strings are not accepted on any route")]
    Query,
    #[error("fragments are not accepted in a request target")]
    Fragment,
    #[error("non-ASCII bytes in request path")]
    NonAscii,
    #[error("control characters in request path")]
    ControlChar,
    #[error("backslash in request path")]
    Backslash,
    #[error("percent-encoding in request path is not accepted")]
    PercentEncoding,
    #[error("'.' or '..' segment in request path")]
    DotSegment,
    #[error("empty segment ('//') in request path")]
    EmptySegment,
    #[error("trailing slash in request path")]
    TrailingSlash,
    #[error("';' parameters in request path are not accepted")]
    MatrixParam,
    #[error("disallowed character in request path")]
    BadChar,
}

/// Checks that `target` (the raw request-target as received) is a canonical path and returns
/// it. On success the returned slice is the whole target: nothing was stripped or decoded.
pub fn check(target: &str) -> Result<&str, PathError> {
    if target.is_empty() {
        return Err(PathError::Empty);
    }
    if target.len() > MAX_TARGET_LEN {
        return Err(PathError::TooLong);
    }
    let bytes = target.as_bytes();
    // Byte classes first, so an encoded or raw control byte is named as such whatever its
    // position, before any structural reading of the target.
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            0x80..=0xff => return Err(PathError::NonAscii),
            0x00..=0x1f | 0x7f => return Err(PathError::ControlChar),
            b'\\' => return Err(PathError::Backslash),
            b'?' => return Err(PathError::Query),
            b'#' => return Err(PathError::Fragment),
            b';' => return Err(PathError::MatrixParam),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3);
                if !matches!(hex, Some(b"3A") | Some(b"3a")) {
                    return Err(PathError::PercentEncoding);
                }
            }
            _ => {}
        }
    }
    if bytes[0] != b'/' {
        return Err(PathError::NotOriginForm);
    }
    if target == "/" {
        return Ok(target);
    }
    if target.ends_with('/') {
        return Err(PathError::TrailingSlash);
    }
    for segment in target[1..].split('/') {
        if segment.is_empty() {
            return Err(PathError::EmptySegment);
        }
        // Any all-dot segment: `.` and `..` are dot segments; longer runs are refused too
        // because some file-system layers collapse them.
        if segment.bytes().all(|b| b == b'.') {
            return Err(PathError::DotSegment);
        }
        if !segment.bytes().all(is_segment_byte) {
            return Err(PathError::BadChar);
        }
    }
    Ok(target)
}

fn is_segment_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b'@' | b'=' | b'%')
}

/// Decodes the only escape [`check`] admits (`%3A`) in a path parameter.
pub fn decode_param(param: &str) -> String {
    param.replace("%3A", ":").replace("%3a", ":")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
