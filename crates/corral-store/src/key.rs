//! Key format: generation, parsing and the redacting [`Secret`] wrapper.

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::StoreError;

/// Prefix of every key.
pub const KEY_PREFIX: &str = "crl_";
/// Length of the public id in base62 characters (~71 bits, enough to avoid collisions).
pub const ID_LEN: usize = 12;
/// Length of the secret in base62 characters: 43 * log2(62) ≈ 256.03 bits.
pub const SECRET_LEN: usize = 43;
/// Total length of a key: `crl_` + id + `_` + secret.
pub const KEY_LEN: usize = KEY_PREFIX.len() + ID_LEN + 1 + SECRET_LEN;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Largest multiple of 62 that fits in a byte; bytes at or above it are rejected so that every
/// character is exactly uniform.
const REJECT_AT: u8 = 248;

/// A full key (`crl_<id>_<secret>`), shown to the user once. `Debug` prints only the id.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The full key, for printing it once to the user who created it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The public id inside the key.
    pub fn id(&self) -> &str {
        self.0
            .get(KEY_PREFIX.len()..KEY_PREFIX.len() + ID_LEN)
            .unwrap_or("")
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({KEY_PREFIX}{}_<redacted>)", self.id())
    }
}

pub(crate) fn is_base62(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// `n` uniformly distributed base62 characters from `rng`.
pub(crate) fn random_base62<R: RngCore>(rng: &mut R, n: usize) -> Result<String, StoreError> {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        rng.try_fill_bytes(&mut buf)
            .map_err(|e| StoreError::Rng(e.to_string()))?;
        for &b in &buf {
            if b < REJECT_AT && out.len() < n {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    Ok(out)
}

/// A fresh key from the OS RNG: (id, full key, sha256 of the secret part).
pub(crate) fn generate() -> Result<(String, Secret, [u8; 32]), StoreError> {
    let mut rng = rand::rngs::OsRng;
    let id = random_base62(&mut rng, ID_LEN)?;
    let secret = random_base62(&mut rng, SECRET_LEN)?;
    let hash = hash_secret(&secret);
    Ok((
        id.clone(),
        Secret(format!("{KEY_PREFIX}{id}_{secret}")),
        hash,
    ))
}

pub(crate) fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Splits a presented key into (id, secret) if it has exactly the key format. Works on bytes so
/// that no input, however odd, can panic on a char boundary.
pub(crate) fn parse(presented: &str) -> Option<(&str, &str)> {
    let b = presented.as_bytes();
    if b.len() != KEY_LEN || !b.starts_with(KEY_PREFIX.as_bytes()) {
        return None;
    }
    let id_end = KEY_PREFIX.len() + ID_LEN;
    if b.get(id_end) != Some(&b'_') {
        return None;
    }
    let id = b.get(KEY_PREFIX.len()..id_end)?;
    let secret = b.get(id_end + 1..)?;
    if !id.iter().all(|&c| is_base62(c)) || !secret.iter().all(|&c| is_base62(c)) {
        return None;
    }
    // All bytes checked are ASCII, so these ranges are char boundaries.
    Some((
        presented.get(KEY_PREFIX.len()..id_end)?,
        presented.get(id_end + 1..)?,
    ))
}

/// Names of keys and policies: 1-64 characters from `[A-Za-z0-9._@-]`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'))
}

/// Key names may not start with `crl_` (in any case): such a name would read as a key's prefix
/// where a command takes a name or an id.
pub(crate) fn reads_as_key_ref(name: &str) -> bool {
    name.as_bytes()
        .get(..KEY_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(KEY_PREFIX.as_bytes()))
}

/// Longest argument shown in full in an error message; a longer one is cut short with `…`.
const SHOWN_MAX: usize = 80;

/// An argument (a name, id or key) as an error message may show it: the secret of anything
/// shaped like a full key replaced by `<redacted>`, so that a leaked key pasted into
/// `corral keys revoke` is not echoed into a terminal's scrollback or a CI log, and cut short
/// after [`SHOWN_MAX`] characters (a 10 KB argument is not repeated back in full).
pub fn shown_arg(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len().min(SHOWN_MAX + 16));
    let mut rest = arg;
    while let Some(at) = rest.find(KEY_PREFIX) {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        let b = from.as_bytes();
        let id_end = KEY_PREFIX.len() + ID_LEN;
        let shaped = b.len() > id_end + 1
            && b.get(KEY_PREFIX.len()..id_end)
                .is_some_and(|id| id.iter().all(|&c| is_base62(c)))
            && b.get(id_end) == Some(&b'_')
            && b.get(id_end + 1).is_some_and(|&c| is_base62(c));
        if shaped {
            let secret_len = b
                .get(id_end + 1..)
                .map_or(0, |s| s.iter().take_while(|&&c| is_base62(c)).count());
            // Everything up to the secret is ASCII, so these are char boundaries.
            out.push_str(from.get(..=id_end).unwrap_or(""));
            out.push_str("<redacted>");
            rest = from.get(id_end + 1 + secret_len..).unwrap_or("");
        } else {
            out.push_str(KEY_PREFIX);
            rest = from.get(KEY_PREFIX.len()..).unwrap_or("");
        }
    }
    out.push_str(rest);
    match out.char_indices().nth(SHOWN_MAX) {
        Some((cut, _)) => format!("{}…", out.get(..cut).unwrap_or("")),
        None => out,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn generated_keys_parse_and_have_the_documented_shape() {
        let (id, secret, hash) = generate().unwrap();
        let s = secret.expose();
        assert_eq!(s.len(), KEY_LEN);
        assert_eq!(s.len(), 60);
        let (pid, psecret) = parse(s).unwrap();
        assert_eq!(pid, id);
        assert_eq!(secret.id(), id);
        assert_eq!(psecret.len(), SECRET_LEN);
        assert_eq!(hash_secret(psecret), hash);
    }

    #[test]
    fn debug_redacts_the_secret() {
        let (id, secret, _) = generate().unwrap();
        let dbg = format!("{secret:?}");
        let (_, raw) = parse(secret.expose()).unwrap();
        assert!(!dbg.contains(raw), "{dbg}");
        assert!(dbg.contains(&id));
    }

    #[test]
    fn base62_characters_are_uniform() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let s = random_base62(&mut rng, 62 * 2000).unwrap();
        let mut counts = [0u32; 62];
        for b in s.bytes() {
            let i = ALPHABET.iter().position(|&a| a == b).unwrap();
            counts[i] += 1;
        }
        // Expected 2000 each; a modulo bias toward the first 8 characters would show as ~+3%,
        // a broken generator far more. Bounds are ~6 sigma.
        for (i, c) in counts.iter().enumerate() {
            assert!((1730..=2270).contains(c), "char {i}: {c}");
        }
        let low: u32 = counts[..8].iter().sum();
        let high: u32 = counts[54..].iter().sum();
        assert!(low.abs_diff(high) < 600, "{low} vs {high}");
    }

    #[test]
    fn parse_rejects_everything_off_format() {
        let (_, secret, _) = generate().unwrap();
        let good = secret.expose().to_string();
        assert!(parse(&good).is_some());
        let bad = [
            String::new(),
            "crl_".into(),
            good.replacen("crl_", "crk_", 1),
            good.replacen("crl_", "CRL_", 1),
            format!("{good}x"),
            good[..KEY_LEN - 1].to_string(),
            format!(" {}", &good[1..]),
            good.replacen('_', "-", 2),
            format!("{}é{}", &good[..20], &good[22..]),
            format!("{}!{}", &good[..30], &good[31..]),
            format!("{}_{}", &good[..10], &good[11..]),
            "crl_".to_string() + &"é".repeat(28),
        ];
        for b in &bad {
            assert!(parse(b).is_none(), "{b:?}");
        }
    }

    #[test]
    fn names() {
        for ok in [
            "a",
            "alice",
            "ci-bot_1",
            "alice@example.com",
            &"x".repeat(64),
        ] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            " alice",
            "a b",
            "a/b",
            "ä",
            "a\n",
            &"x".repeat(65),
            "a;drop",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn names_that_read_as_key_refs() {
        for reserved in ["crl_", "crl_AbCdEfGh1234", "CRL_x", "Crl_alice"] {
            assert!(reads_as_key_ref(reserved), "{reserved}");
        }
        for ok in ["crl", "crlx_a", "alice_crl_", "c", "", "é"] {
            assert!(!reads_as_key_ref(ok), "{ok}");
        }
    }

    #[test]
    fn shown_args_redact_secrets_and_stay_short() {
        let (_, key, _) = generate().unwrap();
        let id = key.id().to_owned();
        let shown = shown_arg(&format!("x {} y", key.expose()));
        assert_eq!(shown, format!("x crl_{id}_<redacted> y"));
        for plain in ["alice", "crl_", "crl_crl_", "crl_short_abc", "é", ""] {
            assert_eq!(shown_arg(plain), plain);
        }
        let id_only = format!("crl_{id}_");
        assert_eq!(shown_arg(&id_only), id_only, "no secret to redact");
        let long = "ab".repeat(100);
        assert_eq!(shown_arg(&long), format!("{}…", &long[..SHOWN_MAX]));
    }
}
