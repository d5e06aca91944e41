//! Who a verified client certificate names, read from its DER encoding once per connection.
//!
//! rustls has verified the chain before this runs; what is read here is what the policy
//! binding (`client_cert_names`) and the audit record need: every subject common name
//! (RFC 5280 §4.1.2.6, OID 2.5.4.3), every DNS name of the subject alternative name extension
//! (§4.2.1.6, `dNSName [2]`), and whether a certificate says it is a CA (basicConstraints,
//! §4.2.1.9), which the client CA bundle is checked for at load. The walk follows
//! `validity.rs`: one [`tlv`] at a time, anything unexpected yields nothing rather than an
//! error, and each list is bounded.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::validity::tlv;

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
const VERSION: u8 = 0xa0;
const EXTENSIONS: u8 = 0xa3;
const DNS_NAME: u8 = 0x82;

const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const TELETEX_STRING: u8 = 0x14;
const IA5_STRING: u8 = 0x16;
const BMP_STRING: u8 = 0x1e;

/// 2.5.4.3 (id-at-commonName), 2.5.29.17 (subjectAltName), 2.5.29.19 (basicConstraints),
/// 2.5.29.30 (nameConstraints).
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
const OID_NAME_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x1e];

/// Most DNS names kept from one certificate (for matching only).
const MAX_DNS_NAMES: usize = 64;

/// The parts of `tbsCertificate` this module reads.
struct Tbs<'a> {
    /// The issuer `Name`, whole (tag and length included), as a CA's subject is compared.
    issuer: &'a [u8],
    /// The content of the subject `Name`.
    subject: &'a [u8],
    /// The subject `Name`, whole.
    subject_whole: &'a [u8],
    /// The content of `[3] EXPLICIT Extensions`, when present.
    extensions: Option<&'a [u8]>,
}

fn tbs(der: &[u8]) -> Option<Tbs<'_>> {
    let (tag, cert, _) = tlv(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let first = tlv(tbs)?;
    // Skip the explicit version, then the serial number.
    let mut rest = if first.0 == VERSION {
        tlv(first.2)?.2
    } else {
        first.2
    };
    // signature AlgorithmIdentifier, issuer Name, validity.
    let mut issuer: &[u8] = &[];
    for i in 0..3 {
        let (t, _, r) = tlv(rest)?;
        if t != SEQUENCE {
            return None;
        }
        if i == 1 {
            issuer = rest.get(..rest.len() - r.len())?;
        }
        rest = r;
    }
    let (t, subject, r) = tlv(rest)?;
    if t != SEQUENCE {
        return None;
    }
    let subject_whole = rest.get(..rest.len() - r.len())?;
    // subjectPublicKeyInfo, then the optional unique ids and extensions.
    let (t, _, mut rest) = tlv(r)?;
    if t != SEQUENCE {
        return None;
    }
    let mut extensions = None;
    while let Some((t, v, r)) = tlv(rest) {
        if t == EXTENSIONS {
            let (t, list, _) = tlv(v)?;
            if t != SEQUENCE {
                return None;
            }
            extensions = Some(list);
        }
        rest = r;
    }
    Some(Tbs {
        issuer,
        subject,
        subject_whole,
        extensions,
    })
}

/// Each DER element of a SEQUENCE or SET's content, until the content ends or stops parsing.
fn elements(mut content: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (t, v, r) = tlv(content)?;
        content = r;
        Some((t, v))
    })
}

/// The subject's common names, in the order written (at most `MAX_COMMON_NAMES`).
fn common_names(subject: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    for (t, rdn) in elements(subject) {
        if t != SET {
            continue;
        }
        for (t, atv) in elements(rdn) {
            if t != SEQUENCE {
                continue;
            }
            let Some((OID, oid, rest)) = tlv(atv) else {
                continue;
            };
            if oid != OID_CN {
                continue;
            }
            if let Some(name) = tlv(rest).and_then(|(t, v, _)| directory_string(t, v)) {
                if names.len() < corral_audit::MAX_COMMON_NAMES {
                    names.push(name);
                }
            }
        }
    }
    names
}

