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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::path::PathBuf::from(crate::support::env("SIGILLO_TEST_TMP"))
        .join(format!("redis-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut redis = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
        ])
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server is installed by scripts/test");
    let url = format!("redis://127.0.0.1:{port}/");
    let mut up = false;
    for _ in 0..50 {
        if redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "the private redis-server started");
    let app =
        TestApp::spawn_with(|c| c.redis.url = sigillo::config::Secret::new(url.clone())).await;
    let readyz = || app.client.get(format!("{}/readyz", app.public)).send();
    assert_eq!(readyz().await.unwrap().status(), StatusCode::OK);

    redis.kill().unwrap();
    redis.wait().unwrap();
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
