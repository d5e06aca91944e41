use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
    ECDSA_P384_SHA384_FIXED_SIGNING, RSA_PKCS1_SHA256, RSA_PSS_SHA256,
};
use serde_json::{json, Value};

use super::*;
use crate::config::Config;

const NOW: i64 = 1_800_000_000;
const ISS: &str = "https://id.example.com/realms/ml";

/// A 2048-bit RSA key made once with `openssl genpkey` (ring cannot generate RSA keys).
const RSA_PKCS8: &[u8] = include_bytes!("test-rsa2048.pk8");

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn oidc(extra: &str) -> OidcSection {
    let text = format!(
        r#"
[oidc]
issuer = "{ISS}"
audience = "corral"
default_policy = "user"
{extra}
"#
    );
    let c = Config::from_toml_str(&text).unwrap();
    (*c.oidc.unwrap()).clone()
}

enum Signer {
    Rsa(RsaKeyPair),
    P256(EcdsaKeyPair),
    P384(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl Signer {
    fn rsa() -> Signer {
        Signer::Rsa(RsaKeyPair::from_pkcs8(RSA_PKCS8).unwrap())
    }
    fn p256() -> Signer {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Signer::P256(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref(), &rng).unwrap(),
        )
    }
    fn p384() -> Signer {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
        Signer::P384(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, doc.as_ref(), &rng).unwrap(),
        )
    }
    fn ed() -> Signer {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Signer::Ed(Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap())
    }

    fn jwk(&self, kid: &str) -> Value {
        match self {
            Signer::Rsa(k) => {
                let c: ring::signature::RsaPublicKeyComponents<Vec<u8>> = k.public().into();
                json!({"kty": "RSA", "kid": kid, "use": "sig", "n": b64(&c.n), "e": b64(&c.e)})
            }
            Signer::P256(k) | Signer::P384(k) => {
                let p = k.public_key().as_ref();
                let len = (p.len() - 1) / 2;
                let crv = if len == 32 { "P-256" } else { "P-384" };
                json!({"kty": "EC", "crv": crv, "kid": kid,
                       "x": b64(&p[1..1 + len]), "y": b64(&p[1 + len..])})
            }
            Signer::Ed(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(k.public_key().as_ref())})
            }
        }
    }

    fn sign(&self, alg: &str, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Signer::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                let padding: &dyn ring::signature::RsaEncoding = if alg.starts_with("PS") {
                    &RSA_PSS_SHA256
                } else {
                    &RSA_PKCS1_SHA256
                };
                k.sign(padding, &rng, message, &mut sig).unwrap();
                sig
            }
            Signer::P256(k) | Signer::P384(k) => k.sign(&rng, message).unwrap().as_ref().to_vec(),
            Signer::Ed(k) => k.sign(message).as_ref().to_vec(),
        }
    }

    /// A token of `header` and `claims` signed by this key.
    fn token(&self, header: &Value, claims: &Value) -> String {
        let alg = header["alg"].as_str().unwrap_or("");
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self.sign(alg, signed.as_bytes());
        format!("{signed}.{}", b64(&sig))
    }
}

fn jwks(keys: &[Value]) -> Jwks {
    Jwks::parse(json!({ "keys": keys }).to_string().as_bytes()).unwrap()
}

fn claims() -> Value {
    json!({
        "iss": ISS, "aud": "corral", "sub": "u-123", "preferred_username": "alice",
        "exp": NOW + 300, "iat": NOW - 10, "nbf": NOW - 10,
    })
}

fn with(mut base: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            base.as_object_mut().unwrap().remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    base
}

/// Verifies a P-256 token of `claims` under `oidc("")`.
fn es256(claims: Value) -> Result<Identity, TokenError> {
    let k = Signer::p256();
    let t = k.token(&json!({"alg": "ES256", "kid": "a"}), &claims);
    verify(&t, &jwks(&[k.jwk("a")]), &oidc(""), NOW)
}

#[test]
fn a_good_token_names_its_user_and_policy() {
    let id = es256(claims()).unwrap();
    assert_eq!(id.user, "u-123");
    assert_eq!(id.policy.as_deref(), Some("user"));
    assert_eq!(id.expires_at, NOW + 300);
}

