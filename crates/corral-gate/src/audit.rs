//! Audit emission. A response body hands its request's facts to the [`AuditSink`] when it ends
//! or is dropped (which may happen outside any async context); the sink turns them into an
//! [`corral_audit::AuditRecord`] and queues it for the writer without waiting.
//!
//! The writer does not stop when the log cannot be written (disk full, I/O errors): it keeps
//! the records (up to [`corral_audit::MAX_KEPT`]) and writes them once it can again. Meanwhile
//! [`AuditSink::available`] is false, and the request path must not forward requests it
//! cannot audit: it answers 503 until the sink is available again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_audit::{action, AuditHandle, AuditRecord, Decision as AuditDecision, Outcome, Text};
use corral_policy::usage::Usage;

use crate::context::{Decision, Ending, RequestCtx};

/// The facts of one finished request.
pub struct Finished {
    ctx: Box<RequestCtx>,
    ending: Ending,
    bytes_out: u64,
    usage: Usage,
    duration: Duration,
}

/// Where response bodies send their request's facts. Cheap to clone; never blocks.
#[derive(Clone)]
pub struct AuditSink {
    handle: AuditHandle,
    /// Set when the gate cuts the responses still running at the end of its shutdown grace
    /// period, so their records do not blame the client.
    cutting: Arc<AtomicBool>,
    /// Counters for the metrics listener, fed from every record once a listener asked for
    /// them ([`AuditSink::metrics`]); a gate without one does not keep them.
    metrics: Arc<crate::metrics::Metrics>,
}

impl AuditSink {
    pub fn new(handle: AuditHandle) -> AuditSink {
        AuditSink {
            handle,
            cutting: Arc::new(AtomicBool::new(false)),
            metrics: Arc::default(),
        }
    }

    /// The counters fed from this sink's records from now on.
    pub fn metrics(&self) -> Arc<crate::metrics::Metrics> {
        self.metrics.enable();
        Arc::clone(&self.metrics)
    }

    /// The gate is about to cut the responses still in flight (shutdown grace period over).
    pub fn cutting_in_flight(&self) {
        self.cutting.store(true, Ordering::Relaxed);
    }

    /// Whether a response dropped now was cut by the gate rather than left by its client.
    pub fn is_cutting(&self) -> bool {
        self.cutting.load(Ordering::Relaxed)
    }

    /// Counts a failed TLS handshake for the metrics listener (when there is one).
    pub fn handshake_failed(&self, why: crate::metrics::HandshakeFailure) {
        if self.metrics.is_enabled() {
            self.metrics.handshake_failed(why);
        }
    }

    /// Whether records reach the audit log now. False from a failed write until the writer has
    /// reopened the log and written what it kept (it tries every second), and after the writer
    /// has stopped. While false, refuse new requests with 503 rather than serve them unaudited.
    /// Two atomic loads: cheap enough to ask for every request.
    pub fn available(&self) -> bool {
        self.handle.is_writing()
    }

    pub fn emit(&self, mut ctx: Box<RequestCtx>, ending: Ending, bytes_out: u64, usage: Usage) {
        // The key's allowances first: its running count goes down now, not when the writer
        // has the record.
        if let Some(permit) = ctx.permit.take() {
            // A forwarded inference request whose answer has no prompt count (cut before it, or
            // abandoned before any answer, or a route that never gives one) is charged for its
            // body: the upstream read it.
            let forwarded = ctx.decision == Decision::Allowed
                && ctx
                    .route
                    .is_some_and(|r| r.class == corral_policy::route::EndpointClass::Inference);
            let estimate = if forwarded {
                corral_policy::usage::prompt_estimate(ctx.bytes_in)
            } else {
                0
            };
            permit.settle(usage.tokens_to_charge(ctx.cut_short_events, estimate));
        }
        let duration = Instant::now().saturating_duration_since(ctx.started);
        let finished = Finished {
            ctx,
            ending,
            bytes_out,
            usage,
            duration,
        };
        let record = to_record(finished);
        if self.metrics.is_enabled() {
            self.metrics.observe(&record);
        }
        if self.handle.record(record).is_err() {
            tracing::error!("the audit writer has stopped; this request's record is lost");
        }
    }
}

