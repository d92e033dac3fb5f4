//! Operations endpoints: liveness, readiness (HSM, Redis, PostgreSQL), metrics.
//!
//! Invariant: `/readyz` probes the dependencies at most once a second, however often it is
//! called; the callers in between get the last result, so an unauthenticated flood of probes
//! cannot queue work for the HSM workers.

use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::services::Services;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a readiness result is reused.
const PROBE_CACHE: Duration = Duration::from_secs(1);

/// The last readiness probe: when it ran and what was failing.
#[derive(Default)]
pub struct Readiness {
    last: tokio::sync::Mutex<Option<(Instant, Vec<&'static str>)>>,
}

/// `GET /healthz`: the process answers.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `GET /readyz`: every dependency answers within 2 s; 503 names the ones that do not. The
/// result is reused for a second: concurrent callers wait for the one probe in flight.
pub async fn readyz(
    services: web::Data<Services>,
    readiness: web::Data<Readiness>,
) -> HttpResponse {
    let failing = {
        // A tokio mutex, held across the probe on purpose: the callers queue here, not at the HSM.
        let mut last = readiness.last.lock().await;
        match &*last {
            Some((at, failing)) if at.elapsed() < PROBE_CACHE => failing.clone(),
            _ => {
                let failing = probe(&services).await;
                *last = Some((Instant::now(), failing.clone()));
                failing
            }
        }
    };
    if failing.is_empty() {
        HttpResponse::Ok().json(json!({ "status": "ready" }))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "unavailable", "failing": failing }))
    }
}

/// Probes every dependency once; returns the ones that failed.
async fn probe(services: &Services) -> Vec<&'static str> {
    let hsm = tokio::time::timeout(PROBE_TIMEOUT, services.hsm.ping());
    let redis = tokio::time::timeout(PROBE_TIMEOUT, services.kv.ping());
    let postgres = tokio::time::timeout(PROBE_TIMEOUT, async {
        let client = services.db.get().await.map_err(|e| e.to_string())?;
        client
            .simple_query("SELECT 1")
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let (hsm, redis, postgres) = tokio::join!(hsm, redis, postgres);
    let mut failing = Vec::new();
    if !matches!(hsm, Ok(Ok(()))) {
        failing.push("hsm");
    }
    if !matches!(redis, Ok(Ok(()))) {
        failing.push("redis");
    }
    if !matches!(postgres, Ok(Ok(()))) {
        failing.push("postgresql");
    }
    if !failing.is_empty() {
        tracing::warn!(?failing, "not ready");
    }
    failing
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(services: web::Data<Services>) -> HttpResponse {
    let m = &services.metrics;
    m.hsm_queue_depth
        .set(i64::try_from(services.hsm.queue_depth()).unwrap_or(i64::MAX));
    m.hsm_workers
        .set(i64::try_from(services.hsm.workers()).unwrap_or(i64::MAX));
    m.hsm_cached_handles
        .set(i64::try_from(services.hsm.cached_handles()).unwrap_or(i64::MAX));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(m.render())
}
