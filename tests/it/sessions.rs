//! Sessions end when they must: a replayed refresh token ends its family, a password or OTP
//! device change ends every session, and each authentication event is in the audit log.

use reqwest::StatusCode;
use serde_json::{json, Value};

use sigillo::config::Secret;

use crate::support::{assert_error, random_suffix, test_config, totp_codes, TestApp, TestUser};

/// `auth/login` with `body`, with the user's Basic credentials if `basic`.
async fn login(app: &TestApp, user: &TestUser, body: Value, basic: bool) -> (StatusCode, Value) {
    let mut req = app
        .client
        .post(format!("{}/csc/v2/auth/login", app.public))
        .header("user-agent", "sessions-test/1")
        .json(&body);
    if basic {
        req = req.basic_auth(&user.user_id, Some(&user.password));
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The `credentials/list` answer to `token`: 200, or the refusal.
async fn list(app: &TestApp, token: &str) -> (StatusCode, Value) {
    app.post("/csc/v2/credentials/list", Some(token), json!({}))
        .await
}

/// (action, outcome, detail) of the audit rows of `actor`, oldest first.
async fn audit_rows(app: &TestApp, actor: &str) -> Vec<(String, String, Value)> {
    let client = app.services().db.get().await.unwrap();
    client
        .query(
            // The subscriber's own setup (the enrolment) is not a session event.
            "SELECT action, outcome, detail FROM audit_log \
             WHERE actor = $1 AND action <> 'user.setup' ORDER BY id",
            &[&actor],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_refresh_token_ends_its_family() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let (status, first) = login(&app, &user, json!({ "rememberMe": true }), true).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let old = first["refresh_token"].as_str().unwrap().to_owned();

    let (status, rotated) = login(&app, &user, json!({ "refresh_token": old }), false).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["refresh_token"].as_str().unwrap().to_owned();
    let access = rotated["access_token"].as_str().unwrap().to_owned();
    assert_eq!(list(&app, &access).await.0, StatusCode::OK);

    // The thief (or the victim) replays the rotated token: refused, and the family ends.
    let got = login(&app, &user, json!({ "refresh_token": old }), false).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let got = login(&app, &user, json!({ "refresh_token": new }), false).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    // So do the access tokens issued from it.
    assert_error(
        &list(&app, &access).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    );
    let rows = audit_rows(&app, &user.user_id).await;
    assert!(
        rows.iter()
            .any(|(action, outcome, _)| action == "auth.refresh" && outcome == "replayed"),
        "{rows:?}"
    );
    // A fresh password login still works.
    assert_eq!(login(&app, &user, json!({}), true).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_ends_every_session() {
    let app = TestApp::spawn().await;
    let mut user = app.create_user("sms").await;
    let (_, one) = login(&app, &user, json!({ "rememberMe": true }), true).await;
    let (_, two) = login(&app, &user, json!({}), true).await;
    let one_access = one["access_token"].as_str().unwrap().to_owned();
    let one_refresh = one["refresh_token"].as_str().unwrap().to_owned();
    let two_access = two["access_token"].as_str().unwrap().to_owned();
    assert_eq!(list(&app, &one_access).await.0, StatusCode::OK);
    assert_eq!(list(&app, &two_access).await.0, StatusCode::OK);

    let new_password = "Another-Secret-77!";
    let (status, body) = app
        .post(
            "/api/v1/password",
            Some(&two_access),
            json!({ "password": user.password, "new_password": new_password }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    for token in [&one_access, &two_access] {
        assert_error(
            &list(&app, token).await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        );
    }
    let got = login(&app, &user, json!({ "refresh_token": one_refresh }), false).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    // The new password opens a new session.
    user.password = new_password.into();
    let fresh = app.login(&user).await;
    assert_eq!(list(&app, &fresh).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_otp_device_change_ends_every_session() {
    let app = TestApp::spawn().await;
    let user = app.create_user("totp").await;
    let (_, remembered) = login(&app, &user, json!({ "rememberMe": true }), true).await;
    let access = remembered["access_token"].as_str().unwrap().to_owned();
    let refresh = remembered["refresh_token"].as_str().unwrap().to_owned();
    let (status, started) = app
        .post(
            "/api/v1/otp/totp",
            Some(&access),
            json!({ "password": user.password }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let (new_code, _) = totp_codes(started["otpauth_uri"].as_str().unwrap());
    let (current, _) = totp_codes(user.totp_uri.as_deref().unwrap());
    let res = app
        .client
        .post(format!("{}/api/v1/otp/totp/confirm", app.public))
        .bearer_auth(&access)
        .json(&json!({ "code": new_code, "otp": current }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    assert_error(
        &list(&app, &access).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    );
    let got = login(&app, &user, json!({ "refresh_token": refresh }), false).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_refreshes_and_logouts_are_audited_with_the_client() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let (_, remembered) = login(&app, &user, json!({ "rememberMe": true }), true).await;
    let refresh = remembered["refresh_token"].as_str().unwrap().to_owned();
    let (status, rotated) = login(&app, &user, json!({ "refresh_token": refresh }), false).await;
    assert_eq!(status, StatusCode::OK);
    let access = rotated["access_token"].as_str().unwrap().to_owned();
    let res = app
        .client
        .post(format!("{}/csc/v2/auth/revoke", app.public))
        .bearer_auth(&access)
        .header("user-agent", "sessions-test/1")
        .json(&json!({ "token": access }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let wrong = TestUser {
        user_id: user.user_id.clone(),
        password: "Wrong-Password-1".into(),
        totp_uri: None,
        ..TestUser::default()
    };
    assert_eq!(
        login(&app, &wrong, json!({}), true).await.0,
        StatusCode::BAD_REQUEST
    );
    let nobody = TestUser {
        user_id: "nobody-here".into(),
        password: "Whatever-1!".into(),
        totp_uri: None,
        ..TestUser::default()
    };
    assert_eq!(
        login(&app, &nobody, json!({}), true).await.0,
        StatusCode::BAD_REQUEST
    );

    let rows = audit_rows(&app, &user.user_id).await;
    let events: Vec<(&str, &str)> = rows
        .iter()
        .map(|(a, o, _)| (a.as_str(), o.as_str()))
        .collect();
    assert_eq!(
        events,
        vec![
            ("auth.login", "ok"),
            ("auth.refresh", "ok"),
            ("auth.revoke", "ok"),
            ("auth.login", "wrong_password"),
        ],
        "{rows:?}"
    );
    for (_, _, detail) in &rows {
        assert_eq!(detail["client_addr"], "127.0.0.1", "{detail}");
        assert_eq!(detail["user_agent"], "sessions-test/1", "{detail}");
    }
    let rows = audit_rows(&app, "nobody-here").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str()),
        ("auth.login", "wrong_password")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwt_key_rotates_without_logging_anyone_out() {
    let old_key = format!(
        "jwt-old-{}-{}-{}",
        random_suffix(),
        random_suffix(),
        random_suffix()
    );
    let new_key = format!(
        "jwt-new-{}-{}-{}",
        random_suffix(),
        random_suffix(),
        random_suffix()
    );
    let mut config = test_config(&random_suffix());
    config.security.jwt_secret = Secret::new(old_key.clone());
    config.validate().unwrap();
    let before = TestApp::spawn_node(config.clone()).await;
    let user = before.create_user("sms").await;
    let old_token = before.login(&user).await;

    // The same deployment after the rotation: a new key signs, the previous one verifies.
    config.security.jwt_secret = Secret::new(new_key.clone());
    config.security.jwt_secret_previous = Secret::new(old_key.clone());
    config.validate().unwrap();
    let after = TestApp::spawn_node(config.clone()).await;
    assert_eq!(list(&after, &old_token).await.0, StatusCode::OK);
    let new_token = after.login(&user).await;
    assert_eq!(list(&after, &new_token).await.0, StatusCode::OK);
    // The old node, which knows only the old key, refuses the new key's tokens (kid unknown).
    assert_error(
        &list(&before, &new_token).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    );

    // A token signed with a key the gateway knows, but naming an unknown kid, is refused.
    let claims: Value = {
        let payload = old_token.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .unwrap(),
        )
        .unwrap()
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("00000000deadbeef".into());
    let odd = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(new_key.as_bytes()),
    )
    .unwrap();
    assert_error(
        &list(&after, &odd).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    );
    // Once the previous key is dropped, its tokens end.
    config.security.jwt_secret_previous = Secret::new("");
    let later = TestApp::spawn_node(config).await;
    assert_error(
        &list(&later, &old_token).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    );
    assert_eq!(list(&later, &new_token).await.0, StatusCode::OK);
}
