//! Online snapshots (issue 15): a table added to a running project, `tributary snapshot` with
//! and without `--where`, a kill in the middle, and a snapshot taken while four writers change
//! the table — against the real MariaDB and Kafka. Replaying a topic per key must give the
//! table's final state, and no key may receive a snapshot row older than a change already sent.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use mysql_async::prelude::*;
use serde_json::Value;

/// One message of the default format: the key's id, the kind, the row (`None` for DELETE),
/// and whether it came from a snapshot (no transaction position).
struct Record {
    id: u32,
    kind: String,
    row: Option<Value>,
    snapshot: bool,
}

fn records(messages: &[common::Consumed]) -> Vec<Record> {
    messages
        .iter()
        .map(|m| {
            let value: Value = serde_json::from_str(&m.payload).expect("JSON");
            let kind = value["recordType"].as_str().unwrap_or_default().to_string();
            let row = match kind.as_str() {
                "DELETE" => None,
                _ => Some(value["postStruct"].clone()),
            };
            let image = if kind == "DELETE" {
                &value["prevStruct"]
            } else {
                &value["postStruct"]
            };
            Record {
                id: image["id"].as_u64().expect("an id") as u32,
                snapshot: value["allMetaData"]["transId"].is_null(),
                kind,
                row,
            }
        })
        .collect()
}

/// The rows a consumer holds after applying `records` in order, by id.
fn replay(records: &[Record]) -> BTreeMap<u32, Value> {
    let mut state = BTreeMap::new();
    for r in records {
        match &r.row {
            Some(row) => state.insert(r.id, row.clone()),
            None => state.remove(&r.id),
        };
    }
    state
}

async fn table_state(conn: &mut mysql_async::Conn, table: &str) -> BTreeMap<u32, i64> {
    let rows: Vec<(u32, i64)> = conn
        .query(format!("SELECT id, v FROM {table} ORDER BY id"))
        .await
        .expect("select");
    rows.into_iter().collect()
}

fn versions(state: &BTreeMap<u32, Value>) -> BTreeMap<u32, i64> {
    state
        .iter()
        .map(|(id, row)| (*id, row["v"].as_i64().expect("v")))
        .collect()
}

