//! Password recovery ("Non riesco ad accedere"): the e-mail arrives with a single-use link
//! (parallel completions: exactly one), the OTP factor is required, the link expires, the old
//! password and old access tokens stop working, and the answer for an unknown user id is
//! identical to the one for a known id.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::emergency::mails_with;
use crate::support::{assert_error, random_suffix, totp_codes, TestApp, TestUser};

const NEW_PASSWORD: &str = "Nuova-Password-2027!";

async fn spawn(link_ttl_secs: u64) -> TestApp {
    TestApp::spawn_with(|c| {
        c.recovery.link = "http://portal.test/portal/recovery?token={token}".into();
        c.recovery.link_ttl_secs = link_ttl_secs;
    })
    .await
}

async fn ask(app: &TestApp, user_id: &str) -> (StatusCode, Value) {
    app.post("/api/v1/recovery", None, json!({ "user_id": user_id }))
        .await
}

async fn complete(app: &TestApp, token: &str, otp: &str) -> (StatusCode, Value) {
    app.post(
        "/api/v1/recovery/complete",
        None,
        json!({ "token": token, "otp": otp, "new_password": NEW_PASSWORD }),
    )
    .await
}

/// The link tokens of the recovery e-mails sent to `user_id`, once `n` have arrived.
async fn tokens(user_id: &str, n: usize) -> Vec<String> {
    let mails = mails_with(
        &[user_id, "portal.test/portal/recovery?token="],
        n,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(mails.len(), n, "recovery e-mails for {user_id}");
    mails
        .iter()
        .map(|m| {
            let at = m.find("?token=").unwrap() + 7;
            m[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
                .collect()
        })
        .collect()
}

async fn login_status(app: &TestApp, user_id: &str, password: &str) -> StatusCode {
    app.client
        .post(format!("{}/csc/v2/auth/login", app.public))
        .basic_auth(user_id, Some(password))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recovery_link_works_once_and_ends_every_session() {
    let app = spawn(900).await;
    let user = app.create_user("sms").await;
    let old_token = app.login(&user).await;

    let unknown = ask(&app, &format!("nobody-{}", random_suffix())).await;
    let known = ask(&app, &user.user_id).await;
    assert_eq!(known.0, StatusCode::ACCEPTED, "{}", known.1);
    assert_eq!(unknown, known);

    let token = tokens(&user.user_id, 1).await.remove(0);
    assert!(token.len() >= 43, "{token}");
    let (status, body) = app
        .post("/api/v1/recovery/otp", None, json!({ "token": token }))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let otp = app.last_sms_code();

    // Eight completions at once: exactly one sets the password.
    let calls = (0..8).map(|_| complete(&app, &token, &otp));
    let results = futures_util::future::join_all(calls).await;
    let done = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::NO_CONTENT)
        .count();
    assert_eq!(done, 1, "{results:?}");
    for r in results.iter().filter(|(s, _)| *s != StatusCode::NO_CONTENT) {
        assert_error(r, StatusCode::BAD_REQUEST, "invalid_grant");
    }
    assert_error(
        &complete(&app, &token, &otp).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );

    // The old password and the old access token stop working; the new password works.
    assert_eq!(
        login_status(&app, &user.user_id, &user.password).await,
        StatusCode::BAD_REQUEST
    );
    let res = app
        .client
        .get(format!("{}/api/v1/credentials", app.public))
        .bearer_auth(&old_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let renewed = TestUser {
        user_id: user.user_id.clone(),
        password: NEW_PASSWORD.into(),
        totp_uri: None,
        ..TestUser::default()
    };
    app.login(&renewed).await;

    // The security notice arrives.
    let notice = mails_with(&[&user.user_id, "cambiata"], 1, Duration::from_secs(20)).await;
    assert_eq!(
        notice.len(),
        1,
        "the password-changed notice did not arrive"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_otp_an_expired_link_and_too_many_requests_are_refused() {
    let app = spawn(2).await;
    let user = app.create_user("totp").await;
    let uri = user.totp_uri.clone().unwrap();

    assert_eq!(ask(&app, &user.user_id).await.0, StatusCode::ACCEPTED);
    let first = tokens(&user.user_id, 1).await.remove(0);
    // A TOTP subscriber gets no SMS.
    let got = app
        .post("/api/v1/recovery/otp", None, json!({ "token": first }))
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    // A wrong OTP is refused and spends the link; the password stays.
    assert_error(
        &complete(&app, &first, "000000").await,
        StatusCode::BAD_REQUEST,
        "invalid_otp",
    );
    assert_error(
        &complete(&app, &first, &totp_codes(&uri).0).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    assert_eq!(
        login_status(&app, &user.user_id, &user.password).await,
        StatusCode::OK
    );

    // A link past its 2 seconds is refused.
    assert_eq!(ask(&app, &user.user_id).await.0, StatusCode::ACCEPTED);
    let second = tokens(&user.user_id, 2)
        .await
        .into_iter()
        .find(|t| *t != first)
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_error(
        &complete(&app, &second, &totp_codes(&uri).0).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );

    // Bounded per user id (3 per window), known or not, with the same answer.
    let nobody = format!("nobody-{}", random_suffix());
    assert_eq!(ask(&app, &user.user_id).await.0, StatusCode::ACCEPTED);
    for _ in 0..3 {
        assert_eq!(ask(&app, &nobody).await.0, StatusCode::ACCEPTED);
    }
    let known = ask(&app, &user.user_id).await;
    let unknown = ask(&app, &nobody).await;
    assert_error(&known, StatusCode::TOO_MANY_REQUESTS, "access_denied");
    assert_eq!(known.0, unknown.0);
    assert_eq!(known.1["error"], unknown.1["error"]);
}
