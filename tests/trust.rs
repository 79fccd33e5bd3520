//! Every committed row arrives with its true values, or the run stops and says why (issue 13):
//! statement-logged row changes, XA transactions, binlog settings, schema drift — against the
//! real MariaDB and Kafka.

mod common;

use std::time::Duration;

use mysql_async::prelude::*;

/// A project streaming `{db}.t` (and nothing else of `db`), caught up once.
async fn streamed(name: &str) -> (String, String, common::Project, mysql_async::Conn) {
    common::streamed_table(name, "id INT PRIMARY KEY, v VARCHAR(20)", |syncs| {
        common::Project::new(
            name,
            &common::mariadb_source(name),
            "sync = 'schema, incremental', topic_partitions = 1",
            syncs,
        )
    })
    .await
}

/// The checkpoint's binlog offset, from `status --json`.
fn checkpoint_offset(project: &common::Project) -> u64 {
    project.status()["incremental"]["pos"]
        .as_u64()
        .expect("a position")
}

#[tokio::test]
async fn a_statement_logged_change_to_a_synced_table_stops_the_run_before_it() {
    common::require_kafka();
    let (db, topic, project, mut conn) = streamed("stmt_synced").await;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE TABLE {db}.other (id INT PRIMARY KEY);
INSERT INTO {db}.t VALUES (1, 'row');
SET SESSION binlog_format = 'STATEMENT';
INSERT INTO {db}.other VALUES (1);
INSERT INTO {db}.t VALUES (2, 'statement');
SET SESSION binlog_format = 'ROW'"
        ),
    )
    .await;
    let before: mysql_async::Row = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .expect("status")
        .expect("a binlog");
    let end: u64 = before.get(1).expect("position");
    let run = project.run(&["--until-caught-up"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("logged as text")
            && run
                .stderr
                .contains(&format!("INSERT INTO {db}.t VALUES (2"))
            && run.stderr.contains("binlog_format"),
        "the error names the statement and the setting: {}",
        run.stderr
    );
    // The row before it arrived, and the checkpoint stays before the statement (the statement
    // into the unsynced table was passed over without a word).
    let messages = common::consume_all(&topic, 1, Duration::from_secs(30));
    assert_eq!(messages.len(), 1, "{:?}", messages.len());
    assert!(messages[0].payload.contains("\"row\""));
    assert!(checkpoint_offset(&project) < end);
    // Again on a rerun: never skipped.
    assert_eq!(project.run(&["--until-caught-up"]).code, 2);
}

#[tokio::test]
async fn a_statement_logged_change_to_another_table_is_passed_over() {
    common::require_kafka();
    let (db, topic, project, mut conn) = streamed("stmt_other").await;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE TABLE {db}.other (id INT PRIMARY KEY);
SET SESSION binlog_format = 'STATEMENT';
INSERT INTO {db}.other VALUES (1);
UPDATE {db}.other SET id = 2;
SET SESSION binlog_format = 'ROW';
INSERT INTO {db}.t VALUES (1, 'after')"
        ),
    )
    .await;
    project.catch_up();
    let messages = common::consume_all(&topic, 1, Duration::from_secs(30));
    assert_eq!(messages.len(), 1);
    assert!(messages[0].payload.contains("\"after\""));
}

#[tokio::test]
async fn xa_transactions_send_their_rows_at_the_commit_in_commit_order() {
    common::require_kafka();
    let (db, topic, project, mut conn) = streamed("xa_order").await;
    let mut other = common::mariadb().await;
    // Prepared XA transactions outlive their connection: names of this run's own.
    let [u1, x1, x2, x3] = ["u1", "x1", "x2", "x3"].map(common::unique);
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE TABLE {db}.unsynced (id INT PRIMARY KEY);
XA START '{u1}';
INSERT INTO {db}.unsynced VALUES (1);
XA END '{u1}';
XA PREPARE '{u1}';
XA COMMIT '{u1}';
XA START '{x1}';
INSERT INTO {db}.t VALUES (1, 'xa'), (2, 'xa');
XA END '{x1}';
XA PREPARE '{x1}'"
        ),
    )
    .await;
    // Committed after the XA was prepared, before it was committed: it goes first.
    other
        .query_drop(format!("INSERT INTO {db}.t VALUES (3, 'plain')"))
        .await
        .expect("insert");
    common::run_sql(
        &mut conn,
        &format!(
            "XA COMMIT '{x1}';
XA START '{x2}';
INSERT INTO {db}.t VALUES (4, 'rolled back');
XA END '{x2}';
XA PREPARE '{x2}';
XA ROLLBACK '{x2}';
XA START '{x3}';
INSERT INTO {db}.t VALUES (5, 'one phase');
XA END '{x3}';
XA COMMIT '{x3}' ONE PHASE"
        ),
    )
    .await;
    project.catch_up();
    let messages = common::consume_all(&topic, 4, Duration::from_secs(30));
    assert_eq!(
        common::numeric_keys(&messages),
        [3, 1, 2, 5],
        "commit order; the rollback sends nothing"
    );
}

