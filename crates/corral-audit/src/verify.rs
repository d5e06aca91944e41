//! Checking a log (and its rotated files) against its hash chain.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::canon::{check_line, LineFault, GENESIS_PREV};
use crate::error::io_err;
use crate::record::action;
use crate::AuditError;

/// Lines longer than this are refused without being buffered further.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// What is wrong with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The record's content no longer matches its hash.
    Edited,
    /// One or more records are missing before this one (seq gap, or `prev` does not match the
    /// record before).
    Dropped,
    /// The record is out of order (its seq goes back, or a later line carries the missing seq).
    Reordered,
    /// Not JSON, or without valid chain fields.
    Malformed,
    /// The line was cut short (no final newline, or torn by a crash before a chain restart).
    Truncated,
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProblemKind::Edited => "edited",
            ProblemKind::Dropped => "dropped",
            ProblemKind::Reordered => "reordered",
            ProblemKind::Malformed => "malformed",
            ProblemKind::Truncated => "truncated",
        })
    }
}

/// The first problem found, located by file and 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: u64,
    pub kind: ProblemKind,
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.kind,
            self.detail
        )
    }
}

/// Result of a verification. `records` counts the records found intact before the first problem
/// (all of them when there is none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub records: u64,
    pub files: usize,
    pub first_problem: Option<Problem>,
    /// Seq of the first and last intact record.
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// True when the first record is the start of a log (`prev` = 64 zeros). False when earlier
    /// records live in rotated files that were not given or have been removed.
    pub from_genesis: bool,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.first_problem.is_none()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.first_problem {
            Some(p) => write!(
                f,
                "FAILED: {p}\n{} record(s) in {} file(s) verified before it",
                self.records, self.files
            ),
            None => {
                write!(
                    f,
                    "OK: {} record(s) in {} file(s) verified",
                    self.records, self.files
                )?;
                if let (Some(a), Some(b)) = (self.first_seq, self.last_seq) {
                    write!(f, ", seq {a}..{b}")?;
                    if !self.from_genesis {
                        write!(
                            f,
                            " (the chain starts at seq {a}; earlier records are in files not given)"
                        )?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// A record seen with a seq above the expected one; whether it is a drop or a reorder depends on
/// whether the expected seq turns up later.
#[derive(Debug)]
struct Gap {
    problem: Problem,
    expected: u64,
    found: u64,
}

/// A malformed line is a torn record if the writer restarted its chain on the next line.
#[derive(Debug)]
struct Suspect(Problem);

/// Incremental verifier: feed files oldest first, then [`Verifier::finish`].
#[derive(Debug, Default)]
pub struct Verifier {
    records: u64,
    files: usize,
    last: Option<(u64, String)>,
    first_seq: Option<u64>,
    from_genesis: bool,
    problem: Option<Problem>,
    gap: Option<Gap>,
    suspect: Option<Suspect>,
}

impl Verifier {
    pub fn new() -> Verifier {
        Verifier::default()
    }

    fn done(&self) -> bool {
        self.problem.is_some() && self.gap.is_none() && self.suspect.is_none()
    }

    /// Checks one file's lines, continuing the chain of the files fed before.
    pub fn feed<R: BufRead>(&mut self, file: &Path, mut reader: R) -> Result<(), AuditError> {
        self.files += 1;
        let mut buf = Vec::with_capacity(1024);
        let mut line_no: u64 = 0;
        while !self.done() {
            buf.clear();
            let n = (&mut reader)
                .take(MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut buf)
                .map_err(io_err(file))?;
            if n == 0 {
                break;
            }
            line_no += 1;
            let at = |kind, detail: &str| Problem {
                file: file.to_path_buf(),
                line: line_no,
                kind,
                detail: detail.to_string(),
            };
            let Some(line) = buf.strip_suffix(b"\n") else {
                if buf.len() > MAX_LINE_BYTES {
                    self.fail(at(ProblemKind::Malformed, "line too long"));
                    break;
                }
                self.fail(at(
                    ProblemKind::Truncated,
                    "last line is incomplete (no newline): the file was cut short",
                ));
                break;
            };
            self.line(line, at);
        }
        Ok(())
    }

    fn fail(&mut self, p: Problem) {
        if let Some(s) = self.suspect.take() {
            self.problem = Some(s.0);
        }
        if let Some(g) = self.gap.take() {
            self.problem = Some(g.problem);
        }
        if self.problem.is_none() {
            self.problem = Some(p);
        }
    }

    fn line(&mut self, line: &[u8], at: impl Fn(ProblemKind, &str) -> Problem) {
        let checked = check_line(line);
        if let Some(Suspect(p)) = self.suspect.take() {
            let restarted = checked.as_ref().is_ok_and(|(_, v)| {
                v.pointer("/event/action").and_then(|a| a.as_str()) == Some(action::AUDIT_RESTART)
            });
            self.problem = Some(if restarted {
                Problem {
                    kind: ProblemKind::Truncated,
                    detail: "record torn by an interrupted write; the writer restarted the chain on the next line".into(),
                    ..p
                }
            } else {
                p
            });
            return;
        }
        if let Some(gap) = &self.gap {
            if let Ok((link, _)) = &checked {
                if link.seq >= gap.expected && link.seq < gap.found {
                    if let Some(mut g) = self.gap.take() {
                        g.problem.kind = ProblemKind::Reordered;
                        g.problem.detail = format!(
                            "expected seq {}, found {}; seq {} appears later in the log",
                            g.expected, g.found, g.expected
                        );
                        self.problem = Some(g.problem);
                    }
                }
            }
            return;
        }
        let (link, _) = match checked {
            Ok(x) => x,
            Err(LineFault::Malformed(why)) => {
                self.suspect = Some(Suspect(at(ProblemKind::Malformed, why)));
                return;
            }
            Err(LineFault::Edited(why)) => {
                self.problem = Some(at(ProblemKind::Edited, why));
                return;
            }
        };
        match &self.last {
            None => {
                self.first_seq = Some(link.seq);
                self.from_genesis = link.prev == GENESIS_PREV;
            }
            Some((seq, hash)) => {
                let expected = seq.saturating_add(1);
                if link.seq == expected && &link.prev != hash {
                    self.problem = Some(at(
                        ProblemKind::Dropped,
                        "prev does not match the hash of the record before it (a record was removed or replaced)",
                    ));
                    return;
                }
                if link.seq > expected {
                    let detail = format!(
                        "expected seq {expected}, found {}: {} record(s) missing",
                        link.seq,
                        link.seq - expected
                    );
                    self.problem = Some(at(ProblemKind::Dropped, &detail));
                    self.gap = Some(Gap {
                        problem: at(ProblemKind::Dropped, &detail),
                        expected,
                        found: link.seq,
                    });
                    return;
                }
                if link.seq < expected {
                    self.problem = Some(at(
                        ProblemKind::Reordered,
                        &format!("seq goes back from {seq} to {}", link.seq),
                    ));
                    return;
                }
            }
        }
        self.records += 1;
        self.last = Some((link.seq, link.hash));
    }

    pub fn finish(mut self) -> VerifyReport {
        if let Some(s) = self.suspect.take() {
            self.problem = Some(s.0);
        }
        if let Some(g) = self.gap.take() {
            self.problem = Some(g.problem);
        }
        VerifyReport {
            records: self.records,
            files: self.files,
            first_problem: self.problem,
            first_seq: self.first_seq,
            last_seq: self.last.map(|(s, _)| s),
            from_genesis: self.from_genesis,
        }
    }
}

/// Verifies files in chain order (oldest first, e.g. the output of [`crate::expand_rotated`]).
/// I/O errors are errors; problems in the content are in the report.
pub fn verify(paths: &[PathBuf]) -> Result<VerifyReport, AuditError> {
    let mut v = Verifier::new();
    for p in paths {
        let f = File::open(p).map_err(io_err(p))?;
        v.feed(p, BufReader::new(f))?;
    }
    Ok(v.finish())
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
