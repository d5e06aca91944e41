//! End-to-end probes against mock servers on 127.0.0.x. Nothing outside 127.0.0.0/8 is scanned.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mock;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_scan::fingerprint::{probe, ProbeOptions};
use corral_scan::http::{Client, HttpConfig};
use corral_scan::report::{Admin, Auth, HostReport, ServerKind, Severity};
use corral_scan::scanner::{self, Progress, ScanOptions};
use corral_scan::targets::{Endpoint, Filter, Input, InputFormat, Scheme, TargetStream};
use corral_scan::tls::TlsContext;
use mock::{spawn, spawn_keep_alive, spawn_tls, Kind, Mock};

fn client(max_body: usize) -> Client {
    let cfg = HttpConfig {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(800),
        max_body,
        retries: 1,
        ..HttpConfig::default()
    };
    Client {
        cfg: Arc::new(cfg),
        tls: Arc::new(TlsContext::new().unwrap()),
    }
}

fn ep(m: &Mock) -> Endpoint {
    assert!(m.addr.ip().is_loopback(), "tests scan loopback only");
    Endpoint {
        ip: m.addr.ip(),
        port: m.addr.port(),
        scheme: None,
        host: None,
    }
}

async fn fp(m: &Mock, opts: &ProbeOptions) -> Option<HostReport> {
    probe(&client(64 * 1024), &ep(m), opts).await
}

fn rules(r: &HostReport) -> Vec<&'static str> {
    r.findings.iter().map(|f| f.rule).collect()
}

/// Scans `range` on `port` until it is done or `stop` completes: the outcome and the hosts
/// found (target warnings ignored).
async fn scan_range(
    range: &str,
    port: u16,
    opts: &ScanOptions,
    stop: impl std::future::Future<Output = ()>,
) -> (scanner::ScanOutcome, Vec<HostReport>) {
    let stream = TargetStream::new(
        vec![Input::Arg(range.into())],
        InputFormat::List,
        vec![port],
        Filter::default(),
        None,
    );
    let mut found = Vec::new();
    let outcome = scanner::run(
        opts,
        stream,
        stop,
        Arc::default(),
        |h| found.push(h),
        |_| {},
    )
    .await
    .unwrap();
    (outcome, found)
}

fn assert_read_only(mocks: &[&Mock]) {
    for m in mocks {
        for (method, path) in m.requests() {
            assert!(
                !mock::forbidden(&method, &path),
                "{} saw forbidden {method} {path}",
                m.addr
            );
            assert!(
                corral_scan::fingerprint::ALLOWED
                    .iter()
                    .any(|(am, ap)| *am == method && *ap == path),
                "{} saw unlisted {method} {path}",
                m.addr
            );
        }
    }
}

