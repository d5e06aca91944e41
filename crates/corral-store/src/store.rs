//! The SQLite-backed store.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use rusqlite::{
    params, Connection, ErrorCode, OpenFlags, OptionalExtension, Row, Transaction,
    TransactionBehavior,
};
use serde::Serialize;

use crate::key::{self, Secret, KEY_PREFIX};
use crate::snapshot::{KeySnapshot, SnapshotKey};
use crate::{KeyEntry, StoreError};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "keys.db";
/// Schema version recorded in `PRAGMA user_version`.
pub const SCHEMA_VERSION: i64 = 3;

/// How long a writer waits for another process's lock before failing.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Shortest lifetime a key may be created with: anything shorter is dead on arrival.
pub const MIN_LIFETIME: Duration = Duration::from_secs(1);

pub(crate) const SCHEMA_V1: &str = "
CREATE TABLE keys (
    id            TEXT PRIMARY KEY NOT NULL,
    name          TEXT NOT NULL,
    policy        TEXT NOT NULL,
    secret_sha256 BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    expires_at    INTEGER,
    revoked_at    INTEGER
) STRICT;
CREATE UNIQUE INDEX keys_active_name ON keys(name) WHERE revoked_at IS NULL;
";

/// Version 2: the gate's allowance state, kept across restarts (see [`crate::allowance`]).
pub(crate) const SCHEMA_V2: &str = "
CREATE TABLE allowance_state (
    name            TEXT PRIMARY KEY NOT NULL,
    requests_tat    INTEGER,
    tokens_hour_tat INTEGER,
    tokens_day_tat  INTEGER,
    saved_at        INTEGER NOT NULL
) STRICT;
";

/// Version 3: the limit each saved allowance time was counted under, so that a limit changed
/// across a restart is charged what was spent, not the share of the old one.
const SCHEMA_V3: &str = "
ALTER TABLE allowance_state ADD COLUMN requests_quota INTEGER;
ALTER TABLE allowance_state ADD COLUMN tokens_hour_quota INTEGER;
ALTER TABLE allowance_state ADD COLUMN tokens_day_quota INTEGER;
";

const COLUMNS: &str =
    "id, name, policy, secret_sha256, created_at, last_used_at, expires_at, revoked_at";

/// A key as listed: everything except the secret (which is never stored).
/// Times serialise as RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    pub id: String,
    /// `crl_<id>`: the non-secret beginning of the key, to recognise it.
    pub prefix: String,
    pub name: String,
    pub policy: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Where a key stands at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Usable.
    Active,
    /// Past its expiry time and not revoked: refused, but it still holds its name.
    Expired,
    /// Revoked (or replaced by a rotation).
    Revoked,
}

impl KeyState {
    /// `active`, `expired` or `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Expired => "expired",
            KeyState::Revoked => "revoked",
        }
    }
}

impl KeyInfo {
    /// Not revoked and not expired at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.state(now) == KeyState::Active
    }

    /// Revoked, else expired at `now`, else active.
    pub fn state(&self, now: DateTime<Utc>) -> KeyState {
        if self.revoked_at.is_some() {
            KeyState::Revoked
        } else if self.expires_at.is_some_and(|e| now >= e) {
            KeyState::Expired
        } else {
            KeyState::Active
        }
    }
}

/// What a store's path names now, compared with the database file the store has open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// The file the store opened.
    Same,
    /// Another file: one moved or copied over it, or deleted and created again.
    Replaced,
    /// Nothing: deleted or moved away.
    Missing,
}

/// A key created or rotated inside an open transaction. Nobody else sees the change until
/// [`PendingKey::commit`]; dropping it rolls the change back. This lets a caller hand the secret
/// to its holder first and keep the change only when that worked.
pub struct PendingKey<'a> {
    tx: Transaction<'a>,
    info: KeyInfo,
    secret: Secret,
}

impl PendingKey<'_> {
    /// The key as it will be listed once committed.
    pub fn info(&self) -> &KeyInfo {
        &self.info
    }

    /// The new key's secret.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// Makes the change durable and visible to other processes (a running gate included).
    pub fn commit(self) -> Result<(KeyInfo, Secret), StoreError> {
        self.tx.commit()?;
        Ok((self.info, self.secret))
    }
}

impl std::fmt::Debug for PendingKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingKey")
            .field("info", &self.info)
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

struct Row8 {
    info: KeyInfo,
    secret_sha256: Vec<u8>,
}

