#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;
use crate::event::Schema;

#[test]
fn saddr_families() {
    assert_eq!(
        decode_saddr("02002CAA000000000000000000000000"),
        Some(SockAddr {
            ip: "0.0.0.0".into(),
            port: 11434
        })
    );
    assert_eq!(
        decode_saddr("02002CAACB007107"),
        Some(SockAddr {
            ip: "203.0.113.7".into(),
            port: 11434
        })
    );
    let v6 = "0A002CAA00000000000000000000000000000000000000010000000000";
    assert_eq!(
        decode_saddr(v6).unwrap(),
        SockAddr {
            ip: "::1".into(),
            port: 11434
        }
    );
    let mapped = "0A00C35000000000".to_string() + "00000000000000000000FFFFCB007107" + "00000000";
    assert_eq!(
        decode_saddr(&mapped).unwrap(),
        SockAddr {
            ip: "203.0.113.7".into(),
            port: 50000
        }
    );
    assert_eq!(decode_saddr("01002F746D70"), None, "AF_UNIX has no address");
    assert_eq!(decode_saddr("0200"), None);
    assert_eq!(decode_saddr("zz"), None);
}

#[test]
fn records_and_pairs() {
    let r = parse_record(r#"node=h type=SYSCALL msg=audit(1768039200.123:42): arch=c000003e syscall=49 success=yes comm="ollama" exe="/usr/bin/ollama" key="a b""#).unwrap();
    assert_eq!(r.kind, "SYSCALL");
    assert_eq!(r.serial, 42);
    assert_eq!(r.stamp, "1768039200.123");
    assert_eq!(get(&r.pairs, "comm"), Some("ollama"));
    assert_eq!(get(&r.pairs, "key"), Some("a b"));
    assert!(parse_record("garbage").is_err());
    assert!(parse_record("type=SYSCALL msg=audit(12:x): a=1").is_err());
    assert!(parse_record("type=SYSCALL msg=audit(12:1 a=1").is_err());
}

fn group(lines: &[&str]) -> Group {
    let first = parse_record(lines[0]).unwrap();
    let mut g = Group::new(1, 0, first.stamp);
    for l in lines {
        g.add(&parse_record(l).unwrap(), l);
    }
    g
}

#[test]
fn bind_and_execve_with_parent() {
    let s = Schema::new();
    let mut pids = PidTable::default();
    let bind = group(&[
        r#"type=SYSCALL msg=audit(1768039200.000:10): arch=c000003e syscall=49 success=yes exit=0 a0=3 ppid=1 pid=900 uid=998 comm="ollama" exe="/usr/local/bin/ollama""#,
        "type=SOCKADDR msg=audit(1768039200.000:10): saddr=02002CAA000000000000000000000000",
    ]);
    let mut ev = Event::new(&s);
    assert!(to_event(&bind, &mut pids, &mut ev));
    assert_eq!(ev.str(EVENT_ACTION), Some("bound-socket"));
    assert_eq!(ev.str(SOURCE_IP), Some("0.0.0.0"));
    assert_eq!(ev.get(SOURCE_PORT), Some(&Val::Num(11434.0)));
    assert_eq!(ev.str(PROCESS_NAME), Some("ollama"));

    let exec = group(&[
        r#"type=SYSCALL msg=audit(1768039201.000:11): arch=c000003e syscall=59 success=yes exit=0 ppid=900 pid=901 uid=998 comm="bash" exe="/usr/bin/bash""#,
        r#"type=EXECVE msg=audit(1768039201.000:11): argc=3 a0="bash" a1="-c" a2=6964203B20756E616D65202D61"#,
    ]);
    let mut ev = Event::new(&s);
    assert!(to_event(&exec, &mut pids, &mut ev));
    assert_eq!(ev.str(PARENT_NAME), Some("ollama"));
    assert_eq!(ev.str(PROCESS_COMMAND_LINE), Some("bash -c id ; uname -a"));
    assert_eq!(ev.str(EVENT_TYPE), Some("start"));

    let no_syscall = group(&["type=USER_LOGIN msg=audit(1768039202.000:12): pid=1 uid=0"]);
    assert!(!to_event(&no_syscall, &mut pids, &mut Event::new(&s)));
}

#[test]
fn aarch64_numbers() {
    assert_eq!(syscall(Some("c00000b7"), "200"), Call::Bind);
    assert_eq!(syscall(Some("c000003e"), "200"), Call::Other);
    assert_eq!(syscall(Some("c000003e"), "288"), Call::Accept);
    assert_eq!(syscall(None, "connect"), Call::Connect);
}

#[test]
fn hex_encoded_comm_and_exe_are_decoded() {
    // auditd writes comm and exe as bare hex when they hold a space, a quote or a
    // non-ASCII byte; quoted values are text even when they look like hex.
    let s = Schema::new();
    let mut pids = PidTable::default();
    let bind = group(&[
        r#"type=SYSCALL msg=audit(1768039200.000:10): arch=c000003e syscall=49 success=yes exit=0 a0=3 ppid=1 pid=900 uid=998 comm=6F6C6C616D612073657276 exe=2F6F70742F4F6C6C616D61204170702F6F6C6C616D61 key=(null)"#,
        "type=SOCKADDR msg=audit(1768039200.000:10): saddr=02002CAAC0A801050000000000000000",
    ]);
    let mut ev = Event::new(&s);
    assert!(to_event(&bind, &mut pids, &mut ev));
    assert_eq!(ev.str(PROCESS_NAME), Some("ollama serv"));
    assert_eq!(ev.str(PROCESS_EXECUTABLE), Some("/opt/Ollama App/ollama"));

    let exec = group(&[
        r#"type=SYSCALL msg=audit(1768039201.000:11): arch=c000003e syscall=59 success=yes exit=0 ppid=900 pid=901 uid=998 comm="cafe" exe="/usr/bin/cafe""#,
        r#"type=EXECVE msg=audit(1768039201.000:11): argc=1 a0="cafe""#,
    ]);
    let mut ev = Event::new(&s);
    assert!(to_event(&exec, &mut pids, &mut ev));
    assert_eq!(
        ev.str(PROCESS_NAME),
        Some("cafe"),
        "a quoted value is not hex"
    );
    assert_eq!(ev.str(PARENT_NAME), Some("ollama serv"));
    assert_eq!(ev.str(PARENT_EXECUTABLE), Some("/opt/Ollama App/ollama"));
}
