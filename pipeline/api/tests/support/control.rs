//! In-test implementations of the control traits: the edge the API drives (ingest supervisor,
//! replay runner), not a mock of our own code.

use std::collections::HashMap;

use chrono::Utc;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use ttlc_api::{ChannelControl, ChannelInfo, ControlError, ReplayControl};

/// Ingest control as the supervisor would expose it: an in-memory channel table.
#[derive(Debug, Default)]
pub struct TestChannels {
    pub channels: Mutex<HashMap<String, ChannelInfo>>,
}

impl ChannelControl for TestChannels {
    fn start<'a>(
        &'a self,
        unique_id: &'a str,
        stream_id: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ChannelInfo, ControlError>> {
        Box::pin(async move {
            let info = ChannelInfo {
                unique_id: unique_id.to_owned(),
                stream_id: stream_id.map(str::to_owned),
                state: "starting".into(),
                started_at: Some(Utc::now().to_rfc3339()),
                session_id: None,
                last_error: None,
            };
            self.channels.lock().insert(unique_id.to_owned(), info.clone());
            Ok(info)
        })
    }

    fn stop<'a>(&'a self, unique_id: &'a str) -> BoxFuture<'a, Result<ChannelInfo, ControlError>> {
        Box::pin(async move {
            let mut channels = self.channels.lock();
            let info = channels
                .get_mut(unique_id)
                .ok_or_else(|| ControlError::NotFound(format!("no channel @{unique_id}")))?;
            info.state = "stopped".into();
            Ok(info.clone())
        })
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<ChannelInfo>, ControlError>> {
        Box::pin(async move { Ok(self.channels.lock().values().cloned().collect()) })
    }
}

/// Replay control: records what was asked and returns a new session id.
#[derive(Debug, Default)]
pub struct TestReplays {
    pub started: Mutex<Vec<(String, String, f64, String)>>,
}

impl ReplayControl for TestReplays {
    fn start<'a>(
        &'a self,
        session_id: &'a str,
        stream_id: &'a str,
        speed: f64,
    ) -> BoxFuture<'a, Result<String, ControlError>> {
        Box::pin(async move {
            let new = uuid::Uuid::new_v4().to_string();
            self.started.lock().push((
                session_id.to_owned(),
                stream_id.to_owned(),
                speed,
                new.clone(),
            ));
            Ok(new)
        })
    }
}
