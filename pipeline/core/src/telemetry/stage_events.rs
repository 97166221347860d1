//! What the stage runner reports: per-stage in/out/DLQ counts, batch sizes and latencies, retries,
//! consumer lag.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StageLabel {
    stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabel {
    stage: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PartitionLabel {
    stage: &'static str,
    topic: String,
    partition: i32,
}

type Hist = Family<StageLabel, Histogram, fn() -> Histogram>;

pub(crate) struct StageMetrics {
    records_in: Family<StageLabel, Counter>,
    records_out: Family<StageLabel, Counter>,
    dlq: Family<ReasonLabel, Counter>,
    retries: Family<StageLabel, Counter>,
    batch_size: Hist,
    batch_seconds: Hist,
    lag: Family<PartitionLabel, Gauge>,
}

pub(crate) static STAGE_METRICS: LazyLock<StageMetrics> = LazyLock::new(|| {
    let m = StageMetrics {
        records_in: Family::default(),
        records_out: Family::default(),
        dlq: Family::default(),
        retries: Family::default(),
        batch_size: Family::new_with_constructor(|| {
            Histogram::new(exponential_buckets(1.0, 4.0, 8))
        }),
        batch_seconds: Family::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 4.0, 10))
        }),
        lag: Family::default(),
    };
    super::register(|r| {
        r.register("stage_records_in", "Records consumed by a stage", m.records_in.clone());
        r.register("stage_records_out", "Records produced by a stage", m.records_out.clone());
        r.register("stage_dlq", "Records sent to the DLQ, by reason", m.dlq.clone());
        r.register("stage_retries", "Batch retries after retryable errors", m.retries.clone());
        r.register("stage_batch_size", "Records per handled batch", m.batch_size.clone());
        r.register(
            "stage_batch_seconds",
            "Time from batch start to offsets stored",
            m.batch_seconds.clone(),
        );
        r.register("consumer_lag", "Records behind the partition end", m.lag.clone());
    });
    m
});

/// A batch was handled, produced and acknowledged; its offsets are stored.
#[derive(Debug)]
pub struct BatchCompleted {
    pub stage: &'static str,
    pub records: usize,
    pub outputs: usize,
    pub rejected: usize,
    pub elapsed: Duration,
}

impl BatchCompleted {
    pub fn emit(&self) {
        let label = StageLabel { stage: self.stage };
        let m = &*STAGE_METRICS;
        m.records_in.get_or_create(&label).inc_by(self.records as u64);
        m.records_out.get_or_create(&label).inc_by(self.outputs as u64);
        m.batch_size.get_or_create(&label).observe(self.records as f64);
        m.batch_seconds.get_or_create(&label).observe(self.elapsed.as_secs_f64());
        tracing::debug!(
            stage = self.stage,
            records = self.records,
            outputs = self.outputs,
            rejected = self.rejected,
            elapsed_ms = self.elapsed.as_millis() as u64,
            "Batch completed."
        );
    }
}

/// One input record was sent to the DLQ.
#[derive(Debug)]
pub struct RecordRejected<'a> {
    pub stage: &'static str,
    pub reason: &'static str,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

impl RecordRejected<'_> {
    pub fn emit(&self) {
        STAGE_METRICS
            .dlq
            .get_or_create(&ReasonLabel { stage: self.stage, reason: self.reason })
            .inc();
        tracing::info!(
            stage = self.stage,
            reason = self.reason,
            topic = self.topic,
            partition = self.partition,
            offset = self.offset,
            "Record sent to the DLQ."
        );
    }
}

/// A batch failed with a retryable error and will be retried after `delay`.
#[derive(Debug)]
pub struct BatchRetrying<'a> {
    pub stage: &'static str,
    pub error: &'a dyn std::error::Error,
    pub delay: Duration,
}

impl BatchRetrying<'_> {
    pub fn emit(&self) {
        STAGE_METRICS.retries.get_or_create(&StageLabel { stage: self.stage }).inc();
        tracing::warn!(
            stage = self.stage,
            error = %self.error,
            retry_in_ms = self.delay.as_millis() as u64,
            "Batch failed with a retryable error; retrying."
        );
    }
}

/// Consumer lag of one partition, from the broker's high watermark.
#[derive(Debug)]
pub struct PartitionLag<'a> {
    pub stage: &'static str,
    pub topic: &'a str,
    pub partition: i32,
    pub lag: i64,
}

impl PartitionLag<'_> {
    pub fn emit(&self) {
        STAGE_METRICS
            .lag
            .get_or_create(&PartitionLabel {
                stage: self.stage,
                topic: self.topic.to_owned(),
                partition: self.partition,
            })
            .set(self.lag);
    }
}
