//! The broker-ingest baseline of `scripts/bench full`: a plain librdkafka producer sending
//! pre-built messages as fast as the broker takes them, with tributary's producer settings,
//! never waiting per message.
//!
//! `cargo run --release --example raw_produce -- BOOTSTRAP TOPIC MESSAGES SIZE`

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, bootstrap, topic, messages, size] = args.as_slice() else {
        eprintln!("usage: raw_produce BOOTSTRAP TOPIC MESSAGES SIZE");
        std::process::exit(1);
    };
    let messages: usize = messages.parse().expect("MESSAGES is a number");
    let size: usize = size.parse().expect("SIZE is a number");
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("compression.type", "lz4")
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("batch.num.messages", "100000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    // Distinct JSON-like payloads of the requested size, so compression sees realistic data.
    let payloads: Vec<Vec<u8>> = (0..1024)
        .map(|i| {
            let mut p = format!("{{\"id\":{i},\"payload\":\"").into_bytes();
            while p.len() + 2 < size {
                p.extend_from_slice(format!("{:x}", (i * 2_654_435_761usize) ^ p.len()).as_bytes());
            }
            p.truncate(size.saturating_sub(2));
            p.extend_from_slice(b"\"}");
            p
        })
        .collect();
    let keys: Vec<String> = (0..messages).map(|i| format!("{{\"id\":{i}}}")).collect();
    let start = Instant::now();
    for (i, key) in keys.iter().enumerate() {
        let mut record = BaseRecord::to(topic)
            .key(key.as_str())
            .payload(&payloads[i % payloads.len()]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => panic!("send failed: {e}"),
            }
        }
        if i % 1000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "raw_produce: {messages} messages of {size} bytes in {seconds:.2} s = {:.0} msgs/s",
        messages as f64 / seconds
    );
}
