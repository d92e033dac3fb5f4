//! Structured logs: JSON lines on stderr (stdout stays free for command output), filtered by `RUST_LOG` (default `info`). Request
//! spans carry a request id; nothing logs request bodies, PINs, PUKs, OTPs or tokens.

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
