//! `--verify`: hash every blob and compare with its name, on all cores.

use super::Blob;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobResult {
    Ok,
    Mismatch { actual: String },
    Unreadable { error: String },
}

pub fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut f = crate::root::open_regular(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hex::encode(h.finalize()))
}

/// Hash `blobs` with one worker per core. When `progress` is set a line on stderr shows bytes
/// done; callers set it only when stderr is a terminal.
pub fn verify_blobs(blobs: &[&Blob], progress: bool) -> Vec<(String, BlobResult)> {
    let next = AtomicUsize::new(0);
    let done_bytes = AtomicU64::new(0);
    let done_files = AtomicUsize::new(0);
    let finished = AtomicBool::new(false);
    let results = Mutex::new(Vec::with_capacity(blobs.len()));
    let total: u64 = blobs.iter().map(|b| b.size).sum();
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(blobs.len().max(1));
    std::thread::scope(|s| {
        let mut handles = Vec::with_capacity(workers);
        for _ in 0..workers {
            handles.push(s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(b) = blobs.get(i) else { break };
                let r = match hash_file(&b.path) {
                    Ok(actual) if actual == b.hex => BlobResult::Ok,
                    Ok(actual) => BlobResult::Mismatch { actual },
                    // Our own errors (not a regular file) carry their text; OS errors
                    // are named by kind, without the errno.
                    Err(e) => BlobResult::Unreadable {
                        error: match e.get_ref() {
                            Some(inner) => inner.to_string(),
                            None => e.kind().to_string(),
                        },
                    },
                };
                done_bytes.fetch_add(b.size, Ordering::Relaxed);
                done_files.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut v) = results.lock() {
                    v.push((b.hex.clone(), r));
                }
            }));
        }
        if progress {
            s.spawn(|| {
                let mut err = std::io::stderr();
                loop {
                    let fin = finished.load(Ordering::Relaxed);
                    let _ = write!(
                        err,
                        "\rverifying blobs: {}/{} files, {} of {}",
                        done_files.load(Ordering::Relaxed),
                        blobs.len(),
                        human(done_bytes.load(Ordering::Relaxed)),
                        human(total)
                    );
                    let _ = err.flush();
                    if fin {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                let _ = writeln!(err);
            });
        }
        for h in handles {
            let _ = h.join();
        }
        finished.store(true, Ordering::Relaxed);
    });
    let mut v = results.into_inner().unwrap_or_default();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

pub fn human(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut f = n as f64;
    let mut i = 0;
    while f >= 1024.0 && i < U.len() - 1 {
        f /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{f:.1} {}", U[i])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn detects_mismatch_and_unreadable_in_parallel() {
        let d = tempfile::tempdir().unwrap();
        let mut blobs = Vec::new();
        for i in 0..20u8 {
            let data = vec![i; 1000 + usize::from(i)];
            let hex = hex::encode(Sha256::digest(&data));
            let p = d.path().join(format!("sha256-{hex}"));
            // Blob 3 is tampered after naming.
            std::fs::write(&p, if i == 3 { b"evil".to_vec() } else { data }).unwrap();
            blobs.push(Blob {
                hex,
                path: p,
                size: 1000,
            });
        }
        blobs.push(Blob {
            hex: "f".repeat(64),
            path: d.path().join("gone"),
            size: 1,
        });
        let refs: Vec<&Blob> = blobs.iter().collect();
        let r = verify_blobs(&refs, false);
        assert_eq!(r.len(), 21);
        let bad: Vec<_> = r.iter().filter(|(_, r)| *r != BlobResult::Ok).collect();
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(bad
            .iter()
            .any(|(h, r)| *h == blobs[3].hex && matches!(r, BlobResult::Mismatch { .. })));
        assert!(bad
            .iter()
            .any(|(_, r)| matches!(r, BlobResult::Unreadable { .. })));
        assert!(verify_blobs(&[], false).is_empty());
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(10), "10 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}
