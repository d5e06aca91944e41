use super::*;

use UpstreamAddrError as E;

fn parse(s: &str) -> UpstreamAddr {
    UpstreamAddr::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

/// Every form `server.upstream` and `--upstream` accept, and what each means.
#[test]
fn accepted_forms() {
    for (text, host, port, shown) in [
        // URLs: http:// and a port, port 80 without one, one trailing slash.
        (
            "http://127.0.0.1:11434",
            "127.0.0.1",
            11434,
            "http://127.0.0.1:11434",
        ),
        (
            "http://127.0.0.1:11434/",
            "127.0.0.1",
            11434,
            "http://127.0.0.1:11434",
        ),
        ("http://ollama", "ollama", 80, "http://ollama:80"),
        ("http://localhost/", "localhost", 80, "http://localhost:80"),
        (
            "http://Ollama.LAN:8080",
            "ollama.lan",
            8080,
            "http://ollama.lan:8080",
        ),
        (
            "http://ollama.lan.:1",
            "ollama.lan",
            1,
            "http://ollama.lan:1",
        ),
        ("http://x:65535", "x", 65535, "http://x:65535"),
        // A Docker container name.
        ("ollama_1:11434", "ollama_1", 11434, "http://ollama_1:11434"),
        ("http://x:080", "x", 80, "http://x:80"),
        // As OLLAMA_HOST is written: host:port, or a bare host on Ollama's port.
        (
            "127.0.0.1:11434",
            "127.0.0.1",
            11434,
            "http://127.0.0.1:11434",
        ),
        ("10.0.0.2:9000", "10.0.0.2", 9000, "http://10.0.0.2:9000"),
        ("localhost", "localhost", 11434, "http://localhost:11434"),
        ("localhost/", "localhost", 11434, "http://localhost:11434"),
        (
            "ollama-1.internal",
            "ollama-1.internal",
            11434,
            "http://ollama-1.internal:11434",
        ),
        // IPv6 in brackets, written in its usual form.
        ("http://[::1]:11434", "::1", 11434, "http://[::1]:11434"),
        ("http://[::1]", "::1", 80, "http://[::1]:80"),
        ("[::1]:11434", "::1", 11434, "http://[::1]:11434"),
        ("[::1]", "::1", 11434, "http://[::1]:11434"),
        ("[0:0::1]:5", "::1", 5, "http://[::1]:5"),
        ("[FE80::1]:5", "fe80::1", 5, "http://[fe80::1]:5"),
        (
            "[::ffff:127.0.0.1]:11434",
            "::ffff:127.0.0.1",
            11434,
            "http://[::ffff:127.0.0.1]:11434",
        ),
        // Spaces around the text are not part of it.
        (
            " localhost:11434 ",
            "localhost",
            11434,
            "http://localhost:11434",
        ),
        ("\thttp://x:1\n", "x", 1, "http://x:1"),
    ] {
        let u = parse(text);
        assert_eq!((u.host(), u.port()), (host, port), "{text:?}");
        assert_eq!(u.to_string(), shown, "{text:?}");
        // What is shown reads back as the same address.
        assert_eq!(parse(&u.to_string()), u, "{text:?}");
    }
}

/// Every form refused, and why.
#[test]
fn refused_forms() {
    let cases: &[(&str, E)] = &[
        // Nothing, or spaces inside.
        ("", E::Empty),
        ("   ", E::Empty),
        ("http://local host", E::Whitespace),
        ("http://x :1", E::Whitespace),
        ("http://x\u{0}", E::Whitespace),
        ("http://x:1\r\nHost: y", E::Whitespace),
        // Schemes: http only, written in lower case.
        ("https://127.0.0.1:11434", E::Https),
        ("https://x:1", E::Https),
        ("ftp://127.0.0.1", E::Scheme("ftp".into())),
        ("HTTP://x", E::Scheme("HTTP".into())),
        ("unix:///run/ollama.sock", E::Scheme("unix".into())),
        ("ws://x:1", E::Scheme("ws".into())),
        ("://x", E::Scheme(String::new())),
        // No credentials are sent upstream.
        ("http://user:pass@host", E::Credentials),
        ("http://user@host:1", E::Credentials),
        ("http://u:p@127.0.0.1:11434", E::Credentials),
        ("u:p@host", E::Credentials),
        ("http://@x", E::Credentials),
        // The gate chooses every path; queries and fragments mean nothing upstream.
        ("http://127.0.0.1:11434/api", E::Path),
        ("http://x/ollama/", E::Path),
        ("http://x//", E::Path),
        ("127.0.0.1:11434/api", E::Path),
        ("http://127.0.0.1:11434/?x=1", E::QueryOrFragment),
        ("http://x?q", E::QueryOrFragment),
        ("http://x#f", E::QueryOrFragment),
        ("http://x:1/#f", E::QueryOrFragment),
        // Hosts.
        ("http://", E::MissingHost),
        ("http:///", E::MissingHost),
        ("http://:11434", E::MissingHost),
        (":11434", E::MissingHost),
        ("http://a!b", E::Host("a!b".into())),
        ("http://-x", E::Host("-x".into())),
        ("http://x-", E::Host("x-".into())),
        ("http://a..b", E::Host("a..b".into())),
        ("http://.", E::Host(".".into())),
        ("http://%6c%6fcalhost", E::Host("%6c%6fcalhost".into())),
        ("http://ollamä", E::Host("ollamä".into())),
        ("http://127.1", E::Ipv4("127.1".into())),
        ("http://256.0.0.1", E::Ipv4("256.0.0.1".into())),
        ("http://::1", E::Ipv6Brackets),
        ("::1", E::Ipv6Brackets),
        ("http://[zz]:1", E::Ipv6("zz".into())),
        ("http://[]:1", E::Ipv6(String::new())),
        ("http://[127.0.0.1]", E::Ipv6("127.0.0.1".into())),
        ("[fe80::1%eth0]:11434", E::Ipv6("fe80::1%eth0".into())),
        ("http://[::1", E::Ipv6("[::1".into())),
        // Ports: 1 to 65535, digits only.
        ("http://x:0", E::Port("0".into())),
        ("host:0", E::Port("0".into())),
        ("http://x:65536", E::Port("65536".into())),
        ("http://x:99999", E::Port("99999".into())),
        ("http://x:", E::Port(String::new())),
        ("http://x:+80", E::Port("+80".into())),
        ("http://x:-1", E::Port("-1".into())),
        ("http://x:eighty", E::Port("eighty".into())),
        ("[::1]:0", E::Port("0".into())),
        ("[::1]:65536", E::Port("65536".into())),
        ("[::1]11434", E::Port("11434".into())),
    ];
    for (text, want) in cases {
        assert_eq!(UpstreamAddr::parse(text).as_ref(), Err(want), "{text:?}");
    }
}

#[test]
fn messages_say_what_is_expected() {
    let msg = |s: &str| UpstreamAddr::parse(s).unwrap_err().to_string();
    assert!(msg("ftp://x").contains("the scheme must be http"));
    assert!(msg("ftp://x").contains("must start with http://"));
    assert!(msg("https://x:1").contains("https upstreams are not supported"));
    assert!(msg("http://u:p@x").contains("credentials"));
    assert!(msg("http://x/api").contains("path"));
    assert!(msg("http://x:0").contains("port"));
    assert!(msg("http://x:99999").contains("port"));
    assert!(msg("http://").contains("missing host"));
    assert!(msg("http://::1").contains("invalid"));
    assert!(msg("http://a!b").contains("invalid host"));
}

#[test]
fn the_default_is_ollamas_own_address() {
    assert_eq!(UpstreamAddr::default(), parse("http://127.0.0.1:11434"));
    assert_eq!(UpstreamAddr::default(), parse("127.0.0.1"));
}

#[test]
fn a_fully_qualified_name_loses_its_final_dot() {
    // The Host header Ollama checks on a loopback listener allows `localhost`, not `localhost.`.
    let up = parse("localhost.:11434");
    assert_eq!(up.host(), "localhost");
    assert_eq!(up.authority(), "localhost:11434");
    assert!(up.is_loopback());
    assert_eq!(
        parse("http://Ollama.LAN.:8080").authority(),
        "ollama.lan:8080"
    );
    // A dot alone is no host.
    assert!(UpstreamAddr::parse("http://.:1").is_err());
}

#[test]
fn loopback() {
    for up in [
        "http://localhost",
        "http://[::1]:11434",
        "127.0.0.1:11434",
        "127.9.9.9",
        "[::ffff:127.0.0.1]:11434",
        "localhost.",
    ] {
        assert!(parse(up).is_loopback(), "{up}");
    }
    for up in [
        "http://10.1.2.3:11434",
        "ollama.internal",
        "[::2]:1",
        "0.0.0.0",
    ] {
        assert!(!parse(up).is_loopback(), "{up}");
    }
}

#[test]
fn authority_is_the_host_header() {
    assert_eq!(parse("http://localhost").authority(), "localhost:80");
    assert_eq!(parse("[::1]").authority(), "[::1]:11434");
    assert_eq!(parse("ollama").authority(), "ollama:11434");
    assert_eq!(parse("[::1]").ip(), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    assert_eq!(parse("ollama").ip(), None);
}

// The gate's own reader of `--upstream` was replaced by this one; its tests follow.

#[test]
fn parses_ollama_forms() {
    let u = parse("http://127.0.0.1:11434");
    assert_eq!(u.to_string(), "http://127.0.0.1:11434");
    assert_eq!(u.port(), 11434);
    assert_eq!(u.host(), "127.0.0.1");
    assert_eq!(parse("http://127.0.0.1:11434/").port(), 11434);
    assert_eq!(parse("localhost").to_string(), "http://localhost:11434");
    assert_eq!(parse("10.0.0.2:9000").port(), 9000);
    assert_eq!(parse("http://ollama").port(), 80);
    let v6 = parse("http://[::1]:11434");
    assert_eq!(v6.host(), "::1");
    assert_eq!(v6.authority(), "[::1]:11434");
}

#[test]
fn refuses_paths_queries_userinfo_and_other_schemes() {
    for bad in [
        "http://127.0.0.1:11434/api",
        "http://127.0.0.1:11434/?x=1",
        "http://user:pw@127.0.0.1:11434",
        "ftp://127.0.0.1",
        "https://127.0.0.1:11434",
        "",
        "http://",
    ] {
        assert!(UpstreamAddr::parse(bad).is_err(), "{bad}");
    }
    let https = UpstreamAddr::parse("https://x:1").unwrap_err().to_string();
    assert!(
        https.contains("https upstreams are not supported"),
        "{https}"
    );
}

#[test]
fn host_and_port_for_connecting() {
    let u = parse("127.0.0.1:5");
    assert_eq!((u.host(), u.port()), ("127.0.0.1", 5));
    let v6 = parse("http://[::1]:11434");
    assert_eq!((v6.host(), v6.port()), ("::1", 11434));
}
