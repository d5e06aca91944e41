//! What the gate reads itself from a certificate revocation list (RFC 5280 §5.1): its
//! version, issuer, `nextUpdate` and whether it has a CRL number. webpki parses and checks the
//! list; this reader only serves clearer messages (a v1 list, one without a CRL number), the
//! check that every client CA has a list, and the warning for a list past its `nextUpdate`.
//! As in `validity.rs`, an encoding this reader does not follow yields `None`.

use super::validity::{time, tlv, CertTime};

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const EXTENSIONS: u8 = 0xa0;

/// 2.5.29.20 (cRLNumber).
const OID_CRL_NUMBER: &[u8] = &[0x55, 0x1d, 0x14];

/// The parts of a CRL read here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CrlFacts {
    /// `version` is present (v2); a v1 list has none.
    pub(crate) v2: bool,
    /// The issuer `Name`, whole DER element (as compared with a CA's subject).
    pub(crate) issuer: Vec<u8>,
    pub(crate) next_update: Option<CertTime>,
    pub(crate) has_crl_number: bool,
}

/// Reads a DER `CertificateList`.
pub(crate) fn read(der: &[u8]) -> Option<CrlFacts> {
    let (tag, list, _) = tlv(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = tlv(list)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, _, mut rest) = tlv(tbs)?;
    let v2 = tag == INTEGER;
    if v2 {
        // The signature AlgorithmIdentifier follows the version.
        let (t, _, r) = tlv(rest)?;
        if t != SEQUENCE {
            return None;
        }
        rest = r;
    } else if tag != SEQUENCE {
        return None;
    }
    let (t, _, after_issuer) = tlv(rest)?;
    if t != SEQUENCE {
        return None;
    }
    let issuer = rest.get(..rest.len() - after_issuer.len())?.to_vec();
    let (t, _, mut rest) = tlv(after_issuer)?;
    if t != UTC_TIME && t != GENERALIZED_TIME {
        return None;
    }
    let mut next_update = None;
    if let Some((t, v, r)) = tlv(rest) {
        if t == UTC_TIME || t == GENERALIZED_TIME {
            next_update = time(t, v);
            rest = r;
        }
    }
    let mut has_crl_number = false;
    while let Some((t, v, r)) = tlv(rest) {
        if t == EXTENSIONS {
            if let Some((SEQUENCE, list, _)) = tlv(v) {
                let mut exts = list;
                while let Some((t, ext, r)) = tlv(exts) {
                    if t == SEQUENCE
                        && matches!(tlv(ext), Some((OID, oid, _)) if oid == OID_CRL_NUMBER)
                    {
                        has_crl_number = true;
                    }
                    exts = r;
                }
            }
        }
        rest = r;
    }
    Some(CrlFacts {
        v2,
        issuer,
        next_update,
        has_crl_number,
    })
}

/// What to tell about a list webpki refused, when this reader sees why: a v1 list or one
/// without a CRL number (webpki says `BadDer` and `MalformedExtensions`).
pub(crate) fn unsupported(der: &[u8]) -> Option<&'static str> {
    let facts = read(der)?;
    let what = if !facts.v2 {
        "it is a version 1 CRL"
    } else if !facts.has_crl_number {
        "it has no CRL number"
    } else {
        return None;
    };
    Some(what)
}

/// The advice that follows [`unsupported`].
pub(crate) const V2_REQUIRED: &str = "a v2 CRL with a CRL number is required (with `openssl ca \
     -gencrl`, give the CA configuration a `crlnumber` file, e.g. `echo 1000 > crlnumber` and \
     `crlnumber = .../crlnumber` in its CA section)";

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, IsCa,
        KeyIdMethod, KeyPair, KeyUsagePurpose, SerialNumber,
    };

    #[test]
    fn reads_the_issuer_the_next_update_and_the_crl_number() {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, "crl CA");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let ca = p.self_signed(&key).unwrap();
        let crl = CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2024, 1, 1),
            next_update: rcgen::date_time_ymd(2025, 2, 3),
            crl_number: SerialNumber::from(7u64),
            issuing_distribution_point: None,
            revoked_certs: Vec::new(),
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&ca, &key)
        .unwrap();
        let facts = read(crl.der()).unwrap();
        assert!(facts.v2 && facts.has_crl_number);
        assert_eq!(
            facts.next_update.unwrap().to_string(),
            "2025-02-03 00:00:00 UTC"
        );
        // The issuer is the CA's subject, byte for byte.
        assert_eq!(
            Some(facts.issuer.clone()),
            super::super::identity::subject(ca.der())
        );
        assert_eq!(unsupported(crl.der()), None);
        for n in 0..crl.der().len() {
            let _ = read(&crl.der()[..n]);
        }
    }

    #[test]
    fn tells_a_v1_list_and_one_without_a_number() {
        // openssl ca -gencrl without a crlnumber file: v1, no extensions.
        let v1 = include_bytes!("../../../../fuzz/corpus/gate_crl/openssl_v1");
        assert_eq!(unsupported(v1), Some("it is a version 1 CRL"));
        let no_number = include_bytes!("../../../../fuzz/corpus/gate_crl/openssl_v2_no_number");
        assert_eq!(unsupported(no_number), Some("it has no CRL number"));
    }
}
