//! The result of a check and its renderings.

use crate::finding::{Finding, Severity};
use crate::firewall::{FirewallStatus, PortVerdict};
use crate::ifaces::HostAddr;
use crate::models::StoreScan;
use crate::procnet::Reach;
use crate::settings::Setting;
use chrono::{DateTime, Utc};
use corral_ollama::term::term;
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
    Sarif,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProcessFact {
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    pub cmdline: Vec<String>,
    /// `server`, `runner` or `child`.
    pub role: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct SocketFact {
    pub local: String,
    pub port: u16,
    pub reach: Reach,
    pub pids: Vec<u32>,
    pub programs: Vec<String>,
    /// `/proc/net/tcp` or `/proc/net/tcp6`, and the row.
    pub table: String,
    pub line: u32,
    pub inode: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionFact {
    pub version: String,
    /// Where it was read: a URL, a fixture file or the executable (host paths).
    pub source: String,
    /// `api` (`GET /api/version`), `fixture` (`corral-fixtures/version.json`) or `executable`
    /// (the link-time version in Ollama's binary, read without running it).
    pub method: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub root: String,
    pub port: u16,
    pub generated: DateTime<Utc>,
    pub version: Option<VersionFact>,
    pub processes: Vec<ProcessFact>,
    pub unit_files: Vec<String>,
    pub sockets: Vec<SocketFact>,
    pub host_addresses: Vec<HostAddr>,
    pub settings: Vec<Setting>,
    pub firewall: FirewallStatus,
    pub stores: Vec<StoreScan>,
    /// Blobs hashed by `--verify`, when it ran.
    pub verified_blobs: Option<usize>,
    pub baseline_written: Option<String>,
    /// Things that limited the check (unreadable files, missing permissions).
    pub notes: Vec<String>,
    pub findings: Vec<Finding>,
}

impl Report {
    /// 1 when any finding is at or above `fail_on`, else 0. Errors (2) are the caller's.
    pub fn exit_code(&self, fail_on: Severity) -> i32 {
        i32::from(self.findings.iter().any(|f| f.severity >= fail_on))
    }

    pub fn count(&self, s: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == s).count()
    }

    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Table => self.table(),
            Format::Json => serde_json::to_string_pretty(self).unwrap_or_default() + "\n",
            Format::Sarif => {
                serde_json::to_string_pretty(&crate::sarif::sarif(self)).unwrap_or_default() + "\n"
            }
        }
    }

    /// Every value that came from the host (paths, process names, environment values, model
    /// names, firewall rule text, notes) goes through [`term`]: an escape sequence or a newline in
    /// them must neither drive the terminal nor forge a line of the report.
    fn table(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "corral check: root {}, port {}",
            term(&self.root),
            self.port
        );
        let servers: Vec<String> = self
            .processes
            .iter()
            .filter(|p| p.role == "server")
            .map(|p| p.pid.to_string())
            .collect();
        let _ = writeln!(
            o,
            "  ollama:    {} (version {})",
            if servers.is_empty() {
                "no running server found".to_string()
            } else {
                format!("server pid {}", servers.join(", "))
            },
            self.version
                .as_ref()
                .map_or("unknown".to_string(), |v| format!(
                    "{} from {}{}",
                    term(&v.version),
                    term(&v.source),
                    if v.method == "executable" {
                        ", read from the executable"
                    } else {
                        ""
                    }
                ))
        );
        for s in &self.sockets {
            let _ = writeln!(
                o,
                "  listening: {} ({}) by {}",
                term(&s.local),
                match s.reach {
                    Reach::Loopback => "loopback",
                    Reach::Wildcard => "all interfaces",
                    Reach::Address => "one address",
                },
                if s.programs.is_empty() {
                    "unknown process".to_string()
                } else {
                    term(&s.programs.join(", ")).into_owned()
                }
            );
        }
        let fw = |v: &PortVerdict| match v {
            PortVerdict::Dropped { by, .. } => format!("dropped ({})", term(by)),
            PortVerdict::Open { by, .. } => format!("NOT dropped ({})", term(by)),
            PortVerdict::Restricted { by, .. } => {
                format!("accepted from some sources ({})", term(by))
            }
            PortVerdict::Unknown { reason } => term(reason).into_owned(),
        };
        let _ = writeln!(
            o,
            "  firewall:  tcp/{} IPv4 {}",
            self.port,
            fw(&self.firewall.ipv4)
        );
        let _ = writeln!(
            o,
            "             tcp/{} IPv6 {}",
            self.port,
            fw(&self.firewall.ipv6)
        );
        if self.stores.is_empty() {
            let _ = writeln!(o, "  models:    no model store found");
        }
        for st in &self.stores {
            let _ = writeln!(
                o,
                "  models:    {}: {} models, {} blobs",
                term(&st.dir),
                st.models.len(),
                st.blob_count
            );
            for m in &st.models {
                let _ = writeln!(
                    o,
                    "             {} {} ({})",
                    term(&m.name),
                    term(short(&m.digest)),
                    crate::models::verify::human(m.size)
                );
            }
        }
        if let Some(n) = self.verified_blobs {
            let _ = writeln!(o, "  verified:  {n} blobs hashed");
        }
        if let Some(p) = &self.baseline_written {
            let _ = writeln!(o, "  baseline:  written to {}", term(p));
        }
        for n in &self.notes {
            let _ = writeln!(o, "  note:      {}", term(n));
        }
        let _ = writeln!(o);
        if self.findings.is_empty() {
            let _ = writeln!(o, "No findings.");
            return o;
        }
        let _ = writeln!(
            o,
            "{} findings: {} critical, {} high, {} medium, {} low, {} info",
            self.findings.len(),
            self.count(Severity::Critical),
            self.count(Severity::High),
            self.count(Severity::Medium),
            self.count(Severity::Low),
            self.count(Severity::Info)
        );
        for f in &self.findings {
            let _ = writeln!(
                o,
                "\n[{}] {}  {}",
                f.severity.as_str().to_uppercase(),
                term(&f.id),
                term(&f.title)
            );
            for e in &f.evidence {
                match e.location() {
                    Some(l) => {
                        let _ = writeln!(o, "    evidence: {}: {}", term(&l), term(&e.detail));
                    }
                    None => {
                        let _ = writeln!(o, "    evidence: {}", term(&e.detail));
                    }
                }
            }
            if !f.remediation.is_empty() {
                let _ = writeln!(o, "    fix:      {}", term(&f.remediation));
            }
        }
        o
    }
}

fn short(d: &str) -> &str {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    hex.get(..12).unwrap_or(hex)
}
