//! Pure readers of server replies: which server this is and what models it has. Which CVEs a
//! version has comes from `corral-ollama`, shared with `corral check`.

use serde_json::Value;

use crate::http::Response;
use crate::report::{Evidence, Model, ServerKind};

const EXCERPT: usize = 240;

/// A bounded, single-line excerpt of a reply for evidence.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body.get(..EXCERPT * 4).unwrap_or(body));
    let mut out: String = text
        .chars()
        .take(EXCERPT)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > EXCERPT {
        out.push('…');
    }
    out
}

pub fn evidence(method: &str, path: &str, resp: &Response) -> Evidence {
    Evidence {
        request: format!("{method} {path}"),
        status: resp.status,
        excerpt: excerpt(&resp.body),
    }
}

/// Evidence whose body may carry system prompts or templates: the body is never kept.
pub fn evidence_withheld(method: &str, path: &str, resp: &Response) -> Evidence {
    Evidence {
        request: format!("{method} {path}"),
        status: resp.status,
        excerpt: "(body withheld: may contain prompts)".to_string(),
    }
}

pub fn is_ollama_banner(resp: &Response) -> bool {
    resp.status == 200 && resp.text().trim_start().starts_with("Ollama is running")
}

pub fn is_denied(resp: &Response) -> bool {
    resp.status == 401 || resp.status == 403
}

/// corral's gate answers 401 with `Bearer realm="corral"` and an Ollama-shaped error body.
pub fn is_corral_gate(resp: &Response) -> bool {
    resp.status == 401
        && resp
            .header("www-authenticate")
            .is_some_and(|v| v.to_ascii_lowercase().contains("realm=\"corral\""))
        && resp.json().is_some_and(|j| j.get("error").is_some())
}

/// Plain HTTP sent to a TLS port, as Go and nginx word it.
pub fn wants_tls(resp: &Response) -> bool {
    resp.status == 400 && {
        let t = resp.text();
        t.contains("HTTP request to an HTTPS server")
            || t.contains("plain HTTP request was sent to HTTPS port")
    }
}

fn s(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|x| !x.is_empty())
        .map(|x| x.chars().take(200).collect())
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .take(32)
                .map(|x| x.chars().take(32).collect())
                .collect()
        })
        .unwrap_or_default()
}

fn foreign_registry(name: &str) -> bool {
    // `10.1.2.3:8443/attacker/x` or `evil.example:5000/x`: a registry host with a port.
    name.split('/')
        .next()
        .is_some_and(|first| first.contains(':') && name.contains('/'))
}

/// A cloud model runs on ollama.com under the server owner's account: a `cloud` or `-cloud`
/// tag, or a tags entry that names its remote (`remote_host`, `remote_model`).
pub fn is_cloud(name: &str, entry: &Value) -> bool {
    let tag = name
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .map_or("", |(_, t)| t);
    tag == "cloud"
        || tag.ends_with("-cloud")
        || s(entry, "remote_host").is_some()
        || s(entry, "remote_model").is_some()
}

/// `/api/tags`: the models and whether every entry carried `capabilities` (0.30+).
pub fn parse_tags(v: &Value, max_models: usize) -> Option<(Vec<Model>, bool)> {
    let list = v.get("models")?.as_array()?;
    let mut all_caps = true;
    let mut out = Vec::new();
    for m in list.iter().take(max_models) {
        let Some(name) = s(m, "name").or_else(|| s(m, "model")) else {
            continue;
        };
        let d = m.get("details").cloned().unwrap_or(Value::Null);
        let caps = m.get("capabilities");
        all_caps &= caps.is_some_and(Value::is_array);
        out.push(Model {
            cloud: is_cloud(&name, m),
            foreign_registry: foreign_registry(&name),
            family: s(&d, "family"),
            parameter_size: s(&d, "parameter_size"),
            quantization: s(&d, "quantization_level"),
            capabilities: strings(caps),
            name,
        });
    }
    Some((out, all_caps))
}

/// `/api/show`: capabilities, inferred from template and projector on servers older than 0.6.4.
pub fn capabilities_from_show(v: &Value) -> Vec<String> {
    let listed = strings(v.get("capabilities"));
    if !listed.is_empty() {
        return listed;
    }
    let mut caps = vec!["completion".to_string()];
    if v.get("template")
        .and_then(Value::as_str)
        .is_some_and(|t| t.contains(".Tools") || t.contains(".ToolCalls"))
    {
        caps.push("tools".to_string());
    }
    if v.get("projector_info").is_some_and(|p| !p.is_null()) {
        caps.push("vision".to_string());
    }
    caps
}

