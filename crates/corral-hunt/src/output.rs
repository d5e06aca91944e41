//! Alert output: NDJSON (one ECS alert per line), a summary table, SARIF 2.1.0.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde_json::{json, Map, Value};

use crate::engine::{Alert, Engine};
use crate::time::format_ms;
use corral_ollama::term::term as printable;

/// The ECS version an alert follows: the one corral's gate writes in its audit records
/// (`corral_audit::ECS_VERSION`), so that one index template serves both. The `corral` crate's
/// tests check that the two agree.
pub const ECS_VERSION: &str = "8.11.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Ndjson,
    Sarif,
}

/// What is known about one input after the run.
#[derive(Debug, Default)]
pub struct FileSummary {
    pub path: String,
    pub format: Option<&'static str>,
    pub compression: Option<&'static str>,
    pub events: u64,
    pub skipped: u64,
    pub malformed: u64,
    pub malformed_samples: Vec<(u64, String)>,
    pub untimed: u64,
    /// Lines that were not valid UTF-8, read with U+FFFD for each bad sequence.
    pub lossy: u64,
    pub error: Option<crate::InputError>,
}

pub fn write(
    fmt: OutputFormat,
    engine: &Engine,
    files: &[FileSummary],
    alerts: &[Alert],
    w: &mut dyn Write,
) -> io::Result<()> {
    match fmt {
        OutputFormat::Ndjson => alerts
            .iter()
            .try_for_each(|a| write_ndjson(engine, files, a, w)),
        OutputFormat::Table => table(engine, files, alerts, w),
        OutputFormat::Sarif => {
            serde_json::to_writer_pretty(&mut *w, &sarif(engine, files, alerts))?;
            w.write_all(b"\n")
        }
    }
}

/// One alert as one NDJSON line.
pub fn write_ndjson(
    engine: &Engine,
    files: &[FileSummary],
    a: &Alert,
    w: &mut dyn Write,
) -> io::Result<()> {
    serde_json::to_writer(&mut *w, &alert_json(engine, files, a))?;
    w.write_all(b"\n")
}

fn put(m: &mut Map<String, Value>, k: &str, v: impl Into<Value>) {
    let v = v.into();
    if !v.is_null() {
        m.insert(k.to_string(), v);
    }
}

/// One alert as an ECS document: the rule, the event's time, where it was read, and the
/// matched event (the original JSON object, or the original text plus the fields read).
pub fn alert_json(engine: &Engine, files: &[FileSummary], a: &Alert) -> Value {
    let Some(rule) = engine.rules.get(a.rule) else {
        return Value::Null;
    };
    let file = files.get(a.file);
    let mut fields = Map::new();
    for (id, v) in &a.fields {
        fields.insert(engine.schema.name(*id).to_string(), v.to_json());
    }
    let mut event = Map::new();
    put(&mut event, "kind", "alert");
    put(&mut event, "severity", rule.level.score());
    if !a.json {
        put(&mut event, "original", a.original.clone());
    }
    let mut hunt = Map::new();
    put(&mut hunt, "line", a.line);
    put(&mut hunt, "input_format", file.and_then(|f| f.format));
    put(&mut hunt, "fields", Value::Object(fields));
    if a.json {
        put(
            &mut hunt,
            "event",
            serde_json::from_str::<Value>(&a.original).unwrap_or(Value::Null),
        );
    }
    if let Some(w) = &a.window {
        put(
            &mut hunt,
            "window",
            json!({
                "field": engine.schema.name(w.field),
                "value": w.key,
                "count": w.count,
                "start": format_ms(w.start),
                "end": format_ms(w.start + w.span_ms),
                "first_seen": format_ms(w.first),
                "last_seen": format_ms(w.last),
            }),
        );
    }
    let mut doc = Map::new();
    put(
        &mut doc,
        "@timestamp",
        a.window.as_ref().map(|w| w.first).or(a.ts).map(format_ms),
    );
    put(&mut doc, "ecs", json!({ "version": ECS_VERSION }));
    put(&mut doc, "event", Value::Object(event));
    put(
        &mut doc,
        "rule",
        json!({"id": rule.id, "name": rule.title, "description": rule.description, "ruleset": "corral-hunt"}),
    );
    put(&mut doc, "tags", rule.tags.clone());
    put(
        &mut doc,
        "log",
        json!({"level": rule.level.as_str(), "file": {"path": file.map(|f| f.path.clone())}, "offset": a.offset}),
    );
    // ECS maps `source.ip` as an `ip`: a value that is not an address would make
    // Elasticsearch refuse the whole alert, so only an address is written (canonical form);
    // what the event said stays in `corral.hunt.fields`.
    if let Some(ip) = a.source_ip.as_deref().and_then(crate::ip::parse_ip) {
        put(&mut doc, "source", json!({ "ip": ip.to_string() }));
    }
    put(&mut doc, "corral", json!({ "hunt": Value::Object(hunt) }));
    Value::Object(doc)
}

