use super::*;
use crate::canon::seal;
use crate::record::action;
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
    assert_eq!(empty.to_string(), "OK: 0 record(s): the file is empty");
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
fn a_copy_of_an_earlier_record_is_duplicated() {
    let mut lines = log(5);
    lines.insert(3, lines[1].clone());
    let r = check(&join(&lines));
    assert_eq!(problem(&r), (4, ProblemKind::Duplicated), "{r}");
    assert!(detail(&r).contains("seq 2 again after seq 3"), "{r}");
    assert_eq!(r.records, 3);
}

#[test]
fn a_verbatim_copy_of_the_record_before_is_duplicated_and_names_it() {
    let mut lines = log(12);
    lines.insert(10, lines[9].clone());
    let r = check(&join(&lines));
    assert_eq!(problem(&r), (11, ProblemKind::Duplicated), "{r}");
    assert!(
        detail(&r).contains("same record (seq 10) as line 10"),
        "{r}"
    );
    assert_eq!(r.records, 10);
    // At the very end too.
    let mut lines = log(5);
    lines.push(lines[4].clone());
    assert_eq!(problem(&check(&join(&lines))), (6, ProblemKind::Duplicated));
}

/// A forged record with the seq and `prev` of a genuine one, sealed with its own hash.
fn forged(seq: u64, prev: &str) -> String {
    seal(
        json!({"event": {"action": "proxy"}, "user": "mallory"}),
        seq,
        prev,
    )
    .0
}

fn hash_of(line: &str) -> String {
    check_line(line.as_bytes()).unwrap().0.hash
}

#[test]
fn an_inserted_record_is_named_not_the_genuine_one_after_it() {
    let lines = log(12);
    let mut ins = lines.clone();
    ins.insert(9, forged(10, &hash_of(&lines[8])));
    let r = check(&join(&ins));
    assert_eq!(problem(&r), (10, ProblemKind::Inserted), "{r}");
    let d = detail(&r);
    assert!(
        d.contains("two records claim to follow seq 9 (lines 10 and 11)"),
        "{d}"
    );
    assert!(d.contains("so line 10 was inserted"), "{d}");
    assert_eq!(r.records, 9, "{r}");
    assert_eq!(r.last_seq, Some(9));
}

#[test]
fn an_inserted_record_after_the_genuine_one_is_named() {
    let lines = log(12);
    let mut ins = lines.clone();
    ins.insert(10, forged(10, &hash_of(&lines[8])));
    let r = check(&join(&ins));
    assert_eq!(problem(&r), (11, ProblemKind::Inserted), "{r}");
    let d = detail(&r);
    assert!(d.contains("(lines 10 and 11)"), "{d}");
    assert!(
        d.contains("continues from line 10, so line 11 was inserted"),
        "{d}"
    );
    assert_eq!(r.records, 10);
}

#[test]
fn two_records_in_one_place_at_the_end_are_an_insert_of_either() {
    let lines = log(5);
    let mut ins = lines.clone();
    ins.push(forged(5, &hash_of(&lines[3])));
    let r = check(&join(&ins));
    assert_eq!(problem(&r), (6, ProblemKind::Inserted), "{r}");
    assert!(
        detail(&r).contains("(lines 5 and 6): one of them was inserted"),
        "{r}"
    );
    // A second first record.
    let mut ins = lines.clone();
    ins.insert(1, forged(1, GENESIS_PREV));
    let r = check(&join(&ins));
    assert_eq!(problem(&r), (2, ProblemKind::Inserted), "{r}");
    assert!(
        detail(&r).contains("two records claim to start the log"),
        "{r}"
    );
    // A forged first record, the chain going on from the genuine one.
    let mut ins = lines.clone();
    ins.insert(0, forged(1, GENESIS_PREV));
    let r = check(&join(&ins));
    assert_eq!(problem(&r), (1, ProblemKind::Inserted), "{r}");
    assert!(detail(&r).contains("so line 1 was inserted"), "{r}");
    assert_eq!((r.records, r.first_seq, r.last_seq), (0, None, None));
    // Same seq, but following something else: not part of this chain at all.
    let mut ins = lines.clone();
    ins.insert(3, forged(3, &hash_of(&lines[0])));
    let r = check(&join(&ins));
    assert_eq!(problem(&r), (4, ProblemKind::Inserted), "{r}");
    assert!(detail(&r).contains("does not follow seq 2"), "{r}");
}

