//! Rule validation, table-driven: each case is a rule JSON and the problem fields expected
//! (empty = valid).

use serde_json::{Value, json};
use ttlc_rules::url_policy::WebhookPolicy;
use ttlc_rules::{RuleInput, ValidationOptions, validate, validate_with};

fn base() -> Value {
    json!({
        "name": "big gifts",
        "eventType": "GIFT",
        "condition": {">=": [{"var": "payload.coins"}, 100]},
        "action": {"type": "webhook", "template": "{username} sent {giftCount}x {giftName}", "params": {"url": "https://hooks.example.com/t"}}
    })
}

/// `base()` with `patch` merged in (top level and `action`).
fn rule(patch: Value) -> RuleInput {
    let mut v = base();
    for (k, val) in patch.as_object().expect("patch is an object") {
        if k == "action" {
            for (ak, av) in val.as_object().expect("action patch") {
                v["action"][ak] = av.clone();
            }
        } else {
            v[k] = val.clone();
        }
    }
    serde_json::from_value(v).expect("rule JSON parses")
}

fn fields(r: &RuleInput, options: &ValidationOptions) -> Vec<String> {
    match validate_with(r, options) {
        Ok(()) => Vec::new(),
        Err(problems) => problems.into_iter().map(|p| p.field).collect(),
    }
}

#[test]
fn validation_table() {
    let deep = (0..20).fold(json!({"var": "payload.coins"}), |acc, _| json!({"!": acc}));
    let wide = json!({"or": (0..300).map(|i| json!({"==": [{"var": "payload.coins"}, i]})).collect::<Vec<_>>()});
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        ("valid webhook rule", json!({}), vec![]),
        ("condition true", json!({"condition": true}), vec![]),
        ("global with stream", json!({"streamId": "7300000000000000001"}), vec![]),
        ("bad stream id", json!({"streamId": "a b"}), vec!["streamId"]),
        ("empty name", json!({"name": "  "}), vec!["name"]),
        ("unknown operator", json!({"condition": {"log": [1]}}), vec!["condition/log"]),
        (
            "map not allowed",
            json!({"condition": {"map": [[1], {"var": ""}]}}),
            vec!["condition/map"],
        ),
        (
            "nested unknown operator",
            json!({"condition": {"and": [true, {"preserve": 1}]}}),
            vec!["condition/and/1/preserve"],
        ),
        ("two keys", json!({"condition": {"==": [1, 1], "!=": [1, 2]}}), vec!["condition"]),
        (
            "bad var path",
            json!({"condition": {"==": [{"var": "payload.coins; drop"}, 1]}}),
            vec!["condition/==/0/var"],
        ),
        (
            "var with default",
            json!({"condition": {"==": [{"var": ["payload.coins", 0]}, 1]}}),
            vec![],
        ),
        ("too deep", json!({"condition": deep}), vec!["condition/!/!/!/!/!/!/!/!/!/!/!/!"]),
        ("too many nodes", json!({"condition": wide}), vec!["condition"]),
        (
            "unknown token",
            json!({"action": {"template": "hi {password}"}}),
            vec!["action/template"],
        ),
        ("lone brace", json!({"action": {"template": "hi {username"}}), vec!["action/template"]),
        ("escaped braces", json!({"action": {"template": "{{literal}} {username}"}}), vec![]),
        (
            "http webhook",
            json!({"action": {"params": {"url": "http://hooks.example.com/"}}}),
            vec!["action/params/url"],
        ),
        (
            "loopback webhook",
            json!({"action": {"params": {"url": "https://127.0.0.1/"}}}),
            vec!["action/params/url"],
        ),
        (
            "metadata webhook",
            json!({"action": {"params": {"url": "https://169.254.169.254/"}}}),
            vec!["action/params/url"],
        ),
        (
            "decimal ip webhook",
            json!({"action": {"params": {"url": "https://2130706433/"}}}),
            vec!["action/params/url"],
        ),
        ("missing url", json!({"action": {"params": {}}}), vec!["action/params/url"]),
        (
            "unknown webhook param",
            json!({"action": {"params": {"url": "https://a.example/", "headers": {}}}}),
            vec!["action/params/headers"],
        ),
        (
            "overlay ok",
            json!({"action": {"type": "overlay", "params": {"style": "toast", "durationMs": 4000}}}),
            vec![],
        ),
        (
            "overlay bad style",
            json!({"action": {"type": "overlay", "params": {"style": "<script>"}}}),
            vec!["action/params/style"],
        ),
        (
            "moderate mute",
            json!({"action": {"type": "moderate", "params": {"kind": "mute", "durationSeconds": 60}}}),
            vec![],
        ),
        (
            "moderate mute without duration",
            json!({"action": {"type": "moderate", "params": {"kind": "mute"}}}),
            vec!["action/params/durationSeconds"],
        ),
        (
            "moderate bad kind",
            json!({"action": {"type": "moderate", "params": {"kind": "nuke"}}}),
            vec!["action/params/kind"],
        ),
        (
            "announce needs text",
            json!({"action": {"type": "announce", "template": " ", "params": {}}}),
            vec!["action/template"],
        ),
        (
            "announce ok",
            json!({"action": {"type": "announce", "template": "Thanks {displayName}!", "params": {}}}),
            vec![],
        ),
        (
            "log level",
            json!({"action": {"type": "log", "params": {"level": "debug"}}}),
            vec!["action/params/level"],
        ),
        (
            "streak opt-in on chat",
            json!({"eventType": "CHAT", "meta": {"countStreakFrames": true}}),
            vec!["meta/countStreakFrames"],
        ),
        (
            "rate limit zero",
            json!({"meta": {"rateLimit": {"max": 0, "perSeconds": 10}}}),
            vec!["meta/rateLimit/max"],
        ),
        ("cooldown too long", json!({"cooldown": 10_000_000}), vec!["cooldown"]),
    ];
    let strict = ValidationOptions::default();
    for (name, patch, expected) in cases {
        let r = rule(patch);
        assert_eq!(fields(&r, &strict), expected, "case {name:?}");
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let r = rule(
        json!({"name": "", "condition": {"eval": "x"}, "action": {"template": "{nope}", "params": {"url": "ftp://x"}}}),
    );
    let problems = validate(&r).expect_err("invalid");
    let got: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(got, ["name", "condition/eval", "action/template", "action/params/url"]);
}

#[test]
fn dev_flag_allows_http_loopback_webhooks() {
    let r = rule(json!({"action": {"params": {"url": "http://127.0.0.1:9999/hook"}}}));
    assert!(validate(&r).is_err(), "refused by default");
    let dev = ValidationOptions {
        webhook: WebhookPolicy { allow_http_loopback: true, ..Default::default() },
        ..Default::default()
    };
    assert_eq!(validate_with(&r, &dev), Ok(()));
}

#[test]
fn unknown_rule_fields_are_rejected_when_parsing() {
    let mut v = base();
    v["sql"] = json!("DROP TABLE rules");
    assert!(serde_json::from_value::<RuleInput>(v).is_err());
}
