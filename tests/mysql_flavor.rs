//! Incremental sync from a MySQL-flavor binlog primary — the protocol MySQL and OceanBase Binlog
//! Service speak — against the real Dolt server `scripts/services up` starts: GTID events, the
//! `COM_BINLOG_DUMP_GTID` request, `start_gtid`, and restarts that resume from the checkpoint's
//! GTID set with nothing lost and nothing repeated.

mod common;

use std::time::Duration;

use mysql_async::prelude::*;
use serde_json::Value;
use tributary::position::gtid::MysqlGtidSet;

/// One test at a time on Dolt: its information_schema fails ("could not resolve initial root for
/// database …") while another session is creating a database, which the tests here all do.
static DOLT: std::sync::LazyLock<tokio::sync::Mutex<()>> =
    std::sync::LazyLock::new(|| tokio::sync::Mutex::new(()));

/// A project reading the test Dolt server, with one-partition topics (so a topic keeps the
/// stream's total order, DDL included).
fn dolt_project(name: &str, options: &str, syncs: &str) -> common::Project {
    common::Project::new(
        name,
        &common::dolt_source(name),
        &format!("topic_partitions = 1{options}"),
        syncs,
    )
}

/// The checkpoint's incremental position, from `status --json`.
fn position(project: &common::Project) -> Value {
    project.status()["incremental"].clone()
}

/// The server's executed GTID set, as `SHOW MASTER STATUS` gives it.
async fn executed(conn: &mut mysql_async::Conn) -> MysqlGtidSet {
    let row: mysql_async::Row = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .expect("SHOW MASTER STATUS")
        .expect("a binlog");
    let text = row
        .get::<Option<String>, _>(4)
        .flatten()
        .unwrap_or_default();
    MysqlGtidSet::parse(&text).expect("a GTID set")
}

/// The checkpoint's GTID set: it holds every transaction the server had executed when the run
/// started (`written`), and nothing the server has not executed. (Other tests write to the same
/// server meanwhile, so the two need not be equal.)
async fn assert_checkpoint_set(
    project: &common::Project,
    written: &MysqlGtidSet,
    conn: &mut mysql_async::Conn,
) -> MysqlGtidSet {
    let position = position(project);
    let text = position["gtid"]
        .as_str()
        .expect("a GTID set in the checkpoint");
    let set = MysqlGtidSet::parse(text).expect("the checkpoint's GTID set parses");
    assert!(
        set.contains(written),
        "the checkpoint {text} holds what was written: {}",
        written.render()
    );
    let server = executed(conn).await;
    assert!(
        server.contains(&set),
        "the checkpoint {text} holds only what the server executed: {}",
        server.render()
    );
    set
}

fn records(topic: &str, expected: usize) -> Vec<Value> {
    common::consume_all(topic, expected, Duration::from_secs(30))
        .iter()
        .map(|m| serde_json::from_str(&m.payload).expect("valid JSON"))
        .collect()
}

