//! `corral check` without the rest of corral: `cargo run -p corral-check --example corral-check -- --help`.

use clap::Parser;

#[derive(Parser)]
#[command(name = "corral-check")]
struct Cli {
    #[command(flatten)]
    args: corral_check::CheckArgs,
}

fn main() {
    std::process::exit(corral_check::main(Cli::parse().args));
}
