//! Load tools for corral's benchmarks (`bench/gate.sh`, `bench/scan.sh`).
//!
//! Request-rate figures come from `wrk`; this crate covers what `wrk` cannot: holding a
//! thousand long-lived NDJSON streams open at once through a proxy while sampling the
//! proxy's memory, and reporting how many streams were really open at the same time.

pub mod fleet;
pub mod floor;
pub mod rss;
pub mod stats;
pub mod streams;
pub mod target;
