//! The `corral` command line as a user drives it: keys, config errors, audit verify.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn corral(data: &Path) -> Command {
    let mut cmd = Command::cargo_bin("corral").unwrap();
    cmd.env("CORRAL_DATA_DIR", data).env_remove("CORRAL_CONFIG");
    cmd
}

fn is_key(s: &str) -> bool {
    let parts: Vec<&str> = s.split('_').collect();
    parts.len() == 3
        && parts[0] == "crl"
        && parts[1].len() == 12
        && parts[2].len() == 43
        && s[4..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[test]
fn create_prints_the_secret_alone_and_list_never_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = corral(dir.path())
        .args(["keys", "create", "alice", "--policy", "user"])
        .assert()
        .success()
        .stderr(predicate::str::contains("shown only once"))
        .get_output()
        .stdout
        .clone();
    let stdout = String::from_utf8(out).unwrap();
    let secret = stdout.trim_end();
    assert_eq!(stdout.lines().count(), 1, "stdout: {stdout:?}");
    assert!(is_key(secret), "not a key: {secret:?}");

    for args in [vec!["keys", "list"], vec!["keys", "list", "--json"]] {
        let listed = corral(dir.path()).args(&args).assert().success();
        let text = String::from_utf8(listed.get_output().stdout.clone()).unwrap();
        assert!(text.contains("alice"));
        assert!(
            !text.contains(&secret[17..]),
            "secret part leaked by {args:?}"
        );
    }
    let json = corral(dir.path())
        .args(["keys", "list", "--json"])
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let row = &rows[0];
    assert_eq!(row["name"], "alice");
    assert_eq!(row["policy"], "user");
    assert!(row["revoked_at"].is_null());
    assert!(row.get("secret").is_none());

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("keys.db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn create_json_rotate_and_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let out = corral(dir.path())
        .args([
            "keys",
            "create",
            "ci",
            "--policy",
            "admin",
            "--expires",
            "30d",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["policy"], "admin");
    assert!(is_key(created["secret"].as_str().unwrap()));
    assert!(created["expires_at"].is_string());

    let rotated = corral(dir.path())
        .args(["keys", "rotate", "ci"])
        .output()
        .unwrap();
    assert!(rotated.status.success());
    let new_secret = String::from_utf8(rotated.stdout).unwrap();
    assert!(is_key(new_secret.trim_end()));
    assert_ne!(new_secret.trim_end(), created["secret"].as_str().unwrap());

    corral(dir.path())
        .args(["keys", "revoke", "ci"])
        .assert()
        .success()
        .stdout(predicate::str::contains("revoked ci"));
    // A second revoke has nothing active to revoke: a clear error, exit 2.
    corral(dir.path())
        .args(["keys", "revoke", "ci"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("corral: "));
}

#[test]
fn duplicate_names_and_unknown_policies_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    corral(dir.path())
        .args(["keys", "create", "bob"])
        .assert()
        .success();
    corral(dir.path())
        .args(["keys", "create", "bob"])
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("already exists"));
    corral(dir.path())
        .args(["keys", "create", "carol", "--policy", "root"])
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("no policy named \"root\""));
    // A policy argument that cannot be a policy's name is called that, with the rule.
    for bad in ["", "a b", "x]"] {
        corral(dir.path())
            .args(["keys", "create", "dave", "--policy", bad])
            .assert()
            .code(2)
            .stdout(predicate::str::is_empty())
            .stderr(predicate::str::contains("invalid policy name"))
            .stderr(predicate::str::contains("[policies.").not());
    }
}

/// `corral config check` on a config file holding `text`.
fn config_check(data: &Path, text: &str) -> assert_cmd::assert::Assert {
    let config = data.join("corral.toml");
    std::fs::write(&config, text).unwrap();
    corral(data)
        .arg("--config")
        .arg(&config)
        .args(["config", "check"])
        .assert()
}

#[test]
fn a_config_mistake_names_the_key_path() {
    let dir = tempfile::tempdir().unwrap();
    config_check(dir.path(), "[policies.apps]\nmax_num_ctx = -5\n")
        .code(2)
        .stderr(predicate::str::contains("policies.apps.max_num_ctx"));
    config_check(
        dir.path(),
        "[policies.apps]\nendpoints = [\"inference\"]\nmodelz = []\n",
    )
    .code(2)
    .stderr(predicate::str::contains("modelz"));
    // A policy that can do nothing is a mistake too, not a silent deny.
    config_check(dir.path(), "[policies.apps]\nendpoints = []\n")
        .code(2)
        .stderr(predicate::str::contains(
            "policies.apps.endpoints: empty list allows nothing; to disable a key, revoke it",
        ));
    config_check(dir.path(), "[policies.apps]\nmodels = []\n")
        .code(2)
        .stderr(predicate::str::contains("policies.apps.models: empty list"));
    config_check(
        dir.path(),
        "[policies.apps]\nendpoints = [\"inference\"]\nmodels = [\"llama3.2\"]\n",
    )
    .success()
    .stdout(predicate::str::contains("policy apps:"));
}

#[test]
fn config_check_shows_the_oidc_section_and_reads_its_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let oidc = "[oidc]\nissuer = \"https://id.example.com/realms/ml\"\naudience = \"corral\"\n\
                default_policy = \"user\"\n";
    config_check(dir.path(), oidc)
        .success()
        .stdout(predicate::str::contains(
            "oidc: issuer=https://id.example.com/realms/ml audience=corral",
        ));
    // The CA file is relative to the config file, and read as serve would read it.
    std::fs::write(dir.path().join("ca.pem"), "not a certificate").unwrap();
    config_check(dir.path(), &format!("{oidc}ca_file = \"ca.pem\"\n"))
        .code(2)
        .stderr(predicate::str::contains("oidc.ca_file"))
        .stderr(predicate::str::contains("ca.pem"));
    let plain = oidc.replace("https://id.example.com", "http://id.example.com");
    config_check(dir.path(), &plain)
        .code(2)
        .stderr(predicate::str::contains("oidc.issuer"));
}

