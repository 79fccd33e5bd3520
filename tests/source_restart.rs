//! The source restarts while a `run` streams (a maintenance restart): the run rides it out —
//! it reconnects from its checkpoint and keeps streaming — instead of ending as if the stream
//! were finished. Its own test binary: it stops the shared MariaDB, so nothing else may run
//! beside it.

mod common;

use std::process::Command;
use std::time::Duration;

use mysql_async::prelude::*;

/// Starts MariaDB again however the test ends.
struct RestartMariaDb;

impl Drop for RestartMariaDb {
    fn drop(&mut self) {
        common::service("up", "mariadb");
    }
}

async fn insert(db: &str, ids: std::ops::RangeInclusive<u32>) {
    let mut conn = common::mariadb().await;
    let values: Vec<String> = ids.map(|i| format!("({i}, 'v')")).collect();
    conn.query_drop(format!("INSERT INTO {db}.t VALUES {}", values.join(", ")))
        .await
        .expect("insert");
}

#[tokio::test]
async fn a_source_restart_while_streaming_is_ridden_out() {
    common::require_kafka();
    let mut conn = common::mariadb().await;
    let (db, topic) =
        common::new_table(&mut conn, "src_restart", "id INT PRIMARY KEY, v VARCHAR(8)").await;
    drop(conn);
    let project = common::Project::new(
        "src_restart",
        &common::mariadb_source("src_restart"),
        "sync = 'schema, incremental', topic_partitions = 1",
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    let mut run = project.spawn(&[]);
    project.wait_until_streaming(&mut run);
    insert(&db, 1..=50).await;
    assert_eq!(
        common::consume_all(&topic, 50, Duration::from_secs(60)).len(),
        50
    );

    {
        let _restart = RestartMariaDb;
        common::service("down", "mariadb");
        // Down for 10 s: longer than the first reconnect attempts.
        std::thread::sleep(Duration::from_secs(10));
    }
    assert!(
        run.try_wait().expect("wait").is_none(),
        "the run keeps going while the source restarts"
    );
    insert(&db, 51..=100).await;
    let messages = common::consume_all(&topic, 100, Duration::from_secs(90));
    // Each change — the run was idle when the source went away, so nothing was in flight to repeat.
    let mut keys: Vec<&str> = messages.iter().filter_map(|m| m.key.as_deref()).collect();
    assert_eq!(keys.len(), 100, "each change once");
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 100, "the changes after the restart arrive");
    assert!(run.try_wait().expect("wait").is_none(), "still streaming");

    Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert_eq!(run.wait().expect("wait").code(), Some(0));
}
