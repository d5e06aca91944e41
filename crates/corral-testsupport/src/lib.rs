//! Test support for corral: a mock Ollama that answers in Ollama's recorded response shapes,
//! can be scripted to misbehave, and records every request that reaches it.
//!
//! ```no_run
//! # async fn demo() {
//! let mock = corral_testsupport::MockOllama::start().await;
//! // point the gate at mock.url(), send requests through it, then:
//! assert_eq!(mock.request_count(), 0);
//! # }
//! ```
//!
//! # Routes
//!
//! `GET|HEAD /` (`Ollama is running`), `/api/version`, `/api/tags` (local, vision, embedding
//! and `:cloud` models with `remote_host`/`remote_model` and `capabilities`), `/api/ps`,
//! `/api/status`, `POST /api/show`, `/api/generate` and `/api/chat` (NDJSON stream by default,
//! one object with `"stream":false`; tool calls in `message.tool_calls` when `tools` is sent),
//! `/api/embed`, `/api/embeddings`, admin routes (`/api/pull|push|create` progress streams,
//! `/api/copy`, `DELETE /api/delete`, `HEAD|POST /api/blobs/sha256:...`), account routes,
//! `/v1/models`, `/v1/models/{model}`, `/v1/chat/completions` and `/v1/completions` (SSE with
//! `data: [DONE]`, a usage chunk with `stream_options.include_usage`), `/v1/embeddings`
//! (base64 when asked), `/v1/messages` (Anthropic events), `/v1/responses`,
//! `/v1/audio/transcriptions`. Anything else: 404 `{"error":"404 page not found"}`.
//! Every generation reports [`PROMPT_TOKENS`] prompt tokens and one completion token per
//! content chunk.
//!
//! # Scripting by model name
//!
//! The gate forwards only known headers, so per-request behaviour is keyed on the model the
//! request names (the part after any `registry/namespace/` and before `:`):
//!
//! | model prefix | behaviour |
//! |---|---|
//! | `slow`     | [`SLOW_CHUNKS`] chunks, `slow_delay` (150 ms) between chunks |
//! | `cold`     | waits `cold_delay` (1.5 s) before sending the response headers |
//! | `stall`    | sends one chunk, then nothing (connection kept open) until the client leaves |
//! | `close`    | sends two chunks, then aborts the connection |
//! | `failing`  | sends two chunks, then an error in the stream's format, and ends it in order |
//! | `truncated`| sends two chunks, then ends the stream in order without its end (`done`, `[DONE]`...) |
//! | `endless`  | streams (≥ 20 ms apart) until the client leaves (capped at [`ENDLESS_CAP`]) |
//! | `long`     | [`LONG_CHUNKS`] chunks |
//! | `errorNNN` | status NNN (400–599) with an error body in the path's dialect |
//!
//! Global knobs ([`MockBehaviour`], [`MockBuilder`], or the `mock-ollama` flags) set the same
//! things for every request. The fast mode (`--fast`) serves precomputed answers for the
//! benchmark and records nothing.
//!
//! # Recording
//!
//! [`MockOllama::requests`] returns each request (method, target, headers, body as received)
//! and whether its client went away before the response ended; see
//! [`MockOllama::wait_for_disconnect`]. The `mock-ollama` binary records nothing unless run
//! with `--report-ends`, which prints one JSON line on stdout as each response ends
//! (completed, or the client disconnected), for end-to-end tests of cancellation.
//!
//! # Identity provider
//!
//! [`idp::MockIdp`] is a mock OIDC provider (discovery, a key set, fetches counted, down and
//! rotation on demand) for the gate's token tests; the `mock-idp` binary also mints tokens.

mod behaviour;
mod body;
pub mod codec;
mod fast;
pub mod idp;
pub mod pki;
mod raw;
mod record;
mod routes;
mod server;
pub mod shapes;
mod streams;

pub use behaviour::{MockBehaviour, ENDLESS_CAP, LONG_CHUNKS, SLOW_CHUNKS};
pub use body::{MockBody, FAILURE_MESSAGE};
pub use raw::{raw_http, raw_http_timeout, RawResponse, RAW_TIMEOUT};
pub use record::RecordedRequest;
pub use server::{MockBuilder, MockOllama};
pub use shapes::{CATALOGUE, PROMPT_TOKENS, VERSION};

/// Largest request body the mock reads (larger ones are recorded empty).
pub const MAX_MOCK_BODY: usize = 64 << 20;

/// An address on which nothing listens (bound then released), for "upstream down" tests.
pub fn unused_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 9)))
}
