//! Judging OLLAMA_* settings: which values expose the server, and the exact line to change.

use crate::finding::{Evidence, Finding, Severity};
use crate::settings::{Setting, SourceKind};
use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostBind {
    Loopback,
    Wildcard,
    Address(IpAddr),
    Name(String),
}

/// Where `OLLAMA_HOST` makes Ollama listen, following Ollama's own parsing (quotes trimmed,
/// optional scheme, empty host = all interfaces, unparsable port = default port). The port is
/// `None` when Ollama's own default applies; an `http://` or `https://` value without a
/// (readable) port listens on 80 or 443.
pub fn parse_ollama_host(value: &str) -> (HostBind, Option<u16>) {
    let s = value.trim().trim_matches(|c| c == '"' || c == '\'').trim();
    let (scheme_port, hostport) = match s.split_once("://") {
        Some(("http", rest)) => (Some(80), rest),
        Some(("https", rest)) => (Some(443), rest),
        Some((_, rest)) => (None, rest),
        None => (None, s),
    };
    let hostport = hostport.split('/').next().unwrap_or_default();
    let (host, port) = split_host_port(hostport);
    let port = port.and_then(|p| p.parse::<u16>().ok()).or(scheme_port);
    let bind = if host.is_empty() {
        if hostport.is_empty() {
            HostBind::Loopback // unset or empty: the default 127.0.0.1
        } else {
            HostBind::Wildcard // ":11434"
        }
    } else if host.eq_ignore_ascii_case("localhost") {
        HostBind::Loopback
    } else {
        match host.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(ip) if ip.is_unspecified() => HostBind::Wildcard,
            Ok(ip) if ip.is_loopback() => HostBind::Loopback,
            Ok(ip) => HostBind::Address(ip),
            Err(_) => HostBind::Name(host.to_string()),
        }
    };
    (bind, port)
}

fn split_host_port(hp: &str) -> (&str, Option<&str>) {
    if let Some(rest) = hp.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':')),
            None => (hp, None),
        };
    }
    match hp.matches(':').count() {
        1 => hp.split_once(':').map_or((hp, None), |(h, p)| (h, Some(p))),
        _ => (hp, None),
    }
}

fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "t" | "yes" | "on" | "2"
    )
}

/// What a setting should become, and how serious its current value is.
fn judge(s: &Setting, port: u16) -> Option<(&'static str, Severity, String, String)> {
    match s.name.as_str() {
        "OLLAMA_HOST" => {
            let (bind, p) = parse_ollama_host(&s.value);
            let p = p.unwrap_or(port);
            let fixed = format!("OLLAMA_HOST=127.0.0.1:{p}");
            let (sev, what) = match bind {
                HostBind::Loopback => return None,
                HostBind::Wildcard => (Severity::High, "all interfaces".to_string()),
                HostBind::Address(ip) => {
                    (Severity::Medium, format!("the non-loopback address {ip}"))
                }
                HostBind::Name(n) => (Severity::Medium, format!("whatever `{n}` resolves to")),
            };
            Some((
                "config.host",
                sev,
                format!(
                    "OLLAMA_HOST={} makes Ollama listen on {what}, without authentication",
                    s.value
                ),
                fixed,
            ))
        }
        "OLLAMA_ORIGINS" => {
            let entries: Vec<&str> = s.value.split(',').map(str::trim).collect();
            let any = entries
                .iter()
                .any(|e| *e == "*" || e.ends_with("://*") || *e == "null");
            let some = entries.iter().any(|e| e.contains('*'));
            let sev = if any {
                Severity::High
            } else if some {
                Severity::Low
            } else {
                return None;
            };
            Some((
                "config.origins",
                sev,
                format!(
                    "OLLAMA_ORIGINS={} lets {} drive the API from a visitor's browser",
                    s.value,
                    if any {
                        "any web page"
                    } else {
                        "many web pages"
                    }
                ),
                "OLLAMA_ORIGINS=https://app.example.com".to_string(),
            ))
        }
        "OLLAMA_DEBUG" if truthy(&s.value) => Some((
            "config.debug",
            Severity::Low,
            format!(
                "OLLAMA_DEBUG={} logs request details, which can include prompts",
                s.value
            ),
            "OLLAMA_DEBUG=0".to_string(),
        )),
        _ => None,
    }
}

