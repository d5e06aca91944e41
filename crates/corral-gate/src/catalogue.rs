//! The gate's view of the upstream's models, used to tell remote (cloud) models from local ones
//! when a policy refuses cloud models by something other than the `:cloud` tag.
//!
//! It is updated from every `/api/tags` response that passes through the gate, and refreshed
//! from upstream before a request that names a model the catalogue does not know, at most once
//! per [`REFRESH_EVERY`] (so random model names cannot make the gate hammer the upstream), or
//! per [`RETRY_FAILED`] after a refresh that failed (an upstream that is starting, restarting or
//! briefly down is asked again soon after it is back, not half a minute later).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use corral_policy::model::{normalize, normalized};
use serde::Deserialize;

use crate::reply::Failure;

/// Shortest interval between two catalogue refreshes triggered by unknown model names.
pub const REFRESH_EVERY: Duration = Duration::from_secs(30);
/// Shortest interval between two refreshes after one that failed.
pub const RETRY_FAILED: Duration = Duration::from_secs(1);

#[derive(Default)]
struct State {
    known: HashSet<String>,
    remote: HashSet<String>,
    fetched: Option<Instant>,
    /// The last refresh failed: a model not in `known` may be remote for all the gate knows.
    failed: bool,
    /// The last refresh got no answer at all (the upstream is down or silent): what the
    /// requests it cannot verify are told.
    unanswered: Option<Failure>,
}

impl State {
    fn is_stale(&self, now: Instant) -> bool {
        let every = if self.failed {
            RETRY_FAILED
        } else {
            REFRESH_EVERY
        };
        self.fetched
            .is_none_or(|t| now.saturating_duration_since(t) >= every)
    }
}

/// Model names known upstream, normalised.
pub struct Catalogue {
    state: ArcSwap<State>,
    /// One refresh at a time; waiters re-check freshness after taking it.
    refresh: tokio::sync::Mutex<()>,
}

#[derive(Deserialize)]
struct Tags {
    #[serde(default)]
    models: Vec<TagEntry>,
}

#[derive(Deserialize)]
struct TagEntry {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    model: Option<String>,
}

impl Default for Catalogue {
    fn default() -> Self {
        Catalogue {
            state: ArcSwap::from_pointee(State::default()),
            refresh: tokio::sync::Mutex::new(()),
        }
    }
}

impl Catalogue {
    /// Replaces the catalogue from an `/api/tags` body. An unreadable body leaves it unchanged
    /// and counts as a failed refresh (see [`Catalogue::refresh_failed`]).
    pub fn update_from_tags(&self, body: &[u8], at: Instant) {
        let Ok(tags) = serde_json::from_slice::<Tags>(body) else {
            self.refresh_failed(at);
            return;
        };
        let mut known = HashSet::with_capacity(tags.models.len() * 2);
        for e in tags.models {
            for n in [e.name, e.model].into_iter().flatten() {
                known.insert(normalize(&n));
            }
        }
        let remote = corral_policy::listing::remote_models(body)
            .iter()
            .map(|n| normalize(n))
            .collect();
        self.state.store(Arc::new(State {
            known,
            remote,
            fetched: Some(at),
            failed: false,
            unanswered: None,
        }));
    }

    /// Records a refresh that got no model list: the known names stay, the attempt counts (so
    /// a broken upstream is not asked again at once), and unknown names are unverified until a
    /// refresh succeeds.
    pub fn refresh_failed(&self, at: Instant) {
        self.store_failure(at, None);
    }

    /// Records a refresh the upstream did not answer (`failure`: it could not be reached, or
    /// sent nothing in time), which is what the requests the catalogue cannot verify are told
    /// until a refresh succeeds.
    pub fn refresh_unanswered(&self, at: Instant, failure: Failure) {
        self.store_failure(at, Some(failure));
    }

    fn store_failure(&self, at: Instant, unanswered: Option<Failure>) {
        let old = self.state.load();
        self.state.store(Arc::new(State {
            known: old.known.clone(),
            remote: old.remote.clone(),
            fetched: Some(at),
            failed: true,
            unanswered,
        }));
    }

    /// When the last refresh got no answer from the upstream, that failure.
    pub fn unanswered(&self) -> Option<Failure> {
        self.state.load().unanswered.clone()
    }

    /// True when the last refresh failed and `name` is not a model the catalogue knows: whether
    /// it is remote cannot be told.
    pub fn unverified(&self, name: &str) -> bool {
        let state = self.state.load();
        state.failed && !state.known.contains(normalized(name).as_ref())
    }

    /// True when `name` is a remote model as far as the catalogue knows.
    pub fn is_remote(&self, name: &str) -> bool {
        let state = self.state.load();
        // Most upstreams have no remote models: no name to normalise and hash then.
        !state.remote.is_empty() && state.remote.contains(normalized(name).as_ref())
    }

    /// True when `name` is unknown and the catalogue may be refreshed now.
    pub fn wants_refresh(&self, name: &str, now: Instant) -> bool {
        let state = self.state.load();
        state.is_stale(now) && !state.known.contains(normalized(name).as_ref())
    }

    /// True when the catalogue was never fetched, or its last refresh is [`REFRESH_EVERY`] old
    /// ([`RETRY_FAILED`] when it failed).
    pub fn is_stale(&self, now: Instant) -> bool {
        self.state.load().is_stale(now)
    }

    /// Serialises refreshes; hold the guard while fetching.
    pub async fn refresh_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.refresh.lock().await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const TAGS: &[u8] = br#"{"models":[
        {"name":"llama3.2:latest","model":"llama3.2:latest"},
        {"name":"gpt-oss:120b-cloud","model":"gpt-oss:120b-cloud","remote_model":"gpt-oss:120b","remote_host":"https://ollama.com:443"}
    ]}"#;

    #[test]
    fn knows_names_in_any_spelling_and_refreshes_at_most_every_30s() {
        let c = Catalogue::default();
        let t0 = Instant::now();
        assert!(c.wants_refresh("llama3.2", t0));
        c.update_from_tags(TAGS, t0);
        assert!(
            !c.wants_refresh("llama3.2", t0),
            "known under its short name"
        );
        assert!(!c.wants_refresh("Llama3.2:latest", t0));
        assert!(!c.wants_refresh("unknown", t0 + Duration::from_secs(29)));
        assert!(c.wants_refresh("unknown", t0 + REFRESH_EVERY));
        assert!(!c.is_remote("llama3.2"));
    }

    #[test]
    fn junk_counts_as_an_attempt() {
        let c = Catalogue::default();
        let t0 = Instant::now();
        c.update_from_tags(b"<html>", t0);
        assert!(!c.wants_refresh("x", t0));
        assert!(c.unanswered().is_none(), "the upstream did answer");
    }

    #[test]
    fn a_failed_refresh_is_retried_soon_and_an_unanswered_one_says_why() {
        let c = Catalogue::default();
        let t0 = Instant::now();
        c.refresh_unanswered(t0, Failure::upstream_unavailable());
        assert!(c.unverified("llama3.2"));
        assert_eq!(c.unanswered(), Some(Failure::upstream_unavailable()));
        assert!(!c.wants_refresh("llama3.2", t0));
        assert!(c.wants_refresh("llama3.2", t0 + RETRY_FAILED));
        assert!(c.is_stale(t0 + RETRY_FAILED));
        c.update_from_tags(TAGS, t0 + RETRY_FAILED);
        assert!(!c.unverified("llama3.2"));
        assert!(c.unanswered().is_none());
        assert!(!c.wants_refresh("unknown", t0 + RETRY_FAILED * 2));
    }
}
