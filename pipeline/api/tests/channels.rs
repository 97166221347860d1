//! `/channels` over the real `PgChannels` and a fresh PostgreSQL database. The ingest side is
//! played by writing its status columns as the application role, exactly as a `ttlc ingest`
//! reconciler does (its own tests cover the reconciler): this checks the route semantics, the
//! states an operator sees, and that the application role may do all of it.

// A failing unwrap is a failing test: that is what tests are for.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;
use ttlc_api::Role;

struct Client {
    api: TestApi,
    http: reqwest::Client,
}

impl Client {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.api.url(path)).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn start(&self, token: &str, unique_id: &str) -> (StatusCode, Value) {
        self.call(Method::POST, "/channels", token, Some(json!({ "uniqueId": unique_id }))).await
    }

    async fn stop(&self, token: &str, unique_id: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, &format!("/channels/{unique_id}"), token, None).await
    }

    async fn list(&self, token: &str) -> Vec<Value> {
        let (status, body) = self.call(Method::GET, "/channels", token, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body.as_array().unwrap().clone()
    }

    async fn one(&self, unique_id: &str) -> Value {
        let all = self.list(&token(Role::Operator, None)).await;
        all.into_iter().find(|c| c["uniqueId"] == unique_id).unwrap()
    }

    /// Runs `sql` as the application role, as ingest does.
    async fn as_ingest(&self, sql: &str) {
        let pg = self.api.pg().await;
        pg.batch_execute(&format!("SET ROLE ttlc_app; {sql}")).await.unwrap();
    }
}

/// What a live ingest process writes after claiming `id` and connecting to `room`.
fn report(id: &str, state: &str, room: &str) -> String {
    format!(
        "UPDATE ingest_channels SET claimed_by = 'test-ingest', \
         lease_until = now() + interval '1 minute', state = '{state}', room_id = '{room}', \
         session_id = 'sess-{id}', last_error = NULL, status_at = now() WHERE unique_id = '{id}'"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_are_requested_reported_and_stopped_through_postgresql() {
    let config = support::config("api-channels").await;
    let channels = Arc::new(ttlc_api::PgChannels::new(&config));
    let c =
        Client { api: TestApi::start_with(config, channels).await, http: reqwest::Client::new() };
    let (a, b) = (token(Role::Streamer, Some(STREAM_A)), token(Role::Streamer, Some(STREAM_B)));
    let operator = token(Role::Operator, None);

    // A streamer's request is theirs before any ingest resolved it.
    let (status, info) = c.start(&a, "@chan_a").await;
    assert_eq!(status, StatusCode::CREATED, "{info}");
    assert_eq!(
        (info["uniqueId"].as_str(), info["streamId"].as_str()),
        (Some("chan_a"), Some(STREAM_A))
    );
    assert_eq!(info["state"], "starting");
    assert!(info["startedAt"].is_string());
    assert_eq!(c.start(&a, "chan_a").await.0, StatusCode::CONFLICT);
    assert!(c.list(&b).await.is_empty());
    assert_eq!(c.stop(&b, "chan_a").await.0, StatusCode::FORBIDDEN);

    // Ingest claims and connects it: the list shows what it reports.
    c.as_ingest(&report("chan_a", "connected", STREAM_A)).await;
    let listed = c.list(&a).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0]["state"].as_str(), listed[0]["sessionId"].as_str()),
        (Some("connected"), Some("sess-chan_a"))
    );

    // Its ingest process stops reporting (killed): the channel waits for a new one.
    c.as_ingest(
        "UPDATE ingest_channels SET status_at = now() - interval '1 minute', \
         requested_at = now() - interval '2 minutes'",
    )
    .await;
    assert_eq!(c.one("chan_a").await["state"], "pending");
    // Nobody ever picked a request up: pending too, once it is no longer fresh.
    let (status, _) = c.start(&operator, "chan_orphan").await;
    assert_eq!(status, StatusCode::CREATED);
    c.as_ingest("UPDATE ingest_channels SET requested_at = now() - interval '1 minute' WHERE unique_id = 'chan_orphan'").await;
    assert_eq!(c.one("chan_orphan").await["state"], "pending");

    // Stop while ingest still holds it: stopping, until ingest releases it.
    c.as_ingest(&report("chan_a", "connected", STREAM_A)).await;
    let (status, info) = c.stop(&a, "chan_a").await;
    assert_eq!((status, info["state"].as_str()), (StatusCode::OK, Some("stopping")), "{info}");
    assert!(info["startedAt"].is_null());
    c.as_ingest(
        "UPDATE ingest_channels SET claimed_by = NULL, lease_until = NULL, state = 'stopped', \
         status_at = now() WHERE unique_id = 'chan_a'",
    )
    .await;
    assert_eq!(c.one("chan_a").await["state"], "stopped");
    assert_eq!(c.stop(&a, "chan_a").await.0, StatusCode::NOT_FOUND, "already stopped");
    assert_eq!(c.stop(&operator, "never_started").await.0, StatusCode::NOT_FOUND);

    // Its room is known to be stream A's: B's streamer may not take it over, A's may restart it.
    let (status, body) = c.start(&b, "chan_a").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(c.start(&a, "chan_a").await.0, StatusCode::CREATED);

    // A channel whose LIVE ended may be started again while it is still desired running.
    c.as_ingest(&report("chan_a", "ended", STREAM_A)).await;
    assert_eq!(c.one("chan_a").await["state"], "ended");
    let (status, info) = c.start(&a, "chan_a").await;
    assert_eq!(
        (status, info["state"].as_str()),
        (StatusCode::CREATED, Some("connecting")),
        "{info}"
    );

    // A request ingest refused shows why.
    let (status, _) = c.start(&b, "chan_wrong").await;
    assert_eq!(status, StatusCode::CREATED);
    c.as_ingest(
        "UPDATE ingest_channels SET desired = 'stopped', state = 'failed', \
         last_error = 'the room of @chan_wrong is 9, not stream 7002' WHERE unique_id = 'chan_wrong'",
    )
    .await;
    let refused = c.one("chan_wrong").await;
    assert_eq!(refused["state"], "failed");
    assert!(refused["lastError"].as_str().unwrap().contains("not stream"), "{refused}");

    // Operators see every channel.
    let all: Vec<String> = c
        .list(&operator)
        .await
        .iter()
        .map(|c| c["uniqueId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(all, ["chan_a", "chan_orphan", "chan_wrong"]);
    c.api.finish().await;
}
