//! `corral check`: audit a host's Ollama.
//!
//! Reads listening sockets (`/proc/net/tcp{,6}` mapped to processes through `/proc/*/fd`),
//! OLLAMA_* settings (process environment, `ollama.service` and drop-ins, `EnvironmentFile=`,
//! `/etc/environment`, container hints), the firewall (`nft -j list ruleset`,
//! `iptables-save`, `ip6tables-save`), the model store (manifests and blobs), the process tree
//! below Ollama, and Ollama's version (`GET /api/version` on loopback, else the link-time
//! version in its executable, read without running it: [`binary`]) against known CVEs.
//!
//! Everything is read under [`CheckOptions::root`]. With a root other than `/`, nothing is run
//! and nothing is probed; what a command or a live server would tell comes from files under
//! `<root>/corral-fixtures/`: `nft.json` (output of `nft -j list ruleset`),
//! `iptables-save.txt`, `ip6tables-save.txt`, and `version.json` (a `/api/version` body).
//! When no firewall dump can be read the report says the firewall cannot be determined.
//!
//! Exit status ([`Report::exit_code`]): 0 when no finding is at or above `--fail-on`
//! (default `high`), 1 when one is, 2 on an error (unreadable root, bad baseline, missing
//! `--models` directory), printed to stderr as `corral check: ...`. `high` is the default because
//! it covers every state that lets strangers use or abuse the server (a wildcard bind,
//! `OLLAMA_ORIGINS=*`, foreign models, a shell below Ollama, a vulnerable version) while
//! hygiene items (an open but unused port, orphaned blobs, an undeterminable firewall) stay
//! below it.
//!
//! Severities: an exposed socket is critical, or high when the firewall is known to drop the
//! port; shells, interpreters and network tools below Ollama are critical, other children
//! medium; a tampered blob or a non-sha256 manifest digest is critical; a missing blob, a size
//! mismatch, a registry named by its address, or a model outside the baseline is high; a
//! registry named by another host name is medium, Hugging Face low.
//!
//! `--models DIR` paths are used as given, not under `--root`. Without them the stores are
//! found from OLLAMA_MODELS (any source, and the environment `corral check` runs in), the
//! invoking user's `$HOME/.ollama/models`, every `/etc/passwd` home's `.ollama/models`, and
//! `/usr/share/ollama/.ollama/models` (the Linux installer's service user).
//!
//! Parsing is pure and lives in small modules ([`procnet`], [`systemd`], [`firewall`],
//! [`models::manifest`]); [`check::run`] does the reading.

pub mod binary;
pub mod check;
pub mod cli;
pub mod config;
pub mod container;
pub mod exposure;
pub mod finding;
pub mod firewall;
pub mod fuzzing;
pub mod ifaces;
pub mod models;
pub mod procnet;
pub mod procs;
pub mod report;
pub mod root;
pub mod sarif;
pub mod settings;
pub mod systemd;
pub mod version;

pub use check::{run, CheckError, CheckOptions};
pub use cli::{main, CheckArgs};
pub use finding::{Evidence, Finding, Severity};
pub use report::{Format, Report};
