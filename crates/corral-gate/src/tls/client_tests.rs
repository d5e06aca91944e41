//! Loading the client CA bundle and revocation lists (mutual TLS).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, IsCa,
    KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams, SerialNumber,
};

use super::*;
use crate::settings::ClientCaFiles;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca() -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, "test client CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    Ca { cert, key }
}

fn files(dir: &Path, client: Option<ClientCaFiles>) -> TlsFiles {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    TlsFiles {
        cert: write(dir, "server.pem", &ck.cert.pem()),
        key: write(dir, "server-key.pem", &ck.key_pair.serialize_pem()),
        client,
    }
}

fn crl(ca: &Ca, serial: u64) -> String {
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
    .signed_by(&ca.cert, &ca.key)
    .unwrap()
    .pem()
    .unwrap()
}

fn error(dir: &Path, client: ClientCaFiles) -> String {
    server_config(&files(dir, Some(client)))
        .unwrap_err()
        .to_string()
}

#[test]
fn a_ca_bundle_and_crls_make_a_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let client = ClientCaFiles {
        ca: write(dir.path(), "ca.pem", &ca.cert.pem()),
        crls: vec![write(dir.path(), "crl.pem", &crl(&ca, 7))],
    };
    assert!(server_config(&files(dir.path(), Some(client))).is_ok());
}

#[test]
fn ca_and_crl_mistakes_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let ca_p = write(dir.path(), "ca.pem", &ca.cert.pem());
    let only = |ca: PathBuf| ClientCaFiles {
        ca,
        crls: Vec::new(),
    };

    let e = error(dir.path(), only(dir.path().join("missing-ca.pem")));
    assert!(e.contains("cannot read TLS client CA file"), "{e}");
    assert!(e.contains("missing-ca.pem"), "{e}");

    let e = error(dir.path(), only(write(dir.path(), "junk.pem", "hello")));
    assert!(e.contains("TLS client CA file"), "{e}");
    assert!(e.contains("no PEM CERTIFICATE block"), "{e}");

    // A client's own certificate given as the CA.
    let leaf = rcgen::generate_simple_self_signed(vec!["app-1".into()]).unwrap();
    let e = error(
        dir.path(),
        only(write(
            dir.path(),
            "bundle.pem",
            &format!("{}{}", ca.cert.pem(), leaf.cert.pem()),
        )),
    );
    assert!(e.contains("bundle.pem"), "{e}");
    assert!(e.contains("certificate 2 in the file is not a CA"), "{e}");

    // A CERTIFICATE block whose contents are not a certificate.
    let e = error(
        dir.path(),
        only(write(
            dir.path(),
            "garbled.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )),
    );
    assert!(e.contains("garbled.pem"), "{e}");
    assert!(e.contains("not a readable X.509 certificate"), "{e}");

    let with_crl = |name: &str, text: &str| ClientCaFiles {
        ca: ca_p.clone(),
        crls: vec![write(dir.path(), name, text)],
    };
    let e = error(dir.path(), with_crl("nocrl.pem", &ca.cert.pem()));
    assert!(e.contains("TLS client CRL file"), "{e}");
    assert!(
        e.contains("nocrl.pem") && e.contains("no PEM X509 CRL block"),
        "{e}"
    );
    let e = error(
        dir.path(),
        with_crl(
            "badcrl.pem",
            "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
        ),
    );
    assert!(
        e.contains("badcrl.pem") && e.contains("cannot be read"),
        "{e}"
    );
    let e = error(
        dir.path(),
        ClientCaFiles {
            ca: ca_p.clone(),
            crls: vec![dir.path().join("gone.pem")],
        },
    );
    assert!(
        e.contains("cannot read TLS client CRL file") && e.contains("gone.pem"),
        "{e}"
    );
}

#[test]
fn a_changed_ca_bundle_is_reloaded_and_a_broken_one_is_not() {
    use super::reload::{CertReloader, Checked};
    let dir = tempfile::tempdir().unwrap();
    let ca_p = write(dir.path(), "ca.pem", &ca().cert.pem());
    let f = files(
        dir.path(),
        Some(ClientCaFiles {
            ca: ca_p.clone(),
            crls: Vec::new(),
        }),
    );
    let loaded = served(&f).unwrap();
    let first = Arc::clone(&loaded.config);
    let first_generation = loaded.client.as_ref().unwrap().generation;
    let mut r = CertReloader::new(f, loaded);
    assert!(matches!(r.check(false), Checked::Unchanged));
    let put = |text: &str| {
        let tmp = ca_p.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &ca_p).unwrap();
    };
    put(&ca().cert.pem());
    assert!(matches!(r.check(false), Checked::Reloaded));
    let second = Arc::clone(&r.current().load().config);
    assert!(!Arc::ptr_eq(&second, &first));
    // Open connections see that the client verifier changed.
    let trust = r.trust().load_full();
    assert_ne!(
        trust.as_ref().as_ref().unwrap().generation,
        first_generation
    );
    put("not a CA");
    match r.check(false) {
        Checked::Failed(e) => assert!(e.to_string().contains("ca.pem"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(Arc::ptr_eq(&r.current().load().config, &second));
    assert!(Arc::ptr_eq(&r.trust().load_full(), &trust));
}

#[test]
fn under_mutual_tls_no_session_is_resumable() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let client = ClientCaFiles {
        ca: write(dir.path(), "ca.pem", &ca.cert.pem()),
        crls: Vec::new(),
    };
    let cfg = server_config(&files(dir.path(), Some(client))).unwrap();
    assert!(!cfg.session_storage.can_cache());
    assert_eq!(cfg.send_tls13_tickets, 0);
    assert!(!cfg.ticketer.enabled());
    // Without client certificates, resumption stays as rustls sets it.
    let plain = server_config(&files(dir.path(), None)).unwrap();
    assert!(plain.session_storage.can_cache());
}
