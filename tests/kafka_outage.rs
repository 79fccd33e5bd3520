//! Kafka stops in the middle of a full sync: the run retries, then fails with exit code 2 and a
//! clear message; after Kafka is back, a rerun resumes from the checkpoint and every row arrives.
//! Its own test binary: it stops the shared broker, so nothing else may run beside it.

mod common;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts Kafka again however the test ends.
struct RestartKafka;

impl Drop for RestartKafka {
    fn drop(&mut self) {
        common::service("up", "kafka");
    }
}

#[tokio::test]
async fn kafka_outage_fails_cleanly_and_a_rerun_resumes() {
    let db = common::unique("outage");
    let rows = 300_000u64;
    let mut conn = common::mariadb().await;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE DATABASE {db};
CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, body VARCHAR(100));
INSERT INTO {db}.t SELECT seq, REPEAT('x', 80) FROM {db}.seq_1_to_{rows}"
        ),
    )
    .await;
    let topic = common::unique("outage");
    let dir = common::temp_dir("outage");
    let file = dir.join("outage.sql");
    let state = dir.join("state");
    std::fs::write(
        &file,
        format!(
            "CREATE SOURCE src WITH (type = 'mariadb', host = '127.0.0.1', port = 3307, user = 'root');
CREATE SINK kafka WITH (type = 'kafka', 'bootstrap.servers' = '{}', 'message.timeout.ms' = '5000');
CREATE PROJECT outage FROM src TO kafka WITH (sync = 'schema, full', chunk_rows = 5000,
  full_concurrency = 2);
SYNC TABLE {db}.t TO TOPIC '{topic}';
",
            common::kafka_bootstrap()
        ),
    )
    .unwrap();
    let args = [
        "run",
        file.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--until-caught-up",
    ];

    let child = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tributary");
    let checkpoint = state.join("checkpoint.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    // The checkpoint is compact JSON; a chunk is done once it says so.
    let chunk_done = |c: String| c.replace(' ', "").contains("\"done\":true");
    while !std::fs::read_to_string(&checkpoint).is_ok_and(chunk_done) {
        assert!(Instant::now() < deadline, "no chunk finished within 60 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    let _restart = RestartKafka;
    common::service("down", "kafka");
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the chunk is not checkpointed and is read again on the next run"),
        "{stderr}"
    );

    common::service("up", "kafka");
    let outcome = common::tributary(&args);
    assert_eq!(outcome.code, 0, "{}{}", outcome.stdout, outcome.stderr);
    let messages = common::consume_all(&topic, rows as usize, Duration::from_secs(120));
    let ids: HashSet<&str> = messages.iter().filter_map(|m| m.key.as_deref()).collect();
    assert_eq!(
        ids.len() as u64,
        rows,
        "every row is in Kafka after the rerun"
    );
}
