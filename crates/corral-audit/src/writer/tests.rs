//! The writer against real files: cut-short writes, outages, replaced files.

use super::*;
use std::net::{IpAddr, Ipv4Addr};

fn rec(i: u64) -> AuditRecord {
    let mut r = AuditRecord::new(
        action::PROXY,
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        "POST",
        "/api/chat",
    );
    r.bytes_out = i;
    r
}

const NO_ROTATION: Rotation = Rotation {
    max_bytes: 0,
    keep: 0,
};

fn outage() -> Outage {
    Outage {
        since: "2026-01-01T00:00:00.000000Z".into(),
        error: "disk full".into(),
        lost: 0,
    }
}

fn file_lines(path: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or(serde_json::Value::Null))
        .collect()
}

/// A writer with record 0 flushed and records 1..4 buffered, of which the file got record
/// 1 and the first 40 bytes of record 2 (as when a disk fills mid-write), the 40 bytes
/// passed through `damage`.
fn cut_short(path: &Path, damage: impl FnOnce(&mut [u8])) -> Writer {
    let mut w = Writer::open(path, NO_ROTATION).unwrap();
    w.append(rec(0)).unwrap();
    w.flush().unwrap();
    for i in 1..4 {
        w.append(rec(i)).unwrap();
    }
    let mut buffered = w.out.buffer().to_vec();
    let first_end = buffered.iter().position(|&b| b == b'\n').unwrap() + 1;
    damage(&mut buffered[first_end..first_end + 40]);
    let mut f = OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(&buffered[..first_end + 40]).unwrap();
    w
}

fn numbers_and_seqs(l: &[serde_json::Value]) -> (Vec<u64>, Vec<u64>) {
    let intact = l.iter().filter(|v| !v.is_null());
    let numbers = intact
        .clone()
        .filter(|v| v["event"]["action"] == action::PROXY)
        .map(|v| v["corral"]["bytes_out"].as_u64().unwrap())
        .collect();
    let seqs = intact
        .map(|v| v["corral"]["chain"]["seq"].as_u64().unwrap())
        .collect();
    (numbers, seqs)
}

#[test]
fn a_write_cut_short_is_finished_not_written_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.ndjson");
    let mut w = cut_short(&path, |_| {});
    assert_eq!(
        w.recover(&outage()).unwrap(),
        2,
        "records 2 and 3 were kept"
    );
    assert!(w.unwritten.is_empty());
    drop(w);

    let l = file_lines(&path);
    assert_eq!(l.len(), 5, "0, 1, 2 finished, the restart record, 3");
    let restart = &l[3]["corral"]["restart"];
    assert_eq!(l[3]["event"]["action"], action::AUDIT_RESTART);
    assert_eq!(restart["reason"], UNWRITABLE, "{restart}");
    assert_eq!(restart["after_seq"], 3);
    // Record 3 follows it; record 2 was finished before it.
    assert_eq!((&restart["kept"], &restart["lost"]), (&1.into(), &0.into()));
    assert_eq!(restart["error"], "disk full");
    let (numbers, seqs) = numbers_and_seqs(&l);
    assert_eq!(numbers, [0, 1, 2, 3], "each record once, in order");
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    let r = crate::verify(std::slice::from_ref(&path)).unwrap();
    assert!(r.is_ok() && r.from_genesis, "{r}");
}

#[test]
fn a_first_write_cut_short_is_finished() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.ndjson");
    let mut w = Writer::open(&path, NO_ROTATION).unwrap();
    w.append(rec(0)).unwrap();
    w.append(rec(1)).unwrap();
    fs::write(&path, &w.out.buffer()[..40]).unwrap();
    assert_eq!(w.recover(&outage()).unwrap(), 2);
    drop(w);
    let l = file_lines(&path);
    assert_eq!(l.len(), 3, "0 finished, the restart record, 1");
    assert_eq!(l[1]["corral"]["restart"]["reason"], UNWRITABLE);
    assert_eq!(numbers_and_seqs(&l), (vec![0, 1], vec![1, 2, 3]));
    let r = crate::verify(std::slice::from_ref(&path)).unwrap();
    assert!(r.is_ok() && r.from_genesis, "{r}");
}

#[test]
fn a_cut_line_that_is_not_the_next_record_s_is_marked_torn() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.ndjson");
    let mut w = cut_short(&path, |b| b[30] ^= 1);
    assert_eq!(w.recover(&outage()).unwrap(), 2);
    drop(w);

    let l = file_lines(&path);
    assert_eq!(l.len(), 6, "0, 1, the torn line, the restart record, 2, 3");
    assert!(l[2].is_null(), "torn");
    let restart = &l[3]["corral"]["restart"];
    assert_eq!(restart["reason"], format!("{UNWRITABLE}; {TORN}"));
    assert_eq!(restart["after_seq"], 2);
    let (numbers, seqs) = numbers_and_seqs(&l);
    assert_eq!(numbers, [0, 1, 2, 3]);
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    // The restart record links to the last intact record: the torn line is a notice and
    // the records after it are checked.
    let r = crate::verify(std::slice::from_ref(&path)).unwrap();
    assert!(r.is_ok(), "{r}");
    assert_eq!(r.records, 5, "{r}");
    assert_eq!(r.notices.len(), 1, "{r}");
    assert_eq!(r.notices[0].line, 3, "{r}");
}

#[test]
fn a_failed_write_that_reached_nothing_writes_every_kept_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.ndjson");
    let mut w = Writer::open(&path, NO_ROTATION).unwrap();
    w.append(rec(0)).unwrap();
    w.flush().unwrap();
    w.append(rec(1)).unwrap();
    // Kept while the log could not be written.
    w.unwritten.push_back(rec(2));
    assert_eq!(w.recover(&outage()).unwrap(), 2);
    drop(w);
    let l = file_lines(&path);
    assert_eq!(l.len(), 4);
    assert_eq!(l[1]["corral"]["restart"]["reason"], UNWRITABLE);
    assert_eq!(l[1]["corral"]["restart"]["after_seq"], 1);
    assert!(crate::verify(std::slice::from_ref(&path)).unwrap().is_ok());
}

#[test]
fn a_file_put_in_the_log_s_place_is_not_taken_for_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.ndjson");
    let other = dir.path().join("other.ndjson");
    let mut w = Writer::open(&path, NO_ROTATION).unwrap();
    w.append(rec(0)).unwrap();
    w.flush().unwrap();
    w.append(rec(1)).unwrap();
    // Another log whose last record has the same seq as this writer's last.
    let mut o = Writer::open(&other, NO_ROTATION).unwrap();
    o.append(rec(9)).unwrap();
    o.flush().unwrap();
    drop(o);
    fs::rename(&other, &path).unwrap();
    w.end_batch().unwrap();
    drop(w);
    let l = file_lines(&path);
    assert_eq!(l.len(), 3, "the other record, the restart record, record 1");
    assert_eq!(l[1]["corral"]["restart"]["reason"], REPLACED);
    assert_eq!(l[1]["corral"]["restart"]["after_seq"], 1);
    assert_eq!(l[2]["corral"]["bytes_out"], 1, "written, not skipped");
}
