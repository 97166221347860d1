//! `/rules` CRUD and `POST /rules/test`, through the rules crate's [`ttlc_rules::RuleStore`] (which
//! validates every write) and [`ttlc_rules::test_rule`] (the dry run).
//!
//! Reads need MODERATOR, writes STREAMER, both on the rule's stream; global rules (`streamId`
//! null) are readable by every stream's moderators and writable by operators only. The bodies
//! below mirror the rules crate's `RuleInput`/`Rule` for the OpenAPI document and are converted
//! through their JSON form, so the rules crate stays the one definition of what a rule is.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ttlc_rules::{Rule, RuleInput, RuleStore, StoreError};

use super::Tag;
use crate::auth::{Auth, Claims, Role};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

#[derive(Debug)]
pub(crate) struct RulesApi;

/// What a matching rule does.
#[derive(Debug, Clone, Object, Serialize, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
struct RuleActionBody {
    /// announce, moderate, webhook, overlay or log.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    action_type: String,
    /// Text with `{token}` placeholders ({userId} {username} {displayName} {giftName} …).
    #[serde(skip_serializing_if = "Option::is_none")]
    template: Option<String>,
    /// Per-type parameters (webhook url, overlay style, moderation kind, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<Value>,
}

/// A rule as written by clients (`POST /rules`, `PUT /rules/{id}`).
#[derive(Debug, Clone, Object, Serialize, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
struct RuleBody {
    /// The stream the rule applies to. Omitted or null: the caller's stream; for operators, a
    /// global rule (every stream).
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_id: Option<String>,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    /// The event type the rule reacts to (CHAT, GIFT, …).
    event_type: String,
    /// JSON Logic over the UnifiedEvent; default `true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    condition: Option<Value>,
    action: RuleActionBody,
    #[serde(skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
    /// Higher runs first.
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<i32>,
    /// `{skipReplay, countStreakFrames, rateLimit: {max, perSeconds}}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<Value>,
    /// Debounce per rule and user, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    cooldown: Option<u64>,
}

/// A stored rule.
#[derive(Debug, Clone, Object, Serialize, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
struct RuleOut {
    id: String,
    stream_id: Option<String>,
    name: String,
    description: Option<String>,
    event_type: String,
    condition: Value,
    action: RuleActionBody,
    enabled: bool,
    priority: i32,
    meta: Value,
    cooldown: u64,
    created_by: Option<String>,
    created_at: String,
    updated_at: String,
}

/// A dry run: a stored rule (`ruleId`) or an inline one (`condition` + `action`), and an event.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
struct RuleTestBody {
    rule_id: Option<String>,
    /// Inline rule: JSON Logic condition (default `true`).
    condition: Option<Value>,
    /// Inline rule: the action (required without `ruleId`).
    action: Option<RuleActionBody>,
    /// Inline rule: the event type (default: the event's).
    event_type: Option<String>,
    /// A UnifiedEvent v1.
    event: Value,
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
struct RuleTestOut {
    matched: bool,
    rendered_template: Option<String>,
    errors: Vec<String>,
}

#[derive(ApiResponse)]
enum Created {
    #[oai(status = 201)]
    Created(Json<RuleOut>),
}

#[derive(ApiResponse)]
enum Deleted {
    #[oai(status = 204)]
    NoContent,
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound { id } => ApiError::NotFound(format!("no rule {id:?}")),
            invalid @ StoreError::Invalid(_) => ApiError::Invalid(invalid.to_string()),
            StoreError::Unavailable(e) => {
                tracing::warn!(error = %e, "The rule store is unavailable.");
                ApiError::Unavailable {
                    what: "PostgreSQL",
                    retry_after: crate::error::CONFIGURED_RETRY,
                }
            }
            StoreError::Database(e) => ApiError::Internal(e),
        }
    }
}

fn store(state: &AppState) -> ApiResult<&RuleStore> {
    state
        .rules
        .as_deref()
        .ok_or(ApiError::Unavailable { what: "the rule store", retry_after: state.retry_after() })
}

fn out(rule: Rule) -> ApiResult<RuleOut> {
    serde_json::to_value(&rule)
        .and_then(serde_json::from_value)
        .map_err(|e| ApiError::Internal(format!("rule {} does not serialize: {e}", rule.id)))
}

/// The rule input for `body`, its stream decided by the caller's scope.
fn input(claims: &Claims, body: RuleBody) -> ApiResult<RuleInput> {
    let stream = match (claims.scope(), body.stream_id.clone()) {
        (None, requested) => requested,
        (Some(own), None) => Some(own.to_owned()),
        (Some(own), Some(requested)) if requested != own => {
            return Err(ApiError::Forbidden("this token is scoped to another stream".into()));
        }
        (Some(own), Some(_)) => Some(own.to_owned()),
    };
    let mut json = serde_json::to_value(RuleBody { stream_id: None, ..body })
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    json["streamId"] = stream.map_or(Value::Null, Value::String);
    json["createdBy"] = Value::String(claims.sub.clone());
    serde_json::from_value(json).map_err(|e| ApiError::Invalid(format!("invalid rule: {e}")))
}

