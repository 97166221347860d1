//! Many channels per process: one task per channel, started and stopped at runtime, each
//! reconnecting on its own with exponential backoff.
//!
//! Reconnect policy: 1 s, ×2 per consecutive failure, capped at 60 s, ±20% jitter, optional max
//! attempts; a sign-server 429 waits at least its `retry-after`. A connection that was up and then
//! broke starts over at the initial delay. A stream end or a fatal error (rejected API key) ends the
//! channel; shutdown ends every channel after it says DISCONNECTED.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use parking_lot::Mutex;
use rand::Rng as _;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use ttlc_core::config::IngestConfig;
use ttlc_schemas::Provider;

use crate::direct::{self, ChannelCounters, DirectContext, Outcome};
use crate::envelope::Session;
use crate::euler;
use crate::streaks::StreakTracker;
use crate::telemetry::{ConnectionFailed, EnvelopesQueued};

/// Reconnect delays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    pub initial: Duration,
    pub max: Duration,
    /// Fraction of random spread, e.g. 0.2 for ±20%.
    pub jitter: f64,
    /// Consecutive failed attempts before the channel gives up; `None` = never.
    pub max_attempts: Option<u32>,
}

impl BackoffPolicy {
    pub fn from_config(c: &IngestConfig) -> Self {
        BackoffPolicy {
            initial: Duration::from_millis(c.reconnect_initial_ms),
            max: Duration::from_millis(c.reconnect_max_ms),
            jitter: c.reconnect_jitter.clamp(0.0, 1.0),
            max_attempts: (c.reconnect_max_attempts > 0).then_some(c.reconnect_max_attempts),
        }
    }

    /// The delay before attempt `failures + 1`, after `failures` (≥ 1) consecutive failures.
    pub fn delay(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        let base = self.initial.saturating_mul(1u32 << exp).min(self.max);
        let spread = if self.jitter > 0.0 {
            rand::rng().random_range(-self.jitter..=self.jitter)
        } else {
            0.0
        };
        base.mul_f64(1.0 + spread)
    }
}

/// Where a channel is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelState {
    Connecting,
    Connected,
    Backoff,
    /// The LIVE ended.
    Ended,
    /// Gave up: fatal error or max attempts reached.
    Failed,
    Stopped,
}

impl ChannelState {
    /// The lowercase name, as serialized and as stored in `ingest_channels.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelState::Connecting => "connecting",
            ChannelState::Connected => "connected",
            ChannelState::Backoff => "backoff",
            ChannelState::Ended => "ended",
            ChannelState::Failed => "failed",
            ChannelState::Stopped => "stopped",
        }
    }
}

/// A channel's status, as [`Supervisor::list`] reports it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelInfo {
    pub channel: String,
    pub room_id: Option<String>,
    pub state: ChannelState,
    pub session_id: Option<String>,
    /// Connections that reached CONNECTED.
    pub connects: u64,
    /// Failed attempts and broken connections.
    pub failures: u64,
    /// Envelopes queued for publishing (messages and lifecycle).
    pub envelopes: u64,
    pub last_error: Option<String>,
}

#[derive(Debug)]
struct Channel {
    token: CancellationToken,
    task: JoinHandle<()>,
    info: Arc<Mutex<ChannelInfo>>,
    counters: Arc<ChannelCounters>,
}

impl Channel {
    fn snapshot(&self) -> ChannelInfo {
        let mut info = self.info.lock().clone();
        info.connects = self.counters.connects.load(Ordering::Relaxed);
        info.envelopes = self.counters.envelopes.load(Ordering::Relaxed);
        if self.counters.connected.load(Ordering::Relaxed) {
            info.state = ChannelState::Connected;
        }
        info
    }
}

/// Errors of the supervisor's control calls.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("channel {0} is already running")]
    AlreadyRunning(String),
    #[error("`{0}` is not a channel: use @uniqueId or a numeric room id")]
    InvalidChannel(String),
    #[error("the supervisor is shutting down")]
    ShuttingDown,
}

/// Runs the channels of one process.
#[derive(Debug)]
pub struct Supervisor {
    ctx: DirectContext,
    policy: BackoffPolicy,
    streak_quiet: Duration,
    shutdown: CancellationToken,
    channels: Mutex<HashMap<String, Channel>>,
}