#[test]
fn every_key_type_verifies_with_its_algorithm() {
    let all = r#"algorithms = ["RS256", "PS256", "ES256", "ES384", "EdDSA"]"#;
    for (signer, alg) in [
        (Signer::rsa(), "RS256"),
        (Signer::rsa(), "PS256"),
        (Signer::p256(), "ES256"),
        (Signer::p384(), "ES384"),
        (Signer::ed(), "EdDSA"),
    ] {
        let t = signer.token(&json!({"alg": alg, "kid": "k"}), &claims());
        let r = verify(&t, &jwks(&[signer.jwk("k")]), &oidc(all), NOW);
        assert!(r.is_ok(), "{alg}: {r:?}");
    }
}

#[test]
fn time_claims_are_honoured_with_the_leeway() {
    // exp: refused from exp + leeway (60 s) on.
    assert!(es256(with(claims(), json!({"exp": NOW - 59}))).is_ok());
    assert_eq!(
        es256(with(claims(), json!({"exp": NOW - 60}))),
        Err(TokenError::Expired)
    );
    assert_eq!(
        es256(with(claims(), json!({"exp": null}))),
        Err(TokenError::NoExpiry)
    );
    assert_eq!(
        es256(with(claims(), json!({"exp": "tomorrow"}))),
        Err(TokenError::Malformed)
    );
    // Fractional and huge dates are read, saturating.
    assert!(es256(with(claims(), json!({"exp": 1e300}))).is_ok());
    assert!(es256(with(claims(), json!({"exp": (NOW + 10) as f64 + 0.5}))).is_ok());
    assert!(es256(with(claims(), json!({"exp": u64::MAX}))).is_ok());
    // nbf and iat in the future beyond the leeway.
    assert!(es256(with(claims(), json!({"nbf": NOW + 60}))).is_ok());
    assert_eq!(
        es256(with(claims(), json!({"nbf": NOW + 61}))),
        Err(TokenError::NotYetValid)
    );
    assert_eq!(
        es256(with(claims(), json!({"iat": NOW + 3600}))),
        Err(TokenError::IssuedInFuture)
    );
}

#[test]
fn issuer_and_audience_must_be_exact() {
    for iss in [
        json!("https://id.example.com/realms/ml/"),
        json!("https://id.example.com/realms/other"),
        json!([ISS]),
        Value::Null,
    ] {
        assert_eq!(
            es256(with(claims(), json!({ "iss": iss }))),
            Err(TokenError::WrongIssuer),
            "{iss}"
        );
    }
    for aud in [
        json!("corral2"),
        json!("Corral"),
        json!([]),
        json!(["x", 1]),
        Value::Null,
    ] {
        assert_eq!(
            es256(with(claims(), json!({ "aud": aud }))),
            Err(TokenError::WrongAudience),
            "{aud}"
        );
    }
    assert!(es256(with(claims(), json!({"aud": ["account", "corral"]}))).is_ok());
}

#[test]
fn unsigned_and_hmac_tokens_are_refused() {
    let k = Signer::p256();
    let keys = jwks(&[k.jwk("a")]);
    let body = b64(claims().to_string().as_bytes());
    for alg in ["none", "None", "HS256", "", "ES512"] {
        let header = b64(json!({"alg": alg, "kid": "a"}).to_string().as_bytes());
        for sig in ["", "AAAA"] {
            let t = format!("{header}.{body}.{sig}");
            assert_eq!(
                verify(&t, &keys, &oidc(""), NOW),
                Err(TokenError::BadAlgorithm),
                "{alg}"
            );
        }
    }
    let no_alg = b64(json!({"kid": "a"}).to_string().as_bytes());
    assert_eq!(
        verify(&format!("{no_alg}.{body}.AAAA"), &keys, &oidc(""), NOW),
        Err(TokenError::BadAlgorithm)
    );
}

