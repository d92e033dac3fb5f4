//! Renewal: once, inside the window, with identity confirmed, PIN + OTP and an unused coupon;
//! the new certificate certifies the same HSM key for 3 years from the old expiry.

use std::process::Command;

use openssl::x509::X509;
use reqwest::StatusCode;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::support::{assert_error, digests, env, random_suffix, unb64, Csc, TestApp, OID_SHA256};

const ES256: &str = "1.2.840.10045.4.3.2";

async fn coupons(app: &TestApp, count: usize) -> Vec<String> {
    let (status, body) = app
        .admin_post("/admin/v1/coupons", json!({ "count": count }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["coupons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

/// An active credential valid `days` days: (token, credential id, PIN).
async fn credential(app: &TestApp, days: u32) -> (String, String, String) {
    let user = app.create_user("sms").await;
    let (status, body) = app
        .admin_post(
            &format!("/admin/v1/users/{}/credentials", user.user_id),
            json!({ "key_algo": "ec-p256", "purpose": "signing", "validity_days": days }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["credential_id"].as_str().unwrap().to_owned();
    let serial = body["serial_number"].as_str().unwrap();
    let puk = crate::support::envelope_of(&user.email, serial, &user.passphrase, &[])
        .await
        .puk;
    let token = app.login(&user).await;
    let otp = app.sms_otp(&token, &id).await;
    let (status, _) = app.activate(&token, &id, &puk, "24681357", &otp).await;
    assert_eq!(status, StatusCode::OK);
    (token, id, "24681357".into())
}

async fn renew(
    app: &TestApp,
    token: &str,
    id: &str,
    confirm: bool,
    pin: &str,
    otp: &str,
    coupon: &str,
) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/credentials/{id}/renew"),
        Some(token),
        json!({ "confirm_identity": confirm, "pin": pin, "otp": otp, "coupon": coupon }),
    )
    .await
}

fn time(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(v.as_str().unwrap(), &Rfc3339).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coupons_are_created_by_the_operator() {
    let app = TestApp::spawn().await;
    let made = coupons(&app, 3).await;
    assert_eq!(made.len(), 3);
    assert!(made.iter().all(|c| c.starts_with("RNW-") && c.len() == 20));
    assert_ne!(made[0], made[1]);
    for count in [0, 1001] {
        let got = app
            .admin_post("/admin/v1/coupons", json!({ "count": count }))
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_refusals_one_by_one() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let coupon = coupons(&app, 2).await;

    // Outside the window: a fresh 3-year certificate.
    let (token, long, pin) = credential(&app, 1095).await;
    let otp = app.operation_otp(&token, &long, "renew").await;
    let got = renew(&app, &token, &long, true, &pin, &otp, &coupon[0]).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "not_in_renewal_window");

    let (token, id, pin) = credential(&app, 30).await;
    let got = renew(&app, &token, &id, false, &pin, "000000", &coupon[0]).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "identity_not_confirmed");
    let otp = app.operation_otp(&token, &id, "renew").await;
    let got = renew(&app, &token, &id, true, "13572468", &otp, &coupon[0]).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_pin");
    let got = renew(&app, &token, &id, true, &pin, "000000", &coupon[0]).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_otp");
    let otp = app.operation_otp(&token, &id, "renew").await;
    let got = renew(&app, &token, &id, true, &pin, &otp, "RNW-NOSUCHCOUPON1234").await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_coupon");
    // A refused renewal used no coupon: it works now, and only once.
    let otp = app.operation_otp(&token, &id, "renew").await;
    let (status, body) = renew(&app, &token, &id, true, &pin, &otp, &coupon[0]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let otp = app.operation_otp(&token, &id, "renew").await;
    let got = renew(&app, &token, &id, true, &pin, &otp, &coupon[1]).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "already_renewed");

    // A used coupon cannot renew another credential.
    let (token2, id2, pin2) = credential(&app, 30).await;
    let otp = app.operation_otp(&token2, &id2, "renew").await;
    let got = renew(&app, &token2, &id2, true, &pin2, &otp, &coupon[0]).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_coupon");

    // Suspended, then revoked.
    let (status, _) = app
        .admin_post(
            &format!("/admin/v1/credentials/{id2}/suspend"),
            json!({ "reason": "test" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let got = renew(&app, &token2, &id2, true, &pin2, "000000", &coupon[1]).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "credential_suspended");
    let (status, _) = app
        .admin_post(
            &format!("/admin/v1/credentials/{id2}/revoke"),
            json!({ "reason": "test" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let got = renew(&app, &token2, &id2, true, &pin2, "000000", &coupon[1]).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "credential_revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_inside_the_window_certifies_the_same_key_for_three_more_years() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let coupon = coupons(&app, 1).await;
    let (token, id, pin) = credential(&app, 30).await;
    let before: Value = app
        .client
        .get(format!("{}/api/v1/credentials", app.public))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let old = &before["credentials"][0];
    assert_eq!(old["renewable"], true);
    let old_cert = app.leaf_certificate(Csc::V2, &token, &id).await;

    let otp = app.operation_otp(&token, &id, "renew").await;
    let (status, renewed) = renew(&app, &token, &id, true, &pin, &otp, &coupon[0]).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    assert_eq!(
        (renewed["renewed"].as_bool(), renewed["renewable"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(
        time(&renewed["valid_to"]) - time(&old["valid_to"]),
        time::Duration::days(1095)
    );
    assert_ne!(renewed["serial_number"], old["serial_number"]);

    // The new certificate: same key, chains to the gateway root (openssl CLI).
    let new_cert = app.leaf_certificate(Csc::V2, &token, &id).await;
    assert_eq!(
        new_cert.public_key().unwrap().public_key_to_der().unwrap(),
        old_cert.public_key().unwrap().public_key_to_der().unwrap()
    );
    let (_, info) = app
        .post(
            "/csc/v2/credentials/info",
            Some(&token),
            json!({ "credentialID": id, "certificates": "chain", "certInfo": true }),
        )
        .await;
    let chain: Vec<X509> = info["cert"]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| X509::from_der(&unb64(c.as_str().unwrap())).unwrap())
        .collect();
    let dir = std::path::PathBuf::from(env("SIGILLO_TEST_TMP"))
        .join(format!("renew-{}", random_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, cert) in ["leaf", "issuing", "root"].iter().zip(&chain) {
        std::fs::write(dir.join(format!("{name}.pem")), cert.to_pem().unwrap()).unwrap();
    }
    let out = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(dir.join("root.pem"))
        .arg("-untrusted")
        .arg(dir.join("issuing.pem"))
        .arg(dir.join("leaf.pem"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // It still signs, with the same key.
    let hashes = digests(1, 32);
    let sad = app
        .sad_for(Csc::V2, &token, &id, &pin, &hashes, OID_SHA256)
        .await;
    let (status, body) = app
        .sign_hash(Csc::V2, &token, &id, &sad, &hashes, None, ES256, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let signature =
        openssl::ecdsa::EcdsaSig::from_der(&unb64(body["signatures"][0].as_str().unwrap()))
            .unwrap();
    assert!(signature
        .verify(
            &hashes[0],
            &new_cert.public_key().unwrap().ec_key().unwrap()
        )
        .unwrap());
}

/// Certificates the CA (or anything else) signed in the HSM so far: the `sign` jobs of the
/// gateway's HSM pool (a single signature is one job; no signHash runs in these tests).
fn hsm_signatures(app: &TestApp) -> u64 {
    app.services()
        .metrics
        .hsm
        .job_duration
        .with_label_values(&["sign"])
        .get_sample_count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_renewals_with_one_coupon_get_one_certificate_signed() {
    const RENEWALS: usize = 4;
    let app = TestApp::spawn_with(|c| {
        c.otp.send_limit = 100;
        c.server.workers = 4;
    })
    .await;
    let coupon = coupons(&app, 1).await.remove(0);
    let mut requests = Vec::new();
    for _ in 0..RENEWALS {
        let (token, id, pin) = credential(&app, 30).await;
        let otp = app.operation_otp(&token, &id, "renew").await;
        requests.push((token, id, pin, otp));
    }
    let signed_before = hsm_signatures(&app);
    let results = futures_util::future::join_all(
        requests
            .iter()
            .map(|(token, id, pin, otp)| renew(&app, token, id, true, pin, otp, &coupon)),
    )
    .await;
    let signed = hsm_signatures(&app) - signed_before;
    let ok = results.iter().filter(|r| r.0 == StatusCode::OK).count();
    assert_eq!(ok, 1, "exactly one renewal gets the coupon: {results:?}");
    for got in results.iter().filter(|r| r.0 != StatusCode::OK) {
        assert_error(got, StatusCode::BAD_REQUEST, "invalid_coupon");
    }
    assert_eq!(
        signed, 1,
        "the CA signed {signed} certificates for {RENEWALS} renewals sharing one coupon"
    );
}
