//! `corral keys`: the only place a secret is ever shown, once, on stdout.
//!
//! A command that hands out a secret (create, rotate) stages the change in a transaction, writes
//! the secret to stdout and commits only when the write succeeded: a secret that never reached
//! anyone must not leave a working key behind (or a working key revoked).

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use corral_store::{KeyInfo, KeyStore, PendingKey, MIN_LIFETIME};
use serde_json::json;

use super::Env;
use crate::cli::KeysCommand;

pub fn run(env: &Env, cmd: KeysCommand) -> Result<ExitCode> {
    match cmd {
        KeysCommand::Create {
            name,
            policy,
            expires,
            json,
        } => {
            if let Some(d) = expires.filter(|&d| d < MIN_LIFETIME) {
                bail!(
                    "--expires must be at least 1s (got {}); e.g. 30s, 12h, 30d",
                    humantime::format_duration(d)
                );
            }
            // Never echo a key pasted into the wrong argument.
            let shown_policy = corral_store::shown_arg(&policy);
            if !corral_store::is_valid_name(&policy) {
                bail!("{}", corral_store::StoreError::InvalidPolicy(shown_policy));
            }
            let config = env.config()?;
            if config.policy(&policy).is_none() {
                let known: Vec<&str> = config.policies.keys().map(String::as_str).collect();
                bail!(
                    "no policy named {shown_policy:?} (known: {}); define it under [policies.{}] in the config",
                    known.join(", "),
                    shown(&shown_policy)
                );
            }
            let mut out = secret_stdout()?;
            let store = open_store(env)?;
            let pending = store.begin_create(&name, &policy, expires)?;
            deliver(pending, &mut out, json, "created")?;
        }
        KeysCommand::List { json } => {
            let store = open_store(env)?;
            let keys = store.list()?;
            let now = Utc::now();
            let mut out = std::io::stdout().lock();
            if json {
                let rows: Vec<_> = keys.iter().map(|k| info_json(k, now)).collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
            } else {
                print_table(&mut out, &keys, now)?;
            }
            out.flush()?;
        }
        KeysCommand::Revoke { name } => {
            let store = open_store(env)?;
            let info = store.revoke(&name)?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "revoked {} ({})", shown(&info.name), info.prefix)?;
            out.flush()?;
        }
        KeysCommand::Rotate { name, json } => {
            let mut out = secret_stdout()?;
            let store = open_store(env)?;
            let pending = store.begin_rotate(&name)?;
            deliver(pending, &mut out, json, "rotated")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens the store and warns when the data directory is open to group or others.
fn open_store(env: &Env) -> Result<KeyStore> {
    let store = env.store()?;
    if let Some(warning) = super::loose_dir_warning(&store) {
        let _ = writeln!(std::io::stderr(), "corral: WARNING: {warning}");
    }
    Ok(store)
}

/// Standard output as a file of its own, for a secret. `std::io::Stdout` counts a write to a
/// closed descriptor as a success, and Rust's runtime puts `/dev/null` on a descriptor 1 that
/// was closed when the process started; either way the secret would vanish without a word.
fn secret_stdout() -> Result<File> {
    let fd = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| {
            anyhow!("stdout is not usable ({e}); the secret would be lost, so nothing was changed")
        })?;
    if stdout_was_closed() {
        bail!("stdout is closed; the secret would be lost, so nothing was changed");
    }
    Ok(File::from(fd))
}

/// True when descriptor 1 is the `/dev/null` the runtime opened read-write in place of a closed
/// stdout (a shell's `>/dev/null` opens it write-only). Linux only; elsewhere, or without
/// `/proc`, this cannot tell and says false.
fn stdout_was_closed() -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/fdinfo/1") else {
        return false;
    };
    let read_write = info
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|flags| flags & 0o3 == 0o2);
    let is_null = match (
        std::fs::metadata("/proc/self/fd/1"),
        std::fs::metadata("/dev/null"),
    ) {
        (Ok(fd), Ok(null)) => fd.dev() == null.dev() && fd.ino() == null.ino(),
        _ => false,
    };
    read_write && is_null
}

/// Writes the pending key's secret to `out` and commits the change only if that worked;
/// otherwise the change is rolled back. The failure is reported in words (not as the
/// `io::Error` itself), so that a broken pipe is an error here, not the quiet success it is for
/// `corral keys list | head`.
fn deliver(pending: PendingKey<'_>, out: &mut impl Write, json: bool, verb: &str) -> Result<()> {
    let text = secret_text(pending.info(), pending.secret().expose(), json)?;
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        drop(pending);
        bail!("cannot write the secret to stdout ({e}); nothing was changed");
    }
    let (info, _) = pending.commit().with_context(|| {
        format!("the key was not {verb}; the secret written to stdout does not work")
    })?;
    if !json {
        // The hint goes to stderr so `KEY=$(corral keys create x)` captures the secret alone.
        let _ = writeln!(
            std::io::stderr(),
            "corral: key {:?} ({}, policy {}) {verb}; this secret is shown only once",
            info.name,
            info.prefix,
            shown(&info.policy)
        );
    }
    Ok(())
}

fn secret_text(info: &KeyInfo, secret: &str, json: bool) -> Result<String> {
    if json {
        let mut obj = info_json(info, Utc::now());
        obj["secret"] = json!(secret);
        Ok(format!("{}\n", serde_json::to_string_pretty(&obj)?))
    } else {
        Ok(format!("{secret}\n"))
    }
}

