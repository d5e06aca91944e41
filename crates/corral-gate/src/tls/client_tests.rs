//! Loading the client CA bundle and revocation lists (mutual TLS).

use std::path::{Path, PathBuf};

use corral_testsupport::pki::TestCa as Ca;
use rcgen::{CertificateRevocationListParams, KeyIdMethod, SerialNumber};

use super::*;
use crate::settings::ClientCaFiles;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The test client CA.
fn ca() -> Ca {
    Ca::new("test client CA").unwrap()
}

fn files(dir: &Path, client: Option<ClientCaFiles>) -> TlsFiles {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    TlsFiles {
        cert: write(dir, "server.pem", &ck.cert.pem()),
        key: write(dir, "server-key.pem", &ck.key_pair.serialize_pem()),
        client,
    }
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
        crls: vec![write(dir.path(), "crl.pem", &ca.crl_revoking(7).unwrap())],
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

fn crl_pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN X509 CRL-----\n{}\n-----END X509 CRL-----\n",
        lines.join("\n")
    )
}

#[test]
fn a_v1_crl_or_one_without_a_number_says_what_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let ca_p = write(dir.path(), "ca.pem", &ca.cert.pem());
    for (name, der, what) in [
        (
            "v1.pem",
            &include_bytes!("../../../../fuzz/corpus/gate_crl/openssl_v1")[..],
            "version 1 CRL",
        ),
        (
            "nonumber.pem",
            &include_bytes!("../../../../fuzz/corpus/gate_crl/openssl_v2_no_number")[..],
            "no CRL number",
        ),
    ] {
        let e = error(
            dir.path(),
            ClientCaFiles {
                ca: ca_p.clone(),
                crls: vec![write(dir.path(), name, &crl_pem(der))],
            },
        );
        assert!(e.contains(name), "{e}");
        assert!(e.contains(what), "{e}");
        assert!(
            e.contains("a v2 CRL with a CRL number is required") && e.contains("crlnumber"),
            "{e}"
        );
        assert!(
            !e.contains("BadDer") && !e.contains("MalformedExtensions"),
            "{e}"
        );
    }
}

#[test]
fn with_crls_every_client_ca_needs_one() {
    let dir = tempfile::tempdir().unwrap();
    let covered = ca();
    let uncovered = Ca::new("team-b CA").unwrap();
    let bundle = write(
        dir.path(),
        "bundle.pem",
        &format!("{}{}", covered.cert.pem(), uncovered.cert.pem()),
    );
    let e = error(
        dir.path(),
        ClientCaFiles {
            ca: bundle.clone(),
            crls: vec![write(
                dir.path(),
                "crl.pem",
                &covered.crl_revoking(1).unwrap(),
            )],
        },
    );
    assert!(e.contains("bundle.pem"), "{e}");
    assert!(e.contains("CN=team-b CA"), "{e}");
    assert!(e.contains("certificate 2 in the file"), "{e}");
    assert!(e.contains("crl.pem") && e.contains("add the CRL"), "{e}");
    // One list per CA: accepted.
    let ok = ClientCaFiles {
        ca: bundle,
        crls: vec![
            write(dir.path(), "crl1.pem", &covered.crl_revoking(1).unwrap()),
            write(dir.path(), "crl2.pem", &uncovered.crl_revoking(1).unwrap()),
        ],
    };
    assert!(server_config(&files(dir.path(), Some(ok))).is_ok());
}

#[test]
fn a_stale_crl_is_accepted_and_warned_of_with_its_age() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let stale = CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2024, 1, 1),
        next_update: rcgen::date_time_ymd(2024, 2, 1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: Vec::new(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&ca.cert, &ca.key)
    .unwrap()
    .pem()
    .unwrap();
    let f = files(
        dir.path(),
        Some(ClientCaFiles {
            ca: write(dir.path(), "ca.pem", &ca.cert.pem()),
            crls: vec![write(dir.path(), "old.crl", &stale)],
        }),
    );
    assert!(
        server_config(&f).is_ok(),
        "accepted (fail-open on staleness)"
    );
    let feb_11 = 1_707_609_600; // 2024-02-11 00:00:00 UTC
    let w = stale_crl_warnings_at(&f, feb_11);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("old.crl"), "{}", w[0]);
    assert!(w[0].contains("2024-02-01 00:00:00 UTC"), "{}", w[0]);
    assert!(w[0].contains("10 days ago"), "{}", w[0]);
    assert!(stale_crl_warnings_at(&f, feb_11 - 20 * 86_400).is_empty());
    assert_eq!(warnings(&f).len(), 1);

    // The reloader says it at start, then once a day, and again after a reload.
    let mut r = super::reload::CertReloader::new(f.clone(), served(&f).unwrap());
    assert_eq!(r.reminders().len(), 1);
    assert!(r.reminders().is_empty());
    assert!(matches!(r.check(true), super::reload::Checked::Reloaded));
    assert_eq!(r.reminders().len(), 1);
}

#[test]
fn the_settings_are_described_for_config_check() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let f = files(
        dir.path(),
        Some(ClientCaFiles {
            ca: write(dir.path(), "ca.pem", &ca.cert.pem()),
            crls: vec![write(dir.path(), "crl.pem", &ca.crl_revoking(7).unwrap())],
        }),
    );
    let text = describe(&f).join("\n");
    assert!(text.contains("server.pem (valid until"), "{text}");
    assert!(text.contains("server-key.pem"), "{text}");
    assert!(
        text.contains("client CA") && text.contains("(1 CA: CN=test client CA)"),
        "{text}"
    );
    assert!(text.contains("crl.pem (1 list)"), "{text}");
    let plain = describe(&files(dir.path(), None)).join("\n");
    assert!(plain.contains("not required"), "{plain}");
}
