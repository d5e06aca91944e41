//! `corral audit verify`.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::AuditCommand;

pub fn run(cmd: AuditCommand) -> Result<ExitCode> {
    match cmd {
        AuditCommand::Verify { files } => {
            // One live log stands for itself and its rotated predecessors.
            let files = match files.as_slice() {
                [one] => corral_audit::expand_rotated(one),
                _ => files,
            };
            let report = corral_audit::verify(&files)?;
            println!("{report}");
            Ok(if report.first_problem.is_none() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
