//! Errors that say whether retrying can help.
//!
//! The hint is set where the error is made (the code that knows a connection reset is transient and a
//! constraint violation is not), so the runner decides backoff vs dead-letter from the error, never by
//! matching strings.

use std::fmt;

/// Whether retrying the same work can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// I/O, timeouts, a dependency being down: back off and retry the whole batch.
    Retryable,
    /// Retrying cannot help (the stage is misconfigured or its dependency rejects the work for
    /// good). The runner stops the stage rather than silently skipping input.
    Fatal,
}

/// A batch-level failure returned by [`crate::Stage::handle`].
///
/// Per-record problems (bad input) are not errors: they are [`crate::Rejection`]s, which become one
/// DLQ record each while processing continues.
#[derive(Debug, thiserror::Error)]
pub struct StageError {
    kind: ErrorKind,
    context: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl StageError {
    /// A transient failure: the runner backs off and retries the batch.
    pub fn retryable(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        StageError {
            kind: ErrorKind::Retryable,
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// A failure retrying cannot fix: the runner stops the stage without committing the batch.
    pub fn fatal(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        StageError { kind: ErrorKind::Fatal, context: context.into(), source: Some(source.into()) }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Retryable
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{}: {source}", self.context),
            None => f.write_str(&self.context),
        }
    }
}
