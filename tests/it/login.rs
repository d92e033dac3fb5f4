//! `auth/login` and bearer tokens.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{assert_error, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_issues_a_token_and_refuses_bad_credentials_alike() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let res = app
        .client
        .post(format!("{}/csc/v2/auth/login", app.public))
        .basic_auth(&user.user_id, Some(&user.password))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert!(body["access_token"]
        .as_str()
        .is_some_and(|t| t.split('.').count() == 3));
    assert_eq!(
        body["expires_in"],
        app.config.security.access_token_ttl_secs
    );

    for (user_id, password) in [
        (user.user_id.as_str(), "Wrong-Password-1"),
        ("nobody-at-all", "Whatever-1!"),
    ] {
        let res = app
            .client
            .post(format!("{}/csc/v2/auth/login", app.public))
            .basic_auth(user_id, Some(password))
            .send()
            .await
            .unwrap();
        let got = (res.status(), res.json::<Value>().await.unwrap());
        assert_error(&got, StatusCode::UNAUTHORIZED, "access_denied");
        assert_eq!(got.1["error_description"], "invalid user or password");
    }
    let res = app
        .client
        .post(format!("{}/csc/v2/auth/login", app.public))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_methods_refuse_missing_and_forged_tokens() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    let token = app.login(&user).await;
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    for bad in [None, Some("not-a-jwt"), Some(forged.as_str())] {
        let res = app
            .client
            .post(format!("{}/csc/v2/credentials/sendOTP", app.public))
            .json(&json!({ "credentialID": credential.id }));
        let res = match bad {
            Some(t) => res.bearer_auth(t),
            None => res,
        }
        .send()
        .await
        .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_token");
    }
    // A token of another gateway (another secret) is forged too.
    let other = TestApp::spawn().await;
    let other_user = other.create_user("sms").await;
    let other_token = other.login(&other_user).await;
    let got = app
        .post(
            "/csc/v2/credentials/sendOTP",
            Some(&other_token),
            json!({ "credentialID": credential.id }),
        )
        .await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_throttled_per_user() {
    let app = TestApp::spawn_with(|c| {
        c.security.login_max_failures = 3;
        c.security.login_window_secs = 600;
    })
    .await;
    let user = app.create_user("sms").await;
    let other = app.create_user("sms").await;
    let login = |user_id: &str, password: &str| {
        app.client
            .post(format!("{}/csc/v2/auth/login", app.public))
            .basic_auth(user_id, Some(password))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(
            login(&user.user_id, "Wrong-Password-1")
                .await
                .unwrap()
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Now even the right password waits for the window to end.
    let res = login(&user.user_id, &user.password).await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&retry), "{retry}");
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "access_denied");
    // Other subscribers are not affected.
    assert_eq!(
        login(&other.user_id, &other.password)
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}