fn info_json(info: &KeyInfo, now: DateTime<Utc>) -> serde_json::Value {
    json!({
        "id": info.id,
        "prefix": info.prefix,
        "name": info.name,
        "policy": info.policy,
        "state": info.state(now),
        "created_at": info.created_at,
        "last_used_at": info.last_used_at,
        "expires_at": info.expires_at,
        "revoked_at": info.revoked_at,
    })
}

/// A name as text for a terminal: as it is, or quoted and escaped if it holds a control
/// character (names are checked when created, but a database can be edited by other means).
fn shown(name: &str) -> String {
    if name.chars().any(char::is_control) {
        format!("{name:?}")
    } else {
        name.to_owned()
    }
}

fn print_table(out: &mut impl Write, keys: &[KeyInfo], now: DateTime<Utc>) -> Result<()> {
    if keys.is_empty() {
        writeln!(out, "no keys; create one with `corral keys create NAME`")?;
        return Ok(());
    }
    let rows: Vec<[String; 7]> = keys
        .iter()
        .map(|k| {
            [
                k.prefix.clone(),
                shown(&k.name),
                shown(&k.policy),
                day(Some(k.created_at)),
                day(k.last_used_at),
                day(k.expires_at),
                match (k.state(now), k.revoked_at) {
                    (corral_store::KeyState::Revoked, t) => format!("revoked {}", day(t)),
                    (corral_store::KeyState::Expired, _) => {
                        format!("expired {}", day(k.expires_at))
                    }
                    (corral_store::KeyState::Active, _) => "active".to_owned(),
                },
            ]
        })
        .collect();
    let header = [
        "KEY",
        "NAME",
        "POLICY",
        "CREATED",
        "LAST USED",
        "EXPIRES",
        "STATE",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[&str]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", line(&header))?;
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        writeln!(out, "{}", line(&cells))?;
    }
    Ok(())
}

fn day(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M").to_string(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::io;

    /// A stdout that refuses every write with `kind`.
    struct Refusing(io::ErrorKind);

    impl Write for Refusing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(self.0))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn is_broken_pipe(err: &anyhow::Error) -> bool {
        err.chain().any(|c| {
            c.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
        })
    }

    #[test]
    fn a_secret_that_cannot_be_written_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path()).unwrap();
        let (svc, svc_secret) = store.create("svc", "user", None).unwrap();
        for kind in [io::ErrorKind::BrokenPipe, io::ErrorKind::StorageFull] {
            let err = deliver(
                store.begin_rotate("svc").unwrap(),
                &mut Refusing(kind),
                false,
                "rotated",
            )
            .unwrap_err();
            let text = format!("{err:#}");
            assert!(text.contains("nothing was changed"), "{text}");
            // main() treats a broken pipe in the chain as a quiet success.
            assert!(!is_broken_pipe(&err), "{text}");

            let err = deliver(
                store.begin_create("ci", "user", None).unwrap(),
                &mut Refusing(kind),
                true,
                "created",
            )
            .unwrap_err();
            assert!(format!("{err:#}").contains("nothing was changed"));
        }
        assert_eq!(store.list().unwrap(), vec![svc.clone()], "all rolled back");
        let snap = store.snapshot().unwrap();
        assert_eq!(
            snap.authenticate(svc_secret.expose(), Utc::now())
                .unwrap()
                .id,
            svc.id,
            "the working key still works"
        );
    }

    #[test]
    fn a_written_secret_is_committed_and_matches_the_stored_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path()).unwrap();
        let mut out = Vec::new();
        deliver(
            store.begin_create("ci", "user", None).unwrap(),
            &mut out,
            true,
            "created",
        )
        .unwrap();
        let printed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(printed["state"], "active");
        let secret = printed["secret"].as_str().unwrap();
        let snap = store.snapshot().unwrap();
        assert_eq!(snap.authenticate(secret, Utc::now()).unwrap().name, "ci");
    }

    #[test]
    fn list_shows_expired_and_revoked_keys_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path()).unwrap();
        store
            .create("soon", "user", Some(std::time::Duration::from_secs(60)))
            .unwrap();
        store.create("gone", "user", None).unwrap();
        store.revoke("gone").unwrap();
        store.create("live", "user", None).unwrap();
        let keys = store.list().unwrap();
        let later = Utc::now() + chrono::Duration::seconds(120);

        let mut out = Vec::new();
        print_table(&mut out, &keys, later).unwrap();
        let text = String::from_utf8(out).unwrap();
        let state = |name: &str| {
            let line = text.lines().find(|l| l.contains(name)).unwrap();
            line.split("  ")
                .filter(|c| !c.is_empty())
                .last()
                .unwrap()
                .trim()
                .to_owned()
        };
        assert!(state("soon").starts_with("expired "), "{text}");
        assert!(state("gone").starts_with("revoked "), "{text}");
        assert_eq!(state("live"), "active", "{text}");

        let states: Vec<_> = keys
            .iter()
            .map(|k| info_json(k, later)["state"].clone())
            .collect();
        assert_eq!(
            states,
            [json!("expired"), json!("revoked"), json!("active")]
        );
    }

    #[test]
    fn names_with_control_characters_are_shown_escaped() {
        assert_eq!(shown("alice"), "alice");
        let hostile = shown("x\u{1b}[2J\rFAKE");
        assert!(!hostile.chars().any(char::is_control), "{hostile}");
        assert_eq!(hostile, r#""x\u{1b}[2J\rFAKE""#);
    }
}
