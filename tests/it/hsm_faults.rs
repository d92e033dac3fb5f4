//! HSM faults, through the fault-injection PKCS#11 module (hsm/pkcs11-fault, built by
//! scripts/test) loaded as the gateway's module in front of SoftHSM2: a lost session or login
//! is reopened and the request still signs; a device error is a clear 503 and the SAD of the
//! failed signHash is given back, so later requests sign with it.
//!
//! The module's rules are process-wide, so every scenario runs in this one test.

use std::path::PathBuf;

use reqwest::StatusCode;

use crate::support::{assert_error, digests, env, unb64, Csc, TestApp};

const ES256: &str = "1.2.840.10045.4.3.2";

/// Arms the module: `rules` as in its control file; `seq` makes each write differ.
fn arm(seq: u32, rules: &str) {
    let path = PathBuf::from(env("PKCS11_FAULT_CONTROL"));
    std::fs::write(path, format!("# {seq}\n{rules}\n")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_sessions_and_logins_are_reopened_and_device_errors_give_the_sad_back() {
    arm(0, "");
    let app = TestApp::spawn_with(|c| {
        c.hsm.module = PathBuf::from(env("SIGILLO_TEST_FAULT_MODULE"));
        c.hsm.workers = 1;
        c.otp.send_limit = 100;
        c.csc.scal = "1".into();
    })
    .await;
    let (_, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let certificate = app.leaf_certificate(Csc::V2, &token, &credential).await;
    let key = certificate.public_key().unwrap().ec_key().unwrap();
    let (status, body) = app
        .authorize(Csc::V2, &token, &credential, &pin, 3, None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sad = body["SAD"].as_str().unwrap().to_owned();
    let sign = |hashes: Vec<Vec<u8>>| {
        let (app, token, credential, sad) = (&app, &token, &credential, &sad);
        async move {
            let got = app
                .sign_hash(Csc::V2, token, credential, sad, &hashes, None, ES256, None)
                .await;
            (got, hashes)
        }
    };
    let verify = |body: &serde_json::Value, hash: &[u8]| {
        let signature =
            openssl::ecdsa::EcdsaSig::from_der(&unb64(body["signatures"][0].as_str().unwrap()))
                .unwrap();
        assert!(
            signature.verify(hash, &key).unwrap(),
            "the signature verifies"
        );
    };

    // The token forgets the worker's session (CKR_SESSION_HANDLE_INVALID), then its login
    // (CKR_USER_NOT_LOGGED_IN): reopened, logged in again, and the request signs.
    for (seq, rv) in [(1, "0xB3"), (2, "0x101")] {
        arm(seq, &format!("C_SignInit fail {rv} 1"));
        let ((status, body), hashes) = sign(digests(1, 32)).await;
        assert_eq!(status, StatusCode::OK, "after {rv}: {body}");
        verify(&body, &hashes[0]);
    }

    // The device fails (CKR_DEVICE_ERROR) for as long as it takes: a clear 503 with
    // Retry-After, no signature — and the SAD keeps its last signature.
    arm(3, "C_SignInit fail 0x30 1000");
    let ((status, body), _) = sign(digests(1, 32)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    arm(4, "");
    let ((status, body), hashes) = sign(digests(1, 32)).await;
    assert_eq!(status, StatusCode::OK, "the SAD was given back: {body}");
    verify(&body, &hashes[0]);
    // Three authorised, three signed: no more.
    let (got, _) = sign(digests(1, 32)).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
}
