//! Checking a log (and its rotated files) against its hash chain.
//!
//! The verifier reads lines in order and keeps only the last record's link, so its memory does
//! not grow with the log. Some findings can only be named once a later line is seen: a seq
//! gap that a later line may fill (a drop or a reorder), lines that are not records (a crash's
//! torn write, if the writer's `audit_restart` record follows), and two records that claim the
//! same place in the chain (which one was inserted). Those wait in `Pending`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::canon::{check_line, LineFault, Link, GENESIS_PREV};
use crate::error::io_err;
use crate::record::action;
use crate::AuditError;

mod report;

pub use report::{Notice, Problem, ProblemKind, VerifyReport};

/// Lines longer than this are refused without being buffered further.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Most lines in a row that may be torn writes awaiting the writer's restart record. Each
/// crash leaves one, and the writer's next start writes its restart record at once: more
/// than a few in a row is not a log (a device like `/dev/urandom` would be read forever).
const MAX_TORN_LINES: u64 = 64;

/// Notices kept in a report; further ones are only counted.
pub const MAX_NOTICES: usize = 100;

/// A line's position: index into the files fed, and 1-based line number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    file: usize,
    line: u64,
}

/// The last record accepted into the chain.
#[derive(Debug)]
struct Last {
    seq: u64,
    prev: String,
    hash: String,
    at: Place,
}

/// A finding whose name depends on lines still to come.
#[derive(Debug)]
enum Pending {
    /// A record with a seq above the expected one: a drop, unless the expected seq turns up
    /// later (a reorder).
    Gap {
        problem: Problem,
        expected: u64,
        found: u64,
    },
    /// Lines that are not records, from `first` on: a torn write if the writer's
    /// `audit_restart` record follows and continues the chain; malformed otherwise.
    Torn {
        first: Place,
        why: &'static str,
        lines: u64,
    },
    /// `second` has the same seq and `prev` as `first`, the record before it. The record after
    /// them shows which one the chain continues from, and so which one was inserted.
    Fork {
        first: Last,
        second: Last,
        /// `second` is an `audit_restart` record on the line right after `first`: the writer
        /// found `first` without its final newline, took it for torn and restarted after the
        /// record before it.
        second_restarts: bool,
    },
}

/// What follows a pending finding.
enum Next<'a> {
    Record(&'a Link),
    Other,
    End,
}

const CRLF: &str = "the line ends in CR (the file was converted to CRLF line endings); \
                    convert it back to LF endings and verify again";

const BLANK: &str = "the line is blank: it is not a record, and the audit writer never writes \
                     one, not even when a crash cuts a write short (an editor or `echo >>` \
                     leaves one at the end of a file); if nothing else was changed, remove \
                     it and verify again";

/// Checks one line on its own; `Ok` carries whether it is an `audit_restart` record.
fn check(line: &[u8]) -> Result<(Link, bool), LineFault> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Err(LineFault::Blank);
    }
    if let Some(body) = line.strip_suffix(b"\r") {
        if check_line(body).is_ok() {
            return Err(LineFault::Edited(CRLF));
        }
    }
    let (link, v) = check_line(line)?;
    let restart = v.pointer("/event/action").and_then(Value::as_str) == Some(action::AUDIT_RESTART);
    Ok((link, restart))
}

/// What a record with seq `seq` claims to follow, as a verb phrase.
fn follows(seq: u64) -> String {
    if seq <= 1 {
        "start the log".to_string()
    } else {
        format!("follow seq {}", seq - 1)
    }
}

/// Incremental verifier: feed files oldest first, then [`Verifier::finish`].
#[derive(Debug, Default)]
pub struct Verifier {
    require_start: bool,
    paths: Vec<PathBuf>,
    records: u64,
    last: Option<Last>,
    first_seq: Option<u64>,
    from_genesis: bool,
    problem: Option<Problem>,
    pending: Option<Pending>,
    notices: Vec<Notice>,
    more_notices: u64,
    /// The restart record of the last torn-line notice.
    recovered_at: Option<Place>,
}

impl Verifier {
    pub fn new() -> Verifier {
        Verifier::default()
    }

    /// With `true`, a chain that does not start at the start of the log (seq 1) is a problem
    /// (`dropped`, at the first record) instead of being accepted as the remainder of a
    /// rotated log.
    pub fn require_start(mut self, yes: bool) -> Verifier {
        self.require_start = yes;
        self
    }

