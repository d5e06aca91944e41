//! `corral audit verify`.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::AuditCommand;

pub fn run(cmd: AuditCommand) -> Result<ExitCode> {
    match cmd {
        AuditCommand::Verify { files, from_start } => {
            // `audit.ndjson*` lists the writer's lock file beside the log; it holds no records.
            let (files, locks) = corral_audit::without_lock_files(&files);
            for lock in &locks {
                eprintln!(
                    "note: leaving out {} (the gate's lock file, not part of the log)",
                    lock.display()
                );
            }
            // One live log stands for itself and its rotated predecessors.
            let (files, alone) = match files.as_slice() {
                [one] => {
                    let all = corral_audit::expand_rotated(one);
                    let alone = (all.len() == 1).then(|| alone_note(one));
                    (all, alone)
                }
                // The files of one log in rotation order, however they were listed
                // (`audit.ndjson*` puts the live log first).
                _ => match corral_audit::rotation_order(&files) {
                    Some(ordered) if ordered != files => {
                        let names: Vec<String> =
                            ordered.iter().map(|p| p.display().to_string()).collect();
                        eprintln!("note: checking in rotation order: {}", names.join(" "));
                        (ordered, None)
                    }
                    _ => (files, None),
                },
            };
            let report = corral_audit::Verifier::new()
                .require_start(from_start)
                .check_files(&files)?;
            println!("{report}");
            if let (true, Some(n)) = (report.is_ok(), report.missing_before()) {
                // Rotation deletes the oldest files, and so would someone deleting the start of
                // the log: say so plainly rather than imply the whole log was checked.
                let alone = alone.unwrap_or_default();
                eprintln!(
                    "WARNING: the first {n} record(s) of the log are not in the files given{alone}: \
                     they were removed by rotation (audit.keep), or deleted. \
                     Use --from-start to fail unless the chain starts at seq 1."
                );
            }
            Ok(if report.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// What the warning about a chain that starts late adds when one file was given and nothing
/// was added to it: a rotated file (`LOG.N`) whose older neighbour `LOG.N+1` is still there
/// holds the records before it, which were not checked; otherwise no rotated file is next to it.
fn alone_note(file: &std::path::Path) -> String {
    let older = file.to_str().and_then(|text| {
        let (base, digits) = text.rsplit_once('.')?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u64 = digits.parse().ok().filter(|&n| n > 0)?;
        let older = std::path::PathBuf::from(format!("{base}.{}", n.checked_add(1)?));
        older.exists().then(|| (older, base.to_owned()))
    });
    match older {
        Some((older, base)) => format!(
            " (the older rotated file {} is next to it; verify the live log {base} to check every rotated file)",
            older.display()
        ),
        None => " (and no rotated files are next to the log)".to_owned(),
    }
}
