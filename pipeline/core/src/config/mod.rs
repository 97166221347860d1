//! Configuration: typed sections with documented defaults, layered file < environment.
//!
//! Sources, later wins:
//! 1. built-in defaults (every field has one, so an empty file is a valid config);
//! 2. a TOML file (`--config PATH` or `TTLC_CONFIG`);
//! 3. the named variables from the spec (`TTLC_BROKERS`, `TTLC_TOPIC_PREFIX`, `TTLC_DATABASE_URL`,
//!    `TTLC_CLICKHOUSE_URL`, `TTLC_HTTP_ADDR`, `TTLC_SIGN_API_URL`);
//! 4. any field by path with a double underscore: `TTLC__RUNNER__BATCH_SIZE=500`.
//!
//! Unknown keys are errors, so a typo never silently falls back to a default. Secrets are never
//! read from the file: they come from the environment only ([`Secrets`]).

mod secrets;
mod sections;

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use secrets::Secrets;
pub use sections::*;

/// The whole configuration of a ttlc process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub topics: TopicsConfig,
    pub runner: RunnerConfig,
    pub postgres: PostgresConfig,
    pub clickhouse: ClickhouseConfig,
    pub http: HttpConfig,
    pub ingest: IngestConfig,
    pub log: LogConfig,
    pub rules: RulesConfig,
    pub execute: ExecuteConfig,
    pub retention: RetentionConfig,
    /// Read from the environment only; never serialized, never accepted from a file.
    #[serde(skip)]
    pub secrets: Secrets,
}

/// Spec variable → config path. Kept as a table so the README and `--help` can list it.
pub const NAMED_ENV: &[(&str, &str)] = &[
    ("TTLC_BROKERS", "kafka.brokers"),
    ("TTLC_TOPIC_PREFIX", "kafka.topic_prefix"),
    ("TTLC_DATABASE_URL", "postgres.url"),
    ("TTLC_CLICKHOUSE_URL", "clickhouse.url"),
    ("TTLC_HTTP_ADDR", "http.addr"),
    ("TTLC_SIGN_API_URL", "ingest.sign_api_url"),
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} does not exist")]
    Missing(String),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads defaults, then `file` (if any), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with(file, |name| std::env::var(name).ok())
    }

    /// Like [`Config::load`] with an injectable environment, for tests.
    pub fn load_with(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Missing(path.display().to_string()));
            }
            figment = figment.merge(Toml::file(path));
        }
        for (var, key) in NAMED_ENV {
            if let Some(value) = env(var) {
                figment = figment.merge((*key, value));
            }
        }
        // Path-style overrides: TTLC__SECTION__FIELD. The figment Env provider reads the real
        // process environment, so tests that inject `env` only exercise the named variables.
        figment = figment.merge(Env::prefixed("TTLC__").split("__"));
        let mut config: Config =
            figment.extract().map_err(|e| ConfigError::Invalid(e.to_string()))?;
        config.secrets = Secrets::from_env(&env);
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |m: String| Err(ConfigError::Invalid(m));
        if self.kafka.brokers.trim().is_empty() {
            return fail("kafka.brokers must not be empty".into());
        }
        if self.runner.batch_size == 0 {
            return fail("runner.batch_size must be at least 1".into());
        }
        if self.clickhouse.batch_size == 0 {
            return fail("clickhouse.batch_size must be at least 1".into());
        }
        let retention = &self.retention;
        if retention.batch_size == 0 {
            return fail("retention.batch_size must be at least 1".into());
        }
        // Archived events must outlive their archiving; 0 keeps them forever.
        if retention.events_delete_days != 0
            && retention.events_delete_days < retention.events_archive_days
        {
            return fail(
                "retention.events_delete_days must be 0 or at least retention.events_archive_days"
                    .into(),
            );
        }
        if self.topics.replication_factor < 1 {
            return fail("topics.replication_factor must be at least 1".into());
        }
        let ingest = &self.ingest;
        // Renewed every poll: a lease shorter than a few polls would expire under a live owner.
        if ingest.control_poll_ms > 0
            && ingest.control_lease_ms < ingest.control_poll_ms.saturating_mul(3)
        {
            return fail(
                "ingest.control_lease_ms must be at least 3 × ingest.control_poll_ms".into(),
            );
        }
        Ok(())
    }
}

/// Replaces the password in a `scheme://user:password@host/...` URL with `***` for logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((userinfo, host)) = rest.split_once('@') else { return url.to_owned() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests;
