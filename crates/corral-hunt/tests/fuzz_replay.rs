//! Replays the fuzz corpora (fuzz/corpus/hunt_*) through the same calls the fuzz targets
//! make, so the seeds stay meaningful and the hostile ones keep passing without a fuzzer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Cursor;
use std::path::Path;

use corral_hunt::engine::{Engine, Findings};
use corral_hunt::event::Schema;
use corral_hunt::export::{export, ExportFormat};
use corral_hunt::formats::Reader;
use corral_hunt::pipeline::{process_chunk, run, Progress};
use corral_hunt::rule::matcher::Compiled;
use corral_hunt::rule::parse_rules;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    rd.filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .collect()
}

#[test]
fn line_readers_survive_their_corpora() {
    let engine = Engine::new(corral_hunt::builtin::rules().unwrap()).unwrap();
    for (target, reader) in [
        ("hunt_ndjson", Reader::JsonLines),
        ("hunt_zeek", Reader::ZeekTsv),
        ("hunt_gin", Reader::Gin),
    ] {
        for data in seeds(target) {
            let mut out = Findings::default();
            process_chunk(&engine, reader, 0, &data, 1, 0, None, &mut out);
            assert!(
                out.events + out.malformed + out.skipped > 0
                    || data.iter().all(|b| b.is_ascii_whitespace() || *b == b'#')
                    || reader == Reader::ZeekTsv,
                "{target}: nothing accounted for"
            );
        }
    }
    let mut progress = Progress::new(false);
    for data in seeds("hunt_auditd") {
        let (_f, err) = run(
            &engine,
            Reader::Auditd,
            Box::new(Cursor::new(data.clone())),
            0,
            1,
            &mut progress,
            "x",
            &mut |_| {},
        );
        assert!(err.is_none());
        let _ = run(
            &engine,
            Reader::JsonStream,
            Box::new(Cursor::new(data)),
            0,
            1,
            &mut progress,
            "x",
            &mut |_| {},
        );
    }
}

#[test]
fn rule_parser_survives_its_corpus() {
    for data in seeds("hunt_sigma") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        let (rules, _) = parse_rules(text, "seed");
        let mut schema = Schema::new();
        for r in &rules {
            Compiled::new(r, &mut schema).unwrap();
            for f in [ExportFormat::Sigma, ExportFormat::Eql, ExportFormat::Spl] {
                export(r, "s", text, f).unwrap();
            }
        }
    }
}

#[test]
fn overlong_and_unterminated_input() {
    let engine = Engine::new(corral_hunt::builtin::rules().unwrap()).unwrap();
    let mut progress = Progress::new(false);
    // 20 MiB without a newline, then a valid record: one malformed, one event.
    let mut data = vec![b'x'; 20 << 20];
    data.extend_from_slice(b"\n{\"a\":1}\n{\"b\":2}");
    let (f, err) = run(
        &engine,
        Reader::JsonLines,
        Box::new(Cursor::new(data)),
        0,
        2,
        &mut progress,
        "x",
        &mut |_| {},
    );
    assert!(err.is_none());
    assert_eq!(f.malformed, 1);
    assert_eq!(f.malformed_samples[0].line, 1);
    assert_eq!(
        f.events, 2,
        "the record after the long line and the unterminated last line"
    );
    let (f, _) = run(
        &engine,
        Reader::JsonStream,
        Box::new(Cursor::new(b"{\n\"a\": [1,\n".to_vec())),
        0,
        1,
        &mut progress,
        "x",
        &mut |_| {},
    );
    assert_eq!(f.malformed, 1);
}

