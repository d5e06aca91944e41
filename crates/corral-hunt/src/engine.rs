//! Rules compiled over one schema, and what matching produces: alerts, windowed counts,
//! malformed-record reports.

use std::collections::BTreeMap;

use crate::error::EngineError;
use crate::event::{Event, FieldId, FxMap, Schema, Val};
use crate::fields::{SOURCE_IP, TIMESTAMP};
use crate::rule::matcher::Compiled;
use crate::rule::prefilter::{Dialect, Prefilter, Scan};
use crate::rule::Rule;
use crate::time;

/// A set of rules ready to run.
#[derive(Debug)]
pub struct Engine {
    pub schema: Schema,
    pub rules: Vec<Rule>,
    compiled: Vec<Compiled>,
    json_prefilter: Prefilter,
    zeek_prefilter: Prefilter,
    prefilter: bool,
}

impl Engine {
    pub fn new(rules: Vec<Rule>) -> Result<Engine, EngineError> {
        let mut schema = Schema::new();
        let mut compiled = Vec::with_capacity(rules.len());
        for r in &rules {
            compiled.push(Compiled::new(r, &mut schema).map_err(|source| EngineError {
                id: r.id.clone(),
                source,
            })?);
        }
        Ok(Engine {
            schema,
            rules,
            json_prefilter: Prefilter::new(&compiled, Dialect::Json),
            zeek_prefilter: Prefilter::new(&compiled, Dialect::ZeekTsv),
            compiled,
            prefilter: true,
        })
    }

    /// Turns the literal prefilter off (every line is parsed), for tests that check it
    /// changes nothing.
    pub fn set_prefilter(&mut self, on: bool) {
        self.prefilter = on;
    }

    /// The prefilter for a dialect, if enabled.
    pub fn prefilter(&self, dialect: Dialect) -> Option<&Prefilter> {
        if !self.prefilter {
            return None;
        }
        Some(match dialect {
            Dialect::Json => &self.json_prefilter,
            Dialect::ZeekTsv => &self.zeek_prefilter,
        })
    }

    /// Whether any rule may match a raw line (always true with the prefilter off).
    pub fn may_match(&self, dialect: Dialect, line: &[u8], scan: &mut Scan) -> bool {
        self.prefilter(dialect)
            .is_none_or(|p| p.may_match(line, scan))
    }

    /// Runs every rule over one event.
    pub fn check(&self, ev: &Event<'_>, at: Location<'_>, out: &mut Findings) {
        for (i, c) in self.compiled.iter().enumerate() {
            if !c.matches(ev) {
                continue;
            }
            match &c.threshold {
                None => out.alerts.push(make_alert(i, ev, &at, None)),
                Some(t) => {
                    let Some(key) = ev
                        .get(t.field)
                        .filter(|v| **v != Val::Null)
                        .map(Val::to_text)
                    else {
                        continue;
                    };
                    let Some(ts) = ev.get(TIMESTAMP).and_then(time::parse_val) else {
                        out.untimed += 1;
                        continue;
                    };
                    let bin = ts.div_euclid(t.timespan_ms);
                    let b = out.buckets.entry((i, bin, key)).or_insert_with(|| Bucket {
                        count: 0,
                        first: ts,
                        last: ts,
                        at: (at.file, at.line, at.offset),
                        sample: None,
                    });
                    b.count += 1;
                    b.first = b.first.min(ts);
                    b.last = b.last.max(ts);
                    // Keep one full event per window, and only for windows that get busy:
                    // most groups never come near the threshold, and memory must not grow
                    // with them.
                    if b.sample.is_none() && b.count > t.gt / 2 {
                        b.sample = Some(Box::new(make_alert(i, ev, &at, Some(ts))));
                    }
                }
            }
        }
    }

    /// Alerts for the windows over their threshold, in rule, window and key order.
    pub fn threshold_alerts(&self, buckets: FxMap<(usize, i64, String), Bucket>) -> Vec<Alert> {
        let sorted: BTreeMap<_, _> = buckets.into_iter().collect();
        let mut out = Vec::new();
        for ((rule, bin, key), b) in sorted {
            let Some(t) = self.compiled.get(rule).and_then(|c| c.threshold.as_ref()) else {
                continue;
            };
            if b.count <= t.gt {
                continue;
            }
            let mut a = match b.sample {
                Some(a) => *a,
                None => Alert {
                    rule,
                    file: b.at.0,
                    line: b.at.1,
                    offset: b.at.2,
                    ts: Some(b.first),
                    source_ip: (t.field == SOURCE_IP).then(|| key.clone()),
                    fields: vec![(t.field, Val::Str(key.clone().into()))],
                    original: String::new(),
                    json: false,
                    window: None,
                },
            };
            a.window = Some(Window {
                key,
                field: t.field,
                count: b.count,
                start: bin * t.timespan_ms,
                span_ms: t.timespan_ms,
                first: b.first,
                last: b.last,
            });
            out.push(a);
        }
        out
    }
}

