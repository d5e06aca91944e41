//! The normalised event: a fixed set of slots, one per field any reader or rule uses.
//!
//! Readers only keep the fields someone asked for, so parsing a record costs one pass over its
//! bytes and no allocation for the fields nobody looks at. Strings borrow from the input chunk
//! whenever they need no unescaping.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Index of a field in a [`Schema`].
pub type FieldId = u16;

/// A field value as the readers produce it (ECS values are strings, numbers, booleans or
/// lists of those).
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
    List(Vec<Val<'a>>),
}

impl<'a> Val<'a> {
    pub fn str(s: &'a str) -> Self {
        Val::Str(Cow::Borrowed(s))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Integer view of numbers and numeric strings ("3" and 3 are the same event code).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Val::Num(n) if n.fract() == 0.0 => Some(*n as i64),
            Val::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// Boolean view that accepts the strings Windows and Zeek write.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Val::Bool(b) => Some(*b),
            Val::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Val::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    pub fn into_owned(self) -> Val<'static> {
        match self {
            Val::Null => Val::Null,
            Val::Bool(b) => Val::Bool(b),
            Val::Num(n) => Val::Num(n),
            Val::Str(s) => Val::Str(Cow::Owned(s.into_owned())),
            Val::List(l) => Val::List(l.into_iter().map(Val::into_owned).collect()),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Val::Null => serde_json::Value::Null,
            Val::Bool(b) => serde_json::Value::Bool(*b),
            Val::Num(n) => num_json(*n),
            Val::Str(s) => serde_json::Value::String(s.to_string()),
            Val::List(l) => serde_json::Value::Array(l.iter().map(Val::to_json).collect()),
        }
    }

    /// Text rendering used for grouping keys and table cells.
    pub fn to_text(&self) -> String {
        match self {
            Val::Null => String::new(),
            Val::Bool(b) => b.to_string(),
            Val::Num(n) => fmt_num(*n),
            Val::Str(s) => s.to_string(),
            Val::List(l) => l.iter().map(Val::to_text).collect::<Vec<_>>().join(" "),
        }
    }
}

pub(crate) fn fmt_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn num_json(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

/// One record, as slots indexed by [`FieldId`]. Reused across the records of a chunk.
#[derive(Debug, Default)]
pub struct Event<'a> {
    slots: Vec<Option<Val<'a>>>,
}

impl<'a> Event<'a> {
    pub fn new(schema: &Schema) -> Self {
        Event {
            slots: vec![None; schema.len()],
        }
    }

    pub fn clear(&mut self) {
        for s in &mut self.slots {
            *s = None;
        }
    }

    pub fn get(&self, id: FieldId) -> Option<&Val<'a>> {
        self.slots.get(usize::from(id)).and_then(Option::as_ref)
    }

    pub fn set(&mut self, id: FieldId, v: Val<'a>) {
        if let Some(s) = self.slots.get_mut(usize::from(id)) {
            *s = Some(v);
        }
    }

    /// Sets a field only when no reader filled it already (derived values never override
    /// what the record said).
    pub fn set_default(&mut self, id: FieldId, v: Val<'a>) {
        if let Some(s) = self.slots.get_mut(usize::from(id)) {
            if s.is_none() {
                *s = Some(v);
            }
        }
    }

    pub fn str(&self, id: FieldId) -> Option<&str> {
        self.get(id).and_then(Val::as_str)
    }

    pub fn take(&mut self, id: FieldId) -> Option<Val<'a>> {
        self.slots.get_mut(usize::from(id)).and_then(Option::take)
    }

    /// The filled slots, owned, for an alert.
    pub fn snapshot(&self) -> Vec<(FieldId, Val<'static>)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let v = v.as_ref()?;
                Some((FieldId::try_from(i).ok()?, v.clone().into_owned()))
            })
            .collect()
    }
}

/// FxHash: field paths are short and trusted-shaped, so a fast non-keyed hash is right here.
#[derive(Default)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// What a JSON path means to the readers: a field to keep, a prefix of such fields, or both.
#[derive(Debug, Clone, Copy, Default)]
pub struct PathInfo {
    pub leaf: Option<FieldId>,
    pub prefix: bool,
}

/// The set of fields in use: the core ECS fields the readers fill, then every field a rule names.
#[derive(Debug, Clone)]
pub struct Schema {
    names: Vec<String>,
    index: FxMap<String, FieldId>,
    json: FxMap<String, PathInfo>,
}

impl Default for Schema {
    fn default() -> Self {
        Self::new()
    }
}

impl Schema {
    pub fn new() -> Self {
        let mut s = Schema {
            names: Vec::new(),
            index: FxMap::default(),
            json: FxMap::default(),
        };
        for name in crate::fields::CORE {
            s.intern(name);
        }
        for (path, target) in crate::fields::JSON_ALIASES {
            if let Some(id) = s.id(target) {
                s.add_path(path, id);
            }
        }
        s
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn id(&self, name: &str) -> Option<FieldId> {
        self.index.get(name).copied()
    }

    pub fn name(&self, id: FieldId) -> &str {
        self.names.get(usize::from(id)).map_or("", String::as_str)
    }

    /// Adds a field (idempotent). Rules call this for every field they name.
    pub fn intern(&mut self, name: &str) -> FieldId {
        if let Some(id) = self.index.get(name) {
            return *id;
        }
        let id = FieldId::try_from(self.names.len()).unwrap_or(FieldId::MAX);
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), id);
        self.add_path(name, id);
        id
    }

    fn add_path(&mut self, path: &str, id: FieldId) {
        self.json
            .entry(path.to_string())
            .or_default()
            .leaf
            .get_or_insert(id);
        let mut end = 0;
        while let Some(dot) = path[end..].find('.') {
            end += dot;
            self.json.entry(path[..end].to_string()).or_default().prefix = true;
            end += 1;
        }
    }

    pub fn json_path(&self, path: &str) -> PathInfo {
        self.json.get(path).copied().unwrap_or_default()
    }
}
