#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;
use crate::rule::parse_rules;

const GOOD: &str = r#"
title: t
id: x-1
level: high
tags: [a.b]
detection:
  sel:
    a|endswith: foo
    b: [1, 2]
  f:
    - c|cidr: 10.0.0.0/8
    - d|exists: true
  condition: sel and not f
corral:
  threshold:
    group-by: source.ip
    timespan: 5m
    gt: 3
"#;

#[test]
fn parses_a_full_rule() {
    let (rules, errs) = parse_rules(GOOD, "t.yml");
    assert!(errs.is_empty(), "{errs:?}");
    let r = &rules[0];
    assert_eq!(r.level, Level::High);
    assert_eq!(r.selections.len(), 2);
    assert_eq!(r.selections[1].alternatives.len(), 2);
    assert_eq!(r.selections[0].alternatives[0][0].mods.op, Op::EndsWith);
    assert_eq!(
        r.threshold,
        Some(Threshold {
            group_by: "source.ip".into(),
            timespan_ms: 300_000,
            gt: 3
        })
    );
}

fn errors(text: &str) -> Vec<LintError> {
    parse_rules(text, "t.yml").1
}

#[test]
fn errors_point_at_lines() {
    let text = "title: t\nid: x\ndetection:\n  sel:\n    a|bogus: 1\n  condition: sel\n";
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].line, 5);
    assert!(e[0].message.contains("bogus"));

    let text = "title: t\nid: x\ndetection:\n  sel:\n    a: 1\n  condition: sel and nope\n";
    let e = errors(text);
    assert_eq!(e[0].line, 6);
    assert!(e[0].message.contains("nope"));

    let text = "title: t\nid: x\ndetection:\n  sel:\n    ip|cidr: 10.0.0.0/99\n  condition: sel\n";
    assert_eq!(errors(text)[0].line, 5);

    let text = "title: t\nid: x\ndetection:\n  sel:\n    a|re: '('\n  condition: sel\n";
    assert!(errors(text)[0].message.contains("regular expression"));

    // Regular-expression flags follow `re`.
    let text = "title: t\nid: x\ndetection:\n  sel:\n    a|i: x\n  condition: sel\n";
    assert!(errors(text)[0].message.contains("flag of `re`"));
    let text = "title: t\nid: x\ndetection:\n  sel:\n    a|re|i|m|s: x\n  condition: sel\n";
    assert!(errors(text).is_empty());

    let text = "title: t\nid: x\nlevel: severe\ndetection:\n  sel:\n    a: 1\n  condition: sel\n";
    assert_eq!(errors(text)[0].line, 3);
}

#[test]
fn structural_errors() {
    assert!(errors("- a\n- b\n")[0].message.contains("mapping"));
    let e = errors("title: t\nid: x\nbogus: 1\ndetection:\n  sel:\n    a: 1\n  condition: sel\n");
    assert_eq!(e[0].line, 3);
    assert_eq!(e[0].message, "unknown top-level key `bogus`");
    let (_, e) = parse_rules(
        &format!("{BASE}---\ntitle: many\nid: c-1\nbogus: 1\ncorrelation:\n  type: event_count\n  rules: [one_event]\n  group-by: [source.ip]\n  timespan: 5m\n  condition: {{gt: 3}}\n"),
        "t.yml",
    );
    assert!(
        e.iter()
            .any(|e| e.message == "unknown top-level key `bogus` in a correlation"),
        "{e:?}"
    );
    let e = errors("title: t\ndetection:\n  sel:\n    a: 1\n");
    assert!(e.iter().any(|e| e.message.contains("id")));
    assert!(e.iter().any(|e| e.message.contains("condition")));
    assert!(
        errors("title: t\nid: x\ndetection:\n  sel:\n    - foo\n  condition: sel\n")[0]
            .message
            .contains("keyword")
    );
    assert!(
        errors("title: t\nid: x\nbogus: 1\ndetection:\n  sel:\n    a: 1\n  condition: sel\n")[0]
            .message
            .contains("bogus")
    );
    assert!(
        errors("title: t\nid: x\ndetection:\n  sel:\n    a|exists: maybe\n  condition: sel\n")[0]
            .message
            .contains("exists")
    );
    assert!(
        errors("title: t\nid: x\ndetection:\n  sel:\n    a: []\n  condition: sel\n")[0]
            .message
            .contains("empty")
    );
    assert!(errors("title: t\nid: x\ndetection:\n  sel:\n    a: 1\n  condition: sel\ncorral:\n  threshold:\n    gt: -1\n").len() >= 2);
    assert!(errors("title: [x\n")[0].message.starts_with("YAML"));
}

