//! `/metrics` against the real MariaDB and Kafka: scraped during full sync and while streaming,
//! parsed with a Prometheus text parser, and compared with what reached Kafka — messages and
//! payload bytes per table and phase, DDL, a table created mid-stream. And every metric the
//! Grafana dashboard and the alert rules in `deploy/` use exists.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Project;

/// The run under test, killed if the test fails before it pauses it.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.try_wait().is_ok_and(|done| done.is_none()) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// `GET /metrics`, the body parsed; `None` while nothing answers.
fn scrape(addr: &str) -> Option<prometheus_parse::Scrape> {
    use std::io::{Read, Write};
    let mut socket = std::net::TcpStream::connect(addr).ok()?;
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    socket
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: test\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    socket.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let lines = body.lines().map(|l| Ok(l.to_string()));
    Some(prometheus_parse::Scrape::parse(lines).expect("the Prometheus text parses"))
}

/// The value of the sample `name` (with or without `_total`) whose labels include `labels`.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name || s.metric == format!("{name}_total"))
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .find_map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(v),
            _ => None,
        })
}

/// Every sample name of a scrape, histograms with their `_bucket`, `_sum` and `_count`.
fn names(scrape: &prometheus_parse::Scrape) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for sample in &scrape.samples {
        names.insert(sample.metric.clone());
        if let prometheus_parse::Value::Histogram(_) = sample.value {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{}{suffix}", sample.metric));
            }
        }
    }
    names
}

/// Messages and payload bytes in a topic, HEARTBEAT records left out.
fn in_kafka(topic: &str, expected: usize) -> (f64, f64) {
    let messages = common::consume_all(topic, expected, Duration::from_secs(60));
    let bytes: usize = messages.iter().map(|m| m.payload.len()).sum();
    (messages.len() as f64, bytes as f64)
}

fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// The `tributary_*` names a deploy file uses.
fn used_in(path: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut names = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("tributary_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        // `tributary_*` in a comment names no metric.
        if !name.ends_with('_') {
            names.insert(name);
        }
    }
    names
}

