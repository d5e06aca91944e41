//! One request through the gate, phase by phase: route, authenticate, read the body, decide,
//! forward, answer. Every early return is a [`Refusal`] answered in the client's dialect; the
//! audit record is attached to whatever response comes out.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use corral_policy::client_cert;
use corral_policy::config::{Config, Policy, UpstreamAddr};
use corral_policy::decide::{self, Verdict};
use corral_policy::oidc::TokenError;
use corral_policy::route::{self, BodyKind, Listing, RouteError, RouteMatch};
use corral_policy::usage::ResponseFormat;
use http::header::{HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::Value;

use crate::audit::AuditSink;
use crate::auth::{oversized_token, presented_key};
use crate::body::{self, BodyError, Encoding};
use crate::catalogue::Catalogue;
use crate::context::{Decision, Ending, RequestCtx};
use crate::forward::{self, UpBody, UpstreamClient};
use crate::headers::{ambiguous_framing, client_response_headers, host_problem};
use crate::keys::{Authenticated, Keys, Lease};
use crate::reply::{error_response, Failure};
use crate::stream::{BoxError, GateBody, Reading};
use crate::tls::conn_cert::ConnCert;
use crate::upstream::UpstreamBody;

/// Longest a client may take to send a body that the gate inspects.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest listing the gate buffers to filter.
const LISTING_MAX: usize = 16 * 1024 * 1024;
/// Longest wait for the catalogue refresh before a request goes on without it.
const CATALOGUE_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// What every connection shares.
pub struct Shared {
    pub upstream: UpstreamAddr,
    pub upstream_host: HeaderValue,
    pub client: UpstreamClient,
    pub idle_timeout: Duration,
    pub config: Arc<Config>,
    pub keys: Arc<Keys>,
    pub catalogue: Catalogue,
    pub audit: AuditSink,
    pub allowances: Arc<crate::allowances::Allowances>,
    /// Tokens from the identity provider of `[oidc]`, when configured.
    pub oidc: Option<Arc<crate::oidc::Oidc>>,
    /// Failed client-certificate handshakes, said in the log once a minute per reason.
    pub handshake_log: crate::tls::handshake_log::HandshakeLog,
}

/// An early answer: the failure, and the methods to list in `Allow` for a 405.
struct Refusal {
    failure: Failure,
    allow: Option<&'static [&'static str]>,
}

impl From<Failure> for Refusal {
    fn from(failure: Failure) -> Self {
        Refusal {
            failure,
            allow: None,
        }
    }
}

/// The hyper service function. The request is on record from the moment hyper hands it over:
/// a future hyper drops before polling it (the client closed its side as soon as it had sent
/// the request) still leaves its audit record.
///
/// `client_cert` is the verified client certificate of the connection (mutual TLS), read
/// once after its handshake; every request (every HTTP/2 stream) of it carries the same.
pub fn handle(
    shared: Arc<Shared>,
    peer: IpAddr,
    client_cert: Option<Arc<ConnCert>>,
    req: Request<Incoming>,
) -> impl std::future::Future<Output = Result<Response<GateBody>, Infallible>> {
    let raw = req.uri().path_and_query().map_or("", PathAndQuery::as_str);
    let mut ctx = Box::new(RequestCtx::new(peer, Some(req.method().clone()), raw));
    ctx.client_cert = client_cert;
    let unanswered = Unanswered::new(ctx, shared.audit.clone());
    respond(shared, unanswered, req)
}