#[test]
fn config_check_refuses_what_serve_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    config_check(dir.path(), "[server]\nlisten = \"0.0.0.0:11435\"\n")
        .code(2)
        .stderr(predicate::str::contains("allow-plaintext"));
    config_check(
        dir.path(),
        "[server]\nlisten = \"0.0.0.0:11435\"\nallow_plaintext = true\n",
    )
    .success();
    let cert = dir.path().join("c.pem");
    std::fs::write(&cert, "not a certificate").unwrap();
    config_check(
        dir.path(),
        &format!(
            "[server]\ntls_cert = {:?}\ntls_key = {:?}\n",
            cert.display().to_string(),
            dir.path().join("missing.pem").display().to_string()
        ),
    )
    .code(2)
    .stderr(predicate::str::contains("c.pem"))
    .stderr(predicate::str::contains("no PEM CERTIFICATE"));
    // serve reaches Ollama over plain HTTP only.
    config_check(
        dir.path(),
        "[server]\nupstream = \"https://127.0.0.1:11434\"\n",
    )
    .code(2)
    .stderr(predicate::str::contains(
        "https upstreams are not supported",
    ))
    // A bad value names its key path, as every other one does.
    .stderr(predicate::str::contains("server.upstream"));
}

#[test]
fn serve_names_an_invalid_upstream_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = corral(dir.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "ftp://127.0.0.1:1",
        ])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let stderr = String::from_utf8(out).unwrap();
    // The flag and the value are named, the reason said once.
    assert!(stderr.contains("--upstream"), "{stderr}");
    assert!(stderr.contains("ftp://127.0.0.1:1"), "{stderr}");
    assert_eq!(
        stderr.matches("the scheme must be http").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn relative_tls_paths_in_the_config_file_are_taken_from_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    std::fs::write(etc.join("cert.pem"), "not a certificate").unwrap();
    let config = etc.join("corral.toml");
    std::fs::write(
        &config,
        "[server]\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n",
    )
    .unwrap();
    // Started elsewhere, the file's cert.pem is still the one next to it (read, and found
    // not to be a certificate).
    corral(dir.path())
        .current_dir(dir.path())
        .arg("--config")
        .arg(&config)
        .args(["config", "check"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            etc.join("cert.pem").display().to_string(),
        ))
        .stderr(predicate::str::contains("no PEM CERTIFICATE"));
}

#[test]
fn serve_refuses_plaintext_on_a_public_address_before_listening() {
    let dir = tempfile::tempdir().unwrap();
    corral(dir.path())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("--allow-plaintext"));
    // Refused before the key store or the audit log is created.
    assert!(!dir.path().join("keys.db").exists());
    assert!(!dir.path().join("audit.ndjson").exists());
    // So is a TLS file that cannot be used.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "junk").unwrap();
    corral(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&junk)
        .arg("--tls-key")
        .arg(&junk)
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("junk.pem"));
    assert!(!dir.path().join("keys.db").exists());
    assert!(!dir.path().join("audit.ndjson").exists());
}

#[test]
fn serve_explains_a_listen_address_that_is_a_host_name() {
    let dir = tempfile::tempdir().unwrap();
    corral(dir.path())
        .args(["serve", "--listen", "localhost:11435"])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("127.0.0.1:11435"))
        .stderr(predicate::str::contains("not resolved"));
}

