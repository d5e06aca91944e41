//! The listener: binding, the accept loop, TLS handshakes, serving connections with hyper, and
//! graceful shutdown of all of it.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use corral_audit::AuditHandle;
use corral_policy::usage::Usage;
use corral_store::KeyStore;
use http::header::HeaderValue;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::audit::AuditSink;
use crate::catalogue::Catalogue;
use crate::context::{Ending, RequestCtx};
use crate::error::GateError;
use crate::forward;
use crate::keys::{self, Keys, SharedStore};
use crate::metrics::HandshakeFailure;
use crate::proxy::{self, Shared};
use crate::refused::{self, ConnWatch, FirstLine, Watched};
use crate::reply::{self, Failure};
use crate::selfcheck::{self, Exposure};
use crate::settings::GateSettings;
use crate::tls;
use crate::tls::conn_cert::ConnCert;
use crate::tls::reload::CertReloader;

/// Longest a TLS handshake may take; a stalled handshake only ever holds its own task.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a client may take to send a request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a connection may stay open (after its TLS handshake) with no request in flight:
/// before its first request reaches the gate, or after its last one ended. hyper's
/// `header_read_timeout` only starts once it knows the protocol, and telling HTTP/1 from
/// HTTP/2 (up to the 24 bytes of the preface) has no deadline of its own; an HTTP/2 connection
/// has no idle limit in hyper at all, and its client answering the gate's pings keeps it open.
/// Without this a client that connects and sends nothing, part of the preface, or an HTTP/2
/// connection with no (more) requests, holds a descriptor for ever, authenticated or not.
const IDLE_CONNECTION_TIMEOUT: Duration = HEADER_READ_TIMEOUT;
/// Largest request head accepted (hyper answers 431 past it); Ollama clients send a few hundred
/// bytes, so anything near this is an attack on a parser somewhere.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Bytes of a plaintext request on the TLS port looked at to name its path.
const PLAIN_PEEK: usize = 256;
/// Most bytes and time spent reading what such a client sent before closing.
const PLAIN_DRAIN_BYTES: usize = 64 * 1024;
const PLAIN_DRAIN_TIME: Duration = Duration::from_secs(1);
/// How long the requests cut at the end of the shutdown grace period have to deliver their
/// error before their connections are closed.
const FAREWELL_TIME: Duration = Duration::from_secs(1);
/// Most bytes an HTTP/2 stream buffers for a client that does not read (hyper's default is
/// 400 KiB): with up to 512 streams on each connection, a client that never opens its flow
/// control window would otherwise hold the gate's memory at hundreds of megabytes. Generations
/// arrive far slower than this drains.
const H2_SEND_BUF: usize = 32 * 1024;
/// How often idle upstream connections kept past `upstream::IDLE_KEEP` are closed.
const IDLE_SWEEP: Duration = Duration::from_secs(10);

/// A bound, not yet running gate.
pub struct Gate {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<CertReloader>,
    shared: Arc<Shared>,
    store: SharedStore,
    store_version: i64,
    key_reload_interval: Duration,
    shutdown_grace: Duration,
    idle_connection_timeout: Duration,
    hurry: CancellationToken,
    cert_check_interval: Duration,
    cert_reload: Arc<Notify>,
    /// Whether the OIDC key set was fetched at start-up (`[oidc]` configured).
    oidc_fetched: bool,
}

/// Most connections the kernel queues for the accept loop (the listen backlog).
const LISTEN_BACKLOG: i32 = 1024;

/// Binds the listen socket on its own, so that a caller can learn that the address is taken (or
/// not allowed) before it opens anything else; [`Gate::bind_to`] serves on it.
pub fn listen_socket(addr: SocketAddr) -> Result<std::net::TcpListener, GateError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let fail = |source| GateError::Bind { addr, source };
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(fail)?;
    // As tokio's own bind: a restarted gate can listen again at once.
    #[cfg(unix)]
    socket.set_reuse_address(true).map_err(fail)?;
    socket.bind(&addr.into()).map_err(fail)?;
    socket.listen(LISTEN_BACKLOG).map_err(fail)?;
    socket.set_nonblocking(true).map_err(fail)?;
    Ok(socket.into())
}

impl Gate {
    /// Validates the settings (TLS files, plaintext on a non-loopback address), loads the keys
    /// and binds the listen socket.
    pub async fn bind(
        settings: GateSettings,
        store: KeyStore,
        audit: AuditHandle,
    ) -> Result<Gate, GateError> {
        Gate::bind_with(None, settings, store, audit).await
    }

