//! `corral check` through the real binary on fixture trees (`--root`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::Path;

use assert_cmd::Command;

fn write(root: &Path, host: &str, content: impl AsRef<[u8]>) {
    let p = root.join(host.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

/// `/proc/PID` for a process with `comm`, NUL-separated `cmdline` and `environ`.
fn process(root: &Path, pid: u32, ppid: u32, comm: &str, cmdline: &[&str], environ: &[&str]) {
    write(
        root,
        &format!("/proc/{pid}/stat"),
        format!("{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560"),
    );
    let nul = |v: &[&str]| {
        v.iter()
            .flat_map(|a| [a.as_bytes(), b"\0"])
            .flatten()
            .copied()
            .collect::<Vec<u8>>()
    };
    write(root, &format!("/proc/{pid}/cmdline"), nul(cmdline));
    write(root, &format!("/proc/{pid}/environ"), nul(environ));
    fs::create_dir_all(root.join(format!("proc/{pid}/fd"))).unwrap();
}

fn check(root: &Path) -> Command {
    let mut c = Command::cargo_bin("corral").unwrap();
    c.arg("check")
        .arg("--root")
        .arg(root)
        .env_remove("OLLAMA_MODELS");
    c
}

/// Host data (an environment value, a child's name and command line) with escape sequences
/// and newlines reaches the terminal escaped, and cannot forge a line of the table.
#[test]
fn check_table_neutralises_escape_sequences_from_host_data() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    process(root, 1, 0, "systemd", &["/sbin/init"], &[]);
    process(
        root,
        100,
        1,
        "ollama",
        &["/usr/local/bin/ollama", "serve"],
        &[
            "OLLAMA_HOST=0.0.0.0\u{1b}[2J",
            "OLLAMA_ORIGINS=*\n[INFO] all good",
        ],
    );
    process(
        root,
        200,
        100,
        "sh\u{1b}]0;pwned\u{7}",
        &["/bin/sh", "-c", "echo \u{1b}[31mred"],
        &[],
    );
    let out = check(root).assert().code(1).get_output().stdout.clone();
    let text = String::from_utf8(out).unwrap();
    assert!(!text.bytes().any(|b| b == 0x1b || b == 0x07), "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("[INFO] all good")),
        "{text}"
    );
    assert!(text.contains("*\\n[INFO] all good"), "{text}");
    assert!(text.contains("sh\\u{1b}]0;pwned\\u{7}"), "{text}");
}

/// `OLLAMA_MODELS=DIR corral check` (live host) examines DIR too.
#[test]
fn the_ollama_models_of_the_invoking_environment_is_examined() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "/manifests/registry.ollama.ai/library/x/1",
        "{not json",
    );
    let out = Command::cargo_bin("corral")
        .unwrap()
        .args(["check", "--format", "json"])
        .env("OLLAMA_MODELS", dir.path())
        .env("HOME", dir.path().join("nohome"))
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert_ne!(
        out.status.code(),
        Some(2),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let dirs: Vec<&str> = doc["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["dir"].as_str().unwrap())
        .collect();
    assert!(dirs.contains(&dir.path().to_str().unwrap()), "{dirs:?}");
}
