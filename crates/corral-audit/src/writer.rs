//! The writer: a channel in front of a thread that appends chained lines, flushes in batches
//! and rotates, and that rides out a log it cannot write (or that was removed) without
//! stopping.

use std::collections::VecDeque;
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions, TryLockError};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use serde_json::json;
use tokio::sync::mpsc;

use crate::canon::{check_line, seal, LineFault, GENESIS_PREV};
use crate::error::io_err;
use crate::line::seal_record;
use crate::record::{action, ECS_VERSION};
use crate::{AuditError, AuditRecord};

mod pacer;

use pacer::Pacer;

/// While records keep coming, the writer looks for more on a timer instead of being woken for
/// each one: a batch of records costs one `write` and no wake-up of the writer thread per
/// request. This is the shortest wait between looks, kept while each look finds a busy gate's
/// worth of records ([`pacer::BUSY_BATCH`]).
pub const BATCH_INTERVAL: Duration = Duration::from_millis(2);

/// The longest wait between looks, and so the longest a record waits before it reaches the
/// file. While looks find only a few records the wait doubles up to this, so a gate serving a
/// trickle of requests wakes its writer about 60 times a second rather than 500.
pub const MAX_BATCH_DELAY: Duration = Duration::from_millis(16);

/// While the log cannot be written, the writer tries again (reopening the file) this often.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// While the log cannot be written, the writer keeps at most this many records in memory
/// (about 5 MB) and writes them, in order, once it can. Records beyond it are counted, not
/// kept: the count goes into the `audit_restart` record written on recovery (`corral.restart.lost`).
pub const MAX_KEPT: usize = 10_000;

/// The smallest `Rotation::max_bytes` accepted (other than 0, no rotation): a file holds at
/// least one line of the longest length the verifier reads ([`crate::MAX_LINE_BYTES`]).
pub const MIN_ROTATE_BYTES: u64 = 64 * 1024;

/// Bytes gathered before a write. A gate at 40,000 requests/s queues about 80 records
/// (~60 KiB) per [`BATCH_INTERVAL`]; they reach the file in one or two writes, not eight.
const WRITE_BUFFER: usize = 64 * 1024;

/// How far back from the end of a file a restart looks for the last intact record.
const TAIL_WINDOW: u64 = 1024 * 1024;

/// `corral.restart.reason` of the restart records.
const TORN: &str = "the log ended in a torn or corrupt line";
const UNWRITABLE: &str = "the log could not be written";
const REPLACED: &str = "the log file was removed or replaced while open";

/// Size-based rotation: when the next line would take the current file past `max_bytes`, it is
/// renamed to `<name>.1` (older ones shift up) and at most `keep` old files are kept.
/// `max_bytes == 0` disables rotation; otherwise it must be at least [`MIN_ROTATE_BYTES`].
/// `keep == 0` discards the old file on rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub max_bytes: u64,
    pub keep: usize,
}

impl Default for Rotation {
    fn default() -> Rotation {
        Rotation {
            max_bytes: 64 * 1024 * 1024,
            keep: 5,
        }
    }
}

/// Entry point: opens a log for appending.
#[derive(Debug)]
pub struct AuditLog;

impl AuditLog {
    /// Opens `path` (creating its parent directory with mode 0700 and the file with mode 0600,
    /// tightening an existing file that is group/other accessible) and continues its chain, or
    /// the chain of its newest rotated file. If the file ends in a torn or corrupt line, an
    /// `audit_restart` record is appended first so that verification reports the damage. A
    /// path naming a directory, or a file whose first line is not a record's beginning, is
    /// refused with [`AuditError::NotALog`] before anything is created or changed.
    ///
    /// Only one writer per log: the writer holds an exclusive lock on `<path>.lock` (a file
    /// beside the log, which rotation does not rename) for its life, and opening a log whose
    /// lock is held fails with [`AuditError::Locked`]. Readers (verification) take no lock.
    pub fn open(path: &Path, rotation: Rotation) -> Result<(AuditHandle, AuditWorker), AuditError> {
        let writer = Writer::open(path, rotation)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let writing = Arc::new(AtomicBool::new(true));
        Ok((
            AuditHandle {
                tx,
                writing: Arc::clone(&writing),
            },
            AuditWorker {
                rx,
                writer,
                writing,
            },
        ))
    }
}