    /// [`Gate::bind`] on a socket from [`listen_socket`] (bound to `settings.listen`).
    pub async fn bind_to(
        socket: std::net::TcpListener,
        settings: GateSettings,
        store: KeyStore,
        audit: AuditHandle,
    ) -> Result<Gate, GateError> {
        Gate::bind_with(Some(socket), settings, store, audit).await
    }

    /// The settings are checked before a socket is bound: a refused configuration is said as
    /// such, not as the address it could not listen on.
    async fn bind_with(
        socket: Option<std::net::TcpListener>,
        settings: GateSettings,
        store: KeyStore,
        audit: AuditHandle,
    ) -> Result<Gate, GateError> {
        let client = settings.tls.as_ref().and_then(|t| t.client.as_ref());
        // A policy bound to certificate names needs certificates that were verified.
        settings
            .config
            .check_client_certs(
                settings.tls.is_some(),
                client.is_some(),
                client.is_some_and(|c| !c.crls.is_empty()),
            )
            .map_err(GateError::Config)?;
        let tls = match &settings.tls {
            Some(files) => Some(CertReloader::new(files.clone(), tls::served(files)?)),
            None => None,
        };
        if tls.is_none()
            && !settings.allow_plaintext
            && !crate::settings::is_loopback_listen(&settings.listen)
        {
            return Err(GateError::PlaintextRefused {
                addr: settings.listen,
            });
        }
        let store: SharedStore = Arc::new(Mutex::new(store));
        let (snapshot, store_version) = keys::load(&store).await?;
        let allowances = Arc::new(crate::allowances::Allowances::new());
        keys::restore_allowances(&store, &allowances).await;
        let socket = match socket {
            Some(s) => s,
            None => listen_socket(settings.listen)?,
        };
        let listener = TcpListener::from_std(socket).map_err(|source| GateError::Bind {
            addr: settings.listen,
            source,
        })?;
        let local_addr = listener.local_addr().map_err(|source| GateError::Bind {
            addr: settings.listen,
            source,
        })?;
        let upstream_host =
            HeaderValue::from_str(&settings.upstream.authority()).map_err(|_| {
                GateError::InvalidUpstream {
                    url: settings.upstream.to_string(),
                    reason: "the host is not a valid Host header".to_owned(),
                }
            })?;
        let oidc = match &settings.config.oidc {
            Some(section) => Some(crate::oidc::start(Arc::clone(section)).await?),
            None => None,
        };
        let shared = Arc::new(Shared {
            client: forward::client(&settings.upstream, settings.connect_timeout),
            upstream: settings.upstream,
            upstream_host,
            idle_timeout: settings.idle_timeout,
            config: settings.config,
            keys: Arc::new(Keys::new(snapshot)),
            catalogue: Catalogue::default(),
            audit: AuditSink::new(audit),
            allowances,
            oidc: oidc.as_ref().map(|(o, _)| Arc::clone(o)),
            handshake_log: tls::handshake_log::HandshakeLog::default(),
        });
        Ok(Gate {
            listener,
            local_addr,
            tls,
            shared,
            store,
            store_version,
            key_reload_interval: settings.key_reload_interval,
            shutdown_grace: GateSettings::DEFAULT_SHUTDOWN_GRACE,
            idle_connection_timeout: IDLE_CONNECTION_TIMEOUT,
            hurry: CancellationToken::new(),
            cert_check_interval: tls::reload::CHECK_INTERVAL,
            cert_reload: Arc::new(Notify::new()),
            oidc_fetched: oidc.is_some_and(|(_, fetched)| fetched),
        })
    }

