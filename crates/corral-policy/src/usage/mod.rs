//! Token counts from upstream responses.
//!
//! [`UsageTap`] sees every response chunk once and keeps a few dozen bytes of state, never
//! the body. It lexes just enough JSON to know when it is inside a string, so it reads a
//! count only from an object key (a string followed by `:`) spelled exactly like one of the
//! counters, and keeps the last value of each:
//!
//! - Ollama: `prompt_eval_count`, `eval_count` (final NDJSON line or the single object);
//! - OpenAI: `usage.prompt_tokens`, `usage.completion_tokens` (last SSE chunk or the object);
//! - Anthropic and `/v1/responses`: `input_tokens`, `output_tokens`.
//!
//! The last value wins because every format puts the totals at the end. Raw newlines cannot
//! occur inside JSON strings, so a newline resets the lexer, which bounds the damage of any
//! non-JSON line (SSE comments, `data: [DONE]`).
//!
//! The tap also notices an error the upstream reports inside a body it answered with a success
//! status ([`UsageTap::reported_error`]): Ollama ends a failed stream (a generation, a pull) with
//! a line `{"error":"..."}`, OpenAI-style servers with an event `data: {"error":{...}}`,
//! Anthropic-style ones with `event: error`. Only a line whose object opens with the key
//! `error` (with a value other than `null`) or an `error` (or `response.failed`) event counts,
//! so a key of that name inside generated text or tool-call arguments, or the Responses API's
//! `"error": null`, does not.
//!
//! And it notices whether a generation's stream reached its end marker
//! ([`UsageTap::saw_end`]): Ollama's `"done": true`, OpenAI's `data: [DONE]`, Anthropic's
//! `message_stop` event, the Responses API's `response.completed` (or `response.incomplete`).
//! A stream that stops in good order without one was cut short upstream (Ollama's OpenAI layer
//! drops a generation's error and just ends the stream).
//!
//! [`UsageChunkFilter`] removes from an OpenAI event stream the usage-only chunk that the
//! gate asked for on the client's behalf (see [`crate::decide::Verdict::hide_usage`]).

mod chunk_filter;

pub use chunk_filter::UsageChunkFilter;

/// How the response body is framed. All three are scanned the same way; the format is kept
/// for callers' records and for future framing-specific checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    /// `application/x-ndjson` (native streaming).
    Ndjson,
    /// `text/event-stream` (`/v1` streaming).
    Sse,
    /// A single JSON document.
    Json,
}

/// Token counts reported by the upstream; `None` when it reported none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
}

impl Usage {
    /// The tokens to charge to a key's token quotas for one answer: the upstream's counts,
    /// prompt and completion. A generation's stream that ended before its end marker (its
    /// client left, the upstream or the gate cut it) has no final counts, as every dialect sends
    /// them last: it is charged at least one completion token per event it carried
    /// (`cut_short_events`), each of which holds a token or more of output, or a few framing
    /// events. Without the upstream's prompt count (an answer cut before it, or a route whose
    /// answer has none), `prompt_estimate` stands in for it.
    pub fn tokens_to_charge(&self, cut_short_events: Option<u64>, prompt_estimate: u64) -> u64 {
        let prompt = self.prompt_tokens.unwrap_or(prompt_estimate);
        let completion = self.completion_tokens.unwrap_or(0);
        let completion = cut_short_events.map_or(completion, |n| completion.max(n));
        prompt.saturating_add(completion)
    }
}

/// Request-body bytes counted as one prompt token where the upstream gave no count: about what
/// a tokenizer makes of English text, and never fewer tokens than that for JSON around it.
pub const BODY_BYTES_PER_TOKEN: u64 = 4;

/// The prompt tokens charged for a forwarded request body of `bytes` whose answer carried no
/// prompt count.
pub fn prompt_estimate(bytes: u64) -> u64 {
    bytes.div_ceil(BODY_BYTES_PER_TOKEN)
}

/// Keys longer than this cannot be counters; their bytes are not kept.
const MAX_KEY: usize = 24;
/// More digits than this cannot be a token count.
const MAX_DIGITS: u8 = 19;

