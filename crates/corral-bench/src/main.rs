//! `corral-bench`: load tools for `bench/gate.sh`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::{Parser, Subcommand};
use corral_bench::fleet;
use corral_bench::streams::{self, StreamsConfig};
use corral_bench::target::parse_target;

#[derive(Parser)]
#[command(name = "corral-bench", about = "Load tools for corral's benchmark")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Holds many concurrent streamed requests open, one connection each, and prints one
    /// JSON line of results.
    Streams(StreamsArgs),
    /// Prints a TCP port that is free on 127.0.0.1 right now (for servers that cannot bind
    /// port 0 and report it, such as nginx).
    FreePort,
    /// A bare pass-through proxy (token check, relay, nothing else) on the gate's runtime:
    /// the floor `bench/gate.sh` measures corral against. Prints `listening on ADDR`.
    Floor(FloorArgs),
    /// Serves mock LLM servers of many kinds on thousands of 127.x.y.z addresses (for
    /// `bench/scan.sh`); prints `ready N` once every address is bound.
    Fleet(FleetArgs),
}

#[derive(clap::Args)]
struct FloorArgs {
    /// Loopback address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// The upstream, a loopback address (HOST:PORT).
    #[arg(long)]
    upstream: std::net::SocketAddr,
    /// The whole `Authorization` header value a request must carry, e.g. "Bearer crl_...".
    #[arg(long, env = "CORRAL_BENCH_AUTH", hide_env_values = true)]
    authorization: String,
}

#[derive(clap::Args)]
struct FleetArgs {
    /// Second octet of the 127.S.0.0/16 block the fleet lives in.
    #[arg(long, default_value_t = 10)]
    second: u8,
    /// How many addresses to serve (at most 64,000).
    #[arg(long, default_value_t = 3000)]
    hosts: u32,
    #[arg(long, default_value_t = 11434)]
    port: u16,
    /// Write the served addresses, one a line, to FILE.
    #[arg(long, value_name = "FILE")]
    list: Option<PathBuf>,
    /// Stop by itself after this many seconds (also on SIGINT/SIGTERM).
    #[arg(long, default_value_t = 600)]
    max_secs: u64,
}

