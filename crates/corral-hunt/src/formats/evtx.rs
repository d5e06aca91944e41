//! Windows XML event log files (`.evtx`, e.g. Sysmon's `Microsoft-Windows-Sysmon%4Operational.evtx`)
//! read directly: the 4 KiB file header, then 64 KiB chunks, each with its string and
//! template tables and event records whose bodies are Binary XML (MS-EVEN6).
//!
//! Records come out as `(path, text)` pairs with the paths evtx_dump's JSON has
//! (`Event.System.EventID`, `Event.System.Provider.#attributes.Name`,
//! `Event.EventData.Image`), so the JSON dialect's field mapping serves both. A chunk is read
//! at a time, so memory does not grow with the file. Nothing in the file is trusted: every
//! offset is bounds-checked, template nesting is limited, and a bad checksum, record or token
//! is reported with its chunk or record number while reading goes on.

use std::io::{self, Read};

use crate::error::EvtxError;

pub const FILE_MAGIC: &[u8; 8] = b"ElfFile\0";
const CHUNK_MAGIC: &[u8; 8] = b"ElfChnk\0";
pub const HEADER_BLOCK: usize = 4096;
pub const CHUNK_SIZE: usize = 65536;
const RECORD_MAGIC: [u8; 4] = [0x2a, 0x2a, 0, 0];
/// Templates instantiate templates (and Binary XML values hold more Binary XML); real logs
/// nest two or three deep.
const MAX_DEPTH: u8 = 8;

/// One event record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record's EventRecordID.
    pub id: u64,
    /// Byte offset of the record in the file.
    pub offset: u64,
    pub fields: Vec<(String, String)>,
}

/// Checks the file header. A checksum mismatch is reported but not fatal (files copied
/// from a live system often have a stale header).
pub fn check_header(h: &[u8]) -> Result<(), EvtxError> {
    if h.len() < 128 || !h.starts_with(FILE_MAGIC) {
        return Err(EvtxError::Header("not an EVTX file header"));
    }
    let want = u32_at(h, 124).unwrap_or(0);
    if crc32fast::hash(&h[..120]) != want {
        return Err(EvtxError::Header("file header checksum mismatch"));
    }
    Ok(())
}

