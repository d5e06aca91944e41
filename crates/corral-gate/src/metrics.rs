//! Prometheus metrics: counters taken from each request's audit record as it is handed to the
//! audit writer, served in the text exposition format (version 0.0.4) on a listener of their
//! own (`corral serve --metrics-listen`), never on the gate's port.
//!
//! Labels take only values from small sets (route names, endpoint classes, actions, reasons,
//! status codes, and the policy names of the configuration and the key store), never a model
//! name or anything else a client chooses, so that the number of series stays bounded. Label
//! values are escaped all the same.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use corral_audit::{AuditRecord, Text};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::error::GateError;

/// Upper bounds (seconds) of the request duration histogram's buckets; `+Inf` follows.
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How long a metrics client has to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// One series of `corral_requests_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct RequestLabels {
    route: Text,
    endpoint_class: Text,
    action: Text,
    outcome: &'static str,
    reason: Text,
    code: u16,
}

/// Counters of the requests the gate has finished. Cheap to update from any thread.
#[derive(Debug)]
pub struct Metrics {
    requests: Mutex<HashMap<RequestLabels, u64>>,
    /// Prompt and completion tokens per policy, as the upstream counted them.
    tokens: Mutex<HashMap<String, [u64; 2]>>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    /// Cumulative counts per bucket of [`DURATION_BUCKETS`] are computed when rendering; each
    /// slot here counts the requests whose duration fell in that bucket alone (the last one:
    /// above every bound).
    duration_slots: [AtomicU64; DURATION_BUCKETS.len() + 1],
    duration_sum_nanos: AtomicU64,
    /// Failed TLS handshakes, by [`HandshakeFailure`].
    handshake_failures: [AtomicU64; HandshakeFailure::ALL.len()],
    /// Set once something serves the counters: until then no request pays for them.
    enabled: std::sync::atomic::AtomicBool,
}

/// Why a TLS handshake failed, as `corral_tls_handshake_failures_total` counts it. Such a
/// connection never gets to HTTP, so it has no audit record: under mutual TLS this counter is
/// where machines without a valid client certificate show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// Mutual TLS: the client presented no certificate.
    ClientCertificateMissing,
    /// Mutual TLS: the client's certificate does not chain to the client CAs, is out of its
    /// dates, not for client authentication, or otherwise not valid.
    ClientCertificateInvalid,
    /// Mutual TLS: the client's certificate is on a revocation list.
    ClientCertificateRevoked,
    /// No handshake within the time allowed.
    Timeout,
    /// Anything else: no common protocol version or cipher, a client that does not trust the
    /// gate's certificate, a connection closed half-way.
    Other,
}

