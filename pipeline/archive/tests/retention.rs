//! Retention, pseudonymization and GDPR erasure against the real PostgreSQL and ClickHouse:
//! events of known ages go in through both archivers, then exactly the expected rows are
//! archived, deleted, pseudonymized or erased, and everything else is left as it was.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use support::{ChDb, PgDb, event, user};
use tokio_postgres::error::SqlState;
use ttlc_archive::retention::{self, Pseudonymizer, RetentionError, Subject};
use ttlc_archive::{ChArchiver, PgArchiver};
use ttlc_core::Stage;
use ttlc_core::config::Config;
use ttlc_schemas::event::{ChatPayload, ConnectedPayload, Payload};
use ttlc_schemas::{UnifiedEvent, User};

const KEY: &str = "test-pseudonym-key-of-at-least-32-bytes";

/// A fresh database in each store, with the config that points at both.
struct Stores {
    pg: PgDb,
    ch: ChDb,
    config: Config,
}

impl Stores {
    async fn new() -> Stores {
        let pg = PgDb::create().await;
        let ch = ChDb::new();
        let mut config = Config::load_with(None, |name| {
            (name == "TTLC_PSEUDONYM_SECRET").then(|| KEY.to_owned())
        })
        .unwrap();
        config.postgres.url = pg.url.clone();
        config.clickhouse.url = ch.url.clone();
        config.retention.batch_size = 7; // several batches per table
        config.retention.clickhouse_wait_ms = 60_000;
        // Both archivers migrate their store on connect.
        PgArchiver::connect(&config).await.unwrap();
        ChArchiver::connect(&config).await.unwrap();
        Stores { pg, ch, config }
    }

    /// Stores `events` the way the pipeline does: through both archive stages.
    async fn load(&self, events: &[UnifiedEvent]) {
        let input = support::records(events);
        PgArchiver::connect(&self.config).await.unwrap().handle(&input).await.unwrap();
        ChArchiver::connect(&self.config).await.unwrap().handle(&input).await.unwrap();
    }

    async fn pg_count(&self, sql: &str) -> i64 {
        self.pg.client().await.query_one(sql, &[]).await.expect(sql).get(0)
    }

    async fn pg_ids(&self, sql: &str) -> BTreeSet<String> {
        let rows = self.pg.client().await.query(sql, &[]).await.expect(sql);
        rows.iter().map(|r| r.get(0)).collect()
    }

    async fn ch_count(&self, sql: &str) -> u64 {
        self.ch.count(sql).await
    }

    async fn drop(self) {
        self.pg.drop_db().await;
        self.ch.drop_db().await;
    }
}

/// A session of `stream` starting `days` ago: CONNECTED, then `n` chats by `users` in turn, one
/// per minute.
fn session(stream: &str, days: i64, users: &[usize], n: usize) -> Vec<UnifiedEvent> {
    let start = Utc::now() - Duration::days(days);
    let id = format!("{stream}-{days}d");
    let connected =
        Payload::Connected(ConnectedPayload { room_id: Some(stream.into()), ..Default::default() });
    let mut out = vec![event(stream, &id, 0, start, User::system(), connected)];
    for i in 0..n {
        let chat = Payload::Chat(ChatPayload { message: format!("hi {i}"), ..Default::default() });
        let at = start + Duration::minutes(i as i64 + 1);
        out.push(event(stream, &id, i as i64 + 1, at, user(users[i % users.len()]), chat));
    }
    out
}

fn ids(events: &[UnifiedEvent]) -> BTreeSet<String> {
    events.iter().map(|e| e.event_id.clone()).collect()
}

async fn insert_action(stores: &Stores, event_id: &str, days: i64, text: &str) {
    stores
        .pg
        .client()
        .await
        .execute(
            "INSERT INTO actions_log (action_id, rule_id, event_id, stream_id, action_type, status, \
             rendered_template, created_at) VALUES (md5(random()::text), 'r1', $1, 'room', 'log', \
             'success', $2, now() - make_interval(days => $3))",
            &[&event_id, &text, &(days as i32)],
        )
        .await
        .unwrap();
}

