//! Where rule dumps come from: the commands on the live host, fixture files under `--root`.

use super::Dumps;
use crate::root::Root;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Fixture files a `--root` tree may hold instead of running commands.
pub const FIXTURES: &str = "/corral-fixtures";

pub fn fixture_dumps(root: &Root) -> Dumps {
    let read = |name: &str| {
        let host = format!("{FIXTURES}/{name}");
        root.read_text(&host).map(|t| (host, t))
    };
    Dumps {
        nft_json: read("nft.json"),
        iptables: read("iptables-save.txt"),
        ip6tables: read("ip6tables-save.txt"),
    }
}

pub fn live_dumps() -> Dumps {
    let run = |prog: &str, args: &[&str]| {
        run_bounded(prog, args, Duration::from_secs(5))
            .map(|t| (format!("{prog} {}", args.join(" ")).trim().to_string(), t))
    };
    Dumps {
        nft_json: run("nft", &["-j", "list", "ruleset"]),
        iptables: run("iptables-save", &[]),
        ip6tables: run("ip6tables-save", &[]),
    }
}

/// Run a command with a deadline; its output only when it exits successfully.
pub fn run_bounded(prog: &str, args: &[&str], timeout: Duration) -> Option<String> {
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let out = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.take(crate::root::MAX_TEXT).read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                let b = reader.join().ok()?;
                return st
                    .success()
                    .then(|| String::from_utf8_lossy(&b).into_owned());
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn bounded_commands() {
        let t = Duration::from_secs(5);
        assert_eq!(
            run_bounded("sh", &["-c", "echo hi"], t).as_deref(),
            Some("hi\n")
        );
        assert_eq!(run_bounded("sh", &["-c", "echo partial; exit 3"], t), None);
        assert_eq!(run_bounded("/nonexistent/corral-nft", &[], t), None);
        let start = Instant::now();
        assert_eq!(
            run_bounded("sleep", &["30"], Duration::from_millis(200)),
            None
        );
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the child was not stopped at the deadline"
        );
    }

    #[test]
    fn fixtures_are_read_under_root() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("corral-fixtures")).unwrap();
        std::fs::write(
            d.path().join("corral-fixtures/iptables-save.txt"),
            "*filter\n",
        )
        .unwrap();
        let dumps = fixture_dumps(&Root::new(d.path()));
        assert!(dumps.nft_json.is_none());
        assert_eq!(
            dumps.iptables.unwrap().0,
            "/corral-fixtures/iptables-save.txt"
        );
    }
}