#[test]
fn a_config_file_that_is_not_a_small_text_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let big = format!("# {}\n", "x".repeat(2 << 20));
    config_check(dir.path(), &big)
        .code(2)
        .stderr(predicate::str::contains("larger than 1024 KiB"));
    corral(dir.path())
        .args(["--config", "/dev/zero", "config", "check"])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("larger than 1024 KiB"));
    corral(dir.path())
        .arg("--config")
        .arg(dir.path())
        .args(["config", "check"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read config file"));
}

/// A zero idle timeout, and one so far out that its deadline overflows the clock (the gate
/// started, then panicked on every streamed answer), are refused before listening, as the
/// config file's `server.idle_timeout` is.
#[test]
fn serve_refuses_an_idle_timeout_out_of_range_before_listening() {
    let dir = tempfile::tempdir().unwrap();
    for (value, says) in [
        ("0s", "must be greater than zero"),
        ("0ms", "must be greater than zero"),
        ("0m", "must be greater than zero"),
        ("18446744073709551615s", "must be at most 365d"),
        ("366d", "must be at most 365d"),
    ] {
        corral(dir.path())
            .args(["serve", "--listen", "127.0.0.1:0", "--idle-timeout", value])
            .timeout(std::time::Duration::from_secs(30))
            .assert()
            .code(2)
            .stdout(predicate::str::is_empty())
            .stderr(predicate::str::contains(says));
    }
}

/// A mistyped `CORRAL_LOG` is said, not silently replaced by the default filter; in JSON mode
/// the warning is one more JSON line.
#[test]
fn serve_warns_about_an_invalid_corral_log_filter() {
    let dir = tempfile::tempdir().unwrap();
    let out = corral(dir.path())
        .env("CORRAL_LOG", "corral=verbose")
        .args(["serve", "--listen", "0.0.0.0:0"])
        .timeout(std::time::Duration::from_secs(10))
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let stderr = String::from_utf8(out).unwrap();
    assert!(
        stderr.starts_with("corral: WARNING: CORRAL_LOG is not a valid tracing filter"),
        "{stderr}"
    );
    // A value that is not UTF-8 at all is said too.
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let out = corral(dir.path())
            .env("CORRAL_LOG", std::ffi::OsStr::from_bytes(b"corral=\xff"))
            .args(["serve", "--listen", "0.0.0.0:0"])
            .timeout(std::time::Duration::from_secs(10))
            .assert()
            .code(2)
            .get_output()
            .stderr
            .clone();
        let stderr = String::from_utf8(out).unwrap();
        assert!(
            stderr.starts_with(
                "corral: WARNING: CORRAL_LOG is not a valid tracing filter (not UTF-8)"
            ),
            "{stderr}"
        );
    }
    let out = corral(dir.path())
        .env("CORRAL_LOG", "corral=verbose")
        .args(["serve", "--log-format", "json", "--listen", "0.0.0.0:0"])
        .timeout(std::time::Duration::from_secs(10))
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let stderr = String::from_utf8(out).unwrap();
    let first: serde_json::Value = serde_json::from_str(stderr.lines().next().unwrap()).unwrap();
    assert_eq!(first["level"], "WARN", "{stderr}");
    assert!(
        first["fields"]["message"]
            .as_str()
            .unwrap()
            .contains("CORRAL_LOG"),
        "{stderr}"
    );
}

#[test]
fn audit_verify_fails_on_a_file_that_is_not_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.ndjson");
    std::fs::write(&log, "{\"not\":\"a chained record\"}\n").unwrap();
    corral(dir.path())
        .args(["audit", "verify"])
        .arg(&log)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("FAILED"));
}

/// A six-record log split as rotation leaves it: `.2` (seq 1–2), `.1` (3–4), then the live log
/// (5–6). Returns the live log's path and the six lines, each with its newline.
fn rotated_audit_log(dir: &Path) -> (std::path::PathBuf, Vec<String>) {
    let log = dir.join("audit.ndjson");
    audit_log(&log, 6);
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(rotated_file(dir, 2), lines[0..2].concat()).unwrap();
    std::fs::write(rotated_file(dir, 1), lines[2..4].concat()).unwrap();
    std::fs::write(&log, lines[4..6].concat()).unwrap();
    (log, lines)
}

fn rotated_file(dir: &Path, n: u32) -> std::path::PathBuf {
    dir.join(format!("audit.ndjson.{n}"))
}

/// A log of `n` records written by the real writer.
fn audit_log(path: &Path, n: u64) {
    let (handle, worker) = corral_audit::AuditLog::open(
        path,
        corral_audit::Rotation {
            max_bytes: 0,
            keep: 0,
        },
    )
    .unwrap();
    for i in 0..n {
        let mut r = corral_audit::AuditRecord::new(
            corral_audit::action::PROXY,
            std::net::IpAddr::from([127, 0, 0, 1]),
            "GET",
            "/api/tags",
        );
        r.bytes_out = i;
        handle.record(r).unwrap();
    }
    drop(handle);
    worker.run_blocking().unwrap();
}

