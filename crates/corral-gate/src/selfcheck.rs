//! Start-up self-check: is the upstream also reachable on a non-loopback address of this host,
//! i.e. around the gate? Only this host's own addresses are probed, with a TCP connect.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;

use corral_policy::config::UpstreamAddr;

/// Time allowed for each probe.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

/// The upstream port answered on an address that is not loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    pub addr: SocketAddr,
    /// The loopback address Ollama should listen on instead: the upstream's own when the gate
    /// reaches it on a loopback address (`[::1]` stays `[::1]`), else `127.0.0.1`.
    pub loopback: IpAddr,
    /// Whether the gate's upstream must be changed too: it names a non-loopback address (or a
    /// name) that Ollama would no longer answer on once bound to loopback.
    pub repoint: bool,
}

impl Exposure {
    /// An exposure at `addr`, with the advice for an upstream on `127.0.0.1`.
    pub fn at(addr: SocketAddr) -> Exposure {
        Exposure {
            addr,
            loopback: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            repoint: false,
        }
    }

    /// The advice fitted to the upstream the gate was given.
    fn for_upstream(self, upstream: &UpstreamAddr) -> Exposure {
        let host = upstream.host();
        let ip = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .map(|ip| ip.to_canonical());
        match ip {
            Ok(ip) if ip.is_loopback() => Exposure {
                loopback: ip,
                repoint: false,
                ..self
            },
            _ if host.eq_ignore_ascii_case("localhost") => Exposure {
                repoint: false,
                ..self
            },
            _ => Exposure {
                repoint: true,
                ..self
            },
        }
    }
}

impl fmt::Display for Exposure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bind = SocketAddr::new(self.loopback, self.addr.port());
        write!(
            f,
            "Ollama's port answers on {addr}, so it is reachable around the gate without a key. \
             Bind Ollama to loopback: OLLAMA_HOST={bind} (under systemd: `systemctl edit \
             ollama`, add [Service] Environment=\"OLLAMA_HOST={bind}\", then `systemctl \
             restart ollama`)",
            addr = self.addr,
        )?;
        if self.repoint {
            write!(
                f,
                ", and point the gate at it: --upstream http://{bind} (server.upstream)"
            )?;
        }
        Ok(())
    }
}

/// This host's interface addresses that are not loopback (IPv6 link-local ones are left out:
/// they need a scope and are not what clients use).
pub fn host_addresses() -> Vec<IpAddr> {
    let Ok(ifaces) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    let mut out: Vec<IpAddr> = ifaces
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| !ip.is_loopback() && !is_v6_link_local(ip) && !ip.is_unspecified())
        .collect();
    out.sort();
    out.dedup();
    out
}

fn is_v6_link_local(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

/// Whether the upstream runs on this host (loopback or one of its addresses); only then can
/// the gate tell whether Ollama is exposed around it.
pub fn upstream_is_local(upstream: &UpstreamAddr, host_addrs: &[IpAddr]) -> bool {
    let host = upstream.host();
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(ip) => {
            let ip = ip.to_canonical();
            ip.is_loopback() || ip.is_unspecified() || host_addrs.contains(&ip)
        }
        Err(_) => false,
    }
}

/// Whether an upstream given by a host name (not `localhost`, not an address) resolves to
/// this host, e.g. the machine's own name: Ollama must then listen on that address.
/// Resolution is bounded by [`PROBE_TIMEOUT`]; a name that does not resolve in time is not
/// taken for local.
pub async fn upstream_resolves_local(upstream: &UpstreamAddr, host_addrs: &[IpAddr]) -> bool {
    let host = upstream.host();
    if host.parse::<IpAddr>().is_ok() || host.eq_ignore_ascii_case("localhost") {
        return false;
    }
    let lookup = tokio::net::lookup_host((host.to_owned(), upstream.port()));
    match tokio::time::timeout(PROBE_TIMEOUT, lookup).await {
        Ok(Ok(resolved)) => any_local(resolved.map(|a| a.ip()), host_addrs),
        _ => false,
    }
}

