//! Ollama's server log: gin access lines, alone or behind a journalctl/syslog prefix, e.g.
//! `[GIN] 2026/01/10 - 10:00:00 | 200 |  1.234s |  203.0.113.7 | POST     "/api/pull"`.
//! Gin writes the server's local time; it is read as UTC.
//!
//! `journalctl -o json` (one JSON object per entry) carries the same line in its `MESSAGE`
//! field: [`journal_message`] takes it out.

use crate::event::{Event, Val};
use crate::fields::*;

/// What a line of the server log is.
pub enum Line {
    Access,
    /// Not an access line (start-up messages, model loading): not a record.
    Other,
    Malformed(&'static str),
}

/// Whether a line looks like a `journalctl -o json` entry.
pub fn is_journal_entry(line: &[u8]) -> bool {
    line.first() == Some(&b'{')
        && memchr::memmem::find(line, b"\"MESSAGE\"").is_some()
        && memchr::memmem::find(line, b"\"__REALTIME_TIMESTAMP\"").is_some()
}

/// The `MESSAGE` of a `journalctl -o json` entry: a string, or (journald's form for a message
/// that is not valid UTF-8 or holds control bytes) an array of byte values. `Err` names what is
/// wrong with the entry; `Ok(None)` is an entry without a message.
pub fn journal_message(line: &[u8]) -> Result<Option<String>, &'static str> {
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(rename = "MESSAGE")]
        message: Option<serde_json::Value>,
    }
    let entry: Entry =
        serde_json::from_slice(line).map_err(|_| "journal entry is not a JSON object")?;
    Ok(match entry.message {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Array(items)) => {
            let bytes: Option<Vec<u8>> = items
                .iter()
                .map(|v| v.as_u64().and_then(|n| u8::try_from(n).ok()))
                .collect();
            let bytes = bytes.ok_or("journal MESSAGE array holds something other than bytes")?;
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        Some(serde_json::Value::Null) | None => None,
        Some(_) => return Err("journal MESSAGE is neither a string nor bytes"),
    })
}

pub fn parse_line<'a>(line: &'a str, ev: &mut Event<'a>) -> Line {
    let Some(at) = line.find("[GIN]") else {
        return Line::Other;
    };
    let rest = &line[at + 5..];
    let mut parts = rest.split('|');
    let (Some(ts), Some(status), Some(_latency), Some(client), Some(req)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Line::Malformed("gin access line with fewer than 5 fields");
    };
    let ts = ts.trim();
    let status = status.trim();
    if status.is_empty() || !status.bytes().all(|b| b.is_ascii_digit()) {
        return Line::Malformed("gin access line without a numeric status");
    }
    let req = req.trim();
    let Some((method, target)) = req.split_once(char::is_whitespace) else {
        return Line::Malformed("gin access line without method and path");
    };
    let target = target.trim().trim_matches('"');
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    ev.set(TIMESTAMP, Val::str(ts));
    ev.set(HTTP_STATUS, Val::str(status));
    let client = client.trim();
    if !client.is_empty() {
        ev.set(SOURCE_IP, Val::str(client));
    }
    ev.set(HTTP_METHOD, Val::str(method.trim()));
    ev.set(URL_PATH, Val::str(path));
    ev.set(URL_ORIGINAL, Val::str(target));
    ev.set_default(EVENT_MODULE, Val::str("ollama"));
    ev.set_default(EVENT_DATASET, Val::str("ollama.access"));
    ev.set_default(EVENT_CATEGORY, Val::str("web"));
    Line::Access
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::event::Schema;

    #[test]
    fn journal_prefixed_line() {
        let s = Schema::new();
        let mut ev = Event::new(&s);
        let l = "Jan 10 10:00:00 gpu1 ollama[811]: [GIN] 2026/01/10 - 10:00:00 | 200 |  1.234s |  203.0.113.7 | POST     \"/api/pull?insecure=1\"";
        assert!(matches!(parse_line(l, &mut ev), Line::Access));
        assert_eq!(ev.str(SOURCE_IP), Some("203.0.113.7"));
        assert_eq!(ev.str(URL_PATH), Some("/api/pull"));
        assert_eq!(ev.str(URL_ORIGINAL), Some("/api/pull?insecure=1"));
        assert_eq!(ev.str(HTTP_METHOD), Some("POST"));
        assert_eq!(ev.str(HTTP_STATUS), Some("200"));
    }

    #[test]
    fn journal_json_entries() {
        let line = br#"{"__REALTIME_TIMESTAMP":"1768039441000000","_SYSTEMD_UNIT":"ollama.service","MESSAGE":"[GIN] 2026/01/10 - 10:04:01 | 200 |  1.234s |  203.0.113.7 | POST     \"/api/pull\"","SYSLOG_IDENTIFIER":"ollama"}"#;
        assert!(is_journal_entry(line));
        let msg = journal_message(line).unwrap().unwrap();
        let s = Schema::new();
        let mut ev = Event::new(&s);
        assert!(matches!(parse_line(&msg, &mut ev), Line::Access));
        assert_eq!(ev.str(URL_PATH), Some("/api/pull"));
        assert_eq!(ev.str(SOURCE_IP), Some("203.0.113.7"));
        // journald's byte-array form.
        let bytes = br#"{"__REALTIME_TIMESTAMP":"1","MESSAGE":[91,71,73,78,93,255]}"#;
        assert_eq!(
            journal_message(bytes).unwrap().as_deref(),
            Some("[GIN]\u{fffd}")
        );
        assert_eq!(
            journal_message(br#"{"__REALTIME_TIMESTAMP":"1"}"#),
            Ok(None)
        );
        assert!(journal_message(br#"{"MESSAGE":[1,300]}"#).is_err());
        assert!(journal_message(br#"{"MESSAGE":{"a":1}}"#).is_err());
        assert!(journal_message(b"{\"MESSAGE\": ").is_err());
        assert!(!is_journal_entry(b"[GIN] x"));
        assert!(!is_journal_entry(br#"{"message":"[GIN]"}"#));
    }

    #[test]
    fn other_and_malformed() {
        let s = Schema::new();
        let mut ev = Event::new(&s);
        assert!(matches!(
            parse_line("time=2026 level=INFO msg=\"listening\"", &mut ev),
            Line::Other
        ));
        assert!(matches!(
            parse_line("[GIN] 2026/01/10 - 10:00:00 | 200", &mut ev),
            Line::Malformed(_)
        ));
        assert!(matches!(
            parse_line("[GIN] x | abc | 1s | 1.2.3.4 | GET \"/\"", &mut ev),
            Line::Malformed(_)
        ));
    }
}
