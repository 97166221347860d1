//! Graceful shutdown: one root cancellation token for the process.
//!
//! Every long-running loop selects on the token. SIGINT or SIGTERM cancels it; a second signal
//! means the operator is impatient, so the process exits at once (offsets that were not committed
//! are simply re-delivered: at-least-once makes that safe).

use tokio_util::sync::CancellationToken;

/// Returns the root token and spawns the task that cancels it on SIGINT/SIGTERM.
pub fn install() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("Shutdown requested; stopping consumers, flushing and committing.");
        trigger.cancel();
        wait_for_signal().await;
        tracing::warn!("Second signal received; exiting immediately.");
        std::process::exit(130);
    });
    token
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(error) => {
                tracing::error!(%error, "Cannot listen for SIGTERM; only Ctrl-C will stop the process.");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
