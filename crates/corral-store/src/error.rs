use std::path::PathBuf;

/// Errors of the key store. Messages name keys by name or public id, never by secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("key \"{0}\" already exists")]
    DuplicateName(String),
    #[error("no active key named or with id \"{0}\"")]
    NotFound(String),
    #[error("invalid key name \"{0}\": use 1-64 characters from A-Z a-z 0-9 . _ @ -")]
    InvalidName(String),
    #[error("invalid policy name \"{0}\": use 1-64 characters from A-Z a-z 0-9 . _ @ -")]
    InvalidPolicy(String),
    #[error("expiry is too far in the future")]
    InvalidExpiry,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: key database schema version {found} is newer than this corral understands ({supported})")]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("key database: corrupt row for key {id}: {what}")]
    CorruptRow { id: String, what: &'static str },
    #[error("key database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("operating system random number generator failed: {0}")]
    Rng(String),
}