const KEYS: &[(&[u8], Counter)] = &[
    (b"prompt_eval_count", Counter::Prompt),
    (b"prompt_tokens", Counter::Prompt),
    (b"input_tokens", Counter::Prompt),
    (b"eval_count", Counter::Completion),
    (b"completion_tokens", Counter::Completion),
    (b"output_tokens", Counter::Completion),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counter {
    Prompt,
    Completion,
    /// Not a count: the first key of a line's object, spelled `error`.
    Error,
    /// Not a count: the key `done`, whose `true` ends an Ollama stream.
    Done,
    /// Not a count: the first key of a line's object, spelled `type`, whose value names the
    /// event (for servers that send SSE events without an `event:` line).
    Type,
}

/// How a line starts, read byte by byte until its first key opens (a few bytes per line):
/// blanks, then `{`, `data:` and `{`, or `event:` and a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lead {
    /// At the start of a line, or after blanks there.
    Start,
    /// Matched this many bytes of the word.
    Spelling(Word, u8),
    /// After `data:`, before the object.
    AfterData,
    /// `data: [DONE]` and blanks: the stream's end marker if nothing else follows.
    DoneSeen,
    /// After `event:`: the name is being collected (`event_len` bytes so far).
    EventName,
    /// After the line's opening `{`, before its first key.
    AfterBrace,
    /// The line's first key is open; the lexer reads it.
    FirstKey,
    /// Nothing more to learn on this line.
    Done,
}

/// The words a line may start with, spelled byte by byte by [`Lead::Spelling`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word {
    /// `data:` at the start of a line.
    Data,
    /// `event:` at the start of a line.
    Event,
    /// `[DONE]` after `data:`.
    DoneMarker,
}

impl Word {
    fn text(self) -> &'static [u8] {
        match self {
            Word::Data => b"data:",
            Word::Event => b"event:",
            Word::DoneMarker => b"[DONE]",
        }
    }
}

const ERROR: &[u8] = b"error";
const DONE_KEY: &[u8] = b"done";
const TYPE_KEY: &[u8] = b"type";
/// Longest event name kept; a longer one is none of those below.
const MAX_EVENT: usize = 24;
/// Events (an `event:` line, or the `type` that opens an event's object) that say the upstream
/// failed.
const ERROR_EVENTS: &[&[u8]] = &[b"error", b"response.failed"];
/// Events that end a generation's stream in order.
const END_EVENTS: &[&[u8]] = &[
    b"message_stop",
    b"response.completed",
    b"response.incomplete",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Outside strings, not after a counter key.
    Scan,
    /// Inside a string; `escaped` after a backslash.
    Str { escaped: bool },
    /// After a counter key's closing quote, before `:`.
    AfterKey(Counter),
    /// After `:`, before the first digit.
    BeforeValue(Counter),
    /// Reading digits.
    Value(Counter),
}

/// Incremental scanner over response bytes with constant memory.
#[derive(Debug, Clone)]
pub struct UsageTap {
    format: ResponseFormat,
    state: State,
    key: [u8; MAX_KEY],
    key_len: usize,
    key_overflow: bool,
    value: u64,
    digits: u8,
    usage: Usage,
    lead: Lead,
    reported_error: bool,
    saw_end: bool,
    /// The string being read is the value of a line's first key `type`.
    type_value: bool,
    event: [u8; MAX_EVENT],
    event_len: usize,
    /// Lines that opened a JSON object (NDJSON lines, SSE `data: {` lines): the stream's events.
    objects: u64,
}

impl UsageTap {
    pub fn new(format: ResponseFormat) -> UsageTap {
        UsageTap {
            format,
            state: State::Scan,
            key: [0; MAX_KEY],
            key_len: 0,
            key_overflow: false,
            value: 0,
            digits: 0,
            usage: Usage::default(),
            lead: Lead::Start,
            reported_error: false,
            saw_end: false,
            type_value: false,
            event: [0; MAX_EVENT],
            event_len: 0,
            objects: 0,
        }
    }

