//! The rule model: what the API reads and writes and the rules stage evaluates.
//!
//! JSON field names are camelCase like every other ttlc contract. [`RuleInput`] is what a client
//! sends on create and update; [`Rule`] adds what the store owns (id and timestamps). Settings the
//! `rules` table has no column for (per-rule rate limit, the gift streak opt-in) live in `meta`,
//! which is a JSONB column, so they need no schema change.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use ttlc_schemas::{ActionType, EventType};

/// A stored rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// Assigned by the store (a UUID).
    pub id: String,
    #[serde(flatten)]
    pub spec: RuleInput,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The writable part of a rule: the body of `POST /rules` and `PUT /rules/:id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleInput {
    /// The stream (room id) the rule applies to; `null` makes it global (every stream).
    #[serde(default)]
    pub stream_id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The one event type the rule reacts to.
    pub event_type: EventType,
    /// JSON Logic over the UnifiedEvent JSON (e.g. `{">=": [{"var": "payload.coins"}, 100]}`);
    /// `true` matches every event of `eventType`.
    #[serde(default = "always")]
    pub condition: Value,
    pub action: RuleAction,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Higher runs first.
    #[serde(default)]
    pub priority: i32,
    #[serde(default)]
    pub meta: RuleMeta,
    /// Debounce per rule and user, in seconds: after firing for a user, the rule ignores that
    /// user's events for this long (event time). 0 (default) disables it.
    #[serde(default)]
    pub cooldown: u64,
    /// Who created the rule (the API sets it from the token's `sub`).
    #[serde(default)]
    pub created_by: Option<String>,
}

/// What a matching rule asks the executor to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleAction {
    #[serde(rename = "type")]
    pub action_type: ActionType,
    /// Text with `{token}` placeholders from [`crate::TEMPLATE_TOKENS`]; `{{` and `}}` are
    /// literal braces.
    #[serde(default)]
    pub template: String,
    /// Per-type parameters, checked on write (see [`crate::validate`]).
    #[serde(default)]
    pub params: Map<String, Value>,
}

/// Flags and limits stored in the `meta` JSONB column.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleMeta {
    /// Ignore events from replayed sessions (`source = replay`).
    #[serde(default)]
    pub skip_replay: bool,
    /// GIFT rules only: also fire on intermediate streak frames. Off by default, so a streak of
    /// 30 roses fires once, on its final frame, with the streak's total.
    #[serde(default)]
    pub count_streak_frames: bool,
    /// At most `max` actions per `perSeconds` for the whole rule (all users and, for a global
    /// rule, all streams); matches beyond it are dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}

/// A per-rule rate limit (a token bucket in event time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    pub max: u32,
    pub per_seconds: u32,
}

fn always() -> Value {
    Value::Bool(true)
}

fn yes() -> bool {
    true
}
