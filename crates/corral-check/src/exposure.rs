//! Listening sockets of Ollama (or on its port) and the processes Ollama has spawned.

use crate::finding::{Evidence, Finding, Severity};
use crate::firewall::{FirewallStatus, PortVerdict};
use crate::ifaces::HostAddr;
use crate::procnet::{reach, NetSocket, Reach};
use crate::procs::{self, ChildKind, Proc};
use crate::report::SocketFact;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// A listening socket with the table it came from.
pub struct Listening<'a> {
    pub table: &'a str,
    pub sock: &'a NetSocket,
}

/// Where a bind address can be reached from.
pub fn reachable_on(ip: IpAddr, host: &[HostAddr]) -> Vec<String> {
    match (reach(ip), ip) {
        (Reach::Loopback, _) => vec![],
        (Reach::Address, _) => {
            let named = host.iter().find(|h| h.addr == ip);
            vec![named.map_or(ip.to_string(), ToString::to_string)]
        }
        (Reach::Wildcard, IpAddr::V4(_)) => host
            .iter()
            .filter(|h| h.addr.is_ipv4())
            .map(ToString::to_string)
            .collect(),
        // `::` also accepts IPv4 unless the socket set IPV6_V6ONLY, which /proc does not show.
        (Reach::Wildcard, IpAddr::V6(_)) => host.iter().map(ToString::to_string).collect(),
    }
}

pub struct SocketCtx<'a> {
    pub port: u16,
    pub procs: &'a BTreeMap<u32, Proc>,
    pub owners: &'a HashMap<u64, Vec<u32>>,
    pub host: &'a [HostAddr],
    /// The firewall's verdict for `port`.
    pub firewall: &'a FirewallStatus,
    /// The verdict for another port (an Ollama socket elsewhere, e.g. `OLLAMA_HOST=0.0.0.0:8080`).
    pub firewall_at: &'a dyn Fn(u16) -> FirewallStatus,
    /// Remediation for the bind itself, from the configuration finding when there is one.
    pub bind_fix: String,
}

