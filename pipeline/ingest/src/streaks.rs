//! Gift streaks whose final frame never arrives.
//!
//! TikTok repeats a streakable gift (gift type 1) while the combo runs and ends it with a frame
//! carrying `repeat_end = 1`; money is counted from that final frame only. When the final frame
//! is lost (disconnect, TikTok hiccup), ingest synthesizes one after a quiet period.
//!
//! How a synthesized final frame looks in raw.v1 (so consumers can tell it apart):
//! - `type` is `WebcastGiftMessage`, `provider` is the channel's provider, and `dataB64` is the
//!   streak's last real frame re-encoded with `repeat_end = 1`;
//! - its Common header has `describe = "ttlc:synthesized-streak-end"`, `create_time` = when it
//!   was synthesized, and `msg_id` = its `seqNo`;
//! - `seqNo` is derived from the last real frame's msgId ([`synthetic_seq`]), never equal to it,
//!   so the synthesized frame gets its own eventId.

use std::collections::HashMap;
use std::time::Duration;

use prost::Message as _;
use tokio::time::Instant;
use ttlc_webcast::{Message, WebcastGiftMessage};

/// `Common.describe` of a synthesized final streak frame.
pub const SYNTHESIZED_MARK: &str = "ttlc:synthesized-streak-end";

/// Open streaks kept per channel; beyond this the oldest is closed early so memory stays bounded.
const MAX_OPEN: usize = 10_000;

/// (sender user id, gift id, streak group id)
type Key = (i64, i64, u64);

#[derive(Debug)]
struct Open {
    last: WebcastGiftMessage,
    last_msg_id: i64,
    last_seen: Instant,
}

/// Tracks open streaks of one channel and closes the ones that went quiet.
#[derive(Debug)]
pub struct StreakTracker {
    quiet: Duration,
    open: HashMap<Key, Open>,
}

impl StreakTracker {
    pub fn new(quiet: Duration) -> Self {
        StreakTracker { quiet, open: HashMap::new() }
    }

    /// Looks at every message a connection dispatches; only streakable gifts matter. Returns a
    /// synthesized final frame when the open-streak limit forced the oldest streak closed.
    pub fn observe(&mut self, msg: &Message, now: Instant) -> Option<Message> {
        if msg.method != "WebcastGiftMessage" {
            return None;
        }
        let gift = WebcastGiftMessage::decode(msg.payload.as_slice()).ok()?;
        let streakable = gift.gift_details.as_ref().is_some_and(|g| g.gift_type == 1);
        if !streakable {
            return None;
        }
        let key = (gift.user.as_ref().map_or(0, |u| u.user_id), gift.gift_id, gift.group_id);
        if gift.repeat_end == 1 {
            self.open.remove(&key);
            return None;
        }
        let msg_id = [msg.msg_id, gift.common.as_ref().map_or(0, |c| c.msg_id)]
            .into_iter()
            .find(|id| *id > 0)
            .unwrap_or(0);
        self.open.insert(key, Open { last: gift, last_msg_id: msg_id, last_seen: now });
        if self.open.len() > MAX_OPEN {
            let oldest = self.open.iter().min_by_key(|(_, o)| o.last_seen).map(|(k, _)| *k)?;
            return self.open.remove(&oldest).map(synthesize);
        }
        None
    }

    /// When the next open streak goes quiet, if any is open.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.open.values().map(|o| o.last_seen + self.quiet).min()
    }

    /// Final frames for every streak quiet since `now - quiet`, oldest first.
    pub fn expire(&mut self, now: Instant) -> Vec<Message> {
        let quiet = self.quiet;
        let mut done: Vec<(Key, Instant)> = self
            .open
            .iter()
            .filter(|(_, o)| o.last_seen + quiet <= now)
            .map(|(k, o)| (*k, o.last_seen))
            .collect();
        done.sort_by_key(|(_, seen)| *seen);
        done.into_iter().filter_map(|(k, _)| self.open.remove(&k)).map(synthesize).collect()
    }

    /// Final frames for every open streak (the stream ended or ingest is stopping: no real final
    /// frame can come any more).
    pub fn drain(&mut self) -> Vec<Message> {
        let mut all: Vec<Open> = self.open.drain().map(|(_, o)| o).collect();
        all.sort_by_key(|o| o.last_seen);
        all.into_iter().map(synthesize).collect()
    }
}

/// The seqNo of a synthesized final frame: a 64-bit mix (splitmix64) of the last real frame's
/// msgId, kept non-negative. Deterministic, and in practice never another message's msgId.
pub fn synthetic_seq(last_msg_id: i64) -> i64 {
    let mut z = (last_msg_id as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let seq = (z & (i64::MAX as u64)) as i64;
    if seq == last_msg_id { seq ^ 1 } else { seq }
}

fn synthesize(open: Open) -> Message {
    let seq = synthetic_seq(open.last_msg_id);
    let mut gift = open.last;
    gift.repeat_end = 1;
    let mut common = gift.common.take().unwrap_or_default();
    common.msg_id = seq;
    common.create_time = chrono::Utc::now().timestamp_millis();
    common.describe = SYNTHESIZED_MARK.to_owned();
    gift.common = Some(common);
    Message {
        method: "WebcastGiftMessage".into(),
        payload: gift.encode_to_vec(),
        msg_id: seq,
        msg_type: 0,
        offset: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock_server::script::{self, Msg};
    use ttlc_webcast::Common;

    fn frame(m: Msg, id: i64) -> Message {
        let (method, payload) = m.encode(Common { msg_id: id, ..Default::default() });
        Message { method, payload, msg_id: id, ..Default::default() }
    }

    #[test]
    fn quiet_streaks_get_a_marked_final_frame_and_ended_ones_do_not() {
        let mut t = StreakTracker::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(t.observe(&frame(script::gift(1, "A", true, 1, false, 7), 100), t0).is_none());
        t.observe(&frame(script::gift(1, "A", true, 2, false, 7), 101), t0);
        t.observe(&frame(script::gift(2, "B", true, 1, false, 8), 102), t0);
        t.observe(&frame(script::gift(2, "B", true, 1, true, 8), 103), t0);
        t.observe(&frame(script::gift(3, "C", false, 1, true, 0), 104), t0);
        assert_eq!(t.next_deadline(), Some(t0 + Duration::from_secs(10)));
        assert!(t.expire(t0 + Duration::from_secs(9)).is_empty());
        let done = t.expire(t0 + Duration::from_secs(10));
        assert_eq!(done.len(), 1);
        let g = WebcastGiftMessage::decode(done[0].payload.as_slice()).unwrap();
        assert_eq!((g.repeat_end, g.repeat_count, g.user.unwrap().user_id), (1, 2, 1));
        let common = g.common.unwrap();
        assert_eq!(common.describe, SYNTHESIZED_MARK);
        assert_eq!(done[0].msg_id, synthetic_seq(101));
        assert_ne!(done[0].msg_id, 101);
        assert!(t.next_deadline().is_none() && t.drain().is_empty());
    }

    #[test]
    fn synthetic_seq_is_non_negative_and_deterministic() {
        for id in [0, 1, 7_300_000_000_000_000_001, i64::MAX, -5] {
            let s = synthetic_seq(id);
            assert!(s >= 0);
            assert_eq!(s, synthetic_seq(id));
            assert_ne!(s, id);
        }
    }
}
