//! What a scan learns about one endpoint, and the findings drawn from it.

use std::net::IpAddr;

use serde::Serialize;

use crate::targets::Scheme;

/// Ordered from least to most severe, so `>=` compares against `--fail-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerKind {
    Ollama,
    /// Answers /api/tags like Ollama without its banner (an emulating server or proxy).
    OllamaCompatible,
    CorralGate,
    Vllm,
    LlamaCpp,
    LmStudio,
    LocalAi,
    TextGenerationWebui,
    OpenWebui,
    Litellm,
    Tgi,
    Koboldcpp,
    Sglang,
    /// An HTTP service that demands authentication before saying what it is.
    UnknownProtected,
}

impl ServerKind {
    pub fn label(self) -> &'static str {
        match self {
            ServerKind::Ollama => "Ollama",
            ServerKind::OllamaCompatible => "Ollama-compatible",
            ServerKind::CorralGate => "corral gate",
            ServerKind::Vllm => "vLLM",
            ServerKind::LlamaCpp => "llama.cpp",
            ServerKind::LmStudio => "LM Studio",
            ServerKind::LocalAi => "LocalAI",
            ServerKind::TextGenerationWebui => "text-generation-webui",
            ServerKind::OpenWebui => "Open WebUI",
            ServerKind::Litellm => "LiteLLM",
            ServerKind::Tgi => "HF TGI",
            ServerKind::Koboldcpp => "KoboldCpp",
            ServerKind::Sglang => "SGLang",
            ServerKind::UnknownProtected => "unknown (auth required)",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Auth {
    /// Discovery routes answered without credentials.
    Open,
    /// Discovery routes asked for credentials (401/403).
    Protected,
    /// The server was identified but the route that would tell did not answer (timeout,
    /// error, a cut probe): neither open nor protected can be claimed.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Admin {
    Reachable,
    Blocked,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Model {
    pub name: String,
    pub family: Option<String>,
    pub parameter_size: Option<String>,
    pub quantization: Option<String>,
    pub capabilities: Vec<String>,
    /// Runs on ollama.com under the server owner's account.
    pub cloud: bool,
    /// Pulled from a registry given as `host:port/...` (seen with attacker registries).
    pub foreign_registry: bool,
}

impl Model {
    pub fn has(&self, cap: &str) -> bool {
        self.capabilities.iter().any(|c| c == cap)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub request: String,
    pub status: u16,
    pub excerpt: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    pub title: String,
    pub detail: String,
    pub evidence: Vec<Evidence>,
    pub remediation: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostReport {
    pub ip: IpAddr,
    pub port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub scheme: Scheme,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert_error: Option<String>,
    pub server: ServerKind,
    pub auth: Auth,
    pub version: Option<String>,
    pub models: Vec<Model>,
    pub loaded_models: Vec<String>,
    pub admin: Admin,
    pub open_signup: bool,
    pub notes: Vec<String>,
    pub findings: Vec<Finding>,
    /// Responses gathered while probing, keyed by what they show; findings copy from here.
    #[serde(skip)]
    pub evidence: Vec<(&'static str, Evidence)>,
}

impl HostReport {
    pub fn new(
        ip: IpAddr,
        port: u16,
        host: Option<String>,
        scheme: Scheme,
        server: ServerKind,
    ) -> Self {
        HostReport {
            ip,
            port,
            host,
            scheme,
            tls_cert_error: None,
            server,
            auth: Auth::Open,
            version: None,
            models: Vec::new(),
            loaded_models: Vec::new(),
            admin: Admin::Unknown,
            open_signup: false,
            notes: Vec::new(),
            findings: Vec::new(),
            evidence: Vec::new(),
        }
    }

    pub fn max_severity(&self) -> Severity {
        self.findings
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Info)
    }

    pub fn endpoint(&self) -> String {
        let host = match self.ip {
            IpAddr::V6(a) => format!("[{a}]"),
            IpAddr::V4(a) => a.to_string(),
        };
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{scheme}://{host}:{}", self.port)
    }

    pub fn evidence_for(&self, keys: &[&str]) -> Vec<Evidence> {
        self.evidence
            .iter()
            .filter(|(k, _)| keys.contains(k))
            .map(|(_, e)| e.clone())
            .collect()
    }
}
