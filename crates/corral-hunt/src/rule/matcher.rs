//! Rules compiled against a [`Schema`]: fields resolved to slots, patterns pre-lowered, so
//! matching an event allocates nothing.
//!
//! Semantics: a missing field (or JSON null) matches nothing but `|exists: false` and a `null`
//! value; lists in the event match when any element matches; comparisons are ASCII
//! case-insensitive unless `|cased`; numbers compare numerically with numbers and numeric text.

use regex::Regex;

use super::condition::{pattern_matches, Cond};
use super::value;
use super::yaml::Scalar;
use super::{Mods, Op, Rule};
use crate::error::RuleError;
use crate::event::{Event, FieldId, Schema, Val};
use crate::ip::{parse_ip, Net};

#[derive(Debug)]
pub(crate) enum Pat {
    /// Whole-value text compare, with the number/bool the text denotes.
    Eq {
        text: String,
        num: Option<f64>,
        cased: bool,
    },
    Starts(String, bool),
    Ends(String, bool),
    Contains(String, bool),
    Glob(String, bool),
    Cidr(Net),
    Re(Regex),
    Exists(bool),
    Null,
}

#[derive(Debug)]
pub(crate) struct CItem {
    pub(crate) field: FieldId,
    pub(crate) all: bool,
    pub(crate) pats: Vec<Pat>,
}

#[derive(Debug)]
pub(crate) enum CCond {
    Sel(usize),
    Not(Box<CCond>),
    And(Vec<CCond>),
    Or(Vec<CCond>),
}

#[derive(Debug)]
pub struct CompiledThreshold {
    pub field: FieldId,
    pub timespan_ms: i64,
    pub gt: u64,
}

/// A rule ready to run.
#[derive(Debug)]
pub struct Compiled {
    pub(crate) sels: Vec<Vec<Vec<CItem>>>,
    pub(crate) cond: CCond,
    pub threshold: Option<CompiledThreshold>,
}

impl Compiled {
    /// Compiles `rule`, adding every field it names to `schema`. Parsing validated the
    /// patterns, so errors here only come from rules built by hand.
    pub fn new(rule: &Rule, schema: &mut Schema) -> Result<Compiled, RuleError> {
        let mut sels = Vec::new();
        for s in &rule.selections {
            let mut alts = Vec::new();
            for alt in &s.alternatives {
                let mut items = Vec::new();
                for it in alt {
                    let field = schema.intern(&it.field);
                    let pats = it
                        .values
                        .iter()
                        .map(|v| pattern(it.mods, v))
                        .collect::<Result<Vec<_>, _>>()?;
                    items.push(CItem {
                        field,
                        all: it.mods.all,
                        pats,
                    });
                }
                alts.push(items);
            }
            sels.push(alts);
        }
        let names: Vec<&str> = rule.selections.iter().map(|s| s.name.as_str()).collect();
        let cond = cond(&rule.condition, &names)?;
        let threshold = rule.threshold.as_ref().map(|t| CompiledThreshold {
            field: schema.intern(&t.group_by),
            timespan_ms: t.timespan_ms,
            gt: t.gt,
        });
        Ok(Compiled {
            sels,
            cond,
            threshold,
        })
    }

    pub fn matches(&self, ev: &Event<'_>) -> bool {
        self.eval(&self.cond, ev)
    }

    fn eval(&self, c: &CCond, ev: &Event<'_>) -> bool {
        match c {
            CCond::Sel(i) => self.sels.get(*i).is_some_and(|alts| {
                alts.iter()
                    .any(|items| items.iter().all(|it| item_matches(it, ev)))
            }),
            CCond::Not(x) => !self.eval(x, ev),
            CCond::And(xs) => xs.iter().all(|x| self.eval(x, ev)),
            CCond::Or(xs) => xs.iter().any(|x| self.eval(x, ev)),
        }
    }
}

fn cond(c: &Cond, names: &[&str]) -> Result<CCond, RuleError> {
    Ok(match c {
        Cond::Sel(n) => CCond::Sel(
            names
                .iter()
                .position(|x| x == n)
                .ok_or_else(|| RuleError::UnknownSelection(n.to_string()))?,
        ),
        Cond::Not(x) => CCond::Not(Box::new(cond(x, names)?)),
        Cond::And(xs) => CCond::And(
            xs.iter()
                .map(|x| cond(x, names))
                .collect::<Result<_, _>>()?,
        ),
        Cond::Or(xs) => CCond::Or(
            xs.iter()
                .map(|x| cond(x, names))
                .collect::<Result<_, _>>()?,
        ),
        Cond::Of { any, pattern } => {
            let idx: Vec<CCond> = names
                .iter()
                .enumerate()
                .filter(|(_, n)| pattern_matches(pattern, n))
                .map(|(i, _)| CCond::Sel(i))
                .collect();
            if idx.is_empty() {
                return Err(RuleError::NoSelectionMatches(pattern.to_string()));
            }
            if *any {
                CCond::Or(idx)
            } else {
                CCond::And(idx)
            }
        }
    })
}

fn prep(s: &str, cased: bool) -> String {
    if cased {
        s.to_string()
    } else {
        s.to_ascii_lowercase()
    }
}

