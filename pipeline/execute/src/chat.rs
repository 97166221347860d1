//! The chat/moderation provider behind `announce` and `moderate` actions.
//!
//! [`ChatProvider`] is the seam: production uses [`EulerChat`], an HTTP client for an
//! Euler-compatible chat and moderation API at a configurable base URL
//! (`execute.chat_api_url`, key `TTLC_SIGN_API_KEY` sent as `x-api-key`); tests use
//! [`RecordingChat`], which records every call and can be told to fail.
//!
//! Endpoints used (relative to the base URL): `POST /webcast/chat` with
//! `{"roomId", "content"}`, and `POST /webcast/moderation` with
//! `{"roomId", "action", "userId", "uniqueId", "durationSeconds"}`. They are the only
//! provider-specific part and live here so a differently shaped relay needs one file changed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::json;

use crate::error::ActionError;

/// A moderation command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Moderation {
    pub stream_id: String,
    /// One of `ttlc_rules::MODERATE_KINDS`.
    pub kind: String,
    pub target_user_id: String,
    pub target_unique_id: String,
    pub duration_seconds: Option<u64>,
}

/// Sends chat messages and moderation commands to a live room.
pub trait ChatProvider: Send + Sync + std::fmt::Debug {
    fn announce<'a>(
        &'a self,
        stream_id: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), ActionError>>;
    fn moderate<'a>(&'a self, command: &'a Moderation) -> BoxFuture<'a, Result<(), ActionError>>;
}

/// The Euler chat/moderation HTTP API.
#[derive(Debug, Clone)]
pub struct EulerChat {
    client: reqwest::Client,
    base: String,
    api_key: Option<Arc<str>>,
}

impl EulerChat {
    pub fn new(
        base_url: &str,
        api_key: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()?;
        Ok(EulerChat {
            client,
            base: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.map(Arc::from),
        })
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> Result<(), ActionError> {
        let Some(key) = self.api_key.as_deref() else {
            return Err(ActionError::Permanent(
                "TTLC_SIGN_API_KEY is not set: the chat API needs it".into(),
            ));
        };
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("x-api-key", key)
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                let transient = e.is_timeout() || e.is_connect();
                let msg = format!("chat API request failed: {}", e.without_url());
                if transient { ActionError::Transient(msg) } else { ActionError::Permanent(msg) }
            })?;
        let status = response.status();
        match status.as_u16() {
            200..=299 => Ok(()),
            408 | 429 | 500..=599 => {
                Err(ActionError::Transient(format!("chat API answered {status}")))
            }
            _ => Err(ActionError::Permanent(format!("chat API answered {status}"))),
        }
    }
}

impl ChatProvider for EulerChat {
    fn announce<'a>(
        &'a self,
        stream_id: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(self.post("/webcast/chat", json!({"roomId": stream_id, "content": text})))
    }

    fn moderate<'a>(&'a self, c: &'a Moderation) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(self.post(
            "/webcast/moderation",
            json!({
                "roomId": c.stream_id,
                "action": c.kind,
                "userId": c.target_user_id,
                "uniqueId": c.target_unique_id,
                "durationSeconds": c.duration_seconds,
            }),
        ))
    }
}

/// One call a [`RecordingChat`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatCall {
    Announce { stream_id: String, text: String },
    Moderate(Moderation),
}

/// A test double that records calls; the first `fail_first` calls fail with a transient error.
#[derive(Debug, Default)]
pub struct RecordingChat {
    calls: Mutex<Vec<ChatCall>>,
    fail_first: Mutex<usize>,
}

impl RecordingChat {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `n` calls fail (transiently) before succeeding.
    pub fn failing_first(n: usize) -> Self {
        RecordingChat { calls: Mutex::default(), fail_first: Mutex::new(n) }
    }

    /// Every successful call so far, in order.
    pub fn calls(&self) -> Vec<ChatCall> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn record(&self, call: ChatCall) -> Result<(), ActionError> {
        if let Ok(mut left) = self.fail_first.lock() {
            if *left > 0 {
                *left -= 1;
                return Err(ActionError::Transient("recording chat: simulated failure".into()));
            }
        }
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call);
        }
        Ok(())
    }
}

impl ChatProvider for RecordingChat {
    fn announce<'a>(
        &'a self,
        stream_id: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        let result = self
            .record(ChatCall::Announce { stream_id: stream_id.to_owned(), text: text.to_owned() });
        Box::pin(async move { result })
    }

    fn moderate<'a>(&'a self, command: &'a Moderation) -> BoxFuture<'a, Result<(), ActionError>> {
        let result = self.record(ChatCall::Moderate(command.clone()));
        Box::pin(async move { result })
    }
}
