//! Generates the benchmark input for `bench/hunt.sh`: Elastic Defend-shaped ECS NDJSON and a
//! Zeek conn.log (TSV), deterministic for a seed, with a small share of positives and
//! near-misses for the Ollama rules.
//!
//! ```text
//! cargo run --release -p corral-hunt --example hunt_corpus -- OUT_DIR [TOTAL_MB] [SEED]
//! ```
//!
//! Writes `OUT_DIR/ecs.ndjson` (60 % of the bytes) and `OUT_DIR/conn.log` (40 %), then prints
//! one line of counts: `ecs_events=N zeek_events=N elastic_positives=N zeek_positives=N`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// splitmix64: small, fast, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
    fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(n);
        s
    }
}

const HOSTS: &[&str] = &["gpu-01", "gpu-02", "ws-ana", "build-7", "db-main", "web-03"];
const PROCS: &[(&str, &str)] = &[
    ("curl", "/usr/bin/curl"),
    ("python3", "/usr/bin/python3.11"),
    ("sshd", "/usr/sbin/sshd"),
    ("nginx", "/usr/sbin/nginx"),
    ("chrome", "/opt/google/chrome/chrome"),
    ("systemd-resolved", "/usr/lib/systemd/systemd-resolved"),
    ("node", "/usr/bin/node"),
    ("postgres", "/usr/lib/postgresql/16/bin/postgres"),
];
const DOMAINS: &[&str] = &[
    "ollama.com",
    "registry.ollama.ai",
    "github.com",
    "objects.githubusercontent.com",
    "api.example.org",
    "update.example.net",
    "time.cloudflare.com",
];
const EXTERNAL: &[&str] = &[
    "203.0.113.7",
    "198.51.100.23",
    "192.0.2.44",
    "::ffff:198.51.100.9",
    "2001:db8::77",
    "45.33.32.156",
];
const INTERNAL: &[&str] = &[
    "10.0.0.9",
    "10.1.2.3",
    "192.168.1.20",
    "172.16.4.4",
    "127.0.0.1",
    "::1",
    "::ffff:10.0.0.9",
    "fe80::1",
    "100.64.0.5",
];

struct Counts {
    ecs: u64,
    zeek: u64,
    elastic_pos: u64,
    zeek_pos: u64,
}

fn internal_ip(r: &mut Rng) -> String {
    format!("10.{}.{}.{}", r.below(4), r.below(256), 1 + r.below(254))
}

fn ts(r: &mut Rng, i: u64) -> String {
    // One day from 2026-01-10T00:00:00Z, events in order, ~ms apart.
    let ms = i * 3 + r.below(3);
    let (s, ms) = (ms / 1000, ms % 1000);
    format!(
        "2026-01-{:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        10 + s / 86_400 % 18,
        s / 3600 % 24,
        s / 60 % 60,
        s % 60
    )
}

