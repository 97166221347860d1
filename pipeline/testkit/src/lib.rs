//! Helpers for integration tests against the real local stack (`deploy/local/stack.sh up`).
//!
//! Every test gets its own topic prefix and consumer-group prefix, so tests run in parallel and
//! never see each other's records or offsets. Reading back never trusts high watermarks (Tansu's
//! can lag the log): it reads records until the expected count arrives or the log goes quiet.

pub mod pg;

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use ttlc_core::InputRecord;
use ttlc_core::config::Config;
use ttlc_topics::Topic;
use ttlc_topics::spec::TopicPlan;

/// The broker address tests use: `TTLC_BROKERS` or the local stack's default.
pub fn brokers() -> String {
    std::env::var("TTLC_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// A prefix unique to this test run, e.g. `t-normalize-3f2a9c1b.`.
pub fn unique_prefix(tag: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("t-{tag}-{}.", &id[..8])
}

/// A config for the local stack with a fresh topic and group prefix, small batches and fast
/// retries so tests finish quickly.
pub fn config(tag: &str) -> Config {
    let prefix = unique_prefix(tag);
    let mut c = Config::default();
    c.kafka.brokers = brokers();
    c.kafka.topic_prefix = prefix.clone();
    c.runner.group_prefix = prefix;
    c.runner.retry_initial_ms = 50;
    c.runner.retry_max_ms = 500;
    c.runner.batch_timeout_ms = 20;
    c.runner.shutdown_timeout_ms = 5_000;
    if let Ok(url) = std::env::var("TTLC_DATABASE_URL") {
        c.postgres.url = url;
    }
    if let Ok(url) = std::env::var("TTLC_CLICKHOUSE_URL") {
        c.clickhouse.url = url;
    }
    c
}

/// Creates the four topics under the config's prefix with `partitions` partitions each.
pub async fn create_topics(config: &Config, partitions: i32) {
    let admin = ttlc_core::kafka::admin(&config.kafka).expect("admin client");
    let overrides: Vec<(Topic, i32)> = Topic::ALL.iter().map(|t| (*t, partitions)).collect();
    let plan = TopicPlan::new(&config.kafka.topic_prefix, 1, &overrides);
    ttlc_topics::admin::apply(&admin, &plan, Duration::from_secs(10)).await.expect("create topics");
}

/// Produces `(key, payload)` records to `topic` and waits until all are acknowledged.
pub async fn produce(config: &Config, topic: Topic, records: &[(Vec<u8>, Vec<u8>)]) {
    let producer = ttlc_core::kafka::producer(&config.kafka).expect("producer");
    let name = topic.full_name(&config.kafka.topic_prefix);
    let mut pending = Vec::with_capacity(records.len());
    for (key, payload) in records {
        let headers = OwnedHeaders::new().insert(Header { key: "test", value: Some("1") });
        let record = FutureRecord::to(&name).key(key).payload(payload).headers(headers);
        pending.push(producer.send(record, Duration::from_secs(30)));
        // Bound memory and the in-flight window even for large test inputs.
        if pending.len() >= 10_000 {
            for r in futures::future::join_all(pending.drain(..)).await {
                r.expect("delivered");
            }
        }
    }
    for r in futures::future::join_all(pending).await {
        r.expect("delivered");
    }
}

/// Reads `topic` from the beginning until `expected` records arrived or nothing new came for
/// `quiet`; returns what was read, in per-partition order.
pub fn read_all(
    config: &Config,
    topic: Topic,
    expected: usize,
    quiet: Duration,
) -> Vec<InputRecord> {
    let name = topic.full_name(&config.kafka.topic_prefix);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .set("group.id", format!("{}reader-{}", config.runner.group_prefix, uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .expect("reader");
    let md = consumer.fetch_metadata(Some(&name), Duration::from_secs(10)).expect("metadata");
    let partitions = md.topics().first().map(|t| t.partitions().len()).unwrap_or(0);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        tpl.add_partition_offset(&name, p, Offset::Beginning).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let mut last_new = std::time::Instant::now();
    while out.len() < expected && last_new.elapsed() < quiet {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                last_new = std::time::Instant::now();
                out.push(InputRecord {
                    topic: m.topic().to_owned(),
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    payload: m.payload().map(<[u8]>::to_vec),
                    headers: Vec::new(),
                    timestamp_ms: m.timestamp().to_millis(),
                });
            }
            Some(Err(e)) => panic!("read {name}: {e}"),
            None => {}
        }
    }
    out
}

/// Counts records per payload: handy for "every id at least once, none missing" checks.
pub fn count_by<T: std::hash::Hash + Eq>(
    records: &[InputRecord],
    f: impl Fn(&InputRecord) -> T,
) -> HashMap<T, usize> {
    let mut m = HashMap::new();
    for r in records {
        *m.entry(f(r)).or_insert(0) += 1;
    }
    m
}
