//! Extracting the presented key from `Authorization` (or `x-api-key`, the header Anthropic's
//! clients send their key in). Whether the key is valid is the key
//! snapshot's business; every failure here and there gets the same 401, so the response never
//! tells which part was wrong.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::header::{HeaderMap, HeaderName, AUTHORIZATION};

/// The header Anthropic's API (and its SDKs, given `api_key`) carries the key in.
pub const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Longest `Authorization` (or `x-api-key`) value looked at. Keys are ~70 bytes; OIDC access
/// tokens run to a few KiB and are refused past `corral_policy::oidc::MAX_TOKEN_BYTES`;
/// Basic's base64 makes a third more of either.
const MAX_AUTHORIZATION_LEN: usize = corral_policy::oidc::MAX_TOKEN_BYTES * 4 / 3 + 64;

/// A key as presented by the client. Borrowed from the header for Bearer, decoded for Basic.
#[derive(PartialEq, Eq)]
pub enum Presented<'a> {
    Borrowed(&'a str),
    Decoded(String),
}

impl Presented<'_> {
    pub fn as_str(&self) -> &str {
        match self {
            Presented::Borrowed(s) => s,
            Presented::Decoded(s) => s,
        }
    }
}

impl std::fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Presented(<redacted>)")
    }
}

/// The key from `Authorization: Bearer <key>`, `Authorization: Basic base64(user:key)` (the
/// password is the key; the user name is ignored) or `x-api-key: <key>`. `None` when there is
/// none, when a header is repeated, too long, not text, of another scheme or malformed, and
/// when `Authorization` and `x-api-key` are both sent with different keys.
pub fn presented_key(headers: &HeaderMap) -> Option<Presented<'_>> {
    let api_key = headers.contains_key(X_API_KEY);
    let authorization = headers.contains_key(AUTHORIZATION);
    match (authorization, api_key) {
        (true, false) => from_authorization(headers),
        (false, true) => from_api_key(headers),
        (true, true) => {
            let a = from_authorization(headers)?;
            let b = from_api_key(headers)?;
            (a.as_str() == b.as_str()).then_some(a)
        }
        (false, false) => None,
    }
}

/// `x-api-key: <key>`, once, the key alone.
fn from_api_key(headers: &HeaderMap) -> Option<Presented<'_>> {
    let mut values = headers.get_all(X_API_KEY).iter();
    let value = values.next()?;
    if values.next().is_some() || value.len() > MAX_AUTHORIZATION_LEN {
        return None;
    }
    let key = value.to_str().ok()?.trim();
    if key.is_empty() || key.contains(' ') {
        return None;
    }
    Some(Presented::Borrowed(key))
}

/// Whether a credential that [`presented_key`] passed over for its length has a token's shape
/// (`Authorization: Bearer <x>` or `x-api-key: <x>`, sent once, `x` with exactly two dots and
/// not a key's `crl_`): with `[oidc]`, the refusal is then audited `token_too_large` rather
/// than as a request without a credential. Basic is not looked into: its decoded password
/// would be as oversized and is refused the same, without a reason.
pub fn oversized_token(headers: &HeaderMap) -> bool {
    let single = |name: HeaderName| {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (Some(v), None) if v.len() > MAX_AUTHORIZATION_LEN => v.to_str().ok(),
            _ => None,
        }
    };
    let bearer = single(AUTHORIZATION).and_then(|v| {
        let (scheme, rest) = v.trim().split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| rest.trim_start_matches(' '))
    });
    bearer
        .into_iter()
        .chain(single(X_API_KEY).map(str::trim))
        .any(|c| !c.contains(' ') && corral_policy::oidc::looks_like_token(c))
}