    /// Verifies files in chain order (oldest first). I/O errors are errors; problems in the
    /// content are in the report.
    pub fn check_files(mut self, paths: &[PathBuf]) -> Result<VerifyReport, AuditError> {
        for p in paths {
            let f = File::open(p).map_err(io_err(p))?;
            self.feed(p, BufReader::new(f))?;
        }
        Ok(self.finish())
    }

    /// Checks one file's lines, continuing the chain of the files fed before.
    pub fn feed<R: BufRead>(&mut self, file: &Path, mut reader: R) -> Result<(), AuditError> {
        self.paths.push(file.to_path_buf());
        let index = self.paths.len() - 1;
        let mut buf = Vec::with_capacity(1024);
        let mut line_no: u64 = 0;
        while self.problem.is_none() {
            buf.clear();
            let n = (&mut reader)
                .take(MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut buf)
                .map_err(io_err(file))?;
            if n == 0 {
                break;
            }
            line_no += 1;
            let at = Place {
                file: index,
                line: line_no,
            };
            let Some(line) = buf.strip_suffix(b"\n") else {
                let (kind, detail) = if buf.len() > MAX_LINE_BYTES {
                    (ProblemKind::Malformed, "line too long")
                } else {
                    (
                        ProblemKind::Truncated,
                        "last line is incomplete (no newline): the file was cut short",
                    )
                };
                self.settle();
                self.fail(at, kind, detail.to_string());
                break;
            };
            self.line(line, at);
        }
        Ok(())
    }

    fn problem_at(&self, at: Place, kind: ProblemKind, detail: String) -> Problem {
        Problem {
            file: self.paths.get(at.file).cloned().unwrap_or_default(),
            line: at.line,
            kind,
            detail,
        }
    }

    /// Records the first problem; later ones are ignored.
    fn fail(&mut self, at: Place, kind: ProblemKind, detail: String) {
        if self.problem.is_none() {
            self.problem = Some(self.problem_at(at, kind, detail));
        }
    }

    fn notice(&mut self, at: Place, detail: String) {
        if self.notices.len() < MAX_NOTICES {
            self.notices.push(Notice {
                file: self.paths.get(at.file).cloned().unwrap_or_default(),
                line: at.line,
                detail,
            });
        } else {
            self.more_notices += 1;
        }
    }

    /// `p` in words, as seen from a report about `from`: "line N" in the same file, else
    /// "FILE:N".
    fn name(&self, p: Place, from: Place) -> String {
        match self.paths.get(p.file) {
            Some(path) if p.file != from.file => format!("{}:{}", path.display(), p.line),
            _ => format!("line {}", p.line),
        }
    }

    /// Two places in words, as seen from a report about `from`.
    fn pair(&self, a: Place, b: Place, from: Place) -> String {
        if a.file == b.file && a.file == from.file {
            format!("lines {} and {}", a.line, b.line)
        } else {
            format!("{} and {}", self.name(a, from), self.name(b, from))
        }
    }

    fn line(&mut self, line: &[u8], at: Place) {
        let checked = check(line);
        let next = match &checked {
            Ok((link, _)) => Next::Record(link),
            Err(_) => Next::Other,
        };
        // Whether this line goes on to the chain check, once what was pending is settled.
        let goes_on = match self.pending.take() {
            None => true,
            Some(Pending::Gap {
                mut problem,
                expected,
                found,
            }) => {
                if matches!(next, Next::Record(l) if (expected..found).contains(&l.seq)) {
                    problem.kind = ProblemKind::Reordered;
                    problem.detail = format!(
                        "expected seq {expected}, found {found}; seq {expected} appears later in the log"
                    );
                    self.problem = Some(problem);
                } else {
                    self.pending = Some(Pending::Gap {
                        problem,
                        expected,
                        found,
                    });
                }
                false
            }
            Some(Pending::Torn { first, why, lines }) => match &checked {
                Err(LineFault::Malformed(_)) if lines >= MAX_TORN_LINES => {
                    self.fail(first, ProblemKind::Malformed, why.to_string());
                    false
                }
                Err(LineFault::Malformed(_)) => {
                    self.pending = Some(Pending::Torn {
                        first,
                        why,
                        lines: lines + 1,
                    });
                    false
                }
                Ok((link, true)) => {
                    if self.continues(link) {
                        let what = if lines == 1 {
                            "torn line (a write cut short by a crash)".to_string()
                        } else {
                            format!("{lines} torn lines from here (writes cut short by crashes)")
                        };
                        let detail = format!(
                            "{what}; the writer restarted the chain on {} to {}",
                            self.name(at, first),
                            follows(link.seq)
                        );
                        self.notice(first, detail);
                        self.recovered_at = Some(at);
                    }
                    // A restart that does not continue the chain is reported by the chain
                    // check, at the restart record.
                    true
                }
                _ => {
                    self.fail(first, ProblemKind::Malformed, why.to_string());
                    false
                }
            },
            Some(Pending::Fork {
                first,
                second,
                second_restarts,
            }) => self.resolve_fork(first, second, second_restarts, &next),
        };
        if goes_on {
            self.record(checked, at);
        }
    }

