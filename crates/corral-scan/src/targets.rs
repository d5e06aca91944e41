//! Target specifications and their lazy expansion into endpoints.
//!
//! Nothing here allocates per address: a range is two integers and an endpoint is produced
//! only when the scanner asks for the next one, so a /8 costs the same memory as a /32.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

mod discovery;
#[cfg(test)]
mod tests;

pub use discovery::{parse_discovery_line, ZmapHeader};

/// Above this many addresses a scan needs explicit confirmation (a /16).
pub const CONFIRM_ABOVE: u128 = 65_536;

/// The common LLM-server port set (nmap-ai-recon's default list).
pub const LLM_PORTS: [u16; 16] = [
    11434, 8000, 8080, 8081, 1234, 4000, 5000, 5001, 7860, 3000, 3001, 3080, 3210, 8888, 9000,
    30000,
];

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("invalid target `{0}`")]
    Invalid(String),
    #[error("invalid CIDR prefix in `{0}`")]
    Prefix(String),
    #[error("range `{0}` is reversed or mixes address families")]
    Range(String),
    #[error("invalid port in `{0}`")]
    Port(String),
    #[error("cannot resolve `{0}`")]
    Resolve(String),
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{source_name} line {line}: {reason}")]
    Line {
        source_name: String,
        line: usize,
        reason: String,
    },
    #[error("`{0}`: a URL with a path, query or fragment is not scanned, since corral scan probes a server's routes from its root; give http(s)://host:port/ (for a server published under a path prefix behind a proxy, scan the port it listens on)")]
    UrlPath(String),
    #[error("invalid shard `{0}` (expected I/N with 1 <= I <= N)")]
    Shard(String),
    #[error("{0} addresses exceed a /16; pass --yes to scan that many")]
    TooLarge(u128),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Http,
    Https,
}

/// One (address, port) pair to fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
    /// Known from a URL; otherwise plain HTTP is tried first.
    pub scheme: Option<Scheme>,
    /// The name the user gave, kept for Host/SNI.
    pub host: Option<Arc<str>>,
}

/// An inclusive address range of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpRange {
    V4(u32, u32),
    V6(u128, u128),
}

impl IpRange {
    pub fn single(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => IpRange::V4(u32::from(a), u32::from(a)),
            IpAddr::V6(a) => IpRange::V6(u128::from(a), u128::from(a)),
        }
    }

    pub fn len(&self) -> u128 {
        match *self {
            IpRange::V4(a, b) => u128::from(b - a) + 1,
            IpRange::V6(a, b) => (b - a).saturating_add(1),
        }
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `ip` is in the range. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is the
    /// IPv4 host it maps to (a connection to it reaches that host), so it matches in either
    /// spelling: an exclusion of `10.0.0.0/8` also keeps `::ffff:10.0.0.5` untouched.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let hit = |ip: IpAddr| match (*self, ip) {
            (IpRange::V4(a, b), IpAddr::V4(x)) => (a..=b).contains(&u32::from(x)),
            (IpRange::V6(a, b), IpAddr::V6(x)) => (a..=b).contains(&u128::from(x)),
            _ => false,
        };
        let other = match ip {
            IpAddr::V4(x) => Some(IpAddr::V6(x.to_ipv6_mapped())),
            IpAddr::V6(x) => x.to_ipv4_mapped().map(IpAddr::V4),
        };
        hit(ip) || other.is_some_and(hit)
    }
}

/// A parsed target: a range of addresses or a name resolved when it is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    Range {
        range: IpRange,
        port: Option<u16>,
        scheme: Option<Scheme>,
    },
    Name {
        name: String,
        port: Option<u16>,
        scheme: Option<Scheme>,
    },
}

impl Spec {
    /// Addresses this spec stands for (a name counts as one until resolved).
    pub fn address_count(&self) -> u128 {
        match self {
            Spec::Range { range, .. } => range.len(),
            Spec::Name { .. } => 1,
        }
    }
}

fn parse_port(s: &str, whole: &str) -> Result<u16, TargetError> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(TargetError::Port(whole.to_string())),
    }
}

fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        && s.bytes().any(|b| b.is_ascii_alphabetic())
}

fn host_spec(
    host: &str,
    port: Option<u16>,
    scheme: Option<Scheme>,
    whole: &str,
) -> Result<Spec, TargetError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(Spec::Range {
            range: IpRange::single(ip),
            port,
            scheme,
        });
    }
    if is_hostname(host) {
        return Ok(Spec::Name {
            name: host.to_ascii_lowercase(),
            port,
            scheme,
        });
    }
    Err(TargetError::Invalid(whole.to_string()))
}

fn parse_url(s: &str) -> Result<Spec, TargetError> {
    let (scheme, rest) = match s.split_once("://") {
        Some((sc, rest)) if sc.eq_ignore_ascii_case("http") => (Scheme::Http, rest),
        Some((sc, rest)) if sc.eq_ignore_ascii_case("https") => (Scheme::Https, rest),
        _ => return Err(TargetError::Invalid(s.to_string())),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Probing a prefixed server at the root would find nothing and say nothing: refused.
    if !matches!(rest.get(authority.len()..), Some("" | "/")) {
        return Err(TargetError::UrlPath(s.to_string()));
    }
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let default_port = if scheme == Scheme::Https { 443 } else { 80 };
    let (host, port) = split_host_port(authority, s)?;
    host_spec(host, Some(port.unwrap_or(default_port)), Some(scheme), s)
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`. A bare IPv6 address has no port.
fn split_host_port<'a>(s: &'a str, whole: &str) -> Result<(&'a str, Option<u16>), TargetError> {
    if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| TargetError::Invalid(whole.to_string()))?;
        return match after.strip_prefix(':') {
            Some(p) => Ok((h, Some(parse_port(p, whole)?))),
            None if after.is_empty() => Ok((h, None)),
            None => Err(TargetError::Invalid(whole.to_string())),
        };
    }
    match s.split_once(':') {
        Some((h, p)) if !p.contains(':') => Ok((h, Some(parse_port(p, whole)?))),
        _ => Ok((s, None)),
    }
}

fn parse_cidr(s: &str) -> Result<Spec, TargetError> {
    let (addr, prefix) = s
        .split_once('/')
        .ok_or_else(|| TargetError::Invalid(s.to_string()))?;
    let prefix: u32 = prefix
        .parse()
        .map_err(|_| TargetError::Prefix(s.to_string()))?;
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| TargetError::Invalid(s.to_string()))?;
    let range = match ip {
        IpAddr::V4(a) if prefix <= 32 => {
            let host_bits = 32 - prefix;
            let mask = if host_bits == 32 {
                0
            } else {
                u32::MAX << host_bits
            };
            let base = u32::from(a) & mask;
            IpRange::V4(base, base | !mask)
        }
        IpAddr::V6(a) if prefix <= 128 => {
            let host_bits = 128 - prefix;
            let mask = if host_bits == 128 {
                0
            } else {
                u128::MAX << host_bits
            };
            let base = u128::from(a) & mask;
            IpRange::V6(base, base | !mask)
        }
        _ => return Err(TargetError::Prefix(s.to_string())),
    };
    Ok(Spec::Range {
        range,
        port: None,
        scheme: None,
    })
}

fn parse_range(s: &str, lo: &str, hi: &str) -> Result<Spec, TargetError> {
    let start: IpAddr = lo
        .parse()
        .map_err(|_| TargetError::Invalid(s.to_string()))?;
    let range = match (start, hi.parse::<IpAddr>()) {
        (IpAddr::V4(a), Ok(IpAddr::V4(b))) => IpRange::V4(u32::from(a), u32::from(b)),
        (IpAddr::V6(a), Ok(IpAddr::V6(b))) => IpRange::V6(u128::from(a), u128::from(b)),
        // `10.0.0.1-50`: the end replaces the last octet.
        (IpAddr::V4(a), Err(_)) => {
            let last: u8 = hi
                .parse()
                .map_err(|_| TargetError::Invalid(s.to_string()))?;
            let o = a.octets();
            IpRange::V4(
                u32::from(a),
                u32::from(Ipv4Addr::new(o[0], o[1], o[2], last)),
            )
        }
        _ => return Err(TargetError::Range(s.to_string())),
    };
    match range {
        IpRange::V4(a, b) if a <= b => {}
        IpRange::V6(a, b) if a <= b => {}
        _ => return Err(TargetError::Range(s.to_string())),
    }
    Ok(Spec::Range {
        range,
        port: None,
        scheme: None,
    })
}

/// Parses one command-line or list-file target.
pub fn parse_spec(raw: &str) -> Result<Spec, TargetError> {
    let s = raw.trim();
    if s.is_empty() || s.len() > 2048 {
        return Err(TargetError::Invalid(s.chars().take(64).collect()));
    }
    if s.contains("://") {
        return parse_url(s);
    }
    if s.contains('/') {
        return parse_cidr(s);
    }
    if let Some((lo, hi)) = s.split_once('-') {
        if lo.parse::<IpAddr>().is_ok() {
            return parse_range(s, lo, hi);
        }
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(Spec::Range {
            range: IpRange::single(ip),
            port: None,
            scheme: None,
        });
    }
    let (host, port) = split_host_port(s, s)?;
    host_spec(host, port, None, s)
}

/// Parses a port list such as `11434,8000-8010`.
pub fn parse_ports(s: &str) -> Result<Vec<u16>, TargetError> {
    let mut out: Vec<u16> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (parse_port(a.trim(), s)?, parse_port(b.trim(), s)?),
            None => {
                let p = parse_port(part, s)?;
                (p, p)
            }
        };
        if a > b {
            return Err(TargetError::Port(s.to_string()));
        }
        for p in a..=b {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    if out.is_empty() {
        return Err(TargetError::Port(s.to_string()));
    }
    Ok(out)
}

/// Deterministic `I/N` split: an endpoint belongs to exactly one shard whatever the input order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    pub fn parse(s: &str) -> Result<Self, TargetError> {
        let err = || TargetError::Shard(s.to_string());
        let (i, n) = s.split_once('/').ok_or_else(err)?;
        let index: u64 = i.trim().parse().map_err(|_| err())?;
        let count: u64 = n.trim().parse().map_err(|_| err())?;
        if count == 0 || index == 0 || index > count {
            return Err(err());
        }
        Ok(Shard {
            index: index - 1,
            count,
        })
    }

    pub fn owns(&self, ip: IpAddr, port: u16) -> bool {
        // FNV-1a: stable across machines and releases, unlike std's hasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |b: u8| {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        };
        // A mapped `::ffff:a.b.c.d` is the IPv4 host: it lands in the same shard.
        match ip.to_canonical() {
            IpAddr::V4(a) => a.octets().into_iter().for_each(&mut feed),
            IpAddr::V6(a) => a.octets().into_iter().for_each(&mut feed),
        }
        port.to_be_bytes().into_iter().for_each(&mut feed);
        h % self.count == self.index
    }
}

/// Longest input line read (a masscan or zmap line is under 300 bytes): the rest of a longer
/// line is skipped and the line reported, so one endless line cannot exhaust memory.
pub const MAX_LINE: usize = 64 * 1024;

/// Reads one line through its `\n` into `buf`, keeping at most [`MAX_LINE`] bytes. Returns
/// the bytes consumed (0 at the end of input) and whether the line was cut. Lines are bytes,
/// not UTF-8: a stray byte in a comment or banner must not end the input.
fn read_line_bounded(r: &mut dyn BufRead, buf: &mut Vec<u8>) -> std::io::Result<(usize, bool)> {
    buf.clear();
    let mut consumed = 0usize;
    let mut cut = false;
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            break;
        }
        let (take, end) = match avail.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        let room = MAX_LINE.saturating_sub(buf.len());
        cut |= take > room;
        buf.extend_from_slice(avail.get(..take.min(room)).unwrap_or(&[]));
        r.consume(take);
        consumed = consumed.saturating_add(take);
        if end {
            break;
        }
    }
    Ok((consumed, cut))
}

/// A line's text. A UTF-8 byte-order mark opening the input (Windows editors write one) is
/// not part of the first target.
fn line_text(bytes: &[u8], line_no: usize) -> std::borrow::Cow<'_, str> {
    let bytes = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) if line_no == 1 => rest,
        _ => bytes,
    };
    String::from_utf8_lossy(bytes)
}

fn too_long() -> String {
    format!("line longer than {} KiB", MAX_LINE / 1024)
}

/// Where target text comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Arg(String),
    File(PathBuf),
    Stdin,
}

/// How input lines are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum InputFormat {
    /// Addresses, CIDRs, ranges, host:port, URLs, names (whitespace/comma separated, `#` comments).
    #[default]
    List,
    /// masscan -oL, -oJ, -oD or -oG output (detected per line).
    Masscan,
    /// zmap output: one address per line, or CSV with a `saddr,...` header.
    Zmap,
}

/// Filters applied to every endpoint before it is scanned.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub exclude: Vec<IpRange>,
    pub shard: Option<Shard>,
}

