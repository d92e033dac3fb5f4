//! The RFC 3161 time-stamping authority, driven by the tools relying parties use: queries made
//! by `openssl ts -query`, replies read and verified by `openssl ts -reply` / `-verify` against
//! the CA chain; refusals with their PKIFailureInfo; serial numbers unique across two nodes
//! under parallel requests; and CSC `signatures/timestamp`.

use std::collections::HashSet;
use std::path::PathBuf;

use openssl::x509::X509;
use reqwest::StatusCode;
use serde_json::json;
use sigillo::der;

use crate::support::{assert_error, env, openssl, random_suffix, test_config, unb64, TestApp};

const POLICY: &str = "1.3.6.1.4.1.99999.1.1";

/// A fresh directory holding the CA chain and the TSA certificate as PEM, and a data file.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(app: &TestApp) -> Files {
        let dir = PathBuf::from(env("SIGILLO_TEST_TMP")).join(format!("tsa-{}", random_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = &app.services().ca;
        std::fs::write(dir.join("root.pem"), ca.root().to_pem().unwrap()).unwrap();
        std::fs::write(dir.join("issuing.pem"), ca.issuing().to_pem().unwrap()).unwrap();
        let tsa = X509::from_der(app.services().tsa.as_ref().unwrap().certificate()).unwrap();
        let both = [tsa.to_pem().unwrap(), ca.issuing().to_pem().unwrap()].concat();
        std::fs::write(dir.join("tsa-and-issuing.pem"), both).unwrap();
        std::fs::write(
            dir.join("data.txt"),
            format!("document {}", random_suffix()),
        )
        .unwrap();
        Files { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }
}

async fn post_query(app: &TestApp, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    let res = reqwest::Client::new()
        .post(format!("{}/tsa", app.public))
        .header("Content-Type", "application/timestamp-query")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/timestamp-reply")
    );
    (status, res.bytes().await.unwrap().to_vec())
}

fn nonce_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("Nonce:"))
        .map(str::to_owned)
}

