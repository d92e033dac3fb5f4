//! One-time passwords: SMS codes expire, are single-use and die after 3 wrong tries; sending is
//! rate-limited; TOTP codes are accepted once.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{assert_error, totp_codes, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_otp_expires() {
    let app = TestApp::spawn_with(|c| c.otp.ttl_secs = 1).await;
    let user = app.create_user("sms").await;
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    let token = app.login(&user).await;
    let otp = app.sms_otp(&token, &credential.id).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let got = app
        .activate(&token, &credential.id, &credential.puk, "12345678", &otp)
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_otp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_otp_is_single_use() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let first = app.create_credential(&user, "ec-p256", "signing").await;
    let second = app.create_credential(&user, "ec-p256", "signing").await;
    let token = app.login(&user).await;
    let otp = app.sms_otp(&token, &first.id).await;
    let (status, body) = app
        .activate(&token, &first.id, &first.puk, "12345678", &otp)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let got = app
        .activate(&token, &second.id, &second.puk, "12345678", &otp)
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_otp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_wrong_tries_destroy_an_sms_otp() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    let token = app.login(&user).await;
    let otp = app.sms_otp(&token, &credential.id).await;
    let wrong = format!("{:06}", (otp.parse::<u32>().unwrap() + 1) % 1_000_000);
    for _ in 0..3 {
        let got = app
            .activate(&token, &credential.id, &credential.puk, "12345678", &wrong)
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_otp");
    }
    let got = app
        .activate(&token, &credential.id, &credential.puk, "12345678", &otp)
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_otp");
    // A new code works.
    let otp = app.sms_otp(&token, &credential.id).await;
    let (status, _) = app
        .activate(&token, &credential.id, &credential.puk, "12345678", &otp)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_sms_otp_replaces_the_previous_one() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    let token = app.login(&user).await;
    let old = app.sms_otp(&token, &credential.id).await;
    let new = app.sms_otp(&token, &credential.id).await;
    if old != new {
        let got = app
            .activate(&token, &credential.id, &credential.puk, "12345678", &old)
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_otp");
    }
    let (status, _) = app
        .activate(&token, &credential.id, &credential.puk, "12345678", &new)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_sms_otps_is_rate_limited() {
    let app = TestApp::spawn_with(|c| {
        c.otp.send_limit = 2;
        c.otp.send_window_secs = 600;
    })
    .await;
    let user = app.create_user("sms").await;
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    let token = app.login(&user).await;
    app.sms_otp(&token, &credential.id).await;
    app.sms_otp(&token, &credential.id).await;
    let res = app
        .client
        .post(format!("{}/csc/v2/credentials/sendOTP", app.public))
        .bearer_auth(&token)
        .json(&json!({ "credentialID": credential.id }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&retry), "{retry}");
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let sent = std::fs::read_to_string(&app.config.otp.outbox_path)
        .unwrap()
        .lines()
        .count();
    assert_eq!(sent, 2, "the refused request sent nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_totp_code_is_accepted_once() {
    let app = TestApp::spawn().await;
    let user = app.create_user("totp").await;
    let uri = user.totp_uri.clone().unwrap();
    let first = app.create_credential(&user, "ec-p384", "signing").await;
    let second = app.create_credential(&user, "ec-p384", "signing").await;
    let token = app.login(&user).await;

    // TOTP users have no SMS.
    let got = app
        .post(
            "/csc/v2/credentials/sendOTP",
            Some(&token),
            json!({ "credentialID": first.id }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");

    let (code, _) = totp_codes(&uri);
    let (status, body) = app
        .activate(&token, &first.id, &first.puk, "12345678", &code)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Same code again: a replay, even for another credential.
    let got = app
        .activate(&token, &second.id, &second.puk, "12345678", &code)
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_otp");
    assert!(
        got.1["error_description"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{}",
        got.1
    );
    // The next step's code (within the ±1 step window) is a new code and is accepted.
    let (_, next) = totp_codes(&uri);
    if next != code {
        let (status, body) = app
            .activate(&token, &second.id, &second.puk, "12345678", &next)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // A code from another secret is wrong.
    let got = app
        .activate(&token, &second.id, &second.puk, "12345678", "000000")
        .await;
    assert_eq!(got.0, StatusCode::BAD_REQUEST);
}
