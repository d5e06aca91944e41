//! Builds the real objects from parsed arguments and runs a command.

mod audit;
mod config;
mod keys;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> Result<ExitCode> {
    let env = Env::new(&cli)?;
    match cli.command {
        Command::Serve(args) => serve::run(&env, args),
        Command::Keys(cmd) => keys::run(&env, cmd),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Config(cmd) => config::run(&env, cmd),
        Command::Check(args) => Ok(exit_code(corral_check::main(args))),
        Command::Scan(args) => Ok(exit_code(corral_scan::main(args))),
        Command::Hunt(args) => Ok(exit_code(corral_hunt::hunt_main(args))),
        Command::Rules(cmd) => Ok(exit_code(corral_hunt::rules_main(cmd))),
    }
}

/// Reads a configuration file of at most [`MAX_CONFIG_BYTES`] (a device or a runaway file
/// is refused rather than read until memory runs out).
///
/// [`MAX_CONFIG_BYTES`]: corral_policy::config::MAX_CONFIG_BYTES
fn read_config(path: &std::path::Path) -> Result<String> {
    use std::io::Read;
    let max = corral_policy::config::MAX_CONFIG_BYTES;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        anyhow::bail!("larger than {} KiB", max / 1024);
    }
    String::from_utf8(bytes).context("not UTF-8 text")
}

/// Library entry points return a process status (0 fine, 1 findings, 2 error).
fn exit_code(status: i32) -> ExitCode {
    ExitCode::from(u8::try_from(status).unwrap_or(2))
}

/// What every command may need: where the data lives and the validated configuration.
pub struct Env {
    data_dir: Option<PathBuf>,
    config_path: Option<PathBuf>,
}

impl Env {
    fn new(cli: &Cli) -> Result<Self> {
        Ok(Self {
            data_dir: cli.data_dir.clone(),
            config_path: cli.config.clone(),
        })
    }

    /// `--data-dir`, `CORRAL_DATA_DIR`, else `$XDG_DATA_HOME/corral` (`~/.local/share/corral`).
    pub fn data_dir(&self) -> Result<PathBuf> {
        if let Some(dir) = &self.data_dir {
            return Ok(dir.clone());
        }
        dirs::data_dir()
            .map(|d| d.join("corral"))
            .context("cannot determine a data directory: set --data-dir or CORRAL_DATA_DIR")
    }

    /// The configuration file if one was given, else the built-in policies.
    pub fn config(&self) -> Result<corral_policy::config::Config> {
        let Some(path) = &self.config_path else {
            return Ok(corral_policy::config::Config::builtin());
        };
        let text = read_config(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let mut config = corral_policy::config::Config::from_toml_str(&text)
            .with_context(|| format!("invalid config file {}", path.display()))?;
        if let Some(dir) = path.parent() {
            config.resolve_paths_from(dir);
        }
        Ok(config)
    }

    pub fn store(&self) -> Result<corral_store::KeyStore> {
        let dir = self.data_dir()?;
        corral_store::KeyStore::open(&dir)
            .with_context(|| format!("cannot open the key store in {}", dir.display()))
    }
}

/// The warning for a store whose data directory is open to group or others, if it is.
fn loose_dir_warning(store: &corral_store::KeyStore) -> Option<String> {
    let mode = store.loose_dir_mode()?;
    let dir = store.path().parent().map(|d| d.display().to_string());
    Some(format!(
        "the data directory {:?} has mode {mode:04o} (open to group or others); restrict it with chmod 700",
        dir.unwrap_or_default()
    ))
}
