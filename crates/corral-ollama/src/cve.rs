//! The published Ollama CVEs that a version number alone reveals (from
//! `shared/reference/ollama-api.md`, "Known CVEs checkable from /api/version").

use crate::version::Version;

/// What an attacker gets. The first three are what both `corral check` and `corral scan`
/// treat as critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impact {
    CodeExecution,
    FileWrite,
    MemoryDisclosure,
    /// Reaching the API from places that should not (DNS rebinding).
    AccessBypass,
    CredentialLeak,
    InformationLeak,
    DenialOfService,
}

impl Impact {
    /// Remote code execution, arbitrary file write or memory disclosure.
    pub fn is_critical(self) -> bool {
        matches!(
            self,
            Impact::CodeExecution | Impact::FileWrite | Impact::MemoryDisclosure
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Impact::CodeExecution => "code execution",
            Impact::FileWrite => "file write",
            Impact::MemoryDisclosure => "memory disclosure",
            Impact::AccessBypass => "access bypass",
            Impact::CredentialLeak => "credential leak",
            Impact::InformationLeak => "information leak",
            Impact::DenialOfService => "denial of service",
        }
    }
}

/// Which versions are affected, as the reference states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affected {
    /// Fixed in this version: everything before it is affected.
    Below(&'static str),
    /// No fix is named; this version and everything before it are affected.
    AtOrBelow(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cve {
    pub id: &'static str,
    /// Further CVEs for the same flaw and range.
    pub related: &'static [&'static str],
    pub what: &'static str,
    pub affected: Affected,
    pub impact: Impact,
}

impl Cve {
    pub fn affects(&self, v: &Version) -> bool {
        match self.affected {
            Affected::Below(f) => Version::parse(f).is_some_and(|f| *v < f),
            Affected::AtOrBelow(f) => Version::parse(f).is_some_and(|f| *v <= f),
        }
    }

    /// The first release with the fix, when the reference names one.
    pub fn fixed_in(&self) -> Option<&'static str> {
        match self.affected {
            Affected::Below(f) => Some(f),
            Affected::AtOrBelow(_) => None,
        }
    }

    /// `id` and the related ids, comma separated.
    pub fn ids(&self) -> String {
        std::iter::once(self.id)
            .chain(self.related.iter().copied())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The release that fixes every CVE in [`CVES`]: the upgrade to recommend.
pub const LATEST_FIX: &str = "0.17.1";

pub const CVES: &[Cve] = &[
    Cve {
        id: "CVE-2024-28224",
        related: &[],
        what: "DNS rebinding gives full API access",
        affected: Affected::Below("0.1.29"),
        impact: Impact::AccessBypass,
    },
    Cve {
        id: "CVE-2024-37032",
        related: &[],
        what: "Probllama: path traversal via /api/pull, file write and RCE",
        affected: Affected::Below("0.1.34"),
        impact: Impact::CodeExecution,
    },
    Cve {
        id: "CVE-2024-39721",
        related: &[],
        what: "denial of service via /api/create",
        affected: Affected::Below("0.1.34"),
        impact: Impact::DenialOfService,
    },
    Cve {
        id: "CVE-2024-39720",
        related: &[],
        what: "out-of-bounds read via /api/create",
        affected: Affected::Below("0.1.46"),
        impact: Impact::DenialOfService,
    },
    Cve {
        id: "CVE-2024-39722",
        related: &[],
        what: "file-existence leak via /api/push",
        affected: Affected::Below("0.1.46"),
        impact: Impact::InformationLeak,
    },
    Cve {
        id: "CVE-2024-45436",
        related: &[],
        what: "zip slip in model import (arbitrary file write)",
        affected: Affected::Below("0.1.47"),
        impact: Impact::FileWrite,
    },
    Cve {
        id: "CVE-2024-39719",
        related: &[],
        what: "file-existence leak via /api/create errors",
        affected: Affected::AtOrBelow("0.3.14"),
        impact: Impact::InformationLeak,
    },
    Cve {
        id: "CVE-2024-12055",
        related: &[
            "CVE-2024-12886",
            "CVE-2025-0312",
            "CVE-2025-0315",
            "CVE-2025-0317",
        ],
        what: "GGUF/gzip parsing denial of service",
        affected: Affected::AtOrBelow("0.3.14"),
        impact: Impact::DenialOfService,
    },
    Cve {
        id: "CVE-2025-51471",
        related: &[],
        what: "registry auth token leaked to a foreign realm",
        affected: Affected::Below("0.14.3"),
        impact: Impact::CredentialLeak,
    },
    Cve {
        id: "CVE-2026-7482",
        related: &[],
        what: "Bleeding Llama: heap over-read via /api/create, exfiltrated via /api/push",
        affected: Affected::Below("0.17.1"),
        impact: Impact::MemoryDisclosure,
    },
];

/// The CVEs affecting `version`, in table order; none for unparsable versions and
/// development builds (0.0.0), about which nothing can be said.
pub fn cves_for(version: &str) -> Vec<&'static Cve> {
    match Version::parse(version) {
        Some(v) if !v.is_development() => CVES.iter().filter(|c| c.affects(&v)).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn ids(v: &str) -> Vec<&'static str> {
        cves_for(v).iter().map(|c| c.id).collect()
    }

    #[test]
    fn selection_by_version() {
        assert_eq!(ids("0.1.20").len(), CVES.len());
        assert!(ids("0.1.33").contains(&"CVE-2024-37032"));
        assert!(!ids("0.1.34").contains(&"CVE-2024-37032"));
        let t = ids("0.3.14");
        assert!(t.contains(&"CVE-2024-39719") && t.contains(&"CVE-2024-12055"));
        assert!(!t.contains(&"CVE-2024-45436"));
        assert!(!ids("0.3.15").contains(&"CVE-2024-39719"));
        assert_eq!(ids("0.14.3"), ["CVE-2026-7482"]);
        assert_eq!(ids("0.17.0"), ["CVE-2026-7482"]);
        assert!(ids(LATEST_FIX).is_empty());
        assert!(ids("0.33.0").is_empty());
        assert!(ids("0.0.0").is_empty() && ids("nope").is_empty());
        // A release candidate of the fixing release still has the flaw.
        assert_eq!(ids("0.17.1-rc0"), ["CVE-2026-7482"]);
    }

    #[test]
    fn impact_classes_and_fixes() {
        let critical: Vec<&str> = CVES
            .iter()
            .filter(|c| c.impact.is_critical())
            .map(|c| c.id)
            .collect();
        assert_eq!(
            critical,
            ["CVE-2024-37032", "CVE-2024-45436", "CVE-2026-7482"]
        );
        let latest = Version::parse(LATEST_FIX).unwrap();
        for c in CVES {
            assert!(!c.affects(&latest), "{} unfixed in {LATEST_FIX}", c.id);
            if let Some(f) = c.fixed_in() {
                assert!(Version::parse(f).is_some_and(|f| f <= latest), "{}", c.id);
            }
        }
        let gguf = CVES.iter().find(|c| c.id == "CVE-2024-12055").unwrap();
        assert_eq!(
            gguf.ids(),
            "CVE-2024-12055, CVE-2024-12886, CVE-2025-0312, CVE-2025-0315, CVE-2025-0317"
        );
        assert_eq!(gguf.fixed_in(), None);
    }
}
