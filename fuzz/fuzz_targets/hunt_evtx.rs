#![no_main]
//! Any bytes as an EVTX file through the reader and every built-in rule: no panic, bounded
//! work, every problem counted.

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
        Reader::Evtx,
        Box::new(Cursor::new(data.to_vec())),
        0,
        1,
        &mut progress,
        "fuzz.evtx",
        &mut |_| {},
    );
});