#[test]
fn an_overlong_auditd_line_is_one_malformed_record() {
    // The part of a line past the 16 MiB limit is the same line: it must not be read as
    // further records (nor shift the line numbers of the records after it).
    let engine = Engine::new(corral_hunt::builtin::rules().unwrap()).unwrap();
    let mut progress = Progress::new(false);
    let record = |serial: u32| {
        format!(
            "type=SYSCALL msg=audit(1768039300.100:{serial}): arch=c000003e syscall=49 success=yes exit=0 a0=3 items=0 ppid=1 pid=900 uid=998 comm=\"ollama\" exe=\"/usr/local/bin/ollama\"\ntype=SOCKADDR msg=audit(1768039300.100:{serial}): saddr=02002CAA000000000000000000000000\ntype=EOE msg=audit(1768039300.100:{serial}):\n"
        )
    };
    let mut data = record(1).into_bytes();
    data.extend_from_slice(b"type=PROCTITLE msg=audit(1768039300.100:2): proctitle=");
    data.extend(std::iter::repeat_n(b'A', (16 << 20) + 10));
    // What a naive reader would take for three more records.
    data.extend_from_slice(record(3).replace('\n', " ").as_bytes());
    data.extend_from_slice(b"\n");
    data.extend_from_slice(record(4).as_bytes());
    let mut lines: Vec<u64> = Vec::new();
    let (f, err) = run(
        &engine,
        Reader::Auditd,
        Box::new(Cursor::new(data)),
        0,
        1,
        &mut progress,
        "x",
        &mut |alerts| lines.extend(alerts.iter().map(|a| a.line)),
    );
    assert!(err.is_none());
    assert_eq!(f.malformed, 1, "{:?}", f.malformed_samples);
    assert_eq!(f.malformed_samples[0].line, 4);
    assert_eq!(f.events, 2);
    // The last group starts on line 5: the long line counted once.
    lines.dedup();
    assert_eq!(lines, [1, 5]);
}

#[test]
fn an_oversized_pretty_json_record_is_one_malformed_record() {
    // What a record over the 16 MiB limit contains is part of it: an object nested in it must
    // not be read as an event of its own, nor its closing lines as malformed records.
    let engine = Engine::new(corral_hunt::builtin::rules().unwrap()).unwrap();
    let mut progress = Progress::new(false);
    let accepted = |ip: &str| {
        format!(
            "{{\"event\":{{\"action\":\"connection_accepted\"}},\"process\":{{\"name\":\"ollama\"}},\"destination\":{{\"port\":11434}},\"source\":{{\"ip\":\"{ip}\"}}}}"
        )
    };
    let piece = format!("    \"{}\",\n", "A".repeat(1 << 20));
    for one_line in [false, true] {
        let mut data = format!("{}\n", accepted("203.0.113.1")).into_bytes();
        data.extend_from_slice(b"{\n  \"pad\": [\n");
        for _ in 0..17 {
            let p = if one_line { piece.trim() } else { &piece };
            data.extend_from_slice(p.as_bytes());
        }
        // Braces and a quote inside strings are not structure.
        data.extend_from_slice(b"    \"} ] { \\\" \",\n");
        data.extend_from_slice(format!("    {},\n", accepted("203.0.113.2")).as_bytes());
        data.extend_from_slice(b"    1\n  ],\n  \"x\": {\"y\": 1}\n}\n");
        data.extend_from_slice(format!("{}\n", accepted("203.0.113.3")).as_bytes());
        let mut ips: Vec<String> = Vec::new();
        let mut lines: Vec<u64> = Vec::new();
        let (f, err) = run(
            &engine,
            Reader::JsonStream,
            Box::new(Cursor::new(data)),
            0,
            1,
            &mut progress,
            "x",
            &mut |alerts| {
                for a in alerts {
                    lines.push(a.line);
                    ips.push(a.source_ip.clone().unwrap_or_default());
                }
            },
        );
        assert!(err.is_none());
        assert_eq!(f.malformed, 1, "{:?}", f.malformed_samples);
        assert_eq!(f.malformed_samples[0].line, 2);
        assert_eq!(f.events, 2, "one_line={one_line}");
        assert_eq!(ips, ["203.0.113.1", "203.0.113.3"], "one_line={one_line}");
        let last = if one_line { 10 } else { 27 };
        assert_eq!(lines, [1, last], "one_line={one_line}");
    }
}

#[test]
fn malformed_reasons_are_short_and_printable() {
    // serde_json quotes a string value in its message: the reason must not carry a megabyte of
    // the record, nor its control characters, to the terminal.
    let engine = Engine::new(corral_hunt::builtin::rules().unwrap()).unwrap();
    let mut out = Findings::default();
    let data = format!("\"{}\"\n", "A".repeat(1 << 20));
    process_chunk(
        &engine,
        Reader::JsonLines,
        0,
        data.as_bytes(),
        1,
        0,
        None,
        &mut out,
    );
    out.malformed(2, "bad \u{1b}[31mred\r");
    assert_eq!(out.malformed, 2);
    let first = &out.malformed_samples[0].reason;
    assert!(first.contains("AAAA"), "{first}");
    assert!(first.chars().count() <= 201, "{} chars", first.len());
    assert_eq!(out.malformed_samples[1].reason, "bad \\u{1b}[31mred\\r");
}

