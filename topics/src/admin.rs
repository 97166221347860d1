//! Apply and list topic declarations against a broker through the Kafka admin API.
//!
//! `apply` is idempotent: missing topics are created, existing ones are compared and any drift
//! (partition count, retention, cleanup policy) is reported, never "fixed" by deleting data.
//! Partition counts may only grow in Kafka; growing them changes key → partition placement, so that
//! is left to an operator decision rather than done implicitly.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode as Code;

use crate::spec::{TopicPlan, TopicSpec};

/// What `apply` did or found for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicStatus {
    Created,
    Unchanged,
    /// The topic exists but differs from its declaration.
    Drift(Vec<String>),
}

/// One line of `apply`'s report.
#[derive(Debug, Clone)]
pub struct ApplyReport {
    pub name: String,
    pub status: TopicStatus,
}

/// A topic as the broker describes it.
#[derive(Debug, Clone)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: i32,
    pub declared_partitions: Option<i32>,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("could not read cluster metadata: {0}")]
    Metadata(#[source] rdkafka::error::KafkaError),
    #[error("could not create topics: {0}")]
    Create(#[source] rdkafka::error::KafkaError),
    #[error("broker refused to create topic {name}: {code}")]
    CreateTopic { name: String, code: Code },
}

fn options(timeout: Duration) -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(timeout)).request_timeout(Some(timeout))
}

/// Current partition counts of the named topics that exist.
fn existing(
    admin: &AdminClient<DefaultClientContext>,
    timeout: Duration,
) -> Result<HashMap<String, i32>, AdminError> {
    let md = admin.inner().fetch_metadata(None, timeout).map_err(AdminError::Metadata)?;
    Ok(md
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name().to_owned(), t.partitions().len() as i32))
        .collect())
}

/// Creates missing topics and reports drift on existing ones.
pub async fn apply(
    admin: &AdminClient<DefaultClientContext>,
    plan: &TopicPlan,
    timeout: Duration,
) -> Result<Vec<ApplyReport>, AdminError> {
    let current = existing(admin, timeout)?;
    let mut reports = Vec::new();
    let mut to_create: Vec<(String, &TopicSpec)> = Vec::new();
    for spec in &plan.specs {
        let name = plan.full_name(spec.topic);
        match current.get(&name) {
            None => to_create.push((name, spec)),
            Some(&partitions) => {
                let mut drift = Vec::new();
                if partitions != spec.partitions {
                    drift.push(format!(
                        "partitions: declared {}, found {partitions}",
                        spec.partitions
                    ));
                }
                drift.extend(config_drift(admin, &name, spec, timeout).await);
                let status = if drift.is_empty() {
                    TopicStatus::Unchanged
                } else {
                    TopicStatus::Drift(drift)
                };
                reports.push(ApplyReport { name, status });
            }
        }
    }
    if !to_create.is_empty() {
        let retention: Vec<String> =
            to_create.iter().map(|(_, s)| s.retention_ms.to_string()).collect();
        let new_topics: Vec<NewTopic<'_>> = to_create
            .iter()
            .zip(&retention)
            .map(|((name, spec), retention_ms)| {
                NewTopic::new(
                    name,
                    spec.partitions,
                    TopicReplication::Fixed(plan.replication_factor),
                )
                .set("retention.ms", retention_ms)
                .set("cleanup.policy", spec.cleanup_policy)
            })
            .collect();
        let results = admin
            .create_topics(&new_topics, &options(timeout))
            .await
            .map_err(AdminError::Create)?;
        for result in results {
            match result {
                Ok(name) => reports.push(ApplyReport { name, status: TopicStatus::Created }),
                // Another `apply` raced us: the topic exists now, which is what we wanted.
                Err((name, Code::TopicAlreadyExists)) => {
                    reports.push(ApplyReport { name, status: TopicStatus::Unchanged })
                }
                Err((name, code)) => return Err(AdminError::CreateTopic { name, code }),
            }
        }
    }
    reports.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(reports)
}

/// Compares retention and cleanup policy. Brokers that do not answer DescribeConfigs yield no drift
/// lines: partition drift is still reported, and config is best-effort.
async fn config_drift(
    admin: &AdminClient<DefaultClientContext>,
    name: &str,
    spec: &TopicSpec,
    timeout: Duration,
) -> Vec<String> {
    let Ok(results) =
        admin.describe_configs([&ResourceSpecifier::Topic(name)], &options(timeout)).await
    else {
        return Vec::new();
    };
    let mut drift = Vec::new();
    for resource in results.into_iter().flatten() {
        let want = [
            ("retention.ms", spec.retention_ms.to_string()),
            ("cleanup.policy", spec.cleanup_policy.to_owned()),
        ];
        for (key, expected) in want {
            if let Some(found) = resource.get(key).and_then(|e| e.value.clone()) {
                if found != expected {
                    drift.push(format!("{key}: declared {expected}, found {found}"));
                }
            }
        }
    }
    drift
}

/// Every topic under the plan's prefix, with its declared partition count when it is one of ours.
pub fn list(
    admin: &AdminClient<DefaultClientContext>,
    plan: &TopicPlan,
    timeout: Duration,
) -> Result<Vec<TopicInfo>, AdminError> {
    let current = existing(admin, timeout)?;
    let mut topics: Vec<TopicInfo> = current
        .into_iter()
        .filter(|(name, _)| name.starts_with(&plan.prefix))
        .map(|(name, partitions)| {
            let declared_partitions =
                plan.specs.iter().find(|s| plan.full_name(s.topic) == name).map(|s| s.partitions);
            TopicInfo { name, partitions, declared_partitions }
        })
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(topics)
}
