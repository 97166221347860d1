//! The edges the API drives but does not own: ingest channels and session replays.
//!
//! `ttlc all` wires the ingest supervisor and the replay runner in-process; a standalone `ttlc
//! api` can implement the same traits over a control topic or table. Either way the routes only
//! see these traits, so they work the same in both deployments.

use futures::future::BoxFuture;

/// A running (or stopped) ingest channel.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, poem_openapi::Object,
)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct ChannelInfo {
    /// The TikTok `@uniqueId` without the `@`.
    pub unique_id: String,
    /// The room id (stream id) once resolved, or the stream the channel was started for.
    pub stream_id: Option<String>,
    /// e.g. `starting`, `connected`, `reconnecting`, `stopped`, `failed`.
    pub state: String,
    /// RFC 3339 time the channel was started.
    pub started_at: Option<String>,
}

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The channel or session does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (e.g. the channel already runs).
    #[error("{0}")]
    Conflict(String),
    /// The request is invalid (e.g. a malformed `@uniqueId`).
    #[error("{0}")]
    Invalid(String),
    /// The component behind the trait is down or overloaded; retry later.
    #[error("{0}")]
    Unavailable(String),
}

/// Starts, stops and lists ingest channels (implemented by the ingest supervisor).
pub trait ChannelControl: Send + Sync + std::fmt::Debug {
    /// Starts ingesting `unique_id`. `stream_id` is the stream the caller is scoped to (None for
    /// operators): an implementation that resolves a different room must refuse with
    /// [`ControlError::Invalid`].
    fn start<'a>(
        &'a self,
        unique_id: &'a str,
        stream_id: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ChannelInfo, ControlError>>;

    /// Stops ingesting `unique_id`.
    fn stop<'a>(&'a self, unique_id: &'a str) -> BoxFuture<'a, Result<ChannelInfo, ControlError>>;

    /// Every channel this process (or the control plane) knows.
    fn list(&self) -> BoxFuture<'_, Result<Vec<ChannelInfo>, ControlError>>;
}

/// Starts replays of stored sessions (implemented by the replay runner).
pub trait ReplayControl: Send + Sync + std::fmt::Debug {
    /// Starts replaying `session_id` of `stream_id` at `speed` × the original timing (0 = as fast
    /// as allowed) and returns the new session id at once; the replay runs in the background.
    fn start<'a>(
        &'a self,
        session_id: &'a str,
        stream_id: &'a str,
        speed: f64,
    ) -> BoxFuture<'a, Result<String, ControlError>>;
}

impl From<ControlError> for crate::error::ApiError {
    fn from(error: ControlError) -> Self {
        use crate::error::ApiError;
        match error {
            ControlError::NotFound(m) => ApiError::NotFound(m),
            ControlError::Conflict(m) => ApiError::Conflict(m),
            ControlError::Invalid(m) => ApiError::Invalid(m),
            ControlError::Unavailable(_) => ApiError::Unavailable {
                what: "ingest control",
                retry_after: crate::error::CONFIGURED_RETRY,
            },
        }
    }
}
