//! What a raw line must contain for a rule to have any chance of matching it, checked with
//! substring search before the line is parsed.
//!
//! Each compiled rule becomes a formula over "the line contains this literal": a selection
//! item needs the text of one of its patterns, an AND needs all of its parts, a NOT needs
//! nothing. The formula is a necessary condition, never a sufficient one: a line that passes
//! is parsed and matched as usual, a line that fails cannot match and is only validated and
//! counted. Keeping it necessary takes care in four places:
//!
//! - **Escapes.** A decoded JSON string can hold characters its raw text does not (`\/`,
//!   `\"`, `\\`, `\n`, `\u0041`). Literals are cut at `"`, `\`, `/` and control characters
//!   and only the longest remaining piece is searched for; a line with any `\u` escape
//!   passes unconditionally.
//! - **Numbers.** `11434` also matches `11434.0`, `"11434"` and `1.1434e4`. The digits of an
//!   integer survive every spelling but exponent notation and spellings with 16 or more
//!   digits (which f64 rounds), so numeric literals are `digits OR the line has such a
//!   number` ([`Need::Exotic`]).
//! - **Derived fields.** Readers fill some fields with constants the line need not contain
//!   (`event.dataset: zeek.conn`, `event.module: sysmon`). A pattern that matches such a
//!   constant needs instead what makes the reader derive it (a Sysmon provider name, a Zeek
//!   `conn_state` key), or nothing.
//! - **Rewritten fields.** `source.ip` and `destination.ip` are normalised (mapped IPv6
//!   unwrapped), so patterns on them need nothing.

use memchr::memmem::Finder;

use super::matcher::{str_matches, CCond, CItem, Compiled, Pat};
use crate::event::FieldId;
use crate::fields::*;

/// Which reader's derivations apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// JSON lines: ECS, Zeek JSON, evtx_dump, Winlogbeat, corral's audit log.
    Json,
    /// Zeek TSV rows: the header, not the row, says `zeek.conn`.
    ZeekTsv,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Need {
    True,
    False,
    Lit(usize),
    /// The line may hold a number whose text does not contain its digits as written.
    Exotic,
    And(Vec<Need>),
    Or(Vec<Need>),
}

impl Need {
    fn has_exotic(&self) -> bool {
        match self {
            Need::Exotic => true,
            Need::And(xs) | Need::Or(xs) => xs.iter().any(Need::has_exotic),
            _ => false,
        }
    }
}

#[derive(Debug)]
struct Lit {
    finder: Finder<'static>,
    /// Search the ASCII-lowercased line (the literal is lowercase already).
    ci: bool,
}

/// The prefilter of one rule set for one dialect.
#[derive(Debug)]
pub struct Prefilter {
    lits: Vec<Lit>,
    keys: Vec<(Vec<u8>, bool)>,
    rules: Vec<Need>,
    always: bool,
    unicode_escape: Finder<'static>,
}

/// Per-line scratch: literal results and the lowercased line, computed at most once.
#[derive(Debug, Default)]
pub struct Scan {
    seen: Vec<u8>,
    lower: Vec<u8>,
    lowered: bool,
    exotic: Option<bool>,
}

/// Constants a reader puts in `field` and what the line must contain for it to do so
/// (any of the listed literals; `None` = nothing).
type Derived = &'static [(&'static str, Option<&'static [(&'static str, bool)]>)];

const ZEEK_JSON: &[(&str, bool)] = &[("state", false)];
const SYSMON: &[(&str, bool)] = &[("sysmon", true)];
const SECURITY: &[(&str, bool)] = &[("security", true)];
const CORRAL: &[(&str, bool)] = &[("decision", false)];
const NETWORK_JSON: &[(&str, bool)] = &[("state", false), ("sysmon", true), ("security", true)];

