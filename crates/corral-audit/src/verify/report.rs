//! What a verification found: the first problem, notices, and the report printed.

use std::fmt;
use std::path::PathBuf;

/// What is wrong with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The record's content no longer matches its hash (or the line is no longer in the exact
    /// form the writer wrote, e.g. CRLF line endings).
    Edited,
    /// One or more records are missing before this one (seq gap, or `prev` does not match the
    /// record before), or the start of the log is missing when it is required.
    Dropped,
    /// The record is out of order (a later line carries the missing seq, or the record belongs
    /// before the start of the chain given).
    Reordered,
    /// The record appears a second time, or repeats a seq the chain has already passed.
    Duplicated,
    /// Another record holds the same place in the chain (same seq, same `prev`): one of the two
    /// was inserted.
    Inserted,
    /// Not JSON, or without valid chain fields, and not a torn write the writer recovered from;
    /// or a blank line, which the writer never writes (the detail says "the line is blank").
    Malformed,
    /// The last line was cut short (no final newline).
    Truncated,
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProblemKind::Edited => "edited",
            ProblemKind::Dropped => "dropped",
            ProblemKind::Reordered => "reordered",
            ProblemKind::Duplicated => "duplicated",
            ProblemKind::Inserted => "inserted",
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

/// Damage that a crash leaves and the writer recovered from (a torn line followed by its
/// `audit_restart` record, which continues the chain from the last intact record). Reported,
/// but not a failure: nothing in the chain is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub file: PathBuf,
    pub line: u64,
    pub detail: String,
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.detail)
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
    /// True when the first record is the start of a log (seq 1, `prev` = 64 zeros). False when
    /// earlier records live in rotated files that were not given or have been removed, or were
    /// deleted.
    pub from_genesis: bool,
    /// Recovered crashes, in log order; at most [`crate::MAX_NOTICES`].
    pub notices: Vec<Notice>,
    /// Notices beyond [`crate::MAX_NOTICES`], counted only.
    pub more_notices: u64,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.first_problem.is_none()
    }

    /// How many records came before the first one checked, when the chain checked does not
    /// start at the start of the log: they are in files not given, were removed by rotation,
    /// or were deleted. `None` when the chain starts at seq 1 or no record was checked.
    pub fn missing_before(&self) -> Option<u64> {
        match self.first_seq {
            Some(first) if !self.from_genesis => Some(first.saturating_sub(1)),
            _ => None,
        }
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.first_problem {
            Some(p) => write!(
                f,
                "FAILED: {p}\n{} record(s) in {} file(s) verified before it",
                self.records, self.files
            )?,
            None if self.records == 0 => write!(
                f,
                "OK: 0 record(s): {}",
                if self.files == 1 {
                    "the file is empty".to_string()
                } else {
                    format!("the {} files are empty", self.files)
                }
            )?,
            None => {
                write!(
                    f,
                    "OK: {} record(s) in {} file(s) verified",
                    self.records, self.files
                )?;
                if let (Some(a), Some(b)) = (self.first_seq, self.last_seq) {
                    write!(f, ", seq {a}..{b}")?;
                    if let Some(n) = self.missing_before() {
                        write!(
                            f,
                            " (the chain starts at seq {a}: the first {n} record(s) are not in the files given)"
                        )?;
                    }
                }
            }
        }
        for n in &self.notices {
            write!(f, "\nnotice: {n}")?;
        }
        if self.more_notices > 0 {
            write!(
                f,
                "\nnotice: {} more recovered crash(es) not listed",
                self.more_notices
            )?;
        }
        Ok(())
    }
}
