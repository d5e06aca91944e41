//! Mutual TLS: client certificates required by `server.tls_client_ca` (and revoked by
//! `server.tls_client_crl`), keys bound to certificate names by `client_cert_names`, the
//! certificate in the audit record, HTTP/2, and a CA bundle replaced while the gate runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use corral_audit::{AuditLog, Rotation};
use corral_gate::{ClientCaFiles, Gate, GateError, GateSettings, TlsFiles};
use corral_policy::config::{Config, UpstreamAddr};
use corral_store::KeyStore;
use corral_testsupport::pki::TestCa as Ca;
use corral_testsupport::MockOllama;
use http::Request;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, SerialNumber};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use serde_json::Value;
use sha2::Digest as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const POLICIES: &str = r#"
[policies.apps]
models = ["*"]
client_cert_names = ["app-*", "batch.example.com"]
"#;

/// Key name → policy.
const KEYS: &[(&str, &str)] = &[("appkey", "apps"), ("alice", "user")];

/// Issuing client certificates from a test CA.
trait Issue {
    fn issue(&self, cn: &str, dns: &[&str], serial: u64) -> Client;
    fn issue_until(&self, cn: &str, serial: u64, unix: u64) -> Client;
    fn issue_with(
        &self,
        cn: &str,
        dns: &[&str],
        serial: u64,
        edit: impl FnOnce(&mut CertificateParams),
    ) -> Client;
}

impl Issue for Ca {
    /// A client certificate with this CN and DNS names, and serial number.
    fn issue(&self, cn: &str, dns: &[&str], serial: u64) -> Client {
        self.issue_with(cn, dns, serial, |_| {})
    }

    /// A client certificate valid until `unix` (seconds since the Unix epoch).
    fn issue_until(&self, cn: &str, serial: u64, unix: u64) -> Client {
        self.issue_with(cn, &[], serial, |p| {
            p.not_before = rcgen::date_time_ymd(2024, 1, 1);
            p.not_after = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(unix);
        })
    }

    fn issue_with(
        &self,
        cn: &str,
        dns: &[&str],
        serial: u64,
        edit: impl FnOnce(&mut CertificateParams),
    ) -> Client {
        let mut p = CertificateParams::new(dns.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
            .unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.serial_number = Some(SerialNumber::from(serial));
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        edit(&mut p);
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        Client {
            der: cert.der().clone(),
            intermediates: Vec::new(),
            key: key.serialize_der(),
        }
    }
}

#[derive(Clone)]
struct Client {
    der: CertificateDer<'static>,
    /// Sent after the leaf.
    intermediates: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

impl Client {
    /// The same certificate, sent with the intermediate CA that issued it.
    fn via(mut self, sub: &Ca) -> Client {
        self.intermediates.push(sub.cert.der().clone());
        self
    }

