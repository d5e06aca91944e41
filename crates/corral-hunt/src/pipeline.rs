//! Running an engine over inputs. Line formats go through a reader thread that cuts the
//! stream into ~1 MiB chunks at line ends and worker threads that parse and match them;
//! results are merged back in input order, so output does not depend on scheduling and
//! memory stays bounded by the number of chunks in flight. Multi-line formats (auditd
//! groups, pretty JSON) are read on the calling thread.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::engine::{Alert, Engine, Findings, Location};
use crate::error::{EvtxError, InputError};
use crate::event::Val;
use crate::event::{Event, Schema};
use crate::formats::{auditd, derive, evtx, gin, json, json_check, zeek, Reader};
use crate::rule::prefilter::{Dialect, Scan};

const CHUNK: usize = 1 << 20;
/// Longer lines are reported as malformed and skipped, so one bad line cannot exhaust memory.
pub const MAX_LINE: usize = 16 << 20;

/// Prints progress to stderr on a terminal for inputs that take a while.
pub struct Progress {
    enabled: bool,
    started: Instant,
    last: Instant,
    shown: bool,
}

impl Progress {
    pub fn new(enabled: bool) -> Self {
        let now = Instant::now();
        Progress {
            enabled,
            started: now,
            last: now,
            shown: false,
        }
    }

    pub fn tick(&mut self, name: &str, bytes: u64, events: u64) {
        if !self.enabled
            || self.last.elapsed() < Duration::from_millis(500)
            || self.started.elapsed() < Duration::from_secs(1)
        {
            return;
        }
        self.last = Instant::now();
        self.shown = true;
        eprint!(
            "\rcorral hunt: {}: {:.1} MB, {events} events   ",
            corral_ollama::term::term(name),
            bytes as f64 / 1e6
        );
    }

    pub fn done(&mut self) {
        if self.shown {
            eprint!("\r{:60}\r", "");
            self.shown = false;
        }
    }
}

enum Work {
    Chunk {
        seq: u64,
        data: Vec<u8>,
        line: u64,
        offset: u64,
        header: Option<Arc<zeek::Header>>,
    },
}

/// Runs `engine` over one decompressed stream. I/O errors end the file; bad records do not.
///
/// Event alerts go to `on_alerts` in input order as soon as they are known (chunk by chunk for
/// line-based inputs), so the caller need not hold them; the returned [`Findings`] carry the
/// counts and the window buckets, with no alerts.
#[allow(clippy::too_many_arguments)]
pub fn run(
    engine: &Engine,
    reader: Reader,
    stream: Box<dyn Read + Send>,
    file: usize,
    threads: usize,
    progress: &mut Progress,
    name: &str,
    on_alerts: &mut dyn FnMut(Vec<Alert>),
) -> (Findings, Option<InputError>) {
    run_at(
        engine, reader, stream, 0, file, threads, progress, name, on_alerts,
    )
}

/// [`run`] for a stream that starts `start` bytes into the input (after a byte order mark),
/// so reported offsets are the input's.
#[allow(clippy::too_many_arguments)]
pub fn run_at(
    engine: &Engine,
    reader: Reader,
    stream: Box<dyn Read + Send>,
    start: u64,
    file: usize,
    threads: usize,
    progress: &mut Progress,
    name: &str,
    on_alerts: &mut dyn FnMut(Vec<Alert>),
) -> (Findings, Option<InputError>) {
    let (mut found, err) = match reader {
        Reader::JsonLines | Reader::ZeekTsv | Reader::Gin => {
            let (found, err) = parallel(
                engine,
                reader,
                stream,
                start,
                file,
                threads.max(1),
                progress,
                name,
                on_alerts,
            );
            (found, err.map(InputError::Read))
        }
        Reader::Auditd => {
            let (found, err) = serial_auditd(engine, stream, start, file, progress, name);
            (found, err.map(InputError::Read))
        }
        Reader::JsonStream => {
            let (found, err) = serial_json_stream(engine, stream, start, file, progress, name);
            (found, err.map(InputError::Read))
        }
        Reader::Evtx => serial_evtx(engine, stream, file, progress, name),
    };
    let alerts = std::mem::take(&mut found.alerts);
    if !alerts.is_empty() {
        on_alerts(alerts);
    }
    (found, err)
}