/// Where a record is: file index, 1-based line, byte offset (in the decompressed stream),
/// and its original text.
#[derive(Debug, Clone, Copy)]
pub struct Location<'a> {
    pub file: usize,
    pub line: u64,
    pub offset: u64,
    pub original: &'a str,
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub key: String,
    pub field: FieldId,
    pub count: u64,
    pub start: i64,
    pub span_ms: i64,
    pub first: i64,
    pub last: i64,
}

/// One rule hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub rule: usize,
    pub file: usize,
    pub line: u64,
    pub offset: u64,
    pub ts: Option<i64>,
    pub source_ip: Option<String>,
    pub fields: Vec<(FieldId, Val<'static>)>,
    pub original: String,
    /// The original is a JSON object (embedded as is in NDJSON output).
    pub json: bool,
    /// Set for windowed (threshold) rules: the window that went over.
    pub window: Option<Window>,
}

fn make_alert(rule: usize, ev: &Event<'_>, at: &Location<'_>, ts: Option<i64>) -> Alert {
    Alert {
        rule,
        file: at.file,
        line: at.line,
        offset: at.offset,
        ts: ts.or_else(|| ev.get(TIMESTAMP).and_then(time::parse_val)),
        source_ip: ev.get(SOURCE_IP).map(Val::to_text),
        fields: ev.snapshot(),
        original: at.original.to_string(),
        json: at.json,
        window: None,
    }
}

/// Matches of a windowed rule for one group in one window. `at` is where the first match
/// was read; `sample` a full matched event, kept once the window gets busy.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub count: u64,
    pub first: i64,
    pub last: i64,
    pub at: (usize, u64, u64),
    pub sample: Option<Box<Alert>>,
}

impl Bucket {
    /// Adds the counts of a later stretch of input.
    pub fn absorb(&mut self, later: Bucket) {
        self.count += later.count;
        self.first = self.first.min(later.first);
        self.last = self.last.max(later.last);
        if self.sample.is_none() {
            self.sample = later.sample;
        }
    }
}

/// A record that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    pub line: u64,
    pub reason: String,
}

/// Everything one stretch of input produced. Merged in input order.
#[derive(Debug, Default)]
pub struct Findings {
    pub alerts: Vec<Alert>,
    pub buckets: FxMap<(usize, i64, String), Bucket>,
    pub events: u64,
    /// Lines that are not records (e.g. non-access lines of the Ollama log).
    pub skipped: u64,
    pub malformed: u64,
    /// The first [`Findings::MALFORMED_KEPT`] malformed records with their line.
    pub malformed_samples: Vec<Malformed>,
    /// Events of windowed rules without a usable timestamp.
    pub untimed: u64,
    /// Lines (records) that were not valid UTF-8 and were read with each bad sequence as
    /// U+FFFD: the rest of the record still counts (a Latin-1 host name in a syslog prefix
    /// must not hide the access it logs).
    pub lossy: u64,
    pub bytes: u64,
}

impl Findings {
    pub const MALFORMED_KEPT: usize = 50;

    pub fn malformed(&mut self, line: u64, reason: impl Into<String>) {
        self.malformed += 1;
        if self.malformed_samples.len() < Self::MALFORMED_KEPT {
            self.malformed_samples.push(Malformed {
                line,
                reason: printable_reason(&reason.into()),
            });
        }
    }

    /// Appends `other`, which comes later in the input.
    pub fn merge(&mut self, other: Findings) {
        self.alerts.extend(other.alerts);
        for (k, b) in other.buckets {
            match self.buckets.get_mut(&k) {
                Some(mine) => mine.absorb(b),
                None => {
                    self.buckets.insert(k, b);
                }
            }
        }
        self.events += other.events;
        self.skipped += other.skipped;
        self.untimed += other.untimed;
        self.lossy += other.lossy;
        self.bytes += other.bytes;
        self.malformed += other.malformed;
        let room = Self::MALFORMED_KEPT.saturating_sub(self.malformed_samples.len());
        self.malformed_samples
            .extend(other.malformed_samples.into_iter().take(room));
    }
}

/// Longest reason kept for a malformed record, in characters. A parser's message may quote the
/// record (serde_json quotes a whole string value), and records run to 16 MiB.
const REASON_CHARS: usize = 200;

/// A malformed record's reason as it is shown on a terminal or in a report: at most
/// [`REASON_CHARS`] characters, control characters escaped (the input is untrusted).
fn printable_reason(reason: &str) -> String {
    corral_ollama::term::term_cut(reason, REASON_CHARS)
}
