//! Resident memory of a process, from `/proc/PID/status` (Linux).

use std::io;

/// Memory figures of one process, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemStatus {
    /// `VmRSS`: resident now.
    pub rss_kb: u64,
    /// `VmHWM`: the peak resident size since the process started.
    pub hwm_kb: u64,
}

/// Parses the `VmRSS` and `VmHWM` lines of a `/proc/PID/status` text.
///
/// `None` when either is missing (a zombie or kernel thread has neither).
pub fn parse_status(text: &str) -> Option<MemStatus> {
    let mut rss = None;
    let mut hwm = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            rss = kb(rest);
        } else if let Some(rest) = line.strip_prefix("VmHWM:") {
            hwm = kb(rest);
        }
    }
    Some(MemStatus {
        rss_kb: rss?,
        hwm_kb: hwm?,
    })
}

fn kb(field: &str) -> Option<u64> {
    let mut parts = field.split_whitespace();
    let value = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") => Some(value),
        _ => None,
    }
}

/// Reads the memory figures of a live process.
pub fn read(pid: u32) -> io::Result<MemStatus> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_status(&text)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmRSS/VmHWM in /proc status"))
}

/// Sums the figures of several processes (nginx's master and workers); processes that
/// have gone away count as zero.
pub fn read_sum(pids: &[u32]) -> MemStatus {
    pids.iter()
        .filter_map(|pid| read(*pid).ok())
        .fold(MemStatus::default(), |acc, m| MemStatus {
            rss_kb: acc.rss_kb + m.rss_kb,
            hwm_kb: acc.hwm_kb + m.hwm_kb,
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Name:\tcorral\nVmPeak:\t  123456 kB\nVmHWM:\t    9876 kB\nVmRSS:\t    5432 kB\nThreads:\t3\n";

    #[test]
    fn parses_rss_and_hwm() {
        assert_eq!(
            parse_status(SAMPLE),
            Some(MemStatus {
                rss_kb: 5432,
                hwm_kb: 9876
            })
        );
    }

    #[test]
    fn missing_fields_give_none() {
        assert_eq!(parse_status("Name:\tkthreadd\nState:\tS\n"), None);
        assert_eq!(parse_status("VmRSS:\t 12 kB\n"), None);
    }

    #[test]
    fn rejects_unexpected_units_and_garbage() {
        assert_eq!(parse_status("VmRSS:\t12 MB\nVmHWM:\t13 kB\n"), None);
        assert_eq!(parse_status("VmRSS:\tlots kB\nVmHWM:\t13 kB\n"), None);
    }

    #[test]
    fn reads_own_process() {
        let me = read(std::process::id()).unwrap();
        assert!(me.rss_kb > 0);
        assert!(me.hwm_kb >= me.rss_kb);
    }

    #[test]
    fn vanished_process_counts_as_zero() {
        // PIDs above pid_max (at most 2^22 on Linux) never exist.
        assert_eq!(read_sum(&[u32::MAX]), MemStatus::default());
        assert!(read(u32::MAX).is_err());
    }
}
