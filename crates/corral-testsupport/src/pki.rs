//! Test certificate authorities for mutual-TLS tests: a CA (optionally name-constrained), an
//! intermediate issued by it, and a PEM revocation list revoking one serial number.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, Error, IsCa,
    KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams, SerialNumber,
};

/// A CA certificate and its key.
pub struct TestCa {
    pub cert: rcgen::Certificate,
    pub key: KeyPair,
}

/// A CA's parameters: CN `name`, may sign certificates and CRLs, name-constrained to the DNS
/// subtree `permitted_dns` when given.
pub fn ca_params(name: &str, permitted_dns: Option<&str>) -> Result<CertificateParams, Error> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    if let Some(dns) = permitted_dns {
        p.name_constraints = Some(rcgen::NameConstraints {
            permitted_subtrees: vec![rcgen::GeneralSubtree::DnsName(dns.to_owned())],
            excluded_subtrees: Vec::new(),
        });
    }
    Ok(p)
}

impl TestCa {
    /// A self-signed root CA with CN `name`.
    pub fn new(name: &str) -> Result<TestCa, Error> {
        TestCa::constrained(name, None)
    }

    /// A root CA, name-constrained to `permitted_dns` when given.
    pub fn constrained(name: &str, permitted_dns: Option<&str>) -> Result<TestCa, Error> {
        let key = KeyPair::generate()?;
        let cert = ca_params(name, permitted_dns)?.self_signed(&key)?;
        Ok(TestCa { cert, key })
    }

    /// An intermediate CA issued by this one, name-constrained to `permitted_dns` when given.
    pub fn sub_ca(&self, name: &str, permitted_dns: Option<&str>) -> Result<TestCa, Error> {
        let key = KeyPair::generate()?;
        let cert = ca_params(name, permitted_dns)?.signed_by(&key, &self.cert, &self.key)?;
        Ok(TestCa { cert, key })
    }

    /// A PEM v2 CRL of this CA (number 1, valid 2024–2090) revoking `serial`.
    pub fn crl_revoking(&self, serial: u64) -> Result<String, Error> {
        CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2024, 1, 1),
            next_update: rcgen::date_time_ymd(2090, 1, 1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from(serial),
                revocation_time: rcgen::date_time_ymd(2024, 1, 1),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            }],
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&self.cert, &self.key)?
        .pem()
    }
}
