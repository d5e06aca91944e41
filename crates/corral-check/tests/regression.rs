//! Regression tests for defects found by review, each named after what it fixes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use corral_check::{run, Format};

/// Values a local user or a planted model controls, each carrying escape sequences and a
/// newline that would forge a line of the report.
fn hostile_host() -> Fx {
    let fx = Fx::new();
    fx.ollama(&[
        ("OLLAMA_HOST", "0.0.0.0\u{1b}[2J"),
        ("OLLAMA_ORIGINS", "*\n[INFO] all good"),
    ]);
    fx.process(
        200,
        OLLAMA,
        "sh\u{1b}]0;pwned\u{7}",
        &["/bin/sh", "-c", "echo \u{1b}[31mred\nNo findings."],
        &[],
    );
    fx.model(
        STORE,
        "evil\u{1b}[5m:8443",
        "a",
        "b\u{1b}[1m\nfake",
        "latest",
        &[b"cfg", b"weights"],
    );
    fx
}

#[test]
fn check_table_escapes_control_characters_from_the_host() {
    let fx = hostile_host();
    let r = run(&fx.opts()).unwrap();
    let table = r.render(Format::Table);
    assert!(
        !table.chars().any(|c| c.is_control() && c != '\n'),
        "{table}"
    );
    // Every line is one the report wrote: none starts with the forged text.
    for forged in ["[INFO] all good", "No findings.", "fake"] {
        assert!(
            !table.lines().any(|l| l.trim_start().starts_with(forged)),
            "{forged:?} forged a line:\n{table}"
        );
    }
    assert!(table.contains("*\\n[INFO] all good"), "{table}");
    assert!(table.contains("sh\\u{1b}]0;pwned\\u{7}"), "{table}");
    assert!(table.contains("evil\\u{1b}[5m:8443"), "{table}");

    // JSON and SARIF carry the values exactly, escaped by JSON itself.
    for f in [Format::Json, Format::Sarif] {
        let text = r.render(f);
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{f:?}: {text}"
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let all = v.to_string();
        assert!(all.contains("\\u001b[2J"), "{f:?}");
    }
    let j: serde_json::Value = serde_json::from_str(&r.render(Format::Json)).unwrap();
    let origins = j["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "OLLAMA_ORIGINS")
        .unwrap();
    assert_eq!(origins["value"], "*\n[INFO] all good");
}

/// The same model name in the service user's store and in root's, with different content:
/// the baseline written on this host matches this host (it keys models by store and name).
#[test]
fn baseline_keys_models_by_store_and_name() {
    let fx = Fx::new();
    fx.write("/root/.keep", "");
    fx.model(
        STORE,
        "registry.ollama.ai",
        "library",
        "dup",
        "1",
        &[b"c1", b"w1"],
    );
    fx.model(
        "/root/.ollama/models",
        "registry.ollama.ai",
        "library",
        "dup",
        "1",
        &[b"c2", b"w2"],
    );
    let base = fx.path("/baseline.json");
    let mut o = fx.opts();
    o.write_baseline = Some(base.clone());
    run(&o).unwrap();
    let mut o = fx.opts();
    o.baseline = Some(base.clone());
    let r = run(&o).unwrap();
    assert!(ids(&r).is_empty(), "{:#?}", r.findings);
    assert_eq!(r.exit_code(corral_check::Severity::High), 0);

    // A version 1 baseline (name → digest) still loads.
    let digest = r.stores[0].models[0].digest.clone();
    std::fs::write(
        &base,
        format!(r#"{{"version":1,"models":{{"dup:1":"{digest}"}}}}"#),
    )
    .unwrap();
    let r = run(&o).unwrap();
    assert_eq!(ids(&r), ["model.changed"], "the other store's copy differs");
}

/// `ollama pull ollama.com/library/gemma:2b` stores the model under `manifests/ollama.com/`:
/// the official registry under its other name, not a foreign one.
#[test]
fn ollama_com_models_are_not_foreign() {
    let fx = Fx::new();
    fx.model(STORE, "ollama.com", "library", "gemma", "2b", &[b"c", b"w"]);
    fx.model(STORE, "10.9.8.7:8443", "a", "b", "latest", &[b"c2", b"w2"]);
    let r = run(&fx.opts()).unwrap();
    let foreign = with_id(&r, "model.foreign-registry");
    assert_eq!(foreign.len(), 1, "{:#?}", r.findings);
    assert!(
        foreign[0].title.contains("10.9.8.7:8443"),
        "{}",
        foreign[0].title
    );
    assert!(r.stores[0]
        .models
        .iter()
        .any(|m| m.name == "ollama.com/library/gemma:2b"));
}

/// A drop-in's `UnsetEnvironment=OLLAMA_ORIGINS` removes the `*` an earlier drop-in set:
/// no `config.origins` finding.
#[test]
fn unset_environment_in_a_dropin_removes_the_setting() {
    let fx = Fx::new();
    fx.write(
        "/etc/systemd/system/ollama.service",
        "[Service]\nExecStart=/usr/local/bin/ollama serve\n",
    );
    fx.write(
        "/etc/systemd/system/ollama.service.d/10-a.conf",
        "[Service]\nEnvironment=OLLAMA_ORIGINS=*\n",
    );
    let r = run(&fx.opts()).unwrap();
    assert_eq!(with_id(&r, "config.origins").len(), 1, "{:#?}", r.findings);
    fx.write(
        "/etc/systemd/system/ollama.service.d/20-b.conf",
        "[Service]\nUnsetEnvironment=OLLAMA_ORIGINS\n",
    );
    let r = run(&fx.opts()).unwrap();
    assert!(
        with_id(&r, "config.origins").is_empty(),
        "{:#?}",
        r.findings
    );
    assert!(!r.settings.iter().any(|s| s.name == "OLLAMA_ORIGINS"));
}

/// An installed Ollama that is not running: its version is read from the executable's build
/// information (never by running it) and checked against the CVE table.
#[test]
fn the_version_comes_from_the_executable_when_no_server_answers() {
    let fx = Fx::new();
    fx.write(
        "/etc/systemd/system/ollama.service",
        "[Service]\nExecStart=/opt/ollama/bin/ollama serve\nUser=ollama\n",
    );
    let mut exe = b"\x7fELF\x02\x01\x01\0\0".to_vec();
    exe.extend_from_slice(
        b"build\t-ldflags=\"-w -s \\\"-X=github.com/ollama/ollama/version.Version=0.1.32\\\"\"\n",
    );
    fx.write("/opt/ollama/bin/ollama", &exe);
    let r = run(&fx.opts()).unwrap();
    let v = r.version.as_ref().expect("version from the executable");
    assert_eq!(v.version, "0.1.32");
    assert_eq!(
        (v.source.as_str(), v.method),
        ("/opt/ollama/bin/ollama", "executable")
    );
    assert!(!with_id(&r, "version.cve").is_empty(), "{:#?}", r.findings);

    // A binary without the flag (a source build) leaves the version unknown, and says where
    // it looked.
    fx.write("/opt/ollama/bin/ollama", b"\x7fELF no version here");
    fx.ollama(&[]);
    let r = run(&fx.opts()).unwrap();
    assert!(r.version.is_none());
    let why: String = with_id(&r, "version.unknown")[0]
        .evidence
        .iter()
        .map(|e| e.detail.clone())
        .collect();
    assert!(why.contains("/opt/ollama/bin/ollama"), "{why}");
}

/// The store named by OLLAMA_MODELS in the environment `corral check` runs in, and the
/// invoking user's ~/.ollama/models, are walked too.
#[test]
fn the_invoking_environment_names_stores_too() {
    let fx = Fx::new();
    fx.model(
        "/srv/own-store",
        "registry.ollama.ai",
        "library",
        "a",
        "1",
        &[b"c", b"w"],
    );
    fx.model(
        "/home/me/.ollama/models",
        "registry.ollama.ai",
        "library",
        "b",
        "1",
        &[b"c2", b"w2"],
    );
    let mut o = fx.opts();
    o.env_models = Some("/srv/own-store".into());
    o.env_home = Some("/home/me".into());
    let r = run(&o).unwrap();
    let dirs: Vec<&str> = r.stores.iter().map(|s| s.dir.as_str()).collect();
    assert!(dirs.contains(&"/srv/own-store"), "{dirs:?}");
    assert!(dirs.contains(&"/home/me/.ollama/models"), "{dirs:?}");
    assert!(run(&fx.opts()).unwrap().stores.is_empty());
}
