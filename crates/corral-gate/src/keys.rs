//! The key snapshot the gate authenticates against, kept current by a watcher of the store, and
//! the last-used times and allowance state ([`crate::allowances`]) collected in memory and
//! written back in batches: every few seconds and once more when the gate stops. A write that
//! fails is logged and retried with the next batch; requests never wait for one.
//!
//! Each authenticated request holds a [`Lease`] on its key. When the key stops being usable
//! while requests run — revoked, rotated, deleted, or past its expiry — the watcher ends the
//! lease and those requests are cut: a leaked key stops spending GPU time within one reload
//! interval, not when its longest generation finishes.
//!
//! The watcher also notices when `keys.db` is replaced (a backup restored, a fresh store moved
//! in, the file deleted and created again): SQLite keeps reading the file it opened, so the
//! watcher compares the path's file with it and reopens. While no store can be read at the
//! path, no key authenticates.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use corral_store::{AuthError, FileState, KeyEntry, KeySnapshot, KeyStore, StoreError};
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::allowances::Allowances;
use crate::error::GateError;

/// How often collected last-used times and allowance state are written to the store: a gate
/// that dies without stopping loses up to this much of its keys' charges.
const LAST_USED_FLUSH: Duration = Duration::from_secs(5);

/// How often the error is repeated while no key store can be read.
const CLOSED_REMINDER: Duration = Duration::from_secs(60);

/// Current keys, pending last-used times and the leases of running requests.
pub struct Keys {
    snapshot: ArcSwap<KeySnapshot>,
    uses: Mutex<Uses>,
    /// Parent of every lease: cancelled when the gate cuts the requests still running at the
    /// end of its shutdown grace period.
    gate: CancellationToken,
}

#[derive(Default)]
struct Uses {
    last_used: HashMap<String, DateTime<Utc>>,
    /// One lease per key id that authenticated since its last lease ended; at most one per key.
    leases: HashMap<String, Lease>,
}

/// A running request's hold on its key, ended when the key stops being usable or when the
/// gate cuts its running requests at shutdown.
#[derive(Debug, Clone, Default)]
pub struct Lease {
    key: CancellationToken,
    gate: CancellationToken,
}

impl Lease {
    /// True once the key was revoked, rotated, deleted or expired, or the gate cut it.
    pub fn is_ended(&self) -> bool {
        self.key.is_cancelled()
    }

    /// Completes when the lease ends.
    pub fn ended(&self) -> WaitForCancellationFutureOwned {
        self.key.clone().cancelled_owned()
    }

    /// True when the lease ended because the gate is shutting down, not because of the key.
    pub fn cut_by_shutdown(&self) -> bool {
        self.gate.is_cancelled()
    }

    fn end(&self) {
        self.key.cancel();
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub entry: KeyEntry,
    pub lease: Lease,
}

/// The key store behind a mutex; only ever locked on the blocking pool.
pub type SharedStore = Arc<Mutex<KeyStore>>;

impl Keys {
    pub fn new(snapshot: KeySnapshot) -> Keys {
        Keys {
            snapshot: ArcSwap::from_pointee(snapshot),
            uses: Mutex::new(Uses::default()),
            gate: CancellationToken::new(),
        }
    }

    /// Ends every lease, now and to come: the requests still running when the shutdown grace
    /// period is over end with an error in their dialect instead of a dropped connection.
    pub fn cut_all(&self) {
        self.gate.cancel();
    }

    /// Authenticates against the current snapshot, notes the use and hands out the key's lease.
    pub fn authenticate(
        &self,
        presented: &str,
        now: DateTime<Utc>,
    ) -> Result<Authenticated, AuthError> {
        let snapshot = self.snapshot.load();
        let entry = snapshot.authenticate(presented, now)?.clone();
        drop(snapshot);
        let lease = self.touch(&entry.id, now);
        Ok(Authenticated { entry, lease })
    }

    fn touch(&self, id: &str, now: DateTime<Utc>) -> Lease {
        let Ok(mut uses) = self.uses.lock() else {
            // A poisoned lock only loses bookkeeping; a fresh lease is never ended, which
            // the next look at the store cannot fix, so say so.
            tracing::error!(
                "key bookkeeping lock poisoned; revocation cannot cut running requests"
            );
            return self.new_lease();
        };
        match uses.last_used.get_mut(id) {
            Some(t) => *t = now,
            None => {
                uses.last_used.insert(id.to_owned(), now);
            }
        }
        match uses.leases.get(id) {
            Some(lease) => lease.clone(),
            None => {
                let lease = self.new_lease();
                uses.leases.insert(id.to_owned(), lease.clone());
                lease
            }
        }
    }