fn to_record(f: Finished) -> AuditRecord {
    let Finished {
        ctx,
        ending,
        bytes_out,
        usage,
        duration,
    } = f;
    let ctx = *ctx;
    let action = match (ctx.decision, ctx.status) {
        (Decision::Allowed, _) => action::PROXY,
        (Decision::Failed, _) => action::UPSTREAM_ERROR,
        (Decision::Denied, 401) => action::AUTH_FAILURE,
        (Decision::Denied, 403 | 429) => action::DENY,
        // Refused because the upstream could not answer what the decision needed (its model
        // list), or because the gate is shutting down: the client's request was not at fault.
        (Decision::Denied, 500..=599) => action::UPSTREAM_ERROR,
        (Decision::Denied, _) => action::BAD_REQUEST,
    };
    let outcome =
        if ctx.decision == Decision::Allowed && ending == Ending::Complete && ctx.status < 400 {
            Outcome::Success
        } else {
            Outcome::Failure
        };
    let decision = match ctx.decision {
        Decision::Allowed | Decision::Failed => AuditDecision::Allow,
        Decision::Denied => AuditDecision::Deny,
    };
    AuditRecord {
        timestamp: ctx.at,
        action: action.into(),
        outcome,
        source_ip: ctx.peer,
        user_name: ctx.user,
        // A request whose head could not be read has no method to name.
        method: ctx.method.as_ref().map_or(Text::Borrowed("-"), method_text),
        url_path: ctx.path,
        status_code: ctx.status,
        duration,
        key_id: ctx.key_id,
        policy: ctx.policy,
        decision,
        reason: ctx.reason.map(Text::Borrowed),
        endpoint_class: ctx.route.map(|r| Text::Borrowed(r.class.as_str())),
        route: ctx.route.map(|r| Text::Borrowed(r.name)),
        model: ctx.model,
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        streamed: ctx.stream,
        bytes_in: ctx
            .uploaded
            .as_ref()
            .map_or(ctx.bytes_in, |n| n.load(Ordering::Relaxed)),
        bytes_out,
        clamps: ctx.clamps.iter().map(|c| Text::Borrowed(c)).collect(),
        upstream_status: ctx.upstream_status,
        tls_client: ctx
            .client_cert
            .map(|c| std::sync::Arc::clone(&c.identity.audit)),
    }
}

/// The method's name, without an allocation for the standard ones.
fn method_text(m: &http::Method) -> Text {
    const KNOWN: [&str; 9] = [
        "GET", "POST", "HEAD", "DELETE", "PUT", "OPTIONS", "PATCH", "CONNECT", "TRACE",
    ];
    match KNOWN.iter().find(|k| **k == m.as_str()) {
        Some(k) => Text::Borrowed(k),
        None => Text::Owned(m.as_str().to_owned()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_sink_is_available_while_its_writer_runs() {
        let dir = tempfile::tempdir().unwrap();
        let (handle, worker) = corral_audit::AuditLog::open(
            &dir.path().join("audit.ndjson"),
            corral_audit::Rotation::default(),
        )
        .unwrap();
        let sink = AuditSink::new(handle);
        assert!(sink.available());
        drop(worker);
        assert!(!sink.available(), "a stopped writer audits nothing");
    }

    fn emit_one(sink: &AuditSink) {
        let ctx = RequestCtx::new(
            std::net::IpAddr::from([127, 0, 0, 1]),
            Some(http::Method::GET),
            "/api/version",
        );
        sink.emit(Box::new(ctx), Ending::Complete, 0, Usage::default());
    }

    #[test]
    fn records_are_counted_only_once_a_metrics_listener_asked_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let (handle, _worker) = corral_audit::AuditLog::open(
            &dir.path().join("audit.ndjson"),
            corral_audit::Rotation::default(),
        )
        .unwrap();
        let sink = AuditSink::new(handle);
        emit_one(&sink);
        let metrics = sink.clone().metrics();
        let count = |m: &crate::metrics::Metrics| {
            m.render(true)
                .lines()
                .filter(|l| l.starts_with("corral_requests_total{"))
                .count()
        };
        assert_eq!(count(&metrics), 0, "counted without a metrics listener");
        emit_one(&sink);
        assert_eq!(count(&metrics), 1);
    }

    fn action_of(decision: Decision, status: u16) -> String {
        let mut ctx = RequestCtx::new(
            std::net::IpAddr::from([127, 0, 0, 1]),
            Some(http::Method::POST),
            "/api/chat",
        );
        ctx.decision = decision;
        ctx.status = status;
        let rec = to_record(Finished {
            ctx: Box::new(ctx),
            ending: Ending::Complete,
            bytes_out: 0,
            usage: Usage::default(),
            duration: std::time::Duration::ZERO,
        });
        rec.action.to_string()
    }

    #[test]
    fn the_action_says_whose_fault_a_refusal_was() {
        assert_eq!(action_of(Decision::Allowed, 200), action::PROXY);
        assert_eq!(action_of(Decision::Failed, 502), action::UPSTREAM_ERROR);
        assert_eq!(action_of(Decision::Denied, 401), action::AUTH_FAILURE);
        assert_eq!(action_of(Decision::Denied, 403), action::DENY);
        for client in [400, 404, 405, 408, 413, 415] {
            assert_eq!(action_of(Decision::Denied, client), action::BAD_REQUEST);
        }
        // Refused before forwarding, but not for anything the client did: the model list
        // could not be read (502/504) or the gate is shutting down (503).
        for gate in [502, 503, 504] {
            assert_eq!(action_of(Decision::Denied, gate), action::UPSTREAM_ERROR);
        }
    }
}
