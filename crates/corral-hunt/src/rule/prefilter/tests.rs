#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::PathBuf;

use super::*;
use crate::engine::Engine;
use crate::{builtin, hunt_paths, InputFormat};

fn engine(prefilter: bool) -> Engine {
    let mut e = Engine::new(builtin::rules().unwrap()).unwrap();
    e.set_prefilter(prefilter);
    e
}

/// (line, rule id) of each alert, events, malformed.
type Outcome = (Vec<(u64, String)>, u64, u64);

/// The outcome with the prefilter on and off.
fn both(text: &str) -> [Outcome; 2] {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    let paths = [PathBuf::from(f.path())];
    [true, false].map(|on| {
        let e = engine(on);
        let run = hunt_paths(&e, &paths, InputFormat::Auto, 2, false);
        let hits = run
            .alerts
            .iter()
            .map(|a| (a.line, e.rules[a.rule].id.clone()))
            .collect();
        (hits, run.files[0].events, run.files[0].malformed)
    })
}

fn accepted(src: &str, port: &str) -> String {
    format!(
        r#"{{"@timestamp":"2026-01-10T10:00:00Z","event":{{"action":"connection_accepted"}},"process":{{"name":"ollama"}},"source":{{"ip":"{src}"}},"destination":{{"port":{port}}}}}"#
    )
}

#[test]
fn builtin_rules_leave_most_lines_unparsed() {
    let e = engine(true);
    for d in [Dialect::Json, Dialect::ZeekTsv] {
        let p = e.prefilter(d).unwrap();
        assert!(!p.always(), "{d:?}: some rule needs every line");
    }
    let p = e.prefilter(Dialect::Json).unwrap();
    let mut scan = Scan::default();
    let dns = br#"{"event":{"action":"lookup_requested"},"process":{"name":"curl"},"dns":{"question":{"name":"example.org"}}}"#;
    assert!(!p.may_match(dns, &mut scan));
    let lits: Vec<_> = p.literals().map(|(l, _)| l.to_vec()).collect();
    assert!(lits.contains(&b"connection_accepted".to_vec()));
}

#[test]
fn spellings_the_parser_decodes_still_reach_it() {
    let lines = [
        accepted("203.0.113.7", "11434"),
        accepted("203.0.113.7", "\"11434\""),
        accepted("203.0.113.7", "11434.0"),
        accepted("203.0.113.7", "1.1434e4"),
        accepted("203.0.113.7", "\"1.1434E+4\""),
        accepted("203.0.113.7", "11433.99999999999999999"),
        accepted("::ffff:cb00:7107", "11434"),
        accepted("::FFFF:203.0.113.7", "11434"),
        accepted("10.0.0.1", "11434"),
        // Escapes inside the values the rules look for.
        r#"{"event":{"action":"connection\u005faccepted"},"process":{"name":"ollama"},"source":{"ip":"203.0.113.7"},"destination":{"port":11434}}"#.into(),
        r#"{"event.action":"lookup_requested","process.executable":"C:\\Program Files\\Ollama\\ollama.exe","dns.question.name":"evil\/x.example.net"}"#.into(),
        // Sysmon via Winlogbeat: the ECS fields are derived from event data.
        r#"{"winlog":{"channel":"Microsoft-Windows-Sysmon/Operational","event_id":3,"event_data":{"Image":"C:\\Users\\a\\AppData\\Local\\Programs\\Ollama\\ollama.exe","Initiated":"false","SourceIp":"203.0.113.9","DestinationPort":"11434"}}}"#.into(),
        // Zeek JSON: event.dataset is derived from conn_state.
        r#"{"ts":1768039200.5,"uid":"C1","id.orig_h":"203.0.113.7","id.orig_p":50000,"id.resp_h":"10.0.0.5","id.resp_p":11434,"proto":"tcp","conn_state":"SF"}"#.into(),
        // Not JSON, broken JSON, JSON the quick check doubts.
        r#"{"event":{"action":"lookup_requested"},"#.into(),
        r#"{"a":1,,"b":2}"#.into(),
        r#"{"a":1e999}"#.into(),
        "[1,2,3]".into(),
    ];
    let text = lines.join("\n") + "\n";
    let [on, off] = both(&text);
    assert_eq!(on, off);
    assert!(on.0.len() >= 10, "{:?}", on.0);
    assert!(on.2 >= 3, "{on:?}");
}

#[test]
fn zeek_rows_agree_with_and_without_prefilter() {
    let head = "#separator \\x09\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tconn_state\n";
    let rows = [
        "1768039200.1\tC1\t203.0.113.7\t50000\t10.0.0.5\t11434\ttcp\tSF",
        "1768039200.2\tC2\t203.0.113.7\t50000\t10.0.0.5\t443\ttcp\tSF",
        "1768039200.3\tC3\t203.0.113.7\t50000\t10.0.0.5\t1.1434e4\ttcp\tSF",
        "1768039200.4\tC4\t203.0.113.7\t50000\t10.0.0.5\t443\ttcp",
        "1768039200.5\tC5\t::ffff:203.0.113.8\t50000\t10.0.0.5\t11434\ttcp\tRSTO",
    ];
    let text = format!("{head}{}\n", rows.join("\n"));
    let [on, off] = both(&text);
    assert_eq!(on, off);
    assert_eq!(on.0.len(), 3);
    assert_eq!(on.2, 1);
}

#[test]
fn whole_corpus_agrees_with_and_without_prefilter() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let [on, off] = both(&text);
        assert_eq!(on, off, "{}", path.display());
    }
}

#[test]
fn exotic_numbers() {
    assert!(exotic_number(b"\"port\":1.1434e4"));
    assert!(exotic_number(b"\"port\":\"1E+4\""));
    assert!(exotic_number(b"11433.99999999999999999"));
    assert!(!exotic_number(
        b"\"port\":11434,\"t\":\"2026-01-10T10:00:00.000Z\""
    ));
    assert!(!exotic_number(b"true false e5 1e"));
    // Hex identifiers and Zeek timestamps are not exotic.
    assert!(!exotic_number(b"\"id\":\"4e5a1e7f\",\"x\":\"a1e5\""));
    assert!(!exotic_number(b"1768003200.123456\tC1\t10.0.0.1"));
    assert!(exotic_number(b"x\t1.1434e4\ty"));
    assert!(exotic_number(b"\"\\t1e4\""));
}

#[test]
fn literal_pieces_avoid_escapable_bytes() {
    assert_eq!(
        plain_pieces(b"/api/pull", false),
        [&b"api"[..], &b"pull"[..]]
    );
    assert_eq!(
        plain_pieces(b"\\programs\\ollama\\ollama.exe", false),
        [&b"programs"[..], &b"ollama"[..], &b"ollama.exe"[..]]
    );
    assert!(plain_pieces(b"/", false).is_empty());
}

#[test]
fn event_created_does_not_wake_the_admin_api_rule() {
    // `"created":` is in every Elastic Defend event; `/api/create` needs `api` as well.
    let e = engine(true);
    let p = e.prefilter(Dialect::Json).unwrap();
    let line = br#"{"event":{"action":"exec","created":"2026-01-10T10:00:00Z","category":["process"]},"process":{"name":"curl","entity_id":"4e5a1e7f"}}"#;
    assert!(!p.may_match(line, &mut Scan::default()));
}
