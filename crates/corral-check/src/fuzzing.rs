//! Entry points shared by the fuzz targets (`fuzz/fuzz_targets/check_*.rs`) and the corpus
//! smoke test, so both exercise the same parsers of untrusted input.

use crate::{config, firewall, ifaces, models, procnet, settings, systemd, version};

/// `/proc/net/tcp{,6}` and the interface tables.
pub fn proc_net(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for s in procnet::parse(&text) {
        let _ = procnet::reach(s.local.ip());
        // Encoding what was parsed must parse back to the same address.
        let again = procnet::parse_addr(&procnet::encode_addr(s.local));
        assert_eq!(again, Some(s.local));
    }
    let _ = ifaces::host_addrs(&text, &text, &text);
}

/// Unit files, `Environment=` values, environment files, OLLAMA_HOST values.
pub fn systemd_unit(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    for d in systemd::parse_unit(&text) {
        for (_, v) in systemd::split_environment(&d.value) {
            let _ = config::parse_ollama_host(&v);
        }
    }
    for (_, v, _) in systemd::parse_env_file(&text) {
        let _ = config::parse_ollama_host(&v);
    }
    let files = vec![(
        "/etc/systemd/system/ollama.service".to_string(),
        text.clone(),
    )];
    let env = settings::unit_env(&files, &|_| Some(text.clone()));
    let _ = config::findings(&env.settings, 11434, false);
    let _ = settings::passwd_homes(&text);
}

/// Manifests, baselines, `/api/version` bodies and responses, and executables searched for
/// Ollama's link-time version.
pub fn manifest(data: &[u8]) {
    if let Some(v) = crate::binary::version_in(&mut &data[..]) {
        assert!(!v.is_empty() && v.len() <= 40 && v.is_ascii());
    }
    if let Ok(m) = models::manifest::parse_manifest(data) {
        for l in m.blobs() {
            if let Some(hex) = models::manifest::digest_hex(&l.digest) {
                assert!(hex.len() == 64 && !hex.contains('/'));
            }
        }
    }
    let text = String::from_utf8_lossy(data);
    let _ = models::baseline::Baseline::parse(&text);
    let _ = version::version_from_json(&text);
    if let Some(v) = version::parse_version_response(data) {
        let _ = version::cve_findings(&v, &crate::finding::Evidence::note("fuzz"));
    }
}

/// nft JSON and iptables-save text.
pub fn firewall(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for fam in [firewall::nft::Family::V4, firewall::nft::Family::V6] {
        if let Ok(rs) = firewall::nft::lower(&text, 11434, fam) {
            let _ = firewall::evaluate(&rs);
        }
    }
    if let Some(rs) = firewall::iptables::lower(&text, 11434) {
        let _ = firewall::evaluate(&rs);
    }
}
