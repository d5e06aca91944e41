//! Model names that Ollama reads as a manifest's digest rather than as a name.
//!
//! Recent Ollama servers resolve a model reference that is a manifest blob's sha256 — whole,
//! or any unambiguous prefix of 12 or more hex digits, bare or as `sha256-<hex>` /
//! `sha256:<hex>`, after a runner (`ollama:sha256-<hex>`), or as the model part of a name on
//! the default registry (`library/<hex>`, `ollama.com/library/<hex>:latest`) — to the model
//! whose manifest that is (`manifest.ResolveDigestReference`, `server.digestModelName`). Such
//! a name says nothing about which model it is: not its name for the allow-list, nor whether
//! it is a cloud model's stub.

use super::{split_tag, without_scheme};

/// Fewest hex digits of a digest prefix Ollama resolves.
const MIN_DIGEST_PREFIX: usize = 12;
/// Hex digits in a whole sha256 digest.
const DIGEST_HEX: usize = 64;

/// True when Ollama would take `name` as a reference to a manifest by its digest.
pub fn is_digest_reference(name: &str) -> bool {
    let base = without_source_suffix(name.trim());
    if is_digest_like(base) {
        return true;
    }
    // `<runner>:<digest>`: Ollama cuts at the first `:`.
    if base.split_once(':').is_some_and(|(_, d)| is_digest_like(d)) {
        return true;
    }
    names_digest_on_default_registry(base)
}

/// `name` without the explicit source Ollama takes off first (`modelref.ParseRef`): a last
/// `:`-part that is `local` or `cloud`, in any case.
fn without_source_suffix(name: &str) -> &str {
    match name.rsplit_once(':') {
        Some((base, suffix))
            if ["local", "cloud"]
                .iter()
                .any(|s| suffix.trim().eq_ignore_ascii_case(s)) =>
        {
            base
        }
        _ => name,
    }
}

/// A digest as `manifest.ResolveDigestReference` reads one: the first `-` read as `:`, an
/// optional `sha256:`, then 12 to 64 hex digits, in any case.
fn is_digest_like(s: &str) -> bool {
    let s = s.trim().to_ascii_lowercase().replacen('-', ":", 1);
    let hex = s.strip_prefix("sha256:").unwrap_or(&s);
    (MIN_DIGEST_PREFIX..=DIGEST_HEX).contains(&hex.len())
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A name on the default registry, in the `library` namespace, with no tag or `latest`, whose
/// model part is a digest: Ollama looks that digest up before the name
/// (`manifest.ResolveDigestReferenceName`).
fn names_digest_on_default_registry(name: &str) -> bool {
    let (untagged, tag) = split_tag(without_scheme(name));
    if tag.is_some_and(|t| !t.eq_ignore_ascii_case("latest")) {
        return false;
    }
    let library = |ns: &str| ns.eq_ignore_ascii_case("library");
    let default_host = |h: &str| {
        h.eq_ignore_ascii_case("registry.ollama.ai") || h.eq_ignore_ascii_case("ollama.com")
    };
    let parts: Vec<&str> = untagged.split('/').collect();
    let model = match parts.as_slice() {
        [model] => model,
        [ns, model] if library(ns) => model,
        [host, ns, model] if default_host(host) && library(ns) => model,
        _ => return false,
    };
    is_digest_like(model)
}
