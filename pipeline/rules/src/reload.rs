//! Hot reload: the rules stage sees rule changes without a restart.
//!
//! Mechanism: `LISTEN ttlc_rules` on a dedicated connection. The archive migration installed a
//! trigger that runs `pg_notify('ttlc_rules', id)` on every insert, update and delete, and
//! PostgreSQL delivers notifications only when the writing transaction commits, so a reload never
//! sees a half-written change. Each notification (bursts coalesced) triggers a full reload of the
//! enabled rules, which is cheap at rule-set sizes (hundreds). Why not poll `max(updated_at)`:
//! that misses deletes, misses two writes in one timestamp tick and adds up to a second of delay;
//! NOTIFY reacts in milliseconds at no cost while idle.
//!
//! What NOTIFY cannot cover is covered too: after every (re)connect the rules are reloaded (a
//! notification sent while disconnected is lost), and a full reload also runs every
//! `rules.reload_interval_ms` as a safety net (e.g. a pooler in transaction mode that drops
//! LISTEN). A reload that fails keeps the previous rule set: a database outage freezes the rules,
//! it does not empty them.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::engine::{RuleSet, compile};
use crate::store::{NOTIFY_CHANNEL, RuleStore, StoreError};

/// Coalescing window: a burst of writes (an import of 50 rules) becomes one reload.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// Starts the reloader task. The receiver holds `None` until the first successful load; the task
/// stops when `shutdown` is cancelled.
pub fn spawn_reloader(
    store: Arc<RuleStore>,
    interval: Duration,
    shutdown: CancellationToken,
) -> watch::Receiver<Option<Arc<RuleSet>>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move { reload_loop(store, interval, tx, shutdown).await });
    rx
}

/// Loads and compiles the enabled rules. Rules that no longer compile (e.g. their webhook host
/// left the allowlist) are skipped with a warning rather than blocking every other rule.
pub async fn load_rule_set(store: &RuleStore) -> Result<RuleSet, StoreError> {
    let rules = store.load_enabled().await?;
    let total = rules.len();
    let compiled: Vec<_> = rules
        .into_iter()
        .filter_map(|rule| {
            let id = rule.id.clone();
            compile(rule, store.options())
                .map_err(|error| warn!(rule_id = %id, %error, "A stored rule does not compile; it is skipped."))
                .ok()
        })
        .collect();
    info!(rules = compiled.len(), skipped = total - compiled.len(), "Rules loaded.");
    Ok(RuleSet::new(compiled))
}

async fn reload_loop(
    store: Arc<RuleStore>,
    interval: Duration,
    tx: watch::Sender<Option<Arc<RuleSet>>>,
    shutdown: CancellationToken,
) {
    let mut delay = Duration::from_millis(500);
    loop {
        match listen(&store).await {
            Ok((client, mut notified)) => {
                delay = Duration::from_millis(500);
                // After LISTEN, so a change committed from here on is either in this load or
                // notified.
                reload(&store, &tx).await;
                let mut tick = tokio::time::interval(interval.max(Duration::from_millis(100)));
                tick.tick().await; // the first tick is immediate; we just loaded
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        n = notified.recv() => {
                            if n.is_none() {
                                warn!("The rules LISTEN connection was lost; reconnecting.");
                                break;
                            }
                            tokio::select! {
                                _ = shutdown.cancelled() => return,
                                _ = tokio::time::sleep(DEBOUNCE) => {}
                            }
                            while notified.try_recv().is_ok() {}
                            reload(&store, &tx).await;
                        }
                        _ = tick.tick() => reload(&store, &tx).await,
                    }
                }
                drop(client);
            }
            Err(error) => {
                warn!(%error, retry_in = ?delay, "Cannot listen for rule changes yet.");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

async fn reload(store: &RuleStore, tx: &watch::Sender<Option<Arc<RuleSet>>>) {
    match load_rule_set(store).await {
        Ok(set) => {
            crate::telemetry::rules_reloaded(set.len());
            tx.send_replace(Some(Arc::new(set)));
        }
        Err(error) => warn!(%error, "Reloading rules failed; the previous rules stay in effect."),
    }
}

/// Opens a dedicated connection, drives it in a task that turns notifications into a bounded
/// channel (a full channel already means "reload pending"), and runs LISTEN. The channel closes
/// when the connection ends.
async fn listen(
    store: &RuleStore,
) -> Result<(tokio_postgres::Client, mpsc::Receiver<()>), StoreError> {
    let (client, mut connection) = store.connect_raw().await?;
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    debug!(rule_id = n.payload(), "Rule change notified.");
                    let _ = tx.try_send(());
                }
                Ok(_) => {}
                Err(error) => {
                    debug!(%error, "The rules LISTEN connection failed.");
                    break;
                }
            }
        }
    });
    store.set_role(&client).await?;
    client
        .batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    Ok((client, rx))
}
