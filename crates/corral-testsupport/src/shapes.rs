//! Response bodies in the shapes Ollama sends (docs/api.md, api/types.go, openai middleware),
//! so the official clients parse them.

use serde_json::{json, Value};

/// Version reported by `/api/version`.
pub const VERSION: &str = "0.33.1";
/// `prompt_eval_count` / `prompt_tokens` of every generation.
pub const PROMPT_TOKENS: u64 = 26;
/// Fixed timestamp, RFC 3339 with microseconds (what pydantic and JS `Date` both accept).
pub const CREATED_AT: &str = "2026-08-01T10:15:30.123456Z";
/// Unix time used in the OpenAI shapes.
pub const CREATED_UNIX: u64 = 1_785_579_330;
/// Embedding vector length.
pub const EMBED_DIM: usize = 8;

/// A model the mock lists in `/api/tags`.
#[derive(Debug, Clone, Copy)]
pub struct CatalogueModel {
    pub name: &'static str,
    pub family: &'static str,
    pub parameter_size: &'static str,
    pub quantization: &'static str,
    pub size: u64,
    pub capabilities: &'static [&'static str],
    /// `(remote_model, remote_host)` for models that run on ollama.com.
    pub remote: Option<(&'static str, &'static str)>,
}

/// What `/api/tags` lists: local chat, tools, vision and embedding models plus cloud models
/// (two named `...cloud`, one recognisable only by its `remote_host`).
pub const CATALOGUE: &[CatalogueModel] = &[
    CatalogueModel {
        name: "llama3.2:latest",
        family: "llama",
        parameter_size: "3.2B",
        quantization: "Q4_K_M",
        size: 2_019_393_189,
        capabilities: &["completion", "tools"],
        remote: None,
    },
    CatalogueModel {
        name: "qwen3:8b",
        family: "qwen3",
        parameter_size: "8.2B",
        quantization: "Q4_K_M",
        size: 5_225_388_164,
        capabilities: &["completion", "tools", "thinking"],
        remote: None,
    },
    CatalogueModel {
        name: "llava:7b",
        family: "llama",
        parameter_size: "7B",
        quantization: "Q4_0",
        size: 4_733_363_377,
        capabilities: &["completion", "vision"],
        remote: None,
    },
    CatalogueModel {
        name: "nomic-embed-text:latest",
        family: "nomic-bert",
        parameter_size: "137M",
        quantization: "F16",
        size: 274_302_450,
        capabilities: &["embedding"],
        remote: None,
    },
    CatalogueModel {
        name: "secret-model:latest",
        family: "llama",
        parameter_size: "8.0B",
        quantization: "Q8_0",
        size: 8_540_000_000,
        capabilities: &["completion"],
        remote: None,
    },
    CatalogueModel {
        name: "gpt-oss:120b-cloud",
        family: "gptoss",
        parameter_size: "116.8B",
        quantization: "MXFP4",
        size: 384,
        capabilities: &["completion", "tools", "thinking"],
        remote: Some(("gpt-oss:120b", "https://ollama.com:443")),
    },
    CatalogueModel {
        name: "glm-4.6:cloud",
        family: "glm4moe",
        parameter_size: "355B",
        quantization: "FP8",
        size: 346,
        capabilities: &["completion", "tools", "thinking"],
        remote: Some(("glm-4.6", "https://ollama.com:443")),
    },
    // Remote, but nothing in the name says so: only `remote_host` tells.
    CatalogueModel {
        name: "kimi-k2:1t",
        family: "deepseek2",
        parameter_size: "1.0T",
        quantization: "FP8",
        size: 355,
        capabilities: &["completion", "tools"],
        remote: Some(("kimi-k2:1t", "https://ollama.com:443")),
    },
];

