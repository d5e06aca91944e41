//! Allowance arithmetic for a key's `max_requests_per_minute` and token quotas: the generic
//! cell rate algorithm (GCRA), on nanoseconds of a clock the caller reads.
//!
//! One number of state per key and allowance, its theoretical arrival time (TAT): when the
//! allowance would be full again. A key that has been quiet may spend a whole period's
//! allowance at once; after that it earns `amount / period` back continuously. A refused
//! request costs nothing: the caller keeps the old state.
//!
//! Requests are counted before they are served ([`Rate::admit`]). Tokens are known only once
//! the answer has ended, so they are charged afterwards ([`Rate::charge`]) and a request is
//! admitted while at least one token of the allowance is left ([`Rate::has_room`]): the last
//! request admitted may overshoot the quota by its own size.

use std::time::Duration;

/// Nanoseconds in a minute.
const MINUTE_NS: u64 = 60_000_000_000;

/// An allowance of `amount` units per period, all of which may be spent at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Nanoseconds between requests at the steady rate.
    interval: u64,
    /// How far ahead of now the TAT may run and still admit a request.
    tolerance: u64,
}

impl Rate {
    /// `n` requests per minute; `None` for 0 (a limit of nothing is not a rate).
    pub fn per_minute(n: u64) -> Option<Rate> {
        Rate::new(n, Duration::from_nanos(MINUTE_NS))
    }

    /// `amount` units per `period`; `None` for an amount or a period of 0.
    pub fn new(amount: u64, period: Duration) -> Option<Rate> {
        let period = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
        if amount == 0 || period == 0 {
            return None;
        }
        // At least 1 ns, so that absurd rates (more than one unit a nanosecond) still advance
        // the state.
        let interval = (period / amount).max(1);
        Some(Rate {
            interval,
            tolerance: interval.saturating_mul(amount - 1),
        })
    }

    /// Whether one unit is left at `now`: `Err(wait)` until one is.
    pub fn has_room(&self, tat: u64, now: u64) -> Result<(), Duration> {
        let ahead = tat.saturating_sub(now);
        if ahead > self.tolerance {
            Err(Duration::from_nanos(ahead - self.tolerance))
        } else {
            Ok(())
        }
    }

    /// Spends `cost` units at `now`, however many are left: the new state.
    pub fn charge(&self, tat: u64, now: u64, cost: u64) -> u64 {
        tat.max(now)
            .saturating_add(self.interval.saturating_mul(cost))
    }

    /// Admits a request at `now` with state `tat` (0 for a key never seen): `Ok(new_tat)`, or
    /// `Err(wait)`, how long until a request would be admitted.
    pub fn admit(&self, tat: u64, now: u64) -> Result<u64, Duration> {
        self.has_room(tat, now)?;
        Ok(self.charge(tat, now, 1))
    }

    /// State `tat`, kept under rate `from`, as the same number of units spent under this
    /// rate at `now`: what was spent counts against a limit raised or lowered since. Rounded
    /// up, so the result is never fuller than the state.
    pub fn rescale(&self, tat: u64, now: u64, from: &Rate) -> u64 {
        let ahead = u128::from(tat.saturating_sub(now));
        if ahead == 0 || self.interval == from.interval {
            return tat;
        }
        let scaled = (ahead * u128::from(self.interval)).div_ceil(u128::from(from.interval));
        now.saturating_add(u64::try_from(scaled).unwrap_or(u64::MAX))
    }

    /// Whether state `tat` means nothing at `now`: the allowance is full, so forgetting the
    /// key changes no answer.
    pub fn is_idle(tat: u64, now: u64) -> bool {
        tat <= now
    }
}

