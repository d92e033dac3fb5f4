//! Enrolment without the operator seeing a secret: the admin API takes no password and returns
//! no PUK, emergency code or TOTP secret (neither do the audit rows and logs); the subscriber
//! sets password and passphrase through a single-use e-mailed link (refused alike when
//! unknown, expired or spent, also under parallel requests); the PUK travels in the sealed
//! envelope, made at once or when the setup completes, each with a fresh emergency code that
//! kills the previous one; TOTP users enrol their first app themselves.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{
    assert_error, captured_logs, envelope_of, setup_token, setup_token_after, totp_codes, TestApp,
    TestUser,
};

async fn setup(
    app: &TestApp,
    token: &str,
    password: &str,
    passphrase: &str,
) -> (StatusCode, Value) {
    app.post(
        "/api/v1/setup",
        None,
        json!({ "token": token, "password": password, "passphrase": passphrase }),
    )
    .await
}

async fn create_credential_raw(app: &TestApp, user: &TestUser) -> Value {
    let (status, body) = app
        .admin_post(
            &format!("/admin/v1/users/{}/credentials", user.user_id),
            json!({ "key_algo": "ec-p256", "purpose": "signing" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// Every audit row of the gateway's schema, as text.
async fn audit_text(app: &TestApp) -> String {
    let client = app.services().db.get().await.unwrap();
    client
        .query(
            "SELECT actor || ' ' || action || ' ' || outcome || ' ' || detail::text FROM audit_log",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn puk_hmac_of(app: &TestApp, credential_id: &str) -> Option<Vec<u8>> {
    let id = uuid::Uuid::parse_str(credential_id).unwrap();
    sigillo::db::repo::credentials::find(&app.services().db, id)
        .await
        .unwrap()
        .unwrap()
        .puk_hmac
}

async fn activate_with_sms(
    app: &TestApp,
    user: &TestUser,
    credential: &str,
    puk: &str,
) -> (StatusCode, Value) {
    let token = app.login(user).await;
    let otp = app.sms_otp(&token, credential).await;
    app.activate(&token, credential, puk, "13572468", &otp)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_sees_no_secret_and_the_envelope_waits_for_the_setup() {
    let app = TestApp::spawn().await;
    let user_id = format!("user-{}", crate::support::random_suffix());
    let mut body = TestApp::user_json(&user_id, "totp");
    body["locale"] = json!("en");
    let (status, created) = app.admin_post("/admin/v1/users", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let keys: Vec<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["locale", "otp_method", "setup_link_expires_at", "user_id"],
        "{created}"
    );
    assert_eq!(created["locale"], "en");
    let expires = time::OffsetDateTime::parse(
        created["setup_link_expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let hours = (expires - time::OffsetDateTime::now_utc()).whole_hours();
    assert!((71..=72).contains(&hours), "{hours}");
    let user = TestUser {
        email: format!("{user_id}@example.org"),
        user_id,
        password: crate::support::PASSWORD.into(),
        passphrase: crate::support::PASSPHRASE.into(),
        totp_uri: None,
    };

    // Credentials before the setup: no PUK anywhere yet, the envelopes wait.
    let first = create_credential_raw(&app, &user).await;
    let second = create_credential_raw(&app, &user).await;
    for c in [&first, &second] {
        let keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["credential_id", "envelope", "serial_number", "status"],
            "{c}"
        );
        assert_eq!(c["envelope"], "awaiting_setup");
        assert_eq!(
            puk_hmac_of(&app, c["credential_id"].as_str().unwrap()).await,
            None
        );
    }

    // The setup mail is in English, the token only there.
    let mail = sigillo::mail::maildir::wait_for(
        &crate::support::test_maildir(),
        &user.email,
        std::time::Duration::from_secs(30),
        |m| m.link_containing("token=").is_some(),
    )
    .await
    .unwrap();
    assert!(mail.text.contains("Dear Mario Rossi"), "{}", mail.text);
    assert!(mail.text.contains("within 72 hours"), "{}", mail.text);
    let token = setup_token(&user.email).await;
    assert_eq!(token.len(), 43, "{token}");

    app.complete_setup(&user).await;

    // Both envelopes went out at the setup, with one emergency code.
    let mut puks = Vec::new();
    let mut codes = Vec::new();
    for c in [&first, &second] {
        let serial = c["serial_number"].as_str().unwrap();
        let opened = envelope_of(&user.email, serial, &user.passphrase, &[]).await;
        assert_eq!(opened.serial_number, serial);
        assert_eq!(opened.puk.len(), 8);
        assert!(puk_hmac_of(&app, c["credential_id"].as_str().unwrap())
            .await
            .is_some());
        puks.push(opened.puk);
        codes.push(opened.emergency_code);
    }
    assert_eq!(codes[0], codes[1]);

    // A credential after the setup: its envelope at once, with a new code.
    let third = create_credential_raw(&app, &user).await;
    assert_eq!(third["envelope"], "sent", "{third}");
    let opened = envelope_of(
        &user.email,
        third["serial_number"].as_str().unwrap(),
        &user.passphrase,
        &[],
    )
    .await;
    assert_ne!(opened.emergency_code, codes[0]);
    puks.push(opened.puk);
    codes.push(opened.emergency_code);

    // The first app, enrolled by the subscriber; the PUK from the envelope activates.
    let uri = app.enrol_app(&user).await;
    let login = app.login(&user).await;
    let (code, _) = totp_codes(&uri);
    let (status, body) = app
        .activate(
            &login,
            first["credential_id"].as_str().unwrap(),
            &puks[0],
            "13572468",
            &code,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // No secret in the audit rows or the logs: not the PUKs, codes, token, password,
    // passphrase, nor the app's secret.
    let audit = audit_text(&app).await;
    let logs = captured_logs();
    let secret = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let mut secrets: Vec<String> = puks.clone();
    for c in &codes {
        secrets.push(c.clone());
        secrets.push(c.replace('-', ""));
    }
    secrets.extend([
        token,
        user.password.clone(),
        user.passphrase.clone(),
        secret,
    ]);
    for s in &secrets {
        assert!(!audit.contains(s.as_str()), "audit holds {s}");
        assert!(!logs.contains(s.as_str()), "logs hold {s}");
    }
    assert!(audit.contains("credential.envelope"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setup_link_works_once_under_parallel_requests() {
    let app = TestApp::spawn().await;
    let user = app.create_pending_user("sms").await;
    let token = setup_token(&user.email).await;
    let attempts = (0..6).map(|i| {
        let (app, token) = (&app, token.clone());
        async move {
            setup(
                app,
                &token,
                &format!("Parallel-Pass-{i}!"),
                "a long passphrase here",
            )
            .await
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    let won: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::NO_CONTENT)
        .collect();
    assert_eq!(won.len(), 1, "{results:?}");
    for got in results.iter().filter(|(s, _)| *s != StatusCode::NO_CONTENT) {
        assert_error(got, StatusCode::BAD_REQUEST, "invalid_grant");
    }
    // Replayed later: the same refusal as a token that never existed.
    let replayed = setup(&app, &token, "Another-Pass-1!", "another long passphrase").await;
    let unknown = setup(
        &app,
        &"A".repeat(43),
        "Another-Pass-1!",
        "another long passphrase",
    )
    .await;
    assert_error(&replayed, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(replayed, unknown);
    // One password was set, by the subscriber.
    let stored = sigillo::db::repo::users::find(&app.services().db, &user.user_id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.password_by_subscriber);
    assert!(
        !sigillo::auth::password_change_required(app.services(), &user.user_id)
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_replaced_links_are_refused_like_unknown_ones() {
    let app = TestApp::spawn().await;
    let user = app.create_pending_user("sms").await;
    let first = setup_token(&user.email).await;
    let unknown = setup(&app, &"B".repeat(43), &user.password, &user.passphrase).await;
    assert_error(&unknown, StatusCode::BAD_REQUEST, "invalid_grant");

    // A resent link kills the first one.
    let path = format!("/admin/v1/users/{}/setup-link", user.user_id);
    let (status, body) = app.admin_post(&path, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    let second = setup_token_after(&user.email, std::slice::from_ref(&first)).await;
    assert_ne!(first, second);
    let got = setup(&app, &first, &user.password, &user.passphrase).await;
    assert_eq!(got, unknown);

    // An expired link: the same refusal.
    let client = app.services().db.get().await.unwrap();
    client
        .execute(
            "UPDATE setup_links SET expires_at = now() - interval '1 second' WHERE user_id = $1",
            &[&user.user_id],
        )
        .await
        .unwrap();
    let got = setup(&app, &second, &user.password, &user.passphrase).await;
    assert_eq!(got, unknown);

    // A fresh one works; after the setup there is no more link to send.
    let (status, _) = app.admin_post(&path, json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let third = setup_token_after(&user.email, &[first, second]).await;
    let (status, body) = setup(&app, &third, &user.password, &user.passphrase).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let got = app.admin_post(&path, json!({})).await;
    assert_error(&got, StatusCode::CONFLICT, "setup_done");
    let got = app
        .admin_post("/admin/v1/users/nobody-here/setup-link", json!({}))
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "user_not_found");
    app.login(&user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_password_or_passphrase_names_the_rule_and_keeps_the_link() {
    let app = TestApp::spawn().await;
    let user = app.create_pending_user("sms").await;
    let token = setup_token(&user.email).await;
    let cases = [
        ("Ab1!xyz", "at least 8 characters"),
        ("abcdefg1!", "upper-case"),
        ("ABCDEFG1!", "lower-case"),
        ("Abcdefgh!", "digit"),
        ("Abcdefgh1", "special character"),
        ("Abbb-cdef1", "more than twice in a row"),
    ];
    for (password, rule) in cases {
        let got = setup(&app, &token, password, &user.passphrase).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
        let description = got.1["error_description"].as_str().unwrap();
        assert!(description.contains(rule), "{password}: {description}");
    }
    for passphrase in ["too short", user.password.as_str()] {
        let got = setup(&app, &token, &user.password, passphrase).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
        assert!(got.1["error_description"]
            .as_str()
            .unwrap()
            .contains("passphrase"));
    }
    let got = app
        .post(
            "/api/v1/setup",
            None,
            json!({ "token": token, "password": user.password }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    // Twice in a row is allowed; the link still works.
    let (status, body) = setup(&app, &token, "Abb-cdde1!", &user.passphrase).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_policy_is_reported_rule_by_rule() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post(
            "/api/v1/password-policy",
            None,
            json!({ "password": "abc" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ok"], false);
    let rules: Vec<(String, bool)> = body["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["rule"].as_str().unwrap().to_owned(),
                r["ok"].as_bool().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("min_length", false),
        ("max_length", true),
        ("upper", false),
        ("lower", true),
        ("digit", false),
        ("special", false),
        ("no_triple", true),
    ];
    assert_eq!(
        rules,
        expected.map(|(r, ok)| (r.to_owned(), ok)).to_vec(),
        "{body}"
    );
    let (_, body) = app
        .post(
            "/api/v1/password-policy",
            None,
            json!({ "password": "Sigillo-2026!" }),
        )
        .await;
    assert_eq!(body["ok"], true, "{body}");
    let got = app.post("/api/v1/password-policy", None, json!({})).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_envelope_kills_the_old_puk_and_emergency_code() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    let path = format!("/admin/v1/credentials/{}/envelope", credential.id);
    let (status, body) = app.admin_post(&path, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({ "credential_id": credential.id, "envelope": "sent" })
    );
    let renewed = envelope_of(
        &user.email,
        &credential.serial_number,
        &user.passphrase,
        std::slice::from_ref(&credential.puk),
    )
    .await;
    assert_ne!(renewed.emergency_code, credential.emergency_code);

    // The old emergency code no longer suspends; the old PUK no longer activates.
    let got = app
        .post(
            "/api/v1/emergency-suspension",
            None,
            json!({ "user_id": user.user_id, "emergency_code": credential.emergency_code }),
        )
        .await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "access_denied");
    let got = activate_with_sms(&app, &user, &credential.id, &credential.puk).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_puk");
    let (status, body) = activate_with_sms(&app, &user, &credential.id, &renewed.puk).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Active now: its envelope can no longer be replaced.
    let got = app.admin_post(&path, json!({})).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let got = app
        .admin_post(
            &format!("/admin/v1/credentials/{}/envelope", uuid::Uuid::new_v4()),
            json!({}),
        )
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "invalid_request");

    // The new code is the one that works.
    let (status, body) = app
        .post(
            "/api/v1/emergency-suspension",
            None,
            json!({ "user_id": user.user_id, "emergency_code": renewed.emergency_code }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_created_during_the_setup_get_exactly_one_envelope() {
    let app = TestApp::spawn().await;
    let user = app.create_pending_user("sms").await;
    let token = setup_token(&user.email).await;
    let (done, a, b) = tokio::join!(
        setup(&app, &token, &user.password, &user.passphrase),
        create_credential_raw(&app, &user),
        create_credential_raw(&app, &user),
    );
    assert_eq!(done.0, StatusCode::NO_CONTENT, "{}", done.1);
    for c in [a, b] {
        let serial = c["serial_number"].as_str().unwrap().to_owned();
        envelope_of(&user.email, &serial, &user.passphrase, &[]).await;
        // Give a second envelope, if one were made, the time to arrive.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let file = format!("busta-{serial}.pdf");
        let count =
            sigillo::mail::maildir::messages_for(&crate::support::test_maildir(), &user.email)
                .iter()
                .filter(|m| m.attachments.iter().any(|f| f.filename == file))
                .count();
        assert_eq!(count, 1, "{c}");
        assert!(puk_hmac_of(&app, c["credential_id"].as_str().unwrap())
            .await
            .is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_totp_user_enrols_the_first_app_and_only_once() {
    let app = TestApp::spawn().await;
    let user = app.create_pending_user("totp").await;
    app.complete_setup(&user).await;
    let credential = create_credential_raw(&app, &user).await;
    let id = credential["credential_id"].as_str().unwrap();
    let serial = credential["serial_number"].as_str().unwrap();
    let puk = envelope_of(&user.email, serial, &user.passphrase, &[])
        .await
        .puk;
    let token = app.login(&user).await;

    // Without an app, an operation that needs an OTP says so.
    let got = app.activate(&token, id, &puk, "13572468", "123456").await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(
        got.1["error_description"]
            .as_str()
            .unwrap()
            .contains("authenticator app"),
        "{}",
        got.1
    );

    let enrol = |t: &str| {
        let t = t.to_owned();
        let app = &app;
        async move {
            app.post("/api/v1/otp/totp/enrol", Some(&t), json!({}))
                .await
        }
    };
    let (status, body) = enrol(&token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["qr_svg"].as_str().unwrap().contains("<svg"));
    let uri = body["otpauth_uri"].as_str().unwrap().to_owned();
    let confirm = |otp: String| {
        let (app, token) = (&app, token.clone());
        async move {
            app.post(
                "/api/v1/otp/totp/enrol/confirm",
                Some(&token),
                json!({ "otp": otp }),
            )
            .await
        }
    };
    let got = confirm("000000".into()).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_code");
    // Two confirmations at once: one wins.
    let code = crate::support::previous_totp_code(&uri);
    let (x, y) = tokio::join!(confirm(code.clone()), confirm(code));
    let wins = [&x, &y]
        .iter()
        .filter(|r| r.0 == StatusCode::NO_CONTENT)
        .count();
    assert_eq!(wins, 1, "{x:?} {y:?}");

    // Enrolled: no second first app (a change goes through the device change).
    let got = enrol(&token).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let (code, _) = totp_codes(&uri);
    let (status, body) = app.activate(&token, id, &puk, "13572468", &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // An SMS user has no first app to enrol.
    let sms = app.create_user("sms").await;
    let sms_token = app.login(&sms).await;
    let got = enrol(&sms_token).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_not_chosen_by_the_subscriber_must_be_changed() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let services = app.services();
    assert!(
        !sigillo::auth::password_change_required(services, &user.user_id)
            .await
            .unwrap()
    );
    // As a row from before the setup existed (or the operator's CLI) leaves it.
    let client = services.db.get().await.unwrap();
    client
        .execute(
            "UPDATE users SET password_by_subscriber = false WHERE user_id = $1",
            &[&user.user_id],
        )
        .await
        .unwrap();
    assert!(
        sigillo::auth::password_change_required(services, &user.user_id)
            .await
            .unwrap()
    );
    let token = app.login(&user).await;
    let (status, body) = app
        .post(
            "/api/v1/password",
            Some(&token),
            json!({ "password": user.password, "new_password": "Brand-New-Pass-2" }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(
        !sigillo::auth::password_change_required(services, &user.user_id)
            .await
            .unwrap()
    );
    // Before the setup nobody can sign in (no password at all).
    let pending = app.create_pending_user("sms").await;
    let res = app
        .client
        .post(format!("{}/csc/v2/auth/login", app.public))
        .basic_auth(&pending.user_id, Some(&pending.password))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

/// The value of the hidden field `name` of a page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_page_works_without_javascript_in_both_languages() {
    let app = TestApp::spawn().await;
    let user = app.create_pending_user("sms").await;
    let token = setup_token(&user.email).await;
    let url = format!("{}/portal/setup?token={token}", app.public);

    // The form: the rules listed, one external script, no inline one (the CSP says so).
    let res = app.client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    let html = res.text().await.unwrap();
    assert!(
        html.contains("lang=\"it\"") && html.contains("almeno 8 caratteri"),
        "{html}"
    );
    assert!(html.contains("<script src=\"/static/setup.js\""), "{html}");
    assert!(!html.contains("<script>"), "{html}");
    for field in ["password", "password2", "passphrase", "passphrase2"] {
        assert!(
            html.contains(&format!("<label for=\"{field}\">")),
            "{field}"
        );
    }
    let csrf = hidden(&html, "csrf");
    let js = app
        .client
        .get(format!("{}/static/setup.js", app.public))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert!(js.text().await.unwrap().contains("/api/v1/password-policy"));
    let en = app
        .client
        .get(format!("{url}&lang=en"))
        .send()
        .await
        .unwrap();
    assert!(en.text().await.unwrap().contains("at least 8 characters"));

    let post = |form: Vec<(&'static str, String)>, with_cookie: bool| {
        let mut req = app
            .client
            .post(format!("{}/portal/setup", app.public))
            .form(&form);
        if with_cookie {
            req = req.header("cookie", cookie.clone());
        }
        async move {
            let res = req.send().await.unwrap();
            (res.status(), res.text().await.unwrap())
        }
    };
    let form = |password: &str, password2: &str, lang: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("token", token.clone()),
            ("lang", lang.to_owned()),
            ("password", password.to_owned()),
            ("password2", password2.to_owned()),
            ("passphrase", user.passphrase.clone()),
            ("passphrase2", user.passphrase.clone()),
        ]
    };
    // Another site's form (no CSRF cookie) stops before anything runs.
    let (status, _) = post(form(&user.password, &user.password, "it"), false).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Readable refusals, in the page's language; the link still works after them.
    let (status, html) = post(form(&user.password, "Other-Pass-2026!", "it"), true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("Le due password non coincidono."), "{html}");
    let (status, html) = post(form("short", "short", "en"), true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("The password must have at least 8 characters."),
        "{html}"
    );
    let (status, html) = post(form(&user.password, &user.password, "it"), true).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Fatto"), "{html}");
    app.login(&user).await;
    // Used: the page says so, and so does a second submission.
    let res = app.client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("Il link non è valido"));
    let (status, html) = post(form(&user.password, &user.password, "en"), true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("This link is not valid"), "{html}");
}