#[test]
fn hs256_signed_with_the_public_key_is_refused() {
    // The classic confusion: the attacker signs with HMAC, using the published RSA key as
    // the secret. HS256 is not an algorithm corral knows, whatever the configuration.
    let k = Signer::rsa();
    let jwk = k.jwk("r");
    let secret = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        jwk["n"].as_str().unwrap().as_bytes(),
    );
    let signed = format!(
        "{}.{}",
        b64(json!({"alg": "HS256", "kid": "r"}).to_string().as_bytes()),
        b64(claims().to_string().as_bytes())
    );
    let tag = ring::hmac::sign(&secret, signed.as_bytes());
    let t = format!("{signed}.{}", b64(tag.as_ref()));
    assert_eq!(
        verify(&t, &jwks(&[jwk]), &oidc(""), NOW),
        Err(TokenError::BadAlgorithm)
    );
}

#[test]
fn an_algorithm_not_configured_is_refused() {
    let k = Signer::rsa();
    let t = k.token(&json!({"alg": "RS256", "kid": "r"}), &claims());
    let keys = jwks(&[k.jwk("r")]);
    assert!(verify(&t, &keys, &oidc(""), NOW).is_ok());
    assert_eq!(
        verify(&t, &keys, &oidc(r#"algorithms = ["ES256"]"#), NOW),
        Err(TokenError::BadAlgorithm)
    );
}

#[test]
fn the_key_must_fit_the_algorithm() {
    // An EC key named by a token claiming RS256, an RSA key for ES256, a key whose own alg
    // differs: none verifies.
    let ec = Signer::p256();
    let rsa = Signer::rsa();
    let keys = jwks(&[ec.jwk("ec"), rsa.jwk("rsa")]);
    let t = rsa.token(&json!({"alg": "RS256", "kid": "ec"}), &claims());
    assert_eq!(
        verify(&t, &keys, &oidc(""), NOW),
        Err(TokenError::KeyMismatch)
    );
    let t = ec.token(&json!({"alg": "ES256", "kid": "rsa"}), &claims());
    assert_eq!(
        verify(&t, &keys, &oidc(""), NOW),
        Err(TokenError::KeyMismatch)
    );
    let mut pinned = rsa.jwk("rsa");
    pinned["alg"] = json!("PS256");
    let t = rsa.token(&json!({"alg": "RS256", "kid": "rsa"}), &claims());
    assert_eq!(
        verify(&t, &jwks(&[pinned]), &oidc(""), NOW),
        Err(TokenError::KeyMismatch)
    );
    // A P-384 key does not verify ES256.
    let p384 = Signer::p384();
    let t = ec.token(&json!({"alg": "ES256", "kid": "k"}), &claims());
    assert_eq!(
        verify(&t, &jwks(&[p384.jwk("k")]), &oidc(""), NOW),
        Err(TokenError::KeyMismatch)
    );
}

#[test]
fn kid_selects_the_key_and_its_absence_needs_a_single_key() {
    let a = Signer::p256();
    let b = Signer::p256();
    let both = jwks(&[a.jwk("a"), b.jwk("b")]);
    let t = b.token(&json!({"alg": "ES256", "kid": "b"}), &claims());
    assert!(verify(&t, &both, &oidc(""), NOW).is_ok());
    let t = b.token(&json!({"alg": "ES256", "kid": "c"}), &claims());
    assert_eq!(
        verify(&t, &both, &oidc(""), NOW),
        Err(TokenError::UnknownKey)
    );
    // Signed by b, named a: a signature that does not verify.
    let t = b.token(&json!({"alg": "ES256", "kid": "a"}), &claims());
    assert_eq!(
        verify(&t, &both, &oidc(""), NOW),
        Err(TokenError::BadSignature)
    );
    let no_kid = b.token(&json!({"alg": "ES256"}), &claims());
    assert_eq!(
        verify(&no_kid, &both, &oidc(""), NOW),
        Err(TokenError::UnknownKey)
    );
    assert!(verify(&no_kid, &jwks(&[b.jwk("b")]), &oidc(""), NOW).is_ok());
    let bad_kid = b.token(&json!({"alg": "ES256", "kid": 7}), &claims());
    assert_eq!(
        verify(&bad_kid, &both, &oidc(""), NOW),
        Err(TokenError::Malformed)
    );
}

#[test]
fn crit_and_jwe_headers_are_refused() {
    let k = Signer::p256();
    let keys = jwks(&[k.jwk("a")]);
    let t = k.token(
        &json!({"alg": "ES256", "kid": "a", "crit": ["exp"], "exp": 1}),
        &claims(),
    );
    assert_eq!(
        verify(&t, &keys, &oidc(""), NOW),
        Err(TokenError::CritHeader)
    );
    let t = k.token(
        &json!({"alg": "ES256", "kid": "a", "zip": "DEF"}),
        &claims(),
    );
    assert_eq!(
        verify(&t, &keys, &oidc(""), NOW),
        Err(TokenError::Malformed)
    );
}

#[test]
fn tampering_breaks_the_signature() {
    let k = Signer::p256();
    let keys = jwks(&[k.jwk("a")]);
    let t = k.token(&json!({"alg": "ES256", "kid": "a"}), &claims());
    let parts: Vec<&str> = t.split('.').collect();
    let forged = b64(with(claims(), json!({"sub": "root"}))
        .to_string()
        .as_bytes());
    let t2 = format!("{}.{}.{}", parts[0], forged, parts[2]);
    assert_eq!(
        verify(&t2, &keys, &oidc(""), NOW),
        Err(TokenError::BadSignature)
    );
    let t3 = format!("{}.{}.", parts[0], parts[1]);
    assert_eq!(
        verify(&t3, &keys, &oidc(""), NOW),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn oversize_and_malformed_tokens_are_refused() {
    let k = Signer::p256();
    let keys = jwks(&[k.jwk("a")]);
    let big = with(claims(), json!({"pad": "x".repeat(MAX_TOKEN_BYTES)}));
    let t = k.token(&json!({"alg": "ES256", "kid": "a"}), &big);
    assert_eq!(verify(&t, &keys, &oidc(""), NOW), Err(TokenError::TooLarge));
    let header = b64(json!({"alg": "ES256", "kid": "a"}).to_string().as_bytes());
    for t in [
        String::new(),
        "a.b".to_owned(),
        "a.b.c.d".to_owned(),
        "..".to_owned(),
        format!("{header}=.e30.AAAA"),
        format!("{header}.e30.AA+A"),
        format!("{}.e30.AAAA", b64(b"not json")),
        format!("{}.e30.AAAA", b64(b"[1,2]")),
        format!("{}.e30.AAAA", b64("{\"alg\":\"ES256\"".as_bytes())),
        format!("{}.e30.AAAA", b64("\u{feff}{}".as_bytes())),
        format!("{}.e30.AAAA", b64(&[0xff, 0xfe])),
        format!(
            "{}.e30.AAAA",
            b64(json!({"alg": 256}).to_string().as_bytes())
        ),
    ] {
        assert_eq!(
            verify(&t, &keys, &oidc(""), NOW),
            Err(TokenError::Malformed),
            "{t}"
        );
    }
    // A payload that is not an object, validly signed.
    let signed = format!("{header}.{}", b64(b"[]"));
    let sig = k.sign("ES256", signed.as_bytes());
    let t = format!("{signed}.{}", b64(&sig));
    assert_eq!(
        verify(&t, &keys, &oidc(""), NOW),
        Err(TokenError::Malformed)
    );
}

#[test]
fn the_user_claim_is_configurable_and_checked() {
    let k = Signer::p256();
    let keys = jwks(&[k.jwk("a")]);
    let run = |cfg: &str, c: Value| {
        let t = k.token(&json!({"alg": "ES256", "kid": "a"}), &c);
        verify(&t, &keys, &oidc(cfg), NOW)
    };
    let id = run(r#"user_claim = "preferred_username""#, claims()).unwrap();
    assert_eq!(id.user, "alice");
    let nested = with(claims(), json!({"ext": {"login": "bob"}}));
    assert_eq!(
        run(r#"user_claim = "ext.login""#, nested).unwrap().user,
        "bob"
    );
    for bad in [
        json!(""),
        json!(42),
        json!("a\nb"),
        json!("x".repeat(300)),
        Value::Null,
    ] {
        assert_eq!(
            run("", with(claims(), json!({ "sub": bad }))),
            Err(TokenError::NoUser)
        );
    }
}

#[test]
fn user_claims_that_break_or_disguise_a_line_are_refused() {
    let k = Signer::p256();
    let keys = jwks(&[k.jwk("a")]);
    let user = |sub: &str| {
        let t = k.token(
            &json!({"alg": "ES256", "kid": "a"}),
            &with(claims(), json!({ "sub": sub })),
        );
        verify(&t, &keys, &oidc(""), NOW).map(|id| id.user)
    };
    for bad in [
        "alice\u{2028}x",         // line separator
        "alice\u{2029}x",         // paragraph separator
        "alice\u{202e}gnp.exe",   // right-to-left override
        "\u{202a}alice",          // left-to-right embedding
        "alice\u{2066}x\u{2069}", // isolates
        "al\u{200b}ice",          // zero-width space
        "al\u{200d}ice",          // zero-width joiner
        "\u{feff}alice",          // byte order mark
        "al\u{ad}ice",            // soft hyphen
        "alice\u{e0041}",         // tag character
        "alice\u{85}",            // NEL, a C1 control
        "alice\r",
        "alice\u{1b}[2J",
    ] {
        assert_eq!(user(bad), Err(TokenError::NoUser), "{bad:?}");
    }
    // Any script, `:` and `/` (GitHub's subjects), spaces and emoji are names.
    for good in [
        "josé",
        "渡辺",
        "repo:my-org/app:ref:refs/heads/main",
        "Alice Smith",
        "alice\u{a0}smith",
        "🦀",
    ] {
        assert_eq!(user(good).as_deref(), Ok(good));
    }
}

#[test]
fn the_user_claim_limit_is_120_bytes_of_utf8() {
    let k = Signer::p256();
    let keys = jwks(&[k.jwk("a")]);
    let user = |sub: &str| {
        let t = k.token(
            &json!({"alg": "ES256", "kid": "a"}),
            &with(claims(), json!({ "sub": sub })),
        );
        verify(&t, &keys, &oidc(""), NOW).map(|id| id.user)
    };
    assert!(user(&"x".repeat(120)).is_ok());
    assert_eq!(user(&"x".repeat(121)), Err(TokenError::NoUser));
    // 60 two-byte characters are 120 bytes; 61 are over, though only 61 characters.
    assert!(user(&"é".repeat(60)).is_ok());
    assert_eq!(user(&"é".repeat(61)), Err(TokenError::NoUser));
    // With its prefix, the longest user fits the audit record's 128-byte user.name whole.
    assert!("oidc:".len() + claims::MAX_USER_LEN <= 128);
}

#[test]
fn claim_values_map_to_policies_in_file_order() {
    let k = Signer::p256();
    let keys = jwks(&[k.jwk("a")]);
    let mapping = r#"
roles_claim = "realm_access.roles"
[oidc.policies]
"ml-admins" = "admin"
"ml-users" = "user"
"#;
    let strict = format!("{mapping}\n");
    let policy = |cfg: &str, c: Value| {
        let t = k.token(&json!({"alg": "ES256", "kid": "a"}), &c);
        verify(&t, &keys, &oidc(cfg), NOW).unwrap().policy
    };
    let roles = |r: Value| with(claims(), json!({"realm_access": {"roles": r}}));
    // The first entry of the table that matches decides, whatever the claim's order.
    assert_eq!(
        policy(&strict, roles(json!(["ml-users", "ml-admins"]))).as_deref(),
        Some("admin")
    );
    assert_eq!(
        policy(&strict, roles(json!(["x", "ml-users"]))).as_deref(),
        Some("user")
    );
    assert_eq!(
        policy(&strict, roles(json!("ml-admins"))).as_deref(),
        Some("admin")
    );
    // No match: the default policy (`oidc()` sets `user`).
    assert_eq!(
        policy(&strict, roles(json!(["x"]))).as_deref(),
        Some("user")
    );
    assert_eq!(
        policy(&strict, roles(json!([1, {"a": "ml-admins"}]))).as_deref(),
        Some("user")
    );
    assert_eq!(policy(&strict, claims()).as_deref(), Some("user"));
    // Without a default policy, no match means no policy.
    let text = format!(
        "[oidc]\nissuer = \"{ISS}\"\naudience = \"corral\"\nroles_claim = \"groups\"\n[oidc.policies]\n\"ml-users\" = \"user\"\n"
    );
    let cfg = Config::from_toml_str(&text).unwrap().oidc.unwrap();
    let t = k.token(
        &json!({"alg": "ES256", "kid": "a"}),
        &with(claims(), json!({"groups": ["other"]})),
    );
    assert_eq!(verify(&t, &keys, &cfg, NOW).unwrap().policy, None);
    // A claim whose name has dots is found by its exact name.
    let url_claim = r#"roles_claim = "https://corral.dev/groups"
[oidc.policies]
"ml-admins" = "admin"
"#;
    let c = with(
        claims(),
        json!({"https://corral.dev/groups": ["ml-admins"]}),
    );
    assert_eq!(policy(url_claim, c).as_deref(), Some("admin"));
}

#[test]
fn key_sets_keep_only_signature_keys_corral_verifies() {
    let k = Signer::p256();
    let mut enc = k.jwk("enc");
    enc["use"] = json!("enc");
    let mut ops = k.jwk("ops");
    ops["key_ops"] = json!(["encrypt"]);
    let set = json!({"keys": [
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "RSA", "n": "!!", "e": "AQAB"},
        enc, ops, k.jwk("good"),
    ]});
    let keys = Jwks::parse(set.to_string().as_bytes()).unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys.has_kid("good"));
    assert!(!keys.has_kid("hmac"));
    // Signature keys that could never verify are named; other types and uses are not.
    let problems: Vec<KeyProblem> = keys.refused().iter().map(|r| r.problem).collect();
    assert_eq!(
        problems,
        [
            KeyProblem::EcLength {
                curve: "P-256",
                len: 32
            },
            KeyProblem::Malformed
        ]
    );
    assert_eq!(
        Jwks::parse(b"{\"keys\": []}"),
        Err(JwksError::NoUsableKeys(vec![]))
    );
    assert_eq!(Jwks::parse(b"{}"), Err(JwksError::NoKeysArray));
    assert!(matches!(Jwks::parse(b"<html>"), Err(JwksError::NotJson(_))));
    let many: Vec<Value> = (0..101).map(|i| k.jwk(&i.to_string())).collect();
    assert_eq!(
        Jwks::parse(json!({ "keys": many }).to_string().as_bytes()),
        Err(JwksError::TooManyKeys)
    );
}

#[test]
fn discovery_names_the_issuer_exactly() {
    let doc = json!({"issuer": ISS, "jwks_uri": "https://id.example.com/certs"}).to_string();
    assert_eq!(
        parse_discovery(doc.as_bytes(), ISS).unwrap(),
        "https://id.example.com/certs"
    );
    assert!(matches!(
        parse_discovery(doc.as_bytes(), "https://id.example.com/realms/ml/"),
        Err(DiscoveryError::OtherIssuer(_))
    ));
    assert_eq!(
        parse_discovery(json!({"issuer": ISS}).to_string().as_bytes(), ISS),
        Err(DiscoveryError::NoJwksUri)
    );
    assert_eq!(parse_discovery(b"{}", ISS), Err(DiscoveryError::NoIssuer));
}

#[test]
fn tokens_are_told_from_keys_by_shape() {
    assert!(looks_like_token("a.b.c"));
    assert!(!looks_like_token("crl_a.b.c"));
    assert!(!looks_like_token("crl_abc_def"));
    assert!(!looks_like_token("a.b"));
    assert!(!looks_like_token("a.b.c.d"));
}

/// A JWK of `kty` RSA with modulus `n` and exponent `e` (big-endian bytes).
fn rsa_jwk(kid: &str, n: &[u8], e: &[u8]) -> Value {
    json!({"kty": "RSA", "kid": kid, "use": "sig", "n": b64(n), "e": b64(e)})
}

fn problem_of(key: Value) -> JwksError {
    Jwks::parse(json!({ "keys": [key] }).to_string().as_bytes()).unwrap_err()
}

fn refused(kid: &str, problem: KeyProblem) -> JwksError {
    JwksError::NoUsableKeys(vec![RefusedKey {
        kid: Some(kid.to_owned()),
        problem,
    }])
}

#[test]
fn rsa_keys_ring_cannot_verify_with_are_refused_when_read() {
    let good: ring::signature::RsaPublicKeyComponents<Vec<u8>> = match Signer::rsa() {
        Signer::Rsa(k) => k.public().into(),
        _ => unreachable!(),
    };
    // 1024 bits: a provider's weak key is named, not read as forgeries later.
    let mut n1024 = vec![0xc5; 128];
    n1024[127] = 0x01;
    assert_eq!(
        problem_of(rsa_jwk("weak", &n1024, &[1, 0, 1])),
        refused("weak", KeyProblem::RsaSize(1024))
    );
    // Over 8192 bits.
    let mut n8200 = vec![0xff; 1025];
    n8200[1024] = 0x01;
    assert_eq!(
        problem_of(rsa_jwk("huge", &n8200, &[1, 0, 1])),
        refused("huge", KeyProblem::RsaSize(8200))
    );
    // 8192 bits exactly, and a zero-padded 2048-bit modulus, are fine.
    let mut n8192 = vec![0xff; 1024];
    n8192[1023] = 0x01;
    assert!(Jwks::parse(
        json!({"keys": [rsa_jwk("max", &n8192, &[1, 0, 1])]})
            .to_string()
            .as_bytes()
    )
    .is_ok());
    let mut padded = vec![0];
    padded.extend_from_slice(&good.n);
    assert!(Jwks::parse(
        json!({"keys": [rsa_jwk("pad", &padded, &good.e)]})
            .to_string()
            .as_bytes()
    )
    .is_ok());
    let mut even = good.n.clone();
    *even.last_mut().unwrap() &= 0xfe;
    assert_eq!(
        problem_of(rsa_jwk("even", &even, &good.e)),
        refused("even", KeyProblem::RsaEven)
    );
    for e in [
        &[][..],
        &[1],
        &[2],
        &[1, 0, 0],
        &[2, 0, 0, 0, 1],
        &[1, 0, 0, 0, 0, 1],
    ] {
        assert_eq!(
            problem_of(rsa_jwk("e", &good.n, e)),
            refused("e", KeyProblem::RsaExponent),
            "e = {e:?}"
        );
    }
    assert!(Jwks::parse(
        json!({"keys": [rsa_jwk("e3", &good.n, &[3])]})
            .to_string()
            .as_bytes()
    )
    .is_ok());
    // A usable key beside a weak one: the set is used, the weak key listed.
    let keys = jwks(&[rsa_jwk("weak", &n1024, &[1, 0, 1]), Signer::rsa().jwk("ok")]);
    assert_eq!(keys.len(), 1);
    assert_eq!(
        keys.refused()[0].to_string(),
        "key \"weak\": RSA modulus of 1024 bits (2048 to 8192 are verified)"
    );
}

#[test]
fn ec_points_off_their_curve_are_refused_when_read() {
    for (signer, crv) in [(Signer::p256(), "P-256"), (Signer::p384(), "P-384")] {
        let good = signer.jwk("k");
        assert_eq!(jwks(std::slice::from_ref(&good)).len(), 1);
        // y := x, as an attacker or a broken provider might publish.
        let mut bad = good.clone();
        bad["y"] = good["x"].clone();
        assert_eq!(problem_of(bad), refused("k", KeyProblem::OffCurve(crv)));
        // A coordinate past the field's prime.
        let mut big = good.clone();
        let len = if crv == "P-256" { 32 } else { 48 };
        big["x"] = json!(b64(&vec![0xff; len]));
        assert_eq!(problem_of(big), refused("k", KeyProblem::OffCurve(crv)));
        let mut zero = good.clone();
        zero["x"] = json!(b64(&vec![0; len]));
        zero["y"] = json!(b64(&vec![0; len]));
        assert_eq!(problem_of(zero), refused("k", KeyProblem::OffCurve(crv)));
    }
    // The fuzz target's fixture key is a real one.
    let fixture = json!({"kty":"EC","crv":"P-256","kid":"ec","use":"sig",
        "x":"p7NBPXZWzcecZUD1dgmjG6nzA2KKqGUeuEHQgVCPIgw","y":"m8yQRri9b6dTvjn1cPS3EqYxICGQ25tuhspIRjuaR-s"});
    assert_eq!(jwks(&[fixture]).len(), 1);
}

#[test]
fn ed25519_keys_of_the_wrong_length_are_refused_when_read() {
    for len in [0, 31, 33, 64] {
        let key = json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(&vec![7; len])});
        assert_eq!(
            problem_of(key),
            refused("ed", KeyProblem::Ed25519Length(len))
        );
    }
}

#[test]
fn refused_keys_are_named_safely_and_the_error_lists_them() {
    let mut n1024 = vec![0xc5; 128];
    n1024[127] = 0x01;
    let long_kid = format!("{}\u{1b}[2J", "k".repeat(70));
    let err = problem_of(rsa_jwk(&long_kid, &n1024, &[1, 0, 1]));
    let text = err.to_string();
    assert!(text.contains("no usable signature key"), "{text}");
    assert!(text.contains("RSA modulus of 1024 bits"), "{text}");
    // Cut to 64 characters, so the escape sequence is not even there; quoting escapes any.
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(
        text.contains(&format!("key \"{}\"", "k".repeat(64))),
        "{text}"
    );
    let escaped = problem_of(rsa_jwk("a\u{1b}b", &n1024, &[1, 0, 1])).to_string();
    assert!(escaped.contains("key \"a\\u{1b}b\""), "{escaped}");
    let no_kid = json!({"kty": "RSA", "n": b64(&n1024), "e": "AQAB"});
    assert!(problem_of(no_kid).to_string().contains("key without kid"));
}

#[test]
fn a_zero_leeway_allows_no_skew() {
    let k = Signer::p256();
    let keys = jwks(&[k.jwk("a")]);
    let run = |changes: Value| {
        let t = k.token(
            &json!({"alg": "ES256", "kid": "a"}),
            &with(claims(), changes),
        );
        verify(&t, &keys, &oidc("leeway = \"0s\""), NOW)
    };
    assert!(run(json!({"exp": NOW + 1})).is_ok());
    assert_eq!(run(json!({"exp": NOW})), Err(TokenError::Expired));
    assert_eq!(run(json!({"nbf": NOW + 1})), Err(TokenError::NotYetValid));
    assert_eq!(
        run(json!({"iat": NOW + 1})),
        Err(TokenError::IssuedInFuture)
    );
    assert!(run(json!({"nbf": NOW, "iat": NOW})).is_ok());
}

#[test]
fn the_fuzz_corpus_key_sets_are_refused_for_the_reasons_they_were_written_for() {
    let problems = |bytes: &[u8]| match Jwks::parse(bytes) {
        Err(JwksError::NoUsableKeys(refused)) => {
            refused.into_iter().map(|r| r.problem).collect::<Vec<_>>()
        }
        other => panic!("{other:?}"),
    };
    let corpus = "../../fuzz/corpus/policy_oidc/";
    let read = |name: &str| std::fs::read(format!("{corpus}{name}")).unwrap();
    assert_eq!(
        problems(&read("jwks_weak_rsa")),
        [KeyProblem::RsaSize(1024)]
    );
    assert_eq!(
        problems(&read("jwks_rsa_bad_exponent")),
        [
            KeyProblem::RsaExponent,
            KeyProblem::RsaEven,
            KeyProblem::RsaExponent,
            KeyProblem::RsaSize(8200)
        ]
    );
    assert_eq!(
        problems(&read("jwks_off_curve")),
        [
            KeyProblem::OffCurve("P-256"),
            KeyProblem::OffCurve("P-256"),
            KeyProblem::OffCurve("P-256"),
            KeyProblem::OffCurve("P-384")
        ]
    );
    assert_eq!(
        problems(&read("jwks_ed25519_lengths")),
        [
            KeyProblem::Ed25519Length(31),
            KeyProblem::Ed25519Length(33),
            KeyProblem::Ed25519Length(0),
            KeyProblem::Ed25519Length(64)
        ]
    );
}
