//! Live feeds against the real broker: SSE delivery and latency, filters, `Last-Event-ID` resume
//! without gaps or repeats, WebSocket, overlay and taps, and slow clients being dropped without
//! slowing the others. Each test uses its own stream id, so tests share one server safely.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rdkafka::producer::FutureRecord;
use serde_json::Value;
use support::*;
use ttlc_api::Role;
use ttlc_schemas::{ActionRequest, ActionType, UnifiedEvent};
use ttlc_topics::Topic;

fn unique_stream() -> String {
    format!("{}", 100_000 + (uuid::Uuid::new_v4().as_u128() % 1_000_000_000))
}

fn chats(stream: &str, range: std::ops::Range<i64>) -> Vec<UnifiedEvent> {
    let session = "5a1e0000-0000-4000-8000-0000000000ff";
    range
        .map(|i| {
            chat(
                stream,
                session,
                i,
                user(&format!("{}", 8_000_000 + i % 7), &format!("u{}", i % 7)),
                &format!("message {i}"),
            )
        })
        .collect()
}

async fn open_sse(path: &str, token: &str, last_event_id: Option<&str>) -> SseReader {
    let mut request = reqwest::Client::new().get(SHARED.url(path)).bearer_auth(token);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.expect("request");
    assert_eq!(response.status(), 200, "{path}");
    assert_eq!(
        response.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    SseReader::new(response)
}

/// Reads `n` events; panics if the feed goes quiet first.
async fn read_n(sse: &mut SseReader, n: usize) -> Vec<SseEvent> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let event = sse.next(Duration::from_secs(15)).await.unwrap_or_else(|| {
            let seqs: Vec<i64> = out.iter().map(seq_of).collect();
            panic!("only {} of {n} events arrived: {seqs:?}", out.len())
        });
        assert_ne!(event.event.as_deref(), Some("close"), "closed early: {}", event.data);
        out.push(event);
    }
    out
}

fn seq_of(event: &SseEvent) -> i64 {
    let v: Value = serde_json::from_str(&event.data).expect("JSON data");
    v["seqNo"].as_i64().expect("seqNo")
}

#[tokio::test]
async fn sse_delivers_every_event_in_order_and_reports_latency() {
    let stream = unique_stream();
    let mut sse = open_sse(
        &format!("/streams/{stream}/events"),
        &token(Role::Moderator, Some(&stream)),
        None,
    )
    .await;
    let events = chats(&stream, 0..1000);
    let producer = ttlc_core::kafka::producer(&SHARED.config.kafka).expect("producer");
    let topic = ttlc_core::kafka::topic_name(&SHARED.config.kafka, Topic::Unified);
    // Warm the producer up (metadata, idempotent producer id: ~0.5 s on first use), so the
    // numbers measure delivery, not client start-up.
    let warm = chats(&unique_stream(), 0..1).remove(0);
    let payload = ttlc_schemas::encode_unified(&warm).expect("encodes");
    producer
        .send(
            FutureRecord::to(&topic).key(warm.stream_id.as_bytes()).payload(&payload),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("warm-up delivered");
    let sent: std::sync::Arc<parking_lot::Mutex<HashMap<i64, Instant>>> = Default::default();
    let sending = tokio::spawn({
        let sent = sent.clone();
        async move {
            let mut acks = Vec::new();
            for (i, e) in events.iter().enumerate() {
                let payload = ttlc_schemas::encode_unified(e).expect("encodes");
                sent.lock().insert(e.seq_no.unwrap_or(-1), Instant::now());
                let record = FutureRecord::to(&topic).key(e.stream_id.as_bytes()).payload(&payload);
                // send_result enqueues now (no await), so the send time is the enqueue time.
                acks.push(producer.send_result(record).map_err(|(e, _)| e).expect("enqueued"));
                if i % 10 == 9 {
                    // Paced at ~5,000 events/s: latency, not throughput, is what this measures.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            let started = Instant::now();
            for ack in futures::future::join_all(acks).await {
                ack.expect("not cancelled").expect("delivered");
            }
            println!("all acks {:?} after the last enqueue", started.elapsed());
        }
    });
    let mut latencies = Vec::with_capacity(1000);
    let mut seqs = Vec::with_capacity(1000);
    let mut offsets = Vec::new();
    while seqs.len() < 1000 {
        let event = sse
            .next(Duration::from_secs(15))
            .await
            .unwrap_or_else(|| panic!("only {} of 1000 arrived", seqs.len()));
        let arrived = Instant::now();
        let seq = seq_of(&event);
        if let Some(at) = sent.lock().get(&seq) {
            latencies.push(arrived.duration_since(*at));
        }
        let id = event.id.expect("an id");
        offsets.push(
            id.split_once('-')
                .and_then(|(_, o)| o.parse::<i64>().ok())
                .expect("partition-offset id"),
        );
        seqs.push(seq);
    }
    sending.await.expect("producer task");
    assert_eq!(seqs, (0..1000).collect::<Vec<_>>(), "every event, in order, once");
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "ids increase");
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)];
    println!(
        "SSE latency over {} events (produce call → client receive): p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        latencies.last().copied().unwrap_or_default()
    );
}

