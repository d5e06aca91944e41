//! `corral serve`: merge flags over the config file, open the store and the audit log, run the gate.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use super::Env;
use crate::cli::{LogFormat, ServeArgs};

pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 11435);

pub fn run(env: &Env, args: ServeArgs) -> Result<ExitCode> {
    let bad_filter = init_tracing(args.log_format);
    let notices = Notices(args.log_format);
    if let Some(why) = bad_filter {
        notices.warn(format_args!(
            "CORRAL_LOG is not a valid tracing filter ({why}); using the default ({DEFAULT_LOG_FILTER})"
        ));
    }
    match serve(env, args, notices) {
        // In JSON mode the reason `serve` stops is one more JSON line, not a plain one.
        Err(err) if matches!(notices.0, LogFormat::Json) => {
            tracing::error!(target: "corral", "{}", crate::describe(&err));
            Ok(ExitCode::from(2))
        }
        done => done,
    }
}

fn serve(env: &Env, args: ServeArgs, notices: Notices) -> Result<ExitCode> {
    let config = env.config()?;
    let data_dir = env.data_dir()?;

    let server = &config.server;
    let listen = args.listen.or(server.listen).unwrap_or(DEFAULT_LISTEN);
    // Both read by `corral_policy::config::UpstreamAddr::parse`: a bad `--upstream` was refused
    // by the flag's parser, a bad `server.upstream` when the file was loaded.
    let upstream = args
        .upstream
        .or_else(|| server.upstream.clone())
        .unwrap_or_default();
    let tls = match (args.tls_cert.or_else(|| server.tls_cert.clone()), args.tls_key.or_else(|| server.tls_key.clone())) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => anyhow::bail!("TLS needs both a certificate and a key (--tls-cert and --tls-key, or server.tls_cert and server.tls_key)"),
    };
    // The flags replace the file's values, as for the server certificate.
    let client_ca = args.tls_client_ca.or_else(|| server.tls_client_ca.clone());
    let client_crls = if args.tls_client_crl.is_empty() {
        server.tls_client_crl.clone()
    } else {
        args.tls_client_crl
    };
    let tls = tls_files(&config, tls, client_ca, client_crls)?;
    let allow_plaintext = args.allow_plaintext || server.allow_plaintext;
    // Refused before the store and the audit log are touched.
    check_listener(listen, tls.as_ref(), allow_plaintext)?;
    let metrics_listen = args.metrics_listen.or(server.metrics_listen);
    if let Some(addr) = metrics_listen {
        check_metrics_listener(addr, allow_plaintext)?;
    }
    // Bound now: an address in use (another gate, Ollama itself) is said before the key store and
    // the audit log are created.
    let socket = corral_gate::listen_socket(listen)?;
    let metrics_socket = match metrics_listen {
        Some(addr) => Some(corral_gate::listen_socket(addr).context("metrics listener")?),
        None => None,
    };
    let audit_path = args
        .audit_log
        .or_else(|| config.audit.path.clone())
        .unwrap_or_else(|| data_dir.join("audit.ndjson"));
    let rotation = corral_audit::Rotation {
        max_bytes: config.audit.max_bytes,
        keep: config.audit.keep,
    };
    if rotation.max_bytes < corral_audit::MIN_ROTATE_BYTES {
        anyhow::bail!(
            "audit.max_bytes: must be at least 64KiB ({} bytes)",
            corral_audit::MIN_ROTATE_BYTES
        );
    }

    // Opened once the listen address and the audit settings are accepted.
    let store = env.store()?;
    if let Some(warning) = super::loose_dir_warning(&store) {
        notices.warn(format_args!("{warning}"));
    }
    for warning in tls.iter().flat_map(corral_gate::tls_warnings) {
        notices.warn(format_args!("{warning}"));
    }
    warn_unknown_policies(notices, &store, &config)?;

    let settings = corral_gate::GateSettings {
        listen,
        upstream,
        tls,
        allow_plaintext,
        idle_timeout: args
            .idle_timeout
            .or(server.idle_timeout)
            .unwrap_or(corral_gate::DEFAULT_IDLE_TIMEOUT),
        connect_timeout: server
            .connect_timeout
            .unwrap_or(corral_gate::DEFAULT_CONNECT_TIMEOUT),
        key_reload_interval: Duration::from_millis(250),
        config: Arc::new(config),
    };

    // While this is the only thread: growing the descriptor table later, with the runtime's
    // threads running, stalls the accepting thread for an RCU grace period at every doubling.
    match corral_gate::fdtable::reserve(corral_gate::fdtable::DEFAULT_RESERVE) {
        Ok(n) => tracing::debug!(descriptors = n, "descriptor table reserved"),
        Err(e) => tracing::debug!(error = %e, "cannot reserve the descriptor table; going on"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        // Listened to from the start, so that no signal falls back to the default action
        // (dying with audit records unflushed).
        let mut signals = Signals::new();
        // The error names the file (the log, its directory or its lock).
        let (audit, worker) = corral_audit::AuditLog::open(&audit_path, rotation)
            .context("cannot open the audit log")?;
        let worker = tokio::spawn(worker.run());
        let upstream_display = settings.upstream.to_string();
        let scheme = if settings.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let gate = corral_gate::Gate::bind_to(socket, settings, store, audit).await?;
        let addr = gate.local_addr();
        // First stdout line is a contract: scripts started with --listen ...:0 read the port from it.
        println!("listening on {scheme}://{addr}");
        notices.info(format_args!(
            "gate on {scheme}://{addr} -> {upstream_display}; audit log {}",
            audit_path.display()
        ));
        if scheme == "http" && !corral_gate::settings::is_loopback_listen(&addr) {
            notices.warn(format_args!(
                "listening on {addr} without TLS (allow_plaintext): API keys and prompts cross \
                 the network in clear text; use --tls-cert/--tls-key unless this network is trusted"
            ));
        }
        let metrics = match metrics_socket {
            Some(socket) => {
                let at = socket.local_addr().context("metrics listener")?;
                notices.info(format_args!("metrics on http://{at}/metrics"));
                Some(tokio::spawn(corral_gate::serve_metrics(
                    socket,
                    gate.metrics(),
                )))
            }
            None => None,
        };
        for finding in gate.self_check().await {
            notices.warn(format_args!("{finding}"));
        }
        // The first SIGTERM/SIGINT starts the graceful shutdown; a second one ends its grace
        // period at once (the requests still running are cut with an error in their dialect).
        let hurry = gate.hurry_token();
        let reload = gate.cert_reload_trigger();
        let tls_on = scheme == "https";
        let hangups = signals.on_hangup(move || {
            if tls_on {
                notices.info(format_args!(
                    "SIGHUP: reloading the TLS certificate and key"
                ));
            }
            reload.notify_one();
        });
        let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
        let signals = tokio::spawn(async move {
            signals.next().await;
            notices.info(format_args!(
                "shutting down; finishing in-flight requests (signal again to cut them now)"
            ));
            let _ = first_tx.send(());
            signals.next().await;
            notices.info(format_args!(
                "second signal; cutting in-flight requests now"
            ));
            hurry.cancel();
        });
        gate.run(async move {
            let _ = first_rx.await;
        })
        .await?;
        signals.abort();
        hangups.abort();
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        worker
            .await
            .context("the audit writer stopped unexpectedly")?
            .context("the audit log could not be flushed")?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The TLS files the gate is given, once the client-certificate settings are known to fit
/// together and with the policies ([`corral_policy::config::Config::check_client_certs`]).
pub fn tls_files(
    config: &corral_policy::config::Config,
    server: Option<(std::path::PathBuf, std::path::PathBuf)>,
    client_ca: Option<std::path::PathBuf>,
    client_crls: Vec<std::path::PathBuf>,
) -> Result<Option<corral_gate::TlsFiles>> {
    config.check_client_certs(
        server.is_some(),
        client_ca.is_some(),
        !client_crls.is_empty(),
    )?;
    Ok(server.map(|(cert, key)| corral_gate::TlsFiles {
        cert,
        key,
        client: client_ca.map(|ca| corral_gate::ClientCaFiles {
            ca,
            crls: client_crls,
        }),
    }))
}

/// The listen address and TLS files as the gate will check them: TLS files that load, or a
/// loopback address, or plaintext allowed.
pub fn check_listener(
    listen: SocketAddr,
    tls: Option<&corral_gate::TlsFiles>,
    allow_plaintext: bool,
) -> Result<()> {
    match tls {
        Some(files) => corral_gate::check_tls_files(files)?,
        None if !allow_plaintext && !corral_gate::settings::is_loopback_listen(&listen) => {
            return Err(corral_gate::GateError::PlaintextRefused { addr: listen }.into())
        }
        None => {}
    }
    Ok(())
}

/// The metrics listener speaks plain HTTP without a key: on a non-loopback address only when
/// plaintext is allowed.
pub fn check_metrics_listener(addr: SocketAddr, allow_plaintext: bool) -> Result<()> {
    if !allow_plaintext && !corral_gate::settings::is_loopback_listen(&addr) {
        anyhow::bail!(
            "refusing to serve metrics on {addr}: it is not a loopback address, and the metrics \
             listener speaks plain HTTP without a key, so anyone on the network could read them. \
             Use a loopback address for --metrics-listen (server.metrics_listen), or \
             --allow-plaintext (server.allow_plaintext = true) if that network is trusted"
        );
    }
    Ok(())
}

/// Keys bound to a policy the configuration does not define are refused at request time;
/// saying so at start-up saves an operator a confusing 403.
fn warn_unknown_policies(
    notices: Notices,
    store: &corral_store::KeyStore,
    config: &corral_policy::config::Config,
) -> Result<()> {
    for key in store.list()? {
        if key.revoked_at.is_none() && config.policy(&key.policy).is_none() {
            notices.warn(format_args!(
                "key {:?} uses policy {:?}, which the configuration does not define; its requests will be refused",
                key.name, key.policy
            ));
        }
    }
    Ok(())
}

/// SIGTERM and SIGINT (Ctrl-C), listened to from start-up on, so that a second signal sent
/// during the shutdown grace period is seen.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    /// SIGHUP: reload the TLS certificate (and never the default action, dying).
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
                hup: signal(SignalKind::hangup()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Signals {}
        }
    }

    /// Calls `on_hangup` at each SIGHUP, for as long as the returned task runs.
    fn on_hangup(&mut self, on_hangup: impl Fn() + Send + 'static) -> tokio::task::JoinHandle<()> {
        #[cfg(unix)]
        let hup = self.hup.take();
        tokio::spawn(async move {
            #[cfg(unix)]
            if let Some(mut hup) = hup {
                while hup.recv().await.is_some() {
                    on_hangup();
                }
            }
            #[cfg(not(unix))]
            let _ = on_hangup;
        })
    }

    /// The next SIGTERM or SIGINT.
    async fn next(&mut self) {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            if self.term.is_none() && self.int.is_none() {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
            tokio::select! {
                () = recv(&mut self.term) => {}
                () = recv(&mut self.int) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// What `serve` tells its operator on stderr at start-up and shutdown. In text mode a plain
/// `corral: ...` line (`corral: WARNING: ...` for a warning) and nothing else; in JSON mode a
/// tracing event only, so that every line of stderr stays one JSON object.
#[derive(Debug, Clone, Copy)]
struct Notices(LogFormat);

impl Notices {
    fn info(self, msg: std::fmt::Arguments<'_>) {
        match self.text_line(false, msg) {
            Some(line) => eprintln!("{line}"),
            None => tracing::info!(target: "corral", "{msg}"),
        }
    }

    fn warn(self, msg: std::fmt::Arguments<'_>) {
        match self.text_line(true, msg) {
            Some(line) => eprintln!("{line}"),
            None => tracing::warn!(target: "corral", "{msg}"),
        }
    }

    /// The line printed in text mode; `None` in JSON mode (the message goes to tracing).
    fn text_line(self, warning: bool, msg: std::fmt::Arguments<'_>) -> Option<String> {
        match self.0 {
            LogFormat::Text if warning => Some(format!("corral: WARNING: {msg}")),
            LogFormat::Text => Some(format!("corral: {msg}")),
            LogFormat::Json => None,
        }
    }
}

/// The tracing filter without `CORRAL_LOG`.
const DEFAULT_LOG_FILTER: &str = "corral=info,corral_gate=info,warn";

/// Sets up the diagnostic log; says why `CORRAL_LOG`, when set, could not be used.
fn init_tracing(format: LogFormat) -> Option<String> {
    use tracing_subscriber::EnvFilter;
    let default = || EnvFilter::new(DEFAULT_LOG_FILTER);
    let (filter, bad) = match std::env::var("CORRAL_LOG") {
        Ok(v) if !v.trim().is_empty() => match EnvFilter::try_new(&v) {
            Ok(f) => (f, None),
            Err(e) => (default(), Some(e.to_string())),
        },
        Err(std::env::VarError::NotUnicode(_)) => (default(), Some("not UTF-8".to_owned())),
        _ => (default(), None),
    };
    // Colour codes only for a person at a terminal, not in a file, a pipe or a journal.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    bad
}
