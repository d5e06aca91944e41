//! The identity provider's documents: its discovery document (for `jwks_uri`) and its key
//! set (RFC 7517), read into the keys a token may be verified with.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::Value;

use super::{Algorithm, TokenError};

/// Most keys a key set may hold: providers publish a handful (current, next, previous).
pub const MAX_KEYS: usize = 100;

/// The keys a token may be verified with: those of the fetched set whose type corral knows
/// and that are meant for signatures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Jwk {
    kid: Option<String>,
    /// The key's own `alg`, when it names one: the token's must then be the same.
    alg: Option<String>,
    material: Material,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Material {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    P256 { point: Vec<u8> },
    P384 { point: Vec<u8> },
    Ed25519 { x: Vec<u8> },
}

/// Why a key set could not be used. The gate keeps the last good set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("the key set is not JSON: {0}")]
    NotJson(String),
    #[error("the key set is not a JSON object with a \"keys\" array")]
    NoKeysArray,
    #[error("the key set holds more than {MAX_KEYS} keys")]
    TooManyKeys,
    #[error("the key set holds no signature key of a type corral verifies (RSA, EC P-256/P-384, Ed25519)")]
    NoUsableKeys,
}

impl Jwks {
    /// Reads a JWKS document. Keys of other types (`oct` among them), for encryption
    /// (`use` other than `sig`, `key_ops` without `verify`) or with malformed parameters are
    /// left out; a set with none left is an error.
    pub fn parse(bytes: &[u8]) -> Result<Jwks, JwksError> {
        let doc: Value =
            serde_json::from_slice(bytes).map_err(|e| JwksError::NotJson(e.to_string()))?;
        let Some(Value::Array(entries)) = doc.get("keys") else {
            return Err(JwksError::NoKeysArray);
        };
        if entries.len() > MAX_KEYS {
            return Err(JwksError::TooManyKeys);
        }
        let keys: Vec<Jwk> = entries.iter().filter_map(Jwk::read).collect();
        if keys.is_empty() {
            return Err(JwksError::NoUsableKeys);
        }
        Ok(Jwks { keys })
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set has no usable key (only the empty default).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a key of this `kid` is in the set.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// The key to verify a token of header `kid` and `alg` with. Without a `kid`, only a set
    /// of exactly one key answers: guessing among several would let any of them sign.
    pub(super) fn select(&self, kid: Option<&str>, alg: Algorithm) -> Result<&Jwk, TokenError> {
        match kid {
            Some(kid) => {
                let mut named = self
                    .keys
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .peekable();
                if named.peek().is_none() {
                    return Err(TokenError::UnknownKey);
                }
                named.find(|k| k.fits(alg)).ok_or(TokenError::KeyMismatch)
            }
            None => match self.keys.as_slice() {
                [only] if only.fits(alg) => Ok(only),
                [_] => Err(TokenError::KeyMismatch),
                _ => Err(TokenError::UnknownKey),
            },
        }
    }
}

impl Jwk {
    fn read(v: &Value) -> Option<Jwk> {
        let text = |name: &str| v.get(name).and_then(Value::as_str);
        if text("use").is_some_and(|u| u != "sig") {
            return None;
        }
        if let Some(ops) = v.get("key_ops") {
            let verify = ops
                .as_array()
                .is_some_and(|ops| ops.iter().any(|o| o.as_str() == Some("verify")));
            if !verify {
                return None;
            }
        }
        let bytes = |name: &str| text(name).and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
        let material = match (text("kty")?, text("crv")) {
            ("RSA", _) => Material::Rsa {
                n: strip_leading_zeros(bytes("n")?),
                e: strip_leading_zeros(bytes("e")?),
            },
            ("EC", Some("P-256")) => Material::P256 {
                point: ec_point(bytes("x")?, bytes("y")?, 32)?,
            },
            ("EC", Some("P-384")) => Material::P384 {
                point: ec_point(bytes("x")?, bytes("y")?, 48)?,
            },
            ("OKP", Some("Ed25519")) => {
                let x = bytes("x")?;
                (x.len() == 32).then_some(Material::Ed25519 { x })?
            }
            _ => return None,
        };
        Some(Jwk {
            kid: text("kid").map(str::to_owned),
            alg: text("alg").map(str::to_owned),
            material,
        })
    }

