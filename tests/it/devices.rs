//! Changing the OTP device: confirmed by the new device AND the current factor.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{assert_error, totp_codes, TestApp, TestUser};

/// The 6-digit code of the newest outbox message to `phone`.
pub fn code_to(app: &TestApp, phone: &str) -> String {
    let outbox = std::fs::read_to_string(&app.config.otp.outbox_path).unwrap();
    let line = outbox
        .lines()
        .rev()
        .find(|l| l.contains(&format!("\"to\":\"{phone}\"")))
        .expect("a message to the phone");
    let text = serde_json::from_str::<Value>(line).unwrap()["text"]
        .as_str()
        .unwrap()
        .to_owned();
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap()
        .to_owned()
}

/// Stages `phone` as `user`'s new SMS device (as a device change starts: 202) and returns the
/// code sent to it.
pub async fn stage_phone(app: &TestApp, token: &str, user: &TestUser, phone: &str) -> String {
    let (status, body) = app
        .post(
            "/api/v1/otp/sms",
            Some(token),
            json!({ "phone": phone, "password": user.password }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    code_to(app, phone)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_user_moves_to_an_app_and_back_to_a_new_phone() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let user = app.create_user("sms").await;
    let token = app.login(&user).await;
    let old_phone = "+393331234567";

    // Start: password needed.
    let got = app
        .post(
            "/api/v1/otp/totp",
            Some(&token),
            json!({ "password": "Wrong-Pass-1!" }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_password");
    let (status, started) = app
        .post(
            "/api/v1/otp/totp",
            Some(&token),
            json!({ "password": user.password }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let uri = started["otpauth_uri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("otpauth://totp/"));
    assert!(started["qr_svg"].as_str().unwrap().contains("<svg"));
    let (app_code, _) = totp_codes(&uri);

    // Confirm: the app's code alone is not enough, nor a wrong app code.
    let got = app
        .post(
            "/api/v1/otp/totp/confirm",
            Some(&token),
            json!({ "code": app_code, "otp": "000000" }),
        )
        .await;
    assert_eq!(got.0, StatusCode::BAD_REQUEST);
    assert_eq!(got.1["error"], "invalid_otp");
    app.post(
        "/api/v1/otp/totp",
        Some(&token),
        json!({ "password": user.password }),
    )
    .await;
    let (status, started) = app
        .post(
            "/api/v1/otp/totp",
            Some(&token),
            json!({ "password": user.password }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let uri = started["otpauth_uri"].as_str().unwrap().to_owned();
    let current = code_to(&app, old_phone);
    let got = app
        .post(
            "/api/v1/otp/totp/confirm",
            Some(&token),
            json!({ "code": "000000", "otp": current }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_code");
    // (The current factor was consumed by that attempt: start again for a fresh one.)
    app.post(
        "/api/v1/otp/totp",
        Some(&token),
        json!({ "password": user.password }),
    )
    .await;
    let (_, started) = app
        .post(
            "/api/v1/otp/totp",
            Some(&token),
            json!({ "password": user.password }),
        )
        .await;
    let uri2 = started["otpauth_uri"].as_str().unwrap().to_owned();
    assert_ne!(uri, uri2);
    let current = code_to(&app, old_phone);
    let (app_code, _) = totp_codes(&uri2);
    let res = app
        .client
        .post(format!("{}/api/v1/otp/totp/confirm", app.public))
        .bearer_auth(&token)
        .json(&json!({ "code": app_code, "otp": current }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // The change ended every session (tests/it/sessions.rs): log in again.
    let token = app.login(&user).await;

    // Now a TOTP user: the same app code is not accepted again (replay), the SMS path is closed.
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    let got = app
        .post(
            "/csc/v2/credentials/sendOTP",
            Some(&token),
            json!({ "credentialID": credential.id }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let got = app
        .activate(
            &token,
            &credential.id,
            &credential.puk,
            "12345678",
            &app_code,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_otp");

    // Back to SMS on a new phone: confirmed by the new phone's code and the app.
    let new_phone = "+393339999999";
    let got = app
        .post(
            "/api/v1/otp/sms",
            Some(&token),
            json!({ "phone": "12345", "password": user.password }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let sms = stage_phone(&app, &token, &user, new_phone).await;
    let (_, next_app_code) = totp_codes(&uri2);
    let res = app
        .client
        .post(format!("{}/api/v1/otp/sms/confirm", app.public))
        .bearer_auth(&token)
        .json(&json!({ "code": sms, "otp": next_app_code }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::NO_CONTENT,
        "{}",
        res.text().await.unwrap()
    );
    let token = app.login(&user).await;
    // SMS OTPs now go to the new phone and activate the credential.
    let otp = app.sms_otp(&token, &credential.id).await;
    assert_eq!(code_to(&app, new_phone), otp);
    let (status, body) = app
        .activate(&token, &credential.id, &credential.puk, "12345678", &otp)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Nothing pending any more.
    let got = app
        .post(
            "/api/v1/otp/sms/confirm",
            Some(&token),
            json!({ "code": "123456", "otp": "123456" }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_changes_are_audited_when_started_and_refused() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let user = app.create_user("sms").await;
    let token = app.login(&user).await;
    let post = |path: &'static str, body: Value| {
        let (client, url, token) = (
            app.client.clone(),
            format!("{}{path}", app.public),
            token.clone(),
        );
        async move {
            client
                .post(url)
                .bearer_auth(token)
                .header("user-agent", "device-test/1")
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // Refused start (wrong password), accepted start, refused confirmation (wrong current
    // factor), refused start of a phone change (bad number).
    let wrong = post("/api/v1/otp/totp", json!({ "password": "Wrong-Pass-1!" })).await;
    assert_eq!(wrong, StatusCode::BAD_REQUEST);
    let ok = post("/api/v1/otp/totp", json!({ "password": user.password })).await;
    assert_eq!(ok, StatusCode::OK);
    let refused = post(
        "/api/v1/otp/totp/confirm",
        json!({ "code": "123456", "otp": "000000" }),
    )
    .await;
    assert_eq!(refused, StatusCode::BAD_REQUEST);
    let bad_phone = post(
        "/api/v1/otp/sms",
        json!({ "phone": "12", "password": user.password }),
    )
    .await;
    assert_eq!(bad_phone, StatusCode::BAD_REQUEST);

    let client = app.services().db.get().await.unwrap();
    let rows = client
        .query(
            "SELECT action, outcome, detail FROM audit_log \
             WHERE actor = $1 AND action LIKE 'otp.device_change%' ORDER BY id",
            &[&user.user_id],
        )
        .await
        .unwrap();
    let got: Vec<(String, String, Value)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let steps: Vec<(&str, &str, Option<&str>, Option<&str>)> = got
        .iter()
        .map(|(a, o, d)| {
            (
                a.as_str(),
                o.as_str(),
                d["to"].as_str(),
                d["reason"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (
                "otp.device_change_start",
                "refused",
                Some("totp"),
                Some("wrong_password")
            ),
            ("otp.device_change_start", "ok", Some("totp"), None),
            (
                "otp.device_change",
                "refused",
                Some("totp"),
                Some("wrong_current_factor")
            ),
            (
                "otp.device_change_start",
                "refused",
                Some("sms"),
                Some("bad_phone")
            ),
        ],
        "{got:?}"
    );
    for (_, _, detail) in &got {
        assert_eq!(detail["client_addr"], "127.0.0.1", "{detail}");
        assert_eq!(detail["user_agent"], "device-test/1", "{detail}");
    }
}
