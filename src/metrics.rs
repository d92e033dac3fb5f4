//! Prometheus metrics: the registry lives in `Services`; HTTP metrics are labelled by the
//! matched route pattern (never the raw path, so ids cannot explode the label set).

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub hsm_queue_depth: IntGauge,
    pub hsm_workers: IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "sigillo_http_requests_total",
                "HTTP requests by route and status",
            ),
            &["route", "method", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "sigillo_http_request_duration_seconds",
                "HTTP latency by route",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route"],
        )?;
        let hsm_queue_depth = IntGauge::new("sigillo_hsm_queue_depth", "HSM jobs waiting")?;
        let hsm_workers = IntGauge::new("sigillo_hsm_workers", "HSM worker threads")?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(hsm_queue_depth.clone()))?;
        registry.register(Box::new(hsm_workers.clone()))?;
        Ok(Metrics {
            registry,
            http_requests,
            http_duration,
            hsm_queue_depth,
            hsm_workers,
        })
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        out
    }
}
