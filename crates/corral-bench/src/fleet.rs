//! A fleet of mock LLM servers for `bench/scan.sh`: thousands of loopback addresses
//! (127.x.y.z) served by one process, each answering as one server kind from the reference
//! (several Ollama versions, vLLM, llama.cpp, LM Studio, KoboldCpp, Open WebUI, LiteLLM, TGI,
//! SGLang, text-generation-webui, a corral gate). Answers are precomputed per kind, so the
//! fleet costs as little CPU as it can and the scanner is what gets measured.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One server personality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Ollama of this version; `caps`: `/api/tags` carries `capabilities` (0.6.4+).
    Ollama {
        version: &'static str,
        caps: bool,
    },
    Vllm,
    LlamaCpp,
    LmStudio,
    Koboldcpp,
    OpenWebui,
    Litellm,
    Tgi,
    Sglang,
    TextGenWebui,
    CorralGate,
}

/// The mix, one kind per address in turn: Ollama of six versions makes up half.
pub const MIX: &[Kind] = &[
    Kind::Ollama {
        version: "0.1.30",
        caps: false,
    },
    Kind::Vllm,
    Kind::Ollama {
        version: "0.3.14",
        caps: false,
    },
    Kind::LlamaCpp,
    Kind::Ollama {
        version: "0.6.2",
        caps: false,
    },
    Kind::OpenWebui,
    Kind::Ollama {
        version: "0.9.6",
        caps: true,
    },
    Kind::Litellm,
    Kind::Ollama {
        version: "0.12.3",
        caps: true,
    },
    Kind::Koboldcpp,
    Kind::Ollama {
        version: "0.17.0",
        caps: true,
    },
    Kind::LmStudio,
    Kind::Ollama {
        version: "0.17.4",
        caps: true,
    },
    Kind::Tgi,
    Kind::CorralGate,
    Kind::Sglang,
    Kind::TextGenWebui,
    Kind::Ollama {
        version: "0.12.3",
        caps: true,
    },
];

/// The `i`-th fleet address under `127.<second>.0.0/16`, skipping .0 and .255.
pub fn address(second: u8, i: u32) -> IpAddr {
    let third = (i / 254) as u8;
    let fourth = (i % 254) as u8 + 1;
    IpAddr::V4(Ipv4Addr::new(127, second, third, fourth))
}

pub fn kind_of(i: u32) -> Kind {
    MIX.get(i as usize % MIX.len())
        .copied()
        .unwrap_or(Kind::Vllm)
}

fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Status",
    };
    let mut r = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        r.push_str(k);
        r.push_str(": ");
        r.push_str(v);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r.push_str(body);
    r.into_bytes()
}

const JSON: (&str, &str) = ("Content-Type", "application/json; charset=utf-8");

fn json_reply(v: &Value) -> Vec<u8> {
    response(200, &[JSON], &v.to_string())
}

fn ollama_tags(caps: bool) -> Value {
    let mut models = vec![
        json!({"name":"llama3.1:8b","model":"llama3.1:8b","modified_at":"2025-06-01T10:00:00Z","size":4920753328u64,"digest":"46e0c10c039e019119339687c3c1757cc81b9da49709a3b3924863ba87ca666e","details":{"parent_model":"","format":"gguf","family":"llama","families":["llama"],"parameter_size":"8.0B","quantization_level":"Q4_K_M"},"capabilities":["completion","tools"]}),
        json!({"name":"llava:7b","model":"llava:7b","modified_at":"2025-06-01T10:00:00Z","size":4733363377u64,"digest":"8dd30f6b0cb19f555f2c7a7ebda861449ea2cc76bf1f44e262931f45fc81d081","details":{"parent_model":"","format":"gguf","family":"llama","families":["llama","clip"],"parameter_size":"7B","quantization_level":"Q4_0"},"capabilities":["completion","vision"]}),
        json!({"name":"nomic-embed-text:latest","model":"nomic-embed-text:latest","modified_at":"2025-06-01T10:00:00Z","size":274302450u64,"digest":"0a109f422b47e3a30ba2b10eca18548e944e8a23073ee3f3e947efcf3c45e59f","details":{"parent_model":"","format":"gguf","family":"nomic-bert","families":["nomic-bert"],"parameter_size":"137M","quantization_level":"F16"},"capabilities":["embedding"]}),
    ];
    if caps {
        models.push(json!({"name":"gpt-oss:120b-cloud","model":"gpt-oss:120b-cloud","remote_model":"gpt-oss:120b","remote_host":"https://ollama.com:443","modified_at":"2025-09-01T10:00:00Z","size":384,"digest":"569662207105e3e6e5f5ae4d9d5bd6a5d4bb1e01a4fb5d2b2c5e1e36b0b0d6c7","details":{"format":"","family":"gptoss","parameter_size":"116.8B","quantization_level":"MXFP4"},"capabilities":["completion","tools","thinking"]}));
    } else {
        for m in &mut models {
            if let Some(o) = m.as_object_mut() {
                o.remove("capabilities");
            }
        }
    }
    json!({ "models": models })
}

