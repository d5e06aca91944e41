//! corral's tamper-evident audit log.
//!
//! One NDJSON line per request, with ECS field names (`@timestamp`, `event.*`, `source.ip`,
//! `user.name`, `http.*`, `url.path`) and corral's own facts under `corral.*`. There is no field
//! for prompt content, bodies, headers or keys, and key-shaped strings are redacted.
//!
//! # Hash chain
//!
//! Every line carries `corral.chain.{seq, prev, hash}`. `seq` starts at 1 and grows by one per
//! record, across rotated files. `prev` is the previous record's `hash` (64 `0`s for the first
//! record). `hash` is computed as follows:
//!
//! 1. Build the record as a JSON object including `corral.chain.seq` and `corral.chain.prev`
//!    but not `corral.chain.hash`.
//! 2. Serialise it canonically: no whitespace, object keys sorted by their UTF-8 bytes, strings
//!    escaped as serde_json escapes them (`"`, `\`, control characters), integers in decimal.
//! 3. `hash = lowercase_hex(sha256(prev_as_64_hex_chars || canonical_bytes))`.
//! 4. Insert `corral.chain.hash` and write the canonical serialisation of the whole object plus
//!    `\n`.
//!
//! A verifier repeats steps 1-3 on each line, and also requires the line to be byte-for-byte
//! canonical (so duplicate keys or re-encodings are edits), then checks that `seq`
//! and `prev` continue the previous record.
//!
//! An unkeyed chain shows edits, removals and reordering inside the log; it cannot show
//! records removed from the end, nor a log rewritten from some point on by someone who
//! recomputes every later hash. Ship the log off the host (or keep the last hash elsewhere)
//! when that matters.
//!
//! # Restarts
//!
//! On open, the writer continues the chain from the last intact record. If the file ends in a
//! torn or corrupt line (a crash mid-write), it terminates that line and appends an
//! `event.action = "audit_restart"` record continuing from the last intact one. The verifier
//! reports such a torn line as a notice and goes on checking from the restart record, which
//! must continue the chain from the last intact record before the torn line: records cannot be
//! hidden behind a torn line. A line that is not a record and is not followed by such a
//! restart record is a failure, and so is a blank line, restart record or not: a write cut
//! short leaves the start of a record, never an empty line, so a blank one (an editor's or
//! `echo >>`'s trailing newline) was added to the file, and the verifier says so.
//!
//! The writer restarts the same way without stopping in two more cases, and its
//! `audit_restart` record says which in `corral.restart.reason`:
//!
//! - A write failed (disk full, I/O error). [`AuditHandle::is_writing`] turns false, the
//!   records not known to be in the file are kept in memory with those that come meanwhile
//!   (up to [`MAX_KEPT`]; the rest are counted), and every [`RETRY_INTERVAL`] the writer
//!   reopens the log. Once it can write, the restart record continues from the file's last
//!   intact record and carries `failed_at`, `error`, `kept` and `lost`; the kept records follow
//!   in order and `is_writing` turns true again. Records that reached the file before the
//!   failure are not written twice, and a line the failure cut short is finished when its
//!   bytes are the start of the next record's line (sealing is deterministic), so a full disk
//!   leaves a log that verifies; any other torn line is marked as above.
//! - The path no longer names the open file (removed, or renamed by an external log
//!   rotator; checked with one `stat` per batch). A new file is started there whose restart
//!   record continues the chain from the last record written, so verifying the new file alone
//!   reports that earlier records are in files not given. A batch that found its file renamed
//!   goes to that file; one that found it removed goes to the new file.
//!
//! # One writer per log
//!
//! The writer holds an exclusive lock on `<log>.lock` (see [`lock_path`]; beside the log
//! because rotation renames the log) for its life; a second writer is refused with
//! [`AuditError::Locked`]. Verification only reads and takes no lock.

mod canon;
mod error;
mod line;
mod record;
mod verify;
mod writer;

use std::path::{Path, PathBuf};

pub use canon::GENESIS_PREV;
pub use error::AuditError;
pub use record::{
    action, redact_keys, AuditRecord, Decision, Outcome, Text, TlsClient, ECS_VERSION,
    MAX_COMMON_NAMES,
};
pub use verify::{
    verify, verify_bytes, Notice, Problem, ProblemKind, Verifier, VerifyReport, MAX_LINE_BYTES,
    MAX_NOTICES,
};
pub use writer::{
    lock_path, AuditHandle, AuditLog, AuditWorker, Rotation, BATCH_INTERVAL, MAX_BATCH_DELAY,
    MAX_KEPT, MIN_ROTATE_BYTES, RETRY_INTERVAL,
};

/// Rotated files `<path>.<n>` that exist, as (n, path), ascending n.
pub(crate) fn rotated_files(path: &Path) -> Vec<(u64, PathBuf)> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Some(name) = name.to_str() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let f = e.file_name();
            let n = f
                .to_str()?
                .strip_prefix(name)?
                .strip_prefix('.')?
                .parse::<u64>()
                .ok()?;
            (n > 0).then(|| (n, path.with_file_name(f)))
        })
        .collect();
    out.sort_by_key(|(n, _)| *n);
    out
}

/// A log and its rotated files in chain order, oldest first: `<path>.N` … `<path>.1`, `<path>`.
/// `path` itself is always last, even when it does not exist (verification then reports it).
pub fn expand_rotated(path: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = rotated_files(path)
        .into_iter()
        .rev()
        .map(|(_, p)| p)
        .collect();
    out.push(path.to_path_buf());
    out
}

/// `files` without the writer's lock files (`<log>.lock`, see [`lock_path`]) of a log that is
/// among them too: `audit.ndjson*` from a shell lists the lock beside the log, and it holds no
/// records. Returns the files kept and the lock files left out.
pub fn without_lock_files(files: &[PathBuf]) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (locks, kept): (Vec<PathBuf>, Vec<PathBuf>) = files
        .iter()
        .cloned()
        .partition(|f| files.iter().any(|log| lock_path(log) == *f));
    (kept, locks)
}

/// Files of one log given in any order (`audit.ndjson*` from a shell lists the live log
/// first), put in chain order, oldest first: `<log>.N` … `<log>.1`, `<log>`. `None` unless every
/// file is `<log>` or `<log>.<n>` (n ≥ 1) of one `<log>` in one directory, each once: files of
/// other names are taken in the order given.
pub fn rotation_order(files: &[PathBuf]) -> Option<Vec<PathBuf>> {
    let mut log: Option<&str> = None;
    let mut numbered: Vec<(u64, &PathBuf)> = Vec::with_capacity(files.len());
    for f in files {
        let text = f.to_str()?;
        let (base, n) = match text.rsplit_once('.') {
            Some((base, digits))
                if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) =>
            {
                (base, digits.parse::<u64>().ok().filter(|&n| n > 0)?)
            }
            _ => (text, 0),
        };
        if *log.get_or_insert(base) != base {
            return None;
        }
        numbered.push((n, f));
    }
    // Newest (the live log, n = 0) last.
    numbered.sort_by_key(|&(n, _)| std::cmp::Reverse(n));
    if numbered.windows(2).any(|w| w[0].0 == w[1].0) {
        return None;
    }
    Some(numbered.into_iter().map(|(_, p)| p.clone()).collect())
}
