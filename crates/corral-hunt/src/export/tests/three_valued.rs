//! The EQL and SPL that `export` writes, read back and evaluated as those languages do for a
//! field an event lacks: the field is null, a comparison or function of null is null, `and`,
//! `or` and `not` follow three-valued (Kleene) logic, and the query keeps an event only when
//! it is true. Only `== null`, `!= null` (EQL), `isnull()` and `isnotnull()` (SPL) answer a
//! missing field with true or false. Present values are compared as the exports intend (text
//! case-insensitively after `:`, `in~`, `like~` and `lower()`), so that the answers can be
//! compared with hunt's matcher event by event.

use std::borrow::Cow;
use std::collections::BTreeMap;

use regex::Regex;

use crate::event::{fmt_num, Event, Schema, Val};
use crate::ip::{parse_ip, Net};

/// A value in an event or a query; an event's missing field reads as `Null`.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum V {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
}

impl V {
    fn text(&self) -> Option<String> {
        match self {
            V::Null => None,
            V::Bool(b) => Some(b.to_string()),
            V::Num(n) => Some(fmt_num(*n)),
            V::Str(s) => Some(s.clone()),
        }
    }
}

/// An event: the fields it has.
pub(super) type Doc = BTreeMap<String, V>;

/// `doc` as hunt's matcher sees it.
pub(super) fn event<'a>(schema: &Schema, doc: &'a Doc) -> Event<'a> {
    let mut e = Event::new(schema);
    for (k, v) in doc {
        let val = match v {
            V::Null => Val::Null,
            V::Bool(b) => Val::Bool(*b),
            V::Num(n) => Val::Num(*n),
            V::Str(s) => Val::Str(Cow::Borrowed(s)),
        };
        if let Some(id) = schema.id(k) {
            e.set(id, val);
        }
    }
    e
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    Comma,
    Op(&'static str),
    Str(String),
    Num(f64),
    Field(String),
    Word(String),
}

fn lex(s: &str) -> Vec<Tok> {
    let c: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    // Text up to `end`, with backslash escapes.
    let quoted = |i: &mut usize, end: char| {
        let mut t = String::new();
        *i += 1;
        while let Some(&ch) = c.get(*i) {
            *i += 1;
            match ch {
                '\\' => {
                    let n = c.get(*i).copied().unwrap_or('\\');
                    *i += 1;
                    t.push(match n {
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        n => n,
                    });
                }
                ch if ch == end => break,
                ch => t.push(ch),
            }
        }
        t
    };
    while let Some(&ch) = c.get(i) {
        match ch {
            ch if ch.is_whitespace() => i += 1,
            '(' | ')' | ',' | ':' => {
                out.push(match ch {
                    '(' => Tok::Open,
                    ')' => Tok::Close,
                    ',' => Tok::Comma,
                    _ => Tok::Op(":"),
                });
                i += 1;
            }
            '=' | '!' => {
                assert_eq!(c.get(i + 1), Some(&'='), "{s}");
                out.push(Tok::Op(if ch == '=' { "==" } else { "!=" }));
                i += 2;
            }
            '"' => out.push(Tok::Str(quoted(&mut i, '"'))),
            '\'' => out.push(Tok::Field(quoted(&mut i, '\''))),
            '`' => out.push(Tok::Field(quoted(&mut i, '`'))),
            ch if ch.is_ascii_digit()
                || (ch == '-' && c.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while c.get(i).is_some_and(|d| d.is_ascii_digit() || *d == '.') {
                    i += 1;
                }
                let n: String = c[start..i].iter().collect();
                out.push(Tok::Num(n.parse().unwrap_or(f64::NAN)));
            }
            _ => {
                let start = i;
                while c
                    .get(i)
                    .is_some_and(|d| !d.is_whitespace() && !"(),:=!\"'`".contains(*d))
                {
                    i += 1;
                }
                out.push(Tok::Word(c[start..i].iter().collect()));
            }
        }
    }
    out
}

#[derive(Debug, Clone)]
pub(super) enum Operand {
    Field(String),
    Lit(V),
    Call(String, Vec<Operand>),
}

/// A parsed query condition.
#[derive(Debug, Clone)]
pub(super) enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Cmp(Operand, &'static str, Operand),
    /// `in`, `in~`, `like`, `like~`, `regex`, `regex~` with their list.
    Lookup(Operand, String, Vec<Operand>),
    Pred(String, Vec<Operand>),
}

struct P {
    toks: Vec<Tok>,
    pos: usize,
}

