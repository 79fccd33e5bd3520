//! Throttling against the real MariaDB and Kafka: `max_rows_per_second` holds full sync and
//! incremental sync to their limit, `max_bytes_per_second` the bytes sent. The rates are read
//! from the run's summary (each phase over its own time). A debug build on a busy machine can be
//! slower than a limit, never faster: the upper bound is the 5 % the design promises (plus the
//! summary's rounding of seconds), the lower one only says the limit is not far too strict.
//! `scripts/bench throttle` measures the same on a release build over longer runs.

mod common;

use std::time::Duration;

use common::Project;

/// `count`, `seconds` and the rate of the summary line that starts with `phase`, e.g.
/// "full sync: 12000 rows read, 12000 messages sent in 3.1 s (3871 rows/s)".
fn phase_line(stdout: &str, phase: &str) -> (f64, f64) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(phase))
        .unwrap_or_else(|| panic!("a `{phase}` line in {stdout}"));
    let count: f64 = line[phase.len()..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a count in {line}"));
    let seconds: f64 = line
        .split(" in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("seconds in {line}"));
    (count, seconds)
}

/// At most `limit` within 5 % (and the summary's 0.05 s of rounding), at least `low` of it.
fn assert_held(what: &str, count: f64, seconds: f64, limit: f64, low: f64) {
    let fastest = count / (seconds - 0.05).max(0.01);
    let rate = count / seconds;
    assert!(
        fastest <= limit * 1.05,
        "{what}: {count} in {seconds} s is {rate:.0}/s, over the limit of {limit}/s"
    );
    assert!(
        rate >= limit * low,
        "{what}: {count} in {seconds} s is {rate:.0}/s, far under the limit of {limit}/s"
    );
}

#[tokio::test]
async fn max_rows_per_second_holds_full_and_incremental_sync() {
    let mut conn = common::mariadb().await;
    let (db, topic) = common::new_table(&mut conn, "thr_rows", "id INT PRIMARY KEY, v TEXT").await;
    common::run_sql(
        &mut conn,
        &format!("INSERT INTO {db}.t SELECT seq, 'v' FROM {db}.seq_1_to_12000"),
    )
    .await;
    let project = Project::new(
        "thr_rows",
        &common::mariadb_source("thr_rows"),
        "sync = 'schema, full, incremental', chunk_rows = 1000, batch_rows = 200, \
         max_rows_per_second = 4000",
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    let outcome = project.catch_up();
    let (rows, seconds) = phase_line(&outcome.stdout, "full sync: ");
    assert_eq!(rows, 12000.0, "{}", outcome.stdout);
    assert_held("full sync", rows, seconds, 4000.0, 0.7);

    // A backlog of 6000 row changes, caught up at 4000/s.
    for start in (0..6000).step_by(1000) {
        common::run_sql(
            &mut conn,
            &format!(
                "INSERT INTO {db}.t SELECT 100000 + seq, 'w' FROM {db}.seq_{}_to_{}",
                start + 1,
                start + 1000
            ),
        )
        .await;
    }
    let outcome = project.catch_up();
    let (changes, seconds) = phase_line(&outcome.stdout, "incremental sync: ");
    assert_eq!(changes, 6000.0, "{}", outcome.stdout);
    assert_held("incremental sync", changes, seconds, 4000.0, 0.6);
    let messages = common::consume_all(&topic, 18000, Duration::from_secs(60));
    assert_eq!(messages.len(), 18000, "throttling loses nothing");
}

#[tokio::test]
async fn max_bytes_per_second_holds_the_bytes_sent() {
    let mut conn = common::mariadb().await;
    let (db, topic) = common::new_table(&mut conn, "thr_bytes", "id INT PRIMARY KEY, v TEXT").await;
    common::run_sql(
        &mut conn,
        &format!("INSERT INTO {db}.t SELECT seq, REPEAT('b', 500) FROM {db}.seq_1_to_6000"),
    )
    .await;
    let limit = 1_000_000.0;
    let project = Project::new(
        "thr_bytes",
        &common::mariadb_source("thr_bytes"),
        "sync = 'schema, full', chunk_rows = 500, batch_rows = 100, \
         max_bytes_per_second = 1000000",
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    let outcome = project.catch_up();
    let (rows, seconds) = phase_line(&outcome.stdout, "full sync: ");
    assert_eq!(rows, 6000.0, "{}", outcome.stdout);
    let messages = common::consume_all(&topic, 6000, Duration::from_secs(60));
    assert_eq!(messages.len(), 6000);
    let bytes: usize = messages.iter().map(|m| m.payload.len()).sum();
    assert!(bytes > 3_000_000, "about 3.5 MB to send: {bytes}");
    assert_held("full sync bytes", bytes as f64, seconds, limit, 0.7);
}
