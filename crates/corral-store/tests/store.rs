#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use corral_store::{
    AuthError, FileState, KeyState, KeyStore, Secret, StoreError, DB_FILE, ID_LEN, KEY_LEN,
    KEY_PREFIX, MIN_LIFETIME,
};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn create_list_revoke_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let (alice, alice_secret) = store.create("alice", "user", None).unwrap();
    let (bob, _) = store
        .create("bob", "admin", Some(Duration::from_secs(3600)))
        .unwrap();
    assert_eq!(alice.name, "alice");
    assert_eq!(alice.policy, "user");
    assert_eq!(alice.prefix, format!("crl_{}", alice.id));
    assert_eq!(alice_secret.expose().len(), KEY_LEN);
    assert!(alice_secret.expose().starts_with(&alice.prefix));
    assert!(bob.expires_at.is_some());

    let list = store.list().unwrap();
    assert_eq!(list, vec![alice.clone(), bob.clone()]);

    let revoked = store.revoke("alice").unwrap();
    assert_eq!(revoked.id, alice.id);
    assert!(revoked.revoked_at.is_some());
    let err = store.revoke("alice").unwrap_err();
    assert!(matches!(err, StoreError::AlreadyRevoked { .. }), "{err}");
    assert!(
        err.to_string().starts_with(&format!(
            "key \"alice\" ({}) was already revoked at ",
            alice.prefix
        )),
        "{err}"
    );
    let err = store.revoke("nobody").unwrap_err();
    assert_eq!(err.to_string(), "no active key named or with id \"nobody\"");

    // The name is free again once revoked.
    let (alice2, _) = store.create("alice", "user", None).unwrap();
    assert_ne!(alice2.id, alice.id);

    let (bob2, bob2_secret) = store.rotate("bob").unwrap();
    assert_ne!(bob2.id, bob.id);
    assert_eq!(bob2.name, "bob");
    assert_eq!(bob2.policy, "admin");
    assert_eq!(bob2.expires_at, bob.expires_at);
    assert!(bob2_secret.expose().starts_with(&bob2.prefix));

    let list = store.list().unwrap();
    assert_eq!(list.len(), 4, "old rows are kept for the record");
    let old_bob = list.iter().find(|k| k.id == bob.id).unwrap();
    assert!(old_bob.revoked_at.is_some());
    let active: Vec<_> = list.iter().filter(|k| k.revoked_at.is_none()).collect();
    assert_eq!(active.len(), 2);

    // Revoke and rotate by id and by the printed prefix.
    store.revoke(&bob2.id).unwrap();
    let (a3, _) = store.rotate(&alice2.prefix).unwrap();
    assert_eq!(a3.name, "alice");
    assert!(matches!(
        store.rotate("nobody").unwrap_err(),
        StoreError::NotFound(_)
    ));
}

#[test]
fn duplicate_and_invalid_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    store.create("alice", "user", None).unwrap();
    let err = store.create("alice", "admin", None).unwrap_err();
    assert_eq!(err.to_string(), "key \"alice\" already exists");
    for bad in ["", "a b", "../x", "x;DROP TABLE keys", &"n".repeat(65), "ä"] {
        assert!(
            matches!(
                store.create(bad, "user", None),
                Err(StoreError::InvalidName(_))
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        store.create("carol", "us er", None),
        Err(StoreError::InvalidPolicy(_))
    ));
    assert!(matches!(
        store.create("carol", "user", Some(Duration::MAX)),
        Err(StoreError::InvalidExpiry)
    ));
    assert_eq!(store.list().unwrap().len(), 1);
}

/// An expiry past year 9999 has no RFC 3339 form (`keys list --json` would print
/// `+102025-...`, which JSON consumers reject as a date): refused, as an overflow is.
#[test]
fn expiry_beyond_year_9999_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let year = Duration::from_secs(365 * 24 * 3600);
    assert!(matches!(
        store.create("far", "user", Some(year * 100_000)),
        Err(StoreError::InvalidExpiry)
    ));
    assert!(store.list().unwrap().is_empty());
    let (info, _) = store.create("near", "user", Some(year * 900)).unwrap();
    let shown = info.expires_at.unwrap().to_rfc3339();
    assert!(
        chrono::DateTime::parse_from_rfc3339(&shown).is_ok(),
        "{shown}"
    );
}

