//! The allow-list of Ollama routes.
//!
//! Only these (method, path) pairs ever reach upstream. New upstream routes stay refused
//! until they are added here with a class, so a new Ollama release cannot widen what a key
//! may do.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::path::{self, PathError};

/// What a route lets a caller do; policies allow or refuse whole classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointClass {
    /// Running models: generate, chat, embeddings (native and /v1).
    Inference,
    /// Read-only inventory: version, tags, show, /v1/models.
    Discovery,
    /// Operational state: loaded models and their memory (`/api/ps`).
    Ops,
    /// Changing the model store: pull, push, create, blobs, copy, delete.
    Admin,
    /// The owner's ollama.com account: sign-in state, keys, web search.
    Account,
}

impl EndpointClass {
    /// Every class, in a stable order.
    pub const ALL: [EndpointClass; 5] = [
        EndpointClass::Inference,
        EndpointClass::Discovery,
        EndpointClass::Ops,
        EndpointClass::Admin,
        EndpointClass::Account,
    ];

    /// The lower-case name used in config files, audit records and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointClass::Inference => "inference",
            EndpointClass::Discovery => "discovery",
            EndpointClass::Ops => "ops",
            EndpointClass::Admin => "admin",
            EndpointClass::Account => "account",
        }
    }

    /// Parses the lower-case name.
    pub fn parse(s: &str) -> Option<EndpointClass> {
        EndpointClass::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether routes of this class name models (in the body, the path, or a listing filtered
    /// to the policy's models), so that a policy allowing it needs models on its allow-list.
    /// Only the account routes never do.
    pub fn names_models(self) -> bool {
        self != EndpointClass::Account
    }
}

impl fmt::Display for EndpointClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error and request shape a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// `/api/*` and `/`: `{"error":"..."}`.
    Ollama,
    /// `/v1/*`: `{"error":{"message","type","code"}}`.
    OpenAi,
    /// `/v1/messages*`: `{"type":"error","error":{"type","message"}}`.
    Anthropic,
}

/// The dialect for a raw target, used for error bodies even when no route matched.
pub fn dialect_for_path(raw: &str) -> Dialect {
    if raw == "/v1/messages" || raw.starts_with("/v1/messages/") || raw.starts_with("/v1/messages?")
    {
        Dialect::Anthropic
    } else if raw == "/v1" || raw.starts_with("/v1/") || raw.starts_with("/v1?") {
        Dialect::OpenAi
    } else {
        Dialect::Ollama
    }
}

/// What the request body of a route is, which decides how the gate reads and inspects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyKind {
    /// No body expected (GET, HEAD, DELETE of a path resource).
    None,
    /// A JSON object, inspected and possibly clamped.
    Json,
    /// `multipart/form-data` (audio transcription); only the `model` field is inspected.
    Multipart,
    /// Opaque bytes (blob upload), forwarded without inspection.
    Binary,
}

/// Responses the gate must buffer and filter to the caller's models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listing {
    /// `GET /api/tags`.
    Tags,
    /// `GET /v1/models`.
    V1Models,
    /// `GET /api/ps`.
    Ps,
}

/// One allowed route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Stable name for audit records, e.g. `api.chat`.
    pub name: &'static str,
    /// Exact, upper-case methods accepted.
    pub methods: &'static [&'static str],
    /// Path pattern; `{model}`, `{digest}` and `{key}` stand for one segment.
    pub path: &'static str,
    pub class: EndpointClass,
    pub body: BodyKind,
    pub listing: Option<Listing>,
    pub dialect: Dialect,
}

impl Route {
    /// Whether a streamed answer of this route is a generation whose stream ends with an end
    /// marker (see [`crate::usage::UsageTap::saw_end`]): one that stops without it was cut
    /// short upstream.
    pub fn streams_generation(&self) -> bool {
        matches!(
            self.name,
            "api.generate"
                | "api.chat"
                | "v1.chat.completions"
                | "v1.completions"
                | "v1.responses"
                | "v1.messages"
        )
    }
}

