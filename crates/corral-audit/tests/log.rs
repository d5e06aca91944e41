#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use corral_audit::{
    action, expand_rotated, lock_path, verify, AuditError, AuditHandle, AuditLog, AuditRecord,
    AuditWorker, Decision, Outcome, ProblemKind, Rotation, GENESIS_PREV, MAX_KEPT,
    MIN_ROTATE_BYTES,
};

const NO_ROTATION: Rotation = Rotation {
    max_bytes: 0,
    keep: 0,
};

fn rec(i: u64) -> AuditRecord {
    let mut r = AuditRecord::new(
        action::PROXY,
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
        "POST",
        "/api/chat",
    );
    r.user_name = Some(format!("user{i}"));
    r.decision = Decision::Allow;
    r.outcome = Outcome::Success;
    r.status_code = 200;
    r.model = Some("llama3.2".into());
    r.bytes_out = i;
    r
}

async fn write(path: &Path, rotation: Rotation, range: std::ops::Range<u64>) {
    let (handle, worker) = AuditLog::open(path, rotation).unwrap();
    let task = tokio::spawn(worker.run());
    let h2 = handle.clone();
    for i in range {
        let h = if i % 2 == 0 { &handle } else { &h2 };
        h.record(rec(i)).unwrap();
    }
    drop(handle);
    drop(h2);
    task.await.unwrap().unwrap();
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn put(path: &Path, lines: &[String]) {
    let mut s = lines.join("\n");
    s.push('\n');
    std::fs::write(path, s).unwrap();
}

fn seq_of(line: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["corral"]["chain"]["seq"].as_u64().unwrap()
}

#[tokio::test]
async fn written_log_verifies_and_has_the_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs/audit.ndjson");
    write(&path, NO_ROTATION, 0..20).await;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    let report = verify(std::slice::from_ref(&path)).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.records, 20);
    let l = lines(&path);
    assert_eq!(l.len(), 20);
    let first: serde_json::Value = serde_json::from_str(&l[0]).unwrap();
    assert_eq!(first["corral"]["chain"]["seq"], 1);
    assert_eq!(first["corral"]["chain"]["prev"], GENESIS_PREV);
    assert_eq!(first["user"]["name"], "user0");
    assert!(l[0].starts_with(r#"{"@timestamp":""#), "{}", l[0]);
    let second: serde_json::Value = serde_json::from_str(&l[1]).unwrap();
    assert_eq!(
        second["corral"]["chain"]["prev"],
        first["corral"]["chain"]["hash"]
    );
    // Records arrive in the order they were sent.
    for (i, line) in l.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["corral"]["bytes_out"], i as u64);
    }
}

#[tokio::test]
async fn tampering_is_reported_at_the_right_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.ndjson");
    write(&path, NO_ROTATION, 0..12).await;
    let orig = lines(&path);
    let k = 7; // 1-based line
    let check = |l: &[String]| {
        put(&path, l);
        let r = verify(std::slice::from_ref(&path)).unwrap();
        let p = r.first_problem.clone().expect("problem");
        assert_eq!(p.file, path);
        (p.line, p.kind)
    };

    let mut edited = orig.clone();
    edited[k - 1] = edited[k - 1].replace("\"user6\"", "\"mallory\"");
    assert_ne!(edited, orig);
    assert_eq!(check(&edited), (k as u64, ProblemKind::Edited));

    let mut dropped = orig.clone();
    dropped.remove(k - 1);
    assert_eq!(check(&dropped), (k as u64, ProblemKind::Dropped));

    let mut swapped = orig.clone();
    swapped.swap(k - 1, k);
    assert_eq!(check(&swapped), (k as u64, ProblemKind::Reordered));

    let mut s = orig.join("\n");
    s.push('\n');
    std::fs::write(&path, &s[..s.len() - 30]).unwrap();
    let r = verify(std::slice::from_ref(&path)).unwrap();
    let p = r.first_problem.unwrap();
    assert_eq!((p.line, p.kind), (12, ProblemKind::Truncated));
    assert_eq!(r.records, 11);
}