#[test]
fn file_modes() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data").join("corral");
    let store = KeyStore::open(&dir).unwrap();
    store.create("alice", "user", None).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&parent.path().join("data")), 0o700);
    assert_eq!(mode(&dir.join(DB_FILE)), 0o600);
    for side in ["keys.db-wal", "keys.db-shm"] {
        // SQLite gives the WAL side files the database file's mode.
        assert_eq!(mode(&dir.join(side)), 0o600, "{side}");
    }
    drop(store);

    // An existing database that is too open is tightened.
    std::fs::set_permissions(dir.join(DB_FILE), std::fs::Permissions::from_mode(0o644)).unwrap();
    let _store = KeyStore::open(&dir).unwrap();
    assert_eq!(mode(&dir.join(DB_FILE)), 0o600);
}

/// `keys.db` that names something other than a regular file (a FIFO here; a symlink to a
/// device such as `/dev/null` alike) is refused before it is opened: it used to be opened
/// read-write and chmod-ed to 0600, and SQLite then put its journal beside the target.
#[test]
fn a_store_file_that_is_not_a_regular_file_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("elsewhere.fifo");
    let made = std::process::Command::new("mkfifo")
        .args(["-m", "644"])
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::os::unix::fs::symlink(&fifo, data.join(DB_FILE)).unwrap();
    let err = KeyStore::open(&data).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    assert_eq!(mode(&fifo), 0o644, "the target's mode is left alone");
    let mut left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["data", "elsewhere.fifo"],
        "no journal beside the target"
    );
}

#[test]
fn secret_never_reaches_the_database_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let mut secrets = Vec::new();
    for i in 0..5 {
        let (_, s) = store.create(&format!("k{i}"), "user", None).unwrap();
        secrets.push(s);
    }
    let (_, rotated) = store.rotate("k0").unwrap();
    secrets.push(rotated);
    drop(store);
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        all.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(all.len() > 1000);
    for s in &secrets {
        let full = s.expose();
        let secret_part = &full[full.len() - 43..];
        // The id is stored; neither the secret nor any 16-char piece of it may be.
        assert!(find(&all, full.as_bytes()).is_none());
        for w in secret_part.as_bytes().windows(16) {
            assert!(find(&all, w).is_none(), "secret fragment found on disk");
        }
        assert!(find(&all, s.id().as_bytes()).is_some(), "ids are stored");
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn authenticate_success_and_every_failure() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let (alice, alice_key) = store.create("alice", "user", None).unwrap();
    let (_, temp_key) = store
        .create("temp", "user", Some(Duration::from_secs(60)))
        .unwrap();
    let (_, gone_key) = store.create("gone", "user", None).unwrap();
    store.revoke("gone").unwrap();
    let snap = store.snapshot().unwrap();
    let now = Utc::now();

    let entry = snap.authenticate(alice_key.expose(), now).unwrap();
    assert_eq!(entry.id, alice.id);
    assert_eq!(entry.name, "alice");
    assert_eq!(entry.policy, "user");
    assert_eq!(entry.expires_at, None);

    // Expiry: valid before, refused at and after.
    let t = snap.authenticate(temp_key.expose(), now).unwrap();
    let exp = t.expires_at.unwrap();
    assert!(snap
        .authenticate(temp_key.expose(), exp - chrono::Duration::milliseconds(1))
        .is_ok());
    assert_eq!(
        snap.authenticate(temp_key.expose(), exp),
        Err(AuthError::Expired)
    );

    assert_eq!(
        snap.authenticate(gone_key.expose(), now),
        Err(AuthError::Revoked)
    );

    // Right id, wrong secret: unknown (revocation and expiry are not disclosed either).
    let k = alice_key.expose();
    let flipped_last = if k.ends_with('A') { 'B' } else { 'A' };
    let wrong = format!("{}{}", &k[..k.len() - 1], flipped_last);
    assert_eq!(snap.authenticate(&wrong, now), Err(AuthError::Unknown));
    let g = gone_key.expose();
    let wrong_gone = format!(
        "{}{}",
        &g[..g.len() - 1],
        if g.ends_with('A') { 'B' } else { 'A' }
    );
    assert_eq!(snap.authenticate(&wrong_gone, now), Err(AuthError::Unknown));
    // Unknown id.
    let other = format!("crl_{}_{}", "Z".repeat(12), &k[k.len() - 43..]);
    assert_eq!(snap.authenticate(&other, now), Err(AuthError::Unknown));

    for bad in [
        "",
        "Bearer",
        &k[..k.len() - 1],
        &format!("{k}="),
        &k.replace("crl_", "crk_"),
        &format!(" {k}"),
        "crl_\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        assert_eq!(snap.authenticate(bad, now), Err(AuthError::Malformed), "{bad:?}");
    }
    for e in [
        AuthError::Malformed,
        AuthError::Unknown,
        AuthError::Revoked,
        AuthError::Expired,
    ] {
        assert!(!e.to_string().contains("crl_"));
    }
    assert_eq!(snap.active_len(), 2);
}

