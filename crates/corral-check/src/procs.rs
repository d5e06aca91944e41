//! The process table under `<root>/proc`: which processes are Ollama, their children, their
//! environment, and which sockets each one holds.

use crate::root::{list_dir, read_bytes_at, read_text_at, Root};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fs;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    pub cmdline: Vec<String>,
    /// The file it runs (`/proc/PID/exe`), when it can be read (another user's process needs
    /// root).
    pub exe: Option<String>,
}

impl Proc {
    /// The program name: argv[0]'s basename when there is one, else `comm`.
    pub fn program(&self) -> &str {
        match self.cmdline.first() {
            Some(a0) if !a0.is_empty() => a0.rsplit('/').next().unwrap_or(a0),
            _ => &self.comm,
        }
    }

    pub fn describe(&self) -> String {
        let cmd = if self.cmdline.is_empty() {
            format!("[{}]", self.comm)
        } else {
            self.cmdline.join(" ")
        };
        format!("{}({}): {}", self.comm, self.pid, truncate(&cmd, 160))
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max).collect();
    t.push('…');
    t
}

/// `/proc/PID/stat`: `pid (comm) state ppid ...`. `comm` may hold spaces and parentheses, so
/// the last `)` ends it.
pub fn parse_stat(text: &str) -> Option<(u32, String, u32)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    if close < open {
        return None;
    }
    let pid = text.get(..open)?.trim().parse().ok()?;
    let comm = text.get(open + 1..close)?.to_string();
    let mut rest = text.get(close + 1..)?.split_whitespace();
    let _state = rest.next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((pid, comm, ppid))
}

