//! Opening inputs: files or stdin, gzip and zstd recognised by their magic bytes.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::Path;

/// The first bytes of the decompressed stream (for detection) and the whole stream.
pub struct Opened {
    pub head: Vec<u8>,
    pub stream: Box<dyn Read + Send>,
    pub compression: Option<&'static str>,
    /// Bytes left out at the start (a UTF-8 byte order mark): where `stream` starts in the
    /// decompressed input, so reported offsets stay those of the file.
    pub start: u64,
}

/// The UTF-8 byte order mark Windows tools (PowerShell 5, Notepad) write at the start.
const BOM: &[u8] = b"\xef\xbb\xbf";

pub const HEAD: usize = 64 * 1024;

pub fn open(path: &Path) -> io::Result<Opened> {
    let raw: Box<dyn Read + Send> = if path.as_os_str() == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path)?)
    };
    let mut buf = BufReader::with_capacity(256 * 1024, raw);
    let magic = buf.fill_buf()?;
    let (decoded, compression): (Box<dyn Read + Send>, _) = if magic.starts_with(&[0x1f, 0x8b]) {
        (
            Box::new(flate2::bufread::MultiGzDecoder::new(buf)),
            Some("gzip"),
        )
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        (
            Box::new(zstd::stream::read::Decoder::with_buffer(buf)?),
            Some("zstd"),
        )
    } else {
        (Box::new(buf), None)
    };
    let mut head = Vec::with_capacity(HEAD);
    let mut decoded = decoded;
    // A file that fails early (a gzip cut off within its first 64 KiB) still yields what was
    // decoded before the failure; the error comes after it, where it happened.
    let rest: Box<dyn Read + Send> = match (&mut decoded).take(HEAD as u64).read_to_end(&mut head) {
        Ok(_) => decoded,
        Err(e) if head.is_empty() => return Err(e),
        Err(e) => Box::new(Failed(Some(e))),
    };
    let start = if head.starts_with(BOM) {
        head.drain(..BOM.len());
        BOM.len() as u64
    } else {
        0
    };
    let stream = Box::new(Cursor::new(head.clone()).chain(rest));
    Ok(Opened {
        head,
        stream,
        compression,
        start,
    })
}

/// A stream that ends in the error it stored.
struct Failed(Option<io::Error>);

impl Read for Failed {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        match self.0.take() {
            Some(e) => Err(e),
            None => Ok(0),
        }
    }
}