async fn respond(
    shared: Arc<Shared>,
    mut unanswered: Unanswered,
    req: Request<Incoming>,
) -> Result<Response<GateBody>, Infallible> {
    // Boxed: the request's whole state machine is large, and hyper moves this future around.
    let served = Box::pin(serve(&shared, unanswered.ctx_mut(), req)).await;
    let mut ctx = unanswered.answered();
    let resp = match served {
        Ok(resp) => resp,
        Err(Refusal { failure, allow }) => {
            // A reason set on the way (why a key was refused) is more precise than the rule
            // the client is told (always `unauthenticated` for a key).
            ctx.reason.get_or_insert(failure.rule);
            // A client that left mid-body is recorded as one that left before any answer: the
            // request was allowed and forwarded, the client ended it.
            if ctx.decision == Decision::Allowed && failure.status.as_u16() != CLIENT_CLOSED_REQUEST
            {
                // Allowed, then refused on the way: the gate's or the upstream's failure (5xx),
                // or the client's (a streamed body over the limit, broken off or too slow; a key
                // that stopped being valid), recorded as any refusal of that status is.
                ctx.decision = if failure.status.is_server_error() {
                    Decision::Failed
                } else {
                    Decision::Denied
                };
            }
            error_response(ctx.dialect, &failure, allow)
        }
    };
    ctx.status = resp.status().as_u16();
    let (mut parts, mut body) = resp.into_parts();
    if ctx.close_connection {
        parts.extensions.insert(CloseConnection);
    }
    body.audit_with(ctx, shared.audit.clone());
    Ok(Response::from_parts(parts, body))
}

/// Marks a response after which the connection is closed (see `server::serve_connection`).
#[derive(Debug, Clone, Copy)]
pub struct CloseConnection;

/// The facts of a request that has no response yet. hyper drops the service's future when the
/// client goes away before the response head (during a cold load, or a long `"stream": false`
/// generation), and the gate's connections are aborted at the end of the shutdown grace period:
/// then no response body exists to emit the record, so this does, with status 499 (nginx's
/// "client closed request"; nothing was sent).
struct Unanswered {
    ctx: Option<Box<RequestCtx>>,
    audit: AuditSink,
}

/// The status recorded for a request whose client left before any response was sent.
pub const CLIENT_CLOSED_REQUEST: u16 = 499;

impl Unanswered {
    fn new(ctx: Box<RequestCtx>, audit: AuditSink) -> Unanswered {
        Unanswered {
            ctx: Some(ctx),
            audit,
        }
    }

    fn ctx_mut(&mut self) -> &mut RequestCtx {
        // Only `answered` empties the slot, and it consumes the guard: never a placeholder.
        self.ctx.get_or_insert_with(placeholder)
    }

    /// A response exists: its body takes over the record.
    fn answered(mut self) -> Box<RequestCtx> {
        self.ctx.take().unwrap_or_else(placeholder)
    }
}

fn placeholder() -> Box<RequestCtx> {
    Box::new(RequestCtx::new(IpAddr::from([0, 0, 0, 0]), None, ""))
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        let Some(mut ctx) = self.ctx.take() else {
            return;
        };
        let ending = if self.audit.is_cutting() {
            Ending::Shutdown
        } else {
            Ending::ClientGone
        };
        ctx.status = CLIENT_CLOSED_REQUEST;
        if ctx.reason.is_none() {
            ctx.reason = ending.reason();
        }
        self.audit
            .emit(ctx, ending, 0, corral_policy::usage::Usage::default());
    }
}

