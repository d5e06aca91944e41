#![allow(clippy::unwrap_used)]

use super::fixture::{sample_events, sysmon_file};
use super::*;

fn read_all(file: &[u8]) -> (Vec<Record>, Vec<String>) {
    let mut records = Vec::new();
    let mut errors = Vec::new();
    if let Err(e) = check_header(file.get(..HEADER_BLOCK).unwrap_or(file)) {
        errors.push(e.to_string());
    }
    let mut rest = file.get(HEADER_BLOCK..).unwrap_or(&[]);
    let mut buf = Vec::new();
    let mut index = 0u64;
    while read_chunk(&mut rest, &mut buf).unwrap() {
        let at = (HEADER_BLOCK + index as usize * CHUNK_SIZE) as u64;
        chunk_records(
            &buf,
            index,
            at,
            |r| records.push(r),
            |e| errors.push(e.to_string()),
        );
        index += 1;
    }
    (records, errors)
}

fn field<'a>(r: &'a Record, path: &str) -> Option<&'a str> {
    r.fields
        .iter()
        .find(|(k, _)| k == path)
        .map(|(_, v)| v.as_str())
}

#[test]
fn generated_sysmon_file_reads_back() {
    let file = sysmon_file(&sample_events());
    let (records, errors) = read_all(&file);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(records.len(), 4);
    let r = &records[0];
    assert_eq!(r.id, 1);
    assert_eq!(r.offset, (HEADER_BLOCK + 512) as u64);
    assert_eq!(field(r, "Event.System.EventID"), Some("3"));
    assert_eq!(
        field(r, "Event.System.Provider.#attributes.Name"),
        Some("Microsoft-Windows-Sysmon")
    );
    assert_eq!(
        field(r, "Event.System.TimeCreated.#attributes.SystemTime"),
        Some("2026-01-10T10:00:00.000000Z")
    );
    assert_eq!(
        field(r, "Event.System.Channel"),
        Some("Microsoft-Windows-Sysmon/Operational")
    );
    assert_eq!(field(r, "Event.System.Computer"), Some("WS-ANA"));
    assert_eq!(field(r, "Event.EventData.SourceIp"), Some("203.0.113.7"));
    assert_eq!(
        field(r, "Event.EventData.Image"),
        Some(r"C:\Users\ana\AppData\Local\Programs\Ollama\ollama.exe")
    );
    assert_eq!(field(&records[2], "Event.System.EventID"), Some("1"));
    assert_eq!(
        field(&records[3], "Event.EventData.QueryName"),
        Some("exfil.example.net")
    );
}

#[test]
fn many_records_span_chunks() {
    let mut events = Vec::new();
    for _ in 0..200 {
        events.extend(sample_events());
    }
    let file = sysmon_file(&events);
    assert!(file.len() > HEADER_BLOCK + CHUNK_SIZE);
    let (records, errors) = read_all(&file);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(records.len(), 800);
    assert_eq!(records.last().unwrap().id, 800);
}

#[test]
fn damage_is_reported_not_fatal() {
    let good = sysmon_file(&sample_events());

    // A flipped byte in the header: checksum reported, records still read.
    let mut f = good.clone();
    f[50] ^= 0xff;
    let (records, errors) = read_all(&f);
    assert_eq!(records.len(), 4);
    assert!(errors[0].contains("file header checksum"), "{errors:?}");

    // A flipped byte inside record data: data checksum reported.
    let mut f = good.clone();
    let last = f.len() - CHUNK_SIZE + 600;
    f[last] ^= 0x01;
    let (_, errors) = read_all(&f);
    assert!(
        errors.iter().any(|e| e.contains("record data checksum")),
        "{errors:?}"
    );

    // A record claiming 4 GiB: that record is lost, the walk resumes at the next one.
    let mut f = good.clone();
    let size_at = HEADER_BLOCK + 512 + 4;
    f[size_at..size_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let (records, errors) = read_all(&f);
    assert_eq!(records.len(), 3);
    assert!(errors.iter().any(|e| e.contains("record 1 ")), "{errors:?}");

    // Truncated in the middle of the chunk.
    let (records, errors) = read_all(&good[..HEADER_BLOCK + 1000]);
    assert!(
        errors.iter().any(|e| e.contains("truncated chunk")),
        "{errors:?}"
    );
    assert!(records.len() <= 1);
}

#[test]
fn every_single_byte_corruption_is_survived() {
    let good = sysmon_file(&sample_events()[..2]);
    let end = HEADER_BLOCK + 512 + 1200;
    for i in (0..end.min(good.len())).step_by(5) {
        for v in [0x00u8, 0xff, 0x41] {
            let mut f = good.clone();
            f[i] = v;
            let _ = read_all(&f);
        }
    }
}
