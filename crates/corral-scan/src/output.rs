//! Renderers: table, JSON, NDJSON, CSV and SARIF 2.1.0. All write to any `io::Write`.

use std::collections::BTreeMap;
use std::io::{self, Write};

use corral_ollama::term::term;
use serde_json::{json, Value};

use crate::report::{HostReport, Severity};
use crate::summary::Summary;

pub mod html;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
    Ndjson,
    Csv,
    Sarif,
}

pub fn table_header(w: &mut dyn Write) -> io::Result<()> {
    writeln!(
        w,
        "{:<9} {:<28} {:<22} {:<10} {:<10} {:>6}  TOP FINDING",
        "SEVERITY", "ENDPOINT", "SERVER", "AUTH", "VERSION", "MODELS"
    )
}

pub fn table_row(w: &mut dyn Write, h: &HostReport) -> io::Result<()> {
    let top = h.findings.first().map(|f| f.title.as_str()).unwrap_or("-");
    let auth = match h.auth {
        crate::report::Auth::Open => "open",
        crate::report::Auth::Protected => "protected",
        crate::report::Auth::Unknown => "unknown",
    };
    writeln!(
        w,
        "{:<9} {:<28} {:<22} {:<10} {:<10} {:>6}  {}",
        h.max_severity().as_str(),
        h.endpoint(),
        h.server.label(),
        auth,
        term(h.version.as_deref().unwrap_or("-")),
        h.models.len(),
        term(top)
    )
}

/// Entries a summary line shows before it says how many more there are.
const DIST_SHOWN: usize = 8;

