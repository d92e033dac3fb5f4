//! Wrong PINs and PUKs are counted before they are compared: however many requests with valid
//! OTPs race, at most 3 PINs (10 PUKs) of a credential are ever compared. A TOTP subscriber
//! has three valid codes at once (previous, current and next step), so three requests with
//! valid OTPs can be in flight together.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use sigillo::db::repo;
use sigillo::model::{Credential, CredentialStatus};
use uuid::Uuid;

use crate::support::{
    assert_error, b64, digests, Csc, TestApp, TestCredential, TestUser, OID_SHA256,
};

const PIN: &str = "24681357";

/// The codes of the previous, current and next step: all three are valid now.
fn three_codes(uri: &str) -> Vec<String> {
    let totp = totp_rs::TOTP::from_url_unchecked(uri).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    [now - 30, now, now + 30]
        .iter()
        .map(|t| totp.generate(*t))
        .collect()
}

/// The current code, after forgetting the last accepted step — as if a minute had passed,
/// which makes the three codes of [`three_codes`] valid again.
async fn time_passes(app: &TestApp, user: &TestUser) {
    let redis = redis::Client::open(app.config.redis.url.expose()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{}otp:totp:{}", app.config.redis.key_prefix, user.user_id);
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
}

async fn current_code(app: &TestApp, user: &TestUser) -> String {
    time_passes(app, user).await;
    three_codes(user.totp_uri.as_deref().unwrap()).swap_remove(1)
}

/// PINs and PUKs compared so far: each comparison is one HMAC in the HSM.
fn comparisons(app: &TestApp) -> u64 {
    app.services()
        .metrics
        .hsm
        .job_duration
        .with_label_values(&["hmac"])
        .get_sample_count()
}

async fn stored(app: &TestApp, id: &str) -> Credential {
    repo::credentials::find(&app.services().db, Uuid::parse_str(id).unwrap())
        .await
        .unwrap()
        .unwrap()
}

/// `other` with its last digit changed.
fn other(secret: &str) -> String {
    let last = secret.as_bytes()[7];
    let digit = if last == b'9' {
        '0'
    } else {
        (last + 1) as char
    };
    format!("{}{digit}", &secret[..7])
}

/// Fires `calls` (one per valid code, in step order) a few milliseconds apart, so that each
/// passes the TOTP check (a step is accepted only after the earlier ones) while the earlier
/// ones are still comparing their PIN or PUK. Returns every answer.
async fn race<F, Fut>(codes: Vec<String>, call: F) -> Vec<(StatusCode, Value)>
where
    F: Fn(usize, String) -> Fut,
    Fut: std::future::Future<Output = (StatusCode, Value)> + Send + 'static,
{
    let mut tasks = Vec::new();
    for (i, code) in codes.into_iter().enumerate() {
        tasks.push(tokio::spawn(call(i, code)));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

fn count(answers: &[(StatusCode, Value)], code: &str) -> usize {
    answers.iter().filter(|(_, b)| b["error"] == code).count()
}

/// Someone else's big signHash, to keep the HSM busy while the race runs: every PIN or PUK
/// comparison then waits in the HSM queue, as it does under load, which holds the racing
/// requests between their OTP check and their comparison.
struct Load {
    token: String,
    credential: String,
    pin: String,
}

impl Load {
    async fn new(app: &TestApp) -> Load {
        let (_, token, credential, pin) = app.active_credential("rsa-2048", "signing").await;
        Load {
            token,
            credential,
            pin,
        }
    }

    /// Starts a signHash of 1000 hashes and returns once its jobs are queued.
    async fn start(&self, app: &TestApp) -> tokio::task::JoinHandle<StatusCode> {
        let hashes = digests(1000, 32);
        let sad = app
            .sad_for(
                Csc::V2,
                &self.token,
                &self.credential,
                &self.pin,
                &hashes,
                OID_SHA256,
            )
            .await;
        let body = json!({
            "credentialID": self.credential,
            "SAD": sad,
            "hashes": hashes.iter().map(|h| b64(h)).collect::<Vec<_>>(),
            "hashAlgorithmOID": OID_SHA256,
            "signAlgo": "1.2.840.113549.1.1.11",
        });
        let request = app
            .client
            .post(format!("{}/csc/v2/signatures/signHash", app.public))
            .bearer_auth(&self.token)
            .json(&body);
        let task = tokio::spawn(async move { request.send().await.unwrap().status() });
        tokio::time::sleep(Duration::from_millis(30)).await;
        task
    }
}

/// A TOTP subscriber's active credential with two wrong PINs already counted: one more may
/// be compared.
async fn two_wrong_pins(app: &TestApp, user: &TestUser, token: &str) -> TestCredential {
    let credential = app.create_credential(user, "ec-p256", "signing").await;
    let otp = current_code(app, user).await;
    let (status, body) = app
        .activate(token, &credential.id, &credential.puk, PIN, &otp)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for left in [2, 1] {
        let otp = current_code(app, user).await;
        let got = app
            .authorize_with(
                Csc::V2,
                token,
                &credential.id,
                &other(PIN),
                &otp,
                1,
                Some(&digests(1, 32)),
                Some(OID_SHA256),
            )
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_authentication_data");
        assert!(got.1["error_description"]
            .as_str()
            .unwrap()
            .contains(&format!("{left} attempts left")));
    }
    credential
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_wrong_pins_with_valid_otps_compare_at_most_three() {
    let app = TestApp::spawn_with(|c| {
        c.server.workers = 2;
        c.otp.send_limit = 20;
    })
    .await;
    let user = app.create_user("totp").await;
    let uri = user.totp_uri.clone().unwrap();
    let token = app.login(&user).await;
    let load = Load::new(&app).await;
    // Several rounds, each on a fresh credential, until the three valid codes really were in
    // flight together (each passed the OTP check).
    for round in 1..=5 {
        let credential = two_wrong_pins(&app, &user, &token).await;
        time_passes(&app, &user).await;
        let busy = load.start(&app).await;
        let before = comparisons(&app);
        // Two authorizations and a PIN change: one budget per credential.
        let answers = race(three_codes(&uri), |i, otp| {
            let (client, public) = (app.client.clone(), app.public.clone());
            let (token, id) = (token.clone(), credential.id.clone());
            async move {
                let wrong = other(PIN);
                let (path, body) = if i == 1 {
                    (
                        format!("{public}/api/v1/credentials/{id}/pin"),
                        json!({ "pin": wrong, "new_pin": "11223344", "otp": otp }),
                    )
                } else {
                    // v1: its codes tell a wrong PIN from a wrong OTP (v2 has one for both).
                    (
                        format!("{public}/csc/v1/credentials/authorize"),
                        json!({
                            "credentialID": id,
                            "numSignatures": 1,
                            "hash": [b64(&digests(1, 32)[0])],
                            "PIN": wrong,
                            "OTP": otp,
                        }),
                    )
                };
                let res = client
                    .post(path)
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                (res.status(), res.json().await.unwrap_or(Value::Null))
            }
        })
        .await;
        let compared = comparisons(&app) - before;
        assert_eq!(busy.await.unwrap(), StatusCode::OK);
        let passed_otp = answers.len() - count(&answers, "invalid_otp");
        let now = stored(&app, &credential.id).await;
        eprintln!(
            "round {round}: {passed_otp} passed the OTP, {compared} PINs compared, \
             {} answered invalid_pin, stored {:?} with {} failures; {answers:?}",
            count(&answers, "invalid_pin"),
            now.status,
            now.pin_failures
        );
        // Two wrong PINs were counted before: one more may be compared, no more.
        assert!(compared <= 1, "{compared} PINs compared after 2 wrong ones");
        assert!(count(&answers, "invalid_pin") <= 1, "{answers:?}");
        assert!(
            now.pin_failures <= 3,
            "{} wrong PINs counted",
            now.pin_failures
        );
        if passed_otp >= 2 {
            assert_eq!(
                (now.status, now.pin_failures),
                (CredentialStatus::PinBlocked, 3)
            );
            // Even the right PIN with a valid OTP is refused now, and compares nothing.
            let before = comparisons(&app);
            let otp = current_code(&app, &user).await;
            let got = app
                .authorize_with(
                    Csc::V2,
                    &token,
                    &credential.id,
                    PIN,
                    &otp,
                    1,
                    Some(&digests(1, 32)),
                    Some(OID_SHA256),
                )
                .await;
            assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
            assert_eq!(comparisons(&app), before);
            return;
        }
    }
    panic!("in 5 rounds the three valid codes never raced");
}

/// Fires three PUK attempts with valid codes at `path` (activation or unblock) after 9 wrong
/// PUKs, and checks that only one more PUK was compared.
async fn racing_wrong_puks(
    app: &TestApp,
    load: &Load,
    user: &TestUser,
    token: &str,
    credential: &TestCredential,
    path: &str,
) {
    let wrong = other(&credential.puk);
    let attempt = |otp: String| {
        let (client, url, token) = (
            app.client.clone(),
            format!("{}{path}", app.public),
            token.to_owned(),
        );
        let body = json!({ "puk": wrong, "new_pin": "11223344", "otp": otp });
        async move {
            let res = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                res.status(),
                res.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    for n in 1..=9 {
        let otp = current_code(app, user).await;
        let got = attempt(otp).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_puk");
        assert!(got.1["error_description"]
            .as_str()
            .unwrap()
            .contains(&format!("{} attempts left", 10 - n)));
    }
    time_passes(app, user).await;
    let busy = load.start(app).await;
    let before = comparisons(app);
    let answers = race(three_codes(user.totp_uri.as_deref().unwrap()), |_, otp| {
        attempt(otp)
    })
    .await;
    let compared = comparisons(app) - before;
    assert_eq!(busy.await.unwrap(), StatusCode::OK);
    let now = stored(app, &credential.id).await;
    eprintln!(
        "{path}: {compared} PUKs compared, stored {:?} with {} failures; {answers:?}",
        now.status, now.puk_failures
    );
    assert!(compared <= 1, "{compared} PUKs compared after 9 wrong ones");
    assert_eq!(
        (now.status, now.puk_failures),
        (CredentialStatus::Blocked, 10)
    );
    for got in answers.iter().filter(|(_, b)| b["error"] != "invalid_otp") {
        assert_error(got, StatusCode::BAD_REQUEST, "credential_blocked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_wrong_puks_with_valid_otps_compare_at_most_ten() {
    let app = TestApp::spawn_with(|c| {
        c.server.workers = 2;
        c.otp.send_limit = 20;
    })
    .await;
    let user = app.create_user("totp").await;
    let token = app.login(&user).await;
    let load = Load::new(&app).await;

    // Activation of an inactive credential.
    let inactive = app.create_credential(&user, "ec-p256", "signing").await;
    let path = format!("/api/v1/credentials/{}/activate", inactive.id);
    racing_wrong_puks(&app, &load, &user, &token, &inactive, &path).await;

    // Unblock of a PIN-blocked credential.
    let blocked = app.create_credential(&user, "ec-p256", "signing").await;
    let otp = current_code(&app, &user).await;
    let (status, body) = app
        .activate(&token, &blocked.id, &blocked.puk, PIN, &otp)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for _ in 0..3 {
        let otp = current_code(&app, &user).await;
        let got = app
            .authorize_with(
                Csc::V2,
                &token,
                &blocked.id,
                &other(PIN),
                &otp,
                1,
                Some(&digests(1, 32)),
                Some(OID_SHA256),
            )
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_authentication_data");
    }
    assert_eq!(
        stored(&app, &blocked.id).await.status,
        CredentialStatus::PinBlocked
    );
    let path = format!("/api/v1/credentials/{}/unblock", blocked.id);
    racing_wrong_puks(&app, &load, &user, &token, &blocked, &path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_right_last_pin_or_puk_gives_its_attempt_back() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 20).await;
    let user = app.create_user("totp").await;
    let token = app.login(&user).await;
    // The 3rd PIN attempt blocks the credential while it is compared; a right one unblocks it.
    let credential = two_wrong_pins(&app, &user, &token).await;
    let otp = current_code(&app, &user).await;
    let (status, body) = app
        .authorize_with(
            Csc::V2,
            &token,
            &credential.id,
            PIN,
            &otp,
            1,
            Some(&digests(1, 32)),
            Some(OID_SHA256),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let now = stored(&app, &credential.id).await;
    assert_eq!(
        (now.status, now.pin_failures),
        (CredentialStatus::Active, 0)
    );

    // The same for the 10th PUK of an activation.
    let inactive = app.create_credential(&user, "ec-p256", "signing").await;
    for _ in 0..9 {
        let otp = current_code(&app, &user).await;
        let got = app
            .activate(&token, &inactive.id, &other(&inactive.puk), PIN, &otp)
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_puk");
    }
    let otp = current_code(&app, &user).await;
    let (status, body) = app
        .activate(&token, &inactive.id, &inactive.puk, PIN, &otp)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let now = stored(&app, &inactive.id).await;
    assert_eq!(
        (now.status, now.pin_failures, now.puk_failures),
        (CredentialStatus::Active, 0, 0)
    );
}
