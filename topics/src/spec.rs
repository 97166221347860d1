//! Topic declarations: the defaults from the spec, overridable per deployment.

use serde::{Deserialize, Serialize};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// One of the pipeline's topics. Its broker name is `<prefix><name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Topic {
    /// raw.v1 envelopes (JSON) from ingest, key = streamId.
    Raw,
    /// UnifiedEvent v1 (Avro single-object encoding), key = streamId.
    Unified,
    /// ActionRequest (Avro single-object encoding), key = streamId.
    Actions,
    /// Dead-letter records (JSON) from every stage.
    Dlq,
}

impl Topic {
    pub const ALL: [Topic; 4] = [Topic::Raw, Topic::Unified, Topic::Actions, Topic::Dlq];

    /// The unprefixed name.
    pub fn name(self) -> &'static str {
        match self {
            Topic::Raw => "raw",
            Topic::Unified => "unified",
            Topic::Actions => "actions",
            Topic::Dlq => "dlq",
        }
    }

    /// The broker-side name with the deployment's prefix.
    pub fn full_name(self, prefix: &str) -> String {
        format!("{prefix}{}", self.name())
    }

    /// Parses an unprefixed name such as `"unified"`.
    pub fn parse(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The declared defaults for this topic.
    pub fn default_spec(self) -> TopicSpec {
        let (partitions, retention_days, format, schema) = match self {
            Topic::Raw => (12, 3, "application/json", "raw.v1"),
            Topic::Unified => (12, 7, "avro/binary", "unified-event.v1"),
            Topic::Actions => (6, 7, "avro/binary", "action-request.v1"),
            Topic::Dlq => (3, 30, "application/json", "dlq.v1"),
        };
        TopicSpec {
            topic: self,
            partitions,
            retention_ms: retention_days * DAY_MS,
            cleanup_policy: "delete",
            key: "streamId",
            content_type: format,
            schema,
        }
    }
}

/// What a topic should look like on the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub topic: Topic,
    pub partitions: i32,
    pub retention_ms: i64,
    pub cleanup_policy: &'static str,
    /// What the record key holds; documentation for consumers, and the basis of per-channel order.
    pub key: &'static str,
    /// The `content-type` header value of every record.
    pub content_type: &'static str,
    /// Schema name (the file stem under `schemas/`), also sent as the `schema` header.
    pub schema: &'static str,
}

/// The full set of declarations for one deployment.
#[derive(Debug, Clone)]
pub struct TopicPlan {
    pub prefix: String,
    pub replication_factor: i32,
    pub specs: Vec<TopicSpec>,
}

impl TopicPlan {
    /// The spec defaults under `prefix`, with partition counts overridden where given.
    pub fn new(prefix: &str, replication_factor: i32, partitions: &[(Topic, i32)]) -> Self {
        let specs = Topic::ALL
            .into_iter()
            .map(|t| {
                let mut spec = t.default_spec();
                if let Some((_, n)) = partitions.iter().find(|(p, _)| *p == t) {
                    spec.partitions = *n;
                }
                spec
            })
            .collect();
        TopicPlan { prefix: prefix.to_owned(), replication_factor, specs }
    }

    pub fn full_name(&self, topic: Topic) -> String {
        topic.full_name(&self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_spec() {
        let parts: Vec<_> =
            Topic::ALL.iter().map(|t| (t.name(), t.default_spec().partitions)).collect();
        assert_eq!(parts, [("raw", 12), ("unified", 12), ("actions", 6), ("dlq", 3)]);
        assert_eq!(Topic::Dlq.default_spec().retention_ms, 30 * DAY_MS);
        assert_eq!(Topic::Raw.full_name("ttlc."), "ttlc.raw");
    }

    #[test]
    fn overrides_apply_to_named_topics_only() {
        let plan = TopicPlan::new("t.", 1, &[(Topic::Raw, 2)]);
        assert_eq!(plan.specs[0].partitions, 2);
        assert_eq!(plan.specs[1].partitions, 12);
    }
}
