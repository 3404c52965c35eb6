//! Log setup: `tracing` to stdout, as text or JSON lines, filtered by `RUST_LOG`
//! (default `info`).
//!
//! Spans carry the peer, account and subprotocol of each session and the name of each
//! room. Nothing in the server logs request targets or header values, so tokens never
//! reach the logs whatever the level.

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Installs the global subscriber. Safe to call once per process.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
