#![no_main]
//! The gate's reader of upstream responses (head, framing, chunked body) on arbitrary bytes:
//! never panics, and the answer does not depend on how the bytes were split into reads.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&step, response)) = data.split_first() else {
        return;
    };
    let whole = corral_gate::fuzzing::upstream_response(response, response.len());
    let split = corral_gate::fuzzing::upstream_response(response, usize::from(step % 16) + 1);
    assert_eq!(whole, split);
    if let Some((_, len)) = whole {
        assert!(len <= response.len());
    }
});
