//! Operations endpoints and the error shape of unknown routes.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::TestApp;

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
    let res = get("/metrics").await.unwrap();
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
