//! What every request can reach: configuration, verifier, databases, live hubs, limits and the
//! control traits. Built once by [`crate::bind`] and shared as poem request data.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use ttlc_core::config::Config;
use ttlc_topics::Topic;

use crate::ApiDeps;
use crate::auth::Verifier;
use crate::db::{Ch, Pg};
use crate::limits::{ConnectionLimiter, RateLimiter};
use crate::live::hub::Hub;

/// Shared state of one API server.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) config: Config,
    pub(crate) verifier: Verifier,
    pub(crate) pg: Pg,
    pub(crate) ch: Ch,
    /// `None` when the PostgreSQL URL is unusable (rule routes then answer 503).
    pub(crate) rules: Option<Arc<ttlc_rules::RuleStore>>,
    pub(crate) unified: Arc<Hub>,
    pub(crate) actions: Arc<Hub>,
    pub(crate) ip_limiter: RateLimiter<IpAddr>,
    /// Whose `X-Forwarded-For` names the client for `ip_limiter`.
    pub(crate) trusted_proxies: crate::client_ip::TrustedProxies,
    pub(crate) user_limiter: RateLimiter<String>,
    pub(crate) connections: ConnectionLimiter,
    pub(crate) deps: ApiDeps,
    pub(crate) started: Instant,
    pub(crate) token: CancellationToken,
    /// Consumer lag per stage group, refreshed in the background (see [`refresh_lag`]).
    pub(crate) lag: Mutex<Vec<GroupLag>>,
    /// One client for `/health`'s broker probe: creating a librdkafka client per request would
    /// start threads and connections every time a load balancer polls.
    pub(crate) probe: Option<Arc<BrokerProbe>>,
}

/// The client behind `/health`'s broker check.
pub(crate) struct BrokerProbe(pub(crate) BaseConsumer);

impl std::fmt::Debug for BrokerProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BrokerProbe")
    }
}

/// The broker probe client; `None` (broker reported down) if the client cannot be created.
pub(crate) fn probe_client(kafka: &ttlc_core::config::KafkaConfig) -> Option<Arc<BrokerProbe>> {
    match ClientConfig::new().set("bootstrap.servers", &kafka.brokers).create() {
        Ok(client) => Some(Arc::new(BrokerProbe(client))),
        Err(error) => {
            tracing::error!(%error, "Cannot create the broker probe client.");
            None
        }
    }
}

impl AppState {
    pub(crate) fn dev_mode(&self) -> bool {
        self.config.http.dev_mode
    }

    pub(crate) fn retry_after(&self) -> u64 {
        self.config.http.retry_after_secs
    }

    pub(crate) fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.config.http.heartbeat_ms.max(100))
    }
}

/// Records a stage's consumer group has not committed yet, summed over the partitions of its
/// input topic. Approximate on brokers whose high watermarks lag the log (Tansu).
#[derive(Debug, Clone, serde::Serialize, poem_openapi::Object)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct GroupLag {
    pub group: String,
    pub topic: String,
    pub lag: i64,
}

/// The stage groups and the topic each consumes (SPEC §1).
const STAGE_GROUPS: [(&str, Topic); 5] = [
    ("normalizer", Topic::Raw),
    ("archive-pg", Topic::Unified),
    ("archive-ch", Topic::Unified),
    ("rules", Topic::Unified),
    ("execute", Topic::Actions),
];

/// Refreshes `state.lag` every 15 s until shutdown. Reading committed offsets does not join the
/// groups, so this never disturbs the stages. One client per group, created once.
pub(crate) async fn refresh_lag(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    let mut clients: Arc<Vec<(String, String, BaseConsumer)>> = Arc::new(Vec::new());
    loop {
        tokio::select! {
            _ = state.token.cancelled() => return,
            _ = tick.tick() => {}
        }
        if clients.is_empty() {
            match lag_clients(&state.config) {
                Ok(created) => clients = Arc::new(created),
                Err(error) => {
                    tracing::warn!(%error, "Cannot create the consumer lag clients.");
                    continue;
                }
            }
        }
        let task_clients = clients.clone();
        match tokio::task::spawn_blocking(move || compute_lag(&task_clients)).await {
            Ok(Ok(lags)) => *state.lag.lock() = lags,
            Ok(Err(error)) => tracing::debug!(%error, "Consumer lag is unavailable right now."),
            Err(error) => tracing::warn!(%error, "The consumer lag task failed."),
        }
    }
}

/// `(group, topic, client)` for every stage group.
fn lag_clients(config: &Config) -> Result<Vec<(String, String, BaseConsumer)>, String> {
    STAGE_GROUPS
        .iter()
        .map(|(name, topic)| {
            let group = format!("{}{name}", config.runner.group_prefix);
            let client = ClientConfig::new()
                .set("bootstrap.servers", &config.kafka.brokers)
                .set("group.id", &group)
                .set("enable.auto.commit", "false")
                .create()
                .map_err(|e| e.to_string())?;
            Ok((group, ttlc_core::kafka::topic_name(&config.kafka, *topic), client))
        })
        .collect()
}

fn compute_lag(clients: &[(String, String, BaseConsumer)]) -> Result<Vec<GroupLag>, String> {
    let timeout = Duration::from_secs(3);
    let mut out = Vec::new();
    for (group, topic_name, consumer) in clients {
        let md = consumer.fetch_metadata(Some(topic_name), timeout).map_err(|e| e.to_string())?;
        let partitions: Vec<i32> = md
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            continue;
        }
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition(topic_name, *p);
        }
        let committed = consumer.committed_offsets(tpl, timeout).map_err(|e| e.to_string())?;
        let mut lag = 0i64;
        for element in committed.elements() {
            let (low, high) = consumer
                .fetch_watermarks(topic_name, element.partition(), timeout)
                .map_err(|e| e.to_string())?;
            let done = match element.offset() {
                Offset::Offset(o) => o,
                // Never committed: everything still in the log is to do.
                _ => low,
            };
            lag += (high - done).max(0);
        }
        out.push(GroupLag { group: group.clone(), topic: topic_name.clone(), lag });
    }
    Ok(out)
}
