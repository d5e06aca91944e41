//! A bare HTTP/1.1 pass-through proxy: the floor of `bench/gate.sh`.
//!
//! It does what nginx's bearer-checking configuration does (`bench/nginx.conf.in`) and nothing
//! more, on the same runtime as the gate: compare the `Authorization` header with one token,
//! drop it, set `Host`, and relay the request to a kept-alive upstream connection and the
//! answer back, streamed as it arrives. No routing, no body inspection, no audit record. The
//! gate's figures against it show what corral's own layers cost (its HTTP server, the key
//! check, the body's inspection, the decision, the usage tap, the audit record) apart from
//! the runtime and the kernel's loopback TCP, which the two share.
//!
//! A measuring instrument, not a proxy to run: it trusts its input (lengths as sent, no
//! timeouts) and serves loopback load generators only.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request or response head read.
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 64;
const UNAUTHORIZED: &[u8] = b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n\
WWW-Authenticate: Bearer\r\nContent-Length: 24\r\n\r\n{\"error\":\"unauthorized\"}";

/// Accepts connections until the listener fails; each relays to its own upstream connection.
pub async fn serve(listener: TcpListener, upstream: SocketAddr, authorization: String) {
    let authorization: std::sync::Arc<[u8]> = authorization.into_bytes().into();
    let host: std::sync::Arc<[u8]> = upstream.to_string().into_bytes().into();
    while let Ok((client, _)) = listener.accept().await {
        let _ = client.set_nodelay(true);
        tokio::spawn(connection(
            client,
            upstream,
            std::sync::Arc::clone(&authorization),
            std::sync::Arc::clone(&host),
        ));
    }
}

/// How a message's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
}

/// One parsed head: its length in the buffer, its framing, and whether the
/// `Authorization` header matched.
struct Head {
    len: usize,
    framing: Framing,
    authorized: bool,
}

async fn connection(
    mut client: TcpStream,
    upstream: SocketAddr,
    authorization: std::sync::Arc<[u8]>,
    host: std::sync::Arc<[u8]>,
) -> Option<()> {
    let mut up: Option<TcpStream> = None;
    let mut inbuf: Vec<u8> = Vec::with_capacity(4096);
    let mut upbuf: Vec<u8> = Vec::with_capacity(4096);
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let head = read_head(&mut client, &mut inbuf, |buf| {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            let httparse::Status::Complete(len) = req.parse(buf).ok()? else {
                return Some(None);
            };
            let authorized = req.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("authorization") && h.value == &authorization[..]
            });
            Some(Some(Head {
                len,
                framing: framing(req.headers)?,
                authorized,
            }))
        })
        .await?;
        let Framing::Length(body_len) = head.framing else {
            return None; // chunked requests are not part of the benchmark
        };
        fill(&mut client, &mut inbuf, head.len + body_len).await?;
        if !head.authorized {
            inbuf.drain(..head.len + body_len);
            client.write_all(UNAUTHORIZED).await.ok()?;
            continue;
        }
        out.clear();
        rewrite_head(inbuf.get(..head.len)?, &host, &mut out);
        out.extend_from_slice(inbuf.get(head.len..head.len + body_len)?);
        inbuf.drain(..head.len + body_len);

        if up.is_none() {
            let stream = TcpStream::connect(upstream).await.ok()?;
            let _ = stream.set_nodelay(true);
            up = Some(stream);
        }
        let upstream_conn = up.as_mut()?;
        upstream_conn.write_all(&out).await.ok()?;
        relay_response(upstream_conn, &mut client, &mut upbuf).await?;
    }
}

/// Reads until `parse` finds a whole head in `buf` (`Some(None)`: not yet; `None`: malformed).
async fn read_head<F>(s: &mut TcpStream, buf: &mut Vec<u8>, parse: F) -> Option<Head>
where
    F: Fn(&[u8]) -> Option<Option<Head>>,
{
    loop {
        if !buf.is_empty() {
            if let Some(head) = parse(buf)? {
                return Some(head);
            }
            if buf.len() > MAX_HEAD {
                return None;
            }
        }
        read_more(s, buf).await?;
    }
}

async fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    let start = buf.len();
    buf.resize(start + 16 * 1024, 0);
    let n = s.read(buf.get_mut(start..)?).await.ok();
    buf.truncate(start + n.unwrap_or(0));
    match n {
        Some(0) | None => None,
        Some(n) => Some(n),
    }
}

async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>, want: usize) -> Option<()> {
    while buf.len() < want {
        read_more(s, buf).await?;
    }
    Some(())
}

fn framing(headers: &[httparse::Header<'_>]) -> Option<Framing> {
    let mut framing = Framing::Length(0);
    for h in headers {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            framing = Framing::Chunked;
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value).ok()?.trim().parse().ok()?;
            framing = Framing::Length(n);
        }
    }
    Some(framing)
}

