//! `mock-ollama`: the test mock as a process, for the benchmark and the client end-to-end tests.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use corral_testsupport::{MockBehaviour, MockOllama};

/// A mock Ollama that answers in Ollama's response shapes.
#[derive(Debug, Parser)]
#[command(name = "mock-ollama", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Precomputed answers, no recording: for benchmarks.
    #[arg(long)]
    fast: bool,
    /// Content chunks per streamed answer.
    #[arg(long, default_value_t = 4)]
    chunks: usize,
    /// Milliseconds between streamed chunks.
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
    /// Milliseconds before the response headers.
    #[arg(long, default_value_t = 0)]
    header_delay_ms: u64,
    /// Answer everything with this status and an error body.
    #[arg(long)]
    error_status: Option<u16>,
    /// Abort streams after this many chunks.
    #[arg(long)]
    close_after: Option<usize>,
    /// Stall streams after this many chunks.
    #[arg(long)]
    stall_after: Option<usize>,
    /// End streams with an in-band error (status already 200) after this many chunks.
    #[arg(long)]
    fail_after: Option<usize>,
    /// End streams in order, without their final object or end marker, after this many chunks.
    #[arg(long)]
    end_after: Option<usize>,
    /// Milliseconds between chunks for `slow*` models.
    #[arg(long, default_value_t = 150)]
    slow_delay_ms: u64,
    /// Milliseconds before headers for `cold*` models.
    #[arg(long, default_value_t = 1500)]
    cold_delay_ms: u64,
    /// Record requests and print one JSON line on stdout when each response is over:
    /// `{"end":"completed"|"disconnected"|"aborted","method","path","unix_ms"}`. For end-to-end
    /// tests that must see the upstream side of a cancelled stream; not with --fast.
    #[arg(long, conflicts_with = "fast")]
    report_ends: bool,
}

/// How often `--report-ends` looks for responses that ended.
const REPORT_EVERY: Duration = Duration::from_millis(5);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let behaviour = MockBehaviour {
        chunk_delay: Duration::from_millis(a.chunk_delay_ms),
        header_delay: Duration::from_millis(a.header_delay_ms),
        chunks: a.chunks,
        error_status: a.error_status,
        close_after: a.close_after,
        stall_after: a.stall_after,
        fail_after: a.fail_after,
        end_after: a.end_after,
        endless: false,
        slow_delay: Duration::from_millis(a.slow_delay_ms),
        cold_delay: Duration::from_millis(a.cold_delay_ms),
    };
    // A long-running process must not grow a request log, unless asked to report from it.
    let mock = MockOllama::builder()
        .listen(a.listen)
        .behaviour(behaviour)
        .fast(a.fast)
        .record(a.report_ends)
        .start()
        .await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", mock.addr())?;
    out.flush()?;
    drop(out);
    if a.report_ends {
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            r = report_ends(&mock) => r?,
        }
    } else {
        tokio::signal::ctrl_c().await?;
    }
    mock.shutdown();
    Ok(())
}

/// Prints a line for every response that is over, in the order they end (to within
/// [`REPORT_EVERY`]); `unix_ms` is when the mock noticed.
async fn report_ends(mock: &MockOllama) -> anyhow::Result<()> {
    let mut reported = std::collections::HashSet::new();
    loop {
        tokio::time::sleep(REPORT_EVERY).await;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let mut out = std::io::stdout().lock();
        for r in mock.requests() {
            let end = if r.disconnected {
                "disconnected"
            } else if r.aborted_by_mock {
                "aborted"
            } else if r.completed {
                "completed"
            } else {
                continue;
            };
            if reported.insert(r.seq) {
                let line = serde_json::json!({
                    "end": end, "method": r.method, "path": r.path, "unix_ms": now_ms,
                });
                writeln!(out, "{line}")?;
            }
        }
        out.flush()?;
    }
}
