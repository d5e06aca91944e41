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
    );
    assert_eq!(f.malformed, 1);
}
