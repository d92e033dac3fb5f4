//! A Redis that stalls (SIGSTOP) under signHash: the request gets a 503 in bounded time, and
//! the SAD step that Redis runs when it wakes up costs the subscriber nothing — its signatures
//! are given back (before issue 13 the retry was refused with "0 signatures left").

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sigillo::config::Secret;

use crate::support::{digests, Csc, PrivateRedis, TestApp};

const ES256: &str = "1.2.840.10045.4.3.2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_stall_costs_the_subscriber_no_signature() {
    let redis = PrivateRedis::start().await;
    let app = TestApp::spawn_with(|c| {
        c.redis.url = Secret::new(redis.url.clone());
        c.otp.send_limit = 100;
        c.csc.scal = "1".into();
    })
    .await;
    let (user, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let (status, body) = app
        .authorize(Csc::V2, &token, &credential, &pin, 2, None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sad = body["SAD"].as_str().unwrap().to_owned();
    // One signature while Redis is well (it also opens the worker's Redis connection).
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

    redis.signal("STOP");
    let started = Instant::now();
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
    let waited = started.elapsed();
    // Wake Redis before asserting, so that a failure leaves no stopped process behind.
    redis.signal("CONT");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(waited < Duration::from_secs(3), "answered after {waited:?}");

    // Redis ran the queued SAD step when it woke; the give-back follows it. The subscriber's
    // last signature is there again within moments.
    let mut signed = None;
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline {
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
        if status == StatusCode::OK {
            signed = Some(body);
            break;
        }
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        signed.is_some(),
        "the SAD's last signature was lost to the stall"
    );
    // Exactly one: the give-back happened once.
    let (status, _) = app
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
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let client = app.services().db.get().await.unwrap();
    let outcomes: Vec<String> = client
        .query(
            "SELECT outcome FROM audit_log WHERE actor = $1 AND action = 'signatures.signHash' \
             ORDER BY id",
            &[&user.user_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        outcomes.get(1).map(String::as_str),
        Some("failed_redis"),
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| *o == "ok").count(),
        2,
        "{outcomes:?}"
    );
}