/// Whether any of `ips` is loopback or one of this host's addresses.
fn any_local(mut ips: impl Iterator<Item = IpAddr>, host_addrs: &[IpAddr]) -> bool {
    ips.any(|ip| {
        let ip = ip.to_canonical();
        ip.is_loopback() || ip.is_unspecified() || host_addrs.contains(&ip)
    })
}

/// Connects to `port` on each of `addrs` at once; returns those that accepted.
pub async fn probe(addrs: &[IpAddr], port: u16, timeout: Duration) -> Vec<Exposure> {
    let mut set = tokio::task::JoinSet::new();
    for ip in addrs {
        let addr = SocketAddr::new(*ip, port);
        set.spawn(async move {
            let ok = matches!(
                tokio::time::timeout(timeout, TcpStream::connect(addr)).await,
                Ok(Ok(_))
            );
            ok.then_some(Exposure::at(addr))
        });
    }
    let mut found = Vec::new();
    while let Some(done) = set.join_next().await {
        if let Ok(Some(e)) = done {
            found.push(e);
        }
    }
    found.sort_by_key(|e| e.addr);
    found
}

/// The whole check: probes the upstream's port on this host's non-loopback addresses when the
/// upstream is local, and returns each address that answers (the caller tells the operator).
/// `gate` is where the gate itself listens: on the upstream's port number (a gate on
/// `192.0.2.7:11434` in front of Ollama on `127.0.0.1:11434`) it would answer the probe itself.
pub async fn check_upstream_exposure(upstream: &UpstreamAddr, gate: SocketAddr) -> Vec<Exposure> {
    exposure_on(upstream, &host_addresses(), gate).await
}

/// [`check_upstream_exposure`] over the given host addresses.
async fn exposure_on(upstream: &UpstreamAddr, addrs: &[IpAddr], gate: SocketAddr) -> Vec<Exposure> {
    if !upstream_is_local(upstream, addrs) && !upstream_resolves_local(upstream, addrs).await {
        return Vec::new();
    }
    let port = upstream.port();
    let around: Vec<IpAddr> = addrs
        .iter()
        .copied()
        .filter(|ip| !is_the_gate(gate, *ip, port))
        .collect();
    probe(&around, port, PROBE_TIMEOUT)
        .await
        .into_iter()
        .map(|e| e.for_upstream(upstream))
        .collect()
}

