//! The entry points the binary calls: exit codes, output files, rule files and lint.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use clap::Parser;
use corral_hunt::{hunt_main, rules_main, HuntArgs, RulesCommand};

#[derive(Parser)]
enum Cli {
    Hunt(HuntArgs),
    #[command(subcommand)]
    Rules(RulesCommand),
}

fn hunt(args: &[&str]) -> i32 {
    let mut full = vec!["corral", "hunt"];
    full.extend_from_slice(args);
    match Cli::try_parse_from(full).unwrap() {
        Cli::Hunt(a) => hunt_main(a),
        Cli::Rules(_) => unreachable!(),
    }
}

/// `corral hunt INPUT --format ndjson -o OUT`: the exit status.
fn hunt_ndjson(input: &str, out: &std::path::Path) -> i32 {
    hunt(&[input, "--format", "ndjson", "-o", out.to_str().unwrap()])
}

fn rules(args: &[&str]) -> i32 {
    let mut full = vec!["corral", "rules"];
    full.extend_from_slice(args);
    match Cli::try_parse_from(full).unwrap() {
        Cli::Rules(c) => rules_main(c),
        Cli::Hunt(_) => unreachable!(),
    }
}

fn corpus(name: &str) -> String {
    format!("tests/corpus/{name}")
}

#[test]
fn exit_codes_and_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("alerts.ndjson");
    let out_s = out.to_str().unwrap();
    assert_eq!(hunt_ndjson(&corpus("zeek_conn.log"), &out), 1);
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 3);

    let clean = dir.path().join("clean.ndjson");
    std::fs::write(
        &clean,
        "{\"event\":{\"action\":\"connection_accepted\"},\"source\":{\"ip\":\"10.0.0.1\"}}\n",
    )
    .unwrap();
    assert_eq!(hunt(&[clean.to_str().unwrap(), "-o", out_s]), 0);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "");

    assert_eq!(hunt(&["tests/corpus/nope.log", "-o", out_s]), 2);
    assert_eq!(
        hunt(&[
            &corpus("zeek_conn.log"),
            "-o",
            dir.path().join("no/such/dir/x").to_str().unwrap()
        ]),
        2
    );
}

#[test]
fn options_reach_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.ndjson");
    let out_s = out.to_str().unwrap();
    let vol = corpus("ollama_volume.log");
    let windowed = |code: i32| {
        assert_eq!(code, 1);
        std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .filter(|l| l.contains("\"window\""))
            .count()
    };
    assert_eq!(windowed(hunt(&[&vol, "-o", out_s])), 1);
    assert_eq!(
        windowed(hunt(&[&vol, "-o", out_s, "--volume-threshold", "200"])),
        0
    );
    assert_eq!(
        windowed(hunt(&[
            &vol,
            "-o",
            out_s,
            "--volume-threshold",
            "100",
            "--volume-window",
            "10m"
        ])),
        2
    );
    assert!(Cli::try_parse_from(["corral", "hunt", &vol, "--volume-window", "5 minutes"]).is_err());

    let ecs = corpus("ecs_endpoint.ndjson");
    let dns = |extra: &[&str]| {
        let mut a = vec![ecs.as_str(), "-o", out_s];
        a.extend_from_slice(extra);
        hunt(&a);
        std::fs::read_to_string(&out)
            .unwrap()
            .matches("Outside the Allowed List")
            .count()
    };
    assert_eq!(dns(&[]), 1);
    assert_eq!(dns(&["--allow-domain", "evil.example"]), 0);
}

#[test]
fn own_rules_replace_or_join_the_builtins() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("mine.yml");
    std::fs::write(
        &rule,
        "title: Any Zeek connection to 443\nid: mine-1\nlevel: low\ndetection:\n  sel:\n    destination.port: 443\n  condition: sel\n",
    )
    .unwrap();
    let out = dir.path().join("a.ndjson");
    let out_s = out.to_str().unwrap();
    assert_eq!(
        hunt(&[
            &corpus("zeek_conn.log"),
            "--rules",
            rule.to_str().unwrap(),
            "-o",
            out_s
        ]),
        1
    );
    let ids: Vec<String> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["rule"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, vec!["mine-1"]);
    assert_eq!(
        hunt(&[
            &corpus("zeek_conn.log"),
            "--rules",
            rule.to_str().unwrap(),
            "--builtin",
            "-o",
            out_s
        ]),
        1
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 4);

    std::fs::write(
        &rule,
        "title: x\nid: mine-1\ndetection:\n  sel:\n    a|nope: 1\n  condition: sel\n",
    )
    .unwrap();
    assert_eq!(
        hunt(&[
            &corpus("zeek_conn.log"),
            "--rules",
            rule.to_str().unwrap(),
            "-o",
            out_s
        ]),
        2
    );
}

