//! The sealed line of an [`AuditRecord`], written straight into a reused buffer.
//!
//! Byte for byte the canonical serialisation of [`AuditRecord::to_ecs`] with `corral.chain`
//! (see the crate docs), without building a JSON tree: object keys are written in their sorted
//! order by hand. The tests check it against the tree-based [`crate::canon::seal`].

use std::fmt::Write as _;

use std::net::IpAddr;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::canon::{chain_hash, write_str};
use crate::record::{limited, AuditRecord, ECS_VERSION, MAX_COMMON_NAMES};

/// Writes the sealed line of `rec` (without newline) into `out`, replacing its contents, and
/// returns the record's chain hash.
pub(crate) fn seal_record(rec: &AuditRecord, seq: u64, prev: &str, out: &mut String) -> String {
    out.clear();
    let hash_at = write_without_hash(rec, seq, prev, out);
    let hash = chain_hash(prev, out);
    // `"hash"` sorts first among the chain's keys.
    let mut field = String::with_capacity(80);
    field.push_str("\"hash\":");
    write_str(&hash, &mut field);
    field.push(',');
    out.insert_str(hash_at, &field);
    hash
}

/// Writes the canonical record without `corral.chain.hash`; returns the offset just inside
/// `"chain":{`, where the hash field belongs.
fn write_without_hash(rec: &AuditRecord, seq: u64, prev: &str, out: &mut String) -> usize {
    let path = rec.url_path.split('?').next().unwrap_or("");
    let duration_ns = u64::try_from(rec.duration.as_nanos()).unwrap_or(u64::MAX);

    out.push_str("{\"@timestamp\":");
    timestamp(&rec.timestamp, out);

    // corral.* in key order.
    out.push_str(",\"corral\":{\"bytes_in\":");
    num(rec.bytes_in, out);
    out.push_str(",\"bytes_out\":");
    num(rec.bytes_out, out);
    out.push_str(",\"chain\":{");
    let hash_at = out.len();
    out.push_str("\"prev\":");
    write_str(prev, out);
    out.push_str(",\"seq\":");
    num(seq, out);
    out.push_str("},\"clamps\":[");
    for (i, c) in rec.clamps.iter().take(32).enumerate() {
        if i > 0 {
            out.push(',');
        }
        text(c, 64, out);
    }
    out.push(']');
    if let Some(n) = rec.completion_tokens {
        out.push_str(",\"completion_tokens\":");
        num(n, out);
    }
    out.push_str(",\"decision\":");
    write_str(rec.decision.as_str(), out);
    opt_text(
        ",\"endpoint_class\":",
        rec.endpoint_class.as_deref(),
        32,
        out,
    );
    opt_text(",\"key_id\":", rec.key_id.as_deref(), 64, out);
    opt_text(",\"model\":", rec.model.as_deref(), 256, out);
    opt_text(",\"policy\":", rec.policy.as_deref(), 128, out);
    if let Some(n) = rec.prompt_tokens {
        out.push_str(",\"prompt_tokens\":");
        num(n, out);
    }
    opt_text(",\"reason\":", rec.reason.as_deref(), 512, out);
    opt_text(",\"route\":", rec.route.as_deref(), 64, out);
    out.push_str(",\"streamed\":");
    out.push_str(if rec.streamed { "true" } else { "false" });
    if let Some(n) = rec.upstream_status {
        out.push_str(",\"upstream_status\":");
        num(u64::from(n), out);
    }
    out.push('}');

    out.push_str(",\"ecs\":{\"version\":");
    write_str(ECS_VERSION, out);
    out.push_str("},\"event\":{\"action\":");
    text(&rec.action, 64, out);
    out.push_str(",\"category\":[\"web\"],\"duration\":");
    num(duration_ns, out);
    out.push_str(",\"kind\":\"event\",\"outcome\":");
    write_str(rec.outcome.as_str(), out);
    out.push_str(",\"type\":[\"access\",");
    write_str(rec.decision.event_type(), out);
    out.push_str("]},\"http\":{\"request\":{\"method\":");
    text(&rec.method, 32, out);
    out.push_str("},\"response\":{\"status_code\":");
    num(u64::from(rec.status_code), out);
    out.push_str("}},\"source\":{\"ip\":");
    ip(rec.source_ip, out);
    out.push('}');
    if let Some(tls) = &rec.tls_client {
        // client.hash sorts before client.x509.
        out.push_str(",\"tls\":{\"client\":{\"hash\":{\"sha256\":");
        text(&tls.sha256, 64, out);
        out.push('}');
        if !tls.common_names.is_empty() {
            out.push_str(",\"x509\":{\"subject\":{\"common_name\":[");
            for (i, n) in tls.common_names.iter().take(MAX_COMMON_NAMES).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                text(n, 256, out);
            }
            out.push_str("]}}");
        }
        out.push_str("}}");
    }
    out.push_str(",\"url\":{\"path\":");
    text(path, 1024, out);
    out.push('}');
    if let Some(name) = &rec.user_name {
        out.push_str(",\"user\":{\"name\":");
        text(name, 128, out);
        out.push('}');
    }
    out.push('}');
    hash_at
}

