//! Certificates chain to the gateway root (checked by the openssl command line) and carry the
//! key usage of their purpose.

use openssl::x509::X509;
use sigillo::db::repo;
use uuid::Uuid;

use crate::support::{env, openssl, random_suffix, TestApp};

fn write_pem(dir: &std::path::Path, name: &str, der: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, X509::from_der(der).unwrap().to_pem().unwrap()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_verify_to_the_root_with_the_key_usage_of_their_purpose() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let dir =
        std::path::PathBuf::from(env("SIGILLO_TEST_TMP")).join(format!("ca-{}", random_suffix()));
    std::fs::create_dir_all(&dir).unwrap();

    for (purpose, algo) in [("signing", "ec-p256"), ("authentication", "rsa-2048")] {
        let credential = app.create_credential(&user, algo, purpose).await;
        let stored =
            repo::credentials::find(&app.services().db, Uuid::parse_str(&credential.id).unwrap())
                .await
                .unwrap()
                .unwrap();
        assert_eq!(stored.cert_chain.len(), 3, "leaf, issuing, root");
        let leaf = write_pem(&dir, &format!("{purpose}-leaf.pem"), &stored.cert_chain[0]);
        let issuing = write_pem(&dir, "issuing.pem", &stored.cert_chain[1]);
        let root = write_pem(&dir, "root.pem", &stored.cert_chain[2]);
        let (leaf, issuing, root) = (
            leaf.to_str().unwrap(),
            issuing.to_str().unwrap(),
            root.to_str().unwrap(),
        );

        let (ok, out) = openssl(&[
            "verify",
            "-x509_strict",
            "-CAfile",
            root,
            "-untrusted",
            issuing,
            leaf,
        ]);
        assert!(ok, "{purpose}: {out}");
        // The chain must not verify against some other root.
        let (ok, _) = openssl(&["verify", "-CAfile", issuing, leaf]);
        assert!(!ok, "an intermediate alone is not a trust anchor");

        let (_, text) = openssl(&["x509", "-in", leaf, "-noout", "-text"]);
        assert!(
            text.contains("serialNumber = TINIT-RSSMRA80A01H501U"),
            "{text}"
        );
        assert!(
            text.contains("GN = Mario") && text.contains("SN = Rossi"),
            "{text}"
        );
        let (_, ext) = openssl(&[
            "x509",
            "-in",
            leaf,
            "-noout",
            "-ext",
            "keyUsage,extendedKeyUsage",
        ]);
        match purpose {
            "signing" => {
                assert!(
                    ext.contains("critical") && ext.contains("Non Repudiation"),
                    "{ext}"
                );
                assert!(
                    !ext.contains("Digital Signature") && !ext.contains("Client"),
                    "{ext}"
                );
                assert!(text.contains("qcStatements"), "QC statements present");
            }
            _ => {
                assert!(
                    ext.contains("Digital Signature")
                        && ext.contains("TLS Web Client Authentication"),
                    "{ext}"
                );
                assert!(!ext.contains("Non Repudiation"), "{ext}");
            }
        }
        // Serial number and validity as stored.
        let cert = X509::from_der(&stored.cert_chain[0]).unwrap();
        let serial = cert
            .serial_number()
            .to_bn()
            .unwrap()
            .to_hex_str()
            .unwrap()
            .to_string();
        assert_eq!(serial, stored.serial_number);
        let days = (stored.valid_to - stored.valid_from).whole_days();
        assert!(
            (1095..=1096).contains(&days),
            "default validity 3 years, got {days} days"
        );
    }

    // The issuing CA is a CA, constrained, and signed by the root.
    let (_, text) = openssl(&[
        "x509",
        "-in",
        dir.join("issuing.pem").to_str().unwrap(),
        "-noout",
        "-text",
    ]);
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
    assert!(text.contains("Certificate Sign"), "{text}");
}
