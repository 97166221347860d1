//! Logging setup and the process-wide Prometheus registry.
//!
//! Telemetry events are small structs (after Vector's `internal_events`): one `emit` both logs and
//! counts, so the two never drift apart. Metric labels are stage names, topics and reason
//! categories only — never user or room ids, which would explode cardinality and leak PII.

mod stage_events;

use std::sync::LazyLock;

use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

pub use stage_events::*;

static REGISTRY: LazyLock<Mutex<Registry>> =
    LazyLock::new(|| Mutex::new(Registry::with_prefix("ttlc")));

/// Registers metrics with the process registry. Call once per metric family (e.g. from a
/// `LazyLock`), never per request.
pub fn register(f: impl FnOnce(&mut Registry)) {
    f(&mut REGISTRY.lock());
}

/// The registry in Prometheus text format, for `/metrics`.
pub fn encode() -> String {
    // Touch the stage metrics so their families appear even before the first batch.
    LazyLock::force(&stage_events::STAGE_METRICS);
    let mut out = String::new();
    if let Err(error) = prometheus_client::encoding::text::encode(&mut out, &REGISTRY.lock()) {
        tracing::error!(%error, "Could not encode metrics.");
    }
    out
}

/// Installs the global tracing subscriber. `RUST_LOG` overrides the configured level.
pub fn init_logging(config: &LogConfig) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (tests, `ttlc all`) is harmless: the first subscriber stays.
    let _ = if config.format == "pretty" {
        builder.try_init()
    } else {
        builder.json().flatten_event(true).try_init()
    };
}