impl Filter {
    pub fn admits(&self, ip: IpAddr, port: u16) -> bool {
        !self.exclude.iter().any(|r| r.contains(ip)) && self.shard.is_none_or(|s| s.owns(ip, port))
    }

    fn excludes_ip(&self, ip: IpAddr) -> bool {
        self.exclude.iter().any(|r| r.contains(ip))
    }
}

/// Resolves a name to every address it has (A and AAAA).
pub fn resolve(name: &str) -> Result<Vec<IpAddr>, TargetError> {
    let mut out: Vec<IpAddr> = Vec::new();
    let addrs = (name, 0u16)
        .to_socket_addrs()
        .map_err(|_| TargetError::Resolve(name.to_string()))?;
    for a in addrs {
        if !out.contains(&a.ip()) {
            out.push(a.ip());
        }
    }
    if out.is_empty() {
        return Err(TargetError::Resolve(name.to_string()));
    }
    Ok(out)
}

/// Parses exclusion specs (addresses, CIDRs, ranges; names are resolved now).
pub fn parse_exclusions(items: &[String]) -> Result<Vec<IpRange>, TargetError> {
    let mut out = Vec::new();
    for item in items {
        for tok in item.split([',', ' ', '\t']).map(str::trim) {
            let tok = tok.split('#').next().unwrap_or("").trim();
            if tok.is_empty() {
                continue;
            }
            match parse_spec(tok)? {
                Spec::Range { range, .. } => out.push(range),
                Spec::Name { name, .. } => {
                    out.extend(resolve(&name)?.into_iter().map(IpRange::single))
                }
            }
        }
    }
    Ok(out)
}