fn derived(dialect: Dialect, field: FieldId) -> Derived {
    match (dialect, field) {
        (Dialect::Json, EVENT_MODULE) => &[
            ("zeek", Some(ZEEK_JSON)),
            ("sysmon", Some(SYSMON)),
            ("security", Some(SECURITY)),
            ("corral", Some(CORRAL)),
        ],
        (Dialect::Json, EVENT_DATASET) => &[
            ("zeek.conn", Some(ZEEK_JSON)),
            ("corral.audit", Some(CORRAL)),
        ],
        (Dialect::Json, EVENT_CATEGORY) => {
            &[("network", Some(NETWORK_JSON)), ("process", Some(SYSMON))]
        }
        (Dialect::Json, EVENT_TYPE) => &[("start", Some(SYSMON))],
        (Dialect::Json, NETWORK_DIRECTION) => {
            &[("ingress", Some(SYSMON)), ("egress", Some(SYSMON))]
        }
        (Dialect::Json, EVENT_ACTION) => &[("bound-socket", Some(SECURITY))],
        (Dialect::ZeekTsv, EVENT_MODULE) => &[("zeek", None)],
        (Dialect::ZeekTsv, EVENT_DATASET) => &[("zeek.conn", None), ("zeek.http", None)],
        (Dialect::ZeekTsv, EVENT_CATEGORY) => &[("network", None)],
        _ => &[],
    }
}

/// Fields whose value a reader rewrites or derives from others (so its text need not be in
/// the line): `process.args_count` counts `process.args`.
fn rewritten(field: FieldId) -> bool {
    matches!(field, SOURCE_IP | DESTINATION_IP | PROCESS_ARGS_COUNT)
}

struct Builder {
    keys: Vec<(Vec<u8>, bool)>,
    dialect: Dialect,
    /// Literals of the item being built may be cut at spaces too: `process.command_line`
    /// may be `process.args` joined with spaces, each argument its own JSON string, so only
    /// the runs between spaces are sure to be in the line.
    split_space: bool,
}

impl Builder {
    /// Every piece of `text` between bytes that JSON may spell otherwise is in the raw line.
    fn lit(&mut self, text: &str, ci: bool) -> Need {
        let pieces = plain_pieces(text.as_bytes(), self.split_space);
        let longest = pieces.iter().map(|p| p.len()).max().unwrap_or(0);
        // Pieces much shorter than the longest add searches and little selectivity.
        let parts = pieces
            .into_iter()
            .filter(|p| p.len() >= 3 || p.len() == longest)
            .map(|p| self.piece(p, ci))
            .collect();
        and(parts)
    }

    fn piece(&mut self, piece: &[u8], ci: bool) -> Need {
        // Case folding only matters for letters.
        let ci = ci && piece.iter().any(u8::is_ascii_alphabetic);
        let key = (
            if ci {
                piece.to_ascii_lowercase()
            } else {
                piece.to_vec()
            },
            ci,
        );
        let numeric = key.0.iter().all(|b| matches!(b, b'0'..=b'9' | b'.' | b'-'));
        let idx = match self.keys.iter().position(|k| *k == key) {
            Some(i) => i,
            None => {
                self.keys.push(key);
                self.keys.len() - 1
            }
        };
        if numeric {
            Need::Or(vec![Need::Lit(idx), Need::Exotic])
        } else {
            Need::Lit(idx)
        }
    }

    fn pat(&mut self, p: &Pat) -> Need {
        match p {
            Pat::Eq { text, num, cased } => {
                let mut alts = vec![self.lit(text, !cased)];
                // Numbers of 1e10 and up: rounding leaves too few tell-tale nines to spot.
                if num.is_some_and(|n| n.abs() >= 1e10) {
                    return Need::True;
                }
                if let Some(n) = num {
                    // `.5` parses as 0.5 too, so a leading zero is not required.
                    let d = crate::event::fmt_num(n.abs());
                    let d = match d.strip_prefix('0') {
                        Some(rest) if rest.starts_with('.') => rest.to_string(),
                        _ => d,
                    };
                    alts.push(self.lit(&d, false));
                    alts.push(Need::Exotic);
                }
                or(alts)
            }
            Pat::Starts(t, cased) | Pat::Ends(t, cased) | Pat::Contains(t, cased) => {
                self.lit(t, !cased)
            }
            Pat::Glob(g, cased) => {
                // Each run between wildcards is in the value.
                let runs: Vec<String> = g.split(['*', '?']).map(str::to_string).collect();
                let parts = runs.iter().map(|r| self.lit(r, !cased)).collect();
                and(parts)
            }
            Pat::Cidr(_) | Pat::Re(_) | Pat::Exists(_) | Pat::Null => Need::True,
        }
    }

