//! The gate's per-key allowance state, saved so that a restarted gate does not hand every key
//! its full token quota (and request rate) again.
//!
//! One row per key name (a rotated key keeps its state, as in the gate): for each allowance
//! the wall-clock time at which it is full again, or nothing when it already is, and when the
//! row was saved. Rows whose allowances are all full again, and rows of names no unrevoked key
//! holds, mean nothing: every save deletes them, so the table stays as small as the set of keys
//! that spent something lately. Running-request counts are not kept: no request outlives the
//! gate that admitted it.

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{params, Transaction, TransactionBehavior};

use crate::{KeyStore, StoreError};

/// One key's saved allowance state. Each `*_full_at` is when that allowance is full again
/// (its theoretical arrival time on the wall clock); `None` when it is full already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedAllowance {
    /// The key's name.
    pub name: String,
    pub requests_full_at: Option<DateTime<Utc>>,
    pub tokens_hour_full_at: Option<DateTime<Utc>>,
    pub tokens_day_full_at: Option<DateTime<Utc>>,
    /// The limit each time above was counted under (requests per minute, tokens per hour,
    /// tokens per day); `None` when not known (saved by an earlier build).
    pub requests_quota: Option<u64>,
    pub tokens_hour_quota: Option<u64>,
    pub tokens_day_quota: Option<u64>,
    /// When the state was saved: a clock that reads earlier than this at load time stepped
    /// backwards in between.
    pub saved_at: DateTime<Utc>,
}

impl SavedAllowance {
    /// True when every allowance is full at `now`: the row says nothing.
    pub fn is_full_at(&self, now: DateTime<Utc>) -> bool {
        [
            self.requests_full_at,
            self.tokens_hour_full_at,
            self.tokens_day_full_at,
        ]
        .into_iter()
        .flatten()
        .all(|t| t <= now)
    }
}

/// Milliseconds since the Unix epoch, rounded up: a saved allowance is never fuller than the
/// gate's own.
fn ceil_millis(t: DateTime<Utc>) -> i64 {
    let ms = t.timestamp_millis();
    if t.timestamp_subsec_nanos().is_multiple_of(1_000_000) {
        ms
    } else {
        ms.saturating_add(1)
    }
}

fn corrupt(name: &str, what: &'static str) -> StoreError {
    StoreError::CorruptAllowance {
        name: name.to_string(),
        what,
    }
}

/// A column that holds a time: milliseconds since the Unix epoch, or NULL for none.
fn opt_time(name: &str, value: Value) -> Result<Option<DateTime<Utc>>, StoreError> {
    match value {
        Value::Null => Ok(None),
        Value::Integer(ms) => DateTime::from_timestamp_millis(ms)
            .map(Some)
            .ok_or_else(|| corrupt(name, "time out of range")),
        _ => Err(corrupt(name, "a time that is not an integer")),
    }
}

/// A column that holds a limit: a positive integer, or NULL when not known.
fn opt_quota(name: &str, value: Value) -> Result<Option<u64>, StoreError> {
    match value {
        Value::Null => Ok(None),
        Value::Integer(n) => u64::try_from(n)
            .ok()
            .filter(|&n| n > 0)
            .map(Some)
            .ok_or_else(|| corrupt(name, "a limit that is not a positive integer")),
        _ => Err(corrupt(name, "a limit that is not an integer")),
    }
}

fn quota_value(quota: Option<u64>) -> Option<i64> {
    quota.map(|q| i64::try_from(q).unwrap_or(i64::MAX))
}

/// One row as read, checked: `Err` says why it is ignored.
fn parse_row(name: &str, cols: [Value; 7]) -> Result<SavedAllowance, StoreError> {
    let [requests, hour, day, saved_at, requests_quota, hour_quota, day_quota] = cols;
    Ok(SavedAllowance {
        requests_full_at: opt_time(name, requests)?,
        tokens_hour_full_at: opt_time(name, hour)?,
        tokens_day_full_at: opt_time(name, day)?,
        requests_quota: opt_quota(name, requests_quota)?,
        tokens_hour_quota: opt_quota(name, hour_quota)?,
        tokens_day_quota: opt_quota(name, day_quota)?,
        saved_at: opt_time(name, saved_at)?.ok_or_else(|| corrupt(name, "no time saved"))?,
        name: name.to_string(),
    })
}

