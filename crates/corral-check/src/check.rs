//! Running a check: read the host (or the `--root` tree), then judge.

use crate::binary;
use crate::config;
use crate::container;
use crate::exposure::{self, Listening, SocketCtx};
use crate::finding::{Evidence, Finding, Severity};
use crate::firewall;
use crate::ifaces;
use crate::models::{self, baseline::Baseline, verify};
use crate::procnet;
use crate::procs;
use crate::report::{ProcessFact, Report, VersionFact};
use crate::root::Root;
use crate::settings::{self, Setting};
use crate::version;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::firewall::source::FIXTURES;

#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// `/` for the live host; a fixture tree otherwise. Only `/` runs firewall commands and
    /// probes loopback.
    pub root: PathBuf,
    pub port: u16,
    /// Model directories to check, taken literally (not under `root`). Empty: discover them.
    pub models_dirs: Vec<PathBuf>,
    pub verify: bool,
    pub since: Option<DateTime<Utc>>,
    pub baseline: Option<PathBuf>,
    pub write_baseline: Option<PathBuf>,
    /// Show a progress line on stderr while verifying (only honoured when stderr is a TTY).
    pub progress: bool,
    /// Ask `GET /api/version` on 127.0.0.1:`port` (live root only).
    pub probe_live_version: bool,
    /// OLLAMA_MODELS of the environment `corral check` runs in (a host path, under `root`):
    /// the store an `ollama` started from this shell uses.
    pub env_models: Option<String>,
    /// HOME of the invoking user (a host path, under `root`): its `.ollama/models` is walked.
    pub env_home: Option<String>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            root: PathBuf::from("/"),
            port: 11434,
            models_dirs: Vec::new(),
            verify: false,
            since: None,
            baseline: None,
            write_baseline: None,
            progress: true,
            probe_live_version: true,
            env_models: None,
            env_home: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("root {0} is not a directory")]
    Root(String),
    #[error("models directory {0} does not exist")]
    ModelsDir(String),
    #[error("cannot read baseline {path}: {source}")]
    BaselineRead {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    BaselineParse {
        path: String,
        source: models::baseline::BaselineError,
    },
    #[error("cannot write baseline {path}: {source}")]
    BaselineWrite {
        path: String,
        source: std::io::Error,
    },
}

