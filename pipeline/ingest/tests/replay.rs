//! The replay provider against the real local stack: a session stored by archive-pg in a fresh
//! database is re-published to a fresh `raw` topic, and normalizing what arrives gives the same
//! events under new identities.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tokio_util::sync::CancellationToken;
use ttlc_core::config::Config;
use ttlc_core::{Disposition, InputRecord, Stage};
use ttlc_ingest::IngestError;
use ttlc_ingest::publish::EnvelopeSink;
use ttlc_ingest::replay::{ReplayOptions, replay_session};
use ttlc_ingest::service::Publishing;
use ttlc_schemas::event::{
    ChatPayload, ConnectedPayload, ConnectedProvider, DisconnectedPayload, GiftPayload,
    LikePayload, RawPayload,
};
use ttlc_schemas::{Payload, Provider, RawEnvelope, Source, UnifiedEvent, User};
use ttlc_testkit::pg::{PgDb, connect};
use ttlc_topics::Topic;

const STREAM: &str = "7438214567890123456";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 19, 0, 0).single().unwrap()
}

fn event(session: &str, seq: i64, at: DateTime<Utc>, user: User, payload: Payload) -> UnifiedEvent {
    let event_type = payload.event_type();
    let raw_type = match &payload {
        Payload::Raw(r) => r.raw_type.clone(),
        _ => format!("Webcast{event_type}"),
    };
    UnifiedEvent {
        schema_version: "1".into(),
        event_id: ttlc_normalize::event_id(STREAM, session, seq, &raw_type),
        event_type,
        trigger_id: event_type.trigger_id(),
        stream_id: STREAM.into(),
        session_id: session.into(),
        timestamp: at,
        ingested_at: Some(at + chrono::Duration::milliseconds(37)),
        source: Source::Live,
        seq_no: Some(seq),
        user,
        payload: Some(payload),
    }
}

/// CONNECTED (direct, so replay must drop its provider), `n - 2` mixed user events, then
/// DISCONNECTED; `gap_ms` apart. SeqNos are descending in time for a few events on purpose:
/// replay follows seqNo order, not time order.
fn session(session: &str, n: usize, gap_ms: i64) -> Vec<UnifiedEvent> {
    let at = |i: usize| t0() + chrono::Duration::milliseconds(gap_ms * i as i64);
    let connected = ConnectedPayload {
        room_id: Some(STREAM.into()),
        is_connected: Some(true),
        provider: Some(ConnectedProvider::Direct),
    };
    let mut out = vec![event(session, 1, at(0), User::system(), Payload::Connected(connected))];
    for i in 1..n - 1 {
        let user = User {
            user_id: format!("{}", 6_900_000 + i % 7),
            unique_id: format!("viewer{}", i % 7),
            display_name: Some(format!("Viewer {}", i % 7)),
            ..User::default()
        };
        let payload = match i % 4 {
            0 => Payload::Chat(ChatPayload { message: format!("hello {i}"), ..Default::default() }),
            1 => Payload::Gift(GiftPayload {
                gift_id: 5655,
                gift_name: "Rose".into(),
                gift_count: 1,
                coins: 1,
                diamond_count: Some(1),
                ..Default::default()
            }),
            2 => Payload::Like(LikePayload { like_count: 2, total_like_count: 100 + i as i64 }),
            _ => Payload::Raw(RawPayload {
                raw_type: "WebcastRoomUserSeqMessage".into(),
                data: serde_json::json!({"viewerCount": i}).as_object().cloned(),
            }),
        };
        out.push(event(session, 7_301_000_000_000_000_000 + i as i64, at(i), user, payload));
    }
    let bye = DisconnectedPayload { reason: Some("stream ended".into()), ..Default::default() };
    out.push(event(session, 2, at(n - 1), User::system(), Payload::Disconnected(bye)));
    out
}

/// Stores `events` through archive-pg (which also applies the migrations).
async fn store(config: &Config, events: &[UnifiedEvent]) {
    let mut archiver = ttlc_archive::PgArchiver::connect(config).await.expect("archiver");
    let records: Vec<InputRecord> = events
        .iter()
        .enumerate()
        .map(|(i, e)| InputRecord {
            topic: "t.unified".into(),
            partition: 0,
            offset: i as i64,
            key: Some(STREAM.as_bytes().to_vec()),
            payload: Some(ttlc_schemas::encode_unified(e).unwrap()),
            headers: Vec::new(),
            timestamp_ms: None,
        })
        .collect();
    for d in archiver.handle(&records).await.expect("stored") {
        assert!(matches!(d, Disposition::Emit(ref out) if out.is_empty()), "{d:?}");
    }
}

