//! `overlay` actions: messages for the per-stream overlay feed (an OBS browser source served by
//! the API as SSE at `/streams/:id/overlay`).
//!
//! Delivery has two paths, chosen by deployment:
//! - separate processes (the production layout): the API's overlay feed taps the `actions`
//!   topic and shows `overlay` actions of its stream; the executor's part is to audit them
//!   (`actions_log`), which is why performing one cannot fail here;
//! - one process (`ttlc all`): [`OverlayPublisher`] is a bounded in-process broadcast the API can
//!   subscribe to directly, skipping the Kafka round trip. A subscriber that falls more than
//!   `execute.overlay_buffer` messages behind skips the oldest ones: an overlay shows what is
//!   happening now, so dropping stale alerts is right where blocking the executor would not be.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;
use ttlc_schemas::ActionRequest;

/// One overlay message, as the overlay page receives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OverlayMessage {
    pub action_id: String,
    pub stream_id: String,
    pub text: String,
    /// One of `ttlc_rules::OVERLAY_STYLES`; `banner` when the rule did not say.
    pub style: String,
    /// How long to show it; 5000 ms when the rule did not say.
    pub duration_ms: u64,
    pub created_at: DateTime<Utc>,
}

impl OverlayMessage {
    pub fn from_action(a: &ActionRequest) -> Self {
        OverlayMessage {
            action_id: a.action_id.clone(),
            stream_id: a.stream_id.clone(),
            text: a.rendered_template.clone(),
            style: a.params.get("style").and_then(|v| v.as_str()).unwrap_or("banner").to_owned(),
            duration_ms: a.params.get("durationMs").and_then(|v| v.as_u64()).unwrap_or(5_000),
            created_at: a.created_at,
        }
    }
}

/// The in-process overlay broadcast.
#[derive(Debug, Clone)]
pub struct OverlayPublisher {
    tx: broadcast::Sender<OverlayMessage>,
}

impl OverlayPublisher {
    pub fn new(capacity: usize) -> Self {
        OverlayPublisher { tx: broadcast::channel(capacity.max(1)).0 }
    }

    /// A new subscriber; it sees messages published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<OverlayMessage> {
        self.tx.subscribe()
    }

    /// Publishes to current subscribers, if any (none is normal: see the module docs).
    pub fn publish(&self, action: &ActionRequest) {
        let _ = self.tx.send(OverlayMessage::from_action(action));
    }
}
