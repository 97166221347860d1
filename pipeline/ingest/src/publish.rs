//! The path from channel tasks to the `raw` topic.
//!
//! Channel tasks push envelopes into one bounded channel ([`EnvelopeSink`]); a single publisher
//! task hands them to the idempotent producer in arrival order (so per-channel order, key =
//! streamId, survives) and keeps at most `max_in_flight` records unacknowledged. When the broker
//! is slow the in-flight window fills, the publisher stops reading, the channel fills and channel
//! tasks wait on `send`: ingest slows down and memory stays bounded.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use ttlc_core::kafka::headers;
use ttlc_schemas::RawEnvelope;

/// Where channel tasks put their envelopes. Cloning is cheap; the publisher ends when every clone
/// is dropped and the queue is drained.
#[derive(Debug, Clone)]
pub struct EnvelopeSink {
    tx: mpsc::Sender<RawEnvelope>,
}

/// The publisher is gone (shutdown); the sender should stop.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the envelope sink is closed")]
pub struct SinkClosed;

impl EnvelopeSink {
    /// A bounded sink of `capacity` envelopes and its receiving end.
    pub fn channel(capacity: usize) -> (EnvelopeSink, mpsc::Receiver<RawEnvelope>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (EnvelopeSink { tx }, rx)
    }

    /// Queues one envelope, waiting while the queue is full.
    pub async fn send(&self, env: RawEnvelope) -> Result<(), SinkClosed> {
        self.tx.send(env).await.map_err(|_| SinkClosed)
    }
}

/// What the publisher did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishStats {
    /// Records the broker acknowledged.
    pub delivered: u64,
    /// Records the broker rejected for good (logged; the idempotent producer retries transient
    /// errors itself, and `message.timeout.ms = 0` means it never gives up on its own).
    pub failed: u64,
}

/// Why publishing stopped.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot encode an envelope: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("producer: {0}")]
    Kafka(#[from] KafkaError),
}

/// Reads `rx` until every sender is gone, publishes each envelope to `topic` keyed by streamId,
/// then waits for every acknowledgement and flushes. `hard_stop` abandons waiting (the process
/// is out of shutdown time; unacknowledged records are simply not delivered).
pub async fn run_publisher(
    producer: FutureProducer,
    topic: String,
    mut rx: mpsc::Receiver<RawEnvelope>,
    max_in_flight: usize,
    hard_stop: CancellationToken,
) -> Result<PublishStats, PublishError> {
    let max_in_flight = max_in_flight.max(1);
    let mut stats = PublishStats::default();
    let mut in_flight = FuturesUnordered::new();
    let mut open = true;
    while open || !in_flight.is_empty() {
        tokio::select! {
            biased;
            _ = hard_stop.cancelled() => break,
            Some(result) = in_flight.next(), if !in_flight.is_empty() => count(result, &mut stats),
            env = rx.recv(), if open && in_flight.len() < max_in_flight => match env {
                Some(env) => {
                    let payload = serde_json::to_vec(&env)?;
                    let trace = format!("{}:{}", env.session_id, env.seq_no);
                    loop {
                        let record = FutureRecord::to(&topic)
                            .key(env.stream_id.as_bytes())
                            .payload(&payload)
                            .headers(record_headers(&trace));
                        match producer.send_result(record) {
                            Ok(delivery) => {
                                in_flight.push(delivery);
                                break;
                            }
                            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                                // librdkafka's own queue is full: wait for an acknowledgement (or a
                                // moment) and retry the same record, keeping order.
                                match in_flight.next().await {
                                    Some(result) => count(result, &mut stats),
                                    None => tokio::time::sleep(Duration::from_millis(5)).await,
                                }
                            }
                            Err((e, _)) => return Err(e.into()),
                        }
                    }
                }
                None => open = false,
            },
        }
    }
    let producer_flush =
        tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(10)));
    match producer_flush.await {
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "The producer did not flush every record in time.")
        }
        Err(e) => tracing::warn!(error = %e, "The producer flush task failed."),
        Ok(Ok(())) => {}
    }
    Ok(stats)
}

fn record_headers(trace: &str) -> OwnedHeaders {
    OwnedHeaders::new_with_capacity(4)
        .insert(Header { key: headers::CONTENT_TYPE, value: Some("application/json") })
        .insert(Header { key: headers::SCHEMA, value: Some("raw.v1") })
        .insert(Header { key: headers::SCHEMA_VERSION, value: Some("1") })
        .insert(Header { key: headers::TRACE_ID, value: Some(trace) })
}

fn count(
    result: <rdkafka::producer::DeliveryFuture as std::future::Future>::Output,
    stats: &mut PublishStats,
) {
    match result {
        Ok(Ok(_)) => stats.delivered += 1,
        Ok(Err((error, _))) => {
            stats.failed += 1;
            tracing::error!(%error, "The broker rejected a raw envelope.");
        }
        Err(_) => {
            stats.failed += 1;
            tracing::error!("The producer dropped a raw envelope before delivery.");
        }
    }
}