/// `kill -9`s `run` once the first online snapshot has `chunks` chunks acknowledged.
fn kill_after_chunks(project: &common::Project, run: &mut std::process::Child, chunks: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let status = project.status();
        let done = status["online_snapshots"][0]["chunks_done"]
            .as_u64()
            .unwrap_or(0);
        if done >= chunks {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no chunk done: {status}"
        );
        assert!(run.try_wait().unwrap().is_none(), "{}", project.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    run.kill().unwrap();
    run.wait().unwrap();
}

#[tokio::test]
async fn a_table_added_to_a_finished_project_sends_its_rows_then_its_changes() {
    common::require_kafka();
    let mut conn = common::mariadb().await;
    let (db, first) = common::new_table(&mut conn, "online_add", "id INT PRIMARY KEY, v INT").await;
    common::run_sql(
        &mut conn,
        &format!(
            "INSERT INTO {db}.t VALUES (1, 1);
CREATE TABLE {db}.added (id INT PRIMARY KEY, v INT);
INSERT INTO {db}.added SELECT seq, 0 FROM {db}.seq_1_to_3000"
        ),
    )
    .await;
    let project = common::Project::new(
        "online_add",
        &common::mariadb_source("online_add"),
        "sync = 'schema, full, incremental', topic_partitions = 1, chunk_rows = 1000",
        &format!("SYNC TABLE {db}.t TO TOPIC '{first}';"),
    );
    project.catch_up();
    assert_eq!(
        common::consume_all(&first, 1, Duration::from_secs(30)).len(),
        1
    );

    // The user adds a SYNC; rows change before and after the next run starts.
    let topic = common::unique("online_add");
    project.append(&format!("SYNC TABLE {db}.added TO TOPIC '{topic}';"));
    common::run_sql(
        &mut conn,
        &format!(
            "UPDATE {db}.added SET v = 1 WHERE id <= 10; DELETE FROM {db}.added WHERE id = 20"
        ),
    )
    .await;
    let mut run = project.spawn(&[]);
    project.wait_until_streaming(&mut run);
    common::run_sql(
        &mut conn,
        &format!(
            "INSERT INTO {db}.added VALUES (5000, 7);
UPDATE {db}.added SET v = v + 10 WHERE id IN (1, 2999)"
        ),
    )
    .await;
    project.catch_up_after(&mut run);
    let messages = common::consume_all(&topic, 3001, Duration::from_secs(60));
    let records = records(&messages);
    let snapshot_ids: BTreeSet<u32> = records
        .iter()
        .filter(|r| r.snapshot)
        .map(|r| r.id)
        .collect();
    // Every row that existed when the snapshot read it; the row inserted while the run streams
    // may be in the snapshot too (it is then sent again as its change).
    let existing: BTreeSet<u32> = (1..=3000).filter(|id| *id != 20).collect();
    assert!(snapshot_ids.is_superset(&existing), "every existing row");
    assert!(!snapshot_ids.contains(&20), "deleted before the snapshot");
    let expected = table_state(&mut conn, &format!("{db}.added")).await;
    assert_eq!(versions(&replay(&records)), expected);
    let status = project.status();
    assert_eq!(
        status["online_snapshots"],
        serde_json::json!([]),
        "{status}"
    );
}

#[tokio::test]
async fn a_resnapshot_with_where_sends_only_matching_rows_and_resumes_after_a_kill() {
    common::require_kafka();
    let mut conn = common::mariadb().await;
    let (db, topic) =
        common::new_table(&mut conn, "online_where", "id INT PRIMARY KEY, v INT").await;
    common::run_sql(
        &mut conn,
        &format!("INSERT INTO {db}.t SELECT seq, 0 FROM {db}.seq_1_to_40000"),
    )
    .await;
    let project = common::Project::new(
        "online_where",
        &common::mariadb_source("online_where"),
        "sync = 'schema, full, incremental', topic_partitions = 1, chunk_rows = 500",
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    project.catch_up();
    assert_eq!(
        common::consume_all(&topic, 40000, Duration::from_secs(60)).len(),
        40000
    );

    // A table the project does not sync, and a condition the source refuses: exit 1.
    let args = project.args("snapshot", &[&format!("{db}.other")]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let refused = common::tributary(&args);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("not synced by project"),
        "{}",
        refused.stderr
    );
    let args = project.args("snapshot", &[&format!("{db}.t"), "--where", "nope > 1"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let refused = common::tributary(&args);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("--where"), "{}", refused.stderr);

    let args = project.args("snapshot", &[&format!("{db}.t"), "--where", "id % 4 = 0"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let requested = common::tributary(&args);
    assert_eq!(requested.code, 0, "{}", requested.stderr);

    // kill -9 once some chunks are acknowledged, then finish.
    let mut run = project.spawn(&[]);
    kill_after_chunks(&project, &mut run, 5);
    let status = project.status();
    assert_ne!(
        status["online_snapshots"],
        serde_json::json!([]),
        "killed midway: {status}"
    );
    project.catch_up();
    assert_eq!(project.status()["online_snapshots"], serde_json::json!([]));

    let messages = common::consume_all(&topic, 50000, Duration::from_secs(60));
    let again: Vec<u32> = records(&messages[40000..]).iter().map(|r| r.id).collect();
    assert!(
        again.iter().all(|id| id % 4 == 0),
        "only rows where id % 4 = 0"
    );
    let distinct: BTreeSet<u32> = again.iter().copied().collect();
    assert_eq!(distinct.len(), 10000, "every matching row");
}

#[tokio::test]
async fn an_online_snapshot_under_four_writers_never_sends_a_row_older_than_a_change() {
    common::require_kafka();
    let mut conn = common::mariadb().await;
    let (db, first) = common::new_table(&mut conn, "online_busy", "id INT PRIMARY KEY").await;
    let rows = 200_000;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE TABLE {db}.busy (id INT PRIMARY KEY, v INT NOT NULL);
INSERT INTO {db}.busy SELECT seq, 0 FROM {db}.seq_1_to_{rows}"
        ),
    )
    .await;
    let project = common::Project::new(
        "online_busy",
        &common::mariadb_source("online_busy"),
        "sync = 'schema, full, incremental', topic_partitions = 1, chunk_rows = 5000",
        &format!("SYNC TABLE {db}.t TO TOPIC '{first}';"),
    );
    project.catch_up();
    let topic = common::unique("online_busy");
    project.append(&format!("SYNC TABLE {db}.busy TO TOPIC '{topic}';"));
    let mut run = project.spawn(&[]);
    project.wait_until_streaming(&mut run);

    // Four writers: updates (v + 1), deletes and inserts of random keys until the snapshot ends.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4u32 {
        let stop = std::sync::Arc::clone(&stop);
        let table = format!("{db}.busy");
        writers.push(tokio::spawn(async move {
            let mut conn = common::mariadb().await;
            let mut seed = 0x9E37_79B9u32.wrapping_mul(w + 1);
            let mut next = || {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed
            };
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let id = next() % rows + 1;
                let sql = match next() % 10 {
                    0 => format!("DELETE FROM {table} WHERE id = {id}"),
                    1 => format!(
                        "INSERT IGNORE INTO {table} VALUES ({}, 0)",
                        rows + 1 + next() % rows
                    ),
                    _ => format!("UPDATE {table} SET v = v + 1 WHERE id = {id}"),
                };
                conn.query_drop(sql).await.expect("write");
                n += 1;
            }
            n
        }));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let status = project.status();
        if status["online_snapshots"] == serde_json::json!([]) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status}");
        assert!(run.try_wait().unwrap().is_none(), "{}", project.log());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut writes = 0;
    for writer in writers {
        writes += writer.await.unwrap();
    }
    assert!(
        writes > 100,
        "the writers wrote while the snapshot ran: {writes}"
    );
    project.catch_up_after(&mut run);

    let expected = table_state(&mut conn, &format!("{db}.busy")).await;
    let messages = common::consume_all(&topic, expected.len(), Duration::from_secs(120));
    let records = records(&messages);
    assert_eq!(
        versions(&replay(&records)),
        expected,
        "replay per key = the table"
    );
    // Per key: a snapshot row is never older (smaller v) than a change sent before it, and
    // never revives a key whose DELETE was sent before it.
    let mut seen: BTreeMap<u32, Option<i64>> = BTreeMap::new();
    for r in &records {
        let v = r.row.as_ref().map(|row| row["v"].as_i64().expect("v"));
        if r.snapshot {
            match seen.get(&r.id) {
                Some(Some(before)) => assert!(
                    v.expect("a row") >= *before,
                    "key {}: snapshot v={v:?} after a change to v={before}",
                    r.id
                ),
                Some(None) => panic!("key {}: a snapshot row after its DELETE", r.id),
                None => {}
            }
        } else {
            assert!(matches!(r.kind.as_str(), "INSERT" | "UPDATE" | "DELETE"));
        }
        seen.insert(r.id, v);
    }
    assert!(records.iter().filter(|r| r.snapshot).count() >= (rows as usize) * 9 / 10);
}

#[tokio::test]
async fn sighup_takes_a_new_sync_into_a_running_project() {
    common::require_kafka();
    let mut conn = common::mariadb().await;
    let (db, first) = common::new_table(&mut conn, "online_hup", "id INT PRIMARY KEY, v INT").await;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE DATABASE {db}_more;
CREATE TABLE {db}_more.added (id INT PRIMARY KEY, v INT NOT NULL);
INSERT INTO {db}_more.added SELECT seq, 0 FROM {db}.seq_1_to_500"
        ),
    )
    .await;
    let project = common::Project::new(
        "online_hup",
        &common::mariadb_source("online_hup"),
        "sync = 'schema, full, incremental', topic_partitions = 1",
        &format!("SYNC TABLE {db}.t TO TOPIC '{first}';"),
    );
    project.catch_up();
    let mut run = project.spawn(&[]);
    project.wait_until_streaming(&mut run);
    // A SYNC in a database the run has not seen before, taken in without a restart.
    let topic = common::unique("online_hup");
    project.append(&format!("SYNC TABLE {db}_more.added TO TOPIC '{topic}';"));
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &run.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // The checkpoint names the table once the run took the file in.
    let added = format!("{db}_more.added");
    while !std::fs::read_to_string(project.checkpoint_path()).is_ok_and(|c| c.contains(&added)) {
        assert!(std::time::Instant::now() < deadline, "{}", project.log());
        assert!(run.try_wait().unwrap().is_none(), "{}", project.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    conn.query_drop(format!("UPDATE {db}_more.added SET v = 9 WHERE id = 7"))
        .await
        .unwrap();
    // The running run sends the rows and the change (it is stopped only to read the topic).
    let messages = common::consume_all(&topic, 501, Duration::from_secs(60));
    assert!(run.try_wait().unwrap().is_none(), "{}", project.log());
    project.catch_up_after(&mut run);
    let records = records(&messages);
    let expected = table_state(&mut conn, &format!("{db}_more.added")).await;
    assert_eq!(versions(&replay(&records)), expected);
    assert!(records.iter().any(|r| !r.snapshot && r.id == 7));
}

#[tokio::test]
async fn an_online_snapshot_with_exactly_once_sends_each_row_once_through_a_kill() {
    common::require_kafka();
    let mut conn = common::mariadb().await;
    let (db, first) = common::new_table(&mut conn, "online_eo", "id INT PRIMARY KEY").await;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE TABLE {db}.added (id INT PRIMARY KEY, v INT NOT NULL);
INSERT INTO {db}.added SELECT seq, 0 FROM {db}.seq_1_to_30000"
        ),
    )
    .await;
    let project = common::Project::new(
        "online_eo",
        &common::mariadb_source("online_eo"),
        "sync = 'schema, full, incremental', topic_partitions = 1, chunk_rows = 500, \
         exactly_once = true",
        &format!("SYNC TABLE {db}.t TO TOPIC '{first}';"),
    );
    project.catch_up();
    let topic = common::unique("online_eo");
    project.append(&format!("SYNC TABLE {db}.added TO TOPIC '{topic}';"));
    let mut run = project.spawn(&[]);
    kill_after_chunks(&project, &mut run, 5);
    project.catch_up();
    let messages = common::consume_all(&topic, 30000, Duration::from_secs(60));
    let ids = common::numeric_keys(&messages);
    let distinct: BTreeSet<u32> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), 30000);
    assert_eq!(ids.len(), 30000, "each row exactly once (read_committed)");
}