fn remediation(s: &Setting, fixed: &str, in_container: bool) -> String {
    let at = match (&s.path, s.line) {
        (Some(p), Some(l)) => format!("line {l} of {p}"),
        (Some(p), None) => p.clone(),
        _ => "it".to_string(),
    };
    match s.source {
        SourceKind::SystemdEnvironment => {
            let path = s.path.as_deref().unwrap_or_default();
            let edit = if path.contains(".service.d/") || path.starts_with("/etc/") {
                format!("Change {at} to `Environment=\"{fixed}\"`")
            } else {
                // Package-owned unit: an override survives upgrades and drop-ins apply after it.
                format!(
                    "Add `[Service]` and `Environment=\"{fixed}\"` to /etc/systemd/system/ollama.service.d/override.conf (drop-ins apply after {path})"
                )
            };
            format!("{edit}, then `systemctl daemon-reload && systemctl restart ollama`")
        }
        SourceKind::SystemdEnvironmentFile => {
            format!("Change {at} to `{fixed}`, then `systemctl restart ollama`")
        }
        SourceKind::EtcEnvironment => format!(
            "Change {at} to `{fixed}` (or delete it), then restart Ollama from a new login session"
        ),
        SourceKind::Process if in_container && s.name == "OLLAMA_HOST" => format!(
            "The container image sets this. Keep it inside the container but publish the port on loopback only: `docker run -p 127.0.0.1:{p}:{p} ...` (or `ports: [\"127.0.0.1:{p}:{p}\"]` in compose)",
            p = fixed.rsplit(':').next().unwrap_or("11434")
        ),
        SourceKind::Process => format!(
            "The running process (pid {}) got this from whatever started it (shell profile, supervisor, launcher): start it with `{fixed}` instead",
            s.pid.unwrap_or_default()
        ),
    }
}

/// Findings for risky settings. Settings with the same name and value are one finding whose
/// primary evidence is the file to edit; the process that inherited the value is extra
/// evidence.
pub fn findings(settings: &[Setting], port: u16, in_container: bool) -> Vec<Finding> {
    let mut groups: BTreeMap<(String, String), Vec<&Setting>> = BTreeMap::new();
    for s in settings {
        groups
            .entry((s.name.clone(), s.value.clone()))
            .or_default()
            .push(s);
    }
    let mut out = Vec::new();
    for (_, mut group) in groups {
        group.sort_by_key(|s| s.source == SourceKind::Process);
        let Some(first) = group.first() else { continue };
        let Some((id, sev, title, fixed)) = judge(first, port) else {
            continue;
        };
        let mut fix = remediation(first, &fixed, in_container);
        if id == "config.origins" {
            fix.push_str(" (list only the origins that need the API, or remove the variable)");
        }
        let mut f = Finding::new(id, sev, title).fix(fix);
        for s in &group {
            let detail = format!("{}={} ({})", s.name, s.value, source_label(s));
            f = f.with(match &s.path {
                Some(p) => Evidence::at(p.clone(), s.line, detail),
                None => Evidence::note(detail),
            });
        }
        out.push(f);
    }
    out
}