#[test]
fn rotation_invalidates_the_old_secret() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let (_, old) = store.create("svc", "user", None).unwrap();
    let (info, new) = store.rotate("svc").unwrap();
    let snap = store.snapshot().unwrap();
    let now = Utc::now();
    assert_eq!(
        snap.authenticate(old.expose(), now),
        Err(AuthError::Revoked)
    );
    assert_eq!(snap.authenticate(new.expose(), now).unwrap().id, info.id);
}

#[test]
fn usable_means_present_unrevoked_and_unexpired() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let (kept, _) = store.create("kept", "user", None).unwrap();
    let (gone, _) = store.create("gone", "user", None).unwrap();
    let (rotated, _) = store.create("rotated", "user", None).unwrap();
    let (short, _) = store
        .create("short", "user", Some(Duration::from_secs(60)))
        .unwrap();
    store.revoke("gone").unwrap();
    let (successor, _) = store.rotate("rotated").unwrap();
    let snap = store.snapshot().unwrap();
    let now = Utc::now();
    assert!(snap.is_usable(&kept.id, now));
    assert!(!snap.is_usable(&gone.id, now), "revoked");
    assert!(!snap.is_usable(&rotated.id, now), "rotated away");
    assert!(snap.is_usable(&successor.id, now));
    let exp = short.expires_at.unwrap();
    assert!(snap.is_usable(&short.id, exp - chrono::Duration::milliseconds(1)));
    assert!(!snap.is_usable(&short.id, exp), "expired");
    assert!(!snap.is_usable("ZZZZZZZZZZZZ", now), "not in the store");
}

#[test]
fn expired_rotation_keeps_the_expiry_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let (a, _) = store
        .create("short", "user", Some(Duration::from_secs(1)))
        .unwrap();
    let (b, key) = store.rotate("short").unwrap();
    assert_eq!(a.expires_at, b.expires_at);
    let later = Utc::now() + chrono::Duration::seconds(5);
    assert!(!b.is_active(later));
    let snap = store.snapshot().unwrap();
    assert_eq!(
        snap.authenticate(key.expose(), later),
        Err(AuthError::Expired)
    );
}

#[test]
fn data_version_changes_when_another_store_commits() {
    let dir = tempfile::tempdir().unwrap();
    let gate = KeyStore::open(dir.path()).unwrap();
    let cli = KeyStore::open(dir.path()).unwrap();
    let v0 = gate.data_version().unwrap();
    assert_eq!(gate.data_version().unwrap(), v0, "stable without writes");

    let (_, key) = cli.create("alice", "user", None).unwrap();
    let v1 = gate.data_version().unwrap();
    assert_ne!(v1, v0, "create by another connection");
    let snap = gate.snapshot().unwrap();
    assert!(snap.authenticate(key.expose(), Utc::now()).is_ok());

    cli.revoke("alice").unwrap();
    let v2 = gate.data_version().unwrap();
    assert_ne!(v2, v1, "revoke by another connection");
    let snap = gate.snapshot().unwrap();
    assert_eq!(
        snap.authenticate(key.expose(), Utc::now()),
        Err(AuthError::Revoked)
    );

    // The gate's own last-used bookkeeping does not make it reload itself.
    let (k2, _) = cli.create("bob", "user", None).unwrap();
    let v3 = gate.data_version().unwrap();
    gate.record_last_used(&[(k2.id.clone(), Utc::now())])
        .unwrap();
    assert_eq!(gate.data_version().unwrap(), v3);
    assert_ne!(cli.data_version().unwrap(), 0);
}

