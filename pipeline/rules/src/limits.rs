//! Per-(rule, user) cooldowns and per-rule rate limits, in memory and bounded.
//!
//! Both run on event time (the UnifiedEvent's `timestamp`), not wall-clock time: a stage that
//! catches up on a backlog after an outage then throttles exactly as it would have live, instead
//! of seeing an hour of events arrive "at once" and dropping nearly all of them.
//!
//! The state is per process and lost on restart, and each rules instance only sees the
//! partitions it owns. Both are acceptable for a debounce: at worst an action fires once more
//! after a restart or rebalance. Exact global limits would need shared state for every event,
//! which would cost far more than it saves.

use std::collections::HashMap;

use crate::model::Rule;

/// What the limiter decided for one match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// The same rule fired for this user less than `cooldown` seconds ago.
    Cooldown,
    /// The rule used up its rate limit.
    RateLimited,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last_ms: i64,
}

/// Cooldown and rate-limit state.
#[derive(Debug)]
pub struct Limiter {
    /// (rule id, user id) → event time (ms) until which the rule ignores the user.
    cooldowns: HashMap<(String, String), i64>,
    max_cooldowns: usize,
    buckets: HashMap<String, Bucket>,
}

impl Limiter {
    /// `max_cooldowns` bounds the cooldown map (see `rules.max_cooldown_entries`).
    pub fn new(max_cooldowns: usize) -> Self {
        Limiter {
            cooldowns: HashMap::new(),
            max_cooldowns: max_cooldowns.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Decides whether `rule` may fire for `user_id` at event time `now_ms`, and records the
    /// firing when it may.
    pub fn admit(&mut self, rule: &Rule, user_id: &str, now_ms: i64) -> Admission {
        let spec = &rule.spec;
        let key = (rule.id.clone(), user_id.to_owned());
        if spec.cooldown > 0 && self.cooldowns.get(&key).is_some_and(|until| now_ms < *until) {
            return Admission::Cooldown;
        }
        if let Some(limit) = spec.meta.rate_limit {
            let capacity = f64::from(limit.max.max(1));
            let per_ms = capacity / (f64::from(limit.per_seconds.max(1)) * 1_000.0);
            let bucket = self
                .buckets
                .entry(rule.id.clone())
                .or_insert(Bucket { tokens: capacity, last_ms: now_ms });
            // Events of different streams are not ordered with each other: time never runs
            // backwards for the bucket, it just does not refill.
            let elapsed = (now_ms - bucket.last_ms).max(0);
            bucket.tokens = (bucket.tokens + elapsed as f64 * per_ms).min(capacity);
            bucket.last_ms = bucket.last_ms.max(now_ms);
            if bucket.tokens < 1.0 {
                return Admission::RateLimited;
            }
            bucket.tokens -= 1.0;
        }
        if spec.cooldown > 0 {
            let until = now_ms
                .saturating_add(i64::try_from(spec.cooldown).unwrap_or(i64::MAX / 2_000) * 1_000);
            if self.cooldowns.len() >= self.max_cooldowns && !self.cooldowns.contains_key(&key) {
                self.make_room(now_ms);
            }
            self.cooldowns.insert(key, until);
        }
        Admission::Allowed
    }

    /// Forgets state of rules that no longer exist (called after a reload).
    pub fn retain_rules(&mut self, live: &std::collections::HashSet<&str>) {
        self.cooldowns.retain(|(rule, _), _| live.contains(rule.as_str()));
        self.buckets.retain(|rule, _| live.contains(rule.as_str()));
    }

    /// How many cooldown entries are held.
    pub fn cooldown_entries(&self) -> usize {
        self.cooldowns.len()
    }

    /// Drops expired cooldowns; if the map is still full, drops the tenth that expires soonest
    /// (those are the least costly to forget), so eviction work is amortized.
    fn make_room(&mut self, now_ms: i64) {
        self.cooldowns.retain(|_, until| *until > now_ms);
        if self.cooldowns.len() < self.max_cooldowns {
            return;
        }
        let mut ends: Vec<i64> = self.cooldowns.values().copied().collect();
        let cut = (ends.len() / 10).max(1).min(ends.len() - 1);
        let (_, threshold, _) = ends.select_nth_unstable(cut);
        let threshold = *threshold;
        self.cooldowns.retain(|_, until| *until > threshold);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{RateLimit, RuleAction, RuleInput, RuleMeta};

    fn rule(cooldown: u64, rate: Option<RateLimit>) -> Rule {
        Rule {
            id: "r1".into(),
            spec: RuleInput {
                stream_id: None,
                name: "t".into(),
                description: None,
                event_type: ttlc_schemas::EventType::Chat,
                condition: serde_json::Value::Bool(true),
                action: RuleAction {
                    action_type: ttlc_schemas::ActionType::Log,
                    template: String::new(),
                    params: Default::default(),
                },
                enabled: true,
                priority: 0,
                meta: RuleMeta { rate_limit: rate, ..RuleMeta::default() },
                cooldown,
                created_by: None,
            },
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn cooldown_is_per_user_and_expires() {
        let mut l = Limiter::new(100);
        let r = rule(10, None);
        assert_eq!(l.admit(&r, "a", 0), Admission::Allowed);
        assert_eq!(l.admit(&r, "a", 9_999), Admission::Cooldown);
        assert_eq!(l.admit(&r, "b", 9_999), Admission::Allowed);
        assert_eq!(l.admit(&r, "a", 10_000), Admission::Allowed);
    }

    #[test]
    fn rate_limit_refills_over_event_time() {
        let mut l = Limiter::new(100);
        let r = rule(0, Some(RateLimit { max: 2, per_seconds: 10 }));
        assert_eq!(l.admit(&r, "a", 0), Admission::Allowed);
        assert_eq!(l.admit(&r, "b", 1), Admission::Allowed);
        assert_eq!(l.admit(&r, "c", 2), Admission::RateLimited);
        assert_eq!(l.admit(&r, "c", 5_002), Admission::Allowed, "one token back after 5 s");
        assert_eq!(l.admit(&r, "d", 5_003), Admission::RateLimited);
    }

    #[test]
    fn cooldown_map_stays_bounded() {
        let mut l = Limiter::new(50);
        let r = rule(3_600, None);
        for i in 0..1_000 {
            assert_eq!(l.admit(&r, &format!("u{i}"), i), Admission::Allowed);
            assert!(l.cooldown_entries() <= 50);
        }
        // The most recent users are still cooling down.
        assert_eq!(l.admit(&r, "u999", 1_000), Admission::Cooldown);
    }
}
