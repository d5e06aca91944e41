//! OIDC access tokens: the identity provider's key set, kept current, and the authentication
//! of a token against it ([`corral_policy::oidc::verify`] does the checking).
//!
//! The key set is fetched at start-up (discovery, then `jwks_uri`), again every
//! `oidc.refresh`, and on demand when a token names a key the set lacks (a rotation at the
//! provider) or while no set was ever fetched — on demand at most once per
//! [`DEFAULT_REFETCH_INTERVAL`], so junk `kid`s cannot make the gate hammer the provider. A
//! fetch that fails keeps the last good set. Until one succeeds, every token is refused
//! (`token_keys_unavailable`) while corral keys work as ever.
//!
//! A token's caller is the user `oidc:<user claim>`: key names cannot hold `:`, so a token
//! user never shares allowances with a key. Its request holds a lease that only the gate's
//! shutdown cuts: a token is not revoked while its request runs (the provider's short token
//! lifetimes are the revocation), and one that expires mid-stream finishes its response.

mod fetch;
mod refresh;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use corral_policy::config::{IdpUrl, OidcSection};
use corral_policy::oidc::{parse_discovery, verify, Identity, Jwks, TokenError};
use tokio::sync::Mutex;

use crate::context::RequestCtx;
use crate::error::GateError;
use crate::keys::{Keys, Lease};
use crate::reply::Failure;

pub use fetch::FETCH_TIMEOUT;
use fetch::{FetchError, IdpClient};
pub use refresh::run as refresh_task;

/// Shortest time between two fetches of the key set made for a token's sake.
pub const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// The audit reason for a token while no key set was ever fetched.
const KEYS_UNAVAILABLE: &str = "token_keys_unavailable";

/// The prefix of a token user's name in the audit log and the allowances.
pub const USER_PREFIX: &str = "oidc:";

/// The provider's keys and how to fetch them.
pub struct Oidc {
    config: Arc<OidcSection>,
    client: IdpClient,
    keys: ArcSwapOption<Jwks>,
    /// Held while fetching; holds when the last fetch started.
    fetching: Mutex<Option<Instant>>,
    /// [`DEFAULT_REFETCH_INTERVAL`], in milliseconds (tests shorten it).
    refetch_ms: AtomicU64,
}

/// Why the key set could not be refreshed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("discovery document {url}: {source}")]
    DiscoveryFetch {
        url: String,
        #[source]
        source: FetchError,
    },
    #[error("discovery document {url}: {source}")]
    Discovery {
        url: String,
        #[source]
        source: corral_policy::oidc::DiscoveryError,
    },
    #[error("discovery document {url}: jwks_uri {uri:?}: {reason}")]
    BadJwksUri {
        url: String,
        uri: String,
        reason: String,
    },
    #[error("key set {url}: {source}")]
    JwksFetch {
        url: String,
        #[source]
        source: FetchError,
    },
    #[error("key set {url}: {source}")]
    Jwks {
        url: String,
        #[source]
        source: corral_policy::oidc::JwksError,
    },
}

impl Oidc {
    /// The provider's client for `config` (its CA file read now); no key set yet.
    pub fn new(config: Arc<OidcSection>) -> Result<Oidc, GateError> {
        let client = IdpClient::new(config.ca_file.as_deref())?;
        Ok(Oidc {
            config,
            client,
            keys: ArcSwapOption::empty(),
            fetching: Mutex::new(None),
            refetch_ms: AtomicU64::new(millis(DEFAULT_REFETCH_INTERVAL)),
        })
    }

    pub fn config(&self) -> &OidcSection {
        &self.config
    }

    /// Shortest time between two fetches made for tokens' sake.
    pub fn set_refetch_interval(&self, every: Duration) {
        self.refetch_ms.store(millis(every), Ordering::Relaxed);
    }

    /// Whether a key set was fetched.
    pub fn has_keys(&self) -> bool {
        self.keys.load().is_some()
    }

    /// Fetches the key set now (waiting for a fetch under way to finish first) and, when it
    /// can be used, puts it in service. Returns the number of usable keys.
    pub async fn refresh(&self) -> Result<usize, RefreshError> {
        let mut last = self.fetching.lock().await;
        *last = Some(Instant::now());
        self.fetch_and_swap().await
    }

    async fn fetch_and_swap(&self) -> Result<usize, RefreshError> {
        let jwks = self.fetch().await?;
        let n = jwks.len();
        // Keys no signature could verify with are named once, not at every refresh.
        let before = self.keys.load();
        if before.as_deref().map(Jwks::refused) != Some(jwks.refused()) {
            for refused in jwks.refused() {
                tracing::warn!(issuer = %self.config.issuer, "OIDC key set: {refused}; the key is left out (tokens it signed are refused)");
            }
        }
        self.keys.store(Some(Arc::new(jwks)));
        Ok(n)
    }

