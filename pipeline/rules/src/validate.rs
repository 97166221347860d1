//! Validation of a rule on write: everything the rules stage and the executor rely on is checked
//! here, once, so a stored rule can always be compiled and its action performed.
//!
//! Conditions are JSON Logic restricted to an operator allowlist, bounded in depth, node count and
//! size, and `var` paths are plain dotted field names. Templates use tokens from
//! [`crate::TEMPLATE_TOKENS`] only. Action params are checked per action type. Every problem is
//! reported (not just the first), each with the field it concerns, so an editor can show them all.

use serde_json::{Map, Value};
use ttlc_schemas::{ActionType, EventType};

use crate::model::RuleInput;
use crate::template::{MAX_TEMPLATE_LEN, Template};
use crate::url_policy::{WebhookPolicy, check_url};

/// JSON Logic operators a condition may use. Left out on purpose: `map`/`filter`/`reduce`
/// (arbitrary iteration), `merge`, and every extension operator (datetime, string and control
/// extensions) — a condition is a predicate over one event, nothing more.
pub const ALLOWED_OPERATORS: [&str; 30] = [
    "var",
    "missing",
    "missing_some",
    "==",
    "===",
    "!=",
    "!==",
    ">",
    ">=",
    "<",
    "<=",
    "!",
    "!!",
    "and",
    "or",
    "if",
    "?:",
    "+",
    "-",
    "*",
    "/",
    "%",
    "max",
    "min",
    "cat",
    "substr",
    "in",
    "all",
    "some",
    "none",
];

/// Moderation kinds the `moderate` action supports.
pub const MODERATE_KINDS: [&str; 4] = ["mute", "unmute", "ban", "unban"];
/// Overlay styles the overlay page knows how to draw.
pub const OVERLAY_STYLES: [&str; 4] = ["banner", "toast", "alert", "ticker"];
/// Longest accepted serialized condition, in bytes.
pub const MAX_CONDITION_BYTES: usize = 16 * 1024;

/// One thing wrong with a rule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleProblem {
    /// Where: `name`, `condition/and/1/>=/0`, `action/params/url`, …
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Limits and policies validation applies (from `config.rules` and `config.execute`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationOptions {
    pub max_depth: usize,
    pub max_nodes: usize,
    pub webhook: WebhookPolicy,
}

impl Default for ValidationOptions {
    fn default() -> Self {
        ValidationOptions { max_depth: 12, max_nodes: 200, webhook: WebhookPolicy::default() }
    }
}

impl ValidationOptions {
    /// The options a process runs with.
    pub fn from_config(config: &ttlc_core::config::Config) -> Self {
        ValidationOptions {
            max_depth: config.rules.max_condition_depth,
            max_nodes: config.rules.max_condition_nodes,
            webhook: WebhookPolicy {
                allowed_domains: config.execute.webhook_allowed_domains.clone(),
                allow_http_loopback: config.execute.webhook_allow_http_loopback,
            },
        }
    }
}

/// Validates with the default (strict) options: https-only webhooks, default limits.
pub fn validate(rule: &RuleInput) -> Result<(), Vec<RuleProblem>> {
    validate_with(rule, &ValidationOptions::default())
}

/// Validates `rule`; `Err` lists every problem found.
pub fn validate_with(
    rule: &RuleInput,
    options: &ValidationOptions,
) -> Result<(), Vec<RuleProblem>> {
    let mut p = Problems::default();
    let name_len = rule.name.trim().chars().count();
    if name_len == 0 || rule.name.chars().count() > 200 {
        p.add("name", "must be 1 to 200 characters");
    }
    if rule.description.as_ref().is_some_and(|d| d.chars().count() > 2_000) {
        p.add("description", "must be at most 2000 characters");
    }
    if let Some(s) = &rule.stream_id {
        if s.is_empty()
            || s.len() > 64
            || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            p.add(
                "streamId",
                "must be 1 to 64 characters of [A-Za-z0-9_-], or null for a global rule",
            );
        }
    }
    if rule.cooldown > 7 * 86_400 {
        p.add("cooldown", "must be at most 604800 seconds (7 days)");
    }
    if let Some(limit) = rule.meta.rate_limit {
        if !(1..=100_000).contains(&limit.max) {
            p.add("meta/rateLimit/max", "must be 1 to 100000");
        }
        if !(1..=86_400).contains(&limit.per_seconds) {
            p.add("meta/rateLimit/perSeconds", "must be 1 to 86400");
        }
    }
    if rule.meta.count_streak_frames && rule.event_type != EventType::Gift {
        p.add("meta/countStreakFrames", "applies to GIFT rules only");
    }
    check_condition(&rule.condition, options, &mut p);
    check_action(rule, options, &mut p);
    if p.0.is_empty() { Ok(()) } else { Err(p.0) }
}

#[derive(Default)]
struct Problems(Vec<RuleProblem>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(RuleProblem { field: field.into(), message: message.into() });
    }
}

fn check_condition(condition: &Value, options: &ValidationOptions, p: &mut Problems) {
    let size = serde_json::to_string(condition).map_or(usize::MAX, |s| s.len());
    if size > MAX_CONDITION_BYTES {
        p.add("condition", format!("is {size} bytes; at most {MAX_CONDITION_BYTES} are allowed"));
        return;
    }
    let before = p.0.len();
    let mut nodes = 0;
    walk(condition, "condition", 1, options, &mut nodes, p);
    if nodes > options.max_nodes {
        p.add("condition", format!("has {nodes} nodes; at most {} are allowed", options.max_nodes));
    }
    // Structure is fine: let the engine confirm it compiles (arity and argument shapes).
    if p.0.len() == before {
        if let Err(e) = crate::engine::compile_condition(condition) {
            p.add("condition", format!("does not compile: {e}"));
        }
    }
}

