//! `corral`: keeps self-hosted LLM servers (Ollama first) from being hijacked.
//!
//! This binary only parses the command line and wires the library crates together;
//! every decision lives in them (see docs/ARCHITECTURE.md).

mod cli;
mod cmd;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the system allocator: the gate allocates and frees small buffers on every
/// request, and glibc's malloc showed up at around a tenth of its CPU time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
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
            let _ = writeln!(stderr, "corral: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
