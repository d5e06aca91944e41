//! NDJSON records (ECS nested or dotted, Zeek JSON, evtx_dump JSONL, Winlogbeat, corral's
//! audit log) flattened straight into event slots by a serde visitor: keys are appended to one
//! reused path buffer, subtrees no field lives under are skipped without being built, and
//! strings without escapes are borrowed from the input.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::RecordError;
use crate::event::{Event, FieldId, Schema, Val};

/// Flattens one JSON object into `ev`. The caller clears `ev` first.
pub fn parse_object<'a>(
    schema: &Schema,
    line: &'a [u8],
    ev: &mut Event<'a>,
    path: &mut String,
) -> Result<(), RecordError> {
    path.clear();
    let mut de = serde_json::Deserializer::from_slice(line);
    let mut ctx = Ctx { schema, ev, path };
    de.deserialize_map(ObjVisitor { ctx: &mut ctx })?;
    Ok(de.end()?)
}

struct Ctx<'s, 'e, 'a> {
    schema: &'s Schema,
    ev: &'e mut Event<'a>,
    path: &'e mut String,
}

struct ObjVisitor<'c, 's, 'e, 'a> {
    ctx: &'c mut Ctx<'s, 'e, 'a>,
}

impl<'de: 'a, 'a> Visitor<'de> for ObjVisitor<'_, '_, '_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        let ctx = self.ctx;
        let base = ctx.path.len();
        while map.next_key_seed(KeySeed { path: ctx.path })?.is_some() {
            let info = ctx.schema.json_path(ctx.path);
            if info.leaf.is_none() && !info.prefix {
                map.next_value::<IgnoredAny>()?;
            } else {
                map.next_value_seed(NodeSeed {
                    ctx: &mut *ctx,
                    leaf: info.leaf,
                    prefix: info.prefix,
                })?;
            }
            ctx.path.truncate(base);
        }
        Ok(())
    }
}

/// Appends `.key` (or `key` at the top) to the path; the visitor truncates it back.
struct KeySeed<'p> {
    path: &'p mut String,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(v);
        Ok(())
    }
}

struct NodeSeed<'c, 's, 'e, 'a> {
    ctx: &'c mut Ctx<'s, 'e, 'a>,
    leaf: Option<FieldId>,
    prefix: bool,
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for NodeSeed<'_, '_, '_, 'a> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> NodeSeed<'_, '_, '_, 'a> {
    fn put(self, v: Val<'a>) {
        if let Some(id) = self.leaf {
            self.ctx.ev.set(id, v);
        }
    }
}

impl<'de: 'a, 'a> Visitor<'de> for NodeSeed<'_, '_, '_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.put(Val::Bool(v));
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.put(Val::Num(v as f64));
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.put(Val::Num(v as f64));
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.put(Val::Num(v));
        Ok(())
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
        self.put(Val::Str(Cow::Borrowed(v)));
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.put(Val::Str(Cow::Owned(v.to_string())));
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.put(Val::Null);
        Ok(())
    }
    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<(), M::Error> {
        if self.prefix {
            ObjVisitor { ctx: self.ctx }.visit_map(map)
        } else {
            IgnoredAny.visit_map(map).map(|_| ())
        }
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        if self.leaf.is_none() {
            return IgnoredAny.visit_seq(seq).map(|_| ());
        }
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(ScalarSeed)? {
            if let Some(v) = v {
                items.push(v);
            }
        }
        self.put(Val::List(items));
        Ok(())
    }
}

/// Elements of an array field: scalars kept, nested structures skipped.
struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Option<Val<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed {
    type Value = Option<Val<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(Val::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(Val::Num(v as f64)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Val::Num(v as f64)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(Val::Num(v)))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Val::Str(Cow::Borrowed(v))))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Val::Str(Cow::Owned(v.to_string()))))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
        IgnoredAny.visit_map(map).map(|_| None)
    }
    fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<Self::Value, S::Error> {
        IgnoredAny.visit_seq(seq).map(|_| None)
    }
}
