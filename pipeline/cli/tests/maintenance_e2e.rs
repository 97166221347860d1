//! `ttlc prune` and `ttlc gdpr-erase` as processes against the real PostgreSQL and ClickHouse:
//! exit codes, the printed summary, and the rows left in both stores afterwards.

// A failing unwrap is a failing test: that is what tests are for.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use chrono::{Duration, Utc};
use ttlc_archive::{ChArchiver, PgArchiver};
use ttlc_core::Stage;
use ttlc_core::config::Config;
use ttlc_schemas::event::{ChatPayload, Payload};
use ttlc_schemas::{Source, UnifiedEvent, User};
use ttlc_testkit::pg::PgDb;

const KEY: &str = "cli-test-pseudonym-key-0123456789abcdef";

/// The ClickHouse server of the local stack (`TTLC_CLICKHOUSE_URL` without its database).
fn ch_server() -> String {
    let url = std::env::var("TTLC_CLICKHOUSE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8123/ttlc".into());
    let (scheme, rest) = url.split_once("://").unwrap();
    format!("{scheme}://{}", rest.split('/').next().unwrap())
}

/// A chat by TikTok user `7000000 + user`, `days` ago.
fn chat(stream: &str, seq: i64, days: i64, user: u32) -> UnifiedEvent {
    let id = uuid::Uuid::new_v4().as_u128();
    UnifiedEvent {
        schema_version: "1".into(),
        event_id: format!("{id:032x}{id:032x}"),
        event_type: ttlc_schemas::EventType::Chat,
        trigger_id: ttlc_schemas::EventType::Chat.trigger_id(),
        stream_id: stream.into(),
        session_id: format!("{stream}-{days}d"),
        timestamp: Utc::now() - Duration::days(days) + Duration::seconds(seq),
        ingested_at: None,
        source: Source::Live,
        seq_no: Some(seq),
        user: User {
            user_id: format!("{}", 7_000_000 + user),
            unique_id: format!("viewer{user}"),
            ..User::default()
        },
        payload: Some(Payload::Chat(ChatPayload { message: "hi".into(), ..Default::default() })),
    }
}

struct Run {
    db: PgDb,
    ch_url: String,
}

impl Run {
    fn ttlc(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ttlc"));
        command
            .args(args)
            .env("TTLC_DATABASE_URL", &self.db.url)
            .env("TTLC_CLICKHOUSE_URL", &self.ch_url)
            .env("TTLC__LOG__LEVEL", "warn")
            .env_remove("TTLC_PSEUDONYM_SECRET")
            .env_remove("TTLC_CONFIG");
        for (k, v) in env {
            command.env(k, v);
        }
        command.output().unwrap()
    }

    async fn pg(&self, sql: &str) -> i64 {
        self.db.client().await.query_one(sql, &[]).await.expect(sql).get(0)
    }

