//! The in-memory view the gate authenticates against.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use subtle::ConstantTimeEq;

use crate::key;

/// Why a presented key was refused. The gate answers every variant with the same 401; the
/// variants exist for the audit log. `Display` never contains the presented key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not of the form `crl_<12 base62>_<43 base62>`.
    #[error("malformed key")]
    Malformed,
    /// Well-formed, but no key has this id, or the secret does not match it.
    #[error("unknown key")]
    Unknown,
    /// The key was revoked (or replaced by a rotation).
    #[error("revoked key")]
    Revoked,
    /// The key's expiry time has passed.
    #[error("expired key")]
    Expired,
}

impl AuthError {
    /// A stable snake_case name for logs and audit records.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Malformed => "malformed_key",
            AuthError::Unknown => "unknown_key",
            AuthError::Revoked => "revoked_key",
            AuthError::Expired => "expired_key",
        }
    }
}

/// What the gate learns about an authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    pub id: String,
    pub name: String,
    pub policy: String,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub(crate) struct SnapshotKey {
    pub(crate) entry: KeyEntry,
    pub(crate) secret_sha256: [u8; 32],
    pub(crate) revoked: bool,
}

/// All keys of the store at one moment, indexed by public id. Revoked keys are kept (hash only)
/// so that a revoked key is reported as such in the audit log rather than as unknown.
#[derive(Debug, Clone, Default)]
pub struct KeySnapshot {
    by_id: HashMap<String, SnapshotKey>,
}

impl KeySnapshot {
    pub(crate) fn new(keys: Vec<SnapshotKey>) -> KeySnapshot {
        KeySnapshot {
            by_id: keys.into_iter().map(|k| (k.entry.id.clone(), k)).collect(),
        }
    }

    /// Checks a presented key. The secret is compared by hash in constant time; revocation and
    /// expiry are only reported to a caller who holds the right secret.
    pub fn authenticate(
        &self,
        presented: &str,
        now: DateTime<Utc>,
    ) -> Result<&KeyEntry, AuthError> {
        let (id, secret) = key::parse(presented).ok_or(AuthError::Malformed)?;
        let Some(k) = self.by_id.get(id) else {
            return Err(AuthError::Unknown);
        };
        let presented_hash = key::hash_secret(secret);
        if !bool::from(presented_hash.ct_eq(&k.secret_sha256)) {
            return Err(AuthError::Unknown);
        }
        if k.revoked {
            return Err(AuthError::Revoked);
        }
        if k.entry.expires_at.is_some_and(|exp| now >= exp) {
            return Err(AuthError::Expired);
        }
        Ok(&k.entry)
    }

    /// Whether the key with this public id may still be used at `now`: it is in the store, not
    /// revoked (a rotation revokes the old id) and not expired. The gate asks this of keys whose
    /// requests are still running when the store changes.
    pub fn is_usable(&self, id: &str, now: DateTime<Utc>) -> bool {
        self.by_id
            .get(id)
            .is_some_and(|k| !k.revoked && k.entry.expires_at.is_none_or(|exp| now < exp))
    }

    /// Number of keys that are not revoked (expired ones included).
    pub fn active_len(&self) -> usize {
        self.by_id.values().filter(|k| !k.revoked).count()
    }

    /// True when no key is usable.
    pub fn is_empty(&self) -> bool {
        self.active_len() == 0
    }
}
