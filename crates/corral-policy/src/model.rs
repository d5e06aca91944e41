//! Model names and allow-list patterns.
//!
//! Names are compared in one normal form so that `Llama3.2`, `llama3.2:latest`,
//! `registry.ollama.ai/library/llama3.2:latest` and `ollama.com/library/llama3.2` are the same
//! model, as they are to Ollama.
//! Foreign registries (`10.0.0.5:8443/attacker/x`) keep their host so a pattern for a
//! library model can never match them.

use std::borrow::Cow;
use std::fmt;

mod digest;

pub use digest::is_digest_reference;

/// The registry Ollama assumes when a name carries none.
const DEFAULT_REGISTRY: &str = "registry.ollama.ai/";
/// The default registry's other name: Ollama reads `ollama.com/<namespace>/<model>` as the
/// same model as `registry.ollama.ai/<namespace>/<model>` (its `manifests-v2` store keeps
/// models under `ollama.com`).
const DEFAULT_REGISTRY_ALIAS: &str = "ollama.com/";
/// The namespace Ollama assumes when a name carries none.
const DEFAULT_NAMESPACE: &str = "library/";

/// Longest model name or pattern accepted, in bytes.
pub const MAX_NAME_LEN: usize = 512;

/// Normal form of a model name: lower-case, a URL scheme before the registry host removed
/// (see [`without_scheme`]), default registry (`registry.ollama.ai/`, or its other name
/// `ollama.com/`) and `library/` namespace removed, `:latest`
/// added when no tag is given. `library/` is the namespace only when the model name follows
/// it: Ollama reads `library/someone/x` as host `library`, namespace `someone`, so it keeps
/// its three parts.
pub fn normalize(name: &str) -> String {
    normalized(name).into_owned()
}

/// [`normalize`], borrowing `name` when it is already in normal form (the common case for
/// names the gate has normalised once already).
pub fn normalized(name: &str) -> Cow<'_, str> {
    let already = !name.bytes().any(|b| b.is_ascii_uppercase())
        && (!name.contains("://") || without_scheme(name).len() == name.len())
        && strip_default_registry(name).is_none()
        && strip_namespace(name).is_none()
        && split_tag(name).1.is_some_and(|t| !t.is_empty());
    if already {
        return Cow::Borrowed(name);
    }
    Cow::Owned(normalize_owned(name))
}

