//! Ingest errors, each carrying what the supervisor needs to decide the next step: retry with
//! backoff, wait exactly as long as the server asked, or stop the channel.

use std::time::Duration;

/// A failure of one connection attempt or of a running connection.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The sign server asked us to slow down (HTTP 429); wait at least `retry_after`.
    #[error("sign server rate limited the request; retry after {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// An HTTP request failed or returned an unexpected status.
    #[error("{context}: {message}")]
    Http { context: &'static str, message: String, status: Option<u16> },
    /// The room id of a `@uniqueId` could not be found by any method (the user may not be live).
    #[error("cannot resolve the room id of {0}")]
    RoomNotFound(String),
    /// The WebSocket handshake was refused (e.g. HTTP 200 instead of 101).
    #[error("push server refused the WebSocket handshake with HTTP {status}")]
    HandshakeRefused { status: u16 },
    /// A WebSocket transport error or close.
    #[error("websocket: {0}")]
    WebSocket(String),
    /// The server sent nothing for longer than the idle timeout.
    #[error("no frame from the push server for {0:?}")]
    Idle(Duration),
    /// The server's bytes could not be decoded (sign response, not a single push message).
    #[error("cannot decode {what}: {message}")]
    Decode { what: &'static str, message: String },
    /// Misconfiguration that retrying cannot fix (bad URL, rejected API key).
    #[error("{0}")]
    Fatal(String),
    /// A replay was asked for a session with no stored events.
    #[error("no stored events for session {0:?}")]
    SessionNotFound(String),
    /// PostgreSQL (the replay provider's source) failed or is unreachable.
    #[error("{context}: {message}")]
    Database { context: &'static str, message: String },
}

impl IngestError {
    /// Whether another attempt can succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, IngestError::Fatal(_) | IngestError::SessionNotFound(_))
    }

    /// The delay the server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            IngestError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// A stable, upper-case code for `ControlEvent.ERROR`/`DISCONNECTED` envelopes and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::RateLimited { .. } => "SIGN_RATE_LIMITED",
            IngestError::Http { .. } => "HTTP_ERROR",
            IngestError::RoomNotFound(_) => "ROOM_NOT_FOUND",
            IngestError::HandshakeRefused { .. } => "HANDSHAKE_REFUSED",
            IngestError::WebSocket(_) => "WEBSOCKET_ERROR",
            IngestError::Idle(_) => "IDLE_TIMEOUT",
            IngestError::Decode { .. } => "DECODE_ERROR",
            IngestError::Fatal(_) => "FATAL",
            IngestError::SessionNotFound(_) => "SESSION_NOT_FOUND",
            IngestError::Database { .. } => "DATABASE_ERROR",
        }
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for IngestError {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        use tokio_tungstenite::tungstenite::Error as E;
        match e {
            E::Http(response) => {
                IngestError::HandshakeRefused { status: response.status().as_u16() }
            }
            other => IngestError::WebSocket(other.to_string()),
        }
    }
}
