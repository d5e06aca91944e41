//! Ollama's version read from its executable, without running it.
//!
//! Official builds set the version at link time (`go build -ldflags
//! "-X=github.com/ollama/ollama/version.Version=0.5.7"`), and Go (1.18 and later) records the
//! build flags in the binary's build information, so the text
//! `github.com/ollama/ollama/version.Version=<version>` is in the file. A build without that
//! flag (from source, `go run`) has none and stays "unknown".

use crate::root::{open_regular, Root};
use std::io::Read;

const LDFLAG: &[u8] = b"github.com/ollama/ollama/version.Version=";
/// Longest version kept (the scan's limit too).
const MAX_VERSION: usize = 40;
/// Executables larger than this are not searched.
pub const MAX_BINARY: u64 = 1 << 30;
const CHUNK: usize = 1 << 20;

/// Where Ollama's executable may be, as host paths, most specific first: the running servers'
/// `/proc/PID/exe`, the unit's `ExecStart=`, then the installer's and packagers' locations.
pub fn candidates(server_exes: &[String], exec_start: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let exes = server_exes
        .iter()
        .map(|e| e.strip_suffix(" (deleted)").unwrap_or(e).to_string());
    let unit = exec_start.map(|s| s.to_string());
    let defaults = ["/usr/local/bin/ollama", "/usr/bin/ollama", "/bin/ollama"]
        .into_iter()
        .map(str::to_string);
    for p in exes.chain(unit).chain(defaults) {
        if p.starts_with('/') && !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// The first version found in the first of `paths` (host paths under `root`) that is a
/// readable regular file: `(version, host path)`.
pub fn version_from_files(root: &Root, paths: &[String]) -> Option<(String, String)> {
    paths.iter().find_map(|p| {
        let f = open_regular(&root.path(p)).ok()?;
        if f.metadata().ok()?.len() > MAX_BINARY {
            return None;
        }
        version_in(&mut f.take(MAX_BINARY)).map(|v| (v, p.clone()))
    })
}

fn is_version_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'_')
}

/// The version after the link flag in `hay`. `None` when absent, or when the value may run on
/// past the end of `hay` and `at_end` is false (the caller reads more first).
fn find(hay: &[u8], at_end: bool) -> Option<Result<String, ()>> {
    let i = hay.windows(LDFLAG.len()).position(|w| w == LDFLAG)?;
    let rest = hay.get(i + LDFLAG.len()..).unwrap_or_default();
    let len = rest.iter().take_while(|b| is_version_byte(**b)).count();
    if len == rest.len() && !at_end && len <= MAX_VERSION {
        return Some(Err(()));
    }
    let v = rest.get(..len).unwrap_or_default();
    if v.is_empty() || v.len() > MAX_VERSION || !v[0].is_ascii_digit() {
        return None;
    }
    Some(Ok(String::from_utf8_lossy(v).into_owned()))
}

/// Searches a reader chunk by chunk (a window's tail is kept, so the flag may straddle two
/// reads) for Ollama's link-time version.
pub fn version_in(r: &mut dyn Read) -> Option<String> {
    let keep = LDFLAG.len() + MAX_VERSION + 1;
    let mut buf = vec![0u8; CHUNK + keep];
    let mut have = 0usize;
    loop {
        let n = loop {
            match r.read(buf.get_mut(have..).unwrap_or_default()) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return None,
            }
        };
        have += n;
        let window = buf.get(..have).unwrap_or_default();
        match find(window, n == 0) {
            Some(Ok(v)) => return Some(v),
            // The value runs to the end of what was read: read on with the flag kept.
            Some(Err(())) if n > 0 => {
                if let Some(i) = window.windows(LDFLAG.len()).position(|w| w == LDFLAG) {
                    buf.copy_within(i..have, 0);
                    have -= i;
                    continue;
                }
            }
            _ => {}
        }
        if n == 0 {
            return None;
        }
        let start = have.saturating_sub(keep);
        buf.copy_within(start..have, 0);
        have -= start;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// Reads in small uneven pieces, as a pipe or a slow disk may.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(out.len()).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn go_binary(version: &str, padding: usize) -> Vec<u8> {
        let mut b = b"\x7fELF\x02\x01\x01".to_vec();
        b.extend(std::iter::repeat_n(0u8, padding));
        b.extend_from_slice(format!("build\t-ldflags=\"-w -s \\\"-X=github.com/ollama/ollama/version.Version={version}\\\" \\\"-X=github.com/ollama/ollama/server.mode=release\\\"\"\n").as_bytes());
        b.extend(std::iter::repeat_n(0xffu8, 1000));
        b
    }

    #[test]
    fn the_link_time_version_is_found_wherever_it_sits() {
        for padding in [0, 100, CHUNK - 30, CHUNK - 60, CHUNK + 5, 3 * CHUNK] {
            let b = go_binary("0.1.32", padding);
            assert_eq!(
                version_in(&mut &b[..]).as_deref(),
                Some("0.1.32"),
                "{padding}"
            );
        }
        let b = go_binary("0.12.3-rc1", CHUNK - 45);
        for step in [1, 7, 4096, CHUNK] {
            assert_eq!(
                version_in(&mut Trickle(&b, step)).as_deref(),
                Some("0.12.3-rc1"),
                "{step}"
            );
        }
    }

    #[test]
    fn no_flag_or_a_hostile_value_is_no_version() {
        assert_eq!(version_in(&mut &b"\x7fELF plain binary"[..]), None);
        assert_eq!(version_in(&mut &b""[..]), None);
        let flag_at_end = b"xx github.com/ollama/ollama/version.Version=".to_vec();
        assert_eq!(version_in(&mut &flag_at_end[..]), None);
        let long = go_binary(&"9".repeat(200), 10);
        assert_eq!(version_in(&mut &long[..]), None);
        let word = go_binary("dev", 10);
        assert_eq!(version_in(&mut &word[..]), None);
        let at_eof = b"github.com/ollama/ollama/version.Version=0.5.7".to_vec();
        assert_eq!(version_in(&mut &at_eof[..]).as_deref(), Some("0.5.7"));
    }

    #[test]
    fn candidates_in_order_without_repeats() {
        let c = candidates(
            &["/opt/ollama/bin/ollama (deleted)".into(), "relative".into()],
            Some("/usr/local/bin/ollama"),
        );
        assert_eq!(
            c,
            [
                "/opt/ollama/bin/ollama",
                "/usr/local/bin/ollama",
                "/usr/bin/ollama",
                "/bin/ollama"
            ]
        );
    }
}
