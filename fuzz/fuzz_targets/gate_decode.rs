#![no_main]
//! Request-body decoding (gzip, zstd) on arbitrary bytes: never panics and never returns more
//! than the output bound, whatever the input claims.

use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let encoding: &[u8] = match selector % 4 {
        0 => b"gzip",
        1 => b"zstd",
        2 => b"identity",
        _ => b"br",
    };
    match corral_gate::fuzzing::decode(encoding, body, LIMIT) {
        Ok(n) => assert!(n <= LIMIT),
        Err(status) => assert!(matches!(status, 400 | 413 | 415)),
    }
});