    /// What a metrics listener ([`crate::serve_metrics`]) serves for this gate; requests are
    /// counted from this call on (a gate without a listener keeps no counters).
    pub fn metrics(&self) -> crate::MetricsSource {
        crate::MetricsSource {
            metrics: self.shared.audit.metrics(),
            sink: self.shared.audit.clone(),
        }
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How long in-flight requests may run on once shutdown starts (default 10 s).
    pub fn set_shutdown_grace(&mut self, grace: Duration) {
        self.shutdown_grace = grace;
    }

    /// How long a connection may go with no request in flight before it is closed: from
    /// when it opened (after the TLS handshake) or its last request ended (default 30 s).
    pub fn set_idle_connection_timeout(&mut self, limit: Duration) {
        self.idle_connection_timeout = limit;
    }

    /// How often the TLS certificate and key files are looked at for a renewal (default 30 s).
    pub fn set_cert_check_interval(&mut self, every: Duration) {
        self.cert_check_interval = every;
    }

    /// Notified (an operator's SIGHUP), the gate reloads its TLS certificate and key at once,
    /// even if the files look unchanged. Without TLS it does nothing.
    pub fn cert_reload_trigger(&self) -> Arc<Notify> {
        Arc::clone(&self.cert_reload)
    }

    /// Shortest time between two fetches of the OIDC key set made because a token named a key
    /// the set lacks (default 30 s). Without `[oidc]` it does nothing.
    pub fn set_oidc_refetch_interval(&self, every: Duration) {
        if let Some(oidc) = &self.shared.oidc {
            oidc.set_refetch_interval(every);
        }
    }

    /// A token that, cancelled once shutdown has started, ends the grace period at once (an
    /// operator's second SIGTERM or Ctrl-C): the requests still running are cut as at its end.
    pub fn hurry_token(&self) -> CancellationToken {
        self.hurry.clone()
    }

    /// Probes whether the upstream port also answers on a non-loopback address of this host
    /// (Ollama reachable around the gate) and returns each address that answers.
    pub async fn self_check(&self) -> Vec<Exposure> {
        selfcheck::check_upstream_exposure(&self.shared.upstream, self.local_addr).await
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests finish
    /// within the grace period (cut with an error in their dialect after it, or once the
    /// [`Gate::hurry_token`] is cancelled), writes pending last-used times and allowance state, and hands every audit record
    /// to the audit writer before returning (the caller then awaits the audit worker).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), GateError> {
        let Gate {
            listener,
            local_addr,
            tls,
            shared,
            store,
            store_version,
            key_reload_interval,
            shutdown_grace,
            idle_connection_timeout,
            hurry,
            cert_check_interval,
            cert_reload,
            oidc_fetched,
        } = self;
        let mut tls = tls;
        let tls_current = tls.as_ref().map(|r| (r.current(), r.trust()));
        let (stop_tx, stop_rx) = watch::channel(false);
        let watcher = tokio::spawn(keys::watch_store(
            Arc::clone(&shared.keys),
            Arc::clone(&shared.allowances),
            store,
            store_version,
            key_reload_interval,
            stop_rx.clone(),
        ));
        let oidc_refresh = shared.oidc.as_ref().map(|oidc| {
            tokio::spawn(crate::oidc::refresh_task(
                Arc::clone(oidc),
                oidc_fetched,
                stop_rx,
            ))
        });

        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_buf_size(MAX_HEAD_BYTES)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(512)
            .max_send_buf_size(H2_SEND_BUF)
            .max_header_list_size(MAX_HEAD_BYTES as u32)
            .keep_alive_interval(Some(Duration::from_secs(30)));
        let builder = Arc::new(builder);
        let graceful = GracefulShutdown::new();
        let mut conns = JoinSet::new();
        tracing::info!(addr = %local_addr, tls = tls.is_some(), "gate listening");

        let mut shutdown = std::pin::pin!(shutdown);
        let mut sweep = tokio::time::interval(IDLE_SWEEP);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut cert_check = tokio::time::interval_at(
            tokio::time::Instant::now() + cert_check_interval,
            cert_check_interval.max(Duration::from_millis(10)),
        );
        cert_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = sweep.tick() => shared.client.sweep(),
                // File checks are a few stat calls; a reload parses two small PEM files.
                _ = cert_check.tick(), if tls.is_some() => {
                    if let Some(r) = tls.as_mut() {
                        r.check_and_log(false);
                    }
                }
                () = cert_reload.notified() => match tls.as_mut() {
                    Some(r) => r.check_and_log(true),
                    None => tracing::info!("reload asked for; no TLS certificate to reload"),
                },
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let conn = serve_connection(
                            stream,
                            peer,
                            tls_current.as_ref().map(|(c, trust)| ConnTls {
                                served: c.load_full(),
                                trust: Arc::clone(trust),
                            }),
                            Arc::clone(&builder),
                            Arc::clone(&shared),
                            graceful.watcher(),
                            idle_connection_timeout,
                        );
                        conns.spawn(conn);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }

        drop(listener);
        tracing::info!(in_flight = graceful.count(), "shutting down");
        let drained = graceful.shutdown();
        let mut drained = std::pin::pin!(drained);
        let in_grace = async {
            tokio::select! {
                () = &mut drained => true,
                () = tokio::time::sleep(shutdown_grace) => false,
                () = hurry.cancelled() => false,
            }
        };
        if !in_grace.await {
            // Requests still waiting for the upstream are answered 503 and streams end with an
            // error event in their dialect; whatever cannot be ended so within
            // `FAREWELL_TIME` (a client that reads nothing) is closed.
            tracing::warn!("grace period over; cutting the requests still running");
            shared.audit.cutting_in_flight();
            shared.keys.cut_all();
            if tokio::time::timeout(FAREWELL_TIME, &mut drained)
                .await
                .is_err()
            {
                tracing::warn!("closing the remaining connections");
                conns.abort_all();
            }
        }
        while conns.join_next().await.is_some() {}
        // The connections are gone: the last audit sinks are the shared state's; dropping it
        // lets the audit worker drain its queue and stop.
        drop(shared);
        let _ = stop_tx.send(true);
        if let Some(task) = oidc_refresh {
            task.await
                .map_err(|e| GateError::Task(format!("OIDC key refresh: {e}")))?;
        }
        watcher
            .await
            .map_err(|e| GateError::Task(format!("key watcher: {e}")))
    }
}

