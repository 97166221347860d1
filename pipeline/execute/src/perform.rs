//! Dispatch of one action to its kind, and the retry loop around it.
//!
//! Retries use backon's exponential backoff (`execute.retry_initial_ms`, ×2, capped at
//! `execute.retry_max_ms`, with jitter) for at most `execute.retry_max_attempts` attempts, and never
//! past the batch's deadline (`execute.batch_retry_budget_ms` after the batch started): a target
//! that keeps failing costs its batch at most that long before its actions go to the DLQ, and the
//! other partitions of the batch move on. Only [`ActionError::Transient`] errors are retried.

use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use ttlc_core::config::ExecuteConfig;
use ttlc_schemas::{ActionRequest, ActionType};

use crate::chat::ChatProvider;
use crate::error::ActionError;
use crate::overlay::OverlayPublisher;
use crate::webhook::WebhookClient;

/// Everything needed to perform any kind of action.
#[derive(Debug, Clone)]
pub struct Performers {
    pub webhook: WebhookClient,
    pub chat: Arc<dyn ChatProvider>,
    pub overlay: OverlayPublisher,
}

impl Performers {
    /// Performs `action` once.
    pub async fn perform(&self, action: &ActionRequest) -> Result<(), ActionError> {
        match action.action_type {
            ActionType::Webhook => self.webhook.send(action).await,
            ActionType::Announce => crate::announce::announce(self.chat.as_ref(), action).await,
            ActionType::Moderate => crate::moderate::moderate(self.chat.as_ref(), action).await,
            ActionType::Overlay => {
                self.overlay.publish(action);
                Ok(())
            }
            ActionType::Log => {
                crate::log::log(action);
                Ok(())
            }
        }
    }
}

/// The retry settings.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub max_attempts: u32,
    pub batch_budget: Duration,
}

impl RetryPolicy {
    pub fn from_config(c: &ExecuteConfig) -> Self {
        RetryPolicy {
            initial: Duration::from_millis(c.retry_initial_ms),
            max: Duration::from_millis(c.retry_max_ms),
            max_attempts: c.retry_max_attempts.max(1),
            batch_budget: Duration::from_millis(c.batch_retry_budget_ms),
        }
    }
}

/// The result of performing one action, with its retries.
#[derive(Debug, Clone)]
pub struct Attempted {
    pub result: Result<(), ActionError>,
    pub attempts: u32,
    pub elapsed: Duration,
}

/// Performs `action`, retrying transient failures per `policy` until `deadline`.
pub async fn perform_with_retry(
    performers: &Performers,
    action: &ActionRequest,
    policy: RetryPolicy,
    deadline: Instant,
) -> Attempted {
    let started = Instant::now();
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(policy.initial)
        .with_max_delay(policy.max)
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(policy.max_attempts.saturating_sub(1) as usize)
        .build();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let result = performers.perform(action).await;
        let retry_in = match &result {
            Err(e) if e.is_transient() => delays.next().filter(|d| Instant::now() + *d < deadline),
            _ => None,
        };
        match retry_in {
            Some(delay) => {
                if let Err(e) = &result {
                    tracing::debug!(action_id = %action.action_id, attempt = attempts, error = %e, ?delay,
                                    "Action failed; retrying.");
                }
                tokio::time::sleep(delay).await;
            }
            None => return Attempted { result, attempts, elapsed: started.elapsed() },
        }
    }
}
