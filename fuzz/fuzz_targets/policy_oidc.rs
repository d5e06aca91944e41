#![no_main]
//! OIDC tokens and the identity provider's documents on arbitrary bytes.
//!
//! Input starting with `{`: a key set and a discovery document (`Jwks::parse`,
//! `parse_discovery`): never a panic, never more than `MAX_KEYS` keys, and refused keys named
//! without control characters. Anything else: a token
//! verified against a fixed key set (an Ed25519 and a P-256 key whose private halves are not
//! here) at a fixed time: never a panic, and never accepted — a token the fuzzer writes cannot
//! carry a valid signature, so an `Ok` would be a forgery getting through.

use std::sync::OnceLock;

use corral_policy::config::{Config, OidcSection};
use corral_policy::oidc::{self, Jwks};
use libfuzzer_sys::fuzz_target;

const ISSUER: &str = "https://id.example.com/realms/ml";
const JWKS: &str = r#"{"keys":[
 {"kty":"OKP","crv":"Ed25519","kid":"ed","x":"Aq2WtVIhadQGQmJ9drSyIeUAwP5KfgZSTgYtuGbqCPs"},
 {"kty":"EC","crv":"P-256","kid":"ec","use":"sig",
  "x":"p7NBPXZWzcecZUD1dgmjG6nzA2KKqGUeuEHQgVCPIgw","y":"m8yQRri9b6dTvjn1cPS3EqYxICGQ25tuhspIRjuaR-s"}
]}"#;

fn fixture() -> Option<&'static (Jwks, OidcSection)> {
    static FIXTURE: OnceLock<Option<(Jwks, OidcSection)>> = OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let keys = Jwks::parse(JWKS.as_bytes()).ok()?;
            let config = Config::from_toml_str(&format!(
                "[oidc]\nissuer = \"{ISSUER}\"\naudience = \"corral\"\n\
                 algorithms = [\"RS256\", \"PS256\", \"ES256\", \"ES384\", \"EdDSA\"]\n\
                 roles_claim = \"realm_access.roles\"\ndefault_policy = \"user\"\n\
                 [oidc.policies]\n\"ml-admins\" = \"admin\"\n"
            ))
            .ok()?;
            let section = (*config.oidc?).clone();
            Some((keys, section))
        })
        .as_ref()
}

fuzz_target!(|data: &[u8]| {
    if data.first() == Some(&b'{') {
        match Jwks::parse(data) {
            Ok(keys) => {
                assert!(!keys.is_empty());
                assert!(keys.len() + keys.refused().len() <= oidc::MAX_KEYS);
                for refused in keys.refused() {
                    // A refused key's kid is cut and its text escapes control characters.
                    assert!(refused.kid.as_ref().is_none_or(|k| k.chars().count() <= 64));
                    assert!(!refused.to_string().chars().any(char::is_control));
                }
            }
            Err(e @ oidc::JwksError::NoUsableKeys(_)) => {
                assert!(!e.to_string().chars().any(char::is_control));
            }
            Err(_) => {}
        }
        let _ = oidc::parse_discovery(data, ISSUER);
        return;
    }
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let Some((keys, config)) = fixture() else {
        panic!("the fixture key set and configuration are valid");
    };
    let verdict = oidc::verify(token, keys, config, 1_800_000_000);
    assert!(
        verdict.is_err(),
        "a token without a real signature verified"
    );
    let _ = oidc::looks_like_token(token);
});
