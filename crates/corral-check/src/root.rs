//! All file access goes through [`Root`], so `--root DIR` makes a fixture tree look like a host.

use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Files read from /proc and /etc are small; anything larger is hostile or not what we expect.
pub const MAX_TEXT: u64 = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Root {
    base: PathBuf,
}

impl Root {
    pub fn new(base: impl Into<PathBuf>) -> Self {
        Root { base: base.into() }
    }

    /// True when reading the real host (`/`): only then may commands be run and loopback probed.
    pub fn is_live(&self) -> bool {
        self.base == Path::new("/")
    }

    pub fn base(&self) -> &Path {
        &self.base
    }

    /// Map a host path such as `/etc/environment` into the root.
    pub fn path(&self, host: impl AsRef<Path>) -> PathBuf {
        let mut out = self.base.clone();
        for c in host.as_ref().components() {
            match c {
                Component::Normal(p) => out.push(p),
                // `..` is dropped rather than followed so a hostile path cannot leave the root.
                Component::RootDir | Component::CurDir | Component::ParentDir => {}
                Component::Prefix(_) => {}
            }
        }
        out
    }

    /// The host path of a path inside the root, for evidence and remediation text.
    pub fn display(&self, p: &Path) -> String {
        if self.is_live() {
            return p.display().to_string();
        }
        match p.strip_prefix(&self.base) {
            Ok(rest) => format!("/{}", rest.display()),
            Err(_) => p.display().to_string(),
        }
    }

    pub fn read_text(&self, host: impl AsRef<Path>) -> Option<String> {
        read_text_at(&self.path(host))
    }

    pub fn read_bytes(&self, host: impl AsRef<Path>) -> Option<Vec<u8>> {
        read_bytes_at(&self.path(host))
    }

    pub fn exists(&self, host: impl AsRef<Path>) -> bool {
        self.path(host).exists()
    }
}

/// Opens `p` for reading only if it is a regular file (after symlinks). A FIFO planted where
/// a blob, manifest or environment file is expected would block `open` until some process
/// writes to it: the check would hang instead of reporting.
pub fn open_regular(p: &Path) -> std::io::Result<fs::File> {
    let not_regular =
        || std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file");
    if !fs::metadata(p)?.file_type().is_file() {
        return Err(not_regular());
    }
    let f = fs::File::open(p)?;
    if !f.metadata()?.file_type().is_file() {
        return Err(not_regular());
    }
    Ok(f)
}

pub fn read_bytes_at(p: &Path) -> Option<Vec<u8>> {
    // systemd masks a unit by linking it to /dev/null: that reads as an empty file.
    if fs::canonicalize(p).is_ok_and(|t| t == Path::new("/dev/null")) {
        return Some(Vec::new());
    }
    let f = open_regular(p).ok()?;
    let mut buf = Vec::new();
    f.take(MAX_TEXT).read_to_end(&mut buf).ok()?;
    Some(buf)
}

pub fn read_text_at(p: &Path) -> Option<String> {
    read_bytes_at(p).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Sorted directory entries; unreadable directories read as empty.
pub fn list_dir(p: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match fs::read_dir(p) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_stays_inside_root() {
        let r = Root::new("/tmp/fx");
        assert_eq!(
            r.path("/etc/environment"),
            PathBuf::from("/tmp/fx/etc/environment")
        );
        assert_eq!(
            r.path("/../../etc/shadow"),
            PathBuf::from("/tmp/fx/etc/shadow")
        );
        assert_eq!(r.display(Path::new("/tmp/fx/etc/x")), "/etc/x");
        assert!(!r.is_live());
        assert!(Root::new("/").is_live());
    }
}
