//! Kafka client builders with the settings every ttlc client needs, in one place.
//!
//! Only the Kafka protocol through rdkafka is used, so the same binary runs against Tansu locally
//! and Redpanda in production.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use ttlc_topics::Topic;

use crate::config::KafkaConfig;

/// Record headers every ttlc producer sets.
pub mod headers {
    pub const CONTENT_TYPE: &str = "content-type";
    pub const SCHEMA: &str = "schema";
    pub const SCHEMA_VERSION: &str = "schema-version";
    /// Correlation id that follows an event through the stages (the raw envelope's sessionId
    /// plus seqNo, or the eventId once it exists).
    pub const TRACE_ID: &str = "trace-id";
}

fn base(config: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers);
    for (k, v) in &config.extra {
        c.set(k, v);
    }
    c
}

/// The broker-side name of `topic` under this config's prefix.
pub fn topic_name(config: &KafkaConfig, topic: Topic) -> String {
    topic.full_name(&config.topic_prefix)
}

/// An idempotent producer: retries never duplicate or reorder records within a partition, which
/// keeps per-channel order (key = streamId) intact.
pub fn producer(config: &KafkaConfig) -> Result<FutureProducer, KafkaError> {
    base(config)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", config.linger_ms.to_string())
        .set("compression.type", "none")
        // Bounded in-memory queue: when the broker is slow, `send` waits instead of growing memory.
        .set("queue.buffering.max.messages", "100000")
        .set("queue.buffering.max.kbytes", "65536")
        .set("message.timeout.ms", "0")
        .create()
}

/// A consumer for the stage runner: offsets are stored by the runner only after a record's outputs
/// are acknowledged, and the background auto-commit then commits only those stored offsets.
pub fn stage_consumer<C: ConsumerContext + 'static>(
    config: &KafkaConfig,
    group_id: &str,
    context: C,
) -> Result<StreamConsumer<C>, KafkaError> {
    base(config)
        .set("group.id", group_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", config.fetch_wait_max_ms.to_string())
        .set("partition.assignment.strategy", &config.assignment_strategy)
        .set("enable.partition.eof", "false")
        // Per-partition consumer lag for the `consumer_lag` metric, via the stats callback.
        .set("statistics.interval.ms", "10000")
        .set("session.timeout.ms", config.session_timeout_ms.to_string())
        .set("heartbeat.interval.ms", config.heartbeat_interval_ms.to_string())
        .create_with_context(context)
}

/// A consumer with no committed group state, for live taps (API feeds): it starts where asked
/// and never commits.
pub fn tap_consumer(config: &KafkaConfig, group_id: &str) -> Result<StreamConsumer, KafkaError> {
    base(config)
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "latest")
        .set("fetch.wait.max.ms", config.fetch_wait_max_ms.to_string())
        .set("enable.partition.eof", "false")
        .create()
}

/// An admin client for topic management.
pub fn admin(config: &KafkaConfig) -> Result<AdminClient<DefaultClientContext>, KafkaError> {
    base(config).create()
}

/// Admin/metadata timeout from config.
pub fn admin_timeout(config: &KafkaConfig) -> Duration {
    Duration::from_millis(config.admin_timeout_ms)
}