/// A `DirectoryString` as text; `None` for forms that are not text (or not valid).
fn directory_string(tag: u8, v: &[u8]) -> Option<String> {
    match tag {
        UTF8_STRING => std::str::from_utf8(v).ok().map(str::to_owned),
        PRINTABLE_STRING | IA5_STRING | TELETEX_STRING if v.is_ascii() => {
            std::str::from_utf8(v).ok().map(str::to_owned)
        }
        BMP_STRING if v.len().is_multiple_of(2) => {
            let units = v.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        _ => None,
    }
}

/// Whether the extension `wanted` is present, whatever its value.
fn has_extension(extensions: &[u8], wanted: &[u8]) -> bool {
    elements(extensions)
        .any(|(t, ext)| t == SEQUENCE && matches!(tlv(ext), Some((OID, oid, _)) if oid == wanted))
}

/// The value of the extension `wanted` (the content of its OCTET STRING), past its optional
/// `critical` flag.
fn extension<'a>(extensions: &'a [u8], wanted: &[u8]) -> Option<&'a [u8]> {
    for (t, ext) in elements(extensions) {
        if t != SEQUENCE {
            continue;
        }
        let Some((OID, oid, mut rest)) = tlv(ext) else {
            continue;
        };
        if oid != wanted {
            continue;
        }
        if let Some((BOOLEAN, _, r)) = tlv(rest) {
            rest = r;
        }
        return match tlv(rest) {
            Some((OCTET_STRING, value, _)) => Some(value),
            _ => None,
        };
    }
    None
}

/// The DNS names of the subject alternative name extension that are ASCII text.
fn dns_names(extensions: Option<&[u8]>) -> Vec<String> {
    let Some(san) = extensions.and_then(|e| extension(e, OID_SAN)) else {
        return Vec::new();
    };
    let Some((SEQUENCE, names, _)) = tlv(san) else {
        return Vec::new();
    };
    elements(names)
        .filter(|(t, v)| *t == DNS_NAME && !v.is_empty() && v.is_ascii())
        .filter_map(|(_, v)| std::str::from_utf8(v).ok().map(str::to_owned))
        .take(MAX_DNS_NAMES)
        .collect()
}

/// Whether the certificate's basicConstraints say it is a CA (`cA` TRUE). `None` when the
/// certificate cannot be read.
pub(crate) fn is_ca(der: &[u8]) -> Option<bool> {
    let t = tbs(der)?;
    let Some(bc) = t
        .extensions
        .and_then(|e| extension(e, OID_BASIC_CONSTRAINTS))
    else {
        return Some(false);
    };
    Some(match tlv(bc) {
        Some((SEQUENCE, content, _)) => {
            matches!(tlv(content), Some((BOOLEAN, v, _)) if v.first().is_some_and(|b| *b != 0))
        }
        _ => false,
    })
}

/// The subject `Name` of a certificate, whole DER element (as a CRL's issuer is compared).
pub(crate) fn subject(der: &[u8]) -> Option<Vec<u8>> {
    tbs(der).map(|t| t.subject_whole.to_vec())
}

