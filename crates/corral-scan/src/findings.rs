//! Findings from what a probe established: pure, so every rule is unit-tested.

use crate::report::{Admin, Auth, Finding, HostReport, ServerKind, Severity};

const FIX_AUTH: &str = "Bind the server to 127.0.0.1 (OLLAMA_HOST=127.0.0.1) and put an authenticating gateway such as `corral serve` in front; firewall the port from untrusted networks.";
const FIX_ADMIN: &str = "Block the admin routes (/api/pull, /api/push, /api/create, /api/copy, /api/delete, /api/blobs) for everyone but operators, e.g. with `corral serve`, and bind Ollama to loopback.";
const FIX_UPGRADE: &str = "Upgrade Ollama to the latest release (at least 0.17.1) and restrict access until it is upgraded.";
const FIX_TOOLS: &str = "Require authentication before tool-capable models can be used: tool calls let a stranger drive agents and integrations wired to this server.";
const FIX_CLOUD: &str = "Sign the server out of ollama.com (`ollama signout`) or require authentication: cloud models spend the owner's account.";
const FIX_REGISTRY: &str = "Remove models pulled from unknown registries, check the host for compromise and block /api/pull.";
const FIX_SIGNUP: &str = "Disable open signup (ENABLE_SIGNUP=false), finish onboarding by creating the admin account, and keep WEBUI_AUTH enabled.";
const FIX_PROTECTED: &str =
    "No action needed if the credentials are strong and rotated; keep admin routes blocked.";
const FIX_OTHER: &str = "Enable the server's API key option or put an authenticating reverse proxy in front, and bind it to loopback.";
const FIX_TLS: &str = "Serve a certificate from a trusted CA that matches the host name.";

/// A host-independent description of each rule (SARIF rule metadata).
pub fn rule_description(rule: &str) -> &'static str {
    match rule {
        "ollama-admin-exposed" => "Ollama admin routes (pull, push, create, delete, blobs) reachable without authentication",
        "ollama-unauthenticated" => "Ollama serves models without authentication",
        "ollama-auth-undetermined" => "Ollama reachable, but whether it requires authentication could not be established",
        "ollama-critical-cve" => "Ollama version with a remote-code-execution, file-write or memory-disclosure CVE",
        "ollama-known-cves" => "Ollama version with known CVEs, reachable without authentication",
        "ollama-vulnerable-version-protected" => "Ollama version with known CVEs behind authentication",
        "tool-models-exposed" => "Tool-capable models usable without authentication",
        "cloud-models-exposed" => "Cloud models (billed to the owner's ollama.com account) usable without authentication",
        "foreign-registry-models" => "Models pulled from a host:port registry, as seen in attacks",
        "open-webui-open-signup" => "Open WebUI accepts new accounts or has onboarding pending",
        "open-webui-no-auth" => "Open WebUI runs with authentication disabled",
        "protected-corral-gate" => "LLM server protected by a corral gate",
        "llm-server-unauthenticated" => "Self-hosted LLM server answers without authentication",
        "llm-server-auth-undetermined" => "Self-hosted LLM server reachable, but whether it requires authentication could not be established",
        "protected" => "LLM server requires authentication",
        "tls-certificate-problem" => "TLS certificate does not verify",
        _ => "corral scan finding",
    }
}

fn finding(
    r: &HostReport,
    rule: &'static str,
    severity: Severity,
    title: String,
    detail: String,
    keys: &[&str],
    remediation: &'static str,
) -> Finding {
    Finding {
        rule,
        severity,
        title,
        detail,
        evidence: r.evidence_for(keys),
        remediation,
    }
}

fn is_ollama(r: &HostReport) -> bool {
    matches!(r.server, ServerKind::Ollama | ServerKind::OllamaCompatible)
}