#[derive(clap::Args)]
struct StreamsArgs {
    /// Target URL, plain HTTP on a loopback address, e.g. http://127.0.0.1:8080/api/chat.
    #[arg(long)]
    url: String,
    #[arg(long, default_value = "POST")]
    method: String,
    /// API key sent as `Authorization: Bearer KEY`.
    #[arg(long, env = "CORRAL_BENCH_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Request body (JSON).
    #[arg(long, conflicts_with = "body_file")]
    body: Option<String>,
    #[arg(long)]
    body_file: Option<PathBuf>,
    #[arg(long, default_value_t = 1000)]
    concurrency: usize,
    /// Spread stream starts over this many milliseconds.
    #[arg(long, default_value_t = 1000)]
    ramp_ms: u64,
    /// Stop everything after this many seconds.
    #[arg(long, default_value_t = 60)]
    deadline_secs: u64,
    /// Fail streams whose last NDJSON line lacks `"done":true`.
    #[arg(long)]
    expect_done: bool,
    /// Sample the resident memory of this process (repeatable; summed).
    #[arg(long = "watch-pid")]
    watch_pids: Vec<u32>,
    #[arg(long, default_value_t = 20)]
    sample_ms: u64,
    /// Print `key=value` words instead of JSON (for shell scripts without a JSON parser).
    #[arg(long)]
    kv: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Streams(args) => {
            let kv = args.kv;
            match streams_config(args) {
                Ok(cfg) => run_streams(cfg, kv),
                Err(msg) => {
                    eprintln!("corral-bench: {msg}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Fleet(args) => run_fleet(args),
        Command::Floor(args) => run_floor(args),
        Command::FreePort => {
            match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
                Ok(addr) => {
                    println!("{}", addr.port());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("corral-bench: no free port: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn run_fleet(args: FleetArgs) -> ExitCode {
    if args.hosts == 0 || args.hosts > 64_000 || args.max_secs == 0 || args.max_secs > 3600 {
        eprintln!("corral-bench: --hosts must be 1..=64000 and --max-secs 1..=3600");
        return ExitCode::from(2);
    }
    if let Some(path) = &args.list {
        let list: String = (0..args.hosts)
            .map(|i| format!("{}\n", fleet::address(args.second, i)))
            .collect();
        if let Err(e) = std::fs::write(path, list) {
            eprintln!("corral-bench: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let Some(rt) = runtime() else {
        return ExitCode::FAILURE;
    };
    let hosts = args.hosts;
    let stop = async move {
        use tokio::signal::unix::{signal, SignalKind};
        println!("ready {hosts}");
        let term = signal(SignalKind::terminate());
        let deadline = tokio::time::sleep(Duration::from_secs(args.max_secs));
        match term {
            Ok(mut term) => tokio::select! {
                _ = deadline => {}
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            },
            Err(_) => tokio::select! {
                _ = deadline => {}
                _ = tokio::signal::ctrl_c() => {}
            },
        }
    };
    match rt.block_on(fleet::serve(args.second, args.hosts, args.port, stop)) {
        Ok(_) => {
            rt.shutdown_timeout(Duration::from_millis(200));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("corral-bench: fleet: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The gate's runtime: multi-threaded, one worker per CPU the process may use.
fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("corral-bench: cannot start the runtime: {e}");
            None
        }
    }
}

fn run_floor(args: FloorArgs) -> ExitCode {
    if !args.listen.ip().is_loopback() || !args.upstream.ip().is_loopback() {
        eprintln!("corral-bench: floor listens on and relays to loopback addresses only");
        return ExitCode::from(2);
    }
    let Some(rt) = runtime() else {
        return ExitCode::FAILURE;
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("corral-bench: cannot listen on {}: {e}", args.listen);
                return ExitCode::FAILURE;
            }
        };
        match listener.local_addr() {
            Ok(addr) => println!("listening on {addr}"),
            Err(e) => {
                eprintln!("corral-bench: {e}");
                return ExitCode::FAILURE;
            }
        }
        tokio::select! {
            () = corral_bench::floor::serve(listener, args.upstream, args.authorization) => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        ExitCode::SUCCESS
    })
}

fn run_streams(cfg: StreamsConfig, kv: bool) -> ExitCode {
    let Some(rt) = runtime() else {
        return ExitCode::FAILURE;
    };
    let report = rt.block_on(streams::run(cfg));
    if kv {
        println!("{}", report.to_kv());
    } else {
        match serde_json::to_string(&report) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("corral-bench: cannot encode the report: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn streams_config(args: StreamsArgs) -> Result<StreamsConfig, String> {
    let target = parse_target(&args.url).map_err(|e| e.to_string())?;
    let method: http::Method = args
        .method
        .parse()
        .map_err(|_| format!("bad method {:?}", args.method))?;
    let body = match (args.body, args.body_file) {
        (Some(b), _) => Bytes::from(b),
        (None, Some(path)) => std::fs::read(&path)
            .map(Bytes::from)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        (None, None) => Bytes::new(),
    };
    if args.concurrency == 0 || args.concurrency > 100_000 {
        return Err("--concurrency must be 1..=100000".into());
    }
    if args.deadline_secs == 0 || args.deadline_secs > 3600 {
        return Err("--deadline-secs must be 1..=3600".into());
    }
    Ok(StreamsConfig {
        target,
        method,
        authorization: args.key.map(|k| format!("Bearer {k}")),
        body,
        concurrency: args.concurrency,
        ramp: Duration::from_millis(args.ramp_ms),
        deadline: Duration::from_secs(args.deadline_secs),
        expect_done: args.expect_done,
        watch_pids: args.watch_pids,
        sample_every: Duration::from_millis(args.sample_ms),
    })
}