/// What a new TLS connection is served with: the configuration in service when it was
/// accepted, and where later reloads put their client verifier.
struct ConnTls {
    served: Arc<tls::Served>,
    trust: tls::conn_cert::CurrentTrust,
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<ConnTls>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    shared: Arc<Shared>,
    watcher: Watcher,
    idle_connection_timeout: Duration,
) {
    let _ = stream.set_nodelay(true);
    let peer_ip = peer.ip();
    let watch = Arc::new(ConnWatch::default());
    let service = |client_cert: Option<Arc<ConnCert>>| {
        let shared = Arc::clone(&shared);
        let watch = Arc::clone(&watch);
        service_fn(move |req| {
            let in_flight = watch.serving();
            let http1 = req.version() <= http::Version::HTTP_11;
            let answer = proxy::handle(Arc::clone(&shared), peer_ip, client_cert.clone(), req);
            let watch = Arc::clone(&watch);
            async move {
                let mut resp = answer.await?;
                if resp.extensions().get::<proxy::CloseConnection>().is_some() {
                    // HTTP/1.1 closes after this response; HTTP/2 once no stream is open.
                    if http1 {
                        resp.headers_mut().insert(
                            http::header::CONNECTION,
                            http::HeaderValue::from_static("close"),
                        );
                    }
                    watch.close_soon();
                }
                resp.body_mut().hold(in_flight);
                Ok::<_, std::convert::Infallible>(resp)
            }
        })
    };
    let ended = match tls {
        None => {
            let io = TokioIo::new(Watched::new(stream, Arc::clone(&watch)));
            let conn = watcher.watch(builder.serve_connection(io, service(None)));
            close_when_idle(conn, &watch, idle_connection_timeout).await
        }
        Some(ConnTls { served, trust }) => {
            let acceptor = TlsAcceptor::from(Arc::clone(&served.config));
            // One deadline for the first byte and the handshake together.
            let handshake_by = tokio::time::Instant::now() + TLS_HANDSHAKE_TIMEOUT;
            if let Ok(Some(line)) =
                tokio::time::timeout_at(handshake_by, plaintext_request(&stream)).await
            {
                refuse_plaintext(stream, &line).await;
                audit_plaintext(&shared, peer_ip, &line);
                return;
            }
            let tls_stream =
                match tokio::time::timeout_at(handshake_by, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        let why = HandshakeFailure::of(&e);
                        shared.handshake_log.failed(&e, why, peer);
                        shared.audit.handshake_failed(why);
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        shared.audit.handshake_failed(HandshakeFailure::Timeout);
                        return;
                    }
                };
            // Verified by rustls during the handshake (mutual TLS); read once for every
            // request of the connection, and checked again by each (expiry, reloads).
            let client_cert = match (tls_stream.get_ref().1.peer_certificates(), &served.client) {
                (Some(chain), Some(t)) => ConnCert::new(chain, t, trust).map(Arc::new),
                _ => None,
            };
            let io = TokioIo::new(Watched::new(tls_stream, Arc::clone(&watch)));
            let conn = watcher.watch(builder.serve_connection(io, service(client_cert)));
            close_when_idle(conn, &watch, idle_connection_timeout).await
        }
    };
    let Some(ended) = ended else {
        tracing::debug!(%peer, "closed a connection that had no request in flight for too long");
        return;
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, %peer, "connection ended with an error");
        if let Some(e) = e.downcast_ref::<hyper::Error>() {
            audit_refused_head(&shared, peer_ip, &watch, e);
        }
    }
}

