//! Input formats and their detection.

pub mod auditd;
pub mod derive;
pub mod evtx;
pub mod gin;
pub mod json;
pub mod json_check;
pub mod zeek;

/// How a file is read. JSON dialects (ECS, Zeek JSON, evtx_dump JSONL, Winlogbeat, corral's
/// audit log) share one reader: their key spaces do not collide, so one mapping serves all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// Detect from the first 64 KiB (after decompression)
    Auto,
    /// Any JSON-lines dialect below
    Json,
    /// ECS NDJSON (Elastic Defend, Auditbeat, Filebeat), nested or dotted keys
    Ecs,
    /// Zeek conn.log as JSON lines
    ZeekJson,
    /// Sysmon exported by evtx_dump (JSONL, or its default `Record N` + pretty JSON)
    SysmonJson,
    /// Windows event log files (.evtx), e.g. Sysmon's, read directly
    Evtx,
    /// Sysmon or Security events shipped by Winlogbeat
    Winlogbeat,
    /// corral's own gate audit log
    CorralAudit,
    /// Zeek TSV logs with `#fields` header
    Zeek,
    /// Linux audit log (auditd)
    Auditd,
    /// Ollama's server log (gin access lines; journalctl's text and `-o json` output work)
    OllamaLog,
}

/// The reader a file gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    JsonLines,
    /// Concatenated (pretty-printed) JSON objects, e.g. evtx_dump's default output.
    JsonStream,
    ZeekTsv,
    Auditd,
    Gin,
    /// Binary Windows event log (.evtx).
    Evtx,
}

impl Reader {
    pub fn name(self) -> &'static str {
        match self {
            Reader::JsonLines => "ndjson",
            Reader::JsonStream => "json",
            Reader::ZeekTsv => "zeek",
            Reader::Auditd => "auditd",
            Reader::Gin => "ollama-log",
            Reader::Evtx => "evtx",
        }
    }
}

impl InputFormat {
    /// The reader for a forced format; `None` for `auto`.
    pub fn reader(self) -> Option<Reader> {
        Some(match self {
            InputFormat::Auto => return None,
            InputFormat::Json
            | InputFormat::Ecs
            | InputFormat::ZeekJson
            | InputFormat::Winlogbeat
            | InputFormat::CorralAudit => Reader::JsonLines,
            InputFormat::SysmonJson => Reader::JsonLines,
            InputFormat::Zeek => Reader::ZeekTsv,
            InputFormat::Evtx => Reader::Evtx,
            InputFormat::Auditd => Reader::Auditd,
            InputFormat::OllamaLog => Reader::Gin,
        })
    }
}

/// Detects the reader from the start of the (decompressed) input.
pub fn detect(head: &[u8]) -> Option<Reader> {
    if head.starts_with(evtx::FILE_MAGIC) {
        return Some(Reader::Evtx);
    }
    let text = String::from_utf8_lossy(head);
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next()?;
    if first.starts_with("#separator")
        || first.starts_with("#fields")
        || first.starts_with("#set_separator")
    {
        return Some(Reader::ZeekTsv);
    }
    if first.starts_with("Record ") {
        return Some(Reader::JsonStream);
    }
    if gin::is_journal_entry(first.as_bytes()) {
        // `journalctl -o json`: the server log's lines, one JSON entry each.
        return Some(Reader::Gin);
    }
    if first.starts_with('{') {
        let one_line = serde_json::from_str::<serde::de::IgnoredAny>(first).is_ok();
        // A cut-off first line (head ended mid-record) is still JSON lines.
        let cut = !head.contains(&b'\n');
        return Some(if one_line || cut {
            Reader::JsonLines
        } else {
            Reader::JsonStream
        });
    }
    let all = || text.lines();
    if all().any(|l| l.contains("msg=audit(") && l.contains("type=")) {
        return Some(Reader::Auditd);
    }
    if all().any(|l| {
        l.contains("[GIN]") || (l.contains("level=") && l.contains("source=") && l.contains("msg="))
    }) {
        return Some(Reader::Gin);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_format() {
        assert_eq!(
            detect(b"#separator \\x09\n#fields\tts\n"),
            Some(Reader::ZeekTsv)
        );
        assert_eq!(detect(b"{\"a\":1}\n{\"a\":2}\n"), Some(Reader::JsonLines));
        assert_eq!(
            detect(b"\n{\n  \"Event\": {}\n}\n"),
            Some(Reader::JsonStream)
        );
        assert_eq!(detect(b"Record 1\n{\n}\n"), Some(Reader::JsonStream));
        assert_eq!(
            detect(b"type=SYSCALL msg=audit(1.0:1): arch=c000003e\n"),
            Some(Reader::Auditd)
        );
        assert_eq!(
            detect(b"Jan 1 ollama[1]: time=x level=INFO source=a.go:1 msg=\"x\"\n"),
            Some(Reader::Gin)
        );
        assert_eq!(
            detect(b"[GIN] 2026/01/10 - 10:00:00 | 200 | 1s | ::1 | GET \"/\"\n"),
            Some(Reader::Gin)
        );
        assert_eq!(
            detect(b"{\"__REALTIME_TIMESTAMP\":\"1\",\"MESSAGE\":\"x\"}\n"),
            Some(Reader::Gin)
        );
        assert_eq!(detect(b"hello world\n"), None);
        assert_eq!(detect(b"ElfFile\0rest"), Some(Reader::Evtx));
        assert_eq!(detect(b""), None);
    }
}
