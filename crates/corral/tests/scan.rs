//! `corral scan` through the real binary against the shared mock Ollama on 127.0.7.x:
//! severity of an open Ollama, targets on stdin (plain and masscan), and what reaches stderr.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use assert_cmd::Command;
use corral_testsupport::MockOllama;
use serde_json::Value;

/// Routes `corral scan` must never send (inference, model changes, account calls).
fn forbidden(method: &str, path: &str) -> bool {
    matches!(
        path,
        "/api/generate"
            | "/api/chat"
            | "/api/embed"
            | "/api/embeddings"
            | "/api/pull"
            | "/api/push"
            | "/api/create"
            | "/api/copy"
            | "/api/delete"
            | "/api/me"
            | "/api/signout"
            | "/v1/chat/completions"
            | "/v1/completions"
            | "/v1/embeddings"
    ) || (path.starts_with("/api/blobs/") && method != "HEAD")
        || path.starts_with("/api/experimental/")
        || method == "DELETE"
}

struct Mocks {
    rt: tokio::runtime::Runtime,
    mocks: Vec<MockOllama>,
    port: u16,
}

/// One mock Ollama on each of `ips`, all on the same free port.
fn mocks(ips: &[&str]) -> Mocks {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (mocks, port) = rt.block_on(async {
        let mut out = Vec::new();
        let mut port = 0;
        for ip in ips {
            let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
            assert!(addr.ip().is_loopback());
            let m = MockOllama::builder().listen(addr).start().await.unwrap();
            port = m.addr().port();
            out.push(m);
        }
        (out, port)
    });
    Mocks { rt, mocks, port }
}

impl Mocks {
    fn assert_read_only(&self) {
        for m in &self.mocks {
            let seen = m.requests();
            assert!(!seen.is_empty(), "{} was not probed", m.addr());
            for r in seen {
                assert!(
                    !forbidden(&r.method, &r.path),
                    "scanner sent {} {}",
                    r.method,
                    r.path
                );
            }
        }
    }
}

impl Drop for Mocks {
    fn drop(&mut self) {
        for m in &self.mocks {
            m.shutdown();
        }
        let _ = &self.rt;
    }
}

fn corral() -> Command {
    let mut cmd = Command::cargo_bin("corral").unwrap();
    cmd.env_remove("CORRAL_CONFIG")
        .timeout(Duration::from_secs(60));
    cmd
}

fn ndjson(stdout: &[u8]) -> (Vec<Value>, Value) {
    let mut hosts = Vec::new();
    let mut summary = Value::Null;
    for line in String::from_utf8(stdout.to_vec()).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if let Some(s) = v.get("summary") {
            summary = s.clone();
        } else {
            hosts.push(v);
        }
    }
    (hosts, summary)
}

