//! Fuzzes the usage tap and the usage-chunk filter: neither answer (the counts, whether the
//! upstream reported an error, whether the stream reached its end) may depend on how the body is cut into chunks, and the filter
//! only ever removes whole events.
#![no_main]

use corral_policy::usage::{ResponseFormat, UsageChunkFilter, UsageTap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, body)) = data.split_first() else {
        return;
    };
    let mut whole = UsageTap::new(ResponseFormat::Ndjson);
    whole.feed(body);
    let mut pieces = UsageTap::new(ResponseFormat::Sse);
    let step = usize::from(cut).max(1);
    for chunk in body.chunks(step) {
        pieces.feed(chunk);
    }
    assert_eq!(whole.finish(), pieces.finish());
    assert_eq!(whole.reported_error(), pieces.reported_error());
    assert_eq!(whole.saw_end(), pieces.saw_end());
    // An error needs the word.
    if whole.reported_error() {
        assert!(body.windows(5).any(|w| w == b"error"));
    }
    let mut bytes = UsageTap::new(ResponseFormat::Json);
    for b in body {
        bytes.feed(std::slice::from_ref(b));
    }
    assert_eq!(whole.finish(), bytes.finish());
    assert_eq!(whole.reported_error(), bytes.reported_error());
    assert_eq!(whole.saw_end(), bytes.saw_end());

    let filter = |pieces: &mut dyn Iterator<Item = &[u8]>| {
        let mut f = UsageChunkFilter::new();
        let mut out = Vec::new();
        for p in pieces {
            out.extend(f.feed(p));
        }
        out.extend(f.finish());
        out
    };
    let once = filter(&mut std::iter::once(body));
    assert_eq!(once, filter(&mut body.chunks(step)));
    assert_eq!(once, filter(&mut body.chunks(1)));
    assert!(once.len() <= body.len());
    if !body.windows(7).any(|w| w == b"\"usage\"") {
        assert_eq!(once, body);
    }
});
