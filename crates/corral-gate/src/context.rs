//! The facts of one request, gathered phase by phase and turned into its audit record when the
//! response ends.

use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use corral_policy::route::{Dialect, Route};
use http::Method;

/// Longest request path kept for the audit record; the route table refuses longer ones anyway.
const MAX_LOGGED_PATH: usize = 1024;

/// What the gate decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Forwarded upstream.
    Allowed,
    /// Refused by the gate (routing, authentication, body or policy).
    Denied,
    /// Allowed, but the upstream could not be reached or failed.
    Failed,
}

/// How the response body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every byte was handed to the client.
    Complete,
    /// The client went away (or hyper dropped the body) before the end.
    ClientGone,
    /// The upstream went quiet for longer than the idle timeout mid-stream.
    IdleTimeout,
    /// The upstream connection failed mid-stream.
    UpstreamError,
    /// The upstream ended the body in good order, but with an error of its own in it (an
    /// NDJSON `{"error":...}` line, an SSE error event) after a success status.
    UpstreamReported,
    /// The upstream ended a generation's stream in order but without its end marker.
    UpstreamIncomplete,
    /// The gate cut the response at the end of its shutdown grace period.
    Shutdown,
    /// The key was revoked, rotated, deleted or expired while the response ran.
    KeyNoLongerValid,
}

impl Ending {
    /// The audit reason for an allowed request that did not end normally.
    pub fn reason(self) -> Option<&'static str> {
        match self {
            Ending::Complete => None,
            Ending::ClientGone => Some("client_disconnected"),
            Ending::IdleTimeout => Some("upstream_idle_timeout"),
            Ending::UpstreamError => Some("upstream_stream_error"),
            Ending::UpstreamReported => Some("upstream_reported_error"),
            Ending::UpstreamIncomplete => Some("upstream_stream_incomplete"),
            Ending::Shutdown => Some("gate_shutdown"),
            Ending::KeyNoLongerValid => Some("key_no_longer_valid"),
        }
    }
}

/// Per-request context: what is known so far.
#[derive(Debug)]
pub struct RequestCtx {
    pub started: Instant,
    pub at: DateTime<Utc>,
    pub peer: IpAddr,
    /// `None` for a request whose head could not be read.
    pub method: Option<Method>,
    pub path: String,
    pub dialect: Dialect,
    pub route: Option<&'static Route>,
    pub key_id: Option<String>,
    pub user: Option<String>,
    pub policy: Option<String>,
    pub model: Option<String>,
    pub decision: Decision,
    pub reason: Option<&'static str>,
    pub clamps: Vec<&'static str>,
    pub stream: bool,
    pub bytes_in: u64,
    /// For a body streamed through (an upload), the bytes forwarded so far: what the record
    /// says however the upload ended, where `bytes_in` could only say what was declared.
    pub uploaded: Option<Arc<AtomicU64>>,
    pub status: u16,
    pub upstream_status: Option<u16>,
    /// The key's hold on its allowances, for a request admitted under a policy with any.
    pub permit: Option<crate::allowances::Permit>,
    /// For a generation's stream that ended before its end marker: the events it carried, which
    /// its permit is charged for when the upstream's counts never came.
    pub cut_short_events: Option<u64>,
    /// The verified client certificate of the request's connection (mutual TLS).
    pub client_cert: Option<Arc<crate::tls::conn_cert::ConnCert>>,
    /// The connection is to be closed after this response (its client certificate stopped
    /// being valid).
    pub close_connection: bool,
}

impl RequestCtx {
    pub fn new(peer: IpAddr, method: Option<Method>, raw_target: &str) -> RequestCtx {
        // The audit log keeps the path only: a query string may carry anything.
        let raw_path = raw_target.split('?').next().unwrap_or("");
        let mut end = raw_path.len().min(MAX_LOGGED_PATH);
        while !raw_path.is_char_boundary(end) {
            end -= 1;
        }
        let path = &raw_path[..end];
        RequestCtx {
            started: Instant::now(),
            at: Utc::now(),
            peer,
            method,
            dialect: corral_policy::route::dialect_for_path(path),
            path: path.to_owned(),
            route: None,
            key_id: None,
            user: None,
            policy: None,
            model: None,
            decision: Decision::Denied,
            reason: None,
            clamps: Vec::new(),
            stream: false,
            bytes_in: 0,
            uploaded: None,
            status: 0,
            upstream_status: None,
            permit: None,
            cut_short_events: None,
            client_cert: None,
            close_connection: false,
        }
    }
}
