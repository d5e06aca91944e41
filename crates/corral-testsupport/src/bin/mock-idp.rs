//! `mock-idp`: the mock OIDC identity provider as a process, minting tokens on request, for
//! the client end-to-end tests (`GET /mint?user=U&groups=A,B`).

use std::io::Write as _;
use std::net::SocketAddr;

use clap::Parser;
use corral_testsupport::idp::{MockIdp, SigningKey};

/// A mock OIDC provider: discovery, a key set of one ES256 key made at start, and `/mint`.
#[derive(Debug, Parser)]
#[command(name = "mock-idp", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let idp = MockIdp::start_minting(SigningKey::generate("e2e")?, args.listen).await?;
    // The first stdout line announces the issuer (which holds the port) to the test.
    let mut out = std::io::stdout().lock();
    writeln!(out, "mock-idp listening on {}", idp.issuer())?;
    out.flush()?;
    drop(out);
    tokio::signal::ctrl_c().await?;
    Ok(())
}
