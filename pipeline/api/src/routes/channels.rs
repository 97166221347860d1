//! `/channels`: start, list and stop ingest of TikTok users through [`crate::ChannelControl`]
//! (in `ttlc api` and `ttlc all`: [`crate::PgChannels`], which any ingest process picks up).
//!
//! Streamers manage the channel of their own stream; operators manage every channel. Starting a
//! channel that runs is 409 (one that ended or failed may be started again); stopping one that
//! is unknown or already stopped is 404.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::Tag;
use crate::auth::{Auth, Role};
use crate::control::{ChannelControl, ChannelInfo};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

#[derive(Debug)]
pub(crate) struct ChannelsApi;

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
struct StartChannel {
    /// The TikTok user to ingest, with or without the leading `@`.
    #[oai(validator(min_length = 1, max_length = 64))]
    unique_id: String,
}

#[derive(ApiResponse)]
enum Started {
    /// The channel is requested; an ingest process picks it up (see its `state`).
    #[oai(status = 201)]
    Created(Json<ChannelInfo>),
}

fn control(state: &AppState) -> ApiResult<&Arc<dyn ChannelControl>> {
    state.deps.channels.as_ref().ok_or_else(|| {
        ApiError::NotConfigured("channel control is not available in this process".into())
    })
}

/// `@name` → `name`, checked against TikTok's handle alphabet.
fn unique_id(raw: &str) -> ApiResult<String> {
    let id = raw.trim().trim_start_matches('@');
    let valid = !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if valid {
        Ok(id.to_owned())
    } else {
        Err(ApiError::Invalid(format!("{raw:?} is not a TikTok @uniqueId")))
    }
}

#[OpenApi(tag = "Tag::Control")]
impl ChannelsApi {
    /// Starts ingesting a TikTok user (STREAMER: for their own stream; OPERATOR: any).
    #[oai(path = "/channels", method = "post")]
    async fn start(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        body: Json<StartChannel>,
    ) -> ApiResult<Started> {
        auth.0.require_role(Role::Streamer)?;
        let id = unique_id(&body.0.unique_id)?;
        let info = control(&state)?.start(&id, auth.0.scope()).await?;
        Ok(Started::Created(Json(info)))
    }

    /// Channels visible to the caller (STREAMER: their stream's; OPERATOR: all).
    #[oai(path = "/channels", method = "get")]
    async fn list(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
    ) -> ApiResult<Json<Vec<ChannelInfo>>> {
        auth.0.require_role(Role::Streamer)?;
        let all = control(&state)?.list().await?;
        let scope = auth.0.scope();
        Ok(Json(
            all.into_iter()
                .filter(|c| scope.is_none() || c.stream_id.as_deref() == scope)
                .collect(),
        ))
    }

    /// Stops ingesting a TikTok user.
    #[oai(path = "/channels/:id", method = "delete")]
    async fn stop(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Json<ChannelInfo>> {
        auth.0.require_role(Role::Streamer)?;
        let id = unique_id(&id.0)?;
        let control = control(&state)?;
        if let Some(scope) = auth.0.scope() {
            let channels = control.list().await?;
            let channel = channels
                .iter()
                .find(|c| c.unique_id == id)
                .ok_or_else(|| ApiError::NotFound(format!("no channel @{id}")))?;
            if channel.stream_id.as_deref() != Some(scope) {
                return Err(ApiError::Forbidden("this channel belongs to another stream".into()));
            }
        }
        Ok(Json(control.stop(&id).await?))
    }
}