/// Reads the next chunk into `buf` (cleared first). `Ok(false)` at the end of the file.
pub fn read_chunk(r: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<bool> {
    buf.clear();
    r.by_ref().take(CHUNK_SIZE as u64).read_to_end(buf)?;
    Ok(!buf.is_empty())
}

/// Parses every record of one chunk (`index` counts from 0, `file_offset` is where the chunk
/// starts in the file). Records go to `on_record`, problems to `on_error`.
pub fn chunk_records(
    chunk: &[u8],
    index: u64,
    file_offset: u64,
    mut on_record: impl FnMut(Record),
    mut on_error: impl FnMut(EvtxError),
) {
    if chunk.len() < CHUNK_SIZE {
        on_error(EvtxError::Chunk {
            chunk: index,
            why: "truncated chunk",
        });
        if chunk.len() < 512 {
            return;
        }
    }
    if !chunk.starts_with(CHUNK_MAGIC) {
        // Preallocated, never written chunks are zeros.
        if chunk.iter().any(|b| *b != 0) {
            on_error(EvtxError::Chunk {
                chunk: index,
                why: "bad chunk signature",
            });
        }
        return;
    }
    let mut hdr = crc32fast::Hasher::new();
    hdr.update(&chunk[..120]);
    hdr.update(&chunk[128..512]);
    if Some(hdr.finalize()) != u32_at(chunk, 124) {
        on_error(EvtxError::Chunk {
            chunk: index,
            why: "chunk header checksum mismatch",
        });
    }
    let free = u32_at(chunk, 48).map_or(chunk.len(), |f| (f as usize).clamp(512, chunk.len()));
    if Some(crc32fast::hash(&chunk[512..free])) != u32_at(chunk, 52) {
        on_error(EvtxError::Chunk {
            chunk: index,
            why: "record data checksum mismatch",
        });
    }
    // After a damaged record header the walk resumes at the next record signature, so one bad
    // record does not cost the rest of its chunk.
    let next_record = |from: usize| {
        chunk
            .get(from..free)
            .and_then(|rest| memchr::memmem::find(rest, &RECORD_MAGIC))
            .map(|i| from + i)
    };
    let mut pos = 512usize;
    while pos + 28 <= free {
        let record_id = u64_at(chunk, pos + 8).unwrap_or(0);
        if chunk.get(pos..pos + 4) != Some(&RECORD_MAGIC[..]) {
            on_error(EvtxError::Record {
                record: record_id,
                chunk: index,
                why: "bad record signature; skipped to the next record",
            });
            match next_record(pos + 1) {
                Some(p) => {
                    pos = p;
                    continue;
                }
                None => return,
            }
        }
        let size = u32_at(chunk, pos + 4).unwrap_or(0) as usize;
        if size < 28 || pos + size > free {
            on_error(EvtxError::Record {
                record: record_id,
                chunk: index,
                why: "record size out of bounds; skipped to the next record",
            });
            match next_record(pos + 4) {
                Some(p) => {
                    pos = p;
                    continue;
                }
                None => return,
            }
        }
        if u32_at(chunk, pos + size - 4) != Some(size as u32) {
            on_error(EvtxError::Record {
                record: record_id,
                chunk: index,
                why: "record size copy mismatch",
            });
        } else {
            let mut p = Parser {
                chunk,
                fields: Vec::new(),
                stack: Vec::new(),
            };
            match p.fragment(pos + 24, pos + size - 4, &[], 0) {
                Ok(_) => on_record(Record {
                    id: record_id,
                    offset: file_offset + pos as u64,
                    fields: p.fields,
                }),
                Err(why) => on_error(EvtxError::Record {
                    record: record_id,
                    chunk: index,
                    why,
                }),
            }
        }
        pos += size;
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn utf16(b: &[u8]) -> String {
    let units = b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
    let s: String = char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    s.trim_end_matches('\0').to_string()
}

/// A substitution value: its type and where its bytes are in the chunk.
#[derive(Clone, Copy)]
struct Sub {
    kind: u8,
    start: usize,
    len: usize,
}

struct Elem {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    /// Values go to the last attribute until the start tag closes.
    in_attr: bool,
}

struct Parser<'c> {
    chunk: &'c [u8],
    fields: Vec<(String, String)>,
    stack: Vec<Elem>,
}

type R<T> = Result<T, &'static str>;

impl Parser<'_> {
    fn byte(&self, at: usize) -> R<u8> {
        self.chunk.get(at).copied().ok_or("truncated Binary XML")
    }
    fn u16(&self, at: usize) -> R<u16> {
        u16_at(self.chunk, at).ok_or("truncated Binary XML")
    }
    fn u32(&self, at: usize) -> R<u32> {
        u32_at(self.chunk, at).ok_or("truncated Binary XML")
    }
    fn bytes(&self, at: usize, len: usize) -> R<&[u8]> {
        self.chunk
            .get(at..at.checked_add(len).ok_or("length overflow")?)
            .ok_or("truncated Binary XML")
    }

    /// A name at `offset` (chunk-relative); returns it and, if it sits at `pos` (inline),
    /// the position after it.
    fn name(&self, offset: usize, pos: usize) -> R<(String, usize)> {
        let count = usize::from(self.u16(offset + 6)?);
        let text = utf16(self.bytes(offset + 8, count * 2)?);
        let end = offset + 8 + count * 2 + 2;
        Ok((text, if offset == pos { end } else { pos }))
    }

    fn push_text(&mut self, s: &str) {
        if let Some(top) = self.stack.last_mut() {
            if top.in_attr {
                if let Some(a) = top.attrs.last_mut() {
                    a.1.push_str(s);
                    return;
                }
            }
            top.text.push_str(s);
        }
    }

    fn close(&mut self) {
        let Some(e) = self.stack.pop() else { return };
        let mut path = String::new();
        for p in &self.stack {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&p.name);
        }
        // <Data Name="Image">…</Data> is the field `Image` of its parent (EventData).
        let data_name = (e.name == "Data")
            .then(|| e.attrs.iter().find(|(k, _)| k == "Name"))
            .flatten();
        if let Some((_, n)) = data_name {
            if !e.text.is_empty() {
                self.fields.push((format!("{path}.{n}"), e.text));
            }
            return;
        }
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(&e.name);
        for (k, v) in e.attrs {
            self.fields.push((format!("{path}.#attributes.{k}"), v));
        }
        if !e.text.is_empty() {
            self.fields.push((path, e.text));
        }
    }

    /// Runs the tokens from `pos` up to `end` or an end-of-fragment token; returns the
    /// position after the last token read.
    fn fragment(&mut self, mut pos: usize, end: usize, subs: &[Sub], depth: u8) -> R<usize> {
        if depth > MAX_DEPTH {
            return Err("Binary XML nested too deep");
        }
        while pos < end {
            let token = self.byte(pos)?;
            match token & !0x40 {
                0x00 => return Ok(pos + 1),
                0x0f => pos += 4,
                0x01 => {
                    // dependency id (2), data size (4), name offset (4)
                    let name_off = self.u32(pos + 7)? as usize;
                    pos += 11;
                    let (name, after) = self.name(name_off, pos)?;
                    pos = after;
                    if token & 0x40 != 0 {
                        pos += 4; // attribute list size
                    }
                    self.stack.push(Elem {
                        name,
                        attrs: Vec::new(),
                        text: String::new(),
                        in_attr: false,
                    });
                }
                0x02 => {
                    if let Some(top) = self.stack.last_mut() {
                        top.in_attr = false;
                    }
                    pos += 1;
                }
                0x03 | 0x04 => {
                    self.close();
                    pos += 1;
                }
                0x06 => {
                    let name_off = self.u32(pos + 1)? as usize;
                    pos += 5;
                    let (name, after) = self.name(name_off, pos)?;
                    pos = after;
                    let top = self
                        .stack
                        .last_mut()
                        .ok_or("attribute outside an element")?;
                    top.attrs.push((name, String::new()));
                    top.in_attr = true;
                }
                0x05 => {
                    // value type (1, a string), character count, UTF-16
                    let count = usize::from(self.u16(pos + 2)?);
                    let s = utf16(self.bytes(pos + 4, count * 2)?);
                    self.push_text(&s);
                    pos += 4 + count * 2;
                }
                0x07 => {
                    let count = usize::from(self.u16(pos + 1)?);
                    let s = utf16(self.bytes(pos + 3, count * 2)?);
                    self.push_text(&s);
                    pos += 3 + count * 2;
                }
                0x08 => {
                    let c = char::from_u32(u32::from(self.u16(pos + 1)?))
                        .unwrap_or(char::REPLACEMENT_CHARACTER);
                    self.push_text(c.encode_utf8(&mut [0; 4]));
                    pos += 3;
                }
                0x09 | 0x0a => {
                    let name_off = self.u32(pos + 1)? as usize;
                    pos += 5;
                    pos = self.name(name_off, pos)?.1;
                }
                0x0b => {
                    let count = usize::from(self.u16(pos + 1)?);
                    pos += 3 + count * 2;
                }
                0x0c => pos = self.template(pos, subs, depth)?,
                0x0d | 0x0e => {
                    let index = usize::from(self.u16(pos + 1)?);
                    pos += 4;
                    if let Some(sub) = subs.get(index).copied() {
                        if sub.kind == 0x21 {
                            self.fragment(sub.start, sub.start + sub.len, &[], depth + 1)?;
                        } else {
                            let s = self.value(sub)?;
                            self.push_text(&s);
                        }
                    }
                }
                _ => return Err("unknown Binary XML token"),
            }
        }
        Ok(pos)
    }

    /// A template instance at `pos`: the definition (inline, or earlier in the chunk), then
    /// the substitution values it is filled with.
    fn template(&mut self, pos: usize, _outer: &[Sub], depth: u8) -> R<usize> {
        let def = self.u32(pos + 6)? as usize;
        let mut p = pos + 10;
        let body_len = self.u32(def + 20)? as usize;
        let body = def + 24;
        if def == p {
            p = body.checked_add(body_len).ok_or("length overflow")?;
        }
        let count = self.u32(p)? as usize;
        p += 4;
        if count > 4096 {
            return Err("too many substitution values");
        }
        let mut subs = Vec::with_capacity(count);
        let mut value = p + count * 4;
        for i in 0..count {
            let len = usize::from(self.u16(p + i * 4)?);
            let kind = self.byte(p + i * 4 + 2)?;
            self.bytes(value, len)?;
            subs.push(Sub {
                kind,
                start: value,
                len,
            });
            value += len;
        }
        self.bytes(body, body_len)?;
        self.fragment(body, body + body_len, &subs, depth + 1)?;
        Ok(value)
    }

    fn value(&self, s: Sub) -> R<String> {
        let b = self.bytes(s.start, s.len)?;
        let int = |n: usize| -> R<u64> {
            let mut v = [0u8; 8];
            v[..n].copy_from_slice(b.get(..n).ok_or("short value")?);
            Ok(u64::from_le_bytes(v))
        };
        Ok(match s.kind {
            0x00 => String::new(),
            0x01 => utf16(b),
            0x02 => String::from_utf8_lossy(b)
                .trim_end_matches('\0')
                .to_string(),
            0x03 => (int(1)? as u8 as i8).to_string(),
            0x04 => int(1)?.to_string(),
            0x05 => (int(2)? as u16 as i16).to_string(),
            0x06 => int(2)?.to_string(),
            0x07 => (int(4)? as u32 as i32).to_string(),
            0x08 => int(4)?.to_string(),
            0x09 => (int(8)? as i64).to_string(),
            0x0a => int(8)?.to_string(),
            0x0b => f32::from_bits(int(4)? as u32).to_string(),
            0x0c => f64::from_bits(int(8)?).to_string(),
            0x0d => (int(s.len.min(4))? != 0).to_string(),
            0x0e => b.iter().map(|x| format!("{x:02X}")).collect(),
            0x0f if b.len() >= 16 => format!(
                "{{{:08X}-{:04X}-{:04X}-{}-{}}}",
                int(4)?,
                u16::from_le_bytes([b[4], b[5]]),
                u16::from_le_bytes([b[6], b[7]]),
                b[8..10]
                    .iter()
                    .map(|x| format!("{x:02X}"))
                    .collect::<String>(),
                b[10..16]
                    .iter()
                    .map(|x| format!("{x:02X}"))
                    .collect::<String>()
            ),
            0x10 | 0x14 | 0x15 => format!("0x{:x}", int(s.len.min(8))?),
            0x11 => filetime(int(8)?),
            0x12 if b.len() >= 16 => {
                let w = |i: usize| u16::from_le_bytes([b[i * 2], b[i * 2 + 1]]);
                format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                    w(0),
                    w(1),
                    w(3),
                    w(4),
                    w(5),
                    w(6),
                    w(7)
                )
            }
            0x13 if b.len() >= 8 => {
                let mut auth = [0u8; 8];
                auth[2..].copy_from_slice(&b[2..8]);
                let mut sid = format!("S-{}-{}", b[0], u64::from_be_bytes(auth));
                for c in b[8..].chunks_exact(4).take(usize::from(b[1])) {
                    sid.push_str(&format!(
                        "-{}",
                        u32::from_le_bytes([c[0], c[1], c[2], c[3]])
                    ));
                }
                sid
            }
            0x81 => utf16(b).split('\0').collect::<Vec<_>>().join(","),
            _ => String::new(),
        })
    }
}

/// FILETIME (100 ns since 1601) as RFC 3339 UTC with microseconds, as evtx_dump writes it.
fn filetime(ft: u64) -> String {
    const EPOCH_DIFF: i64 = 11_644_473_600;
    let secs = (ft / 10_000_000) as i64 - EPOCH_DIFF;
    let nanos = ((ft % 10_000_000) * 100) as u32;
    chrono::DateTime::from_timestamp(secs, nanos)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .unwrap_or_default()
}

pub mod fixture;

#[cfg(test)]
mod tests;
