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
    assert!(e.text.contains(r#"regex~(a, "x+")"#), "{}", e.text);
}

#[test]
fn spl_globs_escape() {
    assert_eq!(glob_regex("*.example.com"), r"^.*\.example\.com$");
    assert_eq!(glob_regex(r"a\*b?"), r"^a\*b.$");
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
