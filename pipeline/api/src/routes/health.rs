//! `/health` (per-dependency status, live feeds, consumer lag, uptime) and `/metrics`.
//!
//! The broker and PostgreSQL are required: without them the API cannot serve live feeds or
//! history, so `/health` answers 503. ClickHouse only backs analytics: when it is down the API is
//! `degraded` but still healthy for load balancers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use poem::web::Data;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi};
use rdkafka::consumer::Consumer;

use super::Tag;
use crate::state::{AppState, GroupLag};

#[derive(Debug)]
pub(crate) struct HealthApi;

/// One dependency's status.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
struct Dependency {
    /// `up` or `down`.
    status: String,
    /// Whether the API reports 503 when this dependency is down.
    required: bool,
    /// Round-trip time of the probe.
    latency_ms: u64,
    /// Why it is down.
    #[oai(skip_serializing_if_is_none)]
    error: Option<String>,
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
struct Dependencies {
    broker: Dependency,
    postgres: Dependency,
    clickhouse: Dependency,
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
struct LiveStatus {
    /// The shared `unified` tap is reading.
    unified: bool,
    /// The shared `actions` tap is reading.
    actions: bool,
    /// Open live feed subscriptions.
    subscribers: u64,
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
struct Health {
    /// `ok`, `degraded` (an optional dependency is down) or `down` (a required one is).
    status: String,
    uptime_seconds: u64,
    version: String,
    dependencies: Dependencies,
    live: LiveStatus,
    /// Records each stage group has not committed yet (refreshed every 15 s).
    consumer_lag: Vec<GroupLag>,
}

#[derive(ApiResponse)]
enum HealthResponse {
    /// Every required dependency is up.
    #[oai(status = 200)]
    Ok(Json<Health>),
    /// A required dependency is down.
    #[oai(status = 503)]
    Down(Json<Health>, #[oai(header = "Retry-After")] u64),
}

fn probe_result(started: Instant, required: bool, result: Result<(), String>) -> Dependency {
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match result {
        Ok(()) => Dependency { status: "up".into(), required, latency_ms, error: None },
        Err(e) => Dependency { status: "down".into(), required, latency_ms, error: Some(e) },
    }
}

async fn probe_broker(state: &AppState) -> Dependency {
    let started = Instant::now();
    let Some(client) = state.probe.clone() else {
        return probe_result(started, true, Err("no broker client".into()));
    };
    let topic = ttlc_core::kafka::topic_name(&state.config.kafka, ttlc_topics::Topic::Unified);
    // Metadata requests block: keep them off the async workers.
    let result = tokio::task::spawn_blocking(move || {
        let md = client
            .0
            .fetch_metadata(Some(&topic), Duration::from_secs(2))
            .map_err(|e| e.to_string())?;
        match md.topics().first().and_then(|t| t.error()) {
            Some(error) => Err(format!("topic {topic}: {error:?}")),
            None => Ok(()),
        }
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    probe_result(started, true, result)
}

#[OpenApi(tag = "Tag::Operations")]
impl HealthApi {
    /// Health of the API and its dependencies.
    #[oai(path = "/health", method = "get")]
    async fn health(&self, state: Data<&Arc<AppState>>) -> HealthResponse {
        let pg = async {
            let started = Instant::now();
            probe_result(started, true, state.pg.ping().await.map_err(|e| e.to_string()))
        };
        let ch = async {
            let started = Instant::now();
            probe_result(started, false, state.ch.ping().await.map_err(|e| e.to_string()))
        };
        let (broker, postgres, clickhouse) = tokio::join!(probe_broker(&state), pg, ch);
        let down = |d: &Dependency| d.status != "up";
        let required_down = [&broker, &postgres, &clickhouse].iter().any(|d| d.required && down(d));
        let status = if required_down {
            "down"
        } else if down(&clickhouse) {
            "degraded"
        } else {
            "ok"
        };
        let health = Health {
            status: status.into(),
            uptime_seconds: state.started.elapsed().as_secs(),
            version: env!("CARGO_PKG_VERSION").into(),
            dependencies: Dependencies { broker, postgres, clickhouse },
            live: LiveStatus {
                unified: state.unified.is_ready(),
                actions: state.actions.is_ready(),
                subscribers: (state.unified.receivers() + state.actions.receivers()) as u64,
            },
            consumer_lag: state.lag.lock().clone(),
        };
        if required_down {
            HealthResponse::Down(Json(health), state.retry_after())
        } else {
            HealthResponse::Ok(Json(health))
        }
    }

    /// Prometheus metrics of this process (stages running in it, HTTP, live feeds).
    #[oai(path = "/metrics", method = "get")]
    async fn metrics(&self) -> PlainText<String> {
        PlainText(ttlc_core::telemetry::encode())
    }
}
