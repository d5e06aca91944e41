#![no_main]
//! The client-certificate name reader (mutual TLS: `client_cert_names`, the audit's
//! `tls.client.*`, the client CA bundle's CA check) on arbitrary bytes: never panics, and
//! what it reads stays bounded.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = corral_gate::fuzzing::client_identity(data);
});
