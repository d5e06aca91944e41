#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use std::io::Write;

fn v4(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn collect(
    inputs: Vec<Input>,
    format: InputFormat,
    ports: Vec<u16>,
    filter: Filter,
) -> Vec<(IpAddr, u16)> {
    TargetStream::new(inputs, format, ports, filter, None)
        .map(|r| r.map(|e| (e.ip, e.port)).unwrap())
        .collect()
}

/// Everything the stream makes of the file at `path` (port 1, no filter), errors included.
fn items_of(path: &std::path::Path, format: InputFormat) -> Vec<Result<Endpoint, TargetError>> {
    TargetStream::new(
        vec![Input::File(path.into())],
        format,
        vec![1],
        Filter::default(),
        None,
    )
    .collect()
}

fn arg(s: &str) -> Input {
    Input::Arg(s.to_string())
}

#[test]
fn single_addresses_cidrs_and_ranges() {
    assert_eq!(parse_spec("10.0.0.0/30").unwrap().address_count(), 4);
    assert_eq!(
        parse_spec("10.0.0.7/24").unwrap(),
        Spec::Range {
            range: IpRange::V4(0x0a00_0000, 0x0a00_00ff),
            port: None,
            scheme: None
        }
    );
    assert_eq!(parse_spec("0.0.0.0/0").unwrap().address_count(), 1 << 32);
    assert_eq!(parse_spec("::1/128").unwrap().address_count(), 1);
    assert_eq!(
        parse_spec("2001:db8::/64").unwrap().address_count(),
        1 << 64
    );
    assert_eq!(parse_spec("::/0").unwrap().address_count(), u128::MAX);
    assert_eq!(
        parse_spec("10.0.0.1-10.0.0.50").unwrap().address_count(),
        50
    );
    assert_eq!(parse_spec("10.0.0.1-50").unwrap().address_count(), 50);
    assert_eq!(parse_spec("::1-::3").unwrap().address_count(), 3);
    assert!(matches!(
        parse_spec("10.0.0.9-10.0.0.1"),
        Err(TargetError::Range(_))
    ));
    assert!(matches!(
        parse_spec("10.0.0.1-::2"),
        Err(TargetError::Range(_))
    ));
    assert!(matches!(
        parse_spec("10.0.0.0/33"),
        Err(TargetError::Prefix(_))
    ));
    assert!(matches!(
        parse_spec("10.0.0.300"),
        Err(TargetError::Invalid(_))
    ));
    assert!(parse_spec("").is_err());
    assert!(parse_spec("bad host!").is_err());
}

#[test]
fn host_port_urls_and_names() {
    assert_eq!(
        parse_spec("127.0.0.2:8080").unwrap(),
        Spec::Range {
            range: IpRange::single(v4("127.0.0.2")),
            port: Some(8080),
            scheme: None
        }
    );
    assert_eq!(
        parse_spec("[::1]:11434").unwrap(),
        Spec::Range {
            range: IpRange::single(v4("::1")),
            port: Some(11434),
            scheme: None
        }
    );
    assert_eq!(
        parse_spec("https://127.0.0.1").unwrap(),
        Spec::Range {
            range: IpRange::single(v4("127.0.0.1")),
            port: Some(443),
            scheme: Some(Scheme::Https)
        }
    );
    // A path prefix (Ollama under /ollama/ behind a proxy) would be probed at the root and
    // found missing without a word: refused instead.
    for url in [
        "http://127.0.0.1:8080/ollama/",
        "http://127.0.0.1:8080/ollama",
        "https://127.0.0.1/path?q",
        "http://127.0.0.1/?x",
        "http://127.0.0.1#f",
    ] {
        let err = parse_spec(url).unwrap_err();
        assert!(matches!(err, TargetError::UrlPath(_)), "{url}: {err:?}");
        assert!(err.to_string().contains("path"), "{err}");
    }
    assert_eq!(
        parse_spec("http://LocalHost:11434/").unwrap(),
        Spec::Name {
            name: "localhost".into(),
            port: Some(11434),
            scheme: Some(Scheme::Http)
        }
    );
    assert_eq!(
        parse_spec("ollama.internal").unwrap(),
        Spec::Name {
            name: "ollama.internal".into(),
            port: None,
            scheme: None
        }
    );
    assert!(matches!(
        parse_spec("127.0.0.1:0"),
        Err(TargetError::Port(_))
    ));
    assert!(matches!(
        parse_spec("127.0.0.1:99999"),
        Err(TargetError::Port(_))
    ));
    assert!(parse_spec("ftp://127.0.0.1").is_err());
}

#[test]
fn names_resolve_to_every_address() {
    let got = collect(
        vec![arg("localhost:11434")],
        InputFormat::List,
        vec![1],
        Filter::default(),
    );
    assert!(got.contains(&(v4("127.0.0.1"), 11434)), "{got:?}");
    assert!(got.iter().all(|(ip, _)| ip.is_loopback()));
    let mut s = TargetStream::new(
        vec![arg("no-such-host.invalid")],
        InputFormat::List,
        vec![1],
        Filter::default(),
        None,
    );
    assert!(matches!(s.next(), Some(Err(TargetError::Resolve(_)))));
}

#[test]
fn ports_parse_and_expand() {
    assert_eq!(
        parse_ports("11434, 8000-8002,11434").unwrap(),
        vec![11434, 8000, 8001, 8002]
    );
    assert!(parse_ports("").is_err());
    assert!(parse_ports("9-3").is_err());
    assert!(parse_ports("0").is_err());
    let got = collect(
        vec![arg("127.0.0.1-2"), arg("127.0.0.9:7")],
        InputFormat::List,
        vec![1, 2],
        Filter::default(),
    );
    assert_eq!(
        got,
        vec![
            (v4("127.0.0.1"), 1),
            (v4("127.0.0.1"), 2),
            (v4("127.0.0.2"), 1),
            (v4("127.0.0.2"), 2),
            (v4("127.0.0.9"), 7)
        ]
    );
    assert_eq!(LLM_PORTS.len(), 16);
    assert_eq!(LLM_PORTS[0], 11434);
}

#[test]
fn exclusions_remove_addresses() {
    let exclude = parse_exclusions(&[
        "127.0.0.2,127.0.0.4-127.0.0.5".into(),
        "127.0.0.8/31".into(),
    ])
    .unwrap();
    let got = collect(
        vec![arg("127.0.0.0/28")],
        InputFormat::List,
        vec![1],
        Filter {
            exclude,
            shard: None,
        },
    );
    let ips: Vec<String> = got.iter().map(|(ip, _)| ip.to_string()).collect();
    assert_eq!(ips.len(), 16 - 5);
    for gone in [
        "127.0.0.2",
        "127.0.0.4",
        "127.0.0.5",
        "127.0.0.8",
        "127.0.0.9",
    ] {
        assert!(!ips.contains(&gone.to_string()));
    }
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(f, "# comment\n127.0.0.0/29 # inline\n").unwrap();
    let exclude = read_exclude_file(f.path()).unwrap();
    let got = collect(
        vec![arg("127.0.0.0/28")],
        InputFormat::List,
        vec![1],
        Filter {
            exclude,
            shard: None,
        },
    );
    assert_eq!(got.len(), 8);
    assert!(parse_exclusions(&["nonsense!".into()]).is_err());
}

#[test]
fn exclusions_cover_ipv4_mapped_ipv6_spellings() {
    // `::ffff:127.0.0.2` reaches the host 127.0.0.2: excluding one spelling excludes both.
    let exclude = parse_exclusions(&["127.0.0.2".into(), "::ffff:127.0.0.8/127".into()]).unwrap();
    let filter = Filter {
        exclude,
        shard: None,
    };
    let got = collect(
        vec![
            arg("::ffff:127.0.0.1-::ffff:127.0.0.3"),
            arg("127.0.0.8"),
            arg("127.0.0.9"),
            arg("127.0.0.10"),
            arg("::2"),
        ],
        InputFormat::List,
        vec![1],
        filter.clone(),
    );
    let ips: Vec<String> = got.iter().map(|(ip, _)| ip.to_string()).collect();
    assert_eq!(
        ips,
        ["::ffff:127.0.0.1", "::ffff:127.0.0.3", "127.0.0.10", "::2"]
    );
    assert!(!filter.admits(v4("::ffff:127.0.0.2"), 1));
    assert!(!filter.admits(v4("127.0.0.9"), 1));
    // Both spellings of one host fall in the same shard.
    for i in 1..=5 {
        let s = Shard::parse(&format!("{i}/5")).unwrap();
        for last in 0..=255u8 {
            let plain = IpAddr::V4(Ipv4Addr::new(127, 0, 3, last));
            let mapped = IpAddr::V6(Ipv4Addr::new(127, 0, 3, last).to_ipv6_mapped());
            assert_eq!(s.owns(plain, 11434), s.owns(mapped, 11434));
        }
    }
}

#[test]
fn shards_partition_deterministically() {
    assert!(Shard::parse("0/3").is_err());
    assert!(Shard::parse("4/3").is_err());
    assert!(Shard::parse("1/0").is_err());
    let all = collect(
        vec![arg("127.0.0.0/24")],
        InputFormat::List,
        vec![1, 2],
        Filter::default(),
    );
    let mut union = Vec::new();
    for i in 1..=3 {
        let f = Filter {
            exclude: vec![],
            shard: Some(Shard::parse(&format!("{i}/3")).unwrap()),
        };
        let part = collect(
            vec![arg("127.0.0.0/24")],
            InputFormat::List,
            vec![1, 2],
            f.clone(),
        );
        assert!(
            part.len() > 100 && part.len() < 250,
            "unbalanced shard {}",
            part.len()
        );
        // Input order does not change membership.
        let reversed = collect(
            vec![arg("127.0.0.128/25"), arg("127.0.0.0/25")],
            InputFormat::List,
            vec![2, 1],
            f,
        );
        let mut a = part.clone();
        let mut b = reversed;
        a.sort();
        b.sort();
        assert_eq!(a, b);
        union.extend(part);
    }
    union.sort();
    let mut all_sorted = all.clone();
    all_sorted.sort();
    assert_eq!(union, all_sorted);
}

#[test]
fn stray_bytes_and_endless_lines_do_not_end_the_input() {
    // A Latin-1 byte in a comment, a non-UTF-8 token, a line far over the limit: each is at
    // most that line's problem; the lines after it are still read.
    let mut text: Vec<u8> = b"#masscan\nopen tcp 11434 127.0.0.1 1\n# caf\xe9\n".to_vec();
    text.extend_from_slice(b"open tcp 11434 127.0.0.\xff 1\n");
    text.extend(std::iter::repeat_n(b'x', MAX_LINE * 3));
    text.extend_from_slice(b"\nopen tcp 11434 127.0.0.2 1\n# end\n");
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(&text).unwrap();
    let items = items_of(f.path(), InputFormat::Masscan);
    assert_eq!(items.len(), 4, "{items:?}");
    assert_eq!(items[0].as_ref().unwrap().ip, v4("127.0.0.1"));
    assert!(matches!(items[1], Err(TargetError::Line { line: 4, .. })));
    match &items[2] {
        Err(TargetError::Line {
            line: 5, reason, ..
        }) => assert!(reason.contains("longer")),
        other => panic!("{other:?}"),
    }
    assert_eq!(items[3].as_ref().unwrap().ip, v4("127.0.0.2"));
    // Counting a file reads it the same way: the stray byte in the comment is no error.
    let ok = file_with_bytes(b"127.0.0.1 # caf\xe9\n127.0.0.2\n");
    assert_eq!(
        TargetStream::count(&[Input::File(ok.path().into())], InputFormat::List).unwrap(),
        2
    );
    let mut long = b"127.0.0.1\n".to_vec();
    long.extend(std::iter::repeat_n(b' ', MAX_LINE + 1));
    long.push(b'\n');
    let long = file_with_bytes(&long);
    assert_eq!(
        TargetStream::count(&[Input::File(long.path().into())], InputFormat::List).unwrap(),
        1
    );
}

/// A UTF-8 byte-order mark opening a target file is skipped, in every input format; one
/// later in the file is a bad line like any other.
#[test]
fn a_byte_order_mark_opening_the_input_is_skipped() {
    let f = file_with_bytes(b"\xEF\xBB\xBF127.0.0.1\n\xEF\xBB\xBF127.0.0.2\n");
    assert_eq!(
        TargetStream::count(&[Input::File(f.path().into())], InputFormat::List).unwrap(),
        1
    );
    let items = items_of(f.path(), InputFormat::List);
    assert_eq!(items[0].as_ref().unwrap().ip, v4("127.0.0.1"));
    assert!(matches!(items[1], Err(TargetError::Line { line: 2, .. })));
    let m = file_with_bytes(b"\xEF\xBB\xBFopen tcp 11434 127.0.0.3 1\n");
    let items = items_of(m.path(), InputFormat::Masscan);
    assert_eq!(items[0].as_ref().unwrap().ip, v4("127.0.0.3"));
    let z = file_with_bytes(b"\xEF\xBB\xBF127.0.0.4\n");
    let items = items_of(z.path(), InputFormat::Zmap);
    assert_eq!(items[0].as_ref().unwrap().ip, v4("127.0.0.4"));
}

fn file_with_bytes(b: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(b).unwrap();
    f
}

#[test]
fn huge_ranges_stream_lazily_and_respect_the_limit() {
    let mut s = TargetStream::new(
        vec![arg("10.0.0.0/8")],
        InputFormat::List,
        vec![11434],
        Filter::default(),
        None,
    );
    let first: Vec<_> = s.by_ref().take(3).map(|r| r.unwrap().ip).collect();
    assert_eq!(first, vec![v4("10.0.0.0"), v4("10.0.0.1"), v4("10.0.0.2")]);
    assert_eq!(
        TargetStream::count(&[arg("10.0.0.0/8")], InputFormat::List).unwrap(),
        1 << 24
    );
    let limited = TargetStream::new(
        vec![arg("127.0.0.0/16"), arg("127.1.0.0")],
        InputFormat::List,
        vec![1],
        Filter::default(),
        Some(CONFIRM_ABOVE),
    );
    let last = limited.last().unwrap();
    assert!(matches!(last, Err(TargetError::TooLarge(_))));
    // A single spec over the limit (a `/8` on stdin, where nothing is counted ahead) is
    // refused before any address of it is produced.
    let f = file_with("127.0.0.1\n10.0.0.0/8\n127.0.0.2\n");
    let items: Vec<_> = TargetStream::new(
        vec![Input::File(f.path().into())],
        InputFormat::List,
        vec![1],
        Filter::default(),
        Some(CONFIRM_ABOVE),
    )
    .take(10)
    .collect();
    assert_eq!(items.len(), 2, "{:?}", &items[..items.len().min(3)]);
    assert_eq!(items[0].as_ref().unwrap().ip, v4("127.0.0.1"));
    assert!(matches!(items[1], Err(TargetError::TooLarge(16_777_216))));
    // The very end of the address space terminates.
    let end = collect(
        vec![arg("255.255.255.254/31")],
        InputFormat::List,
        vec![1],
        Filter::default(),
    );
    assert_eq!(end.len(), 2);
    let end6 = collect(
        vec![arg("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127")],
        InputFormat::List,
        vec![1],
        Filter::default(),
    );
    assert_eq!(end6.len(), 2);
}

fn file_with(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[test]
fn list_files_with_comments_and_errors() {
    let f = file_with(
        "# hosts\n127.0.0.1, 127.0.0.2:99\n\n127.0.0.3-4 # trailing\nhttp://[::1]:8080/\n",
    );
    let got = collect(
        vec![Input::File(f.path().into())],
        InputFormat::List,
        vec![5],
        Filter::default(),
    );
    assert_eq!(
        got,
        vec![
            (v4("127.0.0.1"), 5),
            (v4("127.0.0.2"), 99),
            (v4("127.0.0.3"), 5),
            (v4("127.0.0.4"), 5),
            (v4("::1"), 8080)
        ]
    );
    assert_eq!(
        TargetStream::count(&[Input::File(f.path().into())], InputFormat::List).unwrap(),
        5
    );
    // A bad line is not counted; the stream reports it (a warning) and goes on.
    let bad = file_with("127.0.0.1\nnot valid!\n127.0.0.2\n");
    assert_eq!(
        TargetStream::count(&[Input::File(bad.path().into())], InputFormat::List).unwrap(),
        2
    );
    let items = items_of(bad.path(), InputFormat::List);
    assert!(matches!(items[1], Err(TargetError::Line { line: 2, .. })));
    assert_eq!(items[2].as_ref().unwrap().ip, v4("127.0.0.2"));
    let mut s = TargetStream::new(
        vec![Input::File("/nonexistent/x".into())],
        InputFormat::List,
        vec![1],
        Filter::default(),
        None,
    );
    assert!(matches!(s.next(), Some(Err(TargetError::Read { .. }))));
}

fn discovery(format: InputFormat, text: &str) -> Vec<(IpAddr, u16)> {
    let f = file_with(text);
    collect(
        vec![Input::File(f.path().into())],
        format,
        vec![11434],
        Filter::default(),
    )
}

#[test]
fn masscan_list_output() {
    let got = discovery(
        InputFormat::Masscan,
        "#masscan\nopen tcp 11434 127.0.0.5 1699123456\nopen tcp 8000 ::1 1699123457\n# end\n",
    );
    assert_eq!(got, vec![(v4("127.0.0.5"), 11434), (v4("::1"), 8000)]);
}

#[test]
fn masscan_json_output_with_trailing_commas() {
    let got = discovery(
        InputFormat::Masscan,
        "[\n{   \"ip\": \"127.0.0.6\",   \"timestamp\": \"1699123456\", \"ports\": [ {\"port\": 11434, \"proto\": \"tcp\", \"status\": \"open\", \"reason\": \"syn-ack\", \"ttl\": 64} ] },\n{   \"ip\": \"127.0.0.7\",   \"timestamp\": \"1699123456\", \"ports\": [ {\"port\": 1234, \"proto\": \"tcp\", \"status\": \"closed\"}, {\"port\": 4000, \"proto\": \"tcp\", \"status\": \"open\"} ] },\n]\n",
    );
    assert_eq!(got, vec![(v4("127.0.0.6"), 11434), (v4("127.0.0.7"), 4000)]);
}

#[test]
fn masscan_json_output_with_leading_commas() {
    // masscan 1.3: `,` on its own line before every record after the first.
    let got = discovery(
        InputFormat::Masscan,
        "[\n{   \"ip\": \"127.0.0.6\",   \"timestamp\": \"1699123456\", \"ports\": [ {\"port\": 11434, \"proto\": \"tcp\", \"status\": \"open\", \"reason\": \"syn-ack\", \"ttl\": 64} ] }\n,\n{   \"ip\": \"127.0.0.7\",   \"timestamp\": \"1699123456\", \"ports\": [ {\"port\": 4000, \"proto\": \"tcp\", \"status\": \"open\", \"reason\": \"syn-ack\", \"ttl\": 64} ] }\n,{\"ip\": \"127.0.0.8\", \"ports\": [ {\"port\": 1234, \"status\": \"open\"} ] }\n]\n",
    );
    assert_eq!(
        got,
        vec![
            (v4("127.0.0.6"), 11434),
            (v4("127.0.0.7"), 4000),
            (v4("127.0.0.8"), 1234)
        ]
    );
}

#[test]
fn masscan_ndjson_output() {
    let got = discovery(
        InputFormat::Masscan,
        "{\"ip\":\"127.0.0.8\",\"timestamp\":\"1\",\"port\":11434,\"proto\":\"tcp\",\"rec_type\":\"status\",\"data\":{\"status\":\"open\",\"reason\":\"syn-ack\",\"ttl\":64}}\n{\"ip\":\"127.0.0.9\",\"timestamp\":\"1\",\"port\":80,\"proto\":\"tcp\",\"rec_type\":\"banner\"}\n",
    );
    assert_eq!(got, vec![(v4("127.0.0.8"), 11434)]);
}

#[test]
fn masscan_grepable_output() {
    let got = discovery(
        InputFormat::Masscan,
        "# Masscan 1.3.2 scan initiated\nTimestamp: 1699123456\tHost: 127.0.0.10 ()\tPorts: 11434/open/tcp////\nTimestamp: 1699123456\tHost: 127.0.0.11 ()\tPorts: 22/closed/tcp////\n# Masscan done\n",
    );
    assert_eq!(got, vec![(v4("127.0.0.10"), 11434)]);
}

/// masscan's UDP and SCTP results (`-pU:53`, `-pS:...`) are not probed as TCP ports, in any of
/// its output shapes; TCP results around them are.
#[test]
fn masscan_udp_and_sctp_results_are_not_taken_for_tcp_ports() {
    let list = discovery(
        InputFormat::Masscan,
        "#masscan\nopen udp 53 127.0.0.12 1\nopen sctp 2905 127.0.0.12 1\nopen tcp 11434 127.0.0.12 1\nopen TCP 8080 127.0.0.12 1\n# end\n",
    );
    assert_eq!(
        list,
        vec![(v4("127.0.0.12"), 11434), (v4("127.0.0.12"), 8080)]
    );
    let grepable = discovery(
        InputFormat::Masscan,
        "Timestamp: 1\tHost: 127.0.0.13 ()\tPorts: 53/open/udp////\nTimestamp: 1\tHost: 127.0.0.13 ()\tPorts: 11434/open/tcp////\n",
    );
    assert_eq!(grepable, vec![(v4("127.0.0.13"), 11434)]);
    let json = discovery(
        InputFormat::Masscan,
        "[\n{\"ip\": \"127.0.0.14\", \"ports\": [ {\"port\": 53, \"proto\": \"udp\", \"status\": \"open\"}, {\"port\": 11434, \"proto\": \"tcp\", \"status\": \"open\"} ] },\n{\"ip\":\"127.0.0.15\",\"port\":161,\"proto\":\"udp\",\"rec_type\":\"status\",\"data\":{\"status\":\"open\"}}\n]\n",
    );
    assert_eq!(json, vec![(v4("127.0.0.14"), 11434)]);
}

#[test]
fn masscan_garbage_is_an_error_per_line() {
    let f = file_with("open tcp 11434 127.0.0.5 1\nwhat is this\nopen tcp 70000 127.0.0.5 1\n");
    let items = items_of(f.path(), InputFormat::Masscan);
    assert_eq!(items.len(), 3);
    assert!(items[0].is_ok());
    assert!(matches!(items[1], Err(TargetError::Line { line: 2, .. })));
    assert!(matches!(items[2], Err(TargetError::Line { line: 3, .. })));
}

#[test]
fn zmap_plain_and_csv() {
    assert_eq!(
        discovery(InputFormat::Zmap, "127.0.0.12\n127.0.0.13\n"),
        vec![(v4("127.0.0.12"), 11434), (v4("127.0.0.13"), 11434)]
    );
    let got = discovery(InputFormat::Zmap, "saddr,sport,daddr,classification,success\n127.0.0.14,8000,10.0.0.1,synack,1\n127.0.0.15,8000,10.0.0.1,rst,0\n");
    assert_eq!(got, vec![(v4("127.0.0.14"), 8000)]);
    let got = discovery(InputFormat::Zmap, "daddr,saddr\n1.1.1.1,127.0.0.16\n");
    assert_eq!(got, vec![(v4("127.0.0.16"), 11434)]);
}
