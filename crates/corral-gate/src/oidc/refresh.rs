//! The background task that keeps the key set current: every `oidc.refresh` after a fetch
//! that worked, and after one that failed sooner, backing off from one second.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Oidc;

/// Wait before the first retry of a failed fetch; doubled on each failure in a row.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Longest wait between retries (never longer than `oidc.refresh` either).
const MAX_RETRY: Duration = Duration::from_secs(300);

/// Runs until `stop` turns true. `fetched` says whether the start-up fetch worked.
pub async fn run(oidc: Arc<Oidc>, fetched: bool, mut stop: watch::Receiver<bool>) {
    let period = oidc.config().refresh;
    let max_retry = MAX_RETRY.min(period);
    let mut retry = FIRST_RETRY;
    let mut wait = if fetched { period } else { retry };
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        let result = tokio::select! {
            r = oidc.refresh() => r,
            _ = stop.changed() => return,
        };
        match result {
            Ok(keys) => {
                tracing::debug!(keys, "OIDC key set refreshed");
                retry = FIRST_RETRY;
                wait = period;
            }
            Err(e) => {
                if oidc.has_keys() {
                    tracing::warn!(error = %e, retry_in = ?retry, "cannot refresh the OIDC key set; keeping the last one fetched");
                } else {
                    tracing::error!(error = %e, retry_in = ?retry, "cannot fetch the OIDC key set: every token is refused until it can be fetched (corral keys still work)");
                }
                wait = retry;
                retry = (retry * 2).min(max_retry);
            }
        }
    }
}
