#![allow(clippy::unwrap_used, clippy::panic)]

use std::borrow::Cow;

use super::*;
use crate::rule::parse_rules;

fn compile(detection: &str) -> (Compiled, Schema) {
    let text = format!("title: t\nid: x\ndetection:\n{detection}");
    let (rules, errs) = parse_rules(&text, "t");
    assert!(errs.is_empty(), "{errs:?}");
    let mut schema = Schema::new();
    let c = Compiled::new(&rules[0], &mut schema).unwrap();
    (c, schema)
}

fn ev<'a>(schema: &Schema, fields: &[(&str, Val<'a>)]) -> Event<'a> {
    let mut e = Event::new(schema);
    for (k, v) in fields {
        e.set(schema.id(k).unwrap(), v.clone());
    }
    e
}

fn s(x: &str) -> Val<'_> {
    Val::Str(Cow::Borrowed(x))
}

#[test]
fn case_insensitive_by_default_cased_on_request() {
    let (c, sc) = compile("  sel:\n    process.name: ollama\n  condition: sel\n");
    assert!(c.matches(&ev(&sc, &[("process.name", s("OLLAMA"))])));
    let (c, sc) = compile("  sel:\n    process.name|cased: ollama\n  condition: sel\n");
    assert!(!c.matches(&ev(&sc, &[("process.name", s("Ollama"))])));
    assert!(c.matches(&ev(&sc, &[("process.name", s("ollama"))])));
}

#[test]
fn numbers_and_numeric_text() {
    let (c, sc) = compile("  sel:\n    destination.port: 11434\n  condition: sel\n");
    assert!(c.matches(&ev(&sc, &[("destination.port", Val::Num(11434.0))])));
    assert!(c.matches(&ev(&sc, &[("destination.port", s("11434"))])));
    assert!(!c.matches(&ev(&sc, &[("destination.port", s("11435"))])));
    assert!(!c.matches(&ev(&sc, &[])));
}

#[test]
fn booleans_as_text() {
    let (c, sc) = compile("  sel:\n    winlog.event_data.Initiated: false\n  condition: sel\n");
    assert!(c.matches(&ev(&sc, &[("winlog.event_data.Initiated", s("false"))])));
    assert!(c.matches(&ev(
        &sc,
        &[("winlog.event_data.Initiated", Val::Bool(false))]
    )));
    assert!(!c.matches(&ev(
        &sc,
        &[("winlog.event_data.Initiated", Val::Bool(true))]
    )));
}

#[test]
fn modifiers() {
    let (c, sc) = compile("  sel:\n    url.path|startswith: /api/pu\n    process.executable|endswith: '\\ollama.exe'\n    user.name|contains: DMI\n  condition: sel\n");
    let good = [
        ("url.path", s("/api/pull")),
        ("process.executable", s("C:\\Users\\a\\Ollama.EXE")),
        ("user.name", s("admin")),
    ];
    assert!(c.matches(&ev(&sc, &good)));
    let bad = [
        ("url.path", s("/api/chat")),
        ("process.executable", s("C:\\x\\ollama.exe")),
        ("user.name", s("admin")),
    ];
    assert!(!c.matches(&ev(&sc, &bad)));

    let (c, sc) = compile(
        "  sel:\n    process.command_line|contains|all: [serve, '--host']\n  condition: sel\n",
    );
    assert!(c.matches(&ev(
        &sc,
        &[("process.command_line", s("ollama serve --host 0.0.0.0"))]
    )));
    assert!(!c.matches(&ev(&sc, &[("process.command_line", s("ollama serve"))])));

    let (c, sc) = compile("  sel:\n    dns.question.name|re: '^evil[0-9]+\\.'\n  condition: sel\n");
    assert!(c.matches(&ev(&sc, &[("dns.question.name", s("evil42.example"))])));
    assert!(!c.matches(&ev(&sc, &[("dns.question.name", s("EVIL42.example"))])));
    assert!(!c.matches(&ev(&sc, &[("dns.question.name", s("notevil42.example"))])));
}

#[test]
fn wildcards() {
    let (c, sc) = compile("  sel:\n    dns.question.name: '*.cloudflare.com'\n  condition: sel\n");
    assert!(c.matches(&ev(&sc, &[("dns.question.name", s("x.R2.Cloudflare.com"))])));
    assert!(!c.matches(&ev(&sc, &[("dns.question.name", s("cloudflare.com.evil"))])));
    assert!(glob(b"a?c", b"abc", false));
    assert!(!glob(b"a\\*c", b"abc", false));
    assert!(glob(b"a\\*c", b"a*c", false));
    assert!(glob(b"*a*b*", b"xxaxxbxx", false));
    assert!(!glob(b"*a*b", b"xxaxxbxx", false));
    // Sigma: `\*` is a literal star, so a directory wildcard is written `\\*`.
    assert!(glob(br"C:\Windows\\*", br"C:\Windows\x", false));
    assert!(!glob(br"C:\Windows\*", br"C:\Windows\x", false));
    assert!(glob(br"C:\Windows\x", br"C:\Windows\x", false));
}

#[test]
fn cidr_mapped_and_v6() {
    let (c, sc) =
        compile("  sel:\n    source.ip|cidr: [10.0.0.0/8, 'fc00::/7']\n  condition: sel\n");
    assert!(c.matches(&ev(&sc, &[("source.ip", s("10.1.1.1"))])));
    assert!(c.matches(&ev(&sc, &[("source.ip", s("::ffff:10.1.1.1"))])));
    assert!(c.matches(&ev(&sc, &[("source.ip", s("fd00::5"))])));
    assert!(!c.matches(&ev(&sc, &[("source.ip", s("2001:db8::1"))])));
    assert!(!c.matches(&ev(&sc, &[("source.ip", s("garbage"))])));
    assert!(!c.matches(&ev(&sc, &[("source.ip", Val::Num(10.0))])));
}

