#![no_main]
//! `Authorization` header parsing on arbitrary bytes: never panics, and a key it returns is
//! never empty and never contains a space.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(key) = corral_gate::fuzzing::authorization(data) {
        assert!(!key.is_empty());
        assert!(!key.contains(' '));
    }
});
