//! `ttlc all`: every stage in one process, for small installs.
//!
//! Each stage is still its own consumer group and its own task; they share only the process and
//! the root shutdown token. The first stage to fail stops the others (a half-running pipeline
//! would silently fall behind), and Ctrl-C stops all of them within the shutdown bound.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::task::JoinSet;
use ttlc_core::config::Config;

use super::stages;

pub(crate) async fn run(config: Config) -> anyhow::Result<ExitCode> {
    let shutdown = ttlc_core::shutdown::install();
    let performers = ttlc_execute::performers(&config)?;
    let ingest = ttlc_ingest::IngestService::start(&config, None, shutdown.clone()).await?;
    let replays = super::wiring::Replays::new(config.clone(), shutdown.clone());
    // Channels go through the control table here too (one code path with `ttlc api` + `ttlc
    // ingest`): a POST's NOTIFY wakes the ingest task's reconciler at once, and requested
    // channels survive a restart.
    let deps = ttlc_api::ApiDeps {
        channels: Some(Arc::new(ttlc_api::PgChannels::new(&config))),
        replay: Some(replays.clone()),
    };
    let stages: Vec<(&'static str, StageFuture)> = vec![
        ("ingest", Box::pin(stages::ingest(ingest, config.clone(), shutdown.clone()))),
        ("normalize", Box::pin(stages::normalize(config.clone(), shutdown.clone()))),
        ("archive-pg", Box::pin(stages::archive_pg(config.clone(), shutdown.clone()))),
        ("archive-ch", Box::pin(stages::archive_ch(config.clone(), shutdown.clone()))),
        ("rules", Box::pin(stages::rules(config.clone(), shutdown.clone()))),
        ("execute", Box::pin(stages::execute(config.clone(), performers, shutdown.clone()))),
        (
            "api",
            Box::pin(stages::api_with_replays(config.clone(), deps, replays, shutdown.clone())),
        ),
    ];
    let mut tasks = JoinSet::new();
    for (name, stage) in stages {
        tasks.spawn(async move { (name, stage.await) });
    }
    tracing::info!(stages = tasks.len(), "All stages started.");

    let mut failed = false;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((name, Ok(()))) => tracing::info!(stage = name, "Stage stopped."),
            Ok((name, Err(error))) => {
                tracing::error!(stage = name, error = %format!("{error:#}"), "Stage failed; stopping the others.");
                failed = true;
                shutdown.cancel();
            }
            Err(error) => {
                tracing::error!(%error, "A stage task panicked; stopping the others.");
                failed = true;
                shutdown.cancel();
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

type StageFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;