/// `<path>.lock`.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".lock");
    PathBuf::from(s)
}

/// Cheap to clone; every clone feeds the same worker.
#[derive(Debug, Clone)]
pub struct AuditHandle {
    tx: mpsc::UnboundedSender<AuditRecord>,
    writing: Arc<AtomicBool>,
}

impl AuditHandle {
    /// Queues a record without waiting (so it can be called from `Drop`, and a request never
    /// waits on the disk). While the log can be written the queue is unbounded: memory grows
    /// only while the disk is slower than the request rate. While it cannot
    /// ([`AuditHandle::is_writing`] is false), the writer keeps up to [`MAX_KEPT`] records for
    /// when it can and counts the rest as lost. Fails only when the worker has stopped.
    pub fn record(&self, rec: AuditRecord) -> Result<(), AuditError> {
        self.tx.send(rec).map_err(|_| AuditError::Closed)
    }

    /// Whether records reach the log: false from the moment a write fails until the writer
    /// has reopened the log and written what it kept, and after the worker has stopped.
    /// A caller that must not act unaudited (the gate) refuses work while this is false.
    /// Two atomic loads; cheap enough for every request.
    pub fn is_writing(&self) -> bool {
        self.writing.load(Ordering::Relaxed) && !self.tx.is_closed()
    }
}

/// Owns the file. Run it once; it returns after every [`AuditHandle`] is dropped and the queue
/// is drained, with everything flushed and fsynced.
#[derive(Debug)]
pub struct AuditWorker {
    rx: mpsc::UnboundedReceiver<AuditRecord>,
    writer: Writer,
    writing: Arc<AtomicBool>,
}

impl AuditWorker {
    /// Drives the writer on tokio's blocking pool (file I/O blocks).
    pub async fn run(self) -> Result<(), AuditError> {
        tokio::task::spawn_blocking(move || self.run_blocking())
            .await
            .map_err(|e| AuditError::Worker(e.to_string()))?
    }