#[test]
fn an_insert_across_files_names_both_files() {
    let lines = log(6);
    let mut v = Verifier::new();
    v.feed(Path::new("old"), join(&lines[..3]).as_slice())
        .unwrap();
    let mut newer = vec![forged(3, &hash_of(&lines[1]))];
    newer.extend_from_slice(&lines[3..]);
    v.feed(Path::new("new"), join(&newer).as_slice()).unwrap();
    let r = v.finish();
    let p = r.first_problem.clone().unwrap();
    assert_eq!((p.file.as_path(), p.line), (Path::new("new"), 1), "{r}");
    assert!(p.detail.contains("(old:3 and line 1)"), "{r}");
    assert!(
        p.detail
            .contains("continues from old:3, so line 1 was inserted"),
        "{r}"
    );
}

fn detail(r: &VerifyReport) -> String {
    r.first_problem.as_ref().expect("a problem").detail.clone()
}

/// The writer's `audit_restart` record, continuing after `after` (0 = none).
fn restart(seq: u64, prev: &str) -> String {
    seal(
        json!({"event": {"action": action::AUDIT_RESTART}, "corral": {"restart": {"after_seq": seq - 1}}}),
        seq,
        prev,
    )
    .0
}

/// Records 1..=3, a torn line, the restart (seq 4), records 5..=7, chained.
fn torn_log() -> Vec<String> {
    let mut lines = log(3);
    let torn = lines[2][..40].to_string();
    lines.push(torn);
    let mut prev = hash_of(&lines[2]);
    lines.push(restart(4, &prev));
    prev = hash_of(&lines[4]);
    for seq in 5..=7 {
        let (l, h) = seal(json!({"event": {"action": "proxy"}, "n": seq}), seq, &prev);
        prev = h;
        lines.push(l);
    }
    lines
}

#[test]
fn a_torn_line_the_writer_recovered_from_is_a_notice_and_checking_goes_on() {
    let lines = torn_log();
    let r = check(&join(&lines));
    assert!(r.is_ok(), "{r}");
    assert_eq!((r.records, r.first_seq, r.last_seq), (7, Some(1), Some(7)));
    assert_eq!(r.notices.len(), 1);
    assert_eq!(r.notices[0].line, 4);
    assert!(r.notices[0].detail.contains("torn line"), "{r}");
    assert!(
        r.notices[0].detail.contains("on line 5 to follow seq 3"),
        "{r}"
    );
    let s = r.to_string();
    assert!(s.starts_with("OK: 7 record(s)"), "{s}");
    assert!(s.contains("\nnotice: t:4: torn line"), "{s}");

    // An edit after the restart is found.
    let mut edited = lines.clone();
    edited[6] = edited[6].replace("proxy", "proxx");
    let r = check(&join(&edited));
    assert_eq!(problem(&r), (7, ProblemKind::Edited), "{r}");
    assert_eq!(r.notices.len(), 1);

    // So are a drop and a duplicate after it.
    let mut dropped = lines.clone();
    dropped.remove(6);
    assert_eq!(problem(&check(&join(&dropped))), (7, ProblemKind::Dropped));
    let mut dup = lines.clone();
    dup.insert(6, lines[5].clone());
    assert_eq!(problem(&check(&join(&dup))), (7, ProblemKind::Duplicated));
}