fn from_authorization(headers: &HeaderMap) -> Option<Presented<'_>> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() || value.len() > MAX_AUTHORIZATION_LEN {
        return None;
    }
    let text = value.to_str().ok()?.trim();
    let (scheme, rest) = text.split_once(' ')?;
    let credentials = rest.trim_start_matches(' ');
    if credentials.is_empty() || credentials.contains(' ') {
        return None;
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(Presented::Borrowed(credentials))
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD.decode(credentials).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (_user, password) = decoded.split_once(':')?;
        if password.is_empty() {
            return None;
        }
        Some(Presented::Decoded(password.to_owned()))
    } else {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn key(values: &[&str]) -> Option<String> {
        presented_key(&with(values)).map(|p| p.as_str().to_owned())
    }

    #[test]
    fn bearer_in_any_case() {
        assert_eq!(key(&["Bearer crl_a_b"]).as_deref(), Some("crl_a_b"));
        assert_eq!(key(&["bearer   crl_a_b"]).as_deref(), Some("crl_a_b"));
        assert_eq!(key(&["BEARER crl_a_b "]).as_deref(), Some("crl_a_b"));
    }

    #[test]
    fn basic_uses_the_password() {
        let v = format!("Basic {}", STANDARD.encode("anyone:crl_a_b"));
        assert_eq!(key(&[&v]).as_deref(), Some("crl_a_b"));
        let no_user = format!("basic {}", STANDARD.encode(":crl_a_b"));
        assert_eq!(key(&[&no_user]).as_deref(), Some("crl_a_b"));
        // The password may itself contain ':'; only the first one separates the user.
        let colon = format!("Basic {}", STANDARD.encode("u:crl:x"));
        assert_eq!(key(&[&colon]).as_deref(), Some("crl:x"));
    }

    #[test]
    fn malformed_or_ambiguous_is_none() {
        assert_eq!(key(&[]), None);
        assert_eq!(key(&["Bearer"]), None);
        assert_eq!(key(&["Bearer "]), None);
        assert_eq!(key(&["Bearer a b"]), None);
        assert_eq!(key(&["Token crl_a_b"]), None);
        assert_eq!(key(&["crl_a_b"]), None);
        assert_eq!(key(&["Bearer crl_a_b", "Bearer crl_c_d"]), None);
        assert_eq!(key(&["Basic !!!notbase64"]), None);
        let no_colon = format!("Basic {}", STANDARD.encode("crl_a_b"));
        assert_eq!(key(&[&no_colon]), None);
        let empty_pw = format!("Basic {}", STANDARD.encode("user:"));
        assert_eq!(key(&[&empty_pw]), None);
        let long = format!("Bearer {}", "a".repeat(12_000));
        assert_eq!(key(&[&long]), None);
    }

    fn both(authorization: &[&str], api_key: &[&str]) -> Option<String> {
        let mut h = with(authorization);
        for v in api_key {
            h.append(X_API_KEY, HeaderValue::from_str(v).unwrap());
        }
        presented_key(&h).map(|p| p.as_str().to_owned())
    }

    #[test]
    fn x_api_key_alone_or_agreeing_with_authorization() {
        assert_eq!(both(&[], &["crl_a_b"]).as_deref(), Some("crl_a_b"));
        assert_eq!(both(&[], &[" crl_a_b "]).as_deref(), Some("crl_a_b"));
        assert_eq!(
            both(&["Bearer crl_a_b"], &["crl_a_b"]).as_deref(),
            Some("crl_a_b")
        );
        let basic = format!("Basic {}", STANDARD.encode("u:crl_a_b"));
        assert_eq!(both(&[&basic], &["crl_a_b"]).as_deref(), Some("crl_a_b"));
    }

    #[test]
    fn x_api_key_malformed_repeated_or_disagreeing_is_none() {
        assert_eq!(both(&[], &[""]), None);
        assert_eq!(both(&[], &["Bearer crl_a_b"]), None);
        assert_eq!(both(&[], &["crl_a_b", "crl_a_b"]), None);
        assert_eq!(both(&[], &[&"a".repeat(12_000)]), None);
        // Two different keys: neither is guessed.
        assert_eq!(both(&["Bearer crl_a_b"], &["crl_c_d"]), None);
        // A broken Authorization is not rescued by a good x-api-key.
        assert_eq!(both(&["Token crl_a_b"], &["crl_a_b"]), None);
    }

    #[test]
    fn an_oversized_credential_of_a_tokens_shape_is_told_apart() {
        let part = "a".repeat(6_000);
        let token = format!("{part}.{part}.sig");
        let bearer = format!("Bearer {token}");
        assert_eq!(key(&[&bearer]), None, "still not looked at");
        assert!(oversized_token(&with(&[&bearer])));
        assert!(oversized_token(&with(&[&format!("bearer   {token}")])));
        let mut h = HeaderMap::new();
        h.append(X_API_KEY, HeaderValue::from_str(&token).unwrap());
        assert!(oversized_token(&h));
        // Not a token's shape, not oversized, not Bearer, or repeated: no.
        let no_dots = format!("Bearer {}", "a".repeat(12_000));
        assert!(!oversized_token(&with(&[&no_dots])));
        let key_like = format!("Bearer crl_{token}");
        assert!(!oversized_token(&with(&[&key_like])));
        assert!(!oversized_token(&with(&["Bearer a.b.c"])));
        let spaced = format!("Bearer {token} x");
        assert!(!oversized_token(&with(&[&spaced])));
        assert!(!oversized_token(&with(&[&format!("Token {token}")])));
        let basic = format!("Basic {}", STANDARD.encode(format!("u:{token}")));
        assert!(!oversized_token(&with(&[&basic])));
        assert!(!oversized_token(&with(&[&bearer, "Bearer a.b.c"])));
        assert!(!oversized_token(&HeaderMap::new()));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let h = with(&["Bearer crl_secret"]);
        let p = presented_key(&h).unwrap();
        assert!(!format!("{p:?}").contains("secret"));
    }
}
