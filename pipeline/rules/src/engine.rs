//! Compile once, evaluate many: rules turned into [`CompiledRule`]s and grouped into a
//! [`RuleSet`] the rules stage asks "which rules match this event?".
//!
//! The hot path converts each event to the engine's arena value once and evaluates every
//! candidate rule's precompiled JSON Logic against it; candidates are pre-filtered by event type
//! (a hash lookup) and by the cheap checks (stream, replay, gift streak frames) before any JSON
//! Logic runs. Conditions only ever see the UnifiedEvent's own JSON.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use datalogic_rs::bumpalo::Bump;
use datalogic_rs::{DataValue, Engine, EvalInput, Logic};
use serde_json::Value;
use sha2::{Digest, Sha256};
use ttlc_schemas::{EventType, Source, UnifiedEvent};

use crate::model::Rule;
use crate::template::Template;
use crate::validate::{RuleProblem, ValidationOptions, validate_with};

/// One engine for the process: it holds configuration only (no per-rule state) and is
/// thread-safe, so compiled rules are shared freely.
static ENGINE: LazyLock<Engine> = LazyLock::new(Engine::new);

/// Why a rule cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("rule {id} is invalid: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid { id: String, problems: Vec<RuleProblem> },
    #[error("JSON Logic: {0}")]
    Logic(String),
}

/// Compiles a condition with the shared engine (validation calls this to confirm a condition
/// that passed the allowlist also has valid arities and argument shapes).
pub(crate) fn compile_condition(condition: &Value) -> Result<Logic, CompileError> {
    ENGINE.compile(condition).map_err(|e| CompileError::Logic(e.to_string()))
}

/// A validated rule with its condition compiled and its template parsed.
#[derive(Debug)]
pub struct CompiledRule {
    pub rule: Rule,
    logic: Logic,
    template: Template,
    /// `condition` is the literal `true`: skip the engine.
    always: bool,
}

/// Validates and compiles `rule`.
pub fn compile(rule: Rule, options: &ValidationOptions) -> Result<CompiledRule, CompileError> {
    validate_with(&rule.spec, options)
        .map_err(|problems| CompileError::Invalid { id: rule.id.clone(), problems })?;
    let logic = compile_condition(&rule.spec.condition)?;
    let template = Template::parse(&rule.spec.action.template)
        .map_err(|e| CompileError::Logic(format!("template: {e}")))?;
    let always = rule.spec.condition == Value::Bool(true);
    Ok(CompiledRule { rule, logic, template, always })
}

impl CompiledRule {
    /// The checks that need no JSON Logic: enabled, event type, stream scope, replay, and gift
    /// streak frames (only final frames count unless the rule opts in).
    pub fn applies_to(&self, event: &UnifiedEvent) -> bool {
        let spec = &self.rule.spec;
        spec.enabled
            && spec.event_type == event.event_type
            && spec.stream_id.as_deref().is_none_or(|s| s == event.stream_id)
            && !(spec.meta.skip_replay && event.source == Source::Replay)
            && (event.event_type != EventType::Gift
                || spec.meta.count_streak_frames
                || event.is_final_gift_frame())
    }

    /// The condition over an event already converted to the engine's value. An evaluation error
    /// (e.g. arithmetic on a missing field) counts as "no match".
    pub fn condition_holds<'a>(&'a self, data: &'a DataValue<'a>, arena: &'a Bump) -> bool {
        self.always
            || ENGINE.evaluate(&self.logic, data, arena).map(|v| ENGINE.truthy(v)).unwrap_or(false)
    }

    /// The action text for `event`.
    pub fn render(&self, event: &UnifiedEvent) -> String {
        self.template.render(event)
    }
}

/// True when `rule` applies to `event` and its condition holds.
pub fn evaluate(rule: &CompiledRule, event: &UnifiedEvent) -> bool {
    if !rule.applies_to(event) {
        return false;
    }
    match serde_json::to_value(event) {
        Ok(json) => evaluate_json(rule, &json),
        Err(_) => false,
    }
}

/// The condition alone over any JSON document (e.g. an event pasted into `POST /rules/test`).
pub fn evaluate_json(rule: &CompiledRule, event: &Value) -> bool {
    let arena = Bump::new();
    match event.into_arena_value(&arena) {
        Ok(data) => rule.condition_holds(data, &arena),
        Err(_) => false,
    }
}

/// The executor's idempotency key: lowercase hex SHA-256 of `ruleId:eventId`. The same rule and
/// event always give the same id, so a re-delivered event never becomes a second action.
pub fn action_id(rule_id: &str, event_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(rule_id.as_bytes());
    h.update(b":");
    h.update(event_id.as_bytes());
    hex::encode(h.finalize())
}

/// The enabled rules, grouped by event type and ordered by priority (higher first, then id so
/// the order is stable).
#[derive(Debug, Default)]
pub struct RuleSet {
    by_type: HashMap<EventType, Vec<Arc<CompiledRule>>>,
    len: usize,
}

impl RuleSet {
    /// Builds a set from compiled rules; disabled rules are left out.
    pub fn new(rules: impl IntoIterator<Item = CompiledRule>) -> Self {
        let mut by_type: HashMap<EventType, Vec<Arc<CompiledRule>>> = HashMap::new();
        let mut len = 0;
        for rule in rules.into_iter().filter(|r| r.rule.spec.enabled) {
            len += 1;
            by_type.entry(rule.rule.spec.event_type).or_default().push(Arc::new(rule));
        }
        for list in by_type.values_mut() {
            list.sort_by(|a, b| {
                b.rule
                    .spec
                    .priority
                    .cmp(&a.rule.spec.priority)
                    .then_with(|| a.rule.id.cmp(&b.rule.id))
            });
        }
        RuleSet { by_type, len }
    }

    /// How many enabled rules the set holds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The ids of the rules in the set.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.by_type.values().flatten().map(|r| r.rule.id.as_str())
    }

    /// The rules whose checks and condition match `event`, by priority. `arena` is scratch space
    /// reused across calls (it is reset here), so steady-state evaluation does not allocate.
    pub fn matching(&self, event: &UnifiedEvent, arena: &mut Bump) -> Vec<Arc<CompiledRule>> {
        let Some(candidates) = self.by_type.get(&event.event_type) else { return Vec::new() };
        let mut applicable = candidates.iter().filter(|r| r.applies_to(event)).peekable();
        if applicable.peek().is_none() {
            return Vec::new();
        }
        let Ok(json) = serde_json::to_value(event) else { return Vec::new() };
        arena.reset();
        let arena: &Bump = arena;
        let Ok(data) = (&json).into_arena_value(arena) else { return Vec::new() };
        applicable.filter(|r| r.condition_holds(data, arena)).cloned().collect()
    }

    /// Evaluates the candidates of an event already converted to JSON, returning how many
    /// matched; for benchmarks and diagnostics (no stream or streak checks).
    pub fn count_matches_json(
        &self,
        event_type: EventType,
        json: &Value,
        arena: &mut Bump,
    ) -> usize {
        let Some(candidates) = self.by_type.get(&event_type) else { return 0 };
        arena.reset();
        let arena: &Bump = arena;
        let Ok(data) = json.into_arena_value(arena) else { return 0 };
        candidates.iter().filter(|r| r.condition_holds(data, arena)).count()
    }
}