    fn sha256(&self) -> String {
        sha2::Sha256::digest(&self.der)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect()
    }
}

struct MtlsGate {
    addr: SocketAddr,
    server_cert: CertificateDer<'static>,
    keys: HashMap<String, String>,
    mock: MockOllama,
    dir: tempfile::TempDir,
    ca_path: PathBuf,
    metrics: corral_gate::MetricsSource,
    _stop: tokio::sync::oneshot::Sender<()>,
}

struct Options<'a> {
    ca: &'a Ca,
    crls: Vec<String>,
    check_every: Option<Duration>,
}

async fn mtls_gate(o: Options<'_>) -> MtlsGate {
    let mock = MockOllama::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let ca_path = write("client-ca.pem", &o.ca.cert.pem());
    let crls = o
        .crls
        .iter()
        .enumerate()
        .map(|(i, c)| write(&format!("crl{i}.pem"), c))
        .collect();
    let tls = TlsFiles {
        cert: write("cert.pem", &server.cert.pem()),
        key: write("key.pem", &server.key_pair.serialize_pem()),
        client: Some(ClientCaFiles {
            ca: ca_path.clone(),
            crls,
        }),
    };
    let store = KeyStore::open(&dir.path().join("data")).unwrap();
    let mut keys = HashMap::new();
    for (name, policy) in KEYS {
        let (_, secret) = store.create(name, policy, None).unwrap();
        keys.insert((*name).to_owned(), secret.expose().to_owned());
    }
    let (audit, worker) =
        AuditLog::open(&dir.path().join("audit.ndjson"), Rotation::default()).unwrap();
    tokio::spawn(worker.run());
    let mut settings = GateSettings::new(
        "127.0.0.1:0".parse().unwrap(),
        UpstreamAddr::parse(&mock.url()).unwrap(),
        Arc::new(Config::from_toml_str(POLICIES).unwrap()),
    );
    settings.tls = Some(tls);
    let mut gate = Gate::bind(settings, store, audit).await.unwrap();
    if let Some(every) = o.check_every {
        gate.set_cert_check_interval(every);
    }
    let addr = gate.local_addr();
    let metrics = gate.metrics();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gate.run(async move {
        let _ = rx.await;
    }));
    MtlsGate {
        metrics,
        addr,
        server_cert: server.cert.der().clone(),
        keys,
        mock,
        dir,
        ca_path,
        _stop: tx,
    }
}

impl MtlsGate {
    fn connector(&self, client: Option<&Client>, alpn: &[u8]) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.server_cert.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let mut cfg = match client {
            Some(c) => builder
                .with_client_auth_cert(
                    std::iter::once(c.der.clone())
                        .chain(c.intermediates.iter().cloned())
                        .collect(),
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(c.key.clone())),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        cfg.alpn_protocols = vec![alpn.to_vec()];
        tokio_rustls::TlsConnector::from(Arc::new(cfg))
    }

    /// An HTTP/2 connection presenting `client`: its request sender and the task driving it,
    /// which ends when the connection closes.
    async fn h2(
        &self,
        client: &Client,
    ) -> (
        hyper::client::conn::http2::SendRequest<Full<Bytes>>,
        tokio::task::JoinHandle<()>,
    ) {
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let tls = self
            .connector(Some(client), b"h2")
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .expect("HTTP/2 over mutual TLS");
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        (sender, conn)
    }

