//! The API's own Prometheus metrics, registered in the process registry that `/metrics` encodes.
//!
//! Labels are the method and status class only: paths carry stream, session and user ids, which
//! would explode cardinality and leak identifiers (STYLE: no ids in labels).

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeedLabels {
    kind: &'static str,
}

struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    seconds: Family<RequestLabels, Histogram>,
    live_open: Family<FeedLabels, Gauge>,
    live_dropped: Counter,
    rate_limited: Counter,
}

static METRICS: LazyLock<HttpMetrics> = LazyLock::new(|| {
    let m = HttpMetrics {
        requests: Family::default(),
        seconds: Family::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 4.0, 10))
        }),
        live_open: Family::default(),
        live_dropped: Counter::default(),
        rate_limited: Counter::default(),
    };
    ttlc_core::telemetry::register(|r| {
        r.register("http_requests", "HTTP requests by method and status class", m.requests.clone());
        r.register(
            "http_request_seconds",
            "Time to the response head (live feeds: to the start of the stream)",
            m.seconds.clone(),
        );
        r.register("live_connections", "Open SSE and WebSocket feeds", m.live_open.clone());
        r.register(
            "live_slow_clients_dropped",
            "Live clients dropped for falling behind",
            m.live_dropped.clone(),
        );
        r.register("http_rate_limited", "Requests refused by a rate limit", m.rate_limited.clone());
    });
    m
});

/// Makes the families appear in `/metrics` before the first request.
pub(crate) fn init() {
    LazyLock::force(&METRICS);
}

pub(crate) fn request(method: &str, status: u16, seconds: f64) {
    let labels = RequestLabels { method: method.to_owned(), status: format!("{}xx", status / 100) };
    METRICS.requests.get_or_create(&labels).inc();
    METRICS.seconds.get_or_create(&labels).observe(seconds);
}

pub(crate) fn live_dropped() {
    METRICS.live_dropped.inc();
}

pub(crate) fn rate_limited() {
    METRICS.rate_limited.inc();
}

/// Counts one open live connection of `kind` (`sse`, `ws`) until dropped.
#[derive(Debug)]
pub(crate) struct LiveGauge(&'static str);

impl LiveGauge {
    pub(crate) fn open(kind: &'static str) -> Self {
        METRICS.live_open.get_or_create(&FeedLabels { kind }).inc();
        LiveGauge(kind)
    }
}

impl Drop for LiveGauge {
    fn drop(&mut self) {
        METRICS.live_open.get_or_create(&FeedLabels { kind: self.0 }).dec();
    }
}
