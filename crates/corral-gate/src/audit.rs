//! Audit emission. A response body hands its request's facts to the [`AuditSink`] when it ends
//! or is dropped (which may happen outside any async context); the sink turns them into an
//! [`corral_audit::AuditRecord`] and queues it for the writer without waiting, never dropping one.

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
}

impl AuditSink {
    pub fn new(handle: AuditHandle) -> AuditSink {
        AuditSink { handle }
    }

    pub fn emit(&self, ctx: Box<RequestCtx>, ending: Ending, bytes_out: u64, usage: Usage) {
        let duration = Instant::now().saturating_duration_since(ctx.started);
        let finished = Finished {
            ctx,
            ending,
            bytes_out,
            usage,
            duration,
        };
        if self.handle.record(to_record(finished)).is_err() {
            tracing::error!("audit writer stopped; request records are being lost");
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
        (Decision::Denied, 403) => action::DENY,
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
        method: method_text(&ctx.method),
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
        bytes_in: ctx.bytes_in,
        bytes_out,
        clamps: ctx.clamps.iter().map(|c| Text::Borrowed(c)).collect(),
        upstream_status: ctx.upstream_status,
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
