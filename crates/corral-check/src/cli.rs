//! The `corral check` subcommand: flags, and a `main` the binary calls in one line.

use crate::check::{run, CheckOptions};
use crate::finding::Severity;
use crate::report::Format;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use std::io::Write;
use std::path::PathBuf;

/// Audit this host's Ollama: listening sockets, configuration, firewall, model store, child
/// processes, version.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// Read /proc, /etc and model directories under DIR instead of the live host (fixture
    /// trees; firewall dumps and /api/version come from DIR/corral-fixtures/).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Hash every blob and compare it with its sha256 name (parallel).
    #[arg(long)]
    pub verify: bool,
    /// Flag models whose manifest changed at or after TIME (RFC 3339, YYYY-MM-DD, or an age
    /// such as 36h or 7d).
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    pub since: Option<DateTime<Utc>>,
    /// Flag models missing from, or different in, this baseline file.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Write the current models (name → manifest digest) to FILE.
    #[arg(long, value_name = "FILE")]
    pub write_baseline: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Exit 1 when a finding is at or above this severity.
    #[arg(long, value_enum, default_value_t = Severity::High)]
    pub fail_on: Severity,
    /// The port Ollama is configured to use.
    #[arg(long, default_value_t = 11434)]
    pub port: u16,
    /// A models directory to check (repeatable); default: discovered.
    #[arg(long = "models", value_name = "DIR")]
    pub models: Vec<PathBuf>,
}

impl CheckArgs {
    pub fn options(&self) -> CheckOptions {
        CheckOptions {
            root: self.root.clone(),
            port: self.port,
            models_dirs: self.models.clone(),
            verify: self.verify,
            since: self.since,
            baseline: self.baseline.clone(),
            write_baseline: self.write_baseline.clone(),
            progress: true,
            probe_live_version: true,
            // The invoking environment describes this host only: not a --root tree.
            env_models: self.live_env("OLLAMA_MODELS"),
            env_home: self.live_env("HOME"),
        }
    }

    fn live_env(&self, name: &str) -> Option<String> {
        (self.root == std::path::Path::new("/"))
            .then(|| std::env::var(name).ok())
            .flatten()
            .filter(|v| !v.is_empty())
    }
}

pub fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    parse_since_at(s, Utc::now())
}

pub fn parse_since_at(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc());
        }
    }
    let unit_at = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(unit_at);
    let n: i64 = n
        .parse()
        .map_err(|_| format!("not a time: {s:?} (use RFC 3339, YYYY-MM-DD, or 36h / 7d)"))?;
    let d = match unit {
        "s" => Duration::try_seconds(n),
        "m" => Duration::try_minutes(n),
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        "w" => Duration::try_weeks(n),
        _ => None,
    }
    .ok_or_else(|| format!("not a time: {s:?} (use RFC 3339, YYYY-MM-DD, or 36h / 7d)"))?;
    now.checked_sub_signed(d)
        .ok_or_else(|| format!("time out of range: {s:?}"))
}

/// Run the check and print it; returns the exit status (0 clean, 1 findings at or above
/// `--fail-on`, 2 error).
pub fn main(args: CheckArgs) -> i32 {
    main_to(args, &mut std::io::stdout().lock())
}

/// [`main`] writing the report to `out` instead of stdout.
pub fn main_to(args: CheckArgs, out: &mut dyn Write) -> i32 {
    let report = match run(&args.options()) {
        Ok(r) => r,
        Err(e) => {
            // The error may name a host path (a model directory, a baseline file).
            eprintln!(
                "corral check: {}",
                corral_ollama::term::term(&e.to_string())
            );
            return 2;
        }
    };
    let text = report.render(args.format);
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A closed pipe (`| head`) is the reader's choice, not a failure of the check.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("corral check: cannot write output: {e}");
            return 2;
        }
    }
    report.exit_code(args.fail_on)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Top {
        #[command(flatten)]
        args: CheckArgs,
    }

    #[test]
    fn flags_as_the_issue_names_them() {
        let t = Top::try_parse_from([
            "corral",
            "--root",
            "/tmp/x",
            "--verify",
            "--since",
            "2026-01-02",
            "--baseline",
            "b.json",
            "--write-baseline",
            "w.json",
            "--format",
            "sarif",
            "--fail-on",
            "medium",
            "--port",
            "8080",
            "--models",
            "/a",
            "--models",
            "/b",
        ])
        .unwrap();
        let a = t.args;
        assert_eq!(a.root, PathBuf::from("/tmp/x"));
        assert!(a.verify);
        assert_eq!(a.since.unwrap().to_rfc3339(), "2026-01-02T00:00:00+00:00");
        assert_eq!(a.format, Format::Sarif);
        assert_eq!(a.fail_on, Severity::Medium);
        assert_eq!(a.port, 8080);
        assert_eq!(a.models.len(), 2);
        let d = Top::try_parse_from(["corral"]).unwrap().args;
        assert_eq!(
            (d.port, d.fail_on, d.format),
            (11434, Severity::High, Format::Table)
        );
        assert_eq!(d.root, PathBuf::from("/"));
        assert!(Top::try_parse_from(["corral", "--format", "xml"]).is_err());
        assert!(Top::try_parse_from(["corral", "--since", "yesterday"]).is_err());
    }

    #[test]
    fn since_forms() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_since_at("7d", now).unwrap().to_rfc3339(),
            "2026-11-15T00:00:00+00:00"
        );
        assert_eq!(
            parse_since_at("36h", now).unwrap().to_rfc3339(),
            "2026-11-20T12:00:00+00:00"
        );
        assert_eq!(
            parse_since_at("2026-11-01T10:00:00+01:00", now)
                .unwrap()
                .to_rfc3339(),
            "2026-11-01T09:00:00+00:00"
        );
        assert!(parse_since_at("7y", now).is_err());
        assert!(parse_since_at("", now).is_err());
        assert!(parse_since_at("99999999999999999999d", now).is_err());
    }
}
