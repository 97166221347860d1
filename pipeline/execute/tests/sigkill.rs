//! SIGKILL of the executor mid-stream loses no action and re-fires at most the one action that
//! was in flight (the documented window between the target accepting a request and its
//! `actions_log` row committing).
//!
//! The executor runs in a child process: this test binary re-executes itself running the ignored
//! `child_executor` test, which runs `run_execute` until killed. (Once the `ttlc execute`
//! subcommand is wired, the same scenario can drive that binary.)

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use support::{PgDb, Receiver, SECRET, webhook};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use ttlc_core::config::Config;
use ttlc_schemas::encode_action;
use ttlc_testkit as kit;
use ttlc_topics::Topic;

const CHILD_ENV: &str = "TTLC_TEST_CHILD_CONFIG";
const ACTIONS: usize = 300;

/// Runs only as the child process (the parent sets `TTLC_TEST_CHILD_CONFIG`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs as the child process of executor_survives_sigkill"]
async fn child_executor() {
    let Ok(json) = std::env::var(CHILD_ENV) else { return };
    let mut config: Config = serde_json::from_str(&json).expect("child config");
    config.secrets = Config::load_with(None, |n| std::env::var(n).ok()).expect("env").secrets;
    ttlc_execute::run_execute(&config, CancellationToken::new()).await.expect("executor ran");
}

fn spawn_child(config: &Config) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["child_executor", "--exact", "--ignored", "--nocapture"])
        .env(CHILD_ENV, serde_json::to_string(config).expect("config JSON"))
        .env("TTLC_WEBHOOK_SECRET", SECRET)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("child starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_survives_sigkill() {
    let db = PgDb::create().await;
    let receiver = Receiver::start(200).await;
    let mut config = kit::config("exec-kill");
    config.postgres = db.config().postgres;
    config.execute.webhook_allow_http_loopback = true;
    // One action in flight at a time, so the window holds at most one action per kill.
    config.execute.concurrency = 1;
    config.runner.batch_size = 25;
    kit::create_topics(&config, 3).await;
    let actions: Vec<_> = (0..ACTIONS).map(|n| webhook(n, &receiver.url())).collect();
    let records: Vec<_> = actions
        .iter()
        .map(|a| (a.stream_id.clone().into_bytes(), encode_action(a).expect("encodes")))
        .collect();
    kit::produce(&config, Topic::Actions, &records).await;

    let mut child = spawn_child(&config);
    let deadline = Instant::now() + Duration::from_secs(60);
    while receiver.hits().len() < ACTIONS / 3 {
        assert!(Instant::now() < deadline, "the executor never got going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("child reaped");
    let at_kill = receiver.hits().len();
    assert!(at_kill < ACTIONS, "killed mid-stream ({at_kill} of {ACTIONS} fired)");

    let mut child = spawn_child(&config);
    let fired = |r: &Receiver| -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for h in r.hits() {
            *m.entry(h.action_id.unwrap_or_default()).or_insert(0) += 1;
        }
        m
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while fired(&receiver).len() < ACTIONS {
        assert!(
            Instant::now() < deadline,
            "only {} of {ACTIONS} actions fired",
            fired(&receiver).len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    child.start_kill().expect("stop");
    child.wait().await.expect("child reaped");

    let counts = fired(&receiver);
    assert_eq!(counts.len(), ACTIONS, "no action lost");
    assert!(actions.iter().all(|a| counts.contains_key(&a.action_id)));
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    assert!(duplicates <= 1, "{duplicates} actions fired twice; at most the one in flight may");
    let client = db.client().await;
    let rows = client
        .query("SELECT action_id, count(*) FROM actions_log WHERE status = 'success' GROUP BY action_id", &[])
        .await
        .expect("query");
    assert_eq!(rows.len(), ACTIONS, "a success row per action");
    assert!(rows.iter().all(|r| r.get::<_, i64>(1) == 1));
    eprintln!(
        "SIGKILL after {at_kill} of {ACTIONS} webhooks; duplicates after restart: {duplicates}"
    );
    db.drop_db().await;
}