/// The key database of one data directory. Several `KeyStore`s (in one or several processes)
/// may use the same directory at once: SQLite runs in WAL mode with a busy timeout.
///
/// `KeyStore` is `Send` but not `Sync`; share it behind a mutex.
pub struct KeyStore {
    pub(crate) conn: Connection,
    path: PathBuf,
    /// (device, inode) of the database file `conn` has open.
    file: (u64, u64),
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("path", &self.path)
            .finish()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_millis(id: &str, ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::CorruptRow {
        id: id.to_string(),
        what: "timestamp out of range",
    })
}

fn opt_from_millis(id: &str, ms: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    ms.map(|m| from_millis(id, m)).transpose()
}

/// Creates `keys.db` with mode 0600 (or tightens an existing one) before SQLite touches it, so
/// the file is never briefly world-readable under a permissive umask. With `create` false a
/// missing file is an error. Returns the file's (device, inode).
fn prepare_db_file(path: &Path, create: bool) -> Result<(u64, u64), StoreError> {
    // A device, FIFO or socket (or a symlink to one) is neither opened nor chmod-ed: opening a
    // device can act on it, and SQLite would put its journal beside the target.
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => return Err(not_a_file(path)),
        _ => {}
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    let meta = file.metadata().map_err(io_err(path))?;
    if !meta.is_file() {
        // Switched in between the check and the open.
        return Err(not_a_file(path));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        file.set_permissions(Permissions::from_mode(0o600))
            .map_err(io_err(path))?;
    }
    Ok((meta.dev(), meta.ino()))
}

/// A database without corral's schema version (`PRAGMA user_version` 0) that already has
/// tables, views or indexes belongs to another program: corral creates its schema and sets the
/// version in one transaction, so its own stores never look like that.
fn refuse_foreign(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version != 0 {
        return Ok(());
    }
    let objects: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    if objects > 0 {
        return Err(StoreError::ForeignDatabase {
            path: path.to_owned(),
        });
    }
    Ok(())
}

fn not_a_file(path: &Path) -> StoreError {
    io_err(path)(std::io::Error::other(
        "is not a regular file (a directory, device, pipe or socket); keys.db must be a file",
    ))
}