fn seen(a: &Alert) -> (Option<i64>, Option<i64>) {
    match &a.window {
        Some(w) => (Some(w.first), Some(w.last)),
        None => (a.ts, a.ts),
    }
}

#[derive(Default)]
struct Agg {
    count: u64,
    first: Option<i64>,
    last: Option<i64>,
    rules: std::collections::BTreeSet<usize>,
}

impl Agg {
    fn add(&mut self, a: &Alert) {
        self.count += 1;
        let (f, l) = seen(a);
        self.first = match (self.first, f) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        self.last = match (self.last, l) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        };
        self.rules.insert(a.rule);
    }
}

fn ts(t: Option<i64>) -> String {
    t.map_or_else(|| "-".to_string(), |t| format_ms(t).replace(".000Z", "Z"))
}

fn table(
    engine: &Engine,
    files: &[FileSummary],
    alerts: &[Alert],
    w: &mut dyn Write,
) -> io::Result<()> {
    let events: u64 = files.iter().map(|f| f.events).sum();
    let malformed: u64 = files.iter().map(|f| f.malformed).sum();
    let mut by_rule: BTreeMap<usize, Agg> = BTreeMap::new();
    let mut by_source: BTreeMap<String, Agg> = BTreeMap::new();
    for a in alerts {
        by_rule.entry(a.rule).or_default().add(a);
        let src = a
            .window
            .as_ref()
            .map(|w| w.key.as_str())
            .or(a.source_ip.as_deref())
            .map_or_else(|| "-".into(), source_key);
        by_source.entry(src).or_default().add(a);
    }
    writeln!(
        w,
        "{} alert{} from {} rule{} over {} event{} in {} input{} ({} malformed)",
        alerts.len(),
        plural(alerts.len() as u64),
        by_rule.len(),
        plural(by_rule.len() as u64),
        events,
        plural(events),
        files.len(),
        plural(files.len() as u64),
        malformed
    )?;
    if alerts.is_empty() {
        return Ok(());
    }
    writeln!(w, "\nBY RULE")?;
    writeln!(
        w,
        "{:<9} {:>7}  {:<20}  {:<20}  RULE",
        "LEVEL", "ALERTS", "FIRST SEEN", "LAST SEEN"
    )?;
    let mut rows: Vec<_> = by_rule.iter().collect();
    rows.sort_by_key(|(r, agg)| {
        (
            std::cmp::Reverse(engine.rules.get(**r).map(|r| r.level)),
            std::cmp::Reverse(agg.count),
        )
    });
    for (r, agg) in rows {
        let Some(rule) = engine.rules.get(*r) else {
            continue;
        };
        writeln!(
            w,
            "{:<9} {:>7}  {:<20}  {:<20}  {} [{}]",
            rule.level.as_str(),
            agg.count,
            ts(agg.first),
            ts(agg.last),
            printable(&rule.title),
            printable(&rule.id)
        )?;
    }
    writeln!(w, "\nBY SOURCE ADDRESS")?;
    writeln!(
        w,
        "{:<40} {:>7} {:>6}  {:<20}  LAST SEEN",
        "SOURCE", "ALERTS", "RULES", "FIRST SEEN"
    )?;
    let mut rows: Vec<_> = by_source.iter().collect();
    rows.sort_by_key(|(_, agg)| std::cmp::Reverse(agg.count));
    for (src, agg) in rows {
        writeln!(
            w,
            "{:<40} {:>7} {:>6}  {:<20}  {}",
            src,
            agg.count,
            agg.rules.len(),
            ts(agg.first),
            ts(agg.last)
        )?;
    }
    Ok(())
}

