//! Batch collection: wait for the first record, then take what arrives within a short window.
//!
//! The window keeps latency low for trickles and amortizes per-batch work (a database
//! transaction, a round of acks) under load.

use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::resume::Verdict;
use super::{RunnerContext, RunnerError};
use crate::stage::InputRecord;

#[derive(Debug, Clone)]
pub(super) struct Limits {
    pub(super) max_records: usize,
    pub(super) max_wait: Duration,
}

/// The next batch, or `None` when shutdown was requested before any record arrived.
pub(super) async fn next_batch(
    consumer: &StreamConsumer<RunnerContext>,
    limits: &Limits,
    shutdown: &CancellationToken,
) -> Result<Option<Vec<InputRecord>>, RunnerError> {
    let mut batch = Vec::with_capacity(limits.max_records.min(4096));
    // Wait as long as it takes for the first record; consumption errors (broker unreachable)
    // are logged and waited out, since librdkafka reconnects by itself.
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(None),
            received = consumer.recv() => match received {
                Ok(message) => {
                    if admit(consumer, &message) {
                        batch.push(to_input(&message));
                        break;
                    }
                }
                Err(error) => consumption_error(error, shutdown).await,
            },
        }
    }
    let deadline = Instant::now() + limits.max_wait;
    while batch.len() < limits.max_records {
        tokio::select! {
            biased;
            // Handle what we have: finishing a partial batch is cheaper than re-delivering it.
            _ = shutdown.cancelled() => break,
            received = tokio::time::timeout_at(deadline, consumer.recv()) => match received {
                Err(_elapsed) => break,
                Ok(Ok(message)) => {
                    if admit(consumer, &message) {
                        batch.push(to_input(&message));
                    }
                }
                Ok(Err(error)) => {
                    consumption_error(error, shutdown).await;
                    break;
                }
            },
        }
    }
    Ok(Some(batch))
}

async fn consumption_error(error: rdkafka::error::KafkaError, shutdown: &CancellationToken) {
    tracing::warn!(%error, "Consumer error; waiting for the broker.");
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        _ = shutdown.cancelled() => {}
    }
}

/// Applies the resume guard: false for records to skip (seeking back first when the broker
/// skipped records).
fn admit(consumer: &StreamConsumer<RunnerContext>, m: &BorrowedMessage<'_>) -> bool {
    match consumer.context().resume.check(m.topic(), m.partition(), m.offset()) {
        Verdict::Keep => true,
        Verdict::Drop => false,
        Verdict::SeekTo(offset) => {
            let (topic, partition) = (m.topic(), m.partition());
            if let Err(error) =
                consumer.seek(topic, partition, Offset::Offset(offset), Duration::from_secs(10))
            {
                tracing::error!(topic, partition, offset, %error, "Rewind failed; records may be missing.");
            }
            false
        }
    }
}

fn to_input(m: &BorrowedMessage<'_>) -> InputRecord {
    let headers = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec).unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    InputRecord {
        topic: m.topic().to_owned(),
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        payload: m.payload().map(<[u8]>::to_vec),
        headers,
        timestamp_ms: m.timestamp().to_millis(),
    }
}
