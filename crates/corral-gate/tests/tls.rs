//! TLS with a self-signed certificate, and the refusal to listen in plaintext off loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::*;
use corral_audit::{AuditLog, Rotation};
use corral_gate::{Gate, GateError, GateSettings, TlsFiles};
use corral_policy::config::Config;
use corral_policy::config::UpstreamAddr;
use corral_store::KeyStore;
use corral_testsupport::MockOllama;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

struct TlsGate {
    addr: SocketAddr,
    cert: CertificateDer<'static>,
    key: String,
    _mock: MockOllama,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
    reload: Arc<tokio::sync::Notify>,
}

async fn tls_gate() -> TlsGate {
    tls_gate_checking(None).await
}

/// A TLS gate that looks at its certificate files every `every` (the default when `None`).
async fn tls_gate_checking(every: Option<std::time::Duration>) -> TlsGate {
    let mock = MockOllama::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, ck.cert.pem()).unwrap();
    std::fs::write(&key_path, ck.key_pair.serialize_pem()).unwrap();
    let store = KeyStore::open(&dir.path().join("data")).unwrap();
    let (_, secret) = store.create("alice", "user", None).unwrap();
    let (audit, worker) =
        AuditLog::open(&dir.path().join("audit.ndjson"), Rotation::default()).unwrap();
    tokio::spawn(worker.run());
    let mut settings = GateSettings::new(
        "127.0.0.1:0".parse().unwrap(),
        UpstreamAddr::parse(&mock.url()).unwrap(),
        Arc::new(Config::builtin()),
    );
    settings.tls = Some(TlsFiles {
        cert: cert_path,
        key: key_path,
        client: None,
    });
    let mut gate = Gate::bind(settings, store, audit).await.unwrap();
    if let Some(every) = every {
        gate.set_cert_check_interval(every);
    }
    let reload = gate.cert_reload_trigger();
    let addr = gate.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gate.run(async move {
        let _ = rx.await;
    }));
    TlsGate {
        addr,
        cert: ck.cert.der().clone(),
        key: secret.expose().to_string(),
        _mock: mock,
        _dir: dir,
        _stop: tx,
        reload,
    }
}

