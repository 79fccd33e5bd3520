//! The sink: where change batches leave tributary. [`delivery`] is the seam every producer of
//! messages uses (batches in, acknowledgements out); behind it sit the Kafka producer
//! ([`kafka`]: in-flight bytes, delivery callbacks, transactions), topic administration
//! ([`admin`]), exactly-once progress records ([`transactions`]) and the Kafka half of `check`
//! ([`precheck`]), and the run's rate limits ([`throttle`]). A lake sink ([`lake`]) takes
//! Kafka's place behind the same writer: Parquet files or Delta tables, committed with the
//! source progress they make.

pub mod admin;
pub mod delivery;
pub mod kafka;
#[cfg(feature = "lake")]
pub mod lake;
#[cfg(not(feature = "lake"))]
#[path = "lake_off.rs"]
pub mod lake;
pub mod precheck;
pub mod throttle;
pub mod transactions;
pub mod work;

use rdkafka::ClientConfig;

use crate::error::Result;
use crate::project::{ProjectFile, SinkDef};

/// A librdkafka client configuration with every property of the sink, passed through unchanged.
pub fn client_config(sink: &SinkDef) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (key, value) in &sink.properties {
        config.set(key.value.as_str(), value.as_str());
    }
    config
}

/// Every quoted property of the sink as librdkafka takes it, one by one: a value it rejects is
/// an error located at its line in the project file, before anything connects.
pub fn check_properties(project: &ProjectFile) -> Result<()> {
    // A lake sink's properties are the object store's, checked when it is opened.
    if project.sink.is_lake() {
        return Ok(());
    }
    for (key, value) in &project.sink.properties {
        let mut one = ClientConfig::new();
        one.set(key.value.as_str(), value.as_str());
        if let Err(rdkafka::error::KafkaError::ClientConfig(_, reason, ..)) =
            one.create_native_config()
        {
            return Err(project.error_at(
                key.pos,
                format!(
                    "librdkafka rejects '{}' = '{value}' in CREATE SINK {}: {reason}; fix or \
                     remove the property (librdkafka's CONFIGURATION.md lists them)",
                    key.value, project.sink.name.value
                ),
            ));
        }
    }
    Ok(())
}

/// librdkafka's log lines, through `tracing` (target `librdkafka`) like rust-rdkafka's own
/// handler, but with the broker's transient states — a coordinator still loading its state,
/// which every first transactional run meets and librdkafka retries — at debug level, not as
/// warnings that open a new user's first run.
pub fn librdkafka_log(level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
    use rdkafka::config::RDKafkaLogLevel as Level;
    // "Coordinator load in progress", "Broker: Not coordinator: retrying", ...
    let retried = message.contains("load in progress")
        || (message.contains("oordinator") && message.contains("retrying"));
    match level {
        _ if retried => tracing::debug!(target: "librdkafka", "librdkafka: {fac} {message}"),
        Level::Emerg | Level::Alert | Level::Critical | Level::Error => {
            tracing::error!(target: "librdkafka", "librdkafka: {fac} {message}")
        }
        Level::Warning => tracing::warn!(target: "librdkafka", "librdkafka: {fac} {message}"),
        Level::Notice | Level::Info => {
            tracing::info!(target: "librdkafka", "librdkafka: {fac} {message}")
        }
        Level::Debug => tracing::debug!(target: "librdkafka", "librdkafka: {fac} {message}"),
    }
}
