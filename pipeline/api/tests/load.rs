//! Load benchmark (ignored by default): 1,000 concurrent SSE clients on one API process, every one
//! of which must receive every event. Run with
//! `cargo test -p ttlc-api --test load -- --ignored --nocapture` (add `--release` for numbers
//! that do not include debug-build overhead); results go to `benches/README.md`.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use parking_lot::Mutex;
use rdkafka::producer::FutureRecord;
use support::*;
use ttlc_api::Role;
use ttlc_topics::Topic;

const CLIENTS: usize = 1_000;
const EVENTS: i64 = 1_000;

/// Reads one client's feed until it saw `EVENTS` events; returns per-event receive instants.
async fn client_task(response: reqwest::Response) -> Vec<(i64, Instant)> {
    let mut stream = response.bytes_stream();
    let mut buf = String::new();
    let mut got = Vec::with_capacity(EVENTS as usize);
    while (got.len() as i64) < EVENTS {
        let Ok(Some(Ok(chunk))) =
            tokio::time::timeout(Duration::from_secs(60), stream.next()).await
        else {
            break;
        };
        let now = Instant::now();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            if let Some(i) = block.find("\"seqNo\":") {
                let digits: String =
                    block[i + 8..].chars().take_while(char::is_ascii_digit).collect();
                if let Ok(seq) = digits.parse() {
                    got.push((seq, now));
                }
            }
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load benchmark: run explicitly"]
async fn one_thousand_sse_clients_all_receive_every_event() {
    let mut config = support::config("api-load").await;
    config.http.live_buffer = 16_384;
    let api = TestApi::start(config).await;
    let stream = "8888";
    let client =
        reqwest::Client::builder().pool_max_idle_per_host(CLIENTS).build().expect("client");
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        // Ten users, a hundred connections each (the per-user limit is raised for the bench).
        let t = ttlc_api::mint_claims(
            SECRET,
            &ttlc_api::Claims {
                sub: format!("load-{}", i % 10),
                role: Role::Moderator,
                stream_id: Some(stream.into()),
                exp: (chrono::Utc::now().timestamp() + 3600) as u64,
                iat: 0,
            },
        )
        .expect("mint");
        let response = client
            .get(api.url(&format!("/streams/{stream}/events")))
            .bearer_auth(t)
            .send()
            .await
            .expect("connect");
        assert_eq!(response.status(), 200, "client {i}");
        tasks.push(tokio::spawn(client_task(response)));
    }
    let connected = started.elapsed();
    let producer = ttlc_core::kafka::producer(&api.config.kafka).expect("producer");
    let topic = ttlc_core::kafka::topic_name(&api.config.kafka, Topic::Unified);
    let warm = chat("warmup", SESSION_A, 0, user("1", "w"), "w");
    let payload = ttlc_schemas::encode_unified(&warm).expect("encodes");
    producer
        .send(FutureRecord::to(&topic).key("warmup").payload(&payload), Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)
        .expect("warm-up");
    let sent: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::with_capacity(EVENTS as usize)));
    // Events per second offered (`LOAD_RATE`, default 1,000: a very busy live stream).
    let rate: i64 =
        std::env::var("LOAD_RATE").ok().and_then(|r| r.parse().ok()).unwrap_or(1_000).max(20);
    let per_tick = rate / 20;
    let produce_started = Instant::now();
    let mut acks = Vec::new();
    for seq in 0..EVENTS {
        let e = chat(stream, SESSION_A, seq, user("8000001", "u1"), &format!("load message {seq}"));
        let payload = ttlc_schemas::encode_unified(&e).expect("encodes");
        sent.lock().push(Instant::now());
        acks.push(
            producer
                .send_result(FutureRecord::to(&topic).key(stream).payload(&payload))
                .map_err(|(e, _)| e)
                .expect("enqueued"),
        );
        if seq % per_tick == per_tick - 1 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for ack in futures::future::join_all(acks).await {
        ack.expect("not cancelled").expect("delivered");
    }
    let mut latencies = Vec::with_capacity(CLIENTS * EVENTS as usize);
    let mut complete = 0;
    let sent = sent.lock().clone();
    for task in tasks {
        let got = task.await.expect("client task");
        let seqs: Vec<i64> = got.iter().map(|(s, _)| *s).collect();
        if seqs == (0..EVENTS).collect::<Vec<_>>() {
            complete += 1;
        }
        for (seq, at) in got {
            latencies.push(at.duration_since(sent[seq as usize]));
        }
    }
    let elapsed = produce_started.elapsed();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "{CLIENTS} SSE clients connected in {connected:?}; {EVENTS} events offered at {rate}/s; {complete}/{CLIENTS} clients got every event in order; \
         {} deliveries in {elapsed:?} ({:.0}/s); latency p50 {:?} p90 {:?} p99 {:?} max {:?}",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        latencies.last().copied().unwrap_or_default(),
    );
    assert_eq!(complete, CLIENTS, "every client receives every event");
    api.finish().await;
}