fn client_config(trust: &CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trust.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

async fn tls_exchange(g: &TlsGate, request: String) -> String {
    let connector = tokio_rustls::TlsConnector::from(client_config(&g.cert));
    let tcp = tokio::net::TcpStream::connect(g.addr).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake with the gate");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(T, tls.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn serves_https_with_a_self_signed_certificate() {
    let g = tls_gate().await;
    let resp = tls_exchange(
        &g,
        format!(
            "GET /api/tags HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            g.key
        ),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("\"models\""), "{resp}");
    let resp = tls_exchange(
        &g,
        "GET /api/tags HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".to_string(),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 401"), "{resp}");
}

#[tokio::test]
async fn plaintext_http_to_the_tls_port_is_told_to_use_https() {
    let g = tls_gate().await;
    for (path, openai) in [("/api/tags", false), ("/v1/models", true)] {
        let r = raw_http(
            g.addr,
            format!(
                "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
                g.key
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        assert_eq!(r.status, Some(400), "{r:?}");
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let message = if openai {
            assert_eq!(body["error"]["code"], "tls_required");
            body["error"]["message"].as_str().unwrap().to_string()
        } else {
            body["error"].as_str().unwrap().to_string()
        };
        assert!(message.contains("https://"), "{message}");
        assert!(!message.contains(&g.key));
    }
    // Nothing was served: the upstream saw no request.
    assert!(
        g._mock.requests().iter().all(is_gate_own_request),
        "{:?}",
        g._mock.requests()
    );
    let records = wait_for_records(&g, 2).await;
    assert_eq!(records.len(), 2, "{records:?}");
    for rec in &records {
        assert_eq!(rec["http"]["response"]["status_code"], 400);
        assert_eq!(rec["http"]["request"]["method"], "GET");
    }
    assert_eq!(records[0]["url"]["path"], "/api/tags");
    assert_eq!(records[1]["url"]["path"], "/v1/models");
    // A real TLS client on the same port is still served.
    let resp = tls_exchange(
        &g,
        format!(
            "GET /api/tags HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            g.key
        ),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}

/// The audit records of refused plaintext requests, once `n` are written.
async fn wait_for_records(g: &TlsGate, n: usize) -> Vec<serde_json::Value> {
    let path = g._dir.path().join("audit.ndjson");
    let deadline = std::time::Instant::now() + T;
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let records: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|r| r["corral"]["reason"] == "tls_required")
            .collect();
        if records.len() >= n || std::time::Instant::now() > deadline {
            return records;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_fails_the_handshake() {
    let g = tls_gate().await;
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let connector = tokio_rustls::TlsConnector::from(client_config(&other.cert.der().clone()));
    let tcp = tokio::net::TcpStream::connect(g.addr).await.unwrap();
    let r = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await;
    assert!(r.is_err());
}

async fn bind_on(
    listen: &str,
    tls: Option<TlsFiles>,
    allow_plaintext: bool,
) -> Result<Gate, GateError> {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(&dir.path().join("data")).unwrap();
    let (audit, _worker) =
        AuditLog::open(&dir.path().join("audit.ndjson"), Rotation::default()).unwrap();
    let mut settings = GateSettings::new(
        listen.parse().unwrap(),
        UpstreamAddr::parse("http://127.0.0.1:9").unwrap(),
        Arc::new(Config::builtin()),
    );
    settings.tls = tls;
    settings.allow_plaintext = allow_plaintext;
    Gate::bind(settings, store, audit).await
}

#[tokio::test]
async fn non_loopback_listen_without_tls_is_refused_at_bind() {
    for listen in ["0.0.0.0:0", "[::]:0", "192.0.2.10:0", "[::ffff:0.0.0.0]:0"] {
        match bind_on(listen, None, false).await {
            Err(e) => {
                assert!(
                    matches!(e, GateError::PlaintextRefused { .. }),
                    "{listen}: {e}"
                );
                let msg = e.to_string().to_lowercase();
                assert!(
                    msg.contains("tls") || msg.contains("plaintext"),
                    "{listen}: {msg}"
                );
            }
            Ok(_) => panic!("{listen}: plaintext listener on a non-loopback address was accepted"),
        }
    }
    // Loopback needs neither, however it is written.
    for listen in [
        "127.0.0.1:0",
        "127.0.0.2:0",
        "[::1]:0",
        "[::ffff:127.0.0.1]:0",
    ] {
        if let Err(e) = bind_on(listen, None, false).await {
            assert!(
                !matches!(e, GateError::PlaintextRefused { .. }),
                "{listen}: {e}"
            );
        }
    }
}

#[tokio::test]
async fn bad_tls_files_are_refused_at_bind() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, "not a certificate").unwrap();
    std::fs::write(&key, "not a key").unwrap();
    let r = bind_on(
        "127.0.0.1:0",
        Some(TlsFiles {
            cert,
            key,
            client: None,
        }),
        false,
    )
    .await;
    assert!(r.is_err());
    let missing = TlsFiles {
        cert: dir.path().join("missing.pem"),
        key: dir.path().join("missing-key.pem"),
        client: None,
    };
    assert!(bind_on("127.0.0.1:0", Some(missing), false).await.is_err());
}

/// The certificate the gate presents to a new handshake.
async fn presented(addr: SocketAddr) -> CertificateDer<'static> {
    // Trust nothing: the handshake is only read up to the server's certificate.
    #[derive(Debug)]
    struct Capture(Arc<std::sync::Mutex<Option<CertificateDer<'static>>>>);
    impl rustls::client::danger::ServerCertVerifier for Capture {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            *self.0.lock().unwrap() = Some(end_entity.clone().into_owned());
            Err(rustls::Error::General("captured".into()))
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::General("captured".into()))
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::General("captured".into()))
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
    let seen = Arc::new(std::sync::Mutex::new(None));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Capture(Arc::clone(&seen))))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await;
    let cert = seen.lock().unwrap().take();
    cert.expect("the gate presented a certificate")
}

/// Waits until new handshakes present `want`.
async fn wait_presented(addr: SocketAddr, want: &CertificateDer<'static>) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if &presented(addr).await == want {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

/// Writes a new self-signed pair over the gate's files the way ACME clients do (a rename
/// over each), and returns its certificate.
fn renew(g: &TlsGate) -> CertificateDer<'static> {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let dir = g._dir.path();
    std::fs::write(dir.join("cert.new"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.new"), ck.key_pair.serialize_pem()).unwrap();
    std::fs::rename(dir.join("key.new"), dir.join("key.pem")).unwrap();
    std::fs::rename(dir.join("cert.new"), dir.join("cert.pem")).unwrap();
    ck.cert.der().clone()
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let g = tls_gate_checking(Some(std::time::Duration::from_millis(100))).await;
    assert_eq!(presented(g.addr).await, g.cert);
    // A keep-alive connection opened before the renewal.
    let connector = tokio_rustls::TlsConnector::from(client_config(&g.cert));
    let tcp = tokio::net::TcpStream::connect(g.addr).await.unwrap();
    let mut old = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();

    let second = renew(&g);
    assert!(
        wait_presented(g.addr, &second).await,
        "the renewed certificate was not picked up"
    );

    // The connection from before keeps its session and is served.
    old.write_all(
        format!(
            "GET /api/tags HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            g.key
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(T, old.read_to_end(&mut out)).await;
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));

    // Half a renewal (a certificate whose key is not there yet) and then garbage: the
    // renewed pair stays in service.
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(g._dir.path().join("cert.pem"), ck.cert.pem()).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(presented(g.addr).await, second);
    std::fs::write(
        g._dir.path().join("key.pem"),
        "-----BEGIN PRIVATE KEY-----\ngarbage\n",
    )
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(presented(g.addr).await, second);
    // Completing it puts the new pair in service.
    std::fs::write(g._dir.path().join("key.pem"), ck.key_pair.serialize_pem()).unwrap();
    assert!(wait_presented(g.addr, &ck.cert.der().clone()).await);
}

#[tokio::test]
async fn a_reload_trigger_loads_the_files_at_once() {
    // Files looked at only once an hour: the trigger (SIGHUP in `corral serve`) does it now.
    let g = tls_gate_checking(Some(std::time::Duration::from_secs(3600))).await;
    let second = renew(&g);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(presented(g.addr).await, g.cert, "no look at the files yet");
    g.reload.notify_one();
    assert!(wait_presented(g.addr, &second).await);
}