fn rules(host: &Value) -> Vec<(String, String)> {
    host["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Issue 3: an unauthenticated Ollama with admin routes reachable is critical. The mock
/// answers the blob probe as Ollama does (404 for an absent blob).
#[test]
fn issue_3_open_mock_ollama_with_admin_routes_is_critical() {
    let m = mocks(&["127.0.7.1"]);
    let out = corral()
        .args(["scan", &format!("127.0.7.1:{}", m.port), "--format", "json"])
        .args(["--timeout", "2s"])
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(
        out.stderr.is_empty(),
        "stderr is not a TTY, so nothing is drawn: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let host = &doc["hosts"][0];
    assert_eq!(host["server"], "ollama");
    assert_eq!(host["admin"], "reachable");
    let rules = rules(host);
    assert_eq!(
        rules.first(),
        Some(&("ollama-admin-exposed".to_string(), "critical".to_string())),
        "{rules:?}"
    );
    assert_eq!(doc["summary"]["severities"]["critical"], 1);
    let blob_probe = m.mocks[0]
        .requests()
        .into_iter()
        .find(|r| r.path.starts_with("/api/blobs/"))
        .expect("the admin probe was sent");
    assert_eq!(blob_probe.method, "HEAD");
    m.assert_read_only();
}

#[test]
fn plain_target_list_on_stdin() {
    let m = mocks(&["127.0.7.2", "127.0.7.3"]);
    let input = "# hosts to check\n127.0.7.2\n\n127.0.7.3\n127.0.7.4\n";
    let out = corral()
        .args(["scan", "-", "-p", &m.port.to_string(), "--format", "ndjson"])
        .args(["--timeout", "2s"])
        .write_stdin(input)
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(
        out.stderr.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (hosts, summary) = ndjson(&out.stdout);
    let mut ips: Vec<&str> = hosts.iter().map(|h| h["ip"].as_str().unwrap()).collect();
    ips.sort_unstable();
    assert_eq!(ips, ["127.0.7.2", "127.0.7.3"]);
    assert_eq!(summary["endpoints_scanned"], 3);
    assert_eq!(summary["hosts_found"], 2);
    m.assert_read_only();
}

/// `masscan -p PORT RANGE -oL - | corral scan --from masscan -`: ports come from masscan.
#[test]
fn masscan_list_output_on_stdin() {
    let m = mocks(&["127.0.7.5", "127.0.7.6"]);
    let p = m.port;
    let input = format!(
        "#masscan\nopen tcp {p} 127.0.7.5 1700000000\nopen tcp {p} 127.0.7.6 1700000001\nopen tcp {} 127.0.7.7 1700000002\n# end\n",
        p.wrapping_add(1).max(1)
    );
    let out = corral()
        .args(["scan", "--from", "masscan", "-", "--format", "ndjson"])
        .args(["--timeout", "2s"])
        .write_stdin(input)
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(
        out.stderr.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (hosts, summary) = ndjson(&out.stdout);
    let mut eps: Vec<String> = hosts
        .iter()
        .map(|h| format!("{}:{}", h["ip"].as_str().unwrap(), h["port"]))
        .collect();
    eps.sort_unstable();
    assert_eq!(eps, [format!("127.0.7.5:{p}"), format!("127.0.7.6:{p}")]);
    assert_eq!(summary["endpoints_scanned"], 3);
    m.assert_read_only();
}

#[test]
fn malformed_stdin_line_is_a_warning_not_a_failure() {
    let m = mocks(&["127.0.7.8"]);
    let out = corral()
        .args(["scan", "-", "-p", &m.port.to_string(), "--format", "ndjson"])
        .args(["--timeout", "2s"])
        .write_stdin("not an address!\n127.0.7.8\n")
        .assert()
        .success()
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning"), "{err}");
    assert!(
        !err.contains('\x1b'),
        "no terminal control codes off a TTY: {err:?}"
    );
    let (hosts, _) = ndjson(&out.stdout);
    assert_eq!(hosts.len(), 1);
}

/// A file given with -iL and stdin read the same way: a UTF-8 byte-order mark opening the
/// input is skipped, a bad line is a warning naming its line, the good lines are scanned; with
/// no valid line left the scan fails (exit 2).
#[test]
fn target_files_and_stdin_skip_a_bom_and_bad_lines_alike() {
    let m = mocks(&["127.0.7.10"]);
    let port = m.port.to_string();
    let text = "\u{feff}127.0.7.10\nnot an address!\n";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts.txt");
    std::fs::write(&file, text).unwrap();
    let from_file = corral()
        .args(["scan", "-iL", file.to_str().unwrap(), "-p", &port])
        .args(["--format", "ndjson", "--timeout", "2s"])
        .assert()
        .success()
        .get_output()
        .clone();
    let from_stdin = corral()
        .args([
            "scan",
            "-",
            "-p",
            &port,
            "--format",
            "ndjson",
            "--timeout",
            "2s",
        ])
        .write_stdin(text)
        .assert()
        .success()
        .get_output()
        .clone();
    for (out, name) in [(&from_file, "hosts.txt"), (&from_stdin, "stdin")] {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("warning: ") && err.contains(&format!("{name} line 2: invalid target")),
            "{name}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        let (hosts, summary) = ndjson(&out.stdout);
        assert_eq!(hosts.len(), 1, "{name}");
        assert_eq!(hosts[0]["ip"], "127.0.7.10");
        assert_eq!(summary["endpoints_scanned"], 1);
    }

    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "\u{feff}\nnope!\n999.1.1.1\n").unwrap();
    let out = corral()
        .args(["scan", "-iL", bad.to_str().unwrap(), "-p", &port])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no valid target"), "{err}");
    corral()
        .args(["scan", "-", "-p", &port])
        .write_stdin("nope!\n")
        .assert()
        .code(2);
}

/// On a terminal (a pseudo-terminal from util-linux `script`), rows go to stdout and the
/// progress line is drawn on stderr and erased at the end.
#[test]
fn progress_line_on_a_terminal() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    }
    let m = mocks(&["127.0.7.9"]);
    let bin = assert_cmd::cargo::cargo_bin("corral");
    let cmd = format!(
        "{} scan 127.0.7.8-127.0.7.9 -p {} --timeout 2s",
        bin.display(),
        m.port
    );
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .env("TERM", "xterm")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.contains("SEVERITY"), "{screen}");
    assert!(
        screen.contains("2/2 (100.0%)") || screen.contains("1/2 (50.0%)"),
        "progress line with done/total: {screen:?}"
    );
    assert!(screen.contains("1 found"), "{screen:?}");
    assert!(
        screen.contains("\r\x1b[K"),
        "progress line redrawn in place"
    );
    assert!(screen.contains("critical"), "{screen}");
}

/// A URL with a path prefix is refused with a reason, never probed at the root and dropped
/// without a word.
#[test]
fn a_url_with_a_path_prefix_is_refused_with_a_reason() {
    let out = corral()
        .args(["scan", "http://127.0.0.1:9/ollama/"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("http://127.0.0.1:9/ollama/") && err.contains("path"),
        "{err}"
    );
}

/// `--fail-on SEVERITY` makes a finding at or above it exit 1 (for CI and cron); without it
/// the exit status stays 0 whatever is found.
#[test]
fn fail_on_sets_the_exit_status() {
    let m = mocks(&["127.0.7.11"]);
    let target = format!("127.0.7.11:{}", m.port);
    let scan = |extra: &[&str]| {
        corral()
            .args(["scan", &target, "--format", "json", "--timeout", "2s"])
            .args(extra)
            .assert()
            .get_output()
            .status
            .code()
    };
    assert_eq!(scan(&[]), Some(0));
    assert_eq!(scan(&["--fail-on", "critical"]), Some(1));
    assert_eq!(scan(&["--fail-on", "info"]), Some(1));
    let nothing = corral()
        .args([
            "scan",
            "127.0.7.12:9",
            "--fail-on",
            "info",
            "--timeout",
            "1s",
        ])
        .assert()
        .get_output()
        .status
        .code();
    assert_eq!(nothing, Some(0), "nothing found, nothing to fail on");
    corral()
        .args(["scan", &target, "--fail-on", "severe"])
        .assert()
        .code(2);
}