#[test]
fn record_last_used_is_batched_and_monotonic() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let (a, _) = store.create("a", "user", None).unwrap();
    let (b, _) = store.create("b", "user", None).unwrap();
    let t1 = Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap();
    let t0 = Utc.with_ymd_and_hms(2029, 1, 1, 0, 0, 0).unwrap();
    store
        .record_last_used(&[
            (a.id.clone(), t1),
            (b.id.clone(), t0),
            ("nonexistent".into(), t1),
        ])
        .unwrap();
    store.record_last_used(&[(a.id.clone(), t0)]).unwrap();
    store.record_last_used(&[]).unwrap();
    let list = store.list().unwrap();
    assert_eq!(list[0].last_used_at, Some(t1), "never moves back");
    assert_eq!(list[1].last_used_at, Some(t0));
}

#[test]
fn concurrent_stores_do_not_lose_writes_or_duplicate_names() {
    let dir = tempfile::tempdir().unwrap();
    KeyStore::open(dir.path()).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let path = dir.path().to_path_buf();
            std::thread::spawn(move || {
                let store = KeyStore::open(&path).unwrap();
                let mut dup_errors = 0;
                for i in 0..10 {
                    store.create(&format!("t{t}-k{i}"), "user", None).unwrap();
                    match store.create("shared", "user", None) {
                        Ok(_) => {}
                        Err(StoreError::DuplicateName(_)) => dup_errors += 1,
                        Err(e) => panic!("{e}"),
                    }
                    store
                        .record_last_used(&[(format!("x{i}"), Utc::now())])
                        .unwrap();
                }
                dup_errors
            })
        })
        .collect();
    let dups: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let store = KeyStore::open(dir.path()).unwrap();
    let list = store.list().unwrap();
    assert_eq!(list.len(), 41);
    assert_eq!(dups, 39, "exactly one \"shared\" wins");
    assert_eq!(store.snapshot().unwrap().active_len(), 41);
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(KeyStore::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = KeyStore::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
}

/// A keys.db of another program (tables, no corral schema version) is refused and left as
/// it was, as the audit log refuses a file that is not an audit log.
#[test]
fn another_programs_database_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('x');")
        .unwrap();
    drop(conn);
    let before = std::fs::read(&path).unwrap();
    let err = KeyStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::ForeignDatabase { .. }), "{err}");
    assert!(err.to_string().contains("another program"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the file was changed"
    );
    assert!(!dir.path().join("keys.db-wal").exists());
    // An empty file (or a database with nothing in it) is a new store.
    let fresh = tempfile::tempdir().unwrap();
    std::fs::write(fresh.path().join(DB_FILE), b"").unwrap();
    let store = KeyStore::open(fresh.path()).unwrap();
    store.create("alice", "user", None).unwrap();
    drop(store);
    assert_eq!(
        KeyStore::open(fresh.path()).unwrap().list().unwrap().len(),
        1
    );
}

#[test]
fn secret_debug_is_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let (info, secret) = store.create("alice", "user", None).unwrap();
    let dbg = format!("{secret:?} {info:?} {store:?}");
    assert!(!dbg.contains(&secret.expose()[18..]), "{dbg}");
}

#[test]
fn lifetimes_under_one_second_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    for short in [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_millis(999),
    ] {
        let err = store.create("dead", "user", Some(short)).unwrap_err();
        assert!(
            matches!(err, StoreError::ExpiryTooShort),
            "{short:?}: {err}"
        );
    }
    assert!(store.list().unwrap().is_empty(), "nothing was created");
    for ok in [MIN_LIFETIME, Duration::from_secs(2)] {
        let name = format!("k{}", ok.as_secs());
        let (info, _) = store.create(&name, "user", Some(ok)).unwrap();
        assert_eq!(info.state(Utc::now()), KeyState::Active);
    }
}