/// Stored order: seqNo, then eventId; events without a seqNo last (PostgreSQL's NULLS LAST).
fn in_seq_order(events: &[UnifiedEvent]) -> Vec<UnifiedEvent> {
    let mut sorted = events.to_vec();
    sorted.sort_by(|a, b| {
        (a.seq_no.is_none(), a.seq_no, &a.event_id).cmp(&(
            b.seq_no.is_none(),
            b.seq_no,
            &b.event_id,
        ))
    });
    sorted
}

#[tokio::test]
async fn a_stored_session_replays_as_a_new_session_with_the_same_events() {
    let db = PgDb::create().await;
    let mut config = ttlc_testkit::config("replay");
    config.postgres.url = db.url.clone();
    ttlc_testkit::create_topics(&config, 3).await;
    let original = uuid::Uuid::new_v4().to_string();
    let mut stored = session(&original, 240, 10);
    // An event stored without a seqNo goes last and gets its position as seqNo.
    stored[5].seq_no = None;
    let mut all = stored.clone();
    // Another session of the same stream must not leak into the replay.
    all.extend(session(&uuid::Uuid::new_v4().to_string(), 30, 10));
    store(&config, &all).await;

    let new_session = uuid::Uuid::new_v4().to_string();
    let publishing = Publishing::start(&config).unwrap();
    let mut reported = Vec::new();
    let opts = ReplayOptions { speed: 0.0, rate_cap: 100_000, new_session_id: new_session.clone() };
    let stats = replay_session(
        &config,
        &original,
        opts,
        &publishing.sink,
        &CancellationToken::new(),
        |p| reported.push(p.sent),
    )
    .await
    .expect("replayed");
    let published = publishing.finish().await.unwrap();
    assert_eq!((stats.sent, stats.total, stats.interrupted), (240, 240, false));
    assert_eq!((published.delivered, published.failed), (240, 0));
    assert_eq!(reported, (1..=240).collect::<Vec<u64>>());

    // Exactly N envelopes (waiting for one more proves there is none).
    let records = tokio::task::spawn_blocking({
        let config = config.clone();
        move || ttlc_testkit::read_all(&config, Topic::Raw, 241, Duration::from_secs(3))
    })
    .await
    .unwrap();
    assert_eq!(records.len(), 240);
    let expected = in_seq_order(&stored);
    let original_ids: HashSet<&str> = stored.iter().map(|e| e.event_id.as_str()).collect();
    let mut new_ids = HashSet::new();
    for (i, (record, before)) in records.iter().zip(&expected).enumerate() {
        let seq_no = before.seq_no.unwrap_or(i as i64);
        assert_eq!(record.key.as_deref(), Some(STREAM.as_bytes()));
        let bytes = record.payload.as_deref().unwrap();
        let doc: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        ttlc_schemas::validate_raw(&doc).unwrap();
        let env: RawEnvelope = serde_json::from_value(doc).unwrap();
        assert_eq!(env.session_id, new_session);
        assert_eq!((env.source, env.provider), (Source::Replay, Provider::Replay));
        assert_eq!(env.seq_no, seq_no, "seqNo order");
        assert_eq!(env.raw_type, format!("Replay.{}", before.event_type));
        assert_eq!(env.timestamp, before.timestamp);
        assert_eq!(env.data.as_ref().unwrap()["replayOf"], original.as_str());

        let after = ttlc_normalize::normalize_bytes(bytes).expect("normalizes");
        assert!(!original_ids.contains(after.event_id.as_str()), "eventId reused");
        assert!(new_ids.insert(after.event_id.clone()), "eventId repeated");
        assert_eq!(after.session_id, new_session);
        assert_eq!(after.source, Source::Replay);
        assert_eq!(
            (after.event_type, &after.user, after.timestamp, after.seq_no),
            (before.event_type, &before.user, before.timestamp, Some(seq_no))
        );
        match (&after.payload, &before.payload) {
            (Some(Payload::Connected(a)), Some(Payload::Connected(b))) => {
                assert_eq!(a.provider, None, "a replay is no direct/euler connection");
                assert_eq!((&a.room_id, a.is_connected), (&b.room_id, b.is_connected));
            }
            (a, b) => assert_eq!(a, b),
        }
    }
    assert_eq!(new_ids.len(), 240);
    assert_eq!(expected.last().unwrap().seq_no, None, "the event without a seqNo came last");

    // The new session is recorded as a replay of the original.
    let client = connect(&db.url).await;
    let row = client
        .query_one(
            "SELECT stream_id, source, replay_of, started_at FROM sessions WHERE session_id = $1",
            &[&new_session],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), STREAM);
    assert_eq!(row.get::<_, String>(1), "replay");
    assert_eq!(row.get::<_, Option<String>>(2).as_deref(), Some(original.as_str()));
    assert_eq!(row.get::<_, DateTime<Utc>>(3), t0());
    db.drop_db().await;
}

