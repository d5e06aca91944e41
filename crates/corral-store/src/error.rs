use std::path::PathBuf;

use chrono::{DateTime, Utc};

/// Errors of the key store. Messages name keys by name or public id, never by secret. Names,
/// arguments and paths are shown quoted and escaped (`{:?}`), so that control characters in them
/// reach a terminal as text, not as commands.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("key {0:?} already exists")]
    DuplicateName(String),
    /// The name is held by a key that has expired but was never revoked.
    #[error("key {name:?} already exists; it expired at {expired_at} but still holds the name: revoke it to free the name")]
    DuplicateExpired {
        name: String,
        expired_at: DateTime<Utc>,
    },
    #[error("no active key named or with id {0:?}")]
    NotFound(String),
    /// The argument names only keys that were revoked (or rotated away): nothing to act on.
    #[error("key {arg:?} ({prefix}) was already revoked at {revoked_at}; no active key has that name or id")]
    AlreadyRevoked {
        arg: String,
        prefix: String,
        revoked_at: DateTime<Utc>,
    },
    /// The argument is the name of one key and the id (or prefix) of another.
    #[error("{arg:?} is ambiguous: it is the name of key {named} and the id of key {with_id}; refusing to guess: name the key by its id, written with or without \"crl_\" so that it is no key's name")]
    Ambiguous {
        arg: String,
        named: String,
        with_id: String,
    },
    #[error("invalid key name {0:?}: use 1-64 characters from A-Z a-z 0-9 . _ @ -")]
    InvalidName(String),
    #[error("invalid key name {0:?}: names starting with \"crl_\" would read as a key id")]
    ReservedName(String),
    #[error("invalid policy name {0:?}: use 1-64 characters from A-Z a-z 0-9 . _ @ -")]
    InvalidPolicy(String),
    #[error("expiry is too far in the future (the latest is the end of year 9999)")]
    InvalidExpiry,
    /// A lifetime shorter than [`crate::MIN_LIFETIME`]: the key would be dead on arrival.
    #[error("a key must live at least 1 second")]
    ExpiryTooShort,
    /// Rotating a key that has already expired would hand out a secret that is dead on arrival.
    #[error("key {name:?} expired at {expired_at} and cannot be rotated: revoke it and create a new one")]
    Expired {
        name: String,
        expired_at: DateTime<Utc>,
    },
    #[error("{path:?}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path:?}: key database schema version {found} is newer than this corral understands ({supported})")]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// An SQLite database with tables but no corral schema version: another program's.
    #[error("{path:?}: is an SQLite database of another program (it has tables, but is not a corral key store); refusing to change it: choose another data directory, or move the file away")]
    ForeignDatabase { path: PathBuf },
    #[error("key database: corrupt row for key {id:?}: {what}")]
    CorruptRow { id: String, what: &'static str },
    #[error("key database: corrupt allowance state for key name {name:?}: {what}")]
    CorruptAllowance { name: String, what: &'static str },
    /// Another process held the database's write lock for longer than the store waits.
    #[error(
        "key database: another process kept it locked for more than {secs} s (another `corral keys` \
         command still writing its output?); nothing was changed: try again",
        secs = crate::store::BUSY_TIMEOUT.as_secs()
    )]
    Busy,
    /// SQLite's message is part of this one and not kept as a source: rusqlite's error repeats
    /// it as its own source, and a report walking the chain would print it three times.
    #[error("key database: {0}")]
    Sqlite(rusqlite::Error),
    #[error("operating system random number generator failed: {0}")]
    Rng(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DatabaseBusy => {
                StoreError::Busy
            }
            _ => StoreError::Sqlite(e),
        }
    }
}
