//! `corral scan` flags and the command itself: the binary only forwards to [`main`].

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::fingerprint::ProbeOptions;
use crate::http::{HttpConfig, Pacer};
use crate::live::Live;
use crate::output::{self, Format};
use crate::report::HostReport;
use crate::scanner::{self, Progress, ScanOptions};
use crate::summary;
use crate::targets::{
    self, Filter, Input, InputFormat, Shard, TargetError, TargetStream, CONFIRM_ABOVE,
};

/// Find exposed LLM servers (Ollama and others) on networks you own. Read-only: never runs
/// inference, never changes models.
#[derive(Debug, Clone, clap::Args)]
pub struct ScanArgs {
    /// Targets: addresses, CIDRs, ranges (a-b), host:port, http(s) URLs, host names; `-` = stdin
    pub targets: Vec<String>,
    /// Read targets from FILE (`-` = stdin); nmap's `-iL FILE` spelling works
    #[arg(short = 'i', long = "input-list", value_name = "FILE")]
    pub input_list: Vec<String>,
    /// Format of files and stdin: list, masscan (-oL/-oJ/-oD/-oG) or zmap
    #[arg(
        long = "from",
        value_enum,
        default_value = "list",
        value_name = "FORMAT"
    )]
    pub from: InputFormat,
    /// Addresses, CIDRs or ranges never to touch (comma separated, repeatable)
    #[arg(long, value_name = "LIST")]
    pub exclude: Vec<String>,
    /// File of exclusions, one or more per line, `#` comments
    #[arg(long, value_name = "FILE")]
    pub exclude_file: Vec<PathBuf>,
    /// Allow scanning more than a /16 (65,536 addresses)
    #[arg(long)]
    pub yes: bool,
    /// Scan only shard I of N (1-based), split deterministically by address and port
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Ports to scan, e.g. 11434,8000-8010 (default 11434)
    #[arg(short = 'p', long, value_name = "LIST")]
    pub ports: Option<String>,
    /// Add the common LLM-server ports (11434, 8000, 8080, 1234, 4000, 5000, 7860, 30000, ...)
    #[arg(long)]
    pub llm_ports: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Write output to FILE instead of stdout
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write a self-contained HTML report
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Endpoints probed at once
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// New connections per second (0 = no limit)
    #[arg(long, default_value_t = 0)]
    pub rate: u32,
    /// Per-request timeout
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Connect timeout
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Everything done to one endpoint
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub host_timeout: Duration,
    /// Retries after a timeout (never after other failures)
    #[arg(long, default_value_t = 1)]
    pub retries: u32,
    /// Most /api/show calls per host when /api/tags lacks capabilities
    #[arg(long, default_value_t = 8)]
    pub max_show: usize,
    /// Largest response body read, in bytes
    #[arg(long, default_value_t = 512 * 1024)]
    pub max_body: usize,
    /// Exit 1 when any finding is at or above this severity (default: exit 0 whatever is found)
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<crate::report::Severity>,
}

/// 1 when some finding of `hosts` is at or above `fail_on`, else 0.
pub fn fail_on_code(hosts: &[HostReport], fail_on: Option<crate::report::Severity>) -> i32 {
    let Some(min) = fail_on else { return 0 };
    i32::from(
        hosts
            .iter()
            .any(|h| h.findings.iter().any(|f| f.severity >= min)),
    )
}

/// `500ms`, `5s`, `2m` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, ""), |i| s.split_at(i));
    let n: f64 = num.parse().map_err(|_| format!("invalid duration `{s}`"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("invalid duration unit in `{s}`")),
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 86_400.0 {
        return Err(format!("duration out of range `{s}`"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("no targets given (arguments, -iL FILE or `-` for stdin)")]
    NoTargets,
    #[error("{0}")]
    Usage(String),
    #[error("cannot write {0}: {1}")]
    Write(String, String),
    #[error("{0}")]
    Scan(#[from] scanner::ScanError),
}

/// Runs `corral scan`; returns the process exit code (0 done, 1 a finding at or above
/// `--fail-on`, 2 error, 130 interrupted).
pub fn main(args: ScanArgs) -> i32 {
    let argv: Vec<String> = std::env::args().collect();
    main_with_argv(args, &argv)
}

/// [`main`] with the raw arguments given explicitly (they are needed to read nmap's `-iL FILE`).
pub fn main_with_argv(args: ScanArgs, argv: &[String]) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("corral scan: cannot start runtime: {e}");
            return 2;
        }
    };
    // On a worker thread rather than in block_on: the scan loop then wakes where its probes
    // run, instead of across threads once per target.
    let argv = argv.to_vec();
    let code = match rt
        .block_on(async move { tokio::spawn(async move { run(args, &argv).await }).await })
    {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            eprintln!("corral scan: {e}");
            2
        }
        Err(e) => {
            eprintln!("corral scan: {e}");
            2
        }
    };
    // A producer blocked reading stdin must not hold the process open after Ctrl-C.
    rt.shutdown_timeout(Duration::from_millis(200));
    code
}

