#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Against this machine's real /proc: a socket the test opens itself must be found as a
//! wildcard bind of this process.

use corral_check::procnet::Reach;
use corral_check::{run, CheckOptions, Severity};
use std::net::TcpListener;

fn check(port: u16) -> corral_check::Report {
    let models = tempfile::tempdir().unwrap();
    run(&CheckOptions {
        root: "/".into(),
        port,
        models_dirs: vec![models.path().to_path_buf()],
        progress: false,
        // Our own listener would be probed and never answer.
        probe_live_version: false,
        ..CheckOptions::default()
    })
    .unwrap()
}

#[test]
fn finds_own_wildcard_listener_in_live_proc() {
    let l = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let me = std::process::id();
    let r = check(port);

    let s = r
        .sockets
        .iter()
        .find(|s| s.port == port && s.local.starts_with("0.0.0.0:"))
        .unwrap_or_else(|| panic!("port {port} not found in {:#?}", r.sockets));
    assert_eq!(s.reach, Reach::Wildcard);
    assert_eq!(s.table, "/proc/net/tcp");
    assert!(
        s.pids.contains(&me),
        "socket owners {:?}, this process {me}",
        s.pids
    );

    let f = r
        .findings
        .iter()
        .find(|f| f.id == "socket.exposed" && f.title.contains(&format!("0.0.0.0:{port}")))
        .unwrap_or_else(|| panic!("no finding for port {port}: {:#?}", r.findings));
    assert!(f.title.contains(&format!("({me})")), "{}", f.title);
    assert!(f.severity >= Severity::High);
    assert_eq!(r.exit_code(Severity::High), 1);
    drop(l);

    // Once closed, the same port is no longer reported.
    let r = check(port);
    assert!(!r
        .findings
        .iter()
        .any(|f| f.id == "socket.exposed" && f.title.contains(&format!(":{port} "))));
}

#[test]
fn loopback_listener_in_live_proc_is_not_a_finding() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let r = check(port);
    let s = r
        .sockets
        .iter()
        .find(|s| s.port == port)
        .expect("own loopback socket listed");
    assert_eq!(s.reach, Reach::Loopback);
    assert!(s.pids.contains(&std::process::id()));
    assert!(!r
        .findings
        .iter()
        .any(|f| f.id == "socket.exposed" && f.title.contains(&format!(":{port} "))));
    drop(l);
}

#[test]
fn live_version_probe_feeds_the_cve_check() {
    use std::io::{Read, Write};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        // One request: the version probe.
        let (mut c, _) = l.accept().unwrap();
        let mut buf = [0u8; 2048];
        let n = c.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"GET /api/version HTTP/1.1\r\n"));
        c.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n{\"version\":\"0.1.33\"}")
            .unwrap();
    });
    let models = tempfile::tempdir().unwrap();
    let r = run(&CheckOptions {
        root: "/".into(),
        port,
        models_dirs: vec![models.path().to_path_buf()],
        progress: false,
        probe_live_version: true,
        ..CheckOptions::default()
    })
    .unwrap();
    server.join().unwrap();
    let v = r.version.as_ref().expect("version probed");
    assert_eq!(v.version, "0.1.33");
    assert_eq!(v.source, format!("http://127.0.0.1:{port}/api/version"));
    let cves: Vec<&str> = r
        .findings
        .iter()
        .filter(|f| f.id == "version.cve")
        .map(|f| f.title.as_str())
        .collect();
    assert!(
        cves.iter().any(|t| t.contains("CVE-2024-37032")),
        "{cves:?}"
    );
    assert!(
        !cves.iter().any(|t| t.contains("CVE-2024-28224")),
        "0.1.33 has the 0.1.29 fix"
    );
}
