//! Removing the usage-only chunk from an OpenAI-compatible event stream.
//!
//! With `stream_options.include_usage`, Ollama ends a `/v1/chat/completions` or
//! `/v1/completions` stream with one extra event whose `choices` is empty and which carries
//! `usage`. A client that did not ask for it may not expect a chunk without choices, so when
//! the gate asked on its behalf this filter drops that event and passes every other byte
//! through unchanged and in order.
//!
//! Events are delimited by a blank line. The bytes of the event being received are held back
//! until its end (Ollama writes each event whole, so this adds no delay in practice); an
//! event that grows past [`MAX_HELD`] cannot be a usage chunk and is passed on as it comes.

/// Longest event held back to be looked at. A usage chunk is a few hundred bytes.
pub const MAX_HELD: usize = 16 * 1024;

/// Incremental filter over the bytes of one SSE response.
#[derive(Debug, Clone)]
pub struct UsageChunkFilter {
    /// Bytes of the current event not yet passed on (only while `holding`).
    held: Vec<u8>,
    /// Whether the current event is being held back (else it streams through).
    holding: bool,
    /// Whether the current line has had no byte other than `\r` so far.
    line_empty: bool,
}

impl Default for UsageChunkFilter {
    fn default() -> Self {
        Self::new()
    }
}

impl UsageChunkFilter {
    pub fn new() -> UsageChunkFilter {
        UsageChunkFilter {
            held: Vec::new(),
            holding: true,
            line_empty: true,
        }
    }

    /// Feeds the next bytes of the response; returns the bytes to send on, which may be
    /// empty (an event still incomplete, or the usage chunk dropped).
    pub fn feed(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len());
        let mut start = 0;
        for (i, &b) in input.iter().enumerate() {
            match b {
                b'\n' if self.line_empty => {
                    self.end_event(&input[start..=i], &mut out);
                    start = i + 1;
                }
                b'\n' => self.line_empty = true,
                b'\r' => {}
                _ => self.line_empty = false,
            }
        }
        let rest = &input[start..];
        if self.holding {
            self.held.extend_from_slice(rest);
            if self.held.len() > MAX_HELD {
                out.append(&mut self.held);
                self.holding = false;
            }
        } else {
            out.extend_from_slice(rest);
        }
        out
    }

    /// The bytes still held back when the response ends: an event without its blank line.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }

    /// True when no bytes are held back.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    fn end_event(&mut self, tail: &[u8], out: &mut Vec<u8>) {
        if self.holding {
            self.held.extend_from_slice(tail);
            // An event longer than MAX_HELD is never dropped, however it was cut into pieces.
            if self.held.len() > MAX_HELD || !is_usage_chunk(&self.held) {
                out.extend_from_slice(&self.held);
            }
            self.held.clear();
        } else {
            out.extend_from_slice(tail);
        }
        self.holding = true;
        self.line_empty = true;
    }
}

