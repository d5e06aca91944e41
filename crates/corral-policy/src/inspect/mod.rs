//! Request-body inspection helpers.
//!
//! [`multipart_model`] reads just enough of a `multipart/form-data` body to find its `model`
//! field. Anything whose meaning a different multipart parser (Go's `mime/multipart`, which
//! Ollama uses) could read differently is refused rather than guessed: a repeated `model`
//! field, RFC 2231 `name*=` parameters, transfer encodings, a body that does not end with
//! the closing boundary.

pub mod json;

pub use json::{parse_body, parse_body_as_go, rewrite_members, BodyJsonError};

/// Why a multipart body could not be inspected. `Display` is safe to show to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    #[error("content type must be multipart/form-data with a boundary")]
    NotMultipart,
    #[error("malformed multipart body")]
    Malformed,
    #[error("multipart body has more than one \"model\" field")]
    DuplicateModel,
    #[error("multipart part uses an encoding that is not accepted")]
    UnsupportedEncoding,
    #[error("multipart \"model\" field is not a valid model name")]
    BadModel,
    #[error("multipart body has too many parts or headers")]
    TooComplex,
}

/// Most parts read before giving up.
const MAX_PARTS: usize = 256;
/// Most header lines per part.
const MAX_HEADERS: usize = 16;
/// Longest header line.
const MAX_HEADER_LINE: usize = 1024;
/// Longest boundary (RFC 2046 allows 70).
const MAX_BOUNDARY: usize = 70;

/// Finds the `model` field of a `multipart/form-data` body. `Ok(None)` when the body is
/// well-formed and has no such field.
pub fn multipart_model(content_type: &str, body: &[u8]) -> Result<Option<String>, InspectError> {
    let boundary = boundary(content_type)?;
    let delim = [b"--".as_slice(), boundary.as_bytes()].concat();

    // Preamble: everything before the first delimiter line is ignored, as by Go. The line
    // ending of that first delimiter line fixes the mode for the rest of the body, as Go's
    // reader does: CRLF bodies need "\r\n--boundary", LF bodies "\n--boundary".
    let mut pos = find_delimiter(body, &delim, 0, None).ok_or(InspectError::Malformed)?;
    let mut crlf: Option<bool> = None;
    let mut model: Option<String> = None;
    let mut parts = 0usize;
    loop {
        pos += delim.len();
        if body[pos..].starts_with(b"--") {
            return Ok(model);
        }
        let (after, line_crlf) = skip_line_end(body, pos)?;
        let mode = *crlf.get_or_insert(line_crlf);
        if mode != line_crlf {
            return Err(InspectError::Malformed);
        }
        pos = after;
        parts += 1;
        if parts > MAX_PARTS {
            return Err(InspectError::TooComplex);
        }
        let (content_start, header) = read_headers(body, pos)?;
        let next = find_delimiter(body, &delim, content_start, Some(mode))
            .ok_or(InspectError::Malformed)?;
        // The line break before the delimiter belongs to the delimiter.
        let nl_len = if mode { 2 } else { 1 };
        let content_end = next.saturating_sub(nl_len).max(content_start);
        if header.is_model {
            if model.is_some() {
                return Err(InspectError::DuplicateModel);
            }
            let raw = &body[content_start..content_end];
            let s = std::str::from_utf8(raw).map_err(|_| InspectError::BadModel)?;
            if s.is_empty()
                || s.len() > crate::model::MAX_NAME_LEN
                || s.chars().any(char::is_control)
            {
                return Err(InspectError::BadModel);
            }
            model = Some(s.to_string());
        }
        pos = next;
    }
}

/// Extracts the boundary parameter of a `multipart/form-data` content type.
fn boundary(content_type: &str) -> Result<String, InspectError> {
    let mut params = content_type.split(';');
    let mime = params.next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return Err(InspectError::NotMultipart);
    }
    let mut found: Option<String> = None;
    for p in params {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        if !k.trim().eq_ignore_ascii_case("boundary") {
            continue;
        }
        if found.is_some() {
            return Err(InspectError::NotMultipart);
        }
        let v = v.trim();
        let v = match v.strip_prefix('"') {
            Some(q) => q.strip_suffix('"').ok_or(InspectError::NotMultipart)?,
            None => v,
        };
        if v.is_empty() || v.len() > MAX_BOUNDARY || !v.bytes().all(is_boundary_byte) {
            return Err(InspectError::NotMultipart);
        }
        found = Some(v.to_string());
    }
    found.ok_or(InspectError::NotMultipart)
}

fn is_boundary_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b)
}

