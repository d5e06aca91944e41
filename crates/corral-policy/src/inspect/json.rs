//! Request bodies as JSON trees, parsed strictly.
//!
//! serde_json keeps the last of two equal keys; Go's `encoding/json`, which Ollama uses, also
//! takes the last value for a struct field — unless that value is `null`, which leaves the
//! field as the earlier value set it. `{"model":"refused","model":null,"name":"allowed"}` is
//! therefore `name: allowed` to a `serde_json::Value` and `model: refused` to Ollama. Rather
//! than model Go's rules for every type, a body that repeats a key in any object is refused.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a body is not a JSON object the gate can decide on. `Display` is safe to show: it
/// never repeats anything from the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyJsonError {
    /// Valid JSON, or nothing at all, but not an object.
    #[error("request body must be a JSON object")]
    NotObject,
    /// Not JSON (a syntax error, text after the object, a number no float holds, invalid
    /// UTF-8): where the parser stopped, 1-based, counted in bytes.
    #[error("request body is not valid JSON (line {line}, column {column})")]
    Invalid { line: usize, column: usize },
    /// Deeper than serde_json's recursion limit (128).
    #[error("request body nests too deeply")]
    TooDeep,
    #[error("request body repeats a field name in one object")]
    DuplicateKey,
}

impl BodyJsonError {
    fn from_serde(e: &serde_json::Error, bytes: &[u8]) -> BodyJsonError {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return BodyJsonError::NotObject;
        }
        // serde_json has no public kind for its depth limit; its message is stable.
        if e.to_string().starts_with("recursion limit exceeded") {
            return BodyJsonError::TooDeep;
        }
        BodyJsonError::Invalid {
            line: e.line(),
            column: e.column(),
        }
    }
}

/// Parses a request body that must be one JSON object, refusing repeated keys at any depth.
/// Depth is bounded by serde_json's recursion limit.
pub fn parse_body(bytes: &[u8]) -> Result<Value, BodyJsonError> {
    let duplicate = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Strict(&duplicate)
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    match value {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(BodyJsonError::NotObject),
        Err(_) if duplicate.get() => Err(BodyJsonError::DuplicateKey),
        Err(e) => Err(BodyJsonError::from_serde(&e, bytes)),
    }
}

/// [`parse_body`] for a request body as Ollama reads it. Go's decoder reads a `\u` escape of a
/// UTF-16 surrogate that is not half of a pair (`"\ud83d"`, which `JSON.stringify` writes for
/// a string cut inside an emoji) as U+FFFD, where serde_json refuses the body. When `bytes`
/// has such escapes, they are rewritten to `\ufffd` (same length) and the rewritten bytes are
/// returned with the value: decide on that value and forward those bytes, which mean to
/// Ollama exactly what `bytes` meant.
pub fn parse_body_as_go(bytes: &[u8]) -> Result<(Value, Option<Vec<u8>>), BodyJsonError> {
    match parse_body(bytes) {
        Ok(v) => Ok((v, None)),
        Err(e) => {
            let Some(fixed) = replace_lone_surrogates(bytes) else {
                return Err(e);
            };
            let v = parse_body(&fixed)?;
            Ok((v, Some(fixed)))
        }
    }
}

/// `bytes` with every `\uXXXX` escape of a surrogate that Go's `encoding/json` would not pair
/// (a high surrogate not followed by a `\u` escape of a low one, or a low one on its own)
/// replaced by `\ufffd`; `None` when there is none. A backslash appears only inside strings
/// in JSON, so escapes are found by walking backslashes; `\\` is skipped as one escape.
fn replace_lone_surrogates(bytes: &[u8]) -> Option<Vec<u8>> {
    let hex4 = |at: usize| -> Option<u32> {
        if bytes.get(at..at + 2)? != b"\\u" {
            return None;
        }
        let digits = std::str::from_utf8(bytes.get(at + 2..at + 6)?).ok()?;
        u32::from_str_radix(digits, 16).ok()
    };
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        let Some(u) = hex4(i) else {
            // Any other escape, or a malformed one the parser will refuse.
            i += 2;
            continue;
        };
        if (0xD800..0xDC00).contains(&u)
            && hex4(i + 6).is_some_and(|l| (0xDC00..0xE000).contains(&l))
        {
            i += 12;
            continue;
        }
        if (0xD800..0xE000).contains(&u) {
            let o = out.get_or_insert_with(|| bytes.to_vec());
            o[i + 2..i + 6].copy_from_slice(b"fffd");
        }
        i += 6;
    }
    out
}

/// Builds a `Value` as serde_json's own visitor does, except that a repeated key in an
/// object sets the flag and fails the parse.
#[derive(Clone, Copy)]
struct Strict<'a>(&'a Cell<bool>);

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element_seed(self)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut obj = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if obj.contains_key(&key) {
                self.0.set(true);
                return Err(de::Error::custom("repeated key"));
            }
            let v = map.next_value_seed(self)?;
            obj.insert(key, v);
        }
        Ok(Value::Object(obj))
    }
}