/// EVTX: chunk by chunk on the calling thread. Malformed records are reported with their
/// record number in place of a line number.
fn serial_evtx(
    engine: &Engine,
    mut stream: Box<dyn Read + Send>,
    file: usize,
    progress: &mut Progress,
    name: &str,
) -> (Findings, Option<InputError>) {
    let mut out = Findings::default();
    let mut header = Vec::with_capacity(evtx::HEADER_BLOCK);
    if let Err(e) = stream
        .by_ref()
        .take(evtx::HEADER_BLOCK as u64)
        .read_to_end(&mut header)
    {
        return (out, Some(InputError::Read(e)));
    }
    out.bytes = header.len() as u64;
    if header.len() < evtx::HEADER_BLOCK {
        return (
            out,
            Some(EvtxError::Header("file shorter than its header").into()),
        );
    }
    match evtx::check_header(&header) {
        Ok(()) => {}
        Err(e @ EvtxError::Header("not an EVTX file header")) => return (out, Some(e.into())),
        Err(e) => out.malformed(0, e.to_string()),
    }
    let mut chunk = Vec::with_capacity(evtx::CHUNK_SIZE);
    let mut index = 0u64;
    loop {
        let at = out.bytes;
        match evtx::read_chunk(&mut stream, &mut chunk) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return (out, Some(InputError::Read(e))),
        }
        out.bytes += chunk.len() as u64;
        let mut errors = Vec::new();
        let mut records = Vec::new();
        evtx::chunk_records(&chunk, index, at, |r| records.push(r), |e| errors.push(e));
        for e in errors {
            let n = match e {
                EvtxError::Record { record, .. } => record,
                _ => 0,
            };
            out.malformed(n, e.to_string());
        }
        let mut ev = Event::new(&engine.schema);
        for r in &records {
            ev.clear();
            for (path, value) in &r.fields {
                if let Some(id) = engine.schema.json_path(path).leaf {
                    ev.set(id, Val::Str(Cow::Borrowed(value.as_str())));
                }
            }
            derive::derive(&mut ev);
            out.events += 1;
            let original: serde_json::Map<String, serde_json::Value> = r
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            let original = serde_json::Value::Object(original).to_string();
            let at = Location {
                file,
                line: r.id,
                offset: r.offset,
                original: &original,
                json: true,
            };
            engine.check(&ev, at, &mut out);
        }
        progress.tick(name, out.bytes, out.events);
        index += 1;
    }
    (out, None)
}

#[allow(clippy::too_many_arguments)]
fn parallel(
    engine: &Engine,
    reader: Reader,
    mut stream: Box<dyn Read + Send>,
    start: u64,
    file: usize,
    threads: usize,
    progress: &mut Progress,
    name: &str,
    on_alerts: &mut dyn FnMut(Vec<Alert>),
) -> (Findings, Option<io::Error>) {
    let (work_tx, work_rx) = sync_channel::<Work>(threads * 2);
    let work_rx = Arc::new(Mutex::new(work_rx));
    let (res_tx, res_rx) = sync_channel::<(u64, Findings)>(threads * 2);
    let mut total = Findings::default();
    let mut error = None;
    std::thread::scope(|s| {
        // Chunk buffers go back to the reader once matched, so a long input reuses a few.
        let (free_tx, free_rx) = sync_channel::<Vec<u8>>(threads * 4);
        let reader_res = res_tx.clone();
        let read_handle = s.spawn(move || {
            cut_chunks(
                engine,
                reader,
                &mut stream,
                start,
                &work_tx,
                &reader_res,
                &free_rx,
            )
        });
        for _ in 0..threads {
            let rx = Arc::clone(&work_rx);
            let tx = res_tx.clone();
            let free = free_tx.clone();
            s.spawn(move || worker(engine, reader, file, &rx, &tx, &free));
        }
        drop(free_tx);
        drop(res_tx);
        collect(res_rx, &mut total, progress, name, on_alerts);
        error = read_handle.join().ok().and_then(Result::err);
    });
    (total, error)
}

