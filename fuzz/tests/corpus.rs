//! Replays every fuzz corpus through its target, once per input, on a stable toolchain.
//!
//! libFuzzer with `-runs=0` executes each corpus file and exits; a crash, a failed oracle
//! assertion or a timeout fails this test. Coverage-guided runs use `cargo fuzz run NAME`.

use std::path::Path;
use std::process::Command;

const TARGETS: &[(&str, &str)] = &[
    ("audit_verify", env!("CARGO_BIN_EXE_audit_verify")),
    ("check_firewall", env!("CARGO_BIN_EXE_check_firewall")),
    ("check_manifest", env!("CARGO_BIN_EXE_check_manifest")),
    ("check_proc_net", env!("CARGO_BIN_EXE_check_proc_net")),
    (
        "check_systemd_unit",
        env!("CARGO_BIN_EXE_check_systemd_unit"),
    ),
    ("gate_auth", env!("CARGO_BIN_EXE_gate_auth")),
    (
        "gate_cert_validity",
        env!("CARGO_BIN_EXE_gate_cert_validity"),
    ),
    (
        "gate_client_identity",
        env!("CARGO_BIN_EXE_gate_client_identity"),
    ),
    ("gate_crl", env!("CARGO_BIN_EXE_gate_crl")),
    ("gate_decode", env!("CARGO_BIN_EXE_gate_decode")),
    ("gate_upstream", env!("CARGO_BIN_EXE_gate_upstream")),
    ("hunt_auditd", env!("CARGO_BIN_EXE_hunt_auditd")),
    ("hunt_gin", env!("CARGO_BIN_EXE_hunt_gin")),
    ("hunt_ndjson", env!("CARGO_BIN_EXE_hunt_ndjson")),
    ("hunt_sigma", env!("CARGO_BIN_EXE_hunt_sigma")),
    ("hunt_zeek", env!("CARGO_BIN_EXE_hunt_zeek")),
    ("policy_body", env!("CARGO_BIN_EXE_policy_body")),
    ("policy_config", env!("CARGO_BIN_EXE_policy_config")),
    ("policy_oidc", env!("CARGO_BIN_EXE_policy_oidc")),
    ("policy_multipart", env!("CARGO_BIN_EXE_policy_multipart")),
    ("policy_path", env!("CARGO_BIN_EXE_policy_path")),
    ("policy_usage", env!("CARGO_BIN_EXE_policy_usage")),
    (
        "scan_http_response",
        env!("CARGO_BIN_EXE_scan_http_response"),
    ),
    ("scan_ollama_json", env!("CARGO_BIN_EXE_scan_ollama_json")),
    ("scan_targets", env!("CARGO_BIN_EXE_scan_targets")),
    ("store_parse_key", env!("CARGO_BIN_EXE_store_parse_key")),
];

#[test]
fn every_target_has_a_corpus_and_survives_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut failures = Vec::new();
    for (name, exe) in TARGETS {
        let corpus = root.join("corpus").join(name);
        let inputs = std::fs::read_dir(&corpus)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().is_file())
                    .count()
            })
            .unwrap_or(0);
        if inputs == 0 {
            failures.push(format!("{name}: no corpus inputs in {}", corpus.display()));
            continue;
        }
        let out = Command::new(exe)
            .arg("-runs=0")
            .arg("-timeout=10")
            .arg("-rss_limit_mb=2048")
            .arg(&corpus)
            .output();
        match out {
            Ok(out) if out.status.success() => {}
            Ok(out) => failures.push(format!(
                "{name}: exit {:?}\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            )),
            Err(e) => failures.push(format!("{name}: cannot run {exe}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "fuzz corpus replay failed:\n{}",
        failures.join("\n\n")
    );
}