    /// One HTTP/1.1 request on a fresh connection presenting `client`: the whole answer, or
    /// what went wrong on the way (a refused handshake shows as an error or no answer).
    async fn get(&self, client: Option<&Client>, path: &str, key: &str) -> Result<String, String> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let mut tls = self
            .connector(client, b"http/1.1")
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
             Connection: close\r\n\r\n",
            self.keys[key]
        );
        tls.write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut out = Vec::new();
        match tokio::time::timeout(T, tls.read_to_end(&mut out)).await {
            Ok(Ok(_)) => Ok(String::from_utf8_lossy(&out).into_owned()),
            Ok(Err(e)) => Err(format!("read: {e}")),
            Err(_) => Err("no answer in time".into()),
        }
    }

    /// Asserts the connection presenting `client` never got to HTTP, and nothing reached
    /// the upstream.
    async fn assert_refused(&self, client: Option<&Client>) {
        match self.get(client, "/api/tags", "alice").await {
            Err(_) => {}
            Ok(text) => assert!(!text.contains("HTTP/1.1"), "an HTTP answer: {text}"),
        }
        let reached: Vec<_> = self
            .mock
            .requests()
            .into_iter()
            .filter(|r| !is_gate_own_request(r))
            .collect();
        assert!(reached.is_empty(), "{reached:?}");
    }

    /// `corral_tls_handshake_failures_total` for `reason`, once it is at least `n`.
    async fn handshake_failures(&self, reason: &str, n: u64) -> u64 {
        let series = format!("corral_tls_handshake_failures_total{{reason=\"{reason}\"}} ");
        let deadline = Instant::now() + T;
        loop {
            let text = self.metrics.render();
            let got = text
                .lines()
                .find_map(|l| l.strip_prefix(series.as_str()))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if got >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The audit records whose `url.path` is `path`, once `n` are written.
    async fn records(&self, path: &str, n: usize) -> Vec<Value> {
        let file = self.dir.path().join("audit.ndjson");
        let deadline = Instant::now() + T;
        loop {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let records: Vec<Value> = text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|r| r["url"]["path"] == path)
                .collect();
            if records.len() >= n || Instant::now() > deadline {
                return records;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn status(text: &str) -> u16 {
    text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn body(text: &str) -> Value {
    let at = text.find("\r\n\r\n").unwrap() + 4;
    serde_json::from_str(&text[at..]).unwrap_or(Value::Null)
}

#[tokio::test]
async fn without_a_client_certificate_the_handshake_fails_and_nothing_is_served() {
    let ca = Ca::new("apps CA").unwrap();
    let g = mtls_gate(Options {
        ca: &ca,
        crls: Vec::new(),
        check_every: None,
    })
    .await;
    g.assert_refused(None).await;
    assert_eq!(
        g.handshake_failures("client_certificate_missing", 1).await,
        1
    );
    // Nor with a certificate from another CA, even one with a bound name.
    let other = Ca::new("someone else's CA").unwrap().issue("app-1", &[], 1);
    g.assert_refused(Some(&other)).await;
    assert_eq!(
        g.handshake_failures("client_certificate_invalid", 1).await,
        1
    );
    // A certificate of the configured CA is served.
    let good = ca.issue("web-1", &[], 2);
    let text = g.get(Some(&good), "/api/tags", "alice").await.unwrap();
    assert_eq!(status(&text), 200, "{text}");
}

#[tokio::test]
async fn a_revoked_client_certificate_is_refused() {
    let ca = Ca::new("apps CA").unwrap();
    let g = mtls_gate(Options {
        ca: &ca,
        crls: vec![ca.crl_revoking(66).unwrap()],
        check_every: None,
    })
    .await;
    g.assert_refused(Some(&ca.issue("app-1", &[], 66))).await;
    assert_eq!(
        g.handshake_failures("client_certificate_revoked", 1).await,
        1
    );
    assert_eq!(
        g.handshake_failures("client_certificate_invalid", 0).await,
        0
    );
    let text = g
        .get(Some(&ca.issue("app-1", &[], 67)), "/api/tags", "alice")
        .await
        .unwrap();
    assert_eq!(status(&text), 200, "{text}");
}

#[tokio::test]
async fn a_bound_key_needs_a_certificate_with_one_of_its_names() {
    let ca = Ca::new("apps CA").unwrap();
    let g = mtls_gate(Options {
        ca: &ca,
        crls: Vec::new(),
        check_every: None,
    })
    .await;
    let app = ca.issue("app-1", &[], 1);
    let by_san = ca.issue("Batch job", &["batch.example.com"], 2);
    let web = ca.issue("web-1", &["web-1.example.com"], 3);

    for (client, path) in [(&app, "/api/tags"), (&by_san, "/v1/models")] {
        let text = g.get(Some(client), path, "appkey").await.unwrap();
        assert_eq!(status(&text), 200, "{path}: {text}");
    }

    // Another application's certificate: refused in each dialect, before any upstream contact.
    let before = g.mock.requests().len();
    let text = g.get(Some(&web), "/api/tags", "appkey").await.unwrap();
    assert_eq!(status(&text), 403, "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("x-corral-rule: client_certificate"),
        "{text}"
    );
    let message = body(&text)["error"].as_str().unwrap().to_owned();
    assert!(message.contains("client certificate"), "{message}");
    let text = g.get(Some(&web), "/v1/models", "appkey").await.unwrap();
    assert_eq!(status(&text), 403, "{text}");
    let b = body(&text);
    assert_eq!(b["error"]["code"], "client_certificate", "{text}");
    assert!(b["error"]["message"].is_string(), "{text}");
    assert_eq!(
        g.mock.requests().len(),
        before,
        "refused without upstream contact"
    );

    // A key of an unbound policy is not affected.
    let text = g.get(Some(&web), "/api/tags", "alice").await.unwrap();
    assert_eq!(status(&text), 200, "{text}");

    // The refusals are audited with the rule and the certificate that was presented.
    let denied: Vec<Value> = g
        .records("/v1/models", 2)
        .await
        .into_iter()
        .filter(|r| r["corral"]["reason"] == "client_certificate")
        .collect();
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["event"]["action"], "deny");
    assert_eq!(denied[0]["http"]["response"]["status_code"], 403);
    assert_eq!(
        denied[0]["tls"]["client"]["x509"]["subject"]["common_name"],
        serde_json::json!(["web-1"])
    );
    assert_eq!(denied[0]["tls"]["client"]["hash"]["sha256"], web.sha256());
}

#[tokio::test]
async fn audit_records_carry_the_client_certificate() {
    let ca = Ca::new("apps CA").unwrap();
    let g = mtls_gate(Options {
        ca: &ca,
        crls: Vec::new(),
        check_every: None,
    })
    .await;
    let app = ca.issue("app-7", &["app-7.example.com"], 9);
    let text = g.get(Some(&app), "/api/version", "appkey").await.unwrap();
    assert_eq!(status(&text), 200, "{text}");
    let records = g.records("/api/version", 1).await;
    assert_eq!(records.len(), 1, "{records:?}");
    let tls = &records[0]["tls"]["client"];
    assert_eq!(
        tls["x509"]["subject"]["common_name"],
        serde_json::json!(["app-7"])
    );
    let hash = tls["hash"]["sha256"].as_str().unwrap();
    assert_eq!(hash, app.sha256());
    assert_eq!(hash.len(), 64);
    assert!(hash
        .chars()
        .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
    // Nothing secret in the log: not the key, not the client's private key.
    let log = std::fs::read_to_string(g.dir.path().join("audit.ndjson")).unwrap();
    assert!(!log.contains(&g.keys["appkey"]));
    // The chain still verifies with the new fields.
    let report = corral_audit::verify(&[g.dir.path().join("audit.ndjson")]).unwrap();
    assert_eq!(report.first_problem, None);
    assert!(report.records >= 1);
}

#[tokio::test]
async fn http2_streams_of_one_connection_share_its_certificate() {
    let ca = Ca::new("apps CA").unwrap();
    let g = mtls_gate(Options {
        ca: &ca,
        crls: Vec::new(),
        check_every: None,
    })
    .await;
    let app = ca.issue("app-2", &[], 5);
    let (sender, _conn) = g.h2(&app).await;
    let mut streams = Vec::new();
    for key in ["appkey", "appkey", "alice"] {
        let mut sender = sender.clone();
        let req = Request::builder()
            .uri(format!("https://localhost:{}/api/tags", g.addr.port()))
            .header("authorization", format!("Bearer {}", g.keys[key]))
            .body(Full::new(Bytes::new()))
            .unwrap();
        streams.push(tokio::spawn(async move {
            let resp = tokio::time::timeout(T, sender.send_request(req))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(resp.version(), http::Version::HTTP_2);
            read_reply(resp).await.status
        }));
    }
    for s in streams {
        assert_eq!(s.await.unwrap(), 200);
    }
    let records = g.records("/api/tags", 3).await;
    assert_eq!(records.len(), 3, "{records:?}");
    for r in &records {
        assert_eq!(r["tls"]["client"]["hash"]["sha256"], app.sha256(), "{r}");
    }
}

#[tokio::test]
async fn a_replaced_ca_bundle_is_taken_up_while_the_gate_runs() {
    let old = Ca::new("old CA").unwrap();
    let new = Ca::new("new CA").unwrap();
    let g = mtls_gate(Options {
        ca: &old,
        crls: Vec::new(),
        check_every: Some(Duration::from_millis(100)),
    })
    .await;
    let next = new.issue("app-3", &[], 3);
    g.assert_refused(Some(&next)).await;
    // Replaced by rename, as a deployment tool would.
    let tmp = g.ca_path.with_extension("tmp");
    std::fs::write(&tmp, new.cert.pem()).unwrap();
    std::fs::rename(&tmp, &g.ca_path).unwrap();
    let deadline = Instant::now() + T;
    loop {
        if let Ok(text) = g.get(Some(&next), "/api/tags", "appkey").await {
            if status(&text) == 200 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the new CA was never taken up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And the old CA's certificates are refused from then on.
    g.assert_refused(Some(&old.issue("app-3", &[], 4))).await;
}

#[tokio::test]
async fn a_policy_bound_to_names_without_a_client_ca_is_refused_at_bind() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(&dir.path().join("data")).unwrap();
    let (audit, _worker) =
        AuditLog::open(&dir.path().join("audit.ndjson"), Rotation::default()).unwrap();
    let settings = GateSettings::new(
        "127.0.0.1:0".parse().unwrap(),
        UpstreamAddr::parse("http://127.0.0.1:9").unwrap(),
        Arc::new(Config::from_toml_str(POLICIES).unwrap()),
    );
    match Gate::bind(settings, store, audit).await {
        Err(e @ GateError::Config(_)) => {
            let text = e.to_string();
            assert!(text.contains("policies.apps.client_cert_names"), "{text}");
            assert!(text.contains("server.tls_client_ca"), "{text}");
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a binding that could never be checked was accepted"),
    }
}

/// An HTTP/1.1 request on an open connection; the status, the `connection` header, and the
/// body.
async fn send_h1(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    g: &MtlsGate,
    key: &str,
) -> Result<(u16, Option<String>, String), String> {
    let req = Request::builder()
        .uri("/api/tags")
        .header("host", "localhost")
        .header("authorization", format!("Bearer {}", g.keys[key]))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(T, sender.send_request(req))
        .await
        .map_err(|_| "no answer in time".to_owned())?
        .map_err(|e| e.to_string())?;
    let connection = resp
        .headers()
        .get("connection")
        .map(|v| v.to_str().unwrap().to_owned());
    let reply = read_reply(resp).await;
    Ok((
        reply.status,
        connection,
        String::from_utf8_lossy(&reply.body).into_owned(),
    ))
}

impl MtlsGate {
    /// The first audit record for `path` that `matches`, once written.
    async fn record_where(&self, path: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + T;
        loop {
            let records = self.records(path, 0).await;
            if let Some(r) = records.iter().find(|r| matches(r)) {
                return r.clone();
            }
            assert!(Instant::now() < deadline, "no such record: {records:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// An HTTP/1.1 keep-alive connection presenting `client`, and the task driving it (ends
    /// when the connection closes).
    async fn keep_alive(
        &self,
        client: &Client,
    ) -> (
        hyper::client::conn::http1::SendRequest<Full<Bytes>>,
        tokio::task::JoinHandle<()>,
    ) {
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let tls = self
            .connector(Some(client), b"http/1.1")
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        (sender, task)
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn sessions_are_never_resumed_so_every_connection_verifies_its_certificate() {
    let ca = Ca::new("apps CA").unwrap();
    let g = mtls_gate(Options {
        ca: &ca,
        crls: Vec::new(),
        check_every: None,
    })
    .await;
    let app = ca.issue("app-1", &[], 1);
    // One client configuration (with rustls's default session cache) for both connections:
    // a resumable session would be resumed on the second.
    let connector = g.connector(Some(&app), b"http/1.1");
    for round in 0..3 {
        let tcp = tokio::net::TcpStream::connect(g.addr).await.unwrap();
        let mut tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        assert_eq!(
            tls.get_ref().1.handshake_kind(),
            Some(rustls::HandshakeKind::Full),
            "round {round}"
        );
        let request = format!(
            "GET /api/tags HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
             Connection: close\r\n\r\n",
            g.keys["appkey"]
        );
        tls.write_all(request.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(T, tls.read_to_end(&mut out)).await;
        assert_eq!(status(&String::from_utf8_lossy(&out)), 200);
    }
}

#[tokio::test]
async fn a_keep_alive_connection_does_not_outlive_its_certificate() {
    let ca = Ca::new("apps CA").unwrap();
    let g = mtls_gate(Options {
        ca: &ca,
        crls: Vec::new(),
        check_every: None,
    })
    .await;
    // Valid for two more seconds (X.509 times are to the second).
    let end = unix_now() + 2;
    let app = ca.issue_until("app-1", 1, end);
    let (mut sender, conn) = g.keep_alive(&app).await;
    let (code, _, _) = send_h1(&mut sender, &g, "appkey").await.unwrap();
    assert_eq!(code, 200);
    while unix_now() <= end {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, connection, body) = send_h1(&mut sender, &g, "alice").await.unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("expired"), "{body}");
    assert_eq!(connection.as_deref(), Some("close"));
    // And the connection is closed.
    tokio::time::timeout(T, conn).await.unwrap().unwrap();
    let refused = g
        .record_where("/api/tags", |r| {
            r["corral"]["reason"] == "client_certificate"
        })
        .await;
    assert_eq!(refused["http"]["response"]["status_code"], 403);
    assert_eq!(refused["tls"]["client"]["hash"]["sha256"], app.sha256());
}

#[tokio::test]
async fn a_revocation_reaches_connections_already_open() {
    let ca = Ca::new("apps CA").unwrap();
    let g = mtls_gate(Options {
        ca: &ca,
        crls: vec![ca.crl_revoking(999).unwrap()],
        check_every: Some(Duration::from_millis(100)),
    })
    .await;
    let app = ca.issue("app-1", &[], 5);
    let other = ca.issue("app-2", &[], 6);
    let (mut sender, conn) = g.keep_alive(&app).await;
    let (mut untouched, _conn2) = g.keep_alive(&other).await;
    assert_eq!(send_h1(&mut sender, &g, "appkey").await.unwrap().0, 200);

    let crl = g.dir.path().join("crl0.pem");
    let tmp = crl.with_extension("tmp");
    std::fs::write(&tmp, ca.crl_revoking(5).unwrap()).unwrap();
    std::fs::rename(&tmp, &crl).unwrap();

    let deadline = Instant::now() + T;
    let (code, connection, body) = loop {
        let got = send_h1(&mut sender, &g, "appkey").await.unwrap();
        if got.0 != 200 {
            break got;
        }
        assert!(Instant::now() < deadline, "the revocation never applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("no longer accepted"), "{body}");
    assert_eq!(connection.as_deref(), Some("close"));
    tokio::time::timeout(T, conn).await.unwrap().unwrap();
    // A certificate the new list does not revoke keeps its connection.
    assert_eq!(send_h1(&mut untouched, &g, "alice").await.unwrap().0, 200);
    // New connections with the revoked certificate fail at the handshake.
    g.assert_refused(Some(&app)).await;
    let refused = g
        .record_where("/api/tags", |r| {
            r["corral"]["reason"] == "client_certificate"
                && r["tls"]["client"]["hash"]["sha256"] == app.sha256()
        })
        .await;
    assert_eq!(refused["http"]["response"]["status_code"], 403);
}

#[tokio::test]
async fn a_revocation_reaches_http2_connections_too() {
    let ca = Ca::new("apps CA").unwrap();
    let g = mtls_gate(Options {
        ca: &ca,
        crls: vec![ca.crl_revoking(999).unwrap()],
        check_every: Some(Duration::from_millis(100)),
    })
    .await;
    let app = ca.issue("app-1", &[], 5);
    let (sender, conn) = g.h2(&app).await;
    let get = |mut sender: hyper::client::conn::http2::SendRequest<Full<Bytes>>| {
        let req = Request::builder()
            .uri(format!("https://localhost:{}/v1/models", g.addr.port()))
            .header("authorization", format!("Bearer {}", g.keys["appkey"]))
            .body(Full::new(Bytes::new()))
            .unwrap();
        async move {
            let resp = tokio::time::timeout(T, sender.send_request(req))
                .await
                .unwrap()
                .unwrap();
            read_reply(resp).await
        }
    };
    assert_eq!(get(sender.clone()).await.status, 200);
    let crl = g.dir.path().join("crl0.pem");
    let tmp = crl.with_extension("tmp");
    std::fs::write(&tmp, ca.crl_revoking(5).unwrap()).unwrap();
    std::fs::rename(&tmp, &crl).unwrap();
    let deadline = Instant::now() + T;
    let reply = loop {
        let reply = get(sender.clone()).await;
        if reply.status != 200 {
            break reply;
        }
        assert!(Instant::now() < deadline, "the revocation never applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(reply.status, 403);
    let b: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(b["error"]["code"], "client_certificate", "{b}");
    tokio::time::timeout(T, conn).await.unwrap().unwrap();
}

#[tokio::test]
async fn under_name_constraints_only_dns_names_bind() {
    let root = Ca::new("root CA").unwrap();
    let team = root.sub_ca("team-a CA", Some("team-a.example")).unwrap();
    let g = mtls_gate(Options {
        ca: &root,
        crls: Vec::new(),
        check_every: None,
    })
    .await;
    // A CN the sub-CA may not vouch for: webpki checks constraints on DNS names only.
    for (cn, dns) in [
        ("app-billing", &[][..]),
        ("app-billing", &["svc.team-a.example"][..]),
    ] {
        let leaf = team.issue(cn, dns, 10).via(&team);
        let text = g.get(Some(&leaf), "/api/tags", "appkey").await.unwrap();
        assert_eq!(status(&text), 403, "{cn} {dns:?}: {text}");
        // The certificate is still a valid client certificate for unbound keys.
        let text = g.get(Some(&leaf), "/api/tags", "alice").await.unwrap();
        assert_eq!(status(&text), 200, "{text}");
    }
    // A DNS name inside the constraint matches the binding.
    let leaf = team
        .issue("whatever", &["app-1.team-a.example"], 11)
        .via(&team);
    let text = g.get(Some(&leaf), "/api/tags", "appkey").await.unwrap();
    assert_eq!(status(&text), 200, "{text}");
    // The root's own certificates, with no constraint on the way, still bind by CN.
    let direct = root.issue("app-billing", &[], 12);
    let text = g.get(Some(&direct), "/api/tags", "appkey").await.unwrap();
    assert_eq!(status(&text), 200, "{text}");
    // The audit record keeps the CN.
    g.record_where("/api/tags", |r| {
        r["tls"]["client"]["x509"]["subject"]["common_name"] == serde_json::json!(["app-billing"])
            && r["corral"]["reason"] == "client_certificate"
    })
    .await;
}

#[tokio::test]
async fn a_name_constrained_client_ca_binds_by_dns_names_only() {
    let root = Ca::constrained("team-a root", Some("team-a.example")).unwrap();
    let g = mtls_gate(Options {
        ca: &root,
        crls: Vec::new(),
        check_every: None,
    })
    .await;
    let by_cn = root.issue("app-billing", &[], 1);
    let text = g.get(Some(&by_cn), "/api/tags", "appkey").await.unwrap();
    assert_eq!(status(&text), 403, "{text}");
    let by_dns = root.issue("x", &["app-2.team-a.example"], 2);
    let text = g.get(Some(&by_dns), "/api/tags", "appkey").await.unwrap();
    assert_eq!(status(&text), 200, "{text}");
}