#[test]
fn expired_keys_are_listed_as_expired_hold_their_name_and_cannot_be_rotated() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let (ci, _) = store.create("ci", "user", Some(MIN_LIFETIME)).unwrap();
    assert_eq!(ci.state(Utc::now()), KeyState::Active);
    std::thread::sleep(Duration::from_millis(1100));

    let listed = store.list().unwrap();
    assert_eq!(listed[0].state(Utc::now()), KeyState::Expired);
    assert!(!listed[0].is_active(Utc::now()));

    let err = store.rotate("ci").unwrap_err();
    assert!(matches!(err, StoreError::Expired { .. }), "{err}");
    assert!(err.to_string().contains("revoke it"), "{err}");
    assert_eq!(store.list().unwrap().len(), 1, "rotation changed nothing");

    let err = store.create("ci", "user", None).unwrap_err();
    assert!(matches!(err, StoreError::DuplicateExpired { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("already exists") && text.contains("expired"),
        "{text}"
    );
    assert!(text.contains("revoke it to free the name"), "{text}");

    // Revoking frees the name, as the message says.
    let revoked = store.revoke("ci").unwrap();
    assert_eq!(revoked.state(Utc::now()), KeyState::Revoked);
    store.create("ci", "user", None).unwrap();
}

#[test]
fn names_that_read_as_key_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let (victim, _) = store.create("victim", "user", None).unwrap();
    for bad in [victim.prefix.as_str(), "crl_x", "CRL_abc"] {
        let err = store.create(bad, "user", None).unwrap_err();
        assert!(matches!(err, StoreError::ReservedName(_)), "{bad}: {err}");
    }
    assert_eq!(store.list().unwrap().len(), 1);
}

#[test]
fn an_argument_naming_one_key_and_the_id_of_another_is_ambiguous() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let (victim, _) = store.create("victim", "user", None).unwrap();
    // A 12-character name may equal another key's id.
    let (shadow, _) = store.create(&victim.id, "user", None).unwrap();
    // A store written before `crl_` names were refused may hold one.
    let raw = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    raw.execute(
        "INSERT INTO keys (id, name, policy, secret_sha256, created_at) \
         VALUES ('AAAAAAAAAAAA', ?1, 'user', zeroblob(32), 0)",
        [&victim.prefix],
    )
    .unwrap();
    drop(raw);

    for arg in [victim.id.as_str(), victim.prefix.as_str()] {
        for err in [
            store.revoke(arg).unwrap_err(),
            store.rotate(arg).map(|_| ()).unwrap_err(),
        ] {
            assert!(matches!(err, StoreError::Ambiguous { .. }), "{arg}: {err}");
            let text = err.to_string();
            assert!(text.contains("ambiguous"), "{text}");
        }
    }
    assert!(
        store.list().unwrap().iter().all(|k| k.revoked_at.is_none()),
        "nothing revoked"
    );
    // Unambiguous forms still work: the shadow's own prefix, and a name that is nobody's id.
    assert_eq!(store.revoke(&shadow.prefix).unwrap().id, shadow.id);
    // Now `victim.id` names no key: it is the victim's id alone.
    assert_eq!(store.revoke(&victim.id).unwrap().id, victim.id);
}

#[test]
fn pending_changes_are_invisible_until_committed_and_dropped_ones_roll_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let other = KeyStore::open(dir.path()).unwrap();

    let pending = store.begin_create("svc", "user", None).unwrap();
    assert_eq!(pending.info().name, "svc");
    assert!(pending
        .secret()
        .expose()
        .starts_with(&pending.info().prefix));
    assert!(
        other.list().unwrap().is_empty(),
        "not visible before commit"
    );
    drop(pending);
    assert!(store.list().unwrap().is_empty(), "rolled back");

    let (svc, secret) = store
        .begin_create("svc", "user", None)
        .unwrap()
        .commit()
        .unwrap();
    assert_eq!(other.list().unwrap(), vec![svc.clone()]);

    // A rotation that is not committed leaves the old key working.
    let pending = store.begin_rotate("svc").unwrap();
    let lost = pending.secret().clone();
    drop(pending);
    let snap = other.snapshot().unwrap();
    assert_eq!(
        snap.authenticate(secret.expose(), Utc::now()).unwrap().id,
        svc.id
    );
    assert_eq!(
        snap.authenticate(lost.expose(), Utc::now()),
        Err(AuthError::Unknown)
    );
    assert_eq!(other.list().unwrap().len(), 1);

    let (rotated, new) = store.begin_rotate("svc").unwrap().commit().unwrap();
    let snap = other.snapshot().unwrap();
    assert_eq!(
        snap.authenticate(new.expose(), Utc::now()).unwrap().id,
        rotated.id
    );
    assert_eq!(
        snap.authenticate(secret.expose(), Utc::now()),
        Err(AuthError::Revoked)
    );
}

