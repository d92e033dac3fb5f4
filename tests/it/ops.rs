//! Operations endpoints and the error shape of unknown routes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use sigillo::hsm::{HashAlg, SignAlgo};
use uuid::Uuid;

use crate::support::{digests, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_metrics_and_openapi() {
    let app = TestApp::spawn().await;
    let get = |path: &str| app.client.get(format!("{}{path}", app.public)).send();

    let res = get("/healthz").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = get("/readyz").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "ready");

    // Generate some traffic, then read it back from the metrics.
    let user = app.create_user("sms").await;
    app.login(&user).await;
    // The metrics are served by the admin listener only.
    assert_eq!(
        get("/metrics").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let res = app
        .client
        .get(format!("{}/metrics", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert!(
        text.contains(r#"sigillo_http_requests_total{method="POST",route="/csc/v2/auth/login",status="200"} 1"#),
        "{text}"
    );
    assert!(text.contains("sigillo_http_request_duration_seconds_bucket"));
    assert!(text.contains(&format!("sigillo_hsm_workers {}", app.config.hsm.workers)));

    let res = get("/openapi.yaml").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().starts_with("openapi: 3"));

    let res = get("/no/such/thing").await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_names_the_dependency_that_is_down() {
    // A Redis of this test's own, so that stopping it harms no other test.
    let mut redis = crate::support::PrivateRedis::start().await;
    let url = redis.url.clone();
    let app =
        TestApp::spawn_with(|c| c.redis.url = sigillo::config::Secret::new(url.clone())).await;
    let readyz = || app.client.get(format!("{}/readyz", app.public)).send();
    assert_eq!(readyz().await.unwrap().status(), StatusCode::OK);

    redis.kill();
    // The last probe is reused for a second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let res = readyz().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["failing"], serde_json::json!(["redis"]), "{body}");
    // The warning carries its request's span: method, path and request id.
    let logs = crate::support::captured_logs();
    let warnings: Vec<Value> = logs
        .lines()
        .filter(|l| l.contains("not ready"))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(!warnings.is_empty(), "the failed readiness check is logged");
    for w in &warnings {
        let span = &w["span"];
        assert_eq!(span["name"], "request", "{w}");
        assert_eq!(span["method"], "GET", "{w}");
        assert_eq!(span["path"], "/readyz", "{w}");
        let id = span["request_id"].as_str().unwrap_or_default();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "a request id: {w}");
    }
    // Liveness is not readiness: the process still answers.
    let res = app
        .client
        .get(format!("{}/healthz", app.public))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// The value of gauge `name` in the metrics text.
async fn gauge(app: &TestApp, name: &str) -> i64 {
    let text = app
        .client
        .get(format!("{}/metrics", app.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_handles_are_cached_at_start_and_at_generation() {
    let app = TestApp::spawn().await;
    // At start every private key of the token is cached: this app's CA keys at least.
    let at_start = gauge(&app, "sigillo_hsm_cached_handles").await;
    assert!(at_start >= 2, "{at_start}");
    let user = app.create_user("sms").await;
    app.create_credential(&user, "ec-p256", "signing").await;
    app.create_credential(&user, "rsa-2048", "signing").await;
    // Enrolment caches the new keys' handles (plus the PIN HMAC key, on its first use).
    let after = gauge(&app, "sigillo_hsm_cached_handles").await;
    assert!(after >= at_start + 2, "{at_start} -> {after}");
}

/// A batch whose request is gone (dropped, or failed on another of its HSM jobs) leaves no
/// work behind: its jobs still queued are skipped, not signed for nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queued_jobs_of_a_dropped_batch_are_skipped() {
    let app = TestApp::spawn_with(|c| c.hsm.workers = 1).await;
    let user = app.create_user("sms").await;
    let credential = app.create_credential(&user, "ec-p384", "signing").await;
    let services = app.services();
    let signed_jobs = || {
        services
            .metrics
            .hsm
            .job_duration
            .with_label_values(&["sign"])
            .get_sample_count()
    };
    let before = signed_jobs();
    let key_id: Arc<[u8]> = Arc::from(&Uuid::parse_str(&credential.id).unwrap().as_bytes()[..]);
    // 1000 P-384 hashes on one worker: 8 jobs of 125 signatures, a second or so in all.
    let hsm = services.hsm.clone();
    let batch = Arc::new(digests(1000, 48));
    let signing = tokio::spawn(async move {
        hsm.sign_batch(key_id, SignAlgo::Ecdsa(HashAlg::Sha384), batch)
            .await
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    signing.abort();
    // Wait until the worker has taken (or skipped) every job and is idle.
    let deadline = Instant::now() + Duration::from_secs(20);
    while services.hsm.queue_depth() > 0 || services.metrics.hsm.busy_workers.get() > 0 {
        assert!(Instant::now() < deadline, "the HSM queue never drained");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // At most the job under way when the request went was signed.
    let signed = signed_jobs() - before;
    assert!(
        signed <= 1,
        "{signed} of 8 jobs signed for a dropped request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_redis_costs_a_bounded_503_and_its_return_needs_no_restart() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut redis = crate::support::PrivateRedis::start_on(port).await;
    let url = format!("redis://127.0.0.1:{port}/");
    let app = TestApp::spawn_with(|c| {
        c.redis.url = sigillo::config::Secret::new(url.clone());
        c.csc.scal = "1".into();
    })
    .await;
    let (user, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let (status, body) = app
        .authorize(
            crate::support::Csc::V2,
            &token,
            &credential,
            &pin,
            5,
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sad = body["SAD"].as_str().unwrap().to_owned();
    let login = || {
        app.client
            .post(format!("{}/csc/v2/auth/login", app.public))
            .basic_auth(&user.user_id, Some(&user.password))
            .json(&serde_json::json!({}))
            .send()
    };
    let hashes = digests(1, 32);
    let sign = || {
        app.sign_hash(
            crate::support::Csc::V2,
            &token,
            &credential,
            &sad,
            &hashes,
            None,
            "1.2.840.10045.4.3.2",
            None,
        )
    };
    assert_eq!(sign().await.0, StatusCode::OK);

    redis.kill();
    for round in 0..3 {
        let started = Instant::now();
        let res = login().await.unwrap();
        let took = started.elapsed();
        assert_eq!(
            res.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "login {round}"
        );
        assert!(res.headers().contains_key("retry-after"), "login {round}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "temporarily_unavailable", "{body}");
        assert!(took < Duration::from_secs(2), "login {round} took {took:?}");

        let started = Instant::now();
        let (status, body) = sign().await;
        let took = started.elapsed();
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "signHash {round}: {body}"
        );
        assert_eq!(body["error"], "temporarily_unavailable", "{body}");
        assert!(
            took < Duration::from_secs(2),
            "signHash {round} took {took:?}"
        );
    }
    // The last probe is reused for a second; then /readyz answers within its bound too.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let started = Instant::now();
    let res = app
        .client
        .get(format!("{}/readyz", app.public))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "/readyz took {took:?}");

    // A new Redis on the same port (empty: the SAD is gone, the login works): served again
    // with no restart of the gateway.
    let _redis = crate::support::PrivateRedis::start_on(port).await;
    let started = Instant::now();
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    while started.elapsed() < Duration::from_secs(10) {
        status = login().await.unwrap().status();
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, StatusCode::OK, "login after Redis came back");
    // Each connection reopens on its first use after the outage (that one call may still get
    // a 503): signHash then reads the new Redis, where the SAD is gone.
    let (mut status, mut body) = sign().await;
    while status == StatusCode::SERVICE_UNAVAILABLE && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        (status, body) = sign().await;
    }
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the lost SAD is refused: {body}"
    );
}