/// An event whose data is a JSON object with an empty `choices` array and a `usage` object.
fn is_usage_chunk(event: &[u8]) -> bool {
    if memchr::memmem::find(event, b"\"usage\"").is_none() {
        return false;
    }
    let mut data = Vec::new();
    for line in event.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(v) = line.strip_prefix(b"data:") {
            if !data.is_empty() {
                data.push(b'\n');
            }
            data.extend_from_slice(v.strip_prefix(b" ").unwrap_or(v));
        }
    }
    let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice::<serde_json::Value>(&data)
    else {
        return false;
    };
    let no_choices =
        matches!(obj.get("choices"), Some(serde_json::Value::Array(a)) if a.is_empty());
    no_choices && matches!(obj.get("usage"), Some(serde_json::Value::Object(_)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const CONTENT: &[u8] = b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n";
    const FINISH: &[u8] = b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"stop\"}]}\n\n";
    const USAGE: &[u8] = b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34,\"total_tokens\":46}}\n\n";
    const DONE: &[u8] = b"data: [DONE]\n\n";

    fn stream() -> Vec<u8> {
        [CONTENT, CONTENT, FINISH, USAGE, DONE].concat()
    }

    fn expected() -> Vec<u8> {
        [CONTENT, CONTENT, FINISH, DONE].concat()
    }

    fn run(pieces: &[&[u8]]) -> Vec<u8> {
        let mut f = UsageChunkFilter::new();
        let mut out = Vec::new();
        for p in pieces {
            out.extend(f.feed(p));
        }
        out.extend(f.finish());
        out
    }

    #[test]
    fn drops_only_the_usage_chunk() {
        assert_eq!(run(&[&stream()]), expected());
        assert_eq!(run(&[CONTENT, CONTENT, FINISH, USAGE, DONE]), expected());
    }

    #[test]
    fn any_split_gives_the_same_bytes() {
        let s = stream();
        for cut in 0..=s.len() {
            assert_eq!(run(&[&s[..cut], &s[cut..]]), expected(), "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = s.chunks(1).collect();
        assert_eq!(run(&bytes), expected());
    }

    #[test]
    fn whole_events_pass_at_once() {
        let mut f = UsageChunkFilter::new();
        assert_eq!(f.feed(CONTENT), CONTENT);
        assert!(f.is_empty());
        assert!(f.feed(USAGE).is_empty());
        assert_eq!(f.feed(DONE), DONE);
    }

    #[test]
    fn crlf_and_multiline_data() {
        let usage = b"data: {\"choices\":[],\r\ndata: \"usage\":{\"prompt_tokens\":1}}\r\n\r\n";
        let content = b"data: {\"choices\":[{\"delta\":{}}],\"usage\":null}\r\n\r\n";
        assert_eq!(run(&[content, usage, DONE]), [&content[..], DONE].concat());
    }

    #[test]
    fn look_alikes_are_kept() {
        // Content mentioning usage, a null usage, choices present, a comment, broken JSON.
        let keep: &[&[u8]] = &[
            b"data: {\"choices\":[{\"delta\":{\"content\":\"\\\"usage\\\"\"}}]}\n\n",
            b"data: {\"choices\":[],\"usage\":null}\n\n",
            b"data: {\"choices\":[{}],\"usage\":{\"prompt_tokens\":1}}\n\n",
            b": \"usage\" comment\n\n",
            b"data: {\"choices\":[],\"usage\":{\n\n",
            b"data: {\"error\":{\"message\":\"upstream idle\"}}\n\n",
        ];
        for e in keep {
            assert_eq!(run(&[e]), e.to_vec(), "{}", String::from_utf8_lossy(e));
        }
    }

    #[test]
    fn an_event_without_its_blank_line_is_kept() {
        let partial = b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n";
        assert_eq!(run(&[CONTENT, partial]), [CONTENT, &partial[..]].concat());
    }

    #[test]
    fn large_events_stream_through() {
        let big = format!(
            "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{}\"}}}}]}}\n\n",
            "x".repeat(MAX_HELD * 2)
        );
        let mut f = UsageChunkFilter::new();
        let mut out = Vec::new();
        for piece in big.as_bytes().chunks(1000) {
            out.extend(f.feed(piece));
            assert!(f.held.len() <= MAX_HELD + 1000);
        }
        out.extend(f.feed(USAGE));
        out.extend(f.feed(DONE));
        out.extend(f.finish());
        assert_eq!(out, [big.as_bytes(), DONE].concat());
    }

    #[test]
    fn an_oversized_usage_event_is_kept_however_it_arrives() {
        let big = format!(
            "data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":1}},\"pad\":\"{}\"}}\n\n",
            "x".repeat(MAX_HELD)
        );
        assert_eq!(run(&[big.as_bytes()]), big.as_bytes());
        let pieces: Vec<&[u8]> = big.as_bytes().chunks(100).collect();
        assert_eq!(run(&pieces), big.as_bytes());
    }
}
