//! `corral scan` as the binary runs it: flags parsed by clap, `main` owning its runtime.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mock;

use clap::Parser;
use corral_scan::cli::main_with_argv;
use corral_scan::ScanArgs;
use mock::{spawn, Kind};

#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    args: ScanArgs,
}

fn args<'a>(v: &[&'a str]) -> Vec<&'a str> {
    v.to_vec()
}

/// Parses like the binary does and runs the command with the same raw arguments.
fn scan_main(v: Vec<&str>) -> i32 {
    let argv: Vec<String> = std::iter::once("corral")
        .chain(std::iter::once("scan"))
        .chain(v.iter().copied())
        .map(String::from)
        .collect();
    let parsed = Cli::try_parse_from(argv.iter().skip(1)).unwrap().args;
    main_with_argv(parsed, &argv)
}

fn mocks(base: &str) -> (tokio::runtime::Runtime, Vec<mock::Mock>, u16) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (ms, port) = rt.block_on(async {
        let a = spawn(
            &format!("{base}.1"),
            0,
            Kind::Ollama {
                version: "0.6.0",
                caps: false,
            },
        )
        .await;
        let port = a.addr.port();
        let b = spawn(&format!("{base}.2"), port, Kind::CorralGate).await;
        let c = spawn(&format!("{base}.3"), port, Kind::OpenWebui).await;
        (vec![a, b, c], port)
    });
    (rt, ms, port)
}

#[test]
fn json_output_file_and_html_report() {
    let (_rt, ms, port) = mocks("127.0.4");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("findings.json");
    let report = dir.path().join("exposure.html");
    let code = scan_main(args(&[
        "127.0.4.0/29",
        "-p",
        &port.to_string(),
        "--exclude",
        "127.0.4.3",
        "--format",
        "json",
        "-o",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--timeout",
        "1s",
        "--concurrency",
        "4",
    ]));
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let hosts = doc["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2, "{doc:#}");
    assert_eq!(hosts[0]["server"], "ollama");
    assert_eq!(hosts[0]["findings"][0]["severity"], "critical");
    assert_eq!(hosts[1]["server"], "corral-gate");
    assert_eq!(doc["summary"]["endpoints_scanned"], 7);
    assert!(
        ms[2].requests().is_empty(),
        "excluded address was contacted"
    );
    let page = std::fs::read_to_string(&report).unwrap();
    assert!(
        page.starts_with("<!DOCTYPE html>") && page.contains("<svg") && !page.contains("<script")
    );
    for m in &ms {
        for (method, path) in m.requests() {
            assert!(!mock::forbidden(&method, &path), "{method} {path}");
        }
    }
}

#[test]
fn masscan_input_file_and_sarif() {
    let (_rt, _ms, port) = mocks("127.0.5");
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("masscan.txt");
    std::fs::write(
        &list,
        format!("#masscan\nopen tcp {port} 127.0.5.1 1\nopen tcp {port} 127.0.5.3 1\n# end\n"),
    )
    .unwrap();
    let out = dir.path().join("out.sarif");
    let code = scan_main(args(&[
        "--from",
        "masscan",
        "-iL",
        list.to_str().unwrap(),
        "--format",
        "sarif",
        "-o",
        out.to_str().unwrap(),
        "--timeout",
        "1s",
    ]));
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(doc["version"], "2.1.0");
    let ids: Vec<&str> = doc["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ruleId"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"ollama-admin-exposed") && ids.contains(&"open-webui-open-signup"),
        "{ids:?}"
    );
}

#[test]
fn large_scans_need_yes_and_bad_targets_fail_before_scanning() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.json");
    // 127.0.0.0/15 is 131,072 addresses: refused before a single connection.
    let t = std::time::Instant::now();
    assert_eq!(
        scan_main(args(&["127.0.0.0/15", "-o", out.to_str().unwrap()])),
        2
    );
    assert!(t.elapsed() < std::time::Duration::from_secs(2));
    assert!(!out.exists(), "nothing written for a refused scan");
    assert_eq!(scan_main(args(&["127.0.0.300"])), 2);
    assert_eq!(scan_main(args(&["127.0.0.1", "--shard", "3/2"])), 2);
    assert_eq!(scan_main(args(&[])), 2);
}
