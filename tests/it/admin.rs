//! The admin API: its own listener and token, strict input, no subscriber secret taken or
//! given.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{assert_error, random_suffix, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_sets_no_password() {
    let app = TestApp::spawn().await;
    // The subscriber chooses it through the setup link: the field is unknown, refused.
    let mut user = TestApp::user_json(&format!("u-{}", random_suffix()), "sms");
    user["password"] = json!("Sigillo-2026!");
    let got = app.admin_post("/admin/v1/users", user).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(
        got.1["error_description"]
            .as_str()
            .unwrap()
            .contains("password"),
        "{}",
        got.1
    );
    let mut user = TestApp::user_json(&format!("u-{}", random_suffix()), "sms");
    user["locale"] = json!("fr");
    let got = app.admin_post("/admin/v1/users", user).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let mut user = TestApp::user_json(&format!("u-{}", random_suffix()), "sms");
    user["locale"] = json!(null);
    let got = app.admin_post("/admin/v1/users", user).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_input_is_validated() {
    let app = TestApp::spawn().await;
    let bad_fields = [
        ("user_id", json!("no spaces allowed")),
        ("fiscal_code", json!("RSSMRA80")),
        ("email", json!("not-an-email")),
        ("phone", json!("0039333")),
        ("otp_method", json!("carrier-pigeon")),
        ("given_name", json!("")),
    ];
    for (field, value) in bad_fields {
        let mut user = TestApp::user_json(&format!("u-{}", random_suffix()), "sms");
        user[field] = value;
        let got = app.admin_post("/admin/v1/users", user).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
        assert!(
            got.1["error_description"].as_str().unwrap().contains(field),
            "{field}: {}",
            got.1
        );
    }
    let mut user = TestApp::user_json("u-extra", "sms");
    user["is_admin"] = json!(true);
    let got = app.admin_post("/admin/v1/users", user).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");

    let user = app.create_user("sms").await;
    let got = app
        .admin_post("/admin/v1/users", TestApp::user_json(&user.user_id, "sms"))
        .await;
    assert_error(&got, StatusCode::CONFLICT, "user_exists");

    let path = format!("/admin/v1/users/{}/credentials", user.user_id);
    for body in [
        json!({ "key_algo": "rsa-1024", "purpose": "signing" }),
        json!({ "key_algo": "ec-p256", "purpose": "encryption" }),
        json!({ "key_algo": "ec-p256", "purpose": "signing", "validity_days": 0 }),
        json!({ "key_algo": "ec-p256", "purpose": "signing", "validity_days": 4000 }),
        json!({ "key_algo": "ec-p256" }),
    ] {
        let got = app.admin_post(&path, body.clone()).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let got = app
        .admin_post(
            "/admin/v1/users/nobody-here/credentials",
            json!({ "key_algo": "ec-p256", "purpose": "signing" }),
        )
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "user_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_needs_its_token_and_is_not_on_the_public_listener() {
    let app = TestApp::spawn().await;
    for token in [None, Some("wrong-token-wrong-token")] {
        let mut req = app
            .client
            .post(format!("{}/admin/v1/users", app.admin))
            .json(&TestApp::user_json("u-noauth", "sms"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(res.headers().contains_key("www-authenticate"));
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token");
    }
    let res = app
        .client
        .post(format!("{}/admin/v1/users", app.public))
        .bearer_auth(&app.admin_token)
        .json(&TestApp::user_json("u-public", "sms"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_users_get_an_otpauth_uri_when_they_enrol_their_app() {
    let app = TestApp::spawn().await;
    let user = app.create_user("totp").await;
    let uri = user.totp_uri.expect("totp_uri");
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(
        uri.contains("secret=") && uri.contains("issuer=sigillo"),
        "{uri}"
    );
    let sms = app.create_user("sms").await;
    assert!(sms.totp_uri.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_action_is_audited_with_the_operators_name_and_address() {
    let app = TestApp::spawn_with(|c| c.security.admin_name = "maria.bianchi".into()).await;
    let user = app.create_user("sms").await;
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    let (status, body) = app
        .admin_post("/admin/v1/coupons", json!({ "count": 2 }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for action in ["suspend", "resume", "revoke"] {
        let (status, body) = app
            .admin_post(
                &format!("/admin/v1/credentials/{}/{action}", credential.id),
                json!({ "reason": format!("test: {action}") }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
    }
    // Refusals are admin actions too.
    let got = app
        .admin_post("/admin/v1/coupons", json!({ "count": 0 }))
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let got = app
        .admin_post(
            &format!("/admin/v1/credentials/{}/resume", uuid::Uuid::new_v4()),
            json!({ "reason": "unknown" }),
        )
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "credential_not_found");

    let client = app.services().db.get().await.unwrap();
    let rows = client
        .query(
            "SELECT actor, action, outcome, detail->>'client_addr' FROM audit_log \
             WHERE action IN ('user.create', 'credential.create', 'coupons.create', \
               'credential.suspend', 'credential.resume', 'credential.revoke', \
               'credential.key_destroy') ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, String, String, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let row = |action: &str, outcome: &str, addr: Option<&str>| {
        (
            "maria.bianchi".to_owned(),
            action.to_owned(),
            outcome.to_owned(),
            addr.map(str::to_owned),
        )
    };
    let local = Some("127.0.0.1");
    assert_eq!(
        got,
        vec![
            row("user.create", "ok", local),
            row("credential.create", "ok", local),
            row("coupons.create", "ok", local),
            row("credential.suspend", "ok", local),
            row("credential.resume", "ok", local),
            row("credential.revoke", "ok", local),
            row("credential.key_destroy", "ok", None),
            row("coupons.create", "refused", local),
            row("credential.resume", "refused", local),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_name_defaults_to_operator() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let client = app.services().db.get().await.unwrap();
    let row = client
        .query_one(
            "SELECT actor, detail->>'user_id' FROM audit_log WHERE action = 'user.create'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "operator");
    assert_eq!(row.get::<_, String>(1), user.user_id);
}