/// Merges chunk results in input order; each chunk's alerts go to `on_alerts` as soon as every
/// earlier chunk's have.
fn collect(
    rx: Receiver<(u64, Findings)>,
    total: &mut Findings,
    progress: &mut Progress,
    name: &str,
    on_alerts: &mut dyn FnMut(Vec<Alert>),
) {
    let mut next = 0u64;
    let mut pending = BTreeMap::new();
    let mut merge = |total: &mut Findings, mut f: Findings| {
        let alerts = std::mem::take(&mut f.alerts);
        if !alerts.is_empty() {
            on_alerts(alerts);
        }
        total.merge(f);
    };
    for (seq, f) in rx {
        pending.insert(seq, f);
        while let Some(f) = pending.remove(&next) {
            merge(total, f);
            next += 1;
        }
        progress.tick(name, total.bytes, total.events);
    }
    for (_, f) in pending {
        merge(total, f);
    }
}

fn worker(
    engine: &Engine,
    reader: Reader,
    file: usize,
    rx: &Mutex<Receiver<Work>>,
    tx: &std::sync::mpsc::SyncSender<(u64, Findings)>,
    free: &std::sync::mpsc::SyncSender<Vec<u8>>,
) {
    loop {
        let work = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        let Ok(Work::Chunk {
            seq,
            data,
            line,
            offset,
            header,
        }) = work
        else {
            return;
        };
        let mut out = Findings {
            bytes: data.len() as u64,
            ..Findings::default()
        };
        process_chunk(
            engine,
            reader,
            file,
            &data,
            line,
            offset,
            header.as_deref(),
            &mut out,
        );
        // A full return queue just means the buffer is freed here.
        let _ = free.try_send(data);
        if tx.send((seq, out)).is_err() {
            return;
        }
    }
}

/// Parses and matches every line of a chunk.
#[allow(clippy::too_many_arguments)]
pub fn process_chunk(
    engine: &Engine,
    reader: Reader,
    file: usize,
    data: &[u8],
    first_line: u64,
    first_offset: u64,
    header: Option<&zeek::Header>,
    out: &mut Findings,
) {
    let schema = &engine.schema;
    let mut ev = Event::new(schema);
    let mut path = String::new();
    let mut scan = Scan::default();
    let mut hdr = header.cloned().unwrap_or_default();
    let mut line_no = first_line;
    let mut start = 0usize;
    while start < data.len() {
        let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i);
        let raw = &data[start..end];
        let offset = first_offset + start as u64;
        start = end + 1;
        let line_here = line_no;
        line_no += 1;
        let line = trim_ascii(raw);
        if line.is_empty() {
            continue;
        }
        if std::str::from_utf8(line).is_err() {
            // Read with U+FFFD for each bad sequence, as a chunk of its own (the event borrows
            // from the text), and counted: one stray byte must not hide the record.
            out.lossy += 1;
            let text = String::from_utf8_lossy(line).into_owned();
            if reader == Reader::ZeekTsv && text.starts_with('#') {
                hdr.directive(&text, schema);
                continue;
            }
            process_chunk(
                engine,
                reader,
                file,
                text.as_bytes(),
                line_here,
                offset,
                Some(&hdr),
                out,
            );
            continue;
        }
        match reader {
            Reader::JsonLines => {
                // A line no rule can match is only checked and counted; anything the quick
                // check doubts goes through the parser, which names the error.
                if !engine.may_match(Dialect::Json, line, &mut scan)
                    && json_check::is_plain_object(line)
                {
                    out.events += 1;
                    continue;
                }
                ev.clear();
                if let Err(e) = json::parse_object(schema, line, &mut ev, &mut path) {
                    out.malformed(line_here, e.to_string());
                    continue;
                }
                derive::derive(&mut ev);
                out.events += 1;
                let original = std::str::from_utf8(line).unwrap_or_default();
                engine.check(
                    &ev,
                    Location {
                        file,
                        line: line_here,
                        offset,
                        original,
                        json: true,
                    },
                    out,
                );
            }
            Reader::Gin | Reader::ZeekTsv => {
                let Ok(text) = std::str::from_utf8(line) else {
                    continue;
                };
                if reader == Reader::Gin && gin::is_journal_entry(line) {
                    journal_line(engine, schema, file, line_here, offset, text, out);
                    continue;
                }
                if reader == Reader::Gin {
                    ev.clear();
                    if !gin_access(text, &mut ev, line_here, out) {
                        continue;
                    }
                } else if text.starts_with('#') {
                    hdr.directive(text, schema);
                    continue;
                } else if hdr.row_shape_ok(line)
                    && !engine.may_match(Dialect::ZeekTsv, line, &mut scan)
                {
                    out.events += 1;
                    continue;
                } else if let Err(e) = {
                    ev.clear();
                    hdr.parse_row(text, &mut ev)
                } {
                    out.malformed(line_here, e.to_string());
                    continue;
                }
                derive::common(&mut ev);
                out.events += 1;
                engine.check(
                    &ev,
                    Location {
                        file,
                        line: line_here,
                        offset,
                        original: text,
                        json: false,
                    },
                    out,
                );
            }
            Reader::Auditd | Reader::JsonStream | Reader::Evtx => {}
        }
    }
}

