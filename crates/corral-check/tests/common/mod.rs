//! Fixture trees that look like a host to `--root`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use corral_check::procnet::encode_addr;
use corral_check::CheckOptions;
use sha2::{Digest, Sha256};
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub struct Fx {
    pub dir: tempfile::TempDir,
}

pub const OLLAMA: u32 = 100;

impl Fx {
    pub fn new() -> Fx {
        Fx {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, host: &str) -> PathBuf {
        self.root().join(host.trim_start_matches('/'))
    }

    pub fn write(&self, host: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(host);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        p
    }

    pub fn process(
        &self,
        pid: u32,
        ppid: u32,
        comm: &str,
        cmdline: &[&str],
        environ: &[(&str, &str)],
    ) {
        self.write(
            &format!("/proc/{pid}/stat"),
            format!("{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560"),
        );
        let mut c = Vec::new();
        for a in cmdline {
            c.extend_from_slice(a.as_bytes());
            c.push(0);
        }
        self.write(&format!("/proc/{pid}/cmdline"), c);
        let mut e = Vec::new();
        for (k, v) in environ {
            e.extend_from_slice(format!("{k}={v}").as_bytes());
            e.push(0);
        }
        self.write(&format!("/proc/{pid}/environ"), e);
        fs::create_dir_all(self.path(&format!("/proc/{pid}/fd"))).unwrap();
    }

    /// The usual server: `/usr/local/bin/ollama serve` under systemd (pid 1).
    /// `/proc/PID/exe`: a link naming the file the process runs (never followed).
    pub fn exe(&self, pid: u32, target: &str) {
        let link = self.path(&format!("/proc/{pid}/exe"));
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, link).unwrap();
    }

    pub fn ollama(&self, environ: &[(&str, &str)]) {
        self.process(1, 0, "systemd", &["/sbin/init"], &[]);
        self.process(
            OLLAMA,
            1,
            "ollama",
            &["/usr/local/bin/ollama", "serve"],
            environ,
        );
    }

    pub fn fd_socket(&self, pid: u32, fd: u32, inode: u64) {
        let link = self.path(&format!("/proc/{pid}/fd/{fd}"));
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(format!("socket:[{inode}]"), link).unwrap();
    }

    /// Write `/proc/net/tcp` and `tcp6` from `(address, state, inode)` rows.
    pub fn sockets(&self, rows: &[(&str, u8, u64)]) {
        let mut v4 = String::from("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n");
        let mut v6 = String::from("  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n");
        for (i, (a, st, ino)) in rows.iter().enumerate() {
            let a: SocketAddr = a.parse().unwrap();
            let remote = if a.is_ipv4() {
                "00000000:0000".to_string()
            } else {
                format!("{}:0000", "0".repeat(32))
            };
            let row = format!(
                "{i:4}: {} {remote} {st:02X} 00000000:00000000 00:00000000 00000000   998        0 {ino} 1 0000000000000000 100 0 0 10 0\n",
                encode_addr(a)
            );
            if a.is_ipv4() {
                v4.push_str(&row);
            } else {
                v6.push_str(&row);
            }
        }
        self.write("/proc/net/tcp", v4);
        self.write("/proc/net/tcp6", v6);
    }

    pub fn interfaces(&self) {
        self.write(
            "/proc/net/fib_trie",
            "Main:\n  +-- 0.0.0.0/0 3 0 5\n     +-- 192.0.2.0/24 2 0 2\n           |-- 192.0.2.2\n              /32 host LOCAL\n",
        );
        self.write(
            "/proc/net/route",
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n",
        );
        self.write("/proc/net/if_inet6", "fd000000000000000000000000000002 04 40 00 82     eth0\n00000000000000000000000000000001 01 80 10 80       lo\n");
    }

    /// A model in the store at `models` (host path); returns the blob hexes (config first).
    pub fn model(
        &self,
        models: &str,
        registry: &str,
        ns: &str,
        name: &str,
        tag: &str,
        blobs: &[&[u8]],
    ) -> Vec<String> {
        let mut hexes = Vec::new();
        let mut layers = Vec::new();
        for (i, b) in blobs.iter().enumerate() {
            let hex = hex::encode(Sha256::digest(b));
            self.write(&format!("{models}/blobs/sha256-{hex}"), b);
            let mt = if i == 0 {
                "application/vnd.docker.container.image.v1+json"
            } else {
                "application/vnd.ollama.image.model"
            };
            layers.push(serde_json::json!({"mediaType": mt, "digest": format!("sha256:{hex}"), "size": b.len()}));
            hexes.push(hex);
        }
        let config = layers.remove(0);
        let m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": config,
            "layers": layers,
        });
        self.write(
            &format!("{models}/manifests/{registry}/{ns}/{name}/{tag}"),
            serde_json::to_vec(&m).unwrap(),
        );
        hexes
    }

    pub fn opts(&self) -> CheckOptions {
        CheckOptions {
            root: self.root().to_path_buf(),
            progress: false,
            probe_live_version: false,
            ..CheckOptions::default()
        }
    }
}

pub const STORE: &str = "/usr/share/ollama/.ollama/models";

/// Finding ids, leaving out the firewall-unknown notes most fixtures do not care about.
pub fn ids(r: &corral_check::Report) -> Vec<String> {
    r.findings
        .iter()
        .map(|f| f.id.clone())
        .filter(|i| i != "firewall.unknown")
        .collect()
}

pub fn with_id<'a>(r: &'a corral_check::Report, id: &str) -> Vec<&'a corral_check::Finding> {
    r.findings.iter().filter(|f| f.id == id).collect()
}

pub const IPT_DROP: &str = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 11434 -j DROP\nCOMMIT\n";
pub const IPT_OPEN: &str = "*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 11434 -j ACCEPT\nCOMMIT\n";
pub const NFT_DROP: &str = r#"{"nftables":[{"chain":{"family":"inet","table":"filter","name":"input","handle":1,"type":"filter","hook":"input","prio":0,"policy":"drop"}},{"rule":{"family":"inet","table":"filter","chain":"input","handle":2,"expr":[{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":22}},{"accept":null}]}}]}"#;
