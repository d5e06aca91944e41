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

/// Why a body is not a JSON object the gate can decide on. `Display` is safe to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyJsonError {
    #[error("request body must be a JSON object")]
    NotObject,
    #[error("request body repeats a field name in one object")]
    DuplicateKey,
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
        Err(_) => Err(BodyJsonError::NotObject),
    }
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
        let bodies: &[&[u8]] = &[
            b"",
            b"[]",
            b"\"model\"",
            b"null",
            b"1",
            b"{",
            b"{\"a\":1}{\"b\":2}",
            b"{\"a\":1} x",
            b"\xef\xbb\xbf{\"a\":1}",
            b"{\"a\":NaN}",
            b"{\"a\":1e400}",
            b"{\"a\":\"\xff\"}",
            b"{\"a\":\"\\ud800\"}",
            b"{'a':1}",
            b"{\"a\":1,}",
        ];
        for b in bodies {
            assert_eq!(
                parse_body(b),
                Err(BodyJsonError::NotObject),
                "{}",
                String::from_utf8_lossy(b)
            );
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(parse_body(deep.as_bytes()), Err(BodyJsonError::NotObject));
        let ok = format!("{{\"a\":{}1{}}}", "[".repeat(100), "]".repeat(100));
        assert!(parse_body(ok.as_bytes()).is_ok());
    }
}