/// A source as the table groups and shows it: an address in canonical form, as the NDJSON
/// alert's `source.ip` (`::ffff:a.b.c.d` and ` 8.8.8.8` are 8.8.8.8), anything else as read
/// with control characters escaped (the value comes from the log).
fn source_key(raw: &str) -> String {
    match crate::ip::parse_ip(raw) {
        Some(ip) => ip.to_string(),
        None => printable(raw).into_owned(),
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// A file path as a SARIF `artifactLocation.uri` (an RFC 3986 URI reference): every byte
/// other than unreserved characters, sub-delimiters, `@` and `/` is percent-encoded, `:` too, so
/// that a relative path's first segment cannot read as a scheme. An absolute path is a
/// `file://` URI (SARIF reads a relative reference starting with `/` as a mistake, SARIF1004).
fn uri_reference(path: &str) -> String {
    let mut u = String::with_capacity(path.len() + 7);
    if path.starts_with('/') {
        u.push_str("file://");
    }
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=@".contains(&b) {
            u.push(char::from(b));
        } else {
            u.push_str(&format!("%{b:02X}"));
        }
    }
    u
}

/// A SARIF physical location: the file, and the line when there is one (`startLine` starts
/// at 1; problems with a whole EVTX file or chunk have line 0) and the byte offset when known.
fn physical_location(path: &str, line: u64, offset: Option<u64>) -> Value {
    let mut region = Map::new();
    if line >= 1 {
        region.insert("startLine".into(), line.into());
    }
    if let Some(o) = offset {
        region.insert("byteOffset".into(), o.into());
    }
    let mut loc = json!({"artifactLocation": {"uri": uri_reference(path)}});
    if !region.is_empty() {
        loc["region"] = Value::Object(region);
    }
    loc
}

fn sarif_level(score: u8) -> &'static str {
    match score {
        73.. => "error",
        47.. => "warning",
        _ => "note",
    }
}

fn sarif(engine: &Engine, files: &[FileSummary], alerts: &[Alert]) -> Value {
    let rules: Vec<Value> = engine
        .rules
        .iter()
        .map(|r| {
            let full = if r.description.is_empty() {
                &r.title
            } else {
                &r.description
            };
            // The rule's help: what it detects and the false positives it names.
            let mut help = full.clone();
            if !r.falsepositives.is_empty() {
                help.push_str("\n\nFalse positives:");
                for fp in &r.falsepositives {
                    help.push_str("\n- ");
                    help.push_str(fp);
                }
            }
            json!({
                "id": r.id,
                "name": r.title,
                "shortDescription": {"text": r.title},
                "fullDescription": {"text": full},
                "help": {"text": help},
                "defaultConfiguration": {"level": sarif_level(r.level.score())},
                "properties": {"tags": r.tags, "security-severity": format!("{:.1}", f64::from(r.level.score()) / 10.0)},
            })
        })
        .collect();
    let results: Vec<Value> = alerts
        .iter()
        .filter_map(|a| {
            let r = engine.rules.get(a.rule)?;
            let path = files
                .get(a.file)
                .map(|f| f.path.clone())
                .unwrap_or_default();
            let text = match &a.window {
                Some(w) => format!(
                    "{}: {} {} made {} matching events between {} and {}",
                    r.title,
                    engine.schema.name(w.field),
                    w.key,
                    w.count,
                    format_ms(w.first),
                    format_ms(w.last)
                ),
                None => match &a.source_ip {
                    Some(ip) => format!("{}: source {ip}", r.title),
                    None => r.title.clone(),
                },
            };
            Some(json!({
                "ruleId": r.id,
                "ruleIndex": a.rule,
                "level": sarif_level(r.level.score()),
                "message": {"text": text},
                "locations": [{"physicalLocation": physical_location(&path, a.line, Some(a.offset))}],
            }))
        })
        .collect();
    let mut notes = Vec::new();
    for f in files {
        if let Some(e) = &f.error {
            notes.push(json!({"level": "error", "message": {"text": format!("{}: {e}", f.path)}}));
        }
        if f.lossy > 0 {
            notes.push(json!({
                "level": "warning",
                "message": {"text": format!("{}: {} line{} with invalid UTF-8 decoded lossily (U+FFFD)", f.path, f.lossy, plural(f.lossy))},
            }));
        }
        for (line, why) in &f.malformed_samples {
            notes.push(json!({
                "level": "warning",
                "message": {"text": format!("malformed record: {why}")},
                "locations": [{"physicalLocation": physical_location(&f.path, *line, None)}],
            }));
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "corral-hunt", "version": env!("CARGO_PKG_VERSION"), "rules": rules}},
            "invocations": [{"executionSuccessful": files.iter().all(|f| f.error.is_none()), "toolExecutionNotifications": notes}],
            "results": results,
        }],
    })
}