#[tokio::test]
async fn rotation_keeps_the_chain_and_only_keep_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.ndjson");
    let rotation = Rotation {
        max_bytes: MIN_ROTATE_BYTES,
        keep: 3,
    };
    write(&path, rotation, 0..600).await;
    let files = expand_rotated(&path);
    assert_eq!(
        files,
        vec![
            dir.path().join("audit.ndjson.3"),
            dir.path().join("audit.ndjson.2"),
            dir.path().join("audit.ndjson.1"),
            path.clone(),
        ]
    );
    assert!(!dir.path().join("audit.ndjson.4").exists());
    for f in &files {
        assert!(
            std::fs::metadata(f).unwrap().len() <= MIN_ROTATE_BYTES,
            "{f:?}"
        );
        assert_eq!(
            std::fs::metadata(f).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let report = verify(&files).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.files, 4);
    assert_eq!(report.last_seq, Some(600));
    assert!(!report.from_genesis, "the oldest files were rotated away");
    let kept: usize = files.iter().map(|f| lines(f).len()).sum();
    assert_eq!(report.records, kept as u64);
    assert!(kept < 600);

    // Missing a middle file is a drop at the first line of the next one.
    let without_middle = vec![files[0].clone(), files[2].clone(), files[3].clone()];
    let r = verify(&without_middle).unwrap();
    let p = r.first_problem.unwrap();
    assert_eq!(
        (&p.file, p.line, p.kind),
        (&files[2], 1, ProblemKind::Dropped)
    );

    // Restarting after rotation continues the same chain.
    write(&path, rotation, 600..700).await;
    let report = verify(&expand_rotated(&path)).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.last_seq, Some(700));

    // A gate stopped (or killed) right after a rotation leaves the new file empty, or with
    // only a torn first line: the next start continues from the newest rotated file, `.1`,
    // not from an older one (which would repeat seqs and read as tampering).
    for leftover in ["", "{\"@timestamp\":\"20"] {
        std::fs::rename(&path, dir.path().join("audit.ndjson.0")).unwrap();
        for n in (0..4).rev() {
            std::fs::rename(
                dir.path().join(format!("audit.ndjson.{n}")),
                dir.path().join(format!("audit.ndjson.{}", n + 1)),
            )
            .unwrap();
        }
        std::fs::remove_file(dir.path().join("audit.ndjson.4")).unwrap();
        std::fs::write(&path, leftover).unwrap();
        let before = verify(&expand_rotated(&path)).unwrap().last_seq.unwrap();
        write(&path, rotation, 0..1).await;
        let report = verify(&expand_rotated(&path)).unwrap();
        assert!(report.is_ok(), "after {leftover:?}: {report}");
        assert_eq!(
            report.last_seq,
            Some(before + 1 + u64::from(!leftover.is_empty()))
        );
    }
}

#[tokio::test]
async fn restart_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.ndjson");
    write(&path, NO_ROTATION, 0..5).await;
    write(&path, NO_ROTATION, 5..9).await;
    let l = lines(&path);
    assert_eq!(l.len(), 9);
    assert_eq!(seq_of(&l[8]), 9);
    let r = verify(std::slice::from_ref(&path)).unwrap();
    assert!(r.is_ok() && r.from_genesis, "{r}");
    assert_eq!(r.records, 9);
}