/// Reads an exclusion file: one or more specs per line, `#` comments.
pub fn read_exclude_file(path: &std::path::Path) -> Result<Vec<IpRange>, TargetError> {
    let text = std::fs::read_to_string(path).map_err(|e| TargetError::Read {
        path: path.display().to_string(),
        reason: e.kind().to_string(),
    })?;
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").to_string())
        .collect();
    parse_exclusions(&lines)
}

/// Parses one line of input in the given format into specs. `None` state for zmap means no header yet.
pub fn parse_line(
    format: InputFormat,
    line: &str,
    zmap: &mut Option<ZmapHeader>,
) -> Result<Vec<Spec>, String> {
    match format {
        InputFormat::List => {
            let content = line.split('#').next().unwrap_or("");
            content
                .split([' ', '\t', ','])
                .filter(|t| !t.trim().is_empty())
                .map(|t| parse_spec(t).map_err(|e| e.to_string()))
                .collect()
        }
        InputFormat::Masscan | InputFormat::Zmap => parse_discovery_line(format, line, zmap),
    }
}

enum AddrIter {
    Range {
        next: u128,
        end: u128,
        v6: bool,
        done: bool,
    },
    List(std::vec::IntoIter<IpAddr>),
}

impl Iterator for AddrIter {
    type Item = IpAddr;
    fn next(&mut self) -> Option<IpAddr> {
        match self {
            AddrIter::List(it) => it.next(),
            AddrIter::Range {
                next,
                end,
                v6,
                done,
            } => {
                if *done {
                    return None;
                }
                let cur = *next;
                if cur >= *end {
                    *done = true;
                } else {
                    *next = cur + 1;
                }
                Some(if *v6 {
                    IpAddr::V6(Ipv6Addr::from(cur))
                } else {
                    IpAddr::V4(Ipv4Addr::from(u32::try_from(cur).unwrap_or(u32::MAX)))
                })
            }
        }
    }
}

