//! Signs that Ollama runs in a container, where the official image sets
//! `OLLAMA_HOST=0.0.0.0:11434` and exposure is decided by how the port is published.

use crate::finding::Evidence;
use crate::root::Root;

/// Container runtimes as they appear in `/proc/<pid>/cgroup` paths.
const CGROUP_MARKERS: &[&str] = &[
    "docker",
    "containerd",
    "kubepods",
    "libpod",
    "podman",
    "lxc",
    "crio",
];

pub fn cgroup_hint(text: &str) -> Option<&'static str> {
    CGROUP_MARKERS.iter().copied().find(|m| text.contains(m))
}

/// Evidence that the host view is a container, or that an Ollama process runs in one.
pub fn detect(root: &Root, ollama_pids: &[u32]) -> Vec<Evidence> {
    let mut out = Vec::new();
    for f in ["/.dockerenv", "/run/.containerenv"] {
        if root.exists(f) {
            out.push(Evidence::at(
                f,
                None,
                format!("{f} exists: this system is a container"),
            ));
        }
    }
    for pid in std::iter::once(1).chain(ollama_pids.iter().copied()) {
        let path = format!("/proc/{pid}/cgroup");
        if let Some(t) = root.read_text(&path) {
            if let Some(m) = cgroup_hint(&t) {
                out.push(Evidence::at(
                    path,
                    None,
                    format!("cgroup of pid {pid} names {m}"),
                ));
            }
        }
    }
    for pid in ollama_pids {
        if let Some(env) = crate::procs::read_environ(root, *pid) {
            if let Some((_, v)) = env.iter().find(|(k, _)| k == "container") {
                out.push(Evidence::at(
                    format!("/proc/{pid}/environ"),
                    None,
                    format!("container={v} in the environment of pid {pid}"),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_markers() {
        assert_eq!(
            cgroup_hint("0::/system.slice/docker-abc.scope"),
            Some("docker")
        );
        assert_eq!(cgroup_hint("0::/kubepods/burstable/pod1"), Some("kubepods"));
        assert_eq!(cgroup_hint("0::/system.slice/ollama.service"), None);
    }
}
