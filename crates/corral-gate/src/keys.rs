//! The key snapshot the gate authenticates against, kept current by a watcher of the store, and
//! the last-used times collected in memory and written back in batches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use corral_store::{AuthError, KeyEntry, KeySnapshot, KeyStore, StoreError};
use tokio::sync::watch;

use crate::error::GateError;

/// How often collected last-used times are written to the store.
const LAST_USED_FLUSH: Duration = Duration::from_secs(5);

/// Current keys and pending last-used times.
pub struct Keys {
    snapshot: ArcSwap<KeySnapshot>,
    last_used: Mutex<HashMap<String, DateTime<Utc>>>,
}

/// The key store behind a mutex; only ever locked on the blocking pool.
pub type SharedStore = Arc<Mutex<KeyStore>>;

impl Keys {
    pub fn new(snapshot: KeySnapshot) -> Keys {
        Keys {
            snapshot: ArcSwap::from_pointee(snapshot),
            last_used: Mutex::new(HashMap::new()),
        }
    }

    /// Authenticates against the current snapshot and notes the use.
    pub fn authenticate(&self, presented: &str, now: DateTime<Utc>) -> Result<KeyEntry, AuthError> {
        let snapshot = self.snapshot.load();
        let entry = snapshot.authenticate(presented, now)?.clone();
        drop(snapshot);
        self.touch(&entry.id, now);
        Ok(entry)
    }

    fn touch(&self, id: &str, now: DateTime<Utc>) {
        let Ok(mut map) = self.last_used.lock() else {
            return;
        };
        match map.get_mut(id) {
            Some(t) => *t = now,
            None => {
                map.insert(id.to_owned(), now);
            }
        }
    }

    fn take_last_used(&self) -> Vec<(String, DateTime<Utc>)> {
        match self.last_used.lock() {
            Ok(mut map) => map.drain().collect(),
            Err(_) => Vec::new(),
        }
    }

    fn replace(&self, snapshot: KeySnapshot) {
        self.snapshot.store(Arc::new(snapshot));
    }
}

/// Runs `f` on the store on the blocking pool.
async fn with_store<T: Send + 'static>(
    store: &SharedStore,
    f: impl FnOnce(&KeyStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, GateError> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || {
        let guard = store
            .lock()
            .map_err(|_| GateError::Task("key store lock poisoned".to_owned()))?;
        f(&guard).map_err(GateError::Store)
    })
    .await
    .map_err(|e| GateError::Task(format!("key store task: {e}")))?
}

/// The first snapshot and the data version it was read at.
pub async fn load(store: &SharedStore) -> Result<(KeySnapshot, i64), GateError> {
    with_store(store, |s| {
        let version = s.data_version()?;
        Ok((s.snapshot()?, version))
    })
    .await
}

/// Polls the store's data version and swaps in a new snapshot when another process committed a
/// change; writes last-used times every few seconds and once more when stopped.
pub async fn watch_store(
    keys: Arc<Keys>,
    store: SharedStore,
    mut version: i64,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut flush = tokio::time::interval(LAST_USED_FLUSH);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {
                let seen = version;
                let fresh = with_store(&store, move |s| {
                    let v = s.data_version()?;
                    if v == seen { Ok(None) } else { Ok(Some((s.snapshot()?, v))) }
                })
                .await;
                match fresh {
                    Ok(Some((snapshot, v))) => {
                        keys.replace(snapshot);
                        version = v;
                        tracing::debug!("key snapshot reloaded");
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot reload keys; keeping the last snapshot"),
                }
            }
            _ = flush.tick() => flush_last_used(&keys, &store).await,
        }
    }
    flush_last_used(&keys, &store).await;
}

async fn flush_last_used(keys: &Keys, store: &SharedStore) {
    let uses = keys.take_last_used();
    if uses.is_empty() {
        return;
    }
    if let Err(e) = with_store(store, move |s| s.record_last_used(&uses)).await {
        tracing::warn!(error = %e, "cannot record key last-used times");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reloads_after_another_connection_changes_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(Mutex::new(KeyStore::open(dir.path()).unwrap()));
        let (snap, version) = load(&store).await.unwrap();
        let keys = Arc::new(Keys::new(snap));
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(watch_store(
            Arc::clone(&keys),
            Arc::clone(&store),
            version,
            Duration::from_millis(20),
            stop_rx,
        ));

        // Another process (here: another connection) creates a key.
        let other = KeyStore::open(dir.path()).unwrap();
        let (_, secret) = other.create("alice", "user", None).unwrap();
        let now = Utc::now();
        let mut ok = false;
        for _ in 0..100 {
            if keys.authenticate(secret.expose(), now).is_ok() {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(ok, "new key not picked up");

        other.revoke("alice").unwrap();
        let mut revoked = false;
        for _ in 0..100 {
            if keys.authenticate(secret.expose(), Utc::now()) == Err(AuthError::Revoked) {
                revoked = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(revoked, "revocation not picked up");

        stop_tx.send(true).unwrap();
        task.await.unwrap();
        let listed = other.list().unwrap();
        assert!(listed[0].last_used_at.is_some(), "last use flushed at stop");
    }
}