#[test]
fn file_state_follows_the_path_and_reopen_takes_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    store.create("old", "user", None).unwrap();
    assert_eq!(store.file_state().unwrap(), FileState::Same);

    let db = dir.path().join(DB_FILE);
    let aside = dir.path().join("aside.db");
    std::fs::rename(&db, &aside).unwrap();
    assert_eq!(store.file_state().unwrap(), FileState::Missing);
    let err = store.reopen().unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err}");
    assert!(!db.exists(), "reopen never creates the file");
    std::fs::rename(&aside, &db).unwrap();
    assert_eq!(store.file_state().unwrap(), FileState::Same);

    let fresh = tempfile::tempdir().unwrap();
    {
        let other = KeyStore::open(fresh.path()).unwrap();
        other.create("new", "user", None).unwrap();
    }
    std::fs::rename(fresh.path().join(DB_FILE), &db).unwrap();
    for side in ["keys.db-wal", "keys.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(side));
    }
    assert_eq!(store.file_state().unwrap(), FileState::Replaced);
    let names =
        |s: &KeyStore| -> Vec<String> { s.list().unwrap().into_iter().map(|k| k.name).collect() };
    assert_eq!(names(&store), ["old"], "SQLite keeps reading the old file");
    store.reopen().unwrap();
    assert_eq!(store.file_state().unwrap(), FileState::Same);
    assert_eq!(names(&store), ["new"]);
    assert_eq!(mode(&db), 0o600);
}

#[test]
fn dropping_a_store_whose_file_was_replaced_keeps_the_new_files() {
    let dir = tempfile::tempdir().unwrap();
    let old = KeyStore::open(dir.path()).unwrap();
    old.create("old", "user", None).unwrap();
    // The store is cleared while `old` is still open...
    for f in [DB_FILE, "keys.db-wal", "keys.db-shm"] {
        std::fs::remove_file(dir.path().join(f)).unwrap();
    }
    // ...and a new one made, whose latest commit is still in its WAL file.
    let new = KeyStore::open(dir.path()).unwrap();
    new.create("new", "user", None).unwrap();
    assert!(dir.path().join("keys.db-wal").exists());
    // Closing the last connection to a database deletes `keys.db-wal` and `keys.db-shm` by
    // name, here the new store's; SQLite skips that for a moved or deleted file, and the gate,
    // which closes its old store when it reopens a replaced one, relies on it.
    drop(old);
    assert!(dir.path().join("keys.db-wal").exists());
    let third = KeyStore::open(dir.path()).unwrap();
    let names: Vec<String> = third.list().unwrap().into_iter().map(|k| k.name).collect();
    assert_eq!(names, ["new"]);
}

#[test]
fn error_messages_escape_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let hostile = "x\u{1b}[2J\rFAKE\u{7}";
    let errors = [
        store.revoke(hostile).unwrap_err(),
        store.rotate(hostile).map(|_| ()).unwrap_err(),
        store.create(hostile, "user", None).map(|_| ()).unwrap_err(),
        store.create("a", hostile, None).map(|_| ()).unwrap_err(),
    ];
    for err in errors {
        let text = err.to_string();
        assert!(
            !text.chars().any(char::is_control),
            "control character in {text:?}"
        );
        assert!(text.contains(r"\u{1b}[2J\rFAKE\u{7}"), "{text}");
    }
}

#[test]
fn sqlite_errors_are_reported_once() {
    let sqlite = rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
        Some("disk I/O error".to_owned()),
    );
    let err = StoreError::from(sqlite);
    assert_eq!(err.to_string(), "key database: disk I/O error");
    // Nothing below it for a report to print again.
    assert!(std::error::Error::source(&err).is_none());
}

