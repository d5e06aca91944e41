//! Mock LLM servers on 127.0.0.x with the response shapes from the reference, plus hostile
//! ones. Every request line is recorded so tests can prove which routes were (not) called.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Ollama of this version; `caps` = /api/tags carries capabilities (0.30+).
    Ollama {
        version: &'static str,
        caps: bool,
    },
    /// Ollama 0.5.0 (tags without capabilities) whose models are cloud models (`:cloud` and
    /// `-cloud` tags, `remote_host` / `remote_model` entries), plus one local model when
    /// `local`.
    OllamaCloud {
        local: bool,
    },
    /// Banner and version open, /api/tags and admin behind a proxy's 401.
    OllamaProtected,
    CorralGate,
    Vllm,
    LlamaCpp,
    /// llama.cpp's /health, but /v1/models answers `status` with something that is not a
    /// model list (a 404, a 500, a 200 HTML page).
    LlamaCppNoModelList {
        status: u16,
    },
    Koboldcpp,
    OpenWebui,
    Litellm,
    /// Accepts and never answers.
    Slow,
    /// Ollama 0.1.10 that answers its banner at once and everything else after 1.5 s.
    Sluggish,
    /// Ollama 0.17.4 whose /api/tags fails with a 500 (a broken model store), and /api/ps
    /// too unless `ps_ok`.
    OllamaFailing {
        ps_ok: bool,
    },
    /// Ollama 0.17.4 whose banner passes through a proxy that answers every other path
    /// (GET and HEAD alike) with a 200 sign-in page.
    OllamaLoginWall,
    /// Sends headers, then an endless body.
    Endless,
    /// Sends bytes that are not HTTP.
    Garbage,
    /// Plain HTTP server with nothing LLM-like.
    Nginx,
}

pub type Log = Arc<Mutex<Vec<(String, String)>>>;

pub struct Mock {
    pub addr: SocketAddr,
    pub log: Log,
}

impl Mock {
    pub fn requests(&self) -> Vec<(String, String)> {
        self.log.lock().unwrap().clone()
    }
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.requests()
            .iter()
            .filter(|(m, p)| m == method && p == path)
            .count()
    }
}

/// Routes the scanner must never send (inference, model changes, account calls).
pub fn forbidden(method: &str, path: &str) -> bool {
    let p = path.split('?').next().unwrap_or("");
    matches!(
        p,
        "/api/generate"
            | "/api/chat"
            | "/api/embed"
            | "/api/embeddings"
            | "/api/pull"
            | "/api/push"
            | "/api/create"
            | "/api/copy"
            | "/api/delete"
            | "/api/me"
            | "/api/signout"
            | "/v1/chat/completions"
            | "/v1/completions"
            | "/v1/embeddings"
            | "/v1/responses"
            | "/v1/messages"
            | "/completion"
            | "/generate"
            | "/api/v1/generate"
    ) || (p.starts_with("/api/blobs/") && method != "HEAD")
        || p.starts_with("/api/experimental/")
        || method == "DELETE"
}

pub async fn spawn(ip: &str, port: u16, kind: Kind) -> Mock {
    let listener = TcpListener::bind((ip, port)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    assert!(addr.ip().is_loopback());
    let log: Log = Arc::default();
    let l2 = log.clone();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            let kind = kind.clone();
            let log = l2.clone();
            tokio::spawn(async move { serve(s, kind, log).await });
        }
    });
    Mock { addr, log }
}