/// Whole seconds to tell a client to wait (`Retry-After`): `wait` rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    /// Sends requests at the given instants; returns which were admitted.
    fn run(rate: Rate, at: &[u64]) -> Vec<bool> {
        let mut tat = 0;
        at.iter()
            .map(|&now| match rate.admit(tat, now) {
                Ok(next) => {
                    tat = next;
                    true
                }
                Err(_) => false,
            })
            .collect()
    }

    #[test]
    fn a_state_rescaled_to_another_rate_keeps_the_units_spent() {
        let ten = Rate::new(10, Duration::from_secs(3600)).unwrap();
        let thousand = Rate::new(1000, Duration::from_secs(3600)).unwrap();
        let now = 100 * SEC;
        // 30 units spent under 10 an hour: three hours ahead.
        let tat = ten.charge(0, now, 30);
        assert_eq!(tat, now + 3 * 3600 * SEC);
        let raised = thousand.rescale(tat, now, &ten);
        assert_eq!(raised, thousand.charge(0, now, 30));
        assert!(thousand.has_room(raised, now).is_ok());
        // And back: the same 30 units.
        assert_eq!(ten.rescale(raised, now, &thousand), tat);
        // A full allowance stays full, and the same rate changes nothing.
        assert_eq!(thousand.rescale(now - 1, now, &ten), now - 1);
        assert_eq!(ten.rescale(tat, now, &ten), tat);
        // No overflow at the extremes.
        let slow = Rate::new(1, Duration::from_secs(86_400)).unwrap();
        let fast = Rate::per_minute(u64::MAX).unwrap();
        assert_eq!(slow.rescale(u64::MAX, 0, &fast), u64::MAX);
    }

    #[test]
    fn zero_is_not_a_rate() {
        assert_eq!(Rate::per_minute(0), None);
    }

    #[test]
    fn a_quiet_key_may_send_its_whole_minute_at_once_and_no_more() {
        let rate = Rate::per_minute(3).unwrap();
        let t = 100 * SEC;
        assert_eq!(run(rate, &[t, t, t, t]), [true, true, true, false]);
    }

    #[test]
    fn after_the_burst_one_request_per_interval() {
        // 3 a minute: one every 20 s once the burst is spent.
        let rate = Rate::per_minute(3).unwrap();
        let t = 100 * SEC;
        let admitted = run(
            rate,
            &[
                t,
                t,
                t,
                t + 19 * SEC,
                t + 20 * SEC,
                t + 21 * SEC,
                t + 40 * SEC,
            ],
        );
        assert_eq!(admitted, [true, true, true, false, true, false, true]);
    }

    #[test]
    fn the_wait_is_until_the_next_admission() {
        let rate = Rate::per_minute(3).unwrap();
        let t = 100 * SEC;
        let mut tat = 0;
        for _ in 0..3 {
            tat = rate.admit(tat, t).unwrap();
        }
        let wait = rate.admit(tat, t + 5 * SEC).unwrap_err();
        assert_eq!(wait, Duration::from_secs(15));
        // Waiting exactly that long is enough.
        assert!(rate.admit(tat, t + 20 * SEC).is_ok());
        assert!(rate.admit(tat, t + 20 * SEC - 1).is_err());
    }

    #[test]
    fn a_refused_request_costs_nothing() {
        let rate = Rate::per_minute(1).unwrap();
        let tat = rate.admit(0, SEC).unwrap();
        // Hammering while refused does not push the next admission further out.
        for i in 0..1000 {
            assert!(rate.admit(tat, SEC + i).is_err());
        }
        assert!(rate.admit(tat, 61 * SEC).is_ok());
    }

    #[test]
    fn over_a_long_run_the_count_is_the_rate() {
        // A client sending as fast as it can for 10 minutes gets its burst plus the rate.
        let rate = Rate::per_minute(60).unwrap();
        let start = 1_000 * SEC;
        let instants: Vec<u64> = (0..600_000).map(|i| start + i * (SEC / 1000)).collect();
        let admitted = run(rate, &instants).iter().filter(|&&a| a).count();
        // 60 at once, then one a second for the remaining 599.999 s.
        assert_eq!(admitted, 60 + 599);
    }

    #[test]
    fn extreme_rates_do_not_overflow() {
        let rate = Rate::per_minute(u64::MAX).unwrap();
        assert!(rate.admit(0, 0).is_ok());
        assert!(rate.admit(u64::MAX - 1, u64::MAX - 1).is_ok());
        let slow = Rate::per_minute(1).unwrap();
        assert!(slow.admit(u64::MAX, 0).is_err());
    }

    #[test]
    fn idle_state_can_be_forgotten() {
        let rate = Rate::per_minute(2).unwrap();
        let tat = rate.admit(0, 10 * SEC).unwrap();
        assert!(!Rate::is_idle(tat, 10 * SEC));
        assert!(Rate::is_idle(tat, 40 * SEC));
        // Forgetting it then gives the same answers as keeping it.
        assert_eq!(
            rate.admit(tat, 40 * SEC).is_ok(),
            rate.admit(0, 40 * SEC).is_ok()
        );
    }

    #[test]
    fn a_token_quota_admits_while_any_is_left_and_charges_afterwards() {
        // 1,000 tokens an hour: 3.6 s a token.
        let quota = Rate::new(1000, Duration::from_secs(3600)).unwrap();
        let t = 10 * SEC;
        let mut tat = 0;
        assert!(quota.has_room(tat, t).is_ok());
        tat = quota.charge(tat, t, 999);
        // One token left: still admitted; the answer may take more than is left.
        assert!(quota.has_room(tat, t).is_ok());
        tat = quota.charge(tat, t, 500);
        let wait = quota.has_room(tat, t).unwrap_err();
        // 500 tokens over, then one more to earn: 500 * 3.6 s.
        assert_eq!(wait, Duration::from_secs(1800));
        assert!(quota.has_room(tat, t + 1800 * SEC).is_ok());
        // Spending nothing changes nothing.
        assert_eq!(quota.charge(tat, t, 0), tat);
    }

    #[test]
    fn an_empty_period_or_amount_is_not_an_allowance() {
        assert_eq!(Rate::new(0, Duration::from_secs(1)), None);
        assert_eq!(Rate::new(1, Duration::ZERO), None);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(15)), 15);
        assert_eq!(retry_after_secs(Duration::from_millis(15_001)), 16);
    }
}