pub fn run(opts: &CheckOptions) -> Result<Report, CheckError> {
    let root = Root::new(&opts.root);
    if !opts.root.is_dir() {
        return Err(CheckError::Root(opts.root.display().to_string()));
    }
    for d in &opts.models_dirs {
        if !d.is_dir() {
            return Err(CheckError::ModelsDir(d.display().to_string()));
        }
    }
    let baseline = match &opts.baseline {
        Some(p) => {
            let path = p.display().to_string();
            let text = std::fs::read_to_string(p).map_err(|source| CheckError::BaselineRead {
                path: path.clone(),
                source,
            })?;
            Some((
                path.clone(),
                Baseline::parse(&text)
                    .map_err(|source| CheckError::BaselineParse { path, source })?,
            ))
        }
        None => None,
    };

    let mut notes = Vec::new();
    let mut findings: Vec<Finding> = Vec::new();

    // Processes and their environment.
    let procs = procs::read_procs(&root);
    let servers: Vec<u32> = procs::servers(&procs).iter().map(|p| p.pid).collect();
    let ollama_pids: Vec<u32> = procs
        .values()
        .filter(|p| procs::is_ollama(p))
        .map(|p| p.pid)
        .collect();
    let mut all_settings: Vec<Setting> = Vec::new();
    for pid in &servers {
        match procs::read_environ(&root, *pid) {
            Some(env) => all_settings.extend(settings::process_settings(*pid, &env)),
            None => notes.push(format!(
                "cannot read /proc/{pid}/environ (run as root to see the server's settings)"
            )),
        }
    }
    let unit = settings::read_unit_env(&root);
    notes.extend(unit.notes.iter().cloned());
    all_settings.extend(
        unit.settings
            .iter()
            .filter(|s| s.name.starts_with("OLLAMA_"))
            .cloned(),
    );
    all_settings.extend(
        settings::read_etc_environment(&root)
            .into_iter()
            .filter(|s| s.name.starts_with("OLLAMA_")),
    );

    // A container marker matters only when Ollama runs here.
    let container_ev = if ollama_pids.is_empty() {
        Vec::new()
    } else {
        container::detect(&root, &ollama_pids)
    };
    let config_findings = config::findings(&all_settings, opts.port, !container_ev.is_empty());
    let bind_fix = config_findings
        .iter()
        .find(|f| f.id == "config.host")
        .map(|f| format!("Bind Ollama to loopback. {}.", f.remediation))
        .unwrap_or_else(|| {
            format!(
                "Bind Ollama to loopback: add `[Service]` and `Environment=\"OLLAMA_HOST=127.0.0.1:{}\"` to /etc/systemd/system/ollama.service.d/override.conf, then `systemctl daemon-reload && systemctl restart ollama`.",
                opts.port
            )
        });
    let host_exposed_by_config = config_findings.iter().any(|f| f.id == "config.host");
    findings.extend(config_findings);
    if !container_ev.is_empty() {
        let mut f = Finding::new("container", Severity::Info, "Ollama runs in a container: the official image sets OLLAMA_HOST=0.0.0.0:11434, so exposure depends on how the port is published")
            .fix(format!("Publish the port on loopback only (`-p 127.0.0.1:{p}:{p}`); note that published ports bypass the host's INPUT chain", p = opts.port));
        f.evidence = container_ev;
        findings.push(f);
    }

    // Firewall.
    let dumps = if root.is_live() {
        firewall::source::live_dumps()
    } else {
        firewall::source::fixture_dumps(&root)
    };
    let fw = firewall::status(&dumps, opts.port);

    // Sockets.
    let host_addrs = ifaces::host_addrs(
        &root.read_text("/proc/net/fib_trie").unwrap_or_default(),
        &root.read_text("/proc/net/route").unwrap_or_default(),
        &root.read_text("/proc/net/if_inet6").unwrap_or_default(),
    );
    let tables: Vec<(&str, Vec<procnet::NetSocket>)> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .into_iter()
        .map(|t| {
            (
                t,
                root.read_text(t)
                    .map(|x| procnet::parse(&x))
                    .unwrap_or_default(),
            )
        })
        .collect();
    let listening: Vec<Listening<'_>> = tables
        .iter()
        .flat_map(|(t, v)| {
            v.iter()
                .filter(|s| s.is_listen())
                .map(move |s| Listening { table: t, sock: s })
        })
        .collect();
    let pids: Vec<u32> = procs.keys().copied().collect();
    let (owners, unreadable) = procs::socket_owners(&root, &pids);
    if !unreadable.is_empty() {
        let ollama_unreadable: Vec<String> = unreadable
            .iter()
            .filter(|p| ollama_pids.contains(p))
            .map(ToString::to_string)
            .collect();
        if !ollama_unreadable.is_empty() {
            notes.push(format!("cannot read the fds of Ollama pid {} (run as root): sockets are matched on the port only", ollama_unreadable.join(", ")));
        }
    }
    let (sockets, sock_findings) = exposure::sockets(
        &SocketCtx {
            port: opts.port,
            procs: &procs,
            owners: &owners,
            host: &host_addrs,
            firewall: &fw,
            firewall_at: &|port| firewall::status(&dumps, port),
            bind_fix,
        },
        &listening,
    );
    let exposed = !sock_findings.is_empty() || host_exposed_by_config;
    findings.extend(sock_findings);
    findings.extend(firewall::judge::findings(&fw, opts.port, exposed));

    // Processes below Ollama.
    findings.extend(exposure::children(&procs));

    // Version.
    let server_sockets: Vec<std::net::SocketAddr> = sockets
        .iter()
        .filter(|s| s.pids.iter().any(|p| servers.contains(p)))
        .filter_map(|s| s.local.parse().ok())
        .collect();
    let probed = version::probe_targets(opts.port, &server_sockets);
    let server_exes: Vec<String> = servers
        .iter()
        .filter_map(|pid| procs.get(pid).and_then(|p| p.exe.clone()))
        .collect();
    let binaries = binary::candidates(&server_exes, unit.exec_start.as_deref());
    let version = read_version(&root, opts, &probed).or_else(|| {
        // No server answered (or none runs): the executable tells which version would run.
        binary::version_from_files(&root, &binaries).map(|(v, path)| VersionFact {
            version: v,
            source: path,
            method: "executable",
        })
    });
    match &version {
        Some(v) => {
            let detail = match v.method {
                "executable" => format!("version {} (link-time version in the executable, read without running it)", v.version),
                _ => format!("version {}", v.version),
            };
            findings.extend(version::cve_findings(&v.version, &Evidence::at(v.source.clone(), None, detail)));
        }
        None if !servers.is_empty() => findings.push(
            Finding::new("version.unknown", Severity::Info, "Ollama's version cannot be determined")
                .with(Evidence::note(version_unknown_why(&root, opts, &probed, &binaries)))
                .fix("Run `ollama --version` and compare it with the CVE table (fixed in 0.17.1 for the latest critical one)"),
        ),
        None => {}
    }

    // Model stores.
    let dirs = models::discover::model_dirs(
        &root,
        &opts.models_dirs,
        &all_settings,
        unit.user.as_deref(),
        &models::discover::Invoking {
            models: opts.env_models.as_deref(),
            home: opts.env_home.as_deref(),
        },
    );
    let show = |p: &Path| {
        if opts.models_dirs.is_empty() {
            root.display(p)
        } else {
            p.display().to_string()
        }
    };
    // A fixture or evidence tree's absolute links point into that tree's host, not ours.
    let confine = (!root.is_live())
        .then(|| std::fs::canonicalize(root.base()).ok())
        .flatten();
    let mut stores: Vec<models::StoreScan> = dirs
        .iter()
        .map(|d| models::scan_store(d, &show, confine.as_deref()))
        .collect();
    let all_models: Vec<models::ModelEntry> = stores
        .iter()
        .flat_map(|s| s.models.iter().cloned())
        .collect();
    for s in &mut stores {
        findings.append(&mut s.findings);
    }
    findings.extend(models::provenance(&all_models, opts.since));
    let located: Vec<models::baseline::Located<'_>> = stores
        .iter()
        .flat_map(|s| s.models.iter().map(move |m| (s.dir.as_str(), m)))
        .collect();
    if let Some((path, b)) = &baseline {
        findings.extend(models::baseline::compare(b, path, &located));
    }
    let mut verified_blobs = None;
    if opts.verify {
        let blobs: Vec<&models::Blob> = stores.iter().flat_map(|s| s.blobs.values()).collect();
        let progress = opts.progress && std::io::IsTerminal::is_terminal(&std::io::stderr());
        for (hex, r) in verify::verify_blobs(&blobs, progress) {
            let Some(b) = blobs.iter().find(|b| b.hex == hex) else {
                continue;
            };
            match r {
                verify::BlobResult::Ok => {}
                verify::BlobResult::Mismatch { actual } => findings.push(
                    Finding::new("model.tampered-blob", Severity::Critical, "Blob content does not match its sha256 name")
                        .with(Evidence::at(show(&b.path), None, format!("content hashes to sha256:{actual}")))
                        .fix("A blob was modified after download: remove the models that use it and re-pull them from the registry, then find out who could write to the models directory"),
                ),
                verify::BlobResult::Unreadable { error } => notes.push(format!("cannot read {} ({error})", show(&b.path))),
            }
        }
        verified_blobs = Some(blobs.len());
    }
    let mut baseline_written = None;
    if let Some(p) = &opts.write_baseline {
        let path = p.display().to_string();
        std::fs::write(p, Baseline::from_models(&located, Utc::now()).to_json()).map_err(
            |source| CheckError::BaselineWrite {
                path: path.clone(),
                source,
            },
        )?;
        baseline_written = Some(path);
    }

    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.title.cmp(&b.title))
    });
    let below: BTreeSet<u32> = servers
        .iter()
        .flat_map(|s| procs::descendants(&procs, *s))
        .filter_map(|c| c.last().copied())
        .collect();
    let processes = procs
        .values()
        .filter(|p| procs::is_ollama(p) || below.contains(&p.pid))
        .map(|p| ProcessFact {
            pid: p.pid,
            ppid: p.ppid,
            comm: p.comm.clone(),
            cmdline: p.cmdline.clone(),
            role: if servers.contains(&p.pid) {
                "server"
            } else if procs::is_runner(p) || procs::is_ollama(p) {
                "runner"
            } else {
                "child"
            },
        })
        .collect();
    Ok(Report {
        root: opts.root.display().to_string(),
        port: opts.port,
        generated: Utc::now(),
        version,
        processes,
        unit_files: unit.files,
        sockets,
        host_addresses: host_addrs,
        settings: all_settings,
        firewall: fw,
        stores,
        verified_blobs,
        baseline_written,
        notes,
        findings,
    })
}

