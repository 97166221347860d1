//! The mock provider: replays an NDJSON file of raw.v1 envelopes at a fixed rate, for demos and
//! load tests.
//!
//! Every line is validated as a raw.v1 envelope (bad lines are counted and skipped, never
//! published). Each pass over the file gets one fresh sessionId, so looping produces new eventIds
//! instead of duplicates; `provider` becomes `mock` and `ingestedAt` the send time.
//!
//! Pacing: every 5 ms tick sends however many envelopes are due by then (`elapsed × rate − sent`),
//! so the long-run rate is exact even when a tick fires late; the bounded sink applies the
//! broker's backpressure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use ttlc_schemas::{Provider, RawEnvelope};

use crate::publish::EnvelopeSink;

/// What to replay and how fast.
#[derive(Debug, Clone)]
pub struct MockReplay {
    pub file: PathBuf,
    /// Envelopes per second; 0 = as fast as the sink takes them.
    pub rate: u64,
    /// Start over at the end of the file (until shutdown).
    pub looping: bool,
    /// Stop after this long, if set (load tests).
    pub duration: Option<Duration>,
}

/// What a replay did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayStats {
    pub sent: u64,
    pub skipped_lines: u64,
    pub passes: u64,
    pub elapsed: Duration,
    /// `sent / elapsed`, envelopes per second.
    pub achieved_rate: f64,
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0} has no valid raw.v1 line")]
    Empty(PathBuf),
}

/// Replays `spec` into `sink` until the file ends (or, looping, until `shutdown` or `duration`).
pub async fn run(
    spec: &MockReplay,
    sink: &EnvelopeSink,
    shutdown: &CancellationToken,
) -> Result<ReplayStats, ReplayError> {
    let start = Instant::now();
    let deadline = spec.duration.map(|d| start + d);
    let mut pacer = Pacer::new(spec.rate, start);
    let mut stats = ReplayStats {
        sent: 0,
        skipped_lines: 0,
        passes: 0,
        elapsed: Duration::ZERO,
        achieved_rate: 0.0,
    };
    'passes: loop {
        let session = uuid::Uuid::new_v4().to_string();
        let mut lines = open(&spec.file).await?;
        let mut sent_this_pass = 0u64;
        loop {
            let budget = tokio::select! {
                _ = shutdown.cancelled() => break 'passes,
                b = pacer.next_batch() => b,
            };
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break 'passes;
            }
            for _ in 0..budget {
                let line = match lines.next_line().await {
                    Ok(Some(line)) => line,
                    Ok(None) => {
                        stats.passes += 1;
                        if sent_this_pass == 0 {
                            return Err(ReplayError::Empty(spec.file.clone()));
                        }
                        if spec.looping {
                            continue 'passes;
                        }
                        break 'passes;
                    }
                    Err(source) => return Err(ReplayError::Io { path: spec.file.clone(), source }),
                };
                if line.trim().is_empty() {
                    continue;
                }
                let Ok(mut env) = serde_json::from_str::<RawEnvelope>(&line) else {
                    stats.skipped_lines += 1;
                    continue;
                };
                env.session_id.clone_from(&session);
                env.provider = Provider::Mock;
                env.ingested_at = Utc::now();
                let sent = tokio::select! {
                    _ = shutdown.cancelled() => break 'passes,
                    r = sink.send(env) => r,
                };
                if sent.is_err() {
                    break 'passes;
                }
                sent_this_pass += 1;
                stats.sent += 1;
                pacer.sent(1);
            }
        }
    }
    stats.elapsed = start.elapsed();
    stats.achieved_rate = stats.sent as f64 / stats.elapsed.as_secs_f64().max(1e-9);
    Ok(stats)
}

async fn open(path: &Path) -> Result<tokio::io::Lines<BufReader<tokio::fs::File>>, ReplayError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|source| ReplayError::Io { path: path.to_owned(), source })?;
    Ok(BufReader::with_capacity(1 << 20, file).lines())
}

/// Says how many envelopes may go out now so that `sent` tracks `elapsed × rate`.
#[derive(Debug)]
struct Pacer {
    rate: u64,
    start: Instant,
    sent: u64,
    tick: tokio::time::Interval,
}

impl Pacer {
    fn new(rate: u64, start: Instant) -> Self {
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        Pacer { rate, start, sent: 0, tick }
    }

    /// Waits for the next tick and returns how many envelopes are due (a large batch when
    /// unpaced).
    async fn next_batch(&mut self) -> u64 {
        if self.rate == 0 {
            return 4_096;
        }
        loop {
            self.tick.tick().await;
            let due = (self.start.elapsed().as_secs_f64() * self.rate as f64) as u64;
            let n = due.saturating_sub(self.sent);
            if n > 0 {
                return n;
            }
        }
    }

    fn sent(&mut self, n: u64) {
        self.sent += n;
    }
}
