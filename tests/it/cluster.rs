//! Two gateway nodes on a Redis Cluster (three masters, scripts/test) and one PostgreSQL, one
//! token: the SAD count, single-use OTPs, suspension and revocation, and the login budget hold
//! across the nodes, because every Lua script touches the keys of one hash slot (the user's);
//! a stall of the cluster costs no signature (on a private cluster).

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use redis::Script;
use reqwest::StatusCode;
use serde_json::json;
use sigillo::config::Config;
use sigillo::kv::Kv;

use crate::support::{
    assert_error, cluster_config, digests, random_suffix, totp_codes, Csc, PrivateCluster, TestApp,
};

const ES256: &str = "1.2.840.10045.4.3.2";

/// Two nodes of one gateway (one schema, key prefix, HSM labels) on the cluster.
async fn two_nodes(adjust: impl FnOnce(&mut Config)) -> (TestApp, TestApp) {
    let mut config = cluster_config(&random_suffix());
    config.csc.scal = "1".into();
    config.otp.send_limit = 100;
    adjust(&mut config);
    let a = TestApp::spawn_node(config.clone()).await;
    let b = TestApp::spawn_node(config).await;
    (a, b)
}

/// The cluster refuses a script whose keys fall in two slots; the keys a gateway gives one
/// script (`Kv::user_key`) share the user's slot; a multi-key DEL over two slots is split by
/// the client; PING (readiness) reaches every master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_runs_a_script_only_on_keys_of_one_slot() {
    let config = cluster_config(&random_suffix());
    let kv = Kv::connect(&config.redis)
        .await
        .expect("the cluster connects");
    let script =
        Script::new("redis.call('SET', KEYS[1], '1'); redis.call('SET', KEYS[2], '2'); return 1");
    // Two keys of one user without a common hash tag: in different slots here.
    let (one, two) = (kv.key("a:alice"), kv.key("b:alice"));
    let mut conn = kv.conn();
    let slots: Vec<u16> = join_all([&one, &two].map(|k| {
        let mut conn = kv.conn();
        async move {
            redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(k)
                .query_async::<u16>(&mut conn)
                .await
                .unwrap()
        }
    }))
    .await;
    assert_ne!(
        slots[0], slots[1],
        "{one} and {two} share a slot: pick other names"
    );
    let refused = script
        .key(&one)
        .key(&two)
        .invoke_async::<i64>(&mut conn)
        .await
        .expect_err("keys of two slots");
    assert_eq!(refused.code(), Some("CROSSSLOT"), "{refused}");
    let ran: i64 = script
        .key(kv.user_key("alice", &["a"]))
        .key(kv.user_key("alice", &["b"]))
        .invoke_async(&mut conn)
        .await
        .expect("one user's keys share a slot");
    assert_eq!(ran, 1);
    kv.ping().await.expect("every master answers");

    let app = TestApp::spawn_node(config).await;
    let otp = &app.services().otp;
    otp.stage_phone("alice", "+393330000000").await.unwrap();
    otp.clear_staged("alice")
        .await
        .expect("a DEL over two slots");
    assert_eq!(otp.staged_phone("alice").await.unwrap(), None);
    let ready = app
        .client
        .get(format!("{}/readyz", app.public))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}

/// A SAD for N signatures, 2N racing signHash requests spread over both nodes: exactly N
/// signatures, every other request refused as over the count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sad_for_n_signatures_gives_exactly_n_across_two_nodes() {
    const N: usize = 4;
    let (a, b) = two_nodes(|_| {}).await;
    let (_, token, credential, pin) = a.active_credential("ec-p256", "signing").await;
    let (status, body) = b
        .authorize(Csc::V2, &token, &credential, &pin, N, None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sad = body["SAD"].as_str().unwrap().to_owned();
    let hashes = digests(2 * N, 32);
    let race = hashes.iter().enumerate().map(|(i, hash)| {
        let node = if i % 2 == 0 { &a } else { &b };
        node.sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad,
            std::slice::from_ref(hash),
            None,
            ES256,
            None,
        )
    });
    let outcomes = join_all(race).await;
    let signed = outcomes.iter().filter(|o| o.0 == StatusCode::OK).count();
    assert_eq!(signed, N, "{outcomes:?}");
    for refused in outcomes.iter().filter(|o| o.0 != StatusCode::OK) {
        assert_error(refused, StatusCode::BAD_REQUEST, "invalid_request");
        let description = refused.1["error_description"].as_str().unwrap();
        assert!(description.contains("0 signatures left"), "{description}");
    }
}

