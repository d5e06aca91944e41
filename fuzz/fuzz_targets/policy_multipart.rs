//! Fuzzes the multipart `model` finder: the first line is the content type, the rest the
//! body. It must never panic, and a found model is a bounded, control-free string.
#![no_main]

use corral_policy::inspect;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let Ok(ct) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let body = data.get(split + 1..).unwrap_or(&[]);
    if let Ok(Some(model)) = inspect::multipart_model(ct, body) {
        assert!(!model.is_empty() && model.len() <= 512);
        assert!(!model.chars().any(char::is_control));
    }
});