/// Makes a query with `openssl ts -query`, sends it, and returns the reply's path and text.
async fn round_trip(app: &TestApp, files: &Files, name: &str, query_args: &[&str]) -> String {
    let (query, reply) = (
        files.path(&format!("{name}.tsq")),
        files.path(&format!("{name}.tsr")),
    );
    let data = files.path("data.txt");
    let mut args = vec!["ts", "-query", "-data", &data, "-out", &query];
    args.extend_from_slice(query_args);
    let (ok, out) = openssl(&args);
    assert!(ok, "{out}");
    let (status, body) = post_query(app, std::fs::read(&query).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    std::fs::write(&reply, body).unwrap();
    let (ok, text) = openssl(&["ts", "-reply", "-in", &reply, "-text"]);
    assert!(ok, "{text}");
    assert!(text.contains("Status: Granted."), "{text}");
    assert!(text.contains(&format!("Policy OID: {POLICY}")), "{text}");
    assert!(text.contains("Accuracy: 0x01 seconds"), "{text}");
    let (_, query_text) = openssl(&["ts", "-query", "-in", &query, "-text"]);
    assert_eq!(
        nonce_line(&query_text),
        nonce_line(&text),
        "the nonce is echoed (or absent in both)\n{query_text}\n{text}"
    );
    reply
}

fn verify(files: &Files, reply: &str, untrusted: &str) -> (bool, String) {
    openssl(&[
        "ts",
        "-verify",
        "-data",
        &files.path("data.txt"),
        "-in",
        reply,
        "-CAfile",
        &files.path("root.pem"),
        "-untrusted",
        &files.path(untrusted),
    ])
}

/// The certificates (subject lines) inside the token of `reply`.
fn token_certificates(reply: &str) -> String {
    let token = format!("{reply}.token");
    let (ok, out) = openssl(&["ts", "-reply", "-in", reply, "-token_out", "-out", &token]);
    assert!(ok, "{out}");
    let (ok, out) = openssl(&[
        "pkcs7",
        "-inform",
        "DER",
        "-in",
        &token,
        "-print_certs",
        "-noout",
    ]);
    assert!(ok, "{out}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_queries_get_tokens_that_openssl_verifies_against_the_ca() {
    let app = TestApp::spawn().await;
    let files = Files::new(&app);

    for (name, args) in [
        ("sha256-cert-nonce", &["-sha256", "-cert"][..]),
        (
            "sha256-cert-no-nonce",
            &["-sha256", "-cert", "-no_nonce"][..],
        ),
        ("sha384", &["-sha384", "-cert"][..]),
        ("sha512", &["-sha512", "-cert", "-tspolicy", POLICY][..]),
    ] {
        let reply = round_trip(&app, &files, name, args).await;
        let (ok, out) = verify(&files, &reply, "issuing.pem");
        assert!(ok && out.contains("Verification: OK"), "{name}: {out}");
        let certs = token_certificates(&reply);
        assert!(
            certs.contains("sigillo Time-Stamping Unit"),
            "{name}: certReq → the TSA certificate is in the token: {certs}"
        );
    }

    // Without certReq the token carries no certificate; a verifier that has it still accepts.
    let reply = round_trip(&app, &files, "sha256-no-cert", &["-sha256"]).await;
    let certs = token_certificates(&reply);
    assert!(!certs.contains("subject"), "no certificate: {certs}");
    let (ok, out) = verify(&files, &reply, "issuing.pem");
    assert!(!ok, "the TSA certificate is needed: {out}");
    let (ok, out) = verify(&files, &reply, "tsa-and-issuing.pem");
    assert!(ok && out.contains("Verification: OK"), "{out}");

    // Another document does not verify against the token.
    std::fs::write(files.dir.join("data.txt"), b"another document").unwrap();
    let (ok, out) = verify(&files, &reply, "tsa-and-issuing.pem");
    assert!(!ok, "{out}");
}

/// A TimeStampReq v1 with `imprint` (and optional extra fields), in DER.
fn query(imprint: Vec<u8>, extra: &[Vec<u8>]) -> Vec<u8> {
    der::tlv(
        0x30,
        &[vec![der::tlv(0x02, &[1]), imprint], extra.to_vec()]
            .concat()
            .concat(),
    )
}

fn imprint(hash_oid: &[u64], digest: &[u8]) -> Vec<u8> {
    der::tlv(
        0x30,
        &[der::tlv(0x30, &der::oid(hash_oid)), der::tlv(0x04, digest)].concat(),
    )
}

const SHA256: [u64; 9] = [2, 16, 840, 1, 101, 3, 4, 2, 1];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_queries_are_rejected_with_their_failure_info() {
    let app = TestApp::spawn().await;
    let files = Files::new(&app);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garbage",
            b"this is not DER".to_vec(),
            "the data submitted has the wrong format",
        ),
        (
            "trailing bytes",
            [query(imprint(&SHA256, &[1; 32]), &[]), vec![0]].concat(),
            "the data submitted has the wrong format",
        ),
        (
            "short imprint",
            query(imprint(&SHA256, &[1; 31]), &[]),
            "the data submitted has the wrong format",
        ),
        (
            "SHA-256 OID with a SHA-512 length",
            query(imprint(&SHA256, &[1; 64]), &[]),
            "the data submitted has the wrong format",
        ),
        (
            "unknown hash (SHA-1)",
            query(imprint(&[1, 3, 14, 3, 2, 26], &[1; 20]), &[]),
            "unrecognized or unsupported algorithm identifier",
        ),
        (
            "foreign policy",
            query(imprint(&SHA256, &[1; 32]), &[der::oid(&[1, 2, 3, 4])]),
            "the requested TSA policy is not supported by the TSA",
        ),
        (
            "version 2",
            der::tlv(
                0x30,
                &[der::tlv(0x02, &[2]), imprint(&SHA256, &[1; 32])].concat(),
            ),
            "transaction not permitted or supported",
        ),
    ];
    for (name, body, failure) in cases {
        let (status, reply) = post_query(&app, body).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        let path = files.path(&format!("{}.tsr", name.replace(' ', "-")));
        std::fs::write(&path, reply).unwrap();
        let (ok, text) = openssl(&["ts", "-reply", "-in", &path, "-text"]);
        assert!(ok, "{name}: {text}");
        assert!(text.contains("Status: Rejected."), "{name}: {text}");
        assert!(text.contains(failure), "{name}: {text}");
        assert!(text.contains("TST info:\nNot included."), "{name}: {text}");
    }

    // openssl's own query for SHA-1 is refused the same way.
    let data = files.path("data.txt");
    let sha1 = files.path("sha1.tsq");
    let (ok, out) = openssl(&["ts", "-query", "-data", &data, "-sha1", "-out", &sha1]);
    assert!(ok, "{out}");
    let (_, reply) = post_query(&app, std::fs::read(&sha1).unwrap()).await;
    let path = files.path("sha1.tsr");
    std::fs::write(&path, reply).unwrap();
    let (_, text) = openssl(&["ts", "-reply", "-in", &path, "-text"]);
    assert!(
        text.contains("unrecognized or unsupported algorithm identifier"),
        "{text}"
    );

    // Not a timestamp query at all: badRequest.
    let res = reqwest::Client::new()
        .post(format!("{}/tsa", app.public))
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    std::fs::write(files.dir.join("json.tsr"), res.bytes().await.unwrap()).unwrap();
    let (_, text) = openssl(&["ts", "-reply", "-in", &files.path("json.tsr"), "-text"]);
    assert!(
        text.contains("transaction not permitted or supported"),
        "{text}"
    );
}

