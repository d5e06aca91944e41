//! Zeek TSV logs: `#`-directives describe the columns; `-` is unset, `(empty)` an empty set.

use std::borrow::Cow;

use crate::error::RecordError;
use crate::event::{Event, FieldId, Schema, Val};
use crate::fields::*;

#[derive(Debug, Clone)]
pub struct Header {
    separator: u8,
    unset: String,
    empty: String,
    path: String,
    columns: Vec<Option<FieldId>>,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            separator: b'\t',
            unset: "-".into(),
            empty: "(empty)".into(),
            path: "conn".into(),
            columns: Vec::new(),
        }
    }
}

impl Header {
    pub fn has_fields(&self) -> bool {
        !self.columns.is_empty()
    }

    /// Applies one `#` directive line.
    pub fn directive(&mut self, line: &str, schema: &Schema) {
        let line = line.trim_end_matches('\r');
        let (key, rest) =
            match line.split_once(|c: char| c == ' ' || c == char::from(self.separator)) {
                Some((k, r)) => (k, r),
                None => (line, ""),
            };
        match key {
            "#separator" => self.separator = unescape_sep(rest.trim()).unwrap_or(b'\t'),
            "#unset_field" => self.unset = rest.to_string(),
            "#empty_field" => self.empty = rest.to_string(),
            "#path" => self.path = rest.to_string(),
            "#fields" => {
                self.columns = rest
                    .split(char::from(self.separator))
                    .map(|c| {
                        zeek_column(c)
                            .or_else(|| schema.id(c))
                            .or_else(|| schema.id(&format!("zeek.{c}")))
                    })
                    .collect();
            }
            _ => {}
        }
    }

    /// Whether a row has as many columns as the header names (what [`Header::parse_row`]
    /// checks before it fills anything).
    pub fn row_shape_ok(&self, row: &[u8]) -> bool {
        !self.columns.is_empty()
            && memchr::memchr_iter(self.separator, row).count() + 1 == self.columns.len()
    }

    pub fn parse_row<'a>(&self, line: &'a str, ev: &mut Event<'a>) -> Result<(), RecordError> {
        if self.columns.is_empty() {
            return Err(RecordError::ZeekNoHeader);
        }
        let mut n = 0;
        for (i, v) in line.split(char::from(self.separator)).enumerate() {
            n = i + 1;
            let Some(Some(id)) = self.columns.get(i) else {
                continue;
            };
            if v == self.unset {
                continue;
            }
            if v == self.empty {
                ev.set(*id, Val::str(""));
            } else {
                ev.set(*id, Val::str(v));
            }
        }
        if n != self.columns.len() {
            return Err(RecordError::ZeekColumns {
                got: n,
                want: self.columns.len(),
            });
        }
        ev.set_default(EVENT_MODULE, Val::str("zeek"));
        match self.path.as_str() {
            "conn" => {
                ev.set_default(EVENT_DATASET, Val::str("zeek.conn"));
                ev.set_default(EVENT_CATEGORY, Val::str("network"));
            }
            "http" => {
                ev.set_default(EVENT_DATASET, Val::str("zeek.http"));
                ev.set_default(EVENT_CATEGORY, Val::str("network"));
                // The path is the request target up to its query or fragment.
                let uri: Option<&'a str> = match ev.get(URL_ORIGINAL) {
                    Some(Val::Str(Cow::Borrowed(u))) => Some(u),
                    _ => None,
                };
                if let Some(uri) = uri {
                    let path = uri.split(['?', '#']).next().unwrap_or(uri);
                    ev.set_default(URL_PATH, Val::str(path));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn unescape_sep(s: &str) -> Option<u8> {
    if let Some(hex) = s.strip_prefix("\\x") {
        return u8::from_str_radix(hex, 16).ok();
    }
    s.bytes().next()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn header_and_rows() {
        let s = Schema::new();
        let mut h = Header::default();
        h.directive("#separator \\x09", &s);
        h.directive("#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tconn_state", &s);
        let mut ev = Event::new(&s);
        h.parse_row(
            "1768039200.1\tC1\t203.0.113.7\t50000\t10.0.0.5\t11434\ttcp\t-\tSF",
            &mut ev,
        )
        .unwrap();
        assert_eq!(ev.str(SOURCE_IP), Some("203.0.113.7"));
        assert_eq!(ev.str(DESTINATION_PORT), Some("11434"));
        assert_eq!(ev.get(NETWORK_PROTOCOL), None);
        assert_eq!(ev.str(ZEEK_STATE), Some("SF"));
        assert_eq!(ev.str(EVENT_DATASET), Some("zeek.conn"));
        let mut ev = Event::new(&s);
        assert!(h
            .parse_row("1768039200.1\tC1\t203.0.113.7", &mut ev)
            .is_err());
        assert!(Header::default().parse_row("x", &mut ev).is_err());
    }

    /// Regression (review item 22): http.log's method and request target are ECS fields, so
    /// the admin-API rule sees a POST /api/pull in it.
    #[test]
    fn http_log_rows() {
        let s = Schema::new();
        let mut h = Header::default();
        h.directive("#separator \\x09", &s);
        h.directive("#path\thttp", &s);
        h.directive("#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\ttrans_depth\tmethod\thost\turi\tstatus_code", &s);
        let mut ev = Event::new(&s);
        h.parse_row(
            "1768039200.0\tC1\t203.0.113.7\t50000\t10.0.0.5\t11434\t1\tPOST\t10.0.0.5:11434\t/api/pull?insecure=true\t200",
            &mut ev,
        )
        .unwrap();
        assert_eq!(ev.str(HTTP_METHOD), Some("POST"));
        assert_eq!(ev.str(URL_ORIGINAL), Some("/api/pull?insecure=true"));
        assert_eq!(ev.str(URL_PATH), Some("/api/pull"));
        assert_eq!(ev.str(HTTP_STATUS), Some("200"));
        assert_eq!(ev.str(EVENT_DATASET), Some("zeek.http"));
    }
}
