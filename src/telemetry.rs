//! Structured logs with `tracing`. Nothing logged may contain a full ID number: code logs
//! `IdNumber::masked()` or person keys only (IdNumber's Debug is masked too).
//!
//! Every line logged while a gRPC request is handled carries the fields of its `request` span
//! (`request_id`, `agency`, `service`, `method`; made by [`crate::grpc::observe`]): in human output as the
//! `request{…}:` prefix, in JSON (`--log-json`) as the `span` object (and `spans`, the list of open spans).

use tracing_subscriber::EnvFilter;

/// Install the global subscriber: `RUST_LOG` filter (default `default_filter`, e.g.
/// `"info,sqlx=warn"`), human or JSON lines. Safe to call more than once (later calls do nothing).
pub fn init(json: bool, default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