/// The version from the live server (asked at each of `targets` in turn), or from the
/// fixture file under another root.
/// Why no version was found, as the evidence of `version.unknown`: only the live host (`--root
/// /`) is asked over the network.
fn version_unknown_why(
    root: &Root,
    opts: &CheckOptions,
    probed: &[std::net::SocketAddr],
    binaries: &[String],
) -> String {
    let files = format!(
        "; no Ollama executable with a link-time version at {}",
        binaries.join(", ")
    );
    if !root.is_live() {
        return format!(
            "--root {} is not this host, so no Ollama was asked over the network, and it has \
             no {FIXTURES}/version.json{files}",
            root.base().display()
        );
    }
    if !opts.probe_live_version {
        return format!("the live version probe is turned off{files}");
    }
    format!(
        "nothing answered GET /api/version on {}{files}",
        probed
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn read_version(
    root: &Root,
    opts: &CheckOptions,
    targets: &[std::net::SocketAddr],
) -> Option<VersionFact> {
    if root.is_live() {
        if !opts.probe_live_version {
            return None;
        }
        return version::probe_any(targets, Duration::from_millis(1500)).map(|(v, at)| {
            VersionFact {
                version: v,
                source: format!("http://{at}/api/version"),
                method: "api",
            }
        });
    }
    let host = format!("{FIXTURES}/version.json");
    let text = root.read_text(&host)?;
    version::version_from_json(&text).map(|v| VersionFact {
        version: v,
        source: host,
        method: "fixture",
    })
}