/// The saved allowance state as loaded: the rows taken, and why each row that could not be
/// read was ignored (its key starts with its full allowance).
#[derive(Debug, Default)]
pub struct LoadedAllowances {
    pub states: Vec<SavedAllowance>,
    pub ignored: Vec<StoreError>,
}

/// Rows that mean nothing at `now` (ms): every allowance full, or no unrevoked key of the name.
const PRUNE: &str = "DELETE FROM allowance_state WHERE \
     max(coalesce(requests_tat, 0), coalesce(tokens_hour_tat, 0), coalesce(tokens_day_tat, 0)) <= ?1 \
     OR name NOT IN (SELECT name FROM keys WHERE revoked_at IS NULL)";

impl KeyStore {
    /// The saved allowance state of names held by an unrevoked key, rows whose allowances are
    /// all full at `now` left out. A row that cannot be read (a time out of range or not a
    /// number, edited by hand) is ignored on its own and reported in
    /// [`LoadedAllowances::ignored`]. Empty for a store of an earlier release not yet upgraded.
    pub fn allowances(&self, now: DateTime<Utc>) -> Result<LoadedAllowances, StoreError> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let mut loaded = LoadedAllowances::default();
        if version < crate::SCHEMA_VERSION {
            return Ok(loaded);
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT name, requests_tat, tokens_hour_tat, tokens_day_tat, saved_at, \
             requests_quota, tokens_hour_quota, tokens_day_quota FROM allowance_state \
             WHERE name IN (SELECT name FROM keys WHERE revoked_at IS NULL) ORDER BY name",
        )?;
        type Raw = (String, [Value; 7]);
        let raw = stmt
            .query_map([], |r| -> rusqlite::Result<Raw> {
                let cols = [
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ];
                Ok((r.get(0)?, cols))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        for (name, cols) in raw {
            match parse_row(&name, cols) {
                Ok(row) if !row.is_full_at(now) => loaded.states.push(row),
                Ok(_) => {}
                Err(e) => loaded.ignored.push(e),
            }
        }
        Ok(loaded)
    }

    /// Writes these keys' states in one transaction (a state with every allowance full at
    /// `now` deletes its row), then deletes the rows that mean nothing any more: every
    /// allowance full at `now`, or no unrevoked key holding the name.
    pub fn save_allowances(
        &self,
        states: &[SavedAllowance],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.ensure_current()?;
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO allowance_state (name, requests_tat, tokens_hour_tat, \
                 tokens_day_tat, saved_at, requests_quota, tokens_hour_quota, tokens_day_quota) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT(name) DO UPDATE SET requests_tat = ?2, tokens_hour_tat = ?3, \
                 tokens_day_tat = ?4, saved_at = ?5, requests_quota = ?6, \
                 tokens_hour_quota = ?7, tokens_day_quota = ?8",
            )?;
            let mut delete = tx.prepare_cached("DELETE FROM allowance_state WHERE name = ?1")?;
            for s in states {
                if s.is_full_at(now) {
                    delete.execute(params![s.name])?;
                } else {
                    upsert.execute(params![
                        s.name,
                        s.requests_full_at.map(ceil_millis),
                        s.tokens_hour_full_at.map(ceil_millis),
                        s.tokens_day_full_at.map(ceil_millis),
                        s.saved_at.timestamp_millis(),
                        quota_value(s.requests_quota),
                        quota_value(s.tokens_hour_quota),
                        quota_value(s.tokens_day_quota),
                    ])?;
                }
            }
            tx.execute(PRUNE, params![now.timestamp_millis()])?;
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::DB_FILE;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_900_000_000 + secs, 0).unwrap()
    }

    fn state(name: &str, hour: Option<i64>, day: Option<i64>, saved: i64) -> SavedAllowance {
        SavedAllowance {
            name: name.to_string(),
            requests_full_at: None,
            tokens_hour_full_at: hour.map(at),
            tokens_day_full_at: day.map(at),
            requests_quota: None,
            tokens_hour_quota: hour.map(|_| 100),
            tokens_day_quota: day.map(|_| 1_000),
            saved_at: at(saved),
        }
    }

    #[test]
    fn states_round_trip_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path()).unwrap();
        store.create("alice", "user", None).unwrap();
        store.create("bob", "user", None).unwrap();
        let mut alice = state("alice", Some(100), Some(80_000), 0);
        alice.requests_full_at = Some(at(30));
        let bob = state("bob", None, Some(500), 0);
        store
            .save_allowances(&[alice.clone(), bob.clone()], at(0))
            .unwrap();
        drop(store);

        let store = KeyStore::open(dir.path()).unwrap();
        assert_eq!(
            store.allowances(at(1)).unwrap().states,
            [alice.clone(), bob]
        );
        // Later, bob's day is full again: his row says nothing and is not loaded.
        assert_eq!(store.allowances(at(600)).unwrap().states, [alice.clone()]);
        // A newer save replaces the row.
        let later = state("alice", None, Some(90_000), 10);
        store
            .save_allowances(std::slice::from_ref(&later), at(10))
            .unwrap();
        assert_eq!(store.allowances(at(11)).unwrap().states[0], later);
    }

    #[test]
    fn times_are_rounded_up_to_the_millisecond() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path()).unwrap();
        store.create("alice", "user", None).unwrap();
        let mut s = state("alice", None, None, 0);
        s.tokens_day_full_at = Some(at(100) + chrono::Duration::nanoseconds(1));
        store.save_allowances(&[s], at(0)).unwrap();
        let loaded = store.allowances(at(0)).unwrap().states;
        assert_eq!(
            loaded[0].tokens_day_full_at,
            Some(at(100) + chrono::Duration::milliseconds(1))
        );
    }

    #[test]
    fn stale_rows_are_deleted_when_saving() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path()).unwrap();
        for name in ["alice", "bob", "carol", "dave"] {
            store.create(name, "user", None).unwrap();
        }
        store
            .save_allowances(
                &[
                    state("alice", Some(100), None, 0),
                    state("bob", None, Some(5_000), 0),
                    state("carol", Some(50), None, 0),
                    state("dave", None, Some(5_000), 0),
                ],
                at(0),
            )
            .unwrap();
        // dave's key is revoked; alice's state is saved again as full.
        store.revoke("dave").unwrap();
        store
            .save_allowances(&[state("alice", Some(150), None, 200)], at(200))
            .unwrap();
        let rows: Vec<String> = {
            let mut stmt = store
                .conn
                .prepare("SELECT name FROM allowance_state ORDER BY name")
                .unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        // carol's hour was full again at 50; dave has no key any more.
        assert_eq!(rows, ["bob"]);
    }

    #[test]
    fn a_rotated_key_keeps_its_state_and_a_revoked_one_is_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path()).unwrap();
        store.create("alice", "user", None).unwrap();
        store.create("bob", "user", None).unwrap();
        let alice = state("alice", None, Some(1_000), 0);
        store
            .save_allowances(&[alice.clone(), state("bob", None, Some(1_000), 0)], at(0))
            .unwrap();
        store.rotate("alice").unwrap();
        store.revoke("bob").unwrap();
        assert_eq!(store.allowances(at(1)).unwrap().states, [alice]);
    }

    #[test]
    fn a_row_that_cannot_be_read_is_ignored_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path()).unwrap();
        for name in ["alice", "bob", "carol"] {
            store.create(name, "user", None).unwrap();
        }
        let bob = state("bob", None, Some(1_000), 0);
        store
            .save_allowances(std::slice::from_ref(&bob), at(0))
            .unwrap();
        // Hand-edited rows: a time past what a date can hold, and a negative one (1969: full).
        store
            .conn
            .execute_batch(
                "INSERT INTO allowance_state VALUES ('alice', NULL, NULL, 9223372036854775807, 0, NULL, NULL, NULL);
                 INSERT INTO allowance_state VALUES ('carol', -5, -1, NULL, 0, NULL, NULL, -3);",
            )
            .unwrap();
        let loaded = store.allowances(at(1)).unwrap();
        assert_eq!(loaded.states, [bob]);
        let ignored: Vec<String> = loaded.ignored.iter().map(|e| e.to_string()).collect();
        assert_eq!(ignored.len(), 2, "{ignored:?}");
        assert!(
            ignored[0].contains("\"alice\": time out of range"),
            "{ignored:?}"
        );
        assert!(ignored[1].contains("\"carol\""), "{ignored:?}");
    }

    /// A keys.db as the release before allowance state wrote it.
    fn v1_store(dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join(DB_FILE);
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(crate::store::SCHEMA_V1).unwrap();
        conn.execute(
            "INSERT INTO keys (id, name, policy, secret_sha256, created_at) \
             VALUES ('abcdefghijkl', 'alice', 'user', zeroblob(32), 0)",
            [],
        )
        .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        path
    }

    fn user_version(path: &std::path::Path) -> i64 {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_store_of_the_previous_release_is_upgraded_and_keeps_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = v1_store(dir.path());
        let store = KeyStore::open(dir.path()).unwrap();
        assert_eq!(user_version(&path), crate::SCHEMA_VERSION);
        let names: Vec<String> = store.list().unwrap().into_iter().map(|k| k.name).collect();
        assert_eq!(names, ["alice"]);
        assert!(store.allowances(at(0)).unwrap().states.is_empty());
        let s = state("alice", None, Some(1_000), 0);
        store
            .save_allowances(std::slice::from_ref(&s), at(0))
            .unwrap();
        assert_eq!(store.allowances(at(1)).unwrap().states, [s]);
    }

    #[test]
    fn a_store_of_version_2_is_upgraded_and_its_rows_loaded_without_their_limits() {
        let dir = tempfile::tempdir().unwrap();
        let path = v1_store(dir.path());
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(crate::store::SCHEMA_V2).unwrap();
        let full_at = at(1_000).timestamp_millis();
        conn.execute(
            "INSERT INTO allowance_state VALUES ('alice', NULL, NULL, ?1, 0)",
            [full_at],
        )
        .unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        drop(conn);
        let store = KeyStore::open(dir.path()).unwrap();
        assert_eq!(user_version(&path), crate::SCHEMA_VERSION);
        let mut expected = state("alice", None, Some(1_000), -1_900_000_000);
        expected.tokens_day_quota = None;
        assert_eq!(store.allowances(at(1)).unwrap().states, [expected]);
    }

    #[test]
    fn a_busy_store_of_the_previous_release_is_read_at_once_and_upgraded_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = v1_store(dir.path());
        // Another process in the middle of a write.
        let writer = rusqlite::Connection::open(&path).unwrap();
        let _: String = writer
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .unwrap();
        writer.execute_batch("BEGIN IMMEDIATE").unwrap();
        let started = std::time::Instant::now();
        let store = KeyStore::open(dir.path()).unwrap();
        assert_eq!(store.list().unwrap().len(), 1);
        assert!(store.allowances(at(0)).unwrap().states.is_empty());
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(user_version(&path), 1);
        writer.execute_batch("ROLLBACK").unwrap();
        // The first save upgrades it.
        let s = state("alice", None, Some(1_000), 0);
        store
            .save_allowances(std::slice::from_ref(&s), at(0))
            .unwrap();
        assert_eq!(user_version(&path), crate::SCHEMA_VERSION);
        assert_eq!(store.allowances(at(1)).unwrap().states, [s]);
    }
}