/// Precomputed answers of one server kind.
pub struct Answers {
    pub kind: Kind,
    root: Vec<u8>,
    version: Vec<u8>,
    tags: Vec<u8>,
    ps: Vec<u8>,
    show_tools: Vec<u8>,
    show_vision: Vec<u8>,
    show_plain: Vec<u8>,
    blob_head: Vec<u8>,
    paths: Vec<(&'static str, Vec<u8>)>,
    not_found: Vec<u8>,
}

impl Answers {
    pub fn new(kind: Kind) -> Answers {
        let not_found = response(404, &[("Content-Type", "text/plain")], "404 page not found");
        let mut a = Answers {
            kind,
            root: not_found.clone(),
            version: not_found.clone(),
            tags: not_found.clone(),
            ps: not_found.clone(),
            show_tools: not_found.clone(),
            show_vision: not_found.clone(),
            show_plain: not_found.clone(),
            blob_head: not_found.clone(),
            paths: Vec::new(),
            not_found,
        };
        match kind {
            Kind::Ollama { version, caps } => {
                a.root = response(
                    200,
                    &[("Content-Type", "text/plain; charset=utf-8")],
                    "Ollama is running",
                );
                a.version = json_reply(&json!({ "version": version }));
                a.tags = json_reply(&ollama_tags(caps));
                a.ps = json_reply(
                    &json!({"models":[{"name":"llama3.1:8b","model":"llama3.1:8b","size":6654289920u64,"digest":"46e0c10c039e019119339687c3c1757cc81b9da49709a3b3924863ba87ca666e","details":{"family":"llama","parameter_size":"8.0B","quantization_level":"Q4_K_M"},"expires_at":"2030-01-01T00:00:00Z","size_vram":6654289920u64}]}),
                );
                let show = |template: &str, vision: bool| {
                    let mut v = json!({"license":"LLAMA 3.1 COMMUNITY LICENSE","modelfile":"FROM llama3.1","parameters":"stop \"<|eot_id|>\"","template":template,"details":{"format":"gguf","family":"llama","parameter_size":"8.0B","quantization_level":"Q4_K_M"},"model_info":{"general.architecture":"llama"}});
                    if vision {
                        v["projector_info"] = json!({"clip.has_vision_encoder": true});
                    }
                    json_reply(&v)
                };
                a.show_tools = show("{{ if .Tools }}tools{{ end }}{{ .Prompt }}", false);
                a.show_vision = show("{{ .Prompt }}", true);
                a.show_plain = show("{{ .Prompt }}", false);
                // Absent blob: Ollama's 404. HEAD carries the length but no body.
                a.blob_head = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: 96\r\n\r\n".to_vec();
            }
            Kind::Vllm => {
                a.paths = vec![
                    ("/version", json_reply(&json!({"version":"0.8.5"}))),
                    (
                        "/v1/models",
                        json_reply(
                            &json!({"object":"list","data":[{"id":"Qwen/Qwen2.5-7B-Instruct","object":"model","created":1748000000,"owned_by":"vllm","root":"Qwen/Qwen2.5-7B-Instruct","parent":null,"max_model_len":32768}]}),
                        ),
                    ),
                    ("/health", response(200, &[], "")),
                ];
            }
            Kind::LlamaCpp => {
                let server = ("Server", "llama.cpp");
                a.root = response(200, &[server, ("Content-Type", "text/html")], "<!doctype html><html><head><title>llama.cpp - chat</title></head><body></body></html>");
                a.not_found = response(404, &[server, JSON], "{\"error\":{\"code\":404,\"message\":\"File Not Found\",\"type\":\"not_found_error\"}}");
                a.paths = vec![
                    ("/health", response(200, &[server, JSON], "{\"status\":\"ok\"}")),
                    ("/v1/models", response(200, &[server, JSON], &json!({"object":"list","data":[{"id":"Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf","object":"model","created":1748000000,"owned_by":"llamacpp","meta":{"n_params":8030261248u64}}]}).to_string())),
                ];
            }
            Kind::LmStudio => {
                a.paths = vec![(
                    "/v1/models",
                    json_reply(
                        &json!({"data":[{"id":"qwen2.5-7b-instruct","object":"model","owned_by":"organization_owner"}],"object":"list"}),
                    ),
                )];
            }
            Kind::Koboldcpp => {
                a.root = response(
                    200,
                    &[("Content-Type", "text/html")],
                    "<!DOCTYPE html><html><head><title>KoboldAI Lite</title></head></html>",
                );
                a.paths = vec![
                    (
                        "/api/extra/version",
                        json_reply(
                            &json!({"result":"KoboldCpp","version":"1.82.4","protected":false,"txt2img":false}),
                        ),
                    ),
                    (
                        "/api/tags",
                        json_reply(
                            &json!({"models":[{"name":"koboldcpp/Llama-3.1-8B","model":"koboldcpp/Llama-3.1-8B","details":{}}]}),
                        ),
                    ),
                    ("/api/version", json_reply(&json!({"version":"0.5.4"}))),
                ];
            }
            Kind::OpenWebui => {
                a.root = response(
                    200,
                    &[("Content-Type", "text/html")],
                    "<!doctype html><html><head><title>Open WebUI</title></head></html>",
                );
                a.paths = vec![(
                    "/api/config",
                    json_reply(
                        &json!({"status":true,"name":"Open WebUI","version":"0.6.5","default_locale":"","oauth":{"providers":{}},"features":{"auth":true,"auth_trusted_header":false,"enable_ldap":false,"enable_api_key":true,"enable_signup":true,"enable_login_form":true,"enable_websocket":true},"onboarding":false}),
                    ),
                )];
            }
            Kind::Litellm => {
                a.paths = vec![
                    ("/health/liveliness", json_reply(&json!("I'm alive!"))),
                    (
                        "/v1/models",
                        response(401, &[JSON], "{\"error\":{\"message\":\"Authentication Error, No api key passed in.\",\"type\":\"auth_error\",\"param\":\"None\",\"code\":\"401\"}}"),
                    ),
                ];
            }
            Kind::Tgi => {
                a.paths = vec![(
                    "/info",
                    json_reply(
                        &json!({"model_id":"mistralai/Mistral-7B-Instruct-v0.3","model_sha":null,"model_dtype":"torch.float16","model_device_type":"cuda","max_concurrent_requests":128,"max_best_of":2,"max_stop_sequences":4,"max_input_tokens":8191,"max_total_tokens":8192,"version":"3.0.1"}),
                    ),
                )];
            }
            Kind::Sglang => {
                a.paths = vec![(
                    "/get_model_info",
                    json_reply(
                        &json!({"model_path":"meta-llama/Llama-3.1-8B-Instruct","tokenizer_path":"meta-llama/Llama-3.1-8B-Instruct","is_generation":true}),
                    ),
                )];
            }
            Kind::TextGenWebui => {
                a.paths = vec![(
                    "/v1/internal/model/info",
                    json_reply(
                        &json!({"model_name":"Llama-3.1-8B-Instruct-Q4_K_M","lora_names":[]}),
                    ),
                )];
            }
            Kind::CorralGate => {
                let denied = response(
                    401,
                    &[("WWW-Authenticate", "Bearer realm=\"corral\""), JSON],
                    "{\"error\":\"unauthorized\"}",
                );
                a.root = denied.clone();
                a.not_found = denied;
            }
        }
        a
    }

