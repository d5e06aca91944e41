//! Facts about Ollama that more than one corral crate needs: how its version numbers compare
//! ([`version`]) and which published CVEs a version is exposed to ([`cve`]). Pure data and
//! functions, no I/O: `corral-check` reads the version from the local host, `corral-scan` from
//! a scanned server, and both grade it from the one table here.

pub mod cve;
pub mod version;

pub use cve::{cves_for, Affected, Cve, Impact, CVES, LATEST_FIX};
pub use version::Version;