#[tokio::test]
async fn unknown_sessions_and_bad_options_are_refused() {
    let db = PgDb::create().await;
    let mut config = Config::default();
    config.postgres.url = db.url.clone();
    store(&config, &session(&uuid::Uuid::new_v4().to_string(), 5, 10)).await;
    let (sink, _rx) = EnvelopeSink::channel(16);
    let token = CancellationToken::new();
    let unknown = uuid::Uuid::new_v4().to_string();
    let err = replay_session(&config, &unknown, ReplayOptions::new(0.0), &sink, &token, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, IngestError::SessionNotFound(ref s) if *s == unknown), "{err:?}");
    for speed in [-1.0, f64::NAN, f64::INFINITY] {
        let err =
            replay_session(&config, &unknown, ReplayOptions::new(speed), &sink, &token, |_| {})
                .await
                .unwrap_err();
        assert!(matches!(err, IngestError::Fatal(_)), "speed {speed}: {err:?}");
    }
    // Nothing was recorded for the refused runs.
    let n: i64 = connect(&db.url)
        .await
        .query_one("SELECT count(*) FROM sessions WHERE source = 'replay'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    db.drop_db().await;
}

/// Replays `original` into a local sink and returns how long publishing took.
async fn timed_replay(config: &Config, original: &str, speed: f64, rate_cap: u32) -> Duration {
    let (sink, mut rx) = EnvelopeSink::channel(1_024);
    let collect = tokio::spawn(async move {
        let mut seqs = Vec::new();
        while let Some(env) = rx.recv().await {
            seqs.push(env.seq_no);
        }
        seqs
    });
    let opts = ReplayOptions { speed, rate_cap, new_session_id: uuid::Uuid::new_v4().to_string() };
    let stats = replay_session(config, original, opts, &sink, &CancellationToken::new(), |_| {})
        .await
        .unwrap();
    drop(sink);
    let seqs = collect.await.unwrap();
    assert_eq!(seqs.len(), 60);
    assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "seqNo order: {seqs:?}");
    stats.elapsed
}

#[tokio::test]
async fn pacing_follows_the_speed_factor_and_never_beats_the_rate_cap() {
    let db = PgDb::create().await;
    let mut config = Config::default();
    config.postgres.url = db.url.clone();
    let original = uuid::Uuid::new_v4().to_string();
    // 60 events, 50 ms apart: the original session spans 2.95 s.
    store(&config, &session(&original, 60, 50)).await;

    // Twice as fast: about 1.5 s; never less (lower bounds only, a loaded machine is slower).
    let took = timed_replay(&config, &original, 2.0, 5_000).await;
    assert!(took >= Duration::from_millis(1_400), "speed 2 took {took:?}");
    // As fast as possible under a cap of 100/s (one-event burst): 59 intervals of 10 ms.
    let took = timed_replay(&config, &original, 0.0, 100).await;
    assert!(took >= Duration::from_millis(560), "cap 100/s took {took:?}");
    // Unpaced with a high cap ignores the original timing (2.95 s at speed 1).
    let took = timed_replay(&config, &original, 0.0, 100_000).await;
    assert!(took < Duration::from_millis(2_900), "unpaced took {took:?}");
    db.drop_db().await;
}