/// A matched route and its path parameter, borrowed from the request target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteMatch<'a> {
    pub route: &'static Route,
    /// The raw `{model}`, `{digest}` or `{key}` segment. For `{model}` it may contain `%3A`;
    /// [`RouteMatch::model_param`] decodes it.
    pub param: Option<&'a str>,
    /// The checked, canonical path: the whole target, or the target without a query this
    /// route accepts (see [`ACCEPTED_QUERIES`]). This is what goes upstream.
    pub path: &'a str,
}

/// The only query strings accepted, by route name, each exactly as written; the gate forwards
/// the path without them. Anthropic's SDK calls its beta messages API (what Claude Code uses)
/// as `POST /v1/messages?beta=true`, which Ollama answers as `/v1/messages`. Any other query,
/// on any route, is refused.
pub const ACCEPTED_QUERIES: &[(&str, &str)] = &[("v1.messages", "beta=true")];

impl RouteMatch<'_> {
    /// The decoded `{model}` of `/v1/models/{model}`, if this is that route.
    pub fn model_param(&self) -> Option<String> {
        if self.route.path.ends_with("{model}") {
            self.param.map(path::decode_param)
        } else {
            None
        }
    }
}

/// Why no route was matched. `Display` is safe to show to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("no such endpoint")]
    NotFound,
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed { allow: &'static [&'static str] },
    #[error("bad request path: {0}")]
    BadPath(PathError),
}

impl RouteError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            RouteError::NotFound => 404,
            RouteError::MethodNotAllowed { .. } => 405,
            // RFC 9110 §15.5.15: the target is longer than the gate will read.
            RouteError::BadPath(PathError::TooLong) => 414,
            RouteError::BadPath(_) => 400,
        }
    }
}

impl From<PathError> for RouteError {
    fn from(e: PathError) -> Self {
        RouteError::BadPath(e)
    }
}

const GET: &[&str] = &["GET"];
const GET_HEAD: &[&str] = &["GET", "HEAD"];
const POST: &[&str] = &["POST"];
const POST_HEAD: &[&str] = &["POST", "HEAD"];
const DELETE: &[&str] = &["DELETE"];

const fn r(
    name: &'static str,
    methods: &'static [&'static str],
    path: &'static str,
    class: EndpointClass,
    body: BodyKind,
    listing: Option<Listing>,
    dialect: Dialect,
) -> Route {
    Route {
        name,
        methods,
        path,
        class,
        body,
        listing,
        dialect,
    }
}

use BodyKind as B;
use Dialect as D;
use EndpointClass as C;

