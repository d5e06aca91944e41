//! `nft -j list ruleset` lowered to [`Ruleset`] for one fixed packet.

use super::{Action, Chain, Rule, Ruleset, Tri};
use serde_json::Value;
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
#[error("nft JSON: {0}")]
pub struct NftError(String);

/// Family of the packet being judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

struct Ctx<'a> {
    port: u16,
    fam: Family,
    sets: &'a HashMap<(String, String, String), Vec<Value>>,
    family: &'a str,
    table: &'a str,
}

/// Build the ruleset that applies to IPv4 or IPv6 traffic to `port`.
pub fn lower(json: &str, port: u16, fam: Family) -> Result<Ruleset, NftError> {
    let v: Value = serde_json::from_str(json).map_err(|e| NftError(e.to_string()))?;
    let items = v
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or_else(|| NftError("no top-level \"nftables\" array".into()))?;
    let wanted = |f: &str| match fam {
        Family::V4 => f == "ip" || f == "inet",
        Family::V6 => f == "ip6" || f == "inet",
    };
    let s = |o: &Value, k: &str| {
        o.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };

    let mut sets: HashMap<(String, String, String), Vec<Value>> = HashMap::new();
    for it in items {
        if let Some(set) = it.get("set") {
            let elems = set
                .get("elem")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            sets.insert((s(set, "family"), s(set, "table"), s(set, "name")), elems);
        }
    }

    let mut rs = Ruleset::default();
    let mut bases: Vec<(bool, i64, String)> = Vec::new();
    for it in items {
        let Some(c) = it.get("chain") else { continue };
        let family = s(c, "family");
        if !wanted(&family) {
            continue;
        }
        let key = format!("{family} {} {}", s(c, "table"), s(c, "name"));
        // A prerouting filter chain sees the packet before input does: a drop there counts.
        let hook = c.get("hook").and_then(Value::as_str);
        let prerouting = hook == Some("prerouting");
        let is_input = (hook == Some("input") || prerouting)
            && c.get("type")
                .and_then(Value::as_str)
                .is_none_or(|t| t == "filter");
        let policy_accept =
            is_input.then(|| c.get("policy").and_then(Value::as_str) != Some("drop"));
        if is_input {
            // Input chains first: an accepted packet's reason names the input chain.
            bases.push((
                prerouting,
                c.get("prio").and_then(Value::as_i64).unwrap_or(0),
                key.clone(),
            ));
        }
        rs.chains.insert(
            key,
            Chain {
                policy_accept,
                rules: Vec::new(),
            },
        );
    }
    bases.sort();
    rs.input = bases.into_iter().map(|(_, _, k)| k).collect();

    for it in items {
        let Some(r) = it.get("rule") else { continue };
        let (family, table) = (s(r, "family"), s(r, "table"));
        if !wanted(&family) {
            continue;
        }
        let key = format!("{family} {table} {}", s(r, "chain"));
        let ctx = Ctx {
            port,
            fam,
            sets: &sets,
            family: &family,
            table: &table,
        };
        let rule = lower_rule(&ctx, r, &key);
        if let Some(ch) = rs.chains.get_mut(&key) {
            ch.rules.push(rule);
        }
    }
    Ok(rs)
}

