//! Where the upstream listens: an address given as such is used as it is; a host name
//! (`http://localhost:11434`, `http://ollama:11434` in a compose file) is resolved once and
//! remembered for [`RESOLVE_TTL`], with the address that last answered tried first.
//!
//! Without this every new upstream connection would resolve the name again on tokio's blocking
//! pool, and with `localhost` (often `::1` first, while Ollama listens on `127.0.0.1` only)
//! would also try a refused address first each time.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// How long a resolution is used before the name is resolved again, so that a container
/// restarted under a new address is found without restarting the gate.
pub const RESOLVE_TTL: Duration = Duration::from_secs(30);

/// The upstream's addresses.
#[derive(Debug)]
pub(crate) struct Addrs {
    host: String,
    port: u16,
    /// Set when the host is an IP address: nothing to resolve.
    literal: Option<SocketAddr>,
    cache: Mutex<Cache>,
}

impl Addrs {
    pub(crate) fn new(host: &str, port: u16) -> Addrs {
        Addrs {
            host: host.to_owned(),
            port,
            literal: host
                .parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, port)),
            cache: Mutex::new(Cache::default()),
        }
    }

    /// A new connection: to the address that answered last, else to each address in turn.
    /// When none answers the resolution is forgotten, so the next attempt resolves again.
    ///
    /// The whole attempt, resolution included, takes at most `timeout`; each address is given
    /// an equal share of what is left, so one that never answers (its SYN dropped) does not
    /// use up the time of those after it. A timed-out attempt is an error of kind `TimedOut`.
    pub(crate) async fn connect(&self, timeout: Duration) -> std::io::Result<TcpStream> {
        let deadline = tokio::time::Instant::now() + timeout;
        let timed_out = |what: &str| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{what} timed out"))
        };
        if let Some(addr) = self.literal {
            return tokio::time::timeout_at(deadline, TcpStream::connect(addr))
                .await
                .map_err(|_| timed_out("connecting"))?;
        }
        let cached = self.with_cache(|c| c.fresh(Instant::now()));
        let addrs = match cached {
            Some(addrs) => addrs,
            None => {
                let lookup = tokio::net::lookup_host((self.host.as_str(), self.port));
                let addrs: Vec<SocketAddr> = tokio::time::timeout_at(deadline, lookup)
                    .await
                    .map_err(|_| timed_out("resolving the upstream's name"))??
                    .collect();
                self.with_cache(|c| c.store(addrs.clone(), Instant::now()));
                addrs
            }
        };
        let mut last = None;
        for (i, addr) in addrs.iter().copied().enumerate() {
            let left = u32::try_from(addrs.len() - i).unwrap_or(u32::MAX);
            let share = deadline.saturating_duration_since(tokio::time::Instant::now()) / left;
            match tokio::time::timeout(share, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    self.with_cache(|c| c.answered(addr));
                    return Ok(stream);
                }
                Ok(Err(e)) => last = Some(e),
                Err(_) => last = Some(timed_out(&format!("connecting to {addr}"))),
            }
        }
        self.with_cache(Cache::forget);
        Err(last.unwrap_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} has no address", self.host),
            )
        }))
    }

    fn with_cache<T>(&self, f: impl FnOnce(&mut Cache) -> T) -> T {
        // A panic while holding the lock cannot leave the cache inconsistent: every change is
        // one assignment or one rotation.
        let mut guard = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }
}

/// The remembered resolution: pure, so its rules are tested without a resolver or a clock.
#[derive(Debug, Default)]
struct Cache {
    addrs: Vec<SocketAddr>,
    resolved_at: Option<Instant>,
}

impl Cache {
    /// The addresses, if resolved less than [`RESOLVE_TTL`] before `now` and not empty.
    fn fresh(&self, now: Instant) -> Option<Vec<SocketAddr>> {
        let at = self.resolved_at?;
        (now.saturating_duration_since(at) < RESOLVE_TTL && !self.addrs.is_empty())
            .then(|| self.addrs.clone())
    }

    /// A new resolution. The address that answered last stays first if it is still listed.
    fn store(&mut self, addrs: Vec<SocketAddr>, now: Instant) {
        let keep = self.addrs.first().copied();
        self.addrs = addrs;
        self.resolved_at = Some(now);
        if let Some(first) = keep {
            self.answered(first);
        }
    }

    /// `addr` took a connection: it is tried first from now on.
    fn answered(&mut self, addr: SocketAddr) {
        if let Some(i) = self.addrs.iter().position(|a| *a == addr) {
            self.addrs[..=i].rotate_right(1);
        }
    }