#[test]
fn a_rules_path_that_holds_no_rule_is_an_error() {
    // Hunting with no rule at all would report "0 alerts" and exit 0: a clean bill of health
    // for a typo'd directory or rules saved as .txt.
    let dir = tempfile::tempdir().unwrap();
    let empty_file = dir.path().join("empty.yml");
    std::fs::write(&empty_file, "").unwrap();
    let comments = dir.path().join("comments.yml");
    std::fs::write(&comments, "# nothing here yet\n").unwrap();
    let empty_dir = dir.path().join("none");
    std::fs::create_dir(&empty_dir).unwrap();
    let txt_dir = dir.path().join("txt");
    std::fs::create_dir(&txt_dir).unwrap();
    std::fs::write(
        txt_dir.join("mine.txt"),
        "title: x\nid: mine-1\ndetection:\n  sel:\n    destination.port: 443\n  condition: sel\n",
    )
    .unwrap();
    let out = dir.path().join("a.ndjson");
    for p in [&empty_file, &comments, &empty_dir, &txt_dir] {
        let code = hunt(&[
            &corpus("zeek_conn.log"),
            "--rules",
            p.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{}", p.display());
        // Also with --builtin: the path named still held nothing.
        let code = hunt(&[
            &corpus("zeek_conn.log"),
            "--rules",
            p.to_str().unwrap(),
            "--builtin",
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{} with --builtin", p.display());
    }
}

#[test]
fn rules_lint_export_list() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    std::fs::write(
        &good,
        "title: t\nid: g\ndetection:\n  sel:\n    a: 1\n  condition: sel\n",
    )
    .unwrap();
    assert_eq!(rules(&["lint", good.to_str().unwrap()]), 0);
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "title: t\nid: g\ndetection:\n  sel:\n    a|bogus: 1\n  condition: sel\n",
    )
    .unwrap();
    assert_eq!(rules(&["lint", dir.path().to_str().unwrap()]), 1);
    assert_eq!(rules(&["lint", "tests/corpus/absent-dir"]), 2);
    assert_eq!(rules(&["lint", "src/rules"]), 0);
    // Nothing to lint: an empty directory, or rules saved under another extension.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_eq!(rules(&["lint", empty.to_str().unwrap()]), 2);
    let txt = dir.path().join("txt");
    std::fs::create_dir(&txt).unwrap();
    std::fs::write(txt.join("rule.txt"), "title: t\n").unwrap();
    assert_eq!(rules(&["lint", txt.to_str().unwrap()]), 2);

    for fmt in ["sigma", "eql", "kql", "spl"] {
        let out = dir.path().join(fmt);
        assert_eq!(
            rules(&["export", "--format", fmt, "-o", out.to_str().unwrap()]),
            0
        );
        let n = std::fs::read_dir(&out).unwrap().count();
        // KQL cannot tell the Windows variant's case-insensitive match from its exact-case
        // filter: that rule is skipped with a message.
        let skipped = usize::from(fmt == "kql");
        assert_eq!(n, corral_hunt::builtin::RULES.len() - skipped, "{fmt}");
    }
    let eql = std::fs::read_to_string(dir.path().join("eql/elastic_external_access.eql")).unwrap();
    assert!(
        eql.contains("\nnetwork where ") && eql.contains("event.action == \"connection_accepted\""),
        "{eql}"
    );
    assert_eq!(rules(&["list"]), 0);
}

#[test]
fn every_input_format_can_be_forced() {
    use clap::ValueEnum;
    for v in corral_hunt::InputFormat::value_variants() {
        let name = v.to_possible_value().unwrap().get_name().to_string();
        let args = Cli::try_parse_from(["corral", "hunt", "x", "--input-format", &name]);
        assert!(args.is_ok(), "{name}");
    }
    let _ = PathBuf::new();
}

/// NDJSON alerts are written as they are found; the bytes must be those of the collected run
/// (every corpus file at once, so windowed alerts and several files are in it).
#[test]
fn streamed_ndjson_equals_the_collected_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("streamed.ndjson");
    let mut files: Vec<PathBuf> = std::fs::read_dir("tests/corpus")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let names: Vec<&str> = files.iter().map(|p| p.to_str().unwrap()).collect();
    let mut args = names.clone();
    args.extend(["--format", "ndjson", "-o", out.to_str().unwrap()]);
    assert_eq!(hunt(&args), 1);
    let streamed = std::fs::read_to_string(&out).unwrap();

    let engine = corral_hunt::Engine::new(corral_hunt::builtin::rules().unwrap()).unwrap();
    let run = corral_hunt::hunt_paths(&engine, &files, corral_hunt::InputFormat::Auto, 2, false);
    let mut collected = Vec::new();
    corral_hunt::output::write(
        corral_hunt::OutputFormat::Ndjson,
        &engine,
        &run.files,
        &run.alerts,
        &mut collected,
    )
    .unwrap();
    assert!(run.alerts.len() > 10, "{}", run.alerts.len());
    assert_eq!(streamed, String::from_utf8(collected).unwrap());
}

/// Alert lines of an NDJSON output, without the file name they carry.
fn alert_rules(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!(
                "{} {} {} {}",
                v["rule"]["id"],
                v["log"]["offset"],
                v["corral"]["hunt"]["line"],
                v["corral"]["hunt"]["event"]
            )
        })
        .collect()
}