#[test]
fn a_torn_line_cannot_hide_a_dropped_record() {
    let lines = torn_log();
    // The record right before the torn line: the restart no longer continues the chain.
    let mut dropped = lines.clone();
    dropped.remove(2);
    let r = check(&join(&dropped));
    assert_eq!(problem(&r), (4, ProblemKind::Dropped), "{r}");
    assert!(detail(&r).contains("expected seq 3, found 4"), "{r}");
    assert!(r.notices.is_empty(), "{r}");
    // An earlier one.
    let mut dropped = lines.clone();
    dropped.remove(1);
    assert_eq!(problem(&check(&join(&dropped))), (2, ProblemKind::Dropped));
    // A restart that follows the torn line but not the last record (forged, or re-sealed).
    let mut wrong = lines.clone();
    wrong[4] = restart(4, &hash_of(&lines[1]));
    let r = check(&join(&wrong));
    assert_eq!(problem(&r), (5, ProblemKind::Dropped), "{r}");
    // The genuine record after a torn line and a forged restart both claim seq 4.
    let mut forked = log(5);
    forked.insert(3, restart(4, &hash_of(&forked[2])));
    forked.insert(3, "{\"@timestamp\":\"2026".to_string());
    let r = check(&join(&forked));
    assert_eq!(problem(&r), (5, ProblemKind::Inserted), "{r}");
    assert!(detail(&r).contains("so line 5 was inserted"), "{r}");
    assert!(
        r.notices.is_empty(),
        "the forged restart recovers nothing: {r}"
    );
    assert_eq!((r.records, r.last_seq), (3, Some(3)));
}

#[test]
fn lines_that_are_not_records_without_a_restart_stay_failures() {
    let lines = torn_log();
    // A torn line followed by an ordinary record.
    let mut no_restart = lines.clone();
    no_restart.remove(4);
    let r = check(&join(&no_restart));
    assert_eq!(problem(&r), (4, ProblemKind::Malformed), "{r}");
    assert!(r.notices.is_empty());
    // ... by an edited record.
    let mut edited = lines.clone();
    edited[4] = edited[4].replace("audit_restart", "audit_restarT");
    assert_eq!(problem(&check(&join(&edited))), (4, ProblemKind::Malformed));
    // ... by nothing.
    assert_eq!(
        problem(&check(&join(&lines[..4]))),
        (4, ProblemKind::Malformed)
    );
    // ... by a cut-short line.
    let mut cut = join(&lines[..5]);
    cut.truncate(cut.len() - 10);
    assert_eq!(problem(&check(&cut)), (4, ProblemKind::Malformed));
}

#[test]
fn several_torn_lines_before_one_restart_are_one_notice() {
    let mut lines = log(3);
    lines.push("{\"@timest".into());
    lines.push("{\"@timestamp\":\"2026-12-04T22:4".into());
    lines.push(restart(4, &hash_of(&lines[2])));
    let r = check(&join(&lines));
    assert!(r.is_ok(), "{r}");
    assert_eq!(r.notices.len(), 1);
    assert_eq!(r.notices[0].line, 4);
    assert!(r.notices[0].detail.starts_with("2 torn lines"), "{r}");
    assert_eq!((r.records, r.last_seq), (4, Some(4)));
}

/// Garbage lines without end, as from `/dev/urandom`; counts what was read.
struct Endless {
    read: usize,
}

impl std::io::Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        const LINE: &[u8] = b"\x8f\x02 not a record\n";
        // A guard for the test itself: a verifier that never stops fails here, not by hanging.
        assert!(
            self.read < 64 * 1024 * 1024,
            "the verifier kept reading an endless input"
        );
        let n = buf.len().min(LINE.len());
        buf[..n].copy_from_slice(&LINE[..n]);
        self.read += n;
        Ok(n)
    }
}

#[test]
fn an_endless_run_of_garbage_lines_is_malformed_at_its_first_line_not_read_forever() {
    let mut v = Verifier::new();
    let mut input = Endless { read: 0 };
    v.feed(
        Path::new("/dev/urandom"),
        std::io::BufReader::new(&mut input),
    )
    .unwrap();
    let r = v.finish();
    assert_eq!(problem(&r), (1, ProblemKind::Malformed));
    assert!(input.read < 64 * 1024, "read {} bytes", input.read);
    // A short run of torn lines before a restart is still a crash the writer recovered from
    // (`several_torn_lines_before_one_restart_are_one_notice`); a long run in a file is not.
    let mut lines = log(3);
    lines.extend((0..MAX_TORN_LINES + 1).map(|_| "{\"@timest".to_string()));
    lines.push(restart(4, &hash_of(&lines[2])));
    assert_eq!(problem(&check(&join(&lines))), (4, ProblemKind::Malformed));
}