/// Like [`spawn`], but the server keeps connections open between requests (as Ollama and most
/// servers do); the counter says how many connections were accepted.
pub async fn spawn_keep_alive(ip: &str, kind: Kind) -> (Mock, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    assert!(addr.ip().is_loopback());
    let log: Log = Arc::default();
    let conns = Arc::new(AtomicUsize::new(0));
    let (l2, c2) = (log.clone(), conns.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            c2.fetch_add(1, Ordering::SeqCst);
            let (kind, log) = (kind.clone(), l2.clone());
            tokio::spawn(async move {
                while let Some((method, path, body)) = read_request(&mut s).await {
                    log.lock().unwrap().push((method.clone(), path.clone()));
                    let reply = String::from_utf8(route(&kind, &method, &path, &body))
                        .unwrap()
                        .replacen("Connection: close", "Connection: keep-alive", 1);
                    if s.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (Mock { addr, log }, conns)
}

/// A TLS-only Ollama with a self-signed certificate.
pub async fn spawn_tls(ip: &str, kind: Kind) -> Mock {
    let ck = rcgen::generate_simple_self_signed(vec!["ollama.test".to_string()]).unwrap();
    let cert = rustls::pki_types::CertificateDer::from(ck.cert.der().to_vec());
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log: Log = Arc::default();
    let l2 = log.clone();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            let (kind, log, acceptor) = (kind.clone(), l2.clone(), acceptor.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(s).await {
                    serve(tls, kind, log).await;
                }
            });
        }
    });
    Mock { addr, log }
}

async fn read_request<S: AsyncRead + Unpin>(s: &mut S) -> Option<(String, String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if buf.len() > 65536 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut first = head.lines().next()?.split_whitespace();
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = buf[end..].to_vec();
    while body.len() < len {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    assert!(
        head.contains("User-Agent: corral-scan/"),
        "scanner must name itself: {head}"
    );
    Some((method, path, body))
}

fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r.push_str(body);
    r.into_bytes()
}

fn j(v: serde_json::Value) -> String {
    v.to_string()
}

fn ollama_tags(caps: bool) -> String {
    let mut models = vec![
        json!({"name":"llama3.1:8b","model":"llama3.1:8b","size":4920753328u64,"digest":"a","details":{"format":"gguf","family":"llama","families":["llama"],"parameter_size":"8.0B","quantization_level":"Q4_K_M"},"capabilities":["completion","tools"]}),
        json!({"name":"llava:7b","model":"llava:7b","details":{"family":"llama","parameter_size":"7B","quantization_level":"Q4_0"},"capabilities":["completion","vision"]}),
        json!({"name":"nomic-embed-text:latest","model":"nomic-embed-text:latest","details":{"family":"nomic-bert","parameter_size":"137M","quantization_level":"F16"},"capabilities":["embedding"]}),
    ];
    if caps {
        models.push(json!({"name":"gpt-oss:120b-cloud","model":"gpt-oss:120b-cloud","remote_model":"gpt-oss:120b","remote_host":"https://ollama.com:443","details":{"family":"gptoss","parameter_size":"116.8B","quantization_level":"MXFP4"},"capabilities":["completion","tools","thinking"]}));
    } else {
        for m in &mut models {
            m.as_object_mut().unwrap().remove("capabilities");
        }
    }
    j(json!({ "models": models }))
}

