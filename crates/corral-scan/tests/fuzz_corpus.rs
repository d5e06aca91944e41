//! Replays the fuzz corpora (fuzz/corpus/scan_*) through the fuzzing entry points, so every
//! hostile seed is exercised by `cargo test` without cargo-fuzz.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        f(&data);
        // Every prefix too: cut-off input is what a hostile peer sends.
        for cut in (0..data.len()).step_by(7) {
            f(&data[..cut]);
        }
        n += 1;
    }
    n
}

#[test]
fn scan_targets_corpus() {
    assert!(replay("scan_targets", corral_scan::fuzzing::targets) >= 8);
}

#[test]
fn scan_http_response_corpus() {
    assert!(replay("scan_http_response", corral_scan::fuzzing::http_response) >= 9);
}

#[test]
fn scan_ollama_json_corpus() {
    assert!(replay("scan_ollama_json", corral_scan::fuzzing::ollama_json) >= 7);
}
