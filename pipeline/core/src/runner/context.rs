//! Consumer callbacks: commit stored offsets before partitions are taken away.
//!
//! The runner polls only between batches or while collecting one, and stores offsets only for
//! finished batches, so at revocation time the stored offsets are exactly the finished work.
//! Committing them synchronously then means the next owner starts right after it: no record is
//! lost, and only the partial batch being collected is processed twice.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, Offset};

use super::resume::ResumeGuard;
use crate::telemetry::PartitionLag;

/// The runner's consumer context.
#[derive(Debug, Clone)]
pub struct RunnerContext {
    stage: &'static str,
    pub(crate) resume: Arc<ResumeGuard>,
    /// Records to re-read before a committed offset at assignment (see `runner::resume`).
    rewind: i64,
}

impl RunnerContext {
    /// `rewind` is `kafka.resume_rewind_records`: 0 on brokers that resume correctly.
    pub fn new(stage: &'static str, rewind: i64) -> Self {
        RunnerContext { stage, resume: Arc::default(), rewind }
    }
}

impl ClientContext for RunnerContext {
    /// librdkafka's periodic statistics (`statistics.interval.ms`) carry each assigned partition's
    /// lag, computed from what the client already knows: no extra broker round trips.
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (name, topic) in &statistics.topics {
            for (partition, p) in &topic.partitions {
                // -1 is the internal "unassigned" partition or an unknown lag.
                if *partition >= 0 && p.consumer_lag >= 0 {
                    PartitionLag {
                        stage: self.stage,
                        topic: name,
                        partition: *partition,
                        lag: p.consumer_lag,
                    }
                    .emit();
                }
            }
        }
    }
}

impl ConsumerContext for RunnerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(partitions) => {
                self.resume.revoked(
                    partitions.elements().iter().map(|e| (e.topic().to_owned(), e.partition())),
                );
                tracing::info!(
                    stage = self.stage,
                    partitions = partitions.count(),
                    "Partitions revoked; committing stored offsets."
                );
                if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
                    tracing::debug!(stage = self.stage, %error, "Commit on revoke had nothing to commit or failed.");
                }
            }
            Rebalance::Assign(partitions) => {
                tracing::info!(
                    stage = self.stage,
                    partitions = partitions.count(),
                    "Partitions assigned."
                );
            }
            Rebalance::Error(error) => {
                tracing::warn!(stage = self.stage, %error, "Rebalance error.");
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            // Where each new partition resumes, so the resume guard can spot a broker that
            // skips past it. Without the answer the guard simply stays off for those partitions.
            match consumer.committed_offsets((*partitions).clone(), Duration::from_secs(10)) {
                Ok(committed) => {
                    let starts: Vec<(String, i32, i64)> = committed
                        .elements()
                        .iter()
                        .map(|e| {
                            (e.topic().to_owned(), e.partition(), e.offset().to_raw().unwrap_or(-1))
                        })
                        .collect();
                    for (topic, partition, target) in self.resume.assigned(starts, self.rewind) {
                        // Start before the committed offset, outside the batch that holds it; the
                        // guard drops what was already processed.
                        if let Err(error) = consumer.seek(
                            topic.as_str(),
                            partition,
                            Offset::Offset(target),
                            Duration::from_secs(10),
                        ) {
                            tracing::warn!(stage = self.stage, topic, partition, %error, "Could not rewind a newly assigned partition.");
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(stage = self.stage, %error, "Could not read committed offsets after assignment.")
                }
            }
        }
    }
}
