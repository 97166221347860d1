//! The contract between a stage and the runner.
//!
//! A stage sees a batch of input records and says, for each, what should happen: emit these outputs,
//! or reject it to the DLQ with a reason. Sinks (archivers, the executor) do their database work
//! inside `handle` and return only after it is durable (their transaction committed); transforms
//! (normalize, rules) return outputs for the runner to produce. Either way the runner stores an input
//! offset only after everything for that input is acknowledged.

use std::future::Future;
use std::time::Duration;

use ttlc_topics::Topic;

use crate::error::StageError;

/// One consumed Kafka record, owned so a stage may move work across tasks.
#[derive(Debug, Clone)]
pub struct InputRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// Broker timestamp in milliseconds since the epoch, when the broker gave one.
    pub timestamp_ms: Option<i64>,
}

impl InputRecord {
    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice())
    }
}

/// A record to produce. The runner resolves `topic` to its prefixed name.
#[derive(Debug, Clone)]
pub struct Output {
    pub topic: Topic,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Why one input record goes to the DLQ instead of being processed.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// A short, stable category used as a metric label, e.g. `invalid_json`.
    pub reason: &'static str,
    /// What went wrong, for humans. Must not contain secrets.
    pub error: String,
    pub raw_type: Option<String>,
    pub session_id: Option<String>,
    pub event_id: Option<String>,
}

impl Rejection {
    pub fn new(reason: &'static str, error: impl Into<String>) -> Self {
        Rejection { reason, error: error.into(), raw_type: None, session_id: None, event_id: None }
    }
}

/// How many records a stage takes at once, and how long the runner waits to fill a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// Most records per batch; also bounds the stage's memory.
    pub max_records: usize,
    /// Longest wait to fill a batch before handling what arrived.
    pub max_wait: Duration,
}

/// What to do with one input record.
#[derive(Debug, Clone)]
pub enum Disposition {
    /// Produce these records (possibly none: a sink that already stored the input returns
    /// `Emit(vec![])`), then the input counts as done.
    Emit(Vec<Output>),
    /// Write one DLQ record for this input and move on.
    Reject(Rejection),
}

/// A pipeline stage: one consumer group, one `handle` method.
pub trait Stage: Send + 'static {
    /// The stage name: consumer group id, metric label and the DLQ record's `stage`.
    fn name(&self) -> &'static str;

    /// The consumer group name (before `runner.group_prefix`); the stage name unless overridden.
    fn group(&self) -> &'static str {
        self.name()
    }

    /// The topics this stage consumes.
    fn inputs(&self) -> Vec<Topic>;

    /// Batch limits for this stage when it knows better than `runner.batch_size` /
    /// `runner.batch_timeout_ms` (e.g. ClickHouse, where every insert writes a part and wants
    /// tens of thousands of rows). `None`: the runner's settings.
    fn batching(&self) -> Option<Batching> {
        None
    }

    /// Handles a batch; returns exactly one [`Disposition`] per input, in input order.
    ///
    /// Return a retryable [`StageError`] when the whole batch may succeed later (database down):
    /// the runner backs off and calls `handle` again with the same batch, so sinks must be
    /// idempotent. Never fail the batch for one bad record: reject that record instead.
    fn handle(
        &mut self,
        batch: &[InputRecord],
    ) -> impl Future<Output = Result<Vec<Disposition>, StageError>> + Send;
}
