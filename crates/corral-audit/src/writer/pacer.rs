//! When the writer looks for records next.

use std::time::Duration;

use super::{BATCH_INTERVAL, MAX_BATCH_DELAY};

/// A look that finds at least this many records brings the wait back to [`BATCH_INTERVAL`].
pub(super) const BUSY_BATCH: usize = 64;

/// Quiet time after which the writer parks until the next record, so an idle gate does not
/// keep waking up.
pub(super) const IDLE_PARK: Duration = Duration::from_millis(100);

/// When the writer looks for records next: pure, so its rules are tested without a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pacer {
    wait: Duration,
    /// Time slept since the last look that found a record.
    quiet: Duration,
}

impl Default for Pacer {
    fn default() -> Pacer {
        Pacer {
            wait: BATCH_INTERVAL,
            quiet: Duration::ZERO,
        }
    }
}

impl Pacer {
    /// After a look that found `found` records: how long to sleep before the next look, or
    /// `None` to park until a record comes (the pacer then starts over).
    pub(super) fn after(&mut self, found: usize) -> Option<Duration> {
        if found == 0 {
            if self.quiet >= IDLE_PARK {
                *self = Pacer::default();
                return None;
            }
        } else {
            self.quiet = Duration::ZERO;
        }
        self.wait = if found >= BUSY_BATCH {
            BATCH_INTERVAL
        } else {
            (self.wait * 2).min(MAX_BATCH_DELAY)
        };
        if found == 0 {
            self.quiet += self.wait;
        }
        Some(self.wait)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_trickle_of_records_stretches_the_wait_to_its_bound() {
        let mut p = Pacer::default();
        let waits: Vec<_> = (0..6).map(|_| p.after(3).unwrap()).collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(waits, [ms(4), ms(8), ms(16), ms(16), ms(16), ms(16)]);
    }

    #[test]
    fn a_busy_look_brings_the_wait_back_to_the_shortest() {
        let mut p = Pacer::default();
        for _ in 0..5 {
            p.after(1);
        }
        assert_eq!(p.after(BUSY_BATCH), Some(BATCH_INTERVAL));
        assert_eq!(p.after(BUSY_BATCH * 10), Some(BATCH_INTERVAL));
        assert_eq!(p.after(BUSY_BATCH - 1), Some(BATCH_INTERVAL * 2));
    }

    #[test]
    fn quiet_looks_park_the_writer_after_the_idle_time_and_it_starts_over() {
        let mut p = Pacer::default();
        p.after(5);
        let mut slept = Duration::ZERO;
        let mut looks = 0;
        while let Some(wait) = p.after(0) {
            assert!(wait <= MAX_BATCH_DELAY);
            slept += wait;
            looks += 1;
            assert!(looks < 100, "never parks");
        }
        assert!(slept >= IDLE_PARK, "parked after {slept:?}");
        assert!(
            slept < IDLE_PARK + MAX_BATCH_DELAY,
            "parked late: {slept:?}"
        );
        assert_eq!(p, Pacer::default());
        // A record in the quiet time resets it.
        let mut q = Pacer::default();
        for _ in 0..4 {
            q.after(0);
        }
        q.after(1);
        assert_eq!(q.quiet, Duration::ZERO);
    }

    #[test]
    fn every_wait_stays_within_its_bounds() {
        let mut p = Pacer::default();
        // A quiet spell long enough to park in every thousand looks, then trickling and busy
        // looks in a fixed mix (37 and 100 are coprime: every count 0..100, scrambled).
        let mut parked = [false; 10];
        let mut woken = false;
        for i in 0..10_000usize {
            let found = if woken {
                1 // the record that woke the parked writer
            } else if i % 1000 < 60 {
                0
            } else {
                (i * 37) % 100
            };
            woken = false;
            if let Some(w) = p.after(found) {
                assert!((BATCH_INTERVAL..=MAX_BATCH_DELAY).contains(&w), "{w:?}");
            } else {
                assert_eq!(found, 0);
                assert!(i % 1000 < 60, "parked outside a quiet spell at look {i}");
                parked[i / 1000] = true;
                woken = true;
            }
        }
        assert_eq!(parked, [true; 10], "every quiet spell parks");
    }
}
