//! Address parsing and CIDR tests. IPv4-mapped IPv6 (`::ffff:a.b.c.d`, what dual-stack
//! listeners report) is treated as the IPv4 address it carries, so one set of IPv4 ranges
//! covers both socket families.

use std::net::{IpAddr, Ipv4Addr};

/// Parses an address as logs write it: optional brackets, optional zone (`fe80::1%eth0`),
/// IPv4-mapped IPv6 unwrapped to IPv4.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let s = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    let s = s.split_once('%').map_or(s, |(a, _)| a);
    let ip: IpAddr = s.parse().ok()?;
    Some(normalise(ip))
}

pub fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// When `s` is an IPv4-mapped IPv6 address, the IPv4 text it carries.
pub fn unmap_text(s: &str) -> Option<String> {
    let lower = s.get(..7)?;
    if !lower.eq_ignore_ascii_case("::ffff:") {
        return None;
    }
    match parse_ip(s)? {
        IpAddr::V4(v4) => Some(v4.to_string()),
        IpAddr::V6(_) => None,
    }
}

/// A network in CIDR form; a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    V4(u32, u32),
    V6(u128, u128),
}

impl Net {
    pub fn parse(s: &str) -> Option<Net> {
        let (addr, len) = match s.trim().split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
            None => (s.trim(), None),
        };
        match addr.parse::<IpAddr>().ok()? {
            IpAddr::V4(a) => {
                let len = u32::from(len.unwrap_or(32));
                if len > 32 {
                    return None;
                }
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                Some(Net::V4(u32::from(a) & mask, mask))
            }
            IpAddr::V6(a) => {
                let len = u32::from(len.unwrap_or(128));
                if len > 128 {
                    return None;
                }
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - len)
                };
                Some(Net::V6(u128::from(a) & mask, mask))
            }
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Net::V4(net, mask), IpAddr::V4(a)) => u32::from(a) & mask == *net,
            (Net::V6(net, mask), IpAddr::V6(a)) => u128::from(a) & mask == *net,
            _ => false,
        }
    }
}

/// Loopback, private, link-local, CGNAT, ULA and multicast: the ranges the Elastic rule
/// treats as not external.
pub fn is_internal(ip: IpAddr) -> bool {
    match normalise(ip) {
        IpAddr::V4(a) => {
            a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || in_v4(a, [100, 64, 0, 0], 10)
        }
        IpAddr::V6(a) => {
            let seg = a.segments()[0];
            a.is_loopback()
                || a.is_unspecified()
                || seg & 0xffc0 == 0xfe80
                || seg & 0xfe00 == 0xfc00
                || seg & 0xff00 == 0xff00
        }
    }
}

fn in_v4(a: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = u32::MAX << (32 - len);
    u32::from(a) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mapped_addresses_unwrap_to_ipv4() {
        assert_eq!(
            parse_ip("::ffff:10.1.2.3"),
            Some("10.1.2.3".parse().unwrap())
        );
        assert_eq!(
            parse_ip("::FFFF:203.0.113.7"),
            Some("203.0.113.7".parse().unwrap())
        );
        assert_eq!(
            unmap_text("::ffff:203.0.113.7").as_deref(),
            Some("203.0.113.7")
        );
        assert_eq!(unmap_text("2001:db8::1"), None);
        assert_eq!(parse_ip("[fe80::1%eth0]"), Some("fe80::1".parse().unwrap()));
        assert_eq!(parse_ip("not an ip"), None);
    }

    #[test]
    fn cidr_matches_by_family() {
        let n = Net::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.200.1.1".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(!n.contains("::a00:1".parse().unwrap()));
        let l = Net::parse("::1").unwrap();
        assert!(l.contains("::1".parse().unwrap()));
        assert!(!l.contains("::2".parse().unwrap()));
        assert!(Net::parse("fc00::/7")
            .unwrap()
            .contains("fd12::1".parse().unwrap()));
        assert!(Net::parse("0.0.0.0/0")
            .unwrap()
            .contains("1.2.3.4".parse().unwrap()));
        assert_eq!(Net::parse("10.0.0.0/33"), None);
        assert_eq!(Net::parse("10.0.0/8"), None);
    }

    #[test]
    fn internal_ranges() {
        for ip in [
            "10.0.0.1",
            "127.0.0.1",
            "169.254.1.1",
            "172.31.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:192.168.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "203.0.113.7",
            "172.32.0.1",
            "100.128.0.1",
            "2001:db8::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }
}
