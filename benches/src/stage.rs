//! `ttlc bench stage`: a stage's end-to-end throughput through the real broker, compared with a
//! pass-through stage (consume → produce, no work) on the same records in the same run.
//!
//! Both run through the same runner with the same batch settings, in separate consumer groups
//! over one `raw` topic, so the ratio isolates the stage's own cost from the broker's limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use rdkafka::producer::FutureRecord;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use ttlc_core::config::Config;
use ttlc_core::{Disposition, InputRecord, Output, Stage, StageError};
use ttlc_topics::Topic;
use ttlc_topics::spec::TopicPlan;

#[derive(Debug, Args)]
pub struct StageBenchArgs {
    /// Raw frames to push through each stage.
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    /// Partitions of the benchmark topics.
    #[arg(long, default_value_t = 12)]
    pub partitions: i32,
    /// NDJSON file of raw.v1 frames to cycle through (seqNo is rewritten to keep ids unique).
    #[arg(long, default_value = "fixtures/demo/mixed.ndjson")]
    pub input: std::path::PathBuf,
}

/// Copies raw records to unified unchanged: the broker-bound ceiling for a 1-in/1-out stage.
#[derive(Debug)]
struct PassThrough;

impl Stage for PassThrough {
    fn name(&self) -> &'static str {
        "bench-passthrough"
    }
    fn inputs(&self) -> Vec<Topic> {
        vec![Topic::Raw]
    }
    async fn handle(&mut self, batch: &[InputRecord]) -> Result<Vec<Disposition>, StageError> {
        Ok(batch
            .iter()
            .map(|r| {
                Disposition::Emit(vec![Output {
                    topic: Topic::Unified,
                    key: r.key.clone().unwrap_or_default(),
                    payload: r.payload.clone().unwrap_or_default(),
                    headers: Vec::new(),
                }])
            })
            .collect())
    }
}

/// Counts records handed to the wrapped stage. The runner calls `handle` again only after the
/// previous batch was acknowledged, so the count trails delivered work by at most one batch.
#[derive(Debug)]
struct Counted<S> {
    inner: S,
    seen: Arc<AtomicUsize>,
}

impl<S: Stage> Stage for Counted<S> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn group(&self) -> &'static str {
        self.inner.group()
    }
    fn inputs(&self) -> Vec<Topic> {
        self.inner.inputs()
    }
    async fn handle(&mut self, batch: &[InputRecord]) -> Result<Vec<Disposition>, StageError> {
        let out = self.inner.handle(batch).await;
        if out.is_ok() {
            self.seen.fetch_add(batch.len(), Ordering::Relaxed);
        }
        out
    }
}

/// Runs the benchmark and prints a report.
pub async fn run(mut config: Config, args: StageBenchArgs) -> anyhow::Result<()> {
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    config.kafka.topic_prefix = format!("{}bench-{}.", config.kafka.topic_prefix, &run_id[..8]);
    config.runner.group_prefix = config.kafka.topic_prefix.clone();
    let admin = ttlc_core::kafka::admin(&config.kafka)?;
    let overrides: Vec<_> = Topic::ALL.iter().map(|t| (*t, args.partitions)).collect();
    let plan =
        TopicPlan::new(&config.kafka.topic_prefix, config.topics.replication_factor, &overrides);
    ttlc_topics::admin::apply(&admin, &plan, Duration::from_secs(30)).await?;

    let frames = load_frames(&args.input, args.events)?;
    println!("Producing {} raw frames to {} partitions…", frames.len(), args.partitions);
    let produce_rate = produce(&config, &frames).await?;
    let passthrough = timed(&config, PassThrough, frames.len()).await?;
    let normalize = timed(&config, ttlc_normalize::NormalizeStage::new(), frames.len()).await?;

    println!();
    println!("| measurement (same run, {} events) | events/s | ratio |", frames.len());
    println!("|---|---:|---:|");
    println!("| raw produce (one rdkafka producer) | {produce_rate:.0} | |");
    println!("| pass-through stage (consume → produce, no work) | {passthrough:.0} | 1.00 |");
    println!("| normalize stage | {normalize:.0} | {:.2} |", normalize / passthrough);
    Ok(())
}

/// Reads the input frames and repeats them up to `n`, rewriting seqNo so each is distinct.
fn load_frames(path: &std::path::Path, n: usize) -> anyhow::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {} (run from the repository root)", path.display()))?;
    let templates: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(!templates.is_empty(), "{} has no frames", path.display());
    Ok((0..n)
        .map(|i| {
            let mut frame = templates[i % templates.len()].clone();
            frame["seqNo"] = Value::from(1_000_000_000 + i as i64);
            let key = frame["streamId"].as_str().unwrap_or_default().as_bytes().to_vec();
            (key, serde_json::to_vec(&frame).unwrap_or_default())
        })
        .collect())
}

async fn produce(config: &Config, frames: &[(Vec<u8>, Vec<u8>)]) -> anyhow::Result<f64> {
    let producer = ttlc_core::kafka::producer(&config.kafka)?;
    let topic = Topic::Raw.full_name(&config.kafka.topic_prefix);
    let start = Instant::now();
    let mut pending = Vec::new();
    for (key, payload) in frames {
        loop {
            match producer.send_result(FutureRecord::to(&topic).key(key).payload(payload)) {
                Ok(f) => {
                    pending.push(f);
                    break;
                }
                // Queue full: let deliveries drain.
                Err(_) => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
    }
    for f in futures::future::join_all(pending).await {
        f?.map_err(|(e, _)| e)?;
    }
    Ok(frames.len() as f64 / start.elapsed().as_secs_f64())
}

/// Runs `stage` until it has handled `n` records; returns records/s.
async fn timed<S: Stage>(config: &Config, stage: S, n: usize) -> anyhow::Result<f64> {
    let seen = Arc::new(AtomicUsize::new(0));
    let name = stage.name();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let config = config.clone();
        let shutdown = shutdown.clone();
        let stage = Counted { inner: stage, seen: seen.clone() };
        async move { ttlc_core::runner::run(stage, &config, shutdown).await }
    });
    // The clock starts at the first record so group join time is not counted.
    while seen.load(Ordering::Relaxed) == 0 {
        anyhow::ensure!(!task.is_finished(), "{name} stopped early");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let start = Instant::now();
    let first = seen.load(Ordering::Relaxed);
    while seen.load(Ordering::Relaxed) < n {
        anyhow::ensure!(!task.is_finished(), "{name} stopped early");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = (n - first) as f64 / start.elapsed().as_secs_f64();
    shutdown.cancel();
    task.await??;
    println!("{name}: {rate:.0} events/s");
    Ok(rate)
}