/// One Elastic Defend-shaped event. Returns whether it is a positive for the Elastic rule.
fn ecs_line(r: &mut Rng, i: u64, out: &mut impl Write) -> io::Result<bool> {
    let t = ts(r, i);
    let host = r.pick(HOSTS);
    let host_ip = internal_ip(r);
    let agent = r.hex(32);
    let entity = r.hex(40);
    let event_id = r.hex(20);
    let seq = 1_000_000 + i;
    let kind = r.below(1000);
    let mut positive = false;
    // Ollama's listener: ~2 % of events, of which most are internal clients.
    let (action, pname, pexe, src, src_port, dst, dst_port, category, etype) = if kind < 20 {
        let (name, exe) = match r.below(10) {
            0 => ("Ollama", "/usr/local/bin/Ollama"),
            1 => (
                "ollama.exe",
                "C:\\\\Users\\\\ana\\\\AppData\\\\Local\\\\Programs\\\\Ollama\\\\ollama.exe",
            ),
            _ => ("ollama", "/usr/local/bin/ollama"),
        };
        let external = r.chance(150);
        let src = if external {
            r.pick(EXTERNAL).to_string()
        } else {
            r.pick(INTERNAL).to_string()
        };
        positive = external && name != "Ollama";
        (
            "connection_accepted",
            name,
            exe,
            src,
            30_000 + r.below(30_000),
            host_ip.clone(),
            11434,
            "network",
            "start",
        )
    } else if kind < 550 {
        let (name, exe) = PROCS[r.below(PROCS.len() as u64) as usize];
        let action = if r.chance(300) {
            "disconnect_received"
        } else {
            "connection_attempted"
        };
        let port = [443u64, 80, 22, 5432, 53, 8080, 11434][r.below(7) as usize];
        (
            action,
            name,
            exe,
            host_ip.clone(),
            30_000 + r.below(30_000),
            format!(
                "{}.{}.{}.{}",
                1 + r.below(223),
                r.below(256),
                r.below(256),
                1 + r.below(254)
            ),
            port,
            "network",
            if action == "disconnect_received" {
                "end"
            } else {
                "start"
            },
        )
    } else if kind < 750 {
        let (name, exe) = PROCS[r.below(PROCS.len() as u64) as usize];
        let domain = r.pick(DOMAINS);
        write!(
            out,
            concat!(
                r#"{{"@timestamp":"{t}","agent":{{"id":"{agent}","type":"endpoint","version":"8.15.2"}},"#,
                r#""data_stream":{{"dataset":"endpoint.events.network","namespace":"default","type":"logs"}},"#,
                r#""dns":{{"question":{{"name":"{domain}","type":"A"}}}},"ecs":{{"version":"8.11.0"}},"#,
                r#""event":{{"action":"lookup_requested","category":["network"],"created":"{t}","dataset":"endpoint.events.network","id":"{event_id}","kind":"event","module":"endpoint","outcome":"unknown","sequence":{seq},"type":["protocol","info"]}},"#,
                r#""host":{{"architecture":"x86_64","hostname":"{host}","id":"{agent}","ip":["{host_ip}"],"name":"{host}","os":{{"family":"ubuntu","kernel":"6.8.0-45-generic","name":"Linux","platform":"ubuntu","type":"linux","version":"24.04"}}}},"#,
                r#""message":"Endpoint DNS event","network":{{"protocol":"dns"}},"#,
                r#""process":{{"entity_id":"{entity}","executable":"{exe}","name":"{name}","pid":{pid}}},"user":{{"id":"0","name":"root"}}}}"#,
                "\n"
            ),
            t = t,
            agent = agent,
            domain = domain,
            event_id = event_id,
            seq = seq,
            host = host,
            host_ip = host_ip,
            entity = entity,
            exe = exe,
            name = name,
            pid = 300 + r.below(60_000),
        )?;
        return Ok(false);
    } else {
        let (name, exe) = PROCS[r.below(PROCS.len() as u64) as usize];
        let (pname, pexe) = PROCS[r.below(PROCS.len() as u64) as usize];
        let args = format!(r#"["{exe}","--flag","{}"]"#, r.hex(8));
        write!(
            out,
            concat!(
                r#"{{"@timestamp":"{t}","agent":{{"id":"{agent}","type":"endpoint","version":"8.15.2"}},"#,
                r#""data_stream":{{"dataset":"endpoint.events.process","namespace":"default","type":"logs"}},"ecs":{{"version":"8.11.0"}},"#,
                r#""event":{{"action":"exec","category":["process"],"created":"{t}","dataset":"endpoint.events.process","id":"{event_id}","kind":"event","module":"endpoint","outcome":"unknown","sequence":{seq},"type":["start"]}},"#,
                r#""host":{{"architecture":"x86_64","hostname":"{host}","id":"{agent}","ip":["{host_ip}"],"name":"{host}","os":{{"family":"ubuntu","kernel":"6.8.0-45-generic","name":"Linux","platform":"ubuntu","type":"linux","version":"24.04"}}}},"#,
                r#""message":"Endpoint process event","#,
                r#""process":{{"args":{args},"args_count":3,"command_line":"{exe} --flag","entity_id":"{entity}","executable":"{exe}","hash":{{"sha256":"{sha}"}},"name":"{name}","pid":{pid},"#,
                r#""parent":{{"entity_id":"{pentity}","executable":"{pexe}","name":"{pname}","pid":{ppid}}},"working_directory":"/"}},"user":{{"id":"1000","name":"svc"}}}}"#,
                "\n"
            ),
            t = t,
            agent = agent,
            event_id = event_id,
            seq = seq,
            host = host,
            host_ip = host_ip,
            args = args,
            exe = exe,
            entity = entity,
            sha = r.hex(64),
            name = name,
            pid = 300 + r.below(60_000),
            pentity = r.hex(40),
            pexe = pexe,
            pname = pname,
            ppid = 1 + r.below(60_000),
        )?;
        return Ok(false);
    };
    // A share of producers write dotted keys (Filebeat processors, flattened exports).
    if r.chance(100) {
        write!(
            out,
            concat!(
                r#"{{"@timestamp":"{t}","event.action":"{action}","event.category":"{category}","event.type":"{etype}","#,
                r#""host.name":"{host}","process.name":"{pname}","process.executable":"{pexe}","process.pid":{pid},"#,
                r#""source.ip":"{src}","source.port":{sport},"destination.ip":"{dst}","destination.port":{dport},"network.transport":"tcp"}}"#,
                "\n"
            ),
            t = t,
            action = action,
            category = category,
            etype = etype,
            host = host,
            pname = pname,
            pexe = pexe,
            pid = 300 + r.below(60_000),
            src = src,
            sport = src_port,
            dst = dst,
            dport = dst_port,
        )?;
        return Ok(positive);
    }
    write!(
        out,
        concat!(
            r#"{{"@timestamp":"{t}","agent":{{"id":"{agent}","type":"endpoint","version":"8.15.2"}},"#,
            r#""data_stream":{{"dataset":"endpoint.events.network","namespace":"default","type":"logs"}},"#,
            r#""destination":{{"address":"{dst}","ip":"{dst}","port":{dport}}},"ecs":{{"version":"8.11.0"}},"#,
            r#""event":{{"action":"{action}","category":["{category}"],"created":"{t}","dataset":"endpoint.events.network","id":"{event_id}","kind":"event","module":"endpoint","outcome":"unknown","sequence":{seq},"type":["{etype}"]}},"#,
            r#""host":{{"architecture":"x86_64","hostname":"{host}","id":"{agent}","ip":["{host_ip}"],"name":"{host}","os":{{"family":"ubuntu","kernel":"6.8.0-45-generic","name":"Linux","platform":"ubuntu","type":"linux","version":"24.04"}}}},"#,
            r#""message":"Endpoint network event","network":{{"direction":"{dir}","transport":"tcp","type":"ipv4"}},"#,
            r#""process":{{"entity_id":"{entity}","executable":"{pexe}","name":"{pname}","pid":{pid}}},"#,
            r#""source":{{"address":"{src}","ip":"{src}","port":{sport}}},"user":{{"id":"0","name":"root"}}}}"#,
            "\n"
        ),
        t = t,
        agent = agent,
        dst = dst,
        dport = dst_port,
        action = action,
        category = category,
        event_id = event_id,
        seq = seq,
        etype = etype,
        host = host,
        host_ip = host_ip,
        dir = if action == "connection_accepted" {
            "ingress"
        } else {
            "egress"
        },
        entity = entity,
        pexe = pexe,
        pname = pname,
        pid = 300 + r.below(60_000),
        src = src,
        sport = src_port,
    )?;
    Ok(positive)
}

const ZEEK_HEADER: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t2026-01-10-00-00-00\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n";

/// One conn.log row. Returns whether it is a positive for the Zeek rule.
fn zeek_line(r: &mut Rng, i: u64, out: &mut impl Write) -> io::Result<bool> {
    let ts = 1_768_003_200.0 + i as f64 * 0.001 + r.below(1000) as f64 * 1e-6;
    let uid = format!("C{}", &r.hex(17));
    let ollama = r.chance(20);
    let (orig, resp, port, service) = if ollama {
        let external = r.chance(150);
        let o = if external {
            r.pick(&[
                "203.0.113.7",
                "198.51.100.23",
                "45.33.32.156",
                "2001:db8::77",
            ])
            .to_string()
        } else {
            internal_ip(r)
        };
        (o, internal_ip(r), 11434, "http")
    } else {
        let port = [443u64, 80, 53, 22, 123, 8080][r.below(6) as usize];
        let svc = match port {
            443 => "ssl",
            80 | 8080 => "http",
            53 => "dns",
            22 => "ssh",
            _ => "-",
        };
        (
            internal_ip(r),
            format!(
                "{}.{}.{}.{}",
                1 + r.below(223),
                r.below(256),
                r.below(256),
                1 + r.below(254)
            ),
            port,
            svc,
        )
    };
    let state = ["SF", "SF", "SF", "S0", "REJ", "RSTO", "S1", "OTH"][r.below(8) as usize];
    let proto = if port == 53 || port == 123 {
        "udp"
    } else {
        "tcp"
    };
    let positive = ollama && !orig.starts_with("10.") && ["S1", "SF", "RSTO"].contains(&state);
    writeln!(
        out,
        "{ts:.6}\t{uid}\t{orig}\t{}\t{resp}\t{port}\t{proto}\t{service}\t{:.6}\t{}\t{}\t{state}\tT\tF\t0\tShADadFf\t{}\t{}\t{}\t{}\t-",
        30_000 + r.below(30_000),
        r.below(5_000_000) as f64 / 1e6,
        r.below(100_000),
        r.below(2_000_000),
        r.below(200),
        r.below(20_000),
        r.below(300),
        r.below(400_000),
    )?;
    Ok(positive)
}

fn generate(dir: &Path, total_mb: u64, seed: u64) -> io::Result<Counts> {
    let mut r = Rng(seed);
    let mut c = Counts {
        ecs: 0,
        zeek: 0,
        elastic_pos: 0,
        zeek_pos: 0,
    };
    let total = total_mb << 20;
    let mut ecs = CountingWriter::new(File::create(dir.join("ecs.ndjson"))?);
    while ecs.n < total * 6 / 10 {
        c.elastic_pos += u64::from(ecs_line(&mut r, c.ecs, &mut ecs)?);
        c.ecs += 1;
    }
    ecs.inner.flush()?;
    let mut zeek = CountingWriter::new(File::create(dir.join("conn.log"))?);
    zeek.write_all(ZEEK_HEADER.as_bytes())?;
    while zeek.n < total * 4 / 10 {
        c.zeek_pos += u64::from(zeek_line(&mut r, c.zeek, &mut zeek)?);
        c.zeek += 1;
    }
    zeek.write_all(b"#close\t2026-01-11-00-00-00\n")?;
    zeek.inner.flush()?;
    Ok(c)
}

struct CountingWriter {
    inner: BufWriter<File>,
    n: u64,
}

impl CountingWriter {
    fn new(f: File) -> Self {
        CountingWriter {
            inner: BufWriter::with_capacity(1 << 20, f),
            n: 0,
        }
    }
}

impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1) else {
        eprintln!("usage: hunt_corpus OUT_DIR [TOTAL_MB] [SEED]");
        std::process::exit(2);
    };
    let total_mb = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let seed = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
    match generate(Path::new(dir), total_mb, seed) {
        Ok(c) => println!(
            "ecs_events={} zeek_events={} elastic_positives={} zeek_positives={}",
            c.ecs, c.zeek, c.elastic_pos, c.zeek_pos
        ),
        Err(e) => {
            eprintln!("hunt_corpus: {e}");
            std::process::exit(2);
        }
    }
}
