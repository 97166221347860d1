//! Failure handling against the mock TikTok: heartbeat timeouts and refused handshakes reconnect
//! with backoff, a sign 429 waits for its retry-after, a rejected API key stops the channel.

mod common;

use std::time::Duration;

use common::{messages, of_stream, read_raw, wait_until};
use tokio_util::sync::CancellationToken;
use ttlc_ingest::mock_server::MockServer;
use ttlc_ingest::mock_server::script::{Scenario, expected_methods};
use ttlc_ingest::{ChannelState, IngestService};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_timeout_reconnects_after_a_backoff() {
    let shutdown = CancellationToken::new();
    let mock = MockServer::start(common::mock_config(), shutdown.clone()).await.unwrap();
    let config = common::config("ingest-hb", &mock, None).await;
    let service = IngestService::start(&config, None, shutdown.clone()).await.unwrap();
    service.supervisor().start_channel("@heartbeat-timeout--x").unwrap();
    let key = "@heartbeat-timeout--x";
    assert!(
        wait_until(Duration::from_secs(10), || mock.room(key).is_some_and(|r| r.connections >= 2))
            .await
    );
    // The second connection heartbeats at the negotiated 200 ms and outlives the 1 s timeout.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let room = mock.room(key).unwrap();
    assert_eq!(room.heartbeat_timeouts, 1, "{room:?}");
    assert_eq!(room.connections, 2);
    let stats = service.finish().await.unwrap();

    let all = read_raw(&config, stats.delivered as usize).await;
    let stream = of_stream(&all, &room.room_id.to_string());
    let lifecycle: Vec<&str> = stream
        .iter()
        .filter(|e| e.raw_type.starts_with("ControlEvent."))
        .map(|e| e.raw_type.as_str())
        .collect();
    assert_eq!(
        lifecycle,
        [
            "ControlEvent.CONNECTED",
            "ControlEvent.DISCONNECTED",
            "ControlEvent.CONNECTED",
            "ControlEvent.DISCONNECTED"
        ]
    );
    let dropped = stream.iter().find(|e| e.raw_type == "ControlEvent.DISCONNECTED").unwrap();
    assert_eq!(dropped.data.as_ref().unwrap()["willReconnect"], true);
    let back = stream.iter().rfind(|e| e.raw_type == "ControlEvent.CONNECTED").unwrap();
    assert_ne!(back.session_id, dropped.session_id, "a reconnect is a new session");
    let gap = back.ingested_at - dropped.ingested_at;
    assert!(gap.num_milliseconds() >= 240, "reconnected after {gap} (initial 300 ms ±20%)");
    // Every scripted chat arrives exactly once across both sessions.
    let chats: Vec<String> = messages(&stream).iter().map(|e| e.raw_type.clone()).collect();
    assert_eq!(chats, expected_methods(Scenario::HeartbeatTimeout));
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_handshakes_retry_with_growing_backoff() {
    let shutdown = CancellationToken::new();
    let mock = MockServer::start(common::mock_config(), shutdown.clone()).await.unwrap();
    let config = common::config("ingest-refused", &mock, None).await;
    let service = IngestService::start(&config, None, shutdown.clone()).await.unwrap();
    let key = "@refused-handshake--x";
    service.supervisor().start_channel(key).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || mock.room(key).is_some_and(|r| r.script_done)).await
    );
    let room = mock.room(key).unwrap();
    assert_eq!((room.ws_attempts.len(), room.connections), (3, 1), "{room:?}");
    let gaps: Vec<Duration> = room.ws_attempts.windows(2).map(|w| w[1] - w[0]).collect();
    // 300 ms then 600 ms, each ±20%, plus the sign round trip (generous upper bounds: CI
    // machines are busy; the lower bounds are what the policy guarantees).
    assert!(
        gaps[0] >= Duration::from_millis(240) && gaps[0] < Duration::from_millis(2_000),
        "{gaps:?}"
    );
    assert!(
        gaps[1] >= Duration::from_millis(480) && gaps[1] < Duration::from_millis(3_000),
        "{gaps:?}"
    );
    let stats = service.finish().await.unwrap();

    let all = read_raw(&config, stats.delivered as usize).await;
    let stream = of_stream(&all, &room.room_id.to_string());
    let errors: Vec<_> = stream.iter().filter(|e| e.raw_type == "ControlEvent.ERROR").collect();
    assert_eq!(errors.len(), 2);
    assert!(errors.iter().all(|e| e.data.as_ref().unwrap()["code"] == "HANDSHAKE_REFUSED"));
    assert_eq!(messages(&stream).len(), expected_methods(Scenario::RefusedHandshake).len());
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_429_waits_for_retry_after() {
    let shutdown = CancellationToken::new();
    let mock_config = ttlc_ingest::mock_server::MockConfig {
        retry_after: Duration::from_secs(2),
        ..common::mock_config()
    };
    let mock = MockServer::start(mock_config, shutdown.clone()).await.unwrap();
    let config = common::config("ingest-429", &mock, None).await;
    let service = IngestService::start(&config, None, shutdown.clone()).await.unwrap();
    let key = "@sign-429--x";
    service.supervisor().start_channel(key).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || mock.room(key).is_some_and(|r| r.script_done)).await
    );
    let room = mock.room(key).unwrap();
    assert_eq!(room.sign_times.len(), 2, "{room:?}");
    let waited = room.sign_times[1] - room.sign_times[0];
    // The backoff alone would be 300 ms; retry-after says 2 s.
    assert!(waited >= Duration::from_millis(1_950), "retried after {waited:?}");
    let stats = service.finish().await.unwrap();
    let all = read_raw(&config, stats.delivered as usize).await;
    let stream = of_stream(&all, &room.room_id.to_string());
    assert_eq!(stream[0].raw_type, "ControlEvent.ERROR");
    assert_eq!(stream[0].data.as_ref().unwrap()["code"], "SIGN_RATE_LIMITED");
    assert_eq!(messages(&stream).len(), expected_methods(Scenario::Sign429).len());
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_is_sent_and_a_rejected_key_stops_the_channel() {
    let shutdown = CancellationToken::new();
    let mock_config = ttlc_ingest::mock_server::MockConfig {
        api_key: Some("s3cret".into()),
        ..common::mock_config()
    };
    let mock = MockServer::start(mock_config, shutdown.clone()).await.unwrap();

    // The newer connect endpoint with the right key works.
    let mut good = common::config("ingest-key", &mock, Some("s3cret")).await;
    good.ingest.sign_endpoint = "connect".into();
    let service = IngestService::start(&good, None, shutdown.clone()).await.unwrap();
    service.supervisor().start_channel("@chat--keyed").unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || mock
            .room("@chat--keyed")
            .is_some_and(|r| r.script_done))
        .await
    );
    service.finish().await.unwrap();

    // A wrong key is fatal: one ERROR, no retries.
    let bad = common::config("ingest-badkey", &mock, Some("wrong")).await;
    let service = IngestService::start(&bad, None, shutdown.clone()).await.unwrap();
    service.supervisor().start_channel("@chat--unkeyed").unwrap();
    let failed = wait_until(Duration::from_secs(5), || {
        service.supervisor().list().iter().all(|c| c.state == ChannelState::Failed)
    })
    .await;
    assert!(failed, "{:?}", service.supervisor().list());
    // Long enough for two backoffs: a retry would publish a second ERROR.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let stats = service.finish().await.unwrap();
    let all = read_raw(&bad, stats.delivered as usize).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].data.as_ref().unwrap()["code"], "FATAL");
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_gives_up_after_max_attempts() {
    let shutdown = CancellationToken::new();
    let mock_config =
        ttlc_ingest::mock_server::MockConfig { refused_handshakes: 10, ..common::mock_config() };
    let mock = MockServer::start(mock_config, shutdown.clone()).await.unwrap();
    let mut config = common::config("ingest-maxattempts", &mock, None).await;
    config.ingest.reconnect_max_attempts = 3;
    config.ingest.reconnect_initial_ms = 50;
    let service = IngestService::start(&config, None, shutdown.clone()).await.unwrap();
    service.supervisor().start_channel("@refused-handshake--max").unwrap();
    let failed = wait_until(Duration::from_secs(5), || {
        service.supervisor().list().iter().all(|c| c.state == ChannelState::Failed)
    })
    .await;
    assert!(failed, "{:?}", service.supervisor().list());
    let info = &service.supervisor().list()[0];
    assert_eq!(info.failures, 3);
    assert_eq!(mock.room("@refused-handshake--max").unwrap().ws_attempts.len(), 3);
    let stats = service.finish().await.unwrap();
    let all = read_raw(&config, stats.delivered as usize).await;
    let errors = all.iter().filter(|e| e.raw_type == "ControlEvent.ERROR").count();
    assert_eq!(errors, 3);
    mock.stop().await;
}
