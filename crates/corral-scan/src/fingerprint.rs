//! Read-only probing of one endpoint. Only the routes in `ALLOWED` are ever requested: nothing
//! here spends a target's compute, changes its models or makes it call out.

use crate::classify::{self, Detected};
use crate::findings;
use crate::http::{Client, Conn, HttpError, Response, Session};
use crate::report::{Admin, Auth, HostReport, ServerKind};
use crate::targets::{Endpoint, Scheme};

/// The admin-reachability probe: HEAD only checks whether a blob exists; none does.
pub const BLOB_PROBE: &str =
    "/api/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// Every (method, path) the scanner may send.
pub const ALLOWED: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/api/version"),
    ("GET", "/api/tags"),
    ("POST", "/api/show"),
    ("GET", "/api/ps"),
    ("HEAD", BLOB_PROBE),
    ("GET", "/api/extra/version"),
    ("GET", "/api/config"),
    ("GET", "/health/liveliness"),
    ("GET", "/health"),
    ("GET", "/v1/models"),
    ("GET", "/info"),
    ("GET", "/v1/internal/model/info"),
    ("GET", "/get_model_info"),
];

#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Most `/api/show` calls per host when tags lack capabilities.
    pub max_show: usize,
    /// Most models kept per host.
    pub max_models: usize,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            max_show: 8,
            max_models: 200,
        }
    }
}

struct Probe<'a> {
    client: &'a Client,
    conn: Conn<'a>,
    /// One keep-alive connection for all of this endpoint's requests.
    session: Session,
}

impl Probe<'_> {
    async fn get(&self, path: &str) -> Result<Response, HttpError> {
        self.client.get(&self.conn, Some(&self.session), path).await
    }
}

/// Fingerprints one endpoint; `None` when nothing LLM-related answers there.
pub async fn probe(client: &Client, ep: &Endpoint, opts: &ProbeOptions) -> Option<HostReport> {
    let mut slot = None;
    probe_into(client, ep, opts, &mut slot).await;
    slot
}

