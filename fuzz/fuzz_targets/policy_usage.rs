//! Fuzzes the usage tap: the answer must not depend on how the body is cut into chunks.
#![no_main]

use corral_policy::usage::{ResponseFormat, UsageTap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, body)) = data.split_first() else { return };
    let mut whole = UsageTap::new(ResponseFormat::Ndjson);
    whole.feed(body);
    let mut pieces = UsageTap::new(ResponseFormat::Sse);
    let step = usize::from(cut).max(1);
    for chunk in body.chunks(step) {
        pieces.feed(chunk);
    }
    assert_eq!(whole.finish(), pieces.finish());
    let mut bytes = UsageTap::new(ResponseFormat::Json);
    for b in body {
        bytes.feed(std::slice::from_ref(b));
    }
    assert_eq!(whole.finish(), bytes.finish());
});
