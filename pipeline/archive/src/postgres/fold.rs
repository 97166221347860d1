//! What a batch of new events adds to `users`, `streams` and `sessions`, computed in Rust for the
//! fast path (every event in the batch is new, so every one counts).
//!
//! The rules are the same as the staging path's SQL (`sql::MERGE_SQL`): counts add up; first/last
//! times widen; a user's names come from their newest event; a session starts at CONNECTED (or
//! its earliest event) and ends at DISCONNECTED. Rows come out sorted by key so concurrent
//! archivers lock shared rows in one order.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ttlc_schemas::event::Payload;
use ttlc_schemas::{EventType, UnifiedEvent};

/// `users` upsert rows as parallel arrays (the `unnest` parameters).
#[derive(Debug, Default)]
pub(super) struct Users<'a> {
    pub(super) user_id: Vec<&'a str>,
    pub(super) unique_id: Vec<&'a str>,
    pub(super) display_name: Vec<Option<&'a str>>,
    pub(super) avatar_url: Vec<Option<&'a str>>,
    pub(super) first_seen: Vec<DateTime<Utc>>,
    pub(super) last_seen: Vec<DateTime<Utc>>,
    pub(super) event_count: Vec<i64>,
}

/// `streams` upsert rows as parallel arrays.
#[derive(Debug, Default)]
pub(super) struct Streams<'a> {
    pub(super) stream_id: Vec<&'a str>,
    pub(super) first_seen: Vec<DateTime<Utc>>,
    pub(super) last_seen: Vec<DateTime<Utc>>,
    pub(super) last_session_id: Vec<&'a str>,
    pub(super) event_count: Vec<i64>,
}

/// `sessions` upsert rows as parallel arrays.
#[derive(Debug, Default)]
pub(super) struct Sessions<'a> {
    pub(super) session_id: Vec<&'a str>,
    pub(super) stream_id: Vec<&'a str>,
    pub(super) source: Vec<&'a str>,
    pub(super) started_at: Vec<DateTime<Utc>>,
    pub(super) ended_at: Vec<Option<DateTime<Utc>>>,
    pub(super) end_reason: Vec<Option<&'a str>>,
    pub(super) first_event_at: Vec<DateTime<Utc>>,
    pub(super) last_event_at: Vec<DateTime<Utc>>,
    pub(super) event_count: Vec<i64>,
}

struct UserAcc<'a> {
    unique_id: &'a str,
    newest: DateTime<Utc>,
    display_name: Option<(DateTime<Utc>, &'a str)>,
    avatar_url: Option<(DateTime<Utc>, &'a str)>,
    first: DateTime<Utc>,
    count: i64,
}

/// first seen, last seen, session of the newest event, count.
type StreamAcc<'a> = (DateTime<Utc>, DateTime<Utc>, &'a str, i64);

struct SessionAcc<'a> {
    stream_id: &'a str,
    source: &'a str,
    connected: Option<DateTime<Utc>>,
    ended: Option<(DateTime<Utc>, Option<&'a str>)>,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    count: i64,
}

/// Keeps the value of the newest event; on equal times the later event in the batch wins.
fn newer<'a>(
    slot: &mut Option<(DateTime<Utc>, &'a str)>,
    at: DateTime<Utc>,
    value: Option<&'a str>,
) {
    if let Some(value) = value
        && slot.is_none_or(|(t, _)| at >= t)
    {
        *slot = Some((at, value));
    }
}

/// The lifecycle pseudo-user (`"0"`, `system`) is not a TikTok user.
pub(super) fn is_real_user(user_id: &str) -> bool {
    !user_id.is_empty() && user_id != "0"
}

/// Folds `events` (all new) into upsert rows.
pub(super) fn fold<'a>(
    events: impl IntoIterator<Item = &'a UnifiedEvent>,
) -> (Users<'a>, Streams<'a>, Sessions<'a>) {
    let mut users: BTreeMap<&str, UserAcc<'_>> = BTreeMap::new();
    let mut streams: BTreeMap<&str, StreamAcc<'_>> = BTreeMap::new();
    let mut sessions: BTreeMap<&str, SessionAcc<'_>> = BTreeMap::new();
    for e in events {
        let at = e.timestamp;
        if is_real_user(&e.user.user_id) {
            let u = users.entry(&e.user.user_id).or_insert(UserAcc {
                unique_id: &e.user.unique_id,
                newest: at,
                display_name: None,
                avatar_url: None,
                first: at,
                count: 0,
            });
            if at >= u.newest {
                u.newest = at;
                u.unique_id = &e.user.unique_id;
            }
            newer(&mut u.display_name, at, e.user.display_name.as_deref());
            newer(&mut u.avatar_url, at, e.user.avatar_url.as_deref());
            u.first = u.first.min(at);
            u.count += 1;
        }
        let s = streams.entry(&e.stream_id).or_insert((at, at, &e.session_id, 0));
        s.0 = s.0.min(at);
        if at >= s.1 {
            s.1 = at;
            s.2 = &e.session_id;
        }
        s.3 += 1;
        let x = sessions.entry(&e.session_id).or_insert(SessionAcc {
            stream_id: &e.stream_id,
            source: e.source.as_str(),
            connected: None,
            ended: None,
            first: at,
            last: at,
            count: 0,
        });
        x.stream_id = x.stream_id.min(e.stream_id.as_str());
        x.source = x.source.min(e.source.as_str());
        match e.event_type {
            EventType::Connected => x.connected = Some(x.connected.map_or(at, |c| c.min(at))),
            EventType::Disconnected if x.ended.is_none_or(|(t, _)| at >= t) => {
                let reason = match &e.payload {
                    Some(Payload::Disconnected(d)) => d.reason.as_deref(),
                    _ => None,
                };
                x.ended = Some((at, reason));
            }
            _ => {}
        }
        x.first = x.first.min(at);
        x.last = x.last.max(at);
        x.count += 1;
    }

    let mut u = Users::default();
    for (id, acc) in users {
        u.user_id.push(id);
        u.unique_id.push(acc.unique_id);
        u.display_name.push(acc.display_name.map(|(_, v)| v));
        u.avatar_url.push(acc.avatar_url.map(|(_, v)| v));
        u.first_seen.push(acc.first);
        u.last_seen.push(acc.newest);
        u.event_count.push(acc.count);
    }
    let mut st = Streams::default();
    for (id, (first, last, session, count)) in streams {
        st.stream_id.push(id);
        st.first_seen.push(first);
        st.last_seen.push(last);
        st.last_session_id.push(session);
        st.event_count.push(count);
    }
    let mut se = Sessions::default();
    for (id, acc) in sessions {
        se.session_id.push(id);
        se.stream_id.push(acc.stream_id);
        se.source.push(acc.source);
        se.started_at.push(acc.connected.unwrap_or(acc.first));
        se.ended_at.push(acc.ended.map(|(t, _)| t));
        se.end_reason.push(acc.ended.and_then(|(_, r)| r));
        se.first_event_at.push(acc.first);
        se.last_event_at.push(acc.last);
        se.event_count.push(acc.count);
    }
    (u, st, se)
}