/// [`probe`] that fills `slot` as it learns: the report is there as soon as the server is
/// identified, so a caller whose deadline cuts the probe short still has what was found
/// (see [`cut_short`]). On return the report is complete and assessed.
pub async fn probe_into(
    client: &Client,
    ep: &Endpoint,
    opts: &ProbeOptions,
    slot: &mut Option<HostReport>,
) {
    let host = ep.host.as_deref();
    let mut p = Probe {
        client,
        conn: Conn {
            ip: ep.ip,
            port: ep.port,
            host,
            tls: ep.scheme == Some(Scheme::Https),
        },
        session: Session::default(),
    };
    let root = match p.get("/").await {
        Ok(r) if !p.conn.tls && classify::wants_tls(&r) => {
            p.conn.tls = true;
            let Ok(r) = p.get("/").await else { return };
            r
        }
        Ok(r) => r,
        Err(HttpError::TlsLooking | HttpError::Empty | HttpError::Io(_)) if !p.conn.tls => {
            p.conn.tls = true;
            let Ok(r) = p.get("/").await else { return };
            r
        }
        Err(_) => return,
    };
    let scheme = if p.conn.tls {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let new = |kind| {
        let mut r = HostReport::new(
            ep.ip,
            ep.port,
            ep.host.as_deref().map(str::to_string),
            scheme,
            kind,
        );
        r.tls_cert_error = root.cert_error.clone();
        r
    };
    if classify::is_ollama_banner(&root) {
        let r = slot.insert(new(ServerKind::Ollama));
        r.evidence
            .push(("banner", classify::evidence("GET", "/", &root)));
        ollama(&p, r, opts).await;
    } else if classify::is_corral_gate(&root) {
        let r = slot.insert(new(ServerKind::CorralGate));
        r.auth = Auth::Protected;
        r.evidence
            .push(("auth", classify::evidence("GET", "/", &root)));
    } else if classify::is_denied(&root) {
        let r = slot.insert(new(ServerKind::UnknownProtected));
        r.auth = Auth::Protected;
        r.evidence
            .push(("auth", classify::evidence("GET", "/", &root)));
    } else {
        let Some(found) = other(&p, &root, &new, slot).await else {
            return;
        };
        if found == ServerKind::OllamaCompatible {
            if let Some(r) = slot.as_mut() {
                ollama(&p, r, opts).await;
            }
        }
    }
    if let Some(r) = slot.as_mut() {
        r.findings = findings::assess(r);
    }
}

/// Finishes a report whose probe was stopped by Ctrl-C after the server was identified.
pub fn interrupted(r: &mut HostReport) {
    r.notes
        .push("probe interrupted (Ctrl-C): later checks missing".to_string());
    r.findings = findings::assess(r);
}

/// Finishes a report whose probe hit the per-host deadline: the server was identified, so it
/// is reported with what was learnt and a note that the rest is missing.
pub fn cut_short(r: &mut HostReport, deadline: std::time::Duration) {
    r.notes.push(format!(
        "probe cut short by the per-host timeout ({} s): later checks missing",
        deadline.as_secs_f64()
    ));
    r.findings = findings::assess(r);
}

async fn ollama(p: &Probe<'_>, r: &mut HostReport, opts: &ProbeOptions) {
    // Open is claimed only once a discovery route answers without credentials: a probe cut
    // before that (deadline, Ctrl-C) or a model list that fails leaves it unknown.
    if r.auth != Auth::Protected {
        r.auth = Auth::Unknown;
    }
    if let Ok(v) = p.get("/api/version").await {
        if v.status == 200 {
            r.version = v.json().and_then(|j| {
                j.get("version")?
                    .as_str()
                    .map(|s| s.chars().take(40).collect())
            });
            r.evidence
                .push(("version", classify::evidence("GET", "/api/version", &v)));
        } else if classify::is_denied(&v) {
            r.evidence
                .push(("auth", classify::evidence("GET", "/api/version", &v)));
        }
    }
    let mut lacking_caps = false;
    match p.get("/api/tags").await {
        Ok(t) if classify::is_corral_gate(&t) => {
            r.server = ServerKind::CorralGate;
            r.auth = Auth::Protected;
            r.evidence
                .push(("auth", classify::evidence("GET", "/api/tags", &t)));
        }
        Ok(t) if classify::is_denied(&t) => {
            r.auth = Auth::Protected;
            r.evidence
                .push(("auth", classify::evidence("GET", "/api/tags", &t)));
        }
        Ok(t) if t.status == 200 => {
            // Only a model list shows the models open: a proxy's 200 sign-in page does not.
            if let Some((models, all_caps)) = t
                .json()
                .and_then(|j| classify::parse_tags(&j, opts.max_models))
            {
                r.auth = Auth::Open;
                r.models = models;
                lacking_caps = !all_caps;
            }
            r.evidence
                .push(("tags", classify::evidence("GET", "/api/tags", &t)));
        }
        _ => {}
    }
    if r.auth == Auth::Protected {
        return;
    }
    if lacking_caps {
        for m in r
            .models
            .iter_mut()
            // Never a cloud model: showing one can make the target call ollama.com on its
            // owner's account. Cloud models are recorded from /api/tags alone.
            .filter(|m| m.capabilities.is_empty() && !m.cloud)
            .take(opts.max_show)
        {
            let body = serde_json::json!({ "model": m.name }).to_string();
            let Ok(s) = p
                .client
                .post_json(&p.conn, Some(&p.session), "/api/show", body.as_bytes())
                .await
            else {
                continue;
            };
            if s.status == 200 {
                if let Some(j) = s.json() {
                    m.capabilities = classify::capabilities_from_show(&j);
                }
                if !r.evidence.iter().any(|(k, _)| *k == "show") {
                    r.evidence
                        .push(("show", classify::evidence_withheld("POST", "/api/show", &s)));
                }
            }
        }
    }
    if let Ok(ps) = p.get("/api/ps").await {
        if classify::is_denied(&ps) && r.auth == Auth::Unknown {
            r.auth = Auth::Protected;
            r.evidence
                .push(("auth", classify::evidence("GET", "/api/ps", &ps)));
            return;
        }
        if let Some(loaded) = (ps.status == 200)
            .then(|| ps.json())
            .flatten()
            .and_then(|j| classify::parse_ps(&j))
        {
            r.auth = Auth::Open;
            r.loaded_models = loaded;
            r.evidence
                .push(("ps", classify::evidence("GET", "/api/ps", &ps)));
        }
    }
    if let Ok(b) = p.client.head(&p.conn, Some(&p.session), BLOB_PROBE).await {
        r.admin = match b.status {
            // Ollama answers 404 for an absent blob and 200 for a present one: either way the
            // route answered without credentials. A gate or proxy answers 401/403.
            200 | 404 => Admin::Reachable,
            401 | 403 => Admin::Blocked,
            _ => Admin::Unknown,
        };
        r.evidence
            .push(("admin", classify::evidence("HEAD", BLOB_PROBE, &b)));
    }
}

/// Identifies a server other than Ollama and puts its report in `slot`; returns its kind.
async fn other<F>(
    p: &Probe<'_>,
    root: &Response,
    new: &F,
    slot: &mut Option<HostReport>,
) -> Option<ServerKind>
where
    F: Fn(ServerKind) -> HostReport,
{
    let (kind, detected, ev) = match classify::detect("/", root) {
        Some((k, d)) => (k, d, classify::evidence("GET", "/", root)),
        None => {
            let mut hit = None;
            for path in classify::OTHER_PROBES {
                let Ok(resp) = p.get(path).await else {
                    continue;
                };
                if let Some((k, d)) = classify::detect(path, &resp) {
                    hit = Some((k, d, classify::evidence("GET", path, &resp)));
                    break;
                }
            }
            hit?
        }
    };
    let r = slot.insert(new(kind));
    apply(r, detected);
    r.evidence.push(("identity", ev));
    if matches!(
        kind,
        ServerKind::Vllm
            | ServerKind::LmStudio
            | ServerKind::OllamaCompatible
            | ServerKind::OpenWebui
    ) {
        return Some(kind);
    }
    // Open is claimed only on evidence that the model API answers without credentials. TGI,
    // text-generation-webui and SGLang were identified by their model-info route, which sits
    // behind the same API key as inference; the others by a banner, a health or version route,
    // which answer whether or not a key is set, so they stay unknown until /v1/models answers
    // with a model list. A 404, a 5xx or some other page proves nothing either way.
    let identified_by_model_api = matches!(
        kind,
        ServerKind::Tgi | ServerKind::TextGenerationWebui | ServerKind::Sglang
    );
    if !identified_by_model_api && r.auth == Auth::Open {
        r.auth = Auth::Unknown;
    }
    if let Ok(m) = p.get("/v1/models").await {
        if classify::is_denied(&m) {
            r.auth = Auth::Protected;
            r.evidence
                .push(("auth", classify::evidence("GET", "/v1/models", &m)));
        } else {
            if let Some(ids) = (m.status == 200)
                .then(|| m.json())
                .flatten()
                .and_then(|j| classify::parse_model_list(&j))
            {
                r.auth = Auth::Open;
                if r.models.is_empty() {
                    r.models = ids
                        .into_iter()
                        .map(|name| crate::report::Model {
                            name,
                            ..Default::default()
                        })
                        .collect();
                }
            }
            r.evidence
                .push(("models", classify::evidence("GET", "/v1/models", &m)));
        }
    }
    Some(kind)
}

fn apply(r: &mut HostReport, d: Detected) {
    r.version = d.version;
    r.models = d
        .models
        .into_iter()
        .map(|name| crate::report::Model {
            name,
            ..Default::default()
        })
        .collect();
    r.open_signup = d.open_signup;
    r.notes = d.notes;
    if r.server == ServerKind::OpenWebui && !d.auth_disabled && !d.open_signup {
        r.auth = Auth::Protected;
    }
}