    /// Whether `link` continues the chain right after the last record.
    fn continues(&self, link: &Link) -> bool {
        self.last
            .as_ref()
            .is_none_or(|l| link.seq == l.seq.saturating_add(1) && link.prev == l.hash)
    }

    /// Names the inserted one of two records with the same place in the chain; true when the
    /// chain goes on (the writer's own restart after an unterminated record).
    fn resolve_fork(
        &mut self,
        first: Last,
        second: Last,
        second_restarts: bool,
        next: &Next<'_>,
    ) -> bool {
        let after = |h: &str| matches!(next, Next::Record(l) if l.seq == second.seq.saturating_add(1) && l.prev == h);
        let (after_first, after_second) = (after(&first.hash), after(&second.hash));
        if second_restarts && !after_first {
            let detail = format!(
                "record seq {} had no final newline when the gate restarted (a write cut short by a crash); the writer set it aside and restarted the chain on {} to {}",
                first.seq,
                self.name(second.at, first.at),
                follows(second.seq)
            );
            self.notice(first.at, detail);
            self.last = Some(second);
            return true;
        }
        let claim = |from: Place| {
            format!(
                "two records claim to {} ({})",
                follows(second.seq),
                self.pair(first.at, second.at, from)
            )
        };
        let (at, detail) = if after_second {
            let detail = format!(
                "{}; the chain continues from {}, so {} was inserted",
                claim(first.at),
                self.name(second.at, first.at),
                self.name(first.at, first.at)
            );
            (first.at, detail)
        } else if after_first {
            let detail = format!(
                "{}; the chain continues from {}, so {} was inserted",
                claim(second.at),
                self.name(first.at, second.at),
                self.name(second.at, second.at)
            );
            (second.at, detail)
        } else {
            let detail = format!("{}: one of them was inserted", claim(second.at));
            (second.at, detail)
        };
        self.fail(at, ProblemKind::Inserted, detail);
        if after_second {
            self.set_aside(&first);
        } else {
            self.last = Some(first);
        }
        false
    }

    /// Takes back the acceptance of `first`, the last record, found not to be in the chain
    /// (after the problem that names it is recorded).
    fn set_aside(&mut self, first: &Last) {
        self.records = self.records.saturating_sub(1);
        if self.recovered_at == Some(first.at) {
            // It was an inserted restart record: the notice that took it for the writer's is wrong.
            if self.more_notices > 0 {
                self.more_notices -= 1;
            } else {
                self.notices.pop();
            }
        }
        if self.records == 0 {
            self.first_seq = None;
            self.from_genesis = false;
        } else {
            // Only the seq and hash of the record before are known, and only they are used now.
            self.last = Some(Last {
                seq: first.seq.saturating_sub(1),
                prev: String::new(),
                hash: first.prev.clone(),
                at: first.at,
            });
        }
    }

