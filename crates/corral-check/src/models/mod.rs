//! The model store: manifests, blobs, and what is wrong between them.

pub mod baseline;
pub mod discover;
pub mod manifest;
pub mod verify;

use crate::finding::{Evidence, Finding, Severity};
use crate::root::list_dir;
use chrono::{DateTime, Utc};
use manifest::{blob_file_hex, digest_hex, parse_manifest, Layer, ModelRef};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// More manifests than this is not a model store we should walk in full.
const MAX_MANIFESTS: usize = 100_000;

#[derive(Debug, Clone, Serialize)]
pub struct ModelEntry {
    pub name: String,
    pub registry: String,
    /// `sha256:<hex>` of the manifest file: the id `ollama list` shows a prefix of.
    pub digest: String,
    /// Host path of the manifest.
    pub manifest: String,
    pub modified: Option<DateTime<Utc>>,
    pub size: u64,
    #[serde(skip)]
    pub layers: Vec<Layer>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Blob {
    pub hex: String,
    #[serde(skip)]
    pub path: PathBuf,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoreScan {
    /// Host path of the models directory.
    pub dir: String,
    pub models: Vec<ModelEntry>,
    pub blob_count: usize,
    #[serde(skip)]
    pub blobs: BTreeMap<String, Blob>,
    #[serde(skip)]
    pub findings: Vec<Finding>,
}

/// Walk one models directory. `dir` is the real path, `show` turns a real path into the host
/// path used in evidence. With `confine`, links in the manifests tree are followed only where
/// they resolve inside that directory (the `--root` tree).
pub fn scan_store(dir: &Path, show: &dyn Fn(&Path) -> String, confine: Option<&Path>) -> StoreScan {
    let mut scan = StoreScan {
        dir: show(dir),
        models: Vec::new(),
        blob_count: 0,
        blobs: BTreeMap::new(),
        findings: Vec::new(),
    };
    for p in list_dir(&dir.join("blobs")) {
        let Some(hex) = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(blob_file_hex)
        else {
            continue;
        };
        let size = fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        scan.blobs.insert(
            hex.to_string(),
            Blob {
                hex: hex.to_string(),
                path: p.clone(),
                size,
            },
        );
    }
    scan.blob_count = scan.blobs.len();

    let mut referenced: BTreeSet<String> = BTreeSet::new();
    let (manifests, skipped) = manifest_files(&dir.join("manifests"), confine);
    for (path, why) in skipped {
        scan.findings.push(unseen_manifest(&show(&path), why));
    }
    for (path, parts) in manifests {
        let shown = show(&path);
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let Some(mref) = ModelRef::from_parts(&parts) else {
            continue;
        };
        let Some(bytes) = crate::root::read_bytes_at(&path) else {
            scan.findings.push(unseen_manifest(
                &shown,
                "cannot be read (run as root, or as the user Ollama runs as)",
            ));
            continue;
        };
        let modified = fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .map(DateTime::<Utc>::from);
        let m = match parse_manifest(&bytes) {
            Ok(m) => m,
            Err(e) => {
                scan.findings.push(
                    Finding::new(
                        "model.bad-manifest",
                        Severity::Medium,
                        format!("Manifest of {} cannot be parsed", mref.name()),
                    )
                    .with(Evidence::at(shown.clone(), None, e.to_string()))
                    .fix(format!(
                        "Inspect {shown}; if you did not create it, remove it (`ollama rm {}`)",
                        mref.name()
                    )),
                );
                continue;
            }
        };
        let name = mref.name();
        let mut size = 0u64;
        for l in m.blobs() {
            size = size.saturating_add(l.size);
            let Some(hex) = digest_hex(&l.digest) else {
                scan.findings.push(
                    Finding::new(
                        "model.bad-digest",
                        Severity::Critical,
                        format!("Manifest of {name} names a blob by a digest that is not sha256 (path traversal, CVE-2024-37032)"),
                    )
                    .with(Evidence::at(shown.clone(), None, format!("digest {:?}", l.digest)))
                    .fix(format!("Remove {shown}, upgrade Ollama, and check the files this digest points at; treat the host as compromised if you did not create it")),
                );
                continue;
            };
            referenced.insert(hex.to_string());
            match scan.blobs.get(hex) {
                None => scan.findings.push(
                    Finding::new("model.missing-blob", Severity::High, format!("{name} references a missing blob"))
                        .with(Evidence::at(shown.clone(), None, format!("{} ({}, {} bytes)", l.digest, l.media_type, l.size)))
                        .fix(format!("Re-pull the model (`ollama pull {name}`) or remove it (`ollama rm {name}`)")),
                ),
                Some(b) if l.size != 0 && b.size != l.size => scan.findings.push(
                    Finding::new("model.size-mismatch", Severity::High, format!("A blob of {name} has the wrong size"))
                        .with(Evidence::at(show(&b.path), None, format!("{} bytes on disk, manifest says {}", b.size, l.size)))
                        .with(Evidence::at(shown.clone(), None, l.digest.clone()))
                        .fix(format!("Remove the blob and re-pull (`ollama rm {name} && ollama pull {name}`)")),
                ),
                Some(_) => {}
            }
        }
        scan.models.push(ModelEntry {
            name,
            registry: mref.registry.clone(),
            digest: format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
            manifest: shown,
            modified,
            size,
            layers: m.blobs().cloned().collect(),
        });
    }
    for (hex, b) in &scan.blobs {
        if !referenced.contains(hex) {
            scan.findings.push(
                Finding::new("model.orphan-blob", Severity::Low, "Blob not referenced by any manifest")
                    .with(Evidence::at(show(&b.path), None, format!("{} bytes", b.size)))
                    .fix("`ollama` prunes unreferenced blobs at start-up unless OLLAMA_NOPRUNE is set; if it persists, inspect and delete it"),
            );
        }
    }
    scan
}

/// A manifest the check could not look at: whatever model it is stays unchecked, which the
/// report must say rather than pass over.
fn unseen_manifest(shown: &str, why: &str) -> Finding {
    Finding::new(
        "model.unchecked-manifest",
        Severity::Low,
        format!("A manifest could not be checked: {why}"),
    )
    .with(Evidence::at(shown.to_owned(), None, why.to_owned()))
    .fix(format!(
        "Look at {shown} by hand (`ls -l`, `readlink -f`); a manifest you did not create is a model someone else put there"
    ))
}

/// Entries the walk of `manifests/` passed over, and why.
type Skipped = Vec<(PathBuf, &'static str)>;

/// Manifest files exactly four levels below `manifests/`, with their path components, and the
/// links the walk could not or would not follow.
fn manifest_files(dir: &Path, confine: Option<&Path>) -> (Vec<(PathBuf, Vec<String>)>, Skipped) {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let mut stack: Vec<(PathBuf, Vec<String>)> = vec![(dir.to_path_buf(), Vec::new())];
    while let Some((d, parts)) = stack.pop() {
        for p in list_dir(&d) {
            let Some(name) = p.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
                continue;
            };
            // Symlinks are followed, as Ollama follows them when it lists its models: a
            // manifest planted as a link is a model all the same. The depth limit below keeps
            // a link loop finite.
            let linked = fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink());
            let Ok(meta) = fs::metadata(&p) else {
                if linked && skipped.len() < MAX_MANIFESTS {
                    skipped.push((p, "a link to nothing (dangling, or a loop)"));
                }
                continue;
            };
            if let Some(inside) = confine {
                if linked && !fs::canonicalize(&p).is_ok_and(|t| t.starts_with(inside)) {
                    if skipped.len() < MAX_MANIFESTS {
                        skipped.push((p, "a link out of the --root tree, not followed"));
                    }
                    continue;
                }
            }
            let mut next = parts.clone();
            next.push(name);
            if meta.is_dir() && next.len() < 4 {
                stack.push((p, next));
            } else if meta.is_file() && next.len() == 4 {
                out.push((p, next));
                if out.len() >= MAX_MANIFESTS {
                    return (out, skipped);
                }
            } else if next.len() == 4 && !meta.is_dir() && skipped.len() < MAX_MANIFESTS {
                // A FIFO or socket where a manifest file belongs.
                skipped.push((p, "not a regular file"));
            }
        }
    }
    out.sort();
    skipped.sort();
    (out, skipped)
}

/// How much a model from `registry` (not the official one) says about an intrusion:
/// - **high** for a registry named by its address (`203.0.113.7:8443`, `[2001:db8::1]:5000`,
///   an address without a port): the shape of models pushed to exposed servers through
///   `/api/pull`, and of the registry that CVE-2024-37032 and CVE-2025-51471 abuse;
/// - **low** for Hugging Face (`hf.co`, `huggingface.co`), which Ollama pulls GGUF models from
///   by design: still outside the official library, so still reported;
/// - **medium** for any other host name: a private registry is legitimate, but someone should
///   know of it.
pub fn foreign_registry_severity(registry: &str) -> Severity {
    let host = registry_host(registry);
    if host.parse::<std::net::IpAddr>().is_ok() {
        Severity::High
    } else if ["hf.co", "huggingface.co"]
        .iter()
        .any(|h| host.eq_ignore_ascii_case(h))
    {
        Severity::Low
    } else {
        Severity::Medium
    }
}

/// The host part of a registry `host[:port]` or `[v6]:port`, brackets removed.
fn registry_host(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => registry,
    }
}