    async fn ch(&self, sql: &str) -> u64 {
        let database = self.ch_url.rsplit('/').next().unwrap();
        let client = clickhouse::Client::default()
            .with_url(ch_server())
            .with_database(database)
            .with_validation(false);
        client.query(sql).fetch_one::<u64>().await.expect(sql)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_and_gdpr_erase_as_commands() {
    let db = PgDb::create().await;
    let ch_db = format!("ttlc_t_{}", uuid::Uuid::new_v4().simple());
    let run = Run { ch_url: format!("{}/{ch_db}", ch_server()), db };
    let mut config = Config::default();
    config.postgres.url = run.db.url.clone();
    config.clickhouse.url = run.ch_url.clone();
    // Users 1 and 2 chat now; user 3 chatted 200 days ago.
    let mut events: Vec<UnifiedEvent> =
        (0..5).map(|i| chat("room-a", i, 1, 1 + (i % 2) as u32)).collect();
    events.extend((0..3).map(|i| chat("room-old", i, 200, 3)));
    let input: Vec<ttlc_core::InputRecord> = events
        .iter()
        .enumerate()
        .map(|(i, e)| ttlc_core::InputRecord {
            topic: "unified".into(),
            partition: 0,
            offset: i as i64,
            key: Some(e.stream_id.clone().into_bytes()),
            payload: Some(ttlc_schemas::encode_unified(e).unwrap()),
            headers: Vec::new(),
            timestamp_ms: None,
        })
        .collect();
    PgArchiver::connect(&config).await.unwrap().handle(&input).await.unwrap();
    ChArchiver::connect(&config).await.unwrap().handle(&input).await.unwrap();

    // Usage errors are clap's exit 2; a subject is required.
    assert_eq!(run.ttlc(&["gdpr-erase"], &[]).status.code(), Some(2));

    // Without the pseudonym key prune refuses up front and touches nothing.
    let out = run.ttlc(&["prune"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("TTLC_PSEUDONYM_SECRET") && stderr.contains("retrying will not help"),
        "{stderr}"
    );
    assert_eq!(run.pg("SELECT count(*) FROM events").await, 8);

    // A dry run needs no key and changes nothing.
    let out = run.ttlc(&["prune", "--dry-run"], &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.lines().any(|l| l.contains("events") && l.contains(" 3 would be deleted")),
        "{stdout}"
    );
    assert_eq!(run.pg("SELECT count(*) FROM events").await, 8);

    let key = [("TTLC_PSEUDONYM_SECRET", KEY)];
    let out = run.ttlc(&["prune"], &key);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.lines().any(|l| l.starts_with("clickhouse") && l.contains(" 3 deleted")),
        "{stdout}"
    );
    assert_eq!(run.pg("SELECT count(*) FROM events").await, 5);
    assert_eq!(run.ch("SELECT count() FROM events FINAL").await, 5);

    // Erase user 1: three events in each store, one audit row.
    let out = run.ttlc(&["gdpr-erase", "--user-id", "7000001", "--requested-by", "dpo"], &key);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("audit: gdpr_erasures #"), "{stdout}");
    assert_eq!(run.pg("SELECT count(*) FROM events WHERE user_id = '7000001'").await, 0);
    assert_eq!(run.pg("SELECT count(*) FROM users WHERE user_id = '7000001'").await, 0);
    assert_eq!(run.pg("SELECT count(*) FROM events").await, 2);
    assert_eq!(run.ch("SELECT count() FROM events WHERE user_id = '7000001'").await, 0);
    assert_eq!(run.ch("SELECT count() FROM events FINAL").await, 2);
    assert_eq!(
        run.pg("SELECT count(*) FROM gdpr_erasures WHERE requested_by = 'dpo' AND (counts->>'events')::int = 3 AND (counts->>'clickhouse_events')::int = 3").await,
        1
    );

    // Running it again is safe and says so; an unknown user exits 5 and writes no audit row.
    let out = run.ttlc(&["gdpr-erase", "--user-id", "7000001", "--requested-by", "dpo"], &key);
    assert!(
        out.status.success() && text(&out.stdout).contains("already erased"),
        "{}",
        text(&out.stdout)
    );
    let out = run.ttlc(&["gdpr-erase", "--unique-id", "@nobody", "--requested-by", "dpo"], &key);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no audit row written"), "{}", text(&out.stderr));

    // By handle, who asked taken from $USER.
    let out = run.ttlc(&["gdpr-erase", "--unique-id", "@viewer2"], &[("USER", "alice")]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(run.pg("SELECT count(*) FROM events").await, 0);
    assert_eq!(run.ch("SELECT count() FROM events").await, 0);
    assert_eq!(
        run.pg("SELECT count(*) FROM gdpr_erasures WHERE requested_by = 'alice' AND subject_unique_id = 'viewer2' AND subject_user_id = '7000002'").await,
        1
    );
    assert_eq!(run.pg("SELECT count(*) FROM gdpr_erasures").await, 2);

    clickhouse::Client::default()
        .with_url(ch_server())
        .query(&format!("DROP DATABASE IF EXISTS {ch_db}"))
        .execute()
        .await
        .unwrap();
    run.db.drop_db().await;
}
