//! The writer: a channel in front of a thread that appends chained lines, flushes in batches
//! and rotates.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde_json::json;
use tokio::sync::mpsc;

use crate::canon::{check_line, seal, GENESIS_PREV};
use crate::error::io_err;
use crate::line::seal_record;
use crate::record::{action, ECS_VERSION};
use crate::{AuditError, AuditRecord};

/// While records keep coming, the writer looks for more on a timer instead of being woken for
/// each one: a batch of records costs one `write` and no wake-up of the writer thread per
/// request. This is the shortest wait between looks, kept while each look finds a busy gate's
/// worth of records ([`BUSY_BATCH`]).
pub const BATCH_INTERVAL: Duration = Duration::from_millis(2);

/// The longest wait between looks, and so the longest a record waits before it reaches the
/// file. While looks find only a few records the wait doubles up to this, so a gate serving a
/// trickle of requests wakes its writer about 60 times a second rather than 500.
pub const MAX_BATCH_DELAY: Duration = Duration::from_millis(16);

/// A look that finds at least this many records brings the wait back to [`BATCH_INTERVAL`].
const BUSY_BATCH: usize = 64;

/// Quiet time after which the writer parks until the next record, so an idle gate does not
/// keep waking up.
const IDLE_PARK: Duration = Duration::from_millis(100);

/// Bytes gathered before a write. A gate at 40,000 requests/s queues about 80 records
/// (~60 KiB) per [`BATCH_INTERVAL`]; they reach the file in one or two writes, not eight.
const WRITE_BUFFER: usize = 64 * 1024;

/// How far back from the end of a file a restart looks for the last intact record.
const TAIL_WINDOW: u64 = 1024 * 1024;

/// Size-based rotation: when the next line would take the current file past `max_bytes`, it is
/// renamed to `<name>.1` (older ones shift up) and at most `keep` old files are kept.
/// `max_bytes == 0` disables rotation; `keep == 0` discards the old file on rotation.
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
    /// `audit_restart` record is appended first so that verification reports the damage.
    pub fn open(path: &Path, rotation: Rotation) -> Result<(AuditHandle, AuditWorker), AuditError> {
        let writer = Writer::open(path, rotation)?;
        let (tx, rx) = mpsc::unbounded_channel();
        Ok((AuditHandle { tx }, AuditWorker { rx, writer }))
    }
}

/// Cheap to clone; every clone feeds the same worker.
#[derive(Debug, Clone)]
pub struct AuditHandle {
    tx: mpsc::UnboundedSender<AuditRecord>,
}

impl AuditHandle {
    /// Queues a record without waiting (so it can be called from `Drop`, and a request never
    /// waits on the disk). Records are never dropped: the queue is unbounded, and memory grows
    /// only while the disk is slower than the request rate. Fails only when the worker has stopped.
    pub fn record(&self, rec: AuditRecord) -> Result<(), AuditError> {
        self.tx.send(rec).map_err(|_| AuditError::Closed)
    }
}

/// Owns the file. Run it once; it returns after every [`AuditHandle`] is dropped and the queue
/// is drained, with everything flushed and fsynced.
#[derive(Debug)]
pub struct AuditWorker {
    rx: mpsc::UnboundedReceiver<AuditRecord>,
    writer: Writer,
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
    /// looks again; after [`IDLE_PARK`] without records it parks until the next one, which is
    /// written at once.
    pub fn run_blocking(mut self) -> Result<(), AuditError> {
        let mut pacer = Pacer::default();
        let mut found = 0usize;
        loop {
            let rec = match self.rx.try_recv() {
                Ok(r) => r,
                Err(mpsc::error::TryRecvError::Empty) => {
                    if found > 0 {
                        self.writer.flush()?;
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
            if let Err(e) = self.writer.append(&rec) {
                // Keep what was written; handles see `Closed` from now on.
                let _ = self.writer.finish();
                return Err(e);
            }
        }
        self.writer.finish()
    }
}

/// When the writer looks for records next: pure, so its rules are tested without a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pacer {
    wait: Duration,
    /// Time slept since the last look that found a record.
    quiet: Duration,
}

impl Default for Pacer {
    fn default() -> Pacer {
        Pacer {
            wait: BATCH_INTERVAL,
            quiet: Duration::ZERO,
        }
    }
}

impl Pacer {
    /// After a look that found `found` records: how long to sleep before the next look, or
    /// `None` to park until a record comes (the pacer then starts over).
    fn after(&mut self, found: usize) -> Option<Duration> {
        if found == 0 {
            if self.quiet >= IDLE_PARK {
                *self = Pacer::default();
                return None;
            }
        } else {
            self.quiet = Duration::ZERO;
        }
        self.wait = if found >= BUSY_BATCH {
            BATCH_INTERVAL
        } else {
            (self.wait * 2).min(MAX_BATCH_DELAY)
        };
        if found == 0 {
            self.quiet += self.wait;
        }
        Some(self.wait)
    }
}

#[derive(Debug)]
struct Writer {
    path: PathBuf,
    rotation: Rotation,
    out: BufWriter<File>,
    size: u64,
    next_seq: u64,
    prev: String,
    /// Reused for each line.
    line: String,
}

#[derive(Debug, Default)]
struct Tail {
    /// (seq, hash) of the last intact record.
    last: Option<(u64, String)>,
    /// Bytes after the last intact record that are not an intact record.
    junk: bool,
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
                Err(_) => tail.junk = true,
            }
        }
        if tail.last.is_some() || start == 0 {
            return Ok(Some(tail));
        }
        window = len;
    }
}