struct Expander {
    addrs: AddrIter,
    fixed_port: Option<u16>,
    scheme: Option<Scheme>,
    host: Option<Arc<str>>,
    current: Option<IpAddr>,
    port_idx: usize,
}

/// Streams endpoints from inputs one line and one address at a time.
pub struct TargetStream {
    inputs: VecDeque<Input>,
    format: InputFormat,
    ports: Arc<[u16]>,
    filter: Filter,
    /// Addresses allowed before the stream stops with `TooLarge` (stdin cannot be counted up front).
    limit: Option<u128>,
    seen: u128,
    reader: Option<(String, Box<dyn BufRead + Send>, usize)>,
    zmap: Option<ZmapHeader>,
    specs: VecDeque<Spec>,
    expander: Option<Expander>,
    stopped: bool,
}

impl TargetStream {
    pub fn new(
        inputs: Vec<Input>,
        format: InputFormat,
        ports: Vec<u16>,
        filter: Filter,
        limit: Option<u128>,
    ) -> Self {
        TargetStream {
            inputs: inputs.into(),
            format,
            ports: ports.into(),
            filter,
            limit,
            seen: 0,
            reader: None,
            zmap: None,
            specs: VecDeque::new(),
            expander: None,
            stopped: false,
        }
    }

    /// Counts the addresses of arguments and files (not stdin) without expanding them. A bad
    /// argument is an error; a bad line in a file is not counted (the stream reports it as a
    /// warning with its line number and goes on, as it does for stdin).
    pub fn count(inputs: &[Input], format: InputFormat) -> Result<u128, TargetError> {
        let mut total: u128 = 0;
        for input in inputs {
            match input {
                Input::Arg(s) => total = total.saturating_add(parse_spec(s)?.address_count()),
                Input::File(p) => {
                    let name = p.display().to_string();
                    let f = File::open(p).map_err(|e| TargetError::Read {
                        path: name.clone(),
                        reason: e.kind().to_string(),
                    })?;
                    let mut zmap = None;
                    let mut reader = BufReader::new(f);
                    let mut bytes = Vec::new();
                    for i in 0.. {
                        let (n, cut) = read_line_bounded(&mut reader, &mut bytes).map_err(|e| {
                            TargetError::Read {
                                path: name.clone(),
                                reason: e.kind().to_string(),
                            }
                        })?;
                        if n == 0 {
                            break;
                        }
                        if cut {
                            continue;
                        }
                        let line = line_text(&bytes, i + 1);
                        let Ok(specs) = parse_line(format, &line, &mut zmap) else {
                            continue;
                        };
                        total = specs
                            .iter()
                            .fold(total, |t, s| t.saturating_add(s.address_count()));
                    }
                }
                Input::Stdin => {}
            }
        }
        Ok(total)
    }

