//! `ttlc topics apply | list`.

use std::process::ExitCode;

use clap::Subcommand;
use ttlc_core::config::Config;
use ttlc_topics::Topic;
use ttlc_topics::admin::{self, TopicStatus};
use ttlc_topics::spec::TopicPlan;

#[derive(Debug, Subcommand)]
pub(crate) enum TopicsCommand {
    /// Create missing topics and report drift from their declarations. Safe to run repeatedly.
    Apply,
    /// Show the topics under the configured prefix with their partition counts.
    List,
}

/// The declared topics for this deployment.
pub(crate) fn plan(config: &Config) -> anyhow::Result<TopicPlan> {
    let mut overrides = Vec::new();
    for (name, partitions) in &config.topics.partitions {
        let topic = Topic::parse(name).ok_or_else(|| {
            anyhow::anyhow!(
                "topics.partitions: unknown topic {name:?} (raw, unified, actions, dlq)"
            )
        })?;
        overrides.push((topic, *partitions));
    }
    Ok(TopicPlan::new(&config.kafka.topic_prefix, config.topics.replication_factor, &overrides))
}

pub(crate) async fn run(config: Config, command: TopicsCommand) -> anyhow::Result<ExitCode> {
    let admin = ttlc_core::kafka::admin(&config.kafka)?;
    let timeout = ttlc_core::kafka::admin_timeout(&config.kafka);
    let plan = plan(&config)?;
    match command {
        TopicsCommand::Apply => {
            let mut drift = false;
            for report in admin::apply(&admin, &plan, timeout).await? {
                match report.status {
                    TopicStatus::Created => println!("created    {}", report.name),
                    TopicStatus::Unchanged => println!("unchanged  {}", report.name),
                    TopicStatus::Drift(lines) => {
                        drift = true;
                        println!("drift      {}: {}", report.name, lines.join("; "));
                    }
                }
            }
            // Drift is reported, not fixed; a non-zero exit lets scripts notice it.
            Ok(if drift { ExitCode::from(4) } else { ExitCode::SUCCESS })
        }
        TopicsCommand::List => {
            println!("{:<40} {:>10} {:>10}", "TOPIC", "PARTITIONS", "DECLARED");
            for t in admin::list(&admin, &plan, timeout)? {
                let declared = t.declared_partitions.map_or("-".to_owned(), |p| p.to_string());
                println!("{:<40} {:>10} {:>10}", t.name, t.partitions, declared);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
