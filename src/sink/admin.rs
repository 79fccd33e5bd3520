//! Topic administration: the cluster's topics and their partition counts, and creating the
//! missing ones (schema sync) — idempotently, waiting until the metadata shows them.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{BaseProducer, Producer};

use super::client_config;
use crate::error::{Error, Result};
use crate::project::SinkDef;

/// How long a metadata request may take before the broker counts as unreachable.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Partition counts of the cluster's topics.
pub type TopicPartitions = BTreeMap<String, usize>;

/// An admin client that remembers librdkafka's last connection error: a metadata request that
/// fails only says "transport failure", while the reason — a rejected password, a certificate
/// not trusted — comes through this callback.
#[derive(Default)]
pub struct Remembering {
    last_error: std::sync::Mutex<Option<String>>,
}

impl rdkafka::ClientContext for Remembering {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as Level;
        if matches!(
            level,
            Level::Emerg | Level::Alert | Level::Critical | Level::Error | Level::Warning
        ) {
            self.remember(message);
        }
        super::librdkafka_log(level, fac, message);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        tracing::debug!(%error, reason, "librdkafka");
        self.remember(reason);
    }
}

impl rdkafka::producer::ProducerContext for Remembering {
    type DeliveryOpaque = ();
    // It sends nothing.
    fn delivery(&self, _: &rdkafka::producer::DeliveryResult<'_>, _: ()) {}
}

impl Remembering {
    fn remember(&self, reason: &str) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(reason.to_string());
        }
    }

    fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|last| last.clone())
    }
}

fn settings_error(sink: &SinkDef, e: rdkafka::error::KafkaError) -> Error {
    Error::Config(format!(
        "sink `{}`: librdkafka rejected the settings: {e}; check the quoted properties of CREATE \
         SINK",
        sink.name.value
    ))
}

pub fn admin_client(sink: &SinkDef) -> Result<AdminClient<DefaultClientContext>> {
    client_config(sink)
        .create()
        .map_err(|e| settings_error(sink, e))
}

/// Why the brokers could not be asked for metadata, with librdkafka's `reason` when it gave one.
fn connection_error(sink: &str, servers: &str, reason: Option<&str>) -> String {
    // "[thrd:sasl_ssl://host:port/bootstrap]: sasl_ssl://host:port/bootstrap: why" -> "why"
    let reason = reason.map(|r| {
        let r = r.split_once("]: ").map_or(r, |(_, rest)| rest);
        r.split_once("/bootstrap: ").map_or(r, |(_, rest)| rest)
    });
    let secure = ["SASL", "SSL", "certificate", "uthentication"];
    match reason {
        Some(reason) if secure.iter().any(|word| reason.contains(word)) => format!(
            "sink `{sink}`: Kafka at {servers} refused the connection: {reason}; check the sink's \
             'security.protocol', 'sasl.*' and 'ssl.*' properties"
        ),
        _ => format!(
            "sink `{sink}`: Kafka at {servers} did not answer a metadata request within {} s{}; \
             check 'bootstrap.servers' and that the brokers are up",
            METADATA_TIMEOUT.as_secs(),
            reason.map(|r| format!(" ({r})")).unwrap_or_default()
        ),
    }
}

/// Reads the topics and partition counts from the cluster.
pub async fn fetch_topics(sink: &SinkDef) -> Result<TopicPartitions> {
    // A plain client rather than the admin one: polling it hands librdkafka's log and error
    // events to [`Remembering`], which says why a connection failed.
    let client: BaseProducer<Remembering> = client_config(sink)
        .create_with_context(Remembering::default())
        .map_err(|e| settings_error(sink, e))?;
    let name = sink.name.value.clone();
    let servers = sink.bootstrap_servers().to_string();
    tokio::task::spawn_blocking(move || {
        let metadata = client.client().fetch_metadata(None, METADATA_TIMEOUT);
        // Hands the log and error events of the attempt to the context.
        client.poll(Duration::ZERO);
        let reason = client.context().last_error();
        let metadata = metadata.map_err(|e| Error::Kafka {
            context: connection_error(&name, &servers, reason.as_deref()),
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

/// Creates one topic (a topic that exists meanwhile is fine); `refused` says what to do when
/// Kafka refuses, after its error code.
pub async fn create_topic(sink: &SinkDef, topic: NewTopic<'_>, refused: &str) -> Result<()> {
    let name = topic.name.to_string();
    let admin = admin_client(sink)?;
    let options = AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT));
    let results = admin
        .create_topics(&[topic], &options)
        .await
        .map_err(|e| Error::Kafka {
            context: format!("sink `{}`: creating {name}", sink.name.value),
            source: e,
        })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => {
                return Err(Error::Sink(format!(
                    "cannot create {name}: {code}; {refused}"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::connection_error;

    #[test]
    fn a_connection_error_says_why_in_short() {
        let auth = connection_error(
            "k",
            "h:9093",
            Some(
                "[thrd:sasl_ssl://h:9093/bootstrap]: sasl_ssl://h:9093/bootstrap: SASL \
                 authentication error: invalid credentials",
            ),
        );
        assert_eq!(
            auth,
            "sink `k`: Kafka at h:9093 refused the connection: SASL authentication error: \
             invalid credentials; check the sink's 'security.protocol', 'sasl.*' and 'ssl.*' \
             properties"
        );
        let refused = connection_error(
            "k",
            "h:1",
            Some("[thrd:h:1/bootstrap]: h:1/bootstrap: Connect to ipv4#h:1 failed"),
        );
        assert!(
            refused.contains("did not answer a metadata request within 10 s (Connect to"),
            "{refused}"
        );
        assert!(connection_error("k", "h:1", None).ends_with("and that the brokers are up"));
    }
}