/// The subject of a certificate for a message: its CNs (`CN=a, CN=b`), or `(no common name)`.
pub(crate) fn subject_text(der: &[u8]) -> String {
    let cns = tbs(der)
        .map(|t| common_names(t.subject))
        .unwrap_or_default();
    if cns.is_empty() {
        return "(no common name)".to_owned();
    }
    cns.iter()
        .map(|cn| format!("CN={}", cn.escape_debug()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The subject `Name` of a certificate (whole DER element), when a CA of the client bundle
/// carries a nameConstraints extension; `None` otherwise (or when it cannot be read).
pub(crate) fn constrained_subject(der: &[u8]) -> Option<Vec<u8>> {
    let t = tbs(der)?;
    let e = t.extensions?;
    has_extension(e, OID_NAME_CONSTRAINTS).then(|| t.subject_whole.to_vec())
}

/// Whether X.509 name constraints may apply to a verified `chain` (leaf first, then the
/// intermediates the client sent): one of the intermediates carries a nameConstraints
/// extension, or one of the chain's certificates was issued by a client CA that does (its
/// subject in `constrained_anchors`). A certificate that cannot be read counts as constrained.
///
/// webpki applies name constraints to the subject alternative names only, never to the
/// subject's common name: under a constrained CA the CN is not vouched for.
pub(crate) fn name_constrained(
    chain: &[impl AsRef<[u8]>],
    constrained_anchors: &[Vec<u8>],
) -> bool {
    chain.iter().enumerate().any(|(i, cert)| {
        let Some(t) = tbs(cert.as_ref()) else {
            return true;
        };
        let own = i > 0
            && t.extensions
                .is_some_and(|e| has_extension(e, OID_NAME_CONSTRAINTS));
        own || constrained_anchors.iter().any(|s| s.as_slice() == t.issuer)
    })
}

/// The identity of the client certificate a connection presented: computed once after the
/// handshake and shared by every request on the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// What the audit record carries (CNs and the leaf's SHA-256).
    pub audit: Arc<corral_audit::TlsClient>,
    /// DNS names of the subject alternative name extension.
    pub dns_names: Vec<String>,
}

impl ClientIdentity {
    /// The identity of a DER leaf certificate. A certificate whose names cannot be read
    /// still has its hash (and then matches no `client_cert_names`).
    pub fn of(der: &[u8]) -> ClientIdentity {
        let (common_names, dns_names) = match tbs(der) {
            Some(t) => (common_names(t.subject), dns_names(t.extensions)),
            None => (Vec::new(), Vec::new()),
        };
        ClientIdentity {
            audit: Arc::new(corral_audit::TlsClient {
                common_names,
                sha256: upper_hex(&Sha256::digest(der)),
            }),
            dns_names,
        }
    }

    /// Every name `client_cert_names` is matched against: the CNs when `common_names_bind`
    /// (no name constraint applies to the chain, see [`name_constrained`]), then the DNS names.
    pub fn names(&self, common_names_bind: bool) -> impl Iterator<Item = &str> {
        let cns: &[String] = if common_names_bind {
            &self.audit.common_names
        } else {
            &[]
        };
        cns.iter().chain(&self.dns_names).map(String::as_str)
    }
}

fn upper_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, SanType,
    };

    fn cert(cns: &[&str], sans: &[&str], ca: bool) -> Vec<u8> {
        let mut p =
            CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .unwrap();
        let mut dn = DistinguishedName::new();
        for cn in cns {
            dn.push(DnType::CommonName, *cn);
        }
        p.distinguished_name = dn;
        if ca {
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        p.self_signed(&KeyPair::generate().unwrap())
            .unwrap()
            .der()
            .to_vec()
    }

    #[test]
    fn reads_the_common_name_and_the_dns_names() {
        let der = cert(&["app-1"], &["app-1.example.com", "node.internal"], false);
        let id = ClientIdentity::of(&der);
        assert_eq!(id.audit.common_names, vec!["app-1"]);
        assert_eq!(id.dns_names, vec!["app-1.example.com", "node.internal"]);
        assert_eq!(
            id.names(true).collect::<Vec<_>>(),
            vec!["app-1", "app-1.example.com", "node.internal"]
        );
        assert_eq!(is_ca(&der), Some(false));
    }

    #[test]
    fn reads_every_cn_of_an_openssl_certificate_and_skips_other_san_types() {
        // `openssl req -subj "/O=Apps/CN=app-1/CN=second"`, signed by a CA with
        // `subjectAltName=DNS:app-1.example.com,IP:127.0.0.1,email:a@b.c`.
        let der =
            include_bytes!("../../../../fuzz/corpus/gate_client_identity/openssl_client_two_cns");
        let id = ClientIdentity::of(der);
        assert_eq!(id.audit.common_names, vec!["app-1", "second"]);
        assert_eq!(id.dns_names, vec!["app-1.example.com"]);
        assert_eq!(is_ca(der), Some(false));
        let ca = include_bytes!("../../../../fuzz/corpus/gate_client_identity/openssl_ca");
        assert_eq!(is_ca(ca), Some(true));
        // Forty CNs and two hundred DNS names: bounded.
        let many = include_bytes!(
            "../../../../fuzz/corpus/gate_client_identity/forty_cns_two_hundred_sans"
        );
        let id = ClientIdentity::of(many);
        assert_eq!(id.audit.common_names.len(), corral_audit::MAX_COMMON_NAMES);
        assert_eq!(id.dns_names.len(), MAX_DNS_NAMES);
        assert_eq!(id.dns_names[0], "h0.example");
    }

    #[test]
    fn the_hash_is_the_upper_case_sha256_of_the_der() {
        let der = cert(&["x"], &[], false);
        let id = ClientIdentity::of(&der);
        let want: String = Sha256::digest(&der)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        assert_eq!(id.audit.sha256, want);
        assert_eq!(id.audit.sha256.len(), 64);
    }

    #[test]
    fn no_cn_and_other_san_types_give_only_what_is_there() {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = DistinguishedName::new();
        p.subject_alt_names = vec![
            SanType::IpAddress("127.0.0.1".parse().unwrap()),
            SanType::Rfc822Name("a@example.com".try_into().unwrap()),
            SanType::DnsName("only.example.com".try_into().unwrap()),
        ];
        let der = p
            .self_signed(&KeyPair::generate().unwrap())
            .unwrap()
            .der()
            .to_vec();
        let id = ClientIdentity::of(&der);
        assert!(id.audit.common_names.is_empty());
        assert_eq!(id.dns_names, vec!["only.example.com"]);
    }

    #[test]
    fn tells_a_ca_from_a_leaf() {
        assert_eq!(is_ca(&cert(&["Root"], &[], true)), Some(true));
        assert_eq!(is_ca(&cert(&["leaf"], &["leaf"], false)), Some(false));
        assert_eq!(is_ca(b"junk"), None);
    }

    #[test]
    fn anything_else_is_no_name_and_no_panic() {
        let good = cert(&["app-1"], &["a.example.com"], false);
        assert_eq!(ClientIdentity::of(&good).audit.common_names, vec!["app-1"]);
        for n in 0..good.len() {
            let id = ClientIdentity::of(&good[..n]);
            assert_eq!(id.audit.sha256.len(), 64);
            let _ = is_ca(&good[..n]);
        }
        let id = ClientIdentity::of(b"");
        assert!(id.names(true).next().is_none());
        assert_eq!(
            directory_string(BMP_STRING, &[0, b'h', 0, b'i']),
            Some("hi".into())
        );
        assert_eq!(directory_string(BMP_STRING, &[0xd8, 0x00]), None);
        assert_eq!(directory_string(PRINTABLE_STRING, "é".as_bytes()), None);
        assert_eq!(directory_string(0x04, b"x"), None);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod constraint_tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, GeneralSubtree, IsCa, KeyPair, NameConstraints,
    };

    fn ca(name: &str, permitted: Option<&str>) -> (rcgen::CertificateParams, KeyPair) {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        if let Some(d) = permitted {
            p.name_constraints = Some(NameConstraints {
                permitted_subtrees: vec![GeneralSubtree::DnsName(d.to_owned())],
                excluded_subtrees: Vec::new(),
            });
        }
        (p, KeyPair::generate().unwrap())
    }

    #[test]
    fn a_constraint_on_an_intermediate_or_on_the_issuing_ca_is_seen() {
        let (rp, rk) = ca("root", None);
        let root = rp.self_signed(&rk).unwrap();
        let (sp, sk) = ca("team", Some("team-a.example"));
        let sub = sp.signed_by(&sk, &root, &rk).unwrap();
        let leaf_params = || {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.distinguished_name.push(DnType::CommonName, "app-billing");
            p
        };
        let leaf_of_sub = leaf_params()
            .signed_by(&KeyPair::generate().unwrap(), &sub, &sk)
            .unwrap();
        let leaf_of_root = leaf_params()
            .signed_by(&KeyPair::generate().unwrap(), &root, &rk)
            .unwrap();
        let none: &[Vec<u8>] = &[];
        assert!(name_constrained(&[leaf_of_sub.der(), sub.der()], none));
        assert!(!name_constrained(&[leaf_of_root.der()], none));
        assert_eq!(constrained_subject(root.der()), None);
        // The sub-CA as a trust anchor of the bundle: its leaves are constrained even when
        // sent alone.
        let anchors = vec![constrained_subject(sub.der()).unwrap()];
        assert!(name_constrained(&[leaf_of_sub.der()], &anchors));
        assert!(!name_constrained(&[leaf_of_root.der()], &anchors));
        // Unreadable: constrained.
        assert!(name_constrained(&[&b"junk"[..]], none));

        let id = ClientIdentity::of(leaf_of_sub.der());
        assert_eq!(id.audit.common_names, vec!["app-billing"]);
        assert!(id.names(false).next().is_none());
        assert_eq!(id.names(true).collect::<Vec<_>>(), vec!["app-billing"]);
    }
}
