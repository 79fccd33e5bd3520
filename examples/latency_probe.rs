//! The latency half of `scripts/bench incremental`: writes rows at a steady rate into MariaDB,
//! each carrying its commit time, while consuming the topic tributary streams them to, and
//! prints the p50/p99 of (message received − row committed).
//!
//! `latency_probe MYSQL_URL TABLE BOOTSTRAP TOPIC ROWS_PER_SEC SECONDS [FIRST_ID]`
//! (ids from FIRST_ID + 1, default 10,000,001, so several probes can write to one table)

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mysql_async::prelude::Queryable;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (url, table, bootstrap, topic, rate, seconds, first_id) = match args.as_slice() {
        [_, url, table, bootstrap, topic, rate, seconds] => {
            (url, table, bootstrap, topic, rate, seconds, "10000000")
        }
        [_, url, table, bootstrap, topic, rate, seconds, first] => {
            (url, table, bootstrap, topic, rate, seconds, first.as_str())
        }
        _ => {
            eprintln!(
                "usage: latency_probe MYSQL_URL TABLE BOOTSTRAP TOPIC ROWS_PER_SEC SECONDS [FIRST_ID]"
            );
            std::process::exit(1);
        }
    };
    let first_id: u64 = first_id.parse().expect("FIRST_ID");
    let rate: u64 = rate.parse().expect("ROWS_PER_SEC");
    let seconds: u64 = seconds.parse().expect("SECONDS");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("latency_probe_{}", now_micros()))
        .set("fetch.wait.max.ms", "5")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    // Read every partition from its end as it is before the first write, so no row is missed
    // (`auto.offset.reset = latest` resolves the end lazily, after the writes began).
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(20))
        .expect("topic metadata");
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics()[0].partitions() {
        let (_, high) = consumer
            .fetch_watermarks(topic, partition.id(), Duration::from_secs(20))
            .expect("watermarks");
        assignment
            .add_partition_offset(topic, partition.id(), Offset::Offset(high))
            .expect("partition");
    }
    consumer.assign(&assignment).expect("assign");

    let total = rate * seconds;
    let writer_table = table.clone();
    let writer_url = url.clone();
    let writer = tokio::spawn(async move {
        let mut conn = mysql_async::Conn::from_url(writer_url)
            .await
            .expect("connect");
        let per_txn = 10u64;
        let interval = Duration::from_micros(1_000_000 * per_txn / rate);
        let start = Instant::now();
        for txn in 0..total / per_txn {
            let due = start + interval * txn as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                tokio::time::sleep(wait).await;
            }
            let at = now_micros();
            let values: Vec<String> = (0..per_txn)
                .map(|i| format!("({}, {at})", first_id + txn * per_txn + i + 1))
                .collect();
            conn.query_drop(format!(
                "INSERT INTO {writer_table} (id, at) VALUES {}",
                values.join(", ")
            ))
            .await
            .expect("insert");
        }
    });

    let mut latencies = Vec::with_capacity(total as usize);
    let deadline = Instant::now() + Duration::from_secs(seconds + 30);
    while (latencies.len() as u64) < total && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(10)) {
            let received = now_micros();
            let payload = String::from_utf8_lossy(message.payload().unwrap_or_default());
            if let Some(at) = payload
                .split("\"at\":")
                .nth(1)
                .and_then(|rest| rest.split([',', '}']).next())
                .and_then(|v| v.parse::<i64>().ok())
            {
                latencies.push(received - at);
            }
        }
    }
    writer.await.expect("writer");
    latencies.sort_unstable();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    println!(
        "latency_probe: {} of {total} rows at {rate} rows/s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        pick(0.50),
        pick(0.99),
        pick(1.0)
    );
}
