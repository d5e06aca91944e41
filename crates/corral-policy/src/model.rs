//! Model names and allow-list patterns.
//!
//! Names are compared in one normal form so that `Llama3.2`, `llama3.2:latest` and
//! `registry.ollama.ai/library/llama3.2:latest` are the same model, as they are to Ollama.
//! Foreign registries (`10.0.0.5:8443/attacker/x`) keep their host so a pattern for a
//! library model can never match them.

use std::borrow::Cow;
use std::fmt;

/// The registry Ollama assumes when a name carries none.
const DEFAULT_REGISTRY: &str = "registry.ollama.ai/";
/// The namespace Ollama assumes when a name carries none.
const DEFAULT_NAMESPACE: &str = "library/";

/// Longest model name or pattern accepted, in bytes.
pub const MAX_NAME_LEN: usize = 512;

/// Normal form of a model name: lower-case, default registry and `library/` namespace
/// removed, `:latest` added when no tag is given.
pub fn normalize(name: &str) -> String {
    normalized(name).into_owned()
}

/// [`normalize`], borrowing `name` when it is already in normal form (the common case for
/// names the gate has normalised once already).
pub fn normalized(name: &str) -> Cow<'_, str> {
    let already = !name.bytes().any(|b| b.is_ascii_uppercase())
        && !name.starts_with(DEFAULT_REGISTRY)
        && !name.starts_with(DEFAULT_NAMESPACE)
        && split_tag(name).1.is_some_and(|t| !t.is_empty());
    if already {
        return Cow::Borrowed(name);
    }
    Cow::Owned(normalize_owned(name))
}

fn normalize_owned(name: &str) -> String {
    let mut rest = name;
    for prefix in [DEFAULT_REGISTRY, DEFAULT_NAMESPACE] {
        if let Some(r) = strip_prefix_ignore_case(rest, prefix) {
            rest = r;
        }
    }
    let tagged = split_tag(rest).1.is_some_and(|t| !t.is_empty());
    let mut n = String::with_capacity(rest.len() + ":latest".len());
    n.push_str(rest);
    n.make_ascii_lowercase();
    if !tagged {
        // A trailing `:` (`llama3.2:`) is an empty tag: replaced, not kept.
        if n.ends_with(':') {
            n.pop();
        }
        n.push_str(":latest");
    }
    n
}

/// `s` without `prefix` (lower-case ASCII), compared ignoring ASCII case.
fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Splits `name[:tag]`; the tag separator is the last `:` after the last `/`, so a registry
/// port (`host:8443/ns/x`) is never taken for a tag.
pub fn split_tag(name: &str) -> (&str, Option<&str>) {
    let start = name.rfind('/').map_or(0, |i| i + 1);
    match name[start..].rfind(':') {
        Some(i) => (&name[..start + i], Some(&name[start + i + 1..])),
        None => (name, None),
    }
}

/// True for Ollama cloud model tags: `cloud` or ending in `-cloud` (`gpt-oss:120b-cloud`).
/// Such models run on ollama.com under the server owner's account.
pub fn is_cloud_name(name: &str) -> bool {
    is_cloud_tag(&normalized(name))
}

/// [`is_cloud_name`] for a name already in normal form.
pub fn is_cloud_tag(normalized: &str) -> bool {
    match split_tag(normalized).1 {
        Some(tag) => tag == "cloud" || tag.ends_with("-cloud"),
        None => false,
    }
}

/// An allow-list entry: a glob over normalised model names.
///
/// `*` matches any run of characters (including `/` and `:`), `?` exactly one. A pattern
/// without a tag matches every tag of the name (`llama3.2` means `llama3.2:*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPattern {
    raw: String,
    glob: String,
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("must not be empty")]
    Empty,
    #[error("longer than 512 bytes")]
    TooLong,
    #[error("contains whitespace or control characters")]
    BadChar,
}

impl ModelPattern {
    /// Parses a pattern as written in the config file.
    pub fn parse(raw: &str) -> Result<ModelPattern, PatternError> {
        if raw.is_empty() {
            return Err(PatternError::Empty);
        }
        if raw.len() > MAX_NAME_LEN {
            return Err(PatternError::TooLong);
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(PatternError::BadChar);
        }
        let mut g = raw.to_ascii_lowercase();
        if let Some(rest) = g.strip_prefix(DEFAULT_REGISTRY) {
            g = rest.to_string();
        }
        if let Some(rest) = g.strip_prefix(DEFAULT_NAMESPACE) {
            g = rest.to_string();
        }
        if split_tag(&g).1.is_none() && !g.ends_with('*') {
            g.push_str(":*");
        }
        Ok(ModelPattern {
            raw: raw.to_string(),
            glob: g,
        })
    }

    /// The pattern `*`, matching every model.
    pub fn any() -> ModelPattern {
        ModelPattern {
            raw: "*".to_string(),
            glob: "*".to_string(),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether the pattern matches `name` (any form; it is normalised here).
    pub fn matches(&self, name: &str) -> bool {
        glob_match(self.glob.as_bytes(), normalize(name).as_bytes())
    }

    /// Whether the pattern matches an already normalised name.
    pub fn matches_normalized(&self, normalized: &str) -> bool {
        glob_match(self.glob.as_bytes(), normalized.as_bytes())
    }
}

impl fmt::Display for ModelPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Iterative glob with single-star backtracking: linear in practice, no recursion, so a
/// hostile pattern or name cannot blow the stack or run exponentially.
fn glob_match(pat: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