#[test]
fn null_safety_and_exists() {
    let (c, sc) = compile("  sel:\n    a: x\n  f:\n    b: y\n  condition: sel and not f\n");
    assert!(
        c.matches(&ev(&sc, &[("a", s("x"))])),
        "missing b: filter does not match, so `not f` holds"
    );
    assert!(!c.matches(&ev(&sc, &[("a", Val::Null)])));
    let (c, sc) = compile("  sel:\n    a|exists: false\n  condition: sel\n");
    assert!(c.matches(&ev(&sc, &[])));
    assert!(c.matches(&ev(&sc, &[("a", Val::Null)])));
    assert!(!c.matches(&ev(&sc, &[("a", s(""))])));
    let (c, sc) = compile("  sel:\n    a: null\n  condition: sel\n");
    assert!(c.matches(&ev(&sc, &[])));
    assert!(!c.matches(&ev(&sc, &[("a", s("v"))])));
}

#[test]
fn lists_and_quantifiers() {
    let (c, sc) = compile("  sel:\n    process.args: --help\n  condition: sel\n");
    assert!(c.matches(&ev(
        &sc,
        &[("process.args", Val::List(vec![s("ollama"), s("--help")]))]
    )));
    assert!(!c.matches(&ev(
        &sc,
        &[("process.args", Val::List(vec![s("ollama"), s("serve")]))]
    )));
    let (c, sc) = compile("  s_a:\n    a: 1\n  s_b:\n    b: 1\n  condition: all of s_*\n");
    assert!(c.matches(&ev(&sc, &[("a", Val::Num(1.0)), ("b", Val::Num(1.0))])));
    assert!(!c.matches(&ev(&sc, &[("a", Val::Num(1.0))])));
    let (c, sc) = compile("  s_a:\n    a: 1\n  s_b:\n    b: 1\n  condition: 1 of them\n");
    assert!(c.matches(&ev(&sc, &[("b", Val::Num(1.0))])));
    assert!(!c.matches(&ev(&sc, &[])));
}

/// Regression (review item 4): `\*`, `\?` and `\\` are the characters themselves under every
/// modifier, not only in values that also hold a real wildcard.
#[test]
fn sigma_escapes_match_literally_for_every_modifier() {
    let m = |sel: &str, v: &str| {
        let (c, sc) = compile(&format!("  sel:\n    {sel}\n  condition: sel\n"));
        c.matches(&ev(&sc, &[("s", s(v))]))
    };
    assert!(m(r"s: 'abc\*def'", "abc*def"));
    assert!(!m(r"s: 'abc\*def'", "abcXdef"));
    assert!(!m(r"s: 'abc\*def'", r"abc\*def"));
    assert!(m(r"s: 'abc\?def'", "ABC?DEF"));
    assert!(!m(r"s: 'abc\?def'", "abcxdef"));
    assert!(m(r"s|contains: '\*'", "a*b"));
    assert!(!m(r"s|contains: '\*'", "ab"));
    assert!(m(r"s|startswith: '\?x'", "?xy"));
    assert!(m(
        r"s|endswith: 'Files\\Ollama'",
        r"C:\Program Files\Ollama"
    ));
    assert!(m(
        r"s|contains: 'Program Files\\Ollama'",
        r"C:\Program Files\Ollama\x"
    ));
    assert!(m(
        r"s: '*Program Files\\Ollama*'",
        r"C:\Program Files\Ollama\x"
    ));
    // Other backslashes are literal, also at the end of a value a wildcard is glued to.
    assert!(m(r"s|startswith: 'C:\Temp\'", r"C:\Temp\x"));
    assert!(m(r"s|contains: 'a*\'", r"xa-\y"));
    assert!(m(r"s: 'C:\Users\x'", r"c:\users\X"));
    // An escaped backslash before a wildcard: the backslash, then any run.
    assert!(m(r"s: 'dir\\*'", r"dir\anything"));
    assert!(!m(r"s: 'dir\\*'", "dir"));
    // Numbers written with escapes are still text.
    assert!(m(r"s: '1\*2'", "1*2"));
}

/// Regression (review item 14): `re` is case-sensitive as in Sigma and pySigma; `|re|i`,
/// `|re|m` and `|re|s` set the flags.
#[test]
fn regular_expressions_are_cased_unless_i() {
    let m = |sel: &str, v: &str| {
        let (c, sc) = compile(&format!("  sel:\n    {sel}\n  condition: sel\n"));
        c.matches(&ev(&sc, &[("process.name", s(v))]))
    };
    assert!(m("process.name|re: '^ollama'", "ollama.exe"));
    assert!(!m("process.name|re: '^ollama'", "OLLAMA.EXE"));
    assert!(m("process.name|re|i: '^ollama'", "OLLAMA.EXE"));
    assert!(m("process.name|re|ignorecase: '^ollama'", "Ollama"));
    assert!(!m("process.name|re: '^b$'", "a\nb"));
    assert!(m("process.name|re|m: '^b$'", "a\nb"));
    assert!(!m("process.name|re: 'a.b'", "a\nb"));
    assert!(m("process.name|re|s: 'a.b'", "a\nb"));
    assert!(m("process.name|re|i|s: 'A.B'", "a\nb"));
}