/// `/api/ps`: names of the models loaded right now.
/// The running models of an `/api/ps` answer; `None` when it is not a model list.
pub fn parse_ps(v: &Value) -> Option<Vec<String>> {
    v.get("models").and_then(Value::as_array).map(|a| {
        a.iter()
            .take(64)
            .filter_map(|m| s(m, "name").or_else(|| s(m, "model")))
            .collect()
    })
}

/// An OpenAI-style `/v1/models` answer (`{"object":"list","data":[{"id":…}]}`): the model ids,
/// or `None` when it is not a model list (an error object, a sign-in page, a health reply).
pub fn parse_model_list(v: &Value) -> Option<Vec<String>> {
    let data = v.get("data")?.as_array()?;
    Some(data.iter().take(64).filter_map(|m| s(m, "id")).collect())
}

/// Facts a non-Ollama probe can establish.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Detected {
    pub version: Option<String>,
    pub models: Vec<String>,
    pub open_signup: bool,
    pub auth_disabled: bool,
    pub notes: Vec<String>,
}

/// The read-only probes for non-Ollama servers, in order. KoboldCpp and Open WebUI come before
/// the Ollama-shaped `/api/tags` check because they emulate it.
pub const OTHER_PROBES: &[&str] = &[
    "/api/extra/version",
    "/api/config",
    "/health/liveliness",
    "/health",
    "/v1/models",
    "/info",
    "/v1/internal/model/info",
    "/get_model_info",
    "/api/tags",
];

/// Recognises a server from one probe's reply.
pub fn detect(path: &str, resp: &Response) -> Option<(ServerKind, Detected)> {
    if resp.status != 200 {
        return None;
    }
    let j = resp.json();
    let mut d = Detected::default();
    let kind = match (path, &j) {
        ("/", _) if resp.text().contains("<title>LocalAI") => ServerKind::LocalAi,
        ("/api/extra/version", Some(v)) if s(v, "result").as_deref() == Some("KoboldCpp") => {
            d.version = s(v, "version");
            ServerKind::Koboldcpp
        }
        ("/api/config", Some(v)) if s(v, "name").is_some_and(|n| n.contains("Open WebUI")) => {
            d.version = s(v, "version");
            let f = v.get("features").cloned().unwrap_or(Value::Null);
            d.auth_disabled = f.get("auth").and_then(Value::as_bool) == Some(false);
            let signup = f.get("enable_signup").and_then(Value::as_bool) == Some(true);
            let onboarding = v.get("onboarding").and_then(Value::as_bool) == Some(true);
            d.open_signup = signup || onboarding;
            if onboarding {
                d.notes
                    .push("onboarding pending: the first visitor becomes admin".into());
            }
            if signup {
                d.notes.push("open signup enabled".into());
            }
            ServerKind::OpenWebui
        }
        ("/health/liveliness", _) if resp.text().contains("I'm alive") => ServerKind::Litellm,
        ("/health", _)
            if resp
                .header("server")
                .is_some_and(|v| v.contains("llama.cpp")) =>
        {
            ServerKind::LlamaCpp
        }
        ("/v1/models", Some(v)) => {
            let data = v.get("data").and_then(Value::as_array)?;
            let owner = data.first().and_then(|m| s(m, "owned_by"))?;
            d.models = data.iter().take(64).filter_map(|m| s(m, "id")).collect();
            match owner.as_str() {
                "vllm" => ServerKind::Vllm,
                "organization_owner" => ServerKind::LmStudio,
                _ => return None,
            }
        }
        ("/info", Some(v))
            if v.get("model_id").is_some() && v.get("max_total_tokens").is_some() =>
        {
            d.version = s(v, "version");
            d.models = s(v, "model_id").into_iter().collect();
            ServerKind::Tgi
        }
        ("/v1/internal/model/info", Some(v)) if v.get("model_name").is_some() => {
            d.models = s(v, "model_name").into_iter().collect();
            ServerKind::TextGenerationWebui
        }
        ("/get_model_info", Some(v)) if v.get("model_path").is_some() => {
            d.models = s(v, "model_path").into_iter().collect();
            ServerKind::Sglang
        }
        ("/api/tags", Some(v)) if v.get("models").is_some_and(Value::is_array) => {
            ServerKind::OllamaCompatible
        }
        _ => return None,
    };
    Some((kind, d))
}

#[cfg(test)]
mod tests;
