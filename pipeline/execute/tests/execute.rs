//! ExecuteStage::handle against real PostgreSQL and a real HTTP receiver on 127.0.0.1: signed
//! webhooks fire once per actionId, refused targets are skipped without any connection, failing
//! targets retry with backoff then fail, and chat/overlay/log actions go where they should.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{
    AcceptCounter, PgDb, Receiver, SECRET, action, log_rows, records, signature_ok, webhook,
};
use ttlc_core::config::Config;
use ttlc_core::{Disposition, Stage};
use ttlc_execute::{
    ChatCall, ExecuteStage, OverlayPublisher, Performers, RecordingChat, WebhookClient,
};
use ttlc_schemas::ActionType;

fn config(db: &PgDb, dev_http: bool) -> Config {
    let mut c = db.config();
    c.execute.webhook_allow_http_loopback = dev_http;
    c.execute.retry_initial_ms = 20;
    c.execute.retry_max_ms = 200;
    c.execute.retry_max_attempts = 3;
    c.execute.webhook_timeout_ms = 2_000;
    c
}

fn stage(c: &Config, chat: Arc<RecordingChat>) -> ExecuteStage {
    let performers = Performers {
        webhook: WebhookClient::new(&c.execute, Some(SECRET)).expect("client"),
        chat,
        overlay: OverlayPublisher::new(16),
    };
    ExecuteStage::new(c, performers).expect("stage")
}

fn reasons(d: &[Disposition]) -> Vec<Option<&'static str>> {
    d.iter()
        .map(|d| match d {
            Disposition::Emit(o) => {
                assert!(o.is_empty());
                None
            }
            Disposition::Reject(r) => Some(r.reason),
        })
        .collect()
}

#[tokio::test]
async fn webhooks_fire_once_per_action_id_signed_and_logged() {
    let db = PgDb::create().await;
    let receiver = Receiver::start(200).await;
    let c = config(&db, true);
    let actions: Vec<_> = (0..3).map(|n| webhook(n, &receiver.url())).collect();
    let mut batch = records(&actions);
    batch.push(batch[0].clone()); // an in-batch duplicate
    let mut s = stage(&c, Arc::default());
    assert_eq!(reasons(&s.handle(&batch).await.expect("handled")), [None; 4]);

    let hits = receiver.hits();
    assert_eq!(hits.len(), 3, "one request per action");
    for hit in &hits {
        assert!(signature_ok(hit), "HMAC verifies: {hit:?}");
        let body: serde_json::Value = serde_json::from_slice(&hit.body).expect("JSON body");
        assert_eq!(hit.action_id.as_deref(), body["actionId"].as_str());
        assert!(body["text"].as_str().expect("text").ends_with("sent a Lion"));
    }
    for a in &actions {
        assert_eq!(log_rows(&db, &a.action_id).await, [("success".to_owned(), None)]);
    }

    // Re-delivery (same stage, then a restarted one): nothing fires twice, no new rows.
    s.handle(&batch).await.expect("handled again");
    let mut restarted = stage(&c, Arc::default());
    restarted.handle(&records(&actions)).await.expect("handled after restart");
    assert_eq!(receiver.hits().len(), 3);
    let total: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM actions_log", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(total, 3);
    db.drop_db().await;
}

#[tokio::test]
async fn refused_targets_are_skipped_and_never_contacted() {
    let db = PgDb::create().await;
    let listener = AcceptCounter::start().await;
    let p = listener.port;
    let targets = [
        format!("https://127.0.0.1:{p}/hook"),
        "https://10.0.0.1/hook".to_owned(),
        "https://169.254.169.254/latest/meta-data/".to_owned(),
        format!("https://[::1]:{p}/hook"),
        format!("https://[::ffff:127.0.0.1]:{p}/hook"),
        format!("https://2130706433:{p}/hook"),
        format!("https://0x7f.1:{p}/hook"),
        format!("https://127.1:{p}/hook"),
        // A name resolving to loopback: refused after DNS, before connecting.
        format!("https://localhost:{p}/hook"),
    ];
    // The dev flag opens 127.0.0.1 (that is its purpose, and `2130706433`, `0x7f.1` and `127.1`
    // are 127.0.0.1); every other target stays refused with it.
    let dev_targets: Vec<String> = [1, 2, 3, 4, 8].map(|i| targets[i].clone()).to_vec();
    for dev in [false, true] {
        let c = config(&db, dev);
        let targets = if dev { &dev_targets[..] } else { &targets[..] };
        let actions: Vec<_> = targets
            .iter()
            .enumerate()
            .map(|(i, url)| webhook(100 * usize::from(dev) + i, url))
            .collect();
        let out = stage(&c, Arc::default()).handle(&records(&actions)).await.expect("handled");
        assert_eq!(
            reasons(&out),
            vec![None; targets.len()],
            "refusals are skipped, not dead-lettered"
        );
        for (a, url) in actions.iter().zip(targets) {
            let rows = log_rows(&db, &a.action_id).await;
            assert_eq!(rows.len(), 1, "{url}");
            assert_eq!(rows[0].0, "skipped", "{url}");
            let error = rows[0].1.as_deref().unwrap_or_default();
            assert!(error.starts_with("address_refused: address "), "{url}: {error}");
        }
    }
    assert_eq!(listener.accepted(), 0, "no connection was ever made to a refused target");
    db.drop_db().await;
}

