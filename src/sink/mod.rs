//! The Kafka sink: producer settings and topic administration.

pub mod admin;
pub mod kafka;
pub mod transactions;

use rdkafka::ClientConfig;

use crate::project::SinkDef;

/// A librdkafka client configuration with every property of the sink, passed through unchanged.
pub fn client_config(sink: &SinkDef) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (key, value) in &sink.properties {
        config.set(key.value.as_str(), value.as_str());
    }
    config
}
