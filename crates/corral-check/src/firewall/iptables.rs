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

/// The table a line belongs to, and how its chains are named in the [`Ruleset`]: the filter
/// table's as they are (`INPUT`), the raw table's with a `raw ` prefix so that user chains of
/// the two tables cannot meet.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Table {
    Filter,
    Raw,
    Other,
}

impl Table {
    fn chain(self, name: &str) -> String {
        match self {
            Table::Raw => format!("raw {name}"),
            _ => name.to_string(),
        }
    }

    /// The chain the fixed packet enters in this table.
    fn entry(self) -> Option<&'static str> {
        match self {
            Table::Filter => Some("INPUT"),
            Table::Raw => Some("PREROUTING"),
            Table::Other => None,
        }
    }
}

/// Lower the `*filter` table's INPUT chain and the `*raw` table's PREROUTING chain (which sees
/// the packet first: a drop there counts too). Returns `None` when the text has neither table.
pub fn lower(text: &str, port: u16) -> Option<Ruleset> {
    let mut rs = Ruleset::default();
    let mut table = Table::Other;
    let mut seen = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let lineno = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if let Some(t) = line.strip_prefix('*') {
            table = match t {
                "filter" => Table::Filter,
                "raw" => Table::Raw,
                _ => Table::Other,
            };
            seen |= table != Table::Other;
            continue;
        }
        if table == Table::Other || line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "COMMIT" {
            table = Table::Other;
            continue;
        }
        if let Some(decl) = line.strip_prefix(':') {
            let mut f = decl.split_whitespace();
            let (Some(name), Some(policy)) = (f.next(), f.next()) else {
                continue;
            };
            let key = table.chain(name);
            let ch = rs.chains.entry(key.clone()).or_default();
            if table.entry() == Some(name) {
                ch.policy_accept = Some(policy != "DROP" && policy != "REJECT");
                if !rs.input.contains(&key) {
                    // INPUT first, so an accepted packet's reason names it.
                    if table == Table::Filter {
                        rs.input.insert(0, key);
                    } else {
                        rs.input.push(key);
                    }
                }
            }
            continue;
        }
        let w = words(line);
        if w.first().map(String::as_str) != Some("-A") {
            continue;
        }
        let Some(chain) = w.get(1) else { continue };
        let (matches, action, narrowed) = eval_rule(w.get(2..).unwrap_or_default(), port);
        let action = match action {
            Action::Jump(t) => Action::Jump(table.chain(&t)),
            Action::Goto(t) => Action::Goto(table.chain(&t)),
            a => a,
        };
        let rule = Rule {
            matches,
            action,
            label: format!("iptables-save line {lineno}: {line}"),
            line: Some(lineno),
            narrowed,
        };
        rs.chains
            .entry(table.chain(chain))
            .or_insert_with(Chain::default)
            .rules
            .push(rule);
    }
    seen.then_some(rs)
}

/// The rule's match for the fixed packet, its action, and (when the match is maybe) the
/// conditions that narrow it, said plainly ("only on eth0 and except from 10.0.0.0/8").
fn eval_rule(w: &[String], port: u16) -> (Tri, Action, Option<String>) {
    let mut m = Tri::Yes;
    let mut narrowed: Vec<String> = Vec::new();
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
            if r == Tri::Maybe {
                narrowed.push(narrowing(opt, arg(i), negate, w.get(i + 1..i + used)));
            }
            m = m.and(if negate { r.negate() } else { r });
        }
        negate = false;
        i += used;
    }
    let narrowed = (m == Tri::Maybe && !narrowed.is_empty()).then(|| narrowed.join(" and "));
    (m, action, narrowed)
}

/// One condition of a rule that may or may not hold for the fixed packet, in words.
fn narrowing(opt: &str, arg: &str, negated: bool, args: Option<&[String]>) -> String {
    let (only, except) = match opt {
        "-i" | "--in-interface" => ("only on", "except on"),
        "-s" | "--source" => ("only from", "except from"),
        "-d" | "--destination" => ("only to", "except to"),
        _ => {
            let all = args.map(|a| a.join(" ")).unwrap_or_default();
            let not = if negated { "! " } else { "" };
            return format!("only when `{not}{opt} {all}` matches")
                .replace(" ` matches", "` matches");
        }
    };
    format!("{} {arg}", if negated { except } else { only })
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
            (Tri::Yes, Action::Drop, None)
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
            (
                Tri::Maybe,
                Action::Accept,
                Some("only from 10.0.0.0/8".into())
            )
        );
        assert_eq!(
            eval_rule(
                &ws("-p tcp --dport 11434 -j REJECT --reject-with tcp-reset"),
                11434
            ),
            (Tri::Yes, Action::Drop, None)
        );
        assert_eq!(
            eval_rule(&ws("-j ufw-before-input"), 1),
            (Tri::Yes, Action::Jump("ufw-before-input".into()), None)
        );
        assert_eq!(
            eval_rule(&ws("-i eth0 -p tcp --dport 11434 -j DROP"), 11434).2,
            Some("only on eth0".into())
        );
        assert_eq!(
            eval_rule(&ws("! -s 10.0.0.0/8 -p tcp --dport 11434 -j DROP"), 11434).2,
            Some("except from 10.0.0.0/8".into())
        );
        assert_eq!(
            eval_rule(&ws("-m weird --thing a b -j DROP"), 1).2,
            Some("only when `--thing a b` matches".into())
        );
        assert_eq!(
            eval_rule(&ws("-m weird --thing a b -j ACCEPT"), 1).0,
            Tri::Maybe
        );
    }
}