fn lower_rule(ctx: &Ctx<'_>, r: &Value, chain: &str) -> Rule {
    let handle = r
        .get("handle")
        .map(|h| h.to_string())
        .unwrap_or_else(|| "?".into());
    let mut label = format!("nft {chain} rule handle {handle}");
    if let Some(c) = r.get("comment").and_then(Value::as_str) {
        label.push_str(&format!(" ({c})"));
    }
    let mut matches = Tri::Yes;
    let mut action = Action::None;
    let exprs = r
        .get("expr")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for e in &exprs {
        let Some(obj) = e.as_object() else { continue };
        for (k, v) in obj {
            match k.as_str() {
                "match" => matches = matches.and(eval_match(ctx, v)),
                "accept" => action = Action::Accept,
                "drop" | "reject" => action = Action::Drop,
                "return" => action = Action::Return,
                "jump" | "goto" => {
                    let t = v.get("target").and_then(Value::as_str).unwrap_or_default();
                    let t = format!("{} {} {t}", ctx.family, ctx.table);
                    action = if k == "jump" {
                        Action::Jump(t)
                    } else {
                        Action::Goto(t)
                    };
                }
                "vmap" => {
                    let (m, a) = eval_vmap(ctx, v);
                    matches = matches.and(m);
                    action = a;
                }
                // Rate limits and iptables-compat matches decide per packet: not knowable.
                "limit" | "xt" | "quota" | "meter" => matches = matches.and(Tri::Maybe),
                _ => {}
            }
        }
    }
    Rule {
        matches,
        action,
        label,
        line: None,
        narrowed: None,
    }
}

enum Subject {
    Port,
    Strings(Vec<&'static str>),
    Never,
    Unknown,
}

fn subject(ctx: &Ctx<'_>, left: &Value) -> Subject {
    if let Some(p) = left.get("payload") {
        let proto = p
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let field = p.get("field").and_then(Value::as_str).unwrap_or_default();
        return match (proto, field) {
            ("tcp" | "th", "dport") => Subject::Port,
            ("udp" | "udplite" | "sctp" | "dccp" | "icmp" | "icmpv6" | "esp" | "ah", _) => {
                Subject::Never
            }
            ("ip", _) if ctx.fam == Family::V6 => Subject::Never,
            ("ip6", _) if ctx.fam == Family::V4 => Subject::Never,
            ("ip", "protocol") | ("ip6", "nexthdr") => Subject::Strings(vec!["tcp", "6"]),
            _ => Subject::Unknown,
        };
    }
    if let Some(m) = left.get("meta") {
        return match m.get("key").and_then(Value::as_str).unwrap_or_default() {
            "l4proto" => Subject::Strings(vec!["tcp", "6"]),
            "nfproto" => Subject::Strings(match ctx.fam {
                Family::V4 => vec!["ipv4", "2"],
                Family::V6 => vec!["ipv6", "10"],
            }),
            "pkttype" => Subject::Strings(vec!["host", "unicast"]),
            // The packet comes in on some non-loopback interface: `lo` never matches, any
            // other name might.
            "iifname" | "iif" => Subject::Strings(vec!["\u{0}non-loopback"]),
            _ => Subject::Unknown,
        };
    }
    if let Some(c) = left.get("ct") {
        return match c.get("key").and_then(Value::as_str) {
            Some("state") => Subject::Strings(vec!["new"]),
            _ => Subject::Unknown,
        };
    }
    Subject::Unknown
}

/// Flatten a right-hand side to its elements: scalars, arrays, `{"set": [...]}`, `@name`.
fn elements(ctx: &Ctx<'_>, right: &Value) -> Vec<Value> {
    match right {
        Value::Array(a) => a.iter().flat_map(|x| elements(ctx, x)).collect(),
        Value::String(s) if s.starts_with('@') => ctx
            .sets
            .get(&(
                ctx.family.to_string(),
                ctx.table.to_string(),
                s[1..].to_string(),
            ))
            .map(|v| v.iter().flat_map(|x| elements(ctx, x)).collect())
            .unwrap_or_else(|| vec![Value::Null]),
        Value::Object(o) if o.contains_key("set") => {
            o.get("set").map(|s| elements(ctx, s)).unwrap_or_default()
        }
        Value::Object(o) if o.contains_key("elem") => o
            .get("elem")
            .and_then(|e| e.get("val"))
            .map(|s| elements(ctx, s))
            .unwrap_or_default(),
        other => vec![other.clone()],
    }
}

fn port_hit(e: &Value, port: u16) -> Tri {
    let num = |v: &Value| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    };
    if let Some(n) = num(e) {
        return if n == u64::from(port) {
            Tri::Yes
        } else {
            Tri::No
        };
    }
    if let Some(r) = e.get("range").and_then(Value::as_array) {
        if let (Some(lo), Some(hi)) = (r.first().and_then(num), r.get(1).and_then(num)) {
            return if (lo..=hi).contains(&u64::from(port)) {
                Tri::Yes
            } else {
                Tri::No
            };
        }
    }
    Tri::Maybe
}