#[test]
fn a_damaged_evtx_record_header_costs_that_record_not_its_chunk() {
    use corral_hunt::formats::evtx::fixture::{sample_events, sysmon_file};
    let engine = Engine::new(corral_hunt::builtin::rules().unwrap()).unwrap();
    let good = sysmon_file(&sample_events());
    let count = |data: Vec<u8>| {
        let mut p = Progress::new(false);
        let (f, err) = run(
            &engine,
            Reader::Evtx,
            Box::new(Cursor::new(data)),
            0,
            1,
            &mut p,
            "x",
            &mut |_| {},
        );
        assert!(err.is_none());
        (f.events, f.malformed)
    };
    let (all, _) = count(good.clone());
    assert!(all >= 3);
    // First record: size field out of bounds; then its signature broken.
    let mut huge = good.clone();
    huge[4096 + 516..4096 + 520].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut sig = good.clone();
    sig[4096 + 512] = b'X';
    for damaged in [huge, sig] {
        let (events, malformed) = count(damaged);
        assert!(malformed >= 1);
        assert_eq!(
            events,
            all - 1,
            "the records after the damaged one were lost"
        );
    }
}

/// EVTX seeds: a valid generated file and damaged copies (truncated header, bad checksums,
/// huge sizes, unknown tokens). `WRITE_EVTX_SEEDS=1` rewrites them from the fixture writer.
#[test]
fn evtx_reader_survives_its_corpus() {
    use corral_hunt::formats::evtx::fixture::{sample_events, sysmon_file};
    let good = sysmon_file(&sample_events());
    if std::env::var_os("WRITE_EVTX_SEEDS").is_some() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/hunt_evtx");
        std::fs::create_dir_all(&dir).unwrap();
        let put = |name: &str, data: &[u8]| std::fs::write(dir.join(name), data).unwrap();
        put("sysmon_valid", &good);
        put("header_only", &good[..4096]);
        put("truncated_header", &good[..100]);
        put("truncated_chunk", &good[..4096 + 900]);
        let mut f = good.clone();
        f[60] ^= 0xff;
        put("bad_header_crc", &f);
        let mut f = good.clone();
        f[4096 + 700] ^= 0x01;
        put("bad_data_crc", &f);
        let mut f = good.clone();
        f[4096 + 516..4096 + 520].copy_from_slice(&u32::MAX.to_le_bytes());
        put("huge_record_size", &f);
        let mut f = good.clone();
        f[4096 + 48..4096 + 52].copy_from_slice(&u32::MAX.to_le_bytes());
        put("huge_free_offset", &f);
        let mut f = good.clone();
        f[4096 + 512 + 24 + 4] = 0x3c; // unknown token where the template instance is
        put("unknown_token", &f);
        let mut f = good.clone();
        // Template definition offset pointing at the chunk's end.
        f[4096 + 512 + 24 + 10..4096 + 512 + 24 + 14].copy_from_slice(&65530u32.to_le_bytes());
        put("template_offset_oob", &f);
        let mut f = good.clone();
        f[4096..4104].copy_from_slice(b"NotChnk\0");
        put("bad_chunk_magic", &f);
    }
    let engine = Engine::new(corral_hunt::builtin::rules().unwrap()).unwrap();
    let mut progress = Progress::new(false);
    let seeds = seeds("hunt_evtx");
    assert!(seeds.len() >= 10, "fuzz/corpus/hunt_evtx is missing");
    for data in seeds {
        let valid = data == good;
        let (f, err) = run(
            &engine,
            Reader::Evtx,
            Box::new(Cursor::new(data.clone())),
            0,
            1,
            &mut progress,
            "x",
            &mut |_| {},
        );
        if valid {
            assert!(err.is_none() && f.malformed == 0 && f.events == 4);
        } else if data.len() == 4096 {
            // A header and no chunks: an empty log.
            assert!(err.is_none() && f.events == 0);
        } else {
            assert!(err.is_some() || f.malformed > 0, "damage went unreported");
        }
    }
}
