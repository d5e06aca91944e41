//! `corral keys`: the only place a secret is ever shown, once, on stdout.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::Env;
use crate::cli::KeysCommand;

pub fn run(env: &Env, cmd: KeysCommand) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match cmd {
        KeysCommand::Create {
            name,
            policy,
            expires,
            json,
        } => {
            let config = env.config()?;
            if config.policy(&policy).is_none() {
                let known: Vec<&str> = config.policies.keys().map(String::as_str).collect();
                bail!(
                    "no policy named {policy:?} (known: {}); define it under [policies.{policy}] in the config",
                    known.join(", ")
                );
            }
            let store = env.store()?;
            let (info, secret) = store.create(&name, &policy, expires)?;
            print_secret(&mut out, &info, secret.expose(), json)?;
        }
        KeysCommand::List { json } => {
            let store = env.store()?;
            let keys = store.list()?;
            if json {
                let rows: Vec<_> = keys.iter().map(info_json).collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
            } else {
                print_table(&mut out, &keys)?;
            }
        }
        KeysCommand::Revoke { name } => {
            let store = env.store()?;
            let info = store.revoke(&name)?;
            writeln!(out, "revoked {} ({})", info.name, info.prefix)?;
        }
        KeysCommand::Rotate { name, json } => {
            let store = env.store()?;
            let (info, secret) = store.rotate(&name)?;
            print_secret(&mut out, &info, secret.expose(), json)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn print_secret(
    out: &mut impl Write,
    info: &corral_store::KeyInfo,
    secret: &str,
    json: bool,
) -> Result<()> {
    if json {
        let mut obj = info_json(info);
        obj["secret"] = json!(secret);
        writeln!(out, "{}", serde_json::to_string_pretty(&obj)?)?;
    } else {
        writeln!(out, "{secret}")?;
        // The hint goes to stderr so `KEY=$(corral keys create x)` captures the secret alone.
        eprintln!(
            "corral: key {:?} ({}, policy {}) created; this secret is shown only once",
            info.name, info.prefix, info.policy
        );
    }
    Ok(())
}

fn info_json(info: &corral_store::KeyInfo) -> serde_json::Value {
    json!({
        "id": info.id,
        "prefix": info.prefix,
        "name": info.name,
        "policy": info.policy,
        "created_at": info.created_at,
        "last_used_at": info.last_used_at,
        "expires_at": info.expires_at,
        "revoked_at": info.revoked_at,
    })
}

fn print_table(out: &mut impl Write, keys: &[corral_store::KeyInfo]) -> Result<()> {
    if keys.is_empty() {
        writeln!(out, "no keys; create one with `corral keys create NAME`")?;
        return Ok(());
    }
    let rows: Vec<[String; 7]> = keys
        .iter()
        .map(|k| {
            [
                k.prefix.clone(),
                k.name.clone(),
                k.policy.clone(),
                day(Some(k.created_at)),
                day(k.last_used_at),
                day(k.expires_at),
                match k.revoked_at {
                    Some(t) => format!("revoked {}", day(Some(t))),
                    None => "active".to_owned(),
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
