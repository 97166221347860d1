//! One module per subcommand family.

pub(crate) mod all;
pub(crate) mod bench;
pub(crate) mod dlq;
pub(crate) mod maintenance;
pub(crate) mod normalize;
pub(crate) mod replay;
pub(crate) mod stages;
pub(crate) mod token;
pub(crate) mod topics;
pub(crate) mod wiring;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use ttlc_core::config::Config;

use crate::Command;

pub(crate) fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    let config = Config::load(path).context("loading configuration")?;
    ttlc_core::telemetry::init_logging(&config.log);
    Ok(config)
}

pub(crate) async fn dispatch(config: Option<&Path>, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Topics(cmd) => topics::run(load_config(config)?, cmd).await,
        Command::Normalize(args) => normalize::run(config, args).await,
        Command::Dlq(cmd) => dlq::run(load_config(config)?, cmd).await,
        Command::Migrate => stages::migrate(load_config(config)?).await,
        Command::Ingest(args) => {
            stage(config, |config, shutdown| async move {
                if args.provider != ttlc_ingest::cli::ProviderArg::Mock {
                    stages::migrate_for_ingest(&config).await;
                }
                ttlc_ingest::run_ingest(config, args, shutdown).await
            })
            .await
        }
        Command::ArchivePg => stage(config, stages::archive_pg).await,
        Command::ArchiveCh => stage(config, stages::archive_ch).await,
        Command::Rules => {
            stage(config, |c, t| async move { ttlc_rules::run_rules(&c, t).await }).await
        }
        Command::Execute => {
            stage(config, |c, t| async move { ttlc_execute::run_execute(&c, t).await }).await
        }
        Command::Api => {
            stage(config, |c, t| async move {
                // Replays need only PostgreSQL and the broker; channels go through PostgreSQL's
                // control table to whichever `ttlc ingest` processes run.
                stages::migrate_for_api(&c).await;
                let replays = wiring::Replays::new(c.clone(), t.clone());
                let deps = ttlc_api::ApiDeps {
                    channels: Some(Arc::new(ttlc_api::PgChannels::new(&c))),
                    replay: Some(replays.clone()),
                };
                stages::api_with_replays(c, deps, replays, t).await
            })
            .await
        }
        Command::All => all::run(load_config(config)?).await,
        Command::Replay(args) => replay::run(load_config(config)?, args).await,
        Command::Token(args) => token::run(Config::load(config)?, args),
        Command::Prune(args) => maintenance::prune(load_config(config)?, args).await,
        Command::GdprErase(args) => maintenance::gdpr_erase(load_config(config)?, args).await,
        Command::Bench(cmd) => bench::run(config, cmd).await,
        Command::Dev(crate::DevCommand::MockTiktok(args)) => {
            stage(config, |_, shutdown| ttlc_ingest::run_mock_tiktok(args, shutdown)).await
        }
    }
}

/// Runs one stage as the whole process, stopped by SIGINT/SIGTERM.
async fn stage<F, Fut>(config: Option<&Path>, f: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(Config, tokio_util::sync::CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let config = load_config(config)?;
    let shutdown = ttlc_core::shutdown::install();
    f(config, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}
