//! The `rules` stage: `unified` → `actions`.
//!
//! For each UnifiedEvent, the enabled rules for its stream plus the global ones are evaluated by
//! priority; each match that passes its cooldown and rate limit becomes one ActionRequest (Avro),
//! keyed by streamId so a stream's actions stay in order. The actionId is a hash of rule and
//! event ids, so re-processing an event after a crash yields the same actionIds and the executor
//! performs each only once. The stage is a pure transform (no database writes): the runner
//! produces its outputs and commits the input offsets after the broker acknowledged them.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Utc;
use datalogic_rs::bumpalo::Bump;
use serde_json::Value;
use tokio::sync::watch;
use ttlc_core::kafka::headers;
use ttlc_core::{Disposition, InputRecord, Output, Rejection, Stage, StageError};
use ttlc_schemas::{
    ACTION_SCHEMA, ActionRequest, ActionType, CONTENT_TYPE_AVRO, UnifiedEvent, decode_unified,
    encode_action,
};
use ttlc_topics::Topic;

use crate::engine::{CompiledRule, RuleSet, action_id};
use crate::limits::{Admission, Limiter};

/// The `rules` stage.
pub struct RulesStage {
    rules: watch::Receiver<Option<Arc<RuleSet>>>,
    /// The set the limiter state was last pruned for.
    current: Option<Arc<RuleSet>>,
    limiter: Limiter,
    arena: Bump,
}

impl std::fmt::Debug for RulesStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RulesStage")
            .field("rules", &self.current.as_ref().map(|s| s.len()))
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl RulesStage {
    /// A stage reading its rule set from `rules` (see [`crate::spawn_reloader`]).
    pub fn new(rules: watch::Receiver<Option<Arc<RuleSet>>>, max_cooldown_entries: usize) -> Self {
        RulesStage {
            rules,
            current: None,
            limiter: Limiter::new(max_cooldown_entries),
            arena: Bump::new(),
        }
    }

    /// Picks up the newest rule set; prunes limiter state of rules that are gone.
    fn refresh(&mut self) -> Option<Arc<RuleSet>> {
        let latest = self.rules.borrow_and_update().clone()?;
        if !self.current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &latest)) {
            let ids: HashSet<&str> = latest.ids().collect();
            self.limiter.retain_rules(&ids);
            self.current = Some(latest.clone());
        }
        Some(latest)
    }

    fn process(&mut self, set: &RuleSet, record: &InputRecord) -> Disposition {
        let Some(payload) = record.payload.as_deref() else {
            return Disposition::Reject(Rejection::new(
                "missing_payload",
                "the record has no value",
            ));
        };
        let event = match decode_unified(payload) {
            Ok(event) => event,
            Err(e) => return Disposition::Reject(Rejection::new("invalid_avro", e.to_string())),
        };
        let now_ms = event.timestamp.timestamp_millis();
        let mut outputs = Vec::new();
        for rule in set.matching(&event, &mut self.arena) {
            let admission = self.limiter.admit(&rule.rule, &event.user.user_id, now_ms);
            crate::telemetry::rule_matched(admission);
            match admission {
                Admission::Allowed => {}
                skipped => {
                    tracing::debug!(rule_id = %rule.rule.id, event_id = %event.event_id, ?skipped, "Match throttled.");
                    continue;
                }
            }
            let request = action_request(&rule, &event);
            match encode_action(&request) {
                Ok(bytes) => outputs.push(Output {
                    topic: Topic::Actions,
                    key: event.stream_id.clone().into_bytes(),
                    payload: bytes,
                    headers: vec![
                        (headers::CONTENT_TYPE.to_owned(), CONTENT_TYPE_AVRO.as_bytes().to_vec()),
                        (headers::SCHEMA.to_owned(), ACTION_SCHEMA.as_bytes().to_vec()),
                        (headers::SCHEMA_VERSION.to_owned(), b"1".to_vec()),
                        (headers::TRACE_ID.to_owned(), event.event_id.clone().into_bytes()),
                    ],
                }),
                Err(e) => {
                    // Cannot happen for a well-formed request; reject rather than drop silently.
                    let mut r = Rejection::new("encode_failed", e.to_string());
                    r.event_id = Some(event.event_id.clone());
                    r.session_id = Some(event.session_id.clone());
                    return Disposition::Reject(r);
                }
            }
        }
        Disposition::Emit(outputs)
    }
}

/// The ActionRequest for `rule` matching `event`. Moderation needs to know whom to act on, which
/// only the event knows: its user goes into the params.
pub fn action_request(rule: &CompiledRule, event: &UnifiedEvent) -> ActionRequest {
    let spec = &rule.rule.spec;
    let mut params = spec.action.params.clone();
    if spec.action.action_type == ActionType::Moderate {
        params.insert("targetUserId".into(), Value::String(event.user.user_id.clone()));
        params.insert("targetUniqueId".into(), Value::String(event.user.unique_id.clone()));
    }
    ActionRequest {
        action_id: action_id(&rule.rule.id, &event.event_id),
        rule_id: rule.rule.id.clone(),
        event_id: event.event_id.clone(),
        stream_id: event.stream_id.clone(),
        session_id: event.session_id.clone(),
        action_type: spec.action.action_type,
        rendered_template: rule.render(event),
        params,
        attempt: 1,
        created_at: Utc::now(),
    }
}

impl Stage for RulesStage {
    fn name(&self) -> &'static str {
        "rules"
    }

    fn inputs(&self) -> Vec<Topic> {
        vec![Topic::Unified]
    }

    async fn handle(&mut self, batch: &[InputRecord]) -> Result<Vec<Disposition>, StageError> {
        // Until the first load, evaluating would silently drop every match: wait instead (the
        // runner retries the batch with backoff).
        let Some(set) = self.refresh() else {
            return Err(StageError::retryable(
                "rules are not loaded yet",
                "waiting for PostgreSQL",
            ));
        };
        Ok(batch.iter().map(|r| self.process(&set, r)).collect())
    }
}
