//! Certificate status as relying parties see it, checked with the openssl command line: OCSP
//! (good, revoked with its reason, certificateHold while suspended, good again after resume,
//! on a second node within a second, nonce echoed, malformed and foreign requests refused)
//! and the CRL (verified against the CA, listing the revoked serial with its reason); issued
//! certificates name the responder, the CA certificate and the CRL, and carry the qualified
//! profile. The root publishes a CRL too, named by the issuing CA's certificate, so a relying
//! party can check every certificate of the chain (openssl verify -crl_check_all).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use openssl::x509::X509;
use reqwest::StatusCode;
use serde_json::json;
use sigillo::db::repo;
use sigillo::der;
use uuid::Uuid;

use crate::support::{env, openssl, random_suffix, TestApp};

fn write_pem(dir: &Path, name: &str, der: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, X509::from_der(der).unwrap().to_pem().unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

fn temp_dir(what: &str) -> PathBuf {
    let dir = PathBuf::from(env("SIGILLO_TEST_TMP")).join(format!("{what}-{}", random_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A credential's certificate files: (leaf, issuing, root) PEM paths, and its serial.
async fn certificate_files(
    app: &TestApp,
    dir: &Path,
    id: &str,
) -> (String, String, String, String) {
    let stored = repo::credentials::find(&app.services().db, Uuid::parse_str(id).unwrap())
        .await
        .unwrap()
        .unwrap();
    (
        write_pem(dir, &format!("{id}.pem"), &stored.cert_chain[0]),
        write_pem(dir, "issuing.pem", &stored.cert_chain[1]),
        write_pem(dir, "root.pem", &stored.cert_chain[2]),
        stored.serial_number,
    )
}

struct Files {
    leaf: String,
    issuing: String,
    root: String,
}

/// `openssl ocsp` against `node`, verifying the response against the root: its output.
fn ocsp_status(node: &TestApp, f: &Files, extra: &[&str]) -> String {
    let url = format!("{}/pki/ocsp", node.public);
    let mut args = vec![
        "ocsp",
        "-issuer",
        &f.issuing,
        "-cert",
        &f.leaf,
        "-url",
        &url,
        "-CAfile",
        &f.root,
        "-verify_other",
        &f.issuing,
        "-timeout",
        "5",
    ];
    args.extend_from_slice(extra);
    let (ok, out) = openssl(&args);
    assert!(ok, "openssl ocsp failed: {out}");
    assert!(out.contains("Response verify OK"), "{out}");
    out
}

/// Polls `node` until its OCSP answer for `f` contains `want`; returns how long it took.
async fn until_status(node: &TestApp, f: &Files, want: &str) -> (Duration, String) {
    let start = Instant::now();
    loop {
        let out = ocsp_status(node, f, &[]);
        if out.contains(want) {
            return (start.elapsed(), out);
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still not {want:?} after 5 s: {out}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_follows_revocation_and_suspension_on_every_node_within_a_second() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_node(a.config.clone()).await;
    let user = a.create_user("sms").await;
    let revoked = a.create_credential(&user, "ec-p256", "signing").await;
    let held = a.create_credential(&user, "ec-p256", "signing").await;
    let dir = temp_dir("ocsp");
    let (leaf, issuing, root, serial) = certificate_files(&a, &dir, &revoked.id).await;
    let (held_leaf, ..) = certificate_files(&a, &dir, &held.id).await;
    let rev = Files {
        leaf: leaf.clone(),
        issuing: issuing.clone(),
        root: root.clone(),
    };
    let hold = Files {
        leaf: held_leaf,
        issuing: issuing.clone(),
        root: root.clone(),
    };

    // Good at once on both nodes (b polls when asked about a serial it does not know yet),
    // the nonce echoed: openssl sends one and warns when the answer lacks it.
    for node in [&b, &a] {
        let out = ocsp_status(node, &rev, &[]);
        assert!(out.contains(": good"), "{out}");
        assert!(!out.contains("WARNING"), "{out}");
        assert!(out.contains("Next Update"), "{out}");
    }
    let out = ocsp_status(&a, &rev, &["-no_nonce"]);
    assert!(out.contains(": good"), "{out}");
    // The same nonce-less question again: the same signed answer.
    let again = ocsp_status(&a, &rev, &["-no_nonce", "-resp_text"]);
    assert!(again.contains("Cert Status: good"), "{again}");

    // Revoked with its reason: at once on the node that was called, within a second on the
    // other.
    let (status, body) = a
        .admin_post(
            &format!("/admin/v1/credentials/{}/revoke", revoked.id),
            json!({ "reason": "key lost", "reason_code": "keyCompromise" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let out = ocsp_status(&a, &rev, &[]);
    assert!(out.contains(": revoked"), "{out}");
    assert!(out.contains("Reason: keyCompromise"), "{out}");
    assert!(out.contains("Revocation Time"), "{out}");
    let (took, out) = until_status(&b, &rev, ": revoked").await;
    assert!(
        took < Duration::from_secs(1),
        "second node took {took:?}: {out}"
    );
    assert!(out.contains("Reason: keyCompromise"), "{out}");

    // Suspended: revoked with certificateHold; resumed: good again — on both nodes.
    let suspend = format!("/admin/v1/credentials/{}/suspend", held.id);
    let (status, body) = a.admin_post(&suspend, json!({ "reason": "inquiry" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let out = ocsp_status(&a, &hold, &[]);
    assert!(
        out.contains(": revoked") && out.contains("Reason: certificateHold"),
        "{out}"
    );
    let (took, out) = until_status(&b, &hold, "certificateHold").await;
    assert!(
        took < Duration::from_secs(1),
        "second node took {took:?}: {out}"
    );
    let (status, body) = a
        .admin_post(
            &format!("/admin/v1/credentials/{}/resume", held.id),
            json!({ "reason": "cleared" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(ocsp_status(&a, &hold, &[]).contains(": good"));
    let (took, _) = until_status(&b, &hold, ": good").await;
    assert!(took < Duration::from_secs(1), "second node took {took:?}");

    // A suspension takes no reason code (it is certificateHold).
    let (status, body) = a
        .admin_post(
            &suspend,
            json!({ "reason": "x", "reason_code": "superseded" }),
        )
        .await;
    crate::support::assert_error(&(status, body), StatusCode::BAD_REQUEST, "invalid_request");

    // The CRL of either node verifies against the CA and lists the revoked serial with its
    // reason (the resumed one is gone from it).
    for node in [&a, &b] {
        let start = Instant::now();
        let text = loop {
            let res = node
                .client
                .get(format!("{}/pki/crl/issuing.crl", node.public))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            assert_eq!(res.headers()["content-type"], "application/pkix-crl");
            let path = dir.join("issuing.crl");
            std::fs::write(&path, res.bytes().await.unwrap()).unwrap();
            let chain = dir.join("chain.pem");
            std::fs::write(
                &chain,
                [
                    std::fs::read(&issuing).unwrap(),
                    std::fs::read(&root).unwrap(),
                ]
                .concat(),
            )
            .unwrap();
            let (ok, text) = openssl(&[
                "crl",
                "-inform",
                "DER",
                "-in",
                path.to_str().unwrap(),
                "-CAfile",
                chain.to_str().unwrap(),
                "-noout",
                "-text",
            ]);
            assert!(ok, "{text}");
            if !text.contains("Certificate Hold") || start.elapsed() > Duration::from_secs(1) {
                break text;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(text.contains("verify OK"), "{text}");
        assert!(text.contains(&format!("Serial Number: {serial}")), "{text}");
        assert!(text.contains("Key Compromise"), "{text}");
        assert!(!text.contains("Certificate Hold"), "resumed: {text}");
        assert!(text.contains("X509v3 CRL Number"), "{text}");
        assert!(text.contains("Next Update"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_foreign_ocsp_requests_are_refused() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    let dir = temp_dir("ocsp-bad");
    let (leaf, issuing, root, _) = certificate_files(&app, &dir, &credential.id).await;
    let url = format!("{}/pki/ocsp", app.public);

    // Not an OCSPRequest: malformedRequest (1), by POST and by GET.
    let res = app
        .client
        .post(&url)
        .header("content-type", "application/ocsp-request")
        .body(b"\x30\x03\x02\x01".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/ocsp-response");
    assert_eq!(
        &res.bytes().await.unwrap()[..],
        [0x30, 0x03, 0x0a, 0x01, 0x01]
    );
    let res = app
        .client
        .get(format!("{url}/not%2Fbase64!"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        &res.bytes().await.unwrap()[..],
        [0x30, 0x03, 0x0a, 0x01, 0x01]
    );

    // A certificate this CA's responder does not answer for (the issuing CA's own, issued
    // by the root): unauthorized (6).
    let (_, out) = openssl(&[
        "ocsp", "-issuer", &root, "-cert", &issuing, "-url", &url, "-timeout", "5",
    ]);
    assert!(out.contains("unauthorized (6)"), "{out}");

    // The GET form (RFC 6960 A.1) of a request openssl wrote answers like the POST form.
    let req = dir.join("req.der");
    let (ok, out) = openssl(&[
        "ocsp",
        "-issuer",
        &issuing,
        "-cert",
        &leaf,
        "-no_nonce",
        "-reqout",
        req.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let der = std::fs::read(&req).unwrap();
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(&der)
        .replace('/', "%2F")
        .replace('+', "%2B")
        .replace('=', "%3D");
    let res = app
        .client
        .get(format!("{url}/{encoded}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.bytes().await.unwrap();
    let parsed = openssl::ocsp::OcspResponse::from_der(&body).unwrap();
    assert_eq!(
        parsed.status(),
        openssl::ocsp::OcspResponseStatus::SUCCESSFUL
    );
    let basic = parsed.basic().unwrap();
    let leaf_cert = X509::from_pem(&std::fs::read(&leaf).unwrap()).unwrap();
    let issuing_cert = X509::from_pem(&std::fs::read(&issuing).unwrap()).unwrap();
    let id = openssl::ocsp::OcspCertId::from_cert(
        openssl::hash::MessageDigest::sha1(),
        &leaf_cert,
        &issuing_cert,
    )
    .unwrap();
    let status = basic.find_status(&id).unwrap();
    assert_eq!(status.status, openssl::ocsp::OcspCertStatus::GOOD);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issued_certificates_name_ocsp_ca_and_crl_and_carry_the_qualified_profile() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    let dir = temp_dir("aia");
    let (leaf, issuing, root, _) = certificate_files(&app, &dir, &credential.id).await;
    let (_, text) = openssl(&["x509", "-in", &leaf, "-noout", "-text"]);
    let base = &app.public;
    assert!(
        text.contains(&format!("OCSP - URI:{base}/pki/ocsp")),
        "{text}"
    );
    assert!(
        text.contains(&format!("CA Issuers - URI:{base}/pki/ca/issuing.cer")),
        "{text}"
    );
    assert!(
        text.contains("X509v3 CRL Distribution Points")
            && text.contains(&format!("URI:{base}/pki/crl/issuing.crl")),
        "{text}"
    );
    assert!(text.contains("Policy: 0.4.0.194112.1.2"), "{text}");
    assert!(text.contains("Non Repudiation"), "{text}");

    // QC statements: QcCompliance, QcSSCD, QcType esign, QcPDS with its URL, and the natural
    // person semantics identifier.
    let der_leaf = X509::from_pem(&std::fs::read(&leaf).unwrap())
        .unwrap()
        .to_der()
        .unwrap();
    let contains = |needle: &[u8]| der_leaf.windows(needle.len()).any(|w| w == needle);
    for (name, arcs) in [
        ("QcCompliance", &[0, 4, 0, 1862, 1, 1][..]),
        ("QcSSCD", &[0, 4, 0, 1862, 1, 4]),
        ("QcType esign", &[0, 4, 0, 1862, 1, 6, 1]),
        ("QcPDS", &[0, 4, 0, 1862, 1, 5]),
        ("natural person", &[0, 4, 0, 194121, 1, 1]),
    ] {
        assert!(contains(&der::oid(arcs)), "{name} missing");
    }
    assert!(contains(app.config.pki.pds_url.as_bytes()), "PDS URL");

    // The caIssuers URLs serve the CA certificates (DER).
    for (name, pem) in [("issuing", &issuing), ("root", &root)] {
        let res = app
            .client
            .get(format!("{base}/pki/ca/{name}.cer"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "application/pkix-cert");
        let served = X509::from_der(&res.bytes().await.unwrap()).unwrap();
        assert_eq!(
            served.to_der().unwrap(),
            X509::from_pem(&std::fs::read(pem).unwrap())
                .unwrap()
                .to_der()
                .unwrap()
        );
    }
    let res = app
        .client
        .get(format!("{base}/pki/ca/other.cer"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

/// `openssl crl` of the DER CRL `name` served by `app`, converted to PEM beside the others.
async fn fetch_crl(app: &TestApp, dir: &Path, name: &str) -> String {
    let res = app
        .client
        .get(format!("{}/pki/crl/{name}.crl", app.public))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{name}.crl");
    let der = dir.join(format!("{name}.crl.der"));
    std::fs::write(&der, res.bytes().await.unwrap()).unwrap();
    let pem = dir.join(format!("{name}.crl.pem"));
    let (ok, out) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        der.to_str().unwrap(),
        "-out",
        pem.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    pem.to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_publishes_the_crl_the_issuing_ca_names_so_the_whole_chain_is_checkable() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    let dir = temp_dir("root-crl");
    let (leaf, issuing, root, serial) = certificate_files(&app, &dir, &credential.id).await;
    let base = &app.public;

    // The issuing CA's certificate names the root's certificate and CRL (and no OCSP: the
    // root runs none).
    let (_, text) = openssl(&["x509", "-in", &issuing, "-noout", "-text"]);
    assert!(
        text.contains(&format!("CA Issuers - URI:{base}/pki/ca/root.cer")),
        "{text}"
    );
    assert!(
        text.contains("X509v3 CRL Distribution Points")
            && text.contains(&format!("URI:{base}/pki/crl/root.crl")),
        "{text}"
    );
    assert!(!text.contains("OCSP - URI"), "{text}");

    // The root's CRL: signed by the root, empty, with a number and a next update.
    let root_crl = fetch_crl(&app, &dir, "root").await;
    let (ok, text) = openssl(&["crl", "-in", &root_crl, "-CAfile", &root, "-noout", "-text"]);
    assert!(ok && text.contains("verify OK"), "{text}");
    assert!(text.contains("No Revoked Certificates"), "{text}");
    assert!(
        text.contains("X509v3 CRL Number") && text.contains("Next Update"),
        "{text}"
    );

    // A relying party that checks every certificate of the chain against its CRL.
    let verify = |crls: &[&str]| {
        let mut args = vec![
            "verify",
            "-crl_check_all",
            "-CAfile",
            &root,
            "-untrusted",
            &issuing,
        ];
        for crl in crls {
            args.extend_from_slice(&["-CRLfile", crl]);
        }
        args.push(&leaf);
        openssl(&args)
    };
    let issuing_crl = fetch_crl(&app, &dir, "issuing").await;
    let (ok, out) = verify(&[&issuing_crl, &root_crl]);
    assert!(ok && out.contains("OK"), "{out}");
    let (ok, out) = verify(&[&issuing_crl]);
    assert!(
        !ok,
        "without the root's CRL the issuing CA's status is unknown: {out}"
    );

    // After a revocation the same check fails on the leaf.
    let (status, body) = app
        .admin_post(
            &format!("/admin/v1/credentials/{}/revoke", credential.id),
            json!({ "reason": "key lost", "reason_code": "keyCompromise" }),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    let start = Instant::now();
    let out = loop {
        let issuing_crl = fetch_crl(&app, &dir, "issuing").await;
        let (ok, out) = verify(&[&issuing_crl, &root_crl]);
        if !ok || start.elapsed() > Duration::from_secs(3) {
            break out;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(out.contains("certificate revoked"), "{serial}: {out}");
}
