//! Incremental decoder of a `Transfer-Encoding: chunked` response body (RFC 9112 §7.1).
//!
//! Pure: fed the bytes read so far, it takes what it can from the front of the buffer and says
//! what it found. Strict where laxness has been a smuggling vector: sizes are hex digits only
//! (no sign, no `0x`, at most 15 digits), lines end in CRLF, chunk data is followed by CRLF,
//! extensions and trailers are bounded and dropped.

use bytes::{Bytes, BytesMut};

/// Longest chunk-size line, extensions included.
const MAX_SIZE_LINE: usize = 4096;
/// Most bytes of trailer fields after the last chunk.
const MAX_TRAILERS: usize = 16 * 1024;
/// Most hex digits of a chunk size (15 keeps every size below 2^60).
const MAX_SIZE_DIGITS: usize = 15;

/// Why a chunked body is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("bad chunk size line")]
    BadSize,
    #[error("chunk size line too long")]
    SizeLineTooLong,
    #[error("chunk data not followed by CRLF")]
    MissingCrlf,
    #[error("trailers too large or malformed")]
    BadTrailers,
}

/// What the decoder found at the front of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Body bytes (part of a chunk, never empty).
    Data(Bytes),
    /// The last chunk and the trailers have been read: the message is complete.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk: this many data bytes to go.
    Data(u64),
    /// After a chunk's data: expecting CRLF.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one; bytes of trailers seen so far.
    Trailers(usize),
    Done,
}

/// The decoder's position in the body.
#[derive(Debug, Clone)]
pub struct Decoder {
    state: State,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder { state: State::Size }
    }

    /// True once the last chunk and its trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Takes the next piece off the front of `buf`. `Ok(None)`: more input is needed (what was
    /// consumed is remembered). After [`Step::End`], anything left in `buf` is not part of
    /// this body.
    ///
    /// A refusal leaves the decoder and `buf` at the bad bytes, so asking again refuses again:
    /// a caller may hand on the data it already has and report the error after.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Step>, ChunkError> {
        loop {
            match self.state {
                State::Done => return Ok(Some(Step::End)),
                State::Size => {
                    let Some(line_end) = find_crlf(buf, MAX_SIZE_LINE)? else {
                        return Ok(None);
                    };
                    let size = parse_size(&buf[..line_end])?;
                    let _ = buf.split_to(line_end + 2);
                    self.state = if size == 0 {
                        State::Trailers(0)
                    } else {
                        State::Data(size)
                    };
                }
                State::Data(left) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let take = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
                    let data = buf.split_to(take).freeze();
                    let rest = left - take as u64;
                    self.state = if rest == 0 {
                        State::DataEnd
                    } else {
                        State::Data(rest)
                    };
                    return Ok(Some(Step::Data(data)));
                }
                State::DataEnd => {
                    if buf.len() < 2 {
                        if buf.first().is_some_and(|&b| b != b'\r') {
                            return Err(ChunkError::MissingCrlf);
                        }
                        return Ok(None);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(ChunkError::MissingCrlf);
                    }
                    let _ = buf.split_to(2);
                    self.state = State::Size;
                }
                State::Trailers(seen) => {
                    let room = MAX_TRAILERS.saturating_sub(seen);
                    let Some(line_end) =
                        find_crlf(buf, room).map_err(|_| ChunkError::BadTrailers)?
                    else {
                        return Ok(None);
                    };
                    if buf[..line_end].iter().any(|&b| b == b'\r' || b == b'\n') {
                        return Err(ChunkError::BadTrailers);
                    }
                    let _ = buf.split_to(line_end + 2);
                    self.state = if line_end == 0 {
                        State::Done
                    } else {
                        State::Trailers(seen + line_end + 2)
                    };
                }
            }
        }
    }
}

/// Offset of the first CRLF in `buf`, looking at most `max` bytes before it; a bare LF is an
/// error.
fn find_crlf(buf: &[u8], max: usize) -> Result<Option<usize>, ChunkError> {
    let window = &buf[..buf.len().min(max + 1)];
    match window.iter().position(|&c| c == b'\n') {
        Some(lf) if lf > 0 && buf[lf - 1] == b'\r' => Ok(Some(lf - 1)),
        Some(_) => Err(ChunkError::BadSize),
        None if buf.len() > max => Err(ChunkError::SizeLineTooLong),
        None => Ok(None),
    }
}

