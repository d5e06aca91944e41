//! Writes small, valid EVTX files (file header, chunks with their checksums, records whose
//! Binary XML instantiates an inline template), shaped like Sysmon's: for tests, fuzz seeds
//! and demonstrations, where real Windows logs cannot be shipped.

use super::{CHUNK_SIZE, HEADER_BLOCK};

/// One Sysmon-shaped event.
#[derive(Debug, Clone)]
pub struct FixtureEvent {
    pub event_id: u16,
    /// FILETIME (100 ns since 1601-01-01).
    pub time: u64,
    pub computer: String,
    /// `<Data Name="…">…</Data>` items of EventData.
    pub data: Vec<(String, String)>,
}

/// FILETIME of a Unix time in seconds.
pub fn filetime(unix_secs: u64) -> u64 {
    (unix_secs + 11_644_473_600) * 10_000_000
}

/// A whole EVTX file holding `events` (record ids from 1), split over as many chunks as needed.
pub fn sysmon_file(events: &[FixtureEvent]) -> Vec<u8> {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut chunk = new_chunk();
    let mut pos = 512usize;
    let (mut first_id, mut last_id) = (1u64, 0u64);
    let mut last_offset = 0usize;
    for (i, ev) in events.iter().enumerate() {
        let id = i as u64 + 1;
        let rec = record(ev, id, pos);
        if pos + rec.len() > CHUNK_SIZE {
            finish_chunk(&mut chunk, first_id, last_id, last_offset, pos);
            chunks.push(std::mem::replace(&mut chunk, new_chunk()));
            pos = 512;
            first_id = id;
        }
        // Offsets inside the record are chunk-relative: rebuild at the final position.
        let rec = record(ev, id, pos);
        chunk[pos..pos + rec.len()].copy_from_slice(&rec);
        last_offset = pos;
        last_id = id;
        pos += rec.len();
    }
    finish_chunk(&mut chunk, first_id, last_id, last_offset, pos);
    chunks.push(chunk);

    let mut out = vec![0u8; HEADER_BLOCK];
    out[..8].copy_from_slice(super::FILE_MAGIC);
    put_u64(&mut out, 16, chunks.len() as u64 - 1);
    put_u64(&mut out, 24, events.len() as u64 + 1);
    put_u32(&mut out, 32, 128);
    put_u16(&mut out, 36, 1);
    put_u16(&mut out, 38, 3);
    put_u16(&mut out, 40, HEADER_BLOCK as u16);
    put_u16(&mut out, 42, chunks.len() as u16);
    let crc = crc32fast::hash(&out[..120]);
    put_u32(&mut out, 124, crc);
    for c in chunks {
        out.extend_from_slice(&c);
    }
    out
}

fn new_chunk() -> Vec<u8> {
    let mut c = vec![0u8; CHUNK_SIZE];
    c[..8].copy_from_slice(b"ElfChnk\0");
    c
}

fn finish_chunk(c: &mut [u8], first: u64, last: u64, last_offset: usize, free: usize) {
    put_u64(c, 8, first);
    put_u64(c, 16, last);
    put_u64(c, 24, first);
    put_u64(c, 32, last);
    put_u32(c, 40, 128);
    put_u32(c, 44, last_offset as u32);
    put_u32(c, 48, free as u32);
    let data = crc32fast::hash(&c[512..free]);
    put_u32(c, 52, data);
    let mut h = crc32fast::Hasher::new();
    h.update(&c[..120]);
    h.update(&c[128..512]);
    let crc = h.finalize();
    put_u32(c, 124, crc);
}

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Binary XML being written at chunk offset `base`.
struct Bx {
    buf: Vec<u8>,
    base: usize,
}

impl Bx {
    fn at(&self) -> usize {
        self.base + self.buf.len()
    }
    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// A name offset pointing just past itself, then the name inline.
    fn name(&mut self, n: &str) {
        let here = self.at() + 4;
        self.u32(here as u32);
        self.u32(0); // next string in the hash bucket
        self.u16(0); // hash (readers look names up by offset)
        self.u16(n.encode_utf16().count() as u16);
        self.buf.extend_from_slice(&utf16(n));
        self.u16(0);
    }
    fn open(&mut self, name: &str, attrs: bool) -> usize {
        self.u8(if attrs { 0x41 } else { 0x01 });
        self.u16(0xffff);
        let size_at = self.buf.len();
        self.u32(0);
        self.name(name);
        if attrs {
            self.u32(0);
        }
        size_at
    }
    /// Patches an element's data size (everything after the size field, end token included).
    fn end(&mut self, size_at: usize, empty: bool) {
        self.u8(if empty { 0x03 } else { 0x04 });
        let size = (self.buf.len() - size_at - 4) as u32;
        self.buf[size_at..size_at + 4].copy_from_slice(&size.to_le_bytes());
    }
    fn attr(&mut self, name: &str, more: bool) {
        self.u8(if more { 0x46 } else { 0x06 });
        self.name(name);
    }
    fn text(&mut self, s: &str) {
        self.u8(0x05);
        self.u8(0x01);
        self.u16(s.encode_utf16().count() as u16);
        self.buf.extend_from_slice(&utf16(s));
    }
    fn sub(&mut self, index: u16, kind: u8) {
        self.u8(0x0d);
        self.u16(index);
        self.u8(kind);
    }
    /// `<name>%index%</name>`
    fn sub_element(&mut self, name: &str, index: u16, kind: u8) {
        let s = self.open(name, false);
        self.u8(0x02);
        self.sub(index, kind);
        self.end(s, false);
    }
}

