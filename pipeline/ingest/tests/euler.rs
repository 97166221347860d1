//! The euler provider against the mock's Euler-style relay, publishing to the real broker.

mod common;

use std::time::Duration;

use common::{messages, of_stream, read_raw, wait_until};
use tokio_util::sync::CancellationToken;
use ttlc_ingest::mock_server::script::{Scenario, expected_methods};
use ttlc_ingest::mock_server::{MockConfig, MockServer};
use ttlc_ingest::{ChannelState, IngestService};
use ttlc_schemas::Provider;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_bundles_arrive_in_order_and_stream_end_and_bad_keys_stop_channels() {
    let shutdown = CancellationToken::new();
    let mock_config = MockConfig { api_key: Some("euler-key".into()), ..common::mock_config() };
    let mock = MockServer::start(mock_config, shutdown.clone()).await.unwrap();
    let mut config = common::config("ingest-euler", &mock, Some("euler-key")).await;
    config.ingest.euler_ws_url = format!("ws://{}/euler/ws", mock.addr());
    let service = IngestService::start_provider(&config, Provider::Euler, None, shutdown.clone())
        .await
        .unwrap();
    let channels = ["@all--eu", "@stream-end--eu", "@undecodable--eu"];
    for c in channels {
        service.supervisor().start_channel(c).unwrap();
    }
    let done = wait_until(Duration::from_secs(15), || {
        channels.iter().all(|c| mock.room(c).is_some_and(|r| r.script_done))
    })
    .await;
    assert!(done, "{:?}", mock.rooms());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let list = service.supervisor().list();
    let state = |name: &str| list.iter().find(|c| c.channel == name).unwrap().state;
    assert_eq!(state("@stream-end--eu"), ChannelState::Ended, "{list:?}");
    assert_eq!(state("@all--eu"), ChannelState::Connected);
    assert_eq!(state("@undecodable--eu"), ChannelState::Connected, "garbage does not drop it");
    let stats = service.finish().await.unwrap();

    let all = read_raw(&config, stats.delivered as usize).await;
    for (c, scenario) in [("@all--eu", Scenario::All), ("@stream-end--eu", Scenario::StreamEnd)] {
        let room = mock.room(c).unwrap();
        let stream = of_stream(&all, &room.room_id.to_string());
        assert_eq!(stream[0].raw_type, "ControlEvent.CONNECTED");
        assert_eq!(stream[0].data.as_ref().unwrap()["provider"], "euler");
        assert!(stream.iter().all(|e| e.provider == Provider::Euler));
        let msgs = messages(&stream);
        let got: Vec<String> = msgs.iter().map(|e| e.raw_type.clone()).collect();
        assert_eq!(got, expected_methods(scenario), "{c}");
        assert!(msgs.windows(2).all(|w| w[0].seq_no < w[1].seq_no), "{c}: order");
        assert!(msgs.iter().all(|e| e.data.as_ref().is_some_and(|d| d.contains_key("common"))));
        let last = stream.last().unwrap();
        assert_eq!(last.raw_type, "ControlEvent.DISCONNECTED");
        assert_eq!(last.data.as_ref().unwrap()["willReconnect"], false);
    }
    let room = mock.room("@undecodable--eu").unwrap();
    assert_eq!(room.connections, 1);
    let stream = of_stream(&all, &room.room_id.to_string());
    let errors = stream.iter().filter(|e| e.raw_type == "ControlEvent.ERROR").count();
    assert_eq!(errors, 2, "two garbage frames, two ERROR envelopes");

    // A wrong key: the relay accepts, then closes with 4401, and the channel gives up.
    let mut bad = common::config("ingest-euler-bad", &mock, Some("nope")).await;
    bad.ingest.euler_ws_url = format!("ws://{}/euler/ws", mock.addr());
    let service =
        IngestService::start_provider(&bad, Provider::Euler, None, shutdown.clone()).await.unwrap();
    service.supervisor().start_channel("@chat--eu").unwrap();
    let failed = wait_until(Duration::from_secs(5), || {
        service.supervisor().list().iter().all(|c| c.state == ChannelState::Failed)
    })
    .await;
    assert!(failed, "{:?}", service.supervisor().list());
    let stats = service.finish().await.unwrap();
    let all = read_raw(&bad, stats.delivered as usize).await;
    let closed = all.iter().find(|e| e.raw_type == "ControlEvent.DISCONNECTED").unwrap();
    let data = closed.data.as_ref().unwrap();
    assert_eq!((data["code"].as_u64(), data["willReconnect"].as_bool()), (Some(4401), Some(false)));
    mock.stop().await;
}