#[test]
fn a_truncated_gzip_still_yields_what_was_written_before_the_cut() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let one = std::fs::read(corpus("ecs_endpoint.ndjson")).unwrap();
    // Small (cut inside the first 64 KiB) and large (cut after several 1 MiB chunks).
    for copies in [1usize, 700] {
        let plain: Vec<u8> = one.repeat(copies);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let cut = &gz[..gz.len() * 2 / 3];
        let truncated = dir.path().join(format!("cut{copies}.ndjson.gz"));
        std::fs::write(&truncated, cut).unwrap();
        // What a decompressor gets out of the cut file before it fails.
        let mut prefix = Vec::new();
        let mut d = flate2::read::MultiGzDecoder::new(cut);
        let mut buf = [0u8; 4096];
        loop {
            match d.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => prefix.extend_from_slice(&buf[..n]),
            }
        }
        assert!(prefix.len() > one.len() / 2, "{copies}: {}", prefix.len());
        let readable = dir.path().join(format!("prefix{copies}.ndjson"));
        std::fs::write(&readable, &prefix).unwrap();

        let want = dir.path().join("want.ndjson");
        let got = dir.path().join("got.ndjson");
        hunt_ndjson(readable.to_str().unwrap(), &want);
        // The cut is an error (exit 2), but the alerts before it are all there.
        assert_eq!(hunt_ndjson(truncated.to_str().unwrap(), &got), 2);
        let (want, got) = (alert_rules(&want), alert_rules(&got));
        assert!(!want.is_empty());
        assert_eq!(got.len(), want.len(), "{copies} copies");
        assert_eq!(got, want);
    }
}

#[test]
fn a_utf8_byte_order_mark_is_not_part_of_the_first_record() {
    // PowerShell 5 and Notepad start UTF-8 files with EF BB BF.
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "ecs_endpoint.ndjson",
        "zeek_conn.log",
        "ollama_journal.log",
        "audit.log",
        "sysmon_evtx_dump.json",
    ] {
        let plain = std::fs::read(corpus(name)).unwrap();
        let mut bom = b"\xef\xbb\xbf".to_vec();
        bom.extend_from_slice(&plain);
        let with_bom = dir.path().join(format!("bom-{name}"));
        std::fs::write(&with_bom, &bom).unwrap();
        let want = dir.path().join("want.ndjson");
        let got = dir.path().join("got.ndjson");
        let code = hunt_ndjson(&corpus(name), &want);
        assert_eq!(
            hunt_ndjson(with_bom.to_str().unwrap(), &got),
            code,
            "{name}"
        );
        let parse = |p: &std::path::Path| -> Vec<serde_json::Value> {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        };
        let (want, got) = (parse(&want), parse(&got));
        assert!(!want.is_empty(), "{name}");
        assert_eq!(got.len(), want.len(), "{name}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g["rule"]["id"], w["rule"]["id"], "{name}");
            assert_eq!(
                g["corral"]["hunt"]["line"], w["corral"]["hunt"]["line"],
                "{name}"
            );
            assert_eq!(
                g["corral"]["hunt"]["event"], w["corral"]["hunt"]["event"],
                "{name}"
            );
            // Offsets are the file's: the mark's three bytes come first.
            if let (Some(g), Some(w)) = (g["log"]["offset"].as_u64(), w["log"]["offset"].as_u64()) {
                assert_eq!(g, w + 3, "{name}");
            }
        }
    }
}

