//! ActionRequest: what the rules stage asks the executor to do, one per rule match, on `actions`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The kinds of action a rule can trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionType {
    Announce,
    Moderate,
    Webhook,
    Overlay,
    Log,
}

impl ActionType {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionType::Announce => "announce",
            ActionType::Moderate => "moderate",
            ActionType::Webhook => "webhook",
            ActionType::Overlay => "overlay",
            ActionType::Log => "log",
        }
    }
}

/// One action to perform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionRequest {
    /// Lowercase hex SHA-256 of `ruleId:eventId`: the executor's idempotency key.
    pub action_id: String,
    pub rule_id: String,
    pub event_id: String,
    pub stream_id: String,
    pub session_id: String,
    #[serde(rename = "type")]
    pub action_type: ActionType,
    pub rendered_template: String,
    /// Action parameters (webhook url, overlay style, moderation kind, …), checked when the rule is
    /// written.
    #[serde(default)]
    pub params: Map<String, Value>,
    /// 1 for the first attempt.
    pub attempt: i32,
    #[serde(with = "crate::time")]
    pub created_at: DateTime<Utc>,
}