    /// Checks a line against the chain (no finding pending).
    fn record(&mut self, checked: Result<(Link, bool), LineFault>, at: Place) {
        let (link, restart) = match checked {
            Ok(x) => x,
            Err(LineFault::Malformed(why)) => {
                self.pending = Some(Pending::Torn {
                    first: at,
                    why,
                    lines: 1,
                });
                return;
            }
            Err(LineFault::Edited(why)) => {
                self.fail(at, ProblemKind::Edited, why.to_string());
                return;
            }
            // Not a torn write that a restart record may follow: a failure here and now.
            Err(LineFault::Blank) => {
                self.fail(at, ProblemKind::Malformed, BLANK.to_string());
                return;
            }
        };
        let Some(last) = &self.last else {
            self.first_seq = Some(link.seq);
            self.from_genesis = link.seq == 1 && link.prev == GENESIS_PREV;
            if self.require_start && !self.from_genesis {
                let detail = if link.seq > 1 {
                    format!(
                        "the chain starts at seq {}, not at the start of the log: {} earlier record(s) are not in the files given (removed by rotation, or deleted)",
                        link.seq,
                        link.seq - 1
                    )
                } else {
                    "the first record does not start a log (its prev is not 64 zeros)".to_string()
                };
                self.fail(at, ProblemKind::Dropped, detail);
                return;
            }
            self.accept(link, at);
            return;
        };
        let expected = last.seq.saturating_add(1);
        if link.seq == expected {
            if link.prev == last.hash {
                self.accept(link, at);
            } else {
                let detail = format!(
                    "prev does not match the hash of the record before it ({}, seq {}): a record was removed or replaced",
                    self.name(last.at, at),
                    last.seq
                );
                self.fail(at, ProblemKind::Dropped, detail);
            }
            return;
        }
        if link.seq > expected {
            let detail = format!(
                "expected seq {expected}, found {}: {} record(s) missing",
                link.seq,
                link.seq - expected
            );
            self.pending = Some(Pending::Gap {
                problem: self.problem_at(at, ProblemKind::Dropped, detail),
                expected,
                found: link.seq,
            });
            return;
        }
        if link.seq == last.seq {
            if link.hash == last.hash {
                let detail = format!(
                    "the same record (seq {}) as {}: a line was copied",
                    link.seq,
                    self.name(last.at, at)
                );
                self.fail(at, ProblemKind::Duplicated, detail);
            } else if link.prev == last.prev {
                let second_restarts =
                    restart && last.at.file == at.file && last.at.line.saturating_add(1) == at.line;
                if let Some(first) = self.last.take() {
                    self.pending = Some(Pending::Fork {
                        first,
                        second: Last {
                            seq: link.seq,
                            prev: link.prev,
                            hash: link.hash,
                            at,
                        },
                        second_restarts,
                    });
                }
            } else {
                let detail = format!(
                    "a second record with seq {} (after {}) that does not {}: it was inserted",
                    link.seq,
                    self.name(last.at, at),
                    follows(link.seq)
                );
                self.fail(at, ProblemKind::Inserted, detail);
            }
            return;
        }
        let (kind, detail) = if self.first_seq.is_some_and(|first| link.seq >= first) {
            (
                ProblemKind::Duplicated,
                format!(
                    "seq {} again after seq {}: this line repeats an earlier record (copied, or altered and re-sealed)",
                    link.seq, last.seq
                ),
            )
        } else {
            (
                ProblemKind::Reordered,
                format!(
                    "seq {} after seq {}, before the first record given: records or files are out of order",
                    link.seq, last.seq
                ),
            )
        };
        self.fail(at, kind, detail);
    }

    fn accept(&mut self, link: Link, at: Place) {
        self.records += 1;
        self.last = Some(Last {
            seq: link.seq,
            prev: link.prev,
            hash: link.hash,
            at,
        });
    }

    /// Names what is pending as it stands, with nothing more to come.
    fn settle(&mut self) {
        match self.pending.take() {
            None => {}
            Some(Pending::Gap { problem, .. }) => {
                self.problem.get_or_insert(problem);
            }
            Some(Pending::Torn { first, why, .. }) => {
                self.fail(first, ProblemKind::Malformed, why.to_string());
            }
            Some(Pending::Fork {
                first,
                second,
                second_restarts,
            }) => {
                self.resolve_fork(first, second, second_restarts, &Next::End);
            }
        }
    }

    pub fn finish(mut self) -> VerifyReport {
        self.settle();
        // After a problem, the files up to the one it is in: the records verified before it
        // are in those, and the files after it were not read.
        let files = match &self.problem {
            Some(p) => self
                .paths
                .iter()
                .position(|path| *path == p.file)
                .map_or(self.paths.len(), |i| i + 1),
            None => self.paths.len(),
        };
        VerifyReport {
            records: self.records,
            files,
            first_problem: self.problem,
            first_seq: self.first_seq,
            last_seq: self.last.map(|l| l.seq),
            from_genesis: self.from_genesis,
            notices: self.notices,
            more_notices: self.more_notices,
        }
    }
}

/// Verifies files in chain order (oldest first, e.g. the output of [`crate::expand_rotated`]),
/// accepting a chain that starts after seq 1 (see [`Verifier::require_start`]).
/// I/O errors are errors; problems in the content are in the report.
pub fn verify(paths: &[PathBuf]) -> Result<VerifyReport, AuditError> {
    Verifier::new().check_files(paths)
}

/// Verifies one in-memory log; `label` names it in the report.
pub fn verify_bytes(label: &Path, bytes: &[u8]) -> VerifyReport {
    let mut v = Verifier::new();
    // Reading from a slice cannot fail.
    let _ = v.feed(label, bytes);
    v.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
