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
