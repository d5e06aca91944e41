//! `corral hunt` and `corral rules`: argument definitions and the two entry points the
//! binary calls. Everything here prints; the library modules do not.

use std::fs;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::builtin;
use crate::engine::Engine;
use crate::export::{export, ExportFormat};
use crate::formats::InputFormat;
use crate::output::{self, OutputFormat};
use crate::rule::{parse::parse_span, parse_rules, Rule};
use corral_ollama::term::term as printable;

/// `corral hunt`: run detection rules over log files.
#[derive(clap::Args, Debug, Clone)]
pub struct HuntArgs {
    /// Log files (plain, gzip or zstd); `-` reads standard input
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,

    /// Input format; `auto` detects it per file
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = InputFormat::Auto)]
    pub input_format: InputFormat,

    /// Rule file or directory (Sigma subset), repeatable; replaces the built-in rules unless
    /// --builtin is also given
    #[arg(long, value_name = "PATH")]
    pub rules: Vec<PathBuf>,

    /// Run the built-in rules as well as those of --rules
    #[arg(long)]
    pub builtin: bool,

    /// Output format [default: table on a terminal, ndjson otherwise]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<OutputFormat>,

    /// Write the output to FILE instead of standard output
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// High-volume rule: alert when one external source makes more than N requests in a window
    #[arg(long, value_name = "N", default_value_t = 120)]
    pub volume_threshold: u64,

    /// High-volume rule: window length (e.g. 300s, 5m, 1h)
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = window_ms)]
    pub volume_window: i64,

    /// DNS rule: also allow this domain and its subdomains (repeatable)
    #[arg(long = "allow-domain", value_name = "DOMAIN")]
    pub allow_domains: Vec<String>,

    /// Worker threads [default: available cores]
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

fn window_ms(s: &str) -> Result<i64, String> {
    parse_span(s).ok_or_else(|| format!("`{s}` is not a duration like 300s, 5m or 1h"))
}

/// `corral rules`: the built-in rules, exported or listed, and a checker for rule files.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum RulesCommand {
    /// Write every built-in rule in a SIEM's language
    Export {
        /// Target language
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Directory to write one file per rule into [default: standard output]
        #[arg(short = 'o', long = "output", value_name = "DIR")]
        output: Option<PathBuf>,
    },
    /// Check rule files and report errors with line numbers
    Lint {
        /// Rule files or directories
        #[arg(value_name = "PATH", required = true)]
        paths: Vec<PathBuf>,
    },
    /// List the built-in rules
    List,
}

/// An error or warning on stderr. Messages quote file names, rule texts and record values,
/// so control characters are escaped (see [`crate::term`]).
fn err(msg: impl std::fmt::Display) {
    eprintln!("corral hunt: {}", printable(&msg.to_string()));
}

fn rules_err(msg: impl std::fmt::Display) {
    eprintln!("corral rules: {}", printable(&msg.to_string()));
}

/// Runs `corral hunt`. Exit status: 0 no alerts, 1 alerts, 2 error.
pub fn hunt_main(args: HuntArgs) -> i32 {
    let mut rules = match select_rules(&args) {
        Ok(r) => r,
        Err(errors) => {
            for e in errors {
                err(e);
            }
            return 2;
        }
    };
    builtin::set_volume(&mut rules, args.volume_threshold, args.volume_window);
    builtin::allow_domains(&mut rules, &args.allow_domains);
    let engine = match Engine::new(rules) {
        Ok(e) => e,
        Err(e) => {
            err(e);
            return 2;
        }
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from))
        .max(1);
    let progress = io::stderr().is_terminal();
    let to_terminal = args.output.is_none() && io::stdout().is_terminal();
    let fmt = args.format.unwrap_or(if to_terminal {
        OutputFormat::Table
    } else {
        OutputFormat::Ndjson
    });
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => match fs::File::create(path) {
            Ok(f) => Box::new(io::BufWriter::new(f)),
            Err(e) => {
                err(format!("cannot create {}: {e}", path.display()));
                return 2;
            }
        },
        None => Box::new(io::BufWriter::new(io::stdout().lock())),
    };
    // NDJSON alerts are written as they are found, so memory does not grow with their number;
    // the table and SARIF need them all first.
    let mut alert_count = 0u64;
    let mut kept = Vec::new();
    let mut write_error: Option<io::Error> = None;
    let run = crate::hunt_paths_streaming(
        &engine,
        &args.files,
        args.input_format,
        threads,
        progress,
        &mut |files, alerts| {
            alert_count += alerts.len() as u64;
            if fmt != OutputFormat::Ndjson {
                kept.extend(alerts);
                return;
            }
            if write_error.is_some() {
                return;
            }
            for a in &alerts {
                if let Err(e) = output::write_ndjson(&engine, files, a, &mut out) {
                    write_error = Some(e);
                    return;
                }
            }
        },
    );
    let mut failed = false;
    for f in &run.files {
        if let Some(e) = &f.error {
            err(format!("{}: {e}", f.path));
            failed = true;
        }
        for (line, why) in &f.malformed_samples {
            err(format!("{}:{line}: malformed record: {why}", f.path));
        }
        if f.malformed > f.malformed_samples.len() as u64 {
            err(format!(
                "{}: {} malformed records in all (first {} listed)",
                f.path,
                f.malformed,
                f.malformed_samples.len()
            ));
        }
        if f.lossy > 0 {
            err(format!(
                "{}: {} line{} with invalid UTF-8 decoded lossily (each bad byte sequence read as U+FFFD)",
                f.path,
                f.lossy,
                if f.lossy == 1 { "" } else { "s" }
            ));
        }
        if f.untimed > 0 {
            err(format!(
                "{}: {} events without a usable timestamp were left out of windowed rules",
                f.path, f.untimed
            ));
        }
    }
    let written = match write_error {
        Some(e) => Err(e),
        None if fmt == OutputFormat::Ndjson => out.flush(),
        None => output::write(fmt, &engine, &run.files, &kept, &mut out).and_then(|()| out.flush()),
    };
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            err(format!("writing output: {e}"));
            return 2;
        }
        Ok(()) => {}
    }
    if failed {
        2
    } else if alert_count == 0 {
        0
    } else {
        1
    }
}

