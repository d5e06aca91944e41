//! The built-in rules: Sigma-subset YAML compiled into the binary, so `corral rules export
//! --format sigma` writes exactly what `corral hunt` runs.

use crate::rule::yaml::Scalar;
use crate::rule::{parse_rules, LintError, Rule};

/// (file name, YAML text) of every built-in rule.
pub const RULES: &[(&str, &str)] = &[
    (
        "elastic_external_access.yml",
        include_str!("rules/elastic_external_access.yml"),
    ),
    (
        "elastic_external_access_windows.yml",
        include_str!("rules/elastic_external_access_windows.yml"),
    ),
    (
        "sysmon_external_access.yml",
        include_str!("rules/sysmon_external_access.yml"),
    ),
    (
        "zeek_external_access.yml",
        include_str!("rules/zeek_external_access.yml"),
    ),
    (
        "ollama_log_external_access.yml",
        include_str!("rules/ollama_log_external_access.yml"),
    ),
    (
        "bind_non_loopback.yml",
        include_str!("rules/bind_non_loopback.yml"),
    ),
    (
        "shell_spawned_by_ollama.yml",
        include_str!("rules/shell_spawned_by_ollama.yml"),
    ),
    (
        "high_request_volume.yml",
        include_str!("rules/high_request_volume.yml"),
    ),
    (
        "admin_api_non_local.yml",
        include_str!("rules/admin_api_non_local.yml"),
    ),
    (
        "dns_untrusted_domain.yml",
        include_str!("rules/dns_untrusted_domain.yml"),
    ),
    ("corral_denied.yml", include_str!("rules/corral_denied.yml")),
    (
        "corral_auth_failure.yml",
        include_str!("rules/corral_auth_failure.yml"),
    ),
    (
        "corral_key_guessing.yml",
        include_str!("rules/corral_key_guessing.yml"),
    ),
    (
        "corral_anomaly.yml",
        include_str!("rules/corral_anomaly.yml"),
    ),
];

pub const ELASTIC_RULE_ID: &str = "d8f2a1b3-c4e5-6789-abcd-ef0123456789";
pub const VOLUME_RULE_ID: &str = "9b4e6f27-3c81-4a5d-b7e9-d1c2a8f4b476";
pub const DNS_RULE_ID: &str = "1c5d8e3a-7f29-4b64-9a1e-e4b7c2f8d698";

/// Parses the built-in rules (a test keeps them free of errors).
pub fn rules() -> Result<Vec<Rule>, Vec<(String, LintError)>> {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for (name, text) in RULES {
        let (rules, e) = parse_rules(text, &format!("builtin:{name}"));
        out.extend(rules);
        errs.extend(e.into_iter().map(|e| (name.to_string(), e)));
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

/// Sets the window of the volume rule (`--volume-threshold`, `--volume-window`).
pub fn set_volume(rules: &mut [Rule], gt: u64, timespan_ms: i64) {
    for r in rules.iter_mut().filter(|r| r.id == VOLUME_RULE_ID) {
        if let Some(t) = r.threshold.as_mut() {
            t.gt = gt;
            t.timespan_ms = timespan_ms;
        }
    }
}

/// Adds domains to the DNS rule's allow list: each allows itself and its subdomains, with or
/// without the final dot of a fully qualified name.
pub fn allow_domains(rules: &mut [Rule], domains: &[String]) {
    for r in rules.iter_mut().filter(|r| r.id == DNS_RULE_ID) {
        let Some(sel) = r.selections.iter_mut().find(|s| s.name == "filter_allowed") else {
            continue;
        };
        for d in domains {
            let d = d
                .trim()
                .trim_start_matches("*.")
                .trim_start_matches('.')
                .trim_end_matches('.');
            if d.is_empty() {
                continue;
            }
            // Each also fully qualified (`example.com.`), as some DNS logs write names.
            if let Some(item) = sel.alternatives.get_mut(0).and_then(|a| a.get_mut(0)) {
                item.values.push(Scalar::Str(d.to_string()));
                item.values.push(Scalar::Str(format!("{d}.")));
            }
            if let Some(item) = sel.alternatives.get_mut(1).and_then(|a| a.get_mut(0)) {
                item.values.push(Scalar::Str(format!(".{d}")));
                item.values.push(Scalar::Str(format!(".{d}.")));
            }
        }
    }
}