    /// How many events (lines opening a JSON object) the body carried so far.
    pub fn events(&self) -> u64 {
        self.objects
    }

    /// Whether the body carried an error of the upstream's own (see the module's docs): a
    /// response that began as a success and then failed.
    pub fn reported_error(&self) -> bool {
        // An event line at the very end of the body, with no newline after it, counts too.
        self.reported_error || self.pending_event_in(ERROR_EVENTS)
    }

    /// Whether the body carried a generation stream's end marker (see the module's docs).
    pub fn saw_end(&self) -> bool {
        self.saw_end || self.lead == Lead::DoneSeen || self.pending_event_in(END_EVENTS)
    }

    /// The event line being read names one of `names`.
    fn pending_event_in(&self, names: &[&[u8]]) -> bool {
        self.lead == Lead::EventName && names.contains(&self.event_name())
    }

    fn event_name(&self) -> &[u8] {
        self.event
            .get(..self.event_len)
            .unwrap_or(&[])
            .trim_ascii_end()
    }

    /// The framing this tap was created for.
    pub fn format(&self) -> ResponseFormat {
        self.format
    }

    /// Scans the next chunk. Chunks may split anything anywhere.
    ///
    /// Outside strings only `"` and newlines matter, and inside a string only `"`, `\` and
    /// newlines end the run of plain bytes. Those runs are skipped by [`next_special`]
    /// (generated text is almost all of a response); only the bytes that end them, and the few
    /// after a counter key or an escape, go through [`Self::step`].
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while !rest.is_empty() {
            if self.reading_lead() {
                // The lexer is in `Scan` here (a line starts there, and only a quote, which
                // ends the lead, leaves it), so it gets the same bytes it would otherwise.
                let Some((&b, tail)) = rest.split_first() else {
                    return;
                };
                self.lead_step(b);
                self.step(b);
                rest = tail;
                continue;
            }
            let at = if self.in_run() {
                let stop = next_special(rest);
                if self.state == (State::Str { escaped: false }) {
                    self.push_key_run(rest.get(..stop.unwrap_or(rest.len())).unwrap_or(&[]));
                }
                match stop {
                    Some(at) => at,
                    None => return,
                }
            } else {
                0
            };
            let Some((&b, tail)) = rest.get(at..).and_then(<[u8]>::split_first) else {
                return;
            };
            // A backslash outside strings is a plain byte; `step` leaves `Scan` as it is.
            self.step(b);
            rest = tail;
        }
    }

    /// Still reading how the line starts.
    fn reading_lead(&self) -> bool {
        !matches!(self.lead, Lead::FirstKey | Lead::Done)
    }

    fn lead_step(&mut self, b: u8) {
        let blank = matches!(b, b' ' | b'\t' | b'\r');
        self.lead = match (self.lead, b) {
            (Lead::DoneSeen, b'\n') => {
                self.saw_end = true;
                Lead::Start
            }
            (Lead::EventName, b'\n') => {
                self.reported_error |= self.pending_event_in(ERROR_EVENTS);
                self.saw_end |= self.pending_event_in(END_EVENTS);
                Lead::Start
            }
            (_, b'\n') => Lead::Start,
            (Lead::Start, _) if blank => Lead::Start,
            (Lead::Start | Lead::AfterData, b'{') => {
                self.objects = self.objects.saturating_add(1);
                Lead::AfterBrace
            }
            (Lead::Start, b'd') => Lead::Spelling(Word::Data, 1),
            (Lead::Start, b'e') => Lead::Spelling(Word::Event, 1),
            (Lead::AfterData, b'[') => Lead::Spelling(Word::DoneMarker, 1),
            (Lead::Spelling(w, n), _) if w.text().get(usize::from(n)) == Some(&b) => {
                if usize::from(n) + 1 < w.text().len() {
                    Lead::Spelling(w, n + 1)
                } else {
                    match w {
                        Word::Data => Lead::AfterData,
                        Word::Event => {
                            self.event_len = 0;
                            Lead::EventName
                        }
                        Word::DoneMarker => Lead::DoneSeen,
                    }
                }
            }
            (Lead::AfterData, _) if blank => Lead::AfterData,
            (Lead::DoneSeen, _) if blank => Lead::DoneSeen,
            (Lead::EventName, _) if blank && self.event_len == 0 => Lead::EventName,
            (Lead::EventName, _) => match self.event.get_mut(self.event_len) {
                Some(slot) => {
                    *slot = b;
                    self.event_len += 1;
                    Lead::EventName
                }
                None => Lead::Done,
            },
            (Lead::AfterBrace, _) if blank => Lead::AfterBrace,
            (Lead::AfterBrace, b'"') => Lead::FirstKey,
            _ => Lead::Done,
        };
    }

    /// In a state where only `"`, `\` and newlines matter (outside strings, or inside one
    /// and not after a backslash); the other states take bytes one by one.
    fn in_run(&self) -> bool {
        matches!(self.state, State::Scan | State::Str { escaped: false })
    }

    /// `push_key` for each byte of `run`: a run that does not fit spoils the key, which can
    /// then never be a counter.
    fn push_key_run(&mut self, run: &[u8]) {
        let end = self.key_len + run.len();
        match self.key.get_mut(self.key_len..end) {
            Some(dst) => {
                dst.copy_from_slice(run);
                self.key_len = end;
            }
            None => self.key_overflow = true,
        }
    }

    /// The counts seen so far (the last value of each counter).
    pub fn finish(&self) -> Usage {
        let mut u = self.usage;
        // A number cut off by the end of the body is still the upstream's last word.
        if let State::Value(c) = self.state {
            set(&mut u, c, self.value);
        }
        u
    }

    fn step(&mut self, b: u8) {
        if b == b'\n' {
            self.finish_value();
            self.state = State::Scan;
            self.lead = Lead::Start;
            self.type_value = false;
            return;
        }
        self.state = match self.state {
            State::Scan => {
                if b == b'"' {
                    self.key_len = 0;
                    self.key_overflow = false;
                    State::Str { escaped: false }
                } else {
                    State::Scan
                }
            }
            State::Str { escaped: true } => {
                self.push_key(b);
                State::Str { escaped: false }
            }
            State::Str { escaped: false } => match b {
                b'\\' => {
                    // An escape never appears in a counter key; remember it spoils this one.
                    self.key_overflow = true;
                    State::Str { escaped: true }
                }
                b'"' => {
                    let first = self.lead == Lead::FirstKey;
                    if first {
                        self.lead = Lead::Done;
                    }
                    if std::mem::take(&mut self.type_value) {
                        // `{"type":"NAME"`: the event's name, as an `event:` line gives it.
                        if !self.key_overflow {
                            self.reported_error |= ERROR_EVENTS.contains(&self.key());
                            self.saw_end |= END_EVENTS.contains(&self.key());
                        }
                        State::Scan
                    } else {
                        match self.counter() {
                            Some(c) => State::AfterKey(c),
                            None if first && !self.key_overflow && self.key() == ERROR => {
                                State::AfterKey(Counter::Error)
                            }
                            None if !self.key_overflow && self.key() == DONE_KEY => {
                                State::AfterKey(Counter::Done)
                            }
                            None if first && !self.key_overflow && self.key() == TYPE_KEY => {
                                State::AfterKey(Counter::Type)
                            }
                            None => State::Scan,
                        }
                    }
                }
                _ => {
                    self.push_key(b);
                    State::Str { escaped: false }
                }
            },
            State::AfterKey(c) => match b {
                b' ' | b'\t' | b'\r' => State::AfterKey(c),
                b':' => State::BeforeValue(c),
                _ => self.rescan(b),
            },
            State::BeforeValue(Counter::Error) => match b {
                b' ' | b'\t' | b'\r' => State::BeforeValue(Counter::Error),
                // `"error": null` (the Responses API's successful answers) is no error.
                b'n' => State::Scan,
                _ => {
                    self.reported_error = true;
                    self.rescan(b)
                }
            },
            State::BeforeValue(Counter::Type) => match b {
                b' ' | b'\t' | b'\r' => State::BeforeValue(Counter::Type),
                b'"' => {
                    self.type_value = true;
                    self.key_len = 0;
                    self.key_overflow = false;
                    State::Str { escaped: false }
                }
                _ => self.rescan(b),
            },
            State::BeforeValue(Counter::Done) => match b {
                b' ' | b'\t' | b'\r' => State::BeforeValue(Counter::Done),
                b't' => {
                    self.saw_end = true;
                    State::Scan
                }
                _ => self.rescan(b),
            },
            State::BeforeValue(c) => match b {
                b' ' | b'\t' | b'\r' => State::BeforeValue(c),
                b'0'..=b'9' => {
                    self.value = u64::from(b - b'0');
                    self.digits = 1;
                    State::Value(c)
                }
                _ => self.rescan(b),
            },
            State::Value(c) => match b {
                b'0'..=b'9' if self.digits < MAX_DIGITS => {
                    self.value = self.value * 10 + u64::from(b - b'0');
                    self.digits += 1;
                    State::Value(c)
                }
                b'0'..=b'9' => State::Scan,
                // A fraction or exponent is not a count.
                b'.' | b'e' | b'E' => State::Scan,
                _ => {
                    set(&mut self.usage, c, self.value);
                    self.rescan(b)
                }
            },
        };
    }

    /// Re-reads a byte that ended a key or value in the `Scan` state, so a quote that opens
    /// the next string is not lost.
    fn rescan(&mut self, b: u8) -> State {
        self.state = State::Scan;
        self.step(b);
        self.state
    }

    fn finish_value(&mut self) {
        if let State::Value(c) = self.state {
            set(&mut self.usage, c, self.value);
        }
    }

    fn push_key(&mut self, b: u8) {
        if self.key_len < MAX_KEY {
            self.key[self.key_len] = b;
            self.key_len += 1;
        } else {
            self.key_overflow = true;
        }
    }

    fn counter(&self) -> Option<Counter> {
        if self.key_overflow {
            return None;
        }
        let k = self.key();
        KEYS.iter().find(|(name, _)| *name == k).map(|(_, c)| *c)
    }

    fn key(&self) -> &[u8] {
        self.key.get(..self.key_len).unwrap_or(&[])
    }
}