fn num(n: u64, out: &mut String) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// `ts` as `to_rfc3339_opts(SecondsFormat::Micros, true)` writes it, quoted, without going
/// through `fmt`: `YYYY-MM-DDTHH:MM:SS.ffffffZ`. Years outside 0..=9999 and leap seconds take
/// chrono's path.
fn timestamp(ts: &DateTime<Utc>, out: &mut String) {
    let secs = ts.timestamp();
    let nanos = ts.timestamp_subsec_nanos();
    let days = secs.div_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        write_str(&ts.to_rfc3339_opts(SecondsFormat::Micros, true), out);
        return;
    }
    let in_day = secs.rem_euclid(86_400);
    let mut b = *b"\"0000-00-00T00:00:00.000000Z\"";
    let mut put = |at: usize, width: usize, mut v: i64| {
        for i in (at..at + width).rev() {
            // `v` is non-negative and below 10^width here, so every digit is 0..=9.
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(1, 4, year);
    put(6, 2, month);
    put(9, 2, day);
    put(12, 2, in_day / 3600);
    put(15, 2, in_day / 60 % 60);
    put(18, 2, in_day % 60);
    put(21, 6, i64::from(nanos / 1000));
    // All ASCII by construction.
    out.push_str(std::str::from_utf8(&b).unwrap_or("\"\""));
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01 (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The address quoted, as `IpAddr`'s `Display` writes it (IPv4 by hand, IPv6 through `fmt`).
fn ip(addr: IpAddr, out: &mut String) {
    out.push('"');
    match addr {
        IpAddr::V4(v4) => {
            let mut buf = itoa::Buffer::new();
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(buf.format(octet));
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
    out.push('"');
}

fn text(s: &str, max: usize, out: &mut String) {
    write_str(&limited(s, max), out);
}

fn opt_text(key: &str, v: Option<&str>, max: usize, out: &mut String) {
    if let Some(s) = v {
        out.push_str(key);
        text(s, max, out);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::net::IpAddr;
    use std::time::Duration;

    use super::*;
    use crate::canon::{seal, GENESIS_PREV};
    use crate::record::{Decision, Outcome};

    fn oracle(rec: &AuditRecord, seq: u64, prev: &str) -> (String, String) {
        seal(rec.to_ecs(), seq, prev)
    }

    fn check(rec: &AuditRecord, seq: u64, prev: &str) {
        let mut out = String::new();
        let hash = seal_record(rec, seq, prev, &mut out);
        let (want, want_hash) = oracle(rec, seq, prev);
        assert_eq!(out, want);
        assert_eq!(hash, want_hash);
    }

    fn strings() -> Vec<String> {
        let mut v: Vec<String> = [
            "",
            "llama3.2:latest",
            "quote\" back\\slash",
            "ctl\u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1f}\u{7f}",
            "ünïcødé ✓ 𝄞",
            "Bearer crl_AbCdEfGhIjKl_SECRETsecret0123456789",
            "crl_short_x crl_AbCdEfGhIjKl_ crl_AbCdEfGhIjKl_s",
            "/api/chat?key=crl_AbCdEfGhIjKl_abc",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        v.push("x".repeat(2000));
        v.push("é".repeat(700));
        v
    }

    #[test]
    fn matches_the_tree_serialisation_for_every_shape() {
        let texts = strings();
        let mut n = 0u64;
        for (i, t) in texts.iter().enumerate() {
            let some = |k: usize| !(i + k).is_multiple_of(3);
            let mut rec = AuditRecord::new(
                t.clone(),
                if i % 2 == 0 {
                    IpAddr::from([127, 0, 0, 1])
                } else {
                    "::ffff:10.0.0.1".parse().unwrap()
                },
                t.clone(),
                t.clone(),
            );
            rec.status_code = [200, 401, 403, 502][i % 4];
            rec.duration = Duration::from_nanos(i as u64 * 123_457_891);
            rec.outcome = [Outcome::Success, Outcome::Failure, Outcome::Unknown][i % 3];
            rec.decision = if i % 2 == 0 {
                Decision::Allow
            } else {
                Decision::Deny
            };
            rec.user_name = some(1).then(|| t.clone());
            rec.key_id = some(2).then(|| t.clone());
            rec.policy = some(3).then(|| t.clone());
            rec.reason = some(4).then(|| t.clone().into());
            rec.endpoint_class = some(5).then(|| t.clone().into());
            rec.route = some(6).then(|| t.clone().into());
            rec.model = some(7).then(|| t.clone());
            rec.prompt_tokens = some(8).then_some(i as u64 * 1000);
            rec.completion_tokens = some(9).then_some(u64::MAX - i as u64);
            rec.upstream_status = some(10).then_some(200 + i as u16);
            rec.streamed = i % 2 == 1;
            rec.bytes_in = i as u64;
            rec.bytes_out = u64::MAX;
            rec.clamps = (0..(i * 4)).map(|k| format!("{t}{k}").into()).collect();
            rec.tls_client = some(11).then(|| {
                std::sync::Arc::new(crate::TlsClient {
                    common_names: (0..(i % 11)).map(|k| format!("{t}{k}")).collect(),
                    sha256: t.clone(),
                })
            });
            n += 1;
            check(&rec, n, GENESIS_PREV);
            check(&rec, u64::MAX, &"f".repeat(64));
        }
    }

    #[test]
    fn a_minimal_record_matches_too() {
        let rec = AuditRecord::new("proxy", IpAddr::from([10, 1, 2, 3]), "GET", "/");
        check(&rec, 1, GENESIS_PREV);
    }

    #[test]
    fn timestamps_are_written_as_chrono_writes_them() {
        use chrono::TimeZone;
        let mut secs: Vec<i64> = vec![
            0,
            -1,
            951_782_400,     // 2000-02-29
            4_107_542_400,   // 2100-03-01
            253_402_300_799, // 9999-12-31T23:59:59
            253_402_300_800, // year 10000: chrono's path
            -62_167_219_200, // 0000-01-01
            -62_167_219_201, // year -1: chrono's path
            1_795_000_000,
        ];
        // A fixed-seed walk over the whole 0..=9999 range and around today.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            secs.push((x % 315_537_897_600) as i64 - 62_167_219_200);
            secs.push(1_700_000_000 + (x % 400_000_000) as i64);
        }
        for (i, s) in secs.into_iter().enumerate() {
            let nanos = [0, 999, 1_000, 123_456_789, 999_999_999][i % 5];
            let ts = Utc.timestamp_opt(s, nanos).single().unwrap();
            let mut got = String::new();
            timestamp(&ts, &mut got);
            let mut want = String::new();
            write_str(&ts.to_rfc3339_opts(SecondsFormat::Micros, true), &mut want);
            assert_eq!(got, want, "{s}.{nanos}");
        }
        // A leap second (nanos past one second) is chrono's to write.
        let leap = Utc
            .timestamp_opt(1_483_228_799, 1_500_000_000)
            .single()
            .unwrap();
        let mut got = String::new();
        timestamp(&leap, &mut got);
        assert_eq!(got, "\"2016-12-31T23:59:60.500000Z\"");
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        let addrs: Vec<IpAddr> = [
            "0.0.0.0",
            "127.0.0.1",
            "255.255.255.255",
            "10.20.3.40",
            "::1",
            "::",
            "::ffff:10.0.0.1",
            "2001:db8::8a2e:370:7334",
            "fe80::1:2:3:4",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        for a in addrs {
            let mut got = String::new();
            ip(a, &mut got);
            assert_eq!(got, format!("\"{a}\""));
        }
    }

    #[test]
    fn numbers_are_plain_decimal() {
        for n in [0, 9, 10, 12_345, u64::MAX] {
            let mut got = String::new();
            num(n, &mut got);
            assert_eq!(got, n.to_string());
        }
    }
}