    fn forget(&mut self) {
        self.addrs.clear();
        self.resolved_at = None;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_resolution_is_used_until_it_is_too_old() {
        let t0 = Instant::now();
        let mut c = Cache::default();
        assert_eq!(c.fresh(t0), None);
        c.store(vec![a("[::1]:11434"), a("127.0.0.1:11434")], t0);
        assert_eq!(
            c.fresh(t0 + RESOLVE_TTL - Duration::from_millis(1)),
            Some(vec![a("[::1]:11434"), a("127.0.0.1:11434")])
        );
        assert_eq!(c.fresh(t0 + RESOLVE_TTL), None);
    }

    #[test]
    fn the_address_that_answered_is_tried_first_and_stays_first_across_resolutions() {
        let t0 = Instant::now();
        let mut c = Cache::default();
        let (v6, v4, other) = (a("[::1]:11434"), a("127.0.0.1:11434"), a("127.0.0.2:11434"));
        c.store(vec![v6, v4, other], t0);
        c.answered(v4);
        assert_eq!(c.fresh(t0).unwrap(), [v4, v6, other]);
        // Resolved again later: the name's order, but the one that answered first.
        c.store(vec![v6, other, v4], t0 + RESOLVE_TTL);
        assert_eq!(c.fresh(t0 + RESOLVE_TTL).unwrap(), [v4, v6, other]);
        // An address that is gone from the new resolution is not kept.
        c.store(vec![other, v6], t0 + RESOLVE_TTL * 2);
        assert_eq!(c.fresh(t0 + RESOLVE_TTL * 2).unwrap(), [other, v6]);
        // An address never listed changes nothing.
        c.answered(a("10.9.9.9:1"));
        assert_eq!(c.fresh(t0 + RESOLVE_TTL * 2).unwrap(), [other, v6]);
    }

    #[test]
    fn a_forgotten_or_empty_resolution_is_resolved_again() {
        let t0 = Instant::now();
        let mut c = Cache::default();
        c.store(vec![a("127.0.0.1:1")], t0);
        c.forget();
        assert_eq!(c.fresh(t0), None);
        c.store(Vec::new(), t0);
        assert_eq!(c.fresh(t0), None);
    }

    #[tokio::test]
    async fn a_host_name_connects_and_an_address_needs_no_resolution() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let _ = listener.accept().await;
            }
        });
        let named = Addrs::new("localhost", port);
        assert_eq!(named.literal, None);
        for _ in 0..3 {
            let s = named.connect(Duration::from_secs(5)).await.unwrap();
            assert_eq!(s.peer_addr().unwrap(), a(&format!("127.0.0.1:{port}")));
        }
        // Whatever order the name resolved in, the address that answered now comes first.
        let first = named.with_cache(|c| c.fresh(Instant::now())).unwrap()[0];
        assert_eq!(first, a(&format!("127.0.0.1:{port}")));

        let literal = Addrs::new("127.0.0.1", port);
        assert_eq!(literal.literal, Some(a(&format!("127.0.0.1:{port}"))));
        literal.connect(Duration::from_secs(5)).await.unwrap();
        assert_eq!(literal.with_cache(|c| c.fresh(Instant::now())), None);
        assert_eq!(
            Addrs::new("::1", 11434).literal,
            Some(a("[::1]:11434")),
            "an IPv6 address (the brackets are gone by now) is an address too"
        );
    }

    /// A name resolving to an address that never answers (its SYN is dropped) and to one that
    /// does: the second is reached within the connect timeout, and is tried first from then on.
    #[tokio::test]
    async fn an_address_that_never_answers_leaves_time_for_the_next() {
        // A listener whose accept queue is full: a further connection is never answered.
        let silent = tokio::net::TcpSocket::new_v4().unwrap();
        silent.bind(a("127.0.0.2:0")).unwrap();
        let silent = silent.listen(0).unwrap();
        let silent_addr = silent.local_addr().unwrap();
        let _queued = std::net::TcpStream::connect(silent_addr).unwrap();
        let good = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let good_addr = good.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let _ = good.accept().await;
            }
        });
        let pool =
            crate::upstream::Pool::new("localhost", good_addr.port(), Duration::from_secs(2), 1);
        pool.addrs
            .with_cache(|c| c.store(vec![silent_addr, good_addr], Instant::now()));
        let conn = pool
            .connect()
            .await
            .expect("the second address answers within the connect timeout");
        assert_eq!(conn.stream.peer_addr().unwrap(), good_addr);
        let first = pool.addrs.with_cache(|c| c.fresh(Instant::now())).unwrap()[0];
        assert_eq!(first, good_addr);
    }

    #[tokio::test]
    async fn when_nothing_answers_the_resolution_is_forgotten() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let named = Addrs::new("localhost", port);
        assert!(named.connect(Duration::from_secs(5)).await.is_err());
        assert_eq!(named.with_cache(|c| c.fresh(Instant::now())), None);
    }
}