async fn insert_note(stores: &Stores, user_id: &str) {
    stores
        .pg
        .client()
        .await
        .execute(
            "INSERT INTO user_notes (user_id, author, note) VALUES ($1, 'mod', 'spams')",
            &[&user_id],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn prune_archives_deletes_and_pseudonymizes_exactly_the_old_rows() {
    let stores = Stores::new().await;
    let fresh = session("room-fresh", 10, &[1, 2, 3], 20);
    let archived = session("room-arch", 100, &[11, 12], 15);
    let deleted = session("room-del", 130, &[21], 12);
    let ancient = session("room-old", 400, &[31, 32], 5);
    for s in [&fresh, &archived, &deleted, &ancient] {
        stores.load(s).await;
    }
    insert_action(&stores, &fresh[1].event_id, 10, "keep").await;
    insert_action(&stores, &archived[1].event_id, 95, "old").await;
    insert_action(&stores, &deleted[1].event_id, 200, "older").await;
    insert_note(&stores, "7000031").await;
    let all = (fresh.len() + archived.len() + deleted.len() + ancient.len()) as i64;
    assert_eq!(stores.pg_count("SELECT count(*) FROM events").await, all);

    // A dry run counts, changes nothing.
    let dry = retention::prune(&stores.config, Utc::now(), true).await.unwrap();
    assert_eq!(stores.pg_count("SELECT count(*) FROM events").await, all);
    assert_eq!(
        stores.pg_count("SELECT count(*) FROM users WHERE pseudonymized_at IS NOT NULL").await,
        0
    );

    let report = retention::prune(&stores.config, Utc::now(), false).await.unwrap();
    let expect = [
        ("postgres", "events_archive", "deleted", 0),
        ("postgres", "events", "deleted", (deleted.len() + ancient.len()) as u64),
        ("postgres", "events", "archived", archived.len() as u64),
        ("postgres", "actions_log", "deleted", 2),
        ("postgres", "sessions", "deleted", 1),
        ("postgres", "streams", "deleted", 1),
        ("postgres", "users", "pseudonymized", 2),
        ("clickhouse", "events", "deleted", (deleted.len() + ancient.len()) as u64),
    ];
    for (store, table, action, rows) in expect {
        assert_eq!(report.rows(store, table, action), rows, "{store} {table} {action}\n{report}");
        assert_eq!(dry.rows(store, table, action), rows, "dry run {store} {table} {action}\n{dry}");
    }
    assert!(report.steps.iter().all(|s| !s.pending), "{report}");

    // Exactly the expected rows are left, in each table.
    assert_eq!(stores.pg_ids("SELECT event_id FROM events").await, ids(&fresh));
    assert_eq!(stores.pg_ids("SELECT event_id FROM events_archive").await, ids(&archived));
    assert_eq!(
        stores.pg_ids("SELECT rendered_template FROM actions_log").await,
        BTreeSet::from(["keep".to_owned()])
    );
    let sessions = stores.pg_ids("SELECT session_id FROM sessions").await;
    assert_eq!(
        sessions,
        BTreeSet::from(["room-arch-100d", "room-del-130d", "room-fresh-10d"].map(String::from))
    );
    assert_eq!(
        stores.pg_count("SELECT count(*) FROM streams WHERE stream_id = 'room-old'").await,
        0
    );
    assert_eq!(stores.pg_count("SELECT count(*) FROM streams").await, 3);
    assert_eq!(
        stores.ch_count("SELECT count() FROM events FINAL").await,
        (fresh.len() + archived.len()) as u64
    );
    let ch_deleted = stores
        .ch_count("SELECT count() FROM events WHERE stream_id IN ('room-del', 'room-old')")
        .await;
    assert_eq!(ch_deleted, 0);

    // Inactive users carry HMAC pseudonyms now: stable, keyed, no trace of the originals.
    let key = Pseudonymizer::new(KEY.as_bytes()).unwrap();
    let client = stores.pg.client().await;
    let rows = client
        .query(
            "SELECT user_id, unique_id, display_name, event_count FROM users \
             WHERE pseudonymized_at IS NOT NULL ORDER BY user_id",
            &[],
        )
        .await
        .unwrap();
    let mut expected: Vec<(String, String)> = [31, 32]
        .iter()
        .map(|n| (key.user_id(&format!("{}", 7_000_000 + n)), key.unique_id(&format!("viewer{n}"))))
        .collect();
    expected.sort();
    let got: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(got, expected);
    assert!(rows.iter().all(|r| r.get::<_, Option<String>>(2).is_none()));
    assert_eq!(rows.iter().map(|r| r.get::<_, i64>(3)).sum::<i64>(), 5, "activity counts survive");
    assert_eq!(stores.pg_count("SELECT count(*) FROM users WHERE user_id IN ('7000031', '7000032') OR unique_id IN ('viewer31', 'viewer32')").await, 0);
    let other_key = Pseudonymizer::new(b"a different key, also >= 32 bytes").unwrap();
    assert_ne!(other_key.user_id("7000031"), key.user_id("7000031"));
    assert_eq!(
        stores.pg_ids("SELECT user_id FROM user_notes").await,
        BTreeSet::from([key.user_id("7000031")]),
        "notes follow the user to the pseudonym"
    );
    assert_eq!(
        stores.pg_count("SELECT count(*) FROM users WHERE pseudonymized_at IS NULL").await,
        6
    );

    // Running it again finds nothing more to do.
    let again = retention::prune(&stores.config, Utc::now(), false).await.unwrap();
    assert!(again.steps.iter().all(|s| s.rows == 0), "{again}");

    // Erasure finds a pseudonymized user through the key, and removes the row and its notes.
    let subject = Subject::UserId("7000031".into());
    let erased = retention::erase(&stores.config, &subject, "dpo", false, false).await.unwrap();
    assert_eq!(erased.postgres.get("users"), Some(&1), "{erased}");
    assert_eq!(erased.postgres.get("user_notes"), Some(&1), "{erased}");
    assert_eq!(
        stores.pg_count("SELECT count(*) FROM users WHERE pseudonymized_at IS NOT NULL").await,
        1
    );
    assert_eq!(stores.pg_count("SELECT count(*) FROM user_notes").await, 0);
    stores.drop().await;
}

#[tokio::test]
async fn archived_events_are_hard_deleted_after_the_grace_period() {
    let stores = Stores::new().await;
    let old = session("room-a", 100, &[1], 9);
    stores.load(&old).await;
    retention::prune(&stores.config, Utc::now(), false).await.unwrap();
    assert_eq!(stores.pg_count("SELECT count(*) FROM events_archive").await, old.len() as i64);
    // 25 days later the archive has passed the 120-day horizon.
    let later: DateTime<Utc> = Utc::now() + Duration::days(25);
    let report = retention::prune(&stores.config, later, false).await.unwrap();
    assert_eq!(report.rows("postgres", "events_archive", "deleted"), old.len() as u64);
    assert_eq!(report.rows("clickhouse", "events", "deleted"), old.len() as u64);
    assert_eq!(stores.pg_count("SELECT count(*) FROM events_archive").await, 0);
    assert_eq!(stores.ch_count("SELECT count() FROM events").await, 0);
    stores.drop().await;
}

#[tokio::test]
async fn prune_refuses_to_run_without_a_strong_pseudonym_key() {
    let stores = Stores::new().await;
    stores.load(&session("room-a", 200, &[1], 3)).await;
    let mut config = stores.config.clone();
    config.secrets = Default::default();
    let error = retention::prune(&config, Utc::now(), false).await.unwrap_err();
    assert!(matches!(error, RetentionError::MissingKey), "{error}");
    assert!(error.to_string().contains("TTLC_PSEUDONYM_SECRET") && !error.is_retryable());
    config = Config::load_with(None, |n| (n == "TTLC_PSEUDONYM_SECRET").then(|| "short".into()))
        .unwrap();
    config.postgres.url = stores.pg.url.clone();
    let error = retention::prune(&config, Utc::now(), false).await.unwrap_err();
    assert!(matches!(error, RetentionError::WeakKey(5)), "{error}");
    assert_eq!(stores.pg_count("SELECT count(*) FROM events").await, 4, "nothing was touched");
    // Without pseudonymization configured, no key is needed.
    config.retention.users_inactive_days = 0;
    config.clickhouse.url = stores.ch.url.clone();
    retention::prune(&config, Utc::now(), false).await.unwrap();
    assert_eq!(stores.pg_count("SELECT count(*) FROM events").await, 0);
    stores.drop().await;
}

#[tokio::test]
async fn the_application_role_cannot_run_maintenance() {
    let stores = Stores::new().await;
    stores.load(&session("room-a", 100, &[1], 3)).await;
    let mut config = stores.config.clone();
    config.retention.maint_role = "ttlc_app".into();
    for error in [
        retention::prune(&config, Utc::now(), false).await.unwrap_err(),
        retention::erase(&config, &Subject::UserId("7000001".into()), "t", false, false)
            .await
            .unwrap_err(),
    ] {
        let RetentionError::Postgres(pg) = &error else { panic!("{error}") };
        assert_eq!(pg.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE), "{error}");
        assert!(!error.is_retryable());
    }
    let client = stores.pg.client().await;
    client.batch_execute("SET ROLE ttlc_app").await.unwrap();
    for sql in [
        "DELETE FROM events",
        "UPDATE events SET unique_id = 'x'",
        "SELECT count(*) FROM events_archive",
        "DELETE FROM actions_log",
        "DELETE FROM users",
        "DELETE FROM sessions",
        "INSERT INTO gdpr_erasures (requested_by, subject_user_id) VALUES ('x', '1')",
    ] {
        let error = client.batch_execute(sql).await.unwrap_err();
        assert_eq!(error.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE), "{sql}: {error}");
    }
    assert_eq!(stores.pg_count("SELECT count(*) FROM events").await, 4);
    stores.drop().await;
}

