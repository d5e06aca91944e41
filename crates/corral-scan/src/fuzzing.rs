//! Entry points for the fuzz targets (fuzz/fuzz_targets/scan_*.rs): every parser of bytes a
//! scanned server or a discovery tool controls, driven without I/O.

use crate::classify;
use crate::http;
use crate::report::{HostReport, ServerKind};
use crate::targets::{self, InputFormat};

/// Target lines in every input format, including the stateful zmap header.
pub fn targets(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for format in [InputFormat::List, InputFormat::Masscan, InputFormat::Zmap] {
        let mut header = None;
        for line in text.lines().take(1000) {
            let _ = targets::parse_line(format, line, &mut header);
        }
    }
    let _ = targets::parse_ports(&text);
    let _ = targets::Shard::parse(&text);
}

/// A raw HTTP response, then everything the fingerprinter reads from its body.
pub fn http_response(data: &[u8]) {
    // Where the read loop ends a chunked body, the decoder agrees the body is whole.
    if let Some(n) = http::chunked_len(data) {
        assert!(n <= data.len());
        assert!(
            http::dechunk(data.get(..n).unwrap_or(&[])).1,
            "chunked end without a clean decode"
        );
    }
    for head_only in [false, true] {
        let Ok(resp) = http::parse_response(data, head_only) else {
            continue;
        };
        let _ = classify::is_ollama_banner(&resp)
            || classify::is_corral_gate(&resp)
            || classify::wants_tls(&resp);
        for path in std::iter::once(&"/").chain(classify::OTHER_PROBES) {
            let _ = classify::detect(path, &resp);
        }
        let _ = classify::evidence("GET", "/", &resp);
    }
}

/// JSON bodies of /api/tags, /api/show, /api/ps and /api/version, through to findings.
pub fn ollama_json(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let mut r = HostReport::new(
        std::net::Ipv4Addr::LOCALHOST.into(),
        11434,
        None,
        targets::Scheme::Http,
        ServerKind::Ollama,
    );
    if let Some((models, _)) = classify::parse_tags(&v, 200) {
        r.models = models;
    }
    let _ = classify::capabilities_from_show(&v);
    r.loaded_models = classify::parse_ps(&v).unwrap_or_default();
    r.version = v
        .get("version")
        .and_then(|x| x.as_str())
        .map(str::to_string);
    r.findings = crate::findings::assess(&r);
    let _ = crate::summary::summarise(std::slice::from_ref(&r), 1);
}
