//! Activation with the PUK from the sealed envelope, a new PIN and an OTP.

use reqwest::StatusCode;
use serde_json::json;
use sigillo::db::repo;
use sigillo::model::CredentialStatus;
use uuid::Uuid;

use crate::support::{assert_error, TestApp};

fn wrong(puk: &str) -> String {
    let last = puk.as_bytes()[7];
    format!(
        "{}{}",
        &puk[..7],
        if last == b'9' {
            '0'
        } else {
            (last + 1) as char
        }
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_succeeds_with_puk_pin_and_otp_and_refuses_each_wrong_one() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    let token = app.login(&user).await;
    let id = Uuid::parse_str(&credential.id).unwrap();

    // Malformed PIN: refused before any OTP or PUK is spent.
    for pin in ["1234567", "123456789", "1234abcd", ""] {
        let got = app
            .activate(&token, &credential.id, &credential.puk, pin, "000000")
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
        assert!(got.1["error_description"]
            .as_str()
            .unwrap()
            .contains("8 digits"));
    }
    // Wrong OTP.
    let otp = app.sms_otp(&token, &credential.id).await;
    let wrong_otp = if otp == "000000" { "111111" } else { "000000" };
    let got = app
        .activate(
            &token,
            &credential.id,
            &credential.puk,
            "12345678",
            wrong_otp,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_otp");
    // Wrong PUK (with a right OTP): counted.
    let got = app
        .activate(
            &token,
            &credential.id,
            &wrong(&credential.puk),
            "12345678",
            &otp,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_puk");
    assert!(
        got.1["error_description"]
            .as_str()
            .unwrap()
            .contains("9 attempts left"),
        "{}",
        got.1
    );
    let stored = repo::credentials::find(&app.services().db, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.puk_failures, stored.status),
        (1, CredentialStatus::Inactive)
    );

    // All right.
    let otp = app.sms_otp(&token, &credential.id).await;
    let (status, body) = app
        .activate(&token, &credential.id, &credential.puk, "12345678", &otp)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({ "credential_id": credential.id, "status": "active" })
    );
    let stored = repo::credentials::find(&app.services().db, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, CredentialStatus::Active);
    assert_eq!(
        stored.puk_failures, 0,
        "a successful activation resets the PUK counter"
    );
    let pin_hmac = stored.pin_hmac.expect("PIN digest stored");
    assert_eq!(pin_hmac.len(), 32);
    let expected = app
        .services()
        .pins
        .digest(sigillo::activation::SecretKind::Pin, id, "12345678")
        .await
        .unwrap();
    assert_eq!(
        pin_hmac, expected,
        "the stored digest is the HSM HMAC of the new PIN"
    );

    // A second activation is refused.
    let otp = app.sms_otp(&token, &credential.id).await;
    let got = app
        .activate(&token, &credential.id, &credential.puk, "87654321", &otp)
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(got.1["error_description"], "the credential is active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_credential_looks_unknown() {
    let app = TestApp::spawn().await;
    let owner = app.create_user("sms").await;
    let credential = app.create_credential(&owner, "ec-p256", "signing").await;
    let intruder = app.create_user("sms").await;
    let token = app.login(&intruder).await;

    let got = app
        .post(
            "/csc/v2/credentials/sendOTP",
            Some(&token),
            json!({ "credentialID": credential.id }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(got.1["error_description"], "Invalid parameter credentialID");

    let unknown = Uuid::new_v4().to_string();
    let got_unknown = app
        .post(
            "/csc/v2/credentials/sendOTP",
            Some(&token),
            json!({ "credentialID": unknown }),
        )
        .await;
    assert_eq!(
        got_unknown, got,
        "someone else's credential and no credential look the same"
    );

    let got = app
        .activate(
            &token,
            &credential.id,
            &credential.puk,
            "12345678",
            "123456",
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let got = app
        .activate(&token, "not-a-uuid", &credential.puk, "12345678", "123456")
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_wrong_puks_block_the_credential_for_good() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 20).await;
    let user = app.create_user("sms").await;
    let credential = app.create_credential(&user, "rsa-2048", "signing").await;
    let token = app.login(&user).await;
    let bad = wrong(&credential.puk);
    for attempt in 1..=10 {
        let otp = app.sms_otp(&token, &credential.id).await;
        let got = app
            .activate(&token, &credential.id, &bad, "12345678", &otp)
            .await;
        let code = if attempt < 10 {
            "invalid_puk"
        } else {
            "credential_blocked"
        };
        assert_error(&got, StatusCode::BAD_REQUEST, code);
    }
    // Even the right PUK cannot activate it now, and no OTP is spent on trying.
    let got = app
        .activate(
            &token,
            &credential.id,
            &credential.puk,
            "12345678",
            "123456",
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "credential_blocked");
    let stored =
        repo::credentials::find(&app.services().db, Uuid::parse_str(&credential.id).unwrap())
            .await
            .unwrap()
            .unwrap();
    assert_eq!(
        (stored.status, stored.puk_failures),
        (CredentialStatus::Blocked, 10)
    );
    assert!(stored.pin_hmac.is_none());
    // No more OTPs for a blocked credential.
    let got = app
        .post(
            "/csc/v2/credentials/sendOTP",
            Some(&token),
            json!({ "credentialID": credential.id }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_invalid_requests() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    let token = app.login(&user).await;
    let path = format!("/api/v1/credentials/{}/activate", credential.id);
    for body in [
        json!({ "puk": credential.puk, "new_pin": "12345678" }),
        json!({ "puk": 12345678, "new_pin": "12345678", "otp": "123456" }),
        json!({ "puk": credential.puk, "new_pin": "12345678", "otp": "123456", "extra": 1 }),
    ] {
        let got = app.post(&path, Some(&token), body).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let res = app
        .client
        .post(format!("{}{path}", app.public))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );
    // Oversized bodies are refused, not buffered.
    let huge = "x".repeat(app.config.server.max_body_bytes + 1);
    let got = app
        .post(
            &path,
            Some(&token),
            json!({ "puk": huge, "new_pin": "12345678", "otp": "123456" }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
}
