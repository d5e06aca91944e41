//! Rules: a documented subset of Sigma (see `docs/rules.md` in this crate), parsed from
//! YAML with line numbers kept for `corral rules lint`.

pub mod condition;
pub mod matcher;
pub mod parse;
pub mod prefilter;
pub mod value;
pub mod yaml;

use condition::Cond;
use yaml::Scalar;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "informational" => Level::Informational,
            "low" => Level::Low,
            "medium" => Level::Medium,
            "high" => Level::High,
            "critical" => Level::Critical,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }

    /// ECS `event.severity` / Elastic risk score for the level.
    pub fn score(self) -> u8 {
        match self {
            Level::Informational => 0,
            Level::Low => 21,
            Level::Medium => 47,
            Level::High => 73,
            Level::Critical => 99,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Contains,
    StartsWith,
    EndsWith,
    Cidr,
    Re,
    Exists,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mods {
    pub op: Op,
    pub all: bool,
    pub cased: bool,
    /// Flags of a `re` value (`|re|i`, `|re|m`, `|re|s`): a regular expression is
    /// case-sensitive unless `i`, as in Sigma.
    pub re: ReFlags,
}

/// Sigma's regular-expression flag modifiers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReFlags {
    /// `i` / `ignorecase`: case-insensitive.
    pub i: bool,
    /// `m` / `multiline`: `^` and `$` match at line ends.
    pub m: bool,
    /// `s` / `dotall`: `.` matches a newline.
    pub s: bool,
}

impl ReFlags {
    /// The inline flag group that sets these flags (`(?is)`), or "".
    pub fn inline(self) -> String {
        let f: String = [(self.i, 'i'), (self.m, 'm'), (self.s, 's')]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, c)| *c)
            .collect();
        if f.is_empty() {
            f
        } else {
            format!("(?{f})")
        }
    }
}

/// `field|mods: values` — values OR'ed (AND'ed with `|all`).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub field: String,
    pub mods: Mods,
    pub values: Vec<Scalar>,
    pub line: usize,
}

/// A named selection: alternatives OR'ed, the items of one alternative AND'ed.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub name: String,
    pub alternatives: Vec<Vec<Item>>,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub group_by: String,
    pub timespan_ms: i64,
    /// Alert when a group has more than this many matching events in one window.
    pub gt: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub title: String,
    pub id: String,
    pub status: Option<String>,
    pub description: String,
    pub level: Level,
    pub tags: Vec<String>,
    pub falsepositives: Vec<String>,
    pub references: Vec<String>,
    pub logsource: Vec<(String, String)>,
    pub selections: Vec<Selection>,
    pub condition: Cond,
    pub condition_text: String,
    pub threshold: Option<Threshold>,
    /// Where the rule came from (file path or `builtin`), and its first line there.
    pub origin: String,
    pub line: usize,
}

/// A rule error with the 1-based line it refers to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LintError {
    pub line: usize,
    pub message: String,
}

/// Parses every rule document of a YAML text. Returns the rules that parsed and the errors
/// of those that did not.
pub fn parse_rules(text: &str, origin: &str) -> (Vec<Rule>, Vec<LintError>) {
    match yaml::load(text) {
        Err(e) => (
            Vec::new(),
            vec![LintError {
                line: e.line,
                message: format!("YAML: {}", e.message),
            }],
        ),
        Ok(docs) => {
            let mut rules = Vec::new();
            let mut errors = Vec::new();
            for doc in &docs {
                match parse::rule(doc, origin) {
                    Ok(r) => rules.push(r),
                    Err(mut e) => errors.append(&mut e),
                }
            }
            (rules, errors)
        }
    }
}
