//! What the rules stage reports: matches by outcome (fired, cooldown, rate_limited) and the size
//! of the rule set in effect. Labels never carry rule, user or stream ids.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::limits::Admission;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

struct Metrics {
    matches: Family<OutcomeLabel, Counter>,
    loaded: Gauge,
    reloads: Counter,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let m = Metrics {
        matches: Family::default(),
        loaded: Gauge::default(),
        reloads: Counter::default(),
    };
    ttlc_core::telemetry::register(|r| {
        r.register(
            "rule_matches",
            "Rule matches, by outcome (fired, cooldown, rate_limited)",
            m.matches.clone(),
        );
        r.register("rules_loaded", "Enabled rules in effect in the rules stage", m.loaded.clone());
        r.register("rule_reloads", "Successful rule set reloads", m.reloads.clone());
    });
    m
});

/// A rule matched an event; `admission` says whether it fired.
pub(crate) fn rule_matched(admission: Admission) {
    let outcome = match admission {
        Admission::Allowed => "fired",
        Admission::Cooldown => "cooldown",
        Admission::RateLimited => "rate_limited",
    };
    METRICS.matches.get_or_create(&OutcomeLabel { outcome }).inc();
}

/// A new rule set is in effect.
pub(crate) fn rules_reloaded(enabled: usize) {
    METRICS.loaded.set(i64::try_from(enabled).unwrap_or(i64::MAX));
    METRICS.reloads.inc();
}
