//! What reached the mock: one record per request, plus whether the client left early.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

/// One request as the mock received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Arrival number, from 0 (not reset by `clear`).
    pub seq: usize,
    pub method: String,
    /// The request-target as received (path plus query).
    pub target: String,
    /// The path part of the target.
    pub path: String,
    pub version: String,
    /// Every header line in arrival order, names lower-case, duplicates kept.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Bytes,
    pub received_at: Instant,
    /// The client went away before the response was complete.
    pub disconnected: bool,
    /// The response (headers and whole body) was handed over completely.
    pub completed: bool,
    /// The mock aborted the response itself (a scripted close).
    pub aborted_by_mock: bool,
}

impl RecordedRequest {
    /// First value of a header (case-insensitive name), if it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// Every value of a header (case-insensitive name).
    pub fn header_all(&self, name: &str) -> Vec<&[u8]> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    pub fn has_header(&self, name: &str) -> bool {
        !self.header_all(name).is_empty()
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// Whether the body contains `needle` anywhere.
    pub fn body_contains(&self, needle: &str) -> bool {
        let n = needle.as_bytes();
        !n.is_empty() && self.body.windows(n.len()).any(|w| w == n)
    }
}

#[derive(Debug, Default)]
struct Inner {
    requests: Vec<RecordedRequest>,
}

/// Shared request log; every change bumps a generation counter that waiters watch.
/// When disabled (benchmark mode) only a counter is kept, so memory stays flat under load.
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    inner: Arc<Mutex<Inner>>,
    changed: watch::Sender<u64>,
    enabled: bool,
    seen: Arc<AtomicUsize>,
    next_seq: Arc<AtomicUsize>,
}

impl Recorder {
    pub(crate) fn new(enabled: bool) -> Recorder {
        Self {
            inner: Arc::default(),
            changed: watch::Sender::new(0),
            enabled,
            seen: Arc::default(),
            next_seq: Arc::default(),
        }
    }

    /// Counts a request without recording it.
    pub(crate) fn tick(&self) {
        self.seen.fetch_add(1, Ordering::Relaxed);
    }
}

impl Recorder {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned log still holds valid records: a panicking test thread must not hide them.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|g| *g = g.wrapping_add(1));
    }

    pub(crate) fn push(&self, mut req: RecordedRequest) -> InFlight {
        self.tick();
        if !self.enabled {
            return InFlight {
                recorder: self.clone(),
                seq: usize::MAX,
                done: true,
            };
        }
        // Never reset (unlike the log), so a guard from before `clear` cannot touch a new record.
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        req.seq = seq;
        self.lock().requests.push(req);
        self.bump();
        InFlight {
            recorder: self.clone(),
            seq,
            done: false,
        }
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Requests seen (recorded or, when recording is off, counted).
    pub(crate) fn count(&self) -> usize {
        self.seen.load(Ordering::Relaxed)
    }

    pub(crate) fn clear(&self) {
        self.lock().requests.clear();
        self.seen.store(0, Ordering::Relaxed);
        self.bump();
    }

    fn update(&self, seq: usize, f: impl FnOnce(&mut RecordedRequest)) {
        {
            let mut inner = self.lock();
            if let Some(r) = inner.requests.iter_mut().find(|r| r.seq == seq) {
                f(r);
            }
        }
        self.bump();
    }

    /// Waits until `pred` holds over the log or `timeout` passes; returns the last evaluation.
    pub(crate) async fn wait_until<T>(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&[RecordedRequest]) -> Option<T>,
    ) -> Option<T> {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            rx.borrow_and_update();
            if let Some(t) = pred(&self.lock().requests) {
                return Some(t);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return pred(&self.lock().requests),
            }
        }
    }
}

/// Marks a request's fate when the response is over: finished, or abandoned by the client
/// (dropped before [`InFlight::finish`], which is how hyper signals a client that went away).
#[derive(Debug)]
pub(crate) struct InFlight {
    recorder: Recorder,
    seq: usize,
    done: bool,
}

impl InFlight {
    pub(crate) fn finish(&mut self) {
        if !self.done {
            self.done = true;
            self.recorder.update(self.seq, |r| r.completed = true);
        }
    }

    pub(crate) fn abort_by_mock(&mut self) {
        if !self.done {
            self.done = true;
            self.recorder.update(self.seq, |r| r.aborted_by_mock = true);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.done {
            self.done = true;
            self.recorder.update(self.seq, |r| r.disconnected = true);
        }
    }
}
