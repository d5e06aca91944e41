//! Verification of OIDC access tokens (JWS compact serialization), without I/O: the gate
//! fetches the identity provider's keys ([`Jwks::parse`]) and hands each presented token,
//! the current keys and the current time to [`verify`], which answers who the caller is and
//! under which policy, or which check failed ([`TokenError::reason`], for the audit log only).
//!
//! Order of the checks: size and shape, header (`alg` allowed, no `crit`), key (`kid`,
//! type and curve matching `alg`), signature, and only then the claims (`iss`, `aud`, `exp`,
//! `nbf`, `iat`, the user claim, the policy mapping). Nothing in the payload is read before
//! its signature has been verified.

mod claims;
mod jwk;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::config::OidcSection;

pub use claims::ClaimPath;
pub use jwk::{parse_discovery, DiscoveryError, Jwks, JwksError, KeyProblem, RefusedKey, MAX_KEYS};

/// Longest token looked at. Access tokens with a few dozen groups stay well under it.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// A JWS signature algorithm corral verifies. HMAC algorithms (a shared secret) and `none`
/// are not among them and never will be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
}

impl Algorithm {
    /// Every algorithm corral can verify.
    pub const ALL: [Algorithm; 9] = [
        Algorithm::Rs256,
        Algorithm::Rs384,
        Algorithm::Rs512,
        Algorithm::Ps256,
        Algorithm::Ps384,
        Algorithm::Ps512,
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::EdDsa,
    ];

    /// `oidc.algorithms` when the file sets none.
    pub const DEFAULT: [Algorithm; 5] = [
        Algorithm::Rs256,
        Algorithm::Ps256,
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::EdDsa,
    ];

    /// The JOSE name (`RS256`, `EdDSA`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Rs384 => "RS384",
            Algorithm::Rs512 => "RS512",
            Algorithm::Ps256 => "PS256",
            Algorithm::Ps384 => "PS384",
            Algorithm::Ps512 => "PS512",
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// The algorithm of a JOSE name, spelled exactly (names are case-sensitive).
    pub fn parse(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a presented credential has a token's shape rather than a corral key's: corral
/// keys start `crl_`, a JWS in compact serialization has exactly two dots.
pub fn looks_like_token(presented: &str) -> bool {
    !presented.starts_with("crl_") && presented.bytes().filter(|b| *b == b'.').count() == 2
}

/// Who a verified token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The value of `oidc.user_claim`, as the token carries it.
    pub user: String,
    /// The policy the mapping gives (`oidc.policies`, else `oidc.default_policy`); `None`
    /// when neither applies, which the gate refuses with 403.
    pub policy: Option<String>,
    /// The token's `exp`, seconds since the Unix epoch.
    pub expires_at: i64,
}

/// Why a token was refused. The client is only ever told "401"; the operator reads
/// [`TokenError::reason`] in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Longer than [`MAX_TOKEN_BYTES`].
    TooLarge,
    /// Not three base64url parts, a part not base64url, header or payload not a JSON object,
    /// a registered claim of the wrong type.
    Malformed,
    /// `alg` missing, `none`, HMAC, unknown or not in `oidc.algorithms`.
    BadAlgorithm,
    /// A `crit` header: extensions corral does not understand must not be ignored.
    CritHeader,
    /// No key of the token's `kid` (or no `kid` and not exactly one key).
    UnknownKey,
    /// The key named by `kid` is not of the type, curve or `alg` the header says.
    KeyMismatch,
    BadSignature,
    WrongIssuer,
    WrongAudience,
    /// No `exp` claim: a token that never expires is not accepted.
    NoExpiry,
    Expired,
    /// `nbf` is later than now (with the leeway).
    NotYetValid,
    /// `iat` is later than now (with the leeway).
    IssuedInFuture,
    /// The user claim is missing, not a string, empty, over 120 bytes, or holds a control
    /// character, a line or paragraph separator or a format character (bidi controls,
    /// zero-width characters: Unicode category Cf).
    NoUser,
}

impl TokenError {
    /// The audit record's `event.reason`.
    pub fn reason(self) -> &'static str {
        match self {
            TokenError::TooLarge => "token_too_large",
            TokenError::Malformed => "token_malformed",
            TokenError::BadAlgorithm => "token_bad_algorithm",
            TokenError::CritHeader => "token_crit_header",
            TokenError::UnknownKey => "token_unknown_key",
            TokenError::KeyMismatch => "token_key_mismatch",
            TokenError::BadSignature => "token_bad_signature",
            TokenError::WrongIssuer => "token_wrong_issuer",
            TokenError::WrongAudience => "token_wrong_audience",
            TokenError::NoExpiry => "token_no_expiry",
            TokenError::Expired => "token_expired",
            TokenError::NotYetValid => "token_not_yet_valid",
            TokenError::IssuedInFuture => "token_issued_in_future",
            TokenError::NoUser => "token_no_user",
        }
    }
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for TokenError {}

/// Verifies `token` against `keys` and the rules of `oidc` at `now` (seconds since the Unix
/// epoch) and maps it to an [`Identity`].
pub fn verify(
    token: &str,
    keys: &Jwks,
    oidc: &OidcSection,
    now: i64,
) -> Result<Identity, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header = json_object(header_b64)?;
    let alg = match header.get("alg") {
        Some(Value::String(name)) => Algorithm::parse(name)
            .filter(|a| oidc.algorithms.contains(a))
            .ok_or(TokenError::BadAlgorithm)?,
        Some(_) => return Err(TokenError::Malformed),
        None => return Err(TokenError::BadAlgorithm),
    };
    if header.contains_key("crit") {
        return Err(TokenError::CritHeader);
    }
    // Compressed or encrypted content is JWE's business, which corral does not accept.
    if header.contains_key("zip") || header.contains_key("enc") {
        return Err(TokenError::Malformed);
    }
    let kid = match header.get("kid") {
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(TokenError::Malformed),
        None => None,
    };
    let key = keys.select(kid, alg)?;
    let signature = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .map_err(|_| TokenError::Malformed)?;
    let signed = &token[..header_b64.len() + 1 + payload_b64.len()];
    if !key.verifies(alg, signed.as_bytes(), &signature) {
        return Err(TokenError::BadSignature);
    }
    let claims = json_object(payload_b64)?;
    claims::check(&claims, oidc, now)
}

/// A base64url part decoded and read as a JSON object.
fn json_object(part: &str) -> Result<Map<String, Value>, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(TokenError::Malformed),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
