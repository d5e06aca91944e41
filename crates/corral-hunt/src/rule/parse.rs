//! YAML tree → [`Rule`], collecting every error with its line.

use super::condition::{self, Cond};
use super::yaml::{Kind, Node, Scalar};
use super::{Correlation, Item, Level, LintError, Mods, Op, ReFlags, Rule, Selection, Threshold};
use crate::ip::Net;

const KNOWN_KEYS: &[&str] = &[
    "title",
    "id",
    "name",
    "status",
    "description",
    "references",
    "author",
    "date",
    "modified",
    "tags",
    "logsource",
    "detection",
    "falsepositives",
    "level",
    "fields",
    "related",
    "license",
    "corral",
];

/// Keys of a Sigma correlation document.
const CORRELATION_KEYS: &[&str] = &[
    "title",
    "id",
    "name",
    "status",
    "description",
    "references",
    "author",
    "date",
    "modified",
    "tags",
    "falsepositives",
    "level",
    "license",
    "correlation",
];

/// A document's top-level keys checked against `known`: `Err` when the document is not a
/// mapping at all, otherwise the errors for keys that are unknown (`where_` ends their message)
/// or not strings, to which the caller adds its own.
fn top_level_keys(
    doc: &Node,
    known: &[&str],
    where_: &str,
) -> Result<Vec<LintError>, Vec<LintError>> {
    let Kind::Map(pairs) = &doc.kind else {
        return Err(vec![LintError {
            line: doc.line,
            message: "a rule must be a YAML mapping".into(),
        }]);
    };
    let mut errs = Vec::new();
    for (k, _) in pairs {
        let message = match k.as_str() {
            Some(key) if known.contains(&key) => continue,
            Some(key) => format!("unknown top-level key `{key}`{where_}"),
            None => "keys must be strings".into(),
        };
        errs.push(LintError {
            line: k.line,
            message,
        });
    }
    Ok(errs)
}