/// The request head without `Authorization`, with `Host` set to the upstream's.
fn rewrite_head(head: &[u8], host: &[u8], out: &mut Vec<u8>) {
    let mut lines = head.split(|&b| b == b'\n');
    if let Some(first) = lines.next() {
        out.extend_from_slice(first);
        out.push(b'\n');
    }
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let name = line.split(|&b| b == b':').next().unwrap_or(&[]);
        if name.eq_ignore_ascii_case(b"authorization") || name.eq_ignore_ascii_case(b"host") {
            continue;
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Host: ");
    out.extend_from_slice(host);
    out.extend_from_slice(b"\r\n\r\n");
}

/// Relays one response, writing each read to the client as it arrives.
async fn relay_response(
    up: &mut TcpStream,
    client: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Option<()> {
    buf.clear();
    let head = read_head(up, buf, |b| {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(len) = resp.parse(b).ok()? else {
            return Some(None);
        };
        Some(Some(Head {
            len,
            framing: framing(resp.headers)?,
            authorized: true,
        }))
    })
    .await?;
    match head.framing {
        Framing::Length(n) => {
            let total = head.len + n;
            let have = buf.len().min(total);
            client.write_all(buf.get(..have)?).await.ok()?;
            relay_exact(up, client, buf, total - have).await
        }
        Framing::Chunked => {
            let mut end = ChunkedEnd::default();
            let mut from = head.len;
            loop {
                let done = end.feed(buf.get(from..)?);
                let upto = done.map_or(buf.len(), |d| from + d);
                client.write_all(buf.get(..upto)?).await.ok()?;
                if done.is_some() {
                    return Some(());
                }
                buf.clear();
                read_more(up, buf).await?;
                from = 0;
            }
        }
    }
}

async fn relay_exact(
    up: &mut TcpStream,
    client: &mut TcpStream,
    buf: &mut Vec<u8>,
    mut rest: usize,
) -> Option<()> {
    while rest > 0 {
        buf.clear();
        let n = read_more(up, buf).await?.min(rest);
        client.write_all(buf.get(..n)?).await.ok()?;
        rest -= n;
    }
    Some(())
}

/// Finds where a chunked body ends, fed the bytes as they come.
#[derive(Default)]
struct ChunkedEnd {
    state: ChunkState,
    size: u64,
}

#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
enum ChunkState {
    #[default]
    Size,
    /// Past the size's digits (an extension, or the CR), until LF.
    SizeLine,
    Data,
    /// The CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk's size line: trailer lines, until an empty one.
    TrailerStart,
    TrailerLine,
}

impl ChunkedEnd {
    /// Returns the count of bytes of `bytes` up to and including the body's end, if it is in them.
    fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes.get(i).copied().unwrap_or(0);
            match self.state {
                ChunkState::Size => match (b as char).to_digit(16) {
                    Some(d) => self.size = self.size.saturating_mul(16).saturating_add(d.into()),
                    None if b == b'\n' => self.end_size_line(),
                    None => self.state = ChunkState::SizeLine,
                },
                ChunkState::SizeLine => {
                    if b == b'\n' {
                        self.end_size_line();
                    }
                }
                ChunkState::Data => {
                    let take =
                        (bytes.len() - i).min(usize::try_from(self.size).unwrap_or(usize::MAX));
                    self.size -= take as u64;
                    i += take;
                    if self.size == 0 {
                        self.state = ChunkState::DataEnd;
                    }
                    continue;
                }
                ChunkState::DataEnd => {
                    if b == b'\n' {
                        self.state = ChunkState::Size;
                    }
                }
                ChunkState::TrailerStart => {
                    if b == b'\n' {
                        return Some(i + 1);
                    }
                    if b != b'\r' {
                        self.state = ChunkState::TrailerLine;
                    }
                }
                ChunkState::TrailerLine => {
                    if b == b'\n' {
                        self.state = ChunkState::TrailerStart;
                    }
                }
            }
            i += 1;
        }
        None
    }

    fn end_size_line(&mut self) {
        self.state = if self.size == 0 {
            ChunkState::TrailerStart
        } else {
            ChunkState::Data
        };
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_end_of_a_chunked_body_is_found_across_any_split() {
        let body = b"5\r\nhello\r\n3;ext=1\r\n, w\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let end = body.len() - 4;
        for split in 0..body.len() {
            let mut e = ChunkedEnd::default();
            let (a, b) = body.split_at(split);
            let found = match e.feed(a) {
                Some(n) => n,
                None => split + e.feed(b).unwrap(),
            };
            assert_eq!(found, end, "split at {split}");
        }
        let mut e = ChunkedEnd::default();
        assert_eq!(e.feed(b"0\r\n\r\n"), Some(5));
        let mut e = ChunkedEnd::default();
        assert_eq!(e.feed(b"a\r\n0123456789\r\n"), None);
    }

    #[test]
    fn the_head_loses_authorization_and_gets_the_upstreams_host() {
        let mut out = Vec::new();
        rewrite_head(
            b"POST /api/chat HTTP/1.1\r\nHost: gate\r\nAuthorization: Bearer x\r\nContent-Length: 2\r\n\r\n",
            b"127.0.0.1:11434",
            &mut out,
        );
        assert_eq!(
            out,
            b"POST /api/chat HTTP/1.1\r\nContent-Length: 2\r\nHost: 127.0.0.1:11434\r\n\r\n"
        );
    }
}
