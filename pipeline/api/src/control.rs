//! The edges the API drives but does not own: ingest channels and session replays.
//!
//! Channels go through PostgreSQL's `ingest_channels` table ([`crate::PgChannels`]) in both `ttlc
//! api` and `ttlc all`, so they work wherever ingest runs; replays run in the API's process. The
//! routes only see these traits, so tests can put any implementation behind them.

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
    /// `starting` (just requested), `pending` (requested, but no ingest process has picked it
    /// up), `connecting`, `connected`, `backoff` (reconnecting after a failure), `ended` (the
    /// LIVE ended), `failed` (gave up, or the request was refused: see `lastError`), `stopping`,
    /// `stopped`.
    pub state: String,
    /// RFC 3339 time the channel was (last) requested to run; absent once stopped.
    pub started_at: Option<String>,
    /// The session of the current (or last) connection, once connected.
    pub session_id: Option<String>,
    /// The last connection error ingest reported, or why the request was refused.
    pub last_error: Option<String>,
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
    /// The component behind the trait failed in a way retrying will not fix.
    #[error("{0}")]
    Internal(String),
}

/// Starts, stops and lists ingest channels (implemented over the control table by
/// [`crate::PgChannels`]).
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
            ControlError::Internal(m) => ApiError::Internal(m),
        }
    }
}