#[tokio::test]
async fn torn_tail_is_marked_reported_and_checking_goes_on_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.ndjson");
    write(&path, NO_ROTATION, 0..5).await;
    let s = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &s[..s.len() - 25]).unwrap();
    write(&path, NO_ROTATION, 5..8).await;
    let l = lines(&path);
    assert_eq!(l.len(), 9, "torn line, restart marker, three records");
    let marker: serde_json::Value = serde_json::from_str(&l[5]).unwrap();
    assert_eq!(marker["event"]["action"], "audit_restart");
    assert_eq!(marker["corral"]["restart"]["after_seq"], 4);
    assert_eq!(seq_of(&l[5]), 5, "continues from the last intact record");
    assert_eq!(seq_of(&l[8]), 8);
    let r = verify(std::slice::from_ref(&path)).unwrap();
    assert!(r.is_ok(), "{r}");
    assert_eq!((r.records, r.last_seq), (8, Some(8)));
    assert_eq!(r.notices.len(), 1, "{r}");
    assert_eq!(r.notices[0].line, 5);
    assert!(r.notices[0].detail.contains("restarted"), "{r}");

    // Tampering after the restart is found.
    let mut edited = l.clone();
    edited[7] = edited[7].replace("\"user6\"", "\"mallory\"");
    assert_ne!(edited, l);
    put(&path, &edited);
    let r = verify(std::slice::from_ref(&path)).unwrap();
    let p = r.first_problem.clone().unwrap();
    assert_eq!((p.line, p.kind), (8, ProblemKind::Edited), "{r}");

    // A record removed just before the torn line is not hidden by it.
    let mut dropped = l.clone();
    dropped.remove(3);
    put(&path, &dropped);
    let r = verify(std::slice::from_ref(&path)).unwrap();
    let p = r.first_problem.clone().unwrap();
    assert_eq!((p.line, p.kind), (5, ProblemKind::Dropped), "{r}");

    // A corrupt (but newline-terminated) last line is treated the same way.
    let path2 = dir.path().join("b.ndjson");
    write(&path2, NO_ROTATION, 0..3).await;
    let mut l2 = lines(&path2);
    l2.push("{garbage".into());
    put(&path2, &l2);
    write(&path2, NO_ROTATION, 3..4).await;
    let l2 = lines(&path2);
    assert_eq!(l2.len(), 6);
    let r = verify(std::slice::from_ref(&path2)).unwrap();
    assert!(r.is_ok(), "{r}");
    assert_eq!(r.notices.len(), 1);
    assert_eq!(r.notices[0].line, 4);

    // Without the writer's restart, a torn line is a failure.
    let mut l3 = l2.clone();
    l3.remove(4);
    put(&path2, &l3);
    let r = verify(std::slice::from_ref(&path2)).unwrap();
    let p = r.first_problem.clone().unwrap();
    assert_eq!((p.line, p.kind), (4, ProblemKind::Malformed), "{r}");
}

#[tokio::test]
async fn a_record_cut_just_before_its_newline_is_recovered_from() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.ndjson");
    write(&path, NO_ROTATION, 0..5).await;
    let s = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &s[..s.len() - 1]).unwrap();
    write(&path, NO_ROTATION, 5..7).await;
    let l = lines(&path);
    let r = verify(std::slice::from_ref(&path)).unwrap();
    assert!(r.is_ok(), "{r}");
    assert_eq!(r.last_seq, Some(seq_of(&l[l.len() - 1])), "{r}");
}

#[tokio::test]
async fn log_contains_no_secret_like_strings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.ndjson");
    let secret = "S3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tZ";
    let key = format!("crl_AAAAbbbbCCCC_{secret}");
    let (handle, worker) = AuditLog::open(&path, NO_ROTATION).unwrap();
    let task = tokio::spawn(worker.run());
    let mut r = rec(1);
    r.url_path = format!("/api/{key}?api_key={key}");
    r.model = Some(key.clone());
    r.reason = Some(format!("unknown key {key}").into());
    r.user_name = Some(key.clone());
    r.method = key.clone().into();
    r.clamps = vec![key.clone().into()];
    handle.record(r).unwrap();
    drop(handle);
    task.await.unwrap().unwrap();
    let bytes = std::fs::read_to_string(&path).unwrap();
    assert!(!bytes.contains(secret), "{bytes}");
    assert!(!bytes.contains("api_key"), "{bytes}");
    assert!(bytes.contains("crl_AAAAbbbbCCCC_<redacted>"));
    assert!(verify(&[path]).unwrap().is_ok());
}

