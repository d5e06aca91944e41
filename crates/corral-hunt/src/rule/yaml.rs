//! A YAML tree that remembers the line of every node, so rule errors can point at it.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl Scalar {
    /// The text form a value has in a rule (numbers and booleans compare by text too).
    pub fn text(&self) -> String {
        match self {
            Scalar::Null => "null".into(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Str(s) => s.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    /// 1-based line in the source text.
    pub line: usize,
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(m) => m
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(Scalar::Str(s)) => Some(s),
            _ => None,
        }
    }

    pub fn scalar_text(&self) -> Option<String> {
        match &self.kind {
            Kind::Scalar(s) => Some(s.text()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Loads every document of a (multi-document) YAML text.
pub fn load(text: &str) -> Result<Vec<Node>, YamlError> {
    let mut b = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut b, true).map_err(|e| YamlError {
        line: e.marker().line(),
        col: e.marker().col() + 1,
        message: e.info().to_string(),
    })?;
    if let Some(err) = b.error {
        return Err(err);
    }
    Ok(b.docs)
}

enum Open {
    Seq(Vec<Node>, usize),
    Map(Vec<(Node, Node)>, Option<Node>, usize),
}

#[derive(Default)]
struct Builder {
    docs: Vec<Node>,
    stack: Vec<Open>,
    error: Option<YamlError>,
}

impl Builder {
    fn push(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Open::Seq(items, _)) => items.push(node),
            Some(Open::Map(pairs, key, _)) => match key.take() {
                None => *key = Some(node),
                Some(k) => pairs.push((k, node)),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::Scalar(v, style, _, _) => {
                let s = if style == TScalarStyle::Plain {
                    resolve(v)
                } else {
                    Scalar::Str(v)
                };
                self.push(Node {
                    kind: Kind::Scalar(s),
                    line,
                });
            }
            Event::SequenceStart(..) => self.stack.push(Open::Seq(Vec::new(), line)),
            Event::MappingStart(..) => self.stack.push(Open::Map(Vec::new(), None, line)),
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Open::Seq(items, l)) => self.push(Node {
                    kind: Kind::Seq(items),
                    line: l,
                }),
                Some(Open::Map(pairs, _, l)) => self.push(Node {
                    kind: Kind::Map(pairs),
                    line: l,
                }),
                None => {}
            },
            Event::Alias(_) => {
                if self.error.is_none() {
                    self.error = Some(YamlError {
                        line,
                        col: mark.col() + 1,
                        message: "YAML aliases are not supported in rules".into(),
                    });
                }
                self.push(Node {
                    kind: Kind::Scalar(Scalar::Null),
                    line,
                });
            }
            _ => {}
        }
    }
}

/// YAML 1.2 core schema resolution of plain scalars.
fn resolve(v: String) -> Scalar {
    match v.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
        "true" | "True" | "TRUE" => return Scalar::Bool(true),
        "false" | "False" | "FALSE" => return Scalar::Bool(false),
        _ => {}
    }
    if let Ok(i) = v.parse::<i64>() {
        return Scalar::Int(i);
    }
    if v.bytes().any(|b| b.is_ascii_digit()) && !v.contains(':') {
        if let Ok(f) = v.parse::<f64>() {
            if f.is_finite() {
                return Scalar::Float(f);
            }
        }
    }
    Scalar::Str(v)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_types() {
        let docs = load("a: 1\nb:\n  - x\n  - 'true'\n  - true\nc: ~\n---\nd: 2.5\n").unwrap();
        assert_eq!(docs.len(), 2);
        let b = docs[0].get("b").unwrap();
        assert_eq!(b.line, 3);
        let Kind::Seq(items) = &b.kind else { panic!() };
        assert_eq!(items[1].kind, Kind::Scalar(Scalar::Str("true".into())));
        assert_eq!(items[2].kind, Kind::Scalar(Scalar::Bool(true)));
        assert_eq!(items[2].line, 5);
        assert_eq!(docs[0].get("c").unwrap().kind, Kind::Scalar(Scalar::Null));
        assert_eq!(
            docs[1].get("d").unwrap().kind,
            Kind::Scalar(Scalar::Float(2.5))
        );
    }

    #[test]
    fn errors_have_lines() {
        let e = load("a: 1\nb: [x, y\nc: 2\n").unwrap_err();
        assert!(e.line >= 2, "{e:?}");
        let e = load("a: &x 1\nb: *x\n").unwrap_err();
        assert_eq!(e.line, 2);
    }
}