    /// The answer to one request. `body` is the request body (only `/api/show` reads it).
    pub fn answer(&self, method: &str, path: &str, body: &[u8]) -> &[u8] {
        let ollama = matches!(self.kind, Kind::Ollama { .. });
        match (method, path) {
            ("GET" | "HEAD", "/") => &self.root,
            ("GET", "/api/version") if ollama => &self.version,
            ("GET", "/api/tags") if ollama => &self.tags,
            ("GET", "/api/ps") if ollama => &self.ps,
            ("POST", "/api/show") if ollama => {
                let text = String::from_utf8_lossy(body);
                if text.contains("llama3.1") {
                    &self.show_tools
                } else if text.contains("llava") {
                    &self.show_vision
                } else {
                    &self.show_plain
                }
            }
            ("HEAD", p) if ollama && p.starts_with("/api/blobs/sha256:") => &self.blob_head,
            ("GET", p) => self
                .paths
                .iter()
                .find(|(k, _)| *k == p)
                .map_or(&self.not_found[..], |(_, v)| &v[..]),
            _ => &self.not_found,
        }
    }
}

/// The parts of a request head the fleet needs.
#[derive(Debug, PartialEq, Eq)]
pub struct Head<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub content_length: usize,
    pub close: bool,
}

/// Parses a complete request head (up to and including the blank line).
pub fn parse_head(head: &[u8]) -> Option<Head<'_>> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?;
    let path = first.next()?;
    let version = first.next()?;
    let mut h = Head {
        method,
        path,
        content_length: 0,
        close: version == "HTTP/1.0",
    };
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("content-length") {
            h.content_length = v.parse().ok()?;
        } else if k.eq_ignore_ascii_case("connection") {
            h.close = v.eq_ignore_ascii_case("close");
        }
    }
    Some(h)
}

