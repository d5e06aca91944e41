//! Linux audit logs (raw `audit.log` lines, optionally behind a syslog/journal prefix).
//! Records of one event share `msg=audit(TIME:SERIAL)`; they are grouped, then turned into
//! one ECS event: bind → `bound-socket`, accept → `connection_accepted`, connect →
//! `connection_attempted`, execve → a process start whose parent name comes from a pid table
//! built from earlier records.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::event::{Event, Val};
use crate::fields::*;

/// A parsed record line: its type, the event key, and its `key=value` pairs.
#[derive(Debug)]
pub struct Record<'a> {
    pub kind: &'a str,
    pub stamp: &'a str,
    pub serial: u64,
    pub pairs: Vec<(&'a str, &'a str)>,
}

pub fn parse_record(line: &str) -> Result<Record<'_>, &'static str> {
    let at = line.find("type=").ok_or("no type= in audit line")?;
    let line = &line[at + 5..];
    let (kind, rest) = line.split_once(' ').ok_or("audit line without msg=")?;
    let rest = rest.trim_start();
    let rest = rest
        .strip_prefix("msg=audit(")
        .ok_or("audit line without msg=audit(")?;
    let (key, rest) = rest.split_once(')').ok_or("unterminated msg=audit(")?;
    let (stamp, serial) = key.rsplit_once(':').ok_or("msg=audit() without serial")?;
    let serial = serial
        .parse()
        .map_err(|_| "msg=audit() serial is not a number")?;
    let rest = rest.trim_start_matches([':', ' ']);
    Ok(Record {
        kind,
        stamp,
        serial,
        pairs: pairs(rest),
    })
}

/// `k=v k="quoted v"` pairs; quoted values may contain spaces.
fn pairs(s: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim();
        let after = &rest[eq + 1..];
        let (val, next) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else if let Some(q) = after.strip_prefix('\'') {
            match q.find('\'') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match after.find(' ') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        out.push((key, val));
        rest = next.trim_start();
    }
    out
}

fn get<'a>(pairs: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// A socket address from a SOCKADDR `saddr` hex string.
#[derive(Debug, PartialEq, Eq)]
pub struct SockAddr {
    pub ip: String,
    pub port: u16,
}

pub fn decode_saddr(hex: &str) -> Option<SockAddr> {
    let bytes = decode_hex(hex)?;
    let family = u16::from_le_bytes([*bytes.first()?, *bytes.get(1)?]);
    let port = u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?]);
    match family {
        2 => {
            let a: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
            Some(SockAddr {
                ip: Ipv4Addr::from(a).to_string(),
                port,
            })
        }
        10 => {
            let a: [u8; 16] = bytes.get(8..24)?.try_into().ok()?;
            let v6 = Ipv6Addr::from(a);
            let ip = match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => v6.to_string(),
            };
            Some(SockAddr { ip, port })
        }
        _ => None,
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || s.is_empty() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// SYSCALL fields auditd writes as bare hex when they hold a space, a quote, a control
/// character or a non-ASCII byte (its "untrusted strings").
const HEX_FIELDS: [&str; 2] = ["comm", "exe"];

/// Whether `key="` starts a pair in `rest` (the record after `msg=audit(...): `).
fn is_quoted(rest: &str, key: &str) -> bool {
    let pat = format!("{key}=\"");
    rest.match_indices(&pat)
        .any(|(i, _)| i == 0 || rest.as_bytes()[i - 1] == b' ')
}

/// An EXECVE argument: quoted text, or hex when it held spaces or control characters.
fn exec_arg(v: &str, quoted: bool) -> String {
    if !quoted {
        if let Some(b) = decode_hex(v) {
            return String::from_utf8_lossy(&b).into_owned();
        }
    }
    v.to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Bind,
    Connect,
    Accept,
    Execve,
    Other,
}

fn syscall(arch: Option<&str>, sc: &str) -> Call {
    let aarch64 = arch.is_some_and(|a| a.eq_ignore_ascii_case("c00000b7") || a == "aarch64");
    match sc {
        "bind" => Call::Bind,
        "connect" => Call::Connect,
        "accept" | "accept4" => Call::Accept,
        "execve" | "execveat" => Call::Execve,
        n => match (aarch64, n.parse::<u32>()) {
            (false, Ok(49)) | (true, Ok(200)) => Call::Bind,
            (false, Ok(42)) | (true, Ok(203)) => Call::Connect,
            (false, Ok(43 | 288)) | (true, Ok(202 | 242)) => Call::Accept,
            (false, Ok(59 | 322)) | (true, Ok(221 | 281)) => Call::Execve,
            _ => Call::Other,
        },
    }
}

/// The records of one audit event, owned (they span lines).
#[derive(Debug, Default)]
pub struct Group {
    pub first_line: u64,
    pub first_offset: u64,
    pub stamp: String,
    pub original: String,
    syscall: Vec<(String, String)>,
    saddr: Option<String>,
    args: Vec<String>,
}

impl Group {
    pub fn new(first_line: u64, first_offset: u64, stamp: &str) -> Self {
        Group {
            first_line,
            first_offset,
            stamp: stamp.to_string(),
            ..Default::default()
        }
    }