#[test]
fn spans() {
    assert_eq!(parse_span("30s"), Some(30_000));
    assert_eq!(parse_span("5m"), Some(300_000));
    assert_eq!(parse_span("2h"), Some(7_200_000));
    assert_eq!(parse_span("0m"), None);
    assert_eq!(parse_span("5"), None);
    assert_eq!(parse_span("5w"), None);
}

const BASE: &str = "title: one\nid: b-1\nname: one_event\nlevel: informational\ndetection:\n  sel:\n    a: 1\n  condition: sel\n";

fn correlation(body: &str) -> String {
    format!(
        "{BASE}---\ntitle: many\nid: c-1\nlevel: high\ntags: [attack.t1110]\ncorrelation:\n{body}"
    )
}

/// Regression (review item 8): a Sigma correlation rule (`event_count`) is read as a
/// threshold over the rule it counts, which then does not alert on its own.
#[test]
fn correlation_rules_become_thresholds() {
    let text = correlation("  type: event_count\n  rules:\n    - one_event\n  group-by:\n    - source.ip\n  timespan: 5m\n  condition:\n    gt: 20\n");
    let (rules, errs) = parse_rules(&text, "t.yml");
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(rules.len(), 1);
    let r = &rules[0];
    assert_eq!(
        (r.id.as_str(), r.title.as_str(), r.level),
        ("c-1", "many", Level::High)
    );
    assert_eq!(r.tags, ["attack.t1110"]);
    assert_eq!(
        r.threshold,
        Some(Threshold {
            group_by: "source.ip".into(),
            timespan_ms: 300_000,
            gt: 20
        })
    );
    assert_eq!(r.selections[0].name, "sel");

    // By id, `gte`, and `generate: true` keeps the counted rule too.
    let text = correlation("  type: event_count\n  rules: b-1\n  group-by: source.ip\n  timespan: 1h\n  condition:\n    gte: 5\n  generate: true\n");
    let (rules, errs) = parse_rules(&text, "t.yml");
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].id, "b-1");
    assert!(rules[0].threshold.is_none());
    assert_eq!(rules[1].threshold.as_ref().map(|t| t.gt), Some(4));
}

#[test]
fn correlation_errors_name_what_is_wrong() {
    let msg = |body: &str| {
        let (_, errs) = parse_rules(&correlation(body), "t.yml");
        errs.iter()
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let ok =
        "  rules: [one_event]\n  group-by: [source.ip]\n  timespan: 5m\n  condition: {gt: 3}\n";
    assert!(msg(&format!("  type: value_count\n{ok}")).contains("only event_count"));
    assert!(msg(&format!(
        "  type: event_count\n{}",
        ok.replace("one_event", "nope")
    ))
    .contains("`nope`, which is no rule"));
    assert!(msg(&format!(
        "  type: event_count\n{}",
        ok.replace("[source.ip]", "[source.ip, user.name]")
    ))
    .contains("exactly one entry in `group-by`"));
    assert!(msg(&format!(
        "  type: event_count\n{}",
        ok.replace("{gt: 3}", "{lt: 3}")
    ))
    .contains("`gt: N` or `gte: N`"));
    assert!(msg(&format!(
        "  type: event_count\n{}",
        ok.replace("5m", "soon")
    ))
    .contains("timespan"));
}