pub fn rule(doc: &Node, origin: &str) -> Result<Rule, Vec<LintError>> {
    let mut errs = top_level_keys(doc, KNOWN_KEYS, "")?;
    let mut err = |line: usize, message: String| errs.push(LintError { line, message });
    let text = |key: &str, err: &mut dyn FnMut(usize, String)| -> Option<String> {
        let n = doc.get(key)?;
        match &n.kind {
            Kind::Scalar(Scalar::Str(s)) => Some(s.clone()),
            Kind::Scalar(s) => Some(s.text()),
            _ => {
                err(n.line, format!("`{key}` must be a string"));
                None
            }
        }
    };
    let title = text("title", &mut err);
    if title.as_deref().is_none_or(str::is_empty) {
        err(doc.line, "missing `title`".into());
    }
    let id = text("id", &mut err);
    if id.as_deref().is_none_or(str::is_empty) {
        err(doc.line, "missing `id`".into());
    }
    let status = text("status", &mut err);
    let description = text("description", &mut err).unwrap_or_default();
    let level = match doc.get("level") {
        None => Level::Medium,
        Some(n) => match n.as_str().and_then(Level::parse) {
            Some(l) => l,
            None => {
                err(
                    n.line,
                    "`level` must be informational, low, medium, high or critical".into(),
                );
                Level::Medium
            }
        },
    };
    let tags = string_list(doc.get("tags"), "tags", &mut err);
    let falsepositives = string_list(doc.get("falsepositives"), "falsepositives", &mut err);
    let references = string_list(doc.get("references"), "references", &mut err);
    let mut logsource = Vec::new();
    match doc.get("logsource").map(|n| (&n.kind, n.line)) {
        Some((Kind::Map(m), _)) => {
            for (k, v) in m {
                if let (Some(k), Some(v)) = (k.as_str(), v.scalar_text()) {
                    logsource.push((k.to_string(), v));
                }
            }
        }
        Some((_, line)) => err(line, "`logsource` must be a mapping".into()),
        None => {}
    }
    let threshold = doc.get("corral").and_then(|c| corral_ext(c, &mut err));
    let detection = doc.get("detection");
    let mut selections = Vec::new();
    let mut condition_text = String::new();
    let mut condition = None;
    match detection.map(|d| (&d.kind, d.line)) {
        None => err(doc.line, "missing `detection`".into()),
        Some((Kind::Map(m), dline)) => {
            for (k, v) in m {
                match k.as_str() {
                    Some("condition") => match condition_of(v) {
                        Ok((t, c)) => {
                            condition_text = t;
                            condition = Some((c, v.line));
                        }
                        Err(e) => err(v.line, e),
                    },
                    Some("timeframe") => err(
                        k.line,
                        "`timeframe` is not supported; use `corral: threshold: timespan:`".into(),
                    ),
                    Some(name) => {
                        if let Some(s) = selection(name, v, &mut err) {
                            selections.push(s);
                        }
                    }
                    None => err(k.line, "selection names must be strings".into()),
                }
            }
            if condition.is_none() {
                err(dline, "`detection` has no `condition`".into());
            }
        }
        Some((_, line)) => err(line, "`detection` must be a mapping".into()),
    }
    if let Some((c, line)) = &condition {
        check_refs(c, &selections, *line, &mut err);
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let (Some(title), Some(id), Some((condition, _))) = (title, id, condition) else {
        return Err(vec![LintError {
            line: doc.line,
            message: "incomplete rule".into(),
        }]);
    };
    let name = doc.get("name").and_then(Node::scalar_text);
    Ok(Rule {
        title,
        id,
        name,
        status,
        description,
        level,
        tags,
        falsepositives,
        references,
        logsource,
        selections,
        condition,
        condition_text,
        threshold,
        origin: origin.to_string(),
        line: doc.line,
    })
}

/// A Sigma correlation document of type `event_count`: `rules` (one), `group-by` (one field),
/// `timespan`, `condition` (`gt` or `gte`), `generate`.
pub fn correlation(doc: &Node) -> Result<Correlation, Vec<LintError>> {
    let mut errs = top_level_keys(doc, CORRELATION_KEYS, " in a correlation")?;
    let mut err = |line: usize, message: String| errs.push(LintError { line, message });
    let text = |key: &str| doc.get(key).and_then(Node::scalar_text);
    let title = text("title").filter(|t| !t.is_empty());
    if title.is_none() {
        err(doc.line, "missing `title`".into());
    }
    let id = text("id").filter(|t| !t.is_empty());
    if id.is_none() {
        err(doc.line, "missing `id`".into());
    }
    let level = match doc.get("level") {
        None => None,
        Some(n) => {
            let l = n.as_str().and_then(Level::parse);
            if l.is_none() {
                err(
                    n.line,
                    "`level` must be informational, low, medium, high or critical".into(),
                );
            }
            l
        }
    };
    let tags = string_list(doc.get("tags"), "tags", &mut err);
    let falsepositives = string_list(doc.get("falsepositives"), "falsepositives", &mut err);
    let references = string_list(doc.get("references"), "references", &mut err);
    let Some(c) = doc.get("correlation") else {
        return Err(errs);
    };
    if !matches!(c.kind, Kind::Map(_)) {
        err(c.line, "`correlation` must be a mapping".into());
        return Err(errs);
    }
    if let Kind::Map(m) = &c.kind {
        for (k, _) in m {
            let known = [
                "type",
                "rules",
                "group-by",
                "timespan",
                "condition",
                "generate",
            ];
            if !k.as_str().is_some_and(|k| known.contains(&k)) {
                err(
                    k.line,
                    format!(
                        "unknown `correlation` key `{}`",
                        k.scalar_text().unwrap_or_default()
                    ),
                );
            }
        }
    }
    match c.get("type").and_then(Node::as_str) {
        Some("event_count") => {}
        Some(other) => err(
            c.line,
            format!("correlation type `{other}` is not supported (only event_count)"),
        ),
        None => err(c.line, "`correlation` needs `type: event_count`".into()),
    }
    let one = |key: &str, err: &mut dyn FnMut(usize, String)| -> Option<String> {
        let list = string_list(c.get(key), key, err);
        if list.len() != 1 {
            err(
                c.get(key).map_or(c.line, |n| n.line),
                format!("`correlation` needs exactly one entry in `{key}` (hunt counts one rule by one field)"),
            );
        }
        list.into_iter().next()
    };
    let rule = one("rules", &mut err);
    let group_by = one("group-by", &mut err);
    let timespan = c
        .get("timespan")
        .and_then(Node::scalar_text)
        .and_then(|t| parse_span(&t));
    if timespan.is_none() {
        err(
            c.line,
            "`correlation` needs `timespan` like 300s, 5m or 1h".into(),
        );
    }
    let int = |n: &Node| match n.kind {
        Kind::Scalar(Scalar::Int(i)) if i >= 0 => Some(i as u64),
        _ => None,
    };
    let cond = c.get("condition");
    let gt = match (
        cond.and_then(|n| n.get("gt")),
        cond.and_then(|n| n.get("gte")),
    ) {
        (Some(n), None) => int(n),
        // `gte: N` is `gt: N-1`; `gte: 0` would count every group, even without events.
        (None, Some(n)) => int(n).filter(|v| *v > 0).map(|v| v - 1),
        _ => None,
    };
    if gt.is_none() {
        err(
            cond.map_or(c.line, |n| n.line),
            "`correlation` needs `condition` with `gt: N` or `gte: N` (a positive integer)".into(),
        );
    }
    let generate = match c.get("generate").map(|n| &n.kind) {
        None => false,
        Some(Kind::Scalar(Scalar::Bool(b))) => *b,
        Some(_) => {
            err(c.line, "`generate` must be true or false".into());
            false
        }
    };
    match (title, id, rule, group_by, timespan, gt) {
        (Some(title), Some(id), Some(rule), Some(group_by), Some(timespan_ms), Some(gt))
            if errs.is_empty() =>
        {
            Ok(Correlation {
                title,
                id,
                status: text("status"),
                description: text("description"),
                level,
                tags,
                falsepositives,
                references,
                rule,
                threshold: Threshold {
                    group_by,
                    timespan_ms,
                    gt,
                },
                generate,
                line: doc.line,
            })
        }
        _ => Err(errs),
    }
}

fn string_list(n: Option<&Node>, key: &str, err: &mut dyn FnMut(usize, String)) -> Vec<String> {
    let Some(n) = n else { return Vec::new() };
    match &n.kind {
        Kind::Seq(items) => items
            .iter()
            .filter_map(|i| {
                let t = i.scalar_text();
                if t.is_none() {
                    err(i.line, format!("`{key}` entries must be strings"));
                }
                t
            })
            .collect(),
        Kind::Scalar(s) => vec![s.text()],
        Kind::Map(_) => {
            err(n.line, format!("`{key}` must be a list"));
            Vec::new()
        }
    }
}

fn condition_of(v: &Node) -> Result<(String, Cond), String> {
    match &v.kind {
        Kind::Scalar(Scalar::Str(s)) => Ok((s.clone(), condition::parse(s)?)),
        Kind::Seq(items) => {
            let mut texts = Vec::new();
            let mut conds = Vec::new();
            for i in items {
                let s = i.as_str().ok_or("condition list entries must be strings")?;
                conds.push(condition::parse(s)?);
                texts.push(format!("({s})"));
            }
            Ok((texts.join(" or "), Cond::Or(conds)))
        }
        _ => Err("`condition` must be a string".into()),
    }
}

fn check_refs(c: &Cond, sels: &[Selection], line: usize, err: &mut dyn FnMut(usize, String)) {
    match c {
        Cond::Sel(name) => {
            if !sels.iter().any(|s| &s.name == name) {
                err(
                    line,
                    format!("condition names `{name}`, which is not a selection"),
                );
            }
        }
        Cond::Not(x) => check_refs(x, sels, line, err),
        Cond::And(xs) | Cond::Or(xs) => xs.iter().for_each(|x| check_refs(x, sels, line, err)),
        Cond::Of { pattern, .. } => {
            if !sels
                .iter()
                .any(|s| condition::pattern_matches(pattern, &s.name))
            {
                err(line, format!("`{pattern}` matches no selection"));
            }
        }
    }
}

fn selection(name: &str, v: &Node, err: &mut dyn FnMut(usize, String)) -> Option<Selection> {
    let alternatives = match &v.kind {
        Kind::Map(m) => vec![items(m, err)],
        Kind::Seq(alts) => {
            let mut out = Vec::new();
            for a in alts {
                match &a.kind {
                    Kind::Map(m) => out.push(items(m, err)),
                    _ => {
                        err(a.line, format!("selection `{name}`: keyword lists are not supported; use `field|contains:`"));
                        break;
                    }
                }
            }
            out
        }
        Kind::Scalar(_) => {
            err(
                v.line,
                format!("selection `{name}` must be a mapping or a list of mappings"),
            );
            return None;
        }
    };
    Some(Selection {
        name: name.to_string(),
        alternatives,
        line: v.line,
    })
}

/// The items of one alternative; bad items are reported and left out (the rule then fails
/// as a whole, but its other errors are still found).
fn items(m: &[(Node, Node)], err: &mut dyn FnMut(usize, String)) -> Vec<Item> {
    let mut out = Vec::new();
    for (k, v) in m {
        let Some(key) = k.as_str() else {
            err(k.line, "field names must be strings".into());
            continue;
        };
        match item(key, v, k.line) {
            Ok(i) => out.push(i),
            Err(e) => err(k.line, e),
        }
    }
    out
}

fn item(key: &str, v: &Node, line: usize) -> Result<Item, String> {
    let mut parts = key.split('|');
    let field = parts.next().unwrap_or_default().trim();
    if field.is_empty() {
        return Err(format!("`{key}`: empty field name"));
    }
    let mut mods = Mods {
        op: Op::Eq,
        all: false,
        cased: false,
        re: ReFlags::default(),
    };
    for m in parts {
        let flag = match m {
            "i" | "ignorecase" => Some(&mut mods.re.i),
            "m" | "multiline" => Some(&mut mods.re.m),
            "s" | "dotall" => Some(&mut mods.re.s),
            _ => None,
        };
        if let Some(flag) = flag {
            if mods.op != Op::Re {
                return Err(format!(
                    "`{key}`: `{m}` is a flag of `re` and must follow it"
                ));
            }
            *flag = true;
            continue;
        }
        let op = match m {
            "contains" => Op::Contains,
            "startswith" => Op::StartsWith,
            "endswith" => Op::EndsWith,
            "cidr" => Op::Cidr,
            "re" => Op::Re,
            "exists" => Op::Exists,
            "all" => {
                mods.all = true;
                continue;
            }
            "cased" => {
                mods.cased = true;
                continue;
            }
            other => return Err(format!("`{key}`: unsupported modifier `{other}`")),
        };
        if mods.op != Op::Eq {
            return Err(format!("`{key}`: more than one value modifier"));
        }
        mods.op = op;
    }
    let values: Vec<Scalar> = match &v.kind {
        Kind::Scalar(s) => vec![s.clone()],
        Kind::Seq(xs) => {
            let mut out = Vec::new();
            for x in xs {
                match &x.kind {
                    Kind::Scalar(s) => out.push(s.clone()),
                    _ => return Err(format!("`{key}`: list values must be scalars")),
                }
            }
            out
        }
        Kind::Map(_) => return Err(format!("`{key}`: a value cannot be a mapping")),
    };
    if values.is_empty() {
        return Err(format!("`{key}`: empty value list"));
    }
    for val in &values {
        check_value(key, mods.op, val)?;
    }
    Ok(Item {
        field: field.to_string(),
        mods,
        values,
        line,
    })
}

fn check_value(key: &str, op: Op, v: &Scalar) -> Result<(), String> {
    match op {
        Op::Cidr => match v {
            Scalar::Str(s) if Net::parse(s).is_some() => Ok(()),
            _ => Err(format!("`{key}`: `{}` is not a CIDR network", v.text())),
        },
        Op::Re => match v {
            Scalar::Str(s) => regex::Regex::new(s)
                .map(|_| ())
                .map_err(|e| format!("`{key}`: bad regular expression: {e}")),
            _ => Err(format!("`{key}`: a regular expression must be a string")),
        },
        Op::Exists => match v {
            Scalar::Bool(_) => Ok(()),
            _ => Err(format!("`{key}`: `exists` takes true or false")),
        },
        Op::Contains | Op::StartsWith | Op::EndsWith if *v == Scalar::Null => Err(format!(
            "`{key}`: null cannot be combined with a string modifier"
        )),
        _ => Ok(()),
    }
}

fn corral_ext(c: &Node, err: &mut dyn FnMut(usize, String)) -> Option<Threshold> {
    let Kind::Map(m) = &c.kind else {
        err(c.line, "`corral` must be a mapping".into());
        return None;
    };
    let mut out = None;
    for (k, v) in m {
        match k.as_str() {
            Some("threshold") => out = threshold(v, err),
            _ => err(
                k.line,
                format!(
                    "unknown `corral` key `{}`",
                    k.scalar_text().unwrap_or_default()
                ),
            ),
        }
    }
    out
}

fn threshold(v: &Node, err: &mut dyn FnMut(usize, String)) -> Option<Threshold> {
    let group_by = v.get("group-by").and_then(Node::as_str).map(str::to_string);
    let timespan = v
        .get("timespan")
        .and_then(Node::scalar_text)
        .and_then(|t| parse_span(&t));
    let gt = match v.get("gt").map(|n| &n.kind) {
        Some(Kind::Scalar(Scalar::Int(i))) if *i >= 0 => Some(*i as u64),
        _ => None,
    };
    if group_by.is_none() {
        err(v.line, "`threshold` needs `group-by: FIELD`".into());
    }
    if timespan.is_none() {
        err(
            v.line,
            "`threshold` needs `timespan` like 300s, 5m or 1h".into(),
        );
    }
    if gt.is_none() {
        err(
            v.line,
            "`threshold` needs `gt: N` (a non-negative integer)".into(),
        );
    }
    Some(Threshold {
        group_by: group_by?,
        timespan_ms: timespan?,
        gt: gt?,
    })
}

/// `30s`, `5m`, `1h`, `1d` → milliseconds.
pub fn parse_span(s: &str) -> Option<i64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = num.parse().ok()?;
    let mult = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    (n > 0).then(|| n.checked_mul(mult)).flatten()
}

#[cfg(test)]
mod tests;
