//! HTTP hygiene: every response of both listeners says `nosniff` and `no-store`; `/metrics` is
//! served by the admin listener only; `/readyz` probes the HSM at most once a second.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestApp;

fn assert_hygienic(res: &reqwest::Response, what: &str) {
    let header = |name: &str| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header("x-content-type-options").as_deref(),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        header("cache-control").as_deref(),
        Some("no-store"),
        "{what}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_of_both_listeners_says_nosniff_and_no_store() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let public = |path: &str| format!("{}{path}", app.public);
    let admin = |path: &str| format!("{}{path}", app.admin);

    // Public: a token (login), a success without secrets, an error, an unknown path.
    let res = app
        .client
        .post(public("/csc/v2/auth/login"))
        .basic_auth(&user.user_id, Some(&user.password))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_hygienic(&res, "auth/login");
    let res = app
        .client
        .post(public("/csc/v2/auth/login"))
        .basic_auth(&user.user_id, Some("wrong"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_hygienic(&res, "refused login");
    let res = app.client.get(public("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_hygienic(&res, "public healthz");
    let res = app
        .client
        .get(public("/no/such/thing"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_hygienic(&res, "public 404");

    // Admin: a PUK (credential creation), a success, a refusal, an unknown path.
    let res = app
        .client
        .post(admin(&format!(
            "/admin/v1/users/{}/credentials",
            user.user_id
        )))
        .bearer_auth(&app.admin_token)
        .json(&json!({ "key_algo": "ec-p256", "purpose": "signing" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_hygienic(&res, "admin credential with PUK");
    let res = app.client.get(admin("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_hygienic(&res, "admin healthz");
    let res = app
        .client
        .post(admin("/admin/v1/users"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_hygienic(&res, "admin without token");
    let res = app
        .client
        .get(admin("/no/such/thing"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_hygienic(&res, "admin 404");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_by_the_admin_listener_only() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(format!("{}/metrics", app.public))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = app
        .client
        .get(format!("{}/metrics", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_hygienic(&res, "admin metrics");
    assert!(res.text().await.unwrap().contains("sigillo_hsm_workers"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_readiness_probes_cost_one_hsm_probe() {
    let app = TestApp::spawn().await;
    let pings = || {
        app.services()
            .metrics
            .hsm
            .job_duration
            .with_label_values(&["ping"])
            .get_sample_count()
    };
    let before = pings();
    let started = Instant::now();
    let calls = (0..40).map(|_| {
        let (client, url) = (app.client.clone(), format!("{}/readyz", app.public));
        tokio::spawn(async move { client.get(url).send().await.unwrap().status() })
    });
    for call in calls.collect::<Vec<_>>() {
        assert_eq!(call.await.unwrap(), StatusCode::OK);
    }
    let elapsed = started.elapsed();
    let probes = pings() - before;
    eprintln!("40 parallel /readyz in {elapsed:?}: {probes} HSM probes");
    // One probe per second at most (a burst that outlived a second may have needed two).
    let allowed = if elapsed < Duration::from_secs(1) {
        1
    } else {
        2
    };
    assert!(
        probes <= allowed,
        "{probes} HSM probes for 40 /readyz calls"
    );
    // A second later the next call probes again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = app
        .client
        .get(format!("{}/readyz", app.public))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(pings() - before, probes + 1);
}
