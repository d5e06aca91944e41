//! The host's own addresses, from `/proc/net/fib_trie`, `/proc/net/route` and
//! `/proc/net/if_inet6`, so a wildcard bind can be reported with where it is reachable.

use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostAddr {
    pub addr: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
}

impl std::fmt::Display for HostAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.interface {
            Some(i) => write!(f, "{} ({i})", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

/// Local IPv4 addresses: a `|-- A.B.C.D` leaf followed by `/32 host LOCAL`. Loopback excluded.
pub fn parse_fib_trie(text: &str) -> Vec<Ipv4Addr> {
    let mut out: Vec<Ipv4Addr> = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(a) = t.strip_prefix("|-- ") {
            last = a.trim().parse().ok();
        } else if t.starts_with("/32 host LOCAL") {
            if let Some(a) = last.take() {
                if !a.is_loopback() && !out.contains(&a) {
                    out.push(a);
                }
            }
        }
    }
    out
}

/// `(interface, destination, mask)` from `/proc/net/route` (native-endian hex words).
pub fn parse_route(text: &str) -> Vec<(String, u32, u32)> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let (Ok(dst), Ok(mask)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16))
        else {
            continue;
        };
        let be = |w: u32| u32::from_be_bytes(w.to_ne_bytes());
        out.push((f[0].to_string(), be(dst), be(mask)));
    }
    out
}

/// The interface of the most specific route covering `a`.
pub fn interface_for(routes: &[(String, u32, u32)], a: Ipv4Addr) -> Option<String> {
    let a = u32::from(a);
    routes
        .iter()
        .filter(|(_, dst, mask)| a & mask == *dst)
        .max_by_key(|(_, _, mask)| mask.count_ones())
        .map(|(name, _, _)| name.clone())
}

/// Non-loopback IPv6 addresses with their interface.
pub fn parse_if_inet6(text: &str) -> Vec<HostAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || f[0].len() != 32 {
            continue;
        }
        let Ok(v) = u128::from_str_radix(f[0], 16) else {
            continue;
        };
        let a = Ipv6Addr::from(v);
        if a.is_loopback() {
            continue;
        }
        out.push(HostAddr {
            addr: IpAddr::V6(a),
            interface: Some(f[5].to_string()),
        });
    }
    out
}

/// All non-loopback addresses of the host: IPv4 first.
pub fn host_addrs(fib_trie: &str, route: &str, if_inet6: &str) -> Vec<HostAddr> {
    let routes = parse_route(route);
    let mut out: Vec<HostAddr> = parse_fib_trie(fib_trie)
        .into_iter()
        .map(|a| HostAddr {
            addr: IpAddr::V4(a),
            interface: interface_for(&routes, a),
        })
        .collect();
    out.extend(parse_if_inet6(if_inet6));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const FIB: &str = "Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
           |-- 127.0.0.1
              /32 host LOCAL
     +-- 192.0.2.0/24 2 0 2
           |-- 192.0.2.0
              /24 link UNICAST
           |-- 192.0.2.2
              /32 host LOCAL
        |-- 192.0.2.255
           /32 link BROADCAST
Local:
           |-- 192.0.2.2
              /32 host LOCAL
";
    const ROUTE: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
";
    const INET6: &str = "fd000000000000000000000000000002 04 40 00 82     eth0
00000000000000000000000000000001 01 80 10 80       lo
";

    #[test]
    fn collects_host_addresses_with_names() {
        let a = host_addrs(FIB, ROUTE, INET6);
        assert_eq!(a.len(), 2, "{a:?}");
        assert_eq!(a[0].to_string(), "192.0.2.2 (eth0)");
        assert_eq!(a[1].to_string(), "fd00::2 (eth0)");
    }

    #[test]
    fn empty_inputs_give_nothing() {
        assert!(host_addrs("", "", "").is_empty());
        assert!(parse_route("x\nshort line").is_empty());
    }
}