#[test]
fn audit_verify_warns_when_the_start_of_the_log_is_missing_and_can_require_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.ndjson");
    audit_log(&log, 5);
    corral(dir.path())
        .args(["audit", "verify"])
        .arg(&log)
        .assert()
        .success()
        .stdout(predicate::str::starts_with("OK: 5 record(s)"))
        .stderr(predicate::str::is_empty());
    corral(dir.path())
        .args(["audit", "verify", "--from-start"])
        .arg(&log)
        .assert()
        .success();

    // The first two records deleted, no rotated files: OK, but not silently.
    let text = std::fs::read_to_string(&log).unwrap();
    let rest: String = text.split_inclusive('\n').skip(2).collect();
    std::fs::write(&log, rest).unwrap();
    corral(dir.path())
        .args(["audit", "verify"])
        .arg(&log)
        .assert()
        .success()
        .stdout(predicate::str::contains("the chain starts at seq 3"))
        .stderr(predicate::str::contains(
            "WARNING: the first 2 record(s) of the log are not in the files given (and no rotated files are next to the log)",
        ));
    corral(dir.path())
        .args(["audit", "verify", "--from-start"])
        .arg(&log)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            ":1: dropped: the chain starts at seq 3",
        ))
        .stderr(predicate::str::is_empty());
}

#[test]
fn audit_verify_reports_a_recovered_crash_and_finds_tampering_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.ndjson");
    audit_log(&log, 3);
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str("{\"@timestamp\":\"2026-12-04T22:4");
    std::fs::write(&log, &text).unwrap();
    audit_log(&log, 3);
    corral(dir.path())
        .args(["audit", "verify"])
        .arg(&log)
        .assert()
        .success()
        .stdout(predicate::str::starts_with("OK: 7 record(s)"))
        .stdout(predicate::str::contains(":4: torn line"));

    // Line 7 is the second record after the restart.
    let text = std::fs::read_to_string(&log).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert!(lines[4].contains("audit_restart"), "{text}");
    lines[6] = lines[6].replace("\"bytes_out\":1,", "\"bytes_out\":7,");
    assert!(lines[6].contains("\"bytes_out\":7,"), "{text}");
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    corral(dir.path())
        .args(["audit", "verify"])
        .arg(&log)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(":7: edited:"));
}

/// A newline appended to the log (an editor, `echo >>`) makes a blank last line: verify fails
/// and says so, before and after the gate starts again on that log.
#[test]
fn audit_verify_names_a_blank_line_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.ndjson");
    audit_log(&log, 3);
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push('\n');
    std::fs::write(&log, &text).unwrap();
    let blank = format!("FAILED: {}:4: malformed: the line is blank", log.display());
    corral(dir.path())
        .args(["audit", "verify"])
        .arg(&log)
        .assert()
        .code(1)
        .stdout(predicate::str::starts_with(blank.clone()))
        .stdout(predicate::str::contains(
            "3 record(s) in 1 file(s) verified before it",
        ))
        .stdout(predicate::str::contains("JSON").not());

    // The gate continues such a log after an `audit_restart` record; the blank line stays a
    // failure, not a recovered crash.
    audit_log(&log, 2);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines().nth(4).unwrap().contains("audit_restart"),
        "{text}"
    );
    corral(dir.path())
        .args(["audit", "verify"])
        .arg(&log)
        .assert()
        .code(1)
        .stdout(predicate::str::starts_with(blank))
        .stdout(predicate::str::contains("notice").not());
}

#[test]
fn audit_verify_says_when_a_file_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.ndjson");
    std::fs::write(&log, "").unwrap();
    corral(dir.path())
        .args(["audit", "verify"])
        .arg(&log)
        .assert()
        .success()
        .stdout(predicate::str::contains("the file is empty"));
}

#[test]
fn empty_environment_variables_count_as_unset() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    // CORRAL_CONFIG= (empty): the built-in policies apply, as without the variable.
    corral(&dir.path().join("data"))
        .env("CORRAL_CONFIG", "")
        .args(["config", "check"])
        .assert()
        .success();
    // CORRAL_DATA_DIR= (empty): the XDG default is used, not an empty path or an error about a flag.
    Command::cargo_bin("corral")
        .unwrap()
        .env("CORRAL_DATA_DIR", "")
        .env_remove("CORRAL_CONFIG")
        .env_remove("XDG_DATA_HOME")
        .env("HOME", &home)
        .args(["keys", "list", "--json"])
        .assert()
        .success()
        .stderr(predicate::str::contains("--data-dir").not());
    assert!(home.join(".local/share/corral/keys.db").exists());
    // The flag still wins over the variable.
    let flagged = dir.path().join("flagged");
    corral(&dir.path().join("data"))
        .args(["--data-dir"])
        .arg(&flagged)
        .args(["keys", "list"])
        .assert()
        .success();
    assert!(flagged.join("keys.db").exists());
    assert!(!dir.path().join("data").join("keys.db").exists());
}

