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
    /// Sigma's `name`, by which a correlation rule refers to this one.
    pub name: Option<String>,
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
///
/// A Sigma correlation document (`correlation: {type: event_count, ...}`) is joined with the
/// rule it counts, found in the same text by `name` or `id`, into one rule with a
/// [`Threshold`]: it carries the correlation's title, id, level and tags, the base rule's
/// detection. The base rule is not run on its own unless the correlation says
/// `generate: true`.
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
            let mut correlations = Vec::new();
            let mut errors = Vec::new();
            for doc in &docs {
                let parsed = if doc.get("correlation").is_some() {
                    parse::correlation(doc).map(|c| correlations.push(c))
                } else {
                    parse::rule(doc, origin).map(|r| rules.push(r))
                };
                if let Err(mut e) = parsed {
                    errors.append(&mut e);
                }
            }
            let (rules, mut e) = correlate(rules, correlations);
            errors.append(&mut e);
            (rules, errors)
        }
    }
}

/// A parsed `correlation` document, before it is joined with the rule it counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Correlation {
    pub title: String,
    pub id: String,
    pub status: Option<String>,
    pub description: Option<String>,
    pub level: Option<Level>,
    pub tags: Vec<String>,
    pub falsepositives: Vec<String>,
    pub references: Vec<String>,
    /// The `name` or `id` of the rule whose events are counted.
    pub rule: String,
    pub threshold: Threshold,
    pub generate: bool,
    pub line: usize,
}

fn correlate(rules: Vec<Rule>, correlations: Vec<Correlation>) -> (Vec<Rule>, Vec<LintError>) {
    let mut errors = Vec::new();
    let mut hidden = vec![false; rules.len()];
    let mut joined = Vec::new();
    for c in correlations {
        let Some(i) = rules
            .iter()
            .position(|r| r.name.as_deref() == Some(c.rule.as_str()) || r.id == c.rule)
        else {
            errors.push(LintError {
                line: c.line,
                message: format!(
                    "correlation counts `{}`, which is no rule `name` or `id` in this file",
                    c.rule
                ),
            });
            continue;
        };
        let base = &rules[i];
        if base.threshold.is_some() {
            errors.push(LintError {
                line: c.line,
                message: format!(
                    "correlation counts `{}`, which has a `corral: threshold:` of its own",
                    c.rule
                ),
            });
            continue;
        }
        hidden[i] |= !c.generate;
        let mut r = base.clone();
        r.title = c.title;
        r.id = c.id;
        r.name = None;
        r.status = c.status.or(r.status);
        if let Some(d) = c.description {
            r.description = d;
        }
        if let Some(l) = c.level {
            r.level = l;
        }
        if !c.tags.is_empty() {
            r.tags = c.tags;
        }
        if !c.falsepositives.is_empty() {
            r.falsepositives = c.falsepositives;
        }
        if !c.references.is_empty() {
            r.references = c.references;
        }
        r.threshold = Some(c.threshold);
        r.line = c.line;
        joined.push(r);
    }
    let mut out: Vec<Rule> = rules
        .into_iter()
        .zip(hidden)
        .filter(|(_, h)| !h)
        .map(|(r, _)| r)
        .collect();
    out.extend(joined);
    (out, errors)
}
