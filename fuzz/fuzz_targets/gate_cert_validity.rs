#![no_main]
//! The certificate date reader (`--tls-cert` at start-up) on arbitrary bytes: never panics,
//! and the dates it reads give the verdicts their edges call for.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = corral_gate::fuzzing::cert_validity(data);
});
