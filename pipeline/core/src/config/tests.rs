use std::collections::HashMap;
use std::io::Write;

use super::*;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> =
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k| map.get(k).cloned()
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[test]
fn defaults_need_no_file() {
    let c = Config::load_with(None, env(&[])).unwrap();
    assert_eq!(c.kafka.brokers, "127.0.0.1:9092");
    assert_eq!(c.kafka.topic_prefix, "ttlc.");
    assert_eq!(c.http.addr, "127.0.0.1:8080");
}

#[test]
fn environment_overrides_the_file() {
    let f = file("[kafka]\nbrokers = \"file:1\"\ntopic_prefix = \"f.\"\n");
    let c = Config::load_with(Some(f.path()), env(&[("TTLC_BROKERS", "env:2")])).unwrap();
    assert_eq!(c.kafka.brokers, "env:2");
    assert_eq!(c.kafka.topic_prefix, "f.");
}

#[test]
fn unknown_keys_are_rejected_with_their_name() {
    let f = file("[kafka]\nbrokerz = \"x\"\n");
    let err = Config::load_with(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(err.contains("brokerz"), "{err}");
    let f = file("[nope]\n");
    assert!(Config::load_with(Some(f.path()), env(&[])).is_err());
}

#[test]
fn secrets_cannot_come_from_the_file() {
    let f = file("jwt_secret = \"x\"\n");
    assert!(Config::load_with(Some(f.path()), env(&[])).is_err());
    let c = Config::load_with(None, env(&[("TTLC_JWT_SECRET", "s3cret")])).unwrap();
    assert_eq!(c.secrets.jwt_secret.as_ref().map(|s| s.expose()), Some("s3cret"));
    assert!(!format!("{c:?}").contains("s3cret"));
}

#[test]
fn missing_file_is_an_error() {
    assert!(matches!(
        Config::load_with(Some(Path::new("/nonexistent/ttlc.toml")), env(&[])),
        Err(ConfigError::Missing(_))
    ));
}

#[test]
fn passwords_are_redacted() {
    assert_eq!(redact_url("postgres://u:p@h/db"), "postgres://u:***@h/db");
    assert_eq!(redact_url("http://h:8123/db"), "http://h:8123/db");
}

#[test]
fn a_channel_lease_must_outlast_a_few_polls() {
    let f = file("[ingest]\ncontrol_poll_ms = 1000\ncontrol_lease_ms = 2000\n");
    let err = Config::load_with(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(err.contains("control_lease_ms"), "{err}");
    // 0 turns the control table off: no lease to check.
    let f = file("[ingest]\ncontrol_poll_ms = 0\ncontrol_lease_ms = 1\n");
    assert!(Config::load_with(Some(f.path()), env(&[])).is_ok());
}

#[test]
fn retention_defaults_follow_the_spec_and_deletion_never_precedes_archiving() {
    let config = Config::load_with(None, env(&[])).unwrap();
    let r = &config.retention;
    assert_eq!((r.events_archive_days, r.events_delete_days, r.actions_log_days), (90, 120, 90));
    assert_eq!(
        (r.sessions_days, r.users_inactive_days, r.maint_role.as_str()),
        (365, 365, "ttlc_maint")
    );
    let f = file("[retention]\nevents_archive_days = 90\nevents_delete_days = 30\n");
    let err = Config::load_with(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(err.contains("events_delete_days"), "{err}");
    // 0 keeps archived events forever.
    let f = file("[retention]\nevents_delete_days = 0\n");
    assert!(Config::load_with(Some(f.path()), env(&[])).is_ok());
}
