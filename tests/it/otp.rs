//! One-time passwords: SMS codes expire, are single-use and die after 3 wrong tries; sending is
//! rate-limited; TOTP codes are accepted once, and TOTP guesses are limited like SMS ones.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{assert_error, digests, totp_codes, Csc, TestApp, OID_SHA256};

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

/// A 6-digit code that is none of the codes a TOTP check accepts right now.
fn wrong_totp_code(uri: &str) -> String {
    let totp = totp_rs::TOTP::from_url_unchecked(uri).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let valid: Vec<String> = (0..4)
        .map(|i| totp.generate((now + i * 30).saturating_sub(30)))
        .collect();
    (0..)
        .map(|n: u32| format!("{:06}", (n * 7919) % 1_000_000))
        .find(|c| !valid.contains(c))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_guesses_are_limited_like_sms_ones() {
    // The budget is max_tries × send_limit guesses per window: 2 here.
    let app = TestApp::spawn_with(|c| {
        c.otp.max_tries = 1;
        c.otp.send_limit = 2;
        c.otp.send_window_secs = 600;
        c.csc.scal = "1".into();
    })
    .await;
    let user = app.create_user("totp").await;
    let uri = user.totp_uri.clone().unwrap();
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    let token = app.login(&user).await;
    let pin = "12345678";

    // A wrong code, then the right one: the right one passes and clears the count.
    let got = app
        .activate(
            &token,
            &credential.id,
            &credential.puk,
            pin,
            &wrong_totp_code(&uri),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_otp");
    let (code, next) = totp_codes(&uri);
    let (status, body) = app
        .activate(&token, &credential.id, &credential.puk, pin, &code)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A wrong code and a replayed one (refused, so it clears nothing) use up the budget:
    // then even a right, unused code is refused, and the refusal says when to retry.
    for guess in [wrong_totp_code(&uri), code] {
        let got = app
            .authorize_with(Csc::V2, &token, &credential.id, pin, &guess, 1, None, None)
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_authentication_data");
    }
    let got = app
        .authorize_with(Csc::V2, &token, &credential.id, pin, &next, 1, None, None)
        .await;
    assert_error(&got, StatusCode::TOO_MANY_REQUESTS, "invalid_request");
    assert!(
        got.1["error_description"]
            .as_str()
            .unwrap()
            .contains("retry in"),
        "{}",
        got.1
    );
    // The audit log tells the refusal from a wrong code.
    let client = app.services().db.get().await.unwrap();
    let rows = client
        .query(
            "SELECT outcome FROM audit_log WHERE actor = $1 AND action = 'credential.authorize' ORDER BY id",
            &[&user.user_id],
        )
        .await
        .unwrap();
    let outcomes: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(outcomes, ["wrong_otp", "wrong_otp", "otp_limited"]);
    // The refused guesses cost no PIN try: the credential still authorises once the window
    // is over (here: once the count is gone).
    let redis = redis::Client::open(app.config.redis.url.expose()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let tries_key = format!(
        "{}otp:totp-tries:{}",
        app.config.redis.key_prefix, user.user_id
    );
    let _: i64 = redis::cmd("DEL")
        .arg(&tries_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let (status, body) = app
        .authorize_with(Csc::V2, &token, &credential.id, pin, &next, 1, None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The text of the newest outbox message.
fn last_sms_text(app: &TestApp) -> String {
    let outbox = std::fs::read_to_string(&app.config.otp.outbox_path).unwrap();
    let line = outbox.lines().last().unwrap();
    let message: serde_json::Value = serde_json::from_str(line).unwrap();
    message["text"].as_str().unwrap().to_owned()
}

fn short(id: &str) -> String {
    id.replace('-', "")[..8].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_code_says_what_it_is_for() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    let token = app.login(&user).await;
    // sendOTP for an inactive credential: its activation is the only thing it can be for.
    let otp = app.sms_otp(&token, &credential.id).await;
    let text = last_sms_text(&app);
    assert!(
        text.starts_with(&format!(
            "sigillo: {otp} is your code to activate credential {}",
            short(&credential.id)
        )),
        "{text}"
    );
    let (status, body) = app
        .activate(&token, &credential.id, &credential.puk, "24681357", &otp)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // sendOTP for an active credential: a signature with it.
    let otp = app.sms_otp(&token, &credential.id).await;
    let text = last_sms_text(&app);
    assert!(
        text.contains(&format!(
            "{otp} is your code to sign with credential {}",
            short(&credential.id)
        )),
        "{text}"
    );
    app.operation_otp(&token, &credential.id, "pin_change")
        .await;
    assert!(last_sms_text(&app).contains("to change the PIN of credential"));
    app.operation_otp(&token, &credential.id, "renew").await;
    assert!(last_sms_text(&app).contains("to renew the certificate of credential"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_code_sent_for_a_pin_change_cannot_authorize_a_signature() {
    let app = TestApp::spawn().await;
    let (_, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let hashes = digests(1, 32);
    let otp = app.operation_otp(&token, &credential, "pin_change").await;
    let got = app
        .authorize_with(
            Csc::V2,
            &token,
            &credential,
            &pin,
            &otp,
            1,
            Some(&hashes),
            Some(OID_SHA256),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_authentication_data");
    assert_eq!(
        got.1["error_description"],
        "this code was sent for another operation or credential"
    );
    let got = app
        .authorize_with(
            Csc::V1,
            &token,
            &credential,
            &pin,
            &otp,
            1,
            Some(&hashes),
            None,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_otp");
    // The refusal compared nothing and spent nothing: the code still changes the PIN.
    let (status, body) = app
        .post(
            &format!("/api/v1/credentials/{credential}/pin"),
            Some(&token),
            json!({ "pin": pin, "new_pin": "11223344", "otp": otp }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A signature code cannot change the PIN either.
    let otp = app.sms_otp(&token, &credential).await;
    let got = app
        .post(
            &format!("/api/v1/credentials/{credential}/pin"),
            Some(&token),
            json!({ "pin": "11223344", "new_pin": "55667788", "otp": otp }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_otp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_code_for_one_credential_cannot_authorize_another() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let token = app.login(&user).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let credential = app.create_credential(&user, "ec-p256", "signing").await;
        let otp = app.sms_otp(&token, &credential.id).await;
        let (status, body) = app
            .activate(&token, &credential.id, &credential.puk, "24681357", &otp)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        ids.push(credential.id);
    }
    let hashes = digests(1, 32);
    let otp = app.sms_otp(&token, &ids[0]).await;
    let got = app
        .authorize_with(
            Csc::V2,
            &token,
            &ids[1],
            "24681357",
            &otp,
            1,
            Some(&hashes),
            Some(OID_SHA256),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_authentication_data");
    let (status, body) = app
        .authorize_with(
            Csc::V2,
            &token,
            &ids[0],
            "24681357",
            &otp,
            1,
            Some(&hashes),
            Some(OID_SHA256),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
