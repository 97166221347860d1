//! Glue for `ttlc all`: the API's channel control implemented over the in-process ingest
//! supervisor. (A standalone `ttlc api` has no supervisor in its process; its `/channels` routes
//! answer 501 until a control topic exists.)

use std::sync::Arc;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use ttlc_api::{ChannelControl, ChannelInfo, ControlError};
use ttlc_ingest::{IngestService, SupervisorError};

/// `/channels` backed by the ingest supervisor running in this process.
#[derive(Debug)]
pub(crate) struct SupervisorChannels(pub(crate) Arc<IngestService>);

fn info(c: ttlc_ingest::ChannelInfo) -> ChannelInfo {
    let state = serde_json::to_value(c.state).ok().and_then(|v| v.as_str().map(str::to_owned));
    ChannelInfo {
        unique_id: c.channel.trim_start_matches('@').to_owned(),
        stream_id: c.room_id,
        state: state.unwrap_or_else(|| "unknown".into()),
        started_at: None,
    }
}

impl ChannelControl for SupervisorChannels {
    fn start<'a>(
        &'a self,
        unique_id: &'a str,
        _stream_id: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ChannelInfo, ControlError>> {
        async move {
            let channel =
                if unique_id.starts_with('@') || unique_id.chars().all(|c| c.is_ascii_digit()) {
                    unique_id.to_owned()
                } else {
                    format!("@{unique_id}")
                };
            let supervisor = self.0.supervisor();
            let name = supervisor.start_channel(&channel).map_err(|e| match e {
                SupervisorError::AlreadyRunning(_) => ControlError::Conflict(e.to_string()),
                SupervisorError::InvalidChannel(_) => ControlError::Invalid(e.to_string()),
                SupervisorError::ShuttingDown => ControlError::Unavailable(e.to_string()),
            })?;
            supervisor.list().into_iter().find(|c| c.channel == name).map(info).ok_or_else(|| {
                ControlError::Unavailable("channel vanished right after start".into())
            })
        }
        .boxed()
    }

    fn stop<'a>(&'a self, unique_id: &'a str) -> BoxFuture<'a, Result<ChannelInfo, ControlError>> {
        async move {
            let channel = if unique_id.starts_with('@') {
                unique_id.to_owned()
            } else {
                format!("@{unique_id}")
            };
            let before = self.0.supervisor().list().into_iter().find(|c| c.channel == channel);
            if !self.0.supervisor().stop_channel(&channel).await {
                return Err(ControlError::NotFound(format!("channel {channel} is not running")));
            }
            let mut stopped = before.map(info).unwrap_or(ChannelInfo {
                unique_id: unique_id.trim_start_matches('@').to_owned(),
                stream_id: None,
                state: String::new(),
                started_at: None,
            });
            stopped.state = "stopped".into();
            Ok(stopped)
        }
        .boxed()
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<ChannelInfo>, ControlError>> {
        let channels = self.0.supervisor().list().into_iter().map(info).collect();
        async move { Ok(channels) }.boxed()
    }
}