/// Whether `ip:port` is where the gate listens (all of this host's addresses, when it listens
/// on the unspecified address).
fn is_the_gate(gate: SocketAddr, ip: IpAddr, port: u16) -> bool {
    gate.port() == port
        && (gate.ip().is_unspecified() || gate.ip().to_canonical() == ip.to_canonical())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[tokio::test]
    async fn finds_a_listening_port_and_not_a_closed_one() {
        // Loopback stands in for an interface address: tests never probe real interfaces.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let lo = [IpAddr::V4(Ipv4Addr::LOCALHOST)];
        let found = probe(&lo, port, Duration::from_secs(1)).await;
        assert_eq!(found, vec![Exposure::at(SocketAddr::new(lo[0], port))]);
        assert!(found[0].to_string().contains("OLLAMA_HOST=127.0.0.1:"));
        drop(listener);
        assert!(probe(&lo, port, Duration::from_secs(1)).await.is_empty());
    }

    /// A gate listening on the upstream's port number at one of this host's addresses is not
    /// Ollama answering around it: that address is not probed (it warned about itself).
    #[tokio::test]
    async fn the_gate_itself_is_not_taken_for_an_exposed_upstream() {
        // Loopback stands in for an interface address: tests never probe real interfaces.
        let lo = [IpAddr::V4(Ipv4Addr::LOCALHOST)];
        let gate = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gate_addr = gate.local_addr().unwrap();
        let upstream = UpstreamAddr::parse(&format!("localhost:{}", gate_addr.port())).unwrap();
        assert!(exposure_on(&upstream, &lo, gate_addr).await.is_empty());
        let anywhere = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), gate_addr.port());
        assert!(exposure_on(&upstream, &lo, anywhere).await.is_empty());
        // On another port, whatever answers on the upstream's is reported.
        let elsewhere = SocketAddr::new(gate_addr.ip(), gate_addr.port().wrapping_add(1).max(1));
        assert_eq!(
            exposure_on(&upstream, &lo, elsewhere).await,
            vec![Exposure::at(gate_addr)]
        );
    }

    /// The advice keeps the gate working: Ollama is told to listen on the loopback address the
    /// gate reaches it on, and an upstream given as a non-loopback address is to be changed too.
    #[test]
    fn the_advice_fits_the_upstream() {
        let seen = Exposure::at("192.0.2.7:11434".parse().unwrap());
        let advice = |up: &str| {
            seen.clone()
                .for_upstream(&UpstreamAddr::parse(up).unwrap())
                .to_string()
        };
        let v4 = advice("http://127.0.0.1:11434");
        assert!(v4.contains("OLLAMA_HOST=127.0.0.1:11434 "), "{v4}");
        assert!(!v4.contains("--upstream"), "{v4}");
        assert_eq!(advice("localhost"), v4);
        let v6 = advice("http://[::1]:11434");
        assert!(v6.contains("OLLAMA_HOST=[::1]:11434 "), "{v6}");
        assert!(!v6.contains("127.0.0.1"), "{v6}");
        let own = advice("http://192.0.2.7:11434");
        assert!(own.contains("OLLAMA_HOST=127.0.0.1:11434 "), "{own}");
        assert!(
            own.ends_with(
                ", and point the gate at it: --upstream http://127.0.0.1:11434 (server.upstream)"
            ),
            "{own}"
        );
    }

    #[test]
    fn only_local_upstreams_are_checked() {
        let here = [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))];
        assert!(upstream_is_local(
            &UpstreamAddr::parse("127.0.0.1:11434").unwrap(),
            &here
        ));
        assert!(upstream_is_local(
            &UpstreamAddr::parse("localhost").unwrap(),
            &here
        ));
        assert!(upstream_is_local(
            &UpstreamAddr::parse("[::1]:11434").unwrap(),
            &here
        ));
        assert!(upstream_is_local(
            &UpstreamAddr::parse("192.0.2.7:11434").unwrap(),
            &here
        ));
        assert!(!upstream_is_local(
            &UpstreamAddr::parse("192.0.2.8:11434").unwrap(),
            &here
        ));
        assert!(!upstream_is_local(
            &UpstreamAddr::parse("ollama.internal").unwrap(),
            &here
        ));
        assert!(upstream_is_local(
            &UpstreamAddr::parse("[::ffff:127.0.0.1]:11434").unwrap(),
            &here
        ));
    }

    #[test]
    fn a_name_is_local_when_it_resolves_to_this_host() {
        let here = [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(any_local([ip("127.0.1.1")].into_iter(), &here));
        assert!(any_local(
            [ip("198.51.100.1"), ip("192.0.2.7")].into_iter(),
            &here
        ));
        assert!(any_local([ip("::ffff:192.0.2.7")].into_iter(), &here));
        assert!(!any_local([ip("198.51.100.1")].into_iter(), &here));
        assert!(!any_local(std::iter::empty(), &here));
    }

    #[tokio::test]
    async fn addresses_and_localhost_are_not_looked_up() {
        let here: [IpAddr; 0] = [];
        for u in ["127.0.0.1:1", "localhost:1", "[::1]:1", "192.0.2.8:1"] {
            assert!(!upstream_resolves_local(&UpstreamAddr::parse(u).unwrap(), &here).await);
        }
    }

    #[test]
    fn link_local_v6_is_skipped() {
        assert!(is_v6_link_local(&"fe80::1".parse().unwrap()));
        assert!(!is_v6_link_local(&"2001:db8::1".parse().unwrap()));
    }
}