#[tokio::test]
async fn records_reach_the_file_promptly_and_backpressure_never_drops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.ndjson");
    let (handle, worker) = AuditLog::open(&path, NO_ROTATION).unwrap();
    let task = tokio::spawn(worker.run());
    handle.record(rec(0)).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(&path).unwrap().lines().count() < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "not flushed while idle"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Many records from several tasks at once, none lost.
    let mut senders = Vec::new();
    for t in 0..4u64 {
        let h = handle.clone();
        senders.push(tokio::spawn(async move {
            for i in 0..1_000u64 {
                h.record(rec(t * 10_000 + i)).unwrap();
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    drop(handle);
    task.await.unwrap().unwrap();
    let r = verify(std::slice::from_ref(&path)).unwrap();
    assert!(r.is_ok(), "{r}");
    assert_eq!(r.records, 4_001);
}

#[tokio::test]
async fn record_after_the_worker_stopped_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, worker) = AuditLog::open(&dir.path().join("a.ndjson"), NO_ROTATION).unwrap();
    assert!(handle.is_writing());
    drop(worker);
    assert!(handle.record(rec(0)).is_err());
    assert!(!handle.is_writing());
}

#[test]
fn verify_reports_missing_files_as_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing: PathBuf = dir.path().join("nope.ndjson");
    assert!(verify(std::slice::from_ref(&missing)).is_err());
    assert_eq!(expand_rotated(&missing), vec![missing]);
}

#[test]
fn existing_file_that_is_too_open_is_tightened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.ndjson");
    std::fs::write(&path, "").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _ = AuditLog::open(&path, NO_ROTATION).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// Polls `cond` every 10 ms, for at most 10 s.
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

fn line_count(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.lines().count())
}

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap()
}

/// `corral.bytes_out` of each request record (our `rec(i)` carries `i` there).
fn record_numbers(lines: &[String]) -> Vec<u64> {
    lines
        .iter()
        .map(|l| json(l))
        .filter(|v| v["event"]["action"] == action::PROXY)
        .map(|v| v["corral"]["bytes_out"].as_u64().unwrap())
        .collect()
}

/// The whole chain of causes, as `anyhow` prints it with `{:#}`.
fn chain_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A log opened as a regular file whose path then names `/dev/full`, so that every write fails
/// with ENOSPC, like a full disk, until the symlink is removed (then the writer's next try
/// creates a regular file there). A device is refused as the log at start-up, hence the swap.
fn full_disk(dir: &Path) -> (PathBuf, AuditHandle, AuditWorker) {
    let path = dir.join("audit.ndjson");
    let (handle, worker) = AuditLog::open(&path, NO_ROTATION).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink("/dev/full", &path).unwrap();
    (path, handle, worker)
}

#[tokio::test]
async fn a_log_that_cannot_be_written_is_retried_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (path, handle, worker) = full_disk(dir.path());
    let task = tokio::spawn(worker.run());
    assert!(handle.is_writing());
    for i in 0..3 {
        handle.record(rec(i)).unwrap();
    }
    wait_for("the writer to report the failure", || !handle.is_writing()).await;
    // Records that come while the log cannot be written are kept.
    for i in 3..5 {
        handle.record(rec(i)).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!handle.is_writing());
    std::fs::remove_file(&path).unwrap();
    wait_for("the writer to recover", || handle.is_writing()).await;
    for i in 5..7 {
        handle.record(rec(i)).unwrap();
    }
    drop(handle);
    task.await.unwrap().unwrap();

    let l = lines(&path);
    assert_eq!(l.len(), 8, "a restart record, then every record");
    let marker = json(&l[0]);
    assert_eq!(marker["event"]["action"], "audit_restart");
    let restart = &marker["corral"]["restart"];
    assert_eq!(
        restart["reason"], "the log could not be written",
        "{restart}"
    );
    assert_eq!(restart["kept"], 5);
    assert_eq!(restart["lost"], 0);
    assert!(restart["after_seq"].is_null());
    assert!(restart["failed_at"].is_string());
    let error = restart["error"].as_str().unwrap();
    assert!(error.contains("No space left on device"), "{error}");
    assert_eq!(record_numbers(&l), (0..7).collect::<Vec<_>>(), "in order");
    let r = verify(std::slice::from_ref(&path)).unwrap();
    assert!(r.is_ok() && r.from_genesis, "{r}");
    assert_eq!(r.records, 8);
}

