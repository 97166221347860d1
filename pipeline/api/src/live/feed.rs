//! One client's view of a hub: filtering, `Last-Event-ID` resume, slow-client and shutdown close.
//!
//! Resume without gaps or repeats: the client subscribes to the hub *first*, then reads the hub's
//! position `P` for the partition named in its last id `p-o`. Records `o+1 .. P-1` are read from
//! the topic with a dedicated short-lived consumer; everything from `P` on arrives through the
//! subscription (the hub publishes its position before sending). Records at or below the last
//! offset emitted per partition are skipped, so the hand-over repeats nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::limits::ConnectionSlot;
use crate::live::hub::{Hub, LiveRecord, decode};

/// How long the catch-up read may wait for the next record before giving up on the rest (e.g.
/// records removed by retention) and joining the live stream.
const CATCH_UP_IDLE: Duration = Duration::from_secs(10);

/// Most records a resume may replay from the topic. Further behind, the client should reload
/// from history (`/sessions/{id}/events`) rather than make the API read a whole partition.
const MAX_CATCH_UP: i64 = 1_000_000;

/// Which records a client wants.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    pub(crate) stream_id: Option<String>,
    /// Event types (or action types); empty = all.
    pub(crate) kinds: Vec<String>,
    /// A userId or uniqueId.
    pub(crate) user: Option<String>,
    pub(crate) rule_id: Option<String>,
}

impl Filter {
    pub(crate) fn matches(&self, r: &LiveRecord) -> bool {
        self.stream_id.as_ref().is_none_or(|s| *s == r.stream_id)
            && (self.kinds.is_empty() || self.kinds.contains(&r.kind))
            && self.user.as_ref().is_none_or(|u| *u == r.user_id || *u == r.unique_id)
            && self.rule_id.as_ref().is_none_or(|id| *id == r.rule_id)
    }
}

/// What a feed yields.
#[derive(Debug)]
pub(crate) enum FeedItem {
    Record(Arc<LiveRecord>),
    /// The last item: why the server ends the feed.
    Close(String),
}

/// Parses a `Last-Event-ID` of the form `<partition>-<offset>`.
pub(crate) fn parse_last_event_id(id: &str) -> Result<(i32, i64), ApiError> {
    let invalid = || ApiError::Invalid(format!("Last-Event-ID {id:?} is not <partition>-<offset>"));
    let (p, o) = id.trim().split_once('-').ok_or_else(invalid)?;
    let p: i32 = p.parse().map_err(|_| invalid())?;
    let o: i64 = o.parse().map_err(|_| invalid())?;
    if p < 0 || o < 0 {
        return Err(invalid());
    }
    Ok((p, o))
}

struct CatchUp {
    consumer: StreamConsumer,
    topic: String,
    partition: i32,
    /// The first offset the client has not seen.
    want: i64,
    /// Where the consumer is currently assigned.
    start: i64,
    /// How far the next seek back goes.
    step: i64,
    /// True once a record at or before `want` was read: nothing after `want` can be skipped.
    anchored: bool,
    /// Exclusive end: the hub's position when the client subscribed.
    until: i64,
}

impl CatchUp {
    /// Reassigns the consumer further back. Some brokers (Tansu) answer a fetch that starts in
    /// the middle of a record batch with the *next* batch, silently skipping the rest of the
    /// batch; Kafka and Redpanda return the containing batch. Seeking back until a record at or
    /// before `want` appears works on both: records already seen are skipped by offset anyway.
    fn seek_back(&mut self) -> Result<(), rdkafka::error::KafkaError> {
        self.start = (self.want - self.step).max(0);
        self.step = self.step.saturating_mul(4);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, self.partition, Offset::Offset(self.start))?;
        self.consumer.assign(&tpl)
    }
}

struct State {
    hub: Arc<Hub>,
    rx: broadcast::Receiver<Arc<LiveRecord>>,
    filter: Filter,
    catch_up: Option<CatchUp>,
    /// Highest offset emitted (or skipped as already seen) per partition.
    last: HashMap<i32, i64>,
    token: CancellationToken,
    done: bool,
    _slot: Option<ConnectionSlot>,
}

/// Opens a feed on `hub`. With `resume = Some((p, o))` the feed first replays partition `p` after
/// offset `o`. Fails with 503 while the hub is not reading yet.
pub(crate) fn open(
    hub: Arc<Hub>,
    filter: Filter,
    resume: Option<(i32, i64)>,
    token: CancellationToken,
    slot: Option<ConnectionSlot>,
    retry_after: u64,
) -> Result<impl Stream<Item = FeedItem> + Send + 'static, ApiError> {
    if !hub.is_ready() {
        return Err(ApiError::Unavailable { what: "the live feed", retry_after });
    }
    let rx = hub.subscribe();
    let mut last = HashMap::new();
    let mut catch_up = None;
    if let Some((partition, offset)) = resume {
        last.insert(partition, offset);
        let until = hub
            .position(partition)
            .ok_or_else(|| ApiError::Invalid(format!("partition {partition} does not exist")))?;
        if until - (offset + 1) > MAX_CATCH_UP {
            return Err(ApiError::Invalid(format!(
                "Last-Event-ID is more than {MAX_CATCH_UP} records behind; reload from history"
            )));
        }
        if offset + 1 < until {
            catch_up = Some(start_catch_up(&hub, partition, offset + 1, until)?);
        }
    }
    let state = State { hub, rx, filter, catch_up, last, token, done: false, _slot: slot };
    Ok(futures::stream::unfold(state, |mut state| async move {
        let item = state.next().await?;
        Some((item, state))
    }))
}