impl P {
    fn peek_word(&self, words: &[&str]) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Word(w)) if words.contains(&w.as_str()))
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Expr {
        let mut xs = vec![self.and()];
        while self.peek_word(&["or", "OR"]) {
            self.pos += 1;
            xs.push(self.and());
        }
        if xs.len() == 1 {
            xs.remove(0)
        } else {
            Expr::Or(xs)
        }
    }

    fn and(&mut self) -> Expr {
        let mut xs = vec![self.not()];
        while self.peek_word(&["and", "AND"]) {
            self.pos += 1;
            xs.push(self.not());
        }
        if xs.len() == 1 {
            xs.remove(0)
        } else {
            Expr::And(xs)
        }
    }

    fn not(&mut self) -> Expr {
        if self.peek_word(&["not", "NOT"]) {
            self.pos += 1;
            return Expr::Not(Box::new(self.not()));
        }
        if self.toks.get(self.pos) == Some(&Tok::Open) {
            self.pos += 1;
            let e = self.or();
            assert_eq!(self.next(), Some(Tok::Close));
            return e;
        }
        let left = self.value();
        match self.toks.get(self.pos).cloned() {
            Some(Tok::Op(op)) => {
                self.pos += 1;
                Expr::Cmp(left, op, self.value())
            }
            Some(Tok::Word(w))
                if ["in", "in~", "like", "like~", "regex", "regex~"].contains(&w.as_str()) =>
            {
                self.pos += 1;
                let list = if self.toks.get(self.pos) == Some(&Tok::Open) {
                    self.pos += 1;
                    self.list()
                } else {
                    vec![self.value()]
                };
                Expr::Lookup(left, w, list)
            }
            _ => match left {
                Operand::Call(name, args) => Expr::Pred(name, args),
                other => panic!("not a condition: {other:?}"),
            },
        }
    }

    /// Values up to and including `)`.
    fn list(&mut self) -> Vec<Operand> {
        let mut v = Vec::new();
        loop {
            v.push(self.value());
            match self.next() {
                Some(Tok::Comma) => {}
                Some(Tok::Close) => return v,
                t => panic!("expected , or ) in a list, found {t:?}"),
            }
        }
    }

    fn value(&mut self) -> Operand {
        match self.next() {
            Some(Tok::Str(s)) => Operand::Lit(V::Str(s)),
            Some(Tok::Num(n)) => Operand::Lit(V::Num(n)),
            Some(Tok::Field(f)) => Operand::Field(f),
            Some(Tok::Word(w)) if w == "null" => Operand::Lit(V::Null),
            Some(Tok::Word(w)) if w == "true" || w == "false" => Operand::Lit(V::Bool(w == "true")),
            Some(Tok::Word(w)) if self.toks.get(self.pos) == Some(&Tok::Open) => {
                self.pos += 1;
                Operand::Call(w, self.list())
            }
            Some(Tok::Word(w)) => Operand::Field(w),
            t => panic!("expected a value, found {t:?}"),
        }
    }
}

/// Parses the condition of an EQL query (`category where COND`) or an SPL search
/// (`... | where COND`, up to the next pipe).
pub(super) fn parse_query(text: &str) -> Expr {
    let q = text
        .lines()
        .find(|l| !l.starts_with("//") && !l.starts_with("```"))
        .unwrap_or_default();
    let cond = q.split_once(" where ").map_or(q, |(_, c)| c);
    let mut p = P {
        toks: lex(cond),
        pos: 0,
    };
    let e = p.or();
    assert_eq!(p.pos, p.toks.len(), "trailing text in {cond}");
    e
}

fn value(v: &Operand, d: &Doc) -> V {
    match v {
        Operand::Field(f) => d.get(f).cloned().unwrap_or(V::Null),
        Operand::Lit(x) => x.clone(),
        Operand::Call(name, args) if name == "lower" && args.len() == 1 => value(&args[0], d)
            .text()
            .map_or(V::Null, |t| V::Str(t.to_lowercase())),
        Operand::Call(name, args) if name == "length" && args.len() == 1 => value(&args[0], d)
            .text()
            .map_or(V::Null, |t| V::Num(t.chars().count() as f64)),
        Operand::Call(name, _) => panic!("no value function {name}"),
    }
}

fn eq(a: &V, b: &V, ci: bool) -> Option<bool> {
    Some(match (a, b) {
        (V::Null, _) | (_, V::Null) => return None,
        (V::Num(x), V::Num(y)) => x == y,
        (V::Bool(x), V::Bool(y)) => x == y,
        _ => {
            let (x, y) = (a.text()?, b.text()?);
            if ci {
                x.eq_ignore_ascii_case(&y)
            } else {
                x == y
            }
        }
    })
}

