//! Prometheus metrics: the registry lives in `Services`; HTTP metrics are labelled by the
//! matched route pattern (never the raw path, so ids cannot explode the label set).

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub hsm_queue_depth: IntGauge,
    pub hsm_workers: IntGauge,
    pub hsm_cached_handles: IntGauge,
    /// Shared with the HSM pool, which updates them itself.
    pub hsm: HsmMetrics,
    pub signatures: IntCounterVec,
    pub sign_hash_duration: Histogram,
    pub sign_hash_batch: Histogram,
    pub redis_duration: HistogramVec,
    pub audit_commit_duration: Histogram,
    pub audit_commit_rows: Histogram,
    /// Mails the SMTP server accepted, failed attempts, and mails given up.
    pub mail_sent: IntCounter,
    pub mail_send_errors: IntCounter,
    pub mail_failed: IntCounter,
}

/// What the HSM pool reports: job latency by operation and busy workers.
#[derive(Clone)]
pub struct HsmMetrics {
    pub job_duration: HistogramVec,
    pub busy_workers: IntGauge,
}

const LATENCY: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

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
        let hsm_cached_handles = IntGauge::new(
            "sigillo_hsm_cached_handles",
            "HSM object handles cached in this process",
        )?;
        let hsm = HsmMetrics {
            job_duration: HistogramVec::new(
                HistogramOpts::new(
                    "sigillo_hsm_job_duration_seconds",
                    "HSM job latency by operation",
                )
                .buckets(LATENCY.to_vec()),
                &["op"],
            )?,
            busy_workers: IntGauge::new("sigillo_hsm_busy_workers", "HSM workers running a job")?,
        };
        let signatures = IntCounterVec::new(
            Opts::new(
                "sigillo_signatures_total",
                "Signatures returned, by algorithm",
            ),
            &["algo"],
        )?;
        let sign_hash_duration = Histogram::with_opts(
            HistogramOpts::new(
                "sigillo_sign_hash_duration_seconds",
                "signHash latency (domain)",
            )
            .buckets(LATENCY.to_vec()),
        )?;
        let sign_hash_batch = Histogram::with_opts(
            HistogramOpts::new("sigillo_sign_hash_batch_size", "Hashes per signHash").buckets(
                vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0],
            ),
        )?;
        let redis_duration = HistogramVec::new(
            HistogramOpts::new(
                "sigillo_redis_duration_seconds",
                "Redis round trips by operation",
            )
            .buckets(LATENCY.to_vec()),
            &["op"],
        )?;
        let audit_commit_duration = Histogram::with_opts(
            HistogramOpts::new(
                "sigillo_audit_commit_duration_seconds",
                "Audit group commit latency",
            )
            .buckets(LATENCY.to_vec()),
        )?;
        let audit_commit_rows = Histogram::with_opts(
            HistogramOpts::new("sigillo_audit_commit_rows", "Rows per audit group commit").buckets(
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0],
            ),
        )?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(hsm_queue_depth.clone()))?;
        registry.register(Box::new(hsm_workers.clone()))?;
        registry.register(Box::new(hsm_cached_handles.clone()))?;
        registry.register(Box::new(hsm.job_duration.clone()))?;
        registry.register(Box::new(hsm.busy_workers.clone()))?;
        registry.register(Box::new(signatures.clone()))?;
        registry.register(Box::new(sign_hash_duration.clone()))?;
        registry.register(Box::new(sign_hash_batch.clone()))?;
        registry.register(Box::new(redis_duration.clone()))?;
        registry.register(Box::new(audit_commit_duration.clone()))?;
        registry.register(Box::new(audit_commit_rows.clone()))?;
        let mail_sent =
            IntCounter::new("sigillo_mail_sent_total", "Mails the SMTP server accepted")?;
        let mail_send_errors = IntCounter::new(
            "sigillo_mail_send_errors_total",
            "Failed attempts to send a mail (each is retried until max_attempts)",
        )?;
        let mail_failed = IntCounter::new(
            "sigillo_mail_failed_total",
            "Mails given up after max_attempts (or unsendable): marked failed",
        )?;
        registry.register(Box::new(mail_sent.clone()))?;
        registry.register(Box::new(mail_send_errors.clone()))?;
        registry.register(Box::new(mail_failed.clone()))?;
        Ok(Metrics {
            registry,
            http_requests,
            http_duration,
            hsm_queue_depth,
            hsm_workers,
            hsm_cached_handles,
            hsm,
            signatures,
            sign_hash_duration,
            sign_hash_batch,
            redis_duration,
            audit_commit_duration,
            audit_commit_rows,
            mail_sent,
            mail_send_errors,
            mail_failed,
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
