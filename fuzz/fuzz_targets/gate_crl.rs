#![no_main]
//! The certificate revocation list reader (`server.tls_client_crl`: a v1 list or one without
//! a CRL number explained, every client CA needing a list, a stale list warned of) on
//! arbitrary bytes: never panics.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = corral_gate::fuzzing::crl(data);
});
