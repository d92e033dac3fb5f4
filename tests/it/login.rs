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
        // CSC v2 §11.2 (v1 keeps 401 access_denied: tests/it/csc_v2_strict.rs).
        assert_error(&got, StatusCode::BAD_REQUEST, "authentication_error");
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
            StatusCode::BAD_REQUEST
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

/// 80 wrong passwords for one user at once: at most `login_max_failures` of them are checked
/// (answered 401), the rest are refused before Argon2 (429); then the right password waits too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_passwords_never_exceed_the_budget() {
    let app = TestApp::spawn_with(|c| {
        c.security.login_max_failures = 10;
        c.security.login_window_secs = 600;
        c.security.login_max_failures_per_addr = 1000;
        c.security.argon2_queue = 1000;
    })
    .await;
    let user = app.create_user("sms").await;
    let burst = (0..80).map(|i| {
        app.client
            .post(format!("{}/csc/v2/auth/login", app.public))
            .basic_auth(&user.user_id, Some(format!("Wrong-Password-{i}")))
            .send()
    });
    let statuses: Vec<StatusCode> = futures_util::future::join_all(burst)
        .await
        .into_iter()
        .map(|r| r.unwrap().status())
        .collect();
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::BAD_REQUEST)
        .count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(checked + limited, 80, "{statuses:?}");
    assert!(
        (1..=10).contains(&checked),
        "{checked} wrong passwords were checked, the budget is 10"
    );
    let res = app
        .client
        .post(format!("{}/csc/v2/auth/login", app.public))
        .basic_auth(&user.user_id, Some(&user.password))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
}

/// One client address guessing many user ids is stopped by its own budget; other addresses
/// (here: the same users, once the address window is the only one spent) are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_throttled_per_client_address() {
    let app = TestApp::spawn_with(|c| {
        c.security.login_max_failures = 100;
        c.security.login_max_failures_per_addr = 4;
        c.security.login_window_secs = 600;
    })
    .await;
    let user = app.create_user("sms").await;
    let login = |user_id: String, password: String| {
        app.client
            .post(format!("{}/csc/v2/auth/login", app.public))
            .basic_auth(user_id, Some(password))
            .send()
    };
    let burst = (0..20).map(|i| login(format!("guess-{i}"), "Wrong-Password-1".into()));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(burst)
        .await
        .into_iter()
        .map(|r| r.unwrap().status())
        .collect();
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::BAD_REQUEST)
        .count();
    assert_eq!(checked, 4, "{statuses:?}");
    let res = login(user.user_id.clone(), user.password.clone())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "access_denied");
}

/// A burst of logins larger than the Argon2 queue: those that would wait behind a full queue
/// are answered 429 at once (not queued), and right passwords give their attempt back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_argon2_queue_answers_429_at_once() {
    let app = TestApp::spawn_with(|c| {
        c.security.argon2_queue = 1;
        // Attempts in flight hold a reservation too: room for the whole burst.
        c.security.login_max_failures = 1000;
        c.security.login_max_failures_per_addr = 1000;
    })
    .await;
    let user = app.create_user("sms").await;
    let burst = (0..40).map(|_| {
        app.client
            .post(format!("{}/csc/v2/auth/login", app.public))
            .basic_auth(&user.user_id, Some(&user.password))
            .send()
    });
    let answers = futures_util::future::join_all(burst).await;
    let mut ok = 0;
    let mut busy = 0;
    for res in answers {
        let res = res.unwrap();
        match res.status() {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(res.headers()["retry-after"], "1");
                let body = res.json::<Value>().await.unwrap();
                assert_eq!(body["error"], "temporarily_unavailable", "{body}");
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(busy > 0, "no login was refused: the queue is unbounded");
    assert!(ok > 0);
    assert_eq!(ok + busy, 40);
    // Right passwords and refused checks gave their attempts back.
    let mut conn = app.services().kv.conn();
    let left: Option<u32> = redis::AsyncCommands::get(
        &mut conn,
        app.services().kv.user_key(&user.user_id, &["login-fail"]),
    )
    .await
    .unwrap();
    assert_eq!(left, None);
}

/// A JSON body is an object or nothing: an array is refused even with a right password or a
/// valid token (serde reads a struct from an array by position; schemathesis sent `[]` to v1
/// `auth/login` and got a token, and `credentials/list`, whose fields are all optional, would
/// answer too), on either listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_body_that_is_not_an_object_is_refused() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    for version in ["v1", "v2"] {
        for body in ["[]", "[true]", "\"x\"", "1"] {
            let res = app
                .client
                .post(format!("{}/csc/{version}/auth/login", app.public))
                .basic_auth(&user.user_id, Some(&user.password))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = res.status();
            let got: Value = res.json().await.unwrap_or(Value::Null);
            assert_error(&(status, got), StatusCode::BAD_REQUEST, "invalid_request");
        }
    }
}
