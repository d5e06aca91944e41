use std::path::PathBuf;

/// Errors of the audit log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The cause is part of the message (and not also reported as the error's source, so a
    /// chain of causes shows it once).
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Another process (or another open log in this one) holds the lock beside the log.
    #[error(
        "another corral process is writing the audit log {log} (it holds the lock {lock}); \
         each log needs its own `corral serve`"
    )]
    Locked { log: PathBuf, lock: PathBuf },
    /// The path names something that is not an audit log: a directory, or a file whose first
    /// line no corral writer wrote. Nothing was created, changed or appended.
    #[error(
        "{path}: {why}; refusing to write the audit log there (and to change its mode): \
         choose another path, or move the file away"
    )]
    NotALog { path: PathBuf, why: &'static str },
    /// A rotation size so small that files would hold a handful of records, or none.
    #[error(
        "rotation size {max_bytes} bytes is below the minimum of {min} bytes (64 KiB)",
        min = crate::MIN_ROTATE_BYTES
    )]
    RotationTooSmall { max_bytes: u64 },
    /// Records the writer still held when it had to stop (its handles were dropped while the
    /// log could not be written).
    #[error("{records} audit record(s) could not be written: {cause}")]
    Unwritten {
        records: u64,
        cause: Box<AuditError>,
    },
    /// The writer has stopped (every handle was dropped, or its task ended); the record was
    /// not written.
    #[error("audit log writer has stopped")]
    Closed,
    #[error("audit log writer task failed: {0}")]
    Worker(String),
}

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
    move |error| AuditError::Io {
        path: path.to_path_buf(),
        error,
    }
}
