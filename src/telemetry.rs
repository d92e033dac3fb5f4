//! Structured logs: JSON lines on stderr (stdout stays free for command output), filtered by `RUST_LOG` (default `info`). Request
//! spans carry a request id; nothing logs request bodies, PINs, PUKs, OTPs or tokens.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once; later calls are no-ops).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The request span: method, path and request id, what an operator searches for. Every event
/// logged while a request is served carries them (errors are logged where they happen, with
/// their cause). tracing-actix-web's default span carries a dozen OpenTelemetry fields, and
/// formatting them cost ~20 µs of every signHash at the default `info` level; recording the
/// status at the end cost ~3 µs more (the JSON formatter re-parses the span's fields to add
/// one) for a field no event ever carried: the status is in `sigillo_http_requests_total`.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let id = request.extensions().get::<RequestId>().copied();
        tracing::info_span!(
            "request",
            method = %request.method(),
            path = request.path(),
            request_id = id.map(tracing::field::display),
        )
    }

    fn on_request_end<B: MessageBody>(_: Span, _: &Result<ServiceResponse<B>, Error>) {}
}