    /// The same loop on the calling thread; must not be called from an async context.
    ///
    /// Drains what is queued, flushes it with one write, then sleeps as [`Pacer`] says and
    /// looks again; after [`pacer::IDLE_PARK`] without records it parks until the next one, which is
    /// written at once. Before each flush it checks that the path still names the open file
    /// (one `stat` per batch) and starts a new file there if not.
    ///
    /// A failed write does not stop it: it clears [`AuditHandle::is_writing`], keeps the records
    /// (up to [`MAX_KEPT`]), reopens the log every [`RETRY_INTERVAL`] and, once it can write
    /// again, writes an `audit_restart` record and the kept records in order. It returns an
    /// error only when its handles are gone while the log still cannot be written
    /// ([`AuditError::Unwritten`], counting the records lost).
    pub fn run_blocking(mut self) -> Result<(), AuditError> {
        let mut pacer = Pacer::default();
        let mut found = 0usize;
        loop {
            let rec = match self.rx.try_recv() {
                Ok(r) => r,
                Err(mpsc::error::TryRecvError::Empty) => {
                    if found > 0 {
                        if let Err(e) = self.writer.end_batch() {
                            self.ride_out(e)?;
                            pacer = Pacer::default();
                        }
                    }
                    let next = pacer.after(found);
                    found = 0;
                    match next {
                        Some(wait) => {
                            std::thread::sleep(wait);
                            continue;
                        }
                        None => match self.rx.blocking_recv() {
                            Some(r) => r,
                            None => break,
                        },
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            };
            found += 1;
            if let Err(e) = self.writer.append(rec) {
                self.ride_out(e)?;
                pacer = Pacer::default();
                found = 0;
            }
        }
        if let Err(e) = self.writer.end_batch().and_then(|()| self.writer.finish()) {
            self.ride_out(e)?;
            self.writer.finish()?;
        }
        Ok(())
    }

    /// After a failed write: says so once (with the cause), clears the health flag, keeps the
    /// records not known to be in the file plus new ones up to [`MAX_KEPT`], and every
    /// [`RETRY_INTERVAL`] reopens the log and writes them. Returns once that worked (saying so
    /// once), or with [`AuditError::Unwritten`] when the handles are gone and one last try
    /// failed.
    fn ride_out(&mut self, cause: AuditError) -> Result<(), AuditError> {
        self.writing.store(false, Ordering::Relaxed);
        let started = Instant::now();
        let mut outage = Outage {
            since: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
            error: cause.to_string(),
            lost: 0,
        };
        tracing::warn!(
            "cannot write the audit log ({cause}); keeping up to {MAX_KEPT} records in memory and trying again every {}s",
            RETRY_INTERVAL.as_secs()
        );
        let mut next_try = started + RETRY_INTERVAL;
        let mut closed = false;
        loop {
            loop {
                match self.rx.try_recv() {
                    Ok(rec) if self.writer.unwritten.len() < MAX_KEPT => {
                        self.writer.unwritten.push_back(rec);
                    }
                    Ok(_) => {
                        if outage.lost == 0 {
                            tracing::warn!(
                                "{MAX_KEPT} audit records are waiting for the log; further ones are dropped and counted until it can be written"
                            );
                        }
                        outage.lost += 1;
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            if closed || Instant::now() >= next_try {
                match self.writer.recover(&outage) {
                    Ok(kept) => {
                        self.writing.store(true, Ordering::Relaxed);
                        tracing::warn!(
                            "the audit log can be written again after {:.1}s: {kept} record(s) kept in memory were written, {} lost",
                            started.elapsed().as_secs_f64(),
                            outage.lost
                        );
                        return Ok(());
                    }
                    Err(e) if closed => {
                        return Err(AuditError::Unwritten {
                            records: self.writer.unwritten.len() as u64 + outage.lost,
                            cause: Box::new(e),
                        });
                    }
                    Err(e) => {
                        tracing::debug!("the audit log still cannot be written: {e}");
                        next_try = Instant::now() + RETRY_INTERVAL;
                    }
                }
            }
            std::thread::sleep(MAX_BATCH_DELAY);
        }
    }
}

/// A time the log could not be written, as the restart record after it reports it.
#[derive(Debug)]
struct Outage {
    since: String,
    error: String,
    /// Records dropped beyond [`MAX_KEPT`].
    lost: u64,
}

#[derive(Debug)]
struct Writer {
    path: PathBuf,
    rotation: Rotation,
    out: BufWriter<File>,
    /// (device, inode) of the open file: when `path` names another file, or none, the log was
    /// removed or renamed away (by hand or by an external log rotator).
    id: (u64, u64),
    size: u64,
    next_seq: u64,
    prev: String,
    /// (seq, hash) of the last record the file is known to hold (seq 0 and the genesis `prev`
    /// before the first): the last one before the latest successful flush.
    written: (u64, String),
    /// Records not known to be in the file, oldest first: those appended since the last
    /// successful flush, then those kept while the log could not be written. After a failed
    /// write, or when the file is found gone, they are written again into the reopened file.
    unwritten: VecDeque<AuditRecord>,
    /// Reused for each line.
    line: String,
    /// `<path>.lock`, locked for the writer's life.
    _lock: File,
}

#[derive(Debug, Default)]
struct Tail {
    /// (seq, hash) of the last intact record.
    last: Option<(u64, String)>,
    /// Bytes after the last intact record that are not an intact record.
    junk: bool,
    /// Whole lines among those bytes (not just a line cut short at the end).
    corrupt: bool,
    /// The bytes after the final newline: a line cut short.
    fragment: Vec<u8>,
    ends_with_newline: bool,
}

/// Finds the last intact record of a file without reading more than needed.
fn read_tail(path: &Path) -> Result<Option<Tail>, AuditError> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    let len = f.metadata().map_err(io_err(path))?.len();
    if len == 0 {
        return Ok(None);
    }
    let mut window = TAIL_WINDOW.min(len);
    loop {
        let start = len - window;
        f.seek(SeekFrom::Start(start)).map_err(io_err(path))?;
        let mut buf = Vec::new();
        Read::by_ref(&mut f)
            .take(window)
            .read_to_end(&mut buf)
            .map_err(io_err(path))?;
        let mut tail = Tail {
            ends_with_newline: buf.last() == Some(&b'\n'),
            ..Tail::default()
        };
        let mut pieces: Vec<&[u8]> = buf.split(|&b| b == b'\n').collect();
        // After the final newline there is an empty piece (or a torn fragment).
        if let Some(last) = pieces.pop() {
            tail.junk = !last.is_empty();
            tail.fragment = last.to_vec();
        }
        // The first piece of a window that starts mid-file may be a partial line.
        let skip_first = start > 0;
        for (i, piece) in pieces.iter().enumerate().rev() {
            if i == 0 && skip_first {
                break;
            }
            match check_line(piece) {
                Ok((link, _)) => {
                    tail.last = Some((link.seq, link.hash));
                    break;
                }
                Err(_) => {
                    tail.junk = true;
                    tail.corrupt = true;
                }
            }
        }
        if tail.last.is_some() || start == 0 {
            return Ok(Some(tail));
        }
        window = len;
    }
}

/// How every line the writer seals begins (canonical JSON puts `@timestamp` first).
const RECORD_START: &[u8] = b"{\"@timestamp\":\"";

/// Refuses a path that names a directory or anything else that is not a regular file (a
/// device, FIFO or socket), or a regular file with content whose first line is not a record (or the beginning of one, cut short by a crash). An audit log path that names
/// the wrong file (`--audit-log /etc/passwd`, another program's JSON log) must be an error, not
/// a file appended to and made unreadable to everyone else. A complete first line must be a
/// sealed record: a JSON object with its `corral.chain` fields. A file that starts with NUL bytes
/// (blocks a crash left unwritten) is taken as a torn log and continued, as a torn last line
/// is. Checked before anything is created.
fn check_target(path: &Path) -> Result<(), AuditError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(path)(e)),
    };
    if meta.is_dir() {
        return Err(AuditError::NotALog {
            path: path.to_path_buf(),
            why: "is a directory",
        });
    }
    if !meta.is_file() {
        return Err(not_a_file(path));
    }
    let mut head = Vec::with_capacity(4096);
    File::open(path)
        .and_then(|f| f.take(FIRST_LINE_MAX).read_to_end(&mut head).map(|_| ()))
        .map_err(io_err(path))?;
    if starts_as_log(&head) {
        return Ok(());
    }
    Err(AuditError::NotALog {
        path: path.to_path_buf(),
        why: "exists and is not a corral audit log (its first line is not an audit record)",
    })
}

/// The log is locked through a file beside it, rotated by renaming it, continued from its last
/// record and fsynced: a device, FIFO or socket supports none of that. A FIFO would block the
/// writer in `open` for good, `/dev/null` would swallow every record while the gate serves, and
/// a pipe fails every fsync.
fn not_a_file(path: &Path) -> AuditError {
    AuditError::NotALog {
        path: path.to_path_buf(),
        why: "is not a regular file (a device, pipe or socket); the audit log must be a \
              file, which the gate locks, rotates and fsyncs (ship records elsewhere by \
              following the file, e.g. tail -F)",
    }
}

/// How much of an existing file is read to judge its first line; a record is far shorter.
const FIRST_LINE_MAX: u64 = 64 * 1024;

/// Whether `head`, the start of a file, is the start of an audit log: empty, NUL bytes a crash
/// left, a first line cut short that begins as a record does, or a complete first line that
/// is a sealed record.
fn starts_as_log(head: &[u8]) -> bool {
    if head.is_empty() || head[0] == 0 {
        return true;
    }
    match head.iter().position(|&b| b == b'\n') {
        // The writer never starts a file with a newline: an empty first line is not its own.
        Some(0) => false,
        Some(end) => is_sealed_record(&head[..end]),
        // No line end in what was read: a torn first line, or a line too long to be a record.
        None => {
            (head.len() as u64) < FIRST_LINE_MAX
                && (RECORD_START.starts_with(head) || head.starts_with(RECORD_START))
        }
    }
}

/// A line shaped as a sealed record: JSON with its chain fields. One whose content no longer
/// matches its hash is still the log's (edited, which `audit verify` reports), not another file.
fn is_sealed_record(line: &[u8]) -> bool {
    line.starts_with(RECORD_START) && !matches!(check_line(line), Err(LineFault::Malformed(_)))
}

/// Opens (creating) `<path>.lock` and locks it, or says who is in the way.
fn lock(path: &Path) -> Result<File, AuditError> {
    let lock = lock_path(path);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock)
        .map_err(io_err(&lock))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(TryLockError::WouldBlock) => Err(AuditError::Locked {
            log: path.to_path_buf(),
            lock,
        }),
        Err(TryLockError::Error(e)) => Err(io_err(&lock)(e)),
    }
}

