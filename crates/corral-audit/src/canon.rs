//! Canonical JSON and the chain hash.
//!
//! Canonical form: compact (no whitespace), object keys sorted by their UTF-8 bytes, strings
//! escaped as serde_json escapes them (`"`, `\` and control characters only), integers in
//! decimal. The writer emits every line in this form and the verifier refuses lines that are
//! not in it, so duplicate keys, reordered keys or re-encoded strings count as edits.
//!
//! Chain hash of a record: `hex(sha256(prev || canonical(record without corral.chain.hash)))`,
//! where `prev` is the 64 lowercase hex characters of the previous record's hash (64 `0`s for
//! the first record of a log) and the record still carries `corral.chain.seq` and
//! `corral.chain.prev`.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// `prev` of the first record of a log.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub(crate) fn canonical(v: &Value) -> String {
    let mut out = String::with_capacity(512);
    write_value(v, &mut out);
    out
}

/// Appends `s` as a JSON string, escaped exactly as serde_json escapes it: `"` and `\`, the
/// short escapes `\b \t \n \f \r`, other control characters as `\u00xx` (lowercase hex),
/// everything else (DEL, non-ASCII) as it is.
pub(crate) fn write_str(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let bytes = s.as_bytes();
    if !needs_escape(bytes) {
        // The common case: nothing to escape.
        out.push_str(s);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            b'\t' => "\\t",
            b'\n' => "\\n",
            0x0c => "\\f",
            b'\r' => "\\r",
            0x00..=0x1f => "",
            _ => continue,
        };
        // `b` is ASCII, so `start..i` and `i + 1..` are on char boundaries.
        out.push_str(&s[start..i]);
        if short.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(short);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// True when `bytes` holds a control character, `"` or `\\`. Eight bytes per step: a word has
/// such a byte exactly when one of the classic "has a byte below n / equal to c" tests fires
/// (bytes of 0x80 and above never do).
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let has_below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH != 0;
    let has_zero = |w: u64| has_below(w, 1);
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        if has_below(w, 0x20)
            || has_zero(w ^ (ONES * u64::from(b'"')))
            || has_zero(w ^ (ONES * u64::from(b'\\')))
        {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

fn write_value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_str(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(k, out);
                out.push(':');
                if let Some(x) = m.get(k) {
                    write_value(x, out);
                }
            }
            out.push('}');
        }
    }
}

pub(crate) fn chain_hash(prev: &str, canonical_without_hash: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(canonical_without_hash.as_bytes());
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in h.finalize() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

pub(crate) fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The position of a record in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    pub seq: u64,
    pub prev: String,
    pub hash: String,
}

