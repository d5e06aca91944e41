#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::builtin;

fn elastic() -> (Rule, &'static str) {
    let rules = builtin::rules().unwrap();
    let r = rules
        .into_iter()
        .find(|r| r.id == builtin::ELASTIC_RULE_ID)
        .unwrap();
    (r, builtin::RULES[0].1)
}

#[test]
fn eql_of_the_elastic_rule_keeps_its_semantics() {
    let (r, src) = elastic();
    let x = export(&r, "elastic", src, ExportFormat::Eql).unwrap();
    let q = x.text.lines().last().unwrap();
    assert!(q.starts_with("network where "), "{q}");
    assert!(
        q.contains(r#"event.action == "connection_accepted""#),
        "{q}"
    );
    assert!(
        q.contains(r#"process.name in ("ollama", "ollama.exe")"#),
        "{q}"
    );
    assert!(q.contains("destination.port == 11434"), "{q}");
    assert!(q.contains("source.ip != null"), "{q}");
    // An ECS ip field: EQL refuses `:` and `in` of strings on it.
    assert!(q.contains(r#"not cidrmatch(source.ip, "0.0.0.0")"#), "{q}");
    assert!(
        q.contains(r#"not cidrmatch(source.ip, "10.0.0.0/8", "#),
        "{q}"
    );
    assert_eq!(x.file_name, "elastic.eql");
}

#[test]
fn eql_compares_numeric_keyword_fields_with_strings() {
    // ECS `event.code` is a keyword: `event.code == 3` fails EQL's type check in Elasticsearch.
    let rules = builtin::rules().unwrap();
    for (id, code) in [
        ("0f6d3c8a-2b71-4e95-a6c4-7e1b2d9f8a21", "3"),
        ("6a1f9d0c-7b28-4c53-9e47-c2d8e5f1a254", "5158"),
    ] {
        let r = rules.iter().find(|r| r.id == id).unwrap();
        let q = export(r, "r", "", ExportFormat::Eql).unwrap().text;
        assert!(q.contains(&format!(r#"event.code : "{code}""#)), "{q}");
        assert!(!q.contains(&format!("event.code == {code}")), "{q}");
        // Ports are numbers in ECS (long) and stay numbers.
        if code == "3" {
            assert!(q.contains("destination.port == 11434"), "{q}");
            assert!(
                q.contains(r#"cidrmatch(source.ip, "0.0.0.0", "::")"#),
                "{q}"
            );
            assert!(!q.contains("source.ip in"), "{q}");
        }
    }
}

#[test]
fn kql_and_spl() {
    let (r, src) = elastic();
    let k = export(&r, "e", src, ExportFormat::Kql).unwrap().text;
    assert!(k.contains(r#"process.name: "ollama""#), "{k}");
    assert!(k.contains("source.ip: *"), "{k}");
    assert!(k.contains(r#"not (source.ip: "10.0.0.0/8" or "#), "{k}");
    let s = export(&r, "e", src, ExportFormat::Spl).unwrap().text;
    assert!(
        s.contains(r#"'event.action'=="connection_accepted""#),
        "{s}"
    );
    assert!(s.contains(r#"cidrmatch("10.0.0.0/8", 'source.ip')"#), "{s}");
    assert!(s.contains("isnotnull('source.ip')"), "{s}");
    assert!(s.starts_with("```"), "{s}");
}

fn rule(detection: &str) -> Rule {
    let text = format!("title: t\nid: r\ndetection:\n{detection}");
    let (mut rules, errs) = crate::rule::parse_rules(&text, "t");
    assert!(errs.is_empty(), "{errs:?}");
    rules.remove(0)
}

/// The query line of an export (after the comment lines).
fn query(r: &Rule, f: ExportFormat) -> String {
    let text = export(r, "r", "", f).unwrap().text;
    let q = text
        .lines()
        .find(|l| !l.starts_with("//") && !l.starts_with("```"))
        .unwrap();
    q.to_string()
}

/// Under a `not`, a test of a field the event may lack is guarded by the field's presence:
/// EQL and SPL make a test of a missing field null, and `not null` never matches, where hunt
/// (and Sigma) take the test as false and the `not` as true. KQL's queries are true or false
/// already and stay as they were.
#[test]
fn a_negated_test_of_a_field_that_may_be_missing_is_guarded() {
    let r = rule("  selection:\n    a: x\n  filter:\n    b: [y, w]\n    c|startswith: z\n  condition: selection and not filter\n");
    assert_eq!(
        query(&r, ExportFormat::Eql),
        r#"any where (a : "x" and not ((b != null and b in~ ("y", "w")) and (c != null and startsWith~(c, "z"))))"#
    );
    assert_eq!(
        query(&r, ExportFormat::Spl),
        r#"index=* | where (lower('a')=="x" AND NOT ((isnotnull('b') AND (lower('b')=="y" OR lower('b')=="w")) AND (isnotnull('c') AND match('c', "(?i)^z"))))"#
    );
    assert_eq!(
        query(&r, ExportFormat::Kql),
        r#"(a: "x" and not ((b: "y" or b: "w") and c: z*))"#
    );
    // Outside a `not`, null is as good as false: nothing is guarded.
    let plain = rule("  selection:\n    b: [y, w]\n  condition: selection\n");
    assert_eq!(
        query(&plain, ExportFormat::Eql),
        r#"any where b in~ ("y", "w")"#
    );
    assert_eq!(
        query(&plain, ExportFormat::Spl),
        r#"index=* | where (lower('b')=="y" OR lower('b')=="w")"#
    );
}

/// A field the un-negated part of the condition requires is present wherever the query can
/// match, so its tests under the `not` stay as they are: the Elastic rule keeps
/// `not cidrmatch(source.ip, ...)` (its selection has `source.ip|exists: true`). A `not`
/// inside a `not` learns nothing from the conjunction it sits in.
#[test]
fn no_guard_for_a_field_the_rest_of_the_condition_requires() {
    let (r, src) = elastic();
    let q = export(&r, "e", src, ExportFormat::Eql).unwrap().text;
    assert!(
        q.contains(r#" and not cidrmatch(source.ip, "10.0.0.0/8", "#),
        "{q}"
    );
    assert!(!q.contains("source.ip != null and"), "{q}");
    let s = export(&r, "e", src, ExportFormat::Spl).unwrap().text;
    assert!(
        s.contains(r#"AND NOT (cidrmatch("10.0.0.0/8", 'source.ip') OR "#),
        "{s}"
    );
    assert!(!s.contains("isnotnull('source.ip') AND"), "{s}");

    let nested = rule(
        "  sel1:\n    a: x\n  sel2:\n    b: y\n  condition: sel2 and not (sel1 and not sel2)\n",
    );
    assert_eq!(
        query(&nested, ExportFormat::Eql),
        r#"any where (b : "y" and not ((a != null and a : "x") and not b : "y"))"#
    );
}

/// Tests that answer a missing field themselves (`null`, `|exists`) are not guarded.
#[test]
fn null_and_exists_tests_are_not_guarded() {
    let r = rule("  selection:\n    a: x\n  filter:\n    - d: [null, w]\n    - e|exists: true\n    - f|exists: false\n  condition: selection and not filter\n");
    assert_eq!(
        query(&r, ExportFormat::Eql),
        r#"any where (a : "x" and not ((d == null or d : "w") or e != null or f == null))"#
    );
    assert_eq!(
        query(&r, ExportFormat::Spl),
        r#"index=* | where (lower('a')=="x" AND NOT ((isnull('d') OR lower('d')=="w") OR isnotnull('e') OR isnull('f')))"#
    );
}

/// The shell rule's probe exclusion, in hunt and in the EQL and SPL exports: a bare
/// `NAME --version` is no alert, with or without `process.args`/`process.args_count` (Sysmon
/// has only the command line); the flag after other arguments, a lone argument
/// `bash --version`, tabs and cmd.exe are alerts.
#[test]
fn the_shell_rule_excludes_only_a_bare_probe() {
    let rules = builtin::rules().unwrap();
    let r = rules
        .iter()
        .find(|r| r.id == "2d7c4a93-1e56-4b8f-a0c2-8f3b6d9e1365")
        .unwrap();
    let base = |name: &str, line: Option<&str>, argc: Option<f64>| {
        let mut d = Doc::new();
        d.insert("event.type".into(), V::Str("start".into()));
        d.insert("process.parent.name".into(), V::Str("ollama".into()));
        d.insert("process.name".into(), V::Str(name.into()));
        if let Some(l) = line {
            d.insert("process.command_line".into(), V::Str(l.into()));
        }
        if let Some(n) = argc {
            d.insert("process.args_count".into(), V::Num(n));
        }
        d
    };
    let cases = [
        (base("bash", None, None), true),
        (base("bash", Some("bash --version"), None), false),
        (base("bash", Some("bash --version"), Some(2.0)), false),
        (base("python3", Some("python3 --HELP"), Some(2.0)), false),
        (base("bash", Some("bash --version"), Some(1.0)), true),
        (
            base("bash", Some("bash -c curl|sh --help"), Some(4.0)),
            true,
        ),
        (base("bash", Some("bash -c id --help"), None), true),
        (base("python3", Some("python3 -c x --version"), None), true),
        (base("bash", Some("bash\t-c\tid --version"), None), true),
        (base("bash", Some("bash -v"), Some(2.0)), true),
        (base("cmd.exe", Some("cmd.exe --help"), Some(2.0)), true),
    ];
    let mut schema = crate::event::Schema::new();
    let compiled = crate::rule::matcher::Compiled::new(r, &mut schema).unwrap();
    let queries: Vec<(ExportFormat, String)> = [ExportFormat::Eql, ExportFormat::Spl]
        .into_iter()
        .map(|f| (f, query(r, f)))
        .collect();
    for (doc, want) in &cases {
        let got = compiled.matches(&three_valued::event(&schema, doc));
        assert_eq!(got, *want, "hunt: {doc:?}");
        for (f, q) in &queries {
            let got = three_valued::eval(&three_valued::parse_query(q), doc);
            assert_eq!(got == Some(true), *want, "{f:?}: {doc:?}\n{q}");
        }
    }
}

#[test]
fn thresholds_and_unsupported() {
    let rules = builtin::rules().unwrap();
    let v = rules
        .iter()
        .find(|r| r.id == builtin::VOLUME_RULE_ID)
        .unwrap();
    let s = export(v, "v", "", ExportFormat::Spl).unwrap();
    assert!(s.text.contains("| bin _time span=300s"), "{}", s.text);
    assert!(s.text.contains("| where count > 120"));
    let k = export(v, "v", "", ExportFormat::Kql).unwrap();
    assert_eq!(k.notes.len(), 2, "{:?}", k.notes);
    assert!(k.notes.iter().any(|n| n.contains("KQL has no thresholds")));
    let (re_rule, _) = crate::rule::parse_rules(
        "title: t\nid: r\ndetection:\n  sel:\n    a|re: x+\n  condition: sel\n",
        "t",
    );
    assert!(export(&re_rule[0], "r", "", ExportFormat::Kql).is_err());
    let e = export(&re_rule[0], "r", "", ExportFormat::Eql).unwrap();
    assert!(e.text.contains(r#"a regex ".*x+.*""#), "{}", e.text);
}

#[test]
fn spl_globs_escape() {
    assert_eq!(
        glob_regex(&crate::rule::value::pieces("*.example.com")),
        r"^.*\.example\.com$"
    );
    assert_eq!(
        glob_regex(&crate::rule::value::pieces(r"a\*b?")),
        r"^a\*b.$"
    );
}

/// KQL compares keyword fields in the case written. A rule that ignores case says so in a note
/// naming the fields; one that also compares a field in exact case (the Windows variant of the
/// Elastic rule: `selection and not filter_exact`) cannot be exported at all, since in KQL the
/// two tests are one and the query would never match.
#[test]
fn kql_says_where_case_is_no_longer_ignored() {
    let rules = builtin::rules().unwrap();
    let (r, src) = elastic();
    // Exact case everywhere: nothing to say.
    let k = export(&r, "e", src, ExportFormat::Kql).unwrap();
    assert!(k.notes.is_empty(), "{:?}", k.notes);
    let v = rules
        .iter()
        .find(|r| r.id == builtin::VOLUME_RULE_ID)
        .unwrap();
    let k = export(v, "v", "", ExportFormat::Kql).unwrap();
    let note = k
        .notes
        .iter()
        .find(|n| n.contains("with their case"))
        .unwrap();
    assert!(note.contains("event.dataset"), "{note}");
    assert!(!note.contains("destination.port"), "{note}");
    let windows = rules
        .iter()
        .find(|r| r.selections.iter().any(|s| s.name == "filter_exact"))
        .expect("the Windows variant of the Elastic rule");
    let err = export(windows, "w", "", ExportFormat::Kql).unwrap_err();
    assert!(err.to_string().contains("KQL has no way to tell"), "{err}");
    assert!(export(windows, "w", "", ExportFormat::Eql).is_ok());
}

mod three_valued;

use three_valued::{Doc, V};

/// Sigma wildcards made concrete and escapes resolved: a value the pattern matches.
fn unglob(s: &str) -> String {
    crate::rule::value::pieces(s)
        .into_iter()
        .map(|p| match p {
            crate::rule::value::Piece::Lit(c) => c,
            crate::rule::value::Piece::Star => 'x',
            crate::rule::value::Piece::One => 'y',
        })
        .collect()
}

/// The values tried for each field `rule` names: missing, up to three that pass one of the
/// rule's tests of it, and one that passes none of them.
fn candidates(rule: &Rule) -> Vec<(String, Vec<Option<V>>)> {
    let mut by_field: Vec<(String, Vec<Option<V>>)> = Vec::new();
    let items = rule
        .selections
        .iter()
        .flat_map(|s| s.alternatives.iter().flatten());
    for it in items {
        let i = match by_field.iter().position(|(f, _)| *f == it.field) {
            Some(i) => i,
            None => {
                by_field.push((it.field.clone(), vec![None]));
                by_field.len() - 1
            }
        };
        for v in &it.values {
            let s = v.text();
            let c = match (it.mods.op, v) {
                (_, Scalar::Null) | (Op::Exists | Op::Re, _) => continue,
                (Op::Eq, Scalar::Int(i)) => V::Num(*i as f64),
                (Op::Eq, Scalar::Float(f)) => V::Num(*f),
                (Op::Eq, Scalar::Bool(b)) => V::Bool(*b),
                (Op::Eq, _) => V::Str(unglob(&s)),
                (Op::StartsWith, _) => V::Str(format!("{}zz", unglob(&s))),
                (Op::EndsWith, _) => V::Str(format!("zz{}", unglob(&s))),
                (Op::Contains, _) => V::Str(format!("zz{}zz", unglob(&s))),
                (Op::Cidr, _) => V::Str(s.split('/').next().unwrap_or_default().to_string()),
            };
            let vals = &mut by_field[i].1;
            if vals.len() < 4 && !vals.contains(&Some(c.clone())) {
                vals.push(Some(c));
            }
        }
    }
    for (f, vals) in &mut by_field {
        let other = if f.ends_with(".ip") {
            V::Str("203.0.113.9".into())
        } else if vals.iter().any(|v| matches!(v, Some(V::Num(_)))) {
            V::Num(7.0)
        } else {
            V::Str("other".into())
        };
        vals.push(Some(other));
    }
    by_field
}

/// Every combination of the candidate values (each field missing or set).
fn events(rule: &Rule) -> Vec<Doc> {
    let fields = candidates(rule);
    let mut out = vec![Doc::new()];
    for (f, vals) in &fields {
        out = out
            .iter()
            .flat_map(|d| {
                vals.iter().map(move |v| {
                    let mut d = d.clone();
                    if let Some(v) = v {
                        d.insert(f.clone(), v.clone());
                    }
                    d
                })
            })
            .collect();
    }
    out
}

/// Conditions whose `not` covers fields that may be missing, beside the built-in rules.
const NEGATIONS: &[&str] = &[
    // Two fields under one `not`: neither is known to be present.
    "  selection:\n    a: x\n  filter:\n    b: y\n    c|startswith: z\n  condition: selection and not filter\n",
    // The selection requires `a` only in the first branch of the `or`.
    "  selection:\n    a|cased: x\n  filter:\n    a|endswith: x\n    b: [y, w]\n  other:\n    d: 1\n  condition: (selection and not filter) or other\n",
    // A `not` inside a `not`: the inner selection's field is not known present.
    "  sel1:\n    a: x\n  sel2:\n    b|contains: y\n  condition: not (sel1 and not sel2)\n",
    // Tests a missing field passes (null, exists: false) need no guard; exists: true none either.
    "  sel_a:\n    a: x\n  sel_b:\n    b: y\n  filter:\n    - d: [null, w]\n    - e|exists: true\n    - f|exists: false\n  condition: 1 of sel_* and not filter\n",
    // `all of` requires each selection's fields; `|all` with null can be false without the field.
    "  sel_a:\n    a: x\n  sel_b:\n    b: 11434\n  filter:\n    a|endswith: x\n    c|all: [null, v]\n    source.ip|cidr: 10.0.0.0/8\n  condition: all of sel_* and not filter\n",
];

/// Values with Sigma escapes under every modifier (review item 4): the exports must read
/// `\*`, `\?` and `\\` as the characters, as hunt does, and keep other backslashes.
const ESCAPES: &[&str] = &[
    "  sel:\n    a: 'abc\\*def'\n    b|contains: '\\?'\n  condition: sel\n",
    "  sel:\n    a|endswith: 'Files\\\\Ollama'\n    b|startswith: 'C:\\Temp\\'\n  condition: sel\n",
    "  sel:\n    a: '*x\\*y?'\n    b|cased: 'q\\?'\n  filter:\n    c|contains: 'a*\\'\n  condition: sel and not filter\n",
    "  sel:\n    a: ['k\\*', 'plain', 'C:\\dir\\\\*']\n    b|contains|cased: 'x*<y>'\n  condition: sel\n",
];

/// The EQL and SPL exports agree with hunt's matcher on every event built from each rule's
/// values, with every field it names missing or present: a rule's `not` over a field an event
/// lacks is true in hunt (and Sigma), so it must be true in the exports too, which EQL and SPL
/// evaluate with null for that field (see `three_valued`).
#[test]
fn eql_and_spl_exports_match_hunt_on_events_with_missing_fields() {
    let mut rules = builtin::rules().unwrap();
    for (i, detection) in NEGATIONS.iter().chain(ESCAPES).enumerate() {
        let text = format!("title: t{i}\nid: n{i}\ndetection:\n{detection}");
        let (mut r, errs) = crate::rule::parse_rules(&text, "t");
        assert!(errs.is_empty(), "{i}: {errs:?}");
        rules.append(&mut r);
    }
    let mut checked = 0u64;
    let mut negated_missing = 0u64;
    for rule in &rules {
        let mut schema = crate::event::Schema::new();
        let compiled = crate::rule::matcher::Compiled::new(rule, &mut schema).unwrap();
        let queries: Vec<(ExportFormat, String, three_valued::Expr)> =
            [ExportFormat::Eql, ExportFormat::Spl]
                .into_iter()
                .map(|f| {
                    let text = export(rule, "r", "", f).unwrap().text;
                    let e = three_valued::parse_query(&text);
                    (f, text, e)
                })
                .collect();
        for doc in events(rule) {
            let want = compiled.matches(&three_valued::event(&schema, &doc));
            for (f, text, q) in &queries {
                let got = three_valued::eval(q, &doc);
                assert_eq!(
                    got == Some(true),
                    want,
                    "{} {f:?}: hunt says {want}, the export {got:?}, for {doc:?}\n{text}",
                    rule.id
                );
            }
            checked += 1;
            if want && doc.len() < candidates(rule).len() {
                negated_missing += 1;
            }
        }
    }
    assert!(checked > 5_000, "{checked} events");
    assert!(
        negated_missing > 100,
        "{negated_missing} matches without a field"
    );
}

/// KQL, which the three-valued check does not read: an escaped wildcard is a literal character
/// (quoted, or escaped in an unquoted glob), other backslashes are escaped for KQL.
#[test]
fn kql_writes_sigma_escapes_as_literals() {
    let r = rule("  sel:\n    a: 'abc\\*def'\n    b|contains: '\\*'\n    c|endswith: 'Files\\\\Ollama'\n    d: '*x\\?y?'\n  condition: sel\n");
    let q = query(&r, ExportFormat::Kql);
    assert_eq!(
        q, r#"(a: "abc*def" and b: *\** and c: *Files\\Ollama and d: *x?y*)"#,
        "{q}"
    );
    let notes = export(&r, "r", "", ExportFormat::Kql).unwrap().notes;
    assert!(
        notes.iter().any(|n| n.contains("one-character wildcard")),
        "{notes:?}"
    );
}

/// `re` in the exports (review item 14): case-sensitive unless `|i`, in EQL as `regex` /
/// `regex~` with the Lucene pattern that matches the whole text, in SPL with the flags inline;
/// both agree with hunt on texts around each pattern.
#[test]
fn regular_expressions_keep_case_and_flags() {
    let r = rule("  sel:\n    a|re: '^ollama'\n    b|re|i: 'x[0-9]+y$'\n    c|re|s: 'p.q|^z'\n  condition: sel\n");
    let eql = query(&r, ExportFormat::Eql);
    assert!(
        eql.contains(r#"a regex "ollama.*""#)
            && eql.contains(r#"b regex~ ".*x[0-9]+y""#)
            && eql.contains(r#"c regex ".*(p.q|^z).*""#),
        "{eql}"
    );
    let spl = query(&r, ExportFormat::Spl);
    assert!(
        spl.contains(r#"match('a', "^ollama")"#)
            && spl.contains(r#"match('b', "(?i)x[0-9]+y$")"#)
            && spl.contains(r#"match('c', "(?s)p.q|^z")"#),
        "{spl}"
    );
    let notes = export(&r, "r", "", ExportFormat::Eql).unwrap().notes;
    assert!(notes.iter().any(|n| n.contains("p.q|^z")), "{notes:?}");
    let mut schema = crate::event::Schema::new();
    let compiled = crate::rule::matcher::Compiled::new(&r, &mut schema).unwrap();
    let spl_q = three_valued::parse_query(&spl);
    let eql_q = three_valued::parse_query(&eql);
    for a in ["ollama.exe", "OLLAMA.EXE", "my ollama"] {
        for b in ["x12y", "X12Y", "x12yz"] {
            for c in ["zz", "p\nq", "pq"] {
                let mut d = Doc::new();
                d.insert("a".into(), V::Str(a.into()));
                d.insert("b".into(), V::Str(b.into()));
                d.insert("c".into(), V::Str(c.into()));
                let want = compiled.matches(&three_valued::event(&schema, &d));
                assert_eq!(
                    three_valued::eval(&spl_q, &d) == Some(true),
                    want,
                    "SPL {d:?}"
                );
                // EQL's Lucene `.` also matches a newline; only `|s` values are compared.
                assert_eq!(
                    three_valued::eval(&eql_q, &d) == Some(true),
                    want,
                    "EQL {d:?}"
                );
            }
        }
    }
}