    fn next_spec(&mut self) -> Option<Result<Spec, TargetError>> {
        loop {
            if let Some(s) = self.specs.pop_front() {
                return Some(Ok(s));
            }
            if let Some((name, reader, line_no)) = self.reader.as_mut() {
                let mut bytes = Vec::new();
                match read_line_bounded(reader.as_mut(), &mut bytes) {
                    Ok((0, _)) => self.reader = None,
                    Ok((_, cut)) => {
                        *line_no += 1;
                        if cut {
                            return Some(Err(TargetError::Line {
                                source_name: name.clone(),
                                line: *line_no,
                                reason: too_long(),
                            }));
                        }
                        let line = line_text(&bytes, *line_no);
                        match parse_line(self.format, &line, &mut self.zmap) {
                            Ok(specs) => self.specs.extend(specs),
                            Err(reason) => {
                                return Some(Err(TargetError::Line {
                                    source_name: name.clone(),
                                    line: *line_no,
                                    reason,
                                }))
                            }
                        }
                    }
                    Err(e) => {
                        let path = name.clone();
                        self.reader = None;
                        return Some(Err(TargetError::Read {
                            path,
                            reason: e.kind().to_string(),
                        }));
                    }
                }
                continue;
            }
            match self.inputs.pop_front()? {
                Input::Arg(s) => return Some(parse_spec(&s)),
                Input::File(p) => {
                    let name = p.display().to_string();
                    match File::open(&p) {
                        Ok(f) => self.reader = Some((name, Box::new(BufReader::new(f)), 0)),
                        Err(e) => {
                            return Some(Err(TargetError::Read {
                                path: name,
                                reason: e.kind().to_string(),
                            }))
                        }
                    }
                    self.zmap = None;
                }
                Input::Stdin => {
                    self.reader = Some((
                        "stdin".to_string(),
                        Box::new(BufReader::new(std::io::stdin())),
                        0,
                    ));
                    self.zmap = None;
                }
            }
        }
    }

    fn expander_for(&self, spec: Spec) -> Result<Expander, TargetError> {
        let (addrs, port, scheme, host) = match spec {
            Spec::Range {
                range,
                port,
                scheme,
            } => {
                let it = match range {
                    IpRange::V4(a, b) => AddrIter::Range {
                        next: a.into(),
                        end: b.into(),
                        v6: false,
                        done: false,
                    },
                    IpRange::V6(a, b) => AddrIter::Range {
                        next: a,
                        end: b,
                        v6: true,
                        done: false,
                    },
                };
                (it, port, scheme, None)
            }
            Spec::Name { name, port, scheme } => {
                let ips = resolve(&name)?;
                (
                    AddrIter::List(ips.into_iter()),
                    port,
                    scheme,
                    Some(Arc::from(name.as_str())),
                )
            }
        };
        Ok(Expander {
            addrs,
            fixed_port: port,
            scheme,
            host,
            current: None,
            port_idx: 0,
        })
    }
}

impl Iterator for TargetStream {
    type Item = Result<Endpoint, TargetError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.stopped {
            return None;
        }
        loop {
            let Some(ex) = self.expander.as_mut() else {
                match self.next_spec()? {
                    // One line from stdin larger than the limit (a `/8` typed for a `/24`) is
                    // refused before any of it is scanned, as it would be as an argument.
                    Ok(spec) if self.limit.is_some_and(|l| spec.address_count() > l) => {
                        self.stopped = true;
                        return Some(Err(TargetError::TooLarge(spec.address_count())));
                    }
                    Ok(spec) => match self.expander_for(spec) {
                        Ok(e) => self.expander = Some(e),
                        Err(e) => return Some(Err(e)),
                    },
                    Err(e) => return Some(Err(e)),
                }
                continue;
            };
            let ip = match ex.current {
                Some(ip) => ip,
                None => match ex.addrs.next() {
                    Some(ip) => {
                        if self.filter.excludes_ip(ip) {
                            continue;
                        }
                        self.seen += 1;
                        if self.limit.is_some_and(|l| self.seen > l) {
                            self.stopped = true;
                            return Some(Err(TargetError::TooLarge(self.seen)));
                        }
                        ex.current = Some(ip);
                        ex.port_idx = 0;
                        ip
                    }
                    None => {
                        self.expander = None;
                        continue;
                    }
                },
            };
            let port = match ex.fixed_port {
                Some(p) => {
                    ex.current = None;
                    p
                }
                None => {
                    let Some(&p) = self.ports.get(ex.port_idx) else {
                        ex.current = None;
                        continue;
                    };
                    ex.port_idx += 1;
                    p
                }
            };
            if self.filter.shard.is_some_and(|s| !s.owns(ip, port)) {
                continue;
            }
            return Some(Ok(Endpoint {
                ip,
                port,
                scheme: ex.scheme,
                host: ex.host.clone(),
            }));
        }
    }
}
