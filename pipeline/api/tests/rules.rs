//! `/rules` CRUD and `/rules/test` through the rules crate's store and dry run: happy paths,
//! validation (422), the 64 KiB body limit (413), stream scope and roles, unknown ids (404).

mod support;

use reqwest::Client;
use serde_json::{Value, json};
use support::*;
use ttlc_api::Role;

fn chat_rule(name: &str) -> Value {
    json!({
        "name": name,
        "eventType": "CHAT",
        "condition": { ">=": [{ "var": "seqNo" }, 2] },
        "action": { "type": "log", "template": "{username} said {message}" },
        "priority": 5
    })
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let response = req.send().await.expect("request");
    let status = response.status().as_u16();
    let body = if status == 204 { Value::Null } else { response.json().await.expect("json") };
    (status, body)
}

#[tokio::test]
async fn rules_are_created_read_updated_and_deleted() {
    let c = Client::new();
    let streamer = token(Role::Streamer, Some(STREAM_A));
    let moderator = token(Role::Moderator, Some(STREAM_A));
    let (status, created) =
        send(c.post(SHARED.url("/rules")).bearer_auth(&streamer).json(&chat_rule("greet"))).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["streamId"], STREAM_A, "a streamer's rule belongs to their stream");
    assert_eq!(created["createdBy"], "dev-streamer-7001");
    assert_eq!(created["action"]["type"], "log");

    let (status, got) =
        send(c.get(SHARED.url(&format!("/rules/{id}"))).bearer_auth(&moderator)).await;
    assert_eq!((status, &got["name"]), (200, &json!("greet")));
    let (status, list) = send(c.get(SHARED.url("/rules")).bearer_auth(&moderator)).await;
    assert_eq!(status, 200);
    assert!(list.as_array().expect("list").iter().any(|r| r["id"] == id.as_str()));
    let (_, other_list) =
        send(c.get(SHARED.url("/rules")).bearer_auth(token(Role::Moderator, Some(STREAM_B)))).await;
    assert!(
        other_list.as_array().expect("list").iter().all(|r| r["id"] != id.as_str()),
        "B does not see A's rules"
    );

    let mut changed = chat_rule("greet louder");
    changed["enabled"] = json!(false);
    let (status, updated) =
        send(c.put(SHARED.url(&format!("/rules/{id}"))).bearer_auth(&streamer).json(&changed))
            .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        (updated["name"].as_str(), updated["enabled"].as_bool()),
        (Some("greet louder"), Some(false))
    );

    // Scope and roles.
    let (status, _) = send(
        c.put(SHARED.url(&format!("/rules/{id}")))
            .bearer_auth(token(Role::Streamer, Some(STREAM_B)))
            .json(&chat_rule("x")),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) =
        send(c.post(SHARED.url("/rules")).bearer_auth(&moderator).json(&chat_rule("x"))).await;
    assert_eq!(status, 403);
    let (status, _) =
        send(c.get(SHARED.url("/rules")).bearer_auth(token(Role::Viewer, Some(STREAM_A)))).await;
    assert_eq!(status, 403);
    let mut elsewhere = chat_rule("elsewhere");
    elsewhere["streamId"] = json!(STREAM_B);
    let (status, _) =
        send(c.post(SHARED.url("/rules")).bearer_auth(&streamer).json(&elsewhere)).await;
    assert_eq!(status, 403);
    // Operators write global rules, which every stream's moderators can read but not change.
    let (status, global) = send(
        c.post(SHARED.url("/rules"))
            .bearer_auth(token(Role::Operator, None))
            .json(&chat_rule("global")),
    )
    .await;
    assert_eq!(status, 201);
    assert!(global["streamId"].is_null());
    let gid = global["id"].as_str().expect("id");
    let (status, _) = send(
        c.get(SHARED.url(&format!("/rules/{gid}")))
            .bearer_auth(token(Role::Moderator, Some(STREAM_B))),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) =
        send(c.delete(SHARED.url(&format!("/rules/{gid}"))).bearer_auth(&streamer)).await;
    assert_eq!(status, 403);

    let (status, _) =
        send(c.delete(SHARED.url(&format!("/rules/{id}"))).bearer_auth(&streamer)).await;
    assert_eq!(status, 204);
    let (status, body) =
        send(c.get(SHARED.url(&format!("/rules/{id}"))).bearer_auth(&moderator)).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, _) =
        send(c.delete(SHARED.url(&format!("/rules/{id}"))).bearer_auth(&streamer)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn invalid_rules_are_422_and_large_bodies_413() {
    let c = Client::new();
    let streamer = token(Role::Streamer, Some(STREAM_A));
    let mut bad_operator = chat_rule("bad");
    bad_operator["condition"] = json!({ "eval": ["rm -rf /"] });
    let mut bad_token = chat_rule("bad");
    bad_token["action"]["template"] = json!("{password}");
    let mut bad_type = chat_rule("bad");
    bad_type["eventType"] = json!("NOPE");
    for body in [bad_operator, bad_token, bad_type, json!({ "name": "no type" })] {
        let (status, error) =
            send(c.post(SHARED.url("/rules")).bearer_auth(&streamer).json(&body)).await;
        assert_eq!(status, 422, "{body} → {error}");
        assert!(error["message"].is_string());
    }
    let mut huge = chat_rule("huge");
    huge["description"] = json!("d".repeat(65 * 1024));
    let (status, error) =
        send(c.post(SHARED.url("/rules")).bearer_auth(&streamer).json(&huge)).await;
    assert_eq!((status, error["error"].as_str()), (413, Some("payload_too_large")));
}

fn chat_event(seq: i64, text: &str) -> Value {
    serde_json::to_value(chat(STREAM_A, SESSION_A, seq, user("9000002", "alice"), text))
        .expect("json")
}

#[tokio::test]
async fn rule_dry_runs_evaluate_and_render() {
    let c = Client::new();
    let moderator = token(Role::Moderator, Some(STREAM_A));
    let inline = json!({
        "condition": { ">=": [{ "var": "seqNo" }, 2] },
        "action": { "type": "overlay", "template": "{displayName}: {message}" },
        "event": chat_event(3, "hello there")
    });
    let (status, result) =
        send(c.post(SHARED.url("/rules/test")).bearer_auth(&moderator).json(&inline)).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["matched"], true, "{result}");
    assert_eq!(result["renderedTemplate"], "ALICE: hello there");
    assert_eq!(result["errors"], json!([]));

    let mut early = inline.clone();
    early["event"] = chat_event(1, "too early");
    let (_, result) =
        send(c.post(SHARED.url("/rules/test")).bearer_auth(&moderator).json(&early)).await;
    assert_eq!(result["matched"], false, "{result}");

    // A stored rule by id.
    let streamer = token(Role::Streamer, Some(STREAM_A));
    let (_, created) =
        send(c.post(SHARED.url("/rules")).bearer_auth(&streamer).json(&chat_rule("stored"))).await;
    let by_id = json!({ "ruleId": created["id"], "event": chat_event(4, "hi") });
    let (status, result) =
        send(c.post(SHARED.url("/rules/test")).bearer_auth(&moderator).json(&by_id)).await;
    assert_eq!((status, &result["matched"]), (200, &json!(true)), "{result}");
    assert_eq!(result["renderedTemplate"], "alice said hi");

    let unknown =
        json!({ "ruleId": "00000000-0000-0000-0000-000000000000", "event": chat_event(4, "hi") });
    let (status, _) =
        send(c.post(SHARED.url("/rules/test")).bearer_auth(&moderator).json(&unknown)).await;
    assert_eq!(status, 404);

    // An event that is not a UnifiedEvent is reported, not evaluated.
    let mut broken = inline.clone();
    broken["event"]["triggerId"] = json!(99);
    let (status, result) =
        send(c.post(SHARED.url("/rules/test")).bearer_auth(&moderator).json(&broken)).await;
    assert_eq!(status, 200);
    assert_eq!(result["matched"], false);
    assert!(result["errors"].as_array().is_some_and(|e| !e.is_empty()), "{result}");

    // Invalid inline rules list their problems.
    let mut bad = inline.clone();
    bad["action"]["template"] = json!("{nope}");
    let (_, result) =
        send(c.post(SHARED.url("/rules/test")).bearer_auth(&moderator).json(&bad)).await;
    assert!(result["errors"].as_array().is_some_and(|e| !e.is_empty()), "{result}");

    let (status, _) = send(
        c.post(SHARED.url("/rules/test"))
            .bearer_auth(&moderator)
            .json(&json!({ "event": chat_event(1, "x") })),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = send(
        c.post(SHARED.url("/rules/test"))
            .bearer_auth(token(Role::Viewer, Some(STREAM_A)))
            .json(&inline),
    )
    .await;
    assert_eq!(status, 403);
}