/// Runs a connection, and drops it (closing it) once it has had no request in flight for
/// `limit`: none since it opened, or none since its last one ended; `None` then. A connection
/// asked to close ([`ConnWatch::close_soon`]) is dropped as soon as its requests in flight
/// have ended and their last bytes had [`CLOSE_LINGER`] to leave.
async fn close_when_idle<F: Future>(
    conn: F,
    watch: &ConnWatch,
    limit: Duration,
) -> Option<F::Output> {
    let mut conn = std::pin::pin!(conn);
    let mut wait = limit;
    loop {
        tokio::select! {
            out = &mut conn => return Some(out),
            () = tokio::time::sleep(wait) => {}
            () = watch.closing() => break,
        }
        wait = match watch.idle_for() {
            Some(idle) if idle >= limit => return None,
            Some(idle) => limit - idle,
            None => limit,
        };
    }
    loop {
        let wait = if watch.idle_for().is_some() {
            CLOSE_LINGER
        } else {
            Duration::from_millis(20)
        };
        tokio::select! {
            out = &mut conn => return Some(out),
            () = tokio::time::sleep(wait) => {}
        }
        if wait == CLOSE_LINGER && watch.idle_for().is_some() {
            return None;
        }
    }
}

/// How long a connection being closed is still served once it has no request in flight, for
/// the last response's bytes to be written.
const CLOSE_LINGER: Duration = Duration::from_millis(200);

/// When a connection to the TLS port opens with plain HTTP (a client given `http://` for an
/// `https://` gate), the request line it starts with; `None` for a TLS handshake, whose first
/// byte is a record type (0x16), never a letter.
async fn plaintext_request(stream: &TcpStream) -> Option<FirstLine> {
    let mut buf = [0u8; PLAIN_PEEK];
    let n = stream.peek(&mut buf).await.ok()?;
    let seen = &buf[..n];
    seen.first()
        .is_some_and(u8::is_ascii_uppercase)
        .then(|| FirstLine::parse(seen))
}

/// The refusal of a plaintext request on the TLS port.
fn plaintext_failure() -> Failure {
    Failure::new(
        400,
        "tls_required",
        "this port speaks HTTPS only: use https:// (this request crossed the network unencrypted)",
    )
}

/// Answers a plaintext request on the TLS port with a 400 in its path's dialect, then closes
/// the connection after reading (and dropping) what the client sent, so that unread bytes do
/// not make the kernel reset the connection before the client has read the answer.
async fn refuse_plaintext(mut stream: TcpStream, line: &FirstLine) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let body = reply::error_body(line.dialect(), &plaintext_failure());
    let mut answer = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    if stream.write_all(&answer).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let mut left = PLAIN_DRAIN_BYTES;
    let drain = async {
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(PLAIN_DRAIN_TIME, drain).await;
}

/// The audit record of a plaintext request refused on the TLS port.
fn audit_plaintext(shared: &Shared, peer: IpAddr, line: &FirstLine) {
    let method = line
        .method
        .as_deref()
        .and_then(|m| http::Method::from_bytes(m.as_bytes()).ok());
    let mut ctx = Box::new(RequestCtx::new(peer, method, &line.target));
    ctx.status = 400;
    ctx.reason = Some(plaintext_failure().rule);
    shared
        .audit
        .emit(ctx, Ending::Complete, 0, Usage::default());
}

/// One audit record for a request hyper refused before the service saw it (a head it could
/// not read, or one too large); nothing of it reached the upstream.
fn audit_refused_head(shared: &Shared, peer: IpAddr, watch: &ConnWatch, e: &hyper::Error) {
    if !(e.is_parse() || e.is_parse_too_large()) {
        return;
    }
    let status = watch
        .answered()
        .unwrap_or(if e.is_parse_too_large() { 431 } else { 400 });
    let first = watch.first_line();
    let method = first
        .as_ref()
        .and_then(|l| l.method.as_deref())
        .and_then(|m| http::Method::from_bytes(m.as_bytes()).ok());
    let target = first.as_ref().map_or("", |l| l.target.as_str());
    let mut ctx = Box::new(RequestCtx::new(peer, method, target));
    ctx.status = status;
    ctx.reason = Some(refused::failure_for(status).rule);
    shared
        .audit
        .emit(ctx, Ending::Complete, 0, Usage::default());
}