/// Every finding for one host, most severe first.
pub fn assess(r: &HostReport) -> Vec<Finding> {
    let mut out = Vec::new();
    let open = r.auth == Auth::Open;
    // A version answered without credentials is exposed whether or not the model list was
    // seen; only a server that asked for credentials keeps its CVEs behind them.
    let protected = r.auth == Auth::Protected;
    let cves = r
        .version
        .as_deref()
        .filter(|_| is_ollama(r))
        .map(corral_ollama::cves_for)
        .unwrap_or_default();

    if is_ollama(r) && open {
        if r.admin == Admin::Reachable {
            out.push(finding(r, "ollama-admin-exposed", Severity::Critical,
                "Ollama admin routes reachable without authentication".into(),
                "HEAD on a blob digest was answered without asking for credentials, so /api/pull, /api/push, /api/create and /api/delete are reachable by anyone: model theft, poisoning, disk fill and SSRF (CVE-2025-63389: no authentication by design).".into(),
                &["admin", "tags"], FIX_ADMIN));
        }
        out.push(finding(r, "ollama-unauthenticated", Severity::High,
            format!("Unauthenticated Ollama inference ({} models listed)", r.models.len()),
            "Anyone who can reach this port can list models and run inference on the owner's hardware (LLMjacking).".into(),
            &["banner", "tags"], FIX_AUTH));
    }
    if is_ollama(r) && r.auth == Auth::Unknown {
        out.push(finding(r, "ollama-auth-undetermined", Severity::Medium,
            "Ollama reachable; whether it requires authentication is unknown".into(),
            "The server answered as Ollama, but neither /api/tags nor /api/ps answered with a model list (timeout, error, another page such as a proxy's sign-in page, or a probe cut short), so the scan could not tell whether its models are open to anyone. Check what answers in front of it, or scan it again with a longer --timeout or --host-timeout.".into(),
            &["banner", "version", "tags"], FIX_AUTH));
    }
    let critical: Vec<_> = cves.iter().filter(|c| c.impact.is_critical()).collect();
    let lesser: Vec<_> = cves.iter().filter(|c| !c.impact.is_critical()).collect();
    let version = r.version.clone().unwrap_or_default();
    let list = |cs: &[&&corral_ollama::Cve]| {
        cs.iter()
            .map(|c| format!("{} ({})", c.ids(), c.what))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if !cves.is_empty() && protected {
        out.push(finding(
            r,
            "ollama-vulnerable-version-protected",
            Severity::Medium,
            format!("Ollama {version} has known CVEs (behind authentication)"),
            list(&cves.iter().collect::<Vec<_>>()),
            &["version", "auth"],
            FIX_UPGRADE,
        ));
    } else if !critical.is_empty() {
        out.push(finding(
            r,
            "ollama-critical-cve",
            Severity::Critical,
            format!("Ollama {version} is vulnerable to remote code execution or memory disclosure"),
            list(&critical),
            &["version"],
            FIX_UPGRADE,
        ));
    }
    if !protected && !lesser.is_empty() {
        out.push(finding(
            r,
            "ollama-known-cves",
            Severity::High,
            format!("Ollama {version} has {} further known CVEs", lesser.len()),
            list(&lesser),
            &["version"],
            FIX_UPGRADE,
        ));
    }
    if is_ollama(r) && open {
        let tools: Vec<&str> = r
            .models
            .iter()
            .filter(|m| m.has("tools"))
            .map(|m| m.name.as_str())
            .collect();
        if !tools.is_empty() {
            out.push(finding(
                r,
                "tool-models-exposed",
                Severity::High,
                format!(
                    "{} tool-capable models usable without authentication",
                    tools.len()
                ),
                format!(
                    "Tool-capable: {}",
                    tools
                        .iter()
                        .take(10)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                &["tags", "show"],
                FIX_TOOLS,
            ));
        }
        let cloud: Vec<&str> = r
            .models
            .iter()
            .filter(|m| m.cloud)
            .map(|m| m.name.as_str())
            .collect();
        if !cloud.is_empty() {
            out.push(finding(
                r,
                "cloud-models-exposed",
                Severity::High,
                format!("{} cloud models usable by strangers", cloud.len()),
                format!(
                    "Cloud models run on ollama.com under the owner's account: {}",
                    cloud
                        .iter()
                        .take(10)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                &["tags"],
                FIX_CLOUD,
            ));
        }
        let foreign: Vec<&str> = r
            .models
            .iter()
            .filter(|m| m.foreign_registry)
            .map(|m| m.name.as_str())
            .collect();
        if !foreign.is_empty() {
            out.push(finding(
                r,
                "foreign-registry-models",
                Severity::High,
                "Models pulled from a host:port registry (seen in attacks)".into(),
                foreign
                    .iter()
                    .take(10)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", "),
                &["tags"],
                FIX_REGISTRY,
            ));
        }
    }
    match r.server {
        ServerKind::OpenWebui if r.open_signup => out.push(finding(r, "open-webui-open-signup", Severity::Medium,
            "Open WebUI accepts new accounts".into(), r.notes.join("; "), &["identity"], FIX_SIGNUP)),
        ServerKind::OpenWebui if open => out.push(finding(r, "open-webui-no-auth", Severity::High,
            "Open WebUI runs with authentication disabled".into(),
            "features.auth is false: every visitor is an administrator.".into(), &["identity"], FIX_SIGNUP)),
        ServerKind::Ollama | ServerKind::OllamaCompatible | ServerKind::OpenWebui => {}
        ServerKind::CorralGate => out.push(finding(r, "protected-corral-gate", Severity::Info,
            "Protected by a corral gate".into(), "The gate answered 401 with realm=\"corral\".".into(), &["auth"], FIX_PROTECTED)),
        kind if open => out.push(finding(r, "llm-server-unauthenticated", Severity::High,
            format!("Unauthenticated {} server", kind.label()),
            "The server answers its model API without credentials; anyone who reaches it can run inference.".into(),
            &["identity", "models"], FIX_OTHER)),
        kind if r.auth == Auth::Unknown => out.push(finding(r, "llm-server-auth-undetermined", Severity::Medium,
            format!("{} server reachable; whether it requires authentication is unknown", kind.label()),
            "The server was identified by a route that answers whether or not an API key is set (a banner, health or version route), and /v1/models did not answer with a model list (404, error, timeout or another page), so the scan could not tell whether its model API is open to anyone.".into(),
            &["identity", "models"], FIX_OTHER)),
        _ => {}
    }
    if protected && !matches!(r.server, ServerKind::CorralGate | ServerKind::OpenWebui) {
        out.push(finding(
            r,
            "protected",
            Severity::Info,
            format!("{} requires authentication", r.server.label()),
            "401/403 on discovery routes.".into(),
            &["auth"],
            FIX_PROTECTED,
        ));
    }
    if let Some(e) = &r.tls_cert_error {
        out.push(finding(
            r,
            "tls-certificate-problem",
            Severity::Info,
            "TLS certificate does not verify".into(),
            e.clone(),
            &[],
            FIX_TLS,
        ));
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::report::Model;
    use crate::targets::Scheme;

    fn host(kind: ServerKind) -> HostReport {
        HostReport::new(
            "127.0.0.1".parse().unwrap(),
            11434,
            None,
            Scheme::Http,
            kind,
        )
    }

    fn rules(r: &HostReport) -> Vec<(&'static str, Severity)> {
        assess(r).iter().map(|f| (f.rule, f.severity)).collect()
    }

    /// The gate is `corral serve`: a remediation names no command corral does not have.
    #[test]
    fn remediations_name_real_commands() {
        for fix in [
            FIX_AUTH,
            FIX_ADMIN,
            FIX_UPGRADE,
            FIX_TOOLS,
            FIX_CLOUD,
            FIX_REGISTRY,
        ] {
            for (i, _) in fix.match_indices("`corral ") {
                let cmd = fix[i + 8..].split(['`', ' ']).next().unwrap_or("");
                assert!(
                    ["serve", "keys", "check", "scan", "hunt", "rules", "audit", "config"]
                        .contains(&cmd),
                    "{fix}"
                );
            }
        }
        assert!(FIX_AUTH.contains("`corral serve`"));
    }

    #[test]
    fn open_ollama_with_admin_tools_cloud_and_old_version() {
        let mut r = host(ServerKind::Ollama);
        r.version = Some("0.17.0".into());
        r.admin = Admin::Reachable;
        r.models = vec![
            Model {
                name: "qwen3".into(),
                capabilities: vec!["tools".into()],
                ..Default::default()
            },
            Model {
                name: "gpt-oss:20b-cloud".into(),
                cloud: true,
                ..Default::default()
            },
        ];
        let got = rules(&r);
        assert_eq!(got[0].1, Severity::Critical);
        for want in [
            "ollama-admin-exposed",
            "ollama-critical-cve",
            "ollama-unauthenticated",
            "tool-models-exposed",
            "cloud-models-exposed",
        ] {
            assert!(
                got.iter().any(|(id, _)| *id == want),
                "{want} missing from {got:?}"
            );
        }
        assert!(!got.iter().any(|(id, _)| *id == "ollama-known-cves"));
    }

    #[test]
    fn current_open_ollama_is_high_not_critical() {
        let mut r = host(ServerKind::Ollama);
        r.version = Some("0.33.0".into());
        r.admin = Admin::Blocked;
        assert_eq!(rules(&r), vec![("ollama-unauthenticated", Severity::High)]);
        r.version = Some("0.14.0".into());
        assert!(rules(&r).contains(&("ollama-known-cves", Severity::High)));
    }

    #[test]
    fn protected_hosts_are_info_and_cves_become_medium() {
        let mut r = host(ServerKind::Ollama);
        r.auth = Auth::Protected;
        assert_eq!(rules(&r), vec![("protected", Severity::Info)]);
        r.version = Some("0.1.20".into());
        assert_eq!(
            rules(&r)[0],
            ("ollama-vulnerable-version-protected", Severity::Medium)
        );
        let mut g = host(ServerKind::CorralGate);
        g.auth = Auth::Protected;
        assert_eq!(rules(&g), vec![("protected-corral-gate", Severity::Info)]);
    }

    #[test]
    fn other_servers_and_open_webui() {
        let v = host(ServerKind::Vllm);
        assert_eq!(
            rules(&v),
            vec![("llm-server-unauthenticated", Severity::High)]
        );
        let mut w = host(ServerKind::OpenWebui);
        w.open_signup = true;
        assert_eq!(
            rules(&w),
            vec![("open-webui-open-signup", Severity::Medium)]
        );
        w.open_signup = false;
        w.auth = Auth::Protected;
        assert!(rules(&w).is_empty());
        let mut t = host(ServerKind::LlamaCpp);
        t.tls_cert_error = Some("invalid peer certificate: UnknownIssuer".into());
        assert!(rules(&t).contains(&("tls-certificate-problem", Severity::Info)));
    }

    /// A LiteLLM or llama.cpp found by its health route, whose /v1/models did not answer
    /// with a list, is not claimed open: medium, "unknown", never "unauthenticated".
    #[test]
    fn other_server_without_model_list_evidence_is_undetermined() {
        let mut l = host(ServerKind::Litellm);
        l.auth = Auth::Unknown;
        assert_eq!(
            rules(&l),
            vec![("llm-server-auth-undetermined", Severity::Medium)]
        );
        assert!(assess(&l)[0].title.contains("unknown"));
    }

    #[test]
    fn upgrade_advice_names_the_release_that_fixes_every_cve() {
        assert!(FIX_UPGRADE.contains(corral_ollama::LATEST_FIX));
    }
}