async fn serve(
    shared: &Shared,
    ctx: &mut RequestCtx,
    req: Request<Incoming>,
) -> Result<Response<GateBody>, Refusal> {
    let (parts, body) = req.into_parts();

    // 1. Routing. The route table is public, so answering 404/405 before authentication reveals
    //    nothing; no upstream contact happens for an unknown route.
    if parts.version <= Version::HTTP_11 && parts.uri.authority().is_some() {
        return Err(Failure::new(
            400,
            "bad_path",
            "absolute-form request targets are not accepted",
        )
        .into());
    }
    let target = parts.uri.path_and_query().map_or("", PathAndQuery::as_str);
    let m = route::route(parts.method.as_str(), target).map_err(|e| route_refusal(&e))?;
    ctx.route = Some(m.route);
    ctx.dialect = m.route.dialect;
    if let Some(cert) = &ctx.client_cert {
        // Mutual TLS: the certificate verified at the handshake may have expired since, or
        // been revoked by a reload of the CRLs.
        if let Err(stale) = cert.check(crate::tls::unix_now()) {
            ctx.close_connection = true;
            tracing::info!(
                peer = %ctx.peer,
                sha256 = %cert.identity.audit.sha256,
                why = ?stale,
                "client certificate no longer valid; closing the connection"
            );
            return Err(Failure::new(403, client_cert::RULE, stale.message()).into());
        }
    }
    if !shared.audit.available() {
        // Nothing is served that cannot be recorded; the writer retries every second.
        return Err(Failure::new(
            503,
            "audit_unavailable",
            "the gate cannot write its audit log; try again later",
        )
        .into());
    }
    if ambiguous_framing(&parts.headers) {
        return Err(Failure::new(400, "bad_framing", "ambiguous request framing").into());
    }
    if let Some(problem) = host_problem(parts.version, &parts.uri, &parts.headers) {
        return Err(Failure::new(400, "bad_host", problem).into());
    }

    // 2. Authentication: one answer for every failure.
    let Some(presented) = presented_key(&parts.headers) else {
        if shared.oidc.is_some() && oversized_token(&parts.headers) {
            ctx.reason = Some(TokenError::TooLarge.reason());
        }
        return Err(Failure::unauthorized().into());
    };
    let (policy_name, lease) = match shared.oidc.as_deref() {
        Some(oidc) if corral_policy::oidc::looks_like_token(presented.as_str()) => {
            oidc.authenticate(presented.as_str(), ctx, &shared.keys)
                .await?
        }
        _ => {
            let Authenticated { entry, lease } = shared
                .keys
                .authenticate(presented.as_str(), ctx.at)
                .map_err(|e| {
                    ctx.reason = Some(e.reason());
                    Failure::unauthorized()
                })?;
            ctx.key_id = Some(entry.id);
            ctx.user = Some(entry.name);
            (entry.policy, lease)
        }
    };
    drop(presented);
    let policy = shared.config.policy(&policy_name).ok_or_else(|| {
        Failure::new(
            403,
            "unknown_policy",
            "this key's policy is not defined in the gate's configuration",
        )
    })?;
    ctx.policy = Some(policy_name);
    if !policy.allows_client_cert(ctx.client_cert.iter().flat_map(|c| c.names())) {
        return Err(Failure::new(
            403,
            client_cert::RULE,
            "this credential's policy may only be used over a connection with one of its \
             client certificates",
        )
        .into());
    }
    let no_remote = |_: &str| false;
    if !policy.allows_class(m.route.class) {
        // Refuse before reading a body the caller may not send at all.
        let denial = decide::evaluate(&policy, &m, None, &no_remote)
            .err()
            .unwrap_or_else(|| decide::Denial {
                status: 403,
                rule: "endpoint_class",
                message: format!("policy does not allow {} endpoints", m.route.class),
            });
        return Err(Failure::new(denial.status, denial.rule, denial.message).into());
    }
    // The key's allowances (rate, running requests, tokens), before its body is read.
    let permit = shared
        .allowances
        .admit(ctx.user.as_deref().unwrap_or_default(), &policy)
        .map_err(|e| e.failure())?;
    ctx.permit = permit;

    // 3. Body.
    let mut inspected = read_body(&parts, body, &policy, m.route.body, ctx).await?;

    // 4. Decision.
    let named = inspected.model_name(&m);
    if let Some(name) = &named {
        // Only for a model the allow-list lets through: a refused one is refused without any
        // upstream contact.
        if !policy.cloud && policy.allows_model(name) {
            refresh_catalogue_if_unknown(shared, name).await;
        }
    }
    let is_remote = |name: &str| shared.catalogue.is_remote(name);
    let verdict = match decide::evaluate(&policy, &m, inspected.json.as_mut(), &is_remote) {
        Ok(v) => v,
        Err(d) => {
            // Named in the record (normalised, as for allowed requests) even when refused: who
            // asked for which model is the point of a denial.
            ctx.model = named.as_deref().map(corral_policy::model::normalize);
            return Err(Failure::new(d.status, d.rule, d.message).into());
        }
    };
    let Verdict {
        model,
        stream,
        modified,
        clamps,
        hide_usage,
    } = verdict;
    ctx.model = model.or(named);
    if let Some(name) = &ctx.model {
        if !policy.cloud && shared.catalogue.unverified(name) {
            // An upstream that is down is reported as such, not as a missing model list.
            return Err(shared
                .catalogue
                .unanswered()
                .unwrap_or_else(|| {
                    Failure::new(
                        502,
                        "catalogue_unavailable",
                        "cannot tell whether the model is a cloud model: the upstream's model list is unavailable",
                    )
                })
                .into());
        }
    }
    ctx.stream = stream;
    ctx.clamps = clamps;
    let up_body = inspected.into_upstream(modified)?;

    // 5. Forward.
    let path = forward::canonical_path(m.path)?;
    let declared = body::declared_length(&parts.headers);
    let up_req = forward::build_request(
        &shared.upstream_host,
        parts.method.clone(),
        path,
        &parts.headers,
        up_body,
        declared,
    )?;
    if lease.is_ended() {
        // Revoked since the request authenticated (or the gate is cutting): not sent at all.
        return Err(lease_failure(&lease).into());
    }
    ctx.decision = Decision::Allowed;
    // A key revoked while the upstream works on the answer (a long `"stream": false`
    // generation) cuts the request then, not when the answer is ready.
    let up_resp = tokio::select! {
        biased;
        sent = forward::send(&shared.client, up_req, shared.idle_timeout) => sent?,
        () = lease.ended() => return Err(lease_failure(&lease).into()),
    };

    // 6. Response.
    let (up_parts, up_body) = up_resp.into_parts();
    ctx.upstream_status = Some(up_parts.status.as_u16());
    match m.route.listing {
        Some(listing) if up_parts.status.is_success() => {
            let raw = collect_bounded(up_body, LISTING_MAX, shared.idle_timeout).await?;
            if listing == Listing::Tags {
                shared
                    .catalogue
                    .update_from_tags(&raw, std::time::Instant::now());
            } else if !policy.cloud {
                // `/v1/models` and `/api/ps` do not say which models are remote: the catalogue
                // does, and a name it cannot vouch for is left out.
                refresh_catalogue_if_stale(shared).await;
            }
            let hidden = |name: &str| {
                shared.catalogue.is_remote(name)
                    || (listing != Listing::Tags && shared.catalogue.unverified(name))
            };
            let filtered = corral_policy::listing::filter(&policy, listing, &raw, &hidden)
                .map_err(|e| {
                    tracing::warn!(error = %e, "cannot filter an upstream listing");
                    Failure::new(
                        502,
                        "bad_upstream_listing",
                        "upstream returned an unreadable model list",
                    )
                })?;
            let mut resp = Response::new(GateBody::full(Bytes::from(filtered)));
            *resp.status_mut() = up_parts.status;
            *resp.headers_mut() = client_response_headers(&up_parts.headers, false);
            Ok(resp)
        }
        _ => {
            let format = response_format(&up_parts.headers);
            if matches!(format, ResponseFormat::Ndjson | ResponseFormat::Sse) {
                ctx.stream = true;
            }
            let streamed = matches!(format, ResponseFormat::Ndjson | ResponseFormat::Sse);
            let reading = if m.route.class != route::EndpointClass::Inference {
                Reading::Errors
            } else if streamed
                && m.route.streams_generation()
                && up_parts.status.is_success()
                && !up_parts.headers.contains_key(CONTENT_ENCODING)
            {
                Reading::Generation
            } else {
                Reading::Tokens
            };
            // The usage chunk the gate asked for on the client's behalf is taken out again
            // (from plain SSE only: a coded body passes as it is); the body's length changes,
            // so it goes out without the upstream's length.
            let hide_usage = hide_usage
                && format == ResponseFormat::Sse
                && up_parts.status.is_success()
                && !up_parts.headers.contains_key(CONTENT_ENCODING);
            let body = GateBody::streaming(
                up_body,
                shared.idle_timeout,
                format,
                m.route.dialect,
                reading,
                hide_usage,
                lease,
            );
            let mut resp = Response::new(body);
            *resp.status_mut() = up_parts.status;
            *resp.headers_mut() = client_response_headers(&up_parts.headers, !hide_usage);
            Ok(resp)
        }
    }
}

