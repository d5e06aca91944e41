//! Per-key allowances: a policy's `max_requests_per_minute`, `max_concurrent_requests`,
//! `max_tokens_per_hour` and `max_tokens_per_day`, held for each key (by name, so that a
//! rotated key keeps its count). The arithmetic is [`corral_policy::rate`]; this keeps the
//! state in memory, and hands what changed to the key watcher, which saves it in the key store
//! every few seconds and at shutdown (`carried`, `keys`): a restarted gate starts where the last
//! one stopped. Running-request counts are not saved.
//!
//! A request is admitted (or refused with 429) after authentication and before its body is
//! read. An admitted request holds a [`Permit`] until its audit record is written, when the
//! tokens the upstream counted are charged to the key and its running count goes down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use corral_policy::config::Policy;
use corral_policy::rate::{self, Rate};
use corral_store::SavedAllowance;

use crate::carried::{self, Clocks};

use crate::reply::Failure;

/// Keys remembered before idle ones are forgotten.
const FORGET_ABOVE: usize = 1024;
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// The allowance state of every key that has used one since the gate started.
pub struct Allowances {
    epoch: Instant,
    keys: Mutex<HashMap<String, Arc<KeyState>>>,
}

/// One key's state.
#[derive(Default)]
struct KeyState {
    /// Theoretical arrival times ([`corral_policy::rate`]) of its three allowances.
    tats: Mutex<Tats>,
    /// Requests admitted whose permits are not yet dropped.
    running: AtomicU64,
    /// Set when `tats` changed since the watcher last took it (set and cleared under its lock).
    changed: AtomicBool,
}

/// A key's theoretical arrival times, on the gate's clock; 0 for an allowance never used.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tats {
    pub requests: u64,
    pub tokens_hour: u64,
    pub tokens_day: u64,
    /// The limits the times were counted under; 0 where not known (taken as the current).
    pub quotas: Quotas,
}

/// A requests-per-minute limit and two token quotas, each 0 where not known or not set.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    pub requests: u64,
    pub tokens_hour: u64,
    pub tokens_day: u64,
}

/// One allowance of a policy: its limit and the rate it makes.
#[derive(Debug, Clone, Copy)]
struct Limit {
    amount: u64,
    rate: Rate,
}

impl Limit {
    fn new(amount: Option<u64>, period: Duration) -> Option<Limit> {
        let amount = amount?;
        Some(Limit {
            amount,
            rate: Rate::new(amount, period)?,
        })
    }
}

/// A state counted under limit `*quota` (0: not known), as the same units spent under
/// `limit`: what was spent counts against a limit raised or lowered since, not its share of
/// the old one. The state is then `limit`'s.
fn rebase(tat: &mut u64, quota: &mut u64, limit: Option<Limit>, period: Duration, now: u64) {
    let Some(limit) = limit else { return };
    if *quota != 0 && *quota != limit.amount {
        if let Some(old) = Rate::new(*quota, period) {
            *tat = limit.rate.rescale(*tat, now, &old);
        }
    }
    *quota = limit.amount;
}

