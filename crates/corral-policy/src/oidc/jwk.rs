//! The identity provider's documents: its discovery document (for `jwks_uri`) and its key
//! set (RFC 7517), read into the keys a token may be verified with.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::agreement;
use ring::rand::SystemRandom;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::Value;

use super::{Algorithm, TokenError};

/// Most keys a key set may hold: providers publish a handful (current, next, previous).
pub const MAX_KEYS: usize = 100;

/// Smallest RSA modulus ring verifies with, in whole bytes (ring counts a modulus's length
/// in bytes for its lower bound: 2048 bits rounded up to whole bytes).
const RSA_MIN_BYTES: usize = 2048 / 8;
/// Largest RSA modulus ring verifies with, in bits.
const RSA_MAX_BITS: usize = 8192;
/// Largest RSA public exponent ring verifies with.
const RSA_MAX_E: u64 = (1 << 33) - 1;
/// Longest `kid` shown in a [`RefusedKey`].
const KID_SHOWN: usize = 64;

/// The keys a token may be verified with: those of the fetched set whose type corral knows
/// and that are meant for signatures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Jwks {
    keys: Vec<Jwk>,
    refused: Vec<RefusedKey>,
}

/// A signature key of a type corral knows that was left out of the set because no signature
/// could ever verify with it: the operator is told which and why, rather than reading every
/// genuine token as `token_bad_signature`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedKey {
    /// Its `kid`, cut to 64 characters; `None` without one.
    pub kid: Option<String>,
    pub problem: KeyProblem,
}

impl std::fmt::Display for RefusedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kid {
            // Debug quoting escapes control characters: the kid is the provider's text.
            Some(kid) => write!(f, "key {kid:?}: {}", self.problem),
            None => write!(f, "key without kid: {}", self.problem),
        }
    }
}

