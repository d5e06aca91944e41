//! Stand-alone front end for trying `corral hunt` and `corral rules` without the main binary:
//! `cargo run --release -p corral-hunt --example hunt -- hunt FILE...`.

use clap::Parser;

#[derive(Parser)]
#[command(name = "corral")]
enum Cli {
    /// Run detection rules over log files
    Hunt(corral_hunt::HuntArgs),
    /// Export, list or check rules
    #[command(subcommand)]
    Rules(corral_hunt::RulesCommand),
}

fn main() {
    let code = match Cli::parse() {
        Cli::Hunt(a) => corral_hunt::hunt_main(a),
        Cli::Rules(c) => corral_hunt::rules_main(c),
    };
    std::process::exit(code);
}