impl HandshakeFailure {
    const ALL: [HandshakeFailure; 5] = [
        HandshakeFailure::ClientCertificateMissing,
        HandshakeFailure::ClientCertificateInvalid,
        HandshakeFailure::ClientCertificateRevoked,
        HandshakeFailure::Timeout,
        HandshakeFailure::Other,
    ];

    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            HandshakeFailure::ClientCertificateMissing => "client_certificate_missing",
            HandshakeFailure::ClientCertificateInvalid => "client_certificate_invalid",
            HandshakeFailure::ClientCertificateRevoked => "client_certificate_revoked",
            HandshakeFailure::Timeout => "timeout",
            HandshakeFailure::Other => "other",
        }
    }

    /// The reason of a failed `TlsAcceptor::accept` (rustls's error inside the I/O error).
    pub fn of(e: &std::io::Error) -> HandshakeFailure {
        use rustls::{CertificateError, Error};
        match e.get_ref().and_then(|i| i.downcast_ref::<Error>()) {
            Some(Error::NoCertificatesPresented) => HandshakeFailure::ClientCertificateMissing,
            Some(Error::InvalidCertificate(CertificateError::Revoked)) => {
                HandshakeFailure::ClientCertificateRevoked
            }
            Some(Error::InvalidCertificate(_)) => HandshakeFailure::ClientCertificateInvalid,
            _ => HandshakeFailure::Other,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            duration_slots: std::array::from_fn(|_| AtomicU64::new(0)),
            duration_sum_nanos: AtomicU64::new(0),
            handshake_failures: std::array::from_fn(|_| AtomicU64::new(0)),
            enabled: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl Metrics {
    /// Starts counting (a metrics listener will serve the counters).
    pub fn enable(&self) {
        self.enabled.store(true, Ordering::Relaxed);
    }

    /// Whether requests are being counted.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Counts one failed TLS handshake.
    pub fn handshake_failed(&self, why: HandshakeFailure) {
        if let Some(c) = HandshakeFailure::ALL
            .iter()
            .position(|r| *r == why)
            .and_then(|i| self.handshake_failures.get(i))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one finished request.
    pub fn observe(&self, rec: &AuditRecord) {
        let labels = RequestLabels {
            route: rec.route.clone().unwrap_or(Text::Borrowed("")),
            endpoint_class: rec.endpoint_class.clone().unwrap_or(Text::Borrowed("")),
            action: rec.action.clone(),
            outcome: rec.outcome.as_str(),
            reason: rec.reason.clone().unwrap_or(Text::Borrowed("")),
            code: rec.status_code,
        };
        *self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(labels)
            .or_insert(0) += 1;
        if rec.prompt_tokens.is_some() || rec.completion_tokens.is_some() {
            let policy = rec.policy.as_deref().unwrap_or("");
            let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
            let slot = match tokens.get_mut(policy) {
                Some(slot) => slot,
                None => tokens.entry(policy.to_owned()).or_insert([0, 0]),
            };
            slot[0] = slot[0].saturating_add(rec.prompt_tokens.unwrap_or(0));
            slot[1] = slot[1].saturating_add(rec.completion_tokens.unwrap_or(0));
        }
        self.bytes_in.fetch_add(rec.bytes_in, Ordering::Relaxed);
        self.bytes_out.fetch_add(rec.bytes_out, Ordering::Relaxed);
        let secs = rec.duration.as_secs_f64();
        let slot = DURATION_BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(DURATION_BUCKETS.len());
        if let Some(c) = self.duration_slots.get(slot) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(rec.duration.as_nanos()).unwrap_or(u64::MAX);
        self.duration_sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The metrics in the text exposition format; `audit_writing` is whether records reach
    /// the audit log now.
    pub fn render(&self, audit_writing: bool) -> String {
        let mut out = String::new();
        let w = &mut out;
        family(
            w,
            "corral_build_info",
            "gauge",
            "The running corral's version (always 1).",
        );
        let _ = writeln!(
            w,
            "corral_build_info{{version=\"{}\"}} 1",
            escape(env!("CARGO_PKG_VERSION"))
        );

        family(
            w,
            "corral_requests_total",
            "counter",
            "Requests finished (one per audit record), by route, endpoint class, audit action, outcome, reason and status code.",
        );
        let mut requests: Vec<(RequestLabels, u64)> = self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        requests.sort();
        for (l, n) in &requests {
            let _ = writeln!(
                w,
                "corral_requests_total{{route=\"{}\",endpoint_class=\"{}\",action=\"{}\",outcome=\"{}\",reason=\"{}\",code=\"{}\"}} {n}",
                escape(&l.route),
                escape(&l.endpoint_class),
                escape(&l.action),
                escape(l.outcome),
                escape(&l.reason),
                l.code,
            );
        }

        family(
            w,
            "corral_tokens_total",
            "counter",
            "Tokens the upstream counted for allowed requests, by key policy and type (prompt or completion).",
        );
        let mut tokens: Vec<(String, [u64; 2])> = self
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        tokens.sort();
        for (policy, [prompt, completion]) in &tokens {
            let p = escape(policy);
            let _ = writeln!(
                w,
                "corral_tokens_total{{policy=\"{p}\",type=\"prompt\"}} {prompt}"
            );
            let _ = writeln!(
                w,
                "corral_tokens_total{{policy=\"{p}\",type=\"completion\"}} {completion}"
            );
        }

        single(
            w,
            "corral_received_bytes_total",
            "counter",
            "Request body bytes received from clients.",
            self.bytes_in.load(Ordering::Relaxed),
        );
        single(
            w,
            "corral_sent_bytes_total",
            "counter",
            "Response body bytes sent to clients.",
            self.bytes_out.load(Ordering::Relaxed),
        );

        family(
            w,
            "corral_request_duration_seconds",
            "histogram",
            "Time from a request's arrival to the end of its response.",
        );
        let mut cumulative = 0u64;
        for (le, slot) in DURATION_BUCKETS.iter().zip(&self.duration_slots) {
            cumulative = cumulative.saturating_add(slot.load(Ordering::Relaxed));
            let _ = writeln!(
                w,
                "corral_request_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        if let Some(last) = self.duration_slots.last() {
            cumulative = cumulative.saturating_add(last.load(Ordering::Relaxed));
        }
        let _ = writeln!(
            w,
            "corral_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let sum = Duration::from_nanos(self.duration_sum_nanos.load(Ordering::Relaxed));
        let _ = writeln!(
            w,
            "corral_request_duration_seconds_sum {}",
            sum.as_secs_f64()
        );
        let _ = writeln!(w, "corral_request_duration_seconds_count {cumulative}");

        family(
            w,
            "corral_tls_handshake_failures_total",
            "counter",
            "TLS handshakes that failed (no HTTP exchange, no audit record), by reason; under mutual TLS, clients without a valid certificate.",
        );
        for (why, n) in HandshakeFailure::ALL.iter().zip(&self.handshake_failures) {
            let _ = writeln!(
                w,
                "corral_tls_handshake_failures_total{{reason=\"{}\"}} {}",
                why.as_str(),
                n.load(Ordering::Relaxed)
            );
        }

        single(
            w,
            "corral_audit_log_writable",
            "gauge",
            "1 while audit records reach the audit log; 0 while the gate answers 503 because they cannot.",
            u64::from(audit_writing),
        );
        out
    }
}

/// A family of one unlabelled sample.
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// `# HELP` and `# TYPE` lines of a metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the exposition format needs it: backslash, double quote and line feed
/// escaped.
fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut s = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    std::borrow::Cow::Owned(s)
}

/// What the metrics listener serves: the counters and whether the audit log is being written.
#[derive(Clone)]
pub struct MetricsSource {
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) sink: crate::audit::AuditSink,
}

impl MetricsSource {
    /// The current metrics in the text exposition format.
    pub fn render(&self) -> String {
        self.metrics.render(self.sink.available())
    }
}

/// Serves `GET /metrics` (and `HEAD`) on `listener` until the task is dropped; every other
/// path is 404 and every other method 405. Plain HTTP/1.1 without authentication: keep the
/// listener on loopback or a network the scraper alone reaches.
pub async fn serve_metrics(
    listener: std::net::TcpListener,
    source: MetricsSource,
) -> Result<(), GateError> {
    let addr = listener.local_addr().map_err(|source| GateError::Bind {
        addr: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })?;
    let listener =
        TcpListener::from_std(listener).map_err(|source| GateError::Bind { addr, source })?;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let source = source.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let source = source.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&req, &source)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer<B>(req: &Request<B>, source: &MetricsSource) -> Response<Full<bytes::Bytes>> {
    let plain = |status: StatusCode, text: &'static str| {
        let mut r = Response::new(Full::new(bytes::Bytes::from_static(text.as_bytes())));
        *r.status_mut() = status;
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    };
    if req.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found; metrics are at /metrics\n",
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
        r.headers_mut().insert(
            http::header::ALLOW,
            http::HeaderValue::from_static("GET, HEAD"),
        );
        return r;
    }
    let body = source.render();
    let mut r = Response::new(Full::new(bytes::Bytes::from(body)));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(CONTENT_TYPE),
    );
    r
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use corral_audit::{Decision, Outcome};

    fn record(route: &'static str, status: u16, policy: &str) -> AuditRecord {
        AuditRecord {
            timestamp: chrono::Utc::now(),
            action: Text::Borrowed("proxy"),
            outcome: Outcome::Success,
            source_ip: std::net::IpAddr::from([127, 0, 0, 1]),
            user_name: Some("alice".into()),
            method: Text::Borrowed("POST"),
            url_path: "/api/chat".into(),
            status_code: status,
            duration: Duration::from_millis(30),
            key_id: Some("abc".into()),
            policy: Some(policy.into()),
            decision: Decision::Allow,
            reason: None,
            endpoint_class: Some(Text::Borrowed("inference")),
            route: Some(Text::Borrowed(route)),
            model: Some("llama3.2:latest".into()),
            prompt_tokens: Some(26),
            completion_tokens: Some(4),
            streamed: true,
            bytes_in: 80,
            bytes_out: 700,
            clamps: Vec::new(),
            upstream_status: Some(200),
            tls_client: None,
        }
    }

    #[test]
    fn counters_add_up_per_series() {
        let m = Metrics::default();
        m.observe(&record("api.chat", 200, "user"));
        m.observe(&record("api.chat", 200, "user"));
        m.observe(&record("api.generate", 200, "admin"));
        let text = m.render(true);
        assert!(text.contains(
            "corral_requests_total{route=\"api.chat\",endpoint_class=\"inference\",action=\"proxy\",outcome=\"success\",reason=\"\",code=\"200\"} 2\n"
        ), "{text}");
        assert!(text.contains("corral_tokens_total{policy=\"user\",type=\"prompt\"} 52\n"));
        assert!(text.contains("corral_tokens_total{policy=\"user\",type=\"completion\"} 8\n"));
        assert!(text.contains("corral_received_bytes_total 240\n"));
        assert!(text.contains("corral_sent_bytes_total 2100\n"));
        assert!(text.contains("corral_request_duration_seconds_bucket{le=\"0.025\"} 0\n"));
        assert!(text.contains("corral_request_duration_seconds_bucket{le=\"0.05\"} 3\n"));
        assert!(text.contains("corral_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("corral_request_duration_seconds_count 3\n"));
        assert!(text.contains("corral_audit_log_writable 1\n"));
        assert!(m.render(false).contains("corral_audit_log_writable 0\n"));
    }

    #[test]
    fn every_family_has_help_and_type_before_its_samples() {
        let m = Metrics::default();
        m.observe(&record("api.chat", 200, "user"));
        let text = m.render(true);
        let mut typed = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.insert(rest.split(' ').next().unwrap().to_owned());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
                    .unwrap_or(name);
                assert!(typed.contains(family), "{line} before its TYPE line");
            }
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("plain"), "plain");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let m = Metrics::default();
        m.observe(&record("api.chat", 200, "we\"ird\\pol\nicy"));
        let text = m.render(true);
        assert!(
            text.contains(
                "corral_tokens_total{policy=\"we\\\"ird\\\\pol\\nicy\",type=\"prompt\"} 26\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn only_get_and_head_of_the_metrics_path_are_answered() {
        let dir = tempfile::tempdir().unwrap();
        let (handle, _worker) = corral_audit::AuditLog::open(
            &dir.path().join("audit.ndjson"),
            corral_audit::Rotation::default(),
        )
        .unwrap();
        let source = MetricsSource {
            metrics: Arc::new(Metrics::default()),
            sink: crate::audit::AuditSink::new(handle),
        };
        let req = |m: Method, p: &str| Request::builder().method(m).uri(p).body(()).unwrap();
        let ok = answer(&req(Method::GET, "/metrics"), &source);
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()[http::header::CONTENT_TYPE], CONTENT_TYPE);
        assert_eq!(
            answer(&req(Method::GET, "/"), &source).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            answer(&req(Method::POST, "/metrics"), &source).status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