#[test]
fn a_torn_first_line_then_a_restart_starts_the_log() {
    let lines = vec!["{\"@ti".to_string(), restart(1, GENESIS_PREV)];
    let r = check(&join(&lines));
    assert!(r.is_ok() && r.from_genesis, "{r}");
    assert_eq!(r.notices.len(), 1);
}

#[test]
fn an_unterminated_record_set_aside_by_the_writer_is_a_notice() {
    // The writer found record 4 without its newline, took it for torn and restarted after 3.
    let mut lines = log(4);
    lines.push(restart(4, &hash_of(&lines[2])));
    let (next, _) = seal(json!({"n": 5}), 5, &hash_of(&lines[4]));
    lines.push(next);
    let r = check(&join(&lines));
    assert!(r.is_ok(), "{r}");
    assert_eq!((r.records, r.last_seq), (5, Some(5)), "{r}");
    assert_eq!(r.notices[0].line, 4);
    assert!(r.notices[0].detail.contains("no final newline"), "{r}");
    assert!(
        r.notices[0].detail.ends_with("on line 5 to follow seq 3"),
        "{r}"
    );
    // With nothing after the restart.
    let r = check(&join(&lines[..5]));
    assert!(r.is_ok(), "{r}");
    assert_eq!(r.notices.len(), 1);
    // A restart record inserted after a record the chain goes on from was inserted.
    let mut ins = log(6);
    ins.insert(4, restart(4, &hash_of(&ins[2])));
    let r = check(&join(&ins));
    assert_eq!(problem(&r), (5, ProblemKind::Inserted), "{r}");
}

#[test]
fn notices_are_capped_and_counted() {
    let mut lines = Vec::new();
    let mut prev = GENESIS_PREV.to_string();
    for seq in 1..=(MAX_NOTICES as u64 + 20) {
        lines.push("{\"@".to_string());
        let l = restart(seq, &prev);
        prev = hash_of(&l);
        lines.push(l);
    }
    let r = check(&join(&lines));
    assert!(r.is_ok(), "{r}");
    assert_eq!((r.notices.len(), r.more_notices), (MAX_NOTICES, 20));
    assert!(r
        .to_string()
        .ends_with("notice: 20 more recovered crash(es) not listed"));
}

#[test]
fn crlf_line_endings_are_named() {
    let lines = log(3);
    let crlf: Vec<u8> = lines
        .iter()
        .flat_map(|l| format!("{l}\r\n").into_bytes())
        .collect();
    let r = check(&crlf);
    assert_eq!(problem(&r), (1, ProblemKind::Edited), "{r}");
    assert!(detail(&r).contains("ends in CR"), "{r}");
    // A CR after an edited record is an edit.
    let mut edited = lines.clone();
    edited[0] = format!("{}\r", edited[0].replace("proxy", "proxx"));
    let r = check(&join(&edited));
    assert_eq!(problem(&r), (1, ProblemKind::Edited), "{r}");
    assert!(!detail(&r).contains("CR"), "{r}");
}

/// A blank line (an editor's or `echo >>`'s trailing newline) is not a record and nothing the
/// writer writes: a failure, at that line, named as blank rather than as bad JSON.
#[test]
fn a_blank_line_is_named_and_fails() {
    let lines = log(3);
    let mut trailing = join(&lines);
    trailing.push(b'\n');
    let r = check(&trailing);
    assert_eq!(problem(&r), (4, ProblemKind::Malformed), "{r}");
    assert!(detail(&r).starts_with("the line is blank"), "{r}");
    assert!(!detail(&r).contains("JSON"), "{r}");
    assert_eq!(r.records, 3);
    let s = r.to_string();
    assert!(
        s.starts_with("FAILED: t:4: malformed: the line is blank"),
        "{s}"
    );
    assert!(
        s.contains("3 record(s) in 1 file(s) verified before it"),
        "{s}"
    );

    // Several, the first is named; whitespace only, or a CR alone, is blank too.
    for tail in [&b"\n\n\n"[..], b" \t\n", b"\r\n"] {
        let mut bytes = join(&lines);
        bytes.extend_from_slice(tail);
        let r = check(&bytes);
        assert_eq!(problem(&r), (4, ProblemKind::Malformed), "{tail:?} {r}");
        assert!(detail(&r).starts_with("the line is blank"), "{tail:?} {r}");
    }
    // At the start, or between records.
    let mut first = b"\n".to_vec();
    first.extend(join(&lines));
    let r = check(&first);
    assert_eq!(problem(&r), (1, ProblemKind::Malformed), "{r}");
    assert!(detail(&r).starts_with("the line is blank"), "{r}");
    let mut between = lines.clone();
    between.insert(2, String::new());
    let r = check(&join(&between));
    assert_eq!(problem(&r), (3, ProblemKind::Malformed), "{r}");
    assert!(detail(&r).starts_with("the line is blank"), "{r}");
    assert_eq!(r.records, 2);
    // Not JSON is still named as such.
    let mut garbage = lines.clone();
    garbage.insert(2, "x".into());
    let r = check(&join(&garbage));
    assert_eq!(detail(&r), "not a JSON record", "{r}");
}

