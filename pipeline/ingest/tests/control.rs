//! Channel control through the `ingest_channels` table, with in-process ingest services against
//! the mock TikTok, the real broker and a fresh PostgreSQL database: requested channels are
//! claimed by exactly one process and reported back, stops and shutdowns release them, boot
//! channels are requested there, ended channels restart on a new request, refused requests say
//! why, and ingest runs its channels while PostgreSQL is down and resumes control after.

// A failing unwrap is a failing test: that is what tests are for.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use ttlc_core::config::Config;
use ttlc_ingest::IngestService;
use ttlc_ingest::mock_server::MockServer;
use ttlc_ingest::publish::PublishStats;
use ttlc_testkit::pg::PgDb;

/// One row's control and status columns.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    desired: String,
    state: Option<String>,
    claimed_by: Option<String>,
    room_id: Option<String>,
    last_error: Option<String>,
}

async fn row(db: &PgDb, id: &str) -> Option<Row> {
    let client = db.client().await;
    let sql = "SELECT desired, state, claimed_by, room_id, last_error FROM ingest_channels \
               WHERE unique_id = $1";
    client.query_opt(sql, &[&id]).await.unwrap().map(|r| Row {
        desired: r.get(0),
        state: r.get(1),
        claimed_by: r.get(2),
        room_id: r.get(3),
        last_error: r.get(4),
    })
}

