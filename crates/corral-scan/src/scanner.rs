//! Drives probes over a target stream: bounded concurrency, per-host deadlines, cancellation.
//!
//! Targets are produced on a blocking thread (files, stdin and name resolution block) into a
//! small channel, so memory stays flat however large the target set is.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::fingerprint::{self, ProbeOptions};
use crate::http::{Client, HttpConfig};
use crate::report::HostReport;
use crate::targets::{Endpoint, TargetError};
use crate::tls::TlsContext;

/// Where a probe keeps its report while it runs.
type Slot = Arc<tokio::sync::Mutex<Option<HostReport>>>;

/// One endpoint as the user named it: address, port and the name given for Host/SNI.
type Key = (IpAddr, u16, Option<Arc<str>>);

fn key(ep: &Endpoint) -> Key {
    (ep.ip, ep.port, ep.host.clone())
}

#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub concurrency: usize,
    /// Targets handed from the producer thread at once. Batches save a cross-thread wake-up
    /// per target; 1 keeps a trickling source (masscan piped to stdin) from waiting for a
    /// batch to fill.
    pub batch: usize,
    /// Deadline for everything done to one endpoint.
    pub host_timeout: Duration,
    pub http: HttpConfig,
    pub probe: ProbeOptions,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            concurrency: 256,
            batch: 256,
            host_timeout: Duration::from_secs(30),
            http: HttpConfig::default(),
            probe: ProbeOptions::default(),
        }
    }
}

/// Live counters, readable while the scan runs (for a progress line).
#[derive(Debug, Default)]
pub struct Progress {
    pub done: AtomicU64,
    pub found: AtomicU64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOutcome {
    pub scanned: u64,
    pub interrupted: bool,
    /// A target error that stopped the stream (e.g. the size limit).
    pub fatal: Option<TargetError>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

/// Scans every endpoint. `on_host` sees each found server as soon as it is fingerprinted;
/// `on_warning` sees target errors that do not stop the scan (a bad line in a file).
pub async fn run<I, C, H, W>(
    opts: &ScanOptions,
    targets: I,
    cancel: C,
    progress: Arc<Progress>,
    mut on_host: H,
    mut on_warning: W,
) -> Result<ScanOutcome, ScanError>
where
    I: Iterator<Item = Result<Endpoint, TargetError>> + Send + 'static,
    C: Future<Output = ()>,
    H: FnMut(HostReport),
    W: FnMut(TargetError),
{
    let client = Client {
        cfg: Arc::new(opts.http.clone()),
        tls: Arc::new(TlsContext::new().map_err(ScanError::Tls)?),
    };
    let probe_opts = Arc::new(opts.probe.clone());
    let concurrency = opts.concurrency.max(1);
    let batch = opts.batch.clamp(1, 4096);
    let (tx, mut rx) = mpsc::channel::<Vec<Result<Endpoint, TargetError>>>(
        (concurrency.saturating_mul(2) / batch).clamp(2, 65_536),
    );
    let producer = tokio::task::spawn_blocking(move || {
        let mut items = Vec::with_capacity(batch);
        for item in targets {
            items.push(item);
            if items.len() >= batch {
                let full = std::mem::replace(&mut items, Vec::with_capacity(batch));
                if tx.blocking_send(full).is_err() {
                    return;
                }
            }
        }
        if !items.is_empty() {
            let _ = tx.blocking_send(items);
        }
    });
    let mut pending: VecDeque<Result<Endpoint, TargetError>> = VecDeque::with_capacity(batch);
    let mut set: JoinSet<Option<HostReport>> = JoinSet::new();
    let mut in_flight: HashMap<tokio::task::Id, (Slot, Key)> = HashMap::new();
    // Endpoints being probed or found: a target listed twice (masscan output repeats lines,
    // lists overlap) is probed and reported once. Closed endpoints are forgotten, so this
    // grows with the servers found, not with the target set.
    let mut seen: HashSet<Key> = HashSet::new();
    let mut input_done = false;
    let mut outcome = ScanOutcome {
        scanned: 0,
        interrupted: false,
        fatal: None,
    };
    tokio::pin!(cancel);
    loop {
        while set.len() < concurrency {
            match pending.pop_front() {
                None => break,
                Some(Err(e @ TargetError::TooLarge(_))) => {
                    outcome.fatal = Some(e);
                    input_done = true;
                    pending.clear();
                    rx.close();
                }
                Some(Err(e)) => on_warning(e),
                Some(Ok(ep)) if seen.contains(&key(&ep)) => {
                    progress.done.fetch_add(1, Ordering::Relaxed);
                }
                Some(Ok(ep)) => {
                    let k = key(&ep);
                    seen.insert(k.clone());
                    let client = client.clone();
                    let po = probe_opts.clone();
                    let deadline = opts.host_timeout;
                    // The report as far as it got; still readable here if the task is
                    // aborted (Ctrl-C), so a server identified by then is not lost.
                    let slot: Slot = Arc::new(tokio::sync::Mutex::new(None));
                    let mine = slot.clone();
                    let task = set.spawn(async move {
                        let mut report = mine.lock_owned().await;
                        let probe = fingerprint::probe_into(&client, &ep, &po, &mut report);
                        // A server identified before the deadline is reported with what was
                        // learnt by then, not dropped.
                        if tokio::time::timeout(deadline, probe).await.is_err() {
                            if let Some(r) = report.as_mut() {
                                fingerprint::cut_short(r, deadline);
                            }
                        }
                        report.take()
                    });
                    in_flight.insert(task.id(), (slot, k));
                }
            }
        }
        // The cancel branch is always armed, so select's `else` alone would never end the loop.
        if input_done && pending.is_empty() && set.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            () = &mut cancel => {
                outcome.interrupted = true;
                break;
            }
            Some(joined) = set.join_next_with_id(), if !set.is_empty() => {
                progress.done.fetch_add(1, Ordering::Relaxed);
                outcome.scanned += 1;
                match joined {
                    Ok((id, report)) => {
                        let done = in_flight.remove(&id);
                        if let Some(report) = report {
                            progress.found.fetch_add(1, Ordering::Relaxed);
                            on_host(report);
                        } else if let Some((_, k)) = done {
                            seen.remove(&k);
                        }
                    }
                    Err(e) => {
                        if let Some((_, k)) = in_flight.remove(&e.id()) {
                            seen.remove(&k);
                        }
                    }
                }
            }
            items = rx.recv(), if !input_done && pending.is_empty() && set.len() < concurrency => match items {
                None => input_done = true,
                Some(items) => pending.extend(items),
            },
        }
    }
    // Dropping the receiver unblocks the producer; in-flight probes are abandoned on Ctrl-C.
    rx.close();
    drop(rx);
    set.abort_all();
    while set.join_next().await.is_some() {}
    // Probes stopped by Ctrl-C: servers already identified are reported as far as they got.
    let mut cut: Vec<HostReport> = in_flight
        .into_values()
        .filter_map(|(slot, _)| slot.try_lock().ok().and_then(|mut r| r.take()))
        .collect();
    cut.sort_by_key(|r| (r.ip, r.port));
    for mut r in cut {
        fingerprint::interrupted(&mut r);
        progress.found.fetch_add(1, Ordering::Relaxed);
        on_host(r);
    }
    if outcome.interrupted {
        producer.abort();
    } else {
        let _ = producer.await;
    }
    Ok(outcome)
}
