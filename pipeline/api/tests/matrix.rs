//! The full role × endpoint × stream matrix: every authenticated route, called with no token, a
//! forged token, an expired token and a token of every role on stream A, on stream B and for
//! operators. Expected outcomes come from SPEC §6's table, written out per endpoint below, not
//! from the implementation.

mod support;

use std::time::Duration;

use reqwest::Method;
use support::*;
use ttlc_api::{Claims, Role};

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy)]
enum Access {
    /// At least this role on stream A (operators always).
    Stream(Role),
    /// At least this role, any stream (the response is then filtered to the caller's stream).
    AnyStream(Role),
    /// Operators only.
    Operator,
}

struct Case {
    method: Method,
    path: String,
    body: Option<serde_json::Value>,
    access: Access,
    ok: u16,
    websocket: bool,
}

fn case(method: Method, path: &str, access: Access, ok: u16) -> Case {
    Case { method, path: path.into(), body: None, access, ok, websocket: false }
}

fn cases(rule_id: &str) -> Vec<Case> {
    use Access::*;
    let (a, s) = (STREAM_A, SESSION_A);
    let range = "from=2026-11-20T17:00:00Z&to=2026-11-20T19:00:00Z";
    let mut v = vec![
        case(Method::GET, "/streams", AnyStream(Role::Viewer), 200),
        case(Method::GET, &format!("/streams/{a}"), Stream(Role::Viewer), 200),
        case(Method::GET, &format!("/streams/{a}/sessions"), Stream(Role::Viewer), 200),
        case(Method::GET, &format!("/sessions/{s}/events"), Stream(Role::Viewer), 200),
        case(Method::GET, &format!("/users/{USER_BOTH}"), AnyStream(Role::Moderator), 200),
        case(Method::GET, &format!("/users/{USER_BOTH}/events"), AnyStream(Role::Moderator), 200),
        case(Method::GET, &format!("/users/{USER_BOTH}/notes"), AnyStream(Role::Moderator), 200),
        case(Method::GET, &format!("/streams/{a}/events"), Stream(Role::Moderator), 200),
        case(Method::GET, &format!("/streams/{a}/overlay"), Stream(Role::Viewer), 200),
        case(Method::GET, "/taps/unified", Operator, 200),
        case(Method::GET, "/taps/actions", Operator, 200),
        case(Method::GET, "/channels", AnyStream(Role::Streamer), 200),
    ];
    for what in ["summary", "events-per-minute", "top-gifters", "top-chatters", "coins"] {
        v.push(case(
            Method::GET,
            &format!("/analytics/streams/{a}/{what}?{range}"),
            Stream(Role::Viewer),
            200,
        ));
        v.push(case(Method::GET, &format!("/analytics/global/{what}?{range}"), Operator, 200));
    }
    let mut note =
        case(Method::POST, &format!("/users/{USER_BOTH}/notes"), AnyStream(Role::Moderator), 201);
    note.body = Some(serde_json::json!({ "note": "matrix note" }));
    v.push(note);
    let mut replay =
        case(Method::POST, &format!("/sessions/{s}/replay"), Stream(Role::Streamer), 202);
    replay.body = Some(serde_json::json!({ "speed": 2.0 }));
    v.push(replay);
    let mut channel = case(Method::POST, "/channels", AnyStream(Role::Streamer), 201);
    channel.body = Some(serde_json::json!({ "uniqueId": "@matrix_channel" }));
    v.push(channel);
    let rule = serde_json::json!({
        "name": "matrix", "eventType": "CHAT", "action": { "type": "log", "template": "{message}" }
    });
    v.push(case(Method::GET, "/rules", AnyStream(Role::Moderator), 200));
    v.push(case(Method::GET, &format!("/rules/{rule_id}"), Stream(Role::Moderator), 200));
    let mut create = case(Method::POST, "/rules", AnyStream(Role::Streamer), 201);
    create.body = Some(rule.clone());
    v.push(create);
    let mut update = case(Method::PUT, &format!("/rules/{rule_id}"), Stream(Role::Streamer), 200);
    update.body = Some(rule);
    v.push(update);
    let mut dry_run = case(Method::POST, "/rules/test", AnyStream(Role::Moderator), 200);
    let event = serde_json::to_value(chat(a, s, 1, user("9000002", "alice"), "hi")).expect("json");
    dry_run.body =
        Some(serde_json::json!({ "condition": true, "action": { "type": "log" }, "event": event }));
    v.push(dry_run);
    let mut ws = case(Method::GET, &format!("/streams/{a}/ws"), Stream(Role::Moderator), 101);
    ws.websocket = true;
    v.push(ws);
    v
}

fn rank(role: Role) -> u8 {
    match role {
        Role::Viewer => 1,
        Role::Moderator => 2,
        Role::Streamer => 3,
        Role::Operator => 4,
    }
}