fn source_label(s: &Setting) -> String {
    match s.source {
        SourceKind::SystemdEnvironment => "systemd Environment=".into(),
        SourceKind::SystemdEnvironmentFile => "systemd EnvironmentFile=".into(),
        SourceKind::EtcEnvironment => "/etc/environment".into(),
        SourceKind::Process => format!("environment of running pid {}", s.pid.unwrap_or_default()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn host_values() {
        let cases: &[(&str, HostBind, Option<u16>)] = &[
            ("", HostBind::Loopback, None),
            ("0.0.0.0", HostBind::Wildcard, None),
            ("0.0.0.0:11434", HostBind::Wildcard, Some(11434)),
            (":8080", HostBind::Wildcard, Some(8080)),
            ("\"0.0.0.0\"", HostBind::Wildcard, None),
            ("http://0.0.0.0:11434/", HostBind::Wildcard, Some(11434)),
            ("[::]:11434", HostBind::Wildcard, Some(11434)),
            ("::", HostBind::Wildcard, None),
            ("127.0.0.1:11434", HostBind::Loopback, Some(11434)),
            ("localhost", HostBind::Loopback, None),
            ("[::1]:1", HostBind::Loopback, Some(1)),
            (
                "192.168.1.5",
                HostBind::Address("192.168.1.5".parse().unwrap()),
                None,
            ),
            ("myhost:99", HostBind::Name("myhost".into()), Some(99)),
            // Without a port, http:// and https:// URLs listen on their scheme's port, as in
            // Ollama's `envconfig.Host()`; an unreadable port falls back to it too.
            ("http://0.0.0.0", HostBind::Wildcard, Some(80)),
            ("https://0.0.0.0/", HostBind::Wildcard, Some(443)),
            ("http://[::]", HostBind::Wildcard, Some(80)),
            ("http://0.0.0.0:abc", HostBind::Wildcard, Some(80)),
            ("HTTP://0.0.0.0", HostBind::Wildcard, None),
            ("tcp://0.0.0.0", HostBind::Wildcard, None),
            // An IPv4-mapped address is the IPv4 address to Go's listener.
            ("::ffff:127.0.0.1", HostBind::Loopback, None),
            ("[::ffff:127.0.0.1]:11434", HostBind::Loopback, Some(11434)),
            ("[::ffff:0.0.0.0]:11434", HostBind::Wildcard, Some(11434)),
            (
                "::ffff:192.168.1.5",
                HostBind::Address("192.168.1.5".parse().unwrap()),
                None,
            ),
            // Spaces inside the quotes go too.
            ("\" 0.0.0.0 \"", HostBind::Wildcard, None),
        ];
        for (v, bind, port) in cases {
            assert_eq!(parse_ollama_host(v), (bind.clone(), *port), "{v}");
        }
    }

    fn set(
        name: &str,
        value: &str,
        source: SourceKind,
        path: Option<&str>,
        line: Option<u32>,
    ) -> Setting {
        Setting {
            name: name.into(),
            value: value.into(),
            source,
            path: path.map(Into::into),
            line,
            pid: (source == SourceKind::Process).then_some(77),
        }
    }

    #[test]
    fn groups_file_and_process_and_names_the_line() {
        let s = vec![
            set(
                "OLLAMA_HOST",
                "0.0.0.0",
                SourceKind::Process,
                Some("/proc/77/environ"),
                None,
            ),
            set(
                "OLLAMA_HOST",
                "0.0.0.0",
                SourceKind::SystemdEnvironment,
                Some("/etc/systemd/system/ollama.service.d/override.conf"),
                Some(2),
            ),
            set(
                "OLLAMA_ORIGINS",
                "*",
                SourceKind::EtcEnvironment,
                Some("/etc/environment"),
                Some(4),
            ),
            set(
                "OLLAMA_ORIGINS",
                "https://a.example",
                SourceKind::Process,
                None,
                None,
            ),
            set("OLLAMA_KEEP_ALIVE", "-1", SourceKind::Process, None, None),
        ];
        let f = findings(&s, 11434, false);
        assert_eq!(f.len(), 2, "{f:#?}");
        assert_eq!(f[0].id, "config.host");
        assert_eq!(f[0].severity, Severity::High);
        assert_eq!(f[0].evidence.len(), 2);
        assert_eq!(f[0].evidence[0].line, Some(2));
        assert!(f[0]
            .remediation
            .contains("Change line 2 of /etc/systemd/system/ollama.service.d/override.conf to `Environment=\"OLLAMA_HOST=127.0.0.1:11434\"`"));
        assert!(f[0]
            .remediation
            .contains("systemctl daemon-reload && systemctl restart ollama"));
        assert_eq!(f[1].id, "config.origins");
        assert!(f[1].remediation.contains("line 4 of /etc/environment"));
    }

    #[test]
    fn the_fix_keeps_the_port_a_url_listens_on() {
        let at = |v: &str| {
            let s = set(
                "OLLAMA_HOST",
                v,
                SourceKind::EtcEnvironment,
                Some("/etc/environment"),
                Some(1),
            );
            findings(&[s], 11434, false)[0].remediation.clone()
        };
        assert!(at("http://0.0.0.0").contains("`OLLAMA_HOST=127.0.0.1:80`"));
        assert!(at("https://0.0.0.0").contains("`OLLAMA_HOST=127.0.0.1:443`"));
        assert!(at("0.0.0.0").contains("`OLLAMA_HOST=127.0.0.1:11434`"));
    }

    #[test]
    fn container_and_package_unit_remediations() {
        let p = set(
            "OLLAMA_HOST",
            "0.0.0.0:11434",
            SourceKind::Process,
            Some("/proc/1/environ"),
            None,
        );
        let f = findings(&[p], 11434, true);
        assert!(
            f[0].remediation.contains("-p 127.0.0.1:11434:11434"),
            "{}",
            f[0].remediation
        );
        let u = set(
            "OLLAMA_HOST",
            "0.0.0.0:9999",
            SourceKind::SystemdEnvironment,
            Some("/usr/lib/systemd/system/ollama.service"),
            Some(9),
        );
        let f = findings(&[u], 11434, false);
        assert!(f[0].remediation.contains("override.conf"));
        assert!(f[0].remediation.contains("OLLAMA_HOST=127.0.0.1:9999"));
    }

    #[test]
    fn debug_and_partial_origin_wildcards() {
        let f = findings(
            &[
                set("OLLAMA_DEBUG", "1", SourceKind::Process, None, None),
                set("OLLAMA_DEBUG", "0", SourceKind::EtcEnvironment, None, None),
                set(
                    "OLLAMA_ORIGINS",
                    "chrome-extension://abc*",
                    SourceKind::Process,
                    None,
                    None,
                ),
            ],
            11434,
            false,
        );
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].id, "config.debug");
        assert_eq!(f[1].severity, Severity::Low);
    }
}
