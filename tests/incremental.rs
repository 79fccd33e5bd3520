//! Incremental sync against the real MariaDB binlog and Kafka: every DML kind in commit order,
//! the row-filter crossing rules, key changes, DDL, a `kill -9` mid-stream, and the
//! full → incremental handoff while writes continue.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use mysql_async::prelude::*;
use serde_json::Value;

/// A project reading the test MariaDB, with 3-partition topics.
fn mariadb_project(name: &str, options: &str, syncs: &str) -> common::Project {
    common::Project::new(
        name,
        &common::mariadb_source(name),
        &format!("topic_partitions = 3{options}"),
        syncs,
    )
}

/// A database with table `t (columns)` synced to its own topic, caught up once: the start of
/// most tests here. Returns the database, the topic, the project and a connection.
async fn streamed_table(
    name: &str,
    columns: &str,
    options: &str,
) -> (String, String, common::Project, mysql_async::Conn) {
    common::streamed_table(name, columns, |syncs| mariadb_project(name, options, syncs)).await
}

fn parse(messages: &[common::Consumed]) -> Vec<(String, Option<String>, Value)> {
    messages
        .iter()
        .map(|m| {
            let value: Value = serde_json::from_str(&m.payload).expect("valid JSON");
            (
                value["recordType"].as_str().unwrap_or("").to_string(),
                m.key.clone(),
                value,
            )
        })
        .collect()
}

