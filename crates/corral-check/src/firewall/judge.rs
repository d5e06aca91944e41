//! Findings from the firewall's verdicts.

use super::{FirewallStatus, PortVerdict};
use crate::finding::{Evidence, Finding, Severity};

/// `exposed`: something listens beyond loopback or is configured to, which makes an open
/// port matter more.
pub fn findings(fw: &FirewallStatus, port: u16, exposed: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    for (fam, v, from) in [
        ("IPv4", &fw.ipv4, &fw.ipv4_from),
        ("IPv6", &fw.ipv6, &fw.ipv6_from),
    ] {
        let from = from.clone().unwrap_or_default();
        let ev = |by: &str, line: Option<u32>| {
            if from.starts_with('/') {
                Evidence::at(from.clone(), line, by.to_string())
            } else {
                Evidence::note(format!("{by} (from `{from}`)"))
            }
        };
        match v {
            PortVerdict::Dropped { .. } => {}
            PortVerdict::Open { by, line } => out.push(
                Finding::new(
                    "firewall.open",
                    if exposed { Severity::Medium } else { Severity::Low },
                    format!("{fam}: inbound tcp/{port} is not dropped by the firewall"),
                )
                .with(ev(by, *line))
                .fix(format!("Drop it: `nft add rule inet filter input tcp dport {port} drop` (or `iptables -I INPUT -p tcp --dport {port} -j DROP` / `ufw deny {port}/tcp`), and make the rule persistent")),
            ),
            PortVerdict::Restricted { by, line } => out.push(
                Finding::new("firewall.restricted", Severity::Low, format!("{fam}: inbound tcp/{port} is accepted from some sources"))
                    .with(ev(by, *line))
                    .fix("Check that the allowed sources are yours; Ollama has no authentication of its own"),
            ),
            PortVerdict::Unknown { reason } => out.push(
                Finding::new("firewall.unknown", Severity::Info, format!("{fam}: whether inbound tcp/{port} is dropped cannot be determined"))
                    .with(Evidence::note(reason.clone()))
                    .fix("Run as root with nft or iptables-save installed, or check the firewall by hand"),
            ),
        }
    }
    out
}
