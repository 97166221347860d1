//! The direct provider against the in-process mock TikTok, publishing to the real local broker:
//! every scripted scenario arrives on the raw topic in order, and the connection survives garbage.

mod common;

use std::time::Duration;

use common::{bytes, messages, of_stream, read_raw, wait_until};
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use ttlc_ingest::mock_server::script::expected_methods;
use ttlc_ingest::mock_server::{MockServer, Scenario};
use ttlc_ingest::streaks::SYNTHESIZED_MARK;
use ttlc_ingest::{ChannelState, IngestService};
use ttlc_webcast::{WebcastGiftMessage, WebcastSocialMessage};

const SCRIPTED: [Scenario; 7] = [
    Scenario::Chat,
    Scenario::Gifts,
    Scenario::Likes,
    Scenario::Joins,
    Scenario::Social,
    Scenario::Battle,
    Scenario::StreamEnd,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_arrives_on_the_raw_topic_in_order() {
    let shutdown = CancellationToken::new();
    let mock = MockServer::start(common::mock_config(), shutdown.clone()).await.unwrap();
    let config = common::config("ingest-scen", &mock, None).await;
    let service = IngestService::start(&config, None, shutdown.clone()).await.unwrap();
    for s in SCRIPTED {
        service.supervisor().start_channel(&format!("@{s}--x")).unwrap();
    }
    let done = wait_until(Duration::from_secs(20), || {
        SCRIPTED.iter().all(|s| mock.room(&format!("@{s}--x")).is_some_and(|r| r.script_done))
    })
    .await;
    assert!(done, "scripts did not finish: {:?}", mock.rooms());
    // Longer than the gift-streak quiet period (500 ms), so the missing end frame is synthesized
    // by the timer rather than at shutdown.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let states = service.supervisor().list();
    let ended = states.iter().find(|c| c.channel == "@stream-end--x").unwrap();
    assert_eq!(ended.state, ChannelState::Ended, "{states:?}");
    let stats = service.finish().await.unwrap();
    assert_eq!(stats.failed, 0);

    let all = read_raw(&config, stats.delivered as usize).await;
    assert_eq!(all.len() as u64, stats.delivered);
    for s in SCRIPTED {
        let room = mock.room(&format!("@{s}--x")).unwrap();
        assert!(room.acks > 0 && room.heartbeats > 0, "{s}: {room:?}");
        let stream = of_stream(&all, &room.room_id.to_string());
        assert_eq!(stream[0].raw_type, "ControlEvent.CONNECTED", "{s}");
        let data = stream[0].data.as_ref().unwrap();
        assert_eq!(data["roomId"], room.room_id.to_string());
        assert_eq!(data["provider"], "direct");
        let last = stream.last().unwrap();
        assert_eq!(last.raw_type, "ControlEvent.DISCONNECTED", "{s}");
        assert_eq!(last.data.as_ref().unwrap()["willReconnect"], false);
        assert!(stream.iter().all(|e| e.session_id == stream[0].session_id), "{s}: one session");

        let msgs = messages(&stream);
        let mut got: Vec<String> = msgs.iter().map(|e| e.raw_type.clone()).collect();
        let mut want = expected_methods(s);
        if s == Scenario::Gifts {
            // Erin's streak never ends: exactly one synthesized final frame follows the script.
            want.push("WebcastGiftMessage".into());
            let synthesized: Vec<WebcastGiftMessage> = msgs
                .iter()
                .map(|e| WebcastGiftMessage::decode(bytes(e).as_slice()).unwrap())
                .filter(|g| g.common.as_ref().is_some_and(|c| c.describe == SYNTHESIZED_MARK))
                .collect();
            assert_eq!(synthesized.len(), 1);
            let g = &synthesized[0];
            assert_eq!(
                (g.user.as_ref().unwrap().user_id, g.repeat_count, g.repeat_end),
                (2002, 2, 1)
            );
            let ids: std::collections::HashSet<i64> = msgs.iter().map(|e| e.seq_no).collect();
            assert_eq!(ids.len(), msgs.len(), "every gift frame has its own seqNo");
        } else {
            // Real messages keep TikTok's growing msgIds.
            assert!(msgs.windows(2).all(|w| w[0].seq_no < w[1].seq_no), "{s}: order");
        }
        got.truncate(want.len() + 1);
        assert_eq!(got, want, "{s}");
        if s == Scenario::Social {
            let keys: Vec<String> = msgs
                .iter()
                .map(|e| WebcastSocialMessage::decode(bytes(e).as_slice()).unwrap())
                .map(|m| m.common.unwrap().display_text.unwrap().key)
                .collect();
            assert_eq!(keys, ["pm_main_follow_message_viewer_2", "pm_mt_guidance_share"]);
        }
        // TikTok's createTime becomes the envelope timestamp.
        assert!(msgs.iter().all(|e| e.timestamp <= e.ingested_at));
    }
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_survives_undecodable_messages_and_frames() {
    let shutdown = CancellationToken::new();
    let mock = MockServer::start(common::mock_config(), shutdown.clone()).await.unwrap();
    let config = common::config("ingest-garbage", &mock, None).await;
    let service = IngestService::start(&config, None, shutdown.clone()).await.unwrap();
    service.supervisor().start_channel("@undecodable--x").unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || mock
            .room("@undecodable--x")
            .is_some_and(|r| r.script_done))
        .await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = service.finish().await.unwrap();
    let room = mock.room("@undecodable--x").unwrap();
    assert_eq!(room.connections, 1, "never reconnected");

    let all = read_raw(&config, stats.delivered as usize).await;
    let stream = of_stream(&all, &room.room_id.to_string());
    let types: Vec<&str> = stream
        .iter()
        .filter(|e| e.raw_type != "WebcastRoomUserSeqMessage")
        .map(|e| e.raw_type.as_str())
        .collect();
    assert_eq!(
        types,
        [
            "ControlEvent.CONNECTED",
            "WebcastChatMessage",
            "WebcastChatMessage",
            "WebcastMysteryMessage",
            "ControlEvent.ERROR",
            "ControlEvent.ERROR",
            "WebcastChatMessage",
            "ControlEvent.DISCONNECTED",
        ]
    );
    // The garbage message is published with its bytes intact for normalize to route.
    let garbage = stream.iter().find(|e| e.data_b64.as_deref() == Some("////Bw==")).unwrap();
    assert_eq!(garbage.raw_type, "WebcastChatMessage");
    let errors: Vec<_> = stream.iter().filter(|e| e.raw_type == "ControlEvent.ERROR").collect();
    assert!(errors.iter().all(|e| e.data.as_ref().unwrap()["code"] == "DECODE_ERROR"));
    assert_ne!(errors[0].seq_no, errors[1].seq_no, "distinct eventIds");
    mock.stop().await;
}
