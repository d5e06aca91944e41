//! Timestamps of the formats, as milliseconds since the Unix epoch. Only parsed for alerts
//! and windowed rules, never in the hot loop.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

use crate::event::Val;

/// RFC 3339 / ISO 8601 strings, epoch seconds (Zeek `ts`, numeric or text), Windows
/// `SystemTime` (`2026-01-10T10:00:00.123456Z`), and `2026-01-10 10:00:00.123` (Sysmon UtcTime).
pub fn parse_val(v: &Val<'_>) -> Option<i64> {
    match v {
        Val::Num(n) => epoch_secs(*n),
        Val::Str(s) => parse_str(s),
        _ => None,
    }
}

pub fn parse_str(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_millis());
    }
    if let Ok(n) = s.parse::<f64>() {
        return epoch_secs(n);
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y/%m/%d - %H:%M:%S",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), fmt) {
            return Some(Utc.from_utc_datetime(&dt).timestamp_millis());
        }
    }
    None
}

fn epoch_secs(n: f64) -> Option<i64> {
    if n.is_finite() && n > 0.0 && n < 1.0e11 {
        Some((n * 1000.0).round() as i64)
    } else {
        None
    }
}

pub fn format_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let want = Some(1_768_039_200_000);
        assert_eq!(parse_str("2026-01-10T10:00:00Z"), want);
        assert_eq!(parse_str("2026-01-10T10:00:00.000+00:00"), want);
        assert_eq!(parse_str("2026/01/10 - 10:00:00"), want);
        assert_eq!(parse_str("2026-01-10 10:00:00.000"), want);
        assert_eq!(parse_str("1768039200.0"), want);
        assert_eq!(parse_val(&Val::Num(1_768_039_200.0)), want);
        assert_eq!(parse_str("yesterday"), None);
        assert_eq!(format_ms(1_768_039_200_000), "2026-01-10T10:00:00.000Z");
    }
}
