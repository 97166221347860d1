//! One shared tap consumer per topic and API process, fanned out to every live client.
//!
//! The hub assigns itself every partition of its topic at the current end (no consumer group, no
//! commits: it is a tap, SPEC §1), decodes each record once, serializes it to JSON once, and
//! broadcasts it through a bounded channel. Clients filter what they receive; a client that falls
//! more than the channel's capacity behind is dropped rather than slowing the others.
//!
//! The hub also tracks, per partition, the next offset it will broadcast. The position is updated
//! *before* the record is sent, so a client that subscribes and then reads the position knows that
//! every record at or after it will reach its receiver, and every record before it can be read from
//! the topic: that is what makes `Last-Event-ID` resume gap-free (see `feed.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use ttlc_core::config::KafkaConfig;
use ttlc_topics::Topic;

/// Which topic a hub taps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Feed {
    /// `unified`: UnifiedEvents.
    Unified,
    /// `actions`: ActionRequests.
    Actions,
}

impl Feed {
    pub(crate) fn topic(self) -> Topic {
        match self {
            Feed::Unified => Topic::Unified,
            Feed::Actions => Topic::Actions,
        }
    }
}

/// One decoded record, shared by every client that receives it.
#[derive(Debug)]
pub(crate) struct LiveRecord {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) stream_id: String,
    /// `eventType` of an event, `type` of an action.
    pub(crate) kind: String,
    pub(crate) user_id: String,
    pub(crate) unique_id: String,
    /// `ruleId` of an action; empty for events.
    pub(crate) rule_id: String,
    /// The record as JSON, serialized once for all clients.
    pub(crate) json: String,
}

impl LiveRecord {
    /// The SSE event id: `<partition>-<offset>`. Every record of one stream is on one partition
    /// (key = streamId), so this alone locates the resume point of a per-stream feed.
    pub(crate) fn id(&self) -> String {
        format!("{}-{}", self.partition, self.offset)
    }
}

/// Decodes a record of `feed`; `None` for records that are not valid (the DLQ is the other stages'
/// business: a tap skips them).
pub(crate) fn decode(feed: Feed, message: &BorrowedMessage<'_>) -> Option<LiveRecord> {
    let payload = message.payload()?;
    let (partition, offset) = (message.partition(), message.offset());
    match feed {
        Feed::Unified => {
            let event = ttlc_schemas::decode_unified(payload).ok()?;
            let json = serde_json::to_string(&event).ok()?;
            Some(LiveRecord {
                partition,
                offset,
                kind: event.event_type.as_str().to_owned(),
                stream_id: event.stream_id,
                user_id: event.user.user_id,
                unique_id: event.user.unique_id,
                rule_id: String::new(),
                json,
            })
        }
        Feed::Actions => {
            let action = ttlc_schemas::decode_action(payload).ok()?;
            let json = serde_json::to_string(&action).ok()?;
            Some(LiveRecord {
                partition,
                offset,
                kind: action.action_type.as_str().to_owned(),
                stream_id: action.stream_id,
                user_id: String::new(),
                unique_id: String::new(),
                rule_id: action.rule_id,
                json,
            })
        }
    }
}

/// The shared tap of one topic.
#[derive(Debug)]
pub(crate) struct Hub {
    pub(crate) feed: Feed,
    pub(crate) kafka: KafkaConfig,
    pub(crate) topic: String,
    tx: broadcast::Sender<Arc<LiveRecord>>,
    positions: Mutex<HashMap<i32, i64>>,
    ready: AtomicBool,
    /// Records that could not be decoded (skipped).
    pub(crate) undecodable: AtomicU64,
}

impl Hub {
    /// Creates the hub and spawns its consumer task, which runs until `token` is cancelled.
    pub(crate) fn start(
        kafka: &KafkaConfig,
        feed: Feed,
        capacity: usize,
        token: CancellationToken,
    ) -> (Arc<Hub>, tokio::task::JoinHandle<()>) {
        let (tx, _) = broadcast::channel(capacity.max(16));
        let hub = Arc::new(Hub {
            feed,
            kafka: kafka.clone(),
            topic: ttlc_core::kafka::topic_name(kafka, feed.topic()),
            tx,
            positions: Mutex::new(HashMap::new()),
            ready: AtomicBool::new(false),
            undecodable: AtomicU64::new(0),
        });
        let task = tokio::spawn(hub.clone().run(token));
        (hub, task)
    }