#[tokio::test]
async fn gdpr_erase_removes_exactly_the_subjects_rows_in_both_stores_once() {
    let stores = Stores::new().await;
    // User 1 (the subject) and user 2 chat in a recent and in an old session.
    let recent = session("room-a", 5, &[1, 2], 10);
    let old = session("room-b", 100, &[1, 2], 6);
    stores.load(&recent).await;
    stores.load(&old).await;
    retention::prune(&stores.config, Utc::now(), false).await.unwrap(); // old → events_archive
    insert_action(&stores, &recent[1].event_id, 1, "welcome viewer1").await; // user 1's event
    insert_action(&stores, &recent[2].event_id, 1, "welcome viewer2").await;
    insert_note(&stores, "7000001").await;
    insert_note(&stores, "7000001").await;
    insert_note(&stores, "7000002").await;
    let subject = Subject::UserId("7000001".into());

    let dry = retention::erase(&stores.config, &subject, "dpo", false, true).await.unwrap();
    assert_eq!(stores.pg_count("SELECT count(*) FROM events WHERE user_id = '7000001'").await, 5);
    assert_eq!(stores.pg_count("SELECT count(*) FROM gdpr_erasures").await, 0);

    let report = retention::erase(&stores.config, &subject, "dpo", false, false).await.unwrap();
    let expect = [
        ("events", 5),
        ("events_archive", 3),
        ("user_notes", 2),
        ("users", 1),
        ("actions_log_redacted", 1),
    ];
    for (table, rows) in expect {
        assert_eq!(report.postgres.get(table), Some(&rows), "{table}\n{report}");
        assert_eq!(dry.postgres.get(table), Some(&rows), "dry run {table}\n{dry}");
    }
    assert_eq!((report.clickhouse.rows, report.clickhouse.done), (8, true));
    assert_eq!(report.user_ids, vec!["7000001".to_owned()]);

    // Nothing of user 1 is left anywhere; user 2 is untouched.
    for table in ["events", "events_archive", "user_notes", "users"] {
        let sql = format!("SELECT count(*) FROM {table} WHERE user_id = '7000001'");
        assert_eq!(stores.pg_count(&sql).await, 0, "{table}");
    }
    assert_eq!(stores.pg_count("SELECT count(*) FROM events WHERE user_id = '7000002'").await, 5);
    assert_eq!(
        stores.pg_count("SELECT count(*) FROM events_archive WHERE user_id = '7000002'").await,
        3
    );
    assert_eq!(stores.pg_count("SELECT count(*) FROM user_notes").await, 1);
    assert_eq!(
        stores.pg_ids("SELECT rendered_template FROM actions_log").await,
        BTreeSet::from(["[erased]".to_owned(), "welcome viewer2".to_owned()])
    );
    assert_eq!(
        stores.pg_count("SELECT count(*) FROM actions_log").await,
        2,
        "rows kept for idempotency"
    );
    assert_eq!(stores.ch_count("SELECT count() FROM events WHERE user_id = '7000001'").await, 0);
    assert_eq!(
        stores.ch_count("SELECT count() FROM events FINAL WHERE user_id = '7000002'").await,
        8
    );

    // One audit row with the counts.
    let client = stores.pg.client().await;
    let row = client
        .query_one("SELECT id, requested_by, subject_user_id, subject_unique_id, counts FROM gdpr_erasures", &[])
        .await
        .unwrap();
    assert_eq!(Some(row.get::<_, i64>(0)), report.audit_id);
    assert_eq!(row.get::<_, String>(1), "dpo");
    assert_eq!(row.get::<_, Option<String>>(2).as_deref(), Some("7000001"));
    assert_eq!(row.get::<_, Option<String>>(3), None);
    let counts: serde_json::Value = row.get(4);
    assert_eq!(
        counts,
        serde_json::json!({"events": 5, "events_archive": 3, "user_notes": 2, "users": 1,
            "actions_log_redacted": 1, "clickhouse_events": 8, "clickhouse_done": true})
    );

    // Again: already erased, no second audit row. An unknown user: an error, no audit row.
    let again = retention::erase(&stores.config, &subject, "dpo", false, false).await.unwrap();
    assert_eq!(again.already_erased, report.audit_id);
    let unknown = Subject::UserId("404".into());
    let error = retention::erase(&stores.config, &unknown, "dpo", false, false).await.unwrap_err();
    assert!(matches!(error, RetentionError::UnknownSubject(_)), "{error}");
    let system = Subject::UniqueId("system".into());
    let error = retention::erase(&stores.config, &system, "dpo", false, false).await.unwrap_err();
    assert!(matches!(error, RetentionError::SystemUser(_)), "{error}");
    assert_eq!(stores.pg_count("SELECT count(*) FROM gdpr_erasures").await, 1);
    stores.drop().await;
}

