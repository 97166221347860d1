//! `ttlc topics apply | list` against the real broker, checked with an independent Kafka client
//! (confluent-kafka from the local stack's venv), and idempotency of a second apply.

// A failing unwrap is a failing test: that is what tests are for.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::Command;

fn ttlc(prefix: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ttlc"))
        .args(args)
        .env("TTLC_BROKERS", ttlc_testkit::brokers())
        .env("TTLC_TOPIC_PREFIX", prefix)
        .env("TTLC__LOG__LEVEL", "warn")
        .output()
        .expect("run ttlc")
}

fn partitions_seen_by_confluent_kafka(prefix: &str) -> BTreeMap<String, i32> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let python =
        std::env::var("TTLC_TEST_PYTHON").unwrap_or_else(|_| "/opt/ttlc/venv/bin/python".into());
    let out = Command::new(python)
        .arg(format!("{root}/deploy/local/check_topics.py"))
        .args(["--brokers", &ttlc_testkit::brokers(), "--prefix", prefix])
        .output()
        .expect("run check_topics.py (deploy/local/stack.sh up creates the venv)");
    assert!(
        out.status.success(),
        "check_topics.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("check_topics.py prints JSON")
}

#[test]
fn apply_creates_declared_topics_once() {
    let prefix = ttlc_testkit::unique_prefix("topics");
    let first = ttlc(&prefix, &["topics", "apply"]);
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "apply failed: {stdout} {}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(stdout.matches("created").count(), 4, "{stdout}");

    let expected: BTreeMap<String, i32> =
        [("actions", 6), ("dlq", 3), ("raw", 12), ("unified", 12)]
            .into_iter()
            .map(|(t, n)| (format!("{prefix}{t}"), n))
            .collect();
    assert_eq!(partitions_seen_by_confluent_kafka(&prefix), expected);

    let second = ttlc(&prefix, &["topics", "apply"]);
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success(), "second apply: {stdout}");
    assert_eq!(stdout.matches("unchanged").count(), 4, "second apply changes nothing: {stdout}");
    assert_eq!(partitions_seen_by_confluent_kafka(&prefix), expected);

    let list = ttlc(&prefix, &["topics", "list"]);
    let stdout = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success());
    assert!(stdout.contains(&format!("{prefix}raw")) && stdout.contains("12"), "{stdout}");
}

#[test]
fn apply_reports_partition_drift_without_touching_the_topic() {
    let prefix = ttlc_testkit::unique_prefix("drift");
    assert!(ttlc(&prefix, &["topics", "apply"]).status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_ttlc"))
        .args(["topics", "apply"])
        .env("TTLC_BROKERS", ttlc_testkit::brokers())
        .env("TTLC_TOPIC_PREFIX", &prefix)
        .env("TTLC__TOPICS__PARTITIONS__RAW", "24")
        .output()
        .expect("run ttlc");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "drift exits 4: {stdout}");
    assert!(stdout.contains("drift") && stdout.contains("declared 24, found 12"), "{stdout}");
    assert_eq!(partitions_seen_by_confluent_kafka(&prefix)[&format!("{prefix}raw")], 12);
}

#[test]
fn unknown_config_keys_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ttlc.toml");
    std::fs::write(&path, "[kafka]\nbrokerz = \"x\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ttlc"))
        .args(["--config", path.to_str().unwrap(), "topics", "list"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("brokerz"), "{stderr}");
}
