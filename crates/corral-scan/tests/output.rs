//! Golden files for every output format (regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p corral-scan --test output` and review the diff).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use corral_scan::findings::assess;
use corral_scan::output::{self, html};
use corral_scan::report::{Admin, Auth, Evidence, HostReport, Model, ServerKind};
use corral_scan::summary::summarise;
use corral_scan::targets::Scheme;

fn ev(req: &str, status: u16, excerpt: &str) -> Evidence {
    Evidence {
        request: req.into(),
        status,
        excerpt: excerpt.into(),
    }
}

fn hosts() -> Vec<HostReport> {
    let mut o = HostReport::new(
        "127.0.0.2".parse().unwrap(),
        11434,
        None,
        Scheme::Http,
        ServerKind::Ollama,
    );
    o.version = Some("0.17.0".into());
    o.admin = Admin::Reachable;
    o.models = vec![
        Model {
            name: "llama3.1:8b".into(),
            family: Some("llama".into()),
            parameter_size: Some("8.0B".into()),
            quantization: Some("Q4_K_M".into()),
            capabilities: vec!["completion".into(), "tools".into()],
            ..Default::default()
        },
        Model {
            name: "=cmd|' /C calc'!A0".into(),
            family: Some("<script>".into()),
            quantization: Some("Q8_0".into()),
            capabilities: vec!["vision".into()],
            ..Default::default()
        },
    ];
    o.evidence = vec![
        ("banner", ev("GET /", 200, "Ollama is running")),
        ("version", ev("GET /api/version", 200, "{\"version\":\"0.17.0\"}")),
        ("tags", ev("GET /api/tags", 200, "{\"models\":[...]}")),
        ("admin", ev("HEAD /api/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000", 404, "")),
    ];
    o.findings = assess(&o);
    let mut g = HostReport::new(
        "::1".parse().unwrap(),
        8443,
        None,
        Scheme::Https,
        ServerKind::CorralGate,
    );
    g.auth = Auth::Protected;
    g.evidence = vec![("auth", ev("GET /", 401, "{\"error\":\"unauthorized\"}"))];
    g.findings = assess(&g);
    let mut v = HostReport::new(
        "127.0.0.3".parse().unwrap(),
        8000,
        None,
        Scheme::Http,
        ServerKind::Vllm,
    );
    v.models = vec![Model {
        name: "Qwen/Qwen2.5-7B-Instruct".into(),
        ..Default::default()
    }];
    v.evidence = vec![(
        "identity",
        ev(
            "GET /v1/models",
            200,
            "{\"data\":[{\"owned_by\":\"vllm\"}]}",
        ),
    )];
    v.findings = assess(&v);
    vec![o, g, v]
}

fn golden(name: &str, got: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        got, want,
        "golden {name} differs (UPDATE_GOLDEN=1 to regenerate)"
    );
}

fn render(f: impl Fn(&mut Vec<u8>)) -> String {
    let mut buf = Vec::new();
    f(&mut buf);
    String::from_utf8(buf).unwrap()
}

#[test]
fn json_golden() {
    let h = hosts();
    let doc = output::json_document(&h, &summarise(&h, 40));
    golden(
        "scan.json",
        &(serde_json::to_string_pretty(&doc).unwrap() + "\n"),
    );
    assert_eq!(doc["hosts"][0]["findings"][0]["severity"], "critical");
    assert_eq!(doc["summary"]["unauthenticated_share"], 0.667);
}

#[test]
fn ndjson_golden() {
    let h = hosts();
    let s = render(|w| {
        for x in &h {
            output::ndjson_host(w, x).unwrap();
        }
        output::ndjson_summary(w, &summarise(&h, 40)).unwrap();
    });
    for line in s.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
    golden("scan.ndjson", &s);
}

#[test]
fn csv_golden() {
    let s = render(|w| output::csv(w, &hosts()).unwrap());
    assert!(s.starts_with(output::CSV_HEADER));
    assert!(!s.contains(",=cmd"), "formula injection defused");
    // RFC 4180 line ends: CRLF after every record, and no other line break here.
    assert_eq!(s.matches("\r\n").count(), 7, "{s:?}");
    assert!(s.ends_with("\r\n"), "{s:?}");
    assert!(!s.replace("\r\n", "").contains(['\r', '\n']), "{s:?}");
    golden("scan.csv", &s);
}

#[test]
fn sarif_golden() {
    let doc = output::sarif(&hosts());
    assert_eq!(doc["version"], "2.1.0");
    let run = &doc["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "corral-scan");
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    // GitHub code scanning wants each rule's shortDescription, fullDescription and help.
    for r in run["tool"]["driver"]["rules"].as_array().unwrap() {
        for k in ["shortDescription", "fullDescription", "help"] {
            assert!(!r[k]["text"].as_str().unwrap_or("").is_empty(), "{k}: {r}");
        }
    }
    for r in run["results"].as_array().unwrap() {
        assert!(rules.contains(&r["ruleId"].as_str().unwrap()));
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()));
        assert!(
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
                .contains("://")
        );
    }
    golden(
        "scan.sarif",
        &(serde_json::to_string_pretty(&doc).unwrap() + "\n"),
    );
}

#[test]
fn table_golden() {
    let h = hosts();
    let s = render(|w| {
        output::table_header(w).unwrap();
        for x in &h {
            output::table_row(w, x).unwrap();
        }
        output::table_summary(w, &summarise(&h, 40)).unwrap();
    });
    golden("scan.txt", &s);
}

#[test]
fn html_report_is_self_contained_and_escaped() {
    let h = hosts();
    let page = html::render(&h, &summarise(&h, 40));
    assert!(
        !page.contains("<script") && !page.contains("src=") && !page.contains("href="),
        "no external or active content"
    );
    assert!(page.contains("&lt;script&gt;"));
    assert_eq!(page.matches("<svg").count(), 6);
    assert!(page.contains("ollama-admin-exposed") || page.contains("admin routes reachable"));
    golden("scan.html", &page);
}