#[tokio::test]
async fn metrics_match_what_reached_kafka_in_full_sync_and_streaming() {
    let mut conn = common::mariadb().await;
    let db = common::unique("met");
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE DATABASE {db};
CREATE TABLE {db}.big (id INT PRIMARY KEY, grp INT, v TEXT);
INSERT INTO {db}.big SELECT seq, seq % 4, REPEAT('x', 100) FROM {db}.seq_1_to_60000;
CREATE TABLE {db}.small (id INT PRIMARY KEY, v TEXT);
INSERT INTO {db}.small SELECT seq, 'v' FROM {db}.seq_1_to_300"
        ),
    )
    .await;
    let prefix = common::unique("met");
    let addr = free_addr();
    let project = Project::new(
        "met",
        &common::mariadb_source("met"),
        "sync = 'schema, full, incremental', incremental = 'dml, ddl', chunk_rows = 2000, \
         full_concurrency = 2",
        &format!(
            "SYNC TABLE {db}.big TO TOPIC '{prefix}_big' WHERE grp <> 3;\n\
             SYNC TABLE {db}.% EXCEPT {db}.big TO TOPIC '{prefix}_${{table}}';"
        ),
    );
    let mut run = Running(
        Command::new(env!("CARGO_BIN_EXE_tributary"))
            .args(project.args("run", &["--metrics-addr", &addr]))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tributary"),
    );

    // During full sync: the phase is `full` and rows are being read.
    let deadline = Instant::now() + Duration::from_secs(120);
    let during = loop {
        assert!(Instant::now() < deadline, "no scrape during full sync");
        assert!(run.0.try_wait().unwrap().is_none(), "the run ended");
        if let Some(s) = scrape(&addr)
            && value(&s, "tributary_phase", &[("phase", "full")]) == Some(1.0)
            && value(
                &s,
                "tributary_rows_read",
                &[("table", &format!("{db}.big"))],
            )
            .is_some_and(|v| v > 0.0)
        {
            break s;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read_during = value(
        &during,
        "tributary_rows_read",
        &[("table", &format!("{db}.big"))],
    );
    assert!(
        read_during.is_some_and(|v| v < 60000.0),
        "scraped mid-way: {read_during:?}"
    );
    assert!(
        value(
            &during,
            "tributary_full_chunks",
            &[("table", &format!("{db}.big"))]
        ) >= Some(30.0)
    );

    project.wait_until_streaming(&mut run.0);
    let after_full = scrape(&addr).expect("a scrape while streaming");
    let big = format!("{db}.big");
    let small = format!("{db}.small");
    let (kafka_big, kafka_big_bytes) = in_kafka(&format!("{prefix}_big"), 45000);
    assert_eq!(kafka_big, 45000.0, "grp 3 is filtered out");
    for (name, labels, expected) in [
        (
            "tributary_rows_read",
            vec![("table", big.as_str())],
            60000.0,
        ),
        (
            "tributary_rows_filtered",
            vec![("table", big.as_str())],
            15000.0,
        ),
        (
            "tributary_messages_sent",
            vec![("table", big.as_str()), ("phase", "full")],
            kafka_big,
        ),
        (
            "tributary_sent_bytes",
            vec![("table", big.as_str()), ("phase", "full")],
            kafka_big_bytes,
        ),
        (
            "tributary_messages_sent",
            vec![("table", small.as_str()), ("phase", "full")],
            300.0,
        ),
        (
            "tributary_full_chunks_done",
            vec![("table", big.as_str())],
            value(
                &after_full,
                "tributary_full_chunks",
                &[("table", big.as_str())],
            )
            .unwrap_or(-1.0),
        ),
        ("tributary_phase", vec![("phase", "incremental")], 1.0),
        ("tributary_stream_owner", vec![], 1.0),
    ] {
        assert_eq!(
            value(&after_full, name, &labels),
            Some(expected),
            "{name} {labels:?}"
        );
    }

    // Streaming: row changes, DDL and a table created mid-stream, each counted as it reached
    // Kafka.
    common::run_sql(
        &mut conn,
        &format!(
            "INSERT INTO {db}.small VALUES (1001, 'a'), (1002, 'b');
UPDATE {db}.small SET v = 'c' WHERE id = 1001;
DELETE FROM {db}.small WHERE id = 1;
ALTER TABLE {db}.small ADD COLUMN w INT;
INSERT INTO {db}.small VALUES (1003, 'd', 7);
CREATE TABLE {db}.later (id INT PRIMARY KEY, v TEXT);
INSERT INTO {db}.later VALUES (1, 'x'), (2, 'y')"
        ),
    )
    .await;
    // 5 row changes and the DDL on each of the topic's 3 partitions; the new table's CREATE on
    // its 3 partitions and 2 rows.
    let (kafka_small, kafka_small_bytes) = in_kafka(&format!("{prefix}_small"), 300 + 8);
    let (kafka_later, kafka_later_bytes) = in_kafka(&format!("{prefix}_later"), 5);
    assert_eq!((kafka_small, kafka_later), (308.0, 5.0));
    let later = format!("{db}.later");
    let deadline = Instant::now() + Duration::from_secs(30);
    let streaming = loop {
        let s = scrape(&addr).expect("a scrape while streaming");
        let sent = value(
            &s,
            "tributary_messages_sent",
            &[("table", &later), ("phase", "incremental")],
        );
        if sent == Some(kafka_later) || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let full_small_bytes = value(
        &after_full,
        "tributary_sent_bytes",
        &[("table", &small), ("phase", "full")],
    )
    .unwrap();
    for (name, labels, expected) in [
        (
            "tributary_messages_sent",
            vec![("table", small.as_str()), ("phase", "incremental")],
            kafka_small - 300.0,
        ),
        (
            "tributary_sent_bytes",
            vec![("table", small.as_str()), ("phase", "incremental")],
            kafka_small_bytes - full_small_bytes,
        ),
        (
            "tributary_ddl_messages_sent",
            vec![("table", small.as_str())],
            3.0,
        ),
        (
            "tributary_ddl_messages_sent",
            vec![("table", later.as_str())],
            3.0,
        ),
        (
            "tributary_messages_sent",
            vec![("table", later.as_str()), ("phase", "incremental")],
            kafka_later,
        ),
        (
            "tributary_sent_bytes",
            vec![("table", later.as_str()), ("phase", "incremental")],
            kafka_later_bytes,
        ),
        ("tributary_rows_read", vec![("table", later.as_str())], 2.0),
    ] {
        assert_eq!(
            value(&streaming, name, &labels),
            Some(expected),
            "{name} {labels:?}"
        );
    }
    assert!(value(&streaming, "tributary_incremental_lag_seconds", &[]).is_some_and(|v| v >= 0.0));
    assert!(
        value(
            &streaming,
            "tributary_incremental_last_commit_timestamp_seconds",
            &[]
        )
        .is_some_and(|v| v > 1.6e9)
    );
    let acks = streaming
        .samples
        .iter()
        .find(|s| s.metric == "tributary_commit_to_ack_seconds")
        .expect("the commit-to-acknowledgement histogram");
    match &acks.value {
        prometheus_parse::Value::Histogram(buckets) => assert!(
            buckets.iter().any(|b| b.count >= 4.0),
            "every transaction observed: {buckets:?}"
        ),
        other => panic!("a histogram: {other:?}"),
    }

    // The dashboard and the alerts use only metrics that exist.
    let exported = names(&streaming);
    let mut missing = BTreeMap::new();
    for file in [
        "deploy/grafana-dashboard.json",
        "deploy/prometheus-alerts.yml",
    ] {
        let used = used_in(file);
        assert!(used.len() >= 4, "{file} uses tributary metrics: {used:?}");
        for name in used {
            if !exported.contains(&name) {
                missing.insert(name, file);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "used in deploy/ but not exported: {missing:?}\nexported: {exported:?}"
    );

    let status = Command::new("kill")
        .args(["-TERM", &run.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(run.0.wait().unwrap().code(), Some(0));
}

/// An online snapshot shows in the metrics: its chunks planned and acknowledged, and its rows
/// read and messages sent for the table.
#[tokio::test]
async fn an_online_snapshot_is_counted_per_table() {
    common::require_kafka();
    let mut conn = common::mariadb().await;
    let (db, first) = common::new_table(&mut conn, "met_online", "id INT PRIMARY KEY").await;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE TABLE {db}.added (id INT PRIMARY KEY, v INT);
INSERT INTO {db}.added SELECT seq, 0 FROM {db}.seq_1_to_2500"
        ),
    )
    .await;
    let project = Project::new(
        "met_online",
        &common::mariadb_source("met_online"),
        "sync = 'schema, full, incremental', topic_partitions = 1, chunk_rows = 1000",
        &format!("SYNC TABLE {db}.t TO TOPIC '{first}';"),
    );
    project.catch_up();
    let topic = common::unique("met_online");
    project.append(&format!("SYNC TABLE {db}.added TO TOPIC '{topic}';"));
    let addr = free_addr();
    let mut run = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(project.args("run", &["--metrics-addr", &addr]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tributary");
    let table = format!("{db}.added");
    let deadline = Instant::now() + Duration::from_secs(120);
    let scraped = loop {
        assert!(
            Instant::now() < deadline,
            "the online snapshot did not finish"
        );
        assert!(run.try_wait().unwrap().is_none(), "the run ended");
        if let Some(s) = scrape(&addr)
            && value(
                &s,
                "tributary_online_snapshot_chunks_done",
                &[("table", &table)],
            ) == Some(3.0)
        {
            break s;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status();
    let _ = run.wait();
    assert_eq!(
        value(
            &scraped,
            "tributary_online_snapshot_chunks",
            &[("table", &table)]
        ),
        Some(3.0)
    );
    let samples: Vec<String> = scraped
        .samples
        .iter()
        .filter(|s| s.labels.get("table") == Some(table.as_str()))
        .map(|s| format!("{} {:?} {:?}", s.metric, s.labels, s.value))
        .collect();
    assert_eq!(
        value(&scraped, "tributary_rows_read", &[("table", &table)]),
        Some(2500.0),
        "{samples:#?}"
    );
    let sent = common::consume_all(&topic, 2500, Duration::from_secs(30)).len() as f64;
    assert_eq!(
        value(
            &scraped,
            "tributary_messages_sent",
            &[("table", &table), ("phase", "full")]
        ),
        Some(sent)
    );
}
