//! Ollama's server log: gin access lines, alone or behind a journalctl/syslog prefix, e.g.
//! `[GIN] 2026/01/10 - 10:00:00 | 200 |  1.234s |  203.0.113.7 | POST     "/api/pull"`.
//! Gin writes the server's local time; it is read as UTC.

use crate::event::{Event, Val};
use crate::fields::*;

/// What a line of the server log is.
pub enum Line {
    Access,
    /// Not an access line (start-up messages, model loading): not a record.
    Other,
    Malformed(&'static str),
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
