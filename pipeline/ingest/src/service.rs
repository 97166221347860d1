//! Direct ingest wired together: producer + publisher task + sign client + supervisor. The CLI
//! (`ttlc ingest`), the API (channel start/stop) and the tests all run ingest through this.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use ttlc_core::config::Config;
use ttlc_schemas::Provider;
use ttlc_topics::Topic;

use crate::control::Reconciler;
use crate::direct::{DirectContext, DirectSettings};
use crate::error::IngestError;
use crate::publish::{EnvelopeSink, PublishError, PublishStats, run_publisher};
use crate::record::{Recorder, RecorderTask};
use crate::sign::{SignBudget, SignClient};
use crate::supervisor::{BackoffPolicy, Supervisor};

/// Why ingest could not start or finish cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("cannot create the producer: {0}")]
    Producer(#[from] rdkafka::error::KafkaError),
    #[error("publisher: {0}")]
    Publish(#[from] PublishError),
    #[error("capture file: {0}")]
    Capture(#[from] std::io::Error),
    #[error("the publisher task panicked")]
    PublisherPanicked,
}

/// The publisher half: a bounded sink feeding the `raw` topic.
#[derive(Debug)]
pub struct Publishing {
    pub sink: EnvelopeSink,
    task: JoinHandle<Result<PublishStats, PublishError>>,
    hard_stop: CancellationToken,
    shutdown_timeout: Duration,
}

impl Publishing {
    /// Starts the producer and the publisher task for `config`'s raw topic.
    pub fn start(config: &Config) -> Result<Self, ServiceError> {
        let producer = ttlc_core::kafka::producer(&config.kafka)?;
        let topic = ttlc_core::kafka::topic_name(&config.kafka, Topic::Raw);
        let (sink, rx) = EnvelopeSink::channel(config.ingest.publish_queue);
        let hard_stop = CancellationToken::new();
        let task = tokio::spawn(run_publisher(
            producer,
            topic,
            rx,
            config.ingest.publish_max_in_flight,
            hard_stop.clone(),
        ));
        Ok(Publishing {
            sink,
            task,
            hard_stop,
            shutdown_timeout: Duration::from_millis(config.runner.shutdown_timeout_ms),
        })
    }

    /// Drops this handle's sink, waits for every queued envelope to be acknowledged (within the
    /// shutdown timeout) and flushes the producer. Other sink clones must be dropped first.
    pub async fn finish(self) -> Result<PublishStats, ServiceError> {
        let Publishing { sink, mut task, hard_stop, shutdown_timeout } = self;
        drop(sink);
        let joined = match tokio::time::timeout(shutdown_timeout, &mut task).await {
            Ok(joined) => joined,
            Err(_) => {
                tracing::warn!("Publishing did not finish within the shutdown timeout; giving up.");
                hard_stop.cancel();
                task.await
            }
        };
        Ok(joined.map_err(|_| ServiceError::PublisherPanicked)??)
    }
}

/// Running direct ingest.
#[derive(Debug)]
pub struct IngestService {
    supervisor: Supervisor,
    publishing: Publishing,
    recorder: Option<RecorderTask>,
}

impl IngestService {
    /// Starts the publisher and an empty supervisor of direct connections; add channels with
    /// [`IngestService::supervisor`]. `record` captures every binary frame received.
    pub async fn start(
        config: &Config,
        record: Option<&Path>,
        shutdown: CancellationToken,
    ) -> Result<Self, ServiceError> {
        Self::start_provider(config, Provider::Direct, record, shutdown).await
    }

    /// Like [`IngestService::start`] for `provider` (`Direct` or `Euler`).
    pub async fn start_provider(
        config: &Config,
        provider: Provider,
        record: Option<&Path>,
        shutdown: CancellationToken,
    ) -> Result<Self, ServiceError> {
        if !matches!(provider, Provider::Direct | Provider::Euler) {
            return Err(IngestError::Fatal(format!(
                "{} is not a live provider",
                provider.as_str()
            ))
            .into());
        }
        let ingest = &config.ingest;
        let sign = SignClient::new(config)?;
        let publishing = Publishing::start(config)?;
        let (recorder, recorder_task) = match record {
            Some(path) => {
                let (r, t) = Recorder::create(path).await?;
                (Some(r), Some(t))
            }
            None => (None, None),
        };
        let ctx = DirectContext {
            provider,
            euler_url: ingest.euler_ws_url.clone(),
            sign,
            budget: Arc::new(SignBudget::new(
                ingest.sign_requests_per_sec,
                ingest.sign_max_concurrent,
            )),
            sink: publishing.sink.clone(),
            settings: DirectSettings {
                heartbeat: Duration::from_millis(ingest.heartbeat_interval_ms),
                idle_timeout: Duration::from_millis(ingest.idle_timeout_ms),
                connect_timeout: Duration::from_millis(ingest.request_timeout_ms),
            },
            recorder,
        };
        let supervisor = Supervisor::new(
            ctx,
            BackoffPolicy::from_config(ingest),
            Duration::from_millis(ingest.gift_streak_quiet_ms),
            shutdown,
        );
        Ok(IngestService { supervisor, publishing, recorder: recorder_task })
    }

    /// Start, stop and list channels here.
    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// Runs the channels until `shutdown`, then stops them and flushes. With the control table on
    /// (`ingest.control_poll_ms` > 0) the [`Reconciler`] decides which channels run (`boot` is
    /// requested there) and its leases are released once the channels stopped; with it off,
    /// `boot` runs and ingest also stops when every channel has ended.
    pub async fn run(
        self,
        config: &Config,
        boot: &[String],
        shutdown: &CancellationToken,
    ) -> Result<PublishStats, ServiceError> {
        if config.ingest.control_poll_ms == 0 {
            for c in boot {
                match self.supervisor.start_channel(c) {
                    Ok(name) => tracing::info!(channel = %name, "Channel started."),
                    Err(error) => tracing::error!(%error, "A channel could not be started."),
                }
            }
            self.supervisor.wait_idle().await;
            return self.finish().await;
        }
        let mut reconciler = Reconciler::new(config, boot)?;
        reconciler.run(&self.supervisor, shutdown).await;
        let stats = self.finish().await;
        reconciler.release().await;
        stats
    }

    /// Stops every channel (each says DISCONNECTED), publishes what is queued, flushes.
    pub async fn finish(self) -> Result<PublishStats, ServiceError> {
        let IngestService { supervisor, publishing, recorder } = self;
        supervisor.shutdown(publishing.shutdown_timeout).await;
        let stats = publishing.finish().await?;
        if let Some(r) = recorder {
            r.finish().await?;
        }
        Ok(stats)
    }
}