pub fn sockets(
    ctx: &SocketCtx<'_>,
    listening: &[Listening<'_>],
) -> (Vec<SocketFact>, Vec<Finding>) {
    let mut facts = Vec::new();
    let mut findings = Vec::new();
    for l in listening {
        let s = l.sock;
        let pids = ctx.owners.get(&s.inode).cloned().unwrap_or_default();
        let owners: Vec<&Proc> = pids.iter().filter_map(|p| ctx.procs.get(p)).collect();
        let is_ollama = owners.iter().any(|p| procs::is_ollama(p));
        if !is_ollama && s.local.port() != ctx.port {
            continue;
        }
        let r = reach(s.local.ip());
        let programs: Vec<String> = owners
            .iter()
            .map(|p| format!("{}({})", p.comm, p.pid))
            .collect();
        facts.push(SocketFact {
            local: s.local.to_string(),
            port: s.local.port(),
            reach: r,
            pids: pids.clone(),
            programs: programs.clone(),
            table: l.table.to_string(),
            line: s.line,
            inode: s.inode,
        });
        if r == Reach::Loopback {
            continue;
        }
        // Judged for the port this socket is on: that 11434 is dropped says nothing of 8080.
        let elsewhere;
        let status = if s.local.port() == ctx.port {
            ctx.firewall
        } else {
            elsewhere = (ctx.firewall_at)(s.local.port());
            &elsewhere
        };
        let fw = if s.local.is_ipv4() {
            &status.ipv4
        } else {
            &status.ipv6
        };
        let dropped = matches!(fw, PortVerdict::Dropped { .. });
        let who = if programs.is_empty() {
            "an unidentified process".to_string()
        } else {
            programs.join(", ")
        };
        let on = reachable_on(s.local.ip(), ctx.host);
        let mut title = format!(
            "{who} listens on {} without authentication (CVE-2025-63389)",
            s.local
        );
        if !on.is_empty() {
            title.push_str(&format!("; reachable on {}", on.join(", ")));
        }
        if dropped {
            title.push_str("; the firewall drops the port");
        }
        let mut f = Finding::new(
            "socket.exposed",
            if dropped {
                Severity::High
            } else {
                Severity::Critical
            },
            title,
        )
        .with(Evidence::at(
            l.table,
            Some(s.line),
            format!("{} LISTEN uid {} inode {}", s.local, s.uid, s.inode),
        ));
        for p in &owners {
            f = f.with(Evidence::at(
                format!("/proc/{}/fd", p.pid),
                None,
                format!("holds socket:[{}]: {}", s.inode, p.describe()),
            ));
        }
        let docker = owners.iter().any(|p| {
            p.comm.starts_with("docker-proxy") || p.comm == "rootlessport" || p.comm == "conmon"
        });
        let fix = if docker {
            format!("The port is published by a container runtime: publish it on loopback only (`-p 127.0.0.1:{p}:{p}`) and recreate the container. Put corral in front of it for remote access.", p = ctx.port)
        } else {
            format!(
                "{} Put corral in front of it for remote access.",
                ctx.bind_fix
            )
        };
        findings.push(f.fix(fix));
    }
    (facts, findings)
}

/// Children of each Ollama server that are not its runners.
pub fn children(procs_: &BTreeMap<u32, Proc>) -> Vec<Finding> {
    let mut out = Vec::new();
    for server in procs::servers(procs_) {
        for chain in procs::descendants(procs_, server.pid) {
            let Some(p) = chain.last().and_then(|pid| procs_.get(pid)) else {
                continue;
            };
            let mut kind = procs::classify_child(p);
            let renamed = kind == ChildKind::Runner && procs::is_other_binary(p, server);
            if kind == ChildKind::Runner && !renamed {
                continue;
            }
            if renamed {
                kind = ChildKind::Other;
            }
            let sev = match kind {
                ChildKind::Shell | ChildKind::Interpreter | ChildKind::Network => {
                    Severity::Critical
                }
                // Something posing as one of Ollama's runners.
                _ if renamed => Severity::High,
                _ => Severity::Medium,
            };
            let path: Vec<String> = chain
                .iter()
                .filter_map(|pid| procs_.get(pid))
                .map(|p| format!("{}({})", p.comm, p.pid))
                .collect();
            let kind_s = match kind {
                ChildKind::Shell => "a shell",
                ChildKind::Interpreter => "an interpreter",
                ChildKind::Network => "a network tool",
                _ if renamed => "a program named like Ollama that is not its executable",
                _ => "an unexpected program",
            };
            let mut finding = Finding::new(
                    "process.child",
                    sev,
                    format!("Ollama (pid {}) has {kind_s} below it: {}", server.pid, path.join(" → ")),
                )
                .with(Evidence::at(format!("/proc/{}/cmdline", p.pid), None, p.describe()))
                .with(Evidence::at(format!("/proc/{}/stat", p.pid), None, format!("parent pid {}", p.ppid)))
                .fix(format!(
                    "Ollama starts only its own runners. Preserve evidence first (`ls -l /proc/{pid}/exe /proc/{pid}/cwd`, `cat /proc/{pid}/environ | tr '\\0' '\\n'`, `ss -tnp`), then stop Ollama (`systemctl stop ollama`) and the process (`kill {pid}`), upgrade Ollama and bind it to 127.0.0.1",
                    pid = p.pid
                ));
            if renamed {
                finding = finding.with(Evidence::at(
                    format!("/proc/{}/exe", p.pid),
                    None,
                    format!(
                        "runs {}; the Ollama server (pid {}) runs {}",
                        p.exe.as_deref().unwrap_or("?"),
                        server.pid,
                        server.exe.as_deref().unwrap_or("?")
                    ),
                ));
            }
            out.push(finding);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn reachability() {
        let host = vec![
            HostAddr {
                addr: "192.0.2.2".parse().unwrap(),
                interface: Some("eth0".into()),
            },
            HostAddr {
                addr: "fd00::2".parse().unwrap(),
                interface: Some("eth0".into()),
            },
        ];
        assert_eq!(
            reachable_on("0.0.0.0".parse().unwrap(), &host),
            vec!["192.0.2.2 (eth0)"]
        );
        assert_eq!(reachable_on("::".parse().unwrap(), &host).len(), 2);
        assert_eq!(
            reachable_on("192.0.2.2".parse().unwrap(), &host),
            vec!["192.0.2.2 (eth0)"]
        );
        assert_eq!(
            reachable_on("10.9.9.9".parse().unwrap(), &host),
            vec!["10.9.9.9"]
        );
        assert!(reachable_on("127.0.0.1".parse().unwrap(), &host).is_empty());
    }
}
