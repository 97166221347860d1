//! What the executor reports: one event per performed action that logs nothing by itself (the
//! stage logs failures with context) and counts by action type and status. Labels never carry
//! rule, user or stream ids.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    action_type: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    action_type: &'static str,
}

struct Metrics {
    actions: Family<OutcomeLabel, Counter>,
    attempts: Family<TypeLabel, Counter>,
    seconds: Family<TypeLabel, Histogram, fn() -> Histogram>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let m = Metrics {
        actions: Family::default(),
        attempts: Family::default(),
        seconds: Family::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 4.0, 10))
        }),
    };
    ttlc_core::telemetry::register(|r| {
        r.register(
            "actions",
            "Actions performed, by type and outcome (success, failed, skipped)",
            m.actions.clone(),
        );
        r.register(
            "action_attempts",
            "Attempts made, retries included, by action type",
            m.attempts.clone(),
        );
        r.register(
            "action_seconds",
            "Time to perform an action, retries included",
            m.seconds.clone(),
        );
    });
    m
});

/// One action finished (success, failed or skipped).
#[derive(Debug)]
pub(crate) struct ActionFinished {
    pub(crate) action_type: &'static str,
    pub(crate) status: &'static str,
    pub(crate) attempts: u32,
    pub(crate) elapsed: Duration,
}

impl ActionFinished {
    pub(crate) fn emit(&self) {
        let m = &*METRICS;
        m.actions
            .get_or_create(&OutcomeLabel { action_type: self.action_type, status: self.status })
            .inc();
        let label = TypeLabel { action_type: self.action_type };
        m.attempts.get_or_create(&label).inc_by(u64::from(self.attempts));
        m.seconds.get_or_create(&label).observe(self.elapsed.as_secs_f64());
    }
}