    async fn fetch(&self) -> Result<Jwks, RefreshError> {
        let jwks_url =
            match &self.config.jwks_uri {
                Some(u) => u.clone(),
                None => {
                    let url = &self.config.discovery;
                    let doc = self.client.get(url).await.map_err(|source| {
                        RefreshError::DiscoveryFetch {
                            url: url.to_string(),
                            source,
                        }
                    })?;
                    let uri = parse_discovery(&doc, &self.config.issuer).map_err(|source| {
                        RefreshError::Discovery {
                            url: url.to_string(),
                            source,
                        }
                    })?;
                    IdpUrl::parse(&uri).map_err(|reason| RefreshError::BadJwksUri {
                        url: url.to_string(),
                        uri: uri.chars().take(200).collect(),
                        reason,
                    })?
                }
            };
        let body = self
            .client
            .get(&jwks_url)
            .await
            .map_err(|source| RefreshError::JwksFetch {
                url: jwks_url.to_string(),
                source,
            })?;
        Jwks::parse(&body).map_err(|source| RefreshError::Jwks {
            url: jwks_url.to_string(),
            source,
        })
    }

    /// For a token that names a key the set `seen` lacks (or while there is no set): fetches
    /// the set again unless another request just did, or the last fetch is more recent than
    /// the refetch interval. True when a different set is in service than `seen`.
    async fn refetch_for(&self, seen: Option<&Arc<Jwks>>) -> bool {
        let mut last = self.fetching.lock().await;
        let changed = |now: Option<Arc<Jwks>>| match (now, seen) {
            (Some(now), Some(seen)) => !Arc::ptr_eq(&now, seen),
            (now, None) => now.is_some(),
            (None, Some(_)) => false,
        };
        if changed(self.keys.load_full()) {
            return true;
        }
        let every = Duration::from_millis(self.refetch_ms.load(Ordering::Relaxed));
        if last.is_some_and(|t| t.elapsed() < every) {
            return false;
        }
        *last = Some(Instant::now());
        match self.fetch_and_swap().await {
            Ok(n) => {
                tracing::info!(
                    keys = n,
                    "OIDC key set fetched again for a token naming an unknown key"
                );
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch the OIDC key set again");
                changed(self.keys.load_full())
            }
        }
    }

    /// Verifies `token` at `now` (seconds since the Unix epoch), fetching the key set again
    /// (rate-limited) for a key it lacks. The error is the audit reason.
    pub async fn verify(&self, token: &str, now: i64) -> Result<Identity, &'static str> {
        let seen = self.keys.load_full();
        let first = match &seen {
            Some(keys) => verify(token, keys, &self.config, now),
            None => Err(TokenError::UnknownKey),
        };
        match first {
            Err(TokenError::UnknownKey) if self.refetch_for(seen.as_ref()).await => {
                match self.keys.load_full() {
                    Some(keys) => {
                        verify(token, &keys, &self.config, now).map_err(TokenError::reason)
                    }
                    None => Err(KEYS_UNAVAILABLE),
                }
            }
            Err(_) if seen.is_none() => Err(KEYS_UNAVAILABLE),
            other => other.map_err(TokenError::reason),
        }
    }

    /// Authenticates a request's token: sets its user (and its reason when refused) and
    /// returns its policy's name and its lease. A valid token the mapping gives no policy is
    /// refused with 403; every other failure is the 401 a bad key gets.
    pub async fn authenticate(
        &self,
        token: &str,
        ctx: &mut RequestCtx,
        keys: &Keys,
    ) -> Result<(String, Lease), Failure> {
        let identity = self
            .verify(token, ctx.at.timestamp())
            .await
            .map_err(|reason| {
                ctx.reason = Some(reason);
                Failure::unauthorized()
            })?;
        ctx.user = Some(format!("{USER_PREFIX}{}", identity.user));
        let policy = identity.policy.ok_or_else(|| {
            Failure::new(
                403,
                "oidc_no_policy",
                "this token's groups are not mapped to any policy of the gate",
            )
        })?;
        Ok((policy, keys.token_lease()))
    }
}

/// What [`Oidc::new`] would refuse for `section`: an unreadable or empty CA file.
pub fn check(section: &OidcSection) -> Result<(), GateError> {
    IdpClient::new(section.ca_file.as_deref()).map(drop)
}

/// Puts `[oidc]` in service: its CA file read (an error stops the start-up), its key set
/// fetched once. A provider that cannot be reached does not stop the gate: the error is
/// logged, and the refresh task retries. The flag says whether the fetch worked.
pub async fn start(config: Arc<OidcSection>) -> Result<(Arc<Oidc>, bool), GateError> {
    let oidc = Arc::new(Oidc::new(config)?);
    let fetched = match tokio::time::timeout(FETCH_TIMEOUT, oidc.refresh()).await {
        Ok(Ok(n)) => {
            tracing::info!(issuer = %oidc.config.issuer, keys = n, "OIDC key set fetched");
            true
        }
        Ok(Err(e)) => {
            tracing::error!(issuer = %oidc.config.issuer, error = %e, "cannot fetch the OIDC key set: tokens are refused until it can be fetched (corral keys work)");
            false
        }
        Err(_) => {
            tracing::error!(issuer = %oidc.config.issuer, "no OIDC key set within {}s: tokens are refused until it can be fetched (corral keys work)", FETCH_TIMEOUT.as_secs());
            false
        }
    };
    Ok((oidc, fetched))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
