//! `moderate` actions: mute, unmute, ban or unban the user whose event matched, through the
//! [`ChatProvider`]. The rules stage put the target user into the params
//! (`targetUserId`, `targetUniqueId`); the rule supplied `kind` and, for mute, `durationSeconds`.

use ttlc_rules::MODERATE_KINDS;
use ttlc_schemas::ActionRequest;

use crate::chat::{ChatProvider, Moderation};
use crate::error::ActionError;

pub(crate) async fn moderate(
    chat: &dyn ChatProvider,
    action: &ActionRequest,
) -> Result<(), ActionError> {
    chat.moderate(&command(action)?).await
}

/// The moderation command an action asks for; params that do not make one are a permanent
/// failure (validation on write makes that rare: only a hand-made ActionRequest gets here).
pub(crate) fn command(action: &ActionRequest) -> Result<Moderation, ActionError> {
    let text = |key: &str| action.params.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let kind = text("kind").filter(|k| MODERATE_KINDS.contains(&k.as_str())).ok_or_else(|| {
        ActionError::Permanent(format!("params.kind must be one of {}", MODERATE_KINDS.join(", ")))
    })?;
    let target_user_id = text("targetUserId")
        .ok_or_else(|| ActionError::Permanent("params.targetUserId is missing".into()))?;
    // Never moderate the lifecycle pseudo-user (lifecycle events have no real user).
    if target_user_id == "0" {
        return Err(ActionError::Refused {
            reason: "no_target_user",
            detail: "the event has no TikTok user".into(),
        });
    }
    let duration_seconds = action.params.get("durationSeconds").and_then(|v| v.as_u64());
    if kind == "mute" && duration_seconds.is_none() {
        return Err(ActionError::Permanent("mute needs params.durationSeconds".into()));
    }
    Ok(Moderation {
        stream_id: action.stream_id.clone(),
        kind,
        target_user_id,
        target_unique_id: text("targetUniqueId").unwrap_or_default(),
        duration_seconds,
    })
}