    fn item(&mut self, it: &CItem) -> Need {
        if rewritten(it.field) {
            return Need::True;
        }
        self.split_space = it.field == PROCESS_COMMAND_LINE;
        let consts = derived(self.dialect, it.field);
        let mut parts = Vec::with_capacity(it.pats.len());
        for p in &it.pats {
            let mut alts = vec![self.pat(p)];
            for (value, trigger) in consts {
                if matches!(p, Pat::Exists(_) | Pat::Null) || str_matches(p, value) {
                    alts.push(match trigger {
                        None => Need::True,
                        Some(lits) => {
                            let t = lits.iter().map(|(l, ci)| self.lit(l, *ci)).collect();
                            or(t)
                        }
                    });
                }
            }
            parts.push(or(alts));
        }
        if it.all {
            and(parts)
        } else {
            or(parts)
        }
    }

    fn cond(&mut self, c: &CCond, rule: &Compiled) -> Need {
        match c {
            CCond::Sel(i) => match rule.sels.get(*i) {
                Some(alts) => {
                    let alts = alts
                        .iter()
                        .map(|items| {
                            let parts = items.iter().map(|it| self.item(it)).collect();
                            and(parts)
                        })
                        .collect();
                    or(alts)
                }
                None => Need::False,
            },
            CCond::Not(_) => Need::True,
            CCond::And(xs) => {
                let parts = xs.iter().map(|x| self.cond(x, rule)).collect();
                and(parts)
            }
            CCond::Or(xs) => {
                let parts = xs.iter().map(|x| self.cond(x, rule)).collect();
                or(parts)
            }
        }
    }
}

fn and(parts: Vec<Need>) -> Need {
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        match p {
            Need::True => {}
            Need::False => return Need::False,
            Need::And(xs) => out.extend(xs),
            p => out.push(p),
        }
    }
    // Plain literals first: they decide most lines, and the number scan is the dearest.
    out.sort_by_key(|n| match n {
        Need::Lit(_) => 0,
        n if n.has_exotic() => 2,
        _ => 1,
    });
    out.dedup();
    match out.len() {
        0 => Need::True,
        1 => out.pop().unwrap_or(Need::True),
        _ => Need::And(out),
    }
}