/// One endpoint's requests share a connection when the server keeps it open, and a server
/// that closes after every reply still gets every request (on fresh connections).
#[tokio::test]
async fn requests_of_one_endpoint_share_a_keep_alive_connection() {
    let kind = Kind::Ollama {
        version: "0.6.0",
        caps: false,
    };
    let (m, conns) = spawn_keep_alive("127.0.0.61", kind.clone()).await;
    let r = fp(&m, &ProbeOptions::default()).await.unwrap();
    let sent = m.requests().len();
    // GET /, /api/version, /api/tags, 3x POST /api/show, /api/ps, HEAD blob.
    assert_eq!(sent, 8, "{:?}", m.requests());
    assert_eq!(conns.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(r.admin, Admin::Reachable);
    assert_eq!(r.models.len(), 3);
    assert!(r.models.iter().all(|m| !m.capabilities.is_empty()));
    assert_read_only(&[&m]);

    let closing = spawn("127.0.0.62", 0, kind).await;
    let r2 = fp(&closing, &ProbeOptions::default()).await.unwrap();
    assert_eq!(closing.requests().len(), 8);
    assert_eq!(r2.findings, r.findings);
}

#[tokio::test]
async fn modern_ollama_uses_tags_capabilities_and_finds_admin_routes() {
    let m = spawn(
        "127.0.1.1",
        0,
        Kind::Ollama {
            version: "0.33.0",
            caps: true,
        },
    )
    .await;
    let r = fp(&m, &ProbeOptions::default()).await.unwrap();
    assert_eq!(
        (r.server, r.auth, r.admin, r.scheme),
        (
            ServerKind::Ollama,
            Auth::Open,
            Admin::Reachable,
            Scheme::Http
        )
    );
    assert_eq!(r.version.as_deref(), Some("0.33.0"));
    assert_eq!(r.models.len(), 4);
    assert!(r.models.iter().any(|m| m.cloud && m.has("tools")));
    assert_eq!(r.loaded_models, vec!["llama3.1:8b"]);
    assert_eq!(m.count("POST", "/api/show"), 0, "tags carried capabilities");
    let rs = rules(&r);
    for want in [
        "ollama-admin-exposed",
        "ollama-unauthenticated",
        "tool-models-exposed",
        "cloud-models-exposed",
    ] {
        assert!(rs.contains(&want), "{want} not in {rs:?}");
    }
    assert!(!rs.iter().any(|r| r.contains("cve")), "{rs:?}");
    assert_eq!(r.findings[0].severity, Severity::Critical);
    let admin = r
        .findings
        .iter()
        .find(|f| f.rule == "ollama-admin-exposed")
        .unwrap();
    assert!(admin
        .evidence
        .iter()
        .any(|e| e.request.starts_with("HEAD /api/blobs/sha256:000") && e.status == 404));
    assert_read_only(&[&m]);
}

#[tokio::test]
async fn old_ollama_gets_bounded_show_calls_and_critical_cve() {
    let m = spawn(
        "127.0.1.2",
        0,
        Kind::Ollama {
            version: "0.1.33",
            caps: false,
        },
    )
    .await;
    let r = fp(
        &m,
        &ProbeOptions {
            max_show: 2,
            ..ProbeOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(m.count("POST", "/api/show"), 2, "bounded by max_show");
    assert!(
        r.models[0].has("tools"),
        "inferred from template: {:?}",
        r.models[0]
    );
    assert!(
        r.models[1].has("vision"),
        "inferred from projector_info: {:?}",
        r.models[1]
    );
    assert!(r.models[2].capabilities.is_empty());
    let crit = r
        .findings
        .iter()
        .find(|f| f.rule == "ollama-critical-cve")
        .unwrap();
    assert_eq!(crit.severity, Severity::Critical);
    assert!(crit.detail.contains("CVE-2024-37032") && crit.detail.contains("CVE-2026-7482"));
    // /api/show returns system prompts: never kept as evidence.
    let json = serde_json::to_string(&r).unwrap();
    assert!(!json.contains("secret system prompt"));
    assert_read_only(&[&m]);
}

/// `/api/show` for a cloud model could make the target ask ollama.com, on its owner's
/// account: cloud models are recorded from /api/tags alone and never shown.
#[tokio::test]
async fn cloud_models_are_never_shown() {
    let o = ProbeOptions::default();
    let only = spawn("127.0.1.30", 0, Kind::OllamaCloud { local: false }).await;
    let r = fp(&only, &o).await.unwrap();
    assert_eq!(only.count("POST", "/api/show"), 0);
    assert_eq!(r.models.len(), 4);
    assert!(r.models.iter().all(|m| m.cloud), "{:?}", r.models);
    assert!(rules(&r).contains(&"cloud-models-exposed"));

    let mixed = spawn("127.0.1.31", 0, Kind::OllamaCloud { local: true }).await;
    let r = fp(&mixed, &o).await.unwrap();
    assert_eq!(mixed.count("POST", "/api/show"), 1, "the local model only");
    assert!(r.models[4].has("tools"), "{:?}", r.models[4]);
    assert_read_only(&[&only, &mixed]);
}

#[tokio::test]
async fn protected_ollama_and_corral_gate() {
    let p = spawn("127.0.1.3", 0, Kind::OllamaProtected).await;
    let r = fp(&p, &ProbeOptions::default()).await.unwrap();
    assert_eq!((r.server, r.auth), (ServerKind::Ollama, Auth::Protected));
    assert_eq!(
        rules(&r),
        vec!["ollama-vulnerable-version-protected", "protected"]
    );
    assert_eq!(r.findings[0].severity, Severity::Medium);
    assert_eq!(p.count("POST", "/api/show"), 0);
    let g = spawn("127.0.1.4", 0, Kind::CorralGate).await;
    let r = fp(&g, &ProbeOptions::default()).await.unwrap();
    assert_eq!(
        (r.server, r.auth),
        (ServerKind::CorralGate, Auth::Protected)
    );
    assert_eq!(rules(&r), vec!["protected-corral-gate"]);
    assert_eq!(r.max_severity(), Severity::Info);
    assert_read_only(&[&p, &g]);
}

#[tokio::test]
async fn other_servers_by_their_signals() {
    let vllm = spawn("127.0.1.5", 0, Kind::Vllm).await;
    let llama = spawn("127.0.1.6", 0, Kind::LlamaCpp).await;
    let kobold = spawn("127.0.1.7", 0, Kind::Koboldcpp).await;
    let webui = spawn("127.0.1.8", 0, Kind::OpenWebui).await;
    let lite = spawn("127.0.1.9", 0, Kind::Litellm).await;
    let nginx = spawn("127.0.1.10", 0, Kind::Nginx).await;
    let o = ProbeOptions::default();
    let r = fp(&vllm, &o).await.unwrap();
    assert_eq!((r.server, r.auth), (ServerKind::Vllm, Auth::Open));
    assert_eq!(r.models[0].name, "Qwen/Qwen2.5-7B-Instruct");
    assert_eq!(rules(&r), vec!["llm-server-unauthenticated"]);
    let r = fp(&llama, &o).await.unwrap();
    assert_eq!((r.server, r.auth), (ServerKind::LlamaCpp, Auth::Open));
    let r = fp(&kobold, &o).await.unwrap();
    assert_eq!(
        r.server,
        ServerKind::Koboldcpp,
        "KoboldCpp's banner wins over its Ollama emulation"
    );
    assert_eq!(r.version.as_deref(), Some("1.82.4"));
    let r = fp(&webui, &o).await.unwrap();
    assert_eq!(r.server, ServerKind::OpenWebui);
    assert_eq!(rules(&r), vec!["open-webui-open-signup"]);
    assert_eq!(r.findings[0].severity, Severity::Medium);
    let r = fp(&lite, &o).await.unwrap();
    assert_eq!((r.server, r.auth), (ServerKind::Litellm, Auth::Protected));
    assert!(
        fp(&nginx, &o).await.is_none(),
        "a plain web server is not reported"
    );
    assert_read_only(&[&vllm, &llama, &kobold, &webui, &lite, &nginx]);
}

/// A server found by a route that answers with or without an API key (llama.cpp's /health)
/// is claimed open only when /v1/models answers with a model list: a 404, a 500 or an HTML
/// page leaves it unknown, graded medium, never "unauthenticated".
#[tokio::test]
async fn other_servers_without_a_model_list_are_not_claimed_open() {
    let o = ProbeOptions::default();
    for (i, status) in [404u16, 500, 200].into_iter().enumerate() {
        let m = spawn(
            &format!("127.0.1.{}", 20 + i),
            0,
            Kind::LlamaCppNoModelList { status },
        )
        .await;
        let r = fp(&m, &o).await.unwrap();
        assert_eq!(
            (r.server, r.auth),
            (ServerKind::LlamaCpp, Auth::Unknown),
            "/v1/models {status}"
        );
        assert_eq!(rules(&r), vec!["llm-server-auth-undetermined"]);
        assert_eq!(r.findings[0].severity, Severity::Medium);
        assert!(
            r.findings[0].title.contains("unknown"),
            "{}",
            r.findings[0].title
        );
        assert!(r.findings[0]
            .evidence
            .iter()
            .any(|e| e.request == "GET /v1/models" && e.status == status));
        assert_read_only(&[&m]);
    }
}

#[tokio::test]
async fn hostile_servers_are_bounded() {
    let slow = spawn("127.0.1.11", 0, Kind::Slow).await;
    let endless = spawn("127.0.1.12", 0, Kind::Endless).await;
    let garbage = spawn("127.0.1.13", 0, Kind::Garbage).await;
    let o = ProbeOptions::default();
    let t = Instant::now();
    assert!(fp(&slow, &o).await.is_none());
    // Two attempts of 800 ms (one retry after a timeout), nothing more.
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(slow.requests().is_empty());
    let t = Instant::now();
    let r = fp(&endless, &o).await.unwrap();
    assert_eq!(r.server, ServerKind::Ollama);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(fp(&garbage, &o).await.is_none());
    // The cap holds for a single response: far less than the gigabyte the server offers.
    let c = client(100_000);
    let conn = corral_scan::http::Conn {
        ip: endless.addr.ip(),
        port: endless.addr.port(),
        host: None,
        tls: false,
    };
    let resp = c.get(&conn, None, "/api/tags").await.unwrap();
    assert!(resp.truncated && resp.body.len() <= 100_000 + corral_scan::http::MAX_HEAD);
}

#[tokio::test]
async fn tls_is_tried_and_bad_certificates_are_recorded() {
    let m = spawn_tls(
        "127.0.1.14",
        Kind::Ollama {
            version: "0.33.0",
            caps: true,
        },
    )
    .await;
    let r = fp(&m, &ProbeOptions::default()).await.unwrap();
    assert_eq!((r.server, r.scheme), (ServerKind::Ollama, Scheme::Https));
    assert!(
        r.tls_cert_error
            .as_deref()
            .is_some_and(|e| e.contains("certificate")),
        "{:?}",
        r.tls_cert_error
    );
    assert!(rules(&r).contains(&"tls-certificate-problem"));
    assert!(r.models.len() == 4);
}

#[tokio::test]
async fn a_range_scan_finds_every_mock_and_sends_nothing_forbidden() {
    let first = spawn(
        "127.0.2.1",
        0,
        Kind::Ollama {
            version: "0.17.0",
            caps: true,
        },
    )
    .await;
    let port = first.addr.port();
    let mut mocks = vec![first];
    for (i, kind) in [
        Kind::Ollama {
            version: "0.5.7",
            caps: false,
        },
        Kind::OllamaProtected,
        Kind::CorralGate,
        Kind::Vllm,
        Kind::Koboldcpp,
        Kind::Garbage,
    ]
    .into_iter()
    .enumerate()
    {
        mocks.push(spawn(&format!("127.0.2.{}", i + 2), port, kind).await);
    }
    // 127.0.2.8-16 have nothing listening: closed targets in the same range.
    let stream = TargetStream::new(
        vec![Input::Arg("127.0.2.1-127.0.2.16".into())],
        InputFormat::List,
        vec![port],
        Filter::default(),
        None,
    );
    let opts = ScanOptions {
        concurrency: 8,
        host_timeout: Duration::from_secs(10),
        ..ScanOptions::default()
    };
    let progress = Arc::new(Progress::default());
    let mut found = Vec::new();
    let outcome = scanner::run(
        &opts,
        stream,
        std::future::pending(),
        progress.clone(),
        |h| found.push(h),
        |e| panic!("{e}"),
    )
    .await
    .unwrap();
    assert_eq!(outcome.scanned, 16);
    assert!(!outcome.interrupted && outcome.fatal.is_none());
    let mut kinds: Vec<(IpAddr, ServerKind)> = found.iter().map(|h| (h.ip, h.server)).collect();
    kinds.sort();
    let ip = |n: u8| IpAddr::from([127, 0, 2, n]);
    assert_eq!(
        kinds,
        vec![
            (ip(1), ServerKind::Ollama),
            (ip(2), ServerKind::Ollama),
            (ip(3), ServerKind::Ollama),
            (ip(4), ServerKind::CorralGate),
            (ip(5), ServerKind::Vllm),
            (ip(6), ServerKind::Koboldcpp),
        ]
    );
    assert_eq!(progress.found.load(std::sync::atomic::Ordering::Relaxed), 6);
    let refs: Vec<&Mock> = mocks.iter().collect();
    assert_read_only(&refs);
    // Summary figures over what was found.
    let s = corral_scan::summary::summarise(&found, outcome.scanned);
    assert_eq!(s.hosts_found, 6);
    assert_eq!(s.unauthenticated, 4);
    assert_eq!(s.hosts_with_model_list, 2);
    assert_eq!(s.with_tools, 2);
    assert_eq!(s.vulnerable.get("CVE-2026-7482"), Some(&3));
    assert_eq!(s.quantization.get("Q4_K_M"), Some(&2));
}

#[tokio::test]
async fn cancellation_returns_what_was_found() {
    let m = spawn(
        "127.0.3.1",
        0,
        Kind::Ollama {
            version: "0.33.0",
            caps: true,
        },
    )
    .await;
    let port = m.addr.port();
    let _slow = spawn("127.0.3.2", port, Kind::Slow).await;
    let opts = ScanOptions {
        concurrency: 4,
        ..ScanOptions::default()
    };
    let t = Instant::now();
    let stop = tokio::time::sleep(Duration::from_millis(1500));
    let (outcome, found) = scan_range("127.0.3.1-2", port, &opts, stop).await;
    assert!(outcome.interrupted);
    assert!(t.elapsed() < Duration::from_secs(4));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].server, ServerKind::Ollama);
}

#[tokio::test]
async fn a_server_identified_before_the_host_deadline_is_reported() {
    // Banner at once, then 1.5 s per request: the 2 s per-host deadline ends the probe after
    // /api/version. What was learnt is reported, with a note, rather than dropped.
    let m = spawn("127.0.3.21", 0, Kind::Sluggish).await;
    let port = m.addr.port();
    let opts = ScanOptions {
        host_timeout: Duration::from_secs(2),
        ..ScanOptions::default()
    };
    let t = Instant::now();
    let (outcome, found) =
        scan_range("127.0.3.21", port, &opts, std::future::pending::<()>()).await;
    assert!(t.elapsed() < Duration::from_secs(4));
    assert_eq!(outcome.scanned, 1);
    assert_eq!(found.len(), 1, "the identified server was dropped");
    let h = &found[0];
    assert_eq!(h.server, ServerKind::Ollama);
    assert_eq!(h.version.as_deref(), Some("0.1.10"));
    assert!(rules(h).contains(&"ollama-critical-cve"), "{:?}", rules(h));
    assert!(h.notes.iter().any(|n| n.contains("per-host timeout")));
    assert!(m.count("GET", "/api/version") == 1);
}

#[tokio::test]
async fn ctrl_c_keeps_servers_identified_by_then() {
    // The banner answers at once, the rest after 1.5 s: at the interrupt (0.8 s) the server
    // is known to be Ollama; it is reported with a note rather than forgotten.
    let m = spawn("127.0.3.22", 0, Kind::Sluggish).await;
    let port = m.addr.port();
    let _slow = spawn("127.0.3.23", port, Kind::Slow).await;
    let stop = tokio::time::sleep(Duration::from_millis(800));
    let (outcome, found) =
        scan_range("127.0.3.22-127.0.3.23", port, &ScanOptions::default(), stop).await;
    assert!(outcome.interrupted);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].ip.to_string(), "127.0.3.22");
    assert_eq!(found[0].server, ServerKind::Ollama);
    assert!(found[0].notes.iter().any(|n| n.contains("interrupted")));
    // Its model list had not answered: open is not claimed, nor protected.
    assert_eq!(found[0].auth, Auth::Unknown);
    assert_eq!(rules(&found[0]), ["ollama-auth-undetermined"]);
}