/// The same on the MySQL flavor (GTID stream), against Dolt.
#[tokio::test]
async fn a_table_added_on_the_mysql_flavor_sends_its_rows_then_its_changes() {
    common::require_kafka();
    let mut conn = common::dolt().await;
    let db = common::unique("online_dolt");
    let values: Vec<String> = (1..=300).map(|i| format!("({i}, 0)")).collect();
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE DATABASE {db};
CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT NOT NULL);
CREATE TABLE {db}.added (id INT PRIMARY KEY, v INT NOT NULL);
INSERT INTO {db}.added VALUES {}",
            values.join(", ")
        ),
    )
    .await;
    let first = common::unique("online_dolt");
    let project = common::Project::new(
        "online_dolt",
        &common::dolt_source("online_dolt"),
        "sync = 'schema, full, incremental', topic_partitions = 1, chunk_rows = 100",
        &format!("SYNC TABLE {db}.t TO TOPIC '{first}';"),
    );
    project.catch_up();
    let topic = common::unique("online_dolt");
    project.append(&format!("SYNC TABLE {db}.added TO TOPIC '{topic}';"));
    let mut run = project.spawn(&[]);
    project.wait_until_streaming(&mut run);
    common::run_sql(
        &mut conn,
        &format!("UPDATE {db}.added SET v = 5 WHERE id = 3;\nDELETE FROM {db}.added WHERE id = 4"),
    )
    .await;
    project.catch_up_after(&mut run);
    let records = records(&common::consume_all(&topic, 300, Duration::from_secs(60)));
    let expected = table_state(&mut conn, &format!("{db}.added")).await;
    assert_eq!(expected.len(), 299);
    assert_eq!(versions(&replay(&records)), expected);
    assert!(records.iter().filter(|r| r.snapshot).count() >= 299);
}