fn normalize_owned(name: &str) -> String {
    let mut rest = without_scheme(name);
    if let Some(r) = strip_default_registry(rest) {
        rest = r;
    }
    if let Some(r) = strip_namespace(rest) {
        rest = r;
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

/// `name` without a URL scheme in front of its registry host, as Ollama reads it: a name of
/// three or more parts (`host/namespace/model`) has its host part cut at the first `://`, so
/// `https://registry.ollama.ai/library/x` is the model `x`. Other names are returned as they
/// are.
pub fn without_scheme(name: &str) -> &str {
    let (untagged, _) = split_tag(name);
    let Some(last) = untagged.rfind('/') else {
        return name;
    };
    let Some(second) = untagged[..last].rfind('/') else {
        return name;
    };
    match untagged[..second].find("://") {
        Some(i) => &name[i + 3..],
        None => name,
    }
}

/// `s` after a leading `library/` (any case) when that is the namespace, i.e. only the model
/// name follows it.
fn strip_namespace(s: &str) -> Option<&str> {
    strip_prefix_ignore_case(s, DEFAULT_NAMESPACE).filter(|r| !r.contains('/'))
}

/// `s` after a leading default registry host (`registry.ollama.ai/` or `ollama.com/`, any
/// case).
fn strip_default_registry(s: &str) -> Option<&str> {
    strip_prefix_ignore_case(s, DEFAULT_REGISTRY)
        .or_else(|| strip_prefix_ignore_case(s, DEFAULT_REGISTRY_ALIAS))
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
    split_tag(normalized).1.is_some_and(is_cloud_tag_part)
}

/// True for a tag (the part after `:`) that names a cloud model.
pub fn is_cloud_tag_part(tag: &str) -> bool {
    tag == "cloud" || tag.ends_with("-cloud")
}

/// An allow-list entry: a glob over normalised model names.
///
/// The name part and the tag are matched separately, as Ollama splits them (the tag is what
/// follows the last `:` after the last `/`): `*` matches any run of characters within its
/// part, `?` exactly one; a pattern without a tag matches every tag of the names its name
/// part matches (`llama3.2` means "llama3.2, any tag"). The pattern `*` alone matches every
/// model.
///
/// A name with a registry host (`host/namespace/model`: two or more `/` once the default
/// registry is removed) is matched only by a pattern that names a host itself (its first part
/// contains `.` or `:` or is `localhost`, or it has two or more `/`), or by `*`: a wildcard
/// written for library models never reaches another registry (`qwen*` does not match
/// `qwen.example.com/x/y`, nor `llama3.2` match `llama3.2:8443/attacker/x`). A pattern that
/// names the default registry stays on it (`registry.ollama.ai/*` matches `llama3.2` and
/// `someone/x`, not `hf.co/a/b`), and one that names the `library` namespace matches library
/// models only (`library/*` does not match `someone/x`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPattern {
    raw: String,
    /// Glob over the name without its tag (`None` for `*`, which matches everything).
    name: Option<String>,
    /// Glob over the tag; `None` for every tag.
    tag: Option<String>,
    /// The pattern names a registry host.
    host: bool,
    /// The pattern names the `library` namespace (`library/*`): it matches library models
    /// only, never another namespace or registry.
    library: bool,
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
    #[error("contains {0:?}; model names use letters, digits, '_', '-', '.', ':' and '/' (globs: '*', '?')")]
    NotNameChar(char),
    #[error("has an empty part (a name, namespace or tag around '/' or ':'): it can never match")]
    EmptyPart,
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
        if let Some(c) = raw.chars().find(|c| {
            !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/' | '*' | '?'))
        }) {
            return Err(PatternError::NotNameChar(c));
        }
        let mut g = without_scheme(raw).to_ascii_lowercase();
        // A pattern that spells out the default registry or namespace is limited to it:
        // `registry.ollama.ai/*` is not `*`, which also reaches every other registry.
        let mut scoped = false;
        if let Some(rest) = strip_default_registry(&g).map(str::to_string) {
            g = rest;
            scoped = true;
        }
        let mut library = false;
        if let Some(rest) = strip_namespace(&g) {
            g = rest.to_string();
            library = true;
        }
        if g == "*" && !scoped && !library {
            return Ok(ModelPattern::any_as(raw));
        }
        let (name, tag) = split_tag(&g);
        if name.is_empty() || name.split('/').any(str::is_empty) || tag == Some("") {
            return Err(PatternError::EmptyPart);
        }
        Ok(ModelPattern {
            raw: raw.to_string(),
            host: names_host(name),
            name: Some(name.to_string()),
            tag: tag.map(str::to_string),
            library,
        })
    }

    /// The pattern `*`, matching every model.
    pub fn any() -> ModelPattern {
        ModelPattern::any_as("*")
    }

    fn any_as(raw: &str) -> ModelPattern {
        ModelPattern {
            raw: raw.to_string(),
            name: None,
            tag: None,
            host: true,
            library: false,
        }
    }

    /// Whether the pattern matches every model (`*`), including one named by its digest
    /// ([`is_digest_reference`]), which no other pattern can vouch for.
    pub fn matches_everything(&self) -> bool {
        self.name.is_none()
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The tag this pattern requires when it is a plain tag without glob characters.
    pub fn literal_tag(&self) -> Option<&str> {
        self.tag.as_deref().filter(|t| !t.contains(['*', '?']))
    }

    /// Whether the pattern matches `name` (any form; it is normalised here).
    pub fn matches(&self, name: &str) -> bool {
        self.matches_normalized(&normalized(name))
    }

    /// Whether the pattern matches an already normalised name.
    pub fn matches_normalized(&self, normalized: &str) -> bool {
        let Some(pat_name) = &self.name else {
            return true;
        };
        let (name, tag) = split_tag(normalized);
        let slashes = name.matches('/').count();
        if (!self.host && slashes >= 2) || (self.library && slashes >= 1) {
            return false;
        }
        if !glob_match(pat_name.as_bytes(), name.as_bytes()) {
            return false;
        }
        match (&self.tag, tag) {
            (None, _) => true,
            (Some(p), Some(t)) => glob_match(p.as_bytes(), t.as_bytes()),
            (Some(_), None) => false,
        }
    }
}

/// Whether a pattern's name part names a registry host: its first part looks like one
/// (`.` or `:` in it, or `localhost`), or it has a namespace and a model after it.
fn names_host(name: &str) -> bool {
    let first = name.split('/').next().unwrap_or("");
    name.contains('/') && (first.contains(['.', ':']) || first == "localhost")
        || name.matches('/').count() >= 2
}

impl fmt::Display for ModelPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Iterative glob with single-star backtracking: linear in practice, no recursion, so a
/// hostile pattern or name cannot blow the stack or run exponentially.
pub(crate) fn glob_match(pat: &[u8], text: &[u8]) -> bool {
    glob_match_by(pat, text, |b| b)
}

/// [`glob_match`] with each byte of `text` lower-cased first (`pat` is lower-case already).
pub(crate) fn glob_match_ignore_ascii_case(pat: &[u8], text: &[u8]) -> bool {
    glob_match_by(pat, text, |b| b.to_ascii_lowercase())
}

fn glob_match_by(pat: &[u8], text: &[u8], fold: impl Fn(u8) -> u8) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == fold(text[t]) => {
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