#[test]
fn a_full_key_names_its_key_and_errors_never_echo_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let (leaked, secret) = store.create("leaked", "user", None).unwrap();
    let (_, other_secret) = store.create("other", "user", None).unwrap();
    let secret_part = |s: &Secret| s.expose()[KEY_PREFIX.len() + ID_LEN + 1..].to_owned();

    // The leaked key itself, pasted as it is, is enough to rotate and then revoke it.
    let (rotated, new_secret) = store.rotate(secret.expose()).unwrap();
    assert_eq!(rotated.name, "leaked");
    assert_ne!(rotated.id, leaked.id);
    assert_eq!(
        store.revoke(new_secret.expose()).unwrap().id,
        rotated.id,
        "revoked by its full key"
    );

    // A key that names nothing active (the one just revoked) is refused, and no message
    // repeats its secret; nor does one for a key pasted as a name.
    let errors = [
        store.revoke(new_secret.expose()).unwrap_err(),
        store.rotate(secret.expose()).map(|_| ()).unwrap_err(),
        store
            .create(other_secret.expose(), "user", None)
            .map(|_| ())
            .unwrap_err(),
        store
            .create("ok", &format!("{} ", other_secret.expose()), None)
            .map(|_| ())
            .unwrap_err(),
        store
            .revoke(&format!("Bearer {}", other_secret.expose()))
            .unwrap_err(),
    ];
    for err in errors {
        let text = err.to_string();
        for s in [&secret, &new_secret, &other_secret] {
            assert!(!text.contains(&secret_part(s)), "secret echoed: {text}");
        }
        assert!(text.contains("_<redacted>"), "{text}");
    }
    let active: Vec<String> = store
        .list()
        .unwrap()
        .into_iter()
        .filter(|k| k.revoked_at.is_none())
        .map(|k| k.name)
        .collect();
    assert_eq!(active, ["other"]);
}

#[test]
fn a_huge_argument_is_not_repeated_in_full() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let huge = "é".repeat(10_000);
    for err in [
        store.create(&huge, "user", None).map(|_| ()).unwrap_err(),
        store.revoke(&huge).unwrap_err(),
    ] {
        let text = err.to_string();
        assert!(text.len() < 400, "{} bytes: {text}", text.len());
        assert!(text.contains("éé…"), "{text}");
    }
}

#[test]
fn a_write_lock_held_too_long_is_explained_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let writer = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    let err = store.create("late", "user", None).map(|_| ()).unwrap_err();
    assert!(matches!(err, StoreError::Busy), "{err}");
    let text = err.to_string();
    assert!(text.contains("another process kept it locked"), "{text}");
    assert!(text.contains("try again"), "{text}");
    writer.execute_batch("ROLLBACK").unwrap();
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn opening_and_listing_do_not_wait_for_another_process_s_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    KeyStore::open(dir.path())
        .unwrap()
        .create("alice", "user", None)
        .unwrap();
    // Another process in the middle of a write (say, `corral keys create` writing its secret).
    let writer = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();

    let started = std::time::Instant::now();
    let store = KeyStore::open(dir.path()).unwrap();
    let names: Vec<String> = store.list().unwrap().into_iter().map(|k| k.name).collect();
    assert_eq!(names, ["alice"]);
    assert!(store.snapshot().is_ok());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited {:?} for a lock a reader does not need",
        started.elapsed()
    );
    writer.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn acting_on_a_revoked_key_says_it_was_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let (first, _) = store.create("ci", "user", None).unwrap();
    let (second, _) = store.rotate("ci").unwrap();
    let revoked = store.revoke("ci").unwrap();
    assert_eq!(revoked.id, second.id);
    for arg in ["ci", first.prefix.as_str(), second.id.as_str()] {
        for err in [
            store.revoke(arg).unwrap_err(),
            store.rotate(arg).map(|_| ()).unwrap_err(),
        ] {
            let text = err.to_string();
            assert!(
                matches!(err, StoreError::AlreadyRevoked { .. }),
                "{arg}: {text}"
            );
            assert!(text.contains("already revoked"), "{text}");
        }
    }
    // The name names the most recently revoked key.
    let text = store.revoke("ci").unwrap_err().to_string();
    assert!(text.contains(&second.prefix), "{text}");
    assert!(matches!(
        store.revoke("nobody").unwrap_err(),
        StoreError::NotFound(_)
    ));
}