/// A restart record after a blank line (the gate started again on a log someone appended a
/// newline to) recovers nothing: unlike a torn line, the writer never leaves a blank one.
#[test]
fn a_restart_after_a_blank_line_does_not_excuse_it() {
    let mut lines = log(3);
    let prev = hash_of(&lines[2]);
    lines.push(String::new());
    lines.push(restart(4, &prev));
    let r = check(&join(&lines));
    assert_eq!(problem(&r), (4, ProblemKind::Malformed), "{r}");
    assert!(detail(&r).starts_with("the line is blank"), "{r}");
    assert!(r.notices.is_empty(), "{r}");
    // Without the blank line, the same restart continues the chain.
    lines.remove(3);
    assert!(check(&join(&lines)).is_ok());
    // A torn line, then a blank one, then a restart: the torn line is not the writer's
    // recovered crash either (the writer ends it with one newline), and it comes first.
    let mut torn = torn_log();
    torn.insert(4, String::new());
    let r = check(&join(&torn));
    assert_eq!(problem(&r), (4, ProblemKind::Malformed), "{r}");
    assert_eq!(detail(&r), "not a JSON record", "{r}");
    assert!(r.notices.is_empty(), "{r}");
}

#[test]
fn the_start_of_the_log_can_be_required() {
    let lines = log(5);
    let strict = |bytes: &[u8]| {
        let mut v = Verifier::new().require_start(true);
        v.feed(Path::new("t"), bytes).unwrap();
        v.finish()
    };
    let r = strict(&join(&lines[2..]));
    assert_eq!(problem(&r), (1, ProblemKind::Dropped), "{r}");
    assert!(detail(&r).contains("starts at seq 3"), "{r}");
    assert!(detail(&r).contains("2 earlier record(s)"), "{r}");
    assert_eq!(r.records, 0);
    assert!(strict(&join(&lines)).is_ok());
    assert!(strict(b"").is_ok());
    // Without it, the same log verifies and says what is missing.
    let r = check(&join(&lines[2..]));
    assert!(r.is_ok());
    assert_eq!(r.missing_before(), Some(2));
    assert!(
        r.to_string()
            .contains("the first 2 record(s) are not in the files given"),
        "{r}"
    );
    assert_eq!(check(&join(&lines)).missing_before(), None);
    assert_eq!(check(b"").missing_before(), None);
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

/// The count of files in a failure names the files read up to the problem, not every file given.
#[test]
fn a_failure_counts_the_files_up_to_the_problem() {
    let mut lines = log(6);
    lines[3] = lines[3].replace("proxy", "prox");
    let mut v = Verifier::new();
    v.feed(Path::new("a"), join(&lines[..2]).as_slice())
        .unwrap();
    v.feed(Path::new("b"), join(&lines[2..4]).as_slice())
        .unwrap();
    v.feed(Path::new("c"), join(&lines[4..]).as_slice())
        .unwrap();
    let r = v.finish();
    assert_eq!(r.first_problem.as_ref().unwrap().file, Path::new("b"));
    assert_eq!((r.records, r.files), (3, 2));
    assert!(
        r.to_string()
            .ends_with("3 record(s) in 2 file(s) verified before it"),
        "{r}"
    );
}