/// The template body: `<Event><System>…</System><EventData>…</EventData></Event>`.
fn template_body(bx: &mut Bx, data_names: &[&str]) {
    bx.buf.extend_from_slice(&[0x0f, 1, 1, 0]);
    let ev = bx.open("Event", false);
    bx.u8(0x02);
    let sys = bx.open("System", false);
    bx.u8(0x02);
    let p = bx.open("Provider", true);
    bx.attr("Name", false);
    bx.text("Microsoft-Windows-Sysmon");
    bx.end(p, true);
    bx.sub_element("EventID", 0, 0x06);
    let t = bx.open("TimeCreated", true);
    bx.attr("SystemTime", false);
    bx.sub(1, 0x11);
    bx.end(t, true);
    let c = bx.open("Channel", false);
    bx.u8(0x02);
    bx.text("Microsoft-Windows-Sysmon/Operational");
    bx.end(c, false);
    bx.sub_element("Computer", 2, 0x01);
    bx.end(sys, false);
    let ed = bx.open("EventData", false);
    bx.u8(0x02);
    for (i, n) in data_names.iter().enumerate() {
        let d = bx.open("Data", true);
        bx.attr("Name", false);
        bx.text(n);
        bx.u8(0x02);
        bx.sub(3 + i as u16, 0x01);
        bx.end(d, false);
    }
    bx.end(ed, false);
    bx.end(ev, false);
    bx.u8(0x00);
}

/// One record at chunk offset `pos`.
fn record(ev: &FixtureEvent, id: u64, pos: usize) -> Vec<u8> {
    let mut bx = Bx {
        buf: Vec::new(),
        base: pos + 24,
    };
    bx.buf.extend_from_slice(&[0x0f, 1, 1, 0]);
    bx.u8(0x0c);
    bx.u8(0x01);
    bx.u32(id as u32); // template id
    let def = bx.at() + 4;
    bx.u32(def as u32);
    bx.u32(0); // next template
    bx.buf.extend_from_slice(&[0x11; 16]); // GUID
    let size_at = bx.buf.len();
    bx.u32(0);
    let names: Vec<&str> = ev.data.iter().map(|(n, _)| n.as_str()).collect();
    let body_start = bx.buf.len();
    template_body(&mut bx, &names);
    let body_len = (bx.buf.len() - body_start) as u32;
    bx.buf[size_at..size_at + 4].copy_from_slice(&body_len.to_le_bytes());
    let mut values: Vec<(u8, Vec<u8>)> = vec![
        (0x06, ev.event_id.to_le_bytes().to_vec()),
        (0x11, ev.time.to_le_bytes().to_vec()),
        (0x01, utf16(&ev.computer)),
    ];
    values.extend(ev.data.iter().map(|(_, v)| (0x01, utf16(v))));
    bx.u32(values.len() as u32);
    for (kind, v) in &values {
        bx.u16(v.len() as u16);
        bx.u8(*kind);
        bx.u8(0);
    }
    for (_, v) in &values {
        bx.buf.extend_from_slice(v);
    }
    bx.u8(0x00);
    let size = (24 + bx.buf.len() + 4) as u32;
    let mut rec = Vec::with_capacity(size as usize);
    rec.extend_from_slice(&[0x2a, 0x2a, 0, 0]);
    rec.extend_from_slice(&size.to_le_bytes());
    rec.extend_from_slice(&id.to_le_bytes());
    rec.extend_from_slice(&ev.time.to_le_bytes());
    rec.extend_from_slice(&bx.buf);
    rec.extend_from_slice(&size.to_le_bytes());
    rec
}

/// A few Sysmon events for tests: an external connection accepted by Ollama (event 3), an
/// internal one, a shell spawned by Ollama (event 1), and a DNS query (event 22).
pub fn sample_events() -> Vec<FixtureEvent> {
    let ollama = r"C:\Users\ana\AppData\Local\Programs\Ollama\ollama.exe";
    let t = filetime(1_768_039_200);
    let mk = |id: u16, secs: u64, data: &[(&str, &str)]| FixtureEvent {
        event_id: id,
        time: t + secs * 10_000_000,
        computer: "WS-ANA".into(),
        data: data
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    vec![
        mk(
            3,
            0,
            &[
                ("UtcTime", "2026-01-10 10:00:00.000"),
                ("ProcessId", "4242"),
                ("Image", ollama),
                ("Protocol", "tcp"),
                ("Initiated", "false"),
                ("SourceIp", "203.0.113.7"),
                ("SourcePort", "51000"),
                ("DestinationIp", "10.0.0.5"),
                ("DestinationPort", "11434"),
            ],
        ),
        mk(
            3,
            1,
            &[
                ("Image", ollama),
                ("Initiated", "false"),
                ("SourceIp", "192.168.1.20"),
                ("DestinationPort", "11434"),
            ],
        ),
        mk(
            1,
            2,
            &[
                ("Image", r"C:\Windows\System32\cmd.exe"),
                ("CommandLine", "cmd.exe /c whoami"),
                ("ParentImage", ollama),
                ("ProcessId", "5000"),
                ("ParentProcessId", "4242"),
            ],
        ),
        mk(
            22,
            3,
            &[
                ("Image", ollama),
                ("ProcessId", "4242"),
                ("QueryName", "exfil.example.net"),
            ],
        ),
    ]
}
