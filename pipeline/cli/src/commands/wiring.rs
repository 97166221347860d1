//! Glue between the API's control traits and the components behind them: channel control over
//! the in-process ingest supervisor (`ttlc all` only: a standalone `ttlc api` has no supervisor
//! in its process, so its `/channels` routes answer 501 until a control topic exists), and session
//! replays over the replay provider, which needs only PostgreSQL and the broker and so runs in
//! both `ttlc all` and `ttlc api`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use ttlc_api::{ChannelControl, ChannelInfo, ControlError, ReplayControl};
use ttlc_core::config::Config;
use ttlc_ingest::replay::{PreparedReplay, ReplayOptions};
use ttlc_ingest::service::Publishing;
use ttlc_ingest::{IngestError, IngestService, SupervisorError};

/// `/channels` backed by the ingest supervisor running in this process.
#[derive(Debug)]
pub(crate) struct SupervisorChannels(pub(crate) Arc<IngestService>);

fn info(c: ttlc_ingest::ChannelInfo) -> ChannelInfo {
    let state = serde_json::to_value(c.state).ok().and_then(|v| v.as_str().map(str::to_owned));
    ChannelInfo {
        unique_id: c.channel.trim_start_matches('@').to_owned(),
        stream_id: c.room_id,
        state: state.unwrap_or_else(|| "unknown".into()),
        started_at: None,
    }
}

impl ChannelControl for SupervisorChannels {
    fn start<'a>(
        &'a self,
        unique_id: &'a str,
        _stream_id: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ChannelInfo, ControlError>> {
        async move {
            let channel =
                if unique_id.starts_with('@') || unique_id.chars().all(|c| c.is_ascii_digit()) {
                    unique_id.to_owned()
                } else {
                    format!("@{unique_id}")
                };
            let supervisor = self.0.supervisor();
            let name = supervisor.start_channel(&channel).map_err(|e| match e {
                SupervisorError::AlreadyRunning(_) => ControlError::Conflict(e.to_string()),
                SupervisorError::InvalidChannel(_) => ControlError::Invalid(e.to_string()),
                SupervisorError::ShuttingDown => ControlError::Unavailable(e.to_string()),
            })?;
            supervisor.list().into_iter().find(|c| c.channel == name).map(info).ok_or_else(|| {
                ControlError::Unavailable("channel vanished right after start".into())
            })
        }
        .boxed()
    }

    fn stop<'a>(&'a self, unique_id: &'a str) -> BoxFuture<'a, Result<ChannelInfo, ControlError>> {
        async move {
            let channel = if unique_id.starts_with('@') {
                unique_id.to_owned()
            } else {
                format!("@{unique_id}")
            };
            let before = self.0.supervisor().list().into_iter().find(|c| c.channel == channel);
            if !self.0.supervisor().stop_channel(&channel).await {
                return Err(ControlError::NotFound(format!("channel {channel} is not running")));
            }
            let mut stopped = before.map(info).unwrap_or(ChannelInfo {
                unique_id: unique_id.trim_start_matches('@').to_owned(),
                stream_id: None,
                state: String::new(),
                started_at: None,
            });
            stopped.state = "stopped".into();
            Ok(stopped)
        }
        .boxed()
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<ChannelInfo>, ControlError>> {
        let channels = self.0.supervisor().list().into_iter().map(info).collect();
        async move { Ok(channels) }.boxed()
    }
}

/// Replays running at once per process; more are refused (503) rather than queued, so a burst of
/// requests cannot pile up producers and database connections.
const MAX_CONCURRENT_REPLAYS: usize = 4;

/// `POST /sessions/{id}/replay` backed by the replay provider: each replay gets its own publisher
/// and runs as a background task that stops with `shutdown`.
#[derive(Debug)]
pub(crate) struct Replays {
    config: Config,
    shutdown: CancellationToken,
    tasks: Mutex<JoinSet<()>>,
}

impl Replays {
    pub(crate) fn new(config: Config, shutdown: CancellationToken) -> Arc<Self> {
        Arc::new(Replays { config, shutdown, tasks: Mutex::new(JoinSet::new()) })
    }

    /// After shutdown: waits (bounded) for running replays to flush what they queued.
    pub(crate) async fn drain(&self) {
        let mut tasks = std::mem::take(&mut *self.lock());
        // Each replay flushes within the shutdown timeout; a little on top for the stop itself.
        let bound =
            Duration::from_millis(self.config.runner.shutdown_timeout_ms) + Duration::from_secs(1);
        if tokio::time::timeout(bound, async { while tasks.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            tracing::warn!("Replays did not finish flushing in time; abandoning them.");
            tasks.abort_all();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, JoinSet<()>> {
        // A panic elsewhere while holding the lock leaves a JoinSet that is still consistent.
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Running replays, after forgetting the finished ones (keeps the set bounded).
    fn running(&self) -> usize {
        let mut tasks = self.lock();
        while tasks.try_join_next().is_some() {}
        tasks.len()
    }
}

fn control_error(e: IngestError) -> ControlError {
    match e {
        IngestError::SessionNotFound(_) => ControlError::NotFound(e.to_string()),
        IngestError::Fatal(_) => ControlError::Invalid(e.to_string()),
        other => ControlError::Unavailable(other.to_string()),
    }
}

impl ReplayControl for Replays {
    fn start<'a>(
        &'a self,
        session_id: &'a str,
        stream_id: &'a str,
        speed: f64,
    ) -> BoxFuture<'a, Result<String, ControlError>> {
        async move {
            if self.shutdown.is_cancelled() {
                return Err(ControlError::Unavailable("shutting down".into()));
            }
            if self.running() >= MAX_CONCURRENT_REPLAYS {
                return Err(ControlError::Unavailable("too many replays are running".into()));
            }
            let prepared = PreparedReplay::prepare_in_stream(
                &self.config,
                session_id,
                Some(stream_id),
                ReplayOptions::new(speed),
            )
            .await
            .map_err(control_error)?;
            let publishing = Publishing::start(&self.config)
                .map_err(|e| ControlError::Unavailable(e.to_string()))?;
            let new_session = prepared.new_session_id().to_owned();
            let shutdown = self.shutdown.clone();
            self.lock().spawn(async move {
                let replay = prepared.run(&publishing.sink, &shutdown, |_| {}).await;
                let published = publishing.finish().await;
                match (replay, published) {
                    (Ok(stats), Ok(published)) => tracing::info!(
                        original = %stats.original_session_id,
                        session = %stats.new_session_id,
                        sent = stats.sent,
                        delivered = published.delivered,
                        failed = published.failed,
                        interrupted = stats.interrupted,
                        "Replay finished."
                    ),
                    (Err(error), _) => tracing::error!(%error, "Replay failed."),
                    (_, Err(error)) => tracing::error!(%error, "Replay could not flush."),
                }
            });
            Ok(new_session)
        }
        .boxed()
    }
}