/// One SMS code, presented at once to both nodes (authorize), and one TOTP code (activation
/// of two credentials): each works exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_otp_is_single_use_across_the_nodes() {
    let (a, b) = two_nodes(|_| {}).await;
    let (_, token, credential, pin) = a.active_credential("ec-p256", "signing").await;
    let otp = b.sms_otp(&token, &credential).await;
    let race = [&a, &b, &a, &b]
        .map(|node| node.authorize_with(Csc::V2, &token, &credential, &pin, &otp, 1, None, None));
    let outcomes = join_all(race).await;
    assert_eq!(
        outcomes.iter().filter(|o| o.0 == StatusCode::OK).count(),
        1,
        "{outcomes:?}"
    );
    for refused in outcomes.iter().filter(|o| o.0 != StatusCode::OK) {
        // CSC v2 names a wrong, spent or expired OTP invalid_authentication_data.
        assert_error(
            refused,
            StatusCode::BAD_REQUEST,
            "invalid_authentication_data",
        );
    }

    let user = a.create_user("totp").await;
    let uri = user.totp_uri.clone().unwrap();
    let first = a.create_credential(&user, "ec-p256", "signing").await;
    let second = a.create_credential(&user, "ec-p256", "signing").await;
    let token = b.login(&user).await;
    let (code, _) = totp_codes(&uri);
    let (one, two) = tokio::join!(
        a.activate(&token, &first.id, &first.puk, "12345678", &code),
        b.activate(&token, &second.id, &second.puk, "12345678", &code),
    );
    let outcomes = [one, two];
    assert_eq!(
        outcomes.iter().filter(|o| o.0 == StatusCode::OK).count(),
        1,
        "{outcomes:?}"
    );
    let refused = outcomes.iter().find(|o| o.0 != StatusCode::OK).unwrap();
    assert_error(refused, StatusCode::BAD_REQUEST, "invalid_otp");
}

/// One signHash of a fresh digest.
async fn sign_one(
    node: &TestApp,
    token: &str,
    credential: &str,
    sad: &str,
) -> (StatusCode, serde_json::Value) {
    node.sign_hash(
        Csc::V2,
        token,
        credential,
        sad,
        &digests(1, 32),
        None,
        ES256,
        None,
    )
    .await
}