/// Every route the gate forwards.
#[rustfmt::skip]
pub static ROUTES: &[Route] = &[
    // inference
    r("api.generate", POST, "/api/generate", C::Inference, B::Json, None, D::Ollama),
    r("api.chat", POST, "/api/chat", C::Inference, B::Json, None, D::Ollama),
    r("api.embed", POST, "/api/embed", C::Inference, B::Json, None, D::Ollama),
    r("api.embeddings", POST, "/api/embeddings", C::Inference, B::Json, None, D::Ollama),
    r("v1.chat.completions", POST, "/v1/chat/completions", C::Inference, B::Json, None, D::OpenAi),
    r("v1.completions", POST, "/v1/completions", C::Inference, B::Json, None, D::OpenAi),
    r("v1.embeddings", POST, "/v1/embeddings", C::Inference, B::Json, None, D::OpenAi),
    r("v1.responses", POST, "/v1/responses", C::Inference, B::Json, None, D::OpenAi),
    r("v1.messages", POST, "/v1/messages", C::Inference, B::Json, None, D::Anthropic),
    r("v1.audio.transcriptions", POST, "/v1/audio/transcriptions", C::Inference, B::Multipart, None, D::OpenAi),
    // discovery
    r("root", GET_HEAD, "/", C::Discovery, B::None, None, D::Ollama),
    r("api.version", GET, "/api/version", C::Discovery, B::None, None, D::Ollama),
    r("api.tags", GET, "/api/tags", C::Discovery, B::None, Some(Listing::Tags), D::Ollama),
    r("api.show", POST, "/api/show", C::Discovery, B::Json, None, D::Ollama),
    r("v1.models", GET, "/v1/models", C::Discovery, B::None, Some(Listing::V1Models), D::OpenAi),
    r("v1.models.model", GET, "/v1/models/{model}", C::Discovery, B::None, None, D::OpenAi),
    r("api.status", GET, "/api/status", C::Discovery, B::None, None, D::Ollama),
    // ops
    r("api.ps", GET, "/api/ps", C::Ops, B::None, Some(Listing::Ps), D::Ollama),
    // admin
    r("api.pull", POST, "/api/pull", C::Admin, B::Json, None, D::Ollama),
    r("api.push", POST, "/api/push", C::Admin, B::Json, None, D::Ollama),
    r("api.create", POST, "/api/create", C::Admin, B::Json, None, D::Ollama),
    r("api.blobs", POST_HEAD, "/api/blobs/{digest}", C::Admin, B::Binary, None, D::Ollama),
    r("api.copy", POST, "/api/copy", C::Admin, B::Json, None, D::Ollama),
    r("api.delete", DELETE, "/api/delete", C::Admin, B::Json, None, D::Ollama),
    // account
    r("api.me", POST, "/api/me", C::Account, B::Json, None, D::Ollama),
    r("api.signout", POST, "/api/signout", C::Account, B::Json, None, D::Ollama),
    r("api.user.keys", DELETE, "/api/user/keys/{key}", C::Account, B::None, None, D::Ollama),
    r("api.experimental.web_search", POST, "/api/experimental/web_search", C::Account, B::Json, None, D::Ollama),
    r("api.experimental.web_fetch", POST, "/api/experimental/web_fetch", C::Account, B::Json, None, D::Ollama),
    r("api.experimental.model_recommendations", GET, "/api/experimental/model-recommendations", C::Account, B::None, None, D::Ollama),
];

/// Matches `method` and the raw request-target against the route table. The target is
/// checked by [`path::check`] first; on success it is the canonical path to forward as is.
pub fn route<'a>(method: &str, target: &'a str) -> Result<RouteMatch<'a>, RouteError> {
    // A query is looked at only when it is one some route accepts, spelled exactly so;
    // otherwise the whole target goes through the path check, which refuses it.
    let (target, query) = match target.split_once('?') {
        Some((path, query)) if ACCEPTED_QUERIES.iter().any(|(_, q)| *q == query) => {
            (path, Some(query))
        }
        _ => (target, None),
    };
    let target = path::check(target)?;
    let mut found: Option<RouteMatch<'a>> = None;
    for route in ROUTES {
        if let Some(param) = match_path(route.path, target) {
            found = Some(RouteMatch {
                route,
                param,
                path: target,
            });
            break;
        }
    }
    let m = found.ok_or(RouteError::NotFound)?;
    if let Some(query) = query {
        if !ACCEPTED_QUERIES.contains(&(m.route.name, query)) {
            return Err(RouteError::BadPath(path::PathError::Query));
        }
    }
    if !m.route.methods.contains(&method) {
        return Err(RouteError::MethodNotAllowed {
            allow: m.route.methods,
        });
    }
    Ok(m)
}

/// `Some(param)` when `target` matches `pattern`; the parameter segment must be valid for
/// its kind, otherwise the route does not match at all.
fn match_path<'a>(pattern: &str, target: &'a str) -> Option<Option<&'a str>> {
    let Some(open) = pattern.find('{') else {
        return (pattern == target).then_some(None);
    };
    let prefix = &pattern[..open];
    let name = &pattern[open..];
    let param = target.strip_prefix(prefix)?;
    if param.is_empty() || param.contains('/') {
        return None;
    }
    let ok = match name {
        "{digest}" => is_sha256_digest(param),
        "{model}" => param.len() <= 256,
        "{key}" => param.len() <= 1024 && !param.contains('%'),
        _ => false,
    };
    ok.then_some(Some(param))
}

/// `sha256:` followed by exactly 64 lower-case hex digits, the only digest form Ollama
/// stores; anything else could name a path outside the blob directory.
pub fn is_sha256_digest(s: &str) -> bool {
    match s.strip_prefix("sha256:") {
        Some(hex) => hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        None => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