/// NUL-separated strings (`cmdline`, `environ`).
pub fn split_nul(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

pub fn parse_environ(bytes: &[u8]) -> Vec<(String, String)> {
    split_nul(bytes)
        .into_iter()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

pub fn is_ollama(p: &Proc) -> bool {
    p.comm == "ollama" || p.program() == "ollama"
}

/// Ollama's own model runners: `ollama runner ...` in current releases, a separate
/// `ollama_llama_server` (comm truncated to 15 bytes) or `llama-server` in older ones.
pub fn is_runner(p: &Proc) -> bool {
    let prog = p.program();
    (is_ollama(p) && p.cmdline.iter().skip(1).any(|a| a == "runner"))
        || prog == "ollama_llama_server"
        || prog == "llama-server"
        || p.comm.starts_with("ollama_llama")
        || p.comm == "llama-server"
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChildKind {
    Runner,
    Shell,
    Interpreter,
    Network,
    Other,
}

pub fn classify_child(p: &Proc) -> ChildKind {
    // The kernel names a process after the file it executed (`comm`); argv[0] is whatever its
    // parent passed (`exec -a ollama sh`, `execve("/bin/sh", ["ollama", "runner"])`). A comm
    // that names a shell, interpreter or network tool decides, whatever argv[0] claims.
    if let Some(kind) = suspicious(&p.comm) {
        return kind;
    }
    if is_runner(p) || is_ollama(p) {
        return ChildKind::Runner;
    }
    suspicious(p.program()).unwrap_or(ChildKind::Other)
}

/// The kind of a program name that should never run below Ollama.
fn suspicious(prog: &str) -> Option<ChildKind> {
    let base = prog.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    const SHELLS: &[&str] = &[
        "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "busybox",
    ];
    const INTERP: &[&str] = &[
        "python",
        "perl",
        "ruby",
        "node",
        "nodejs",
        "php",
        "lua",
        "luajit",
        "deno",
        "bun",
        "java",
        "tclsh",
        "wish",
        "awk",
        "gawk",
        "osascript",
        "pwsh",
    ];
    const NET: &[&str] = &[
        "curl", "wget", "nc", "ncat", "netcat", "socat", "ssh", "scp", "sftp", "telnet", "ftp",
        "tftp", "rsync",
    ];
    if SHELLS.contains(&base) || SHELLS.contains(&prog) {
        Some(ChildKind::Shell)
    } else if INTERP.contains(&base) || INTERP.contains(&prog) {
        Some(ChildKind::Interpreter)
    } else if NET.contains(&base) || NET.contains(&prog) {
        Some(ChildKind::Network)
    } else {
        None
    }
}

/// Whether `child`, which calls itself Ollama, runs another file than its `server`: Ollama
/// starts its runners from its own executable, so an `ollama` below it that is not that file is
/// something else renamed (a copied shell, say). Unknown when either link cannot be read, or
/// names a file replaced since it started (`... (deleted)`, as after an upgrade).
pub fn is_other_binary(child: &Proc, server: &Proc) -> bool {
    let known = |p: &Proc| {
        p.exe
            .as_deref()
            .filter(|e| !e.is_empty() && !e.ends_with(" (deleted)"))
            .map(str::to_owned)
    };
    is_ollama(child) && matches!((known(child), known(server)), (Some(c), Some(s)) if c != s)
}

/// Ollama processes whose parent is not Ollama: the servers.
pub fn servers(procs: &BTreeMap<u32, Proc>) -> Vec<&Proc> {
    procs
        .values()
        .filter(|p| is_ollama(p) && !is_runner(p))
        .filter(|p| procs.get(&p.ppid).is_none_or(|pp| !is_ollama(pp)))
        .collect()
}

/// Every descendant of `pid` with the chain of ancestors from `pid` down to it. Bounded so a
/// cyclic (hostile fixture) table cannot loop.
pub fn descendants(procs: &BTreeMap<u32, Proc>, pid: u32) -> Vec<Vec<u32>> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for p in procs.values() {
        if p.pid != p.ppid {
            children.entry(p.ppid).or_default().push(p.pid);
        }
    }
    let mut out = Vec::new();
    let mut stack = vec![vec![pid]];
    while let Some(chain) = stack.pop() {
        if out.len() > 10_000 || chain.len() > 64 {
            break;
        }
        let Some(&last) = chain.last() else { continue };
        for &c in children.get(&last).map(Vec::as_slice).unwrap_or(&[]) {
            if chain.contains(&c) {
                continue;
            }
            let mut next = chain.clone();
            next.push(c);
            out.push(next.clone());
            stack.push(next);
        }
    }
    out.sort();
    out
}

/// Read every `/proc/<pid>` under the root.
pub fn read_procs(root: &Root) -> BTreeMap<u32, Proc> {
    let mut out = BTreeMap::new();
    for dir in list_dir(&root.path("/proc")) {
        let Some(pid) = dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Some((_, comm, ppid)) = read_text_at(&dir.join("stat")).and_then(|t| parse_stat(&t))
        else {
            continue;
        };
        let cmdline = read_bytes_at(&dir.join("cmdline"))
            .map(|b| split_nul(&b))
            .unwrap_or_default();
        // The link's text only: never followed (under another --root it names a file of the
        // analysed host, not of this one).
        let exe = std::fs::read_link(dir.join("exe"))
            .ok()
            .map(|t| t.to_string_lossy().into_owned());
        out.insert(
            pid,
            Proc {
                pid,
                ppid,
                comm,
                cmdline,
                exe,
            },
        );
    }
    out
}

pub fn read_environ(root: &Root, pid: u32) -> Option<Vec<(String, String)>> {
    root.read_bytes(format!("/proc/{pid}/environ"))
        .map(|b| parse_environ(&b))
}

/// `socket:[12345]` → 12345.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Socket inode → owning pids, from the `/proc/<pid>/fd/*` links. Returns the pids whose fd
/// directory could not be read (not root), so the report can say the map is incomplete.
pub fn socket_owners(root: &Root, pids: &[u32]) -> (HashMap<u64, Vec<u32>>, Vec<u32>) {
    let mut map: HashMap<u64, Vec<u32>> = HashMap::new();
    let mut unreadable = Vec::new();
    for &pid in pids {
        let dir = root.path(format!("/proc/{pid}/fd"));
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(_) => {
                unreadable.push(pid);
                continue;
            }
        };
        for e in rd.flatten() {
            let Ok(target) = fs::read_link(e.path()) else {
                continue;
            };
            if let Some(ino) = target.to_str().and_then(socket_inode) {
                let owners = map.entry(ino).or_default();
                if !owners.contains(&pid) {
                    owners.push(pid);
                }
            }
        }
    }
    (map, unreadable)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn p(pid: u32, ppid: u32, comm: &str, cmd: &[&str]) -> Proc {
        Proc {
            pid,
            ppid,
            comm: comm.into(),
            cmdline: cmd.iter().map(|s| s.to_string()).collect(),
            exe: None,
        }
    }

    #[test]
    fn stat_with_hostile_comm() {
        let (pid, comm, ppid) = parse_stat("42 (a) b (c)) S 7 42 42 0").unwrap();
        assert_eq!((pid, comm.as_str(), ppid), (42, "a) b (c)", 7));
        assert!(parse_stat("42 a S 7").is_none());
        assert!(parse_stat(") 42 (").is_none());
    }

    #[test]
    fn environ_split() {
        let e = parse_environ(b"A=1\0OLLAMA_HOST=0.0.0.0\0junk\0\0B=x=y\0");
        assert_eq!(
            e,
            vec![
                ("A".into(), "1".into()),
                ("OLLAMA_HOST".into(), "0.0.0.0".into()),
                ("B".into(), "x=y".into())
            ]
        );
    }

    #[test]
    fn classifies_children() {
        assert_eq!(
            classify_child(&p(
                2,
                1,
                "ollama",
                &["/usr/bin/ollama", "runner", "--model", "x"]
            )),
            ChildKind::Runner
        );
        assert_eq!(
            classify_child(&p(2, 1, "ollama_llama_se", &["/tmp/x/ollama_llama_server"])),
            ChildKind::Runner
        );
        assert_eq!(
            classify_child(&p(2, 1, "bash", &["/bin/bash", "-c", "id"])),
            ChildKind::Shell
        );
        assert_eq!(
            classify_child(&p(2, 1, "python3", &["python3.11"])),
            ChildKind::Interpreter
        );
        assert_eq!(classify_child(&p(2, 1, "curl", &[])), ChildKind::Network);
        // argv[0] is the parent's choice: a shell started as `ollama runner` is still a shell.
        assert_eq!(
            classify_child(&p(2, 1, "bash", &["ollama", "runner"])),
            ChildKind::Shell
        );
        assert_eq!(
            classify_child(&p(2, 1, "python3", &["llama-server"])),
            ChildKind::Interpreter
        );
        assert_eq!(
            classify_child(&p(2, 1, "nc", &["ollama_llama_server"])),
            ChildKind::Network
        );
        assert_eq!(
            classify_child(&p(2, 1, "sh", &["/usr/local/bin/ollama", "serve"])),
            ChildKind::Shell
        );
        assert_eq!(
            classify_child(&p(2, 1, "nvidia-smi", &[])),
            ChildKind::Other
        );
    }

    #[test]
    fn servers_and_descendants() {
        let mut m = BTreeMap::new();
        for x in [
            p(1, 0, "systemd", &["/sbin/init"]),
            p(10, 1, "ollama", &["/usr/local/bin/ollama", "serve"]),
            p(11, 10, "ollama", &["/usr/local/bin/ollama", "runner"]),
            p(12, 10, "sh", &["sh", "-c", "curl x | sh"]),
            p(13, 12, "curl", &["curl", "x"]),
            p(20, 20, "loop", &[]),
        ] {
            m.insert(x.pid, x);
        }
        let s = servers(&m);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].pid, 10);
        let d = descendants(&m, 10);
        assert_eq!(d, vec![vec![10, 11], vec![10, 12], vec![10, 12, 13]]);
        assert!(descendants(&m, 20).is_empty());
    }

    #[test]
    fn socket_link() {
        assert_eq!(socket_inode("socket:[123]"), Some(123));
        assert_eq!(socket_inode("pipe:[123]"), None);
        assert_eq!(socket_inode("socket:[x]"), None);
    }
}