/// Why a line is not a valid chained record on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LineFault {
    /// Not a JSON object, or the chain fields are missing or of the wrong type.
    Malformed(&'static str),
    /// Empty, or only whitespace: no record at all, and nothing the writer writes, not even
    /// when a crash cuts a write short (the verifier tells it from [`LineFault::Malformed`]).
    Blank,
    /// Well-formed, but the bytes differ from what the hash covers.
    Edited(&'static str),
}

/// Parses one line (without its newline) and checks it against its own hash.
pub(crate) fn check_line(line: &[u8]) -> Result<(Link, Value), LineFault> {
    let mut v: Value =
        serde_json::from_slice(line).map_err(|_| LineFault::Malformed("not a JSON record"))?;
    let chain = v
        .get_mut("corral")
        .and_then(|c| c.get_mut("chain"))
        .and_then(Value::as_object_mut)
        .ok_or(LineFault::Malformed("missing corral.chain"))?;
    let seq = chain
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or(LineFault::Malformed("missing or invalid corral.chain.seq"))?;
    let prev = match chain.get("prev") {
        Some(Value::String(s)) if is_hash(s) => s.clone(),
        _ => return Err(LineFault::Malformed("missing or invalid corral.chain.prev")),
    };
    let hash = match chain.remove("hash") {
        Some(Value::String(s)) if is_hash(&s) => s,
        _ => return Err(LineFault::Malformed("missing or invalid corral.chain.hash")),
    };
    let without = canonical(&v);
    if chain_hash(&prev, &without) != hash {
        return Err(LineFault::Edited(
            "hash does not match the record's content",
        ));
    }
    // Put the hash back to compare the full line byte for byte with its canonical form.
    if let Some(c) = v
        .get_mut("corral")
        .and_then(|c| c.get_mut("chain"))
        .and_then(Value::as_object_mut)
    {
        c.insert("hash".into(), Value::String(hash.clone()));
    }
    if canonical(&v).as_bytes() != line {
        return Err(LineFault::Edited(
            "line is not in canonical form (keys, spacing or escapes changed)",
        ));
    }
    Ok((Link { seq, prev, hash }, v))
}

/// Adds `corral.chain` to `v` and returns the canonical line (without newline) and its hash.
pub(crate) fn seal(mut v: Value, seq: u64, prev: &str) -> (String, String) {
    let chain = serde_json::json!({ "seq": seq, "prev": prev });
    if let Value::Object(m) = &mut v {
        let corral = m
            .entry("corral")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Value::Object(c) = corral {
            c.insert("chain".into(), chain);
        }
    }
    let hash = chain_hash(prev, &canonical(&v));
    if let Some(Value::Object(c)) = v.get_mut("corral").and_then(|c| c.get_mut("chain")) {
        c.insert("hash".into(), Value::String(hash.clone()));
    }
    (canonical(&v), hash)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_escapes_them() {
        let mut cases: Vec<String> = (0u8..128).map(|b| char::from(b).to_string()).collect();
        cases.push(String::new());
        cases.push("plain text, nothing to escape".into());
        cases.push("mixed \u{1} \"q\" \\ é ✓ \u{7f} \u{2028}".into());
        // Every special byte at every offset of strings longer than one word, among plain
        // ASCII and multi-byte characters.
        for special in (0u8..0x20).chain([b'"', b'\\', 0x7f, b'!', b'#', b'[', b']']) {
            for len in [7usize, 8, 9, 15, 16, 17, 31] {
                for at in 0..len {
                    let mut v: Vec<char> = "aé✓Zbc ~".chars().cycle().take(len).collect();
                    v[at] = char::from(special);
                    cases.push(v.into_iter().collect());
                }
            }
        }
        for s in cases {
            let mut out = String::new();
            write_str(&s, &mut out);
            assert_eq!(out, serde_json::to_string(&s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn chain_hash_is_lowercase_hex_sha256() {
        // FIPS 180-2 test vector: sha256("abc").
        assert_eq!(
            chain_hash("", "abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(chain_hash("a", "bc"), chain_hash("", "abc"));
    }

    #[test]
    fn canonical_sorts_keys_and_is_compact() {
        let v = json!({"b": 1, "a": {"z": [1, "x\n\"y"], "@t": null}, "é": true});
        assert_eq!(
            canonical(&v),
            r#"{"a":{"@t":null,"z":[1,"x\n\"y"]},"b":1,"é":true}"#
        );
    }

    #[test]
    fn sealed_lines_check_and_edits_do_not() {
        let (line, hash) = seal(json!({"event": {"action": "proxy"}}), 1, GENESIS_PREV);
        let (link, _) = check_line(line.as_bytes()).unwrap();
        assert_eq!(link.hash, hash);
        assert_eq!(link.seq, 1);
        let edited = line.replace("proxy", "proxz");
        assert!(matches!(
            check_line(edited.as_bytes()),
            Err(LineFault::Edited(_))
        ));
        let spaced = line.replacen(':', ": ", 1);
        assert!(matches!(
            check_line(spaced.as_bytes()),
            Err(LineFault::Edited(_))
        ));
        let dup = line.replacen('{', r#"{"event":{"action":"x"},"#, 1);
        assert!(check_line(dup.as_bytes()).is_err());
        assert!(matches!(
            check_line(b"{\"a\":1}"),
            Err(LineFault::Malformed(_))
        ));
        assert!(matches!(check_line(b"\xff"), Err(LineFault::Malformed(_))));
    }
}
