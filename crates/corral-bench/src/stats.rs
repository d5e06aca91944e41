//! Latency summaries.

use std::time::Duration;

/// Nearest-rank percentile of an ascending slice; `None` when empty.
///
/// `p` is clamped to `0.0..=100.0`, so `percentile(s, 100.0)` is the maximum.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    let n = sorted.len();
    // Nearest rank: the smallest value with at least p% of the samples at or below it.
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    let index = rank.clamp(1, n) - 1;
    sorted.get(index).copied()
}

/// Milliseconds with microsecond resolution, for reports.
pub fn millis(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|m| Duration::from_millis(*m)).collect()
    }

    #[test]
    fn empty_has_no_percentile() {
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn nearest_rank_on_hundred_samples() {
        let s = ms(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&s, 50.0).unwrap(), Duration::from_millis(50));
        assert_eq!(percentile(&s, 99.0).unwrap(), Duration::from_millis(99));
        assert_eq!(percentile(&s, 100.0).unwrap(), Duration::from_millis(100));
        assert_eq!(percentile(&s, 0.0).unwrap(), Duration::from_millis(1));
    }

    #[test]
    fn p99_of_few_samples_is_the_max() {
        let s = ms(&[1, 2, 3]);
        assert_eq!(percentile(&s, 99.0).unwrap(), Duration::from_millis(3));
        assert_eq!(percentile(&s, 50.0).unwrap(), Duration::from_millis(2));
    }

    #[test]
    fn out_of_range_p_is_clamped() {
        let s = ms(&[5, 7]);
        assert_eq!(percentile(&s, 250.0).unwrap(), Duration::from_millis(7));
        assert_eq!(percentile(&s, -3.0).unwrap(), Duration::from_millis(5));
    }

    #[test]
    fn millis_keeps_microseconds() {
        assert!((millis(Duration::from_micros(1_234)) - 1.234).abs() < 1e-9);
    }
}
