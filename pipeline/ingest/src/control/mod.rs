//! Channel control through PostgreSQL: live ingest runs the channels requested in the
//! `ingest_channels` table, wherever the request came from (`POST /channels` on a standalone
//! `ttlc api` or in `ttlc all`, or `--channel` at boot), and reports their state there.
//!
//! Why a table rather than a control topic: the API must answer "is @x running, and how" at any
//! time, which is a query over current state, not a log to replay; and a lease column is the
//! simplest way to let several `ttlc ingest` processes share the channels without ever running
//! one twice. The table is the desired state; ingest converges on it:
//!
//! - every `ingest.control_poll_ms`, and at once when the table's trigger `NOTIFY`s a start or
//!   stop, the [`Reconciler`] renews its leases and writes each channel's status, stops what was
//!   stopped (or taken over by another process), claims requested channels nobody holds, up to
//!   `ingest.max_channels`, and starts them;
//! - a channel whose task ended (the LIVE ended, or it failed) stays ended until it is requested
//!   again (a newer `requested_at`), as with the in-process supervisor;
//! - a channel requested by a STREAMER whose room turns out to be another stream is stopped and
//!   the request refused (`failed`, with the reason in `last_error`);
//! - PostgreSQL down: the running channels keep running, the error is logged once, the next poll
//!   retries. Leases may then run out, and another process that can reach PostgreSQL may claim a
//!   channel; the first reconcile after the outage sees it and stops the copy here;
//! - at shutdown, after the channels stopped, every lease is released so a successor need not
//!   wait for them to expire.

mod store;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use ttlc_core::config::Config;

use crate::error::IngestError;
use crate::supervisor::{
    ChannelInfo, ChannelState, Supervisor, SupervisorError, normalize_channel,
};
pub use store::NOTIFY_CHANNEL;
use store::{ControlStore, Held, Status};

/// Notifications within this window after the first become one reconcile.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// Longest time releasing the leases may add to a shutdown.
const RELEASE_BOUND: Duration = Duration::from_secs(3);

/// The table's key for a channel: the supervisor's name without the `@`.
pub fn table_id(channel: &str) -> Option<String> {
    normalize_channel(channel).map(|n| n.trim_start_matches('@').to_owned())
}

/// The supervisor's name for a table key (`alice` → `@alice`, digits stay a room id).
fn supervisor_name(unique_id: &str) -> Option<String> {
    normalize_channel(unique_id)
}

/// What this process started, per table key.
#[derive(Debug, Clone)]
struct Local {
    /// The request this run answers: a newer one restarts the channel once it has ended.
    /// `None` for a boot channel started without the table: its row's request is taken as the
    /// one it answers (comparing with this host's clock would mix two clocks).
    requested_at: Option<DateTime<Utc>>,
}

/// Keeps this process's channels in line with the control table.
#[derive(Debug)]
pub struct Reconciler {
    store: ControlStore,
    poll: Duration,
    max_channels: usize,
    /// Channels given at boot, requested in the table on the first reconcile that reaches it.
    boot: Vec<String>,
    boot_requested: bool,
    local: HashMap<String, Local>,
    /// True while PostgreSQL fails, so an outage is logged once, not every poll.
    failing: bool,
}

/// An id for this process's leases: host and pid to find it, a random part so a restarted
/// process with the same pid never inherits its predecessor's leases.
fn instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "ingest".into());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &random[..8])
}

impl Reconciler {
    /// A reconciler for `config`, with `boot` channels (`@uniqueId` or room ids) to request.
    /// Invalid boot channels are logged and skipped.
    pub fn new(config: &Config, boot: &[String]) -> Result<Self, IngestError> {
        let mut ids: Vec<String> = Vec::new();
        for channel in boot {
            match table_id(channel) {
                Some(id) if !ids.contains(&id) => ids.push(id),
                Some(_) => {}
                None => {
                    tracing::error!(channel = %channel, "Not a channel: use @uniqueId or a numeric room id.")
                }
            }
        }
        Ok(Reconciler {
            store: ControlStore::new(config, instance_id())?,
            poll: Duration::from_millis(config.ingest.control_poll_ms.max(1)),
            max_channels: config.ingest.max_channels,
            boot: ids,
            boot_requested: false,
            local: HashMap::new(),
            failing: false,
        })
    }

    /// The id this process's leases carry (`claimed_by`).
    pub fn instance(&self) -> &str {
        self.store.instance()
    }

