//! SARIF 2.1.0 output, for code-scanning dashboards.

use crate::finding::{rule_description, Severity};
use crate::report::Report;
use serde_json::{json, Value};

pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's `security-severity` scale.
fn score(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

/// `file:///etc/...` for host paths, the URL itself for URLs.
fn uri(path: &str) -> String {
    if path.contains("://") {
        return path.to_string();
    }
    let mut u = String::from("file://");
    for c in path.chars() {
        match c {
            ' ' => u.push_str("%20"),
            '%' => u.push_str("%25"),
            '#' => u.push_str("%23"),
            '?' => u.push_str("%3F"),
            c => u.push(c),
        }
    }
    u
}

pub fn sarif(r: &Report) -> Value {
    let mut rule_ids: Vec<&str> = Vec::new();
    for f in &r.findings {
        if !rule_ids.contains(&f.id.as_str()) {
            rule_ids.push(&f.id);
        }
    }
    let rules: Vec<Value> = rule_ids
        .iter()
        .map(|id| {
            let worst = r
                .findings
                .iter()
                .filter(|f| f.id == *id)
                .map(|f| f.severity)
                .max()
                .unwrap_or(Severity::Info);
            json!({
                "id": id,
                "name": id,
                "shortDescription": { "text": rule_description(id) },
                "defaultConfiguration": { "level": level(worst) },
                "properties": { "security-severity": score(worst), "tags": ["security"] }
            })
        })
        .collect();
    let results: Vec<Value> = r
        .findings
        .iter()
        .map(|f| {
            let mut text = f.title.clone();
            for e in &f.evidence {
                text.push_str(&format!("\n- {}", e.detail));
            }
            if !f.remediation.is_empty() {
                text.push_str(&format!("\nFix: {}", f.remediation));
            }
            // The first located evidence is where to fix it; the rest are related.
            let mut located = f.evidence.iter().filter_map(|e| {
                let p = e.path.as_ref()?;
                let mut phys = json!({ "artifactLocation": { "uri": uri(p) } });
                if let Some(l) = e.line {
                    phys["region"] = json!({ "startLine": l });
                }
                Some(json!({ "physicalLocation": phys, "message": { "text": e.detail } }))
            });
            let locations: Vec<Value> = located.next().into_iter().collect();
            let related: Vec<Value> = located
                .enumerate()
                .map(|(i, mut l)| {
                    l["id"] = json!(i + 1);
                    l
                })
                .collect();
            let mut res = json!({
                "ruleId": f.id,
                "ruleIndex": rule_ids.iter().position(|x| *x == f.id).unwrap_or(0),
                "level": level(f.severity),
                "message": { "text": text },
                "properties": { "severity": f.severity.as_str() }
            });
            if !locations.is_empty() {
                res["locations"] = Value::Array(locations);
            }
            if !related.is_empty() {
                res["relatedLocations"] = Value::Array(related);
            }
            res
        })
        .collect();
    json!({
        "version": "2.1.0",
        "$schema": SCHEMA,
        "runs": [{
            "tool": { "driver": {
                "name": "corral-check",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/corral-dev/corral",
                "rules": rules
            }},
            "results": results
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert_eq!(uri("/etc/a b#c"), "file:///etc/a%20b%23c");
        assert_eq!(
            uri("http://127.0.0.1:1/api/version"),
            "http://127.0.0.1:1/api/version"
        );
    }
}
