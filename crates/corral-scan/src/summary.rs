//! Study-style figures over the hosts found: the same measures the published exposure
//! studies report, for the user's own address space.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::report::{Auth, HostReport, ServerKind};

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub endpoints_scanned: u64,
    pub hosts_found: usize,
    pub servers: BTreeMap<String, usize>,
    pub unauthenticated: usize,
    pub unauthenticated_share: f64,
    /// Open Ollama hosts whose model list could be read.
    pub hosts_with_model_list: usize,
    pub with_tools: usize,
    pub with_tools_share: f64,
    pub with_vision: usize,
    pub with_vision_share: f64,
    pub models_total: usize,
    pub quantization: BTreeMap<String, usize>,
    pub families: BTreeMap<String, usize>,
    pub versions: BTreeMap<String, usize>,
    /// Hosts per CVE, from the versions they report.
    pub vulnerable: BTreeMap<String, usize>,
    pub severities: BTreeMap<String, usize>,
}

fn share(n: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        (n as f64 * 1000.0 / of as f64).round() / 1000.0
    }
}

pub fn summarise(hosts: &[HostReport], endpoints_scanned: u64) -> Summary {
    let mut s = Summary {
        endpoints_scanned,
        hosts_found: hosts.len(),
        ..Summary::default()
    };
    for h in hosts {
        *s.servers.entry(h.server.label().to_string()).or_default() += 1;
        *s.severities
            .entry(h.max_severity().as_str().to_string())
            .or_default() += 1;
        if h.auth == Auth::Open {
            s.unauthenticated += 1;
        }
        let ollama = matches!(h.server, ServerKind::Ollama | ServerKind::OllamaCompatible);
        if let (true, Some(v)) = (ollama, &h.version) {
            *s.versions.entry(v.clone()).or_default() += 1;
            for c in corral_ollama::cves_for(v) {
                *s.vulnerable.entry(c.id.to_string()).or_default() += 1;
            }
        }
        if !(ollama && h.auth == Auth::Open && h.evidence.iter().any(|(k, _)| *k == "tags")) {
            continue;
        }
        s.hosts_with_model_list += 1;
        s.with_tools += usize::from(h.models.iter().any(|m| m.has("tools")));
        s.with_vision += usize::from(h.models.iter().any(|m| m.has("vision")));
        for m in &h.models {
            s.models_total += 1;
            let q = m.quantization.clone().unwrap_or_else(|| "unknown".into());
            *s.quantization.entry(q).or_default() += 1;
            let f = m.family.clone().unwrap_or_else(|| "unknown".into());
            *s.families.entry(f).or_default() += 1;
        }
    }
    s.unauthenticated_share = share(s.unauthenticated, s.hosts_found);
    s.with_tools_share = share(s.with_tools, s.hosts_with_model_list);
    s.with_vision_share = share(s.with_vision, s.hosts_with_model_list);
    s
}
