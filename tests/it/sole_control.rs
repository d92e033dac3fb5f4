//! Sole control that holds when Redis cannot be trusted: a SAD spent before a Redis rollback
//! stays spent, a SAD written or enlarged in Redis by someone else signs nothing, a SAD has an
//! absolute lifetime, and a SAD issued before a suspension never signs after the resumption,
//! even once Redis forgot the hold. Each of these signed on the code before issue 12.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sigillo::hsm::mechanism::pss_params_der;
use sigillo::hsm::HashAlg;

use crate::support::{assert_error, digests, Csc, TestApp, OID_SHA256};

const ES256: &str = "1.2.840.10045.4.3.2";

async fn redis(app: &TestApp) -> MultiplexedConnection {
    redis::Client::open(app.config.redis.url.expose())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Every Redis key of `user_id` (its hash slot), as (key, DUMP, PTTL).
async fn snapshot(app: &TestApp, user_id: &str) -> Vec<(String, Vec<u8>, i64)> {
    let mut conn = redis(app).await;
    let pattern = format!("{}u:{{{user_id}}}:*", app.config.redis.key_prefix);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "no keys under {pattern}");
    let mut out = Vec::new();
    for key in keys {
        let dump: Vec<u8> = redis::cmd("DUMP")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        out.push((key, dump, ttl));
    }
    out
}