#[tokio::test]
async fn records_beyond_the_kept_bound_are_counted_in_the_restart_record() {
    let dir = tempfile::tempdir().unwrap();
    let (path, handle, worker) = full_disk(dir.path());
    let task = tokio::spawn(worker.run());
    handle.record(rec(0)).unwrap();
    wait_for("the writer to report the failure", || !handle.is_writing()).await;
    let extra = 10;
    for i in 1..(MAX_KEPT + extra) as u64 {
        handle.record(rec(i)).unwrap();
    }
    // The failing writer drains the queue every 16 ms; give it many looks.
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::remove_file(&path).unwrap();
    wait_for("the writer to recover", || handle.is_writing()).await;
    drop(handle);
    task.await.unwrap().unwrap();

    let l = lines(&path);
    let restart = &json(&l[0])["corral"]["restart"];
    assert_eq!(restart["kept"], MAX_KEPT as u64, "{restart}");
    assert_eq!(restart["lost"], extra as u64, "{restart}");
    // The oldest are kept (they are the requests that were served); the newest are counted.
    assert_eq!(record_numbers(&l), (0..MAX_KEPT as u64).collect::<Vec<_>>());
    let r = verify(std::slice::from_ref(&path)).unwrap();
    assert!(r.is_ok(), "{r}");
}

#[tokio::test]
async fn records_still_unwritable_at_shutdown_are_an_error_that_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let (path, handle, worker) = full_disk(dir.path());
    let task = tokio::spawn(worker.run());
    handle.record(rec(0)).unwrap();
    handle.record(rec(1)).unwrap();
    drop(handle);
    let err = task.await.unwrap().unwrap_err();
    assert!(
        matches!(err, AuditError::Unwritten { records: 2, .. }),
        "{err:?}"
    );
    let text = chain_text(&err);
    assert!(
        text.starts_with("2 audit record(s) could not be written: "),
        "{text}"
    );
    assert!(text.contains(path.to_str().unwrap()), "{text}");
    assert_eq!(text.matches("No space left on device").count(), 1, "{text}");
}

#[tokio::test]
async fn a_second_writer_on_the_same_log_is_refused_and_readers_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.ndjson");
    write(&path, NO_ROTATION, 0..3).await;
    let (handle, worker) = AuditLog::open(&path, NO_ROTATION).unwrap();
    let lock = lock_path(&path);
    assert_eq!(lock, dir.path().join("audit.ndjson.lock"));
    assert_eq!(
        std::fs::metadata(&lock).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let err = AuditLog::open(&path, NO_ROTATION).unwrap_err();
    assert!(
        matches!(&err, AuditError::Locked { log, lock: l } if *log == path && *l == lock),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("another corral process is writing the audit log")
            && msg.contains(path.to_str().unwrap()),
        "{msg}"
    );
    assert_eq!(line_count(&path), 3, "the refused writer wrote nothing");

    // A live log verifies; the lock file is not part of it.
    let task = tokio::spawn(worker.run());
    handle.record(rec(3)).unwrap();
    wait_for("the record", || line_count(&path) == 4).await;
    let files = expand_rotated(&path);
    assert_eq!(files, vec![path.clone()]);
    let r = verify(&files).unwrap();
    assert!(r.is_ok(), "{r}");
    assert_eq!(r.records, 4);
    drop(handle);
    task.await.unwrap().unwrap();

    // The lock goes with the writer.
    let _ = AuditLog::open(&path, NO_ROTATION).unwrap();
}