/// `1*HEXDIG [ BWS ";" extensions ]`: the size, extensions ignored.
fn parse_size(line: &[u8]) -> Result<u64, ChunkError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > MAX_SIZE_DIGITS {
        return Err(ChunkError::BadSize);
    }
    let rest = &line[digits..];
    let ext = rest
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .map_or(&rest[rest.len()..], |i| &rest[i..]);
    if !ext.is_empty() && ext[0] != b';' {
        return Err(ChunkError::BadSize);
    }
    if ext.iter().any(|&b| b == b'\r' || b == 0) {
        return Err(ChunkError::BadSize);
    }
    let mut size = 0u64;
    for &b in &line[..digits] {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => b - b'A' + 10,
        };
        size = (size << 4) | u64::from(d);
    }
    Ok(size)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of `step` bytes; returns the body, whether it ended, and
    /// what was left after the end.
    fn run(input: &[u8], step: usize) -> Result<(Vec<u8>, bool, Vec<u8>), ChunkError> {
        let mut d = Decoder::new();
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut fed = 0;
        loop {
            match d.decode(&mut buf)? {
                Some(Step::Data(b)) => {
                    assert!(!b.is_empty());
                    body.extend_from_slice(&b);
                }
                Some(Step::End) => {
                    let rest = [&buf[..], &input[fed..]].concat();
                    return Ok((body, true, rest));
                }
                None => {
                    if fed == input.len() {
                        return Ok((body, false, buf.to_vec()));
                    }
                    let end = (fed + step).min(input.len());
                    buf.extend_from_slice(&input[fed..end]);
                    fed = end;
                }
            }
        }
    }

    fn every_split(input: &[u8]) -> Result<(Vec<u8>, bool, Vec<u8>), ChunkError> {
        let whole = run(input, input.len().max(1));
        for step in 1..=input.len().min(17) {
            assert_eq!(run(input, step), whole, "step {step}");
        }
        whole
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers_in_any_split() {
        let input =
            b"5\r\nhello\r\n1;name=value\r\n \r\nA \t; x\r\n0123456789\r\n0\r\nx-t: 1\r\n\r\nNEXT";
        let (body, ended, rest) = every_split(input).unwrap();
        assert_eq!(body, b"hello 0123456789");
        assert!(ended);
        assert_eq!(rest, b"NEXT");
    }

    #[test]
    fn a_refusal_stays_at_the_bad_bytes_and_repeats() {
        let cases: [&[u8]; 4] = [
            b"2\r\nab\r\nzz\r\n",                // bad size after good data
            b"2\r\nab\r\n3\r\ncdeXY",            // data not followed by CRLF
            b"2\r\nab\r\n-1\r\nx\r\n",           // signed size
            b"2\r\nab\r\n0\r\nbare\nlf\r\n\r\n", // bare LF in a trailer
        ];
        for input in cases {
            let mut d = Decoder::new();
            let mut buf = BytesMut::from(input);
            assert_eq!(
                d.decode(&mut buf),
                Ok(Some(Step::Data(Bytes::from_static(b"ab")))),
                "{input:?}"
            );
            let e = loop {
                match d.decode(&mut buf) {
                    Ok(Some(Step::Data(_))) => continue,
                    Ok(other) => panic!("{input:?}: no refusal, got {other:?}"),
                    Err(e) => break e,
                }
            };
            let at_refusal = buf.clone();
            for _ in 0..3 {
                assert_eq!(d.decode(&mut buf), Err(e), "{input:?}: refused differently");
                assert_eq!(
                    buf, at_refusal,
                    "{input:?}: a repeated refusal consumed bytes"
                );
            }
        }
    }

    #[test]
    fn an_unfinished_body_asks_for_more() {
        let (body, ended, _) = every_split(b"5\r\nhel").unwrap();
        assert_eq!(body, b"hel");
        assert!(!ended);
        let (_, ended, _) = every_split(b"0\r\n").unwrap();
        assert!(
            !ended,
            "the empty line after the last chunk is still missing"
        );
    }

    #[test]
    fn refuses_what_smuggling_relies_on() {
        let bad: &[&[u8]] = &[
            b"-5\r\nhello\r\n0\r\n\r\n",
            b"+5\r\nhello\r\n0\r\n\r\n",
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"1000000000000000\r\n",
            b"\r\n",
            b"5 x\r\nhello\r\n",
            b"0\r\nbad\ntrailer\r\n\r\n",
        ];
        for input in bad {
            assert!(
                every_split(input).is_err(),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let long = [b"1;".as_slice(), &[b'x'; MAX_SIZE_LINE]].concat();
        assert_eq!(run(&long, 64), Err(ChunkError::SizeLineTooLong));
        let trailers = [b"0\r\n".as_slice(), &b"x-a: b\r\n".repeat(4000)].concat();
        assert_eq!(run(&trailers, 512), Err(ChunkError::BadTrailers));
    }

    #[test]
    fn largest_sizes_do_not_overflow() {
        let (body, ended, _) = run(b"fffffffffffffff\r\nab", 1).unwrap();
        assert_eq!(body, b"ab");
        assert!(!ended);
    }
}
