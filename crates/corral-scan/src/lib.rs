//! `corral scan`: find exposed self-hosted LLM servers on networks you own, read-only.
//!
//! Pipeline: [`targets`] streams endpoints lazily, [`scanner`] drives bounded concurrent
//! [`fingerprint`] probes over the small [`http`] client, [`findings`] grades what was learnt,
//! and [`output`]/[`summary`] render it, and [`live`] draws
//! progress on a terminal. [`cli`] is the whole command for the `corral` binary.

pub mod classify;
pub mod cli;
pub mod findings;
pub mod fingerprint;
pub mod fuzzing;
pub mod http;
pub mod live;
pub mod output;
pub mod report;
pub mod scanner;
pub mod summary;
pub mod targets;
pub mod tls;

pub use cli::{main, ScanArgs};

/// Sent with every request so operators can tell who is knocking.
pub const USER_AGENT: &str = concat!("corral-scan/", env!("CARGO_PKG_VERSION"));