#[tokio::test]
async fn a_restart_between_xa_prepare_and_commit_loses_nothing() {
    common::require_kafka();
    let (db, topic, project, mut conn) = streamed("xa_restart").await;
    // Prepared XA transactions outlive their connection: a name of this run's own.
    let xid = common::unique("r");
    common::run_sql(
        &mut conn,
        &format!(
            "XA START '{xid}';
INSERT INTO {db}.t VALUES (10, 'prepared'), (11, 'prepared');
XA END '{xid}';
XA PREPARE '{xid}'"
        ),
    )
    .await;
    // The run ends with the transaction prepared: it remembers where its rows are.
    project.catch_up();
    let checkpoint: serde_json::Value =
        serde_json::from_slice(&std::fs::read(project.checkpoint_path()).expect("checkpoint"))
            .expect("JSON");
    assert_eq!(
        checkpoint["prepared_xa"].as_object().map(|xa| xa.len()),
        Some(1),
        "{checkpoint}"
    );
    assert!(
        common::consume_all(&topic, 0, Duration::from_secs(3)).is_empty(),
        "nothing is sent before the commit"
    );
    common::run_sql(&mut conn, &format!("XA COMMIT '{xid}'")).await;
    project.catch_up();
    let messages = common::consume_all(&topic, 2, Duration::from_secs(30));
    assert_eq!(common::numeric_keys(&messages), [10, 11]);
    let checkpoint: serde_json::Value =
        serde_json::from_slice(&std::fs::read(project.checkpoint_path()).expect("checkpoint"))
            .expect("JSON");
    assert!(checkpoint.get("prepared_xa").is_none(), "{checkpoint}");
}

/// Rewrites the schema history's columns of `{db}.t` in the checkpoint.
fn rewrite_history(project: &common::Project, db: &str, edit: impl Fn(&mut serde_json::Value)) {
    let path = project.checkpoint_path();
    let mut checkpoint: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("checkpoint")).expect("JSON");
    let schemas = checkpoint["schemas"]
        .as_array_mut()
        .expect("a schema history");
    let table = schemas
        .iter_mut()
        .find(|t| t["database"] == db && t["name"] == "t")
        .expect("the table in the history");
    edit(&mut table["columns"]);
    std::fs::write(&path, serde_json::to_vec(&checkpoint).expect("JSON")).expect("write");
}

#[tokio::test]
async fn a_schema_history_that_disagrees_with_the_binlog_stops_the_run() {
    common::require_kafka();
    for (name, edit, says) in [
        (
            "drift_type",
            (|columns: &mut serde_json::Value| columns[1][1] = "int(11)".into())
                as fn(&mut serde_json::Value),
            "column `v` holds Text values in the binlog, Integer in the schema history",
        ),
        (
            "drift_name",
            |columns: &mut serde_json::Value| columns[1][0] = "w".into(),
            "column 2 is `v` in the binlog, `w` in the schema history",
        ),
    ] {
        let (db, topic, project, mut conn) = streamed(name).await;
        rewrite_history(&project, &db, edit);
        conn.query_drop(format!("INSERT INTO {db}.t VALUES (1, 'x')"))
            .await
            .expect("insert");
        let run = project.run(&["--until-caught-up"]);
        assert_eq!(run.code, 2, "{name}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains(says) && run.stderr.contains("schema history is wrong"),
            "{name}: {}",
            run.stderr
        );
        assert!(
            common::consume_all(&topic, 0, Duration::from_secs(2)).is_empty(),
            "{name}: nothing decoded with the wrong columns is sent"
        );
    }
}

