//! Facts about Ollama that more than one corral crate needs: how its version numbers compare
//! ([`version`]) and which published CVEs a version is exposed to ([`cve`]). Pure data and
//! functions, no I/O: `corral-check` reads the version from the local host, `corral-scan` from
//! a scanned server, and both grade it from the one table here. [`term`] makes text a host
//! chose safe to print on a terminal, for both crates' tables.

pub mod cve;
pub mod term;
pub mod version;

pub use cve::{cves_for, Affected, Cve, Impact, CVES, LATEST_FIX};
pub use version::Version;