/// `@name` for user names, digits for room ids; anything else is rejected.
pub fn normalize_channel(raw: &str) -> Option<String> {
    let name = raw.trim().trim_start_matches('@');
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
    if !valid {
        return None;
    }
    Some(if name.bytes().all(|b| b.is_ascii_digit()) {
        name.to_owned()
    } else {
        format!("@{name}")
    })
}

impl Supervisor {
    pub fn new(
        ctx: DirectContext,
        policy: BackoffPolicy,
        streak_quiet: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        Supervisor { ctx, policy, streak_quiet, shutdown, channels: Mutex::new(HashMap::new()) }
    }

    /// Starts `channel` (`@uniqueId` or a room id) in its own task. A channel that ended or
    /// failed may be started again.
    pub fn start_channel(&self, channel: &str) -> Result<String, SupervisorError> {
        let name = normalize_channel(channel)
            .ok_or_else(|| SupervisorError::InvalidChannel(channel.to_owned()))?;
        if self.shutdown.is_cancelled() {
            return Err(SupervisorError::ShuttingDown);
        }
        let mut channels = self.channels.lock();
        if channels.get(&name).is_some_and(|c| !c.task.is_finished()) {
            return Err(SupervisorError::AlreadyRunning(name));
        }
        let info = Arc::new(Mutex::new(ChannelInfo {
            channel: name.clone(),
            room_id: None,
            state: ChannelState::Connecting,
            session_id: None,
            connects: 0,
            failures: 0,
            envelopes: 0,
            last_error: None,
        }));
        let counters = Arc::new(ChannelCounters::default());
        let token = self.shutdown.child_token();
        let run = ChannelRun {
            ctx: self.ctx.clone(),
            channel: name.clone(),
            policy: self.policy,
            streaks: StreakTracker::new(self.streak_quiet),
            info: info.clone(),
            counters: counters.clone(),
            token: token.clone(),
        };
        let task = tokio::spawn(run.run());
        channels.insert(name.clone(), Channel { token, task, info, counters });
        Ok(name)
    }