fn kinds(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["recordType"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn handoff_dml_ddl_and_restarts_follow_the_gtid_set() {
    let _one_at_a_time = DOLT.lock().await;
    common::require_kafka();
    let db = common::unique("my_flavor");
    let mut conn = common::dolt().await;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE DATABASE {db};
CREATE TABLE {db}.t (id INT PRIMARY KEY, name VARCHAR(20), amount DECIMAL(12,2),
  ts DATETIME(3), u INT UNSIGNED, big BIGINT, f DOUBLE, d DATE);
INSERT INTO {db}.t VALUES (1, 'one', 1.50, '2024-05-01 02:00:00.123', 4294967295,
  -9007199254740993, 0.5, '2024-05-01'), (2, 'two', 2.00, NULL, 0, 0, NULL, NULL)"
        ),
    )
    .await;
    let topic = common::unique("my_flavor");
    let project = dolt_project(
        "my_flavor",
        ", sync = 'schema, full, incremental', incremental = 'dml, ddl'",
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    let created = executed(&mut conn).await;
    project.catch_up();
    // The handoff is the server's executed set, which holds the table's creation.
    assert_checkpoint_set(&project, &created, &mut conn).await;

    common::run_sql(
        &mut conn,
        &format!(
            "INSERT INTO {db}.t VALUES (3, 'three', 3.25, '2025-01-02 03:04:05.5', 7, 9007199254740993, -1.25, '1999-12-31');
UPDATE {db}.t SET name = 'uno', amount = 10.01 WHERE id = 1;
DELETE FROM {db}.t WHERE id = 2;
ALTER TABLE {db}.t ADD COLUMN note VARCHAR(10);
INSERT INTO {db}.t VALUES (4, 'four', 4.00, NULL, 8, 1, 2.5, NULL, 'after')"
        ),
    )
    .await;
    let written = executed(&mut conn).await;
    let outcome = project.catch_up();
    // 4 row changes and the DDL message: the messages sent.
    assert!(
        outcome.stdout.contains("5 changes sent"),
        "{}",
        outcome.stdout
    );
    let messages = records(&topic, 7);
    let kinds = kinds(&messages);
    assert_eq!(
        kinds,
        ["ROW", "ROW", "INSERT", "UPDATE", "DELETE", "DDL", "INSERT"][..],
        "full rows, then every change once, in commit order: {messages:#?}"
    );
    let insert = &messages[2]["postStruct"];
    assert_eq!(insert["u"], serde_json::json!(7));
    assert_eq!(insert["big"].to_string(), "9007199254740993");
    assert_eq!(insert["amount"].to_string(), "3.25");
    assert_eq!(insert["ts"], "2025-01-02 03:04:05.5");
    let update = &messages[3];
    assert_eq!(update["prevStruct"]["name"], "one");
    assert_eq!(update["prevStruct"]["u"].to_string(), "4294967295");
    assert_eq!(update["postStruct"]["name"], "uno");
    assert_eq!(messages[4]["prevStruct"]["id"], 2);
    let ddl = messages[5]["postStruct"]["ddl"]
        .as_str()
        .unwrap_or_default();
    assert!(
        ddl.to_ascii_lowercase().starts_with("alter table") && ddl.contains("note"),
        "{}",
        messages[5]
    );
    assert_eq!(
        messages[6]["postStruct"]["note"], "after",
        "rows after the DDL carry the new column"
    );

    // Every transaction read is in the checkpoint's GTID set.
    assert_checkpoint_set(&project, &written, &mut conn).await;

    // A restart resumes from that set: nothing is sent again.
    let outcome = project.catch_up();
    assert!(
        outcome.stdout.contains("0 changes sent"),
        "{}",
        outcome.stdout
    );
    // And a change after the restart is sent once.
    common::run_sql(
        &mut conn,
        &format!("UPDATE {db}.t SET note = 'again' WHERE id = 4"),
    )
    .await;
    project.catch_up();
    let messages = records(&topic, 8);
    assert_eq!(messages.len(), 8, "{messages:#?}");
    assert_eq!(messages[7]["recordType"], "UPDATE");
    assert_eq!(messages[7]["postStruct"]["note"], "again");
}

#[tokio::test]
async fn start_gtid_streams_only_transactions_outside_the_set() {
    let _one_at_a_time = DOLT.lock().await;
    common::require_kafka();
    let db = common::unique("my_start");
    let mut conn = common::dolt().await;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE DATABASE {db};
CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(10));
INSERT INTO {db}.t VALUES (1, 'before')"
        ),
    )
    .await;
    let start = executed(&mut conn).await.render();
    common::run_sql(
        &mut conn,
        &format!(
            "INSERT INTO {db}.t VALUES (2, 'after');
UPDATE {db}.t SET v = 'changed' WHERE id = 1"
        ),
    )
    .await;
    let written = executed(&mut conn).await;
    let topic = common::unique("my_start");
    let project = dolt_project(
        "my_start",
        &format!(", sync = 'incremental', start_gtid = '{start}'"),
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    // Schema sync is off: the topic must exist.
    let admin = dolt_project(
        "my_start_topic",
        ", sync = 'schema'",
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    admin.catch_up();
    project.catch_up();
    let messages = records(&topic, 2);
    assert_eq!(kinds(&messages), ["INSERT", "UPDATE"], "{messages:#?}");
    assert_eq!(messages[0]["postStruct"]["v"], "after");
    assert_eq!(messages[1]["prevStruct"]["v"], "before");
    // The checkpoint now holds the start set plus what was read.
    assert_checkpoint_set(&project, &written, &mut conn).await;
}

#[tokio::test]
async fn a_mariadb_gtid_on_a_mysql_source_is_refused_before_anything_runs() {
    let _one_at_a_time = DOLT.lock().await;
    let project = dolt_project(
        "my_bad_gtid",
        ", sync = 'incremental', start_gtid = '0-1-42'",
        "SYNC TABLE nowhere.t TO TOPIC 'never_created';",
    );
    let outcome = project.run(&["--until-caught-up"]);
    assert_eq!(outcome.code, 1, "{}{}", outcome.stdout, outcome.stderr);
    assert!(
        outcome.stderr.contains("start_gtid") && outcome.stderr.contains("server UUID"),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome
            .stderr
            .contains(&format!("{}:", project.file.display())),
        "the error names the file and line: {}",
        outcome.stderr
    );
    assert!(!project.state.exists(), "nothing was written");
}

#[tokio::test]
async fn check_passes_on_a_gtid_server_and_says_how_the_stream_is_positioned() {
    let _one_at_a_time = DOLT.lock().await;
    common::require_kafka();
    let mut conn = common::dolt().await;
    let (db, _) = common::new_table(&mut conn, "my_check", "id INT PRIMARY KEY").await;
    let project = dolt_project(
        "my_check",
        ", sync = 'schema, full, incremental'",
        &format!("SYNC TABLE {db}.t TO TOPIC 'my_check';"),
    );
    let outcome = common::tributary(&["check", &project.file.display().to_string()]);
    assert_eq!(outcome.code, 0, "{}{}", outcome.stdout, outcome.stderr);
    for item in [
        "binlog_format=ROW",
        "binlog_row_image=FULL",
        "gtid_mode=ON: the stream is positioned by GTID set",
    ] {
        assert!(outcome.stdout.contains(item), "{item}: {}", outcome.stdout);
    }
}

#[tokio::test]
async fn kill_9_mid_stream_then_the_gtid_set_resumes_with_nothing_lost() {
    let _one_at_a_time = DOLT.lock().await;
    common::require_kafka();
    let mut conn = common::dolt().await;
    let (db, topic) =
        common::new_table(&mut conn, "my_kill", "id INT PRIMARY KEY, v VARCHAR(20)").await;
    let project = dolt_project(
        "my_kill",
        ", sync = 'schema, full, incremental'",
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    project.catch_up();
    let rows = 5_000;
    let seen =
        common::insert_through_a_kill(&project, &mut conn, &format!("{db}.t"), &topic, rows).await;
    assert_eq!(seen.len(), rows, "every inserted row is in Kafka");
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    assert!(
        duplicates <= rows / 2,
        "{duplicates} duplicates: only the transactions in flight at the kill may repeat"
    );
    assert!(
        position(&project)["gtid"]
            .as_str()
            .is_some_and(|g| g.contains(':')),
        "the rerun kept following the GTID set"
    );
}
