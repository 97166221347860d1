//! Consumer callbacks: commit stored offsets before partitions are taken away.
//!
//! The runner polls only between batches or while collecting one, and stores offsets only for
//! finished batches, so at revocation time the stored offsets are exactly the finished work.
//! Committing them synchronously then means the next owner starts right after it: no record is
//! lost, and only the partial batch being collected is processed twice.

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};

/// The runner's consumer context.
#[derive(Debug, Clone)]
pub struct RunnerContext {
    stage: &'static str,
}

impl RunnerContext {
    pub fn new(stage: &'static str) -> Self {
        RunnerContext { stage }
    }
}

impl ClientContext for RunnerContext {}

impl ConsumerContext for RunnerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(partitions) => {
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
}