/// The answer to a request whose lease ended before the upstream's answer: its key is no
/// longer valid, or the gate's shutdown grace period is over.
fn lease_failure(lease: &Lease) -> Failure {
    if lease.cut_by_shutdown() {
        Failure::gate_shutdown()
    } else {
        Failure::key_no_longer_valid()
    }
}

fn route_refusal(e: &RouteError) -> Refusal {
    let (rule, allow) = match e {
        RouteError::NotFound => ("not_found", None),
        RouteError::MethodNotAllowed { allow } => ("method_not_allowed", Some(*allow)),
        RouteError::BadPath(_) => ("bad_path", None),
    };
    Refusal {
        failure: Failure::new(e.status(), rule, e.to_string()),
        allow,
    }
}

fn response_format(headers: &http::HeaderMap) -> ResponseFormat {
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/x-ndjson") {
        ResponseFormat::Ndjson
    } else if essence.eq_ignore_ascii_case("text/event-stream") {
        ResponseFormat::Sse
    } else {
        ResponseFormat::Json
    }
}

/// A request body after reading and decoding.
struct Inspected {
    /// The decoded bytes, forwarded as they are unless the policy modified the JSON.
    bytes: Option<Bytes>,
    json: Option<Value>,
    multipart_model: Option<String>,
    stream: Option<UnsyncBoxBody<Bytes, BoxError>>,
}