/// Reads a server-log line into `ev`: true for an access line; a line of another kind is
/// counted as skipped, a broken access line as malformed.
fn gin_access<'a>(text: &'a str, ev: &mut Event<'a>, line: u64, out: &mut Findings) -> bool {
    match gin::parse_line(text, ev) {
        gin::Line::Access => true,
        gin::Line::Other => {
            out.skipped += 1;
            false
        }
        gin::Line::Malformed(why) => {
            out.malformed(line, why);
            false
        }
    }
}

/// One `journalctl -o json` entry of the server log: its `MESSAGE` read as a log line.
fn journal_line(
    engine: &Engine,
    schema: &Schema,
    file: usize,
    line: u64,
    offset: u64,
    text: &str,
    out: &mut Findings,
) {
    let message = match gin::journal_message(text.as_bytes()) {
        Ok(Some(m)) => m,
        Ok(None) => {
            out.skipped += 1;
            return;
        }
        Err(why) => {
            out.malformed(line, why);
            return;
        }
    };
    let mut ev = Event::new(schema);
    if !gin_access(&message, &mut ev, line, out) {
        return;
    }
    derive::common(&mut ev);
    out.events += 1;
    engine.check(
        &ev,
        Location {
            file,
            line,
            offset,
            original: text,
            json: true,
        },
        out,
    );
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// The reader thread: cuts the stream at line ends, keeps Zeek headers current.
fn cut_chunks(
    engine: &Engine,
    reader: Reader,
    stream: &mut Box<dyn Read + Send>,
    start: u64,
    tx: &std::sync::mpsc::SyncSender<Work>,
    res: &std::sync::mpsc::SyncSender<(u64, Findings)>,
    free: &Receiver<Vec<u8>>,
) -> io::Result<()> {
    let mut seq = 0u64;
    let mut line = 1u64;
    let mut offset = start;
    let mut carry: Vec<u8> = Vec::new();
    let mut header = zeek::Header::default();
    let mut skipping = false;
    let mut target = CHUNK;
    let mut failed: Option<io::Error> = None;
    let end = |failed: Option<io::Error>| failed.map_or(Ok(()), Err);
    loop {
        let want = target + carry.len() + 64 * 1024;
        let mut buf = match free.try_recv() {
            Ok(mut b) => {
                b.clear();
                b.reserve(want);
                b
            }
            Err(_) => Vec::with_capacity(want),
        };
        buf.append(&mut carry);
        let mut eof = false;
        while buf.len() < target {
            let want = (target - buf.len()) as u64;
            // On an error (a truncated gzip member, a failing disk) the bytes read before it
            // are in `buf`: they are matched like the end of the input, then the error is
            // returned, so what could be read is never thrown away.
            match stream.by_ref().take(want).read_to_end(&mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    failed = Some(e);
                    eof = true;
                    break;
                }
            }
        }
        if skipping {
            // Rest of an overlong line: drop up to its end.
            match memchr::memchr(b'\n', &buf) {
                Some(p) => {
                    offset += (p + 1) as u64;
                    buf.drain(..=p);
                    skipping = false;
                }
                None => {
                    offset += buf.len() as u64;
                    if eof {
                        return end(failed);
                    }
                    continue;
                }
            }
        }
        if !eof {
            match memchr::memrchr(b'\n', &buf) {
                Some(p) => carry = buf.split_off(p + 1),
                None if buf.len() >= MAX_LINE => {
                    let mut f = Findings::default();
                    f.malformed(line, format!("line longer than {} MiB", MAX_LINE >> 20));
                    if res.send((seq, f)).is_err() {
                        return Ok(());
                    }
                    seq += 1;
                    line += 1;
                    offset += buf.len() as u64;
                    skipping = true;
                    target = CHUNK;
                    continue;
                }
                None => {
                    // No line end yet: read on into a bigger buffer.
                    target = (buf.len() * 2).min(MAX_LINE);
                    carry = buf;
                    continue;
                }
            }
        }
        if buf.is_empty() && eof {
            return end(failed);
        }
        let hdr = (reader == Reader::ZeekTsv).then(|| Arc::new(header.clone()));
        if reader == Reader::ZeekTsv {
            let starts = buf
                .starts_with(b"#")
                .then_some(0)
                .into_iter()
                .chain(memchr::memmem::find_iter(&buf, b"\n#").map(|p| p + 1));
            for at in starts {
                let rest = &buf[at..];
                let l = &rest[..memchr::memchr(b'\n', rest).unwrap_or(rest.len())];
                header.directive(&String::from_utf8_lossy(l), &engine.schema);
            }
        }
        let lines = memchr::memchr_iter(b'\n', &buf).count() as u64;
        let len = buf.len() as u64;
        if tx
            .send(Work::Chunk {
                seq,
                data: buf,
                line,
                offset,
                header: hdr,
            })
            .is_err()
        {
            return Ok(());
        }
        seq += 1;
        line += lines;
        offset += len;
        target = CHUNK;
        if eof {
            return end(failed);
        }
    }
}

