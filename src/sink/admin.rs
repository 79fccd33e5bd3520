//! Topic administration: the cluster's topics and their partition counts, and creating the
//! missing ones (schema sync) — idempotently, waiting until the metadata shows them.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

use super::client_config;
use crate::error::{Error, Result};
use crate::project::SinkDef;

/// How long a metadata request may take before the broker counts as unreachable.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Partition counts of the cluster's topics.
pub type TopicPartitions = BTreeMap<String, usize>;

pub fn admin_client(sink: &SinkDef) -> Result<AdminClient<DefaultClientContext>> {
    client_config(sink).create().map_err(|e| {
        Error::Config(format!(
            "sink `{}`: librdkafka rejected the settings: {e}; check the quoted properties of \
             CREATE SINK",
            sink.name.value
        ))
    })
}

/// Reads the topics and partition counts from the cluster.
pub async fn fetch_topics(sink: &SinkDef) -> Result<TopicPartitions> {
    let admin = admin_client(sink)?;
    let name = sink.name.value.clone();
    let servers = sink.bootstrap_servers().to_string();
    tokio::task::spawn_blocking(move || {
        let metadata = admin
            .inner()
            .fetch_metadata(None, METADATA_TIMEOUT)
            .map_err(|e| Error::Kafka {
                context: format!(
                    "sink `{name}`: Kafka at {servers} did not answer a metadata request within {} \
                     s; check 'bootstrap.servers' and that the brokers are up",
                    METADATA_TIMEOUT.as_secs()
                ),
                source: e,
            })?;
        Ok(metadata
            .topics()
            .iter()
            .map(|t| (t.name().to_string(), t.partitions().len()))
            .collect())
    })
    .await
    .map_err(|e| Error::Definite(format!("the metadata request task failed: {e}")))?
}

/// Creates the topics that do not exist yet (schema sync). Idempotent: a topic that exists, or
/// that another process creates meanwhile, is used as it is.
pub async fn create_topics(
    sink: &SinkDef,
    topics: &[String],
    partitions: i32,
    replication: i32,
    validate_only: bool,
) -> Result<Vec<(String, Result<(), String>)>> {
    let admin = admin_client(sink)?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(replication)))
        .collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(METADATA_TIMEOUT))
        .validate_only(validate_only);
    let results = admin
        .create_topics(&new, &options)
        .await
        .map_err(|e| Error::Kafka {
            context: format!("sink `{}`: creating topics", sink.name.value),
            source: e,
        })?;
    Ok(results
        .into_iter()
        .map(|r| match r {
            Ok(topic) => (topic, Ok(())),
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => (topic, Ok(())),
            Err((topic, code)) => (topic, Err(code.to_string())),
        })
        .collect())
}

/// The topics of `wanted` that do not exist yet are created (with `partitions` and
/// `replication`), then the metadata is read until it shows them all: Kafka creates topics
/// asynchronously. Returns every topic's partition count. `context` says what needs the topics,
/// for the errors.
pub async fn ensure_topics(
    sink: &SinkDef,
    wanted: &[String],
    partitions: i32,
    replication: i32,
    context: &str,
) -> Result<TopicPartitions> {
    let mut existing = fetch_topics(sink).await?;
    let missing: Vec<String> = wanted
        .iter()
        .filter(|t| !existing.contains_key(*t))
        .cloned()
        .collect();
    if missing.is_empty() {
        return Ok(existing);
    }
    for (topic, result) in create_topics(sink, &missing, partitions, replication, false).await? {
        if let Err(reason) = result {
            return Err(Error::Sink(format!(
                "{context}: cannot create topic {topic}: {reason}"
            )));
        }
        tracing::info!(topic = %topic, "schema sync created the topic");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        existing = fetch_topics(sink).await?;
        if missing
            .iter()
            .all(|t| existing.get(t).is_some_and(|p| *p > 0))
        {
            return Ok(existing);
        }
        if std::time::Instant::now() > deadline {
            return Err(Error::Sink(format!(
                "{context}: topics {} were created but do not appear in the metadata",
                missing.join(", ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
