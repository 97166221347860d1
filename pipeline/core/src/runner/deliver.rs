//! Producing a batch's outputs and DLQ records, and waiting until the broker acknowledged all of
//! them. Nothing in here stores offsets: the caller does that only when this returns `Some`.

use std::collections::HashMap;

use chrono::Utc;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;
use ttlc_schemas::DlqRecord;
use ttlc_topics::Topic;

use super::RunnerError;
use crate::config::Config;
use crate::kafka::{self, headers};
use crate::stage::{Disposition, InputRecord, Rejection};
use crate::telemetry::RecordRejected;

/// What a delivered batch produced.
#[derive(Debug, Default)]
pub(super) struct Counts {
    pub(super) outputs: usize,
    pub(super) rejected: usize,
}

/// Produces everything for the batch and awaits every acknowledgement. `None` means shutdown
/// interrupted the wait (nothing is stored; the batch will be re-delivered).
pub(super) async fn produce_all(
    producer: &FutureProducer,
    config: &Config,
    stage: &'static str,
    batch: &[InputRecord],
    dispositions: &[Disposition],
    shutdown: &CancellationToken,
) -> Result<Option<Counts>, RunnerError> {
    let names: HashMap<Topic, String> =
        Topic::ALL.into_iter().map(|t| (t, kafka::topic_name(&config.kafka, t))).collect();
    let mut pending: Vec<(usize, DeliveryFuture)> = Vec::new();
    let mut counts = Counts::default();
    for (index, (input, disposition)) in batch.iter().zip(dispositions).enumerate() {
        match disposition {
            Disposition::Emit(outputs) => {
                for o in outputs {
                    let record = FutureRecord::to(&names[&o.topic])
                        .key(&o.key)
                        .payload(&o.payload)
                        .headers(to_headers(&o.headers));
                    let Some(f) = enqueue(producer, record, shutdown).await? else {
                        return Ok(None);
                    };
                    pending.push((index, f));
                    counts.outputs += 1;
                }
            }
            Disposition::Reject(rejection) => {
                let bytes = dlq_bytes(stage, input, rejection);
                let record = dlq_record(&names[&Topic::Dlq], input, &bytes);
                let Some(f) = enqueue(producer, record, shutdown).await? else {
                    return Ok(None);
                };
                pending.push((index, f));
                counts.rejected += 1;
                RecordRejected {
                    stage,
                    reason: rejection.reason,
                    topic: &input.topic,
                    partition: input.partition,
                    offset: input.offset,
                }
                .emit();
            }
        }
    }
    // Outputs the broker refused for good (e.g. a record over its size limit) turn their input
    // into a DLQ record instead, so one oversized event never stalls the partition.
    let mut failed: Vec<(usize, String)> = Vec::new();
    for (index, future) in pending {
        match future.await {
            Ok(Ok(_)) => {}
            Ok(Err((error, _))) => failed.push((index, error.to_string())),
            Err(_canceled) => return Err(RunnerError::Delivery("producer was dropped".into())),
        }
    }
    failed.dedup_by_key(|(i, _)| *i);
    for (index, error) in failed {
        let input = &batch[index];
        let rejection = Rejection::new("produce_failed", error);
        let bytes = dlq_bytes(stage, input, &rejection);
        let delivery = producer
            .send(dlq_record(&names[&Topic::Dlq], input, &bytes), rdkafka::util::Timeout::Never)
            .await;
        if let Err((error, _)) = delivery {
            return Err(RunnerError::Delivery(format!("DLQ write failed: {error}")));
        }
        counts.rejected += 1;
        RecordRejected {
            stage,
            reason: rejection.reason,
            topic: &input.topic,
            partition: input.partition,
            offset: input.offset,
        }
        .emit();
    }
    Ok(Some(counts))
}

/// Enqueues one record; when the producer's bounded queue is full, waits for it to drain instead
/// of growing memory. `None` means shutdown was requested while waiting.
async fn enqueue<'a>(
    producer: &FutureProducer,
    mut record: FutureRecord<'a, Vec<u8>, Vec<u8>>,
    shutdown: &CancellationToken,
) -> Result<Option<DeliveryFuture>, RunnerError> {
    loop {
        match producer.send_result(record) {
            Ok(future) => return Ok(Some(future)),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_millis(5)) => {}
                    _ = shutdown.cancelled() => return Ok(None),
                }
            }
            Err((error, _)) => return Err(RunnerError::Kafka(error)),
        }
    }
}

fn to_headers(pairs: &[(String, Vec<u8>)]) -> OwnedHeaders {
    pairs.iter().fold(OwnedHeaders::new_with_capacity(pairs.len()), |h, (k, v)| {
        h.insert(Header { key: k, value: Some(v) })
    })
}

fn dlq_bytes(stage: &'static str, input: &InputRecord, rejection: &Rejection) -> Vec<u8> {
    let (payload, payload_encoding) =
        DlqRecord::encode_payload(input.payload.as_deref().unwrap_or_default());
    let record = DlqRecord {
        stage: stage.to_owned(),
        reason: rejection.reason.to_owned(),
        error: rejection.error.clone(),
        payload,
        payload_encoding,
        key: input.key.as_deref().and_then(|k| std::str::from_utf8(k).ok()).map(str::to_owned),
        topic: input.topic.clone(),
        partition: input.partition,
        offset: input.offset,
        failed_at: Utc::now(),
        raw_type: rejection.raw_type.clone(),
        session_id: rejection.session_id.clone(),
        event_id: rejection.event_id.clone(),
    };
    // Serializing a struct of strings and integers cannot fail.
    serde_json::to_vec(&record).unwrap_or_default()
}

fn dlq_record<'a>(
    topic: &'a str,
    input: &'a InputRecord,
    bytes: &'a Vec<u8>,
) -> FutureRecord<'a, Vec<u8>, Vec<u8>> {
    let headers = OwnedHeaders::new()
        .insert(Header { key: headers::CONTENT_TYPE, value: Some("application/json") })
        .insert(Header { key: headers::SCHEMA, value: Some("dlq.v1") })
        .insert(Header { key: headers::SCHEMA_VERSION, value: Some("1") });
    let record = FutureRecord::to(topic).payload(bytes).headers(headers);
    match &input.key {
        Some(key) => record.key(key),
        None => record,
    }
}
