//! A fast check that a line is one JSON object, for lines the prefilter rules out: they are
//! never parsed into an event, but a malformed one must still be reported.
//!
//! The check is conservative: `true` means serde_json accepts the line as an object
//! (syntax, UTF-8, nesting under its recursion limit); anything it is unsure of (exponents,
//! `\u` escapes, control bytes, very deep nesting, very long numbers) answers `false`, and
//! the caller parses the line properly to find out.

/// serde_json refuses nesting deeper than 128; stay well under it.
const MAX_DEPTH: usize = 100;
const MAX_NUMBER: usize = 300;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// After `{`: a key or `}`.
    FirstKey,
    /// After `,` in an object: a key.
    Key,
    /// After a key: `:`.
    Colon,
    /// After `[`: a value or `]`.
    FirstValue,
    /// After `:` or `,` in an array: a value.
    Value,
    /// After a value: `,` or the closing bracket.
    Next,
}

/// Whether `line` is certainly one well-formed JSON object (see the module docs).
pub fn is_plain_object(line: &[u8]) -> bool {
    if line.first() != Some(&b'{') || has_control(line) || std::str::from_utf8(line).is_err() {
        return false;
    }
    let mut stack = [0u8; MAX_DEPTH];
    let mut depth = 1usize;
    stack[0] = b'{';
    let mut state = State::FirstKey;
    let mut i = 1usize;
    let n = line.len();
    while i < n {
        let b = line[i];
        if b == b' ' {
            i += 1;
            continue;
        }
        match state {
            State::FirstKey | State::Key => {
                if b == b'}' && state == State::FirstKey {
                    depth -= 1;
                    i += 1;
                    if depth == 0 {
                        return rest_is_blank(&line[i..]);
                    }
                    state = State::Next;
                } else if b == b'"' {
                    match skip_string(line, i) {
                        Some(end) => i = end,
                        None => return false,
                    }
                    state = State::Colon;
                } else {
                    return false;
                }
            }
            State::Colon => {
                if b != b':' {
                    return false;
                }
                i += 1;
                state = State::Value;
            }
            State::FirstValue | State::Value => {
                if b == b']' && state == State::FirstValue {
                    depth -= 1;
                    i += 1;
                    state = State::Next;
                    continue;
                }
                match b {
                    b'{' | b'[' => {
                        let Some(slot) = stack.get_mut(depth) else {
                            return false;
                        };
                        *slot = b;
                        depth += 1;
                        i += 1;
                        state = if b == b'{' {
                            State::FirstKey
                        } else {
                            State::FirstValue
                        };
                    }
                    b'"' => {
                        match skip_string(line, i) {
                            Some(end) => i = end,
                            None => return false,
                        }
                        state = State::Next;
                    }
                    b't' | b'f' | b'n' => {
                        let word: &[u8] = match b {
                            b't' => b"true",
                            b'f' => b"false",
                            _ => b"null",
                        };
                        if !line[i..].starts_with(word) {
                            return false;
                        }
                        i += word.len();
                        state = State::Next;
                    }
                    b'-' | b'0'..=b'9' => {
                        match skip_number(line, i) {
                            Some(end) => i = end,
                            None => return false,
                        }
                        state = State::Next;
                    }
                    _ => return false,
                }
            }
            State::Next => {
                let open = stack.get(depth.wrapping_sub(1)).copied().unwrap_or(0);
                match (b, open) {
                    (b',', b'{') => state = State::Key,
                    (b',', _) => state = State::Value,
                    (b'}', b'{') | (b']', b'[') => {
                        depth -= 1;
                        if depth == 0 {
                            return rest_is_blank(&line[i + 1..]);
                        }
                    }
                    _ => return false,
                }
                i += 1;
            }
        }
    }
    false
}

fn rest_is_blank(rest: &[u8]) -> bool {
    rest.iter().all(|b| *b == b' ')
}

/// Any byte below 0x20 (control characters are not allowed raw in strings; tabs between
/// tokens are legal but rare enough to leave to the parser). Written to vectorise.
fn has_control(line: &[u8]) -> bool {
    let mut chunks = line.chunks_exact(32);
    for c in &mut chunks {
        if c.iter().fold(false, |acc, b| acc | (*b < 0x20)) {
            return true;
        }
    }
    chunks.remainder().iter().any(|b| *b < 0x20)
}