/// Checks `claims` may `min`-access a rule of `stream` (None = global: read by all, written by
/// operators).
fn allow(claims: &Claims, min: Role, stream: Option<&str>) -> ApiResult<()> {
    match stream {
        Some(s) => claims.require(min, s),
        None if min == Role::Moderator => claims.require_role(min),
        None => claims.require_operator(),
    }
}

#[OpenApi(tag = "Tag::Rules")]
impl RulesApi {
    /// Rules of the caller's stream plus the global ones (operators: all).
    #[oai(path = "/rules", method = "get")]
    async fn list(&self, state: Data<&Arc<AppState>>, auth: Auth) -> ApiResult<Json<Vec<RuleOut>>> {
        auth.0.require_role(Role::Moderator)?;
        let rules = store(&state)?.list(auth.0.scope()).await?;
        Ok(Json(rules.into_iter().map(out).collect::<ApiResult<Vec<_>>>()?))
    }

    /// One rule.
    #[oai(path = "/rules/:id", method = "get")]
    async fn get(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Json<RuleOut>> {
        auth.0.require_role(Role::Moderator)?;
        let rule = store(&state)?.get(&id.0).await?;
        allow(&auth.0, Role::Moderator, rule.spec.stream_id.as_deref())?;
        Ok(Json(out(rule)?))
    }

    /// Creates a rule (validated: known operators, bounded size, allowed template tokens).
    #[oai(path = "/rules", method = "post")]
    async fn create(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        body: Json<RuleBody>,
    ) -> ApiResult<Created> {
        auth.0.require_role(Role::Streamer)?;
        let rule = store(&state)?.create(input(&auth.0, body.0)?).await?;
        Ok(Created::Created(Json(out(rule)?)))
    }

    /// Replaces a rule.
    #[oai(path = "/rules/:id", method = "put")]
    async fn update(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<String>,
        body: Json<RuleBody>,
    ) -> ApiResult<Json<RuleOut>> {
        auth.0.require_role(Role::Streamer)?;
        let store = store(&state)?;
        let existing = store.get(&id.0).await?;
        allow(&auth.0, Role::Streamer, existing.spec.stream_id.as_deref())?;
        let rule = store.update(&id.0, input(&auth.0, body.0)?).await?;
        Ok(Json(out(rule)?))
    }

    /// Deletes a rule.
    #[oai(path = "/rules/:id", method = "delete")]
    async fn delete(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Deleted> {
        auth.0.require_role(Role::Streamer)?;
        let store = store(&state)?;
        let existing = store.get(&id.0).await?;
        allow(&auth.0, Role::Streamer, existing.spec.stream_id.as_deref())?;
        store.delete(&id.0).await?;
        Ok(Deleted::NoContent)
    }

    /// Dry run: would this rule fire for this event, and what would it say?
    #[oai(path = "/rules/test", method = "post")]
    async fn test(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        body: Json<RuleTestBody>,
    ) -> ApiResult<Json<RuleTestOut>> {
        auth.0.require_role(Role::Moderator)?;
        let body = body.0;
        let store = store(&state)?;
        let rule = match (&body.rule_id, body.action) {
            (Some(id), _) => {
                let rule = store.get(id).await?;
                allow(&auth.0, Role::Moderator, rule.spec.stream_id.as_deref())?;
                rule.spec
            }
            (None, Some(action)) => {
                let event_type = body
                    .event_type
                    .or_else(|| body.event["eventType"].as_str().map(str::to_owned))
                    .ok_or_else(|| ApiError::Invalid("eventType is required".into()))?;
                let inline = RuleBody {
                    stream_id: None,
                    name: "test".into(),
                    description: None,
                    event_type,
                    condition: body.condition,
                    action,
                    enabled: None,
                    priority: None,
                    meta: None,
                    cooldown: None,
                };
                serde_json::to_value(inline)
                    .and_then(serde_json::from_value::<RuleInput>)
                    .map_err(|e| ApiError::Invalid(format!("invalid rule: {e}")))?
            }
            (None, None) => {
                return Err(ApiError::Invalid("give ruleId, or condition and action".into()));
            }
        };
        // The JSON Schema is stricter than the Rust types: report every violation it finds.
        if let Err(violation) = ttlc_schemas::validate_unified(&body.event) {
            let errors = violation
                .errors
                .iter()
                .map(|v| format!("event{}: {}", v.instance_path, v.message))
                .collect::<Vec<_>>();
            let errors =
                if errors.is_empty() { vec![format!("event: {violation}")] } else { errors };
            return Ok(Json(RuleTestOut { matched: false, rendered_template: None, errors }));
        }
        let result = ttlc_rules::test_rule(&rule, &body.event, store.options());
        Ok(Json(RuleTestOut {
            matched: result.matched,
            rendered_template: result.rendered_template,
            errors: result.errors,
        }))
    }
}
