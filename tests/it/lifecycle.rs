//! The credential lifecycle so far: operator suspension/resumption/revocation (killing live
//! SADs on every node), PIN change, PUK unblock, password change, the portal's credential list.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{assert_error, digests, random_suffix, test_config, Csc, TestApp, OID_SHA256};

const ES256: &str = "1.2.840.10045.4.3.2";

fn other(pin: &str) -> String {
    format!("{:08}", (pin.parse::<u32>().unwrap() + 1) % 100_000_000)
}

async fn operator(app: &TestApp, credential: &str, action: &str) -> (StatusCode, Value) {
    app.admin_post(
        &format!("/admin/v1/credentials/{credential}/{action}"),
        json!({ "reason": format!("test: {action}") }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspension_kills_live_sads_on_every_node_and_revocation_is_final() {
    let mut config = test_config(&random_suffix());
    config.csc.scal = "1".into();
    config.otp.send_limit = 100;
    let a = TestApp::spawn_node(config.clone()).await;
    let b = TestApp::spawn_node(config).await;
    let (_, token, credential, pin) = a.active_credential("ec-p256", "signing").await;
    let (status, body) = a
        .authorize(Csc::V2, &token, &credential, &pin, 5, None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sad = body["SAD"].as_str().unwrap().to_owned();
    let (status, _) = a
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad,
            &digests(1, 32),
            None,
            ES256,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Suspended through node B: node A refuses the live SAD at once.
    let (status, body) = operator(&b, &credential, "suspend").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("suspended")),
        "{body}"
    );
    let got = a
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
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
    let got = a
        .post(
            "/csc/v2/credentials/extendTransaction",
            Some(&token),
            json!({ "credentialID": credential, "SAD": sad }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let got = a
        .authorize_with(Csc::V2, &token, &credential, &pin, "123456", 1, None, None)
        .await;
    assert_eq!(got.1["error_description"], "the credential is suspended");
    let (_, list) = a
        .client
        .get(format!("{}/api/v1/credentials", a.public))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .map(|v| (0, v))
        .unwrap();
    assert_eq!(list["credentials"][0]["status"], "suspended");
    let got = operator(&a, &credential, "suspend").await;
    assert_error(&got, StatusCode::CONFLICT, "invalid_state");

    // Resumed: the old SAD stays dead, a new one signs.
    let (status, body) = operator(&a, &credential, "resume").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("active")),
        "{body}"
    );
    let got = b
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad,
            &digests(1, 32),
            None,
            ES256,
            None,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let (_, body) = b
        .authorize(Csc::V2, &token, &credential, &pin, 2, None, None)
        .await;
    let fresh = body["SAD"].as_str().unwrap().to_owned();
    let (status, _) = b
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &fresh,
            &digests(1, 32),
            None,
            ES256,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Revoked: final.
    let (status, body) = operator(&b, &credential, "revoke").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("revoked")),
        "{body}"
    );
    let got = a
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &fresh,
            &digests(1, 32),
            None,
            ES256,
            None,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    for action in ["resume", "suspend", "revoke"] {
        let got = operator(&a, &credential, action).await;
        assert_error(&got, StatusCode::CONFLICT, "invalid_state");
    }
    let got = a
        .authorize_with(Csc::V2, &token, &credential, &pin, "123456", 1, None, None)
        .await;
    assert_eq!(got.1["error_description"], "the credential is revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_changes_need_a_known_credential_a_reason_and_the_admin_token() {
    let app = TestApp::spawn().await;
    let unknown = uuid::Uuid::new_v4();
    let got = operator(&app, &unknown.to_string(), "suspend").await;
    assert_error(&got, StatusCode::NOT_FOUND, "credential_not_found");
    let user = app.create_user("sms").await;
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    for body in [
        json!({}),
        json!({ "reason": "  " }),
        json!({ "reason": "x", "extra": 1 }),
    ] {
        let got = app
            .admin_post(
                &format!("/admin/v1/credentials/{}/revoke", credential.id),
                body,
            )
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let res = app
        .client
        .post(format!(
            "{}/admin/v1/credentials/{}/revoke",
            app.admin, credential.id
        ))
        .json(&json!({ "reason": "no token" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // An inactive credential can be suspended and resumes to inactive.
    let (_, body) = operator(&app, &credential.id, "suspend").await;
    assert_eq!(body["status"], "suspended");
    let (_, body) = operator(&app, &credential.id, "resume").await;
    assert_eq!(body["status"], "inactive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_change_needs_the_current_pin_and_an_otp() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let (_, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let path = format!("/api/v1/credentials/{credential}/pin");
    let new_pin = other(&other(&pin));
    let change = |pin: String, new_pin: String, otp: String| {
        app.post(
            &path,
            Some(&token),
            json!({ "pin": pin, "new_pin": new_pin, "otp": otp }),
        )
    };
    let got = change(pin.clone(), "1234".into(), "000000".into()).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let got = change(pin.clone(), pin.clone(), "000000".into()).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let otp = app.operation_otp(&token, &credential, "pin_change").await;
    let got = change(other(&pin), new_pin.clone(), otp).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_pin");
    let got = change(pin.clone(), new_pin.clone(), "000000".into()).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_otp");
    let otp = app.operation_otp(&token, &credential, "pin_change").await;
    let (status, body) = change(pin.clone(), new_pin.clone(), otp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "active");
    // The old PIN is gone, the new one authorizes.
    let hashes = digests(1, 32);
    let got = app
        .authorize(
            Csc::V2,
            &token,
            &credential,
            &pin,
            1,
            Some(&hashes),
            Some(OID_SHA256),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_authentication_data");
    app.sad_for(Csc::V2, &token, &credential, &new_pin, &hashes, OID_SHA256)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_wrong_pins_block_and_the_puk_unblocks() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let (user, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    // The PUK from the sealed envelope: the one shown at creation (kept by active_credential's
    // caller in real life); here we create a second credential to keep it.
    let second = app.create_credential(&user, "ec-p256", "signing").await;
    let otp = app.sms_otp(&token, &second.id).await;
    let (status, _) = app
        .activate(&token, &second.id, &second.puk, &pin, &otp)
        .await;
    assert_eq!(status, StatusCode::OK);
    let hashes = digests(1, 32);
    for _ in 0..3 {
        let got = app
            .authorize(
                Csc::V2,
                &token,
                &second.id,
                &other(&pin),
                1,
                Some(&hashes),
                Some(OID_SHA256),
            )
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_authentication_data");
    }
    let unblock_path = format!("/api/v1/credentials/{}/unblock", second.id);
    let unblock = |puk: &str, new_pin: &str, otp: &str| {
        app.post(
            &unblock_path,
            Some(&token),
            json!({ "puk": puk, "new_pin": new_pin, "otp": otp }),
        )
    };
    // A PIN change is refused now; unblocking an active credential is refused too.
    let got = app
        .post(
            &format!("/api/v1/credentials/{}/pin", second.id),
            Some(&token),
            json!({ "pin": pin, "new_pin": "13572468", "otp": "000000" }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let got = app
        .post(
            &format!("/api/v1/credentials/{credential}/unblock"),
            Some(&token),
            json!({ "puk": "12345678", "new_pin": "13572468", "otp": "000000" }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let wrong_puk = other(&second.puk);
    let otp = app.sms_otp(&token, &second.id).await;
    let got = unblock(&wrong_puk, "13572468", &otp).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_puk");
    let otp = app.sms_otp(&token, &second.id).await;
    let (status, body) = unblock(&second.puk, "13572468", &otp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "active");
    app.sad_for(Csc::V2, &token, &second.id, "13572468", &hashes, OID_SHA256)
        .await;

    // PUK exhaustion on unblock blocks for good.
    for _ in 0..3 {
        let got = app
            .authorize(
                Csc::V2,
                &token,
                &second.id,
                &other("13572468"),
                1,
                Some(&hashes),
                Some(OID_SHA256),
            )
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_authentication_data");
    }
    // One wrong PUK was counted before the successful unblock reset the count: 10 more now.
    for attempt in 1..=10 {
        let otp = app.sms_otp(&token, &second.id).await;
        let got = unblock(&wrong_puk, "24681357", &otp).await;
        let code = if attempt < 10 {
            "invalid_puk"
        } else {
            "credential_blocked"
        };
        assert_error(&got, StatusCode::BAD_REQUEST, code);
    }
    let got = unblock(&second.puk, "24681357", "000000").await;
    assert_error(&got, StatusCode::BAD_REQUEST, "credential_blocked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_follows_the_policy() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let token = app.login(&user).await;
    let change = |password: &str, new_password: &str| {
        app.post(
            "/api/v1/password",
            Some(&token),
            json!({ "password": password, "new_password": new_password }),
        )
    };
    for (weak, rule) in [
        ("short1!", "8 characters"),
        ("nouppercase1!", "upper-case"),
        ("Noodigits!!x", "digit"),
        ("Aaa-bbbb-1", "more than twice"),
    ] {
        let got = change(&user.password, weak).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
        assert!(
            got.1["error_description"].as_str().unwrap().contains(rule),
            "{weak}: {}",
            got.1
        );
    }
    let got = change(&user.password, &user.password).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let got = change("Wrong-Password-1", "Brand-New-Pass-2").await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_password");
    let res = app
        .client
        .post(format!("{}/api/v1/password", app.public))
        .bearer_auth(&token)
        .json(&json!({ "password": user.password, "new_password": "Brand-New-Pass-2" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let old = app
        .client
        .post(format!("{}/csc/v2/auth/login", app.public))
        .basic_auth(&user.user_id, Some(&user.password))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), StatusCode::BAD_REQUEST);
    let new = app
        .client
        .post(format!("{}/csc/v2/auth/login", app.public))
        .basic_auth(&user.user_id, Some("Brand-New-Pass-2"))
        .send()
        .await
        .unwrap();
    assert_eq!(new.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_lists_validity_and_the_renewal_window() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let token = app.login(&user).await;
    let long = app.create_credential(&user, "ec-p256", "signing").await;
    let (status, body) = app
        .admin_post(
            &format!("/admin/v1/users/{}/credentials", user.user_id),
            json!({ "key_algo": "rsa-2048", "purpose": "authentication", "validity_days": 30 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let short = body["credential_id"].as_str().unwrap().to_owned();
    let res = app
        .client
        .get(format!("{}/api/v1/credentials", app.public))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let list: Value = res.json().await.unwrap();
    let creds = list["credentials"].as_array().unwrap();
    assert_eq!(creds.len(), 2);
    let (a, b) = (&creds[0], &creds[1]);
    assert_eq!(a["credential_id"], long.id);
    assert_eq!(
        (
            a["purpose"].as_str(),
            a["key_algo"].as_str(),
            a["status"].as_str()
        ),
        (Some("signing"), Some("ec-p256"), Some("inactive"))
    );
    assert!(
        (1094..=1095).contains(&a["days_remaining"].as_i64().unwrap()),
        "{a}"
    );
    assert_eq!(
        (a["renewable"].as_bool(), a["renewed"].as_bool()),
        (Some(false), Some(false)),
        "outside the 90-day window"
    );
    assert!(a["serial_number"].as_str().unwrap().len() >= 16);
    assert_eq!(b["credential_id"], short);
    assert!(
        (29..=30).contains(&b["days_remaining"].as_i64().unwrap()),
        "{b}"
    );
    // Inside the window, but inactive: renewal is confirmed with the PIN, so not yet.
    assert_eq!(b["renewable"], false, "{b}");
    let opens = time::OffsetDateTime::parse(
        b["renewal_window_opens"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(opens < time::OffsetDateTime::now_utc());
    // Without a token: refused.
    let res = app
        .client
        .get(format!("{}/api/v1/credentials", app.public))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_calls_are_audited() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let token = app.login(&user).await;
    for path in ["/api/v1/credentials", "/api/v1/notifications"] {
        let res = app
            .client
            .get(format!("{}{path}", app.public))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    let client = app.services().db.get().await.unwrap();
    let rows = client
        .query(
            "SELECT action FROM audit_log WHERE actor = $1 AND action <> 'user.setup' ORDER BY id",
            &[&user.user_id],
        )
        .await
        .unwrap();
    let actions: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        actions,
        vec!["auth.login", "portal.credentials", "portal.notifications"]
    );
}

/// Deletes every Redis key of `app` (its prefix only: the Redis is shared by parallel tests),
/// as a failover to an empty replica would.
async fn lose_redis_state(app: &TestApp) -> usize {
    let redis = redis::Client::open(app.config.redis.url.expose()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let pattern = format!("{}*", app.config.redis.key_prefix);
    let mut cursor: u64 = 0;
    let mut keys: Vec<String> = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .unwrap();
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    keys.len()
}

/// The token's objects of `class` with `CKA_ID` = the credential's id.
fn token_objects(credential: &str, class: cryptoki::object::ObjectClass) -> usize {
    use cryptoki::object::Attribute;
    let id = uuid::Uuid::parse_str(credential).unwrap();
    let session = crate::support::hsm_session();
    sigillo::hsm::with_object_store(|| {
        session
            .find_objects(&[
                Attribute::Class(class),
                Attribute::Id(id.as_bytes().to_vec()),
            ])
            .unwrap()
            .len()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_destroys_the_private_key_and_holds_after_redis_loses_every_key() {
    use cryptoki::object::ObjectClass;
    let app = TestApp::spawn_with(|c| {
        c.csc.scal = "1".into();
        c.otp.send_limit = 100;
    })
    .await;
    let (_, token, credential, pin) = app.active_credential("ec-p256", "signing").await;

    // A suspension keeps the key: resumed, the credential signs again.
    let (status, body) = operator(&app, &credential, "suspend").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(token_objects(&credential, ObjectClass::PRIVATE_KEY), 1);
    let (status, body) = operator(&app, &credential, "resume").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .authorize(Csc::V2, &token, &credential, &pin, 5, None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sad = body["SAD"].as_str().unwrap().to_owned();
    let (status, body) = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad,
            &digests(1, 32),
            None,
            ES256,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Revoked: the private key is gone from the token, the public key and certificate stay.
    let (status, body) = operator(&app, &credential, "revoke").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        token_objects(&credential, ObjectClass::PRIVATE_KEY),
        0,
        "the revoked credential's private key is still in the token"
    );
    assert_eq!(token_objects(&credential, ObjectClass::PUBLIC_KEY), 1);
    let stored = sigillo::db::repo::credentials::find(
        &app.services().db,
        uuid::Uuid::parse_str(&credential).unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!stored.cert_chain.is_empty(), "the certificate stays");

    // Redis loses every key of this gateway (the hold, the SAD's remains): still no signature.
    assert!(lose_redis_state(&app).await > 0);
    let got = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad,
            &digests(1, 32),
            None,
            ES256,
            None,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let got = app
        .authorize_with(Csc::V2, &token, &credential, &pin, "123456", 1, None, None)
        .await;
    assert_eq!(got.1["error_description"], "the credential is revoked");

    // The destruction is audited.
    let client = app.services().db.get().await.unwrap();
    let rows = client
        .query(
            "SELECT outcome FROM audit_log WHERE action = 'credential.key_destroy' \
             AND credential_id = $1",
            &[&uuid::Uuid::parse_str(&credential).unwrap()],
        )
        .await
        .unwrap();
    let outcomes: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(outcomes, ["ok"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_left_by_a_failed_destruction_goes_at_the_next_start() {
    use cryptoki::object::ObjectClass;
    use sigillo::db::repo::credentials::{apply_operator_change, OperatorChange};
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    // The revocation commits but the key survives (as if C_DestroyObject had failed).
    let id = uuid::Uuid::parse_str(&credential.id).unwrap();
    apply_operator_change(&app.services().db, id, OperatorChange::Revoke, "test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(token_objects(&credential.id, ObjectClass::PRIVATE_KEY), 1);
    // Another node starting on the same database sweeps it.
    let _node = TestApp::spawn_node(app.config.clone()).await;
    assert_eq!(
        token_objects(&credential.id, ObjectClass::PRIVATE_KEY),
        0,
        "the start-up sweep left the key of a revoked credential"
    );

    // The same left-over key is also destroyed by the operator's next revoke, which is
    // refused (the credential is already revoked) but retries the destruction.
    let other = app.create_credential(&user, "ec-p256", "signing").await;
    let other_id = uuid::Uuid::parse_str(&other.id).unwrap();
    apply_operator_change(&app.services().db, other_id, OperatorChange::Revoke, "test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(token_objects(&other.id, ObjectClass::PRIVATE_KEY), 1);
    let got = operator(&app, &other.id, "revoke").await;
    assert_error(&got, StatusCode::CONFLICT, "invalid_state");
    assert_eq!(
        token_objects(&other.id, ObjectClass::PRIVATE_KEY),
        0,
        "a second revoke did not retry the destruction"
    );
}

/// Makes every status change of a credential fail in PostgreSQL (a trigger in this test's
/// own schema), or lets them through again.
async fn refuse_status_changes(app: &TestApp, refuse: bool) {
    // DDL needs the schema's owner (the gateway's runtime role may not create objects).
    let owner = sigillo::db::connect_owner(&app.config.database)
        .await
        .unwrap();
    let db = owner.get().await.unwrap();
    let sql = if refuse {
        "CREATE FUNCTION test_refuse_status() RETURNS trigger LANGUAGE plpgsql AS \
           $$ BEGIN RAISE EXCEPTION 'test: status change refused'; END $$; \
         CREATE TRIGGER test_refuse_status BEFORE UPDATE ON credentials FOR EACH ROW \
           WHEN (NEW.status IS DISTINCT FROM OLD.status) EXECUTE FUNCTION test_refuse_status();"
    } else {
        "DROP TRIGGER test_refuse_status ON credentials; DROP FUNCTION test_refuse_status();"
    };
    db.batch_execute(sql).await.unwrap();
}

/// Authorizes one signature and signs with it: the status of each step.
async fn sign_once(app: &TestApp, token: &str, credential: &str, pin: &str) -> Vec<StatusCode> {
    let (status, body) = app
        .authorize(Csc::V2, token, credential, pin, 1, None, None)
        .await;
    if status != StatusCode::OK {
        return vec![status];
    }
    let sad = body["SAD"].as_str().unwrap();
    let (signed, body) = app
        .sign_hash(
            Csc::V2,
            token,
            credential,
            sad,
            &digests(1, 32),
            None,
            ES256,
            None,
        )
        .await;
    assert!(
        signed == StatusCode::OK || signed.is_client_error(),
        "{body}"
    );
    vec![status, signed]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_status_change_leaves_redis_and_postgres_agreeing() {
    let app = TestApp::spawn_with(|c| {
        c.csc.scal = "1".into();
        c.otp.send_limit = 100;
    })
    .await;
    let (_, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let ok = vec![StatusCode::OK, StatusCode::OK];

    // Suspend and revoke fail in PostgreSQL: the credential is active in both stores, and
    // it authorizes and signs as an active credential does.
    refuse_status_changes(&app, true).await;
    for action in ["suspend", "revoke"] {
        let (status, body) = operator(&app, &credential, action).await;
        assert!(status.is_server_error(), "{action}: {status} {body}");
        let (status, body) = app
            .post(
                "/csc/v2/credentials/info",
                Some(&token),
                json!({ "credentialID": credential }),
            )
            .await;
        assert_eq!(
            (status, body["key"]["status"].as_str()),
            (StatusCode::OK, Some("enabled")),
            "{action}: {body}"
        );
        assert_eq!(
            sign_once(&app, &token, &credential, &pin).await,
            ok,
            "after a failed {action}"
        );
    }
    // A resume of the still active credential is refused (409) and changes nothing.
    let got = operator(&app, &credential, "resume").await;
    assert_error(&got, StatusCode::CONFLICT, "invalid_state");
    assert_eq!(sign_once(&app, &token, &credential, &pin).await, ok);
    refuse_status_changes(&app, false).await;

    // Suspended for real; then a resume that fails in PostgreSQL leaves it suspended in both:
    // authorize refuses it, and the resume goes through once the database lets it.
    let (status, body) = operator(&app, &credential, "suspend").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    refuse_status_changes(&app, true).await;
    let (status, body) = operator(&app, &credential, "resume").await;
    assert!(status.is_server_error(), "resume: {status} {body}");
    let refused = sign_once(&app, &token, &credential, &pin).await;
    assert_eq!(
        refused.len(),
        1,
        "a suspended credential authorized: {refused:?}"
    );
    assert!(refused[0].is_client_error(), "{refused:?}");
    refuse_status_changes(&app, false).await;
    let (status, body) = operator(&app, &credential, "resume").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("active")),
        "{body}"
    );
    assert_eq!(sign_once(&app, &token, &credential, &pin).await, ok);
}