#[test]
fn serve_refuses_an_audit_log_path_that_is_not_a_log_before_listening() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "my notes\n").unwrap();
    corral(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--audit-log"])
        .arg(&notes)
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("not a corral audit log"));
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "my notes\n");
}

#[test]
fn a_leaked_key_is_revoked_by_pasting_it_and_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let out = corral(dir.path())
        .args(["keys", "create", "leaky"])
        .output()
        .unwrap();
    let key = String::from_utf8(out.stdout).unwrap().trim_end().to_owned();
    assert!(is_key(&key), "{key:?}");
    let secret = &key[17..];
    corral(dir.path())
        .args(["keys", "revoke", &key])
        .assert()
        .success()
        .stdout(predicate::str::contains("revoked leaky"))
        .stdout(predicate::str::contains(secret).not());
    for args in [["keys", "revoke"], ["keys", "rotate"], ["keys", "create"]] {
        corral(dir.path())
            .args(args)
            .arg(&key)
            .assert()
            .code(2)
            .stdout(predicate::str::is_empty())
            .stderr(predicate::str::contains("<redacted>"))
            .stderr(predicate::str::contains(secret).not());
    }
    // Pasted into --policy: a valid name in form, so refused as an unknown policy.
    corral(dir.path())
        .args(["keys", "create", "other", "--policy"])
        .arg(&key)
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("no policy named"))
        .stderr(predicate::str::contains("<redacted>"))
        .stderr(predicate::str::contains(secret).not());
}

#[test]
fn audit_verify_takes_a_shell_glob_of_a_rotated_log_in_rotation_order() {
    let dir = tempfile::tempdir().unwrap();
    let (log, lines) = rotated_audit_log(dir.path());
    let rotated = |n: u32| rotated_file(dir.path(), n);
    // What `audit.ndjson*` expands to: the live log first, and the writer's lock file, which
    // stays beside the log.
    let lock = dir.path().join("audit.ndjson.lock");
    std::fs::write(&lock, "").unwrap();
    corral(dir.path())
        .args(["audit", "verify"])
        .arg(&log)
        .arg(rotated(1))
        .arg(rotated(2))
        .arg(&lock)
        .assert()
        .success()
        .stdout(predicate::str::starts_with("OK: 6 record(s) in 3 file(s)"))
        .stderr(predicate::str::contains("rotation order"))
        .stderr(predicate::str::contains("leaving out"));
    // The log and its lock alone: the log is checked with its rotated files.
    corral(dir.path())
        .args(["audit", "verify"])
        .arg(&log)
        .arg(&lock)
        .assert()
        .success()
        .stdout(predicate::str::starts_with("OK: 6 record(s) in 3 file(s)"));
    // Tampering is still found, at its place in the chain.
    std::fs::write(rotated(1), lines[3..4].concat()).unwrap();
    corral(dir.path())
        .args(["audit", "verify"])
        .arg(&log)
        .arg(rotated(1))
        .arg(rotated(2))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("audit.ndjson.1:1: dropped"));
}

/// A rotated file given alone does not claim that no rotated files are next to it when the
/// older one that holds the records before it is there.
#[test]
fn audit_verify_of_one_rotated_file_points_at_the_older_one() {
    let dir = tempfile::tempdir().unwrap();
    let (log, lines) = rotated_audit_log(dir.path());
    let rotated = |n: u32| rotated_file(dir.path(), n);
    corral(dir.path())
        .args(["audit", "verify"])
        .arg(rotated(1))
        .assert()
        .success()
        .stdout(predicate::str::contains("the chain starts at seq 3"))
        .stderr(predicate::str::contains("no rotated files").not())
        .stderr(predicate::str::contains(format!(
            "the older rotated file {} is next to it; verify the live log {}",
            rotated(2).display(),
            log.display()
        )));
    // The oldest file alone: nothing older is next to it.
    std::fs::write(rotated(2), lines[1..2].concat()).unwrap();
    corral(dir.path())
        .args(["audit", "verify"])
        .arg(rotated(2))
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "(and no rotated files are next to the log)",
        ));
}

