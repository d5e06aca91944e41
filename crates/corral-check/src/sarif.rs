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

/// `file:///etc/...` for host paths, the URL itself for URLs. A host path is percent-encoded
/// into an RFC 3986 URI: every byte but unreserved characters, sub-delimiters, `:`, `@` and `/`.
fn uri(path: &str) -> String {
    if path.contains("://") {
        return path.to_string();
    }
    let mut u = String::from("file://");
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            u.push(char::from(b));
        } else {
            u.push_str(&format!("%{b:02X}"));
        }
    }
    u
}

/// Where a finding about the host as a whole (no evidence names a file) is shown: GitHub code
/// scanning takes no result without a location.
fn host_location() -> Value {
    json!({
        "physicalLocation": { "artifactLocation": { "uri": "file:///" } },
        "message": { "text": "this host" }
    })
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
            // The first finding's remediation is the rule's help, as in `corral scan`'s SARIF.
            let help = r
                .findings
                .iter()
                .find(|f| f.id == *id && !f.remediation.is_empty())
                .map_or(rule_description(id), |f| f.remediation.as_str());
            json!({
                "id": id,
                "name": id,
                "shortDescription": { "text": rule_description(id) },
                "fullDescription": { "text": rule_description(id) },
                "help": { "text": help },
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
            let locations = vec![located.next().unwrap_or_else(host_location)];
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
            res["locations"] = Value::Array(locations);
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
        // An RFC 3986 URI reference has no `<`, `>`, `"`, `\\`, controls or raw non-ASCII.
        assert_eq!(
            uri("/etc/my <over\"ride>\\ü.conf"),
            "file:///etc/my%20%3Cover%22ride%3E%5C%C3%BC.conf"
        );
        assert_eq!(uri("/a/b-c_d.e~f/x@y:1"), "file:///a/b-c_d.e~f/x@y:1");
        assert_eq!(
            uri("http://127.0.0.1:1/api/version"),
            "http://127.0.0.1:1/api/version"
        );
    }
}
