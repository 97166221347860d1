//! Retrying setup work (connecting, migrating) until it succeeds or shutdown is requested.
//!
//! A stage whose database is down at start waits for it, like a running stage waits out an
//! outage, instead of exiting: under `ttlc all` one missing dependency must not take the other
//! stages down with it.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio_util::sync::CancellationToken;

/// Calls `attempt` until it returns `Ok`, backing off 0.5 s → 30 s with jitter. `None` when
/// shutdown was requested first.
pub async fn until_ready<T, E, F, Fut>(
    what: &str,
    shutdown: &CancellationToken,
    mut attempt: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(30))
        .with_jitter()
        .without_max_times()
        .build();
    loop {
        let result = tokio::select! {
            r = attempt() => r,
            _ = shutdown.cancelled() => return None,
        };
        match result {
            Ok(value) => return Some(value),
            Err(error) => {
                let delay = delays.next().unwrap_or(Duration::from_secs(30));
                tracing::warn!(what, %error, retry_in_ms = delay.as_millis() as u64, "Not ready yet; retrying.");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => return None,
                }
            }
        }
    }
}