    /// True once the hub is assigned and reading.
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<LiveRecord>> {
        self.tx.subscribe()
    }

    /// The next offset the hub will broadcast for `partition`.
    pub(crate) fn position(&self, partition: i32) -> Option<i64> {
        self.positions.lock().get(&partition).copied()
    }

    /// Clients currently subscribed.
    pub(crate) fn receivers(&self) -> usize {
        self.tx.receiver_count()
    }

    async fn run(self: Arc<Self>, token: CancellationToken) {
        let mut attempt = 0u32;
        while !token.is_cancelled() {
            match self.assign().await {
                Ok(consumer) => {
                    attempt = 0;
                    self.ready.store(true, Ordering::SeqCst);
                    tracing::info!(topic = %self.topic, "The live feed is reading its topic.");
                    self.pump(&consumer, &token).await;
                    self.ready.store(false, Ordering::SeqCst);
                }
                Err(error) => {
                    attempt = attempt.saturating_add(1);
                    if attempt == 1 || attempt % 30 == 0 {
                        tracing::warn!(topic = %self.topic, %error, "The live feed cannot start yet; retrying.");
                    }
                    tokio::select! {
                        _ = token.cancelled() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    /// A tap consumer assigned to every partition at the current end of the log.
    async fn assign(&self) -> Result<StreamConsumer, String> {
        let group = format!("{}api-tap-{}", self.kafka.topic_prefix, uuid::Uuid::new_v4().simple());
        let consumer =
            ttlc_core::kafka::tap_consumer(&self.kafka, &group).map_err(|e| e.to_string())?;
        let topic = self.topic.clone();
        let timeout = ttlc_core::kafka::admin_timeout(&self.kafka).min(Duration::from_secs(5));
        // Metadata and watermark requests block: keep them off the async workers.
        let (consumer, ends) = tokio::task::spawn_blocking(move || {
            let md = consumer.fetch_metadata(Some(&topic), timeout).map_err(|e| e.to_string())?;
            let partitions: Vec<i32> = md
                .topics()
                .iter()
                .filter(|t| t.name() == topic && t.error().is_none())
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            if partitions.is_empty() {
                return Err(format!("topic {topic} does not exist (run `ttlc topics apply`)"));
            }
            let mut ends = Vec::with_capacity(partitions.len());
            for p in partitions {
                let (_, high) =
                    consumer.fetch_watermarks(&topic, p, timeout).map_err(|e| e.to_string())?;
                ends.push((p, high.max(0)));
            }
            let mut tpl = TopicPartitionList::new();
            for (p, high) in &ends {
                tpl.add_partition_offset(&topic, *p, Offset::Offset(*high))
                    .map_err(|e| e.to_string())?;
            }
            consumer.assign(&tpl).map_err(|e| e.to_string())?;
            Ok((consumer, ends))
        })
        .await
        .map_err(|e| e.to_string())??;
        *self.positions.lock() = ends.into_iter().collect();
        Ok(consumer)
    }

    async fn pump(&self, consumer: &StreamConsumer, token: &CancellationToken) {
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                message = consumer.recv() => match message {
                    Ok(message) => {
                        // Position first, then send: see the module comment.
                        self.positions.lock().insert(message.partition(), message.offset() + 1);
                        match decode(self.feed, &message) {
                            // No receivers is not an error: nobody is watching right now.
                            Some(record) => { let _ = self.tx.send(Arc::new(record)); }
                            None => { self.undecodable.fetch_add(1, Ordering::Relaxed); }
                        }
                    }
                    Err(error) => {
                        tracing::warn!(topic = %self.topic, %error, "The live feed could not read; retrying.");
                        tokio::select! {
                            _ = token.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        }
                    }
                },
            }
        }
    }
}
