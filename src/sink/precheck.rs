//! The Kafka half of `tributary check`: the broker answers, the client settings are valid, every
//! topic exists or can be created, `one`'s partition exists, and with `exactly_once` the state
//! topic is usable.

use std::collections::BTreeMap;

use super::admin::{TopicPartitions, admin_client, create_topics, fetch_topics};
use super::transactions::STATE_TOPIC;
use crate::check::CheckItem;
use crate::plan::Plan;
use crate::project::{Partitioning, SinkDef};

/// The Kafka checks of `tributary check`.
pub async fn check_sink(sink: &SinkDef, plan: Option<&Plan>) -> Vec<CheckItem> {
    if sink.is_lake() {
        return super::lake::check(sink).await;
    }
    let what = format!("sink {}", sink.name.value);
    let mut items = Vec::new();
    if let Err(e) = admin_client(sink) {
        items.push(CheckItem::fail(format!("{what}: settings"), e.to_string()));
        return items;
    }
    let existing = match fetch_topics(sink).await {
        Ok(topics) => {
            items.push(CheckItem::pass(
                format!("{what}: connection"),
                format!("Kafka at {} answers", sink.bootstrap_servers()),
            ));
            topics
        }
        Err(e) => {
            items.push(CheckItem::fail(
                format!("{what}: connection"),
                e.to_string(),
            ));
            return items;
        }
    };
    let Some(plan) = plan else {
        return items;
    };
    let project = &plan.project.project;
    // Each topic once, with the tables that write to it.
    let mut topics: BTreeMap<&str, Vec<&crate::plan::TablePlan>> = BTreeMap::new();
    for table in &plan.tables {
        topics.entry(table.topic.as_str()).or_default().push(table);
    }
    let missing: Vec<String> = topics
        .keys()
        .filter(|t| !existing.contains_key(**t))
        .map(|t| t.to_string())
        .collect();
    let mut problems = Vec::new();
    if !missing.is_empty() && !project.sync.schema {
        problems.push(format!(
            "topics {} do not exist and schema sync is off; create them or add 'schema' to `sync`",
            missing.join(", ")
        ));
    } else if !missing.is_empty() {
        match create_topics(
            sink,
            &missing,
            project.topic_partitions,
            project.topic_replication,
            true,
        )
        .await
        {
            Ok(results) => {
                for (topic, result) in results {
                    if let Err(reason) = result {
                        problems.push(format!("topic {topic} cannot be created: {reason}"));
                    }
                }
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    for (topic, tables) in &topics {
        let partitions = existing
            .get(*topic)
            .copied()
            .unwrap_or(project.topic_partitions as usize);
        for table in tables {
            if table.partitioning == Partitioning::One && table.partition as usize >= partitions {
                problems.push(format!(
                    "table {} goes to partition {} of topic {topic}, which has {partitions} \
                     partitions (0 to {}); change `partition`",
                    table.qualified(),
                    table.partition,
                    partitions.saturating_sub(1)
                ));
            }
        }
    }
    if problems.is_empty() {
        let detail = if missing.is_empty() {
            format!("{} topics exist", topics.len())
        } else {
            format!(
                "{} topics exist, {} will be created ({} partitions, replication {})",
                topics.len() - missing.len(),
                missing.len(),
                project.topic_partitions,
                project.topic_replication
            )
        };
        items.push(CheckItem::pass(format!("{what}: topics"), detail));
    } else {
        items.push(CheckItem::fail(
            format!("{what}: topics"),
            problems.join("; "),
        ));
    }
    if project.exactly_once {
        items.push(check_state_topic(sink, &existing, project.topic_replication).await);
    }
    items
}

/// `exactly_once` keeps its progress in the state topic: it must exist compacted with one
/// partition, or be creatable.
async fn check_state_topic(
    sink: &SinkDef,
    existing: &TopicPartitions,
    replication: i32,
) -> CheckItem {
    let what = format!("sink {}: exactly_once", sink.name.value);
    match existing.get(STATE_TOPIC) {
        Some(1) => CheckItem::pass(
            what,
            format!("progress goes to {STATE_TOPIC} in Kafka transactions"),
        ),
        Some(partitions) => CheckItem::fail(
            what,
            format!(
                "{STATE_TOPIC} has {partitions} partitions; it needs one (compacted): delete it \
                 and let tributary create it"
            ),
        ),
        None => match create_topics(sink, &[STATE_TOPIC.to_string()], 1, replication, true).await {
            Ok(results) if results.iter().all(|(_, r)| r.is_ok()) => CheckItem::pass(
                what,
                format!(
                    "progress goes to {STATE_TOPIC} in Kafka transactions; it will be created \
                     (1 partition, compacted, replication {replication})"
                ),
            ),
            Ok(results) => CheckItem::fail(
                what,
                results
                    .into_iter()
                    .filter_map(|(t, r)| r.err().map(|e| format!("{t} cannot be created: {e}")))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            Err(e) => CheckItem::fail(what, e.to_string()),
        },
    }
}
