//! Ollama version numbers: `0.3.14`, `v0.5.7`, `0.6.0-rc1`.

use std::cmp::Ordering;

/// A parsed version. Numeric components compare as numbers (`0.14.3 > 0.9.0`); missing
/// components count as 0 (`0.3 == 0.3.0`); a pre-release sorts before its release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub parts: Vec<u64>,
    pub pre: Option<String>,
}

impl Version {
    /// `None` for anything that is not 1 to 4 dot-separated numbers with an optional
    /// `-pre`/`+build` suffix.
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim().trim_start_matches('v');
        let (core, pre) = match s.split_once(['-', '+']) {
            Some((c, p)) => (c, Some(p.to_string())),
            None => (s, None),
        };
        let parts: Option<Vec<u64>> = core.split('.').map(|p| p.parse().ok()).collect();
        let parts = parts?;
        if parts.is_empty() || parts.len() > 4 {
            return None;
        }
        Some(Version { parts, pre })
    }

    /// Development builds report `0.0.0`: nothing can be said about their CVEs.
    pub fn is_development(&self) -> bool {
        self.parts.iter().all(|p| *p == 0)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.parts.len().max(other.parts.len());
        for i in 0..n {
            let (a, b) = (
                self.parts.get(i).copied().unwrap_or(0),
                other.parts.get(i).copied().unwrap_or(0),
            );
            match a.cmp(&b) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        match (&self.pre, &other.pre) {
            (None, None) => Ordering::Equal,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(a), Some(b)) => a.cmp(b),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn ordering_is_numeric() {
        let chain = [
            "0.1.29", "0.1.34", "0.1.46", "0.3.14", "0.9.0", "0.14.3", "0.17.1", "1.0.0",
        ];
        for w in chain.windows(2) {
            assert!(v(w[0]) < v(w[1]), "{} < {}", w[0], w[1]);
        }
        assert!(v("0.6.0-rc1") < v("0.6.0"));
        assert_eq!(v("v0.3.14"), v("0.3.14"));
        assert_eq!(v("0.3").cmp(&v("0.3.0")), Ordering::Equal);
        assert_eq!(v(" 0.5.7\n").parts, vec![0, 5, 7]);
    }

    #[test]
    fn rejects_what_is_not_a_version() {
        for s in ["", "abc", "1.x", "1.2.3.4.5", "..", "-1"] {
            assert!(Version::parse(s).is_none(), "{s:?}");
        }
        assert!(v("0.0.0").is_development());
        assert!(!v("0.0.1").is_development());
    }
}