/// Puts the keys back as they were in `snapshot` (what a failover to a lagging replica does).
async fn roll_back(app: &TestApp, snapshot: &[(String, Vec<u8>, i64)]) {
    let mut conn = redis(app).await;
    for (key, dump, ttl) in snapshot {
        let _: () = redis::cmd("RESTORE")
            .arg(key)
            .arg((*ttl).max(0))
            .arg(dump.as_slice())
            .arg("REPLACE")
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

/// The Redis keys of the SADs of `user_id` (the hashes, not the tag sets).
async fn sad_keys(app: &TestApp, user_id: &str) -> Vec<String> {
    let mut conn = redis(app).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!(
            "{}u:{{{user_id}}}:sad:*",
            app.config.redis.key_prefix
        ))
        .query_async(&mut conn)
        .await
        .unwrap();
    keys.into_iter().filter(|k| !k.ends_with(":h")).collect()
}

async fn audit_outcomes(app: &TestApp, user_id: &str, action: &str) -> Vec<(String, Value)> {
    let client = app.services().db.get().await.unwrap();
    client
        .query(
            "SELECT outcome, detail FROM audit_log WHERE actor = $1 AND action = $2 ORDER BY id",
            &[&user_id, &action],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn spent(got: &(StatusCode, Value)) {
    assert_error(got, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(
        got.1["error_description"].as_str().unwrap().contains("SAD"),
        "{}",
        got.1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sad_spent_before_a_redis_rollback_does_not_sign_again() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let (user, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let hashes = digests(2, 32);
    let sad = app
        .sad_for(Csc::V2, &token, &credential, &pin, &hashes, OID_SHA256)
        .await;
    let before = snapshot(&app, &user.user_id).await;
    let (status, body) = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad,
            &hashes,
            Some(OID_SHA256),
            ES256,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Redis loses its last writes: the SAD has both signatures and both hashes again (and
    // again: a refused replay took them from Redis too).
    for v in [Csc::V2, Csc::V1] {
        roll_back(&app, &before).await;
        let got = app
            .sign_hash(
                v,
                &token,
                &credential,
                &sad,
                &hashes[..1],
                Some(OID_SHA256),
                ES256,
                None,
            )
            .await;
        spent(&got);
    }
    let rows = audit_outcomes(&app, &user.user_id, "signatures.signHash").await;
    let outcomes: Vec<&str> = rows.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(outcomes, ["ok", "refused_sad_spent", "refused_sad_spent"]);
    // The audit row names the certificate and where the request came from.
    let (_, detail) = &rows[0];
    assert!(
        detail["serial_number"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{detail}"
    );
    assert_eq!(detail["client_addr"], "127.0.0.1", "{detail}");
    assert_eq!(detail["count"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cannot_mint_or_enlarge_a_sad() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let (user, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let prefix = &app.config.redis.key_prefix;
    let mut conn = redis(&app).await;
    let authorised = digests(1, 32);
    let sad = app
        .sad_for(Csc::V2, &token, &credential, &pin, &authorised, OID_SHA256)
        .await;
    let keys = sad_keys(&app, &user.user_id).await;
    assert_eq!(keys.len(), 1);
    let key = &keys[0];

    // Adding a hash to the SAD's set: what the set holds is not the hash, nor can anybody
    // without the gateway's key compute what it would have to hold.
    let extra = digests(1, 32);
    let _: i64 = redis::cmd("SADD")
        .arg(format!("{key}:h"))
        .arg(hex::encode(&extra[0]))
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: i64 = redis::cmd("HSET")
        .arg(key)
        .arg("n")
        .arg(5)
        .query_async(&mut conn)
        .await
        .unwrap();
    let got = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad,
            &extra,
            Some(OID_SHA256),
            ES256,
            None,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");

    // A SAD of our own making: every field of a real one, copied under a key of our choice;
    // first as is (the SAD's id does not match), then with its binding changed.
    let fields: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let forged = |sad: &str| {
        format!(
            "{prefix}u:{{{}}}:sad:{}",
            user.user_id,
            hex::encode(openssl::sha::sha256(sad.as_bytes()))
        )
    };
    let mint = || {
        // The same shape as a real SAD (48 bytes, base64url), with another id inside.
        let id = uuid::Uuid::new_v4();
        let mut bytes = [7u8; 48];
        bytes[..16].copy_from_slice(id.as_bytes());
        let token = crate::support::b64(&bytes)
            .replace('+', "-")
            .replace('/', "_")
            .trim_end_matches('=')
            .to_owned();
        (token, id.to_string())
    };
    // Unbound, so that no hash set stands in the way: only the HMAC can refuse them.
    for variant in ["copied", "relabelled", "enlarged"] {
        let (mine, id) = mint();
        let mut changes = vec![("bound", "0".to_owned())];
        match variant {
            "relabelled" => changes.push(("sid", id)),
            "enlarged" => {
                changes.push(("N", "100".to_owned()));
                changes.push(("n", "100".to_owned()));
            }
            _ => {}
        }
        let mut cmd = redis::cmd("HSET");
        cmd.arg(forged(&mine));
        for (f, v) in &fields {
            let v = changes
                .iter()
                .find(|(name, _)| name == f)
                .map_or(v.as_str(), |(_, v)| v.as_str());
            cmd.arg(f).arg(v);
        }
        let _: i64 = cmd.query_async(&mut conn).await.unwrap();
        let _: i64 = redis::cmd("EXPIRE")
            .arg(forged(&mine))
            .arg(60)
            .query_async(&mut conn)
            .await
            .unwrap();
        let got = app
            .sign_hash(
                Csc::V2,
                &token,
                &credential,
                &mine,
                &digests(1, 32),
                Some(OID_SHA256),
                ES256,
                None,
            )
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
        assert!(
            got.1["error_description"].as_str().unwrap().contains("SAD"),
            "{variant}: {}",
            got.1
        );
    }
    // The real SAD still signs exactly what it authorised, once.
    let (status, body) = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad,
            &authorised,
            Some(OID_SHA256),
            ES256,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let outcomes: Vec<String> = audit_outcomes(&app, &user.user_id, "signatures.signHash")
        .await
        .into_iter()
        .map(|(o, _)| o)
        .collect();
    assert_eq!(
        outcomes,
        [
            "refused",
            "refused_forged",
            "refused_forged",
            "refused_forged",
            "ok"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sad_has_an_absolute_lifetime_that_extensions_do_not_pass() {
    let app = TestApp::spawn_with(|c| {
        c.otp.send_limit = 100;
        c.csc.scal = "1".into();
        c.csc.sad_ttl_secs = 2;
        c.csc.sad_max_lifetime_secs = 3;
    })
    .await;
    let (user, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let (status, body) = app
        .authorize(Csc::V2, &token, &credential, &pin, 10, None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["expiresIn"].as_u64().unwrap() <= 2, "{body}");
    let mut sad = body["SAD"].as_str().unwrap().to_owned();
    // Extending every 0.8 s would keep a SAD alive for ever; the deadline stops it at 3 s.
    let mut extended = 0;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let (status, body) = app
            .post(
                &Csc::V2.path("credentials/extendTransaction"),
                Some(&token),
                json!({ "credentialID": credential, "SAD": sad }),
            )
            .await;
        if status != StatusCode::OK {
            assert_error(&(status, body), StatusCode::BAD_REQUEST, "invalid_request");
            break;
        }
        assert!(body["expiresIn"].as_u64().unwrap() <= 2, "{body}");
        sad = body["SAD"].as_str().unwrap().to_owned();
        extended += 1;
    }
    assert!((1..=3).contains(&extended), "extended {extended} times");
    tokio::time::sleep(Duration::from_millis(1200)).await;
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
    let rows = audit_outcomes(&app, &user.user_id, "credential.extendTransaction").await;
    assert_eq!(
        rows.len(),
        extended + 1,
        "every extension is audited, the refused one too"
    );
    assert_eq!(rows.last().unwrap().0, "refused");
    assert!(rows[0].1["sad"].is_string(), "{}", rows[0].1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sad_never_signs_past_the_certificates_not_after() {
    let app = TestApp::spawn_with(|c| {
        c.otp.send_limit = 100;
        c.csc.scal = "1".into();
    })
    .await;
    let (_, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    // The certificate ends in two seconds (as stored; the gateway goes by its record).
    let db = app.services().db.get().await.unwrap();
    let id = uuid::Uuid::parse_str(&credential).unwrap();
    db.execute(
        "UPDATE credentials SET valid_to = now() + interval '2 seconds' WHERE credential_id = $1",
        &[&id],
    )
    .await
    .unwrap();
    let (status, body) = app
        .authorize(Csc::V2, &token, &credential, &pin, 5, None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["expiresIn"].as_u64().unwrap() <= 2, "{body}");
    let sad = body["SAD"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(2300)).await;
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sad_issued_before_a_suspension_never_signs_after_the_resumption() {
    let app = TestApp::spawn_with(|c| {
        c.otp.send_limit = 100;
        c.csc.scal = "1".into();
    })
    .await;
    let (user, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let (_, body) = app
        .authorize(Csc::V2, &token, &credential, &pin, 5, None, None)
        .await;
    let sad = body["SAD"].as_str().unwrap().to_owned();
    for action in ["suspend", "resume"] {
        let (status, body) = app
            .admin_post(
                &format!("/admin/v1/credentials/{credential}/{action}"),
                json!({ "reason": "test" }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
    }
    // Redis forgets the suspension ever happened (its hold generation is lost).
    let mut conn = redis(&app).await;
    let _: i64 = redis::cmd("DEL")
        .arg(format!(
            "{}u:{{{}}}:gen:{credential}",
            app.config.redis.key_prefix, user.user_id
        ))
        .query_async(&mut conn)
        .await
        .unwrap();
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
    spent(&got);
    // A SAD issued after the resumption signs.
    let (_, body) = app
        .authorize(Csc::V2, &token, &credential, &pin, 1, None, None)
        .await;
    let (status, body) = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            body["SAD"].as_str().unwrap(),
            &digests(1, 32),
            None,
            ES256,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sad_given_back_keeps_a_lifetime_on_every_key() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let (user, token, credential, pin) = app.active_credential("rsa-2048", "signing").await;
    let hashes = digests(1, 32);
    let sad = app
        .sad_for(Csc::V2, &token, &credential, &pin, &hashes, OID_SHA256)
        .await;
    // RSASSA-PSS with a salt too long for a 2048-bit key: refused only once the SAD was
    // consumed (the key's size is known then), so its one hash is given back.
    let params = pss_params_der(HashAlg::Sha256, 240);
    let got = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad,
            &hashes,
            Some(OID_SHA256),
            "1.2.840.113549.1.1.10",
            Some(&params),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let keys = snapshot(&app, &user.user_id).await;
    for (key, _, ttl) in &keys {
        assert!(*ttl > 0, "{key} has no TTL ({ttl})");
    }
    assert!(
        keys.iter().any(|(k, _, _)| k.ends_with(":h")),
        "the tag set came back"
    );
    let (status, body) = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad,
            &hashes,
            Some(OID_SHA256),
            "1.2.840.113549.1.1.11",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_blocked_credential_signs_nothing_with_the_sads_it_had() {
    let app = TestApp::spawn_with(|c| {
        c.otp.send_limit = 100;
        c.csc.scal = "1".into();
    })
    .await;
    let (_, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let (_, body) = app
        .authorize(Csc::V2, &token, &credential, &pin, 5, None, None)
        .await;
    let sad = body["SAD"].as_str().unwrap().to_owned();
    let wrong = format!("{:08}", (pin.parse::<u32>().unwrap() + 1) % 100_000_000);
    for _ in 0..3 {
        let (status, _) = app
            .authorize(Csc::V2, &token, &credential, &wrong, 1, None, None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
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
    spent(&got);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_an_ended_session_signs_nothing() {
    let app = TestApp::spawn_with(|c| {
        c.otp.send_limit = 100;
        c.csc.scal = "1".into();
    })
    .await;
    let (user, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let (_, body) = app
        .authorize(Csc::V2, &token, &credential, &pin, 5, None, None)
        .await;
    let sad = body["SAD"].as_str().unwrap().to_owned();
    // Someone else changes the password (from another session): every session ends, and the
    // signHash check of the token happens in the SAD's own round trip.
    let other = app.login(&user).await;
    let (status, body) = app
        .post(
            "/api/v1/password",
            Some(&other),
            json!({ "password": user.password, "new_password": "Another-Secret-77!" }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for v in [Csc::V2, Csc::V1] {
        let got = app
            .sign_hash(
                v,
                &token,
                &credential,
                &sad,
                &digests(1, 32),
                None,
                ES256,
                None,
            )
            .await;
        assert_error(&got, StatusCode::UNAUTHORIZED, "invalid_token");
    }
}
