//! Baseline files: model name → manifest digest, written by `--write-baseline`, compared by
//! `--baseline`.

use super::ModelEntry;
use crate::finding::{Evidence, Finding, Severity};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<DateTime<Utc>>,
    pub models: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
#[error("baseline is not valid: {0}")]
pub struct BaselineError(String);

impl Baseline {
    pub fn from_models(models: &[ModelEntry], now: DateTime<Utc>) -> Baseline {
        Baseline {
            version: 1,
            created: Some(now),
            models: models
                .iter()
                .map(|m| (m.name.clone(), m.digest.clone()))
                .collect(),
        }
    }

    /// Accepts the full form or a bare `{"name": "sha256:..."}` map.
    pub fn parse(text: &str) -> Result<Baseline, BaselineError> {
        if let Ok(b) = serde_json::from_str::<Baseline>(text) {
            return Ok(b);
        }
        serde_json::from_str::<BTreeMap<String, String>>(text)
            .map(|models| Baseline {
                version: 1,
                created: None,
                models,
            })
            .map_err(|e| BaselineError(e.to_string()))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

pub fn compare(baseline: &Baseline, path: &str, models: &[ModelEntry]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for m in models {
        seen.insert(m.name.as_str());
        match baseline.models.get(&m.name) {
            None => out.push(
                Finding::new("model.not-in-baseline", Severity::High, format!("{} is not in the baseline", m.name))
                    .with(Evidence::at(m.manifest.clone(), None, format!("manifest {}", m.digest)))
                    .with(Evidence::at(path, None, "baseline"))
                    .fix(format!(
                        "If you pulled {} on purpose, refresh the baseline (`corral check --write-baseline {path}`); otherwise remove it (`ollama rm {}`)",
                        m.name, m.name
                    )),
            ),
            Some(d) if *d != m.digest => out.push(
                Finding::new("model.changed", Severity::High, format!("{} differs from the baseline", m.name))
                    .with(Evidence::at(m.manifest.clone(), None, format!("manifest {} (baseline {d})", m.digest)))
                    .fix(format!("Re-pull {} from its registry, or refresh the baseline if the change is yours", m.name)),
            ),
            Some(_) => {}
        }
    }
    for (name, d) in &baseline.models {
        if !seen.contains(name.as_str()) {
            out.push(
                Finding::new(
                    "model.removed",
                    Severity::Low,
                    format!("{name} from the baseline is no longer present"),
                )
                .with(Evidence::at(path, None, format!("{name} {d}")))
                .fix("Refresh the baseline if the removal is yours"),
            );
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

    #[test]
    fn round_trip_and_diff() {
        let now = Utc::now();
        let b = Baseline::from_models(
            &[
                m("a:1", "sha256:1"),
                m("b:1", "sha256:2"),
                m("gone:1", "sha256:3"),
            ],
            now,
        );
        let b2 = Baseline::parse(&b.to_json()).unwrap();
        assert_eq!(b, b2);
        let f = compare(
            &b2,
            "/etc/corral/baseline.json",
            &[
                m("a:1", "sha256:1"),
                m("b:1", "sha256:X"),
                m("new:1", "sha256:4"),
            ],
        );
        let ids: Vec<&str> = f.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(
            ids,
            vec!["model.changed", "model.not-in-baseline", "model.removed"]
        );
        assert!(f[1].title.contains("new:1"));
    }

    #[test]
    fn bare_map_and_garbage() {
        let b = Baseline::parse(r#"{"x:1":"sha256:9"}"#).unwrap();
        assert_eq!(b.models.len(), 1);
        assert!(Baseline::parse("[]").is_err());
        assert!(Baseline::parse("").is_err());
    }
}
