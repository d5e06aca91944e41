//! Baseline files, written by `--write-baseline` and compared by `--baseline`.
//!
//! Version 2 keys every model by its store (the models directory, as a host path) and its
//! name: `{"version":2,"stores":{"/usr/share/ollama/.ollama/models":{"llama3:8b":"sha256:…"}}}`,
//! so one name in two stores (the service user's and root's) is two entries. Version 1 files
//! (`{"version":1,"models":{"llama3:8b":"sha256:…"}}`, or a bare name → digest map) still load
//! and are compared by name alone, as they were written: a model matches when some store holds
//! it with that digest. Writing the baseline again upgrades the file to version 2.

use super::ModelEntry;
use crate::finding::{Evidence, Finding, Severity};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Name → manifest digest.
pub type Digests = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<DateTime<Utc>>,
    /// Version 2: store → name → digest.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stores: BTreeMap<String, Digests>,
    /// Version 1: name → digest, across every store.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: Digests,
}

#[derive(Debug, thiserror::Error)]
#[error("baseline is not valid: {0}")]
pub struct BaselineError(String);

/// A model and the store (host path of its models directory) it was found in.
pub type Located<'a> = (&'a str, &'a ModelEntry);

impl Baseline {
    pub fn from_models(models: &[Located<'_>], now: DateTime<Utc>) -> Baseline {
        let mut stores: BTreeMap<String, Digests> = BTreeMap::new();
        for (store, m) in models {
            stores
                .entry((*store).to_string())
                .or_default()
                .insert(m.name.clone(), m.digest.clone());
        }
        Baseline {
            version: 2,
            created: Some(now),
            stores,
            models: Digests::new(),
        }
    }

    /// Accepts version 2, version 1, or a bare `{"name": "sha256:..."}` map (version 1).
    pub fn parse(text: &str) -> Result<Baseline, BaselineError> {
        if let Ok(b) = serde_json::from_str::<Baseline>(text) {
            return match b.version {
                1 | 2 => Ok(b),
                v => Err(BaselineError(format!("unknown baseline version {v}"))),
            };
        }
        serde_json::from_str::<Digests>(text)
            .map(|models| Baseline {
                version: 1,
                created: None,
                stores: BTreeMap::new(),
                models,
            })
            .map_err(|e| BaselineError(e.to_string()))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// Keyed by store: version 2, or a version 1 file that lists nothing by name.
    fn by_store(&self) -> bool {
        self.version >= 2 || self.models.is_empty()
    }
}

fn not_in_baseline(store: &str, m: &ModelEntry, path: &str) -> Finding {
    Finding::new(
        "model.not-in-baseline",
        Severity::High,
        format!("{} in {store} is not in the baseline", m.name),
    )
    .with(Evidence::at(m.manifest.clone(), None, format!("manifest {}", m.digest)))
    .with(Evidence::at(path, None, "baseline"))
    .fix(format!(
        "If you pulled {} on purpose, refresh the baseline (`corral check --write-baseline {path}`); otherwise remove it (`ollama rm {}`)",
        m.name, m.name
    ))
}

fn changed(store: &str, m: &ModelEntry, was: &str) -> Finding {
    Finding::new(
        "model.changed",
        Severity::High,
        format!("{} in {store} differs from the baseline", m.name),
    )
    .with(Evidence::at(
        m.manifest.clone(),
        None,
        format!("manifest {} (baseline {was})", m.digest),
    ))
    .fix(format!(
        "Re-pull {} from its registry, or refresh the baseline if the change is yours",
        m.name
    ))
}

fn removed(what: &str, digest: &str, path: &str) -> Finding {
    Finding::new(
        "model.removed",
        Severity::Low,
        format!("{what} from the baseline is no longer present"),
    )
    .with(Evidence::at(path, None, format!("{what} {digest}")))
    .fix("Refresh the baseline if the removal is yours")
}

pub fn compare(baseline: &Baseline, path: &str, models: &[Located<'_>]) -> Vec<Finding> {
    let mut out = Vec::new();
    if baseline.by_store() {
        let mut seen = BTreeSet::new();
        for (store, m) in models {
            seen.insert((*store, m.name.as_str()));
            match baseline.stores.get(*store).and_then(|s| s.get(&m.name)) {
                None => out.push(not_in_baseline(store, m, path)),
                Some(d) if *d != m.digest => out.push(changed(store, m, d)),
                Some(_) => {}
            }
        }
        for (store, names) in &baseline.stores {
            for (name, d) in names {
                if !seen.contains(&(store.as_str(), name.as_str())) {
                    out.push(removed(&format!("{name} in {store}"), d, path));
                }
            }
        }
        return out;
    }
    // Version 1: names only. Each present copy must carry the recorded digest.
    let mut seen = BTreeSet::new();
    for (store, m) in models {
        seen.insert(m.name.as_str());
        match baseline.models.get(&m.name) {
            None => out.push(not_in_baseline(store, m, path)),
            Some(d) if *d != m.digest => out.push(changed(store, m, d)),
            Some(_) => {}
        }
    }
    for (name, d) in &baseline.models {
        if !seen.contains(name.as_str()) {
            out.push(removed(name, d, path));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn m(name: &str, d: &str) -> ModelEntry {
        ModelEntry {
            name: name.into(),
            registry: "registry.ollama.ai".into(),
            digest: d.into(),
            manifest: format!("/m/{name}"),
            modified: None,
            size: 0,
            layers: vec![],
        }
    }

    const S: &str = "/usr/share/ollama/.ollama/models";
    const R: &str = "/root/.ollama/models";

    #[test]
    fn round_trip_and_diff() {
        let now = Utc::now();
        let (a, b, gone) = (
            m("a:1", "sha256:1"),
            m("b:1", "sha256:2"),
            m("gone:1", "sha256:3"),
        );
        let base = Baseline::from_models(&[(S, &a), (S, &b), (S, &gone)], now);
        assert_eq!(base.version, 2);
        let b2 = Baseline::parse(&base.to_json()).unwrap();
        assert_eq!(base, b2);
        let (b_changed, new) = (m("b:1", "sha256:X"), m("new:1", "sha256:4"));
        let f = compare(
            &b2,
            "/etc/corral/baseline.json",
            &[(S, &a), (S, &b_changed), (S, &new)],
        );
        let ids: Vec<&str> = f.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(
            ids,
            vec!["model.changed", "model.not-in-baseline", "model.removed"]
        );
        assert!(f[1].title.contains("new:1") && f[1].title.contains(S));
    }

    /// One name in two stores with different content is two entries: an unchanged host
    /// matches its own baseline; a model moved to the other store is a difference.
    #[test]
    fn one_name_in_two_stores_is_two_entries() {
        let (one, two) = (m("dup:1", "sha256:1"), m("dup:1", "sha256:2"));
        let host = [(S, &one), (R, &two)];
        let base = Baseline::parse(&Baseline::from_models(&host, Utc::now()).to_json()).unwrap();
        assert!(compare(&base, "b.json", &host).is_empty());
        let moved = [(R, &one)];
        let ids: Vec<String> = compare(&base, "b.json", &moved)
            .into_iter()
            .map(|f| f.id)
            .collect();
        assert_eq!(ids, ["model.changed", "model.removed"]);
    }

    /// Version 1 files (written before stores were recorded) load and are compared by name.
    #[test]
    fn version_1_files_still_load() {
        let v1 = r#"{"version":1,"created":"2026-11-01T00:00:00Z","models":{"a:1":"sha256:1"}}"#;
        let b = Baseline::parse(v1).unwrap();
        assert_eq!(b.version, 1);
        let a = m("a:1", "sha256:1");
        assert!(compare(&b, "b.json", &[(S, &a)]).is_empty());
        let a2 = m("a:1", "sha256:2");
        assert_eq!(compare(&b, "b.json", &[(S, &a2)])[0].id, "model.changed");
        assert_eq!(compare(&b, "b.json", &[])[0].id, "model.removed");
        assert!(Baseline::parse(r#"{"version":9,"models":{}}"#).is_err());
    }

    #[test]
    fn bare_map_and_garbage() {
        let b = Baseline::parse(r#"{"x:1":"sha256:9"}"#).unwrap();
        assert_eq!(b.models.len(), 1);
        assert!(Baseline::parse("[]").is_err());
        assert!(Baseline::parse("").is_err());
    }
}
