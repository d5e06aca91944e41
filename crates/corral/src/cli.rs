//! Command-line surface. Parsing only: `cmd` builds the real objects.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "corral",
    version,
    about = "Keeps self-hosted LLM servers (Ollama first) from being hijacked",
    propagate_version = true
)]
pub struct Cli {
    /// Where keys (keys.db) and the audit log live [env: CORRAL_DATA_DIR] [default: the XDG data dir, e.g. ~/.local/share/corral]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// TOML configuration file (server, audit and policies); built-in policies `user` and `admin` apply without one [env: CORRAL_CONFIG]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses the command line; `--data-dir` and `--config` fall back to `CORRAL_DATA_DIR` and
    /// `CORRAL_CONFIG`. A variable set but empty counts as unset (`CORRAL_CONFIG= corral ...`
    /// is how a shell clears it for one command), rather than as an empty path.
    pub fn parse_with_env() -> Cli {
        let mut cli = Cli::parse();
        cli.data_dir = cli.data_dir.or_else(|| env_path("CORRAL_DATA_DIR"));
        cli.config = cli.config.or_else(|| env_path("CORRAL_CONFIG"));
        cli
    }
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gate: an authenticating, policy-enforcing, streaming reverse proxy in front of Ollama
    Serve(ServeArgs),
    /// Create, list, revoke and rotate API keys
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Work with the audit log
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Validate the configuration and show the effective policies
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Audit this host's Ollama: bindings, configuration, firewall, model store, child processes
    Check(corral_check::CheckArgs),
    /// Find exposed LLM servers on networks you own (read-only fingerprinting)
    Scan(corral_scan::ScanArgs),
    /// Run the Ollama detection rules over security telemetry and logs
    Hunt(corral_hunt::HuntArgs),
    /// List, lint and export the detection rules (Sigma, EQL, KQL, SPL)
    #[command(subcommand)]
    Rules(corral_hunt::RulesCommand),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:11435, or server.listen]
    #[arg(long, value_name = "ADDR", value_parser = corral_policy::config::parse_listen)]
    pub listen: Option<SocketAddr>,
    /// Upstream Ollama (or OpenAI-compatible) server: http://host[:port], or host:port or host
    /// (port 11434) as OLLAMA_HOST is written; no path, query or credentials
    /// [default: http://127.0.0.1:11434, or server.upstream]
    #[arg(long, value_name = "URL", value_parser = parse_upstream)]
    pub upstream: Option<corral_policy::config::UpstreamAddr>,
    /// PEM certificate chain for TLS
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require a client certificate chaining to a CA in this PEM bundle (mutual TLS)
    /// [default: server.tls_client_ca]
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,
    /// PEM revocation list checked against client certificates; repeat for more (replaces
    /// server.tls_client_crl)
    #[arg(long, value_name = "FILE")]
    pub tls_client_crl: Vec<PathBuf>,
    /// Allow listening on a non-loopback address without TLS (only on a network you trust)
    #[arg(long)]
    pub allow_plaintext: bool,
    /// Longest silence allowed from upstream between chunks (and before the first), e.g. 5m
    /// [default: 5m, or server.idle_timeout]
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub idle_timeout: Option<std::time::Duration>,
    /// Audit log file [default: DATA_DIR/audit.ndjson, or audit.path]
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Serve Prometheus metrics (GET /metrics, plain HTTP, no key) on this address, e.g.
    /// 127.0.0.1:9464 [default: none, or server.metrics_listen]
    #[arg(long, value_name = "ADDR", value_parser = corral_policy::config::parse_listen)]
    pub metrics_listen: Option<SocketAddr>,
    /// Diagnostic log format on stderr
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its secret once
    Create {
        /// A unique name for the key's holder, e.g. alice or ci-runner: 1-64 characters from
        /// A-Z a-z 0-9 . _ @ -, not starting with crl_
        name: String,
        /// Policy the key is bound to
        #[arg(long, default_value = "user")]
        policy: String,
        /// Lifetime, e.g. 30d, 12h (default: no expiry)
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        expires: Option<std::time::Duration>,
        /// Print a JSON object (with the secret) instead of the secret alone
        #[arg(long)]
        json: bool,
    },
    /// List keys (never their secrets)
    List {
        /// Print a JSON array instead of the table
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key at once (a running gate notices within a second)
    Revoke {
        /// Key name, id (with or without its `crl_` prefix, as `keys list` shows it) or the full key
        name: String,
    },
    /// Replace a key's secret; the old secret stops working at once
    Rotate {
        /// Key name, id (with or without its `crl_` prefix, as `keys list` shows it) or the full key
        name: String,
        /// Print a JSON object (with the new secret) instead of the secret alone
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of an audit log and report the first edited, dropped, reordered,
    /// duplicated or inserted record
    Verify {
        /// Log files in chain order (oldest first; LOG, LOG.1, ... of one log are put in rotation order); a single live log also picks up its rotated files
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Fail unless the chain starts at the log's first record (seq 1): for logs that are
        /// never rotated, or when every rotated file is given
        #[arg(long)]
        from_start: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration file and print the effective policies
    Check,
}

/// `--upstream`, read as `server.upstream` is (clap names the flag and the value).
fn parse_upstream(
    s: &str,
) -> Result<corral_policy::config::UpstreamAddr, corral_policy::config::UpstreamAddrError> {
    corral_policy::config::UpstreamAddr::parse(s)
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 30s, 5m, 12h, 30d)"))
}

/// A timeout: a duration greater than zero (a zero idle timeout would cut every stream) and at
/// most a year (far longer ones overflow the clock), as `server.idle_timeout` is checked.
fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("must be greater than zero".to_string());
    }
    if d > corral_policy::config::MAX_TIMEOUT {
        return Err("must be at most 365d".to_string());
    }
    Ok(d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use corral_policy::config::{Config, UpstreamAddr};

    /// What `--upstream TEXT` gives, or the reason it is refused.
    fn from_flag(text: &str) -> Result<UpstreamAddr, String> {
        match Cli::try_parse_from(["corral", "serve", "--upstream", text]) {
            Ok(Cli {
                command: Command::Serve(args),
                ..
            }) => Ok(args.upstream.expect("--upstream was given")),
            Ok(other) => panic!("not serve: {other:?}"),
            Err(e) => Err(e.to_string()),
        }
    }

    /// What `server.upstream = TEXT` gives, or the reason it is refused.
    fn from_file(text: &str) -> Result<UpstreamAddr, String> {
        let quoted = serde_json::to_string(text).unwrap();
        match Config::from_toml_str(&format!("[server]\nupstream = {quoted}\n")) {
            Ok(c) => Ok(c.server.upstream.expect("server.upstream was given")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The flag and the file read the same text the same way: the same address, or a refusal
    /// for the same reason, each naming where the text came from.
    #[test]
    fn the_flag_and_the_file_read_an_upstream_alike() {
        for text in [
            "http://127.0.0.1:11434",
            "http://127.0.0.1:11434/",
            "127.0.0.1:11434",
            "localhost",
            "http://ollama",
            " Ollama.LAN:8080 ",
            "[::1]:11434",
            "http://[::1]",
            "[::ffff:127.0.0.1]:11434",
            "https://127.0.0.1:11434",
            "HTTP://x",
            "ftp://x",
            "http://user:pass@host",
            "http://x/api",
            "http://x/?q=1",
            "http://x#f",
            "http://x:0",
            "http://x:65536",
            "http://x:",
            "http://",
            "http://::1",
            "http://a!b",
            "http://ollama_1:11434",
            "http://127.1",
            "http://local host",
            "",
        ] {
            let flag = from_flag(text);
            let file = from_file(text);
            match UpstreamAddr::parse(text) {
                Ok(addr) => {
                    assert_eq!(flag, Ok(addr.clone()), "{text:?}");
                    assert_eq!(file, Ok(addr), "{text:?}");
                }
                Err(reason) => {
                    let reason = reason.to_string();
                    let flag = flag.expect_err(text);
                    let file = file.expect_err(text);
                    assert!(flag.contains("--upstream"), "{text:?}: {flag}");
                    assert!(flag.contains(&reason), "{text:?}: {flag}");
                    assert!(file.starts_with("server.upstream: "), "{text:?}: {file}");
                    assert!(file.contains(&reason), "{text:?}: {file}");
                }
            }
        }
    }
}