fn route(kind: &Kind, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let not_found = reply(404, &[("Content-Type", "text/plain")], "404 page not found");
    match kind {
        Kind::Ollama { version, caps } => match (method, path) {
            ("GET" | "HEAD", "/") => reply(
                200,
                &[("Content-Type", "text/plain; charset=utf-8")],
                "Ollama is running",
            ),
            ("GET", "/api/version") => reply(
                200,
                &[("Content-Type", "application/json")],
                &j(json!({"version": version})),
            ),
            ("GET", "/api/tags") => reply(
                200,
                &[("Content-Type", "application/json")],
                &ollama_tags(*caps),
            ),
            ("POST", "/api/show") => {
                let req: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
                let name = req["model"].as_str().unwrap_or("");
                let template = if name.starts_with("llama3.1") {
                    "{{ if .Tools }}tools{{ end }}{{ .Prompt }}"
                } else {
                    "{{ .Prompt }}"
                };
                let mut v = json!({"license":"x","modelfile":"FROM x","parameters":"","template":template,"system":"secret system prompt","details":{"family":"llama"},"model_info":{}});
                if name.starts_with("llava") {
                    v["projector_info"] = json!({"clip.has_vision_encoder": true});
                }
                reply(200, &[("Content-Type", "application/json")], &j(v))
            }
            ("GET", "/api/ps") => reply(
                200,
                &[("Content-Type", "application/json")],
                &j(
                    json!({"models":[{"name":"llama3.1:8b","model":"llama3.1:8b","size":1,"digest":"a","details":{},"expires_at":"2026-01-01T00:00:00Z","size_vram":1}]}),
                ),
            ),
            ("HEAD", p) if p.starts_with("/api/blobs/") => reply(404, &[], ""),
            _ => not_found,
        },
        Kind::OllamaCloud { local } => match (method, path) {
            ("GET", "/api/tags") => {
                let mut models = vec![
                    json!({"name":"gpt-oss:120b-cloud","model":"gpt-oss:120b-cloud","details":{}}),
                    json!({"name":"kimi-k2:cloud","model":"kimi-k2:cloud","details":{}}),
                    json!({"name":"deepseek-v3.1:671b","model":"deepseek-v3.1:671b","remote_host":"https://ollama.com:443","details":{}}),
                    json!({"name":"qwen3-coder:480b","model":"qwen3-coder:480b","remote_model":"qwen3-coder:480b","details":{}}),
                ];
                if *local {
                    models.push(json!({"name":"llama3.1:8b","model":"llama3.1:8b","details":{"family":"llama"}}));
                }
                reply(200, &[], &j(json!({ "models": models })))
            }
            _ => route(
                &Kind::Ollama {
                    version: "0.5.0",
                    caps: false,
                },
                method,
                path,
                body,
            ),
        },
        Kind::OllamaProtected => match (method, path) {
            ("GET", "/") => reply(200, &[], "Ollama is running"),
            ("GET", "/api/version") => reply(200, &[], &j(json!({"version":"0.1.30"}))),
            _ => reply(
                401,
                &[("WWW-Authenticate", "Basic realm=\"proxy\"")],
                "unauthorized",
            ),
        },
        Kind::CorralGate => reply(
            401,
            &[
                ("WWW-Authenticate", "Bearer realm=\"corral\""),
                ("Content-Type", "application/json"),
            ],
            &j(json!({"error":"unauthorized"})),
        ),
        Kind::Vllm => match path {
            "/version" => reply(200, &[], &j(json!({"version":"0.8.5"}))),
            "/v1/models" => reply(
                200,
                &[],
                &j(
                    json!({"object":"list","data":[{"id":"Qwen/Qwen2.5-7B-Instruct","object":"model","created":1,"owned_by":"vllm","root":"Qwen/Qwen2.5-7B-Instruct","max_model_len":32768}]}),
                ),
            ),
            "/health" => reply(200, &[], ""),
            _ => not_found,
        },
        Kind::LlamaCppNoModelList { status } => match path {
            "/health" => route(&Kind::LlamaCpp, method, path, body),
            "/v1/models" => reply(
                *status,
                &[("Server", "llama.cpp"), ("Content-Type", "text/html")],
                "<html>no models here</html>",
            ),
            _ => not_found,
        },
        Kind::LlamaCpp => match path {
            "/health" => reply(
                200,
                &[
                    ("Server", "llama.cpp"),
                    ("Content-Type", "application/json"),
                ],
                &j(json!({"status":"ok"})),
            ),
            "/v1/models" => reply(
                200,
                &[("Server", "llama.cpp")],
                &j(
                    json!({"object":"list","data":[{"id":"model.gguf","object":"model","owned_by":"llamacpp"}]}),
                ),
            ),
            "/" => reply(
                200,
                &[("Server", "llama.cpp"), ("Content-Type", "text/html")],
                "<html><title>llama.cpp</title></html>",
            ),
            _ => reply(
                404,
                &[("Server", "llama.cpp")],
                "{\"error\":{\"code\":404}}",
            ),
        },
        // KoboldCpp emulates Ollama's /api/tags and /api/version but not the banner.
        Kind::Koboldcpp => match path {
            "/api/extra/version" => reply(
                200,
                &[],
                &j(json!({"result":"KoboldCpp","version":"1.82.4"})),
            ),
            "/api/tags" => reply(
                200,
                &[],
                &j(json!({"models":[{"name":"koboldcpp/model","details":{}}]})),
            ),
            "/api/version" => reply(200, &[], &j(json!({"version":"0.5.4"}))),
            "/v1/models" => reply(
                200,
                &[],
                &j(
                    json!({"object":"list","data":[{"id":"koboldcpp/model","object":"model","owned_by":"koboldcpp"}]}),
                ),
            ),
            "/" => reply(
                200,
                &[("Content-Type", "text/html")],
                "<html>KoboldAI Lite</html>",
            ),
            _ => not_found,
        },
        Kind::OpenWebui => match path {
            "/api/config" => reply(
                200,
                &[],
                &j(
                    json!({"status":true,"name":"Open WebUI","version":"0.6.5","default_locale":"","features":{"auth":true,"auth_trusted_header":false,"enable_signup":true,"enable_login_form":true},"onboarding":false}),
                ),
            ),
            "/" => reply(
                200,
                &[("Content-Type", "text/html")],
                "<!doctype html><title>Open WebUI</title>",
            ),
            _ => not_found,
        },
        Kind::Litellm => match path {
            "/health/liveliness" => reply(200, &[], "\"I'm alive!\""),
            "/v1/models" => reply(
                401,
                &[],
                &j(
                    json!({"error":{"message":"Authentication Error","type":"auth_error","param":"None","code":"401"}}),
                ),
            ),
            _ => not_found,
        },
        Kind::Nginx => match path {
            "/" => reply(
                200,
                &[("Server", "nginx"), ("Content-Type", "text/html")],
                "<html>Welcome to nginx!</html>",
            ),
            _ => reply(404, &[("Server", "nginx")], "<html>404</html>"),
        },
        Kind::Sluggish => route(
            &Kind::Ollama {
                version: "0.1.10",
                caps: true,
            },
            method,
            path,
            body,
        ),
        Kind::OllamaFailing { ps_ok } => match path {
            "/api/tags" => reply(500, &[], &j(json!({"error": "failed to read manifests"}))),
            "/api/ps" if !ps_ok => reply(500, &[], &j(json!({"error": "server busy"}))),
            _ => route(
                &Kind::Ollama {
                    version: "0.17.4",
                    caps: true,
                },
                method,
                path,
                body,
            ),
        },
        Kind::OllamaLoginWall => match (method, path) {
            ("GET" | "HEAD", "/") => reply(200, &[], "Ollama is running"),
            ("GET", "/api/version") => reply(200, &[], &j(json!({"version": "0.17.4"}))),
            _ => reply(
                200,
                &[("Content-Type", "text/html")],
                "<!doctype html><title>Sign in</title><form action=/login></form>",
            ),
        },
        Kind::Slow | Kind::Endless | Kind::Garbage => not_found,
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, kind: Kind, log: Log) {
    match kind {
        Kind::Slow => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        Kind::Garbage => {
            let _ = s
                .write_all(b"\x00\xff\xfeSSH-2.0-garbage\r\n\r\n\x07\x08")
                .await;
            return;
        }
        _ => {}
    }
    let Some((method, path, body)) = read_request(&mut s).await else {
        return;
    };
    log.lock().unwrap().push((method.clone(), path.clone()));
    if kind == Kind::Endless {
        let head = if path == "/" {
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nOllama is running"
        } else {
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        };
        if s.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = vec![b'A'; 64 * 1024];
        // Bounded so a broken client cannot keep the test running: 1 GiB at most.
        for _ in 0..16384 {
            if s.write_all(&chunk).await.is_err() {
                return;
            }
        }
        return;
    }
    if kind == Kind::Sluggish && path != "/" {
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let _ = s.write_all(&route(&kind, &method, &path, &body)).await;
    let _ = s.shutdown().await;
}