/// Starts `corral serve` on a free loopback port, waits until its stderr contains `until`
/// (at most 30 s), stops it and returns its stdout and stderr.
fn serve_until(data: &Path, until: &str) -> (String, String) {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = serve_command(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let stderr = Captured::start(child.stderr.take().unwrap());
    stderr.wait_for(until);
    child.kill().unwrap();
    child.wait().unwrap();
    (out.join().unwrap(), stderr.finish())
}

/// `corral serve` on a free loopback port in front of a closed upstream, with `data` as its
/// data directory and no config or log filter from the environment; the caller adds the rest.
fn serve_command(data: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("corral"));
    cmd.env("CORRAL_DATA_DIR", data)
        .env_remove("CORRAL_CONFIG")
        .env_remove("CORRAL_LOG")
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:9",
        ]);
    cmd
}

/// A child's stderr, read on a thread as it comes.
struct Captured {
    text: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Captured {
    fn start(mut from: impl std::io::Read + Send + 'static) -> Captured {
        let text = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&text);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Captured { text, reader }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.text.lock().unwrap()).into_owned()
    }

    /// Waits (30 s at most) until `what` has been written; whether it was.
    fn wait_for(&self, what: &str) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !self.text().contains(what) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        self.text().contains(what)
    }

    /// Everything written, once the child has exited.
    fn finish(self) -> String {
        self.reader.join().unwrap();
        String::from_utf8_lossy(&self.text.lock().unwrap()).into_owned()
    }
}

#[cfg(unix)]
#[test]
fn serve_warns_about_a_loose_data_directory_as_a_notice_and_logs_without_colour_codes() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o770)).unwrap();
    let (stdout, stderr) = serve_until(&data, "gate listening");
    assert!(
        stdout.starts_with("listening on http://127.0.0.1:"),
        "{stdout:?}"
    );
    // The same warning, in the same form, as the `keys` commands give.
    assert!(
        stderr.lines().any(
            |l| l.starts_with("corral: WARNING: the data directory") && l.contains("mode 0770")
        ),
        "{stderr}"
    );
    assert!(stderr.contains("gate listening"), "{stderr}");
    // stderr is a pipe here, not a terminal: the tracing log carries no ANSI escapes.
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

#[test]
fn help_texts_describe_every_option_and_default_the_readme_names() {
    let dir = tempfile::tempdir().unwrap();
    let help = |args: &[&str]| {
        let out = corral(dir.path())
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success());
        // Whitespace collapsed: the columns and the wrapping are clap's.
        let text = String::from_utf8(out.stdout).unwrap();
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    assert!(help(&["keys", "list"]).contains("--json Print a JSON array"));
    assert!(help(&["keys", "create"]).contains("1-64 characters from A-Z a-z 0-9 . _ @ -"));
    assert!(help(&["keys", "rotate"]).contains("--json Print a JSON object"));
    assert!(help(&["serve"]).contains("[default: 5m, or server.idle_timeout]"));
    for cmd in ["revoke", "rotate"] {
        assert!(help(&["keys", cmd]).contains("id (with or without its `crl_` prefix"));
    }
    let verify = help(&["audit", "verify"]);
    for kind in ["edited", "dropped", "reordered", "duplicated", "inserted"] {
        assert!(verify.contains(kind), "{kind} missing: {verify}");
    }
}

#[cfg(unix)]
#[test]
fn sighup_reloads_the_tls_certificate_and_does_not_stop_the_gate() {
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let pair = || {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        (ck.cert.pem(), ck.key_pair.serialize_pem())
    };
    let (cert, key) = pair();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let mut child = serve_command(&dir.path().join("data"))
        .arg("--audit-log")
        .arg(dir.path().join("audit.ndjson"))
        .arg("--tls-cert")
        .arg(&cert_path)
        .arg("--tls-key")
        .arg(&key_path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = Captured::start(child.stderr.take().unwrap());
    let text = || err.text();
    let wait_for = |what: &str| err.wait_for(what);
    let hup = || {
        let ok = std::process::Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -HUP");
    };
    assert!(wait_for("gate listening"), "{}", text());
    // A renewed pair, then SIGHUP: reloaded, and the gate goes on.
    let (cert, key) = pair();
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    hup();
    assert!(wait_for("TLS certificate reloaded"), "{}", text());
    // A key that does not match: an error naming the file, and the gate still runs.
    let (_, other_key) = pair();
    std::fs::write(&key_path, other_key).unwrap();
    hup();
    assert!(
        wait_for(
            "cannot reload the server certificate and key; still serving the previous TLS \
             configuration"
        ),
        "{}",
        text()
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP stopped the gate: {}",
        text()
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let all = err.finish();
    assert!(
        all.contains("SIGHUP: reloading the TLS certificate and key"),
        "{all}"
    );
}

/// An address already in use is said before anything is created: a first run that fails on
/// the port leaves no empty key store or audit log behind.
#[test]
fn serve_on_an_address_in_use_fails_before_creating_the_store_or_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    corral(&data)
        .args(["serve", "--listen", &addr])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains(format!("cannot listen on {addr}")));
    assert!(!data.join("keys.db").exists(), "a key store was created");
    assert!(
        !data.join("audit.ndjson").exists(),
        "an audit log was created"
    );
    drop(taken);
}

