use super::*;
use crate::canon::seal;
use serde_json::json;

fn log(n: u64) -> Vec<String> {
    let mut prev = GENESIS_PREV.to_string();
    (1..=n)
        .map(|seq| {
            let (line, hash) = seal(json!({"event": {"action": "proxy"}, "n": seq}), seq, &prev);
            prev = hash;
            line
        })
        .collect()
}

fn join(lines: &[String]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect()
}

fn check(bytes: &[u8]) -> VerifyReport {
    verify_bytes(Path::new("t"), bytes)
}

fn problem(r: &VerifyReport) -> (u64, ProblemKind) {
    let p = r.first_problem.as_ref().expect("a problem");
    (p.line, p.kind)
}

#[test]
fn intact_log_verifies() {
    let r = check(&join(&log(10)));
    assert!(r.is_ok(), "{r}");
    assert_eq!(r.records, 10);
    assert_eq!((r.first_seq, r.last_seq), (Some(1), Some(10)));
    assert!(r.from_genesis);
    assert!(r.to_string().starts_with("OK: 10 record(s)"), "{r}");
    let empty = check(b"");
    assert!(empty.is_ok());
    assert_eq!(empty.records, 0);
}

#[test]
fn each_tampering_is_found_at_its_line() {
    for k in 1..=9usize {
        let lines = log(10);

        let mut edited = lines.clone();
        edited[k - 1] = edited[k - 1].replace("proxy", "proxx");
        let r = check(&join(&edited));
        assert_eq!(problem(&r), (k as u64, ProblemKind::Edited), "{r}");
        assert_eq!(r.records, k as u64 - 1);

        let mut dropped = lines.clone();
        dropped.remove(k - 1);
        let r = check(&join(&dropped));
        if k == 1 {
            // Removing the head is indistinguishable from a log whose start was rotated away.
            assert!(r.is_ok());
            assert!(!r.from_genesis);
            assert!(r.to_string().contains("chain starts at seq 2"), "{r}");
        } else {
            assert_eq!(problem(&r), (k as u64, ProblemKind::Dropped), "{r}");
        }

        let mut swapped = lines.clone();
        swapped.swap(k - 1, k);
        let r = check(&join(&swapped));
        let expect_line = if k == 1 { 2 } else { k as u64 };
        assert_eq!(
            problem(&r),
            (expect_line, ProblemKind::Reordered),
            "k={k} {r}"
        );
    }
}

#[test]
fn a_gap_that_is_never_filled_is_a_drop_even_far_from_the_end() {
    let mut lines = log(50);
    lines.drain(10..13);
    let r = check(&join(&lines));
    assert_eq!(problem(&r), (11, ProblemKind::Dropped));
    assert!(r
        .first_problem
        .unwrap()
        .detail
        .contains("3 record(s) missing"));
}

#[test]
fn duplicated_line_is_reordered() {
    let mut lines = log(5);
    lines.insert(3, lines[1].clone());
    let r = check(&join(&lines));
    assert_eq!(problem(&r), (4, ProblemKind::Reordered));
}

#[test]
fn truncated_last_line() {
    let bytes = join(&log(5));
    let cut = &bytes[..bytes.len() - 20];
    let r = check(cut);
    assert_eq!(problem(&r), (5, ProblemKind::Truncated), "{r}");
    assert_eq!(r.records, 4);
    // Cut exactly before the final newline.
    let r = check(&bytes[..bytes.len() - 1]);
    assert_eq!(problem(&r), (5, ProblemKind::Truncated));
}

#[test]
fn malformed_lines() {
    let mut lines = log(4);
    lines[2] = "not json".into();
    assert_eq!(problem(&check(&join(&lines))), (3, ProblemKind::Malformed));
    lines[2] = r#"{"corral":{"chain":{"seq":3}}}"#.into();
    assert_eq!(problem(&check(&join(&lines))), (3, ProblemKind::Malformed));
    lines[2] = String::new();
    assert_eq!(problem(&check(&join(&lines))), (3, ProblemKind::Malformed));
    let long = vec![b'{'; MAX_LINE_BYTES + 10];
    assert_eq!(problem(&check(&long)), (1, ProblemKind::Malformed));
}

#[test]
fn prev_mismatch_with_contiguous_seq_is_reported() {
    let a = log(3);
    // A second, independent chain: same seqs, different hashes.
    let mut prev = GENESIS_PREV.to_string();
    let b: Vec<String> = (1..=3)
        .map(|seq| {
            let (l, h) = seal(json!({"other": seq}), seq, &prev);
            prev = h;
            l
        })
        .collect();
    let mixed = vec![a[0].clone(), b[1].clone(), a[2].clone()];
    let r = check(&join(&mixed));
    assert_eq!(problem(&r), (2, ProblemKind::Dropped));
}

#[test]
fn files_given_in_the_wrong_order_are_reordered() {
    let lines = log(6);
    let mut v = Verifier::new();
    v.feed(Path::new("new"), join(&lines[3..]).as_slice())
        .unwrap();
    v.feed(Path::new("old"), join(&lines[..3]).as_slice())
        .unwrap();
    let r = v.finish();
    let p = r.first_problem.unwrap();
    assert_eq!(
        (p.file.as_path(), p.line, p.kind),
        (Path::new("old"), 1, ProblemKind::Reordered)
    );

    let mut v = Verifier::new();
    v.feed(Path::new("old"), join(&lines[..3]).as_slice())
        .unwrap();
    v.feed(Path::new("new"), join(&lines[3..]).as_slice())
        .unwrap();
    let r = v.finish();
    assert!(r.is_ok());
    assert_eq!((r.records, r.files), (6, 2));
}

#[test]
fn problem_display_names_file_line_and_kind() {
    let mut lines = log(3);
    lines[1] = lines[1].replace("proxy", "prox");
    let r = check(&join(&lines));
    let s = r.to_string();
    assert!(s.starts_with("FAILED: t:2: edited: "), "{s}");
    assert!(
        s.contains("1 record(s) in 1 file(s) verified before it"),
        "{s}"
    );
}

/// A line produced by an independent implementation of the documented procedure
/// (Python: json.dumps(sort_keys=True, separators=(',', ':')) and hashlib.sha256).
#[test]
fn documented_procedure_matches_an_independent_implementation() {
    let line = r#"{"@timestamp":"2026-11-22T00:00:00.000000Z","corral":{"bytes_in":1,"bytes_out":2,"chain":{"hash":"ad9b2cd8d11a0cb69a03dac45296be48543beb0b67a0db021ff521d3ef62307c","prev":"0000000000000000000000000000000000000000000000000000000000000000","seq":1},"clamps":[],"decision":"allow","streamed":false},"ecs":{"version":"8.11.0"},"event":{"action":"proxy","category":["web"],"duration":1000,"kind":"event","outcome":"success","type":["access","allowed"]},"http":{"request":{"method":"POST"},"response":{"status_code":200}},"source":{"ip":"127.0.0.1"},"url":{"path":"/api/chat"},"user":{"name":"alice"}}"#;
    let r = check(format!("{line}\n").as_bytes());
    assert!(r.is_ok(), "{r}");
    assert!(r.from_genesis);
}
