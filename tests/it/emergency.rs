//! The emergency code: it suspends every signing credential of its subscriber without a
//! sign-in (live SADs refused at once, authorize refused, the e-mail arrives); a wrong code is
//! refused and counted in the password budget (40 parallel wrong codes check at most the
//! budget); an unknown user id is answered exactly like a wrong code. The subscriber lifts it
//! with a credential's PUK and a new OTP device (the old device dies; an operator's suspension
//! stays; replayed, it finds nothing; racing wrong PUKs get at most 10 compared).

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{
    assert_error, digests, env, random_suffix, test_config, totp_codes, Csc, TestApp,
    TestCredential, TestUser,
};

const ES256: &str = "1.2.840.10045.4.3.2";

fn decode_qp(text: &str) -> String {
    let bytes = text.replace("\r\n", "\n").replace("=\n", "").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The (decoded) messages of the test Maildir containing every one of `needles`, once at
/// least `n` are there or `within` has passed.
pub async fn mails_with(needles: &[&str], n: usize, within: Duration) -> Vec<String> {
    let dir = PathBuf::from(env("SIGILLO_TEST_MAILDIR"));
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let mut found = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                if let Ok(raw) = std::fs::read_to_string(entry.path()) {
                    let text = decode_qp(&raw);
                    if needles.iter().all(|n| text.contains(n)) {
                        found.push(text);
                    }
                }
            }
        }
        if found.len() >= n || tokio::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Gives `user` a fresh emergency code through the domain function the admin API uses.
async fn new_code(app: &TestApp, user: &TestUser) -> String {
    let (code, digest) =
        sigillo::activation::emergency::new_code_for(app.services(), &user.user_id)
            .await
            .unwrap();
    sigillo::activation::emergency::store_digest(app.services(), &user.user_id, &digest)
        .await
        .unwrap();
    code
}

async fn suspend(app: &TestApp, user_id: &str, code: &str) -> (StatusCode, Value) {
    app.post(
        "/api/v1/emergency-suspension",
        None,
        json!({ "user_id": user_id, "emergency_code": code }),
    )
    .await
}

