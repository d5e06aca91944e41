//! The key store file replaced or deleted under a running gate: the gate follows the file the
//! path names (restored backups, fresh stores moved in) and refuses every key while there is none.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use corral_store::{KeyStore, DB_FILE};

/// Polls `/api/tags` with each (bearer secret, expected status) until all match, for at most
/// 1.5 s (the promise is one second; the rest is slack for a loaded machine).
async fn until_statuses(h: &Harness, want: &[(&str, u16)], what: &str) {
    let deadline = Instant::now() + Duration::from_millis(1500);
    loop {
        let mut got = Vec::new();
        for (secret, _) in want {
            let auth = format!("Bearer {secret}");
            got.push(h.get("/api/tags", Some(&auth)).await.status);
        }
        if want.iter().zip(&got).all(|((_, w), g)| w == g) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: statuses {got:?}, wanted {:?}",
            want.iter().map(|(_, w)| w).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Removes the database and its WAL side files, as an operator clearing a store would.
fn remove_store_files(data_dir: &Path) {
    for f in [DB_FILE, "keys.db-wal", "keys.db-shm"] {
        match std::fs::remove_file(data_dir.join(f)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("remove {f}: {e}"),
        }
    }
}

#[tokio::test]
async fn a_store_moved_over_keys_db_replaces_the_keys() {
    let mut h = Harness::start().await;
    let alice = h.key("alice").to_owned();
    until_statuses(&h, &[(&alice, 200)], "before").await;

    // A fresh store with one key, built elsewhere and moved over the live one.
    let fresh = tempfile::tempdir().unwrap();
    let new = {
        let other = KeyStore::open(fresh.path()).unwrap();
        let (_, s) = other.create("new", "user", None).unwrap();
        s.expose().to_owned()
    };
    std::fs::rename(fresh.path().join(DB_FILE), h.data_dir.join(DB_FILE)).unwrap();
    for side in ["keys.db-wal", "keys.db-shm"] {
        let _ = std::fs::remove_file(h.data_dir.join(side));
    }
    until_statuses(&h, &[(&alice, 401), (&new, 200)], "after the move").await;

    // Changes to the new file reach the gate like any other change.
    let cli = KeyStore::open(&h.data_dir).unwrap();
    cli.revoke("new").unwrap();
    let (_, late) = cli.create("late", "user", None).unwrap();
    until_statuses(
        &h,
        &[(&new, 401), (late.expose(), 200)],
        "revoke and create in the new file",
    )
    .await;
    drop(cli);
    h.stop().await;
}

#[tokio::test]
async fn a_deleted_store_refuses_every_key_until_a_new_one_appears() {
    let mut h = Harness::start().await;
    let alice = h.key("alice").to_owned();
    let root = h.key("root").to_owned();
    until_statuses(&h, &[(&alice, 200)], "before").await;

    remove_store_files(&h.data_dir);
    until_statuses(&h, &[(&alice, 401), (&root, 401)], "store deleted").await;
    // Stays closed, not just for one look.
    tokio::time::sleep(Duration::from_millis(600)).await;
    until_statuses(&h, &[(&alice, 401), (&root, 401)], "still deleted").await;

    // `corral keys create` on the empty data directory makes a new store.
    let cli = KeyStore::open(&h.data_dir).unwrap();
    let (_, fresh) = cli.create("alice", "user", None).unwrap();
    until_statuses(
        &h,
        &[(fresh.expose(), 200), (&alice, 401), (&root, 401)],
        "new store",
    )
    .await;
    drop(cli);
    h.stop().await;
}

#[tokio::test]
async fn a_store_moved_away_and_back_is_followed() {
    let mut h = Harness::start().await;
    let alice = h.key("alice").to_owned();
    let db = h.data_dir.join(DB_FILE);
    let aside = h.dir.path().join("aside.db");
    std::fs::rename(&db, &aside).unwrap();
    until_statuses(&h, &[(&alice, 401)], "moved away").await;
    std::fs::rename(&aside, &db).unwrap();
    until_statuses(&h, &[(&alice, 200)], "moved back").await;
    h.stop().await;
}