impl Tats {
    /// These times on the policy's limits (see [`rebase`]); those the policy does not set are
    /// left as they are.
    fn rebase(
        &mut self,
        requests: Option<Limit>,
        hour: Option<Limit>,
        day: Option<Limit>,
        now: u64,
    ) {
        rebase(
            &mut self.requests,
            &mut self.quotas.requests,
            requests,
            MINUTE,
            now,
        );
        rebase(
            &mut self.tokens_hour,
            &mut self.quotas.tokens_hour,
            hour,
            HOUR,
            now,
        );
        rebase(
            &mut self.tokens_day,
            &mut self.quotas.tokens_day,
            day,
            DAY,
            now,
        );
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exceeded {
    Rate {
        per_minute: u64,
        wait: Duration,
    },
    Concurrency {
        max: u64,
    },
    Tokens {
        quota: u64,
        per: &'static str,
        wait: Duration,
    },
}

impl Exceeded {
    /// The 429 the client gets, with how long to wait.
    pub fn failure(&self) -> Failure {
        let (rule, message, wait) = match self {
            Exceeded::Rate { per_minute, wait } => (
                "rate_limited",
                format!(
                    "rate limit reached: this key may send {per_minute} requests per minute; retry in {} s",
                    rate::retry_after_secs(*wait)
                ),
                *wait,
            ),
            Exceeded::Concurrency { max } => (
                "concurrency_limited",
                format!(
                    "too many requests running: this key may have {max} at once; retry when one has ended"
                ),
                Duration::from_secs(1),
            ),
            Exceeded::Tokens { quota, per, wait } => (
                "token_quota_exhausted",
                format!(
                    "token quota spent: this key may use {quota} tokens per {per}; retry in {} s",
                    rate::retry_after_secs(*wait)
                ),
                *wait,
            ),
        };
        Failure::new(429, rule, message).retry_after(rate::retry_after_secs(wait))
    }
}

/// An admitted request's hold on its key's allowances.
pub struct Permit {
    state: Arc<KeyState>,
    epoch: Instant,
    tokens_hour: Option<Limit>,
    tokens_day: Option<Limit>,
    counted: bool,
}

impl Permit {
    /// Charges the tokens the request used (prompt and completion, as the upstream counted
    /// them) and ends the hold.
    pub fn settle(self, tokens: u64) {
        if tokens > 0 && (self.tokens_hour.is_some() || self.tokens_day.is_some()) {
            let now = nanos_since(self.epoch);
            let mut tats = lock(&self.state.tats);
            tats.rebase(None, self.tokens_hour, self.tokens_day, now);
            if let Some(l) = self.tokens_hour {
                tats.tokens_hour = l.rate.charge(tats.tokens_hour, now, tokens);
            }
            if let Some(l) = self.tokens_day {
                tats.tokens_day = l.rate.charge(tats.tokens_day, now, tokens);
            }
            self.state.changed.store(true, Ordering::Release);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.counted {
            self.state.running.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("counted", &self.counted)
            .finish_non_exhaustive()
    }
}

impl Default for Allowances {
    fn default() -> Self {
        Allowances::new()
    }
}

impl Allowances {
    pub fn new() -> Allowances {
        Allowances {
            epoch: Instant::now(),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// Admits a request of key `name` under `policy`'s allowances. `Ok(None)` when the policy
    /// sets none (nothing is kept for it).
    pub fn admit(&self, name: &str, policy: &Policy) -> Result<Option<Permit>, Exceeded> {
        if !policy.has_allowances() {
            return Ok(None);
        }
        let requests = Limit::new(policy.max_requests_per_minute, MINUTE);
        let tokens_hour = Limit::new(policy.max_tokens_per_hour, HOUR);
        let tokens_day = Limit::new(policy.max_tokens_per_day, DAY);
        let now = nanos_since(self.epoch);
        let state = self.state(name, now);
        let mut tats = lock(&state.tats);
        // The same state on this policy's limits: a change that needs no saving.
        tats.rebase(requests, tokens_hour, tokens_day, now);
        // Every check before any change: a refused request costs nothing.
        if let Some(max) = policy.max_concurrent_requests {
            if state.running.load(Ordering::Acquire) >= max {
                return Err(Exceeded::Concurrency { max });
            }
        }
        let next_requests = requests
            .map(|l| {
                l.rate
                    .admit(tats.requests, now)
                    .map_err(|wait| Exceeded::Rate {
                        per_minute: l.amount,
                        wait,
                    })
            })
            .transpose()?;
        for (limit, tat, per) in [
            (tokens_hour, tats.tokens_hour, "hour"),
            (tokens_day, tats.tokens_day, "day"),
        ] {
            if let Some(l) = limit {
                l.rate.has_room(tat, now).map_err(|wait| Exceeded::Tokens {
                    quota: l.amount,
                    per,
                    wait,
                })?;
            }
        }
        if let Some(tat) = next_requests {
            tats.requests = tat;
            state.changed.store(true, Ordering::Release);
        }
        let counted = policy.max_concurrent_requests.is_some();
        if counted {
            // Only ever raised under the key's lock, so the check above still holds.
            state.running.fetch_add(1, Ordering::AcqRel);
        }
        drop(tats);
        Ok(Some(Permit {
            state,
            epoch: self.epoch,
            tokens_hour,
            tokens_day,
            counted,
        }))
    }

    /// The key's state, made on first use. Past [`FORGET_ABOVE`] keys, those with nothing
    /// running and every allowance full again are forgotten: they would be made afresh alike.
    fn state(&self, name: &str, now: u64) -> Arc<KeyState> {
        let mut keys = lock(&self.keys);
        if let Some(s) = keys.get(name) {
            return Arc::clone(s);
        }
        if keys.len() >= FORGET_ABOVE {
            keys.retain(|_, s| !s.is_idle(now) || Arc::strong_count(s) > 1);
        }
        let s = Arc::new(KeyState::default());
        keys.insert(name.to_string(), Arc::clone(&s));
        s
    }

    /// The gate's clock and the wall clock, read now.
    pub fn clocks(&self) -> Clocks {
        Clocks {
            gate: nanos_since(self.epoch),
            wall: chrono::Utc::now(),
        }
    }

    /// Takes up states saved by an earlier gate (before any request is admitted). They are
    /// marked changed, so that the next write saves them on the wall clock as it reads now: a
    /// row saved under a clock since set back would otherwise be taken up afresh by every
    /// later gate, its time refilled while this one ran never counted.
    pub fn restore(&self, saved: &[SavedAllowance], at: Clocks) {
        let mut keys = lock(&self.keys);
        for s in saved {
            let state = KeyState {
                tats: Mutex::new(carried::from_saved(s, at)),
                changed: AtomicBool::new(true),
                ..KeyState::default()
            };
            keys.insert(s.name.clone(), Arc::new(state));
        }
    }

    /// The states that changed since the last call, as the store keeps them.
    pub fn take_changed(&self, at: Clocks) -> Vec<SavedAllowance> {
        let keys = lock(&self.keys);
        let mut changed = Vec::new();
        for (name, state) in keys.iter() {
            let tats = lock(&state.tats);
            if state.changed.swap(false, Ordering::AcqRel) {
                changed.push(carried::to_saved(name.clone(), *tats, at));
            }
        }
        changed
    }

    /// Marks these keys' states as changed again (saving them failed), those still remembered.
    pub fn mark_changed<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let keys = lock(&self.keys);
        for name in names {
            if let Some(state) = keys.get(name) {
                let _tats = lock(&state.tats);
                state.changed.store(true, Ordering::Release);
            }
        }
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        lock(&self.keys).len()
    }
}

impl KeyState {
    fn is_idle(&self, now: u64) -> bool {
        let tats = *lock(&self.tats);
        self.running.load(Ordering::Acquire) == 0
            && Rate::is_idle(tats.requests, now)
            && Rate::is_idle(tats.tokens_hour, now)
            && Rate::is_idle(tats.tokens_day, now)
    }
}

fn nanos_since(epoch: Instant) -> u64 {
    // 1 ns past the epoch at least, so that a fresh state (0) is never "ahead".
    u64::try_from(epoch.elapsed().as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// The state is plain numbers, whole after any panic: a poisoned lock is used as it is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn policy(f: impl FnOnce(&mut Policy)) -> Policy {
        let mut p = Policy::builtin_user();
        f(&mut p);
        p
    }

    #[test]
    fn a_policy_without_allowances_keeps_nothing() {
        let a = Allowances::new();
        for _ in 0..10 {
            assert!(a.admit("k", &Policy::builtin_user()).unwrap().is_none());
        }
        assert_eq!(a.remembered(), 0);
    }

    #[test]
    fn the_rate_is_per_key() {
        let a = Allowances::new();
        let p = policy(|p| p.max_requests_per_minute = Some(2));
        assert!(a.admit("alice", &p).is_ok());
        assert!(a.admit("alice", &p).is_ok());
        let e = a.admit("alice", &p).unwrap_err();
        let Exceeded::Rate { per_minute, wait } = e.clone() else {
            panic!("{e:?}")
        };
        assert_eq!(per_minute, 2);
        assert!(wait > Duration::from_secs(29) && wait <= Duration::from_secs(30));
        // Another key has its own allowance.
        assert!(a.admit("bob", &p).is_ok());
        let f = e.failure();
        assert_eq!(f.status.as_u16(), 429);
        assert_eq!(f.rule, "rate_limited");
        assert_eq!(f.retry_after, Some(30));
        assert!(f.message.contains("2 requests per minute"), "{}", f.message);
    }

    #[test]
    fn running_requests_are_counted_until_their_permits_drop() {
        let a = Allowances::new();
        let p = policy(|p| p.max_concurrent_requests = Some(2));
        let one = a.admit("k", &p).unwrap().unwrap();
        let two = a.admit("k", &p).unwrap().unwrap();
        assert_eq!(
            a.admit("k", &p).unwrap_err(),
            Exceeded::Concurrency { max: 2 }
        );
        drop(one);
        let three = a.admit("k", &p).unwrap().unwrap();
        two.settle(0);
        three.settle(10);
        assert!(a.admit("k", &p).is_ok());
    }

    #[test]
    fn a_request_refused_for_concurrency_spends_no_rate() {
        let a = Allowances::new();
        let p = policy(|p| {
            p.max_concurrent_requests = Some(1);
            p.max_requests_per_minute = Some(2);
        });
        let held = a.admit("k", &p).unwrap();
        for _ in 0..5 {
            assert!(matches!(
                a.admit("k", &p),
                Err(Exceeded::Concurrency { .. })
            ));
        }
        drop(held);
        // The second of the two a minute is still there.
        assert!(a.admit("k", &p).is_ok());
        assert!(matches!(a.admit("k", &p), Err(Exceeded::Rate { .. })));
    }

    #[test]
    fn tokens_are_charged_when_settled_and_refuse_once_spent() {
        let a = Allowances::new();
        let p = policy(|p| p.max_tokens_per_hour = Some(100));
        a.admit("k", &p).unwrap().unwrap().settle(60);
        // 40 left: admitted, and the answer may take more than that.
        a.admit("k", &p).unwrap().unwrap().settle(60);
        let e = a.admit("k", &p).unwrap_err();
        let Exceeded::Tokens { quota, per, wait } = e.clone() else {
            panic!("{e:?}")
        };
        assert_eq!((quota, per), (100, "hour"));
        // 20 over, and one more to earn: 21 * 36 s, give or take the time the test took.
        assert!(
            wait > Duration::from_secs(755) && wait <= Duration::from_secs(756),
            "{wait:?}"
        );
        assert_eq!(e.failure().rule, "token_quota_exhausted");
        // A dropped permit (the request failed, no counts) charges nothing more.
        let b = Allowances::new();
        drop(b.admit("k", &p).unwrap());
        assert!(b.admit("k", &p).is_ok());
    }

    #[test]
    fn the_daily_quota_is_checked_too() {
        let a = Allowances::new();
        let p = policy(|p| {
            p.max_tokens_per_hour = Some(1_000_000);
            p.max_tokens_per_day = Some(10);
        });
        a.admit("k", &p).unwrap().unwrap().settle(10);
        assert!(matches!(
            a.admit("k", &p),
            Err(Exceeded::Tokens { per: "day", .. })
        ));
    }

    #[test]
    fn changed_states_are_taken_once_and_a_new_gate_takes_them_up() {
        let a = Allowances::new();
        let p = policy(|p| p.max_tokens_per_day = Some(10));
        a.admit("k", &p).unwrap().unwrap().settle(20);
        // A refused request changes nothing.
        assert!(a.admit("k", &p).is_err());
        assert!(a.admit("free", &Policy::builtin_user()).unwrap().is_none());
        let changed = a.take_changed(a.clocks());
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].name, "k");
        assert!(changed[0].tokens_day_full_at.is_some());
        assert!(changed[0].tokens_hour_full_at.is_none());
        assert!(a.take_changed(a.clocks()).is_empty(), "taken once");
        a.mark_changed(["k", "unknown"]);
        assert_eq!(a.take_changed(a.clocks()).len(), 1, "marked again");

        let b = Allowances::new();
        b.restore(&changed, b.clocks());
        assert!(matches!(
            b.admit("k", &p),
            Err(Exceeded::Tokens { per: "day", .. })
        ));
        assert!(b.admit("j", &p).is_ok());
        let mut names: Vec<String> = b
            .take_changed(b.clocks())
            .into_iter()
            .map(|s| s.name)
            .collect();
        names.sort();
        assert_eq!(names, ["k"], "taken-up states are saved again, once");
    }

    #[test]
    fn a_state_saved_under_a_clock_since_set_back_is_saved_again_on_the_clock_now() {
        let p = policy(|p| p.max_tokens_per_day = Some(10));
        let a = Allowances::new();
        let now = a.clocks();
        // Saved while the wall clock read a year ahead: full a day after that.
        let year = chrono::Duration::days(365);
        let saved = SavedAllowance {
            name: "k".into(),
            requests_full_at: None,
            tokens_hour_full_at: None,
            tokens_day_full_at: Some(now.wall + year + chrono::Duration::days(1)),
            requests_quota: None,
            tokens_hour_quota: None,
            tokens_day_quota: Some(10),
            saved_at: now.wall + year,
        };
        a.restore(std::slice::from_ref(&saved), now);
        assert!(a.admit("k", &p).is_err());
        // Written again as full a day from now, not a year and a day: the next gate does not
        // take the day up again after this one has waited it out.
        let again = a.take_changed(a.clocks());
        assert_eq!(again.len(), 1);
        let full_at = again[0].tokens_day_full_at.unwrap();
        assert!(
            full_at <= chrono::Utc::now() + chrono::Duration::days(1),
            "{full_at}"
        );
        assert!(again[0].saved_at < now.wall + chrono::Duration::minutes(1));
    }

    #[test]
    fn a_changed_limit_is_charged_what_was_spent_not_its_share() {
        let a = Allowances::new();
        let ten = policy(|p| p.max_tokens_per_day = Some(10));
        a.admit("k", &ten).unwrap().unwrap().settle(30);
        assert!(a.admit("k", &ten).is_err());
        // 30 spent: plenty left of a million.
        let million = policy(|p| p.max_tokens_per_day = Some(1_000_000));
        a.admit("k", &million).unwrap().unwrap().settle(30);
        // 60 spent: still 20 over ten a day, as the gate that saved it would say.
        let Err(Exceeded::Tokens { wait, .. }) = a.admit("k", &ten) else {
            panic!("refused under ten a day")
        };
        assert!(wait > Duration::from_secs(2 * 86_400 - 60), "{wait:?}");
    }

    #[test]
    fn idle_keys_are_forgotten_past_the_bound() {
        let a = Allowances::new();
        let p = policy(|p| p.max_concurrent_requests = Some(1));
        let held = a.admit("held", &p).unwrap();
        for i in 0..(FORGET_ABOVE * 3) {
            drop(a.admit(&format!("k{i}"), &p).unwrap());
        }
        assert!(a.remembered() <= FORGET_ABOVE + 1, "{}", a.remembered());
        // The key with a request running is remembered, and still at its limit.
        assert!(matches!(
            a.admit("held", &p),
            Err(Exceeded::Concurrency { .. })
        ));
        drop(held);
    }
}
