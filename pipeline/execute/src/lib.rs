//! The action executor: every ActionRequest on `actions` performed once per actionId and
//! audited in `actions_log`.
//!
//! One file per action kind ([`webhook`], `announce`, `moderate`, [`overlay`], `log`; the
//! chat provider behind announce and moderate in [`chat`]), the retry policy and dispatch in
//! [`perform`], idempotency and the audit in [`journal`], and the stage in [`stage`].
//! [`run_execute`] starts it all.

mod announce;
pub mod chat;
mod error;
pub mod journal;
mod log;
mod moderate;
pub mod overlay;
pub mod perform;
pub mod stage;
mod telemetry;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use ttlc_core::config::Config;

pub use announce::MAX_ANNOUNCE_CHARS;
pub use chat::{ChatCall, ChatProvider, EulerChat, Moderation, RecordingChat};
pub use error::{ActionError, ExecuteError};
pub use overlay::{OverlayMessage, OverlayPublisher};
pub use perform::{Performers, RetryPolicy};
pub use stage::ExecuteStage;
pub use webhook::{ACTION_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookClient, sign};

/// The production performers: webhooks signed with `TTLC_WEBHOOK_SECRET`, the Euler chat API at
/// `execute.chat_api_url` with `TTLC_SIGN_API_KEY`, and a fresh overlay broadcast.
pub fn performers(config: &Config) -> Result<Performers, ExecuteError> {
    let secret = config.secrets.webhook_secret.as_ref().map(|s| s.expose());
    let chat = EulerChat::new(
        &config.execute.chat_api_url,
        config.secrets.sign_api_key.as_ref().map(|s| s.expose()),
        Duration::from_millis(config.execute.webhook_timeout_ms),
    )?;
    Ok(Performers {
        webhook: WebhookClient::new(&config.execute, secret)?,
        chat: Arc::new(chat),
        overlay: OverlayPublisher::new(config.execute.overlay_buffer),
    })
}

/// Runs the `execute` stage until `shutdown`: applies migrations when
/// `postgres.migrate_on_start`, then runs the stage through the runner (consumer group `execute`).
pub async fn run_execute(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    run_execute_with(config, performers(config).context("executor setup")?, shutdown).await
}

/// [`run_execute`] with given performers (e.g. `ttlc all` sharing the overlay broadcast with the
/// API, or tests with a recording chat provider).
pub async fn run_execute_with(
    config: &Config,
    performers: Performers,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if config.postgres.migrate_on_start {
        ttlc_archive::migrate_postgres(&config.postgres.url)
            .await
            .context("applying PostgreSQL migrations")?;
    }
    if config.secrets.webhook_secret.is_none() {
        tracing::warn!(
            "TTLC_WEBHOOK_SECRET is not set: webhook actions will fail and go to the DLQ."
        );
    }
    let stage = ExecuteStage::new(config, performers).context("executor setup")?;
    ttlc_core::runner::run(stage, config, shutdown).await.context("execute stage")
}