#[tokio::test]
async fn sse_filters_by_type_and_user_and_ignores_other_streams() {
    let stream = unique_stream();
    let other = unique_stream();
    let t = token(Role::Moderator, Some(&stream));
    let mut gifts = open_sse(&format!("/streams/{stream}/events?type=GIFT"), &t, None).await;
    let mut by_user = open_sse(&format!("/streams/{stream}/events?user=u3"), &t, None).await;
    let session = "5a1e0000-0000-4000-8000-0000000000fe";
    let mut events = chats(&stream, 0..20);
    events.extend(chats(&other, 0..20));
    events.push(gift(&stream, session, 100, user("8000099", "gifter"), 1, None));
    events.push(gift(&other, session, 101, user("8000099", "gifter"), 1, None));
    produce(&SHARED.config, &events).await;
    let got = read_n(&mut gifts, 1).await;
    let v: Value = serde_json::from_str(&got[0].data).expect("json");
    assert_eq!(
        (v["eventType"].as_str(), v["streamId"].as_str()),
        (Some("GIFT"), Some(stream.as_str()))
    );
    assert!(gifts.next(Duration::from_millis(500)).await.is_none(), "nothing else matches");
    let got = read_n(&mut by_user, 3).await;
    let seqs: Vec<i64> = got.iter().map(seq_of).collect();
    assert_eq!(seqs, vec![3, 10, 17]);
    assert!(by_user.next(Duration::from_millis(500)).await.is_none());
}

#[tokio::test]
async fn last_event_id_resume_misses_nothing_and_repeats_nothing() {
    let stream = unique_stream();
    let t = token(Role::Moderator, Some(&stream));
    let path = format!("/streams/{stream}/events");
    let mut first = open_sse(&path, &t, None).await;
    produce(&SHARED.config, &chats(&stream, 0..100)).await;
    let got = read_n(&mut first, 40).await;
    let last_id = got.last().and_then(|e| e.id.clone()).expect("an id");
    assert_eq!(seq_of(got.last().expect("last")), 39);
    drop(first);
    // While the client is away, 100 more events; while it reconnects, 100 more concurrently, so
    // the hand-over from the catch-up read to the live subscription is exercised under load.
    produce(&SHARED.config, &chats(&stream, 100..200)).await;
    let config = SHARED.config.clone();
    let stream2 = stream.clone();
    let concurrent =
        tokio::spawn(async move { produce(&config, &chats(&stream2, 200..300)).await });
    let mut resumed = open_sse(&path, &t, Some(&last_id)).await;
    let got = read_n(&mut resumed, 260).await;
    concurrent.await.expect("producer");
    let seqs: Vec<i64> = got.iter().map(seq_of).collect();
    let want: Vec<i64> = (40..300).collect();
    assert_eq!(seqs, want, "resumed after 39: nothing missing, nothing repeated, in order");
    assert!(resumed.next(Duration::from_millis(700)).await.is_none(), "and nothing more");
    // The query-parameter form works too, and a resume at the live edge just continues live.
    let live_edge = got.last().and_then(|e| e.id.clone()).expect("id");
    let mut again = open_sse(&format!("{path}?lastEventId={live_edge}"), &t, None).await;
    produce(&SHARED.config, &chats(&stream, 300..305)).await;
    let seqs: Vec<i64> = read_n(&mut again, 5).await.iter().map(seq_of).collect();
    assert_eq!(seqs, vec![300, 301, 302, 303, 304]);
}