/// Position of the next delimiter at `from` or later. Before the mode is known (the first
/// delimiter) it may start the body or any line; afterwards it must follow the mode's line
/// break. Only line starts are compared, which keeps the scan linear in the body length.
fn find_delimiter(body: &[u8], delim: &[u8], from: usize, crlf: Option<bool>) -> Option<usize> {
    let is_delim = |at: usize| {
        body.get(at..at + delim.len()) == Some(delim)
            && match crlf {
                None => at == 0 || body[at - 1] == b'\n',
                Some(true) => at >= 2 && body[at - 2..at] == *b"\r\n",
                Some(false) => at >= 1 && body[at - 1] == b'\n',
            }
    };
    if crlf.is_none() && from == 0 && is_delim(0) {
        return Some(0);
    }
    let mut i = from;
    while i < body.len() {
        let nl = body[i..].iter().position(|&b| b == b'\n')?;
        let at = i + nl + 1;
        if is_delim(at) {
            return Some(at);
        }
        i = at;
    }
    None
}

/// After a delimiter: optional transport padding (spaces, tabs) then CRLF or LF. Returns the
/// position after the line break and whether it was CRLF.
fn skip_line_end(body: &[u8], mut pos: usize) -> Result<(usize, bool), InspectError> {
    while matches!(body.get(pos), Some(b' ' | b'\t')) {
        pos += 1;
    }
    if body.get(pos..pos + 2) == Some(b"\r\n".as_slice()) {
        return Ok((pos + 2, true));
    }
    match body.get(pos) {
        Some(b'\n') => Ok((pos + 1, false)),
        _ => Err(InspectError::Malformed),
    }
}

struct PartHeader {
    is_model: bool,
}

/// Reads a part's header block; returns the offset of its content.
fn read_headers(body: &[u8], mut pos: usize) -> Result<(usize, PartHeader), InspectError> {
    let mut header = PartHeader { is_model: false };
    let mut seen_disposition = false;
    for _ in 0..=MAX_HEADERS {
        let rest = &body[pos..];
        let nl = rest
            .iter()
            .take(MAX_HEADER_LINE + 2)
            .position(|&b| b == b'\n');
        let Some(nl) = nl else {
            return Err(if rest.len() > MAX_HEADER_LINE {
                InspectError::TooComplex
            } else {
                InspectError::Malformed
            });
        };
        let line = &rest[..nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos += nl + 1;
        if line.is_empty() {
            return Ok((pos, header));
        }
        let line = std::str::from_utf8(line).map_err(|_| InspectError::Malformed)?;
        if line.starts_with([' ', '\t']) {
            // Folded header lines could hide a second disposition; nothing needs them.
            return Err(InspectError::Malformed);
        }
        let (name, value) = line.split_once(':').ok_or(InspectError::Malformed)?;
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-disposition") {
            if seen_disposition {
                return Err(InspectError::Malformed);
            }
            seen_disposition = true;
            header.is_model = disposition_is_model(value)?;
        } else if name.eq_ignore_ascii_case("content-transfer-encoding") {
            let v = value.trim().to_ascii_lowercase();
            if !matches!(v.as_str(), "7bit" | "8bit" | "binary") {
                return Err(InspectError::UnsupportedEncoding);
            }
        }
    }
    Err(InspectError::TooComplex)
}

/// Whether a `Content-Disposition` value names the form field `model`. Parameters are
/// matched case-insensitively; an extended `name*` parameter is refused because Go decodes
/// it and would see a name we did not.
fn disposition_is_model(value: &str) -> Result<bool, InspectError> {
    let mut is_model = false;
    let mut names = 0;
    for p in split_params(value).into_iter().skip(1) {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        let k = k.trim().to_ascii_lowercase();
        // `name*` and `name*0`, `name*1`...: RFC 2231 forms Go decodes and joins.
        if k.starts_with("name*") {
            return Err(InspectError::UnsupportedEncoding);
        }
        if k == "name" {
            names += 1;
            is_model = unquote(v.trim()) == "model";
        }
    }
    if names > 1 {
        return Err(InspectError::Malformed);
    }
    Ok(is_model)
}

/// The value of a parameter: a quoted string with its backslash escapes removed (as Go
/// does: `"mo\\del"` is `model`), or the token as is.
fn unquote(v: &str) -> String {
    let Some(inner) = v.strip_prefix('"').and_then(|x| x.strip_suffix('"')) else {
        return v.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut escaped = false;
    for c in inner.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    out
}

/// Splits on `;` outside double quotes.
fn split_params(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
