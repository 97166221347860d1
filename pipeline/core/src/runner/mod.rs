//! The stage runner: consume → handle → produce → wait for acks → store offsets, for every stage.
//!
//! Invariants this module keeps (the README's Architecture section repeats them):
//! - An input offset is stored only after every output and DLQ record for that input, and for
//!   every earlier input of the batch, is acknowledged by the broker. Sinks acknowledge by
//!   returning from `handle` after their transaction committed. The background auto-commit then
//!   commits stored offsets only, and shutdown and partition revocation commit them synchronously.
//! - A retryable batch failure is retried with capped exponential backoff, forever: an outage
//!   pauses the stage instead of dropping data. Memory stays bounded because the runner holds one
//!   batch (`runner.batch_size` records) and does not fetch more while it retries.
//! - Per-partition order is kept: one batch at a time, outputs produced in input order through an
//!   idempotent producer, keyed like their inputs.
//! - Bad input is never fatal: the stage rejects the record and it becomes one DLQ record.

mod collect;
mod context;
mod deliver;
mod resume;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::StageError;
use crate::kafka;
use crate::stage::{Disposition, Stage};
use crate::telemetry::{BatchCompleted, BatchRetrying};

pub use context::RunnerContext;

/// Why a stage stopped other than by shutdown.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("kafka client error: {0}")]
    Kafka(#[from] KafkaError),
    #[error("stage {stage} failed and retrying cannot help: {source}")]
    Fatal { stage: &'static str, source: StageError },
    #[error("stage {stage} returned {got} dispositions for a batch of {expected}")]
    Contract { stage: &'static str, expected: usize, got: usize },
    #[error("could not deliver to the broker: {0}")]
    Delivery(String),
}

/// The consumer group a stage joins: `runner.group_prefix` + the stage's group name.
pub fn group_id<S: Stage>(stage: &S, config: &Config) -> String {
    format!("{}{}", config.runner.group_prefix, stage.group())
}

/// Runs `stage` until `shutdown` is cancelled (returns `Ok`) or a fatal error occurs.
pub async fn run<S: Stage>(
    mut stage: S,
    config: &Config,
    shutdown: CancellationToken,
) -> Result<(), RunnerError> {
    let name = stage.name();
    let group = group_id(&stage, config);
    let consumer: StreamConsumer<RunnerContext> = kafka::stage_consumer(
        &config.kafka,
        &group,
        RunnerContext::new(name, config.kafka.resume_rewind_records),
    )?;
    let topics: Vec<String> =
        stage.inputs().into_iter().map(|t| kafka::topic_name(&config.kafka, t)).collect();
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topic_refs)?;
    let producer = kafka::producer(&config.kafka)?;
    tracing::info!(stage = name, group = %group, topics = ?topics, "Stage started.");

    let limits = match stage.batching() {
        Some(b) => collect::Limits { max_records: b.max_records.max(1), max_wait: b.max_wait },
        None => collect::Limits {
            max_records: config.runner.batch_size,
            max_wait: Duration::from_millis(config.runner.batch_timeout_ms),
        },
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(config.runner.retry_initial_ms))
        .with_max_delay(Duration::from_millis(config.runner.retry_max_ms))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times();
    let shutdown_timeout = Duration::from_millis(config.runner.shutdown_timeout_ms);

    let result = async {
        loop {
            let Some(batch) = collect::next_batch(&consumer, &limits, &shutdown).await? else {
                break; // shutdown requested while waiting for input
            };
            let started = Instant::now();
            let Some(dispositions) =
                handle_with_retry(&mut stage, &batch, backoff, &shutdown, shutdown_timeout).await?
            else {
                break; // shutdown during retries: the batch stays uncommitted and is re-delivered
            };
            let delivered =
                deliver::produce_all(&producer, config, name, &batch, &dispositions, &shutdown)
                    .await?;
            let Some(counts) = delivered else { break };
            store_offsets(&consumer, &batch);
            BatchCompleted {
                stage: name,
                records: batch.len(),
                outputs: counts.outputs,
                rejected: counts.rejected,
                elapsed: started.elapsed(),
            }
            .emit();
        }
        Ok::<(), RunnerError>(())
    }
    .await;

    // Flush and commit what was acknowledged, within a bound: a broker that is gone must not
    // keep the process from exiting. Uncommitted work is re-delivered (at-least-once).
    let _ = producer.flush(shutdown_timeout);
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => tracing::info!(stage = name, "Offsets committed; stage stopped."),
        // Nothing stored since the last auto-commit is reported as an error by librdkafka.
        Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {
            tracing::info!(stage = name, "Stage stopped; no new offsets to commit.")
        }
        Err(error) => {
            tracing::warn!(stage = name, %error, "Final commit failed; uncommitted records will be re-delivered.")
        }
    }
    consumer.unsubscribe();
    result
}

/// Calls `handle` until it succeeds, backing off on retryable errors. `None` means shutdown won.
async fn handle_with_retry<S: Stage>(
    stage: &mut S,
    batch: &[crate::stage::InputRecord],
    backoff: ExponentialBuilder,
    shutdown: &CancellationToken,
    shutdown_timeout: Duration,
) -> Result<Option<Vec<Disposition>>, RunnerError> {
    let name = stage.name();
    let mut delays = backoff.build();
    loop {
        // A handle that hangs (a database that accepts connections but never answers) must not
        // block shutdown forever: after cancellation it gets `shutdown_timeout` to finish.
        let outcome = tokio::select! {
            r = stage.handle(batch) => r,
            _ = cancelled_then(shutdown, shutdown_timeout) => {
                tracing::warn!(stage = name, "Batch abandoned at shutdown; it will be re-delivered.");
                return Ok(None);
            }
        };
        match outcome {
            Ok(dispositions) if dispositions.len() == batch.len() => return Ok(Some(dispositions)),
            Ok(dispositions) => {
                return Err(RunnerError::Contract {
                    stage: name,
                    expected: batch.len(),
                    got: dispositions.len(),
                });
            }
            Err(error) if error.is_retryable() => {
                let delay = delays.next().unwrap_or(Duration::from_secs(30));
                BatchRetrying { stage: name, error: &error, delay }.emit();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => return Ok(None),
                }
            }
            Err(source) => return Err(RunnerError::Fatal { stage: name, source }),
        }
    }
}

async fn cancelled_then(token: &CancellationToken, grace: Duration) {
    token.cancelled().await;
    tokio::time::sleep(grace).await;
}

/// Stores, per partition, the offset after the highest one in the batch.
fn store_offsets<C: Consumer<RunnerContext>>(consumer: &C, batch: &[crate::stage::InputRecord]) {
    let mut highest: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for r in batch {
        let e = highest.entry((r.topic.as_str(), r.partition)).or_insert(r.offset);
        *e = (*e).max(r.offset);
    }
    for ((topic, partition), offset) in highest {
        // `store_offset` stores offset + 1, the next record to read. It fails when the
        // partition was revoked meanwhile; the new owner re-processes those records.
        if let Err(error) = consumer.store_offset(topic, partition, offset) {
            tracing::debug!(topic, partition, offset, %error, "Offset not stored (partition revoked?).");
        }
    }
}
