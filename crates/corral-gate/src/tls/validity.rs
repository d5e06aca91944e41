//! The validity period of the server's certificate, read from its DER encoding.
//!
//! rustls serves a certificate whatever its dates: an expired (or not yet valid) one starts
//! fine and then fails every client's handshake. Only the path to `validity` in
//! `Certificate → tbsCertificate` is decoded (RFC 5280 §4.1); anything else is skipped by
//! length, and an encoding this reader does not follow yields `None` (no verdict) rather
//! than an error: rustls has already accepted the certificate.

/// A UTC time as written in the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CertTime {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl CertTime {
    /// Seconds since 1970-01-01 00:00:00 UTC.
    pub(crate) fn unix(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86_400
            + i64::from(self.hour) * 3_600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }
}

impl std::fmt::Display for CertTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// `notBefore` and `notAfter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Validity {
    pub(crate) not_before: CertTime,
    pub(crate) not_after: CertTime,
}

/// Why a certificate cannot be served at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutOfDate {
    Expired(CertTime),
    NotYetValid(CertTime),
}

impl Validity {
    /// `now` in seconds since the Unix epoch.
    pub(crate) fn check(&self, now: i64) -> Result<(), OutOfDate> {
        if now > self.not_after.unix() {
            return Err(OutOfDate::Expired(self.not_after));
        }
        if now < self.not_before.unix() {
            return Err(OutOfDate::NotYetValid(self.not_before));
        }
        Ok(())
    }
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The validity of a DER-encoded X.509 certificate.
pub(crate) fn read(der: &[u8]) -> Option<Validity> {
    let (tag, cert, _) = tlv(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let first = tlv(tbs)?;
    // The explicit version, then the serial number.
    let (tag, _, mut rest) = if first.0 == VERSION {
        tlv(first.2)?
    } else {
        first
    };
    if tag != INTEGER {
        return None;
    }
    // signature AlgorithmIdentifier, issuer Name, then validity.
    for _ in 0..2 {
        let (t, _, r) = tlv(rest)?;
        if t != SEQUENCE {
            return None;
        }
        rest = r;
    }
    let (tag, validity, _) = tlv(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let (t1, v1, rest) = tlv(validity)?;
    let (t2, v2, _) = tlv(rest)?;
    Some(Validity {
        not_before: time(t1, v1)?,
        not_after: time(t2, v2)?,
    })
}

/// One DER element: its tag, its content and what follows it.
pub(crate) fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = rest.get(..n)?;
        rest = rest.get(n..)?;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// `UTCTime` (`YYMMDDHHMMSSZ`, years 1950–2049) or `GeneralizedTime` (`YYYYMMDDHHMMSSZ`),
/// the two forms RFC 5280 §4.1.2.5 allows.
pub(crate) fn time(tag: u8, v: &[u8]) -> Option<CertTime> {
    let (year, rest) = match tag {
        UTC_TIME if v.len() == 13 => {
            let yy = i64::from(digits(v.get(..2)?)?);
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, v.get(2..)?)
        }
        GENERALIZED_TIME if v.len() == 15 => (i64::from(digits(v.get(..4)?)?), v.get(4..)?),
        _ => return None,
    };
    if rest.last() != Some(&b'Z') {
        return None;
    }
    let field = |i: usize| rest.get(i..i + 2).and_then(digits);
    let t = CertTime {
        year,
        month: field(0)?,
        day: field(2)?,
        hour: field(4)?,
        minute: field(6)?,
        second: field(8)?,
    };
    let valid = (1..=12).contains(&t.month)
        && (1..=31).contains(&t.day)
        && t.hour < 24
        && t.minute < 60
        && t.second < 60;
    valid.then_some(t)
}

fn digits(s: &[u8]) -> Option<u32> {
    s.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

/// Days from 1970-01-01 to the given date of the proleptic Gregorian calendar
/// (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn cert_valid(from: (i32, u8, u8), to: (i32, u8, u8)) -> Vec<u8> {
        let mut p = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        p.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        p.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_both_dates_in_both_time_forms() {
        // rcgen writes UTCTime before 2050 and GeneralizedTime from 2050 on.
        let v = read(&cert_valid((2020, 1, 2), (2051, 3, 4))).unwrap();
        assert_eq!(v.not_before.to_string(), "2020-01-02 00:00:00 UTC");
        assert_eq!(v.not_after.to_string(), "2051-03-04 00:00:00 UTC");
        assert_eq!(v.not_before.unix(), 1_577_923_200);
        assert_eq!(v.not_after.unix(), 2_561_500_800);
    }

    #[test]
    fn tells_expired_from_not_yet_valid() {
        let v = read(&cert_valid((2020, 1, 1), (2021, 1, 1))).unwrap();
        let jan_2021 = 1_609_459_200;
        assert_eq!(v.check(jan_2021), Ok(()));
        assert!(matches!(v.check(jan_2021 + 1), Err(OutOfDate::Expired(_))));
        assert!(matches!(
            v.check(1_577_836_800 - 1),
            Err(OutOfDate::NotYetValid(_))
        ));
    }

    #[test]
    fn anything_else_has_no_verdict() {
        let good = cert_valid((2020, 1, 1), (2021, 1, 1));
        assert_eq!(read(b""), None);
        assert_eq!(read(b"\x30\x84\xff\xff\xff\xff"), None);
        assert_eq!(read(b"\x30\x85\x01\x00\x00\x00\x00\x00"), None);
        // Every truncation of a real certificate: no panic, and no verdict once a date is cut.
        for n in 0..good.len() {
            let _ = read(&good[..n]);
        }
        assert!(time(UTC_TIME, b"200101120000Z").is_some());
        assert_eq!(time(UTC_TIME, b"2001011200000Z"), None);
        assert_eq!(time(UTC_TIME, b"201301120000Z"), None);
        assert_eq!(time(UTC_TIME, b"200101120000X"), None);
        assert_eq!(time(UTC_TIME, b"20010112000aZ"), None);
        assert_eq!(time(GENERALIZED_TIME, b"20201301000000Z"), None);
        assert_eq!(time(0x04, b"200101000000Z"), None);
    }
}
