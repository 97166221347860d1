//! Dry runs for `POST /rules/test`: does this rule match this event, and what would it say?
//! Pure: nothing is stored, nothing is sent.

use chrono::Utc;
use serde::Serialize;
use serde_json::Value;
use ttlc_schemas::UnifiedEvent;

use crate::engine::{compile, evaluate};
use crate::model::{Rule, RuleInput};
use crate::validate::{ValidationOptions, validate_with};

/// The answer to a dry run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleTestResult {
    /// The rule applies to the event (type, stream, replay, streak checks) and its condition
    /// holds. Cooldown and rate limit are not applied: they depend on history.
    pub matched: bool,
    /// The action text for this event, whether or not it matched; `None` when the rule or the
    /// event is invalid.
    pub rendered_template: Option<String>,
    /// Validation problems of the rule, or why the event is not a UnifiedEvent.
    pub errors: Vec<String>,
}

/// Validates `rule`, parses `event` as a UnifiedEvent v1 and evaluates one against the other.
pub fn test_rule(rule: &RuleInput, event: &Value, options: &ValidationOptions) -> RuleTestResult {
    let fail =
        |errors: Vec<String>| RuleTestResult { matched: false, rendered_template: None, errors };
    if let Err(problems) = validate_with(rule, options) {
        return fail(problems.iter().map(ToString::to_string).collect());
    }
    let event: UnifiedEvent = match serde_json::from_value(event.clone()) {
        Ok(e) => e,
        Err(e) => return fail(vec![format!("event: not a valid UnifiedEvent v1: {e}")]),
    };
    let now = Utc::now();
    let rule = Rule { id: "test".into(), spec: rule.clone(), created_at: now, updated_at: now };
    match compile(rule, options) {
        Ok(compiled) => RuleTestResult {
            matched: evaluate(&compiled, &event),
            rendered_template: Some(compiled.render(&event)),
            errors: Vec::new(),
        },
        Err(e) => fail(vec![e.to_string()]),
    }
}