#[tokio::test]
async fn an_ollama_whose_model_list_fails_is_not_graded_open() {
    let c = client(1 << 20);
    let opts = ProbeOptions::default();
    // Neither /api/tags nor /api/ps answers: unknown, and said so (medium), not "unauthenticated".
    let m = spawn("127.0.3.24", 0, Kind::OllamaFailing { ps_ok: false }).await;
    let r = probe(&c, &ep(&m), &opts).await.expect("identified");
    assert_eq!((r.server, r.auth), (ServerKind::Ollama, Auth::Unknown));
    assert_eq!(rules(&r), ["ollama-auth-undetermined"]);
    assert_eq!(r.findings[0].severity, Severity::Medium);
    assert!(m.requests().iter().all(|(mm, p)| !mock::forbidden(mm, p)));
    // /api/ps answering without credentials shows the server open.
    let m = spawn("127.0.3.25", 0, Kind::OllamaFailing { ps_ok: true }).await;
    let r = probe(&c, &ep(&m), &opts).await.expect("identified");
    assert_eq!((r.server, r.auth), (ServerKind::Ollama, Auth::Open));
    assert!(
        rules(&r).contains(&"ollama-unauthenticated"),
        "{:?}",
        rules(&r)
    );
}

#[tokio::test]
async fn a_model_list_that_is_not_one_does_not_make_ollama_open() {
    let c = client(64 * 1024);
    // A proxy passes the banner through but answers /api/* (and HEAD) with a 200 sign-in page:
    // nothing shows the models are open, so the server is not graded unauthenticated/critical.
    let m = spawn("127.0.3.26", 0, Kind::OllamaLoginWall).await;
    let r = probe(&c, &ep(&m), &ProbeOptions::default())
        .await
        .expect("identified");
    assert_eq!((r.server, r.auth), (ServerKind::Ollama, Auth::Unknown));
    assert!(
        !rules(&r).contains(&"ollama-admin-exposed")
            && !rules(&r).contains(&"ollama-unauthenticated"),
        "{:?}",
        rules(&r)
    );
    assert!(
        rules(&r).contains(&"ollama-auth-undetermined"),
        "{:?}",
        rules(&r)
    );
    assert!(m.requests().iter().all(|(mm, p)| !mock::forbidden(mm, p)));
}

#[tokio::test]
async fn a_target_given_twice_is_probed_and_reported_once() {
    // masscan output and hand-written lists repeat endpoints: one server must not be counted
    // (and probed) as two.
    let m = spawn(
        "127.0.3.27",
        0,
        Kind::Ollama {
            version: "0.17.4",
            caps: true,
        },
    )
    .await;
    let t = m.addr.to_string();
    let stream = TargetStream::new(
        vec![
            Input::Arg(t.clone()),
            Input::Arg(t.clone()),
            Input::Arg(format!("http://{t}/")),
        ],
        InputFormat::List,
        vec![11434],
        Filter::default(),
        None,
    );
    let progress = Arc::new(Progress::default());
    let mut found = Vec::new();
    let outcome = scanner::run(
        &ScanOptions::default(),
        stream,
        std::future::pending(),
        progress.clone(),
        |h| found.push(h),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(outcome.scanned, 1);
    assert_eq!(progress.done.load(std::sync::atomic::Ordering::Relaxed), 3);
    assert_eq!(m.count("GET", "/api/tags"), 1);
}