impl Inspected {
    fn model_name(&self, m: &RouteMatch<'_>) -> Option<String> {
        if let Some(json) = &self.json {
            let v = json.get("model").or_else(|| json.get("name"));
            if let Some(s) = v.and_then(Value::as_str) {
                return Some(s.to_owned());
            }
        }
        self.multipart_model.clone().or_else(|| m.model_param())
    }

    fn into_upstream(self, modified: bool) -> Result<UpBody, Failure> {
        if let Some(s) = self.stream {
            return Ok(UpBody::Stream(s));
        }
        if modified {
            if let Some(json) = &self.json {
                // Only the fields the decision rewrote change; the rest (key order included,
                // which a JSON schema's grammar follows) stays as the client wrote it.
                let original = self.bytes.as_deref().unwrap_or_default();
                let bytes = corral_policy::decide::rewritten_body(original, json)
                    .ok_or_else(Failure::internal)?;
                return Ok(UpBody::Full(Some(Bytes::from(bytes))));
            }
        }
        Ok(UpBody::Full(self.bytes.filter(|b| !b.is_empty())))
    }
}

async fn read_body(
    parts: &Parts,
    body: Incoming,
    policy: &Policy,
    kind: BodyKind,
    ctx: &mut RequestCtx,
) -> Result<Inspected, Failure> {
    let mut out = Inspected {
        bytes: None,
        json: None,
        multipart_model: None,
        stream: None,
    };
    if kind == BodyKind::None {
        // Bodyless routes forward no body at all, whatever the client sent.
        return Ok(out);
    }
    let encoding = body::content_encoding(&parts.headers).map_err(body_failure)?;
    let limit = policy.body_limit(kind);
    let declared = body::declared_length(&parts.headers);
    if let (Some(limit), Some(declared)) = (limit, declared) {
        if declared > limit {
            return Err(body_failure(BodyError::TooLarge));
        }
    }
    let limit = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    if kind == BodyKind::Binary {
        if encoding != Encoding::Identity {
            return Err(body_failure(BodyError::UnsupportedEncoding));
        }
        let uploaded = Arc::new(AtomicU64::new(0));
        ctx.uploaded = Some(Arc::clone(&uploaded));
        out.stream = Some(UnsyncBoxBody::new(body::Counted::new(
            Limited::new(body, limit),
            uploaded,
        )));
        return Ok(out);
    }
    let raw = tokio::time::timeout(BODY_READ_TIMEOUT, body::read_limited(body, limit, declared))
        .await
        .map_err(|_| body_failure(BodyError::Timeout))?
        .map_err(body_failure)?;
    let mut decoded = body::decode(encoding, raw, limit)
        .await
        .map_err(body_failure)?;
    ctx.bytes_in = decoded.len() as u64;
    match kind {
        // No body at all: the decision says whether the route needs one (the account routes,
        // such as `POST /api/me` from `ollama signin`, are called without one).
        BodyKind::Json if decoded.is_empty() => {}
        BodyKind::Json => {
            let (value, as_go) = corral_policy::inspect::parse_body_as_go(&decoded)
                .map_err(|e| Failure::new(400, "bad_request", e.to_string()))?;
            if let Some(bytes) = as_go {
                // Lone surrogate escapes, written as the U+FFFD Ollama reads them as.
                decoded = Bytes::from(bytes);
            }
            out.json = Some(value);
        }
        BodyKind::Multipart => {
            let ct = parts
                .headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let model = corral_policy::inspect::multipart_model(ct, &decoded)
                .map_err(|e| Failure::new(400, "bad_request", e.to_string()))?;
            out.json = Some(match &model {
                Some(name) => serde_json::json!({ "model": name }),
                None => serde_json::json!({}),
            });
            out.multipart_model = model;
        }
        BodyKind::None | BodyKind::Binary => {}
    }
    out.bytes = Some(decoded);
    Ok(out)
}