#[tokio::test]
async fn a_handle_held_by_several_users_is_erased_only_when_asked_for_all() {
    let stores = Stores::new().await;
    // Users 5 and 6 both used the handle "shared" (6 took it after 5 changed theirs).
    let mut taken = session("room-a", 3, &[5], 4);
    for e in taken.iter_mut().skip(1) {
        e.user.unique_id = "shared".into();
    }
    stores.load(&taken).await;
    let mut now = session("room-b", 1, &[6], 2);
    for e in now.iter_mut().skip(1) {
        e.user.unique_id = "shared".into();
    }
    stores.load(&now).await;
    stores.load(&session("room-c", 1, &[5, 7], 4)).await; // 5 under their new handle, and 7
    stores
        .pg
        .client()
        .await
        .execute("UPDATE streams SET unique_id = 'shared' WHERE stream_id = 'room-b'", &[])
        .await
        .unwrap();
    // "shared" is also an ingest channel (a streamer), next to another one.
    stores
        .pg
        .client()
        .await
        .batch_execute(
            "INSERT INTO ingest_channels (unique_id, desired) VALUES ('shared', 'running'), \
             ('someone_else', 'running')",
        )
        .await
        .unwrap();
    let subject = Subject::UniqueId("shared".into());

    let error = retention::erase(&stores.config, &subject, "dpo", false, false).await.unwrap_err();
    let RetentionError::Ambiguous { user_ids, .. } = &error else { panic!("{error}") };
    assert_eq!(user_ids, &["7000005".to_owned(), "7000006".to_owned()]);
    assert_eq!(stores.pg_count("SELECT count(*) FROM events WHERE user_id <> '0'").await, 10);

    let report = retention::erase(&stores.config, &subject, "dpo", true, false).await.unwrap();
    assert_eq!(report.postgres.get("events"), Some(&8), "{report}"); // 4 + 2 + user 5's 2 in room-c
    assert_eq!(report.postgres.get("users"), Some(&2));
    assert_eq!(report.postgres.get("streams_redacted"), Some(&1));
    assert_eq!(report.postgres.get("ingest_channels"), Some(&1));
    assert_eq!(
        stores.pg_ids("SELECT unique_id FROM ingest_channels").await,
        BTreeSet::from(["someone_else".to_owned()])
    );
    assert_eq!(report.clickhouse.rows, 8);
    assert_eq!(
        stores.pg_ids("SELECT user_id FROM events WHERE user_id <> '0'").await,
        BTreeSet::from(["7000007".to_owned()])
    );
    assert_eq!(
        stores.ch_count("SELECT count() FROM events WHERE user_id IN ('7000005', '7000006')").await,
        0
    );
    let row = stores
        .pg
        .client()
        .await
        .query_one("SELECT subject_user_id, subject_unique_id FROM gdpr_erasures", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0), None, "several users: no single subject id");
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("shared"));
    stores.drop().await;
}