/// Creates the log's directory (mode 0700) if it is missing.
fn make_parent(path: &Path) -> Result<(), AuditError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.exists() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(io_err(parent))?;
        }
    }
    Ok(())
}

/// The file, its size and its (device, inode).
fn open_append(path: &Path) -> Result<(File, u64, (u64, u64)), AuditError> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    let meta = f.metadata().map_err(io_err(path))?;
    // Only a regular file: never a device node the path may name (say, a symlink to one).
    if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
        f.set_permissions(Permissions::from_mode(0o600))
            .map_err(io_err(path))?;
    }
    Ok((f, meta.len(), (meta.dev(), meta.ino())))
}

fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl Writer {
    fn open(path: &Path, rotation: Rotation) -> Result<Writer, AuditError> {
        if rotation.max_bytes != 0 && rotation.max_bytes < MIN_ROTATE_BYTES {
            return Err(AuditError::RotationTooSmall {
                max_bytes: rotation.max_bytes,
            });
        }
        check_target(path)?;
        make_parent(path)?;
        let lock = lock(path)?;
        let current = read_tail(path)?;
        let mut last = current.as_ref().and_then(|t| t.last.clone());
        if last.is_none() {
            // A fresh file after rotation continues the chain of the newest rotated file:
            // `.1`, the first in number order (`.2` and on are older).
            for (_, p) in crate::rotated_files(path) {
                if let Some((seq, hash)) = read_tail(&p)?.and_then(|t| t.last) {
                    last = Some((seq, hash));
                    break;
                }
            }
        }
        let (file, size, id) = open_append(path)?;
        let written = last.clone().unwrap_or((0, GENESIS_PREV.to_string()));
        let mut w = Writer {
            path: path.to_path_buf(),
            rotation,
            out: BufWriter::with_capacity(WRITE_BUFFER, file),
            id,
            size,
            next_seq: written.0.saturating_add(1),
            prev: written.1.clone(),
            written,
            unwritten: VecDeque::new(),
            line: String::with_capacity(1024),
            _lock: lock,
        };
        if let Some(t) = current.filter(|t| t.junk) {
            if !t.ends_with_newline {
                w.write_raw(b"\n")?;
            }
            w.write_restart(json!({
                "reason": TORN,
                "after_seq": last.as_ref().map(|(s, _)| *s),
            }))?;
            w.flush()?;
        }
        Ok(w)
    }

    fn write_raw(&mut self, b: &[u8]) -> Result<(), AuditError> {
        self.out.write_all(b).map_err(io_err(&self.path))?;
        self.size += b.len() as u64;
        Ok(())
    }

    /// Appends an `audit_restart` record whose `corral.restart` is `restart`.
    fn write_restart(&mut self, restart: serde_json::Value) -> Result<(), AuditError> {
        let marker = json!({
            "@timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
            "ecs": { "version": ECS_VERSION },
            "event": {
                "kind": "event",
                "category": ["process"],
                "type": ["info"],
                "action": action::AUDIT_RESTART,
                "outcome": "unknown",
            },
            "corral": { "restart": restart },
        });
        let (mut line, hash) = seal(marker, self.next_seq, &self.prev);
        line.push('\n');
        self.write_line(&line, hash)
    }

    /// Appends a sealed line (with its newline), rotating first when it would not fit.
    fn write_line(&mut self, line: &str, hash: String) -> Result<(), AuditError> {
        let len = line.len() as u64;
        if self.rotation.max_bytes > 0 && self.size > 0 && self.size + len > self.rotation.max_bytes
        {
            self.rotate()?;
        }
        self.write_raw(line.as_bytes())?;
        self.next_seq = self.next_seq.saturating_add(1);
        self.prev = hash;
        Ok(())
    }

    /// Seals and buffers a record. It stays in `unwritten` until a flush succeeds.
    fn append(&mut self, rec: AuditRecord) -> Result<(), AuditError> {
        let mut line = std::mem::take(&mut self.line);
        let hash = seal_record(&rec, self.next_seq, &self.prev, &mut line);
        line.push('\n');
        let written = self.write_line(&line, hash);
        self.line = line;
        // After `write_line`: the flush of a rotation in it must not count this record.
        self.unwritten.push_back(rec);
        written
    }

    /// Ends a batch: flushes, after checking (one `stat`) that the path still names the open
    /// file. If it does not, a new file is started there that continues the chain; the batch
    /// goes to the old file if it was renamed (it still has a name), else into the new one.
    fn end_batch(&mut self) -> Result<(), AuditError> {
        if self.unwritten.is_empty() || self.at_path() {
            return self.flush();
        }
        tracing::warn!(
            "the audit log {} was removed or replaced while open; starting a new file there that continues the chain",
            self.path.display()
        );
        let renamed = self.out.get_ref().metadata().is_ok_and(|m| m.nlink() > 0);
        if renamed {
            self.flush()?;
        }
        self.reopen(REPLACED, None)?;
        Ok(())
    }

    /// Whether `path` still names the open file.
    fn at_path(&self) -> bool {
        fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id)
    }

    fn flush(&mut self) -> Result<(), AuditError> {
        self.out.flush().map_err(io_err(&self.path))?;
        self.unwritten.clear();
        let last = self.next_seq.saturating_sub(1);
        if self.written.0 != last {
            self.written = (last, self.prev.clone());
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), AuditError> {
        self.flush()?;
        self.out.get_ref().sync_all().map_err(io_err(&self.path))
    }

    /// After a failed write: reopens the log and writes what could not be written before.
    /// Returns how many kept records were written.
    fn recover(&mut self, outage: &Outage) -> Result<u64, AuditError> {
        self.reopen(UNWRITABLE, Some(outage))
    }

    /// Opens the path again (a new file if there is none) and continues the chain: from the
    /// file's last intact record when it is one of this writer's (records that reached the
    /// file before a failure are not written twice), else from the last record this writer
    /// wrote. A line the failed write cut short is finished if it is the start of the next
    /// record's. Then an `audit_restart` record saying why (and that the file ended in a torn
    /// line, if it still does), flushed on its own so the file never holds it without its
    /// predecessors, then the records in `unwritten`, and a flush. Returns how many records it
    /// wrote from `unwritten`; on failure every record not known to be in the file is back
    /// there.
    fn reopen(&mut self, reason: &str, outage: Option<&Outage>) -> Result<u64, AuditError> {
        make_parent(&self.path)?;
        // A FIFO (or socket) put in the log's place, to pipe it somewhere, is not opened: a FIFO
        // would hold the writer in `open` for good while the gate took the log for healthy.
        if fs::metadata(&self.path).is_ok_and(|m| {
            let t = m.file_type();
            t.is_fifo() || t.is_socket()
        }) {
            return Err(not_a_file(&self.path));
        }
        let tail = read_tail(&self.path)?.unwrap_or_default();
        if let Some((seq, hash)) = tail.last {
            let (w_seq, w_hash) = &self.written;
            let ahead = seq.saturating_sub(*w_seq);
            let ours = (seq == *w_seq && hash == *w_hash)
                || (seq > *w_seq && ahead <= self.unwritten.len() as u64);
            if ours {
                // These reached the file before the write failed.
                self.unwritten.drain(..ahead as usize);
                self.written = (seq, hash);
            }
        }
        let (file, size, id) = open_append(&self.path)?;
        // What the old buffer held is in `unwritten`: dropped without writing.
        let old = std::mem::replace(&mut self.out, BufWriter::with_capacity(WRITE_BUFFER, file));
        drop(old.into_parts());
        self.size = size;
        self.id = id;
        self.next_seq = self.written.0.saturating_add(1);
        self.prev = self.written.1.clone();

        let mut backlog = std::mem::take(&mut self.unwritten);
        let total = backlog.len() as u64;
        let mut torn = tail.junk;
        if !tail.corrupt && !tail.fragment.is_empty() {
            // A write cut short (disk full) leaves the start of the next record's line, byte
            // for byte (sealing is deterministic): finish that line instead of marking it torn.
            // Only that exact start is finished, so nothing else is taken for this writer's.
            match self.finish_line(backlog.front(), &tail.fragment) {
                Ok(true) => {
                    torn = false;
                    let done = backlog.pop_front();
                    if let Err(e) = self.flush() {
                        self.unwritten = done.into_iter().chain(backlog).collect();
                        return Err(e);
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    self.unwritten = backlog;
                    return Err(e);
                }
            }
        }
        let mut restart = json!({
            "reason": if torn { format!("{reason}; {TORN}") } else { reason.to_owned() },
            "after_seq": (self.written.0 > 0).then_some(self.written.0),
        });
        if let Some(o) = outage {
            restart["failed_at"] = o.since.clone().into();
            restart["error"] = o.error.clone().into();
            // The records after this one that were kept in memory.
            restart["kept"] = backlog.len().into();
            restart["lost"] = o.lost.into();
        }
        let marked = if torn && !tail.ends_with_newline {
            self.write_raw(b"\n")
        } else {
            Ok(())
        }
        .and_then(|()| self.write_restart(restart))
        .and_then(|()| self.flush());
        if let Err(e) = marked {
            self.unwritten = backlog;
            return Err(e);
        }
        let mut rest = backlog.into_iter();
        while let Some(rec) = rest.next() {
            if let Err(e) = self.append(rec) {
                self.unwritten.extend(rest);
                return Err(e);
            }
        }
        self.flush()?;
        Ok(total)
    }

    /// Writes the rest of `rec`'s line, sealed where the chain stands, if `fragment` is its
    /// start; says whether it did.
    fn finish_line(
        &mut self,
        rec: Option<&AuditRecord>,
        fragment: &[u8],
    ) -> Result<bool, AuditError> {
        let Some(rec) = rec else {
            return Ok(false);
        };
        let mut line = std::mem::take(&mut self.line);
        let hash = seal_record(rec, self.next_seq, &self.prev, &mut line);
        line.push('\n');
        let done = match line.as_bytes().strip_prefix(fragment) {
            Some(rest) => self.write_raw(rest).map(|()| true),
            None => Ok(false),
        };
        self.line = line;
        if done? {
            self.next_seq = self.next_seq.saturating_add(1);
            self.prev = hash;
            return Ok(true);
        }
        Ok(false)
    }

    fn rotate(&mut self) -> Result<(), AuditError> {
        self.finish()?;
        let keep = self.rotation.keep;
        for (n, p) in crate::rotated_files(&self.path) {
            if n as usize >= keep {
                fs::remove_file(&p).map_err(io_err(&p))?;
            }
        }
        if keep == 0 {
            fs::remove_file(&self.path).map_err(io_err(&self.path))?;
        } else {
            for n in (1..keep).rev() {
                let from = numbered(&self.path, n);
                if from.exists() {
                    let to = numbered(&self.path, n + 1);
                    fs::rename(&from, &to).map_err(io_err(&from))?;
                }
            }
            let to = numbered(&self.path, 1);
            fs::rename(&self.path, &to).map_err(io_err(&self.path))?;
        }
        let (file, size, id) = open_append(&self.path)?;
        if let Some(dir) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Make the renames durable; failure here loses nothing already written.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        self.out = BufWriter::with_capacity(WRITE_BUFFER, file);
        self.size = size;
        self.id = id;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
