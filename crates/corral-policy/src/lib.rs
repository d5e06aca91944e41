//! Pure decision logic of the corral gate.
//!
//! Nothing here performs I/O, reads a clock or draws randomness: the gate feeds bytes and
//! strings in and acts on the answers. That keeps every security decision unit-testable and
//! fuzzable in isolation.
//!
//! - [`path`]: request-target canonicalisation (refuse, never repair).
//! - [`route`]: the allow-list of Ollama routes with their exact methods and classes.
//! - [`config`]: the typed TOML configuration and the built-in policies.
//! - [`model`]: model-name normalisation and allow-list globs.
//! - [`inspect`]: request-body inspection helpers (multipart).
//! - [`decide`]: the policy decision and body clamps for one request.
//! - [`listing`]: filtering of model listings to what a caller may use.
//! - [`usage`]: a bounded scanner for token counts in response bodies.
//! - [`rate`]: the arithmetic of per-key request rates and token quotas.
//! - [`client_cert`]: binding a policy's keys to client-certificate names (mutual TLS).
//! - [`oidc`]: verification of OIDC access tokens against a fetched key set.
//!
//! # How the gate uses it, per request
//!
//! 1. [`route::route`]`(method, target)` with the raw request-target. A match means the
//!    target is already canonical: forward it upstream byte for byte. An error carries the
//!    status (400/404/405) and a message safe for the client; answer in
//!    [`route::dialect_for_path`]'s dialect.
//! 2. After authentication, read at most [`config::Policy::body_limit`] bytes for the
//!    route's [`route::BodyKind`].
//! 3. Decide: [`decide::evaluate`] with the parsed JSON body (`None` for an empty body), or
//!    [`decide::evaluate_multipart`] for multipart routes. A [`decide::Denial`] names its
//!    rule; a [`decide::Verdict`] with `modified` means the body changed: forward
//!    [`decide::rewritten_body`], which rewrites only the changed fields in the client's bytes.
//! 4. Listings ([`route::Route::listing`]) are buffered and passed through
//!    [`listing::filter`]; `/api/tags` also feeds [`listing::remote_models`], the catalogue
//!    behind the `is_remote` callback (which receives normalised names).
//! 5. Other responses stream through a [`usage::UsageTap`] for the audit record.

pub mod client_cert;
pub mod config;
pub mod decide;
pub mod inspect;
pub mod listing;
pub mod model;
pub mod oidc;
pub mod path;
pub mod rate;
pub mod route;
pub mod usage;
