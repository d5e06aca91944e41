//! The claims of a token whose signature verified: issuer, audience, validity period, and
//! the mapping to a user and a policy.

use serde_json::{Map, Value};

use super::{Identity, TokenError};
use crate::config::OidcSection;

/// Longest user claim value accepted, in bytes of UTF-8: with its `oidc:` prefix it is the
/// audit record's `user.name`, which holds 128 bytes.
pub const MAX_USER_LEN: usize = 120;

/// A claim named in the configuration (`oidc.user_claim`, `oidc.roles_claim`): a top-level
/// claim of that exact name, else a dotted path into nested objects
/// (`realm_access.roles`, Keycloak's realm roles). A claim whose name has dots itself
/// (`https://example.com/groups`) is found by its exact name first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath(String);

impl ClaimPath {
    /// A path of non-empty dot-separated names. `None` for an empty name or empty segment.
    pub fn parse(name: &str) -> Option<ClaimPath> {
        (!name.is_empty() && name.split('.').all(|s| !s.is_empty()))
            .then(|| ClaimPath(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value the path names in `claims`.
    pub fn find<'a>(&self, claims: &'a Map<String, Value>) -> Option<&'a Value> {
        if let Some(v) = claims.get(&self.0) {
            return Some(v);
        }
        let mut segments = self.0.split('.');
        let mut at = claims.get(segments.next()?)?;
        for s in segments {
            at = at.as_object()?.get(s)?;
        }
        Some(at)
    }
}

impl std::fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub(super) fn check(
    claims: &Map<String, Value>,
    oidc: &OidcSection,
    now: i64,
) -> Result<Identity, TokenError> {
    match claims.get("iss") {
        Some(Value::String(iss)) if *iss == oidc.issuer => {}
        _ => return Err(TokenError::WrongIssuer),
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => *aud == oidc.audience,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(&oidc.audience)),
        _ => false,
    };
    if !audience_ok {
        return Err(TokenError::WrongAudience);
    }
    let leeway = i64::try_from(oidc.leeway.as_secs()).unwrap_or(i64::MAX);
    let exp = time(claims, "exp")?.ok_or(TokenError::NoExpiry)?;
    if now >= exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    if let Some(nbf) = time(claims, "nbf")? {
        if nbf > now.saturating_add(leeway) {
            return Err(TokenError::NotYetValid);
        }
    }
    if let Some(iat) = time(claims, "iat")? {
        if iat > now.saturating_add(leeway) {
            return Err(TokenError::IssuedInFuture);
        }
    }
    let user = match oidc.user_claim.find(claims) {
        Some(Value::String(u)) if valid_user(u) => u.clone(),
        _ => return Err(TokenError::NoUser),
    };
    Ok(Identity {
        user,
        policy: policy_for(claims, oidc),
        expires_at: exp,
    })
}

/// A NumericDate claim: `None` when absent; an integer or a finite number (fractions
/// dropped, saturating); anything else is malformed.
fn time(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Ok(Some(i))
            } else {
                // `as` saturates: a date past i64 is "never" and before it "always".
                n.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| Some(f as i64))
                    .ok_or(TokenError::Malformed)
            }
        }
        Some(_) => Err(TokenError::Malformed),
    }
}

/// A user claim the audit log and allowances can carry: 1 to [`MAX_USER_LEN`] bytes, no
/// character that breaks or disguises a line of text. Key names are plain ASCII
/// (`[A-Za-z0-9._@-]`); a provider's user names may be any script (`josé`, `渡辺`) and carry
/// `:` and `/` (GitHub's `repo:org/app:ref:...`), so only the invisible and line-breaking
/// characters are refused, not the rest of Unicode.
pub(super) fn valid_user(u: &str) -> bool {
    !u.is_empty() && u.len() <= MAX_USER_LEN && !u.chars().any(breaks_or_hides)
}

/// Control characters (C0, DEL, C1: `\n`, `\r`, ESC, U+0085 NEL), the line and paragraph
/// separators U+2028 and U+2029 (a reader splitting lines on them would see a forged line),
/// and the format characters, Unicode general category Cf (Unicode 15.1): bidirectional
/// overrides, embeddings and isolates (U+202A-U+202E, U+2066-U+2069) that reorder what a
/// reader sees, zero-width characters (U+200B-U+200D, U+2060, U+FEFF), the soft hyphen,
/// and the rest.
fn breaks_or_hides(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{00ad}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061c}'
                | '\u{06dd}'
                | '\u{070f}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08e2}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{110bd}'
                | '\u{110cd}'
                | '\u{13430}'..='\u{1343f}'
                | '\u{1bca0}'..='\u{1bca3}'
                | '\u{1d173}'..='\u{1d17a}'
                | '\u{e0001}'
                | '\u{e0020}'..='\u{e007f}'
        )
}

/// The policy of the first `oidc.policies` entry, in the file's order, whose claim value the
/// token carries; else `oidc.default_policy`.
fn policy_for(claims: &Map<String, Value>, oidc: &OidcSection) -> Option<String> {
    let carried = oidc.roles_claim.find(claims);
    let has = |value: &str| match carried {
        Some(Value::String(s)) => s == value,
        Some(Value::Array(values)) => values.iter().any(|v| v.as_str() == Some(value)),
        _ => false,
    };
    oidc.policies
        .iter()
        .find(|(value, _)| has(value))
        .map(|(_, policy)| policy.clone())
        .or_else(|| oidc.default_policy.clone())
}
