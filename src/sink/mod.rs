//! The sink: where change batches leave tributary. [`delivery`] is the seam every producer of
//! messages uses (batches in, acknowledgements out); behind it sit the Kafka producer
//! ([`kafka`]: in-flight bytes, delivery callbacks, transactions), topic administration
//! ([`admin`]), exactly-once progress records ([`transactions`]) and the Kafka half of `check`
//! ([`precheck`]).

pub mod admin;
pub mod delivery;
pub mod kafka;
pub mod precheck;
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