/// The expected status for a caller with `role` scoped to `stream`.
fn expected(access: Access, ok: u16, role: Role, stream: Option<&str>) -> u16 {
    if role == Role::Operator {
        return ok;
    }
    match access {
        Access::Operator => 403,
        Access::AnyStream(min) => {
            if rank(role) >= rank(min) {
                ok
            } else {
                403
            }
        }
        Access::Stream(min) => {
            if rank(role) >= rank(min) && stream == Some(STREAM_A) {
                ok
            } else {
                403
            }
        }
    }
}

async fn call(
    client: &reqwest::Client,
    api: &TestApi,
    c: &Case,
    token: Option<&str>,
) -> (u16, Option<serde_json::Value>) {
    let mut req = client.request(c.method.clone(), api.url(&c.path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(body) = &c.body {
        req = req.json(body);
    }
    if c.websocket {
        req = req
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    }
    let response = tokio::time::timeout(Duration::from_secs(20), req.send())
        .await
        .expect("response in time")
        .expect("request");
    let status = response.status().as_u16();
    let is_json = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    // Live feeds stay open: read error bodies only.
    let body = if status >= 400 || (is_json && status != 101) {
        response.json::<serde_json::Value>().await.ok()
    } else {
        None
    };
    (status, body)
}

#[tokio::test]
async fn every_endpoint_enforces_roles_and_stream_scope() {
    let api = &*SHARED;
    let client = reqwest::Client::new();
    let expired = ttlc_api::mint_claims(
        SECRET,
        &Claims {
            sub: "old".into(),
            role: Role::Operator,
            stream_id: None,
            exp: 1_000_000,
            iat: 0,
        },
    )
    .expect("mint");
    let forged =
        ttlc_api::mint_token("another-secret", Role::Operator, None, Duration::from_secs(60))
            .expect("mint");
    let mut principals: Vec<(String, Role, Option<&str>)> = Vec::new();
    for role in [Role::Viewer, Role::Moderator, Role::Streamer] {
        for stream in [STREAM_A, STREAM_B] {
            principals.push((token(role, Some(stream)), role, Some(stream)));
        }
    }
    principals.push((token(Role::Operator, None), Role::Operator, None));
    // A rule of stream A, for the per-rule routes.
    let rule: serde_json::Value = client
        .post(api.url("/rules"))
        .bearer_auth(token(Role::Streamer, Some(STREAM_A)))
        .json(&serde_json::json!({
            "name": "matrix", "eventType": "CHAT", "action": { "type": "log", "template": "{message}" }
        }))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let rule_id = rule["id"].as_str().expect("a rule id");
    let mut checked = 0;
    let mut failures = Vec::new();
    for c in cases(rule_id) {
        for (label, token) in [
            ("no token", None),
            ("expired", Some(expired.as_str())),
            ("forged", Some(forged.as_str())),
            ("garbage", Some("not.a.jwt")),
        ] {
            let (status, body) = call(&client, api, &c, token).await;
            if status != 401
                || body.as_ref().and_then(|b| b["error"].as_str()) != Some("unauthorized")
            {
                failures.push(format!("{} {} with {label}: {status} {body:?}", c.method, c.path));
            }
            checked += 1;
        }
        for (token, role, stream) in &principals {
            let want = expected(c.access, c.ok, *role, *stream);
            let (status, body) = call(&client, api, &c, Some(token)).await;
            let shaped = status < 400
                || body
                    .as_ref()
                    .is_some_and(|b| b["error"].is_string() && b["message"].is_string());
            if status != want || !shaped {
                failures.push(format!(
                    "{} {} as {role:?}@{stream:?}: got {status} want {want} {body:?}",
                    c.method, c.path
                ));
            }
            checked += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("role matrix: {checked} checks passed");
}

#[tokio::test]
async fn scoped_lists_only_show_the_callers_stream() {
    let api = &*SHARED;
    let client = reqwest::Client::new();
    let page: serde_json::Value = client
        .get(api.url("/streams"))
        .bearer_auth(token(Role::Viewer, Some(STREAM_B)))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let ids: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|s| s["streamId"].as_str())
        .collect();
    assert_eq!(ids, vec![STREAM_B]);
    let page: serde_json::Value = client
        .get(api.url("/streams"))
        .bearer_auth(token(Role::Operator, None))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(page["items"].as_array().expect("items").len(), 2);
    // A moderator of B sees only B's events of a user active in both streams.
    let events: serde_json::Value = client
        .get(api.url(&format!("/users/{USER_BOTH}/events")))
        .bearer_auth(token(Role::Moderator, Some(STREAM_B)))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let items = events["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|e| e["streamId"] == STREAM_B));
    // And asking for A's events explicitly is refused.
    let status = client
        .get(api.url(&format!("/users/{USER_BOTH}/events?streamId={STREAM_A}")))
        .bearer_auth(token(Role::Moderator, Some(STREAM_B)))
        .send()
        .await
        .expect("request")
        .status();
    assert_eq!(status, 403);
}
