//! A self-contained HTML report: inline CSS and SVG only, no scripts, fonts or remote assets,
//! so it can be mailed around and opened offline. Everything from a scanned server is escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::report::HostReport;
use crate::summary::Summary;

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A horizontal bar chart of the largest entries.
fn bar_chart(title: &str, data: &BTreeMap<String, usize>) -> String {
    let mut v: Vec<_> = data.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.truncate(12);
    let max = v.first().map(|(_, n)| **n).unwrap_or(1).max(1);
    let row = 22;
    let height = (v.len().max(1) * row + 10) as u32;
    let mut svg = format!(
        "<figure><figcaption>{}</figcaption><svg role=\"img\" aria-label=\"{}\" width=\"460\" height=\"{height}\">",
        escape(title),
        escape(title)
    );
    if v.is_empty() {
        svg.push_str("<text x=\"4\" y=\"16\">no data</text>");
    }
    for (i, (label, n)) in v.iter().enumerate() {
        let y = i * row + 4;
        let w = (**n as f64 / max as f64 * 250.0).round().max(1.0);
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\" class=\"l\">{}</text><rect x=\"160\" y=\"{y}\" width=\"{w}\" height=\"16\" class=\"b\"/><text x=\"{}\" y=\"{}\">{n}</text>",
            y + 13,
            escape(&label.chars().take(24).collect::<String>()),
            165.0 + w,
            y + 13
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

pub fn render(hosts: &[HostReport], s: &Summary) -> String {
    let mut out = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>corral scan report</title>\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
<style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;width:100%}\
td,th{border:1px solid #ccc;padding:4px 6px;text-align:left;font-size:14px;vertical-align:top}td code{overflow-wrap:anywhere}\
.critical{background:#fdd}.high{background:#fed}.medium{background:#ffc}.info{background:#eef}\
figure{display:inline-block;margin:0 2em 1em 0}figcaption{font-weight:bold}.b{fill:#4a78c2}.l{font-size:12px}\
dl{display:grid;grid-template-columns:max-content auto;gap:2px 1em}</style></head><body>",
    );
    let _ = write!(
        out,
        "<h1>corral scan report</h1><p>{}</p><h2>Summary</h2><dl>",
        escape(crate::USER_AGENT)
    );
    let pct = |x: f64| format!("{:.1}%", x * 100.0);
    for (k, v) in [
        ("Endpoints scanned", s.endpoints_scanned.to_string()),
        ("Hosts found", s.hosts_found.to_string()),
        (
            "Unauthenticated",
            format!("{} ({})", s.unauthenticated, pct(s.unauthenticated_share)),
        ),
        (
            "With tool-capable models",
            format!("{} ({})", s.with_tools, pct(s.with_tools_share)),
        ),
        (
            "With vision models",
            format!("{} ({})", s.with_vision, pct(s.with_vision_share)),
        ),
        ("Models listed", s.models_total.to_string()),
    ] {
        let _ = write!(
            out,
            "<dt>{k}</dt><dd id=\"{}\">{}</dd>",
            k.to_lowercase().replace(' ', "-"),
            escape(&v)
        );
    }
    out.push_str("</dl><h2>Distributions</h2>");
    for (title, data) in [
        ("Servers", &s.servers),
        ("Severity", &s.severities),
        ("Quantization", &s.quantization),
        ("Model families", &s.families),
        ("Ollama versions", &s.versions),
        ("Vulnerable versions (hosts per CVE)", &s.vulnerable),
    ] {
        out.push_str(&bar_chart(title, data));
    }
    out.push_str("<h2>Findings</h2><table id=\"findings\"><thead><tr><th>Severity</th><th>Endpoint</th><th>Server</th><th>Finding</th><th>Evidence</th><th>Fix</th></tr></thead><tbody>");
    for h in hosts {
        for f in &h.findings {
            let ev: Vec<String> = f
                .evidence
                .iter()
                .map(|e| {
                    format!(
                        "<code>{} → {}</code> {}",
                        escape(&e.request),
                        e.status,
                        escape(&e.excerpt)
                    )
                })
                .collect();
            let _ = write!(
                out,
                "<tr class=\"{sev}\"><td>{sev}</td><td>{}</td><td>{} {}</td><td><b>{}</b><br>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&h.endpoint()),
                escape(h.server.label()),
                escape(h.version.as_deref().unwrap_or("")),
                escape(&f.title),
                escape(&f.detail),
                ev.join("<br>"),
                escape(f.remediation),
                sev = f.severity.as_str(),
            );
        }
    }
    out.push_str("</tbody></table></body></html>\n");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn escapes_hostile_text_and_loads_nothing_external() {
        assert_eq!(escape("<script>\"'&"), "&lt;script&gt;&quot;&#39;&amp;");
        let mut m = BTreeMap::new();
        m.insert("<img src=x>".to_string(), 3usize);
        let chart = bar_chart("t", &m);
        assert!(chart.contains("&lt;img") && !chart.contains("<img"));
        let html = render(&[], &Summary::default());
        assert!(
            !html.contains("<script") && !html.contains("http://") && !html.contains("@import")
        );
        assert!(html.contains("no data"));
    }
}
