//! Room in the process's descriptor table, made before the gate's threads start.
//!
//! Linux grows a process's descriptor table by doubling it (64, 128, 256, ... entries) the
//! first time a descriptor beyond its end is handed out. In a process with several threads the
//! old table can only be freed after an RCU grace period, and the `accept` or `socket` call
//! that triggered the growth waits for it (`synchronize_rcu`): 10–40 ms during which that
//! thread, here the one accepting clients or the one opening upstream connections, does
//! nothing. A gate passing 500 new streams a second hit this at every doubling, which made the
//! slowest 1% of first chunks arrive 10–25 ms late (nginx, one thread per worker, never waits).
//! Growing the table once, while the process has a single thread, costs no wait and the table
//! is never shrunk.

use std::fs::File;
use std::io;

use rustix::process::{getrlimit, Resource};

/// Descriptors reserved by default: enough for 8,000 concurrent streams (each holds a client
/// and an upstream connection); the table costs 8 bytes per entry, 128 KiB in all.
pub const DEFAULT_RESERVE: u32 = 16 * 1024;

/// Grows the descriptor table to hold at least `want` descriptors, or as many as the soft
/// `RLIMIT_NOFILE` allows if that is fewer. Returns the number reserved (0 when nothing could
/// be done). Call it before any other thread starts; later it still works, with one wait.
pub fn reserve(want: u32) -> io::Result<u32> {
    let limit = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    let Some((n, highest)) = reservation(want, limit) else {
        return Ok(0);
    };
    // Any descriptor will do as the original; the copy lands at `highest` or above, which
    // makes the kernel size the table for it, and is closed again at once.
    let null = File::open("/dev/null")?;
    let copy = rustix::io::fcntl_dupfd_cloexec(&null, highest)?;
    drop(copy);
    Ok(n)
}

/// How many descriptors to reserve under a soft limit of `limit`, and the highest descriptor
/// number that takes; `None` when there is nothing to reserve.
fn reservation(want: u32, limit: u64) -> Option<(u32, i32)> {
    let n = u32::try_from(u64::from(want).min(limit)).ok()?;
    let highest = i32::try_from(n.checked_sub(1)?).ok()?;
    Some((n, highest))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// `FDSize` in `/proc/self/status`: the size of the descriptor table.
    fn table_size() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("FDSize:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    #[test]
    fn the_table_is_grown_to_the_reservation_within_the_limit() {
        let limit = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
        let want = 4096u32;
        let reserved = reserve(want).unwrap();
        assert_eq!(u64::from(reserved), u64::from(want).min(limit));
        assert!(
            table_size() >= u64::from(reserved),
            "table {} < {reserved}",
            table_size()
        );
        // The probe descriptor is closed again: a new file gets a low number.
        let f = File::open("/dev/null").unwrap();
        use std::os::fd::AsRawFd;
        assert!(f.as_raw_fd() < 1024, "fd {}", f.as_raw_fd());
    }

    #[test]
    fn a_reservation_is_cut_to_the_soft_limit() {
        assert_eq!(reservation(16_384, 1024), Some((1024, 1023)));
        assert_eq!(reservation(16_384, u64::MAX), Some((16_384, 16_383)));
        assert_eq!(reservation(16_384, 0), None);
        assert_eq!(reservation(0, 1024), None);
        // Past what a descriptor number can be: nothing rather than a wrapped number.
        assert_eq!(reservation(u32::MAX, u64::MAX), None);
        assert_eq!(reserve(0).unwrap(), 0);
    }
}