/// Suspended through one node: both nodes refuse the live SAD at once; revoked through the
/// other: both refuse a new authorization.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspension_and_a_revocation_are_refused_at_once_on_both_nodes() {
    let (a, b) = two_nodes(|_| {}).await;
    let (_, token, credential, pin) = a.active_credential("ec-p256", "signing").await;
    let (status, body) = a
        .authorize(Csc::V2, &token, &credential, &pin, 4, None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sad = body["SAD"].as_str().unwrap().to_owned();
    assert_eq!(
        sign_one(&b, &token, &credential, &sad).await.0,
        StatusCode::OK
    );
    let (status, body) = a
        .admin_post(
            &format!("/admin/v1/credentials/{credential}/suspend"),
            json!({ "reason": "test: suspend on a cluster" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for got in [
        sign_one(&a, &token, &credential, &sad).await,
        sign_one(&b, &token, &credential, &sad).await,
    ] {
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
        let description = got.1["error_description"].as_str().unwrap();
        assert!(
            description.contains("suspended or revoked"),
            "{description}"
        );
    }
    let (status, body) = b
        .admin_post(
            &format!("/admin/v1/credentials/{credential}/revoke"),
            json!({ "reason": "test: revoke on a cluster" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for node in [&a, &b] {
        let got = node
            .authorize_with(Csc::V2, &token, &credential, &pin, "123456", 1, None, None)
            .await;
        assert_eq!(got.1["error_description"], "the credential is revoked");
        let got = sign_one(node, &token, &credential, &sad).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    }
}

/// 40 wrong passwords for one user at once, half on each node: at most the budget of 10 is
/// checked, the rest refused before Argon2; then the right password waits too, on either node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_budget_holds_across_the_nodes() {
    let (a, b) = two_nodes(|c| {
        c.security.login_max_failures = 10;
        c.security.login_window_secs = 600;
        c.security.login_max_failures_per_addr = 1000;
        c.security.argon2_queue = 1000;
    })
    .await;
    let user = a.create_user("sms").await;
    let burst = (0..40).map(|i| {
        let node = if i % 2 == 0 { &a } else { &b };
        node.client
            .post(format!("{}/csc/v2/auth/login", node.public))
            .basic_auth(&user.user_id, Some(format!("Wrong-Password-{i}")))
            .send()
    });
    let statuses: Vec<StatusCode> = join_all(burst)
        .await
        .into_iter()
        .map(|r| r.unwrap().status())
        .collect();
    let checked = statuses
        .iter()
        // CSC v2 answers a wrong password 400 authentication_error.
        .filter(|s| **s == StatusCode::BAD_REQUEST)
        .count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(checked + limited, 40, "{statuses:?}");
    assert!(
        (1..=10).contains(&checked),
        "{checked} wrong passwords were checked, the budget is 10"
    );
    for node in [&a, &b] {
        let res = node
            .client
            .post(format!("{}/csc/v2/auth/login", node.public))
            .basic_auth(&user.user_id, Some(&user.password))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(res.headers().contains_key("retry-after"));
    }
}

/// Every master stalls (SIGSTOP) under a signHash: 503 in bounded time. Only the master that
/// holds the subscriber's keys wakes up: the give-back of what the stalled step took needs an
/// answer from that master alone (a plain PING waits for every master), so the SAD's last
/// signature is there again while the others still sleep, and given back once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_on_the_cluster_costs_the_subscriber_no_signature() {
    let cluster = PrivateCluster::start().await;
    let app = TestApp::spawn_with(|c| {
        c.redis.cluster_urls = cluster.urls();
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
    assert_eq!(
        sign_one(&app, &token, &credential, &sad).await.0,
        StatusCode::OK
    );
    let holder = cluster.master_of(&app.services().kv.user_key(&user.user_id, &["epoch"]));

    for node in 0..3 {
        cluster.signal(node, "STOP");
    }
    let started = Instant::now();
    let got = sign_one(&app, &token, &credential, &sad).await;
    let waited = started.elapsed();
    cluster.signal(holder, "CONT");
    let others: Vec<usize> = (0..3).filter(|&n| n != holder).collect();
    let wake_others = || others.iter().for_each(|&n| cluster.signal(n, "CONT"));
    if got.0 != StatusCode::SERVICE_UNAVAILABLE || waited > Duration::from_secs(3) {
        wake_others();
        panic!("{got:?} after {waited:?}");
    }

    let mut signed = None;
    let deadline = Instant::now() + Duration::from_secs(8);
    while signed.is_none() && Instant::now() < deadline {
        let got = sign_one(&app, &token, &credential, &sad).await;
        if got.0 == StatusCode::OK {
            signed = Some(got);
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    wake_others();
    assert!(
        signed.is_some(),
        "the SAD's last signature was not given back while the other masters slept"
    );
    let got = sign_one(&app, &token, &credential, &sad).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
}