/// Index of the first `"`, `\` or newline in `s`. Most runs are short (keys, `":`, small
/// numbers, one token of text), so the first 32 bytes are tested eight at a time, where
/// setting up a vectorised search would cost more than the search; `memchr` takes the rest.
fn next_special(s: &[u8]) -> Option<usize> {
    const SWAR_BYTES: usize = 32;
    let (head, tail) = s.split_at(s.len().min(SWAR_BYTES));
    let mut words = head.chunks_exact(8);
    let mut base = 0;
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let w = u64::from_le_bytes(w);
        let hits = zero_bytes(w ^ splat(b'"'))
            | zero_bytes(w ^ splat(b'\\'))
            | zero_bytes(w ^ splat(b'\n'));
        if hits != 0 {
            return Some(base + (hits.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    if let Some(i) = words
        .remainder()
        .iter()
        .position(|&b| matches!(b, b'"' | b'\\' | b'\n'))
    {
        return Some(base + i);
    }
    memchr::memchr3(b'"', b'\\', b'\n', tail).map(|i| i + SWAR_BYTES)
}

const fn splat(b: u8) -> u64 {
    0x0101_0101_0101_0101 * b as u64
}

/// The high bit of each byte of `v` that is zero, exactly (no carries between bytes).
const fn zero_bytes(v: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((v & LOW7).wrapping_add(LOW7)) | v | LOW7)
}

fn set(u: &mut Usage, c: Counter, v: u64) {
    match c {
        Counter::Prompt => u.prompt_tokens = Some(v),
        Counter::Completion => u.completion_tokens = Some(v),
        // Never reach a value: `BeforeValue` decides on the value's first byte.
        Counter::Error | Counter::Done | Counter::Type => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