#[tokio::test]
async fn websocket_feed_sends_id_and_data() {
    let stream = unique_stream();
    let t = token(Role::Moderator, Some(&stream));
    let url = format!(
        "{}/streams/{stream}/ws?access_token={t}&type=CHAT",
        SHARED.base.replace("http://", "ws://")
    );
    let (mut socket, response) =
        tokio_tungstenite::connect_async(url).await.expect("WebSocket handshake");
    assert_eq!(response.status(), 101);
    produce(&SHARED.config, &chats(&stream, 0..5)).await;
    let mut seqs = Vec::new();
    while seqs.len() < 5 {
        let message = tokio::time::timeout(Duration::from_secs(15), socket.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("frame");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            let v: Value = serde_json::from_str(&text).expect("json");
            assert!(v["id"].as_str().is_some_and(|id| id.contains('-')));
            seqs.push(v["data"]["seqNo"].as_i64().expect("seqNo"));
        }
    }
    assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text message as JSON (`Null` for control frames).
async fn read(socket: &mut Ws) -> Value {
    let frame = tokio::time::timeout(Duration::from_secs(15), socket.next())
        .await
        .expect("in time")
        .expect("open")
        .expect("frame");
    match frame {
        tokio_tungstenite::tungstenite::Message::Text(text) => {
            serde_json::from_str(&text).expect("json")
        }
        _ => Value::Null,
    }
}

#[tokio::test]
async fn websocket_resumes_after_last_event_id() {
    let stream = unique_stream();
    let t = token(Role::Moderator, Some(&stream));
    let base =
        format!("{}/streams/{stream}/ws?access_token={t}", SHARED.base.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(&base).await.expect("handshake");
    produce(&SHARED.config, &chats(&stream, 0..10)).await;
    let mut last_id = String::new();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let v = read(&mut socket).await;
        if let Some(seq) = v["data"]["seqNo"].as_i64() {
            seen.push(seq);
            last_id = v["id"].as_str().expect("id").to_owned();
        }
    }
    drop(socket);
    produce(&SHARED.config, &chats(&stream, 10..15)).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("{base}&lastEventId={last_id}"))
        .await
        .expect("handshake");
    while seen.len() < 15 {
        let v = read(&mut socket).await;
        if let Some(seq) = v["data"]["seqNo"].as_i64() {
            seen.push(seq);
        }
    }
    assert_eq!(seen, (0..15).collect::<Vec<_>>());
}

fn action(stream: &str, kind: ActionType, n: u32) -> ActionRequest {
    ActionRequest {
        action_id: format!("{:064x}", n),
        rule_id: format!("rule-{n}"),
        event_id: format!("{:064x}", n + 1),
        stream_id: stream.into(),
        session_id: "5a1e0000-0000-4000-8000-0000000000fd".into(),
        action_type: kind,
        rendered_template: format!("Thanks {n}!"),
        params: Default::default(),
        attempt: 1,
        created_at: chrono::Utc::now(),
    }
}