#[tokio::test]
async fn every_change_kind_arrives_in_commit_order_with_filters_and_ddl() {
    let db = common::unique("inc_kinds");
    let mut conn = common::mariadb().await;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE DATABASE {db};
CREATE TABLE {db}.t (id INT PRIMARY KEY, name VARCHAR(20), amount DECIMAL(10,2),
  status VARCHAR(10) NOT NULL, ts TIMESTAMP(3) NULL, e ENUM('a','b'), s SET('x','y'),
  u INT UNSIGNED, y YEAR);
INSERT INTO {db}.t VALUES (1, 'one', 1.50, 'ok', '2024-05-01 02:00:00.123', 'b', 'x,y', 4294967295, 2024)"
        ),
    )
    .await;
    let topic = common::unique("inc_kinds");
    let project = mariadb_project(
        "inc_kinds",
        ", sync = 'schema, full, incremental', incremental = 'dml, ddl'",
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}' WHERE status <> 'hidden';"),
    );
    project.catch_up();

    common::run_sql(
        &mut conn,
        &format!(
            "BEGIN;
INSERT INTO {db}.t VALUES (2, 'two', 2.00, 'ok', '2024-05-01 02:00:00.123', 'b', 'x,y', 4294967295, 2024);
INSERT INTO {db}.t VALUES (3, 'three', 3.00, 'ok', NULL, 'a', '', 0, 1999);
COMMIT;
UPDATE {db}.t SET name = 'uno' WHERE id = 1;
UPDATE {db}.t SET status = 'hidden' WHERE id = 2;
UPDATE {db}.t SET name = 'two!' WHERE id = 2;
UPDATE {db}.t SET status = 'ok' WHERE id = 2;
UPDATE {db}.t SET id = 100 WHERE id = 3;
DELETE FROM {db}.t WHERE id = 1;
ALTER TABLE {db}.t ADD COLUMN qty INT;
INSERT INTO {db}.t VALUES (4, 'four', 4.00, 'ok', NULL, NULL, NULL, NULL, NULL, 7)"
        ),
    )
    .await;
    let outcome = project.catch_up();
    assert!(outcome.stdout.contains("run done:"), "{}", outcome.stdout);
    let status = common::tributary(&[
        "status",
        project.file.to_str().unwrap(),
        "--state-dir",
        project.state.to_str().unwrap(),
        "--json",
    ]);
    let status: Value = serde_json::from_str(&status.stdout).expect("status --json");
    assert_eq!(status["phase"], "incremental");
    assert_eq!(
        status["incremental_changes"], 12,
        "2 inserts, update, delete, insert, delete + insert, delete, 3 DDL, insert = 12"
    );
    assert!(
        status["incremental"]["file"]
            .as_str()
            .is_some_and(|f| !f.is_empty())
    );

    let records = parse(&common::consume_all(&topic, 11, Duration::from_secs(60)));
    // Order is per key (partition); compare each key's history.
    let mut by_key: HashMap<String, Vec<String>> = HashMap::new();
    for (kind, key, _) in &records {
        by_key
            .entry(key.clone().unwrap_or_else(|| "null".into()))
            .or_default()
            .push(kind.clone());
    }
    assert_eq!(by_key["{\"id\":1}"], ["ROW", "UPDATE", "DELETE"]);
    // 2 crosses the filter out (DELETE), changes unseen, then crosses back (INSERT).
    assert_eq!(by_key["{\"id\":2}"], ["INSERT", "DELETE", "INSERT"]);
    // The key change of 3 → 100 is a DELETE of the old key and an INSERT of the new one.
    assert_eq!(by_key["{\"id\":3}"], ["INSERT", "DELETE"]);
    assert_eq!(by_key["{\"id\":100}"], ["INSERT"]);
    assert_eq!(by_key["{\"id\":4}"], ["INSERT"]);
    // DDL goes to every partition of the topic, with no key.
    assert_eq!(by_key["null"], ["DDL", "DDL", "DDL"]);

    let find = |kind: &str, key: &str| {
        records
            .iter()
            .find(|(k, id, _)| k == kind && id.as_deref() == Some(key))
            .map(|(_, _, v)| v.clone())
            .unwrap_or_else(|| panic!("{kind} {key}"))
    };
    // Binlog values print exactly as snapshot values of the same data.
    let snapshot = find("ROW", "{\"id\":1}");
    let insert = find("INSERT", "{\"id\":2}");
    for column in ["ts", "e", "s", "u", "y"] {
        assert_eq!(
            insert["postStruct"][column], snapshot["postStruct"][column],
            "{column}"
        );
    }
    assert_eq!(insert["postStruct"]["amount"].to_string(), "2.00");
    assert_eq!(insert["postStruct"]["u"].to_string(), "4294967295");
    assert_eq!(insert["postStruct"]["s"], "x,y");
    assert_eq!(insert["postStruct"]["ts"], "1714528800.123");
    let update = find("UPDATE", "{\"id\":1}");
    assert_eq!(update["prevStruct"]["name"], "one");
    assert_eq!(update["postStruct"]["name"], "uno");
    assert_eq!(update["allMetaData"]["record_primary_value"], "1");
    let delete = find("DELETE", "{\"id\":1}");
    assert_eq!(delete["postStruct"], Value::Null);
    assert_eq!(delete["prevStruct"]["name"], "uno");
    let ddl = records.iter().find(|(k, _, _)| k == "DDL").unwrap();
    assert_eq!(ddl.2["allMetaData"]["ddlType"], "ALTER_TABLE");
    assert!(
        ddl.2["postStruct"]["ddl"]
            .as_str()
            .unwrap()
            .contains("ADD COLUMN qty")
    );
    let after_ddl = find("INSERT", "{\"id\":4}");
    assert_eq!(
        after_ddl["postStruct"]["qty"], 7,
        "rows after DDL use the new schema"
    );
}

#[tokio::test]
async fn kill_9_mid_stream_then_rerun_loses_nothing() {
    let (db, topic, project, mut conn) = streamed_table(
        "inc_kill",
        "id INT PRIMARY KEY, v VARCHAR(20)",
        ", sync = 'schema, full, incremental'",
    )
    .await;

    let rows = 20_000;
    let seen =
        common::insert_through_a_kill(&project, &mut conn, &format!("{db}.t"), &topic, rows).await;
    assert_eq!(seen.len(), rows, "every inserted row is in Kafka");
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    assert!(
        duplicates <= rows / 2,
        "{duplicates} duplicates: only the transactions in flight at the kill may repeat"
    );
}