fn serial_auditd(
    engine: &Engine,
    stream: Box<dyn Read + Send>,
    start: u64,
    file: usize,
    progress: &mut Progress,
    name: &str,
) -> (Findings, Option<io::Error>) {
    let mut out = Findings::default();
    let mut pids = auditd::PidTable::default();
    let mut pending: Vec<(u64, auditd::Group)> = Vec::new();
    let flush = |g: auditd::Group, pids: &mut auditd::PidTable, out: &mut Findings| {
        let mut ev = Event::new(&engine.schema);
        if auditd::to_event(&g, pids, &mut ev) {
            derive::common(&mut ev);
            out.events += 1;
            let at = Location {
                file,
                line: g.first_line,
                offset: g.first_offset,
                original: &g.original,
                json: false,
            };
            engine.check(&ev, at, out);
        } else {
            out.skipped += 1;
        }
    };
    let mut error = None;
    let mut lines = BufReader::with_capacity(256 * 1024, stream);
    let mut buf = Vec::new();
    let (mut line_no, mut offset) = (0u64, start);
    loop {
        buf.clear();
        match lines
            .by_ref()
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)
        {
            Ok(0) => break,
            Ok(n) => {
                line_no += 1;
                let here = offset;
                offset += n as u64;
                out.bytes += n as u64;
                if n >= MAX_LINE && buf.last() != Some(&b'\n') {
                    out.malformed(line_no, "line too long");
                    // The rest of the line belongs to it: skip it rather than read it as
                    // further records.
                    loop {
                        buf.clear();
                        match lines
                            .by_ref()
                            .take(MAX_LINE as u64)
                            .read_until(b'\n', &mut buf)
                        {
                            Ok(0) => break,
                            Ok(m) => {
                                offset += m as u64;
                                out.bytes += m as u64;
                                if buf.last() == Some(&b'\n') {
                                    break;
                                }
                            }
                            Err(e) => {
                                error = Some(e);
                                break;
                            }
                        }
                    }
                    if error.is_some() {
                        break;
                    }
                    continue;
                }
                let text = String::from_utf8_lossy(&buf);
                if matches!(text, Cow::Owned(_)) {
                    out.lossy += 1;
                }
                let text = text.trim();
                if text.is_empty() || text == "----" {
                    continue;
                }
                let rec = match auditd::parse_record(text) {
                    Ok(r) => r,
                    Err(why) => {
                        out.malformed(line_no, why);
                        continue;
                    }
                };
                let eoe = rec.kind == "EOE";
                let pos = pending
                    .iter()
                    .position(|(s, g)| *s == rec.serial && g.stamp == rec.stamp);
                let idx = match pos {
                    Some(i) => i,
                    None => {
                        pending.push((rec.serial, auditd::Group::new(line_no, here, rec.stamp)));
                        pending.len() - 1
                    }
                };
                if !eoe {
                    if let Some((_, g)) = pending.get_mut(idx) {
                        g.add(&rec, text);
                    }
                }
                if eoe {
                    let (_, g) = pending.remove(idx);
                    flush(g, &mut pids, &mut out);
                } else if pending.len() > 16 {
                    let (_, g) = pending.remove(0);
                    flush(g, &mut pids, &mut out);
                }
                progress.tick(name, out.bytes, out.events);
            }
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    for (_, g) in pending {
        flush(g, &mut pids, &mut out);
    }
    out.alerts.sort_by_key(|a| (a.line, a.rule));
    (out, error)
}

/// Concatenated JSON objects, pretty-printed or not, with evtx_dump's `Record N` lines
/// between them.
fn serial_json_stream(
    engine: &Engine,
    stream: Box<dyn Read + Send>,
    start: u64,
    file: usize,
    progress: &mut Progress,
    name: &str,
) -> (Findings, Option<io::Error>) {
    let mut out = Findings::default();
    let mut lines = BufReader::with_capacity(256 * 1024, stream);
    let mut buf = Vec::new();
    let mut obj: Vec<u8> = Vec::new();
    let mut depth = 0i64;
    let mut in_str = false;
    let mut esc = false;
    let (mut line_no, mut offset) = (0u64, start);
    let (mut start_line, mut start_off) = (0u64, 0u64);
    let mut path = String::new();
    let mut error = None;
    // Set while the rest of a record too large to keep is read past: its bytes are scanned for
    // its end (so what it contains is never read as further records) but not kept.
    let mut oversized = false;
    let mut mid_line = false;
    loop {
        buf.clear();
        match lines
            .by_ref()
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)
        {
            Ok(0) => break,
            Ok(n) => {
                // A piece of a line longer than the limit is still that line.
                if !mid_line {
                    line_no += 1;
                }
                mid_line = buf.last() != Some(&b'\n');
                let here = offset;
                offset += n as u64;
                out.bytes += n as u64;
                if depth == 0 && !oversized {
                    let t = buf.trim_ascii();
                    if t.is_empty() || t.starts_with(b"Record ") {
                        continue;
                    }
                    start_line = line_no;
                    start_off = here;
                    obj.clear();
                }
                if !oversized && obj.len() + buf.len() > MAX_LINE {
                    out.malformed(start_line, "JSON record larger than 16 MiB");
                    obj = Vec::new();
                    oversized = true;
                }
                for &b in &buf {
                    if in_str {
                        match (esc, b) {
                            (true, _) => esc = false,
                            (false, b'\\') => esc = true,
                            (false, b'"') => in_str = false,
                            _ => {}
                        }
                    } else {
                        match b {
                            b'"' => in_str = true,
                            b'{' | b'[' => depth += 1,
                            b'}' | b']' => depth -= 1,
                            _ => {}
                        }
                    }
                }
                if oversized {
                    if depth <= 0 {
                        depth = 0;
                        in_str = false;
                        oversized = false;
                    }
                } else {
                    obj.extend_from_slice(&buf);
                }
                if depth <= 0 && !obj.is_empty() {
                    depth = 0;
                    in_str = false;
                    let lossy;
                    let mut text = obj.trim_ascii();
                    if std::str::from_utf8(text).is_err() {
                        out.lossy += 1;
                        lossy = String::from_utf8_lossy(text).into_owned();
                        text = lossy.as_bytes();
                    }
                    let mut ev = Event::new(&engine.schema);
                    match json::parse_object(&engine.schema, text, &mut ev, &mut path) {
                        Ok(()) => {
                            derive::derive(&mut ev);
                            out.events += 1;
                            let original = String::from_utf8_lossy(text);
                            let at = Location {
                                file,
                                line: start_line,
                                offset: start_off,
                                original: &original,
                                json: true,
                            };
                            engine.check(&ev, at, &mut out);
                        }
                        Err(e) => out.malformed(start_line, e.to_string()),
                    }
                    obj.clear();
                }
                progress.tick(name, out.bytes, out.events);
            }
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    if !oversized && !obj.trim_ascii().is_empty() {
        out.malformed(start_line, "truncated JSON record at end of input");
    }
    (out, error)
}
