//! masscan and zmap output, line by line: port discovery at scale, fingerprinting here.

use std::net::IpAddr;

use super::{parse_port, InputFormat, IpRange, Spec};

/// Column positions from a zmap CSV header (`saddr,sport,...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZmapHeader {
    saddr: usize,
    sport: Option<usize>,
    success: Option<usize>,
}

fn one(ip: &str, port: Option<u16>) -> Result<Spec, String> {
    let ip: IpAddr = ip
        .trim()
        .parse()
        .map_err(|_| format!("not an address: `{}`", clip(ip)))?;
    Ok(Spec::Range {
        range: IpRange::single(ip),
        port,
        scheme: None,
    })
}

fn clip(s: &str) -> String {
    s.chars().take(48).collect()
}

fn port_of(v: &serde_json::Value) -> Option<u16> {
    v.as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
}

fn is_open(v: &serde_json::Value) -> bool {
    let status = v
        .get("status")
        .or_else(|| v.get("data").and_then(|d| d.get("status")));
    status.and_then(|s| s.as_str()).is_none_or(|s| s == "open")
}

/// masscan also scans UDP and SCTP (`-pU:53`): those ports are not HTTP servers, and probing the
/// same number over TCP would scan something the user did not find. A record without a
/// protocol is taken as TCP, masscan's default.
fn is_tcp(proto: Option<&str>) -> bool {
    proto.is_none_or(|p| p.trim().eq_ignore_ascii_case("tcp"))
}

fn json_is_tcp(v: &serde_json::Value) -> bool {
    is_tcp(v.get("proto").and_then(|p| p.as_str()))
}

fn masscan_json(line: &str) -> Result<Vec<Spec>, String> {
    // Older masscan -oJ leaves a trailing comma after every object, including the last.
    let body = line.trim().trim_end_matches(',');
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|_| "malformed masscan JSON".to_string())?;
    let ip = v
        .get("ip")
        .and_then(|i| i.as_str())
        .ok_or("masscan JSON without `ip`")?;
    if v.get("rec_type")
        .and_then(|r| r.as_str())
        .is_some_and(|r| r != "status")
    {
        return Ok(Vec::new());
    }
    if let Some(ports) = v.get("ports").and_then(|p| p.as_array()) {
        return ports
            .iter()
            .filter(|p| is_open(p) && json_is_tcp(p))
            .filter_map(|p| port_of(p.get("port")?))
            .map(|port| one(ip, Some(port)))
            .collect();
    }
    match v.get("port").and_then(port_of) {
        Some(port) if is_open(&v) && json_is_tcp(&v) => Ok(vec![one(ip, Some(port))?]),
        Some(_) => Ok(Vec::new()),
        None => Ok(vec![one(ip, None)?]),
    }
}

fn masscan_grepable(line: &str) -> Result<Vec<Spec>, String> {
    let host = line
        .split("Host:")
        .nth(1)
        .ok_or("masscan -oG line without Host:")?;
    let ip = host
        .split_whitespace()
        .next()
        .ok_or("masscan -oG line without address")?;
    let Some(ports) = line.split("Ports:").nth(1) else {
        return Ok(vec![one(ip, None)?]);
    };
    let mut out = Vec::new();
    for entry in ports.split(',') {
        let mut fields = entry.trim().split('/');
        let port = fields.next().unwrap_or("");
        if fields.next() == Some("open") && is_tcp(fields.next().filter(|p| !p.is_empty())) {
            out.push(one(
                ip,
                Some(parse_port(port.trim(), line).map_err(|e| e.to_string())?),
            )?);
        }
    }
    Ok(out)
}

fn masscan(line: &str) -> Result<Vec<Spec>, String> {
    // masscan 1.3 -oJ writes the separator before each record after the first (`,` on a line
    // of its own); other writers put it in front of the object.
    let t = line.trim();
    let t = t.strip_prefix(',').map_or(t, str::trim_start);
    if t.is_empty() || t.starts_with('#') || t == "[" || t == "]" || t == "]," {
        return Ok(Vec::new());
    }
    if t.starts_with('{') {
        return masscan_json(t);
    }
    if t.contains("Host:") {
        return masscan_grepable(t);
    }
    let f: Vec<&str> = t.split_whitespace().collect();
    match f.as_slice() {
        ["open", proto, _, _, ..] if !is_tcp(Some(proto)) => Ok(Vec::new()),
        ["open", _proto, port, ip, ..] => Ok(vec![one(
            ip,
            Some(super::parse_port(port, t).map_err(|e| e.to_string())?),
        )?]),
        ["closed" | "banner" | "unknown", ..] => Ok(Vec::new()),
        _ => Err(format!("unrecognised masscan line `{}`", clip(t))),
    }
}

fn zmap(line: &str, header: &mut Option<ZmapHeader>) -> Result<Vec<Spec>, String> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return Ok(Vec::new());
    }
    if header.is_none() && t.contains(',') && t.split(',').any(|c| c.trim() == "saddr") {
        let cols: Vec<&str> = t.split(',').map(str::trim).collect();
        let find = |name: &str| cols.iter().position(|c| *c == name);
        *header = find("saddr").map(|saddr| ZmapHeader {
            saddr,
            sport: find("sport"),
            success: find("success"),
        });
        return Ok(Vec::new());
    }
    let Some(h) = header else {
        return Ok(vec![one(t, None)?]);
    };
    let cols: Vec<&str> = t.split(',').map(str::trim).collect();
    if h.success
        .and_then(|i| cols.get(i))
        .is_some_and(|s| *s == "0" || s.eq_ignore_ascii_case("false"))
    {
        return Ok(Vec::new());
    }
    let ip = cols
        .get(h.saddr)
        .ok_or("zmap row shorter than its header")?;
    let port = match h.sport.and_then(|i| cols.get(i)) {
        Some(p) => Some(parse_port(p, t).map_err(|e| e.to_string())?),
        None => None,
    };
    Ok(vec![one(ip, port)?])
}

/// Parses one line of masscan or zmap output. Non-open records and comments yield nothing.
pub fn parse_discovery_line(
    format: InputFormat,
    line: &str,
    zmap_header: &mut Option<ZmapHeader>,
) -> Result<Vec<Spec>, String> {
    match format {
        InputFormat::Zmap => zmap(line, zmap_header),
        _ => masscan(line),
    }
}