fn select_rules(args: &HuntArgs) -> Result<Vec<Rule>, Vec<String>> {
    let mut rules = Vec::new();
    if args.rules.is_empty() || args.builtin {
        rules = builtin::rules().map_err(|e| {
            e.into_iter()
                .map(|(f, e)| format!("builtin {f}:{e}"))
                .collect::<Vec<_>>()
        })?;
    }
    let mut errors = Vec::new();
    for path in &args.rules {
        let (loaded, errs) = load_rule_paths(std::slice::from_ref(path));
        if loaded.is_empty() && errs.is_empty() {
            errors.push(format!(
                "{}: no rules found (rule files are YAML ending in .yml or .yaml)",
                path.display()
            ));
        }
        errors.extend(errs);
        rules.extend(loaded);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut seen = std::collections::HashSet::new();
    let dups: Vec<String> = rules
        .iter()
        .filter(|r| !seen.insert(r.id.clone()))
        .map(|r| format!("{}:{}: rule id {} is used twice", r.origin, r.line, r.id))
        .collect();
    if !dups.is_empty() {
        return Err(dups);
    }
    Ok(rules)
}

/// Rule files under `paths` (directories are walked for `.yml`/`.yaml`, sorted).
pub fn rule_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<String>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        walk(p, &mut files, &mut errors, 0);
    }
    (files, errors)
}

fn walk(p: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<String>, depth: usize) {
    match fs::metadata(p) {
        Ok(m) if m.is_dir() => {
            if depth > 16 {
                return;
            }
            match fs::read_dir(p) {
                Ok(rd) => {
                    let mut entries: Vec<PathBuf> =
                        rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
                    entries.sort();
                    for e in entries {
                        let is_yaml = e.extension().is_some_and(|x| x == "yml" || x == "yaml");
                        if e.is_dir() || is_yaml {
                            walk(&e, files, errors, depth + 1);
                        }
                    }
                }
                Err(e) => errors.push(format!("{}: {e}", p.display())),
            }
        }
        Ok(_) => files.push(p.to_path_buf()),
        Err(e) => errors.push(format!("{}: {e}", p.display())),
    }
}

/// Loads rules from files and directories; errors read `path:line: message`.
pub fn load_rule_paths(paths: &[PathBuf]) -> (Vec<Rule>, Vec<String>) {
    let (files, mut errors) = rule_files(paths);
    let mut rules = Vec::new();
    for f in files {
        match fs::read_to_string(&f) {
            Ok(text) => {
                let origin = f.display().to_string();
                let (r, e) = parse_rules(&text, &origin);
                rules.extend(r);
                errors.extend(
                    e.into_iter()
                        .map(|e| format!("{origin}:{}: {}", e.line, e.message)),
                );
            }
            Err(e) => errors.push(format!("{}: {e}", f.display())),
        }
    }
    (rules, errors)
}