fn pattern(mods: Mods, v: &Scalar) -> Result<Pat, RuleError> {
    let (op, cased) = (mods.op, mods.cased);
    if *v == Scalar::Null {
        return Ok(Pat::Null);
    }
    let text = v.text();
    let is_str = matches!(v, Scalar::Str(_));
    // Sigma escapes mean the same under every modifier: a value with a wildcard is a glob
    // (escapes kept for `glob`), one without is its unescaped text.
    let wild = is_str && value::has_wildcard(&text);
    let lit = if is_str && !wild {
        value::unescape(&text)
    } else {
        text.clone()
    };
    Ok(match op {
        Op::Eq if wild => Pat::Glob(prep(&text, cased), cased),
        Op::Eq => {
            let num = match v {
                Scalar::Int(i) => Some(*i as f64),
                Scalar::Float(f) => Some(*f),
                Scalar::Str(_) => lit.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
                _ => None,
            };
            Pat::Eq {
                text: prep(&lit, cased),
                num,
                cased,
            }
        }
        Op::Contains | Op::StartsWith | Op::EndsWith if wild => {
            let g = value::to_glob(&value::with_op(&text, op));
            Pat::Glob(prep(&g, cased), cased)
        }
        Op::Contains => Pat::Contains(prep(&lit, cased), cased),
        Op::StartsWith => Pat::Starts(prep(&lit, cased), cased),
        Op::EndsWith => Pat::Ends(prep(&lit, cased), cased),
        Op::Cidr => Pat::Cidr(Net::parse(&text).ok_or_else(|| RuleError::BadCidr(text.clone()))?),
        // Case-sensitive unless `|re|i`, as in Sigma (`|cased` changes nothing here).
        Op::Re => Pat::Re(Regex::new(&format!("{}{text}", mods.re.inline()))?),
        Op::Exists => Pat::Exists(matches!(v, Scalar::Bool(true))),
    })
}

fn item_matches(it: &CItem, ev: &Event<'_>) -> bool {
    let v = ev.get(it.field);
    if it.all {
        it.pats.iter().all(|p| pat_matches(p, v))
    } else {
        it.pats.iter().any(|p| pat_matches(p, v))
    }
}

fn pat_matches(p: &Pat, v: Option<&Val<'_>>) -> bool {
    match (p, v) {
        (Pat::Exists(want), v) => *want == v.is_some_and(|v| *v != Val::Null),
        (Pat::Null, v) => v.is_none_or(|v| *v == Val::Null),
        (_, None | Some(Val::Null)) => false,
        (p, Some(Val::List(items))) => items.iter().any(|i| scalar_matches(p, i)),
        (p, Some(v)) => scalar_matches(p, v),
    }
}

fn scalar_matches(p: &Pat, v: &Val<'_>) -> bool {
    match v {
        Val::Str(s) => str_matches(p, s),
        Val::Num(n) => match p {
            Pat::Eq {
                num: Some(want), ..
            } => n == want,
            Pat::Eq { num: None, .. } | Pat::Cidr(_) => false,
            _ => str_matches(p, &crate::event::fmt_num(*n)),
        },
        Val::Bool(b) => str_matches(p, if *b { "true" } else { "false" }),
        Val::Null | Val::List(_) => false,
    }
}

pub(crate) fn str_matches(p: &Pat, s: &str) -> bool {
    match p {
        Pat::Eq { text, num, cased } => {
            eq(s, text, *cased)
                || num.is_some_and(|want| s.trim().parse::<f64>().is_ok_and(|n| n == want))
        }
        Pat::Starts(t, cased) => {
            s.len() >= t.len()
                && s.as_bytes()
                    .get(..t.len())
                    .is_some_and(|h| eq_bytes(h, t.as_bytes(), *cased))
        }
        Pat::Ends(t, cased) => {
            s.len() >= t.len() && eq_bytes(&s.as_bytes()[s.len() - t.len()..], t.as_bytes(), *cased)
        }
        Pat::Contains(t, cased) => {
            let (h, n) = (s.as_bytes(), t.as_bytes());
            if *cased {
                memchr::memmem::find(h, n).is_some()
            } else {
                n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
            }
        }
        Pat::Glob(g, cased) => glob(g.as_bytes(), s.as_bytes(), !*cased),
        Pat::Cidr(net) => parse_ip(s).is_some_and(|ip| net.contains(ip)),
        Pat::Re(re) => re.is_match(s),
        Pat::Exists(_) | Pat::Null => false,
    }
}

fn eq(s: &str, t: &str, cased: bool) -> bool {
    eq_bytes(s.as_bytes(), t.as_bytes(), cased)
}

fn eq_bytes(h: &[u8], t: &[u8], cased: bool) -> bool {
    if cased {
        h == t
    } else {
        h.eq_ignore_ascii_case(t)
    }
}

/// Sigma wildcards: `*` any run, `?` one character, `\*` `\?` `\\` literal; any other
/// backslash is literal (Windows paths). `ci` folds ASCII case.
pub fn glob(pat: &[u8], s: &[u8], ci: bool) -> bool {
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    let same = |a: u8, b: u8| {
        if ci {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    while i < s.len() {
        let (tok, lit, width) = match (pat.get(p), pat.get(p + 1)) {
            (Some(b'\\'), Some(&c)) if matches!(c, b'*' | b'?' | b'\\') => (Some(c), true, 2),
            (Some(&c), _) => (Some(c), false, 1),
            (None, _) => (None, false, 0),
        };
        match tok {
            Some(b'*') if !lit => {
                star = Some((p + 1, i));
                p += 1;
                continue;
            }
            Some(b'?') if !lit => {
                p += 1;
                i += 1;
                continue;
            }
            Some(c) if same(c, s[i]) => {
                p += width;
                i += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, si)) => {
                p = sp;
                i = si + 1;
                star = Some((sp, si + 1));
            }
            None => return false,
        }
    }
    while pat.get(p) == Some(&b'*') {
        p += 1;
    }
    p == pat.len()
}

#[cfg(test)]
mod tests;
