//! The crate's errors. Rule and input errors stop nothing by themselves: the CLI prints them
//! and chooses the exit status; a malformed record becomes a counted, located report.

use std::io;

/// A rule that parsed but cannot be compiled (only rules built by hand get here: parsing
/// already checks patterns and conditions).
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("unknown selection `{0}`")]
    UnknownSelection(String),
    #[error("`{0}` matches no selection")]
    NoSelectionMatches(String),
    #[error("bad CIDR `{0}`")]
    BadCidr(String),
    #[error(transparent)]
    BadRegex(#[from] regex::Error),
}

/// Building an [`crate::Engine`] failed for one rule.
#[derive(Debug, thiserror::Error)]
#[error("rule {id}: {source}")]
pub struct EngineError {
    pub id: String,
    #[source]
    pub source: RuleError,
}

/// Why an input could not be read (the other inputs still run).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{0}")]
    Open(#[source] io::Error),
    #[error("cannot tell the input format; name it with --input-format")]
    UnknownFormat,
    #[error("read error: {0}")]
    Read(#[source] io::Error),
    #[error(transparent)]
    Evtx(#[from] EvtxError),
}

/// Why one record was not read. Reported with its file and line (or EVTX record number).
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("invalid JSON record: {0}")]
    Json(#[from] serde_json::Error),
    #[error("Zeek row before any #fields header")]
    ZeekNoHeader,
    #[error("Zeek row has {got} columns, header has {want}")]
    ZeekColumns { got: usize, want: usize },
}

/// A rule the target language cannot express.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("field {field}: {language} has no {feature}")]
    Unsupported {
        field: String,
        language: &'static str,
        feature: &'static str,
    },
    #[error("unknown selection {0}")]
    UnknownSelection(String),
}

/// A problem in an EVTX file: the file header, a chunk, or one record. Only a missing file
/// header stops the file; the others are counted as malformed records.
#[derive(Debug, thiserror::Error)]
pub enum EvtxError {
    #[error("EVTX {0}")]
    Header(&'static str),
    #[error("EVTX chunk {chunk}: {why}")]
    Chunk { chunk: u64, why: &'static str },
    #[error("EVTX record {record} (chunk {chunk}): {why}")]
    Record {
        record: u64,
        chunk: u64,
        why: &'static str,
    },
}