#[tokio::test]
async fn overlay_and_taps_carry_decoded_records() {
    let stream = unique_stream();
    let mut overlay =
        open_sse(&format!("/streams/{stream}/overlay"), &token(Role::Viewer, Some(&stream)), None)
            .await;
    let op = token(Role::Operator, None);
    let mut tap_actions =
        open_sse(&format!("/taps/actions?streamId={stream}&type=log"), &op, None).await;
    let mut tap_unified =
        open_sse(&format!("/taps/unified?streamId={stream}&user=u2"), &op, None).await;
    let actions = [
        action(&stream, ActionType::Log, 1),
        action(&stream, ActionType::Overlay, 2),
        action(&unique_stream(), ActionType::Overlay, 3),
    ];
    let records: Vec<(Vec<u8>, Vec<u8>)> = actions
        .iter()
        .map(|a| {
            (a.stream_id.clone().into_bytes(), ttlc_schemas::encode_action(a).expect("encodes"))
        })
        .collect();
    ttlc_testkit::produce(&SHARED.config, Topic::Actions, &records).await;
    produce(&SHARED.config, &chats(&stream, 0..10)).await;
    let got = read_n(&mut overlay, 1).await;
    let v: Value = serde_json::from_str(&got[0].data).expect("json");
    assert_eq!(
        (v["type"].as_str(), v["renderedTemplate"].as_str()),
        (Some("overlay"), Some("Thanks 2!"))
    );
    assert!(overlay.next(Duration::from_millis(500)).await.is_none());
    let got = read_n(&mut tap_actions, 1).await;
    assert_eq!(serde_json::from_str::<Value>(&got[0].data).expect("json")["ruleId"], "rule-1");
    let got = read_n(&mut tap_unified, 2).await;
    assert_eq!(got.iter().map(seq_of).collect::<Vec<_>>(), vec![2, 9]);
}

#[tokio::test]
async fn heartbeats_keep_idle_feeds_alive() {
    let stream = unique_stream();
    let mut sse = open_sse(
        &format!("/streams/{stream}/events"),
        &token(Role::Moderator, Some(&stream)),
        None,
    )
    .await;
    assert!(sse.next(Duration::from_millis(2_500)).await.is_none());
    assert!(sse.comments >= 2, "heartbeat comments every second: {}", sse.comments);
}

#[tokio::test]
async fn a_slow_client_is_dropped_with_a_reason_and_does_not_slow_the_others() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = support::config("api-slow").await;
    // Room for bursts of a fast client, far less than the slow client leaves unread.
    config.http.live_buffer = 512;
    let api = TestApi::start(config).await;
    let stream = unique_stream();
    let t = token(Role::Moderator, Some(&stream));
    // The slow client: a tiny receive buffer, and it does not read until the end.
    let addr: std::net::SocketAddr = api.base.trim_start_matches("http://").parse().expect("addr");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("recv buffer");
    let mut slow = socket.connect(addr).await.expect("connect");
    let request = format!(
        "GET /streams/{stream}/events HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {t}\r\n\r\n"
    );
    slow.write_all(request.as_bytes()).await.expect("request");
    // The fast client reads everything.
    let response = reqwest::Client::new()
        .get(api.url(&format!("/streams/{stream}/events")))
        .bearer_auth(&t)
        .send()
        .await
        .expect("request");
    let mut fast = SseReader::new(response);
    let session = "5a1e0000-0000-4000-8000-0000000000fc";
    let big = "x".repeat(8 * 1024);
    let events: Vec<UnifiedEvent> =
        (0..3000).map(|i| chat(&stream, session, i, user("8000001", "u1"), &big)).collect();
    let config = api.config.clone();
    let producing = tokio::spawn(async move {
        // Paced (~3,000 events/s, 25 MB/s): a live stream, not a bulk load.
        for chunk in events.chunks(300) {
            produce(&config, chunk).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut seqs = Vec::with_capacity(3000);
    while seqs.len() < 3000 {
        let event = fast
            .next(Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("the fast client stalled after {}", seqs.len()));
        assert_ne!(
            event.event.as_deref(),
            Some("close"),
            "the fast client was closed: {}",
            event.data
        );
        seqs.push(seq_of(&event));
    }
    producing.await.expect("producer");
    assert_eq!(seqs, (0..3000).collect::<Vec<_>>(), "the fast client got everything");
    // Now the slow client reads what it was sent: the head of the feed, then the close.
    let mut received = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = slow.read(&mut chunk).await.expect("read");
            received.extend_from_slice(&chunk[..n]);
            // The chunked body's last chunk: the server ended the response.
            if n == 0 || received.ends_with(b"\r\n0\r\n\r\n") {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the server ended the slow client's response");
    let text = String::from_utf8_lossy(&received);
    assert!(text.contains("event: close"), "a close event ends the stream");
    assert!(text.contains("slow consumer"), "and names the reason");
    api.finish().await;
}
