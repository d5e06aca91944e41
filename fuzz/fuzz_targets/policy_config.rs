//! Fuzzes configuration parsing: any text gives a config or an error naming a location,
//! never a panic; a parsed config always has the built-in policies.
#![no_main]

use corral_policy::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml_str(text) {
        Ok(c) => {
            assert!(c.policy("user").is_some());
            assert!(c.policy("admin").is_some());
            for (name, p) in &c.policies {
                assert_eq!(name, &p.name);
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
