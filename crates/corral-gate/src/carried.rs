//! Allowance state carried across restarts: the conversion between the gate's clock
//! (nanoseconds since its start, [`crate::allowances`]) and the wall-clock times the key store
//! keeps ([`corral_store::SavedAllowance`]). Pure arithmetic; the reads and writes are the key
//! watcher's (`keys`).
//!
//! A theoretical arrival time (TAT) is saved as the wall-clock time at which its allowance is
//! full again, and nothing when it already is. Loaded, it is as far ahead of the new gate's
//! clock as it is ahead of the wall clock now, so the time the gate was down refills the
//! allowance as it would have refilled a running gate's. The wall clock may step between save
//! and load: a step forward refills (as that much time passing would); a step backward is not
//! allowed to take more than the save took, so a TAT is never further ahead than it was when
//! saved (the time between is counted as none).

use chrono::{DateTime, Utc};
use corral_store::SavedAllowance;

use crate::allowances::{Quotas, Tats};

/// Both clocks read at one moment: the gate's (nanoseconds since its start) and the wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clocks {
    pub gate: u64,
    pub wall: DateTime<Utc>,
}

/// Key `name`'s state as the store keeps it.
pub fn to_saved(name: String, tats: Tats, at: Clocks) -> SavedAllowance {
    let wall = |tat: u64| -> Option<DateTime<Utc>> {
        let ahead = tat.checked_sub(at.gate).filter(|&a| a > 0)?;
        let ahead = chrono::Duration::nanoseconds(i64::try_from(ahead).unwrap_or(i64::MAX));
        Some(
            at.wall
                .checked_add_signed(ahead)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        )
    };
    SavedAllowance {
        name,
        requests_full_at: wall(tats.requests),
        tokens_hour_full_at: wall(tats.tokens_hour),
        tokens_day_full_at: wall(tats.tokens_day),
        requests_quota: known(tats.quotas.requests),
        tokens_hour_quota: known(tats.quotas.tokens_hour),
        tokens_day_quota: known(tats.quotas.tokens_day),
        saved_at: at.wall,
    }
}

/// A saved state on the gate's clock. The wall clock is taken to read no earlier than when the
/// state was saved: a clock stepped backwards since gives back nothing, and costs nothing.
pub fn from_saved(saved: &SavedAllowance, at: Clocks) -> Tats {
    let now = at.wall.max(saved.saved_at);
    let tat = |full_at: Option<DateTime<Utc>>| -> u64 {
        let Some(full_at) = full_at.filter(|&t| t > now) else {
            // Full: the state of a key never seen.
            return 0;
        };
        let ahead = (full_at - now)
            .num_nanoseconds()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(u64::MAX);
        at.gate.saturating_add(ahead)
    };
    Tats {
        requests: tat(saved.requests_full_at),
        tokens_hour: tat(saved.tokens_hour_full_at),
        tokens_day: tat(saved.tokens_day_full_at),
        quotas: Quotas {
            requests: saved.requests_quota.unwrap_or(0),
            tokens_hour: saved.tokens_hour_quota.unwrap_or(0),
            tokens_day: saved.tokens_day_quota.unwrap_or(0),
        },
    }
}

/// A limit as the store keeps it: `None` for not known (0).
fn known(quota: u64) -> Option<u64> {
    (quota != 0).then_some(quota)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const SEC: u64 = 1_000_000_000;

    fn wall(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_900_000_000 + secs, 0).unwrap()
    }

    fn clocks(gate_secs: u64, wall_secs: i64) -> Clocks {
        Clocks {
            gate: gate_secs * SEC,
            wall: wall(wall_secs),
        }
    }

    fn tats(requests: u64, hour: u64, day: u64) -> Tats {
        Tats {
            requests,
            tokens_hour: hour,
            tokens_day: day,
            quotas: Quotas::default(),
        }
    }

    #[test]
    fn a_tat_ahead_is_saved_as_when_it_is_full_and_one_behind_as_nothing() {
        let s = to_saved(
            "alice".into(),
            tats(5 * SEC, 1_000 * SEC, 0),
            clocks(100, 0),
        );
        assert_eq!(s.requests_full_at, None);
        assert_eq!(s.tokens_hour_full_at, Some(wall(900)));
        assert_eq!(s.tokens_day_full_at, None);
        assert_eq!(s.saved_at, wall(0));
        assert_eq!(s.name, "alice");
    }

    #[test]
    fn loaded_later_a_state_has_refilled_by_the_time_between() {
        let s = to_saved("k".into(), tats(130 * SEC, 0, 5_000 * SEC), clocks(100, 0));
        // A new gate (its clock at 2 s) starts 60 s of wall time later.
        let t = from_saved(&s, clocks(2, 60));
        assert_eq!(t.requests, 0, "30 s ahead, 60 s later: full");
        assert_eq!(t.tokens_hour, 0);
        assert_eq!(t.tokens_day, (2 + 4_900 - 60) * SEC);
        // Much later still, everything is full.
        assert_eq!(from_saved(&s, clocks(2, 10_000)), tats(0, 0, 0));
    }

    #[test]
    fn a_clock_stepped_backwards_gives_nothing_back_and_takes_nothing_more() {
        let s = to_saved("k".into(), tats(0, 0, 1_100 * SEC), clocks(100, 0));
        // The wall clock now reads an hour before the save.
        let t = from_saved(&s, clocks(1, -3_600));
        assert_eq!(
            t.tokens_day,
            (1 + 1_000) * SEC,
            "as far ahead as when saved"
        );
    }

    #[test]
    fn a_clock_stepped_forwards_refills() {
        let s = to_saved("k".into(), tats(0, 0, 1_100 * SEC), clocks(100, 0));
        assert_eq!(from_saved(&s, clocks(1, 86_400)), tats(0, 0, 0));
    }

    #[test]
    fn the_limits_the_times_were_counted_under_go_with_them() {
        let mut t = tats(0, 0, 5_000 * SEC);
        t.quotas.tokens_day = 10;
        let s = to_saved("k".into(), t, clocks(100, 0));
        assert_eq!(
            (s.requests_quota, s.tokens_hour_quota, s.tokens_day_quota),
            (None, None, Some(10))
        );
        assert_eq!(from_saved(&s, clocks(1, 0)).quotas, t.quotas);
    }

    #[test]
    fn extreme_states_saturate() {
        let s = to_saved("k".into(), tats(u64::MAX, 0, 0), clocks(0, 0));
        assert!(s.requests_full_at.unwrap() > wall(100 * 365 * 86_400));
        let t = from_saved(&s, clocks(5, 0));
        assert!(t.requests > 200 * 365 * 86_400 * SEC / 2, "{}", t.requests);
        let far = SavedAllowance {
            requests_full_at: Some(DateTime::<Utc>::MAX_UTC),
            ..s
        };
        assert_eq!(from_saved(&far, clocks(5, 0)).requests, u64::MAX);
    }
}
