//! Caller text is checked at the wire layer: a NUL (or any control character) or an
//! over-long value in a JSON field, a path parameter or the HTTP Basic credentials is a 400
//! `invalid_request`, never a 500 from PostgreSQL, and never an error line in the log.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{assert_error, captured_logs, TestApp};

/// Error lines of the log that mention `needle`.
fn error_lines(needle: &str) -> Vec<String> {
    captured_logs()
        .lines()
        .filter(|l| l.contains("\"level\":\"ERROR\"") && l.contains(needle))
        .map(str::to_owned)
        .collect()
}

async fn basic_login(app: &TestApp, user_id: &str, password: &str) -> (StatusCode, Value) {
    let res = app
        .client
        .post(format!("{}/csc/v2/auth/login", app.public))
        .basic_auth(user_id, Some(password))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_bytes_and_overlong_text_are_refused_at_the_wire() {
    let app = TestApp::spawn().await;
    let (user, token, credential, _pin) = app.active_credential("ec-p256", "signing").await;

    // Admin API: a NUL in the suspension reason, control characters, an over-long reason.
    let suspend = format!("/admin/v1/credentials/{credential}/suspend");
    for reason in ["fraud\u{0}suspected", "line\nbreak", &"x".repeat(5000)] {
        let got = app.admin_post(&suspend, json!({ "reason": reason })).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    }
    // Nothing changed: the credential is still active and can be suspended with a fair reason.
    let (status, body) = app
        .admin_post(&suspend, json!({ "reason": "fair reason" }))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("suspended")),
        "{body}"
    );

    // Admin API: a NUL user id in the path.
    let got = app
        .admin_post(
            "/admin/v1/users/user%00x/credentials",
            json!({ "key_algo": "ec-p256", "purpose": "signing" }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let got = app
        .admin_post(
            &format!("/admin/v1/users/{}%00/credentials", user.user_id),
            json!({ "key_algo": "ec-p256", "purpose": "signing" }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let mut new_user = TestApp::user_json("user\u{0}nul", "sms");
    let got = app.admin_post("/admin/v1/users", new_user.clone()).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    new_user["user_id"] = json!("user-fine-name");
    new_user["given_name"] = json!("Ma\u{0}rio");
    let got = app.admin_post("/admin/v1/users", new_user).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");

    // Unauthenticated auth/login: a NUL in the Basic user id or password, an over-long id.
    for (user_id, password) in [
        (format!("{}\u{0}", user.user_id), user.password.clone()),
        ("\u{0}".to_owned(), "x".to_owned()),
        (user.user_id.clone(), format!("{}\u{0}", user.password)),
        ("u".repeat(300), "x".to_owned()),
    ] {
        let got = basic_login(&app, &user_id, &password).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    }
    // A fair login still works (the refusals above cost no login budget of the user).
    let (status, body) = basic_login(&app, &user.user_id, &user.password).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // CSC and portal bodies: a NUL in the credential id, the PIN, the SAD, a password.
    for (path, body) in [
        (
            "/csc/v2/credentials/info",
            json!({ "credentialID": format!("{credential}\u{0}") }),
        ),
        (
            "/csc/v1/credentials/authorize",
            json!({ "credentialID": credential, "numSignatures": 1, "PIN": "1234\u{0}" }),
        ),
        (
            "/csc/v2/credentials/authorize",
            json!({ "credentialID": credential, "numSignatures": 1,
                    "authData": [{ "id": "PIN", "value": "\u{0}" }] }),
        ),
        (
            "/csc/v2/signatures/signHash",
            json!({ "credentialID": credential, "SAD": "sad\u{0}", "hashes": ["AAAA"],
                    "signAlgo": "1.2.840.10045.4.3.2" }),
        ),
        (
            "/csc/v2/credentials/list",
            json!({ "userID": format!("{}\u{0}", user.user_id) }),
        ),
        (
            "/api/v1/password",
            json!({ "password": user.password, "new_password": "New-Password-2026!\u{0}" }),
        ),
    ] {
        let got = app.post(path, Some(&token), body).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    }

    // None of it reached PostgreSQL: no error line names this credential or user.
    assert_eq!(error_lines(&credential), Vec::<String>::new());
    assert_eq!(error_lines(&user.user_id), Vec::<String>::new());
    assert_eq!(error_lines("user%00x"), Vec::<String>::new());
}