/// Deterministic 64-hex digest for a name (not a real sha256; shaped like one).
pub fn digest_of(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut out = String::with_capacity(64);
    for round in 0u64..4 {
        for b in name.bytes().chain(round.to_le_bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out
}

fn details(m: &CatalogueModel) -> Value {
    json!({
        "parent_model": "",
        "format": if m.remote.is_some() { "" } else { "gguf" },
        "family": m.family,
        "families": [m.family],
        "parameter_size": m.parameter_size,
        "quantization_level": m.quantization,
    })
}

fn tag_entry(m: &CatalogueModel) -> Value {
    let mut v = json!({
        "name": m.name,
        "model": m.name,
        "modified_at": CREATED_AT,
        "size": m.size,
        "digest": digest_of(m.name),
        "details": details(m),
        "capabilities": m.capabilities,
    });
    if let (Some((rm, rh)), Some(obj)) = (m.remote, v.as_object_mut()) {
        obj.insert("remote_model".into(), json!(rm));
        obj.insert("remote_host".into(), json!(rh));
    }
    v
}

pub fn find(model: &str) -> Option<&'static CatalogueModel> {
    CATALOGUE
        .iter()
        .find(|m| m.name == model || m.name.strip_suffix(":latest") == Some(model))
}

pub fn tags() -> Value {
    json!({ "models": CATALOGUE.iter().map(tag_entry).collect::<Vec<_>>() })
}

/// `/api/ps`: the first three local models are loaded, plus one cloud model.
pub fn ps() -> Value {
    let loaded: Vec<Value> = CATALOGUE
        .iter()
        .filter(|m| {
            matches!(
                m.name,
                "llama3.2:latest" | "secret-model:latest" | "gpt-oss:120b-cloud"
            )
        })
        .map(|m| {
            json!({
                "name": m.name,
                "model": m.name,
                "size": m.size,
                "digest": digest_of(m.name),
                "details": details(m),
                "expires_at": "2026-08-01T10:20:30.123456Z",
                "size_vram": m.size,
                "context_length": 4096,
            })
        })
        .collect();
    json!({ "models": loaded })
}

pub fn version() -> Value {
    json!({ "version": VERSION })
}

pub fn show(model: &str) -> Value {
    let caps: &[&str] = find(model).map_or(&["completion"], |m| m.capabilities);
    let family = find(model).map_or("llama", |m| m.family);
    json!({
        "license": "LLAMA 3.2 COMMUNITY LICENSE AGREEMENT",
        "modelfile": format!("# Modelfile generated by \"ollama show\"\nFROM {model}\nTEMPLATE \"{{{{ .Prompt }}}}\"\n"),
        "parameters": "stop                           \"<|eot_id|>\"",
        "template": "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}{{ .Prompt }}",
        "system": "You are a helpful assistant.",
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": family,
            "families": [family],
            "parameter_size": "3.2B",
            "quantization_level": "Q4_K_M"
        },
        "model_info": {
            "general.architecture": family,
            "general.parameter_count": 3_212_749_888u64,
            "llama.context_length": 131_072,
            "llama.embedding_length": 3072
        },
        "capabilities": caps,
        "modified_at": CREATED_AT,
    })
}

pub fn v1_model(name: &str) -> Value {
    json!({ "id": name, "object": "model", "created": CREATED_UNIX, "owned_by": "library" })
}

pub fn v1_models() -> Value {
    json!({
        "object": "list",
        "data": CATALOGUE.iter().map(|m| v1_model(m.name)).collect::<Vec<_>>(),
    })
}

/// Deterministic embedding values.
pub fn embedding(seed: usize) -> Vec<f32> {
    (0..EMBED_DIM)
        .map(|i| ((seed * 31 + i * 7) % 100) as f32 / 100.0 - 0.5)
        .collect()
}

/// Number of inputs of an `input` field (string or array).
pub fn input_count(input: Option<&Value>) -> usize {
    match input {
        Some(Value::Array(a)) => a.len().max(1),
        _ => 1,
    }
}

/// The text of content chunk `i`.
pub fn word(i: usize) -> String {
    const WORDS: &[&str] = &["Hello", " from", " the", " mock", " Ollama", "."];
    let w = WORDS[i % WORDS.len()];
    if i < WORDS.len() {
        w.to_string()
    } else {
        format!("{w}{i}")
    }
}

/// Arguments for a tool call: every declared property filled with a value of its type.
pub fn tool_arguments(params: Option<&Value>) -> Value {
    let mut args = serde_json::Map::new();
    if let Some(Value::Object(props)) = params.and_then(|p| p.get("properties")) {
        for (k, schema) in props {
            let v = match schema.get("type").and_then(Value::as_str) {
                Some("integer") => json!(1),
                Some("number") => json!(1.5),
                Some("boolean") => json!(true),
                _ => json!("Paris"),
            };
            args.insert(k.clone(), v);
        }
    }
    if args.is_empty() {
        args.insert("location".into(), json!("Paris"));
    }
    Value::Object(args)
}

/// `(name, parameters)` of the first tool of an OpenAI/Ollama `tools` array
/// (`{"type":"function","function":{...}}`) or an Anthropic one (`{"name","input_schema"}`).
pub fn first_tool(tools: Option<&Value>) -> Option<(String, Option<Value>)> {
    let t = tools?.as_array()?.first()?;
    if let Some(f) = t.get("function") {
        let name = f.get("name")?.as_str()?.to_string();
        return Some((name, f.get("parameters").cloned()));
    }
    let name = t.get("name")?.as_str()?.to_string();
    Some((name, t.get("input_schema").cloned()))
}

/// The error body of a dialect: Ollama `{"error":"..."}`, OpenAI or Anthropic objects.
pub fn error_body(dialect: Dialect, status: u16, message: &str) -> Value {
    match dialect {
        Dialect::Ollama => json!({ "error": message }),
        Dialect::OpenAi => {
            let kind = match status {
                400 => "invalid_request_error",
                404 => "not_found_error",
                _ => "api_error",
            };
            json!({ "error": { "message": message, "type": kind, "param": null, "code": null } })
        }
        Dialect::Anthropic => {
            let kind = match status {
                400 => "invalid_request_error",
                404 => "not_found_error",
                _ => "api_error",
            };
            json!({ "type": "error", "error": { "type": kind, "message": message } })
        }
    }
}

/// Which API family a path belongs to (decides the error shape).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Ollama,
    OpenAi,
    Anthropic,
}

impl Dialect {
    pub fn of(path: &str) -> Dialect {
        if path.starts_with("/v1/messages") {
            Dialect::Anthropic
        } else if path.starts_with("/v1/") {
            Dialect::OpenAi
        } else {
            Dialect::Ollama
        }
    }
}
