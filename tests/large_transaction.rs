//! A transaction far larger than memory should hold (design.md: memory is bounded by
//! configuration, never by transaction size): its rows are sent as they are read, and the
//! checkpoint moves inside it. `kill -9` in the middle, then a rerun, resumes after the row
//! events already delivered — not at the transaction's start, and with nothing missing.

mod common;

use std::time::{Duration, Instant};

use mysql_async::prelude::*;

const ROWS: u32 = 200_000;

/// A streaming project on a new table, and one `INSERT … SELECT` of [`ROWS`] rows in a single
/// transaction, `kill -9`ed once its checkpoint lies inside that transaction; then the rerun.
/// Returns the ids of the topic's messages in order (one partition) and the row events the
/// checkpoint had recorded at the kill.
async fn kill_inside_a_large_transaction(name: &str, options: &str) -> (Vec<u32>, u64) {
    common::require_kafka();
    let mut conn = common::mariadb().await;
    let (db, topic) =
        common::new_table(&mut conn, name, "id INT PRIMARY KEY, v VARCHAR(120)").await;
    let project = common::Project::new(
        name,
        &common::mariadb_source(name),
        &format!("sync = 'schema, incremental', topic_partitions = 1{options}"),
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    let mut run = project.spawn(&[]);
    project.wait_until_streaming(&mut run);
    conn.query_drop(format!(
        "INSERT INTO {db}.t SELECT seq, REPEAT('x', 100) FROM seq.seq_1_to_{ROWS}"
    ))
    .await
    .expect("one large transaction");

    let deadline = Instant::now() + Duration::from_secs(120);
    let row_events = loop {
        let checkpoint: serde_json::Value = std::fs::read(project.checkpoint_path())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        if let Some(n) = checkpoint["incremental"]["row_events"].as_u64() {
            break n;
        }
        if run.try_wait().expect("wait").is_some() {
            panic!(
                "the run ended before its checkpoint moved inside the transaction:\n{}",
                project.log()
            );
        }
        if Instant::now() >= deadline {
            let _ = run.kill();
            panic!(
                "the checkpoint never moved inside the transaction: {checkpoint}\n{}",
                project.log()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    run.kill().expect("kill -9");
    run.wait().expect("reap");

    project.catch_up();
    let messages = common::consume_all(&topic, ROWS as usize, Duration::from_secs(180));
    (common::numeric_keys(&messages), row_events)
}

/// The ids in the topic are `1..=a` from the first run, then `b..=ROWS` from the rerun: where
/// the rerun started; `None` when the ids never go back (the kill came while everything sent
/// was acknowledged, and the rerun went on from exactly there).
fn rerun_start(ids: &[u32]) -> Option<(u32, u32)> {
    let drops: Vec<usize> = (1..ids.len()).filter(|&i| ids[i] <= ids[i - 1]).collect();
    assert!(
        drops.len() <= 1,
        "the ids go back more than once: {drops:?}"
    );
    let all: std::collections::BTreeSet<u32> = ids.iter().copied().collect();
    assert_eq!(
        all.len(),
        ROWS as usize,
        "every row of the transaction arrives"
    );
    assert_eq!(all.first(), Some(&1));
    assert_eq!(all.last(), Some(&ROWS));
    drops.first().map(|&i| (ids[i - 1], ids[i]))
}

#[tokio::test]
async fn kill_9_inside_a_large_transaction_resumes_inside_it() {
    let (ids, row_events) = kill_inside_a_large_transaction("large_tx", "").await;
    assert!(row_events > 0);
    // Never going back, with every row arrived once, is a rerun that went on from exactly the
    // checkpoint: it cannot have started at the transaction's start, as the first run had
    // already delivered rows of it (`row_events` > 0).
    let Some((first_run_last, rerun_first)) = rerun_start(&ids) else {
        assert_eq!(ids.len(), ROWS as usize);
        return;
    };
    assert!(
        rerun_first > 1,
        "the rerun resumed inside the transaction (checkpoint at {row_events} row events), not \
         at its start"
    );
    assert!(
        rerun_first <= first_run_last + 1,
        "no row between the runs is missing: first run ended at {first_run_last}, the rerun \
         started at {rerun_first}"
    );
}

#[tokio::test]
async fn kill_9_inside_a_large_transaction_with_exactly_once_sends_each_row_once() {
    let (ids, row_events) =
        kill_inside_a_large_transaction("large_tx_eo", ", exactly_once = true").await;
    assert!(row_events > 0);
    rerun_start(&ids);
    assert_eq!(
        ids.len(),
        ROWS as usize,
        "read committed, each row of the transaction arrives once"
    );
}