/// `source.ip` is an ECS `ip` field: Elasticsearch refuses a whole alert whose `source.ip` does
/// not parse as an address, so the alert carries it only when it is one, in canonical form.
#[test]
fn alert_source_ip_is_an_address_or_absent() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("odd.ndjson");
    let line = |ip: &str| {
        format!(
            "{{\"@timestamp\":\"2026-01-10T10:00:00Z\",\"event\":{{\"action\":\"connection_accepted\"}},\"process\":{{\"name\":\"ollama\"}},\"destination\":{{\"port\":11434}},\"source\":{{\"ip\":\"{ip}\"}}}}\n"
        )
    };
    let text = [
        line("not-an-ip"),
        line("203.0.113.9 "),
        line("::ffff:203.0.113.10"),
        line("2001:DB8::1"),
    ]
    .concat();
    std::fs::write(&input, text).unwrap();
    let out = dir.path().join("alerts.ndjson");
    assert_eq!(hunt_ndjson(input.to_str().unwrap(), &out), 1);
    let mut ips = std::collections::BTreeMap::new();
    for l in std::fs::read_to_string(&out).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let line = v["corral"]["hunt"]["line"].as_u64().unwrap();
        ips.insert(line, v["source"]["ip"].clone());
    }
    assert!(ips.contains_key(&1), "{ips:?}");
    assert_eq!(ips[&1], serde_json::Value::Null);
    assert_eq!(ips[&2], "203.0.113.9");
    assert_eq!(ips[&3], "203.0.113.10");
    assert_eq!(ips[&4], "2001:db8::1");
}