#[tokio::test]
async fn failing_webhook_retries_with_backoff_then_fails() {
    let db = PgDb::create().await;
    let receiver = Receiver::start(500).await;
    let c = config(&db, true);
    let a = webhook(1, &receiver.url());
    let started = Instant::now();
    let out = stage(&c, Arc::default())
        .handle(&records(std::slice::from_ref(&a)))
        .await
        .expect("handled");
    assert_eq!(reasons(&out), [Some("retries_exhausted")]);
    assert_eq!(receiver.hits().len(), 3, "retry_max_attempts = 3");
    assert!(started.elapsed() >= Duration::from_millis(20 + 40), "backoff waited between attempts");
    let rows = log_rows(&db, &a.action_id).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "failed");
    assert!(rows[0].1.as_deref().unwrap_or_default().contains("500"));

    // A 4xx is not retried; it fails at once.
    receiver.set_status(404);
    let b = webhook(2, &receiver.url());
    let out = stage(&c, Arc::default()).handle(&records(&[b])).await.expect("handled");
    assert_eq!(reasons(&out), [Some("action_failed")]);
    assert_eq!(receiver.hits().len(), 4);
    db.drop_db().await;
}

#[tokio::test]
async fn batch_retry_budget_bounds_the_time_a_batch_can_take() {
    let db = PgDb::create().await;
    let receiver = Receiver::start(503).await;
    let mut c = config(&db, true);
    c.execute.retry_max_attempts = 1_000;
    c.execute.retry_initial_ms = 50;
    c.execute.batch_retry_budget_ms = 400;
    let started = Instant::now();
    let out = stage(&c, Arc::default())
        .handle(&records(&[webhook(1, &receiver.url())]))
        .await
        .expect("handled");
    assert_eq!(reasons(&out), [Some("retries_exhausted")]);
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    db.drop_db().await;
}

#[tokio::test]
async fn chat_overlay_and_log_actions() {
    let db = PgDb::create().await;
    let c = config(&db, false);
    let chat = Arc::new(RecordingChat::failing_first(1));
    let mut s = stage(&c, chat.clone());
    let mut overlay = s.performers().overlay.subscribe();
    let announce = action(1, ActionType::Announce, json!({}));
    let ban = action(
        2,
        ActionType::Moderate,
        json!({"kind": "ban", "targetUserId": "77", "targetUniqueId": "troll"}),
    );
    let system = action(
        3,
        ActionType::Moderate,
        json!({"kind": "ban", "targetUserId": "0", "targetUniqueId": "system"}),
    );
    let show = action(4, ActionType::Overlay, json!({"style": "toast"}));
    let log = action(5, ActionType::Log, json!({}));
    let out = s
        .handle(&records(&[
            announce.clone(),
            ban.clone(),
            system.clone(),
            show.clone(),
            log.clone(),
        ]))
        .await
        .expect("handled");
    assert_eq!(reasons(&out), [None; 5]);
    let calls = chat.calls();
    assert_eq!(calls.len(), 2, "announce (after one transient failure) and ban: {calls:?}");
    assert!(calls.contains(&ChatCall::Announce {
        stream_id: announce.stream_id.clone(),
        text: announce.rendered_template.clone()
    }));
    assert!(calls.iter().any(
        |c| matches!(c, ChatCall::Moderate(m) if m.kind == "ban" && m.target_user_id == "77")
    ));
    let shown = overlay.try_recv().expect("overlay message published");
    assert_eq!(
        (shown.action_id.as_str(), shown.style.as_str()),
        (show.action_id.as_str(), "toast")
    );
    for (a, status) in [
        (&announce, "success"),
        (&ban, "success"),
        (&system, "skipped"),
        (&show, "success"),
        (&log, "success"),
    ] {
        assert_eq!(log_rows(&db, &a.action_id).await[0].0, status, "{:?}", a.action_type);
    }
    db.drop_db().await;
}