    /// Whether this key may verify a signature of `alg`: its type and curve are the
    /// algorithm's, and its own `alg`, if any, is the same. No algorithm confusion: an RSA key
    /// never verifies an EC signature, nor any key an HMAC.
    fn fits(&self, alg: Algorithm) -> bool {
        if self.alg.as_deref().is_some_and(|a| a != alg.as_str()) {
            return false;
        }
        matches!(
            (alg, &self.material),
            (
                Algorithm::Rs256
                    | Algorithm::Rs384
                    | Algorithm::Rs512
                    | Algorithm::Ps256
                    | Algorithm::Ps384
                    | Algorithm::Ps512,
                Material::Rsa { .. }
            ) | (Algorithm::Es256, Material::P256 { .. })
                | (Algorithm::Es384, Material::P384 { .. })
                | (Algorithm::EdDsa, Material::Ed25519 { .. })
        )
    }

    /// Whether `signature` over `message` verifies with this key under `alg`.
    pub(super) fn verifies(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        let rsa = |params: &'static signature::RsaParameters, n: &[u8], e: &[u8]| {
            RsaPublicKeyComponents { n, e }
                .verify(params, message, signature)
                .is_ok()
        };
        match (&self.material, alg) {
            (Material::Rsa { n, e }, Algorithm::Rs256) => {
                rsa(&signature::RSA_PKCS1_2048_8192_SHA256, n, e)
            }
            (Material::Rsa { n, e }, Algorithm::Rs384) => {
                rsa(&signature::RSA_PKCS1_2048_8192_SHA384, n, e)
            }
            (Material::Rsa { n, e }, Algorithm::Rs512) => {
                rsa(&signature::RSA_PKCS1_2048_8192_SHA512, n, e)
            }
            (Material::Rsa { n, e }, Algorithm::Ps256) => {
                rsa(&signature::RSA_PSS_2048_8192_SHA256, n, e)
            }
            (Material::Rsa { n, e }, Algorithm::Ps384) => {
                rsa(&signature::RSA_PSS_2048_8192_SHA384, n, e)
            }
            (Material::Rsa { n, e }, Algorithm::Ps512) => {
                rsa(&signature::RSA_PSS_2048_8192_SHA512, n, e)
            }
            (Material::P256 { point }, Algorithm::Es256) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
            (Material::P384 { point }, Algorithm::Es384) => {
                UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
            (Material::Ed25519 { x }, Algorithm::EdDsa) => {
                UnparsedPublicKey::new(&signature::ED25519, x)
                    .verify(message, signature)
                    .is_ok()
            }
            _ => false,
        }
    }
}

/// RFC 7518 asks for minimal big-endian integers; some providers pad the modulus with a zero
/// byte anyway, which ring would count as a longer key.
fn strip_leading_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let zeros = v.iter().take_while(|b| **b == 0).count();
    v.drain(..zeros.min(v.len().saturating_sub(1)));
    v
}

/// The uncompressed SEC1 point `04 || x || y` of coordinates of exactly `len` bytes.
fn ec_point(x: Vec<u8>, y: Vec<u8>, len: usize) -> Option<Vec<u8>> {
    if x.len() != len || y.len() != len {
        return None;
    }
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(4);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Some(point)
}

/// Why a discovery document could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error("the discovery document is not JSON: {0}")]
    NotJson(String),
    #[error("the discovery document has no \"issuer\" string")]
    NoIssuer,
    /// OpenID Connect Discovery 1.0 §4.3: the document's issuer must be the one asked about.
    #[error("the discovery document names another issuer ({0:?}) than oidc.issuer")]
    OtherIssuer(String),
    #[error("the discovery document has no \"jwks_uri\" string")]
    NoJwksUri,
}

/// The `jwks_uri` of a discovery document whose `issuer` is exactly `issuer`.
pub fn parse_discovery(bytes: &[u8], issuer: &str) -> Result<String, DiscoveryError> {
    let doc: Value =
        serde_json::from_slice(bytes).map_err(|e| DiscoveryError::NotJson(e.to_string()))?;
    let found = doc
        .get("issuer")
        .and_then(Value::as_str)
        .ok_or(DiscoveryError::NoIssuer)?;
    if found != issuer {
        let shown: String = found.chars().take(200).collect();
        return Err(DiscoveryError::OtherIssuer(shown));
    }
    doc.get("jwks_uri")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(DiscoveryError::NoJwksUri)
}