/// The serial number of the token in a granted TimeStampResp (hex of its INTEGER content).
fn serial_of(reply: &[u8]) -> String {
    fn step(element: &[u8]) -> Vec<&[u8]> {
        der::elements(der::content(element).unwrap()).unwrap()
    }
    let resp = step(reply);
    let token = step(resp[1]);
    let signed_data = step(der::content(token[1]).unwrap());
    let encapsulated = step(signed_data[2]);
    let octets = der::content(encapsulated[1]).unwrap();
    let tst_info = step(der::content(octets).unwrap());
    hex::encode(der::content(tst_info[3]).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_numbers_are_unique_across_two_nodes_under_parallel_requests() {
    let config = test_config(&random_suffix());
    let (a, b) = tokio::join!(
        TestApp::spawn_node(config.clone()),
        TestApp::spawn_node(config)
    );
    let (ta, tb) = (
        a.services().tsa.as_ref().unwrap(),
        b.services().tsa.as_ref().unwrap(),
    );
    assert_eq!(
        ta.certificate(),
        tb.certificate(),
        "one TSA certificate for both nodes"
    );
    let body = query(imprint(&SHA256, &[7; 32]), &[]);
    let requests = (0..200).map(|i| {
        let node = if i % 2 == 0 { &a } else { &b };
        post_query(node, body.clone())
    });
    let replies = futures_util::future::join_all(requests).await;
    let mut serials = HashSet::new();
    for (status, reply) in &replies {
        assert_eq!(*status, StatusCode::OK);
        assert!(serials.insert(serial_of(reply)), "duplicate serial");
    }
    assert_eq!(serials.len(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csc_timestamp_returns_a_token_that_openssl_verifies() {
    let app = TestApp::spawn().await;
    let files = Files::new(&app);
    let user = app.create_user("sms").await;
    let token = app.login(&user).await;
    let data = std::fs::read(files.dir.join("data.txt")).unwrap();
    let digest = openssl::sha::sha256(&data);

    let (status, info) = app.post("/csc/v2/info", None, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(info["methods"]
        .as_array()
        .unwrap()
        .contains(&json!("signatures/timestamp")));

    let request = json!({
        "hash": crate::support::b64(&digest),
        "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1",
        "nonce": "00c0ffee0123456789",
        "clientData": "12345678",
    });
    let (status, body) = app
        .post(
            "/csc/v2/signatures/timestamp",
            Some(&token),
            request.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let path = files.path("csc.tst");
    std::fs::write(&path, unb64(body["timestamp"].as_str().unwrap())).unwrap();
    let (ok, out) = openssl(&[
        "ts",
        "-verify",
        "-data",
        &files.path("data.txt"),
        "-in",
        &path,
        "-token_in",
        "-CAfile",
        &files.path("root.pem"),
        "-untrusted",
        &files.path("issuing.pem"),
    ]);
    assert!(ok && out.contains("Verification: OK"), "{out}");
    let (ok, text) = openssl(&["ts", "-reply", "-in", &path, "-token_in", "-text"]);
    assert!(ok, "{text}");
    assert!(text.contains("Nonce: 0xC0FFEE0123456789"), "{text}");

    // v1 names, SHA-512, no nonce.
    let digest512 = openssl::sha::sha512(&data);
    let (status, body) = app
        .post(
            "/csc/v1/signatures/timestamp",
            Some(&token),
            json!({ "hash": crate::support::b64(&digest512), "hashAlgo": "2.16.840.1.101.3.4.2.3" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    std::fs::write(&path, unb64(body["timestamp"].as_str().unwrap())).unwrap();
    let (ok, out) = openssl(&[
        "ts",
        "-verify",
        "-data",
        &files.path("data.txt"),
        "-in",
        &path,
        "-token_in",
        "-CAfile",
        &files.path("root.pem"),
        "-untrusted",
        &files.path("issuing.pem"),
    ]);
    assert!(ok && out.contains("Verification: OK"), "{out}");

    // Refusals: no token, a hash of the wrong length, an unknown algorithm, a bad nonce.
    let got = app
        .post("/csc/v2/signatures/timestamp", None, request.clone())
        .await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "invalid_token");
    let mut bad = request.clone();
    bad["hash"] = json!(crate::support::b64(&digest[..31]));
    let got = app
        .post("/csc/v2/signatures/timestamp", Some(&token), bad)
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let mut bad = request.clone();
    bad["hashAlgorithmOID"] = json!("1.3.14.3.2.26");
    let got = app
        .post("/csc/v2/signatures/timestamp", Some(&token), bad)
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let mut bad = request;
    bad["nonce"] = json!("not hex");
    let got = app
        .post("/csc/v2/signatures/timestamp", Some(&token), bad)
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_tsa_answers_not_found() {
    let app = TestApp::spawn_with(|c| c.tsa.enabled = false).await;
    assert!(app.services().tsa.is_none());
    let res = reqwest::Client::new()
        .post(format!("{}/tsa", app.public))
        .header("Content-Type", "application/timestamp-query")
        .body(query(imprint(&SHA256, &[1; 32]), &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}
