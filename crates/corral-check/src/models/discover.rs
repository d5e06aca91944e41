//! Which model directories to check.

use crate::root::Root;
use crate::settings::{self, Setting};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// The environment `corral check` itself runs in (host paths).
#[derive(Debug, Clone, Copy, Default)]
pub struct Invoking<'a> {
    /// OLLAMA_MODELS.
    pub models: Option<&'a str>,
    /// HOME.
    pub home: Option<&'a str>,
}

/// Model directories: `--models` if given; otherwise OLLAMA_MODELS from any source (the
/// invoking environment's too), the invoking user's and every `/etc/passwd` user's
/// `~/.ollama/models` (the service user's included), and the Linux installer's default.
pub fn model_dirs(
    root: &Root,
    given: &[PathBuf],
    settings: &[Setting],
    service_user: Option<&str>,
    invoking: &Invoking<'_>,
) -> Vec<PathBuf> {
    if !given.is_empty() {
        return given.to_vec();
    }
    let mut host: Vec<String> = settings
        .iter()
        .filter(|s| s.name == "OLLAMA_MODELS")
        .map(|s| s.value.as_str())
        .chain(invoking.models)
        .filter(|v| v.starts_with('/'))
        .map(str::to_string)
        .collect();
    if let Some(h) = invoking.home.filter(|h| h.starts_with('/')) {
        host.push(format!("{}/.ollama/models", h.trim_end_matches('/')));
    }
    let homes = settings::passwd_homes(&root.read_text("/etc/passwd").unwrap_or_default());
    if let Some(u) = service_user {
        if let Some((_, h)) = homes.iter().find(|(n, _)| n == u) {
            host.push(format!("{h}/.ollama/models"));
        }
    }
    host.extend(homes.iter().map(|(_, h)| format!("{h}/.ollama/models")));
    host.push("/usr/share/ollama/.ollama/models".into());
    host.push("/root/.ollama/models".into());
    let mut seen = BTreeSet::new();
    host.into_iter()
        .filter(|h| seen.insert(h.clone()))
        .map(|h| root.path(h))
        .filter(|p| p.is_dir())
        .collect()
}
