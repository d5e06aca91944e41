#![no_main]
//! The audit log verifier on arbitrary bytes: never panics, and never reports more intact
//! records than there are complete lines.

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let report = corral_audit::verify_bytes(Path::new("fuzz.ndjson"), data);
    let lines = data.iter().filter(|&&b| b == b'\n').count() as u64;
    assert!(report.records <= lines);
    if let Some(p) = &report.first_problem {
        assert!(p.line >= 1 && p.line <= lines + 1);
    }
    let _ = report.to_string();
});