fn kleene_and(xs: impl Iterator<Item = Option<bool>>) -> Option<bool> {
    let mut unknown = false;
    for x in xs {
        match x {
            Some(false) => return Some(false),
            None => unknown = true,
            Some(true) => {}
        }
    }
    (!unknown).then_some(true)
}

fn kleene_or(xs: impl Iterator<Item = Option<bool>>) -> Option<bool> {
    let mut unknown = false;
    for x in xs {
        match x {
            Some(true) => return Some(true),
            None => unknown = true,
            Some(false) => {}
        }
    }
    (!unknown).then_some(false)
}

fn regex(pattern: &str, ci: bool) -> Regex {
    let src = if ci {
        format!("(?i){pattern}")
    } else {
        pattern.to_string()
    };
    Regex::new(&src).unwrap_or_else(|e| panic!("{pattern}: {e}"))
}

/// An EQL wildcard pattern (`:` and `like`): `*` any run, `?` one character, every other
/// character itself (a backslash too: EQL wildcards have no escape).
fn eql_wildcard(pattern: &str, ci: bool) -> Regex {
    let mut re = String::from("^");
    for c in pattern.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex(&re, ci)
}

/// The three-valued answer of `e` for the event `d`.
pub(super) fn eval(e: &Expr, d: &Doc) -> Option<bool> {
    match e {
        Expr::And(xs) => kleene_and(xs.iter().map(|x| eval(x, d))),
        Expr::Or(xs) => kleene_or(xs.iter().map(|x| eval(x, d))),
        Expr::Not(x) => eval(x, d).map(|b| !b),
        // EQL's test of presence.
        Expr::Cmp(a, op, Operand::Lit(V::Null)) => {
            let missing = value(a, d) == V::Null;
            Some(if *op == "==" { missing } else { !missing })
        }
        Expr::Cmp(a, op, b) => {
            let (a, b) = (value(a, d), value(b, d));
            match *op {
                "==" => eq(&a, &b, false),
                "!=" => eq(&a, &b, false).map(|x| !x),
                // EQL's `:`: case-insensitive, with wildcards.
                _ => Some(eql_wildcard(&b.text()?, true).is_match(&a.text()?)),
            }
        }
        Expr::Lookup(a, how, list) => {
            let a = value(a, d);
            let text = a.text()?;
            let ci = how.ends_with('~');
            let mut any = false;
            for v in list {
                let v = value(v, d);
                any |= match how.trim_end_matches('~') {
                    "in" => eq(&a, &v, ci)?,
                    "like" => eql_wildcard(&v.text()?, ci).is_match(&text),
                    // Lucene: the whole text, `.` any character (a newline too).
                    _ => regex(&format!("(?s)^(?:{})$", v.text()?), ci).is_match(&text),
                };
            }
            Some(any)
        }
        Expr::Pred(name, args) => {
            let v: Vec<V> = args.iter().map(|a| value(a, d)).collect();
            let ci = name.ends_with('~');
            let fold = |s: String| if ci { s.to_lowercase() } else { s };
            match name.trim_end_matches('~') {
                "isnull" => Some(v[0] == V::Null),
                "isnotnull" => Some(v[0] != V::Null),
                "cidrmatch" => {
                    // EQL: cidrmatch(field, net...); SPL: cidrmatch("net", field).
                    let (ip, nets) = if matches!(args[0], Operand::Field(_)) {
                        (&v[0], &v[1..])
                    } else {
                        (&v[1], &v[..1])
                    };
                    let ip = parse_ip(&ip.text()?);
                    let mut any = false;
                    for n in nets {
                        let net = Net::parse(&n.text()?).unwrap_or_else(|| panic!("{n:?}"));
                        any |= ip.is_some_and(|ip| net.contains(ip));
                    }
                    Some(any)
                }
                "match" => Some(regex(&v[1].text()?, false).is_match(&v[0].text()?)),
                "startsWith" => Some(fold(v[0].text()?).starts_with(&fold(v[1].text()?))),
                "endsWith" => Some(fold(v[0].text()?).ends_with(&fold(v[1].text()?))),
                "stringContains" => Some(fold(v[0].text()?).contains(&fold(v[1].text()?))),
                other => panic!("no condition function {other}"),
            }
        }
    }
}
