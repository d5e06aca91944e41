//! Binding a policy's keys to client-certificate identities (`client_cert_names`).
//!
//! The gate verifies client certificates during the TLS handshake (against
//! `server.tls_client_ca`) and reads the verified leaf's names once per connection: every
//! subject common name (CN) and every DNS subject alternative name. A request made with a key
//! of a policy that lists `client_cert_names` is allowed only when one of those names matches
//! one of the patterns. Matching is the model allow-list's glob (`*` any run of characters,
//! `.` included, `?` exactly one), ignoring ASCII case as DNS does.

use std::fmt;

use crate::model::glob_match_ignore_ascii_case;

/// Longest pattern accepted, in bytes (a DNS name has at most 253).
pub const MAX_PATTERN_LEN: usize = 256;

/// The rule named in a refusal for a certificate that does not match (`x-corral-rule`,
/// `corral.reason`).
pub const RULE: &str = "client_certificate";

/// One entry of `client_cert_names`: a glob over a certificate's CN or DNS names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertNamePattern {
    raw: String,
    /// `raw` in lower case, as matched.
    glob: String,
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertNameError {
    #[error("must not be empty")]
    Empty,
    #[error("longer than 256 bytes")]
    TooLong,
    #[error("contains control characters")]
    Control,
    #[error("starts or ends with whitespace, which no certificate name has")]
    Padded,
}

impl CertNamePattern {
    /// Parses a pattern as written in the config file.
    pub fn parse(raw: &str) -> Result<CertNamePattern, CertNameError> {
        if raw.is_empty() {
            return Err(CertNameError::Empty);
        }
        if raw.len() > MAX_PATTERN_LEN {
            return Err(CertNameError::TooLong);
        }
        if raw.chars().any(char::is_control) {
            return Err(CertNameError::Control);
        }
        if raw.trim() != raw {
            return Err(CertNameError::Padded);
        }
        Ok(CertNamePattern {
            raw: raw.to_owned(),
            glob: raw.to_ascii_lowercase(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether `name` (a CN or a DNS name, any case) matches.
    pub fn matches(&self, name: &str) -> bool {
        glob_match_ignore_ascii_case(self.glob.as_bytes(), name.as_bytes())
    }
}

impl fmt::Display for CertNamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Whether any of a certificate's `names` (its CNs and DNS names) matches any of `patterns`.
/// No names (no verified certificate, or one without a CN or DNS name) never match.
pub fn any_matches<'a>(
    patterns: &[CertNamePattern],
    names: impl IntoIterator<Item = &'a str>,
) -> bool {
    names
        .into_iter()
        .any(|n| patterns.iter().any(|p| p.matches(n)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn pats(list: &[&str]) -> Vec<CertNamePattern> {
        list.iter()
            .map(|p| CertNamePattern::parse(p).unwrap())
            .collect()
    }

    #[test]
    fn globs_match_names_ignoring_case() {
        let p = pats(&["app-*", "batch.example.com", "node-?.internal"]);
        for yes in [
            "app-1",
            "APP-billing",
            "app-",
            "batch.example.com",
            "Batch.Example.COM",
            "node-7.internal",
        ] {
            assert!(any_matches(&p, [yes]), "{yes}");
        }
        for no in [
            "",
            "ap-1",
            "xapp-1",
            "batch.example.com.evil.net",
            "evil.batch.example.com",
            "node-17.internal",
            "node-.internal",
        ] {
            assert!(!any_matches(&p, [no]), "{no}");
        }
        // `*` crosses dots, as in the model allow-list.
        assert!(any_matches(&pats(&["*.example.com"]), ["a.b.example.com"]));
        assert!(!any_matches(&pats(&["*.example.com"]), ["example.com"]));
    }

    #[test]
    fn any_name_of_the_certificate_will_do_and_none_never_matches() {
        let p = pats(&["batch.example.com"]);
        assert!(any_matches(&p, ["some cn", "batch.example.com"]));
        assert!(!any_matches(&p, ["some cn", "other.example.com"]));
        assert!(!any_matches(&p, std::iter::empty()));
        assert!(!any_matches(&[], ["batch.example.com"]));
        // A name with a space, as CNs may have.
        assert!(any_matches(&pats(&["Billing *"]), ["billing App"]));
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert_eq!(CertNamePattern::parse(""), Err(CertNameError::Empty));
        assert_eq!(
            CertNamePattern::parse(&"a".repeat(257)),
            Err(CertNameError::TooLong)
        );
        assert_eq!(
            CertNamePattern::parse("app\n-1"),
            Err(CertNameError::Control)
        );
        assert_eq!(CertNamePattern::parse(" app"), Err(CertNameError::Padded));
        assert_eq!(CertNamePattern::parse("App-*").unwrap().as_str(), "App-*");
    }

    #[test]
    fn hostile_globs_stay_linear() {
        let p = pats(&[&"*a".repeat(100)]);
        let name = "a".repeat(200) + "b";
        let started = std::time::Instant::now();
        assert!(!any_matches(&p, [name.as_str()]));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