fn open_append(path: &Path) -> Result<(File, u64), AuditError> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    let meta = f.metadata().map_err(io_err(path))?;
    if meta.permissions().mode() & 0o077 != 0 {
        f.set_permissions(Permissions::from_mode(0o600))
            .map_err(io_err(path))?;
    }
    Ok((f, meta.len()))
}

fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl Writer {
    fn open(path: &Path, rotation: Rotation) -> Result<Writer, AuditError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.exists() {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(io_err(parent))?;
            }
        }
        let current = read_tail(path)?;
        let mut last = current.as_ref().and_then(|t| t.last.clone());
        if last.is_none() {
            // A fresh file after rotation continues the chain of the newest rotated file.
            for (_, p) in crate::rotated_files(path).into_iter().rev() {
                if let Some((seq, hash)) = read_tail(&p)?.and_then(|t| t.last) {
                    last = Some((seq, hash));
                    break;
                }
            }
        }
        let (file, size) = open_append(path)?;
        let (next_seq, prev) = match &last {
            Some((seq, hash)) => (seq.saturating_add(1), hash.clone()),
            None => (1, GENESIS_PREV.to_string()),
        };
        let mut w = Writer {
            path: path.to_path_buf(),
            rotation,
            out: BufWriter::with_capacity(WRITE_BUFFER, file),
            size,
            next_seq,
            prev,
            line: String::with_capacity(1024),
        };
        if let Some(t) = current.filter(|t| t.junk) {
            if !t.ends_with_newline {
                w.write_raw(b"\n")?;
            }
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
                "corral": { "restart": {
                    "reason": "the log ended in a torn or corrupt line",
                    "after_seq": last.as_ref().map(|(s, _)| *s),
                }},
            });
            w.write_value(marker)?;
            w.flush()?;
        }
        Ok(w)
    }

    fn write_raw(&mut self, b: &[u8]) -> Result<(), AuditError> {
        self.out.write_all(b).map_err(io_err(&self.path))?;
        self.size += b.len() as u64;
        Ok(())
    }

    fn write_value(&mut self, v: serde_json::Value) -> Result<(), AuditError> {
        let (mut line, hash) = seal(v, self.next_seq, &self.prev);
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

    fn append(&mut self, rec: &AuditRecord) -> Result<(), AuditError> {
        let mut line = std::mem::take(&mut self.line);
        let hash = seal_record(rec, self.next_seq, &self.prev, &mut line);
        line.push('\n');
        let written = self.write_line(&line, hash);
        self.line = line;
        written
    }

    fn flush(&mut self) -> Result<(), AuditError> {
        self.out.flush().map_err(io_err(&self.path))
    }

    fn finish(&mut self) -> Result<(), AuditError> {
        self.flush()?;
        self.out.get_ref().sync_all().map_err(io_err(&self.path))
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
        let (file, size) = open_append(&self.path)?;
        if let Some(dir) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Make the renames durable; failure here loses nothing already written.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        self.out = BufWriter::with_capacity(WRITE_BUFFER, file);
        self.size = size;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_trickle_of_records_stretches_the_wait_to_its_bound() {
        let mut p = Pacer::default();
        let waits: Vec<_> = (0..6).map(|_| p.after(3).unwrap()).collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(waits, [ms(4), ms(8), ms(16), ms(16), ms(16), ms(16)]);
    }

    #[test]
    fn a_busy_look_brings_the_wait_back_to_the_shortest() {
        let mut p = Pacer::default();
        for _ in 0..5 {
            p.after(1);
        }
        assert_eq!(p.after(BUSY_BATCH), Some(BATCH_INTERVAL));
        assert_eq!(p.after(BUSY_BATCH * 10), Some(BATCH_INTERVAL));
        assert_eq!(p.after(BUSY_BATCH - 1), Some(BATCH_INTERVAL * 2));
    }

    #[test]
    fn quiet_looks_park_the_writer_after_the_idle_time_and_it_starts_over() {
        let mut p = Pacer::default();
        p.after(5);
        let mut slept = Duration::ZERO;
        let mut looks = 0;
        while let Some(wait) = p.after(0) {
            assert!(wait <= MAX_BATCH_DELAY);
            slept += wait;
            looks += 1;
            assert!(looks < 100, "never parks");
        }
        assert!(slept >= IDLE_PARK, "parked after {slept:?}");
        assert!(
            slept < IDLE_PARK + MAX_BATCH_DELAY,
            "parked late: {slept:?}"
        );
        assert_eq!(p, Pacer::default());
        // A record in the quiet time resets it.
        let mut q = Pacer::default();
        for _ in 0..4 {
            q.after(0);
        }
        q.after(1);
        assert_eq!(q.quiet, Duration::ZERO);
    }

    #[test]
    fn every_wait_stays_within_its_bounds() {
        let mut p = Pacer::default();
        // A quiet spell long enough to park in every thousand looks, then trickling and busy
        // looks in a fixed mix (37 and 100 are coprime: every count 0..100, scrambled).
        let mut parked = [false; 10];
        let mut woken = false;
        for i in 0..10_000usize {
            let found = if woken {
                1 // the record that woke the parked writer
            } else if i % 1000 < 60 {
                0
            } else {
                (i * 37) % 100
            };
            woken = false;
            if let Some(w) = p.after(found) {
                assert!((BATCH_INTERVAL..=MAX_BATCH_DELAY).contains(&w), "{w:?}");
            } else {
                assert_eq!(found, 0);
                assert!(i % 1000 < 60, "parked outside a quiet spell at look {i}");
                parked[i / 1000] = true;
                woken = true;
            }
        }
        assert_eq!(parked, [true; 10], "every quiet spell parks");
    }
}
