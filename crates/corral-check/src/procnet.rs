//! Parser for `/proc/net/tcp` and `/proc/net/tcp6`.

use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub const TCP_LISTEN: u8 = 0x0A;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetSocket {
    pub local: SocketAddr,
    pub state: u8,
    pub uid: u32,
    pub inode: u64,
    /// 1-based line in the table, for evidence.
    pub line: u32,
}

impl NetSocket {
    pub fn is_listen(&self) -> bool {
        self.state == TCP_LISTEN
    }
}

/// Parse one table. Malformed rows are skipped: the kernel's format is fixed, so a row that does
/// not fit is not a socket we can reason about.
pub fn parse(text: &str) -> Vec<NetSocket> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut f = line.split_whitespace();
        let Some(sl) = f.next() else { continue };
        if !sl.ends_with(':') {
            continue; // header
        }
        let (Some(local), Some(_remote), Some(st)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        // tx:rx, tr:when, retrnsmt, then uid, timeout, inode.
        let rest: Vec<&str> = f.take(6).collect();
        if rest.len() < 6 {
            continue;
        }
        let (Some(local), Ok(state), Ok(uid), Ok(inode)) = (
            parse_addr(local),
            u8::from_str_radix(st, 16),
            rest[3].parse::<u32>(),
            rest[5].parse::<u64>(),
        ) else {
            continue;
        };
        out.push(NetSocket {
            local,
            state,
            uid,
            inode,
            line: u32::try_from(i + 1).unwrap_or(u32::MAX),
        });
    }
    out
}

/// `0100007F:2CAA` or the 32-hex-digit IPv6 form. The kernel prints each 32-bit word of the
/// address as a native-endian integer, the port as a plain big number.
pub fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    if port.len() != 4 || !port.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(addr)?)),
        32 => {
            let mut b = [0u8; 16];
            for k in 0..4 {
                let w = word(addr.get(k * 8..k * 8 + 8)?)?;
                b[k * 4..k * 4 + 4].copy_from_slice(&w);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

fn word(hex8: &str) -> Option<[u8; 4]> {
    if !hex8.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(hex8, 16).ok().map(u32::to_ne_bytes)
}

/// How far a bound address reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reach {
    Loopback,
    Wildcard,
    Address,
}

pub fn reach(ip: IpAddr) -> Reach {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => Reach::Wildcard,
        IpAddr::V4(v4) if v4.is_loopback() => Reach::Loopback,
        IpAddr::V6(v6) if v6.is_unspecified() => Reach::Wildcard,
        IpAddr::V6(v6) if v6.is_loopback() => Reach::Loopback,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) if v4.is_loopback() => Reach::Loopback,
            Some(v4) if v4.is_unspecified() => Reach::Wildcard,
            _ => Reach::Address,
        },
        IpAddr::V4(_) => Reach::Address,
    }
}

/// Encode an address the way the kernel prints it, for building fixture tables.
pub fn encode_addr(a: SocketAddr) -> String {
    let ip = match a.ip() {
        IpAddr::V4(v4) => format!("{:08X}", u32::from_ne_bytes(v4.octets())),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            o.chunks(4)
                .map(|c| format!("{:08X}", u32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        }
    };
    format!("{ip}:{:04X}", a.port())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2CAA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   998        0 12345 1 0000000000000000 100 0 0 10 0
   1: 00000000:2CAA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 999 1 0000000000000000 100 0 0 10 0
   2: 0100007F:2CAA 0100007F:D3C2 01 00000000:00000000 00:00000000 00000000   998        0 0 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn parses_v4_rows() {
        let s = parse(TCP);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].local, "127.0.0.1:11434".parse().unwrap());
        assert!(s[0].is_listen());
        assert_eq!(s[0].uid, 998);
        assert_eq!(s[0].inode, 12345);
        assert_eq!(s[0].line, 2);
        assert_eq!(s[1].local, "0.0.0.0:11434".parse().unwrap());
        assert_eq!(reach(s[1].local.ip()), Reach::Wildcard);
        assert!(!s[2].is_listen());
    }

    #[test]
    fn parses_v6_rows() {
        let t = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:2CAA 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:2CAA 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4243 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4244 1 0000000000000000 100 0 0 10 0
";
        let s = parse(t);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].local, "[::]:11434".parse().unwrap());
        assert_eq!(reach(s[0].local.ip()), Reach::Wildcard);
        assert_eq!(s[1].local, "[::1]:11434".parse().unwrap());
        assert_eq!(reach(s[1].local.ip()), Reach::Loopback);
        assert_eq!(s[2].local, "[::ffff:127.0.0.1]:8080".parse().unwrap());
        assert_eq!(reach(s[2].local.ip()), Reach::Loopback);
    }

    #[test]
    fn encode_round_trips() {
        for a in ["10.1.2.3:80", "[fe80::1]:11434", "[::]:1", "0.0.0.0:65535"] {
            let a: SocketAddr = a.parse().unwrap();
            assert_eq!(parse_addr(&encode_addr(a)), Some(a));
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse("0: zz:zz 0 0A").is_empty());
        assert!(parse_addr("0100007F").is_none());
        assert!(parse_addr("0100007F:2CAAA").is_none());
        assert!(parse_addr("+100007F:2CAA").is_none());
        assert!(parse_addr("0100007F:+CAA").is_none());
        assert!(parse("   0: 0100007F:2CAA 00000000:0000 0A 0:0 0:0 0 x 0 5\n").is_empty());
    }
}
