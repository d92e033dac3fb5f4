//! A third-party CSC client, unchanged: pyHanko's CSC signer (CSC 1.0.4.0) signs a batch of
//! PDFs through sigillo in ONE signHash call, and pyHanko's own validator checks integrity and
//! trust up to the gateway root. The Python side is tests/e2e/pyhanko_csc.py.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{env, random_suffix, TestApp};

async fn sign_pdfs(key_algo: &str, count: usize, extra: &[&str]) {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let (user, _token, credential, pin) = app.active_credential(key_algo, "signing").await;
    let dir = std::path::PathBuf::from(env("SIGILLO_TEST_TMP"))
        .join(format!("pyhanko-{}", random_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = dir.join("root.pem");
    std::fs::write(&root, app.services().ca.root().to_pem().unwrap()).unwrap();

    let out = Command::new(env("SIGILLO_TEST_PYTHON"))
        .arg("tests/e2e/pyhanko_csc.py")
        .args(["--base-url", &app.public, "--api-version", "v1"])
        .args([
            "--user",
            &user.user_id,
            "--password",
            &user.password,
            "--pin",
            &pin,
        ])
        .args(["--credential-id", &credential])
        .arg("--outbox")
        .arg(&app.config.otp.outbox_path)
        .arg("--root-cert")
        .arg(&root)
        .args(["--count", &count.to_string()])
        .arg("--out-dir")
        .arg(dir.join("out"))
        .args(extra)
        .output()
        .expect("the pyHanko venv python (SIGILLO_TEST_PYTHON) runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pyHanko failed:\n{stdout}\n{stderr}");
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("no JSON summary ({e}):\n{stdout}\n{stderr}"));
    assert_eq!(summary["signed"], count, "{summary}");
    assert_eq!(
        summary["valid"], count,
        "every PDF validates (intact, valid, trusted): {summary}"
    );
    assert_eq!(
        summary["signHash_calls"], 1,
        "the whole batch in one signHash: {summary}"
    );
    let signed = std::fs::read_dir(dir.join("out")).unwrap().count();
    assert!(signed >= count, "{signed} files written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyhanko_signs_a_batch_of_pdfs_with_ecdsa() {
    sign_pdfs("ec-p256", 4, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyhanko_signs_a_batch_of_pdfs_with_rsa_pss() {
    sign_pdfs("rsa-2048", 3, &["--prefer-pss"]).await;
}

/// Runs tests/e2e/pyhanko_blt.py with `args`; (succeeded, its JSON line, stdout + stderr).
fn pades(args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(env("SIGILLO_TEST_PYTHON"))
        .arg("tests/e2e/pyhanko_blt.py")
        .args(args)
        .output()
        .expect("the pyHanko venv python (SIGILLO_TEST_PYTHON) runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("pyhanko_blt.py {}: {}", args[0], stdout.trim());
    let all = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let json = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    (out.status.success(), json, all)
}

/// PAdES end to end with pyHanko, status fetched from sigillo's OCSP/CRL with revocation
/// checking hard-fail: a B-LTA signature (signature timestamp from sigillo's TSA, validation
/// info in the DSS, a document timestamp) and a B-B one (neither) both validate; pyHanko's
/// PAdES long-term validation (EN 319 102-1 § 5.6.3) passes for the B-LTA one. After the
/// credential is revoked the B-LTA one still validates from its embedded data alone at its
/// timestamp's time, and still passes the long-term validation (validated now it is revoked,
/// but after its timestamp); the B-B one validated now is reported revoked; pyHanko can sign
/// no more (refused with invalid_request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyhanko_pades_b_lt_outlives_the_revocation_that_b_b_does_not() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let (user, _token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let dir = std::path::PathBuf::from(env("SIGILLO_TEST_TMP"))
        .join(format!("pades-{}", random_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = dir.join("root.pem");
    std::fs::write(&root, app.services().ca.root().to_pem().unwrap()).unwrap();
    let root = root.to_str().unwrap().to_owned();
    let outbox = app.config.otp.outbox_path.to_str().unwrap().to_owned();
    let lt = dir.join("b-lta.pdf").to_str().unwrap().to_owned();
    let bb = dir.join("b-b.pdf").to_str().unwrap().to_owned();
    let sign = |level: &'static str, out: &str, extra: &'static [&'static str]| {
        let mut args = vec![
            "sign",
            "--base-url",
            &app.public,
            "--user",
            &user.user_id,
            "--password",
            &user.password,
            "--pin",
            &pin,
            "--credential-id",
            &credential,
            "--outbox",
            &outbox,
            "--root-cert",
            &root,
            "--level",
            level,
            "--out",
        ];
        args.push(out);
        args.extend_from_slice(extra);
        pades(&args)
    };
    let validate = |file: &str, expect: &str, extra: &[&str]| {
        let mut args = vec!["validate", "--in", file, "--expect", expect];
        args.extend_from_slice(&["--root-cert", &root]);
        args.extend_from_slice(extra);
        pades(&args)
    };

    let (ok, signed, out) = sign("b-lta", &lt, &[]);
    assert!(ok, "B-LTA signing failed:\n{out}");
    assert!(
        signed["tsa_calls"].as_u64().unwrap() >= 2,
        "signature + document timestamp: {signed}"
    );
    assert!(signed["fetched"]["ocsp"].as_u64().unwrap() >= 1, "{signed}");
    let (ok, got, out) = validate(&lt, "valid", &["--ades-lta", &root]);
    assert!(ok, "B-LTA, fetched status, hard-fail:\n{out}");
    assert_eq!(got["ades_lta"]["status"], "PASSED", "{got}");
    assert_eq!(got["timestamped"], true, "{got}");
    assert_eq!(got["document_timestamps"], 1, "{got}");
    assert!(
        got["dss"]["ocsps"].as_u64().unwrap() >= 1,
        "embedded OCSP: {got}"
    );

    let (ok, signed, out) = sign("b-b", &bb, &[]);
    assert!(ok, "B-B signing failed:\n{out}");
    assert_eq!(signed["tsa_calls"], 0, "{signed}");
    let (ok, got, out) = validate(&bb, "valid", &["--status-from", "both"]);
    assert!(ok, "B-B, fetched status, hard-fail:\n{out}");
    assert_eq!(
        got["dss"],
        Value::Null,
        "no embedded validation info: {got}"
    );
    assert_eq!(got["timestamped"], false, "{got}");
    // Two CRLs: the issuing CA's for the signer, and the root's for the issuing CA (its
    // certificate names it), so the whole chain's status is checked.
    assert_eq!(got["fetched"]["crl"], 2, "the CRLs too: {got}");

    let (status, body) = app
        .admin_post(
            &format!("/admin/v1/credentials/{credential}/revoke"),
            json!({ "reason": "key lost", "reason_code": "keyCompromise" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (ok, got, out) = validate(&lt, "valid", &["--embedded-only"]);
    assert!(ok, "B-LTA after the revocation, embedded data only:\n{out}");
    assert_eq!(got["revoked"], false, "{got}");
    assert_eq!(got["timestamped"], true, "{got}");
    // Validated now with fetching, its certificate is revoked; pyHanko's PAdES long-term
    // validation passes all the same: the revocation came after the signature timestamp.
    let (ok, got, out) = validate(&lt, "revoked", &["--ades-lta", &root]);
    assert!(
        ok,
        "B-LTA after the revocation, long-term validation:\n{out}"
    );
    assert_eq!(got["ades_lta"]["status"], "PASSED", "{got}");
    // The OCSP status reaches a node within status_poll_ms of the admin call.
    let mut tries = 0;
    let got = loop {
        let (ok, got, out) = validate(&bb, "revoked", &[]);
        if ok {
            break got;
        }
        tries += 1;
        assert!(tries < 5, "B-B after the revocation, fetched:\n{out}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    assert_eq!(got["revoked"], true, "{got}");
    assert!(got["fetched"]["ocsp"].as_u64().unwrap() >= 1, "{got}");
    // pyHanko stops at the first revoked answer (OCSP): ask the CRL alone as well.
    let (ok, got, out) = validate(&bb, "revoked", &["--status-from", "crl"]);
    assert!(ok, "B-B after the revocation, from the CRL:\n{out}");
    assert_eq!(
        got["fetched"]["crl"], 2,
        "the issuing CA's and the root's: {got}"
    );
    assert_eq!(got["fetched"]["ocsp"], 0, "{got}");
    assert_eq!(got["trusted"], false, "{got}");

    let (ok, got, out) = sign(
        "b-b",
        dir.join("refused.pdf").to_str().unwrap(),
        &["--expect-refused"],
    );
    assert!(ok, "signing after the revocation:\n{out}");
    // pyHanko's flow stops at the first call needing an active credential: sendOTP, before
    // authorize (which refuses a revoked credential too, tests/it/lifecycle.rs).
    assert_eq!(
        got["refused"]["path"], "/csc/v1/credentials/sendOTP",
        "{got}"
    );
    assert_eq!(got["refused"]["status"], 400, "{got}");
    assert_eq!(got["refused"]["error"], "invalid_request", "{got}");
    assert_eq!(
        got["refused"]["error_description"], "the credential is revoked",
        "{got}"
    );
}
