//! The consuming stages as subcommands: build the stage, hand it to the runner.

use std::process::ExitCode;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use ttlc_core::Stage;
use ttlc_core::config::Config;

/// Runs `stage` until shutdown; a fatal stage error is the command's error.
pub(crate) async fn run_stage<S: Stage>(
    stage: S,
    config: &Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    ttlc_core::runner::run(stage, config, shutdown).await?;
    Ok(())
}

pub(crate) async fn archive_pg(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let Some(stage) = ttlc_core::retry::until_ready("postgres", &shutdown, || {
        ttlc_archive::PgArchiver::connect(&config)
    })
    .await
    else {
        return Ok(());
    };
    run_stage(stage, &config, shutdown).await
}

pub(crate) async fn archive_ch(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let Some(stage) = ttlc_core::retry::until_ready("clickhouse", &shutdown, || {
        ttlc_archive::ChArchiver::connect(&config)
    })
    .await
    else {
        return Ok(());
    };
    run_stage(stage, &config, shutdown).await
}

pub(crate) async fn normalize(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    run_stage(ttlc_normalize::NormalizeStage::new(), &config, shutdown).await
}

/// `ttlc migrate`: both stores, reporting what was applied.
pub(crate) async fn migrate(config: Config) -> anyhow::Result<ExitCode> {
    let pg = ttlc_archive::migrate_postgres(&config.postgres.url).await?;
    println!("postgres: applied {:?}, already applied {:?}", pg.applied, pg.already_applied);
    let ch = ttlc_archive::migrate_clickhouse(&config.clickhouse.url).await?;
    println!("clickhouse: applied {:?}, already applied {:?}", ch.applied, ch.already_applied);
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn rules(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    ttlc_rules::run_rules(&config, shutdown).await
}

pub(crate) async fn execute(
    config: Config,
    performers: ttlc_execute::Performers,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    ttlc_execute::run_execute_with(&config, performers, shutdown).await
}

/// The API with in-process replays (`deps.replay` is `replays`): once the server has stopped,
/// running replays get to flush what they queued.
pub(crate) async fn api_with_replays(
    config: Config,
    deps: ttlc_api::ApiDeps,
    replays: Arc<super::wiring::Replays>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let served = ttlc_api::serve(&config, deps, shutdown).await;
    replays.drain().await;
    Ok(served?)
}

/// Live ingest for `ttlc all`: the direct provider's supervisor with the configured channels,
/// kept running until shutdown (channels come and go at runtime, through `/channels`).
pub(crate) async fn ingest(
    service: Arc<ttlc_ingest::IngestService>,
    channels: Vec<String>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    for channel in &channels {
        if let Err(error) = service.supervisor().start_channel(channel) {
            tracing::error!(%error, channel = %channel, "A configured channel could not be started.");
        }
    }
    shutdown.cancelled().await;
    // The API holds the other handle until its server has stopped; then flushing can proceed.
    let mut service = service;
    for _ in 0..100 {
        match Arc::try_unwrap(service) {
            Ok(owned) => {
                let stats = owned.finish().await?;
                tracing::info!(
                    delivered = stats.delivered,
                    failed = stats.failed,
                    "Ingest stopped."
                );
                return Ok(());
            }
            Err(shared) => {
                service = shared;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    tracing::warn!("Ingest could not flush: the API still held it after 5 s; channels stopped.");
    Ok(())
}
