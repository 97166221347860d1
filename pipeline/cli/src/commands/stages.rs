//! The consuming stages as subcommands: build the stage, hand it to the runner.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

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

/// Live ingest for `ttlc all`: the direct provider with the configured channels and whatever
/// `/channels` requests in the control table, until shutdown.
pub(crate) async fn ingest(
    service: ttlc_ingest::IngestService,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    migrate_for_ingest(&config).await;
    let stats = service.run(&config, &config.ingest.channels, &shutdown).await?;
    tracing::info!(delivered = stats.delivered, failed = stats.failed, "Ingest stopped.");
    Ok(())
}

/// Applies both stores' migrations before a standalone `ttlc api` serves, when each store's
/// `migrate_on_start` is set, so its routes never meet a missing table. Best effort: the API
/// starts anyway and answers 503 for a store that is down (its `/health` says which).
pub(crate) async fn migrate_for_api(config: &Config) {
    if config.postgres.migrate_on_start {
        let migrate = ttlc_archive::migrate_postgres(&config.postgres.url);
        best_effort(config, "PostgreSQL", "", migrate).await;
    }
    if config.clickhouse.migrate_on_start {
        let migrate = ttlc_archive::migrate_clickhouse(&config.clickhouse.url);
        best_effort(config, "ClickHouse", "", migrate).await;
    }
}

/// Applies the PostgreSQL migrations (the control table) before live ingest starts, when
/// `postgres.migrate_on_start` is set. Best effort: ingest runs its configured channels without
/// PostgreSQL, so an unreachable database is logged here and retried by the reconciler.
pub(crate) async fn migrate_for_ingest(config: &Config) {
    if config.postgres.migrate_on_start && config.ingest.control_poll_ms > 0 {
        let migrate = ttlc_archive::migrate_postgres(&config.postgres.url);
        best_effort(config, "PostgreSQL", "; channel control retries", migrate).await;
    }
}

/// Runs one store's migrations within twice the connect timeout, logging (not returning) a
/// failure: the caller works, degraded, without them.
async fn best_effort<T>(
    config: &Config,
    store: &str,
    then: &str,
    migrate: impl std::future::Future<Output = Result<T, ttlc_archive::ArchiveError>>,
) {
    let bound = Duration::from_millis(config.postgres.connect_timeout_ms).saturating_mul(2);
    match tokio::time::timeout(bound, migrate).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::warn!(%error, "{store} migrations could not be applied{then}."),
        Err(_) => tracing::warn!("{store} migrations timed out{then}."),
    }
}