/// A plain HTTP/1.1 GET over a fresh connection; the whole answer (head and body).
fn http_get(addr: &str, path: &str, headers: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The value of the sample `series` (name and labels as printed) in a metrics text.
fn sample(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

#[test]
fn serve_exposes_prometheus_metrics_on_a_listener_of_their_own() {
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let mut child = serve_command(&dir.path().join("data"))
        .arg("--audit-log")
        .arg(dir.path().join("audit.ndjson"))
        .args(["--metrics-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    let gate = first
        .trim()
        .strip_prefix("listening on http://")
        .unwrap()
        .to_owned();
    let err = Captured::start(child.stderr.take().unwrap());
    assert!(err.wait_for("/metrics\n"), "{}", err.text());
    let text = err.text();
    let metrics = text
        .lines()
        .find_map(|l| l.strip_prefix("corral: metrics on http://"))
        .and_then(|l| l.strip_suffix("/metrics"))
        .unwrap()
        .to_owned();

    let series = "corral_requests_total{route=\"api.version\",endpoint_class=\"discovery\",\
                  action=\"auth_failure\",outcome=\"failure\",reason=\"unauthenticated\",code=\"401\"}";
    let before = http_get(&metrics, "/metrics", "");
    assert!(before.starts_with("HTTP/1.1 200"), "{before}");
    assert!(
        before.contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{before}"
    );
    for family in [
        "corral_requests_total counter",
        "corral_tokens_total counter",
        "corral_request_duration_seconds histogram",
        "corral_audit_log_writable gauge",
    ] {
        assert!(before.contains(&format!("# TYPE {family}\n")), "{before}");
    }
    assert_eq!(sample(&before, series), None, "{before}");
    // A refused request is counted once its record is written; the gate's port has no /metrics.
    assert!(http_get(&gate, "/api/version", "").starts_with("HTTP/1.1 401"));
    assert!(http_get(&gate, "/metrics", "").starts_with("HTTP/1.1 404"));
    let after = http_get(&metrics, "/metrics", "");
    assert_eq!(sample(&after, series), Some(1), "{after}");
    assert_eq!(sample(&after, "corral_audit_log_writable"), Some(1));
    assert!(http_get(&metrics, "/", "").starts_with("HTTP/1.1 404"));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn metrics_on_a_public_address_need_allow_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    corral(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--metrics-listen", "0.0.0.0:0"])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains(
            "refusing to serve metrics on 0.0.0.0:0",
        ));
    assert!(!dir.path().join("keys.db").exists());
    config_check(dir.path(), "[server]\nmetrics_listen = \"0.0.0.0:9464\"\n")
        .code(2)
        .stderr(predicate::str::contains("--allow-plaintext"));
}

/// `corral hunt` over the gate's own audit log: each alert claims the ECS version the audit
/// records it was raised on claim, so one ECS index template holds both.
#[test]
fn hunt_alerts_claim_the_ecs_version_of_the_audit_records() {
    assert_eq!(corral_hunt::output::ECS_VERSION, corral_audit::ECS_VERSION);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.ndjson");
    let (handle, worker) = corral_audit::AuditLog::open(
        &log,
        corral_audit::Rotation {
            max_bytes: 0,
            keep: 0,
        },
    )
    .unwrap();
    for _ in 0..2 {
        let mut r = corral_audit::AuditRecord::new(
            corral_audit::action::AUTH_FAILURE,
            std::net::IpAddr::from([203, 0, 113, 7]),
            "POST",
            "/api/generate",
        );
        r.status_code = 401;
        handle.record(r).unwrap();
    }
    drop(handle);
    worker.run_blocking().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let record: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let claimed = &record["ecs"]["version"];
    assert!(claimed.is_string(), "{record}");

    let out = corral(dir.path())
        .args(["hunt", "--format", "ndjson"])
        .arg(&log)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let alerts = String::from_utf8(out).unwrap();
    assert!(alerts.lines().count() >= 2, "{alerts}");
    for l in alerts.lines() {
        let alert: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(&alert["ecs"]["version"], claimed, "{l}");
    }
}

/// `keys.db` as the release before saved allowance state wrote it (schema version 1).
const SCHEMA_V1: &str = "
CREATE TABLE keys (
    id            TEXT PRIMARY KEY NOT NULL,
    name          TEXT NOT NULL,
    policy        TEXT NOT NULL,
    secret_sha256 BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    expires_at    INTEGER,
    revoked_at    INTEGER
) STRICT;
CREATE UNIQUE INDEX keys_active_name ON keys(name) WHERE revoked_at IS NULL;
INSERT INTO keys (id, name, policy, secret_sha256, created_at)
    VALUES ('abcdefghijkl', 'alice', 'user', zeroblob(32), 1700000000000);
PRAGMA user_version = 1;
";

#[test]
fn keys_work_on_a_store_of_the_previous_release_and_upgrade_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(SCHEMA_V1)
        .unwrap();
    let json = corral(dir.path())
        .args(["keys", "list", "--json"])
        .output()
        .unwrap();
    assert!(json.status.success(), "{json:?}");
    let rows: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(rows[0]["name"], "alice");
    assert_eq!(rows[0]["prefix"], "crl_abcdefghijkl");
    corral(dir.path())
        .args(["keys", "create", "bob", "--policy", "user"])
        .assert()
        .success();
    corral(dir.path())
        .args(["keys", "revoke", "alice"])
        .assert()
        .success();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, corral_store::SCHEMA_VERSION);
    let saved: i64 = conn
        .query_row("SELECT count(*) FROM allowance_state", [], |r| r.get(0))
        .unwrap();
    assert_eq!(saved, 0);
}

/// A server certificate and key, and a client CA, written into `dir`.
fn mtls_files(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let server = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, server.cert.pem()).unwrap();
    std::fs::write(&key, server.key_pair.serialize_pem()).unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = dir.join("client-ca.pem");
    std::fs::write(&ca, p.self_signed(&ca_key).unwrap().pem()).unwrap();
    (cert, key, ca)
}