    /// Reconciles until `shutdown`. If PostgreSQL cannot be reached at first, the boot channels
    /// run without the table until it can (ingest must not depend on PostgreSQL being up).
    pub async fn run(&mut self, supervisor: &Supervisor, shutdown: &CancellationToken) {
        tracing::info!(instance = %self.instance(), "Channel control started.");
        let first = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = self.reconcile(supervisor) => r,
        };
        if let Err(error) = first {
            tracing::warn!(%error, "The control table cannot be used (see error); the configured channels run without it until it can.");
            self.failing = true;
            self.store.reset();
            for id in self.boot.clone() {
                self.start(supervisor, &id, None);
            }
        }
        let mut tick = tokio::time::interval(self.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // immediate; we just reconciled
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
                () = self.store.notified() => {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        () = tokio::time::sleep(DEBOUNCE) => {}
                    }
                    self.store.drain_notifications();
                }
            }
            let result = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = self.reconcile(supervisor) => r,
            };
            match result {
                Ok(()) if self.failing => {
                    self.failing = false;
                    tracing::info!("Channel control works again.");
                }
                Ok(()) => {}
                Err(error) => {
                    self.store.reset();
                    if !self.failing {
                        tracing::warn!(%error, "Channel control failed (see error); running channels keep running, retrying every poll.");
                    } else {
                        tracing::debug!(%error, "Channel control still fails.");
                    }
                    self.failing = true;
                }
            }
        }
    }

    /// Releases every lease of this process (call after its channels stopped), within
    /// [`RELEASE_BOUND`]: shutdown must stay bounded, and unreleased leases expire anyway.
    pub async fn release(mut self) {
        match tokio::time::timeout(RELEASE_BOUND, self.store.release_all()).await {
            Ok(Ok(n)) => tracing::info!(channels = n, "Channel leases released."),
            Ok(Err(error)) => {
                tracing::warn!(%error, "Channel leases could not be released; they expire on their own.");
            }
            Err(_) => {
                tracing::warn!("Releasing channel leases timed out; they expire on their own.")
            }
        }
    }

    /// One pass: request the boot channels (once), renew and report, stop, claim and start.
    async fn reconcile(&mut self, supervisor: &Supervisor) -> Result<(), IngestError> {
        if !self.boot_requested {
            self.store.request(&self.boot).await?;
            self.boot_requested = true;
        }
        let snapshot = self.snapshot(supervisor);
        let statuses: Vec<Status> =
            self.local.keys().map(|id| status(id, snapshot.get(id))).collect();
        let held = self.store.renew(&statuses).await?;

        let mut lost: Vec<String> = self.local.keys().cloned().collect();
        lost.retain(|id| !held.iter().any(|h| &h.unique_id == id));
        let mut stopped = Vec::new();
        let mut refused = Vec::new();
        for h in &held {
            let local = self.local.get_mut(&h.unique_id);
            let answered = local.map(|l| *l.requested_at.get_or_insert(h.requested_at));
            if !h.running {
                stopped.push(h.unique_id.clone());
            } else if let Some(reason) = foreign_room(h, snapshot.get(&h.unique_id)) {
                refused.push((h.unique_id.clone(), reason));
            } else if self.ended(&h.unique_id, &snapshot)
                && answered.is_some_and(|at| h.requested_at > at)
            {
                tracing::info!(channel = %h.unique_id, "Channel requested again after it ended; restarting it.");
                self.start(supervisor, &h.unique_id, Some(h.requested_at));
            }
        }
        for id in &lost {
            tracing::warn!(channel = %id, "This process no longer holds the channel (another ingest process took it, or its row was erased); stopping it here.");
        }
        let halt: Vec<String> =
            lost.iter().chain(&stopped).chain(refused.iter().map(|(id, _)| id)).cloned().collect();
        self.stop(supervisor, &halt).await;
        self.store.release(&stopped, "stopped", None, false).await?;
        for (id, reason) in &refused {
            tracing::warn!(channel = %id, %reason, "Channel request refused.");
            self.store.release(std::slice::from_ref(id), "failed", Some(reason), true).await?;
        }

        let room = self.max_channels.saturating_sub(self.local.len());
        let running: Vec<String> = self.local.keys().cloned().collect();
        let claimed = self.store.claim(&running, room as i64).await?;
        let mut invalid = Vec::new();
        for h in claimed {
            if !self.start(supervisor, &h.unique_id, Some(h.requested_at)) {
                invalid.push(h.unique_id);
            }
        }
        let reason = "not a channel: use a TikTok @uniqueId or a numeric room id";
        self.store.release(&invalid, "failed", Some(reason), true).await
    }

    /// Starts `id` in the supervisor; false if it is not a valid channel.
    fn start(
        &mut self,
        supervisor: &Supervisor,
        id: &str,
        requested_at: Option<DateTime<Utc>>,
    ) -> bool {
        let Some(name) = supervisor_name(id) else { return false };
        match supervisor.start_channel(&name) {
            Ok(_) | Err(SupervisorError::AlreadyRunning(_)) => {
                tracing::info!(channel = %name, "Channel started.");
                self.local.insert(id.to_owned(), Local { requested_at });
                true
            }
            Err(SupervisorError::InvalidChannel(_)) => false,
            // Shutting down: the loop ends on the same token.
            Err(SupervisorError::ShuttingDown) => true,
        }
    }

    /// Stops `ids` here, all at once (each waits for its DISCONNECTED).
    async fn stop(&mut self, supervisor: &Supervisor, ids: &[String]) {
        let names: Vec<String> = ids
            .iter()
            .filter(|id| self.local.remove(*id).is_some())
            .filter_map(|id| supervisor_name(id))
            .collect();
        futures::future::join_all(names.iter().map(|n| supervisor.stop_channel(n))).await;
        for name in &names {
            tracing::info!(channel = %name, "Channel stopped.");
        }
    }

    fn ended(&self, id: &str, snapshot: &HashMap<String, ChannelInfo>) -> bool {
        snapshot.get(id).is_some_and(|c| {
            matches!(c.state, ChannelState::Ended | ChannelState::Failed | ChannelState::Stopped)
        })
    }

    /// The supervisor's channels by table key.
    fn snapshot(&self, supervisor: &Supervisor) -> HashMap<String, ChannelInfo> {
        supervisor
            .list()
            .into_iter()
            .filter_map(|c| table_id(&c.channel).map(|id| (id, c)))
            .collect()
    }
}

