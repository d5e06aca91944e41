//! The live view on a terminal: one progress line on stderr, redrawn in place, that steps aside
//! whenever a finding row or a warning is printed. Nothing is drawn unless stderr is a TTY, so
//! pipes, files and CI logs get the plain output alone.

use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::scanner::Progress;

const BAR_WIDTH: usize = 20;

/// The progress line's text (no control characters). `total` is `None` when targets come from
/// stdin and their number is unknown until the end.
pub fn progress_line(done: u64, total: Option<u128>, found: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    match total {
        Some(total) if total > 0 => {
            let frac = (done as f64 / total as f64).clamp(0.0, 1.0);
            let filled = ((frac * BAR_WIDTH as f64).round() as usize).min(BAR_WIDTH);
            let eta = if rate > 0.0 && (done as u128) < total {
                let left = (total - done as u128) as f64 / rate;
                format!(", ETA {}", short_duration(left))
            } else {
                String::new()
            };
            format!(
                "[{}{}] {done}/{total} ({:.1}%) {rate:.0}/s, {found} found{eta}",
                "#".repeat(filled),
                "-".repeat(BAR_WIDTH - filled),
                frac * 100.0,
            )
        }
        _ => format!("{done} done, {rate:.0}/s, {found} found"),
    }
}

fn short_duration(secs: f64) -> String {
    let s = secs.round().min(1e9) as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

struct State {
    /// A progress line is on the screen and must be erased before anything else is printed.
    shown: bool,
}

/// Shared between the scan's callbacks and the redraw ticker. With `enabled == false` every
/// method only passes output through.
pub struct Live {
    enabled: bool,
    total: Option<u128>,
    start: Instant,
    progress: Arc<Progress>,
    state: Mutex<State>,
}

impl Live {
    pub fn new(enabled: bool, total: Option<u128>, progress: Arc<Progress>) -> Live {
        Live {
            enabled,
            total,
            start: Instant::now(),
            progress,
            state: Mutex::new(State { shown: false }),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn line(&self) -> String {
        progress_line(
            self.progress.done.load(Ordering::Relaxed),
            self.total,
            self.progress.found.load(Ordering::Relaxed),
            self.start.elapsed(),
        )
    }

    /// Redraws the progress line (the ticker calls this a few times a second).
    pub fn draw(&self) {
        if !self.enabled {
            return;
        }
        if let Ok(mut st) = self.state.lock() {
            let mut err = io::stderr().lock();
            let _ = write!(err, "\r\x1b[K{}", self.line());
            let _ = err.flush();
            st.shown = true;
        }
    }

    /// Runs `print` with the progress line out of the way, then puts the line back.
    pub fn above<T>(&self, print: impl FnOnce() -> T) -> T {
        if !self.enabled {
            return print();
        }
        let Ok(mut st) = self.state.lock() else {
            return print();
        };
        if st.shown {
            let mut err = io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
            st.shown = false;
        }
        let out = print();
        let mut err = io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{}", self.line());
        let _ = err.flush();
        st.shown = true;
        out
    }

    /// Erases the progress line for good (the scan is over).
    pub fn finish(&self) {
        if !self.enabled {
            return;
        }
        if let Ok(mut st) = self.state.lock() {
            if st.shown {
                let mut err = io::stderr().lock();
                let _ = write!(err, "\r\x1b[K");
                let _ = err.flush();
            }
            st.shown = false;
        }
    }

    /// Redraws every `every` until the task is aborted.
    pub async fn tick(self: Arc<Self>, every: Duration) {
        let mut t = tokio::time::interval(every);
        loop {
            t.tick().await;
            self.draw();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn known_total_shows_bar_share_rate_found_and_eta() {
        let l = progress_line(250, Some(1000), 3, Duration::from_secs(2));
        assert_eq!(
            l,
            "[#####---------------] 250/1000 (25.0%) 125/s, 3 found, ETA 6s"
        );
        let l = progress_line(1000, Some(1000), 7, Duration::from_secs(4));
        assert_eq!(
            l,
            "[####################] 1000/1000 (100.0%) 250/s, 7 found"
        );
        let l = progress_line(1, Some(100_000), 0, Duration::from_secs(1));
        assert!(l.ends_with("ETA 27h46m"), "{l}");
    }

    #[test]
    fn unknown_total_shows_done_and_rate() {
        assert_eq!(
            progress_line(42, None, 1, Duration::from_millis(500)),
            "42 done, 84/s, 1 found"
        );
        assert_eq!(
            progress_line(0, None, 0, Duration::ZERO),
            "0 done, 0/s, 0 found"
        );
    }

    #[test]
    fn disabled_view_only_passes_output_through() {
        let live = Live::new(false, Some(10), Arc::default());
        assert!(!live.enabled());
        live.draw();
        assert_eq!(live.above(|| 5), 5);
        live.finish();
        assert!(!live.state.lock().unwrap().shown);
    }
}
