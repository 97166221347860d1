//! What can go wrong performing one action, with the retry decision made where the error is made
//! (the webhook client knows a 503 is transient and a 404 is not).

/// Why one action did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// Policy refused the action before anything was sent (e.g. a webhook to a private address).
    /// Recorded as `skipped` with the reason; never retried, never dead-lettered: retrying or
    /// re-driving cannot make a refused target acceptable.
    #[error("{reason}: {detail}")]
    Refused { reason: &'static str, detail: String },
    /// Worth retrying: timeouts, connection failures, 5xx, 429.
    #[error("{0}")]
    Transient(String),
    /// Retrying the same request cannot help (4xx, bad params, missing secret): recorded as
    /// `failed` and dead-lettered at once, for an operator to fix and re-drive.
    #[error("{0}")]
    Permanent(String),
}

impl ActionError {
    pub fn is_transient(&self) -> bool {
        matches!(self, ActionError::Transient(_))
    }
}

/// Why the executor could not start.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    #[error("PostgreSQL URL: {0}")]
    Config(String),
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}