async fn audit_outcomes(app: &TestApp, user_id: &str) -> Vec<(String, Option<String>)> {
    let client = app.services().db.get().await.unwrap();
    client
        .query(
            "SELECT outcome, detail->>'client_addr' FROM audit_log \
             WHERE action = 'user.emergency_suspension' AND detail->>'user_id' = $1 ORDER BY id",
            &[&user_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emergency_code_suspends_every_signing_credential() {
    let mut config = test_config(&random_suffix());
    config.csc.scal = "1".into();
    config.otp.send_limit = 100;
    let app = TestApp::spawn_node(config).await;

    // The sealed envelope carries the code; it works as sealed.
    let fresh_user = app.create_user("sms").await;
    let fresh = fresh_user.user_id.clone();
    let sealed = app
        .create_credential(&fresh_user, "ec-p256", "signing")
        .await;
    let returned = sealed.emergency_code.clone();
    assert_eq!(returned.len(), 14, "{returned}");
    let got = suspend(&app, &fresh, &returned).await;
    assert_eq!(got, (StatusCode::OK, json!({ "suspended": 1 })));
    let stored: Option<Vec<u8>> = app
        .services()
        .db
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT emergency_code_hmac FROM users WHERE user_id = $1",
            &[&fresh],
        )
        .await
        .unwrap()
        .get(0);
    let stored = stored.unwrap();
    assert_eq!(stored.len(), 32);

    let (user, token, active, pin) = app.active_credential("ec-p256", "signing").await;
    let inactive = app.create_credential(&user, "ec-p256", "signing").await;
    let (status, body) = app
        .authorize(Csc::V2, &token, &active, &pin, 5, None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sad = body["SAD"].as_str().unwrap().to_owned();
    let code = new_code(&app, &user).await;

    let wrong = suspend(&app, &user.user_id, "0000-0000-0000").await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED, "access_denied");

    // Typed in lower case with spaces: still the code.
    let typed = code.to_lowercase().replace('-', " ");
    let got = suspend(&app, &user.user_id, &typed).await;
    assert_eq!(got, (StatusCode::OK, json!({ "suspended": 2 })));

    let got = app
        .sign_hash(
            Csc::V2,
            &token,
            &active,
            &sad,
            &digests(1, 32),
            None,
            ES256,
            None,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(
        got.1["error_description"]
            .as_str()
            .unwrap()
            .contains("suspended or revoked"),
        "{}",
        got.1
    );
    let got = app
        .authorize_with(Csc::V2, &token, &active, &pin, "123456", 1, None, None)
        .await;
    assert_eq!(got.1["error_description"], "the credential is suspended");
    for id in [&active, &inactive.id] {
        let c = sigillo::db::repo::credentials::find(&app.services().db, id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.status.as_str(), "suspended", "{id}");
    }
    // A second use finds nothing left to suspend.
    assert_eq!(
        suspend(&app, &user.user_id, &code).await,
        (StatusCode::OK, json!({ "suspended": 0 }))
    );

    // The confirmation arrives (in Italian, the default language), naming both credentials.
    let serials: Vec<String> = {
        let mut s = Vec::new();
        for id in [&active, &inactive.id] {
            s.push(
                sigillo::db::repo::credentials::find(&app.services().db, id.parse().unwrap())
                    .await
                    .unwrap()
                    .unwrap()
                    .serial_number,
            );
        }
        s
    };
    let mails = mails_with(
        &["codice d'emergenza", &serials[0], &serials[1]],
        1,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        mails.len(),
        1,
        "the emergency suspension e-mail did not arrive"
    );

    // Audited with the subscriber as actor and the client's address, failures too.
    let outcomes = audit_outcomes(&app, &user.user_id).await;
    let words: Vec<&str> = outcomes.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(words, ["wrong_code", "ok", "ok"]);
    assert!(outcomes
        .iter()
        .all(|(_, addr)| addr.as_deref() == Some("127.0.0.1")));
    // Resuming stays with the operator.
    let (status, body) = app
        .admin_post(
            &format!("/admin/v1/credentials/{active}/resume"),
            json!({ "reason": "the subscriber found the phone" }),
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("active"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_are_counted_and_an_unknown_user_answers_like_a_wrong_code() {
    let budget = 5;
    let app = TestApp::spawn_with(|c| c.security.login_max_failures = budget).await;
    let user = app.create_user("sms").await;
    let code = new_code(&app, &user).await;

    // Unknown user id and wrong code: the same status and body.
    let unknown = suspend(
        &app,
        &format!("nobody-{}", random_suffix()),
        "0000-0000-0000",
    )
    .await;
    let other = app.create_user("sms").await;
    let wrong = suspend(&app, &other.user_id, "0000-0000-0000").await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED, "access_denied");
    assert_eq!(unknown, wrong);

    // 40 wrong codes at once: at most the budget is checked, the rest is refused with 429.
    let attempts = (0..40).map(|i| {
        let app = &app;
        let user_id = user.user_id.clone();
        async move { suspend(app, &user_id, &format!("0000-0000-{i:04}")).await }
    });
    let results = futures_util::future::join_all(attempts).await;
    let checked = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::UNAUTHORIZED)
        .count();
    let limited = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    println!("40 parallel wrong emergency codes: {checked} checked, {limited} limited");
    assert!(
        checked <= budget as usize,
        "{checked} wrong codes were checked"
    );
    assert_eq!(checked + limited, 40);
    let audited = audit_outcomes(&app, &user.user_id)
        .await
        .iter()
        .filter(|(o, _)| o == "wrong_code")
        .count();
    assert_eq!(audited, checked);
    // The budget is spent: the right code waits for the window too (and login with it).
    let got = suspend(&app, &user.user_id, &code).await;
    assert_error(&got, StatusCode::TOO_MANY_REQUESTS, "access_denied");
}

async fn resume(
    app: &TestApp,
    token: &str,
    credential: &str,
    puk: &str,
    otp: &str,
) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/credentials/{credential}/resume"),
        Some(token),
        json!({ "puk": puk, "otp": otp }),
    )
    .await
}

/// Stages a new authenticator app for `user` (as a device change starts) and returns its URI.
async fn stage_app(app: &TestApp, token: &str, user: &TestUser) -> String {
    let (status, started) = app
        .post(
            "/api/v1/otp/totp",
            Some(token),
            json!({ "password": user.password }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    started["otpauth_uri"].as_str().unwrap().to_owned()
}

/// An SMS subscriber signed in (`token`) whose one P-256 signing credential (inactive) its own
/// emergency code has suspended.
async fn suspended_subscriber() -> (TestApp, TestUser, String, TestCredential) {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let user = app.create_user("sms").await;
    let token = app.login(&user).await;
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    let got = suspend(&app, &user.user_id, &credential.emergency_code).await;
    assert_eq!(got, (StatusCode::OK, json!({ "suspended": 1 })));
    (app, user, token, credential)
}

async fn status_of(app: &TestApp, id: &str) -> String {
    sigillo::db::repo::credentials::find(&app.services().db, id.parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .status
        .as_str()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscriber_resumes_with_a_puk_and_a_new_app_and_the_old_phone_is_dead() {
    let mut config = test_config(&random_suffix());
    config.otp.send_limit = 100;
    let app = TestApp::spawn_node(config).await;
    let user = app.create_user("sms").await;
    let token = app.login(&user).await;
    // An active credential, an inactive one, and one the operator suspended.
    let active = app.create_credential(&user, "ec-p256", "signing").await;
    let pin = "24681357";
    let otp = app.sms_otp(&token, &active.id).await;
    let got = app
        .activate(&token, &active.id, &active.puk, pin, &otp)
        .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let inactive = app.create_credential(&user, "ec-p256", "signing").await;
    let held = app.create_credential(&user, "ec-p256", "signing").await;
    let (status, body) = app
        .admin_post(
            &format!("/admin/v1/credentials/{}/suspend", held.id),
            json!({ "reason": "identity check pending" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The phone is lost: the subscriber suspends with the newest envelope's code.
    let got = suspend(&app, &user.user_id, &held.emergency_code).await;
    assert_eq!(got, (StatusCode::OK, json!({ "suspended": 2 })));

    // Without a new device staged the right PUK resumes nothing.
    let got = resume(&app, &token, &active.id, &active.puk, "123456").await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let uri = stage_app(&app, &token, &user).await;
    let (code, _) = totp_codes(&uri);
    // A wrong PUK is counted; the operator's suspension is not the subscriber's to lift; a
    // code that is not the new app's does nothing.
    let got = resume(&app, &token, &active.id, "11111111", &code).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_puk");
    assert!(
        got.1["error_description"].as_str().unwrap().contains("9"),
        "{}",
        got.1
    );
    let got = resume(&app, &token, &held.id, &held.puk, &code).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(
        got.1["error_description"]
            .as_str()
            .unwrap()
            .contains("operator"),
        "{}",
        got.1
    );
    let got = resume(&app, &token, &active.id, &active.puk, "000000").await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_code");
    for id in [&active.id, &inactive.id, &held.id] {
        assert_eq!(status_of(&app, id).await, "suspended", "{id}");
    }

    // The PUK and the new app's code: both credentials the subscriber suspended resume.
    let got = resume(&app, &token, &active.id, &active.puk, &code).await;
    assert_eq!(got, (StatusCode::OK, json!({ "resumed": 2 })));
    assert_eq!(status_of(&app, &active.id).await, "active");
    assert_eq!(status_of(&app, &inactive.id).await, "inactive");
    assert_eq!(status_of(&app, &held.id).await, "suspended");
    // Every session ended (a thief's too); replayed, the call finds nothing to resume.
    let (status, _) = app
        .post("/csc/v2/credentials/list", Some(&token), json!({}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let token = app.login(&user).await;
    let got = resume(&app, &token, &active.id, &active.puk, &code).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");

    // The lost phone no longer gets codes; the new app signs, and openssl checks the signature.
    let got = app
        .post(
            "/csc/v2/credentials/sendOTP",
            Some(&token),
            json!({ "credentialID": active.id }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let (_, next) = totp_codes(&uri);
    let hashes = digests(1, 32);
    let (status, body) = app
        .authorize_with(
            Csc::V2,
            &token,
            &active.id,
            pin,
            &next,
            1,
            Some(&hashes),
            Some("2.16.840.1.101.3.4.2.1"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sad = body["SAD"].as_str().unwrap().to_owned();
    let (status, body) = app
        .sign_hash(
            Csc::V2,
            &token,
            &active.id,
            &sad,
            &hashes,
            None,
            ES256,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let signature = crate::support::unb64(body["signatures"][0].as_str().unwrap());
    let leaf = app.leaf_certificate(Csc::V2, &token, &active.id).await;
    let key = leaf.public_key().unwrap().ec_key().unwrap();
    let sig = openssl::ecdsa::EcdsaSig::from_der(&signature).unwrap();
    assert!(sig.verify(&hashes[0], &key).unwrap());

    // Audited, the refusals with their reason.
    let client = app.services().db.get().await.unwrap();
    let outcomes: Vec<String> = client
        .query(
            "SELECT outcome FROM audit_log WHERE action = 'user.emergency_resume' \
             AND actor = $1 ORDER BY id",
            &[&user.user_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        outcomes,
        ["refused", "refused", "refused", "refused", "ok", "refused"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_wrong_puks_on_a_resume_get_at_most_ten_compared() {
    let (app, user, token, credential) = suspended_subscriber().await;
    let uri = stage_app(&app, &token, &user).await;
    let (code, _) = totp_codes(&uri);

    let attempts = (0..16).map(|i| {
        let (app, token, id, code) = (&app, &token, &credential.id, &code);
        async move { resume(app, token, id, &format!("{:08}", 10_000_000 + i), code).await }
    });
    let results = futures_util::future::join_all(attempts).await;
    let count = |error: &str| results.iter().filter(|(_, b)| b["error"] == error).count();
    let answers: Vec<String> = results
        .iter()
        .map(|(s, b)| format!("{} {}", s.as_u16(), b["error"]))
        .collect();
    println!(
        "16 racing wrong PUKs: {} invalid_puk, {} credential_blocked",
        count("invalid_puk"),
        count("credential_blocked")
    );
    assert_eq!(count("invalid_puk"), 9, "{answers:?}");
    assert_eq!(count("credential_blocked"), 7, "{answers:?}");
    // Blocked for good: the right PUK does nothing now, and the certificate stays on hold.
    let got = resume(&app, &token, &credential.id, &credential.puk, &code).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "credential_blocked");
    assert_eq!(status_of(&app, &credential.id).await, "blocked");
    let client = app.services().db.get().await.unwrap();
    let reason: Option<i16> = client
        .query_one(
            "SELECT reason FROM issued_certificates WHERE serial_number = $1",
            &[&credential.serial_number],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(reason, Some(6), "certificateHold");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_subscriber_resumes_on_a_new_phone() {
    let (app, user, token, credential) = suspended_subscriber().await;
    let new_phone = "+393335550123";
    let code = crate::devices::stage_phone(&app, &token, &user, new_phone).await;
    let got = resume(&app, &token, &credential.id, &credential.puk, &code).await;
    assert_eq!(got, (StatusCode::OK, json!({ "resumed": 1 })));
    assert_eq!(status_of(&app, &credential.id).await, "inactive");
    // The codes go to the new phone now.
    let row = sigillo::db::repo::users::find(&app.services().db, &user.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.phone, new_phone);
}