/// Writes `body` (the decision's rewrite of the JSON object `original`) as the client wrote
/// it except where it changed: the top-level members appear in the client's order, and every
/// member not named in `rewritten`, or named but left equal, is copied from `original` byte
/// for byte. Members named in `rewritten` that changed are written from `body`, in place (or
/// after the others when the client did not send them).
///
/// Re-serialising the whole tree would sort every object's keys, and key order carries
/// meaning to Ollama: a JSON schema in `format` or `response_format` becomes a grammar that
/// generates the properties in their written order, and tool parameters reach the model's
/// prompt in theirs.
///
/// `original` must be the bytes [`parse_body`] accepted; `None` when it is not a JSON object.
pub fn rewrite_members(
    original: &[u8],
    body: &Map<String, Value>,
    rewritten: &[&str],
) -> Option<Vec<u8>> {
    let Members(members) = serde_json::from_slice(original).ok()?;
    let mut out = Vec::with_capacity(original.len() + 64);
    out.push(b'{');
    let mut first = true;
    let mut put = |out: &mut Vec<u8>, key: &str, text: &[u8]| -> Option<()> {
        if !first {
            out.push(b',');
        }
        first = false;
        serde_json::to_writer(&mut *out, key).ok()?;
        out.push(b':');
        out.extend_from_slice(text);
        Some(())
    };
    for (key, raw) in &members {
        if !rewritten.contains(&key.as_str()) {
            put(&mut out, key, raw.get().as_bytes())?;
            continue;
        }
        let Some(now) = body.get(key.as_str()) else {
            continue;
        };
        let before: Option<Value> = serde_json::from_str(raw.get()).ok();
        if before.as_ref() == Some(now) {
            put(&mut out, key, raw.get().as_bytes())?;
        } else {
            put(&mut out, key, &serde_json::to_vec(now).ok()?)?;
        }
    }
    for key in rewritten {
        if members.iter().any(|(k, _)| k == key) {
            continue;
        }
        if let Some(now) = body.get(*key) {
            put(&mut out, key, &serde_json::to_vec(now).ok()?)?;
        }
    }
    out.push(b'}');
    Some(out)
}

