#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Runs every fuzz corpus input through the fuzz entry points, plus pseudo-random bytes, so the
//! parsers' no-panic property is checked on every `cargo test`, not only under cargo-fuzz.

use std::path::PathBuf;

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(name);
    let mut v: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(v.len() >= 5, "corpus {name} has {} inputs", v.len());
    // Every prefix of every input too: truncation is the most common malformation.
    let prefixes: Vec<Vec<u8>> = v
        .iter()
        .flat_map(|b| (0..b.len()).step_by(7).map(|n| b[..n].to_vec()))
        .collect();
    v.extend(prefixes);
    v
}

/// xorshift: deterministic noise without a dependency.
fn noise(seed: u64, n: usize, alphabet: &[u8]) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            alphabet[(x % alphabet.len() as u64) as usize]
        })
        .collect()
}

const ALPHABET: &[u8] =
    b"0123456789ABCDEFabcdef:[]{}\"'\\=\n \t-_.,/*!@#%socket[]ServiceEnvironment";

#[test]
fn proc_net_corpus() {
    for b in corpus("check_proc_net") {
        corral_check::fuzzing::proc_net(&b);
    }
    for s in 0..200 {
        corral_check::fuzzing::proc_net(&noise(s, 300, ALPHABET));
    }
}

#[test]
fn systemd_unit_corpus() {
    for b in corpus("check_systemd_unit") {
        corral_check::fuzzing::systemd_unit(&b);
    }
    for s in 0..200 {
        corral_check::fuzzing::systemd_unit(&noise(s, 300, ALPHABET));
    }
}

#[test]
fn manifest_corpus() {
    for b in corpus("check_manifest") {
        corral_check::fuzzing::manifest(&b);
    }
    for s in 0..200 {
        corral_check::fuzzing::manifest(&noise(s, 300, ALPHABET));
    }
}

#[test]
fn firewall_corpus() {
    for b in corpus("check_firewall") {
        corral_check::fuzzing::firewall(&b);
    }
    for s in 0..200 {
        corral_check::fuzzing::firewall(&noise(s, 300, ALPHABET));
    }
}