fn or(parts: Vec<Need>) -> Need {
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        match p {
            Need::True => return Need::True,
            Need::False => {}
            Need::Or(xs) => {
                for x in xs {
                    if !out.contains(&x) {
                        out.push(x);
                    }
                }
            }
            p => {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
    }
    // The number scan last: a literal usually answers first.
    out.sort_by_key(Need::has_exotic);
    match out.len() {
        0 => Need::False,
        1 => out.pop().unwrap_or(Need::False),
        _ => Need::Or(out),
    }
}

/// The runs of `text` without bytes whose raw JSON spelling may differ from the decoded one
/// (`"`, `\`, `/`, control characters), and without spaces if `split_space`.
fn plain_pieces(text: &[u8], split_space: bool) -> Vec<&[u8]> {
    text.split(|b| matches!(b, b'"' | b'\\' | b'/') || *b < 0x20 || (split_space && *b == b' '))
        .filter(|p| !p.is_empty())
        .collect()
}

impl Prefilter {
    pub fn new(rules: &[Compiled], dialect: Dialect) -> Prefilter {
        let mut b = Builder {
            keys: Vec::new(),
            dialect,
            split_space: false,
        };
        let needs: Vec<Need> = rules.iter().map(|r| b.cond(&r.cond, r)).collect();
        let always = needs.contains(&Need::True);
        let lits = b
            .keys
            .iter()
            .map(|(bytes, ci)| Lit {
                finder: Finder::new(bytes).into_owned(),
                ci: *ci,
            })
            .collect();
        Prefilter {
            lits,
            keys: b.keys,
            rules: needs,
            always,
            unicode_escape: Finder::new(b"\\u").into_owned(),
        }
    }

    /// False only when no rule can match `line`.
    pub fn may_match(&self, line: &[u8], scan: &mut Scan) -> bool {
        if self.always || self.unicode_escape.find(line).is_some() {
            return true;
        }
        scan.seen.clear();
        scan.seen.resize(self.lits.len(), 0);
        scan.lowered = false;
        scan.exotic = None;
        self.rules.iter().any(|n| self.eval(n, line, scan))
    }

    fn eval(&self, n: &Need, line: &[u8], scan: &mut Scan) -> bool {
        match n {
            Need::True => true,
            Need::False => false,
            Need::Exotic => *scan.exotic.get_or_insert_with(|| exotic_number(line)),
            Need::And(xs) => xs.iter().all(|x| self.eval(x, line, scan)),
            Need::Or(xs) => xs.iter().any(|x| self.eval(x, line, scan)),
            Need::Lit(i) => {
                let i = *i;
                match scan.seen.get(i) {
                    Some(1) => return false,
                    Some(2) => return true,
                    _ => {}
                }
                let Some(lit) = self.lits.get(i) else {
                    return true;
                };
                let hay = if lit.ci {
                    if !scan.lowered {
                        scan.lower.clear();
                        scan.lower.extend_from_slice(line);
                        scan.lower.make_ascii_lowercase();
                        scan.lowered = true;
                    }
                    &scan.lower[..]
                } else {
                    line
                };
                let found = lit.finder.find(hay).is_some();
                if let Some(s) = scan.seen.get_mut(i) {
                    *s = if found { 2 } else { 1 };
                }
                found
            }
        }
    }

    /// The literals searched for, for tests and `--explain`-style diagnostics.
    pub fn literals(&self) -> impl Iterator<Item = (&[u8], bool)> {
        self.keys.iter().map(|(k, ci)| (k.as_slice(), *ci))
    }

    /// Whether every line must be parsed (some rule needs nothing searchable).
    pub fn always(&self) -> bool {
        self.always
    }
}

/// A number spelled so that its digits as written are not the digits of its value: a
/// token of number characters standing alone (as a JSON number, a whole string value, or a
/// TSV column) in exponent notation (`1.1434e4`), or with 16 or more digits and a run of
/// nines (`11433.99999999999999` rounds to 11434; numeric literals are kept below 1e10, where
/// such a spelling needs at least five nines). Hex identifiers (`4e5a…`) are not tokens of
/// their own and do not count.
fn exotic_number(line: &[u8]) -> bool {
    let digit = |at: usize| line.get(at).is_some_and(u8::is_ascii_digit);
    for e in memchr::memchr2_iter(b'e', b'E', line) {
        let after = if matches!(line.get(e + 1), Some(b'+' | b'-')) {
            e + 2
        } else {
            e + 1
        };
        if e > 0 && digit(e - 1) && digit(after) && standalone(line, e).is_some() {
            return true;
        }
    }
    static NINES: std::sync::OnceLock<Finder<'static>> = std::sync::OnceLock::new();
    let nines = NINES.get_or_init(|| Finder::new(b"99999"));
    let mut from = 0;
    while let Some(at) = line.get(from..).and_then(|rest| nines.find(rest)) {
        let at = from + at;
        if standalone(line, at)
            .is_some_and(|token| token.iter().filter(|b| b.is_ascii_digit()).count() >= 16)
        {
            return true;
        }
        from = at + 1;
    }
    false
}

/// The run of number characters around `at`, if it stands alone (not part of a word; JSON
/// escapes before it, like `\t`, decode to whitespace that parsing trims).
fn standalone(line: &[u8], at: usize) -> Option<&[u8]> {
    let numeric = |b: &u8| matches!(b, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-');
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut start = at;
    while start > 0 && line.get(start - 1).is_some_and(numeric) {
        start -= 1;
    }
    let mut end = at;
    while line.get(end).is_some_and(numeric) {
        end += 1;
    }
    let before_ok = match start.checked_sub(1).and_then(|p| line.get(p)) {
        None => true,
        Some(b) if !word(*b) => true,
        Some(b'b' | b'f' | b'n' | b'r' | b't') => start >= 2 && line.get(start - 2) == Some(&b'\\'),
        Some(_) => false,
    };
    let after_ok = line.get(end).is_none_or(|b| !word(*b));
    (before_ok && after_ok).then(|| &line[start..end])
}

#[cfg(test)]
mod tests;