#[tokio::test]
async fn a_removed_log_is_started_again_and_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.ndjson");
    let (handle, worker) = AuditLog::open(&path, NO_ROTATION).unwrap();
    let task = tokio::spawn(worker.run());
    for i in 0..3 {
        handle.record(rec(i)).unwrap();
    }
    wait_for("the first records", || line_count(&path) == 3).await;
    let removed = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    for i in 3..8 {
        handle.record(rec(i)).unwrap();
    }
    wait_for("a new file", || line_count(&path) == 6).await;
    assert!(handle.is_writing());
    drop(handle);
    task.await.unwrap().unwrap();

    let l = lines(&path);
    let marker = json(&l[0]);
    assert_eq!(marker["event"]["action"], "audit_restart");
    assert_eq!(
        marker["corral"]["restart"]["reason"],
        "the log file was removed or replaced while open"
    );
    assert_eq!(marker["corral"]["restart"]["after_seq"], 3);
    assert_eq!(seq_of(&l[0]), 4);
    assert_eq!(record_numbers(&l), vec![3, 4, 5, 6, 7]);
    let r = verify(std::slice::from_ref(&path)).unwrap();
    assert!(r.is_ok() && !r.from_genesis, "{r}");
    assert_eq!(r.first_seq, Some(4));
    // With the removed file's records the chain is whole.
    let old = dir.path().join("removed.ndjson");
    std::fs::write(&old, removed).unwrap();
    let r = verify(&[old, path]).unwrap();
    assert!(r.is_ok() && r.from_genesis, "{r}");
    assert_eq!(r.records, 9);
}

#[tokio::test]
async fn a_log_renamed_away_keeps_its_records_and_a_new_file_continues() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.ndjson");
    let (handle, worker) = AuditLog::open(&path, NO_ROTATION).unwrap();
    let task = tokio::spawn(worker.run());
    for i in 0..3 {
        handle.record(rec(i)).unwrap();
    }
    wait_for("the first records", || line_count(&path) == 3).await;
    // What an external log rotator does.
    let rotated = dir.path().join("audit.ndjson-20260101");
    std::fs::rename(&path, &rotated).unwrap();
    for i in 3..5 {
        handle.record(rec(i)).unwrap();
    }
    wait_for("a new file", || line_count(&path) == 1).await;
    for i in 5..7 {
        handle.record(rec(i)).unwrap();
    }
    wait_for("records in the new file", || line_count(&path) == 3).await;
    drop(handle);
    task.await.unwrap().unwrap();

    // The batch that found the file renamed went to it; the new file continues its chain.
    assert_eq!(record_numbers(&lines(&rotated)), vec![0, 1, 2, 3, 4]);
    let l = lines(&path);
    assert_eq!(json(&l[0])["event"]["action"], "audit_restart");
    assert_eq!(record_numbers(&l), vec![5, 6]);
    let r = verify(&[rotated, path]).unwrap();
    assert!(r.is_ok() && r.from_genesis, "{r}");
    assert_eq!(r.records, 8);
}

#[test]
fn a_rotation_size_below_the_minimum_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.ndjson");
    for max_bytes in [1, MIN_ROTATE_BYTES - 1] {
        let err = AuditLog::open(&path, Rotation { max_bytes, keep: 3 }).unwrap_err();
        assert!(
            matches!(err, AuditError::RotationTooSmall { max_bytes: m } if m == max_bytes),
            "{err:?}"
        );
        assert!(err.to_string().contains("65536"), "{err}");
    }
    assert!(!path.exists());
    let _ = AuditLog::open(
        &path,
        Rotation {
            max_bytes: MIN_ROTATE_BYTES,
            keep: 3,
        },
    )
    .unwrap();
}

#[test]
fn an_io_error_names_the_file_and_gives_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain");
    std::fs::write(&plain, "").unwrap();
    let err = AuditLog::open(&plain.join("audit.ndjson"), NO_ROTATION).unwrap_err();
    let text = chain_text(&err);
    assert!(text.contains(plain.to_str().unwrap()), "{text}");
    assert_eq!(text.matches("os error").count(), 1, "{text}");
}

