#![no_main]
//! `KeySnapshot::authenticate` on arbitrary strings, against a snapshot holding real keys
//! (one active, one revoked, one expiring) so that every branch is reachable.

use std::sync::OnceLock;
use std::time::Duration;

use chrono::Utc;
use corral_store::{AuthError, KeySnapshot, KeyStore};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    snap: KeySnapshot,
    ids: Vec<String>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("corral-fuzz-store-{}", std::process::id()));
        let store = KeyStore::open(&dir).expect("open store");
        let (a, _) = store.create("alice", "user", None).expect("create");
        let (b, _) = store.create("gone", "user", None).expect("create");
        store.revoke("gone").expect("revoke");
        let (c, _) = store
            .create("temp", "user", Some(Duration::from_secs(1)))
            .expect("create");
        let snap = store.snapshot().expect("snapshot");
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
        Fixture {
            snap,
            ids: vec![a.id, b.id, c.id],
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let now = Utc::now();
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let r = f.snap.authenticate(s, now);
    // Random input never matches a 256-bit secret.
    assert!(r.is_err());
    // The same input as the secret part of each known id reaches the hash comparison.
    for id in &f.ids {
        let presented = format!("crl_{id}_{s}");
        match f.snap.authenticate(&presented, now) {
            Ok(_) => panic!("forged key accepted"),
            Err(AuthError::Malformed | AuthError::Unknown) => {}
            Err(e) => panic!("{e:?} disclosed without the secret"),
        }
    }
});