/// The top-level members of a JSON object in their written order, values as written.
struct Members<'a>(Vec<(String, &'a serde_json::value::RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Members<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'a>, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) =
                    map.next_entry::<String, &'a serde_json::value::RawValue>()?
                {
                    out.push((k, v));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn objects_parse_as_serde_json_parses_them() {
        let bodies: &[&str] = &[
            r#"{"model":"llama3.2","messages":[{"role":"user","content":"hi \u00e9 \ud83d\ude00"}]}"#,
            r#"{"a":1,"b":-2,"c":1.5,"d":1e300,"e":18446744073709551615,"f":-9223372036854775808}"#,
            r#"{"n":null,"t":true,"f":false,"s":"","a":[],"o":{},"x":[[[{"y":[1,{"z":2}]}]]]}"#,
            " \t\r\n{\"k\" : \"v\" } \n",
            r#"{"model":"x","options":{"num_ctx":4096},"keep_alive":"5m"}"#,
            r#"{"\u006dodel":"escaped key"}"#,
        ];
        for b in bodies {
            let want: Value = serde_json::from_str(b).unwrap();
            assert_eq!(parse_body(b.as_bytes()).unwrap(), want, "{b}");
        }
    }

    #[test]
    fn a_repeated_key_at_any_depth_is_refused() {
        let bodies: &[&str] = &[
            r#"{"model":"qwen2.5:7b","model":null,"name":"llama3.2"}"#,
            r#"{"model":"a","model":"a"}"#,
            r#"{"model":"llama3.2","options":{"num_ctx":1,"num_ctx":99999999}}"#,
            r#"{"messages":[{"role":"user","content":"x","content":"y"}]}"#,
            r#"{"a":[[{"b":{"c":1,"c":2}}]]}"#,
            // The same key spelled with an escape is the same key.
            r#"{"model":"a","\u006dodel":"b"}"#,
        ];
        for b in bodies {
            assert_eq!(
                parse_body(b.as_bytes()),
                Err(BodyJsonError::DuplicateKey),
                "{b}"
            );
        }
    }

    #[test]
    fn anything_but_one_object_is_refused() {
        let not_objects: &[&[u8]] = &[b"", b"  \n", b"[]", b"\"model\"", b"null", b"1"];
        for b in not_objects {
            assert_eq!(
                parse_body(b),
                Err(BodyJsonError::NotObject),
                "{}",
                String::from_utf8_lossy(b)
            );
        }
        // Text that is not JSON says so, and where, rather than that it is not an object.
        let invalid: &[(&[u8], usize, usize)] = &[
            (b"{", 1, 1),
            (b"{\"a\":1}{\"b\":2}", 1, 8),
            (b"{\"a\":1} x", 1, 9),
            (b"\xef\xbb\xbf{\"a\":1}", 1, 1),
            (b"{\"a\":NaN}", 1, 6),
            (b"{\"a\":1e400}", 1, 10),
            (b"{\"a\":\"\xff\"}", 1, 7),
            (b"{\"a\":\"\\ud800\"}", 1, 13),
            (b"{'a':1}", 1, 2),
            (b"{\"a\":1,}", 1, 8),
            (b"{\"model\":\n\"x\",", 2, 4),
        ];
        for (b, line, column) in invalid {
            let e = parse_body(b).unwrap_err();
            assert_eq!(
                e,
                BodyJsonError::Invalid {
                    line: *line,
                    column: *column
                },
                "{}",
                String::from_utf8_lossy(b)
            );
            assert!(e.to_string().starts_with("request body is not valid JSON"));
        }
    }

    #[test]
    fn rewritten_members_keep_the_clients_order_and_text() {
        let original = br#" {"model":"m","format":{"properties":{"b":{"type":"string"},"a":{"maximum":1e0}}},"keep_alive":-1 ,"options":{"z":0.50,"num_ctx":99999},"stream":true}"#;
        let mut body = parse_body(original).unwrap();
        let obj = body.as_object_mut().unwrap();
        obj.insert("keep_alive".into(), Value::from("30m"));
        obj.insert(
            "stream_options".into(),
            serde_json::json!({"include_usage": true}),
        );
        let out =
            rewrite_members(original, obj, &["keep_alive", "options", "stream_options"]).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"model":"m","format":{"properties":{"b":{"type":"string"},"a":{"maximum":1e0}}},"keep_alive":"30m","options":{"z":0.50,"num_ctx":99999},"stream":true,"stream_options":{"include_usage":true}}"#
        );
        // A changed nested member is written from the decision's value.
        obj.insert(
            "options".into(),
            serde_json::json!({"z": 0.5, "num_ctx": 32768}),
        );
        let out =
            rewrite_members(original, obj, &["keep_alive", "options", "stream_options"]).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, body_value(obj));
        assert!(std::str::from_utf8(&out)
            .unwrap()
            .starts_with(r#"{"model":"m","format":{"properties":{"b""#));
        // Escaped keys are the same keys.
        let escaped = br#"{"\u006beep_alive":-1,"model":"m"}"#;
        let mut b = parse_body(escaped).unwrap();
        b.as_object_mut()
            .unwrap()
            .insert("keep_alive".into(), Value::from("5m"));
        let out = rewrite_members(escaped, b.as_object().unwrap(), &["keep_alive"]).unwrap();
        assert_eq!(out, br#"{"keep_alive":"5m","model":"m"}"#);
        assert_eq!(rewrite_members(b"[1]", b.as_object().unwrap(), &[]), None);
    }

    fn body_value(m: &Map<String, Value>) -> Value {
        Value::Object(m.clone())
    }

    #[test]
    fn lone_surrogates_are_read_as_go_reads_them() {
        let cases: &[(&str, &str)] = &[
            (r#"{"a":"x\ud83d"}"#, r#"{"a":"x\ufffd"}"#),
            (r#"{"a":"\uDE00y"}"#, r#"{"a":"\ufffdy"}"#),
            (r#"{"a":"\ud83d\u0041"}"#, r#"{"a":"\ufffd\u0041"}"#),
            (
                r#"{"a":"\ud83d\ud83d\ude00"}"#,
                r#"{"a":"\ufffd\ud83d\ude00"}"#,
            ),
            (
                r#"{"\ud800":["\udbff",{"b":"\udfff"}]}"#,
                r#"{"\ufffd":["\ufffd",{"b":"\ufffd"}]}"#,
            ),
        ];
        for (body, fixed) in cases {
            let (v, out) = parse_body_as_go(body.as_bytes()).unwrap();
            assert_eq!(out.as_deref(), Some(fixed.as_bytes()), "{body}");
            assert_eq!(v, serde_json::from_str::<Value>(fixed).unwrap(), "{body}");
        }
        // Pairs, escaped backslashes and bodies serde_json reads are left alone.
        for body in [
            r#"{"a":"\ud83d\ude00"}"#,
            r#"{"a":"\\ud83d"}"#,
            r#"{"a":"é"}"#,
        ] {
            let (v, out) = parse_body_as_go(body.as_bytes()).unwrap();
            assert_eq!(out, None, "{body}");
            assert_eq!(v, serde_json::from_str::<Value>(body).unwrap());
        }
        // Other faults are still refused, repeated keys included.
        assert!(matches!(
            parse_body_as_go(br#"{"a":"\ud83d"#),
            Err(BodyJsonError::Invalid { .. })
        ));
        assert!(matches!(
            parse_body_as_go(br#"{"a":"\uzzzz"}"#),
            Err(BodyJsonError::Invalid { .. })
        ));
        assert_eq!(
            parse_body_as_go(br#"{"\ud800":1,"\udbff":2}"#),
            Err(BodyJsonError::DuplicateKey)
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(parse_body(deep.as_bytes()), Err(BodyJsonError::TooDeep));
        assert_eq!(
            BodyJsonError::TooDeep.to_string(),
            "request body nests too deeply"
        );
        let ok = format!("{{\"a\":{}1{}}}", "[".repeat(100), "]".repeat(100));
        assert!(parse_body(ok.as_bytes()).is_ok());
    }
}