    /// The lease of a request authenticated by an OIDC token: no key to revoke, so only the
    /// gate's shutdown ends it.
    pub fn token_lease(&self) -> Lease {
        self.new_lease()
    }

    fn new_lease(&self) -> Lease {
        Lease {
            key: self.gate.child_token(),
            gate: self.gate.clone(),
        }
    }

    fn take_last_used(&self) -> Vec<(String, DateTime<Utc>)> {
        match self.uses.lock() {
            Ok(mut uses) => uses.last_used.drain().collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Swaps in a snapshot read from the store and ends the leases it no longer honours.
    fn replace(&self, snapshot: KeySnapshot, now: DateTime<Utc>) {
        self.snapshot.store(Arc::new(snapshot));
        self.end_unusable(now);
    }

    /// Refuses every key while no store can be read. Running requests keep their leases: a
    /// store that is briefly away (a backup being restored) revokes nothing.
    fn close(&self) {
        self.snapshot.store(Arc::new(KeySnapshot::default()));
    }

    /// Ends the leases of keys the current snapshot no longer accepts at `now`.
    fn end_unusable(&self, now: DateTime<Utc>) {
        let snapshot = self.snapshot.load();
        let Ok(mut uses) = self.uses.lock() else {
            return;
        };
        uses.leases.retain(|id, lease| {
            let usable = snapshot.is_usable(id, now);
            if !usable {
                lease.end();
            }
            usable
        });
    }
}

/// Runs `f` on the store on the blocking pool.
async fn with_store<T: Send + 'static>(
    store: &SharedStore,
    f: impl FnOnce(&mut KeyStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, GateError> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || {
        let mut guard = store
            .lock()
            .map_err(|_| GateError::Task("key store lock poisoned".to_owned()))?;
        f(&mut guard).map_err(GateError::Store)
    })
    .await
    .map_err(|e| GateError::Task(format!("key store task: {e}")))?
}

/// The first snapshot and the data version it was read at. (`corral serve` warns about a data
/// directory open to group or others itself, in its own notice format.)
pub async fn load(store: &SharedStore) -> Result<(KeySnapshot, i64), GateError> {
    with_store(store, |s| {
        let version = s.data_version()?;
        Ok((s.snapshot()?, version))
    })
    .await
}

/// Takes up the allowance state an earlier gate saved. A store that cannot be read for it is
/// logged, and every key starts with its full allowance.
pub async fn restore_allowances(store: &SharedStore, allowances: &Allowances) {
    let at = allowances.clocks();
    match with_store(store, move |s| s.allowances(at.wall)).await {
        Ok(loaded) => {
            for e in &loaded.ignored {
                tracing::warn!(
                    error = %e,
                    "saved allowance state ignored; this key starts with its full allowance"
                );
            }
            allowances.restore(&loaded.states, at);
            if !loaded.states.is_empty() {
                tracing::debug!(keys = loaded.states.len(), "saved allowance state taken up");
            }
        }
        Err(e) => tracing::warn!(
            error = %e,
            "cannot read the saved allowance state; every key starts with its full allowance"
        ),
    }
}

/// What one look at the store found.
enum Look {
    /// The same file, and no commit by another connection since the last look.
    Unchanged,
    /// Another connection committed (or the store was unreadable before): a fresh snapshot.
    Changed(KeySnapshot, i64),
    /// The path names another file than the one open, which is now opened and read.
    Replaced(KeySnapshot, i64),
    /// The path names another file that cannot be opened or read.
    Unreadable(StoreError),
    /// Nothing at the path.
    Missing,
}

/// One look at the store. `reload` forces a fresh snapshot (the last one was given up).
fn look(store: &mut KeyStore, seen: i64, reload: bool) -> Result<Look, StoreError> {
    match store.file_state()? {
        FileState::Missing => Ok(Look::Missing),
        FileState::Replaced => {
            let read = |s: &mut KeyStore| -> Result<(KeySnapshot, i64), StoreError> {
                s.reopen()?;
                let v = s.data_version()?;
                Ok((s.snapshot()?, v))
            };
            Ok(match read(store) {
                Ok((snapshot, v)) => Look::Replaced(snapshot, v),
                Err(e) => Look::Unreadable(e),
            })
        }
        FileState::Same => {
            let v = store.data_version()?;
            if v == seen && !reload {
                Ok(Look::Unchanged)
            } else {
                Ok(Look::Changed(store.snapshot()?, v))
            }
        }
    }
}

/// Polls the store's data version and swaps in a new snapshot when another process committed a
/// change; writes last-used times and changed allowance state every few seconds and once more
/// when stopped (the first write of allowance state also clears the rows that mean nothing).
///
/// Each look also checks that the path still names the file the store has open. A replaced
/// file is opened and its keys replace the old ones (with a warning); while the path names no
/// file, or one that cannot be read, the snapshot is empty (every key is refused) and an error
/// is logged, then every minute until a readable store is back. A store that cannot be read for
/// another reason (a lock held too long) keeps the last snapshot.
pub async fn watch_store(
    keys: Arc<Keys>,
    allowances: Arc<Allowances>,
    store: SharedStore,
    mut version: i64,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let path = match with_store(&store, |s| Ok(s.path().to_path_buf())).await {
        Ok(p) => p,
        Err(_) => PathBuf::from(corral_store::DB_FILE),
    };
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut flush = tokio::time::interval(LAST_USED_FLUSH);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Set while every key is refused for want of a readable store: when that was last said.
    let mut closed: Option<Instant> = None;
    // Until one write of allowance state succeeded, a write is made even with nothing changed:
    // it deletes the rows of keys whose allowances refilled while no gate ran.
    let mut pruned = false;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {
                let (seen, reload) = (version, closed.is_some());
                let fresh = with_store(&store, move |s| look(s, seen, reload)).await;
                match fresh {
                    // Keys expire without a commit; and a request that authenticated against
                    // the previous snapshot may have taken its lease after the last look.
                    Ok(Look::Unchanged) => keys.end_unusable(Utc::now()),
                    Ok(Look::Changed(snapshot, v)) => {
                        keys.replace(snapshot, Utc::now());
                        version = v;
                        if closed.take().is_some() {
                            tracing::warn!(path = %path.display(), "key store is back; keys are accepted again");
                        } else {
                            tracing::debug!("key snapshot reloaded");
                        }
                    }
                    Ok(Look::Replaced(snapshot, v)) => {
                        let count = snapshot.active_len();
                        keys.replace(snapshot, Utc::now());
                        version = v;
                        closed = None;
                        tracing::warn!(
                            path = %path.display(),
                            keys = count,
                            "key store file was replaced; keys now come from the new file"
                        );
                    }
                    Ok(Look::Missing) => {
                        fail_closed(&keys, &mut closed, || {
                            tracing::error!(
                                path = %path.display(),
                                "key store file is missing; refusing every key until it is back"
                            );
                        });
                    }
                    Ok(Look::Unreadable(e)) => {
                        fail_closed(&keys, &mut closed, || {
                            tracing::error!(
                                path = %path.display(),
                                error = %e,
                                "key store file was replaced by one that cannot be read; refusing every key until it can"
                            );
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reload keys; keeping the last snapshot");
                        if closed.is_none() {
                            keys.end_unusable(Utc::now());
                        }
                    }
                }
            }
            _ = flush.tick() => {
                flush_last_used(&keys, &store).await;
                flush_allowances(&allowances, &store, &mut pruned).await;
            }
        }
    }
    flush_last_used(&keys, &store).await;
    flush_allowances(&allowances, &store, &mut pruned).await;
}

/// Empties the snapshot and says so, at once when the store was just lost and every
/// [`CLOSED_REMINDER`] after.
fn fail_closed(keys: &Keys, closed: &mut Option<Instant>, alarm: impl FnOnce()) {
    match closed {
        Some(since) if since.elapsed() < CLOSED_REMINDER => {}
        Some(since) => {
            *since = Instant::now();
            alarm();
        }
        None => {
            keys.close();
            *closed = Some(Instant::now());
            alarm();
        }
    }
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

/// Writes the allowance state that changed since the last write. On failure the states are
/// marked changed again, to go with the next write.
async fn flush_allowances(allowances: &Allowances, store: &SharedStore, pruned: &mut bool) {
    let at = allowances.clocks();
    let changed = allowances.take_changed(at);
    if changed.is_empty() && *pruned {
        return;
    }
    let names: Vec<String> = changed.iter().map(|s| s.name.clone()).collect();
    match with_store(store, move |s| s.save_allowances(&changed, at.wall)).await {
        Ok(()) => *pruned = true,
        Err(e) => {
            tracing::warn!(error = %e, "cannot save the keys' allowance state");
            allowances.mark_changed(names.iter().map(String::as_str));
        }
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
            Arc::new(Allowances::new()),
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
            if keys.authenticate(secret.expose(), Utc::now()).err() == Some(AuthError::Revoked) {
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
