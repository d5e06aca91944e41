//! Ollama's version and the CVEs it is exposed to.

use crate::finding::{Evidence, Finding, Severity};
use std::cmp::Ordering;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// `0.3.14`, `v0.5.7`, `0.6.0-rc1`. Numeric components compare as numbers; a pre-release sorts
/// before its release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub parts: Vec<u64>,
    pub pre: Option<String>,
}

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim().trim_start_matches('v');
        let (core, pre) = match s.split_once(['-', '+']) {
            Some((c, p)) => (c, Some(p.to_string())),
            None => (s, None),
        };
        let parts: Option<Vec<u64>> = core.split('.').map(|p| p.parse().ok()).collect();
        let parts = parts?;
        if parts.is_empty() || parts.len() > 4 {
            return None;
        }
        Some(Version { parts, pre })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.parts.len().max(other.parts.len());
        for i in 0..n {
            let (a, b) = (
                self.parts.get(i).copied().unwrap_or(0),
                other.parts.get(i).copied().unwrap_or(0),
            );
            match a.cmp(&b) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        match (&self.pre, &other.pre) {
            (None, None) => Ordering::Equal,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(a), Some(b)) => a.cmp(b),
        }
    }
}

/// How a CVE's affected range is stated in the reference table.
#[derive(Debug, Clone, Copy)]
pub enum Affected {
    Below(&'static str),
    AtOrBelow(&'static str),
}

pub struct Cve {
    pub id: &'static str,
    pub what: &'static str,
    pub affected: Affected,
    pub severity: Severity,
}

/// From shared/reference/ollama-api.md ("Known CVEs checkable from /api/version").
pub const CVES: &[Cve] = &[
    Cve { id: "CVE-2024-28224", what: "DNS rebinding gives full API access", affected: Affected::Below("0.1.29"), severity: Severity::High },
    Cve { id: "CVE-2024-37032", what: "\"Probllama\": digest path traversal via /api/pull, file write / RCE", affected: Affected::Below("0.1.34"), severity: Severity::Critical },
    Cve { id: "CVE-2024-39721", what: "denial of service via /api/create", affected: Affected::Below("0.1.34"), severity: Severity::Medium },
    Cve { id: "CVE-2024-39720", what: "out-of-bounds read via /api/create", affected: Affected::Below("0.1.46"), severity: Severity::Medium },
    Cve { id: "CVE-2024-39722", what: "file-existence leak via /api/push", affected: Affected::Below("0.1.46"), severity: Severity::Medium },
    Cve { id: "CVE-2024-45436", what: "zip slip in model import", affected: Affected::Below("0.1.47"), severity: Severity::High },
    Cve { id: "CVE-2024-39719", what: "file-existence leak via /api/create errors", affected: Affected::AtOrBelow("0.3.14"), severity: Severity::Medium },
    Cve { id: "CVE-2024-12055, CVE-2024-12886, CVE-2025-0312, CVE-2025-0315, CVE-2025-0317", what: "GGUF / gzip parsing denial of service", affected: Affected::AtOrBelow("0.3.14"), severity: Severity::Medium },
    Cve { id: "CVE-2025-51471", what: "registry auth token leaked to a foreign realm", affected: Affected::Below("0.14.3"), severity: Severity::High },
    Cve { id: "CVE-2026-7482", what: "\"Bleeding Llama\": heap over-read via /api/create, exfiltrated via /api/push (CVSS 9.1)", affected: Affected::Below("0.17.1"), severity: Severity::Critical },
];

pub fn affected(v: &Version, a: Affected) -> bool {
    match a {
        Affected::Below(f) => Version::parse(f).is_some_and(|f| *v < f),
        Affected::AtOrBelow(f) => Version::parse(f).is_some_and(|f| *v <= f),
    }
}

pub fn cve_findings(version: &str, source: &Evidence) -> Vec<Finding> {
    let Some(v) = Version::parse(version) else {
        return vec![Finding::new(
            "version.unknown",
            Severity::Info,
            format!("Ollama reported an unparsable version {version:?}"),
        )
        .with(source.clone())
        .fix("Check the version by hand (`ollama --version`) against the CVE table")];
    };
    // A development build reports 0.0.0: no statement about CVEs can be made from it.
    if v.parts.iter().all(|p| *p == 0) {
        return vec![Finding::new(
            "version.unknown",
            Severity::Info,
            "Ollama is a development build (version 0.0.0)",
        )
        .with(source.clone())
        .fix("Check the source revision against the CVE table")];
    }
    CVES.iter()
        .filter(|c| affected(&v, c.affected))
        .map(|c| {
            Finding::new("version.cve", c.severity, format!("Ollama {version} is affected by {}: {}", c.id, c.what))
                .with(source.clone())
                .fix(format!(
                    "Upgrade Ollama to the current release (at least {}): `curl -fsSL https://ollama.com/install.sh | sh` or your package manager, then restart it",
                    match c.affected {
                        Affected::Below(f) => f,
                        Affected::AtOrBelow(_) => "0.17.1",
                    }
                ))
        })
        .collect()
}

/// `GET /api/version` on loopback with short timeouts and a bounded read.
pub fn probe(port: u16, timeout: Duration) -> Option<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    s.write_all(
        format!("GET /api/version HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: corral-check\r\nAccept: application/json\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .ok()?;
    let mut buf = Vec::new();
    let _ = s.take(64 * 1024).read_to_end(&mut buf);
    parse_version_response(&buf)
}

/// The version from a raw HTTP response (status 200, JSON body; chunked bodies are searched
/// as-is since the version object is tiny).
pub fn parse_version_response(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.") || head.split_whitespace().nth(1) != Some("200") {
        return None;
    }
    let start = body.find('{')?;
    let end = body.rfind('}')?;
    version_from_json(body.get(start..=end)?)
}

pub fn version_from_json(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get("version")?.as_str().map(str::to_string)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn ordering_is_numeric() {
        let chain = [
            "0.1.29", "0.1.34", "0.1.46", "0.3.14", "0.14.3", "0.17.1", "1.0.0",
        ];
        for w in chain.windows(2) {
            assert!(v(w[0]) < v(w[1]), "{} < {}", w[0], w[1]);
        }
        assert!(v("0.6.0-rc1") < v("0.6.0"));
        assert_eq!(v("v0.3.14"), v("0.3.14"));
        assert_eq!(v("0.3").cmp(&v("0.3.0")), Ordering::Equal);
        assert!(Version::parse("abc").is_none());
        assert!(Version::parse("").is_none());
    }

    #[test]
    fn cve_selection() {
        let ev = Evidence::note("test");
        let ids = |ver: &str| -> Vec<String> {
            cve_findings(ver, &ev)
                .into_iter()
                .map(|f| f.title)
                .collect()
        };
        assert_eq!(ids("0.1.20").len(), 10);
        let t = ids("0.3.14");
        assert!(t.iter().any(|t| t.contains("CVE-2024-39719")));
        assert!(!t.iter().any(|t| t.contains("CVE-2024-45436")));
        let t = ids("0.14.3");
        assert_eq!(t.len(), 1);
        assert!(t[0].contains("CVE-2026-7482"));
        assert!(ids("0.17.1").is_empty());
        assert!(ids("0.33.0").is_empty());
        assert_eq!(cve_findings("0.0.0", &ev)[0].id, "version.unknown");
        assert_eq!(cve_findings("nope", &ev)[0].id, "version.unknown");
    }

    #[test]
    fn http_response_parsing() {
        assert_eq!(
            parse_version_response(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"version\":\"0.5.7\"}"
            ),
            Some("0.5.7".into())
        );
        assert_eq!(
            parse_version_response(b"HTTP/1.1 404 Not Found\r\n\r\n{\"version\":\"1\"}"),
            None
        );
        assert_eq!(parse_version_response(b"garbage"), None);
    }

    #[test]
    fn probe_talks_http_on_loopback() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut req = [0u8; 1024];
            let n = c.read(&mut req).unwrap();
            assert!(String::from_utf8_lossy(&req[..n]).starts_with("GET /api/version HTTP/1.1\r\n"));
            c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n{\"version\":\"0.3.14\"}")
                .unwrap();
        });
        assert_eq!(
            probe(port, Duration::from_secs(2)).as_deref(),
            Some("0.3.14")
        );
        t.join().unwrap();
    }
}
