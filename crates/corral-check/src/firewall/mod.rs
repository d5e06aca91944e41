//! Does the host firewall drop a new inbound TCP connection to the Ollama port?
//!
//! Both nftables JSON and `iptables-save` text are lowered to the same small model: for one
//! fixed packet (new TCP to the port, from a remote address, on a non-loopback interface) each
//! rule's match is yes, no or maybe; [`evaluate`] then walks the input chains.

pub mod iptables;
pub mod judge;
pub mod nft;
pub mod source;

use serde::Serialize;
use std::collections::HashMap;

/// Three-valued match result for the fixed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    Yes,
    No,
    Maybe,
}

impl Tri {
    pub fn and(self, o: Tri) -> Tri {
        match (self, o) {
            (Tri::No, _) | (_, Tri::No) => Tri::No,
            (Tri::Yes, Tri::Yes) => Tri::Yes,
            _ => Tri::Maybe,
        }
    }
    pub fn negate(self) -> Tri {
        match self {
            Tri::Yes => Tri::No,
            Tri::No => Tri::Yes,
            Tri::Maybe => Tri::Maybe,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Accept,
    Drop,
    Return,
    Jump(String),
    Goto(String),
    /// Counters, logging, marks: no verdict.
    None,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub matches: Tri,
    pub action: Action,
    /// Human description: which rule, where.
    pub label: String,
    pub line: Option<u32>,
    /// When `matches` is maybe: the conditions that narrow it, as in "only on eth0" or
    /// "except from 10.0.0.0/8" (`None`: not known precisely).
    pub narrowed: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Chain {
    /// `Some(true)` accept, `Some(false)` drop; `None` for non-base chains.
    pub policy_accept: Option<bool>,
    pub rules: Vec<Rule>,
}

/// Chains keyed by name, and the base input chains in the order the packet meets them.
#[derive(Debug, Clone, Default)]
pub struct Ruleset {
    pub chains: HashMap<String, Chain>,
    pub input: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum PortVerdict {
    /// Dropped or rejected for every source.
    Dropped {
        by: String,
        line: Option<u32>,
    },
    /// Accepted from anywhere (a rule or an accepting policy).
    Open {
        by: String,
        line: Option<u32>,
    },
    /// Accepted from some sources or interfaces only, dropped otherwise.
    Restricted {
        by: String,
        line: Option<u32>,
    },
    Unknown {
        reason: String,
    },
}

#[derive(Default)]
struct Pending {
    maybe_accept: Option<(String, Option<u32>)>,
    /// Drops that apply to some packets only, said precisely for the reason of an accept.
    partial_drops: Vec<String>,
}

enum Outcome {
    Final(PortVerdict),
    Fallthrough,
    Return,
}

const MAX_DEPTH: usize = 16;

fn walk(rs: &Ruleset, name: &str, depth: usize, pending: &mut Pending) -> Outcome {
    if depth > MAX_DEPTH {
        return Outcome::Final(PortVerdict::Unknown {
            reason: format!("chain jumps nest deeper than {MAX_DEPTH} at {name}"),
        });
    }
    let Some(chain) = rs.chains.get(name) else {
        return Outcome::Final(PortVerdict::Unknown {
            reason: format!("jump to unknown chain {name}"),
        });
    };
    for r in &chain.rules {
        if r.matches == Tri::No {
            continue;
        }
        let sure = r.matches == Tri::Yes;
        let at = || (r.label.clone(), r.line);
        match &r.action {
            Action::None => {}
            Action::Accept if sure => return Outcome::Final(accept(pending, at())),
            Action::Accept => {
                pending.maybe_accept.get_or_insert_with(at);
            }
            Action::Drop if sure => return Outcome::Final(drop(pending, at())),
            // A drop for some sources or interfaces only: the rest go on, so it decides
            // nothing here; the verdict's reason says what it does drop.
            Action::Drop => pending.partial_drops.push(format!(
                "dropped {} by {}",
                r.narrowed.as_deref().unwrap_or("for some packets only"),
                r.label
            )),
            Action::Return if sure => return Outcome::Return,
            Action::Return => {
                return Outcome::Final(PortVerdict::Unknown {
                    reason: format!("conditional return at {}", r.label),
                })
            }
            Action::Jump(t) | Action::Goto(t) => {
                let goto = matches!(r.action, Action::Goto(_));
                if sure {
                    match walk(rs, t, depth + 1, pending) {
                        Outcome::Final(v) => return Outcome::Final(v),
                        Outcome::Return | Outcome::Fallthrough if goto => return Outcome::Return,
                        Outcome::Return | Outcome::Fallthrough => {}
                    }
                } else {
                    // Only some packets take the jump: an accept there is a partial accept.
                    let mut sub = Pending::default();
                    if let Outcome::Final(
                        PortVerdict::Open { by, line } | PortVerdict::Restricted { by, line },
                    ) = walk(rs, t, depth + 1, &mut sub)
                    {
                        pending.maybe_accept.get_or_insert((by, line));
                    }
                }
            }
        }
    }
    match chain.policy_accept {
        Some(true) => Outcome::Final(accept(
            pending,
            (format!("chain {name} policy accept"), None),
        )),
        Some(false) => Outcome::Final(drop(pending, (format!("chain {name} policy drop"), None))),
        None => Outcome::Fallthrough,
    }
}

fn accept(p: &Pending, (by, line): (String, Option<u32>)) -> PortVerdict {
    if p.partial_drops.is_empty() {
        return PortVerdict::Open { by, line };
    }
    PortVerdict::Open {
        by: format!("{by}; {}", p.partial_drops.join("; ")),
        line,
    }
}

fn drop(p: &Pending, (by, line): (String, Option<u32>)) -> PortVerdict {
    match &p.maybe_accept {
        Some((by, line)) => PortVerdict::Restricted {
            by: by.clone(),
            line: *line,
        },
        None => PortVerdict::Dropped { by, line },
    }
}

/// The fate of the packet through every input chain: dropped by any chain means dropped.
pub fn evaluate(rs: &Ruleset) -> PortVerdict {
    if rs.input.is_empty() {
        return PortVerdict::Open {
            by: "no input filter chain".into(),
            line: None,
        };
    }
    let mut results = Vec::new();
    for name in &rs.input {
        let mut pending = Pending::default();
        let v = match walk(rs, name, 0, &mut pending) {
            Outcome::Final(v) => v,
            // A base chain's return applies its policy, which `walk` already handled for
            // fallthrough; reaching here means a return from the base chain itself.
            Outcome::Return | Outcome::Fallthrough => {
                match rs.chains.get(name).and_then(|c| c.policy_accept) {
                    Some(false) => drop(&pending, (format!("chain {name} policy drop"), None)),
                    _ => PortVerdict::Open {
                        by: format!("chain {name} policy accept"),
                        line: None,
                    },
                }
            }
        };
        results.push(v);
    }
    let pick = |f: fn(&PortVerdict) -> bool| results.iter().find(|v| f(v)).cloned();
    pick(|v| matches!(v, PortVerdict::Dropped { .. }))
        .or_else(|| pick(|v| matches!(v, PortVerdict::Unknown { .. })))
        .or_else(|| pick(|v| matches!(v, PortVerdict::Restricted { .. })))
        .or_else(|| results.first().cloned())
        .unwrap_or(PortVerdict::Unknown {
            reason: "no result".into(),
        })
}

/// The firewall's answer for both address families, and what it was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FirewallStatus {
    pub sources: Vec<String>,
    pub ipv4: PortVerdict,
    pub ipv6: PortVerdict,
    /// The dump each verdict was read from (a command line, or a fixture's host path).
    pub ipv4_from: Option<String>,
    pub ipv6_from: Option<String>,
}

/// Rule dumps as text; `None` when not available. `label` names where each came from.
#[derive(Debug, Clone, Default)]
pub struct Dumps {
    pub nft_json: Option<(String, String)>,
    pub iptables: Option<(String, String)>,
    pub ip6tables: Option<(String, String)>,
}

/// Judge `port` from whatever dumps exist. nftables wins when it has input chains for the
/// family (iptables-nft shows the same rules both ways); iptables-save is the fallback.
pub fn status(d: &Dumps, port: u16) -> FirewallStatus {
    let mut sources = Vec::new();
    let mut nft_err = None;
    let mut fam = |f: nft::Family,
                   ipt: &Option<(String, String)>,
                   sources: &mut Vec<String>|
     -> (PortVerdict, Option<String>) {
        let nft_rs = match &d.nft_json {
            Some((label, text)) => match nft::lower(text, port, f) {
                Ok(rs) => Some((label, rs)),
                Err(e) => {
                    nft_err = Some(format!("{label}: {e}"));
                    None
                }
            },
            None => None,
        };
        // A dump without a filter table means no filter rules: nothing drops the port.
        let ipt_rs = ipt
            .as_ref()
            .map(|(l, t)| (l, iptables::lower(t, port).unwrap_or_default()));
        let used = match (&nft_rs, &ipt_rs) {
            (Some((l, rs)), _) if !rs.input.is_empty() => Some((*l, rs)),
            (_, Some((l, rs))) if !rs.input.is_empty() => Some((*l, rs)),
            (Some((l, rs)), _) => Some((*l, rs)),
            (None, Some((l, rs))) => Some((*l, rs)),
            (None, None) => None,
        };
        match used {
            Some((label, rs)) => {
                if !sources.contains(label) {
                    sources.push(label.clone());
                }
                (evaluate(rs), Some(label.clone()))
            }
            None => (
                PortVerdict::Unknown {
                    reason: "cannot be determined: no nftables ruleset (`nft -j list ruleset`) or iptables-save output could be read"
                        .into(),
                },
                None,
            ),
        }
    };
    let (ipv4, ipv4_from) = fam(nft::Family::V4, &d.iptables, &mut sources);
    let (ipv6, ipv6_from) = fam(nft::Family::V6, &d.ip6tables, &mut sources);
    if let Some(e) = nft_err {
        sources.push(format!("(unparsable: {e})"));
    }
    FirewallStatus {
        sources,
        ipv4,
        ipv6,
        ipv4_from,
        ipv6_from,
    }
}

/// Whether a port is in a port expression: `11434`, `8000:9000`, `22,80,11000:12000`.
pub fn port_in_list(spec: &str, port: u16) -> Option<bool> {
    let mut any = false;
    for part in spec.split(',') {
        let part = part.trim();
        let (lo, hi) = match part.split_once(':').or_else(|| part.split_once('-')) {
            Some((a, b)) => (
                if a.is_empty() {
                    0
                } else {
                    a.parse::<u16>().ok()?
                },
                if b.is_empty() {
                    u16::MAX
                } else {
                    b.parse::<u16>().ok()?
                },
            ),
            None => {
                let p = part.parse::<u16>().ok()?;
                (p, p)
            }
        };
        any |= (lo..=hi).contains(&port);
    }
    Some(any)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