/// A table renamed into a SYNC pattern while streaming brings rows no binlog event carried:
/// they arrive by an online snapshot, then its changes.
#[tokio::test]
async fn a_table_renamed_into_a_pattern_arrives_whole() {
    common::require_kafka();
    let mut conn = common::mariadb().await;
    let (db, _) = common::new_table(&mut conn, "online_rename", "id INT PRIMARY KEY").await;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE TABLE {db}.staging (id INT PRIMARY KEY, v INT NOT NULL);
INSERT INTO {db}.staging SELECT seq, 0 FROM {db}.seq_1_to_700"
        ),
    )
    .await;
    let topic = common::unique("online_rename");
    let project = common::Project::new(
        "online_rename",
        &common::mariadb_source("online_rename"),
        "sync = 'schema, full, incremental', topic_partitions = 1",
        &format!("SYNC TABLE {db}.live_% TO TOPIC '{topic}';"),
    );
    project.catch_up();
    let mut run = project.spawn(&[]);
    project.wait_until_streaming(&mut run);
    common::run_sql(
        &mut conn,
        &format!(
            "RENAME TABLE {db}.staging TO {db}.live_orders;
UPDATE {db}.live_orders SET v = 3 WHERE id = 9"
        ),
    )
    .await;
    project.catch_up_after(&mut run);
    let records = records(&common::consume_all(&topic, 700, Duration::from_secs(60)));
    let expected = table_state(&mut conn, &format!("{db}.live_orders")).await;
    assert_eq!(versions(&replay(&records)), expected);
    assert!(records.iter().filter(|r| r.snapshot).count() >= 700);
}