fn body_failure(e: BodyError) -> Failure {
    e.failure()
}

/// Buffers an upstream body of at most `max` bytes, with the idle timeout between chunks.
async fn collect_bounded(body: UpstreamBody, max: usize, idle: Duration) -> Result<Bytes, Failure> {
    let mut body = std::pin::pin!(body);
    let mut buf = bytes::BytesMut::new();
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(Failure::upstream_timeout()),
            Ok(None) => break,
            Ok(Some(Err(_))) => return Err(Failure::upstream_unavailable()),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > max {
                return Err(Failure::new(
                    502,
                    "upstream_too_large",
                    "upstream response too large",
                ));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Refreshes the catalogue from upstream `/api/tags` when `name` is unknown to it and the last
/// refresh is old enough. Failures leave the catalogue as it was.
async fn refresh_catalogue_if_unknown(shared: &Shared, name: &str) {
    refresh_catalogue_when(shared, |now| shared.catalogue.wants_refresh(name, now)).await;
}

/// Refreshes the catalogue from upstream `/api/tags` when it was never fetched or its last
/// refresh is old enough: before a listing other than `/api/tags` is filtered for a policy
/// that refuses cloud models, so that remote models are known to the filter.
async fn refresh_catalogue_if_stale(shared: &Shared) {
    refresh_catalogue_when(shared, |now| shared.catalogue.is_stale(now)).await;
}

/// Why a catalogue refresh got no model list.
enum RefreshError {
    /// The upstream did not answer (down, or silent past the timeout): 502 or 504.
    Unanswered(Failure),
    /// It answered, but not with a usable model list.
    Unusable,
}

/// Fetches `/api/tags` into the catalogue when `wanted` says so, checked again once this
/// request holds the refresh lock (another may have refreshed meanwhile).
async fn refresh_catalogue_when(shared: &Shared, wanted: impl Fn(std::time::Instant) -> bool) {
    if !wanted(std::time::Instant::now()) {
        return;
    }
    let _guard = shared.catalogue.refresh_lock().await;
    if !wanted(std::time::Instant::now()) {
        return;
    }
    let fetched: Result<Option<Bytes>, RefreshError> = async {
        let req = forward::build_request(
            &shared.upstream_host,
            Method::GET,
            PathAndQuery::from_static("/api/tags"),
            &http::HeaderMap::new(),
            UpBody::Full(None),
            None,
        )
        .map_err(|_| RefreshError::Unusable)?;
        let timeout = shared.idle_timeout.min(CATALOGUE_FETCH_TIMEOUT);
        let resp = forward::send(&shared.client, req, timeout)
            .await
            .map_err(RefreshError::Unanswered)?;
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(RefreshError::Unusable),
        }
        let body = collect_bounded(resp.into_body(), LISTING_MAX, timeout)
            .await
            .map_err(|_| RefreshError::Unusable)?;
        Ok(Some(body))
    }
    .await;
    let now = std::time::Instant::now();
    match fetched {
        Ok(Some(body)) => shared.catalogue.update_from_tags(&body, now),
        // Not an Ollama server (an OpenAI-compatible one): it has no remote models.
        Ok(None) => shared.catalogue.update_from_tags(b"{\"models\":[]}", now),
        Err(RefreshError::Unanswered(failure)) => {
            tracing::warn!("cannot refresh the model catalogue: the upstream did not answer");
            shared.catalogue.refresh_unanswered(now, failure);
        }
        Err(RefreshError::Unusable) => {
            tracing::warn!("cannot refresh the model catalogue from upstream /api/tags");
            shared.catalogue.refresh_failed(now);
        }
    }
}
