//! Many concurrent long-lived streamed requests, one connection each.
//!
//! Each stream counts as open from its first body chunk to its end, so `peak_open` says how
//! many streams were really flowing through the proxy at the same moment, not merely how
//! many sockets were connected.

mod one;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::rss;
use crate::stats::{millis, percentile};

/// Where the streams go.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host: String,
    /// Path and query.
    pub path: String,
}

/// One run of the streams load.
#[derive(Debug, Clone)]
pub struct StreamsConfig {
    pub target: Target,
    pub method: http::Method,
    /// Full `Authorization` header value, if any.
    pub authorization: Option<String>,
    pub body: Bytes,
    pub concurrency: usize,
    /// Stream starts are spread evenly over this span, so listen backlogs do not overflow.
    pub ramp: Duration,
    /// Hard bound on the whole run; streams still running then are cut and counted.
    pub deadline: Duration,
    /// Require the last NDJSON line of every stream to carry `"done":true`.
    pub expect_done: bool,
    /// Processes whose resident memory is sampled during the run (summed).
    pub watch_pids: Vec<u32>,
    pub sample_every: Duration,
}

/// Why a stream failed; stable names for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    Connect,
    Handshake,
    Send,
    Status,
    Body,
    NoDone,
    Deadline,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

impl Percentiles {
    fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        let ms = |p| percentile(&samples, p).map(millis);
        Self {
            p50: ms(50.0),
            p99: ms(99.0),
            max: ms(100.0),
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct StreamsReport {
    pub requested: usize,
    pub completed: usize,
    pub failed: usize,
    pub errors: BTreeMap<Failure, usize>,
    /// Most streams open (first chunk seen, not yet ended) at one moment.
    pub peak_open: usize,
    pub first_byte_ms: Percentiles,
    pub total_ms: Percentiles,
    pub lines: u64,
    pub bytes: u64,
    pub elapsed_ms: f64,
    /// Largest sampled sum of `VmRSS` over the watched processes.
    pub rss_peak_kb: u64,
    /// Sampled `VmRSS` sum when the most streams were open.
    pub rss_at_peak_open_kb: u64,
    /// Sum of `VmHWM` of the watched processes at the end of the run.
    pub hwm_kb: u64,
}

impl StreamsReport {
    /// One line of `key=value` words; absent percentiles print as `-`, errors as
    /// `errors=kind:count,...` (`errors=-` when none).
    pub fn to_kv(&self) -> String {
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
        let errors = if self.errors.is_empty() {
            "-".to_owned()
        } else {
            self.errors
                .iter()
                .map(|(k, n)| format!("{}:{n}", k.name()))
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "requested={} completed={} failed={} peak_open={} first_byte_p50_ms={} \
             first_byte_p99_ms={} total_p50_ms={} total_p99_ms={} lines={} bytes={} \
             elapsed_ms={:.0} rss_peak_kb={} rss_at_peak_open_kb={} hwm_kb={} errors={}",
            self.requested,
            self.completed,
            self.failed,
            self.peak_open,
            ms(self.first_byte_ms.p50),
            ms(self.first_byte_ms.p99),
            ms(self.total_ms.p50),
            ms(self.total_ms.p99),
            self.lines,
            self.bytes,
            self.elapsed_ms,
            self.rss_peak_kb,
            self.rss_at_peak_open_kb,
            self.hwm_kb,
            errors
        )
    }
}

impl Failure {
    /// The report name (also the serde name).
    pub fn name(self) -> &'static str {
        match self {
            Failure::Connect => "connect",
            Failure::Handshake => "handshake",
            Failure::Send => "send",
            Failure::Status => "status",
            Failure::Body => "body",
            Failure::NoDone => "no_done",
            Failure::Deadline => "deadline",
        }
    }
}

/// Counts open streams and remembers the most seen at once.
#[derive(Debug, Default)]
pub(crate) struct Gauge {
    now: AtomicUsize,
    peak: AtomicUsize,
}

/// Holds one unit of a [`Gauge`]; gives it back when dropped, also when the task is aborted.
pub(crate) struct Open<'a>(&'a Gauge);

impl Gauge {
    pub(crate) fn open(&self) -> Open<'_> {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        Open(self)
    }

    fn current(&self) -> usize {
        self.now.load(Ordering::SeqCst)
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs the load and reports; never runs past `cfg.deadline` (plus one sampling period).
pub async fn run(cfg: StreamsConfig) -> StreamsReport {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + cfg.deadline;
    let cfg = Arc::new(cfg);
    let gauge = Arc::new(Gauge::default());

    let cell = SampledCell::default();
    let sampler = tokio::spawn(sample(
        cfg.watch_pids.clone(),
        cfg.sample_every,
        Arc::clone(&gauge),
        Arc::clone(&cell),
    ));

    let mut tasks = JoinSet::new();
    let n = cfg.concurrency.max(1) as u32;
    for i in 0..cfg.concurrency {
        let delay = cfg.ramp.mul_f64(f64::from(i as u32) / f64::from(n));
        let cfg = Arc::clone(&cfg);
        let gauge = Arc::clone(&gauge);
        tasks.spawn(async move {
            tokio::time::sleep(delay).await;
            one::stream(&cfg, &gauge).await
        });
    }

    let mut errors: BTreeMap<Failure, usize> = BTreeMap::new();
    let (mut first_bytes, mut totals) = (Vec::new(), Vec::new());
    let (mut lines, mut bytes, mut completed) = (0u64, 0u64, 0usize);
    loop {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(None) => break,
            Ok(Some(Ok(Ok(done)))) => {
                completed += 1;
                first_bytes.push(done.first_byte);
                totals.push(done.total);
                lines += done.lines;
                bytes += done.bytes;
            }
            Ok(Some(Ok(Err(failure)))) => *errors.entry(failure).or_default() += 1,
            // A panicking or cancelled task is a failed stream all the same.
            Ok(Some(Err(_))) => *errors.entry(Failure::Body).or_default() += 1,
            Err(_) => {
                let cut = tasks.len();
                tasks.abort_all();
                if cut > 0 {
                    *errors.entry(Failure::Deadline).or_default() += cut;
                }
                break;
            }
        }
    }
    sampler.abort();
    let sampled = cell.lock().map(|s| *s).unwrap_or_default();
    let end = rss::read_sum(&cfg.watch_pids);

    StreamsReport {
        requested: cfg.concurrency,
        completed,
        failed: errors.values().sum(),
        errors,
        peak_open: gauge.peak(),
        first_byte_ms: Percentiles::of(first_bytes),
        total_ms: Percentiles::of(totals),
        lines,
        bytes,
        elapsed_ms: millis(started.elapsed()),
        rss_peak_kb: sampled.peak.max(end.rss_kb),
        rss_at_peak_open_kb: sampled.at_peak_open,
        hwm_kb: end.hwm_kb,
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Sampled {
    peak: u64,
    at_peak_open: u64,
}

type SampledCell = Arc<std::sync::Mutex<Sampled>>;

/// Samples until aborted, keeping the figures in `cell` so an abort loses nothing.
async fn sample(pids: Vec<u32>, every: Duration, gauge: Arc<Gauge>, cell: SampledCell) {
    if pids.is_empty() {
        return;
    }
    let mut most_open = 0usize;
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(1)));
    loop {
        tick.tick().await;
        let rss = rss::read_sum(&pids).rss_kb;
        let open = gauge.current();
        if let Ok(mut s) = cell.lock() {
            s.peak = s.peak.max(rss);
            if open > 0 && open >= most_open {
                most_open = open;
                s.at_peak_open = s.at_peak_open.max(rss);
            }
        }
    }
}