    /// Stops `channel` and waits (up to 10 s) for it to say DISCONNECTED; false if not known.
    pub async fn stop_channel(&self, channel: &str) -> bool {
        let Some(name) = normalize_channel(channel) else { return false };
        let Some(ch) = self.channels.lock().remove(&name) else { return false };
        ch.token.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), ch.task).await;
        true
    }

    /// Every channel's status, sorted by name.
    pub fn list(&self) -> Vec<ChannelInfo> {
        let mut v: Vec<ChannelInfo> =
            self.channels.lock().values().map(Channel::snapshot).collect();
        v.sort_by(|a, b| a.channel.cmp(&b.channel));
        v
    }

    /// Waits until every channel task has ended on its own (stream end, failure).
    pub async fn wait_idle(&self) {
        loop {
            let all_done = self.channels.lock().values().all(|c| c.task.is_finished());
            if all_done {
                return;
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    /// Stops every channel and waits for them within `deadline`; consumes the supervisor so its
    /// envelope sink is released and the publisher can drain.
    pub async fn shutdown(self, deadline: Duration) {
        let channels: Vec<Channel> = self.channels.lock().drain().map(|(_, c)| c).collect();
        for c in &channels {
            c.token.cancel();
        }
        let wait = futures::future::join_all(channels.into_iter().map(|c| c.task));
        if tokio::time::timeout(deadline, wait).await.is_err() {
            tracing::warn!("Some channels did not stop within the shutdown deadline.");
        }
    }
}

/// One channel's task.
struct ChannelRun {
    ctx: DirectContext,
    channel: String,
    policy: BackoffPolicy,
    streaks: StreakTracker,
    info: Arc<Mutex<ChannelInfo>>,
    counters: Arc<ChannelCounters>,
    token: CancellationToken,
}

impl ChannelRun {
    fn set(&self, f: impl FnOnce(&mut ChannelInfo)) {
        f(&mut self.info.lock());
    }

    async fn run(mut self) {
        let mut failures: u32 = 0;
        let mut room_id: Option<String> = None;
        let final_state = loop {
            if self.token.is_cancelled() {
                break ChannelState::Stopped;
            }
            self.set(|i| i.state = ChannelState::Connecting);
            let (session, result) = match room_id.clone() {
                Some(rid) => {
                    let session = Session::new(rid.clone(), self.ctx.provider);
                    self.set(|i| i.session_id = Some(session.session_id().to_owned()));
                    let r = if self.ctx.provider == Provider::Euler {
                        euler::run_connection(
                            &self.ctx,
                            &self.channel,
                            &session,
                            &self.counters,
                            &self.token,
                        )
                        .await
                    } else {
                        direct::run_connection(
                            &self.ctx,
                            &self.channel,
                            &rid,
                            &session,
                            &mut self.streaks,
                            &self.counters,
                            &self.token,
                        )
                        .await
                    };
                    (session, r)
                }
                None => {
                    let resolved = tokio::select! {
                        _ = self.token.cancelled() => break ChannelState::Stopped,
                        r = self.ctx.sign.resolve_room_id(&self.channel, &self.ctx.budget) => r,
                    };
                    match resolved {
                        Ok(rid) => {
                            self.set(|i| i.room_id = Some(rid.clone()));
                            room_id = Some(rid);
                            continue;
                        }
                        // No room id yet: the ERROR envelope is keyed by the channel name.
                        Err(e) => (
                            Session::new(self.channel.trim_start_matches('@'), self.ctx.provider),
                            Err(direct::Failure { error: e, connected: false, close_code: 1006 }),
                        ),
                    }
                }
            };
            match result {
                Ok(Outcome::Shutdown) => break ChannelState::Stopped,
                Ok(Outcome::StreamEnded) => break ChannelState::Ended,
                Err(failure) => {
                    if failure.connected {
                        // The connection worked; whatever broke it, start over at the initial delay.
                        failures = 0;
                    }
                    failures += 1;
                    let message = failure.error.to_string();
                    let give_up = !failure.error.is_retryable()
                        || self.policy.max_attempts.is_some_and(|m| failures >= m);
                    let env = if failure.connected {
                        session.disconnected(failure.close_code, &message, !give_up)
                    } else {
                        session.error(&message, failure.error.code())
                    };
                    let delay = self
                        .policy
                        .delay(failures)
                        .max(failure.error.retry_after().unwrap_or_default());
                    ConnectionFailed {
                        provider: self.ctx.provider.as_str(),
                        channel: &self.channel,
                        session_id: session.session_id(),
                        code: failure.error.code(),
                        error: &message,
                        retry_in: (!give_up).then_some(delay),
                    }
                    .emit();
                    self.set(|i| {
                        i.failures += 1;
                        i.last_error = Some(message);
                    });
                    if self.ctx.sink.send(env).await.is_err() {
                        break ChannelState::Stopped;
                    }
                    self.counters.envelopes.fetch_add(1, Ordering::Relaxed);
                    EnvelopesQueued { provider: self.ctx.provider.as_str(), count: 1 }.emit();
                    if give_up {
                        break ChannelState::Failed;
                    }
                    self.set(|i| i.state = ChannelState::Backoff);
                    tokio::select! {
                        _ = self.token.cancelled() => break ChannelState::Stopped,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        };
        self.set(|i| i.state = final_state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_cap_and_stay_within_jitter() {
        let p = BackoffPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            jitter: 0.2,
            max_attempts: None,
        };
        for (failures, base) in [(1u32, 1.0f64), (2, 2.0), (3, 4.0), (7, 60.0), (40, 60.0)] {
            for _ in 0..50 {
                let d = p.delay(failures).as_secs_f64();
                assert!(d >= base * 0.8 - 1e-9 && d <= base * 1.2 + 1e-9, "{failures}: {d}");
            }
        }
        let exact = BackoffPolicy { jitter: 0.0, ..p };
        assert_eq!(exact.delay(3), Duration::from_secs(4));
    }

    #[test]
    fn channel_names_are_normalized() {
        assert_eq!(normalize_channel("alice").as_deref(), Some("@alice"));
        assert_eq!(normalize_channel("@alice").as_deref(), Some("@alice"));
        assert_eq!(normalize_channel("7311").as_deref(), Some("7311"));
        assert_eq!(normalize_channel("bad name"), None);
        assert_eq!(normalize_channel("@"), None);
    }
}
