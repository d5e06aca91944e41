//! `iptables-save` / `ip6tables-save` text lowered to [`Ruleset`] for one fixed packet.

use super::{port_in_list, Action, Chain, Rule, Ruleset, Tri};

/// Words of a rule line, honouring double quotes (`--comment "a b"`).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut has = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                has = true;
            }
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() && !quoted => {
                if has || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            c => cur.push(c),
        }
    }
    if has || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Lower the `*filter` table. Returns `None` when the text has no filter table at all.
pub fn lower(text: &str, port: u16) -> Option<Ruleset> {
    let mut rs = Ruleset::default();
    let mut in_filter = false;
    let mut seen_filter = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let lineno = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if let Some(t) = line.strip_prefix('*') {
            in_filter = t == "filter";
            seen_filter |= in_filter;
            continue;
        }
        if !in_filter || line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "COMMIT" {
            in_filter = false;
            continue;
        }
        if let Some(decl) = line.strip_prefix(':') {
            let mut f = decl.split_whitespace();
            let (Some(name), Some(policy)) = (f.next(), f.next()) else {
                continue;
            };
            let ch = rs.chains.entry(name.to_string()).or_default();
            if name == "INPUT" {
                ch.policy_accept = Some(policy != "DROP" && policy != "REJECT");
                if !rs.input.iter().any(|n| n == "INPUT") {
                    rs.input.push("INPUT".into());
                }
            }
            continue;
        }
        let w = words(line);
        if w.first().map(String::as_str) != Some("-A") {
            continue;
        }
        let Some(chain) = w.get(1) else { continue };
        let (matches, action) = eval_rule(w.get(2..).unwrap_or_default(), port);
        let rule = Rule {
            matches,
            action,
            label: format!("iptables-save line {lineno}: {line}"),
            line: Some(lineno),
        };
        rs.chains
            .entry(chain.clone())
            .or_insert_with(Chain::default)
            .rules
            .push(rule);
    }
    seen_filter.then_some(rs)
}

fn eval_rule(w: &[String], port: u16) -> (Tri, Action) {
    let mut m = Tri::Yes;
    let mut action = Action::None;
    let mut negate = false;
    let mut stop = false;
    let mut i = 0;
    let arg = |i: usize| w.get(i + 1).map(String::as_str).unwrap_or_default();
    while i < w.len() && !stop {
        let opt = w[i].as_str();
        if opt == "!" {
            negate = true;
            i += 1;
            continue;
        }
        let mut used = 2; // option plus one argument, the common case
        let r: Option<Tri> = match opt {
            "-p" | "--protocol" => Some(match arg(i) {
                "tcp" | "6" | "all" | "0" => Tri::Yes,
                _ => Tri::No,
            }),
            "-i" | "--in-interface" => Some(if arg(i).starts_with("lo") {
                Tri::No
            } else {
                Tri::Maybe
            }),
            "-s" | "--source" | "-d" | "--destination" => Some(match arg(i) {
                "0.0.0.0/0" | "::/0" => Tri::Yes,
                _ => Tri::Maybe,
            }),
            "--dport" | "--destination-port" | "--dports" | "--destination-ports" | "--ports" => {
                Some(match port_in_list(arg(i), port) {
                    Some(true) => Tri::Yes,
                    Some(false) => Tri::No,
                    None => Tri::Maybe,
                })
            }
            "--state" | "--ctstate" => Some(if arg(i).split(',').any(|s| s == "NEW") {
                Tri::Yes
            } else {
                Tri::No
            }),
            "--syn" => {
                used = 1;
                Some(Tri::Yes)
            }
            "-m" | "--match" | "--comment" => None,
            "-j" | "--jump" | "-g" | "--goto" => {
                action = match arg(i) {
                    "ACCEPT" => Action::Accept,
                    "DROP" | "REJECT" | "TARPIT" => Action::Drop,
                    "RETURN" => Action::Return,
                    "LOG" | "NFLOG" | "ULOG" | "MARK" | "CONNMARK" | "CT" | "NOTRACK" => {
                        Action::None
                    }
                    t if opt.starts_with("-g") || opt == "--goto" => Action::Goto(t.to_string()),
                    t => Action::Jump(t.to_string()),
                };
                // Everything after the target is a target option (`--reject-with x`).
                stop = true;
                None
            }
            o if o.starts_with('-') => {
                // Unknown option: skip its arguments, and it might match or not.
                used = 1 + w[i + 1..]
                    .iter()
                    .take_while(|a| !a.starts_with('-') && *a != "!")
                    .count();
                Some(Tri::Maybe)
            }
            _ => {
                used = 1;
                None
            }
        };
        if let Some(r) = r {
            m = m.and(if negate { r.negate() } else { r });
        }
        negate = false;
        i += used;
    }
    (m, action)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn quoted_comments() {
        assert_eq!(
            words(r#"-A INPUT -m comment --comment "allow \"x\" y" -j ACCEPT"#),
            vec![
                "-A",
                "INPUT",
                "-m",
                "comment",
                "--comment",
                "allow \"x\" y",
                "-j",
                "ACCEPT"
            ]
        );
    }

    #[test]
    fn rule_options() {
        let ws = |s: &str| words(s);
        assert_eq!(
            eval_rule(&ws("-p tcp -m tcp --dport 11434 -j DROP"), 11434),
            (Tri::Yes, Action::Drop)
        );
        assert_eq!(
            eval_rule(&ws("-p udp --dport 11434 -j DROP"), 11434).0,
            Tri::No
        );
        assert_eq!(eval_rule(&ws("-i lo -j ACCEPT"), 11434).0, Tri::No);
        assert_eq!(
            eval_rule(&ws("! -i lo -p tcp --dport 11434 -j DROP"), 11434).0,
            Tri::Yes
        );
        assert_eq!(
            eval_rule(
                &ws("-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
                11434
            )
            .0,
            Tri::No
        );
        assert_eq!(
            eval_rule(
                &ws("-s 10.0.0.0/8 -p tcp -m multiport --dports 22,11000:12000 -j ACCEPT"),
                11434
            ),
            (Tri::Maybe, Action::Accept)
        );
        assert_eq!(
            eval_rule(
                &ws("-p tcp --dport 11434 -j REJECT --reject-with tcp-reset"),
                11434
            ),
            (Tri::Yes, Action::Drop)
        );
        assert_eq!(
            eval_rule(&ws("-j ufw-before-input"), 1),
            (Tri::Yes, Action::Jump("ufw-before-input".into()))
        );
        assert_eq!(
            eval_rule(&ws("-m weird --thing a b -j ACCEPT"), 1).0,
            Tri::Maybe
        );
    }
}