#[tokio::test]
async fn writes_during_the_snapshot_are_not_lost_at_the_handoff() {
    let db = common::unique("inc_handoff");
    let mut conn = common::mariadb().await;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE DATABASE {db};
CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT);
INSERT INTO {db}.t SELECT seq, 0 FROM {db}.seq_1_to_200000"
        ),
    )
    .await;
    let topic = common::unique("inc_handoff");
    let project = mariadb_project(
        "inc_handoff",
        ", sync = 'schema, full, incremental', chunk_rows = 20000, full_concurrency = 2",
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    let writer = {
        let db = db.clone();
        tokio::spawn(async move {
            let mut conn = common::mariadb().await;
            for i in 0..300 {
                let id = 200_001 + i;
                conn.query_drop(format!(
                    "INSERT INTO {db}.t VALUES ({id}, 1); UPDATE {db}.t SET v = v + 1 WHERE id = {}",
                    1 + i * 600
                ))
                .await
                .expect("write");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut args = project.args("run", &[]);
    args.push("--until-caught-up".into());
    let first = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::tributary(&args)
    });
    writer.await.expect("writer");
    let outcome = first.await.expect("tributary");
    assert_eq!(outcome.code, 0, "{}{}", outcome.stdout, outcome.stderr);
    project.catch_up();

    let messages = common::consume_all(&topic, 200_300, Duration::from_secs(180));
    let mut last: HashMap<String, Value> = HashMap::new();
    for m in &messages {
        let value: Value = serde_json::from_str(&m.payload).unwrap();
        last.insert(m.key.clone().unwrap(), value);
    }
    assert_eq!(last.len(), 200_300, "every row, old and new, is in Kafka");
    for i in 0..300u64 {
        let key = format!("{{\"id\":{}}}", 1 + i * 600);
        assert_eq!(
            last[&key]["postStruct"]["v"], 1,
            "the last message of {key} carries its final value"
        );
    }
}

#[tokio::test]
async fn tables_created_later_and_large_transactions_are_streamed() {
    let db = common::unique("inc_late");
    let mut conn = common::mariadb().await;
    common::run_sql(
        &mut conn,
        &format!("CREATE DATABASE {db}; CREATE TABLE {db}.base (id INT PRIMARY KEY)"),
    )
    .await;
    let prefix = common::unique("inc_late");
    let project = mariadb_project(
        "inc_late",
        ", sync = 'schema, full, incremental', incremental = 'dml, ddl'",
        &format!("SYNC TABLE {db}.* TO TOPIC '{prefix}_${{table}}';"),
    );
    project.catch_up();
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE TABLE {db}.late (id INT PRIMARY KEY, v VARCHAR(10));
INSERT INTO {db}.late VALUES (1, 'a');
INSERT INTO {db}.base SELECT seq FROM {db}.seq_1_to_100000"
        ),
    )
    .await;
    project.catch_up();

    let late = parse(&common::consume_all(
        &format!("{prefix}_late"),
        4,
        Duration::from_secs(60),
    ));
    let kinds: Vec<&str> = late.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "DDL").count(),
        3,
        "{kinds:?}"
    );
    assert!(kinds.contains(&"INSERT"), "{kinds:?}");
    let base = common::consume_all(&format!("{prefix}_base"), 100_000, Duration::from_secs(120));
    let keys: std::collections::HashSet<&str> =
        base.iter().filter_map(|m| m.key.as_deref()).collect();
    assert_eq!(
        keys.len(),
        100_000,
        "one 100k-row transaction arrives whole"
    );
}

#[tokio::test]
async fn start_timestamp_skips_what_was_committed_before_it() {
    let db = common::unique("inc_ts");
    let mut conn = common::mariadb().await;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE DATABASE {db}; CREATE TABLE {db}.t (id INT PRIMARY KEY);
INSERT INTO {db}.t VALUES (1);
ALTER TABLE {db}.t ADD COLUMN before_start INT"
        ),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let start: i64 = conn
        .query_first("SELECT UNIX_TIMESTAMP()")
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    conn.query_drop(format!("INSERT INTO {db}.t VALUES (2, 0)"))
        .await
        .unwrap();
    let topic = common::unique("inc_ts");
    // DDL before start_timestamp moves the schema history but is not sent either.
    let project = mariadb_project(
        "inc_ts",
        &format!(
            ", sync = 'schema, incremental', incremental = 'dml, ddl', start_timestamp = {start}"
        ),
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    project.catch_up();
    let records = parse(&common::consume_all(&topic, 1, Duration::from_secs(30)));
    let keys: Vec<Option<&str>> = records.iter().map(|(_, k, _)| k.as_deref()).collect();
    assert_eq!(
        keys,
        [Some("{\"id\":2}")],
        "only the change after start_timestamp"
    );
}

fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut socket) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = socket.write_all(b"GET /metrics HTTP/1.1\r\nhost: test\r\n\r\n");
    let mut response = String::new();
    let _ = socket.read_to_string(&mut response);
    response
}

