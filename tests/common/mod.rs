//! Connections to the real services that `scripts/services up` starts on loopback.
//!
//! A service that cannot be reached fails the test with a message naming it and saying how to
//! start it; tests never skip silently.

#![allow(dead_code)]

use std::time::Duration;

use mysql_async::{Conn, Opts};
use rdkafka::ClientConfig;

/// Kafka bootstrap servers (env `TRIBUTARY_TEST_KAFKA`, default the local broker).
pub fn kafka_bootstrap() -> String {
    std::env::var("TRIBUTARY_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".to_string())
}

/// MariaDB URL (env `TRIBUTARY_TEST_MARIADB`).
pub fn mariadb_url() -> String {
    std::env::var("TRIBUTARY_TEST_MARIADB")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3307".to_string())
}

/// OceanBase seekdb URL (env `TRIBUTARY_TEST_SEEKDB`).
pub fn seekdb_url() -> String {
    std::env::var("TRIBUTARY_TEST_SEEKDB")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:2881".to_string())
}

/// Dolt URL (env `TRIBUTARY_TEST_DOLT`): the MySQL-flavor binlog primary, with GTIDs.
pub fn dolt_url() -> String {
    std::env::var("TRIBUTARY_TEST_DOLT")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3308".to_string())
}

async fn connect(service: &str, url: &str) -> Conn {
    let opts = Opts::from_url(url).unwrap_or_else(|e| panic!("bad {service} URL {url}: {e}"));
    match tokio::time::timeout(Duration::from_secs(20), Conn::new(opts)).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!(
            "{service} at {url} is not reachable: {e}. Start it with `scripts/services up` \
             (CI={}: a missing service fails the run)",
            ci()
        ),
        Err(_) => panic!(
            "{service} at {url} did not answer within 20 s. Start it with `scripts/services up`"
        ),
    }
}

pub async fn mariadb() -> Conn {
    connect("MariaDB", &mariadb_url()).await
}

pub async fn dolt() -> Conn {
    connect("Dolt", &dolt_url()).await
}

pub async fn seekdb() -> Conn {
    connect("OceanBase seekdb", &seekdb_url()).await
}

/// Producer/consumer/admin settings for the test broker.
pub fn kafka_config() -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", kafka_bootstrap())
        .set("socket.timeout.ms", "10000");
    config
}

/// Fails with a clear message when the broker does not answer a metadata request.
pub fn require_kafka() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = kafka_config()
        .create()
        .unwrap_or_else(|e| panic!("Kafka client setup failed: {e}"));
    if let Err(e) = consumer.fetch_metadata(None, Duration::from_secs(15)) {
        panic!(
            "Kafka at {} is not reachable: {e}. Start it with `scripts/services up`",
            kafka_bootstrap()
        );
    }
}

pub fn ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// A name unique to this test process, for databases and topics that tests create.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// What a `tributary` command printed and how it exited.
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the `tributary` binary built for this test run.
pub fn tributary(args: &[&str]) -> Outcome {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(args)
        .output()
        .expect("run tributary");
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A fresh directory for a test's project file and state.
pub fn temp_dir(prefix: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// One consumed message.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub partition: i32,
    pub key: Option<String>,
    pub payload: String,
}

/// Reads a topic from the beginning until `expected` messages arrived and the topic stays quiet
/// for a moment (so extra messages are seen too), or until `timeout`.
pub fn consume_all(topic: &str, expected: usize, timeout: Duration) -> Vec<Consumed> {
    use rdkafka::Message;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = kafka_config()
        .set("group.id", unique("test_consumer"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut messages = Vec::new();
    let deadline = std::time::Instant::now() + timeout;
    let mut quiet_since = std::time::Instant::now();
    while std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                messages.push(Consumed {
                    partition: message.partition(),
                    key: message
                        .key()
                        .map(|k| String::from_utf8_lossy(k).into_owned()),
                    payload: String::from_utf8_lossy(message.payload().unwrap_or_default())
                        .into_owned(),
                });
                quiet_since = std::time::Instant::now();
            }
            Some(Err(e)) => panic!("consuming {topic}: {e}"),
            None => {
                if messages.len() >= expected && quiet_since.elapsed() > Duration::from_secs(2) {
                    break;
                }
            }
        }
    }
    messages
}

/// Runs SQL statements separated by `;\n` (comment lines skipped).
pub async fn run_sql(conn: &mut Conn, script: &str) {
    use mysql_async::prelude::Queryable;
    for statement in script.split(";\n") {
        let statement: String = statement
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        if !statement.trim().is_empty() {
            conn.query_drop(&statement)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
    }
}