/// `line[at]` is `"`; returns the index after the closing quote.
fn skip_string(line: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    loop {
        let rest = line.get(i..)?;
        // Most strings are short: eight bytes at a time first, a vector search past that.
        let off = match quote_or_backslash_near(rest) {
            Some(off) => off,
            None => memchr::memchr2(b'"', b'\\', rest.get(SHORT..)?)? + SHORT,
        };
        i += off;
        if line[i] == b'"' {
            return Some(i + 1);
        }
        match line.get(i + 1)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
            _ => return None,
        }
    }
}

/// How far [`quote_or_backslash_near`] looks.
const SHORT: usize = 64;

/// The first `"` or `\` within the first [`SHORT`] bytes of `s`, eight bytes per step: a byte
/// equal to the searched one is a zero byte of the XOR, and `(x - 0x01..) & !x & 0x80..` marks
/// zero bytes (exactly at the lowest one, which is the one taken).
fn quote_or_backslash_near(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let end = s.len().min(SHORT);
    let mut i = 0;
    while i + 8 <= end {
        let mut word = [0u8; 8];
        word.copy_from_slice(&s[i..i + 8]);
        let w = u64::from_le_bytes(word);
        let q = w ^ (ONES * u64::from(b'"'));
        let b = w ^ (ONES * u64::from(b'\\'));
        let hits = (q.wrapping_sub(ONES) & !q & HIGHS) | (b.wrapping_sub(ONES) & !b & HIGHS);
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    s[i..end]
        .iter()
        .position(|&c| c == b'"' || c == b'\\')
        .map(|p| i + p)
}

/// JSON number without exponent; returns the index after it.
fn skip_number(line: &[u8], at: usize) -> Option<usize> {
    let mut i = at;
    if line.get(i) == Some(&b'-') {
        i += 1;
    }
    match line.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => {
            while line.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        _ => return None,
    }
    if line.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while line.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    if matches!(line.get(i), Some(b'e' | b'E' | b'0'..=b'9')) || i - at > MAX_NUMBER {
        return None;
    }
    Some(i)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {

    #[test]
    fn word_search_finds_the_first_quote_or_backslash() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 90) as usize;
            let s: Vec<u8> = (0..len)
                .map(|k| match (seed >> (k % 61)) % 23 {
                    0 => b'"',
                    1 => b'\\',
                    2 => 0x22 ^ 0x80,
                    3 => 0x5c ^ 0x01,
                    4 => 0,
                    5 => 0xff,
                    _ => b'a' + (k % 26) as u8,
                })
                .collect();
            let want = s.iter().take(SHORT).position(|&c| c == b'"' || c == b'\\');
            assert_eq!(quote_or_backslash_near(&s), want, "{s:?}");
        }
    }
    use super::*;

    fn serde_ok(s: &str) -> bool {
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(s).is_ok()
    }

    #[test]
    fn agrees_with_serde_where_it_answers() {
        let cases = [
            r#"{}"#,
            r#"{ }"#,
            r#"{"a":1}"#,
            r#"{"a":-0.5,"b":[1,2,{"c":null}],"d":true,"e":false,"f":"x\"y\\z\/\n"}"#,
            r#"{"a":[]}"#,
            r#"{"a":{}}"#,
            r#"{"a": [ 1 , 2 ] , "b" : { } }"#,
            r#"{"a":1,}"#,
            r#"{"a":1"#,
            r#"{"a" 1}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":-}"#,
            r#"{"a":tru}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":[1}"#,
            r#"{"a":{]}"#,
            r#"{a:1}"#,
            r#"{"a":1}}"#,
            r#"{"a":1} x"#,
            r#"{"a":"\q"}"#,
            r#"{"a":"unterminated}"#,
            r#"[1]"#,
            r#"{"a":1}{"b":2}"#,
            r#"{"é":"ü"}"#,
            r#"{,}"#,
            r#"{"a":1,"a":2}"#,
        ];
        for c in cases {
            // None of these has anything the check doubts, so it must agree exactly.
            assert_eq!(is_plain_object(c.as_bytes()), serde_ok(c), "{c}");
        }
    }

    #[test]
    fn unsure_cases_defer_to_the_parser() {
        for c in [
            r#"{"a":1e5}"#,
            r#"{"a":"\u0041"}"#,
            "{\"a\":\"tab\there\"}",
            "{\"a\":\t1}",
        ] {
            assert!(!is_plain_object(c.as_bytes()), "{c}");
        }
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(150), "]".repeat(150));
        assert!(!is_plain_object(deep.as_bytes()));
        assert!(!is_plain_object(&[
            b'{', b'"', 0xff, b'"', b':', b'1', b'}'
        ]));
    }
}