/// The sum of a metric's samples whose labels contain `labels` (e.g. `phase="incremental"`).
fn metric(text: &str, name: &str, labels: &str) -> u64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
                && l.contains(labels)
        })
        .filter_map(|l| {
            l.rsplit(' ')
                .next()
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .sum()
}

#[tokio::test]
async fn a_lost_binlog_connection_is_reopened_from_the_checkpoint() {
    let (db, topic, project, mut conn) = streamed_table(
        "inc_reconnect",
        "id INT PRIMARY KEY",
        ", sync = 'schema, full, incremental'",
    )
    .await;
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let mut args = project.args("run", &[]);
    args.extend(["--metrics-addr".to_string(), addr.clone()]);
    let child = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tributary");
    let wait_for = |name: &str, labels: &str, at_least: u64| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let value = metric(&scrape(&addr), name, labels);
            if value >= at_least {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name} stayed at {value}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    conn.query_drop(format!(
        "INSERT INTO {db}.t SELECT seq FROM {db}.seq_1_to_100"
    ))
    .await
    .unwrap();
    wait_for(
        "tributary_messages_sent_total",
        "phase=\"incremental\"",
        100,
    );
    let dumps: Vec<u64> = conn
        .query("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")
        .await
        .unwrap();
    assert!(!dumps.is_empty(), "tributary streams the binlog");
    for id in dumps {
        let _ = conn.query_drop(format!("KILL {id}")).await;
    }
    conn.query_drop(format!(
        "INSERT INTO {db}.t SELECT seq FROM {db}.seq_101_to_200"
    ))
    .await
    .unwrap();
    wait_for("tributary_reconnects_total", "", 1);
    wait_for(
        "tributary_messages_sent_total",
        "phase=\"incremental\"",
        200,
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let messages = common::consume_all(&topic, 200, Duration::from_secs(30));
    let keys: std::collections::HashSet<&str> =
        messages.iter().filter_map(|m| m.key.as_deref()).collect();
    assert_eq!(
        keys.len(),
        200,
        "the rows before and after the lost connection"
    );
}

#[tokio::test]
async fn start_gtid_starts_after_that_transaction_and_positions_carry_gtids() {
    let db = common::unique("inc_gtid");
    let mut conn = common::mariadb().await;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE DATABASE {db}; CREATE TABLE {db}.t (id INT PRIMARY KEY);
INSERT INTO {db}.t VALUES (1)"
        ),
    )
    .await;
    let gtid: String = conn
        .query_first("SELECT @@GLOBAL.gtid_binlog_pos")
        .await
        .unwrap()
        .unwrap();
    conn.query_drop(format!("INSERT INTO {db}.t VALUES (2)"))
        .await
        .unwrap();
    let after_insert: String = conn
        .query_first("SELECT @@GLOBAL.gtid_binlog_pos")
        .await
        .unwrap()
        .unwrap();
    let topic = common::unique("inc_gtid");
    let project = mariadb_project(
        "inc_gtid",
        &format!(", sync = 'schema, incremental', start_gtid = '{gtid}'"),
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    project.catch_up();
    let records = parse(&common::consume_all(&topic, 1, Duration::from_secs(30)));
    let keys: Vec<Option<&str>> = records.iter().map(|(_, k, _)| k.as_deref()).collect();
    assert_eq!(
        keys,
        [Some("{\"id\":2}")],
        "only the transaction after the GTID"
    );
    let checkpoint: Value =
        serde_json::from_slice(&std::fs::read(project.state.join("checkpoint.json")).unwrap())
            .unwrap();
    let tracked = checkpoint["incremental"]["gtid"].as_str().unwrap_or("");
    let sequence = |gtid: &str| -> u64 {
        gtid.split(',')
            .find(|g| g.starts_with("0-"))
            .and_then(|g| g.rsplit('-').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    assert!(
        sequence(tracked) >= sequence(&after_insert),
        "the checkpoint's GTID state {tracked} is at or after the insert's {after_insert}"
    );
    assert!(
        !checkpoint["incremental"]["file"]
            .as_str()
            .unwrap_or("")
            .is_empty()
    );
}

/// Every column type through INSERT, UPDATE and DELETE in the binlog prints exactly as the same
/// rows print in full sync (testdata/formats/default/full_sync.jsonl's table).
#[tokio::test]
async fn every_column_type_streams_as_full_sync_prints_it() {
    let db = common::unique("inc_types");
    let mut conn = common::mariadb().await;
    let script = std::fs::read_to_string("testdata/formats/all_types.sql")
        .expect("all_types.sql")
        .replace("DB__", &db);
    let (create, insert) = script
        .split_once("INSERT INTO")
        .expect("the script creates then inserts");
    common::run_sql(&mut conn, create).await;
    let topic = common::unique("inc_types");
    let project = mariadb_project(
        "inc_types",
        ", sync = 'schema, full, incremental'",
        &format!("SYNC TABLE {db}.all_types TO TOPIC '{topic}';"),
    );
    project.catch_up();
    common::run_sql(
        &mut conn,
        &format!("SET SESSION sql_mode = '';\nINSERT INTO{insert}"),
    )
    .await;
    common::run_sql(
        &mut conn,
        &format!(
            "UPDATE {db}.all_types SET c_varchar = 'changed';
DELETE FROM {db}.all_types"
        ),
    )
    .await;
    project.catch_up();
    let records = parse(&common::consume_all(&topic, 12, Duration::from_secs(60)));

    // The same rows through full sync, for comparison.
    let full_topic = common::unique("inc_types_full");
    let full = mariadb_project(
        "inc_types_full",
        ", sync = 'schema, full'",
        &format!("SYNC TABLE {db}.all_types TO TOPIC '{full_topic}';"),
    );
    common::run_sql(
        &mut conn,
        &format!("SET SESSION sql_mode = '';\nINSERT INTO{insert}"),
    )
    .await;
    full.catch_up();
    let rows = parse(&common::consume_all(
        &full_topic,
        4,
        Duration::from_secs(60),
    ));
    assert_eq!(rows.len(), 4);
    for (_, key, row) in &rows {
        let of = |kind: &str| {
            records
                .iter()
                .find(|(k, id, _)| k == kind && id == key)
                .map(|(_, _, v)| v.clone())
                .unwrap_or_else(|| panic!("no {kind} for {key:?}"))
        };
        let (insert, update, delete) = (of("INSERT"), of("UPDATE"), of("DELETE"));
        assert_eq!(insert["postStruct"], row["postStruct"], "INSERT of {key:?}");
        assert_eq!(
            update["prevStruct"], row["postStruct"],
            "UPDATE before image of {key:?}"
        );
        let mut changed = row["postStruct"].clone();
        changed["c_varchar"] = Value::from("changed");
        assert_eq!(
            update["postStruct"], changed,
            "UPDATE after image of {key:?}"
        );
        assert_eq!(
            delete["prevStruct"], changed,
            "DELETE before image of {key:?}"
        );
    }
}

/// Several DDLs between the checkpoint and a restart: each row decodes with the columns it was
/// written with (the schema history applies the DDL text in stream order).
#[tokio::test]
async fn a_restart_replays_several_ddls_with_the_schema_of_each_row() {
    let db = common::unique("inc_history");
    let mut conn = common::mariadb().await;
    common::run_sql(
        &mut conn,
        &format!("CREATE DATABASE {db}; CREATE TABLE {db}.t (id INT PRIMARY KEY, a VARCHAR(5))"),
    )
    .await;
    let topic = common::unique("inc_history");
    let project = mariadb_project(
        "inc_history",
        ", sync = 'schema, full, incremental', incremental = 'dml, ddl'",
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}' WITH (partitioning = 'one');"),
    );
    project.catch_up();
    common::run_sql(
        &mut conn,
        &format!(
            "INSERT INTO {db}.t VALUES (1, 'x');
ALTER TABLE {db}.t ADD COLUMN b INT;
INSERT INTO {db}.t VALUES (2, 'y', 2);
ALTER TABLE {db}.t DROP COLUMN a;
INSERT INTO {db}.t VALUES (3, 3);
ALTER TABLE {db}.t ADD COLUMN c VARCHAR(5) FIRST;
INSERT INTO {db}.t VALUES ('c', 4, 4)"
        ),
    )
    .await;
    project.catch_up();
    let records = parse(&common::consume_all(&topic, 7, Duration::from_secs(60)));
    let inserts: Vec<String> = records
        .iter()
        .filter(|(kind, _, _)| kind == "INSERT")
        .map(|(_, _, v)| v["postStruct"].to_string())
        .collect();
    assert_eq!(
        inserts,
        [
            r#"{"a":"x","id":1}"#,
            r#"{"a":"y","b":2,"id":2}"#,
            r#"{"b":3,"id":3}"#,
            r#"{"b":4,"c":"c","id":4}"#,
        ]
    );
    let ddls = records.iter().filter(|(kind, _, _)| kind == "DDL").count();
    assert_eq!(
        ddls, 3,
        "one DDL record each on the table's single partition"
    );
}

#[tokio::test]
async fn a_checkpoint_the_server_purged_asks_for_a_new_full_sync() {
    let db = common::unique("inc_purged");
    let mut conn = common::mariadb().await;
    common::run_sql(
        &mut conn,
        &format!("CREATE DATABASE {db}; CREATE TABLE {db}.t (id INT PRIMARY KEY)"),
    )
    .await;
    let project = mariadb_project(
        "inc_purged",
        ", sync = 'schema, full, incremental'",
        &format!(
            "SYNC TABLE {db}.t TO TOPIC '{}';",
            common::unique("inc_purged")
        ),
    );
    project.catch_up();
    // A checkpoint naming a binlog file the server no longer has.
    let path = project.state.join("checkpoint.json");
    let mut checkpoint: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    checkpoint["incremental"]["file"] = Value::from("mysql-bin.000000");
    std::fs::write(&path, serde_json::to_vec(&checkpoint).unwrap()).unwrap();
    let mut args = project.args("run", &[]);
    args.push("--until-caught-up".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome = common::tributary(&args);
    assert_eq!(outcome.code, 2, "{}{}", outcome.stdout, outcome.stderr);
    assert!(
        outcome.stderr.contains("mysql-bin.000000:")
            && outcome.stderr.contains("is no longer on the server")
            && outcome.stderr.contains("tributary reset"),
        "{}",
        outcome.stderr
    );
}

#[tokio::test]
async fn an_idle_stream_sends_heartbeats_in_formats_that_have_them() {
    let (db, topic, project, mut conn) = streamed_table(
        "inc_heartbeat",
        "id INT PRIMARY KEY",
        ", sync = 'schema, full, incremental', format = 'dataworks_v2'",
    )
    .await;
    conn.query_drop(format!("CREATE TABLE {db}.busy (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    let mut child = project.spawn(&[]);
    // Nothing for the synced table for twice the heartbeat interval (5 s) — while the binlog is
    // busy with another table, so the reader never waits. (The run may still be starting when
    // `wait_until_streaming` returns: its checkpoint already streamed.)
    project.wait_until_streaming(&mut child);
    let quiet_until = std::time::Instant::now() + Duration::from_secs(12);
    let mut id = 0;
    while std::time::Instant::now() < quiet_until {
        id += 1;
        conn.query_drop(format!("INSERT INTO {db}.busy VALUES ({id})"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", project.log());
    let messages = common::consume_with_heartbeats(&topic, 3, Duration::from_secs(30));
    let heartbeats: Vec<(i32, Value)> = messages
        .iter()
        .map(|m| {
            (
                m.partition,
                serde_json::from_str::<Value>(&m.payload).unwrap(),
            )
        })
        .filter(|(_, v)| v["payload"]["op"] == "HEARTBEAT")
        .collect();
    let partitions: std::collections::BTreeSet<i32> = heartbeats.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        partitions.len(),
        3,
        "a heartbeat on every partition: {heartbeats:?}\n{}",
        project.log()
    );
    assert!(heartbeats.iter().all(|(_, v)| {
        v["version"] == "2.0"
            && v["payload"]["timestamp"]["eventTime"]
                .as_u64()
                .is_some_and(|t| t > 1_700_000_000_000)
    }));
}

#[tokio::test]
async fn savepoints_and_rollbacks_send_only_what_committed() {
    let (db, topic, project, mut conn) = streamed_table(
        "inc_savepoint",
        "id INT PRIMARY KEY",
        ", sync = 'schema, full, incremental'",
    )
    .await;
    common::run_sql(
        &mut conn,
        &format!(
            "BEGIN;
INSERT INTO {db}.t VALUES (1);
SAVEPOINT before_two;
INSERT INTO {db}.t VALUES (2);
ROLLBACK TO SAVEPOINT before_two;
INSERT INTO {db}.t VALUES (3);
COMMIT;
BEGIN;
INSERT INTO {db}.t VALUES (4);
ROLLBACK"
        ),
    )
    .await;
    project.catch_up();
    let messages = common::consume_all(&topic, 2, Duration::from_secs(30));
    let mut keys: Vec<&str> = messages.iter().filter_map(|m| m.key.as_deref()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["{\"id\":1}", "{\"id\":3}"],
        "only what committed, once"
    );
}

#[tokio::test]
async fn binlog_rotation_mid_stream_keeps_the_file_name_and_resumes() {
    let (db, topic, project, mut conn) = streamed_table(
        "inc_rotate",
        "id INT PRIMARY KEY, v INT",
        ", sync = 'schema, full, incremental'",
    )
    .await;
    common::run_sql(
        &mut conn,
        &format!("INSERT INTO {db}.t VALUES (1, 0);\nFLUSH BINARY LOGS;\nINSERT INTO {db}.t VALUES (2, 0)"),
    )
    .await;
    project.catch_up();
    let status = project.status();
    let file = status["incremental"]["file"]
        .as_str()
        .expect("a position")
        .to_string();
    let row: mysql_async::Row = conn
        .query_first("SHOW BINARY LOGS")
        .await
        .expect("SHOW BINARY LOGS")
        .expect("a binlog");
    let first: String = row.get(0).expect("file name");
    assert_eq!(
        file.len(),
        first.len(),
        "the position names a whole binlog file after the rotation: {file}"
    );
    let logs: Vec<String> = conn
        .query::<mysql_async::Row, _>("SHOW BINARY LOGS")
        .await
        .expect("logs")
        .into_iter()
        .filter_map(|row| row.get(0))
        .collect();
    assert!(
        logs.contains(&file),
        "{file} is one of the server's binlogs: {logs:?}"
    );

    // The next run starts in the new file.
    common::run_sql(&mut conn, &format!("UPDATE {db}.t SET v = 1 WHERE id = 2")).await;
    project.catch_up();
    let messages = common::consume_all(&topic, 3, Duration::from_secs(30));
    let mut kinds: Vec<String> = parse(&messages).into_iter().map(|(k, _, _)| k).collect();
    kinds.sort();
    assert_eq!(kinds, ["INSERT", "INSERT", "UPDATE"], "{messages:?}");
}

/// A table created, then altered twice, all after the checkpoint: the restart that replays them
/// decodes each row with the columns the table had when it was written, not today's.
#[tokio::test]
async fn a_table_created_and_altered_after_the_checkpoint_replays_with_its_own_columns() {
    let db = common::unique("inc_created");
    let mut conn = common::mariadb().await;
    common::run_sql(
        &mut conn,
        &format!("CREATE DATABASE {db}; CREATE TABLE {db}.base (id INT PRIMARY KEY)"),
    )
    .await;
    let prefix = common::unique("inc_created");
    let project = mariadb_project(
        "inc_created",
        ", sync = 'schema, full, incremental', incremental = 'dml, ddl'",
        &format!("SYNC TABLE {db}.* TO TOPIC '{prefix}_${{table}}' WITH (partitioning = 'one');"),
    );
    project.catch_up();
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE TABLE {db}.late (id INT NOT NULL, v VARCHAR(10), PRIMARY KEY (id));
INSERT INTO {db}.late VALUES (1, 'a');
ALTER TABLE {db}.late ADD COLUMN w INT AFTER id;
INSERT INTO {db}.late VALUES (2, 5, 'b');
ALTER TABLE {db}.late DROP COLUMN v;
INSERT INTO {db}.late VALUES (3, 7)"
        ),
    )
    .await;
    project.catch_up();

    let late = parse(&common::consume_all(
        &format!("{prefix}_late"),
        6,
        Duration::from_secs(60),
    ));
    let rows: Vec<Value> = late
        .iter()
        .filter(|(kind, _, _)| kind == "INSERT")
        .map(|(_, _, v)| v["postStruct"].clone())
        .collect();
    assert_eq!(
        rows,
        [
            serde_json::json!({"id": 1, "v": "a"}),
            serde_json::json!({"id": 2, "w": 5, "v": "b"}),
            serde_json::json!({"id": 3, "w": 7}),
        ],
        "{late:#?}"
    );
}