#[test]
fn a_path_that_is_not_an_audit_log_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    let text = "root:x:0:0:root:/root:/bin/bash\n";
    std::fs::write(&passwd, text).unwrap();
    std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = AuditLog::open(&passwd, NO_ROTATION).unwrap_err();
    assert!(matches!(err, AuditError::NotALog { .. }), "{err}");
    assert!(err.to_string().contains("not a corral audit log"), "{err}");
    assert_eq!(std::fs::read_to_string(&passwd).unwrap(), text);
    assert_eq!(
        std::fs::metadata(&passwd).unwrap().permissions().mode() & 0o777,
        0o644,
        "mode unchanged"
    );
    assert!(!lock_path(&passwd).exists(), "no lock file left beside it");
    for foreign in [
        "\n{\"@timestamp\":\"x\"}\n",
        // Another program's JSON log that happens to put @timestamp first.
        "{\"@timestamp\":\"2026-01-01T00:00:00Z\",\"message\":\"hello\"}\n",
        "{\"@timestamp\":\"2026-01-01T00:00:00Z\",\"corral\":{\"chain\":{}}}\n",
        "{\"x\":1}\n",
        "{\"@timestamp\"x",
        "hello",
    ] {
        std::fs::write(&passwd, foreign).unwrap();
        let err = AuditLog::open(&passwd, NO_ROTATION).unwrap_err();
        assert!(
            matches!(err, AuditError::NotALog { .. }),
            "{foreign:?}: {err}"
        );
        assert_eq!(std::fs::read_to_string(&passwd).unwrap(), foreign);
    }

    let sub = dir.path().join("logs");
    std::fs::create_dir(&sub).unwrap();
    let err = AuditLog::open(&sub, NO_ROTATION).unwrap_err();
    assert!(err.to_string().contains("is a directory"), "{err}");
    assert!(!lock_path(&sub).exists());
}

/// Makes a FIFO without starting a process: a child forked while another test holds a log's
/// lock (flock) holds it too until it execs, and that test's next open finds the log locked.
fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}

/// A device, FIFO or socket is not a log the writer can keep: it is locked through a file beside
/// it, rotated by renaming it, continued from its last record and fsynced. A FIFO would block
/// the start-up forever in `open`, `/dev/null` would swallow every record while the gate
/// serves, and a pipe fails every fsync. Refused before anything is created beside it.
#[test]
fn a_path_that_is_not_a_regular_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("audit.fifo");
    mkfifo(&fifo);
    let (tx, rx) = std::sync::mpsc::channel();
    let path = fifo.clone();
    // Opening a FIFO for reading with no writer blocks: run it aside, bounded.
    std::thread::spawn(move || {
        let _ = tx.send(AuditLog::open(&path, NO_ROTATION).map(|_| ()));
    });
    let err = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("opening a FIFO as the audit log must not block")
        .unwrap_err();
    assert!(matches!(err, AuditError::NotALog { .. }), "{err}");
    assert!(err.to_string().contains("not a regular file"), "{err}");
    assert!(!lock_path(&fifo).exists(), "no lock file left beside it");

    // A device node (here: /dev/null through a symlink, as /dev/stdout is one).
    let link = dir.path().join("null.ndjson");
    std::os::unix::fs::symlink("/dev/null", &link).unwrap();
    let err = AuditLog::open(&link, NO_ROTATION).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    assert!(!lock_path(&link).exists(), "no lock file left beside it");
}

