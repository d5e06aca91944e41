#![no_main]
//! Any bytes through the auditd reader (record grouping, saddr and EXECVE decoding, pid
//! table) and every built-in rule.

use std::io::Cursor;
use std::sync::OnceLock;

use corral_hunt::engine::Engine;
use corral_hunt::formats::Reader;
use corral_hunt::pipeline::{run, Progress};

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| {
        match corral_hunt::builtin::rules()
            .ok()
            .and_then(|r| Engine::new(r).ok())
        {
            Some(e) => e,
            None => std::process::abort(),
        }
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut progress = Progress::new(false);
    let _ = run(
        engine(),
        Reader::Auditd,
        Box::new(Cursor::new(data.to_vec())),
        0,
        1,
        &mut progress,
        "fuzz",
        &mut |_| {},
    );
    let _ = run(
        engine(),
        Reader::JsonStream,
        Box::new(Cursor::new(data.to_vec())),
        0,
        1,
        &mut progress,
        "fuzz",
        &mut |_| {},
    );
});