/// `name count, …` most frequent first. With a `limit`, the entries past it are counted in a
/// closing `… +N more` so none is dropped silently (the JSON, NDJSON and HTML outputs carry
/// them all).
fn dist(m: &BTreeMap<String, usize>, limit: Option<usize>) -> String {
    let mut v: Vec<_> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let shown = limit.unwrap_or(v.len()).min(v.len());
    let mut parts: Vec<String> = v[..shown]
        .iter()
        .map(|(k, n)| format!("{} {n}", term(k)))
        .collect();
    if shown < v.len() {
        parts.push(format!("… +{} more", v.len() - shown));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

pub fn table_summary(w: &mut dyn Write, s: &Summary) -> io::Result<()> {
    writeln!(w)?;
    writeln!(w, "endpoints scanned   {}", s.endpoints_scanned)?;
    writeln!(
        w,
        "hosts found         {} ({})",
        s.hosts_found,
        dist(&s.servers, Some(DIST_SHOWN))
    )?;
    writeln!(
        w,
        "unauthenticated     {} ({:.1}%)",
        s.unauthenticated,
        s.unauthenticated_share * 100.0
    )?;
    writeln!(
        w,
        "with tool models    {} ({:.1}% of {} open model lists)",
        s.with_tools,
        s.with_tools_share * 100.0,
        s.hosts_with_model_list
    )?;
    writeln!(
        w,
        "with vision models  {} ({:.1}%)",
        s.with_vision,
        s.with_vision_share * 100.0
    )?;
    writeln!(
        w,
        "quantization        {}",
        dist(&s.quantization, Some(DIST_SHOWN))
    )?;
    writeln!(
        w,
        "families            {}",
        dist(&s.families, Some(DIST_SHOWN))
    )?;
    writeln!(
        w,
        "versions            {}",
        dist(&s.versions, Some(DIST_SHOWN))
    )?;
    // Every CVE: a critical one must never be cut from the line.
    writeln!(w, "vulnerable          {}", dist(&s.vulnerable, None))?;
    writeln!(w, "severity            {}", dist(&s.severities, None))
}

pub fn json_document(hosts: &[HostReport], s: &Summary) -> Value {
    json!({ "scanner": crate::USER_AGENT, "hosts": hosts, "summary": s })
}

pub fn ndjson_host(w: &mut dyn Write, h: &HostReport) -> io::Result<()> {
    serde_json::to_writer(&mut *w, h).map_err(io::Error::other)?;
    writeln!(w)
}

pub fn ndjson_summary(w: &mut dyn Write, s: &Summary) -> io::Result<()> {
    serde_json::to_writer(&mut *w, &json!({ "summary": s })).map_err(io::Error::other)?;
    writeln!(w)
}

fn csv_field(s: &str) -> String {
    // A leading = + - @ (or a TAB or CR before one, which some spreadsheets skip) would make
    // a spreadsheet evaluate text chosen by the scanned server: OWASP's CSV-injection list.
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub const CSV_HEADER: &str =
    "endpoint,ip,port,server,auth,version,models,severity,rule,title,detail,evidence,remediation";

/// A finding's evidence on one line: `GET /api/tags -> 200: {"models":[…` for each request,
/// joined with ` | ` (excerpts are already bounded and single-line).
fn csv_evidence(f: &crate::report::Finding) -> String {
    f.evidence
        .iter()
        .map(|e| {
            if e.excerpt.is_empty() {
                format!("{} -> {}", e.request, e.status)
            } else {
                format!("{} -> {}: {}", e.request, e.status, e.excerpt)
            }
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// RFC 4180 ends every record, the header's and the last one's too, with CRLF; a line break
/// inside a field is quoted (`csv_field`) and kept as it is.
const CSV_EOL: &str = "\r\n";

/// One header line, then one record per finding (one `info` record for a host without any).
pub fn csv(w: &mut dyn Write, hosts: &[HostReport]) -> io::Result<()> {
    write!(w, "{CSV_HEADER}{CSV_EOL}")?;
    for h in hosts {
        let auth = serde_json::to_value(h.auth)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let base = [
            h.endpoint(),
            h.ip.to_string(),
            h.port.to_string(),
            h.server.label().to_string(),
            auth,
            h.version.clone().unwrap_or_default(),
            h.models.len().to_string(),
        ];
        let rows: Vec<[String; 6]> = if h.findings.is_empty() {
            vec![[
                "info".into(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]]
        } else {
            h.findings
                .iter()
                .map(|f| {
                    [
                        f.severity.as_str().into(),
                        f.rule.into(),
                        f.title.clone(),
                        f.detail.clone(),
                        csv_evidence(f),
                        f.remediation.into(),
                    ]
                })
                .collect()
        };
        for r in rows {
            let line: Vec<String> = base.iter().chain(r.iter()).map(|f| csv_field(f)).collect();
            write!(w, "{}{CSV_EOL}", line.join(","))?;
        }
    }
    Ok(())
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Info => "note",
    }
}

fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.0",
        Severity::Info => "0.0",
    }
}

pub fn sarif(hosts: &[HostReport]) -> Value {
    let mut rules: BTreeMap<&str, Value> = BTreeMap::new();
    let mut results = Vec::new();
    for h in hosts {
        for f in &h.findings {
            rules.entry(f.rule).or_insert_with(|| {
                json!({
                    "id": f.rule,
                    "name": f.rule,
                    "shortDescription": { "text": crate::findings::rule_description(f.rule) },
                    "fullDescription": { "text": crate::findings::rule_description(f.rule) },
                    "help": { "text": f.remediation },
                    "defaultConfiguration": { "level": sarif_level(f.severity) },
                    "properties": { "security-severity": security_severity(f.severity), "tags": ["security", "llm-exposure"] }
                })
            });
            results.push(json!({
                "ruleId": f.rule,
                "level": sarif_level(f.severity),
                "message": { "text": format!("{}: {}. {}", h.endpoint(), f.title, f.detail) },
                "locations": [{ "physicalLocation": { "artifactLocation": { "uri": h.endpoint() } } }],
                "properties": { "severity": f.severity, "server": h.server, "evidence": f.evidence, "remediation": f.remediation }
            }));
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "corral-scan",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/corral-dev/corral",
                "rules": rules.into_values().collect::<Vec<_>>()
            }},
            "results": results
        }]
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// An Ollama found on 127.0.0.1:11434 over plain HTTP, nothing else known yet.
    fn local_ollama() -> HostReport {
        HostReport::new(
            "127.0.0.1".parse().unwrap(),
            11434,
            None,
            crate::targets::Scheme::Http,
            crate::report::ServerKind::Ollama,
        )
    }

    /// A scanned server chooses its version and model details: escape sequences in them
    /// (clear screen, set title, OSC 52 clipboard writes) must not reach the terminal.
    #[test]
    fn table_escapes_control_characters_from_servers() {
        let mut h = local_ollama();
        h.auth = crate::report::Auth::Open;
        h.version = Some("0.1\u{1b}]52;c;cHduZWQ=\u{7}\u{1b}[2J\u{9b}1m".into());
        h.models.push(crate::report::Model {
            name: "m\u{1b}[2J".into(),
            family: Some("llama\u{1b}[2J\nfake line".into()),
            parameter_size: None,
            quantization: Some("Q4\r\u{7f}".into()),
            capabilities: Vec::new(),
            cloud: false,
            foreign_registry: false,
        });
        let mut out = Vec::new();
        table_row(&mut out, &h).unwrap();
        table_summary(&mut out, &crate::summary::summarise(&[h], 1)).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert!(text.contains("0.1\\u{1b}]52;c;"), "{text}");
        assert_eq!(text.lines().count(), 12, "{text}");
        let families = BTreeMap::from([("llama\u{1b}[2J\nfake line".to_string(), 1)]);
        assert_eq!(dist(&families, None), "llama\\u{1b}[2J\\nfake line 1");
    }

    /// A server on an old version is exposed to more CVEs than a line of eight: all of them
    /// are shown; the other lines say how many entries they leave out.
    #[test]
    fn summary_lines_never_drop_entries_silently() {
        let mut h = local_ollama();
        h.version = Some("0.1.32".into());
        let s = crate::summary::summarise(&[h], 1);
        assert!(s.vulnerable.len() > DIST_SHOWN, "{:?}", s.vulnerable);
        let mut out = Vec::new();
        table_summary(&mut out, &s).unwrap();
        let text = String::from_utf8(out).unwrap();
        let vulnerable = text.lines().find(|l| l.starts_with("vulnerable")).unwrap();
        for id in s.vulnerable.keys() {
            assert!(
                vulnerable.contains(id.as_str()),
                "{id} missing: {vulnerable}"
            );
        }
        assert!(!vulnerable.contains("more"), "{vulnerable}");

        let ten: BTreeMap<String, usize> = (0..10).map(|i| (format!("f{i}"), 10 - i)).collect();
        assert_eq!(
            dist(&ten, Some(DIST_SHOWN)),
            "f0 10, f1 9, f2 8, f3 7, f4 6, f5 5, f6 4, f7 3, … +2 more"
        );
        let eight: BTreeMap<String, usize> = (0..8).map(|i| (format!("f{i}"), 1)).collect();
        assert!(!dist(&eight, Some(DIST_SHOWN)).contains("more"));
        assert_eq!(dist(&BTreeMap::new(), Some(DIST_SHOWN)), "-");
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        for lead in ["+1", "-1", "@SUM(A1)", "\t=HYPERLINK(\"http://x\")"] {
            let f = csv_field(lead);
            let inner = f.strip_prefix('"').unwrap_or(&f);
            assert!(inner.starts_with('\''), "{lead:?} -> {f:?}");
        }
        // A CR-led field is neutralised and quoted (it holds a line break).
        assert_eq!(csv_field("\r=1+2"), "\"'\r=1+2\"");
        assert_eq!(csv_field("plain"), "plain");
    }

    /// Each finding's record names its detail and evidence (request, status, excerpt); a
    /// version a server chose that starts with TAB or CR is neutralised like `=`.
    #[test]
    fn csv_carries_detail_and_evidence_and_defuses_tab_and_cr() {
        let mut h = local_ollama();
        h.auth = crate::report::Auth::Open;
        h.version = Some("\t=HYPERLINK(\"http://x\")".into());
        h.evidence.push((
            "tags",
            crate::report::Evidence {
                request: "GET /api/tags".into(),
                status: 200,
                excerpt: "{\"models\":[]}".into(),
            },
        ));
        h.findings = crate::findings::assess(&h);
        let mut out = Vec::new();
        csv(&mut out, &[h]).unwrap();
        let records = rfc4180(&String::from_utf8(out).unwrap()).unwrap();
        let header = &records[0];
        let col = |name: &str| header.iter().position(|c| c == name).unwrap();
        let row = records
            .iter()
            .find(|r| r[col("rule")] == "ollama-unauthenticated")
            .unwrap();
        assert!(row[col("detail")].contains("LLMjacking"), "{row:?}");
        assert_eq!(
            row[col("evidence")],
            "GET /api/tags -> 200: {\"models\":[]}"
        );
        assert!(row[col("version")].starts_with("'\t="), "{row:?}");
    }

    /// Records as an RFC 4180 reader takes them: each ends in CRLF, a bare LF or CR outside
    /// quotes is an error, quoted fields keep their line breaks and doubled quotes.
    fn rfc4180(s: &str) -> Result<Vec<Vec<String>>, String> {
        let (mut records, mut record, mut field) = (Vec::new(), Vec::new(), String::new());
        let (mut quoted, mut was_quoted) = (false, false);
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            if quoted {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => quoted = false,
                    c => field.push(c),
                }
                continue;
            }
            match c {
                '"' if field.is_empty() && !was_quoted => (quoted, was_quoted) = (true, true),
                ',' => {
                    record.push(std::mem::take(&mut field));
                    was_quoted = false;
                }
                '\r' if chars.peek() == Some(&'\n') => {
                    chars.next();
                    record.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut record));
                    was_quoted = false;
                }
                '\r' | '\n' => return Err(format!("bare {c:?} outside quotes in {s:?}")),
                '"' => return Err(format!("quote inside an unquoted field in {s:?}")),
                c => field.push(c),
            }
        }
        if quoted || !field.is_empty() || !record.is_empty() {
            return Err(format!("the last record does not end in CRLF: {s:?}"));
        }
        Ok(records)
    }

    #[test]
    fn the_reader_refuses_lf_line_ends() {
        assert!(rfc4180("a,b\n").is_err());
        assert!(rfc4180("a,b\r\nc").is_err());
        assert!(rfc4180("a,b\r").is_err());
        assert_eq!(rfc4180("a,\"b\r\nc\"\r\n").unwrap(), [["a", "b\r\nc"]]);
    }

    /// RFC 4180: CRLF after every record, the last included; a field a scanned server chose
    /// (its version) with commas, quotes and line breaks stays one quoted field.
    #[test]
    fn csv_records_end_in_crlf_and_quote_line_breaks() {
        let mut h = local_ollama();
        h.version = Some("0.1\nfake,row\r\n\"quoted\"".into());
        let mut out = Vec::new();
        csv(&mut out, &[h]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(&format!("{CSV_HEADER}\r\n")), "{text:?}");
        assert!(text.ends_with("\r\n"), "{text:?}");
        let records = rfc4180(&text).unwrap();
        assert_eq!(records.len(), 2, "{records:?}");
        assert!(records.iter().all(|r| r.len() == 13), "{records:?}");
        assert_eq!(records[1][5], "0.1\nfake,row\r\n\"quoted\"");
        assert_eq!(records[1][7], "info");
    }
}
