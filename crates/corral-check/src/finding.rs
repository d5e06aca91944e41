//! Findings: what `corral check` reports, with the evidence behind each one and how to fix it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Ordered from least to most severe, so `>=` compares against `--fail-on`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a finding was seen. `path` is the host path (the `--root` prefix removed), so the
/// remediation names the file an operator would edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    pub detail: String,
}

impl Evidence {
    pub fn at(path: impl Into<String>, line: Option<u32>, detail: impl Into<String>) -> Self {
        Evidence {
            path: Some(path.into()),
            line,
            detail: detail.into(),
        }
    }

    pub fn note(detail: impl Into<String>) -> Self {
        Evidence {
            path: None,
            line: None,
            detail: detail.into(),
        }
    }

    /// `path:line` or `path`, for tables.
    pub fn location(&self) -> Option<String> {
        match (&self.path, self.line) {
            (Some(p), Some(l)) => Some(format!("{p}:{l}")),
            (Some(p), None) => Some(p.clone()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable rule id, e.g. `socket.exposed`; several findings may share one.
    pub id: String,
    pub severity: Severity,
    pub title: String,
    /// The first entry is the primary location (used for SARIF).
    pub evidence: Vec<Evidence>,
    pub remediation: String,
}

impl Finding {
    pub fn new(id: &str, severity: Severity, title: impl Into<String>) -> Self {
        Finding {
            id: id.to_string(),
            severity,
            title: title.into(),
            evidence: Vec::new(),
            remediation: String::new(),
        }
    }

    pub fn with(mut self, evidence: Evidence) -> Self {
        self.evidence.push(evidence);
        self
    }

    pub fn fix(mut self, remediation: impl Into<String>) -> Self {
        self.remediation = remediation.into();
        self
    }
}

/// Short description of each rule, for SARIF `rules[]` and the table legend.
pub fn rule_description(id: &str) -> &'static str {
    match id {
        "socket.exposed" => "Ollama listens on a wildcard or non-loopback address",
        "config.host" => "OLLAMA_HOST makes Ollama listen beyond loopback",
        "config.origins" => "OLLAMA_ORIGINS lets web pages drive the API",
        "config.debug" => "OLLAMA_DEBUG logs request details",
        "config.setting" => "Other OLLAMA_* setting worth reviewing",
        "container" => "Ollama runs in a container",
        "firewall.open" => "Inbound Ollama port is not dropped by the firewall",
        "firewall.unknown" => "Firewall state cannot be determined",
        "firewall.restricted" => "Inbound Ollama port is accepted from some sources",
        "model.foreign-registry" => "Model pulled from a registry other than the official one (registry.ollama.ai, ollama.com)",
        "model.missing-blob" => "Manifest references a blob that is not in the store",
        "model.orphan-blob" => "Blob not referenced by any manifest",
        "model.tampered-blob" => "Blob content does not match its sha256 name",
        "model.size-mismatch" => "Blob size differs from the manifest",
        "model.bad-digest" => "Manifest digest is not a sha256 digest",
        "model.bad-manifest" => "Manifest cannot be parsed",
        "model.since" => "Model added or changed since the given time",
        "model.not-in-baseline" => "Model not in the baseline",
        "model.changed" => "Model differs from the baseline",
        "model.removed" => "Baseline model no longer present",
        "process.child" => "Unexpected child process of Ollama",
        "version.cve" => "Ollama version affected by a known CVE",
        "version.unknown" => "Ollama version cannot be determined",
        _ => "corral check finding",
    }
}