fn inputs(args: &ScanArgs, argv: &[String]) -> Result<Vec<Input>, CliError> {
    let mut targets = args.targets.clone();
    let mut files: Vec<String> = Vec::new();
    let mut nmap_lists = argv
        .windows(2)
        .filter(|w| w[0] == "-iL")
        .map(|w| w[1].clone());
    for f in &args.input_list {
        // clap reads nmap's `-iL FILE` as `-i` with value "L" and FILE as a target: recover
        // FILE from the raw arguments and take it back out of the targets.
        let nmap_file = if f == "L" { nmap_lists.next() } else { None };
        match nmap_file {
            Some(file) => {
                if let Some(i) = targets.iter().position(|t| *t == file) {
                    targets.remove(i);
                }
                files.push(file);
            }
            None => files.push(f.clone()),
        }
    }
    let mut out: Vec<Input> = targets
        .iter()
        .map(|t| {
            if t == "-" {
                Input::Stdin
            } else {
                Input::Arg(t.clone())
            }
        })
        .collect();
    for f in files {
        out.push(if f == "-" {
            Input::Stdin
        } else {
            Input::File(PathBuf::from(f))
        });
    }
    if out.is_empty() {
        return Err(CliError::NoTargets);
    }
    if out.iter().filter(|i| **i == Input::Stdin).count() > 1 {
        return Err(CliError::Usage("stdin (`-`) given more than once".into()));
    }
    Ok(out)
}

fn ports(args: &ScanArgs) -> Result<Vec<u16>, CliError> {
    let mut out = match &args.ports {
        Some(list) => targets::parse_ports(list)?,
        None if args.llm_ports => Vec::new(),
        None => vec![11434],
    };
    if args.llm_ports {
        out.extend(
            targets::LLM_PORTS
                .iter()
                .filter(|p| !out.contains(p))
                .collect::<Vec<_>>(),
        );
    }
    Ok(out)
}

fn open_out(path: &Option<PathBuf>) -> Result<Box<dyn Write + Send>, CliError> {
    match path {
        Some(p) => std::fs::File::create(p)
            .map(|f| Box::new(io::BufWriter::new(f)) as Box<dyn Write + Send>)
            .map_err(|e| CliError::Write(p.display().to_string(), e.kind().to_string())),
        None => Ok(Box::new(io::stdout())),
    }
}