#[test]
fn client_certificate_settings_that_cannot_work_are_refused_by_config_check_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = mtls_files(dir.path());
    let bound = "[policies.apps]\nclient_cert_names = [\"app-*\"]\n";
    config_check(dir.path(), bound)
        .code(2)
        .stderr(predicate::str::contains("policies.apps.client_cert_names"))
        .stderr(predicate::str::contains("server.tls_client_ca"));
    config_check(dir.path(), "[server]\ntls_client_ca = \"client-ca.pem\"\n")
        .code(2)
        .stderr(predicate::str::contains("server.tls_client_ca"))
        .stderr(predicate::str::contains("server.tls_cert"));
    // Relative to the file's directory, and loaded as serve would: a client certificate is
    // no CA.
    std::fs::write(
        dir.path().join("leaf.pem"),
        rcgen::generate_simple_self_signed(vec!["app-1".into()])
            .unwrap()
            .cert
            .pem(),
    )
    .unwrap();
    config_check(
        dir.path(),
        "[server]\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\ntls_client_ca = \"leaf.pem\"\n",
    )
    .code(2)
    .stderr(predicate::str::contains(
        dir.path().join("leaf.pem").display().to_string(),
    ))
    .stderr(predicate::str::contains("not a CA certificate"));
    config_check(
        dir.path(),
        &format!(
            "[server]\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\ntls_client_ca = \"client-ca.pem\"\n{bound}"
        ),
    )
    .success()
    .stdout(predicate::str::contains("client_cert_names=app-*"));

    // The flag gives the CA the file's binding needs; a bad one is named before anything
    // is created.
    let config = dir.path().join("bound.toml");
    std::fs::write(&config, bound).unwrap();
    let data = dir.path().join("data");
    let serve = |client_ca: &Path| {
        corral(&data)
            .arg("--config")
            .arg(&config)
            .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .arg("--tls-client-ca")
            .arg(client_ca)
            .timeout(std::time::Duration::from_secs(30))
            .assert()
    };
    serve(&cert)
        .code(2)
        .stderr(predicate::str::contains("TLS client CA file"))
        .stderr(predicate::str::contains("cert.pem"));
    assert!(!data.join("keys.db").exists());
    let out = corral(&data)
        .arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("--tls-client-ca"), "{stderr}");

    // With a CA from the flag, the file's binding can be checked: the gate starts.
    use std::io::Read;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("corral"))
        .env("CORRAL_DATA_DIR", &data)
        .env_remove("CORRAL_CONFIG")
        .env_remove("CORRAL_LOG")
        .arg("--config")
        .arg(&config)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:9",
        ])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .arg("--tls-client-ca")
        .arg(&ca)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut line = [0u8; 64];
    let n = stdout.read(&mut line).unwrap();
    child.kill().unwrap();
    let status = child.wait().unwrap();
    let said = String::from_utf8_lossy(&line[..n]).into_owned();
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    assert!(
        said.starts_with("listening on https://"),
        "{status}: {said} {stderr}"
    );
}
