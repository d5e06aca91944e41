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
    let (mut wait, mut retry) = schedule(fetched, FIRST_RETRY, period);
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        let result = tokio::select! {
            r = oidc.refresh() => r,
            _ = stop.changed() => return,
        };
        match &result {
            Ok(keys) => tracing::debug!(keys, "OIDC key set refreshed"),
            Err(e) if oidc.has_keys() => {
                tracing::warn!(error = %e, retry_in = ?retry, "cannot refresh the OIDC key set; keeping the last one fetched");
            }
            Err(e) => {
                tracing::error!(error = %e, retry_in = ?retry, "cannot fetch the OIDC key set: every token is refused until it can be fetched (corral keys still work)");
            }
        }
        (wait, retry) = schedule(result.is_ok(), retry, period);
    }
}

/// After a fetch: how long to wait before the next one, and the wait after that one should
/// it fail. A fetch that worked waits the refresh period and resets the retry; one that
/// failed waits `retry`, which doubles up to [`MAX_RETRY`] (and never past the period).
fn schedule(ok: bool, retry: Duration, period: Duration) -> (Duration, Duration) {
    if ok {
        (period, FIRST_RETRY)
    } else {
        (retry, (retry * 2).min(MAX_RETRY.min(period)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_to_a_cap_and_a_success_resets() {
        let period = Duration::from_secs(600);
        let mut retry = FIRST_RETRY;
        let mut waits = Vec::new();
        for _ in 0..12 {
            let (wait, next) = schedule(false, retry, period);
            waits.push(wait.as_secs());
            retry = next;
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(schedule(true, retry, period), (period, FIRST_RETRY));
        // A short refresh period caps the retries too.
        let short = Duration::from_secs(30);
        assert_eq!(schedule(false, Duration::from_secs(32), short).1, short);
    }
}
