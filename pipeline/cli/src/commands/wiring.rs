//! Glue between the API's replay control and the replay provider, which needs only PostgreSQL
//! and the broker and so runs in both `ttlc all` and `ttlc api`. (Channel control needs no glue:
//! the API's `PgChannels` and ingest's reconciler meet in PostgreSQL's `ingest_channels` table, so
//! `/channels` works whether ingest runs in the API's process or in separate `ttlc ingest`
//! processes.)

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use ttlc_api::{ControlError, ReplayControl};
use ttlc_core::config::Config;
use ttlc_ingest::IngestError;
use ttlc_ingest::replay::{PreparedReplay, ReplayOptions};
use ttlc_ingest::service::Publishing;

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