#[tokio::test]
async fn a_terminal_shows_an_online_snapshot_as_a_bar_of_its_chunks() {
    common::require_kafka();
    let mut conn = common::mariadb().await;
    let (db, first) = common::new_table(&mut conn, "online_tty", "id INT PRIMARY KEY").await;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE TABLE {db}.added (id INT PRIMARY KEY, v VARCHAR(100) NOT NULL);
INSERT INTO {db}.added SELECT seq, REPEAT('v', 100) FROM {db}.seq_1_to_150000"
        ),
    )
    .await;
    let project = common::Project::new(
        "online_tty",
        &common::mariadb_source("online_tty"),
        "sync = 'schema, full, incremental', topic_partitions = 1",
        &format!("SYNC TABLE {db}.t TO TOPIC '{first}';"),
    );
    project.catch_up();
    project.append(&format!(
        "SYNC TABLE {db}.added TO TOPIC '{}';",
        common::unique("online_tty")
    ));
    // util-linux `script` runs the run on a pseudo-terminal: what a person sees.
    let mut words = vec![env!("CARGO_BIN_EXE_tributary").to_string()];
    words.extend(project.args("run", &["--until-caught-up"]));
    let output = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &words.join(" "), "/dev/null"])
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("util-linux `script`");
    let shown = String::from_utf8_lossy(&output.stdout);
    let name = format!("online {db}.added");
    let lines: Vec<&str> = shown
        .split(['\r', '\n'])
        .filter(|l| l.contains(&name))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" chunks, ") && l.contains("rows (new to the project)")),
        "a bar with chunks and rows:\n{shown}"
    );
    assert!(
        lines.iter().any(|l| l.contains(&format!("{name} done"))),
        "the bar ends done:\n{shown}"
    );
}
