//! Filtering of model listings to the models a caller may use.
//!
//! A listing is inventory: a caller who may not use a model should not learn it exists.
//! Entries are kept only when the policy allows the model and, for a policy without cloud
//! access, the model is not a cloud one. Entries whose name cannot be read are dropped.

use serde_json::{Map, Value};

use crate::config::Policy;
use crate::model;
use crate::route::Listing;

/// Why a listing could not be filtered; the gate answers 502 without forwarding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ListingError {
    #[error("upstream listing is not valid JSON")]
    InvalidJson,
    #[error("upstream listing has an unexpected shape")]
    UnexpectedShape,
}

/// Drops the entries of `listing` that `policy` does not allow and re-serialises it.
/// `is_remote` receives normalised names (see [`remote_models`]).
pub fn filter(
    policy: &Policy,
    listing: Listing,
    body: &[u8],
    is_remote: &dyn Fn(&str) -> bool,
) -> Result<Vec<u8>, ListingError> {
    let mut doc: Value = serde_json::from_slice(body).map_err(|_| ListingError::InvalidJson)?;
    let Value::Object(top) = &mut doc else {
        return Err(ListingError::UnexpectedShape);
    };
    let (key, name_keys): (&str, &[&str]) = match listing {
        Listing::Tags | Listing::Ps => ("models", &["name", "model"]),
        Listing::V1Models => ("data", &["id"]),
    };
    match top.get_mut(key) {
        Some(Value::Array(entries)) => {
            entries.retain(|e| keep(policy, e, name_keys, is_remote));
            for e in entries.iter_mut().filter_map(Value::as_object_mut) {
                hide_parent(policy, e, is_remote);
            }
        }
        Some(Value::Null) | None => {}
        Some(_) => return Err(ListingError::UnexpectedShape),
    }
    serde_json::to_vec(&doc).map_err(|_| ListingError::UnexpectedShape)
}

fn keep(
    policy: &Policy,
    entry: &Value,
    name_keys: &[&str],
    is_remote: &dyn Fn(&str) -> bool,
) -> bool {
    let Value::Object(e) = entry else {
        return false;
    };
    // Every name an entry carries must be allowed: `name` and `model` normally agree, and
    // if they do not, the stricter reading wins.
    let names: Vec<&str> = name_keys
        .iter()
        .filter_map(|k| e.get(*k).and_then(Value::as_str))
        .collect();
    if names.is_empty() {
        return false;
    }
    for n in &names {
        if !policy.allows_model(n) {
            return false;
        }
        if !policy.cloud {
            let norm = model::normalize(n);
            if model::is_cloud_name(&norm) || is_remote(&norm) || is_remote_entry(e) {
                return false;
            }
        }
    }
    true
}

/// Blanks `details.parent_model` (to `""`, Ollama's value for a model made from a file) when
/// it names a model the caller may not see: a model made `FROM` another one names it there,
/// and the listing would otherwise tell of a model it leaves out.
fn hide_parent(policy: &Policy, e: &mut Map<String, Value>, is_remote: &dyn Fn(&str) -> bool) {
    let Some(Value::Object(details)) = e.get_mut("details") else {
        return;
    };
    let Some(parent) = details.get("parent_model").and_then(Value::as_str) else {
        return;
    };
    if parent.is_empty() {
        return;
    }
    let visible = policy.allows_model(parent)
        && (policy.cloud || {
            let norm = model::normalize(parent);
            !model::is_cloud_name(&norm) && !is_remote(&norm)
        });
    if !visible {
        details.insert("parent_model".into(), Value::String(String::new()));
    }
}

/// Entries that run on a remote host carry `remote_host` or `remote_model`.
fn is_remote_entry(e: &Map<String, Value>) -> bool {
    ["remote_host", "remote_model"].iter().any(|k| {
        e.get(*k)
            .is_some_and(|v| !v.is_null() && v.as_str() != Some(""))
    })
}

/// Normalised names of `/api/tags` entries that run remotely (`remote_host`/
/// `remote_model`), for the gate's catalogue behind `is_remote`. Invalid JSON yields none.
pub fn remote_models(body: &[u8]) -> Vec<String> {
    let Ok(Value::Object(top)) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let Some(Value::Array(entries)) = top.get("models") else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for e in entries
        .iter()
        .filter_map(Value::as_object)
        .filter(|e| is_remote_entry(e))
    {
        for k in ["name", "model"] {
            if let Some(n) = e.get(k).and_then(Value::as_str) {
                let n = model::normalize(n);
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
