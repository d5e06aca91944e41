//! Ollama manifests (`models/manifests/<host>/<namespace>/<model>/<tag>`) and blob names.

use serde::{Deserialize, Serialize};

pub const OFFICIAL_REGISTRY: &str = "registry.ollama.ai";

/// The official registry under either of its names: `registry.ollama.ai` (Ollama's default
/// host) and `ollama.com` (what `ollama pull ollama.com/library/gemma:2b` and ollama.com's own
/// instructions write), in any letter case.
pub fn is_official_registry(host: &str) -> bool {
    host.eq_ignore_ascii_case(OFFICIAL_REGISTRY) || host.eq_ignore_ascii_case("ollama.com")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion", default)]
    pub schema_version: u32,
    #[serde(default)]
    pub config: Option<Layer>,
    #[serde(default)]
    pub layers: Vec<Layer>,
}

impl Manifest {
    /// Config first, then layers.
    pub fn blobs(&self) -> impl Iterator<Item = &Layer> {
        self.config.iter().chain(self.layers.iter())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("not a manifest: {0}")]
    Json(String),
    #[error("manifest lists no layers")]
    Empty,
}

pub fn parse_manifest(bytes: &[u8]) -> Result<Manifest, ManifestError> {
    let m: Manifest =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
    if m.layers.is_empty() && m.config.is_none() {
        return Err(ManifestError::Empty);
    }
    Ok(m)
}

/// `sha256:<64 lowercase hex>` → the hex. Anything else (other algorithms, `../` in the
/// digest as in CVE-2024-37032) is refused.
pub fn digest_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(hex)
}

/// A blob file name (`sha256-<hex>`, or the older `sha256:<hex>`) → the hex.
pub fn blob_file_hex(name: &str) -> Option<&str> {
    let hex = name
        .strip_prefix("sha256-")
        .or_else(|| name.strip_prefix("sha256:"))?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(hex)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelRef {
    pub registry: String,
    pub namespace: String,
    pub model: String,
    pub tag: String,
}

impl ModelRef {
    pub fn from_parts(parts: &[&str]) -> Option<ModelRef> {
        let [registry, namespace, model, tag] = parts else {
            return None;
        };
        if parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == "..")
        {
            return None;
        }
        Some(ModelRef {
            registry: registry.to_string(),
            namespace: namespace.to_string(),
            model: model.to_string(),
            tag: tag.to_string(),
        })
    }

    pub fn is_official(&self) -> bool {
        is_official_registry(&self.registry)
    }

    /// The name `ollama list` shows: `llama3:8b`, `user/model:tag`, `host:port/ns/model:tag`
    /// (only the default host is left out: `ollama.com/library/gemma:2b` keeps its host).
    pub fn name(&self) -> String {
        if self.registry != OFFICIAL_REGISTRY {
            format!(
                "{}/{}/{}:{}",
                self.registry, self.namespace, self.model, self.tag
            )
        } else if self.namespace == "library" {
            format!("{}:{}", self.model, self.tag)
        } else {
            format!("{}/{}:{}", self.namespace, self.model, self.tag)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn ollama_com_is_the_official_registry() {
        for host in ["registry.ollama.ai", "ollama.com", "Ollama.com"] {
            assert!(is_official_registry(host), "{host}");
        }
        for host in [
            "10.0.0.1:8443",
            "ollama.com.evil.example",
            "evil.example",
            "ollama.com:5000",
        ] {
            assert!(!is_official_registry(host), "{host}");
        }
    }

    #[test]
    fn parses_real_shape() {
        let m = parse_manifest(br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:aa","size":485},"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:bb","size":10}]}"#).unwrap();
        assert_eq!(m.blobs().count(), 2);
        assert_eq!(m.layers[0].size, 10);
        assert!(matches!(parse_manifest(b"{}"), Err(ManifestError::Empty)));
        assert!(matches!(
            parse_manifest(b"\"x\""),
            Err(ManifestError::Json(_))
        ));
        assert!(parse_manifest(b"[1]").is_err());
    }

    #[test]
    fn digests() {
        let h = "a".repeat(64);
        assert_eq!(digest_hex(&format!("sha256:{h}")), Some(h.as_str()));
        assert_eq!(digest_hex("sha256:../../../../etc/passwd"), None);
        assert_eq!(digest_hex(&format!("sha256:{}", "A".repeat(64))), None);
        assert_eq!(blob_file_hex(&format!("sha256-{h}")), Some(h.as_str()));
        assert_eq!(blob_file_hex(&format!("sha256-{h}-partial")), None);
    }

    #[test]
    fn names() {
        let r = |p: &[&str]| ModelRef::from_parts(p).unwrap().name();
        assert_eq!(
            r(&["registry.ollama.ai", "library", "llama3", "8b"]),
            "llama3:8b"
        );
        assert_eq!(
            r(&["registry.ollama.ai", "jo", "m", "latest"]),
            "jo/m:latest"
        );
        assert_eq!(
            r(&["10.0.0.5:8443", "attacker", "leak_model_0", "latest"]),
            "10.0.0.5:8443/attacker/leak_model_0:latest"
        );
        assert!(ModelRef::from_parts(&["a", "..", "b", "c"]).is_none());
        assert!(ModelRef::from_parts(&["a", "b", "c"]).is_none());
    }
}