/// (device, inode) of what `path` names now; `None` when nothing is there.
fn file_id(path: &Path) -> Result<Option<(u64, u64)>, StoreError> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some((m.dev(), m.ino()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

impl KeyStore {
    /// Opens (creating if needed) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<KeyStore, StoreError> {
        if !data_dir.exists() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(data_dir)
                .map_err(io_err(data_dir))?;
        }
        KeyStore::open_file(data_dir.join(DB_FILE), true)
    }

    /// Opens the database the store's path names now in place of the one this store has open
    /// (see [`KeyStore::file_state`]). The file must exist: a missing one is an error, not
    /// created. On error this store is left as it was.
    pub fn reopen(&mut self) -> Result<(), StoreError> {
        // The old connection is closed. SQLite deletes `keys.db-wal` and `keys.db-shm` by name
        // when the last connection to a database closes, names that now belong to the new
        // file; it skips that (and the checkpoint) for a file that was moved or deleted.
        *self = KeyStore::open_file(self.path.clone(), false)?;
        Ok(())
    }

    fn open_file(path: PathBuf, create: bool) -> Result<KeyStore, StoreError> {
        let mut flags = OpenFlags::default();
        if !create {
            flags.remove(OpenFlags::SQLITE_OPEN_CREATE);
        }
        // The file's identity is taken from the descriptor prepare_db_file opened and checked
        // against the path once SQLite has opened it: if the path was switched to another file
        // in between, the store would otherwise watch a file it does not have open.
        for _ in 0..3 {
            let file = prepare_db_file(&path, create)?;
            let conn = Connection::open_with_flags(&path, flags)?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            // Before the first change (WAL mode, the schema): another program's database is
            // refused as it is.
            refuse_foreign(&conn, &path)?;
            // journal_mode answers with a row; WAL lets readers and one writer work side by side.
            let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
            if file_id(&path)? != Some(file) {
                continue;
            }
            conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")?;
            let store = KeyStore { conn, path, file };
            store.migrate()?;
            return Ok(store);
        }
        Err(StoreError::Io {
            path,
            source: std::io::Error::other("the file kept being replaced while it was opened"),
        })
    }

    /// Whether the path still names the database file this store has open. A process that
    /// keeps a store open (the gate) checks this to notice a store moved, copied or restored
    /// over the old one, or deleted, which SQLite itself never reports.
    pub fn file_state(&self) -> Result<FileState, StoreError> {
        Ok(match file_id(&self.path)? {
            Some(id) if id == self.file => FileState::Same,
            Some(_) => FileState::Replaced,
            None => FileState::Missing,
        })
    }

    /// The data directory's permission bits when group or others have any access to it (the
    /// store's own files are 0600 regardless, but names of files and their sizes are visible).
    pub fn loose_dir_mode(&self) -> Option<u32> {
        let dir = self.path.parent()?;
        let mode = std::fs::metadata(dir).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn migrate(&self) -> Result<(), StoreError> {
        // A store already at this version is only read: opening it must not wait for (or fail
        // on) the write lock another process holds, or `keys list` would need it.
        let version = self.user_version()?;
        self.check_version(version)?;
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        if version == 0 {
            return self.upgrade();
        }
        // A store of an earlier release: its keys work as they are, and the upgrade only adds
        // tables. So the upgrade does not wait for another process's write lock either: a busy
        // store is upgraded by the next open, or by the first write that needs the new tables
        // ([`KeyStore::ensure_current`]).
        self.conn.busy_timeout(Duration::ZERO)?;
        let upgraded = self.upgrade();
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        match upgraded {
            Err(StoreError::Busy) => Ok(()),
            other => other,
        }
    }

    /// Upgrades a store that [`KeyStore::migrate`] left at an earlier version because another
    /// process held its write lock. Cheap when the store is current.
    pub(crate) fn ensure_current(&self) -> Result<(), StoreError> {
        if self.user_version()? < SCHEMA_VERSION {
            self.upgrade()?;
        }
        Ok(())
    }

    fn user_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// Brings the schema to [`SCHEMA_VERSION`] in one transaction.
    fn upgrade(&self) -> Result<(), StoreError> {
        // IMMEDIATE: two processes opening a fresh directory at once must not both create tables.
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        self.check_version(version)?;
        if version < 1 {
            tx.execute_batch(SCHEMA_V1)?;
        }
        if version < 2 {
            tx.execute_batch(SCHEMA_V2)?;
        }
        if version < 3 {
            tx.execute_batch(SCHEMA_V3)?;
        }
        if version < SCHEMA_VERSION {
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn check_version(&self, version: i64) -> Result<(), StoreError> {
        if version > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                path: self.path.clone(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(())
    }

    /// Creates a key. The returned [`Secret`] is the only copy of the full key.
    pub fn create(
        &self,
        name: &str,
        policy: &str,
        expires_in: Option<Duration>,
    ) -> Result<(KeyInfo, Secret), StoreError> {
        self.begin_create(name, policy, expires_in)?.commit()
    }

    /// Creates a key in a transaction that [`PendingKey::commit`] completes. Names starting with
    /// `crl_` are refused (they would read as a key's prefix), and so are lifetimes shorter
    /// than [`MIN_LIFETIME`]. Holds the database's write lock until committed or dropped.
    pub fn begin_create(
        &self,
        name: &str,
        policy: &str,
        expires_in: Option<Duration>,
    ) -> Result<PendingKey<'_>, StoreError> {
        if !key::valid_name(name) {
            return Err(StoreError::InvalidName(key::shown_arg(name)));
        }
        if key::reads_as_key_ref(name) {
            return Err(StoreError::ReservedName(key::shown_arg(name)));
        }
        if !key::valid_name(policy) {
            return Err(StoreError::InvalidPolicy(key::shown_arg(policy)));
        }
        if expires_in.is_some_and(|d| d < MIN_LIFETIME) {
            return Err(StoreError::ExpiryTooShort);
        }
        let now = Utc::now();
        let expires_at = match expires_in {
            None => None,
            Some(d) => Some(
                chrono::Duration::from_std(d)
                    .ok()
                    .and_then(|d| now.checked_add_signed(d))
                    // Past year 9999 a time has no RFC 3339 form for `keys list --json`.
                    .filter(|t| t.year() <= 9999)
                    .ok_or(StoreError::InvalidExpiry)?,
            ),
        };
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let (info, secret) = insert_key(&tx, name, policy, now, expires_at)?;
        Ok(PendingKey { tx, info, secret })
    }

    /// All keys, revoked ones included, oldest first. Never contains secrets.
    pub fn list(&self) -> Result<Vec<KeyInfo>, StoreError> {
        Ok(self.rows()?.into_iter().map(|r| r.info).collect())
    }

    fn rows(&self) -> Result<Vec<Row8>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM keys ORDER BY created_at, rowid"
        ))?;
        let raw = stmt
            .query_map([], raw_row)?
            .collect::<Result<Vec<_>, _>>()?;
        raw.into_iter().map(row8).collect()
    }

    /// Revokes the active (or expired) key with this name, id, `crl_<id>` prefix or full key. An
    /// argument that is one key's name and another's id is refused as ambiguous.
    pub fn revoke(&self, name_or_id: &str) -> Result<KeyInfo, StoreError> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let mut row = find_active(&tx, name_or_id)?;
        let now = Utc::now();
        tx.execute(
            "UPDATE keys SET revoked_at = ?1 WHERE id = ?2",
            params![to_millis(now), row.info.id],
        )?;
        tx.commit()?;
        row.info.revoked_at = Some(truncate_ms(now));
        Ok(row.info)
    }

    /// Replaces the active key with this name (or id) by a fresh one with the same name, policy
    /// and expiry time; the old key is revoked and kept for the record.
    pub fn rotate(&self, name_or_id: &str) -> Result<(KeyInfo, Secret), StoreError> {
        self.begin_rotate(name_or_id)?.commit()
    }

    /// [`KeyStore::rotate`] in a transaction that [`PendingKey::commit`] completes. An expired
    /// key is refused (its successor would be dead on arrival), and so is an ambiguous argument
    /// (see [`KeyStore::revoke`]).
    pub fn begin_rotate(&self, name_or_id: &str) -> Result<PendingKey<'_>, StoreError> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let old = find_active(&tx, name_or_id)?;
        let now = Utc::now();
        if let Some(expired_at) = old.info.expires_at.filter(|&e| now >= e) {
            return Err(StoreError::Expired {
                name: old.info.name,
                expired_at,
            });
        }
        tx.execute(
            "UPDATE keys SET revoked_at = ?1 WHERE id = ?2",
            params![to_millis(now), old.info.id],
        )?;
        let (info, secret) = insert_key(
            &tx,
            &old.info.name,
            &old.info.policy,
            now,
            old.info.expires_at,
        )?;
        Ok(PendingKey { tx, info, secret })
    }

    /// Every key (revoked ones marked as such) for authentication.
    pub fn snapshot(&self) -> Result<KeySnapshot, StoreError> {
        let mut keys = Vec::new();
        for r in self.rows()? {
            let secret_sha256: [u8; 32] =
                r.secret_sha256
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::CorruptRow {
                        id: r.info.id.clone(),
                        what: "secret hash is not 32 bytes",
                    })?;
            keys.push(SnapshotKey {
                revoked: r.info.revoked_at.is_some(),
                secret_sha256,
                entry: KeyEntry {
                    id: r.info.id,
                    name: r.info.name,
                    policy: r.info.policy,
                    expires_at: r.info.expires_at,
                },
            });
        }
        Ok(KeySnapshot::new(keys))
    }

    /// SQLite's `PRAGMA data_version`: changes whenever another connection commits to the
    /// database (this connection's own writes do not change it). Cheap enough to poll.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// Records when keys were last used, in one transaction. Unknown ids are ignored and a time
    /// earlier than the stored one never moves it back.
    pub fn record_last_used(&self, uses: &[(String, DateTime<Utc>)]) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE keys SET last_used_at = ?2 \
                 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
            )?;
            for (id, at) in uses {
                stmt.execute(params![id, to_millis(*at)])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

fn truncate_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

type RawRow = (
    String,
    String,
    String,
    Vec<u8>,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

fn raw_row(r: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn row8(raw: RawRow) -> Result<Row8, StoreError> {
    let (id, name, policy, secret_sha256, created, last_used, expires, revoked) = raw;
    Ok(Row8 {
        info: KeyInfo {
            prefix: format!("{KEY_PREFIX}{id}"),
            created_at: from_millis(&id, created)?,
            last_used_at: opt_from_millis(&id, last_used)?,
            expires_at: opt_from_millis(&id, expires)?,
            revoked_at: opt_from_millis(&id, revoked)?,
            name,
            policy,
            id,
        },
        secret_sha256,
    })
}

/// The unrevoked key with this name, or with this id (bare, as the `crl_<id>` prefix, or as the
/// full key: a leaked key is revoked by pasting it). When the argument is one key's name and
/// another key's id, neither is chosen: acting on the wrong key (revoking a bystander, leaving a
/// leaked key working) is worse than asking again.
fn find_active(conn: &Connection, name_or_id: &str) -> Result<Row8, StoreError> {
    let by_name = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM keys WHERE name = ?1 AND revoked_at IS NULL"),
            params![name_or_id],
            raw_row,
        )
        .optional()?;
    let id = match key::parse(name_or_id) {
        Some((id, _secret)) => id,
        None => name_or_id.strip_prefix(KEY_PREFIX).unwrap_or(name_or_id),
    };
    let by_id = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM keys WHERE id = ?1 AND revoked_at IS NULL"),
            params![id],
            raw_row,
        )
        .optional()?;
    match (by_name, by_id) {
        (Some(named), Some(with_id)) if named.0 != with_id.0 => Err(StoreError::Ambiguous {
            arg: key::shown_arg(name_or_id),
            named: format!("{KEY_PREFIX}{}", named.0),
            with_id: format!("{KEY_PREFIX}{}", with_id.0),
        }),
        (Some(r), _) | (None, Some(r)) => row8(r),
        (None, None) => Err(revoked_or_not_found(conn, name_or_id, id)),
    }
}

/// The error for an argument that names no active key: when it names a revoked one (the most
/// recently revoked, for a name that was rotated), say so rather than that nothing exists.
fn revoked_or_not_found(conn: &Connection, name_or_id: &str, id: &str) -> StoreError {
    let revoked: Option<(String, i64)> = conn
        .query_row(
            "SELECT id, revoked_at FROM keys WHERE (name = ?1 OR id = ?2) \
             AND revoked_at IS NOT NULL ORDER BY revoked_at DESC, rowid DESC LIMIT 1",
            params![name_or_id, id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .unwrap_or(None);
    match revoked.and_then(|(id, at)| Some((id, DateTime::from_timestamp_millis(at)?))) {
        Some((id, revoked_at)) => StoreError::AlreadyRevoked {
            arg: key::shown_arg(name_or_id),
            prefix: format!("{KEY_PREFIX}{id}"),
            revoked_at,
        },
        None => StoreError::NotFound(key::shown_arg(name_or_id)),
    }
}

/// The error for a name already held: an expired holder is named as such, since it is not
/// obvious that a key nobody can use still keeps its name until revoked.
fn duplicate(conn: &Connection, name: &str, now: DateTime<Utc>) -> StoreError {
    let expires: Option<Option<i64>> = conn
        .query_row(
            "SELECT expires_at FROM keys WHERE name = ?1 AND revoked_at IS NULL",
            params![name],
            |r| r.get(0),
        )
        .optional()
        .unwrap_or(None);
    match expires
        .flatten()
        .and_then(DateTime::from_timestamp_millis)
        .filter(|&e| now >= e)
    {
        Some(expired_at) => StoreError::DuplicateExpired {
            name: name.to_string(),
            expired_at,
        },
        None => StoreError::DuplicateName(name.to_string()),
    }
}

fn insert_key(
    conn: &Connection,
    name: &str,
    policy: &str,
    now: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(KeyInfo, Secret), StoreError> {
    // An id collision (~2^-71 per pair) is retried rather than surfaced.
    for _ in 0..4 {
        let (id, secret, hash) = key::generate()?;
        let res = conn.execute(
            "INSERT INTO keys (id, name, policy, secret_sha256, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                id,
                name,
                policy,
                hash.as_slice(),
                to_millis(now),
                expires_at.map(to_millis)
            ],
        );
        match res {
            Ok(_) => {
                let info = KeyInfo {
                    prefix: format!("{KEY_PREFIX}{id}"),
                    id,
                    name: name.to_string(),
                    policy: policy.to_string(),
                    created_at: truncate_ms(now),
                    last_used_at: None,
                    expires_at: expires_at.map(truncate_ms),
                    revoked_at: None,
                };
                return Ok((info, secret));
            }
            Err(rusqlite::Error::SqliteFailure(e, Some(msg)))
                if e.code == ErrorCode::ConstraintViolation && msg.contains("keys.name") =>
            {
                return Err(duplicate(conn, name, now));
            }
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == ErrorCode::ConstraintViolation =>
            {
                continue;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::CorruptRow {
        id: String::new(),
        what: "could not allocate a unique key id",
    })
}
