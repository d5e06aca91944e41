//! Where OLLAMA_* settings come from: the service unit and its drop-ins, environment files,
//! `/etc/environment`, and the running process.

use crate::root::{list_dir, Root};
use crate::systemd::{parse_env_file, parse_unit, split_environment};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// `Environment=` in a unit file or drop-in.
    SystemdEnvironment,
    /// A file named by `EnvironmentFile=`.
    SystemdEnvironmentFile,
    EtcEnvironment,
    /// The environment of a running Ollama process.
    Process,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    pub name: String,
    pub value: String,
    pub source: SourceKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

/// Unit directories in systemd's order of precedence.
pub const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];
pub const UNIT: &str = "ollama.service";

#[derive(Debug, Clone, Default, Serialize)]
pub struct UnitEnv {
    /// Host paths of the unit and its drop-ins, in the order they apply.
    pub files: Vec<String>,
    pub user: Option<String>,
    /// The program `ExecStart=` runs (its first word, host path), last one wins.
    pub exec_start: Option<String>,
    /// The effective value of every variable, with the assignment that set it.
    pub settings: Vec<Setting>,
    pub notes: Vec<String>,
}

/// Effective environment of a unit. `files` are `(host path, text)` in application order
/// (unit first, then drop-ins sorted by name). `read_env_file` returns the text of an
/// `EnvironmentFile=` path. Follows systemd: later `Environment=` wins, an empty one resets,
/// and values from environment files override `Environment=`. `UnsetEnvironment=` names (or
/// exact `NAME=value` assignments) collect in file order (an empty one resets the list) and are
/// removed last, from whatever set them, as systemd compiles the environment.
pub fn unit_env(
    files: &[(String, String)],
    read_env_file: &dyn Fn(&str) -> Option<String>,
) -> UnitEnv {
    let mut env: BTreeMap<String, Setting> = BTreeMap::new();
    let mut env_files: Vec<(String, bool, String, u32)> = Vec::new();
    let mut unset: Vec<String> = Vec::new();
    let mut out = UnitEnv::default();
    for (path, text) in files {
        out.files.push(path.clone());
        for d in parse_unit(text) {
            if d.section != "Service" {
                continue;
            }
            match d.key.as_str() {
                "Environment" if d.value.is_empty() => env.clear(),
                "Environment" => {
                    for (k, v) in split_environment(&d.value) {
                        env.insert(
                            k.clone(),
                            Setting {
                                name: k,
                                value: v,
                                source: SourceKind::SystemdEnvironment,
                                path: Some(path.clone()),
                                line: Some(d.line),
                                pid: None,
                            },
                        );
                    }
                }
                "EnvironmentFile" if d.value.is_empty() => env_files.clear(),
                "EnvironmentFile" => {
                    let (optional, p) = match d.value.strip_prefix('-') {
                        Some(p) => (true, p.trim()),
                        None => (false, d.value.as_str()),
                    };
                    env_files.push((p.to_string(), optional, path.clone(), d.line));
                }
                "UnsetEnvironment" if d.value.is_empty() => unset.clear(),
                "UnsetEnvironment" => unset.extend(
                    d.value
                        .split_whitespace()
                        .map(|w| w.trim_matches(|c| c == '"' || c == '\'').to_string()),
                ),
                "User" => out.user = Some(d.value.clone()),
                "ExecStart" if d.value.is_empty() => out.exec_start = None,
                "ExecStart" => {
                    // Prefixes such as `-` (ignore failure) or `@` (argv[0]) come before the path.
                    out.exec_start = d
                        .value
                        .split_whitespace()
                        .next()
                        .map(|w| w.trim_start_matches(['-', '@', '+', '!', ':']).to_string());
                }
                _ => {}
            }
        }
    }
    for (p, optional, unit_path, line) in env_files {
        match read_env_file(&p) {
            Some(text) => {
                for (k, v, l) in parse_env_file(&text) {
                    env.insert(
                        k.clone(),
                        Setting {
                            name: k,
                            value: v,
                            source: SourceKind::SystemdEnvironmentFile,
                            path: Some(p.clone()),
                            line: Some(l),
                            pid: None,
                        },
                    );
                }
            }
            None if !optional => out.notes.push(format!(
                "{unit_path}:{line}: EnvironmentFile={p} does not exist (the service fails to start)"
            )),
            None => {}
        }
    }
    for u in &unset {
        match u.split_once('=') {
            Some((k, v)) => {
                if env.get(k).is_some_and(|s| s.value == v) {
                    env.remove(k);
                }
            }
            None => {
                env.remove(u.as_str());
            }
        }
    }
    out.settings = env.into_values().collect();
    out
}

/// Find `ollama.service` and its drop-ins under the root and compute its environment.
pub fn read_unit_env(root: &Root) -> UnitEnv {
    let mut files: Vec<(String, String)> = Vec::new();
    for dir in UNIT_DIRS {
        let host = format!("{dir}/{UNIT}");
        if let Some(text) = root.read_text(&host) {
            files.push((host, text));
            break;
        }
    }
    // Drop-ins: same file name in a higher-precedence directory masks the lower one; all are
    // then applied in file-name order.
    let mut dropins: BTreeMap<String, String> = BTreeMap::new();
    for dir in UNIT_DIRS.iter().rev() {
        let d = format!("{dir}/{UNIT}.d");
        for p in list_dir(&root.path(&d)) {
            let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.ends_with(".conf") {
                dropins.insert(name.to_string(), format!("{d}/{name}"));
            }
        }
    }
    for host in dropins.into_values() {
        if let Some(text) = root.read_text(&host) {
            files.push((host, text));
        }
    }
    if files.is_empty() {
        return UnitEnv::default();
    }
    unit_env(&files, &|p| root.read_text(p))
}