/// Runs `corral rules`. Exit status: 0 success, 1 lint found errors, 2 other errors.
pub fn rules_main(cmd: RulesCommand) -> i32 {
    match cmd {
        RulesCommand::List => {
            let Ok(rules) = builtin::rules() else {
                rules_err("built-in rules failed to parse");
                return 2;
            };
            let mut out = io::stdout().lock();
            let _ = writeln!(out, "{:<38} {:<9} TITLE", "ID", "LEVEL");
            for r in rules {
                let window = r
                    .threshold
                    .as_ref()
                    .map(|t| {
                        format!(
                            " (> {} per {} in {}s)",
                            t.gt,
                            t.group_by,
                            t.timespan_ms / 1000
                        )
                    })
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{:<38} {:<9} {}{window}",
                    r.id,
                    r.level.as_str(),
                    r.title
                );
            }
            0
        }
        RulesCommand::Export { format, output } => export_main(format, output.as_deref()),
        RulesCommand::Lint { paths } => lint_main(&paths),
    }
}

fn export_main(format: ExportFormat, dir: Option<&Path>) -> i32 {
    if let Some(d) = dir {
        if let Err(e) = fs::create_dir_all(d) {
            rules_err(format!("{}: {e}", d.display()));
            return 2;
        }
    }
    let mut stdout = io::stdout().lock();
    let mut first = true;
    for (name, text) in builtin::RULES {
        let (rules, errors) = parse_rules(text, name);
        if !errors.is_empty() {
            rules_err(format!("built-in {name} failed to parse"));
            return 2;
        }
        let stem = name.trim_end_matches(".yml");
        for rule in &rules {
            let ex = match export(rule, stem, text, format) {
                Ok(x) => x,
                Err(e) => {
                    rules_err(format!("{}: not exported: {e}", rule.id));
                    continue;
                }
            };
            for n in &ex.notes {
                rules_err(format!("note: {n}"));
            }
            let res = match dir {
                Some(d) => fs::write(d.join(&ex.file_name), &ex.text),
                None => {
                    let sep = match (first, format) {
                        (true, _) => "",
                        (false, ExportFormat::Sigma) => "---\n",
                        (false, _) => "\n",
                    };
                    first = false;
                    stdout
                        .write_all(sep.as_bytes())
                        .and_then(|()| stdout.write_all(ex.text.as_bytes()))
                }
            };
            match res {
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return 0,
                Err(e) => {
                    rules_err(format!("writing {}: {e}", ex.file_name));
                    return 2;
                }
                Ok(()) => {}
            }
        }
    }
    0
}

fn lint_main(paths: &[PathBuf]) -> i32 {
    let (mut files, mut io_errors) = (Vec::new(), Vec::new());
    // As for `hunt --rules`: a path with nothing to lint is a mistake, not a clean bill.
    let mut empty = false;
    for path in paths {
        let (found, errs) = rule_files(std::slice::from_ref(path));
        if found.is_empty() && errs.is_empty() {
            rules_err(format!(
                "{}: no rules found (rule files are YAML ending in .yml or .yaml)",
                path.display()
            ));
            empty = true;
        }
        files.extend(found);
        io_errors.extend(errs);
    }
    for e in &io_errors {
        rules_err(e);
    }
    let mut n_rules = 0usize;
    let mut n_errors = 0usize;
    let mut ids: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut out = io::stdout().lock();
    for f in &files {
        let origin = f.display().to_string();
        let text = match fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                rules_err(format!("{origin}: {e}"));
                n_errors += 1;
                continue;
            }
        };
        let (rules, errors) = parse_rules(&text, &origin);
        for e in &errors {
            let _ = writeln!(
                out,
                "{}",
                printable(&format!("{origin}:{}: error: {}", e.line, e.message))
            );
        }
        n_errors += errors.len();
        for r in &rules {
            if let Some(prev) = ids.insert(r.id.clone(), format!("{origin}:{}", r.line)) {
                let msg = format!(
                    "{origin}:{}: error: rule id {} already used at {prev}",
                    r.line, r.id
                );
                let _ = writeln!(out, "{}", printable(&msg));
                n_errors += 1;
            }
            if let Err(e) = crate::rule::matcher::Compiled::new(r, &mut crate::event::Schema::new())
            {
                let _ = writeln!(
                    out,
                    "{}",
                    printable(&format!("{origin}:{}: error: {e}", r.line))
                );
                n_errors += 1;
            }
        }
        n_rules += rules.len();
    }
    let _ = writeln!(
        out,
        "{n_rules} rule{} checked in {} file{}, {n_errors} error{}",
        if n_rules == 1 { "" } else { "s" },
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        if n_errors == 1 { "" } else { "s" }
    );
    if !io_errors.is_empty() || empty {
        2
    } else if n_errors > 0 {
        1
    } else {
        0
    }
}