#[tokio::test]
async fn run_refuses_a_server_that_logs_statements_before_it_writes_anything() {
    common::require_kafka();
    let server = common::PrivateMariaDb::start(&["binlog_format=STATEMENT"]).await;
    let mut conn = server.conn().await;
    let (db, topic) = common::new_table(&mut conn, "stmt_global", "id INT PRIMARY KEY").await;
    let project = common::Project::new(
        "stmt_global",
        &server.source_options(),
        "sync = 'schema, full, incremental'",
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    let run = project.run(&["--until-caught-up"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("binlog_format is STATEMENT")
            && run.stderr.contains("nothing was written"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn a_ddl_the_planner_refuses_while_streaming_stops_with_exit_2_naming_it() {
    common::require_kafka();
    let (db, _topic, project, mut conn) = streamed("ddl_refused").await;
    let mut run = project.spawn(&[]);
    project.wait_until_streaming(&mut run);
    common::run_sql(
        &mut conn,
        &format!(
            "ALTER TABLE {db}.t ADD COLUMN a VARCHAR(10) CHARACTER SET armscii8;
INSERT INTO {db}.t VALUES (1, 'x', 'y')"
        ),
    )
    .await;
    let status = run.wait().expect("wait");
    // The run was streaming: exit 2, not the "nothing was written" of a project error.
    let log = project.log();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(
        log.contains("after the DDL") && log.contains("armscii8"),
        "{log}"
    );
}

/// DDL on a table the project does not sync still moves the schema history: renamed into a SYNC
/// pattern later, the table's rows decode with the columns it had when they were written, not
/// with the columns the run started with nor today's.
#[tokio::test]
async fn a_table_renamed_into_a_pattern_brings_the_columns_its_ddl_gave_it() {
    common::require_kafka();
    let mut conn = common::mariadb().await;
    let (db, topic) = common::new_table(&mut conn, "rename_in", "id INT PRIMARY KEY").await;
    common::run_sql(
        &mut conn,
        &format!("CREATE TABLE {db}.staging (id INT PRIMARY KEY, a VARCHAR(10))"),
    )
    .await;
    let project = common::Project::new(
        "rename_in",
        &common::mariadb_source("rename_in"),
        "sync = 'schema, incremental', incremental = 'dml', topic_partitions = 1",
        &format!("SYNC TABLE {db}.live_% TO TOPIC '{topic}';"),
    );
    project.catch_up();
    // All of it while the project is stopped: the run reads it later, with today's catalog
    // already two DDL statements ahead of the first row.
    common::run_sql(
        &mut conn,
        &format!(
            "ALTER TABLE {db}.staging ADD COLUMN b INT;
INSERT INTO {db}.staging VALUES (1, 'before', 10);
RENAME TABLE {db}.staging TO {db}.live_orders;
INSERT INTO {db}.live_orders VALUES (2, 'renamed', 20);
ALTER TABLE {db}.live_orders ADD COLUMN c VARCHAR(10) FIRST;
INSERT INTO {db}.live_orders VALUES ('third', 3, 'later', 30)"
        ),
    )
    .await;
    let run = project.run(&["--until-caught-up"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let messages = common::consume_all(&topic, 2, Duration::from_secs(30));
    let rows: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            serde_json::from_str::<serde_json::Value>(&m.payload).expect("json")["postStruct"]
                .clone()
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            serde_json::json!({"id": 2, "a": "renamed", "b": 20}),
            serde_json::json!({"c": "third", "id": 3, "a": "later", "b": 30}),
        ],
        "{messages:?}"
    );
}

/// OceanBase's default `time_zone` is +08:00: TIMESTAMP (an instant) and DATETIME (a wall-clock
/// value) must read the same in snapshot and stream whatever the server's zone.
#[tokio::test]
async fn timestamps_read_the_same_in_snapshot_and_stream_under_a_non_utc_server_zone() {
    common::require_kafka();
    let server = common::PrivateMariaDb::start(&["default_time_zone='+08:00'"]).await;
    let mut conn = server.conn().await;
    let (db, topic) = common::new_table(
        &mut conn,
        "tz",
        "id INT PRIMARY KEY, ts TIMESTAMP(3) NULL, dt DATETIME(3) NULL",
    )
    .await;
    let row = "'2024-05-01 10:00:00.123', '2024-05-01 10:00:00.123'";
    conn.query_drop(format!("INSERT INTO {db}.t VALUES (1, {row})"))
        .await
        .expect("insert");
    let project = common::Project::new(
        "tz",
        &server.source_options(),
        "sync = 'schema, full, incremental', topic_partitions = 1",
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    project.catch_up();
    conn.query_drop(format!("INSERT INTO {db}.t VALUES (2, {row})"))
        .await
        .expect("insert");
    project.catch_up();
    let messages = common::consume_all(&topic, 2, Duration::from_secs(30));
    assert_eq!(messages.len(), 2);
    let values: Vec<(serde_json::Value, serde_json::Value)> = messages
        .iter()
        .map(|m| {
            let record: serde_json::Value = serde_json::from_str(&m.payload).expect("JSON");
            let after = &record["postStruct"];
            (after["ts"].clone(), after["dt"].clone())
        })
        .collect();
    assert_eq!(values[0], values[1], "snapshot and stream agree");
    // The TIMESTAMP was written at +08:00: the instant is 02:00 UTC (the default format prints
    // it as epoch seconds); the DATETIME is as written.
    assert_eq!(
        values[0],
        (
            serde_json::Value::from("1714528800.123"),
            serde_json::Value::from("2024-05-01 10:00:00.123")
        ),
        "{values:?}"
    );
}

/// Without a `timezone` option the source's zone is the server's (+08:00 here): row filters
/// read TIMESTAMP values as the server's sessions do (the server is the oracle), and a
/// `start_timestamp` date-time is a wall-clock time in that zone.
#[tokio::test]
async fn filters_and_start_timestamp_read_timestamps_in_the_server_zone() {
    common::require_kafka();
    let server = common::PrivateMariaDb::start(&["default_time_zone='+08:00'"]).await;
    let mut conn = server.conn().await;
    let filters = [
        "ts >= '2024-05-01 08:00:00'",
        "HOUR(ts) < 8",
        "DATE(ts) = '2024-05-01'",
        "ts = dt",
        "ts BETWEEN '2024-04-30 23:00:00' AND '2024-05-01 09:00:00'",
    ];
    let db = common::unique("tz_filter");
    conn.query_drop(format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    // Around midnight and 08:00 at +08:00: where UTC and the server's zone part ways.
    let rows = |base: u32| {
        [
            "2024-04-30 23:30:00",
            "2024-05-01 00:30:00",
            "2024-05-01 07:59:59",
            "2024-05-01 08:00:00",
            "2024-05-01 08:30:00",
            "2024-05-02 00:00:00",
        ]
        .iter()
        .enumerate()
        .map(|(i, t)| format!("({}, '{t}', '{t}')", base + i as u32 + 1))
        .collect::<Vec<_>>()
        .join(", ")
    };
    let mut syncs = String::new();
    let mut topics = Vec::new();
    for (i, filter) in filters.iter().enumerate() {
        common::run_sql(
            &mut conn,
            &format!(
                "CREATE TABLE {db}.t{i} (id INT PRIMARY KEY, ts TIMESTAMP NULL, dt DATETIME NULL);
INSERT INTO {db}.t{i} VALUES {}",
                rows(0)
            ),
        )
        .await;
        let topic = common::unique("tz_filter");
        syncs.push_str(&format!(
            "SYNC TABLE {db}.t{i} TO TOPIC '{topic}' WHERE {filter};\n"
        ));
        topics.push(topic);
    }
    let project = common::Project::new(
        "tz_filter",
        &server.source_options(),
        "sync = 'schema, full, incremental', topic_partitions = 1",
        &syncs,
    );
    project.catch_up();
    for i in 0..filters.len() {
        conn.query_drop(format!("INSERT INTO {db}.t{i} VALUES {}", rows(100)))
            .await
            .unwrap();
    }
    project.catch_up();
    for (i, filter) in filters.iter().enumerate() {
        let expected: Vec<u32> = conn
            .query(format!(
                "SELECT id FROM {db}.t{i} WHERE {filter} ORDER BY id"
            ))
            .await
            .unwrap();
        assert!(expected.iter().any(|id| *id > 100), "{filter}");
        let mut sent = common::numeric_keys(&common::consume_all(
            &topics[i],
            expected.len(),
            Duration::from_secs(30),
        ));
        sent.sort();
        assert_eq!(
            sent, expected,
            "WHERE {filter}: snapshot and stream, as the server"
        );
    }

    // start_timestamp: two transactions an hour apart (their binlog times set by the session),
    // the start between them written as the server's wall clock.
    let (table_db, topic) = common::new_table(&mut conn, "tz_start", "id INT PRIMARY KEY").await;
    let now: i64 = conn
        .query_first("SELECT UNIX_TIMESTAMP()")
        .await
        .unwrap()
        .unwrap();
    let start: String = conn
        .exec_first(
            "SELECT DATE_FORMAT(FROM_UNIXTIME(?), '%Y-%m-%d %H:%i:%s')",
            (now + 5400,),
        )
        .await
        .unwrap()
        .unwrap();
    let project = common::Project::new(
        "tz_start",
        &server.source_options(),
        &format!("sync = 'schema, incremental', topic_partitions = 1, start_timestamp = '{start}'"),
        &format!("SYNC TABLE {table_db}.t TO TOPIC '{topic}';"),
    );
    common::run_sql(
        &mut conn,
        &format!(
            "SET timestamp = {}; INSERT INTO {table_db}.t VALUES (1);
SET timestamp = {}; INSERT INTO {table_db}.t VALUES (2);
SET timestamp = DEFAULT",
            now + 3600,
            now + 7200
        ),
    )
    .await;
    let run = project.run(&["--until-caught-up"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let sent = common::numeric_keys(&common::consume_all(&topic, 1, Duration::from_secs(30)));
    assert_eq!(sent, vec![2], "only the transaction after {start} (+08:00)");
}