/// Regression (review items 1 and 16): the table neither passes a record's escape sequences
/// to the terminal nor forges lines with its newlines, and it groups sources by canonical
/// address as the NDJSON `source.ip` does (` 203.0.113.9`, `::ffff:203.0.113.9` and
/// `203.0.113.9` are one row).
#[test]
fn the_table_escapes_record_text_and_groups_canonical_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("hostile.ndjson");
    let line = |ip: &str| {
        let ip = serde_json::to_string(ip).unwrap();
        format!(
            "{{\"@timestamp\":\"2026-01-10T10:00:00Z\",\"event\":{{\"action\":\"connection_accepted\"}},\"process\":{{\"name\":\"ollama\"}},\"destination\":{{\"port\":11434}},\"source\":{{\"ip\":{ip}}}}}\n"
        )
    };
    let text = [
        line("\u{1b}[2J\u{1b}[1;1Hall clear\n"),
        line(" 203.0.113.9"),
        line("::ffff:203.0.113.9"),
        line("203.0.113.9"),
        line("evil\u{202e}1.2"),
    ]
    .concat();
    std::fs::write(&input, text).unwrap();
    let out = dir.path().join("table.txt");
    let code = hunt(&[
        input.to_str().unwrap(),
        "--format",
        "table",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    let t = std::fs::read_to_string(&out).unwrap();
    assert!(!t.contains('\u{1b}') && !t.contains('\u{202e}'), "{t:?}");
    assert!(t.contains("\\u{1b}[2J\\u{1b}[1;1Hall clear\\n "), "{t}");
    assert!(t.contains("evil\\u{202e}1.2 "), "{t}");
    assert!(!t.lines().any(|l| l.starts_with("all clear")), "{t}");
    let rows: Vec<&str> = t.lines().filter(|l| l.contains("203.0.113.9")).collect();
    assert_eq!(rows.len(), 1, "{t}");
    assert!(rows[0].starts_with("203.0.113.9 "), "{t}");
    let count: Vec<&str> = rows[0].split_whitespace().collect();
    assert_eq!(count[1], "3", "{t}");
}

/// SARIF's `artifactLocation.uri` is a URI reference and `region.startLine` starts at 1:
/// file names with spaces or URI delimiters are percent-encoded, and a problem with no line
/// (an EVTX file header or chunk) has no region.
#[test]
fn sarif_uris_are_encoded_and_lines_start_at_one() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("we ird#<\"%?>ü");
    std::fs::create_dir(&sub).unwrap();
    let input = sub.join("conn.log");
    std::fs::copy(corpus("zeek_conn.log"), &input).unwrap();
    let evtx = dir.path().join("bad.evtx");
    std::fs::copy("../../fuzz/corpus/hunt_evtx/bad_header_crc", &evtx).unwrap();
    let out = dir.path().join("out.sarif");
    let code = hunt(&[
        input.to_str().unwrap(),
        evtx.to_str().unwrap(),
        "--format",
        "sarif",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let run = &v["runs"][0];
    let mut locations: Vec<&serde_json::Value> = Vec::new();
    for r in run["results"].as_array().unwrap() {
        locations.extend(r["locations"].as_array().unwrap());
    }
    for n in run["invocations"][0]["toolExecutionNotifications"]
        .as_array()
        .unwrap()
    {
        locations.extend(n["locations"].as_array().into_iter().flatten());
    }
    assert!(locations.len() > 3);
    let encoded = format!(
        "file://{}/we%20ird%23%3C%22%25%3F%3E%C3%BC/conn.log",
        dir.path().to_str().unwrap()
    );
    let mut saw_zeek = false;
    let mut saw_evtx = false;
    for l in locations {
        let p = &l["physicalLocation"];
        let uri = p["artifactLocation"]["uri"].as_str().unwrap();
        saw_zeek |= uri == encoded;
        saw_evtx |= uri.ends_with("/bad.evtx");
        assert!(
            uri.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~/%!$&'()*+,;=:@".contains(&b)),
            "{uri}"
        );
        if let Some(line) = p["region"].get("startLine") {
            assert!(line.as_u64().unwrap() >= 1, "{l}");
        }
    }
    assert!(saw_zeek && saw_evtx);
}

/// Every alert says which ECS version it follows (`ecs.version`, which ECS requires of every
/// document), whatever the input format; an event's own `ecs.version` (here an older one) stays
/// with the event in `corral.hunt.event` and does not replace the alert's.
#[test]
fn every_alert_carries_the_ecs_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = 0;
    for name in [
        "ecs_endpoint.ndjson",
        "zeek_conn.log",
        "sysmon_evtx_dump.json",
        "ollama_journal.log",
        "audit.log",
        "corral_audit.ndjson",
    ] {
        let out = dir.path().join(format!("{name}.alerts"));
        assert_eq!(hunt_ndjson(&corpus(name), &out), 1, "{name}");
        for l in std::fs::read_to_string(&out).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(
                v["ecs"]["version"],
                corral_hunt::output::ECS_VERSION,
                "{name}: {l}"
            );
            seen += 1;
        }
    }
    assert!(seen > 6, "{seen} alerts");

    let input = dir.path().join("old.ndjson");
    std::fs::write(
        &input,
        "{\"@timestamp\":\"2026-01-10T10:00:00Z\",\"ecs\":{\"version\":\"1.12.0\"},\"event\":{\"action\":\"connection_accepted\"},\"process\":{\"name\":\"ollama\"},\"destination\":{\"port\":11434},\"source\":{\"ip\":\"203.0.113.9\"}}\n",
    )
    .unwrap();
    let out = dir.path().join("old.alerts");
    assert_eq!(hunt_ndjson(input.to_str().unwrap(), &out), 1);
    let text = std::fs::read_to_string(&out).unwrap();
    let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(
        v["ecs"]["version"],
        corral_hunt::output::ECS_VERSION,
        "{text}"
    );
    assert_eq!(
        v["corral"]["hunt"]["event"]["ecs"]["version"], "1.12.0",
        "{text}"
    );
}
