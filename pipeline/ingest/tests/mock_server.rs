//! The mock TikTok itself: room-id resolution by every route, what the push socket demands, and
//! the load rate.

mod common;

use std::time::Duration;

use common::{messages, of_stream, read_raw};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;
use ttlc_core::config::Config;
use ttlc_ingest::IngestService;
use ttlc_ingest::mock_server::{MockConfig, MockServer};
use ttlc_ingest::sign::{SignBudget, SignClient};
use ttlc_ingest::wire;

fn client_for(mock: &MockServer) -> SignClient {
    let mut c = Config::default();
    c.ingest.sign_api_url = mock.base_url();
    c.ingest.tiktok_web_url = mock.base_url();
    SignClient::new(&c).expect("sign client")
}

#[tokio::test]
async fn room_ids_resolve_from_page_data_then_the_live_api_then_the_sign_server() {
    let budget = SignBudget::new(100.0, 2);
    for (page_data, live_api) in [(true, true), (false, true), (false, false)] {
        let shutdown = CancellationToken::new();
        let mock = MockServer::start(
            MockConfig { page_data, live_api, ..MockConfig::default() },
            shutdown,
        )
        .await
        .unwrap();
        let id = client_for(&mock).resolve_room_id("@alice", &budget).await.unwrap();
        assert_eq!(id, mock.room("@alice").unwrap().room_id.to_string(), "{page_data} {live_api}");
        // A numeric channel is a room id already.
        assert_eq!(client_for(&mock).resolve_room_id("7311", &budget).await.unwrap(), "7311");
        mock.stop().await;
    }
}

#[tokio::test]
async fn the_push_socket_wants_the_signed_cookie_and_an_enter_room_frame() {
    let mock = MockServer::start(MockConfig::default(), CancellationToken::new()).await.unwrap();
    let budget = SignBudget::new(100.0, 2);
    let client = client_for(&mock);
    let room = client.resolve_room_id("@bob", &budget).await.unwrap();
    let signed = client.sign(&room, Some("@bob"), &budget).await.unwrap();
    assert!(signed.cookies.starts_with("ttwid="));
    assert!(signed.initial.heartbeat_duration > 0 && !signed.initial.messages.is_empty());

    // Without the cookie the upgrade is refused.
    let err = tokio_tungstenite::connect_async(signed.ws_url.as_str()).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");

    // With cookie and User-Agent it upgrades, but a client that never enters the room is closed.
    let mut req = signed.ws_url.as_str().into_client_request().unwrap();
    req.headers_mut().insert("cookie", signed.cookies.parse().unwrap());
    req.headers_mut().insert("user-agent", client.user_agent().parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req.clone()).await.unwrap();
    ws.send(WsMessage::Binary(wire::heartbeat_frame(1).into())).await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(6), ws.next()).await.unwrap();
    assert!(matches!(next, Some(Ok(WsMessage::Close(Some(_))))), "{next:?}");

    // Entering the room gets gzip-compressed frames that ask for acks.
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let room_id: i64 = room.parse().unwrap();
    ws.send(WsMessage::Binary(wire::enter_room_frame(room_id).into())).await.unwrap();
    let frame = loop {
        match ws.next().await {
            Some(Ok(WsMessage::Binary(b))) => break wire::decode_push_frame(&b).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(frame.headers.get(wire::COMPRESS_HEADER).map(String::as_str), Some("gzip"));
    let result = wire::fetch_result_of(&frame).unwrap();
    assert!(result.need_ack && !result.messages.is_empty());
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_rate_is_delivered_in_order() {
    let shutdown = CancellationToken::new();
    let mock_config = MockConfig { rate: 400, ..common::mock_config() };
    let mock = MockServer::start(mock_config, shutdown.clone()).await.unwrap();
    let config = common::config("ingest-load-rate", &mock, None).await;
    let service = IngestService::start(&config, None, shutdown.clone()).await.unwrap();
    service.supervisor().start_channel("@load--x").unwrap();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let stats = service.finish().await.unwrap();
    let all = read_raw(&config, stats.delivered as usize).await;
    let room = mock.room("@load--x").unwrap();
    let stream = of_stream(&all, &room.room_id.to_string());
    let msgs = messages(&stream);
    // 400/s for about 2.4 s of connected time.
    assert!((700..=1_100).contains(&msgs.len()), "{} messages", msgs.len());
    assert!(msgs.windows(2).all(|w| w[0].seq_no < w[1].seq_no));
    // Everything read before shutdown was published; frames in flight at the close may be lost.
    let sent = room.messages_sent - 1;
    assert!(
        msgs.len() as u64 <= sent && msgs.len() as u64 + 50 >= sent,
        "{} of {sent}",
        msgs.len()
    );
    mock.stop().await;
}
