//! `corral`: keeps self-hosted LLM servers (Ollama first) from being hijacked.
//!
//! This binary only parses the command line and wires the library crates together;
//! every decision lives in them (see docs/ARCHITECTURE.md).

mod cli;
mod cmd;

use std::io::Write;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: the gate allocates and frees small buffers on every
/// request, and glibc's malloc showed up at around a tenth of its CPU time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse_with_env();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // A closed pipe (`corral keys list | head`) is not an error worth a message. A key
            // command that could not deliver a secret reports that in words, without the
            // `io::Error` in the chain, so it fails here like any other error.
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "corral: {}", describe(&err));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes, each said once: many errors already name their cause in their own
/// message, and repeating it (`No such file or directory: No such file or directory`) only
/// makes the message harder to read.
pub(crate) fn describe(err: &anyhow::Error) -> String {
    let mut out = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// An error that names its cause in its message and also reports it as its source.
    #[derive(Debug)]
    struct Named {
        path: &'static str,
        source: std::io::Error,
    }

    impl std::fmt::Display for Named {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot read {}: {}", self.path, self.source)
        }
    }

    impl std::error::Error for Named {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn the_config_check_and_the_audit_writer_agree_on_the_smallest_rotation() {
        assert_eq!(
            corral_policy::config::MIN_AUDIT_ROTATE_BYTES,
            corral_audit::MIN_ROTATE_BYTES
        );
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = anyhow::Error::new(Named {
            path: "a.pem",
            source: io,
        })
        .context("TLS");
        assert_eq!(describe(&err), "TLS: cannot read a.pem: no such file");
        let plain = anyhow::anyhow!("outer").context("top");
        assert_eq!(describe(&plain), "top: outer");
    }
}
