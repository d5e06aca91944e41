#![no_main]
//! Any bytes through the ndjson reader and every built-in rule: no panic, bounded work.

use std::sync::OnceLock;

use corral_hunt::engine::{Engine, Findings};
use corral_hunt::formats::Reader;
use corral_hunt::pipeline::process_chunk;

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
    let mut out = Findings::default();
    process_chunk(engine(), Reader::JsonLines, 0, data, 1, 0, None, &mut out);
});