fn start_catch_up(hub: &Hub, partition: i32, from: i64, until: i64) -> Result<CatchUp, ApiError> {
    let group = format!("{}api-resume-{}", hub.kafka.topic_prefix, uuid::Uuid::new_v4().simple());
    let consumer = ttlc_core::kafka::tap_consumer(&hub.kafka, &group).map_err(|e| {
        tracing::warn!(error = %e, "Cannot create the resume consumer.");
        ApiError::Unavailable { what: "the broker", retry_after: crate::error::CONFIGURED_RETRY }
    })?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&hub.topic, partition, Offset::Offset(from))
        .and_then(|()| consumer.assign(&tpl))
        .map_err(|e| ApiError::Internal(format!("assigning the resume consumer: {e}")))?;
    Ok(CatchUp {
        consumer,
        topic: hub.topic.clone(),
        partition,
        want: from,
        start: from,
        step: 64,
        anchored: false,
        until,
    })
}

impl State {
    async fn next(&mut self) -> Option<FeedItem> {
        if self.done {
            return None;
        }
        loop {
            if let Some(catch_up) = &mut self.catch_up {
                let read = tokio::select! {
                    _ = self.token.cancelled() => return self.close("the server is shutting down"),
                    read = tokio::time::timeout(CATCH_UP_IDLE, catch_up.consumer.recv()) => read,
                };
                let until = catch_up.until;
                // Decode while the message still borrows the consumer, then act.
                let read = read.map(|r| r.map(|m| (m.offset(), decode(self.hub.feed, &m))));
                if let Ok(Ok((offset, _))) = &read {
                    if !catch_up.anchored {
                        if *offset <= catch_up.want || catch_up.start == 0 {
                            catch_up.anchored = true;
                        } else {
                            if let Err(error) = catch_up.seek_back() {
                                tracing::warn!(%error, "The resume read cannot seek; joining the live feed.");
                                self.catch_up = None;
                            }
                            continue;
                        }
                    }
                }
                match read {
                    Ok(Ok((offset, record))) => {
                        if offset + 1 >= until {
                            // Caught up: the subscription has everything from here on.
                            self.catch_up = None;
                        }
                        if let Some(item) = record.and_then(|r| self.admit(Arc::new(r))) {
                            return Some(item);
                        }
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "The resume read failed; joining the live feed.");
                        self.catch_up = None;
                    }
                    Err(_) => {
                        tracing::warn!(
                            "The resume read went idle before catching up; joining the live feed."
                        );
                        self.catch_up = None;
                    }
                }
                continue;
            }
            let received = tokio::select! {
                _ = self.token.cancelled() => return self.close("the server is shutting down"),
                received = self.rx.recv() => received,
            };
            match received {
                Ok(record) => {
                    if let Some(item) = self.admit(record) {
                        return Some(item);
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    crate::metrics::live_dropped();
                    return self.close(&format!(
                        "slow consumer: fell {missed} records behind the live feed; reconnect with \
                         Last-Event-ID to resume"
                    ));
                }
                Err(RecvError::Closed) => return self.close("the live feed stopped"),
            }
        }
    }

    /// Emits `record` if it passes the filter and was not emitted before.
    fn admit(&mut self, record: Arc<LiveRecord>) -> Option<FeedItem> {
        let last = self.last.entry(record.partition).or_insert(-1);
        if record.offset <= *last {
            return None;
        }
        *last = record.offset;
        self.filter.matches(&record).then_some(FeedItem::Record(record))
    }

    fn close(&mut self, reason: &str) -> Option<FeedItem> {
        self.done = true;
        Some(FeedItem::Close(reason.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_event_ids_parse_strictly() {
        assert_eq!(parse_last_event_id("3-1542").ok(), Some((3, 1542)));
        assert!(parse_last_event_id("3").is_err());
        assert!(parse_last_event_id("a-1").is_err());
        assert!(parse_last_event_id("-1-2").is_err());
    }

    #[test]
    fn filters_combine() {
        let r = LiveRecord {
            partition: 0,
            offset: 1,
            stream_id: "s".into(),
            kind: "CHAT".into(),
            user_id: "42".into(),
            unique_id: "bob".into(),
            rule_id: String::new(),
            json: "{}".into(),
        };
        let mut f = Filter { stream_id: Some("s".into()), ..Filter::default() };
        assert!(f.matches(&r));
        f.kinds = vec!["GIFT".into()];
        assert!(!f.matches(&r));
        f.kinds = vec!["GIFT".into(), "CHAT".into()];
        assert!(f.matches(&r));
        f.user = Some("bob".into());
        assert!(f.matches(&r));
        f.user = Some("alice".into());
        assert!(!f.matches(&r));
    }
}