/// Binds `hosts` addresses under `127.<second>.0.0/16` on `port`, each answering as
/// [`kind_of`] its index, and serves until `stop` resolves. Returns how many were bound.
pub async fn serve(
    second: u8,
    hosts: u32,
    port: u16,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<u32> {
    let answers: Vec<Arc<Answers>> = MIX.iter().map(|k| Arc::new(Answers::new(*k))).collect();
    let mut listeners = Vec::with_capacity(hosts as usize);
    for i in 0..hosts {
        let addr = SocketAddr::new(address(second, i), port);
        listeners.push((TcpListener::bind(addr).await?, i));
    }
    let bound = listeners.len() as u32;
    let mut tasks = tokio::task::JoinSet::new();
    for (l, i) in listeners {
        let a = answers
            .get(i as usize % answers.len())
            .cloned()
            .unwrap_or_else(|| Arc::new(Answers::new(Kind::Vllm)));
        tasks.spawn(async move {
            loop {
                let Ok((s, _)) = l.accept().await else {
                    // Out of descriptors: back off instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let a = a.clone();
                tokio::spawn(async move {
                    let _ = connection(s, &a).await;
                });
            }
        });
    }
    stop.await;
    tasks.abort_all();
    Ok(bound)
}

/// Answers requests on one connection until the client closes or asks to.
async fn connection(mut s: TcpStream, a: &Answers) -> std::io::Result<()> {
    let _ = s.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if buf.len() > 16 * 1024 {
                return Ok(());
            }
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        };
        let (reply, close, used) = {
            let Some(h) = parse_head(buf.get(..end).unwrap_or(&[])) else {
                return Ok(());
            };
            let want = end + h.content_length.min(64 * 1024);
            while buf.len() < want {
                let n = s.read(&mut chunk).await?;
                if n == 0 {
                    return Ok(());
                }
                buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
            }
            // Re-parse: the buffer may have grown (and moved) while the body was read.
            let h = parse_head(buf.get(..end).unwrap_or(&[])).unwrap_or(Head {
                method: "",
                path: "",
                content_length: 0,
                close: true,
            });
            let body = buf.get(end..want).unwrap_or(&[]);
            (a.answer(h.method, h.path, body), h.close, want)
        };
        s.write_all(reply).await?;
        buf.drain(..used);
        if close {
            let _ = s.shutdown().await;
            return Ok(());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn addresses_stay_in_loopback_and_skip_network_and_broadcast() {
        assert_eq!(address(10, 0).to_string(), "127.10.0.1");
        assert_eq!(address(10, 253).to_string(), "127.10.0.254");
        assert_eq!(address(10, 254).to_string(), "127.10.1.1");
        assert!((0..20_000).all(|i| address(10, i).is_loopback()));
    }

    #[test]
    fn heads_and_answers() {
        let h = parse_head(b"POST /api/show HTTP/1.1\r\nHost: x\r\nContent-Length: 19\r\nConnection: close\r\n\r\n").unwrap();
        assert_eq!(
            h,
            Head {
                method: "POST",
                path: "/api/show",
                content_length: 19,
                close: true
            }
        );
        let a = Answers::new(MIX[0]);
        assert!(a.answer("GET", "/", b"").ends_with(b"Ollama is running"));
        assert!(a
            .answer("HEAD", "/api/blobs/sha256:00", b"")
            .starts_with(b"HTTP/1.1 404"));
        assert!(a.answer("GET", "/api/tags", b"").ends_with(b"}"));
        let g = Answers::new(Kind::CorralGate);
        assert!(g
            .answer("GET", "/api/tags", b"")
            .starts_with(b"HTTP/1.1 401"));
        let v = Answers::new(Kind::Vllm);
        let m = String::from_utf8_lossy(v.answer("GET", "/v1/models", b"")).to_string();
        assert!(m.contains("\"owned_by\":\"vllm\""), "{m}");
    }
}
