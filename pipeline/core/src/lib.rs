//! The small core every ttlc stage stands on.
//!
//! A stage implements [`stage::Stage`] (one file, one `handle` method); the [`runner`] owns
//! everything around it the same way for every stage: consume from Kafka, call `handle`, produce the
//! outputs, wait for the broker's acknowledgements, and only then store the input offsets. Retries,
//! the dead-letter queue, metrics and graceful shutdown live here, not in the stages.

pub mod config;
pub mod error;
pub mod kafka;
pub mod retry;
pub mod runner;
pub mod shutdown;
pub mod stage;
pub mod telemetry;

pub use error::{ErrorKind, StageError};
pub use stage::{Batching, Disposition, InputRecord, Output, Rejection, Stage};