/// What to report for `id`: the supervisor's view, or `connecting` if it has none yet.
fn status(id: &str, info: Option<&ChannelInfo>) -> Status {
    match info {
        Some(c) => Status {
            unique_id: id.to_owned(),
            state: c.state.as_str().to_owned(),
            room_id: c.room_id.clone(),
            session_id: c.session_id.clone(),
            last_error: c.last_error.clone(),
        },
        None => Status {
            unique_id: id.to_owned(),
            state: ChannelState::Connecting.as_str().to_owned(),
            ..Status::default()
        },
    }
}

/// Why a STREAMER's channel must not run: its room is not their stream. An operator's channel
/// (no owner) may be any room.
fn foreign_room(held: &Held, info: Option<&ChannelInfo>) -> Option<String> {
    let owner = held.owner_stream_id.as_deref()?;
    let room = info?.room_id.as_deref()?;
    (room != owner)
        .then(|| format!("the room of @{} is {room}, not stream {owner}", held.unique_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(room: Option<&str>) -> ChannelInfo {
        ChannelInfo {
            channel: "@alice".into(),
            room_id: room.map(str::to_owned),
            state: ChannelState::Connected,
            session_id: None,
            connects: 1,
            failures: 0,
            envelopes: 0,
            last_error: None,
        }
    }

    fn held(owner: Option<&str>) -> Held {
        Held {
            unique_id: "alice".into(),
            running: true,
            requested_at: Utc::now(),
            owner_stream_id: owner.map(str::to_owned),
        }
    }

    #[test]
    fn table_ids_drop_the_at_and_keep_room_ids() {
        assert_eq!(table_id("@alice").as_deref(), Some("alice"));
        assert_eq!(table_id("alice").as_deref(), Some("alice"));
        assert_eq!(table_id("7311").as_deref(), Some("7311"));
        assert_eq!(table_id("bad name"), None);
        assert_eq!(supervisor_name("alice").as_deref(), Some("@alice"));
        assert_eq!(supervisor_name("7311").as_deref(), Some("7311"));
    }

    #[test]
    fn a_streamer_channel_must_resolve_to_their_stream() {
        assert_eq!(foreign_room(&held(None), Some(&info(Some("1")))), None, "operator: any room");
        assert_eq!(foreign_room(&held(Some("1")), Some(&info(Some("1")))), None);
        assert_eq!(foreign_room(&held(Some("1")), Some(&info(None))), None, "not resolved yet");
        let reason = foreign_room(&held(Some("1")), Some(&info(Some("2")))).unwrap_or_default();
        assert!(reason.contains("not stream 1"), "{reason}");
    }

    #[test]
    fn a_channel_without_a_task_yet_reports_connecting() {
        let s = status("alice", None);
        assert_eq!((s.state.as_str(), s.room_id), ("connecting", None));
        let s = status("alice", Some(&info(Some("9"))));
        assert_eq!((s.state.as_str(), s.room_id.as_deref()), ("connected", Some("9")));
    }
}