pub fn read_etc_environment(root: &Root) -> Vec<Setting> {
    let path = "/etc/environment";
    root.read_text(path)
        .map(|t| {
            parse_env_file(&t)
                .into_iter()
                .map(|(k, v, l)| Setting {
                    name: k,
                    value: v,
                    source: SourceKind::EtcEnvironment,
                    path: Some(path.to_string()),
                    line: Some(l),
                    pid: None,
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn process_settings(pid: u32, environ: &[(String, String)]) -> Vec<Setting> {
    environ
        .iter()
        .filter(|(k, _)| k.starts_with("OLLAMA_"))
        .map(|(k, v)| Setting {
            name: k.clone(),
            value: v.clone(),
            source: SourceKind::Process,
            path: Some(format!("/proc/{pid}/environ")),
            line: None,
            pid: Some(pid),
        })
        .collect()
}

/// Home directories from `/etc/passwd`: `(user, home)`.
pub fn passwd_homes(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 6 && !f[0].is_empty() && f[5].starts_with('/'))
                .then(|| (f[0].to_string(), f[5].to_string()))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn dropin_overrides_unit_and_env_file_overrides_both() {
        let files = vec![
            (
                "/etc/systemd/system/ollama.service".to_string(),
                "[Service]\nUser=ollama\nEnvironment=\"OLLAMA_HOST=127.0.0.1\" OLLAMA_DEBUG=1\nEnvironmentFile=-/etc/ollama/missing\n".to_string(),
            ),
            (
                "/etc/systemd/system/ollama.service.d/override.conf".to_string(),
                "[Service]\nEnvironment=\"OLLAMA_HOST=0.0.0.0\"\nEnvironmentFile=/etc/ollama/env\n".to_string(),
            ),
        ];
        let e = unit_env(&files, &|p| {
            (p == "/etc/ollama/env").then(|| "OLLAMA_ORIGINS=*\n".to_string())
        });
        assert_eq!(e.user.as_deref(), Some("ollama"));
        let host = e.settings.iter().find(|s| s.name == "OLLAMA_HOST").unwrap();
        assert_eq!(host.value, "0.0.0.0");
        assert_eq!(
            host.path.as_deref(),
            Some("/etc/systemd/system/ollama.service.d/override.conf")
        );
        assert_eq!(host.line, Some(2));
        let o = e
            .settings
            .iter()
            .find(|s| s.name == "OLLAMA_ORIGINS")
            .unwrap();
        assert_eq!(o.source, SourceKind::SystemdEnvironmentFile);
        assert_eq!(
            (o.path.as_deref(), o.line),
            (Some("/etc/ollama/env"), Some(1))
        );
        assert!(e.notes.is_empty(), "optional missing file is not a note");
    }

    #[test]
    fn empty_environment_resets_and_missing_required_file_is_noted() {
        let files = vec![(
            "/u".to_string(),
            "[Service]\nEnvironment=OLLAMA_HOST=0.0.0.0\nEnvironment=\nEnvironment=A=1\nEnvironmentFile=/nope\n[Install]\nEnvironment=OLLAMA_ORIGINS=*\n".to_string(),
        )];
        let e = unit_env(&files, &|_| None);
        assert_eq!(e.settings.len(), 1);
        assert_eq!(e.settings[0].name, "A");
        assert_eq!(e.notes.len(), 1);
    }

    /// `UnsetEnvironment=` in a drop-in removes what the unit or an earlier drop-in set, also
    /// from an environment file; a `NAME=value` form only removes that exact value, and an
    /// empty `UnsetEnvironment=` resets the list collected so far.
    #[test]
    fn unset_environment_removes_variables() {
        let files = vec![
            (
                "/etc/systemd/system/ollama.service".to_string(),
                "[Service]\nEnvironment=OLLAMA_ORIGINS=* OLLAMA_HOST=0.0.0.0 OLLAMA_DEBUG=1 OLLAMA_KEEP_ALIVE=5m\nEnvironmentFile=/etc/ollama/env\n".to_string(),
            ),
            (
                "/etc/systemd/system/ollama.service.d/10-a.conf".to_string(),
                "[Service]\nUnsetEnvironment=OLLAMA_KEEP_ALIVE\nUnsetEnvironment=\n".to_string(),
            ),
            (
                "/etc/systemd/system/ollama.service.d/20-b.conf".to_string(),
                "[Service]\nUnsetEnvironment=OLLAMA_ORIGINS \"OLLAMA_HOST=1.2.3.4\" OLLAMA_MODELS OLLAMA_DEBUG=1\n".to_string(),
            ),
        ];
        let e = unit_env(&files, &|p| {
            (p == "/etc/ollama/env").then(|| "OLLAMA_MODELS=/srv/m\n".to_string())
        });
        let names: Vec<&str> = e.settings.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["OLLAMA_HOST", "OLLAMA_KEEP_ALIVE"],
            "{:#?}",
            e.settings
        );
    }

    #[test]
    fn passwd() {
        let h = passwd_homes("root:x:0:0:root:/root:/bin/bash\nollama:x:998:998::/usr/share/ollama:/bin/false\nbad\n");
        assert_eq!(h[1], ("ollama".into(), "/usr/share/ollama".into()));
        assert_eq!(h.len(), 2);
    }
}
