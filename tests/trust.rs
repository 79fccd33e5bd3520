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