    pub fn add(&mut self, rec: &Record<'_>, raw: &str) {
        if !self.original.is_empty() {
            self.original.push('\n');
        }
        self.original.push_str(raw);
        match rec.kind {
            "SYSCALL" => {
                let raw_rest = raw.split_once("): ").map_or(raw, |(_, r)| r);
                self.syscall = rec
                    .pairs
                    .iter()
                    .map(|(k, v)| {
                        let v = if HEX_FIELDS.contains(k) && !is_quoted(raw_rest, k) {
                            exec_arg(v, false)
                        } else {
                            v.to_string()
                        };
                        (k.to_string(), v)
                    })
                    .collect();
            }
            "SOCKADDR" => self.saddr = get(&rec.pairs, "saddr").map(str::to_string),
            "EXECVE" => {
                let raw_rest = raw.split_once("): ").map_or(raw, |(_, r)| r);
                let argc: usize = get(&rec.pairs, "argc")
                    .and_then(|a| a.parse().ok())
                    .unwrap_or(0);
                for i in 0..argc.min(4096) {
                    let key = format!("a{i}");
                    if let Some(v) = get(&rec.pairs, &key) {
                        let quoted = raw_rest.contains(&format!("{key}=\""));
                        self.args.push(exec_arg(v, quoted));
                    }
                }
            }
            _ => {}
        }
    }
}

/// pid → (comm, exe), bounded so a long log cannot grow it without limit.
#[derive(Debug, Default)]
pub struct PidTable {
    map: HashMap<String, (String, String)>,
}

impl PidTable {
    const MAX: usize = 200_000;

    fn note(&mut self, pid: &str, comm: &str, exe: &str) {
        if self.map.len() >= Self::MAX {
            self.map.clear();
        }
        self.map
            .insert(pid.to_string(), (comm.to_string(), exe.to_string()));
    }
}

fn sc<'g>(g: &'g Group, key: &str) -> Option<&'g str> {
    g.syscall
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Builds the event for a complete group; `None` when it carries no SYSCALL record.
pub fn to_event(g: &Group, pids: &mut PidTable, ev: &mut Event<'static>) -> bool {
    let Some(number) = sc(g, "syscall") else {
        return false;
    };
    let call = syscall(sc(g, "arch"), number);
    let owned = |s: &str| Val::Str(Cow::Owned(s.trim_matches('"').to_string()));
    ev.set(TIMESTAMP, owned(&g.stamp));
    ev.set(EVENT_MODULE, Val::str("auditd"));
    ev.set(EVENT_DATASET, Val::str("auditd.log"));
    let comm = sc(g, "comm").unwrap_or_default();
    let exe = sc(g, "exe").unwrap_or_default();
    let pid = sc(g, "pid").unwrap_or_default();
    let ppid = sc(g, "ppid").unwrap_or_default();
    if !comm.is_empty() {
        ev.set(PROCESS_NAME, owned(comm));
    }
    if !exe.is_empty() {
        ev.set(PROCESS_EXECUTABLE, owned(exe));
    }
    if let Ok(p) = pid.parse::<f64>() {
        ev.set(PROCESS_PID, Val::Num(p));
    }
    if let Ok(p) = ppid.parse::<f64>() {
        ev.set(PARENT_PID, Val::Num(p));
    }
    if let Some(u) = sc(g, "uid") {
        ev.set(USER_NAME, owned(u));
    }
    match sc(g, "success") {
        Some("yes") => ev.set(EVENT_OUTCOME, Val::str("success")),
        Some("no") => ev.set(EVENT_OUTCOME, Val::str("failure")),
        _ => {}
    }
    let addr = g.saddr.as_deref().and_then(decode_saddr);
    match call {
        Call::Bind | Call::Accept => {
            ev.set(EVENT_CATEGORY, Val::str("network"));
            ev.set(
                EVENT_ACTION,
                Val::str(if call == Call::Bind {
                    "bound-socket"
                } else {
                    "connection_accepted"
                }),
            );
            if let Some(a) = addr {
                ev.set(SOURCE_IP, Val::Str(Cow::Owned(a.ip)));
                ev.set(SOURCE_PORT, Val::Num(f64::from(a.port)));
            }
        }
        Call::Connect => {
            ev.set(EVENT_CATEGORY, Val::str("network"));
            ev.set(EVENT_ACTION, Val::str("connection_attempted"));
            if let Some(a) = addr {
                ev.set(DESTINATION_IP, Val::Str(Cow::Owned(a.ip)));
                ev.set(DESTINATION_PORT, Val::Num(f64::from(a.port)));
            }
        }
        Call::Execve => {
            ev.set(EVENT_CATEGORY, Val::str("process"));
            ev.set(EVENT_TYPE, Val::str("start"));
            ev.set(EVENT_ACTION, Val::str("executed"));
            if !g.args.is_empty() {
                ev.set(PROCESS_COMMAND_LINE, Val::Str(Cow::Owned(g.args.join(" "))));
                ev.set(
                    PROCESS_ARGS,
                    Val::List(
                        g.args
                            .iter()
                            .map(|a| Val::Str(Cow::Owned(a.clone())))
                            .collect(),
                    ),
                );
            }
            if let Some((pcomm, pexe)) = pids.map.get(ppid) {
                if !pcomm.is_empty() {
                    ev.set(PARENT_NAME, owned(pcomm));
                }
                if !pexe.is_empty() {
                    ev.set(PARENT_EXECUTABLE, owned(pexe));
                }
            }
        }
        Call::Other => {}
    }
    if !pid.is_empty() && (!comm.is_empty() || !exe.is_empty()) {
        pids.note(pid, comm.trim_matches('"'), exe.trim_matches('"'));
    }
    true
}

#[cfg(test)]
mod tests;
