//! `corral config check`.

use std::process::ExitCode;

use anyhow::Result;

use super::Env;
use crate::cli::ConfigCommand;

pub fn run(env: &Env, cmd: ConfigCommand) -> Result<ExitCode> {
    match cmd {
        ConfigCommand::Check => {
            let config = env.config()?;
            // What `corral serve` would refuse with this file and no flags.
            let server = &config.server;
            // `server.upstream` was read (and a bad one refused) when the file was loaded.
            let tls = super::serve::tls_files(
                &config,
                server.tls_cert.clone().zip(server.tls_key.clone()),
                server.tls_client_ca.clone(),
                server.tls_client_crl.clone(),
            )?;
            super::serve::check_listener(
                server.listen.unwrap_or(super::serve::DEFAULT_LISTEN),
                tls.as_ref(),
                server.allow_plaintext,
            )?;
            if let Some(addr) = server.metrics_listen {
                super::serve::check_metrics_listener(addr, server.allow_plaintext)?;
            }
            for warning in tls.iter().flat_map(corral_gate::tls_warnings) {
                eprintln!("corral: WARNING: {warning}");
            }
            if let Some(files) = &tls {
                for line in corral_gate::describe_tls(files) {
                    println!("{line}");
                }
            }
            for (name, policy) in &config.policies {
                println!("policy {name}: {policy}");
            }
            if let Some(oidc) = &config.oidc {
                corral_gate::check_oidc(oidc)?;
                println!("oidc: {oidc}");
            }
            println!("configuration is valid");
            Ok(ExitCode::SUCCESS)
        }
    }
}
