//! `corral hunt`: Ollama detection rules run directly over log files, and exported for SIEMs.
//!
//! Readers for ECS NDJSON, Zeek, Sysmon (EVTX files, evtx_dump JSON, Winlogbeat), auditd, Ollama's
//! server log and corral's audit log normalise records onto ECS field names; a Sigma-subset
//! rule engine matches them; alerts come out as NDJSON, a table or SARIF. The binary wires
//! [`HuntArgs`]/[`hunt_main`] and [`RulesCommand`]/[`rules_main`].

pub mod builtin;
pub mod cli;
pub mod engine;
pub mod error;
pub mod event;
pub mod export;
pub mod fields;
pub mod formats;
pub mod input;
pub mod ip;
pub mod output;
pub mod pipeline;
pub mod rule;
pub mod time;

use std::path::PathBuf;

pub use cli::{hunt_main, rules_main, HuntArgs, RulesCommand};
pub use engine::{Alert, Engine};
pub use error::{EngineError, ExportError, InputError, RecordError, RuleError};
pub use export::ExportFormat;
pub use formats::InputFormat;
pub use output::{FileSummary, OutputFormat};

/// The result of running an engine over inputs.
#[derive(Debug, Default)]
pub struct HuntRun {
    pub files: Vec<FileSummary>,
    /// Event alerts in input order, then windowed alerts ([`hunt_paths`] only; with
    /// [`hunt_paths_streaming`] they went to the callback instead).
    pub alerts: Vec<Alert>,
}

/// Runs `engine` over `paths` (`-` = stdin) and keeps every alert. Unreadable or unrecognised
/// inputs are reported in their [`FileSummary`] and the others still run.
pub fn hunt_paths(
    engine: &Engine,
    paths: &[PathBuf],
    format: InputFormat,
    threads: usize,
    progress: bool,
) -> HuntRun {
    let mut alerts = Vec::new();
    let mut run = hunt_paths_streaming(engine, paths, format, threads, progress, &mut |_, a| {
        alerts.extend(a)
    });
    run.alerts = alerts;
    run
}

/// [`hunt_paths`], handing alerts to `on_alerts` as soon as they are known instead of keeping
/// them, so memory does not grow with the number of alerts: event alerts in input order, then
/// windowed alerts. `on_alerts` also gets the inputs seen so far; an alert's `file` indexes it
/// (the last one is the input being read, its counts not yet filled in).
pub fn hunt_paths_streaming(
    engine: &Engine,
    paths: &[PathBuf],
    format: InputFormat,
    threads: usize,
    progress: bool,
    on_alerts: &mut dyn FnMut(&[FileSummary], Vec<Alert>),
) -> HuntRun {
    let mut run = HuntRun::default();
    let mut buckets = event::FxMap::default();
    let mut prog = pipeline::Progress::new(progress);
    for (i, p) in paths.iter().enumerate() {
        let path = p.display().to_string();
        let mut summary = FileSummary {
            path: path.clone(),
            ..FileSummary::default()
        };
        let opened = match input::open(p) {
            Err(e) => {
                summary.error = Some(InputError::Open(e));
                None
            }
            Ok(opened) => {
                summary.compression = opened.compression;
                let reader = format.reader().or_else(|| formats::detect(&opened.head));
                match reader {
                    None if opened.head.is_empty() => summary.format = Some("empty"),
                    None => summary.error = Some(InputError::UnknownFormat),
                    Some(reader) => summary.format = Some(reader.name()),
                }
                reader.map(|r| (r, opened.stream, opened.start))
            }
        };
        run.files.push(summary);
        if let Some((reader, stream, start)) = opened {
            let files = &run.files;
            let (found, error) = pipeline::run_at(
                engine,
                reader,
                stream,
                start,
                i,
                threads,
                &mut prog,
                &path,
                &mut |alerts| on_alerts(files, alerts),
            );
            if let Some(summary) = run.files.last_mut() {
                summary.events = found.events;
                summary.skipped = found.skipped;
                summary.malformed = found.malformed;
                summary.untimed = found.untimed;
                summary.lossy = found.lossy;
                summary.malformed_samples = found
                    .malformed_samples
                    .into_iter()
                    .map(|m| (m.line, m.reason))
                    .collect();
                if let Some(e) = error {
                    summary.error = Some(e);
                }
            }
            merge_buckets(&mut buckets, found.buckets);
        }
        prog.done();
    }
    let windowed = engine.threshold_alerts(buckets);
    if !windowed.is_empty() {
        on_alerts(&run.files, windowed);
    }
    run
}

fn merge_buckets(
    into: &mut event::FxMap<(usize, i64, String), engine::Bucket>,
    from: event::FxMap<(usize, i64, String), engine::Bucket>,
) {
    for (k, b) in from {
        match into.get_mut(&k) {
            Some(m) => m.absorb(b),
            None => {
                into.insert(k, b);
            }
        }
    }
}