/// Why a key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    #[error("a parameter is missing or not base64url")]
    Malformed,
    #[error("RSA modulus of {0} bits (2048 to 8192 are verified)")]
    RsaSize(usize),
    #[error("RSA modulus is even")]
    RsaEven,
    #[error("RSA exponent is not an odd number from 3 to 2^33-1")]
    RsaExponent,
    #[error("{curve} coordinates are not {len} bytes each")]
    EcLength { curve: &'static str, len: usize },
    #[error("point is not on the curve {0}")]
    OffCurve(&'static str),
    #[error("Ed25519 key of {0} bytes (32 expected)")]
    Ed25519Length(usize),
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
    #[error("the key set holds no usable signature key (RSA of 2048 to 8192 bits, EC P-256/P-384, Ed25519){}", refused_text(.0))]
    NoUsableKeys(Vec<RefusedKey>),
}

fn refused_text(refused: &[RefusedKey]) -> String {
    let all: Vec<String> = refused.iter().map(RefusedKey::to_string).collect();
    if all.is_empty() {
        String::new()
    } else {
        format!("; refused: {}", all.join("; "))
    }
}

impl Jwks {
    /// Reads a JWKS document. Keys of other types (`oct` among them) and for encryption
    /// (`use` other than `sig`, `key_ops` without `verify`) are left out; so are keys that no
    /// signature could verify with (malformed parameters, an RSA modulus outside 2048-8192
    /// bits, an EC point not on its curve...), which [`Jwks::refused`] lists. A set with no
    /// key left is an error.
    pub fn parse(bytes: &[u8]) -> Result<Jwks, JwksError> {
        let doc: Value =
            serde_json::from_slice(bytes).map_err(|e| JwksError::NotJson(e.to_string()))?;
        let Some(Value::Array(entries)) = doc.get("keys") else {
            return Err(JwksError::NoKeysArray);
        };
        if entries.len() > MAX_KEYS {
            return Err(JwksError::TooManyKeys);
        }
        let mut keys = Vec::new();
        let mut refused = Vec::new();
        for entry in entries {
            match Jwk::read(entry) {
                Ok(Some(key)) => keys.push(key),
                Ok(None) => {}
                Err(problem) => refused.push(RefusedKey {
                    kid: entry
                        .get("kid")
                        .and_then(Value::as_str)
                        .map(|k| k.chars().take(KID_SHOWN).collect()),
                    problem,
                }),
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKeys(refused));
        }
        Ok(Jwks { keys, refused })
    }

    /// The signature keys of the set that were left out because none could verify a token.
    pub fn refused(&self) -> &[RefusedKey] {
        &self.refused
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
    /// The key of a JWKS entry: `None` for a key corral has no use for (another type, for
    /// encryption), an error for a signature key no signature could verify with.
    fn read(v: &Value) -> Result<Option<Jwk>, KeyProblem> {
        let text = |name: &str| v.get(name).and_then(Value::as_str);
        if text("use").is_some_and(|u| u != "sig") {
            return Ok(None);
        }
        if let Some(ops) = v.get("key_ops") {
            let verify = ops
                .as_array()
                .is_some_and(|ops| ops.iter().any(|o| o.as_str() == Some("verify")));
            if !verify {
                return Ok(None);
            }
        }
        let bytes = |name: &str| {
            text(name)
                .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
                .ok_or(KeyProblem::Malformed)
        };
        let material = match (text("kty"), text("crv")) {
            (Some("RSA"), _) => rsa(bytes("n")?, bytes("e")?)?,
            (Some("EC"), Some("P-256")) => Material::P256 {
                point: ec_point(bytes("x")?, bytes("y")?, Curve::P256)?,
            },
            (Some("EC"), Some("P-384")) => Material::P384 {
                point: ec_point(bytes("x")?, bytes("y")?, Curve::P384)?,
            },
            (Some("OKP"), Some("Ed25519")) => {
                let x = bytes("x")?;
                if x.len() != 32 {
                    return Err(KeyProblem::Ed25519Length(x.len()));
                }
                Material::Ed25519 { x }
            }
            _ => return Ok(None),
        };
        Ok(Some(Jwk {
            kid: text("kid").map(str::to_owned),
            alg: text("alg").map(str::to_owned),
            material,
        }))
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

/// An RSA key ring verifies with: a modulus of 2048 bits (counted in whole bytes, as ring
/// does) to 8192 bits, odd; an odd exponent from 3 to 2^33-1. These are ring's own rules
/// (`RSA_PKCS1_2048_8192_*`, `RSA_PSS_2048_8192_*`), checked here so that a key ring would
/// refuse at every signature is refused, and named, when the set is read.
fn rsa(n: Vec<u8>, e: Vec<u8>) -> Result<Material, KeyProblem> {
    let n = strip_leading_zeros(n);
    let e = strip_leading_zeros(e);
    let first = *n.first().ok_or(KeyProblem::Malformed)?;
    let bits = (n.len() - 1) * 8 + (8 - first.leading_zeros() as usize);
    if n.len() < RSA_MIN_BYTES || bits > RSA_MAX_BITS {
        return Err(KeyProblem::RsaSize(bits));
    }
    if n.last().is_some_and(|b| b % 2 == 0) {
        return Err(KeyProblem::RsaEven);
    }
    let e_value = (e.len() <= 5)
        .then(|| e.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b)))
        .filter(|v| (3..=RSA_MAX_E).contains(v) && v % 2 == 1);
    if e_value.is_none() {
        return Err(KeyProblem::RsaExponent);
    }
    Ok(Material::Rsa { n, e })
}

#[derive(Debug, Clone, Copy)]
enum Curve {
    P256,
    P384,
}

impl Curve {
    fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
        }
    }

    /// Bytes of one coordinate.
    fn len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }

    fn ecdh(self) -> &'static agreement::Algorithm {
        match self {
            Curve::P256 => &agreement::ECDH_P256,
            Curve::P384 => &agreement::ECDH_P384,
        }
    }
}

/// The uncompressed SEC1 point `04 || x || y` of coordinates of the curve's length, on the
/// curve.
fn ec_point(x: Vec<u8>, y: Vec<u8>, curve: Curve) -> Result<Vec<u8>, KeyProblem> {
    let len = curve.len();
    if x.len() != len || y.len() != len {
        return Err(KeyProblem::EcLength {
            curve: curve.name(),
            len,
        });
    }
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(4);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    if !on_curve(&point, curve) {
        return Err(KeyProblem::OffCurve(curve.name()));
    }
    Ok(point)
}

/// Whether `point` is a valid public key of `curve`: coordinates below the field's prime,
/// `y² = x³ − 3x + b` (and, uncompressed, never the point at infinity; both curves have
/// prime order, so this is full validation).
///
/// ring's signature API validates a key only on the way to checking a signature, but its
/// ECDH does so on its own: `agreement::agree_ephemeral` refuses a peer key that fails NIST
/// SP 800-56A's partial public-key validation, with the same routine
/// (`parse_uncompressed_point`) that ECDSA verification applies to the key. An agreement
/// with a throw-away private key therefore answers exactly "would ring's ECDSA ever accept
/// this key" — no other crate, no curve arithmetic of corral's own. Should the system's
/// random source fail (the throw-away key needs it), the key is kept: this check only
/// names a useless key early; verification validates it again at every signature.
fn on_curve(point: &[u8], curve: Curve) -> bool {
    let Ok(mine) = agreement::EphemeralPrivateKey::generate(curve.ecdh(), &SystemRandom::new())
    else {
        return true;
    };
    let peer = agreement::UnparsedPublicKey::new(curve.ecdh(), point);
    agreement::agree_ephemeral(mine, &peer, |_| ()).is_ok()
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
