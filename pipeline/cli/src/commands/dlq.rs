//! `ttlc dlq list | redrive`: the operator's view of the dead-letter queue.
//!
//! Both read the whole `dlq` topic from the beginning without a consumer group, so they never
//! move anyone's offsets. Re-driving writes each selected record's original bytes back to the
//! topic it came from; the sinks are idempotent and event ids deterministic, so re-driving a
//! record twice stores it once.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use clap::{Args, Subcommand};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use ttlc_core::config::Config;
use ttlc_schemas::{DlqRecord, PayloadEncoding};
use ttlc_topics::Topic;

#[derive(Debug, Subcommand)]
pub(crate) enum DlqCommand {
    /// Print DLQ records as JSON lines (oldest first).
    List(Filter),
    /// Write selected DLQ records back to their original topic.
    Redrive {
        #[command(flatten)]
        filter: Filter,
        /// Show what would be re-driven without producing anything.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Which DLQ records to select.
#[derive(Debug, Args)]
pub(crate) struct Filter {
    /// Only records from this stage (e.g. normalize).
    #[arg(long)]
    stage: Option<String>,
    /// Only records with this reason (e.g. schema_validation).
    #[arg(long)]
    reason: Option<String>,
    /// Only this DLQ partition.
    #[arg(long)]
    partition: Option<i32>,
    /// Only this DLQ offset (with --partition).
    #[arg(long, requires = "partition")]
    offset: Option<i64>,
    /// Stop after this many records.
    #[arg(long)]
    limit: Option<usize>,
}

impl Filter {
    fn selects(&self, partition: i32, offset: i64, record: &DlqRecord) -> bool {
        self.stage.as_ref().is_none_or(|s| *s == record.stage)
            && self.reason.as_ref().is_none_or(|r| *r == record.reason)
            && self.partition.is_none_or(|p| p == partition)
            && self.offset.is_none_or(|o| o == offset)
    }

    fn limit(&self) -> usize {
        self.limit.unwrap_or(usize::MAX)
    }
}

pub(crate) async fn run(config: Config, command: DlqCommand) -> anyhow::Result<ExitCode> {
    match command {
        DlqCommand::List(filter) => {
            for (partition, offset, record) in read(&config, &filter)? {
                let mut line = serde_json::to_value(&record)?;
                line["dlqPartition"] = partition.into();
                line["dlqOffset"] = offset.into();
                println!("{line}");
            }
        }
        DlqCommand::Redrive { filter, dry_run } => {
            let selected = read(&config, &filter)?;
            let producer = ttlc_core::kafka::producer(&config.kafka)?;
            let mut pending = Vec::new();
            for (partition, offset, record) in &selected {
                let bytes = match record.payload_encoding {
                    PayloadEncoding::Utf8 => record.payload.clone().into_bytes(),
                    PayloadEncoding::Base64 => base64::engine::general_purpose::STANDARD
                        .decode(&record.payload)
                        .with_context(|| format!("DLQ record {partition}/{offset}: bad base64"))?,
                };
                eprintln!(
                    "{} {partition}/{offset} ({} {}) -> {}",
                    if dry_run { "would re-drive" } else { "re-driving" },
                    record.stage,
                    record.reason,
                    record.topic
                );
                if dry_run {
                    continue;
                }
                let headers = OwnedHeaders::new().insert(Header {
                    key: "redriven-from",
                    value: Some(&format!("{partition}/{offset}")),
                });
                let mut out = FutureRecord::to(&record.topic).payload(&bytes).headers(headers);
                if let Some(key) = &record.key {
                    out = out.key(key.as_bytes());
                }
                // Enqueue without awaiting so deliveries overlap; acks are awaited below.
                let delivery =
                    producer.send_result(out).map_err(|(e, _)| anyhow::anyhow!("re-drive: {e}"))?;
                pending.push(delivery);
            }
            for delivery in futures::future::join_all(pending).await {
                delivery?.map_err(|(e, _)| anyhow::anyhow!("re-drive failed: {e}"))?;
            }
            eprintln!(
                "{} record(s) {}.",
                selected.len(),
                if dry_run { "selected" } else { "re-driven" }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the DLQ from the beginning to its current end (until it has been quiet for a moment:
/// watermarks are not trusted, some brokers report them late).
fn read(config: &Config, filter: &Filter) -> anyhow::Result<Vec<(i32, i64, DlqRecord)>> {
    let topic = Topic::Dlq.full_name(&config.kafka.topic_prefix);
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.kafka.brokers)
        .set("group.id", "ttlc-dlq-cli")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10");
    for (k, v) in &config.kafka.extra {
        client.set(k, v);
    }
    let consumer: BaseConsumer = client.create()?;
    let timeout = ttlc_core::kafka::admin_timeout(&config.kafka);
    let md = consumer.fetch_metadata(Some(&topic), timeout)?;
    let partitions = md
        .topics()
        .first()
        .filter(|t| t.error().is_none())
        .map(|t| t.partitions().len())
        .with_context(|| format!("topic {topic} does not exist; run `ttlc topics apply`"))?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        tpl.add_partition_offset(&topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut out = Vec::new();
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(2) && out.len() < filter.limit() {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else { continue };
        let message = message?;
        quiet_since = Instant::now();
        let (partition, offset) = (message.partition(), message.offset());
        let Some(payload) = message.payload() else { continue };
        match serde_json::from_slice::<DlqRecord>(payload) {
            Ok(record) if filter.selects(partition, offset, &record) => {
                out.push((partition, offset, record))
            }
            Ok(_) => {}
            Err(error) => eprintln!("skipping unreadable DLQ record {partition}/{offset}: {error}"),
        }
    }
    out.sort_by_key(|(_, _, r)| r.failed_at);
    Ok(out)
}
