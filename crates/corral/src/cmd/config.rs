//! `corral config check`.

use std::process::ExitCode;

use anyhow::Result;

use super::Env;
use crate::cli::ConfigCommand;

pub fn run(env: &Env, cmd: ConfigCommand) -> Result<ExitCode> {
    match cmd {
        ConfigCommand::Check => {
            let config = env.config()?;
            for (name, policy) in &config.policies {
                println!("policy {name}: {policy}");
            }
            println!("configuration is valid");
            Ok(ExitCode::SUCCESS)
        }
    }
}