fn walk(
    v: &Value,
    at: &str,
    depth: usize,
    o: &ValidationOptions,
    nodes: &mut usize,
    p: &mut Problems,
) {
    *nodes += 1;
    if depth > o.max_depth {
        p.add(at, format!("nesting deeper than {} levels", o.max_depth));
        return;
    }
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{at}/{i}"), depth + 1, o, nodes, p);
            }
        }
        Value::Object(map) => {
            let Some((op, args)) = single(map) else {
                p.add(at, "an operation is an object with exactly one operator key");
                return;
            };
            let here = format!("{at}/{op}");
            if !ALLOWED_OPERATORS.contains(&op.as_str()) {
                p.add(
                    here,
                    format!(
                        "operator {op:?} is not allowed; allowed: {}",
                        ALLOWED_OPERATORS.join(" ")
                    ),
                );
                return;
            }
            if op == "var" {
                check_var(args, &here, p);
                return;
            }
            walk(args, &here, depth + 1, o, nodes, p);
        }
        Value::String(s) if s.len() > 1_024 => p.add(at, "string literals are at most 1024 bytes"),
        _ => {}
    }
}

fn single(map: &Map<String, Value>) -> Option<(&String, &Value)> {
    let mut it = map.iter();
    let first = it.next()?;
    it.next().is_none().then_some(first)
}

/// `var` takes a dotted path (or `[path, default]`) into the event: letters, digits, `_` and `.`.
fn check_var(args: &Value, at: &str, p: &mut Problems) {
    let path = match args {
        Value::String(s) => s.as_str(),
        Value::Array(a) if (1..=2).contains(&a.len()) => match (&a[0], a.get(1)) {
            (
                Value::String(s),
                None | Some(Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_)),
            ) => s.as_str(),
            _ => {
                p.add(at, "var takes a path string, optionally with a scalar default");
                return;
            }
        },
        _ => {
            p.add(at, "var takes a path string, optionally with a scalar default");
            return;
        }
    };
    let ok = path.len() <= 128
        && path
            .split('.')
            .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    if !ok {
        p.add(at, format!("{path:?} is not a field path such as \"payload.coins\""));
    }
}

fn check_action(rule: &RuleInput, options: &ValidationOptions, p: &mut Problems) {
    let action = &rule.action;
    if action.template.len() > MAX_TEMPLATE_LEN {
        p.add("action/template", format!("is longer than {MAX_TEMPLATE_LEN} bytes"));
    } else if let Err(e) = Template::parse(&action.template) {
        p.add("action/template", e.to_string());
    }
    let params = &action.params;
    let allowed_keys: &[&str] = match action.action_type {
        ActionType::Webhook => &["url"],
        ActionType::Overlay => &["style", "durationMs"],
        ActionType::Moderate => &["kind", "durationSeconds"],
        ActionType::Announce => &[],
        ActionType::Log => &["level"],
    };
    for key in params.keys().filter(|k| !allowed_keys.contains(&k.as_str())) {
        p.add(
            format!("action/params/{key}"),
            format!("is not a {} parameter", action.action_type.as_str()),
        );
    }
    let string = |key: &str| params.get(key).and_then(Value::as_str);
    match action.action_type {
        ActionType::Webhook => match string("url") {
            None => p.add("action/params/url", "is required (an https URL)"),
            Some(url) => {
                if let Err(e) = check_url(url, &options.webhook) {
                    p.add("action/params/url", e.to_string());
                }
            }
        },
        ActionType::Overlay => {
            if let Some(v) = params.get("style") {
                if !v.as_str().is_some_and(|s| OVERLAY_STYLES.contains(&s)) {
                    p.add(
                        "action/params/style",
                        format!("must be one of {}", OVERLAY_STYLES.join(", ")),
                    );
                }
            }
            if let Some(v) = params.get("durationMs") {
                if !v.as_u64().is_some_and(|d| (500..=60_000).contains(&d)) {
                    p.add("action/params/durationMs", "must be an integer from 500 to 60000");
                }
            }
        }
        ActionType::Moderate => {
            let kind = string("kind");
            if !kind.is_some_and(|k| MODERATE_KINDS.contains(&k)) {
                p.add(
                    "action/params/kind",
                    format!("is required, one of {}", MODERATE_KINDS.join(", ")),
                );
            }
            let duration = params.get("durationSeconds");
            if kind == Some("mute") {
                if !duration.and_then(Value::as_u64).is_some_and(|d| (1..=86_400).contains(&d)) {
                    p.add("action/params/durationSeconds", "mute needs an integer from 1 to 86400");
                }
            } else if duration.is_some() {
                p.add("action/params/durationSeconds", "applies to mute only");
            }
        }
        ActionType::Announce => {
            if action.template.trim().is_empty() {
                p.add("action/template", "an announcement needs text");
            }
        }
        ActionType::Log => {
            if let Some(v) = params.get("level") {
                if !matches!(v.as_str(), Some("info" | "warn")) {
                    p.add("action/params/level", "must be info or warn");
                }
            }
        }
    }
}
