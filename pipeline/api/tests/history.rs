//! Happy paths of history (PostgreSQL), users and notes, analytics (ClickHouse), channels and
//! replay, against data stored by the archive stages (each seed event delivered twice).

mod support;

use std::collections::HashSet;

use serde_json::Value;
use support::*;
use ttlc_api::Role;

async fn get(path: &str, token: &str) -> Value {
    let response = reqwest::Client::new()
        .get(SHARED.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.expect("json")
}

#[tokio::test]
async fn streams_and_sessions_come_from_the_archive() {
    let t = token(Role::Viewer, Some(STREAM_A));
    let stream = get(&format!("/streams/{STREAM_A}"), &t).await;
    assert_eq!(stream["streamId"], STREAM_A);
    assert_eq!(stream["eventCount"], 15, "re-delivery does not count twice: {stream}");
    assert_eq!(stream["lastSessionId"], SESSION_A);
    let sessions = get(&format!("/streams/{STREAM_A}/sessions"), &t).await;
    let items = sessions["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["sessionId"], SESSION_A);
    assert_eq!(items[0]["source"], "live");
    assert_eq!(items[0]["eventCount"], 15);
    assert!(sessions["nextCursor"].is_null());
}

#[tokio::test]
async fn session_events_page_by_cursor_without_gaps_or_repeats() {
    let t = token(Role::Viewer, Some(STREAM_A));
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/sessions/{SESSION_A}/events?limit=4");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = get(&path, &t).await;
        pages += 1;
        for e in page["items"].as_array().expect("items") {
            seen.push(e["seqNo"].as_i64().expect("seqNo"));
            // Items are whole UnifiedEvents, valid against the contract.
            ttlc_schemas::validate_unified(e).expect("a valid UnifiedEvent");
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10, "paging terminates");
    }
    assert_eq!(seen, (0..15).collect::<Vec<i64>>());
    assert_eq!(pages, 4);

    let chats = get(&format!("/sessions/{SESSION_A}/events?type=CHAT"), &t).await;
    assert_eq!(chats["items"].as_array().map(Vec::len), Some(4));
    let gifts_and_likes = get(&format!("/sessions/{SESSION_A}/events?type=GIFT,LIKE"), &t).await;
    assert_eq!(gifts_and_likes["items"].as_array().map(Vec::len), Some(6));
    let alice = get(&format!("/sessions/{SESSION_A}/events?user=alice"), &t).await;
    assert_eq!(alice["items"].as_array().map(Vec::len), Some(6));
    let by_id = get(&format!("/sessions/{SESSION_A}/events?user=9000002"), &t).await;
    assert_eq!(by_id["items"], alice["items"]);
    // Events 10..14 are a minute later than the rest.
    let late = get(&format!("/sessions/{SESSION_A}/events?from=2026-11-20T18:01:00Z"), &t).await;
    assert_eq!(late["items"].as_array().map(Vec::len), Some(5));
    let early =
        get(&format!("/sessions/{SESSION_A}/events?to=2026-11-20T18:01:00Z&type=LIKE"), &t).await;
    assert_eq!(early["items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn users_events_and_notes() {
    let t = token(Role::Moderator, Some(STREAM_A));
    let alice = get("/users/9000002", &t).await;
    assert_eq!(alice["uniqueId"], "alice");
    assert_eq!(alice["eventCount"], 6);
    let events = get("/users/9000002/events?limit=4", &t).await;
    let items = events["items"].as_array().expect("items");
    assert_eq!(items.len(), 4);
    let times: Vec<&str> = items.iter().filter_map(|e| e["timestamp"].as_str()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    let cursor = events["nextCursor"].as_str().expect("a next page");
    let rest = get(&format!("/users/9000002/events?limit=4&cursor={cursor}"), &t).await;
    let ids: HashSet<&str> = items
        .iter()
        .chain(rest["items"].as_array().expect("items"))
        .filter_map(|e| e["eventId"].as_str())
        .collect();
    assert_eq!(ids.len(), 6);

    let client = reqwest::Client::new();
    let note_url = SHARED.url("/users/9000003/notes");
    let response = client
        .post(&note_url)
        .bearer_auth(&t)
        .json(&serde_json::json!({ "note": "gifts a lot" }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201);
    let note: Value = response.json().await.expect("json");
    assert_eq!(note["streamId"], STREAM_A);
    assert_eq!(note["author"], "dev-moderator-7001");
    let notes = get("/users/9000003/notes", &t).await;
    assert!(
        notes
            .as_array()
            .expect("notes")
            .iter()
            .any(|n| n["note"] == "gifts a lot" && n["id"] == note["id"])
    );
    // A moderator cannot file a note under another stream.
    let response = client
        .post(&note_url)
        .bearer_auth(&t)
        .json(&serde_json::json!({ "note": "x", "streamId": STREAM_B }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 403);
}

const RANGE: &str = "from=2026-11-20T17:00:00Z&to=2026-11-20T19:00:00Z";

#[tokio::test]
async fn stream_analytics_count_each_event_once_and_gifts_by_final_frame() {
    let t = token(Role::Viewer, Some(STREAM_A));
    let s = get(&format!("/analytics/streams/{STREAM_A}/summary?{RANGE}"), &t).await;
    assert_eq!(s["events"], 15, "{s}");
    assert_eq!(s["streams"], 1);
    assert_eq!(s["chats"], 4);
    assert_eq!(s["likes"], 12);
    assert_eq!(s["follows"], 1);
    assert_eq!(s["shares"], 1);
    assert_eq!(s["joins"], 2);
    assert_eq!(s["gifts"], 5, "bob's streak counts its final ×3 only, plus alice's ×2: {s}");
    assert_eq!(s["coins"], 25, "{s}");
    assert_eq!(s["uniqueUsers"], 3);
    assert_eq!(s["peakViewers"], 55);

    let gifters = get(&format!("/analytics/streams/{STREAM_A}/top-gifters?{RANGE}"), &t).await;
    let ranked: Vec<(&str, i64)> = gifters
        .as_array()
        .expect("list")
        .iter()
        .map(|u| (u["uniqueId"].as_str().unwrap_or(""), u["coins"].as_i64().unwrap_or(-1)))
        .collect();
    assert_eq!(ranked, vec![("bob", 15), ("alice", 10)]);
    let chatters =
        get(&format!("/analytics/streams/{STREAM_A}/top-chatters?{RANGE}&limit=1"), &t).await;
    assert_eq!(chatters.as_array().map(Vec::len), Some(1));
    assert_eq!(chatters[0]["uniqueId"], "alice");
    assert_eq!(chatters[0]["count"], 3);

    let minutes =
        get(&format!("/analytics/streams/{STREAM_A}/events-per-minute?{RANGE}"), &t).await;
    let rows: Vec<(String, String, u64)> = minutes
        .as_array()
        .expect("list")
        .iter()
        .map(|r| {
            (
                r["minute"].as_str().unwrap_or("").to_owned(),
                r["eventType"].as_str().unwrap_or("").to_owned(),
                r["events"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert!(rows.contains(&("2026-11-20T18:00:00.000Z".into(), "CHAT".into(), 4)), "{rows:?}");
    assert!(rows.contains(&("2026-11-20T18:00:00.000Z".into(), "GIFT".into(), 4)), "{rows:?}");
    assert!(rows.contains(&("2026-11-20T18:01:00.000Z".into(), "JOIN".into(), 2)), "{rows:?}");
    assert_eq!(rows.iter().map(|r| r.2).sum::<u64>(), 15);

    let coins =
        get(&format!("/analytics/streams/{STREAM_A}/coins?{RANGE}&bucketSeconds=3600"), &t).await;
    assert_eq!(coins.as_array().map(Vec::len), Some(1), "{coins}");
    assert_eq!(coins[0]["at"], "2026-11-20T18:00:00.000Z");
    assert_eq!(coins[0]["coins"], 25);

    // Outside the range there is nothing.
    let empty = get(&format!("/analytics/streams/{STREAM_A}/summary?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z"), &t).await;
    assert_eq!(empty["events"], 0);
}

#[tokio::test]
async fn global_analytics_span_every_stream() {
    let t = token(Role::Operator, None);
    let s = get(&format!("/analytics/global/summary?{RANGE}"), &t).await;
    assert_eq!(s["events"], 18, "{s}");
    assert_eq!(s["streams"], 2);
    assert_eq!(s["chats"], 6);
    let chatters = get(&format!("/analytics/global/top-chatters?{RANGE}"), &t).await;
    let ranked: Vec<(&str, i64)> = chatters
        .as_array()
        .expect("list")
        .iter()
        .map(|u| (u["uniqueId"].as_str().unwrap_or(""), u["count"].as_i64().unwrap_or(-1)))
        .collect();
    assert_eq!(ranked, vec![("both", 3), ("alice", 3)]);
}

#[tokio::test]
async fn channels_are_started_listed_and_stopped_per_stream() {
    let client = reqwest::Client::new();
    let streamer_a = token(Role::Streamer, Some(STREAM_A));
    let streamer_b = token(Role::Streamer, Some(STREAM_B));
    let response = client
        .post(SHARED.url("/channels"))
        .bearer_auth(&streamer_a)
        .json(&serde_json::json!({ "uniqueId": "@hist_chan" }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201);
    let info: Value = response.json().await.expect("json");
    assert_eq!(
        (info["uniqueId"].as_str(), info["streamId"].as_str()),
        (Some("hist_chan"), Some(STREAM_A))
    );
    let mine = get("/channels", &streamer_a).await;
    assert!(mine.as_array().expect("list").iter().any(|c| c["uniqueId"] == "hist_chan"));
    let theirs = get("/channels", &streamer_b).await;
    assert!(theirs.as_array().expect("list").iter().all(|c| c["streamId"] == STREAM_B));
    let response = client
        .delete(SHARED.url("/channels/hist_chan"))
        .bearer_auth(&streamer_b)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 403);
    let response = client
        .delete(SHARED.url("/channels/hist_chan"))
        .bearer_auth(&streamer_a)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.expect("json")["state"], "stopped");
    let response = client
        .delete(SHARED.url("/channels/never_started"))
        .bearer_auth(&streamer_a)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 404);
    let response = client
        .post(SHARED.url("/channels"))
        .bearer_auth(&streamer_a)
        .json(&serde_json::json!({ "uniqueId": "no spaces!" }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 422);
}

#[tokio::test]
async fn replay_starts_through_the_control_and_returns_the_new_session() {
    let client = reqwest::Client::new();
    let t = token(Role::Streamer, Some(STREAM_A));
    let url = SHARED.url(&format!("/sessions/{SESSION_A}/replay"));
    let response = client
        .post(&url)
        .bearer_auth(&t)
        .json(&serde_json::json!({ "speed": 4.0 }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.expect("json");
    let new = body["sessionId"].as_str().expect("sessionId").to_owned();
    let started = SHARED.replays.started.lock().clone();
    assert!(started.iter().any(|(s, stream, speed, id)| s == SESSION_A
        && stream == STREAM_A
        && *speed == 4.0
        && *id == new));
    for bad in [
        serde_json::json!({ "speed": -1 }),
        serde_json::json!({ "speed": "fast" }),
        serde_json::json!({}),
    ] {
        let response = client.post(&url).bearer_auth(&t).json(&bad).send().await.expect("request");
        assert_eq!(response.status(), 422, "{bad}");
    }
}