async fn run(args: ScanArgs, argv: &[String]) -> Result<i32, CliError> {
    let inputs = inputs(&args, argv)?;
    let ports = ports(&args)?;
    let mut exclude = targets::parse_exclusions(&args.exclude)?;
    for f in &args.exclude_file {
        exclude.extend(targets::read_exclude_file(f)?);
    }
    let shard = args.shard.as_deref().map(Shard::parse).transpose()?;
    let addresses = TargetStream::count(&inputs, args.from)?;
    if addresses > CONFIRM_ABOVE && !args.yes {
        return Err(TargetError::TooLarge(addresses).into());
    }
    let limit = (!args.yes).then_some(CONFIRM_ABOVE);
    // Lines read from stdin cannot be counted ahead: the progress line then shows done and rate.
    let from_stdin = inputs.contains(&Input::Stdin);
    let total = (!from_stdin).then(|| addresses.saturating_mul(ports.len() as u128));
    // Bad lines in files and on stdin are warnings; a scan left with no valid target at all
    // is an error (exit 2), not an empty success.
    let valid = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = valid.clone();
    let stream = TargetStream::new(inputs, args.from, ports, Filter { exclude, shard }, limit)
        .inspect(move |t| {
            if t.is_ok() {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
    let mut skipped = 0u64;
    let opts = ScanOptions {
        concurrency: args.concurrency,
        // Lines from a pipe may trickle in (masscan as it finds ports): never wait for a batch.
        batch: if from_stdin { 1 } else { 256 },
        host_timeout: args.host_timeout,
        http: HttpConfig {
            connect_timeout: args.connect_timeout,
            request_timeout: args.timeout,
            max_body: args.max_body,
            retries: args.retries,
            pacer: Pacer::per_second(args.rate),
            ..HttpConfig::default()
        },
        probe: ProbeOptions {
            max_show: args.max_show,
            ..ProbeOptions::default()
        },
    };
    let out = Arc::new(Mutex::new(open_out(&args.output)?));
    let streamed = matches!(args.format, Format::Table | Format::Ndjson);
    let write_err = |e: io::Error| {
        CliError::Write(
            args.output
                .as_ref()
                .map_or("stdout".into(), |p| p.display().to_string()),
            e.to_string(),
        )
    };
    if args.format == Format::Table {
        if let Ok(mut w) = out.lock() {
            output::table_header(&mut *w).map_err(write_err)?;
        }
    }
    let progress = Arc::new(Progress::default());
    let live = Arc::new(Live::new(
        io::stderr().is_terminal(),
        total,
        progress.clone(),
    ));
    let ticker = live
        .enabled()
        .then(|| tokio::spawn(live.clone().tick(Duration::from_millis(200))));
    let mut hosts: Vec<HostReport> = Vec::new();
    let mut write_failed: Option<io::Error> = None;
    let cancel = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let outcome = scanner::run(
        &opts,
        stream,
        cancel,
        progress,
        |h| {
            if streamed && write_failed.is_none() {
                if let Ok(mut w) = out.lock() {
                    let r = live.above(|| {
                        match args.format {
                            Format::Table => output::table_row(&mut *w, &h),
                            _ => output::ndjson_host(&mut *w, &h),
                        }
                        .and_then(|()| w.flush())
                    });
                    if let Err(e) = r {
                        write_failed = Some(e);
                    }
                }
            }
            hosts.push(h);
        },
        |e| {
            skipped += 1;
            live.above(|| eprintln!("corral scan: warning: {e}"));
        },
    )
    .await?;
    if let Some(t) = ticker {
        t.abort();
    }
    live.finish();
    if let Some(e) = write_failed {
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(write_err(e));
        }
    }
    hosts.sort_by(|a, b| {
        b.max_severity()
            .cmp(&a.max_severity())
            .then(a.ip.cmp(&b.ip))
            .then(a.port.cmp(&b.port))
    });
    let summary = summary::summarise(&hosts, outcome.scanned);
    if let Ok(mut w) = out.lock() {
        let w: &mut dyn Write = &mut *w;
        let r = match args.format {
            Format::Table => output::table_summary(w, &summary),
            Format::Ndjson => output::ndjson_summary(w, &summary),
            Format::Json => {
                serde_json::to_writer_pretty(&mut *w, &output::json_document(&hosts, &summary))
                    .map_err(io::Error::other)
                    .and_then(|()| writeln!(w))
            }
            Format::Csv => output::csv(w, &hosts),
            Format::Sarif => serde_json::to_writer_pretty(&mut *w, &output::sarif(&hosts))
                .map_err(io::Error::other)
                .and_then(|()| writeln!(w)),
        };
        match r.and_then(|()| w.flush()) {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(write_err(e)),
            _ => {}
        }
    }
    if let Some(path) = &args.report {
        std::fs::write(path, output::html::render(&hosts, &summary))
            .map_err(|e| CliError::Write(path.display().to_string(), e.kind().to_string()))?;
    }
    if let Some(e) = outcome.fatal {
        eprintln!("corral scan: stopped: {e}");
        return Ok(2);
    }
    if skipped > 0 && valid.load(std::sync::atomic::Ordering::Relaxed) == 0 && !outcome.interrupted
    {
        eprintln!(
            "corral scan: no valid target: every target given was skipped ({skipped} warnings above)"
        );
        return Ok(2);
    }
    if outcome.interrupted {
        eprintln!(
            "corral scan: interrupted after {} endpoints; results above are partial",
            outcome.scanned
        );
        return Ok(130);
    }
    Ok(fail_on_code(&hosts, args.fail_on))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct T {
        #[command(flatten)]
        a: ScanArgs,
    }

    fn parse(v: &[&str]) -> ScanArgs {
        T::try_parse_from(std::iter::once("scan").chain(v.iter().copied()))
            .unwrap()
            .a
    }

    fn inputs_of(v: &[&str]) -> Result<Vec<Input>, CliError> {
        let argv: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        inputs(&parse(v), &argv)
    }

    #[test]
    fn nmap_style_input_list_and_ports() {
        assert_eq!(
            inputs_of(&["-iL", "hosts.txt"]).unwrap(),
            vec![Input::File("hosts.txt".into())]
        );
        assert_eq!(
            inputs_of(&["10.0.0.1", "-iL", "a.txt", "-iL", "b.txt", "10.0.0.2"]).unwrap(),
            vec![
                Input::Arg("10.0.0.1".into()),
                Input::Arg("10.0.0.2".into()),
                Input::File("a.txt".into()),
                Input::File("b.txt".into())
            ]
        );
        assert_eq!(
            inputs_of(&["-i", "L"]).unwrap(),
            vec![Input::File("L".into())]
        );
        assert_eq!(
            inputs_of(&["127.0.0.1", "--input-list", "h.txt"]).unwrap(),
            vec![Input::Arg("127.0.0.1".into()), Input::File("h.txt".into())]
        );
        let a = parse(&["--from", "masscan", "-"]);
        assert_eq!(
            (inputs_of(&["--from", "masscan", "-"]).unwrap(), a.from),
            (vec![Input::Stdin], InputFormat::Masscan)
        );
        assert!(matches!(inputs_of(&[]), Err(CliError::NoTargets)));
        assert!(matches!(
            inputs_of(&["-", "-iL", "-"]),
            Err(CliError::Usage(_))
        ));
        assert_eq!(ports(&parse(&["x"])).unwrap(), vec![11434]);
        assert_eq!(ports(&parse(&["x", "--llm-ports"])).unwrap().len(), 16);
        assert_eq!(
            ports(&parse(&["x", "-p", "1,2", "--llm-ports"]))
                .unwrap()
                .len(),
            18
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(
            parse_duration("0s").is_err()
                && parse_duration("5h").is_err()
                && parse_duration("x").is_err()
        );
    }
}
