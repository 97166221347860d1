//! Rules: which UnifiedEvents trigger which actions.
//!
//! Two halves with a hard line between them:
//! - a pure library (no I/O): the [`Rule`] model, [`validate`] on write, [`compile`] once per
//!   rule, [`evaluate`] and [`RuleSet::matching`] per event, [`render`] for templates and
//!   [`action_id`] for the executor's idempotency key; [`test_rule`] answers the API's
//!   `POST /rules/test`;
//! - the I/O around it: [`RuleStore`] (CRUD in PostgreSQL, used by the API), the reloader that
//!   keeps the running stage's rules current ([`spawn_reloader`]), and [`RulesStage`]
//!   (`unified` → `actions`), started by [`run_rules`].

mod engine;
mod limits;
mod model;
mod preview;
mod reload;
mod stage;
mod store;
mod telemetry;
mod template;
pub mod url_policy;
mod validate;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use ttlc_core::config::Config;

pub use engine::{
    CompileError, CompiledRule, RuleSet, action_id, compile, evaluate, evaluate_json,
};
pub use limits::{Admission, Limiter};
pub use model::{RateLimit, Rule, RuleAction, RuleInput, RuleMeta};
pub use preview::{RuleTestResult, test_rule};
pub use reload::{load_rule_set, spawn_reloader};
pub use stage::{RulesStage, action_request};
pub use store::{NOTIFY_CHANNEL, RuleStore, StoreError};
pub use template::{MAX_TEMPLATE_LEN, Segment, TEMPLATE_TOKENS, Template, TemplateError, render};
pub use validate::{
    ALLOWED_OPERATORS, MAX_CONDITION_BYTES, MODERATE_KINDS, OVERLAY_STYLES, RuleProblem,
    ValidationOptions, validate, validate_with,
};

/// Runs the `rules` stage until `shutdown`: applies migrations when `postgres.migrate_on_start`,
/// starts the rule reloader, then runs the stage through the runner (consumer group `rules`).
pub async fn run_rules(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    if config.postgres.migrate_on_start {
        ttlc_archive::migrate_postgres(&config.postgres.url)
            .await
            .context("applying PostgreSQL migrations")?;
    }
    let store = Arc::new(RuleStore::new(config).context("rule store configuration")?);
    let reloader_stop = shutdown.child_token();
    let rules = spawn_reloader(
        store,
        Duration::from_millis(config.rules.reload_interval_ms),
        reloader_stop.clone(),
    );
    let stage = RulesStage::new(rules, config.rules.max_cooldown_entries);
    let result = ttlc_core::runner::run(stage, config, shutdown).await;
    reloader_stop.cancel();
    result.context("rules stage")
}