/// Findings about where models came from and when.
pub fn provenance(models: &[ModelEntry], since: Option<DateTime<Utc>>) -> Vec<Finding> {
    let mut out = Vec::new();
    for m in models {
        if !manifest::is_official_registry(&m.registry) {
            out.push(
                Finding::new(
                    "model.foreign-registry",
                    foreign_registry_severity(&m.registry),
                    format!("{} was pulled from {}, not the official registry (registry.ollama.ai, ollama.com)", m.name, m.registry),
                )
                .with(Evidence::at(m.manifest.clone(), None, format!("manifest {}", m.digest)))
                .fix(format!(
                    "If you did not pull it on purpose, remove it (`ollama rm {}`) and find out who did: attacker models named `<ip>:<port>/...` have been pushed to exposed servers through /api/pull",
                    m.name
                )),
            );
        }
        if let (Some(since), Some(t)) = (since, m.modified) {
            if t >= since {
                out.push(
                    Finding::new("model.since", Severity::Medium, format!("{} was added or changed at {}", m.name, t.to_rfc3339()))
                        .with(Evidence::at(m.manifest.clone(), None, format!("manifest modified {}", t.to_rfc3339())))
                        .fix(format!("Confirm someone on your side pulled {}; if not, remove it and review who can reach the API", m.name)),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_named_by_its_address_is_high_hugging_face_low_other_hosts_medium() {
        for r in [
            "203.0.113.7:8443",
            "10.0.0.5",
            "[2001:db8::1]:5000",
            "[::1]",
        ] {
            assert_eq!(foreign_registry_severity(r), Severity::High, "{r}");
        }
        for r in ["hf.co", "HF.co", "huggingface.co", "huggingface.co:443"] {
            assert_eq!(foreign_registry_severity(r), Severity::Low, "{r}");
        }
        for r in [
            "registry.example.com",
            "registry.example.com:5000",
            "hf.co.evil.example",
            "localhost:5000",
        ] {
            assert_eq!(foreign_registry_severity(r), Severity::Medium, "{r}");
        }
    }
}