/// A FIFO put where the log was (to pipe it somewhere) while the writer runs: the writer used to
/// open it for reading to find the last record and hang there for good, the gate still taking
/// it for healthy while records piled up unwritten. It is refused like an unwritable log (the
/// gate answers 503) until a file is back.
#[test]
fn a_fifo_put_in_place_of_the_log_is_not_written_to() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.ndjson");
    // A runtime of its own, let go in the background: a writer stuck on the FIFO must fail
    // this test, not hang it.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let written = rt.block_on(async {
        let (handle, worker) = AuditLog::open(&path, NO_ROTATION).unwrap();
        let task = tokio::spawn(worker.run());
        handle.record(rec(0)).unwrap();
        wait_for("the first record", || line_count(&path) == 1).await;
        std::fs::remove_file(&path).unwrap();
        mkfifo(&path);
        handle.record(rec(1)).unwrap();
        let mut refused = false;
        for _ in 0..300 {
            if !handle.is_writing() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if !refused {
            return None;
        }
        std::fs::remove_file(&path).unwrap();
        wait_for("the writer to recover", || handle.is_writing()).await;
        drop(handle);
        task.await.unwrap().unwrap();
        Some(lines(&path))
    });
    rt.shutdown_background();
    let l = written.expect("the writer must not take a FIFO for the log");
    assert_eq!(json(&l[0])["event"]["action"], "audit_restart", "{l:?}");
    assert_eq!(record_numbers(&l), [1]);
}

#[tokio::test]
async fn a_log_whose_first_write_was_cut_short_is_still_continued() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.ndjson");
    write(&path, NO_ROTATION, 0..1).await;
    let first = std::fs::read(&path).unwrap();
    // Cut inside the opening bytes every record shares, and further on.
    for cut in [1, 5, 15, 40] {
        std::fs::write(&path, &first[..cut]).unwrap();
        write(&path, NO_ROTATION, 1..2).await;
        let r = verify(std::slice::from_ref(&path)).unwrap();
        assert!(r.is_ok(), "cut at {cut}: {r}");
        assert_eq!(r.notices.len(), 1, "cut at {cut}: {r}");
    }
}

#[tokio::test]
async fn a_log_whose_first_record_was_edited_is_still_taken_as_the_log() {
    // Tampering is for `audit verify` to report; the gate goes on appending to its own log.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.ndjson");
    write(&path, NO_ROTATION, 0..2).await;
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replacen("\"user\":{\"name\":\"", "\"user\":{\"name\":\"x", 1);
    assert_ne!(edited, text, "the test edits the first record");
    std::fs::write(&path, &edited).unwrap();
    write(&path, NO_ROTATION, 2..3).await;
    let r = verify(std::slice::from_ref(&path)).unwrap();
    assert!(!r.is_ok(), "the edit is still found: {r}");
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
}

#[tokio::test]
async fn a_log_that_starts_with_blocks_a_crash_left_unwritten_is_continued() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.ndjson");
    // A power loss can leave a file's first blocks as NUL bytes.
    std::fs::write(&path, [0u8; 4096]).unwrap();
    write(&path, NO_ROTATION, 0..2).await;
    let text = std::fs::read(&path).unwrap();
    assert!(text.starts_with(&[0u8; 4096]), "the old bytes are kept");
    assert!(text.ends_with(b"\n"));
}

#[test]
fn files_of_one_log_are_put_in_rotation_order_and_others_left_as_given() {
    let p = |s: &str| PathBuf::from(s);
    let glob = [
        p("d/a.ndjson"),
        p("d/a.ndjson.1"),
        p("d/a.ndjson.10"),
        p("d/a.ndjson.2"),
    ];
    assert_eq!(
        corral_audit::rotation_order(&glob).unwrap(),
        [
            p("d/a.ndjson.10"),
            p("d/a.ndjson.2"),
            p("d/a.ndjson.1"),
            p("d/a.ndjson")
        ]
    );
    // Rotated files alone, too.
    assert_eq!(
        corral_audit::rotation_order(&[p("a.ndjson.1"), p("a.ndjson.3")]).unwrap(),
        [p("a.ndjson.3"), p("a.ndjson.1")]
    );
    for other in [
        vec![p("a.ndjson"), p("b.ndjson.1")],
        vec![p("x/a.ndjson"), p("y/a.ndjson.1")],
        vec![p("a.ndjson"), p("a.ndjson")],
        vec![p("a.ndjson.1"), p("a.ndjson.01")],
        vec![p("a.ndjson"), p("a.ndjson.0")],
        vec![p("a.ndjson"), p("a.ndjson.old")],
    ] {
        assert_eq!(corral_audit::rotation_order(&other), None, "{other:?}");
    }
}
