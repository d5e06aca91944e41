//! Ollama's version and the CVEs it is exposed to.

use crate::finding::{Evidence, Finding, Severity};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Versions and the CVE table live in `corral-ollama`, shared with `corral scan`.
pub use corral_ollama::{Affected, Cve, Impact, Version, CVES};

/// How `corral check` grades each kind of CVE on the local host.
pub fn severity(impact: Impact) -> Severity {
    match impact {
        i if i.is_critical() => Severity::Critical,
        Impact::AccessBypass | Impact::CredentialLeak => Severity::High,
        _ => Severity::Medium,
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
    if v.is_development() {
        return vec![Finding::new(
            "version.unknown",
            Severity::Info,
            "Ollama is a development build (version 0.0.0)",
        )
        .with(source.clone())
        .fix("Check the source revision against the CVE table")];
    }
    CVES.iter()
        .filter(|c| c.affects(&v))
        .map(|c| {
            Finding::new("version.cve", severity(c.impact), format!("Ollama {version} is affected by {}: {} ({})", c.ids(), c.what, c.impact.as_str()))
                .with(source.clone())
                .fix(format!(
                    "Upgrade Ollama to the current release (at least {}): `curl -fsSL https://ollama.com/install.sh | sh` or your package manager, then restart it",
                    c.fixed_in().unwrap_or(corral_ollama::LATEST_FIX)
                ))
        })
        .collect()
}

/// Where to ask a live Ollama for its version: the configured port on loopback first, then
/// each other port an Ollama server process listens on (`OLLAMA_HOST=0.0.0.0:8080` moves it),
/// on loopback when the socket is bound to a wildcard or loopback address, else on the address
/// it is bound to (one of this host's). No address twice.
pub fn probe_targets(port: u16, server_sockets: &[SocketAddr]) -> Vec<SocketAddr> {
    let mut out = vec![SocketAddr::from(([127, 0, 0, 1], port))];
    for s in server_sockets {
        let ip = match s.ip() {
            ip if ip.is_unspecified() && ip.is_ipv4() => std::net::IpAddr::from([127, 0, 0, 1]),
            ip if ip.is_unspecified() => std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let a = SocketAddr::new(ip, s.port());
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// [`probe`] each of `targets` in turn: the first version any of them gives, and where.
pub fn probe_any(targets: &[SocketAddr], timeout: Duration) -> Option<(String, SocketAddr)> {
    targets
        .iter()
        .find_map(|a| probe_addr(*a, timeout).map(|v| (v, *a)))
}

/// `GET /api/version` at `addr` (this host's own) with short timeouts and a bounded read.
pub fn probe_addr(addr: SocketAddr, timeout: Duration) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    s.write_all(
        format!("GET /api/version HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: corral-check\r\nAccept: application/json\r\nConnection: close\r\n\r\n")
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
            probe_addr(
                SocketAddr::from(([127, 0, 0, 1], port)),
                Duration::from_secs(2)
            )
            .as_deref(),
            Some("0.3.14")
        );
        t.join().unwrap();
    }

    #[test]
    fn the_ports_ollama_listens_on_are_asked_after_the_configured_one() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            probe_targets(
                11434,
                &[
                    a("0.0.0.0:8080"),
                    a("127.0.0.1:11434"),
                    a("[::]:9090"),
                    a("192.0.2.7:7070"),
                    a("127.0.0.1:8080"),
                ]
            ),
            vec![
                a("127.0.0.1:11434"),
                a("127.0.0.1:8080"),
                a("[::1]:9090"),
                a("192.0.2.7:7070"),
            ]
        );
        assert_eq!(probe_targets(11434, &[]), vec![a("127.0.0.1:11434")]);
    }

    /// An Ollama moved to another port (`OLLAMA_HOST=0.0.0.0:PORT`) still has its version read
    /// when nothing answers on the configured one.
    #[test]
    fn the_version_comes_from_whichever_port_answers() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut req = [0u8; 1024];
            let n = c.read(&mut req).unwrap();
            let req = String::from_utf8_lossy(&req[..n]).into_owned();
            c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 19\r\n\r\n{\"version\":\"0.1.9\"}")
                .unwrap();
            req
        });
        let targets = probe_targets(
            closed_port,
            &[SocketAddr::from(([0, 0, 0, 0], open.port()))],
        );
        assert_eq!(targets.len(), 2);
        assert_eq!(
            probe_any(&targets, Duration::from_secs(2)),
            Some(("0.1.9".to_owned(), open))
        );
        let req = t.join().unwrap();
        assert!(req.contains(&format!("Host: {open}\r\n")), "{req}");
        assert_eq!(probe_any(&targets[..1], Duration::from_millis(500)), None);
    }
}