/// Polls `id`'s row until `ok` holds, for at most `bound`.
async fn wait_row(db: &PgDb, id: &str, bound: Duration, ok: impl Fn(&Row) -> bool) -> Row {
    let start = Instant::now();
    loop {
        let r = row(db, id).await;
        if let Some(r) = r.as_ref().filter(|r| ok(r)) {
            return r.clone();
        }
        assert!(start.elapsed() < bound, "{id} never got there: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sql(db: &PgDb, statement: &str) {
    db.client().await.batch_execute(statement).await.unwrap();
}

/// A config for `mock` and `db` with fast control timers.
async fn control_config(tag: &str, mock: &MockServer, db: &PgDb, lease_ms: u64) -> Config {
    let mut config = common::config(tag, mock, None).await;
    config.postgres.url = db.url.clone();
    config.ingest.control_poll_ms = 100;
    config.ingest.control_lease_ms = lease_ms;
    config
}

/// An ingest process: its service running under the control table until `token` is cancelled.
struct Ingest {
    token: CancellationToken,
    task: JoinHandle<PublishStats>,
}

async fn start(config: &Config, boot: &[&str]) -> Ingest {
    let token = CancellationToken::new();
    let service = IngestService::start(config, None, token.clone()).await.unwrap();
    let (config, boot) = (config.clone(), boot.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
    let run = token.clone();
    let task = tokio::spawn(async move { service.run(&config, &boot, &run).await.unwrap() });
    Ingest { token, task }
}

impl Ingest {
    async fn stop(self) -> PublishStats {
        self.token.cancel();
        self.task.await.unwrap()
    }
}

fn connected(r: &Row) -> bool {
    r.state.as_deref() == Some("connected") && r.claimed_by.is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_the_channels_and_release_them_on_stop_and_shutdown() {
    let shutdown = CancellationToken::new();
    let mock = MockServer::start(common::mock_config(), shutdown.clone()).await.unwrap();
    let db = PgDb::create().await;
    // A long lease: only an explicit release can hand a channel over within the test's bounds.
    let mut config = control_config("ctl-share", &mock, &db, 30_000).await;
    config.ingest.max_channels = 3;
    let ids = ["chat--c1", "chat--c2", "chat--c3", "chat--c4"];
    for id in ids {
        sql(
            &db,
            &format!("INSERT INTO ingest_channels (unique_id, desired) VALUES ('{id}', 'running')"),
        )
        .await;
    }
    let a = start(&config, &[]).await;
    let b = start(&config, &[]).await;
    let mut holders = Vec::new();
    for id in ids {
        let r = wait_row(&db, id, Duration::from_secs(20), connected).await;
        holders.push(r.claimed_by.unwrap());
    }
    holders.sort();
    holders.dedup();
    assert_eq!(holders.len(), 2, "three at most per process, so both run some: {holders:?}");
    // Never both: each room saw exactly one push connection.
    for id in ids {
        let room = mock.room(&format!("@{id}")).unwrap();
        assert_eq!(room.connections, 1, "{id}: {room:?}");
        let r = row(&db, id).await.unwrap();
        assert_eq!(r.room_id, Some(room.room_id.to_string()));
    }

    // Stopped in the table: its holder stops it and gives the lease up.
    sql(&db, "UPDATE ingest_channels SET desired = 'stopped' WHERE unique_id = 'chat--c1'").await;
    let r = wait_row(&db, "chat--c1", Duration::from_secs(10), |r| r.claimed_by.is_none()).await;
    assert_eq!((r.desired.as_str(), r.state.as_deref()), ("stopped", Some("stopped")));

    // A shutdown releases every lease at once: the other process takes over long before the
    // 30 s lease would have expired.
    a.stop().await;
    let mut survivors = Vec::new();
    for id in &ids[1..] {
        let r = wait_row(&db, id, Duration::from_secs(15), connected).await;
        survivors.push(r.claimed_by.unwrap());
    }
    survivors.dedup();
    assert_eq!(survivors.len(), 1, "the remaining process holds them all: {survivors:?}");
    assert_eq!(mock.room("@chat--c1").unwrap().connections, 1, "a stopped channel stays stopped");
    b.stop().await;
    for id in ids {
        let r = row(&db, id).await.unwrap();
        assert_eq!(r.claimed_by, None, "{id} released at shutdown");
    }
    db.drop_db().await;
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_channels_ended_channels_and_refused_requests() {
    let shutdown = CancellationToken::new();
    let mock = MockServer::start(common::mock_config(), shutdown.clone()).await.unwrap();
    let db = PgDb::create().await;
    let config = control_config("ctl-boot", &mock, &db, 3_000).await;
    let ingest = start(&config, &["@chat--boot", "@stream-end--boot"]).await;

    // Boot channels are requested in the table, so the API lists them and can stop them.
    let r = wait_row(&db, "chat--boot", Duration::from_secs(20), connected).await;
    assert_eq!(r.desired, "running");
    // A channel whose LIVE ended stays ended until it is requested again.
    wait_row(&db, "stream-end--boot", Duration::from_secs(20), |r| {
        r.state.as_deref() == Some("ended")
    })
    .await;
    assert_eq!(mock.room("@stream-end--boot").unwrap().connections, 1);
    sql(
        &db,
        "UPDATE ingest_channels SET requested_at = now(), state = NULL \
         WHERE unique_id = 'stream-end--boot'",
    )
    .await;
    let start = Instant::now();
    while mock.room("@stream-end--boot").unwrap().connections < 2 {
        assert!(start.elapsed() < Duration::from_secs(15), "the ended channel was not restarted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A streamer's request for a room that is not their stream is refused, with the reason.
    sql(
        &db,
        "INSERT INTO ingest_channels (unique_id, owner_stream_id, desired) \
         VALUES ('chat--foreign', '1', 'running'), ('bad name', NULL, 'running')",
    )
    .await;
    let r =
        wait_row(&db, "chat--foreign", Duration::from_secs(20), |r| r.desired == "stopped").await;
    assert_eq!((r.state.as_deref(), r.claimed_by.as_deref()), (Some("failed"), None));
    assert!(r.last_error.as_deref().unwrap_or_default().contains("not stream 1"), "{r:?}");
    let r = wait_row(&db, "bad name", Duration::from_secs(10), |r| r.desired == "stopped").await;
    assert_eq!(r.state.as_deref(), Some("failed"));

    ingest.stop().await;
    db.drop_db().await;
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_runs_its_channels_while_postgresql_is_down() {
    let shutdown = CancellationToken::new();
    let mock = MockServer::start(common::mock_config(), shutdown.clone()).await.unwrap();
    let mut config = common::config("ctl-nopg", &mock, None).await;
    // Nothing listens on port 1: every connection attempt is refused at once.
    config.postgres.url = "postgres://ttlc:ttlc@127.0.0.1:1/ttlc".into();
    config.postgres.connect_timeout_ms = 500;
    config.ingest.control_poll_ms = 100;
    let ingest = start(&config, &["@chat--nopg"]).await;
    let start = Instant::now();
    while mock.room("@chat--nopg").is_none_or(|r| r.connections == 0) {
        assert!(start.elapsed() < Duration::from_secs(20), "the boot channel never connected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Polls keep failing; the channel keeps running and shutdown still flushes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mock.room("@chat--nopg").unwrap().connections, 1);
    let stats = ingest.stop().await;
    assert!(stats.delivered > 0 && stats.failed == 0, "{stats:?}");
    mock.stop().await;
}

/// A TCP proxy to PostgreSQL that can be cut (open connections dropped, new ones closed at once)
/// and restored: a real outage of the database as ingest sees it.
struct Outage {
    addr: std::net::SocketAddr,
    up: Arc<AtomicBool>,
    cut: Arc<parking_lot::Mutex<CancellationToken>>,
}

impl Outage {
    async fn start(upstream: String) -> Outage {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(parking_lot::Mutex::new(CancellationToken::new()));
        let (up2, cut2) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the connection closes at once
                }
                let token = cut2.lock().clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = token.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    }
                });
            }
        });
        Outage { addr, up, cut }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        std::mem::replace(&mut *self.cut.lock(), CancellationToken::new()).cancel();
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_outage_keeps_channels_running_and_control_resumes_after_it() {
    let shutdown = CancellationToken::new();
    let mock = MockServer::start(common::mock_config(), shutdown.clone()).await.unwrap();
    let db = PgDb::create().await;
    let mut config = control_config("ctl-outage", &mock, &db, 1_000).await;
    // Ingest reaches PostgreSQL through the proxy; the test itself connects directly.
    let (head, tail) = db.url.split_once('@').unwrap();
    let (upstream, path) = tail.split_once('/').unwrap();
    let proxy = Outage::start(upstream.to_owned()).await;
    config.postgres.url = format!("{head}@{}/{path}", proxy.addr);
    config.postgres.connect_timeout_ms = 500;
    let ingest = start(&config, &["@chat--outage"]).await;
    wait_row(&db, "chat--outage", Duration::from_secs(20), connected).await;

    // Down for longer than the lease: the channel keeps running, and a stop requested meanwhile
    // waits for the database to come back.
    proxy.cut();
    sql(&db, "UPDATE ingest_channels SET desired = 'stopped' WHERE unique_id = 'chat--outage'")
        .await;
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert!(!ingest.task.is_finished(), "ingest survives the outage");
    let room = mock.room("@chat--outage").unwrap();
    assert_eq!(room.connections, 1, "never reconnected: {room:?}");
    assert_eq!(row(&db, "chat--outage").await.unwrap().state.as_deref(), Some("connected"));

    proxy.restore();
    let r =
        wait_row(&db, "chat--outage", Duration::from_secs(15), |r| r.claimed_by.is_none()).await;
    assert_eq!(r.state.as_deref(), Some("stopped"));
    ingest.stop().await;
    db.drop_db().await;
    mock.stop().await;
}