fn membership(ctx: &Ctx<'_>, subj: &Subject, right: &Value) -> Tri {
    let elems = elements(ctx, right);
    let mut res = Tri::No;
    for e in &elems {
        let hit = match subj {
            Subject::Port => port_hit(e, ctx.port),
            Subject::Strings(names) => {
                let txt = match e {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return Tri::Maybe,
                };
                if names.first().is_some_and(|n| n.starts_with('\u{0}')) {
                    if txt == "lo" {
                        Tri::No
                    } else {
                        Tri::Maybe
                    }
                } else if names.iter().any(|n| *n == txt) {
                    Tri::Yes
                } else {
                    Tri::No
                }
            }
            Subject::Never => Tri::No,
            Subject::Unknown => Tri::Maybe,
        };
        match hit {
            Tri::Yes => return Tri::Yes,
            Tri::Maybe => res = Tri::Maybe,
            Tri::No => {}
        }
    }
    res
}

fn eval_match(ctx: &Ctx<'_>, m: &Value) -> Tri {
    let op = m.get("op").and_then(Value::as_str).unwrap_or("==");
    let (Some(left), Some(right)) = (m.get("left"), m.get("right")) else {
        return Tri::Maybe;
    };
    let subj = subject(ctx, left);
    match subj {
        Subject::Never => return Tri::No,
        Subject::Unknown => return Tri::Maybe,
        _ => {}
    }
    match op {
        "==" | "in" => membership(ctx, &subj, right),
        "!=" => membership(ctx, &subj, right).negate(),
        "<" | ">" | "<=" | ">=" if matches!(subj, Subject::Port) => {
            let Some(n) = right.as_u64() else {
                return Tri::Maybe;
            };
            let p = u64::from(ctx.port);
            let ok = match op {
                "<" => p < n,
                ">" => p > n,
                "<=" => p <= n,
                _ => p >= n,
            };
            if ok {
                Tri::Yes
            } else {
                Tri::No
            }
        }
        _ => Tri::Maybe,
    }
}

/// `tcp dport vmap { 22 : accept, 11434 : drop }` and `ct state vmap { ... }`.
fn eval_vmap(ctx: &Ctx<'_>, v: &Value) -> (Tri, Action) {
    let subj = v
        .get("key")
        .map(|k| subject(ctx, k))
        .unwrap_or(Subject::Unknown);
    let data = v.get("data").map(|d| elements(ctx, d)).unwrap_or_default();
    let mut maybe_accept = false;
    // Elements of a verdict map arrive flattened as [key, verdict] pairs.
    for pair in data.chunks(2) {
        let [key, verdict] = pair else { continue };
        let action = if verdict.get("accept").is_some() {
            Action::Accept
        } else if verdict.get("drop").is_some() || verdict.get("reject").is_some() {
            Action::Drop
        } else if let Some(t) = verdict
            .get("jump")
            .and_then(|j| j.get("target"))
            .and_then(Value::as_str)
        {
            Action::Jump(format!("{} {} {t}", ctx.family, ctx.table))
        } else {
            Action::None
        };
        let hit = match subj {
            Subject::Never => Tri::No,
            Subject::Unknown => Tri::Maybe,
            _ => membership(ctx, &subj, key),
        };
        match hit {
            Tri::Yes => return (Tri::Yes, action),
            Tri::Maybe if action == Action::Accept => maybe_accept = true,
            _ => {}
        }
    }
    if maybe_accept {
        (Tri::Maybe, Action::Accept)
    } else {
        (Tri::No, Action::None)
    }
}
