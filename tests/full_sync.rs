//! Full sync end to end against the real MariaDB, seekdb and Kafka: every row arrives once,
//! filtered and projected, on the partition the Java client would pick; reruns skip finished
//! chunks; `kill -9` loses nothing; a dropped table and an oversized row are named.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use serde_json::Value;

/// Creates `db.items` with `rows` rows: id, grp = id % 5, and a mix of types.
async fn create_items(db: &str, rows: u64) {
    let mut conn = common::mariadb().await;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE DATABASE {db};
CREATE TABLE {db}.items (id BIGINT PRIMARY KEY, grp INT NOT NULL, name VARCHAR(40),
  amount DECIMAL(12,2), created DATETIME(3), flag BOOL, data VARBINARY(8), note TEXT);
INSERT INTO {db}.items SELECT seq, seq % 5, CONCAT('item ', seq), seq * 1.25,
  TIMESTAMP('2024-01-01 00:00:00') + INTERVAL seq SECOND, seq % 2 = 0,
  UNHEX(LPAD(HEX(seq), 4, '0')), IF(seq % 7 = 0, NULL, 'n') FROM {db}.seq_1_to_{rows}"
        ),
    )
    .await;
}

struct Project {
    file: PathBuf,
    state: PathBuf,
}

impl Project {
    fn new(name: &str, source: &str, options: &str, sink_extra: &str, syncs: &str) -> Project {
        let dir = common::temp_dir(name);
        let file = dir.join(format!("{name}.sql"));
        let text = format!(
            "CREATE SOURCE src WITH ({source});
CREATE SINK kafka WITH (type = 'kafka', 'bootstrap.servers' = '{kafka}'{sink_extra});
CREATE PROJECT {name} FROM src TO kafka WITH (sync = 'schema, full', topic_partitions = 3,
  batch_rows = 500{options});
{syncs}
",
            kafka = common::kafka_bootstrap()
        );
        std::fs::write(&file, text).expect("write project");
        Project {
            file,
            state: dir.join("state"),
        }
    }

    fn state(&self) -> &Path {
        &self.state
    }

    fn args<'a>(&'a self, command: &'a str) -> Vec<&'a str> {
        let mut args = vec![command, self.file.to_str().unwrap()];
        args.extend(["--state-dir", self.state.to_str().unwrap()]);
        args
    }

    fn run(&self) -> common::Outcome {
        let mut args = self.args("run");
        args.push("--until-caught-up");
        common::tributary(&args)
    }

    fn spawn(&self) -> std::process::Child {
        Command::new(env!("CARGO_BIN_EXE_tributary"))
            .args(self.args("run"))
            .arg("--until-caught-up")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tributary")
    }

    fn checkpoint(&self) -> Option<Value> {
        let bytes = std::fs::read(self.state().join("checkpoint.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn chunks_done(&self) -> usize {
        self.checkpoint()
            .map(|c| {
                c["tables"]
                    .as_object()
                    .map(|tables| {
                        tables
                            .values()
                            .flat_map(|t| t["chunks"].as_array().cloned().unwrap_or_default())
                            .filter(|chunk| chunk["done"] == Value::Bool(true))
                            .count()
                    })
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }

    /// Waits until at least `chunks` chunks are checkpointed.
    fn wait_for_chunks(&self, chunks: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.chunks_done() < chunks {
            assert!(Instant::now() < deadline, "no chunk finished within 120 s");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn mariadb_source() -> String {
    "type = 'mariadb', host = '127.0.0.1', port = 3307, user = 'root'".to_string()
}

fn ids(messages: &[common::Consumed]) -> HashMap<i64, usize> {
    let mut seen = HashMap::new();
    for m in messages {
        let key: Value = serde_json::from_str(m.key.as_deref().expect("a key")).expect("JSON key");
        *seen.entry(key["id"].as_i64().expect("id")).or_insert(0) += 1;
    }
    seen
}

/// Sends SIGTERM to a run and waits for it: the run must pause (exit 0, "run paused:").
fn pause_with_sigterm(child: std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let output = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "a signal is a pause, not a kill: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("run paused:"), "{stdout}");
}

#[tokio::test]
async fn full_sync_sends_filtered_projected_rows_and_reruns_skip_finished_chunks() {
    let db = common::unique("fs_items");
    create_items(&db, 5000).await;
    let topic = common::unique("fs_items");
    let project = Project::new(
        "fs_basic",
        &mariadb_source(),
        ", chunk_rows = 700, full_concurrency = 3",
        "",
        &format!(
            "SYNC TABLE {db}.items TO TOPIC '{topic}' COLUMNS (id, name, amount, created, flag, \
             data) WHERE grp <> 3;"
        ),
    );
    let outcome = project.run();
    assert_eq!(outcome.code, 0, "{}{}", outcome.stdout, outcome.stderr);
    assert!(
        outcome
            .stdout
            .contains("run done: 5000 rows read, 4000 messages sent"),
        "{}",
        outcome.stdout
    );

    let messages = common::consume_all(&topic, 4000, Duration::from_secs(60));
    assert_eq!(messages.len(), 4000);
    let seen = ids(&messages);
    assert_eq!(seen.len(), 4000, "every message has its own key");
    assert!(
        seen.keys().all(|id| id % 5 != 3),
        "the filter dropped grp 3"
    );
    for m in &messages {
        let key = m.key.as_deref().unwrap();
        assert_eq!(
            m.partition,
            tributary::partition::partition_for_key(key.as_bytes(), 3),
            "key {key} is on the Java client's partition"
        );
        let value: Value = serde_json::from_str(&m.payload).expect("valid JSON");
        assert_eq!(value["recordType"], "ROW");
        assert_eq!(value["prevStruct"], Value::Null);
        let columns: Vec<&String> = value["postStruct"].as_object().unwrap().keys().collect();
        assert_eq!(columns, ["amount", "created", "data", "flag", "id", "name"]);
        assert_eq!(value["allMetaData"]["table_name"], "items");
        assert_eq!(value["allMetaData"]["db"], db.as_str());
        assert_eq!(value["allMetaData"]["dbType"], "MYSQL");
    }
    let seven = messages
        .iter()
        .find(|m| m.key.as_deref() == Some("{\"id\":7}"))
        .expect("row 7");
    assert!(
        seven.payload.starts_with(
            "{\"prevStruct\":null,\"postStruct\":{\"id\":7,\"name\":\"item 7\",\"amount\":8.75,\
             \"created\":\"2024-01-01 00:00:07\",\"flag\":0,\"data\":\"AAc=\"},\"allMetaData\":\
             {\"checkpoint\":\"id=7\",\"record_primary_key\":\"id\",\"record_primary_value\":\"7\""
        ),
        "{}",
        seven.payload
    );

    let status = common::tributary(&{
        let mut args = project.args("status");
        args.push("--json");
        args
    });
    let status: Value = serde_json::from_str(&status.stdout).expect("status --json");
    assert_eq!(status["full_done"], true);
    assert_eq!(status["rows_done"], 5000);
    let chunk_count = status["tables"][format!("{db}.items")]["chunks"]
        .as_u64()
        .unwrap();
    assert!(
        (7..=9).contains(&chunk_count),
        "5000 rows in chunks of about 700: {chunk_count}"
    );

    // A rerun of a finished project reads nothing.
    let outcome = project.run();
    assert!(
        outcome.stdout.contains("run done: 0 rows read"),
        "{}",
        outcome.stdout
    );

    // Forget the last two chunks: a rerun reads exactly their rows again.
    let mut checkpoint = project.checkpoint().expect("checkpoint");
    checkpoint["full_done"] = Value::Bool(false);
    let chunks = checkpoint["tables"][format!("{db}.items")]["chunks"]
        .as_array_mut()
        .unwrap();
    let first_forgotten = chunks.len() - 2;
    let after: i64 = chunks[first_forgotten]["lower"][0]["int"]
        .as_i64()
        .expect("an integer lower bound");
    for chunk in chunks.iter_mut().skip(first_forgotten) {
        chunk["done"] = Value::Bool(false);
    }
    std::fs::write(
        project.state().join("checkpoint.json"),
        serde_json::to_vec(&checkpoint).unwrap(),
    )
    .unwrap();
    let outcome = project.run();
    assert!(
        outcome
            .stdout
            .contains(&format!("run done: {} rows read", 5000 - after)),
        "{}",
        outcome.stdout
    );
    let again = (after + 1..=5000).filter(|id| id % 5 != 3).count();
    let messages = common::consume_all(&topic, 4000 + again, Duration::from_secs(60));
    assert_eq!(messages.len(), 4000 + again);

    let outcome = common::tributary(&project.args("reset"));
    assert!(
        outcome.stdout.contains("reset: forgot"),
        "{}",
        outcome.stdout
    );
    assert!(project.checkpoint().is_none());
}

#[tokio::test]
async fn kill_9_mid_sync_then_rerun_delivers_every_row() {
    let db = common::unique("fs_kill");
    let rows = 300_000u64;
    create_items(&db, rows).await;
    let topic = common::unique("fs_kill");
    let (concurrency, chunk_rows) = (2, 10_000);
    let project = Project::new(
        "fs_kill",
        &mariadb_source(),
        &format!(", chunk_rows = {chunk_rows}, full_concurrency = {concurrency}"),
        "",
        &format!("SYNC TABLE {db}.items TO TOPIC '{topic}';"),
    );
    let mut child = project.spawn();
    project.wait_for_chunks(2);
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let checkpoint = project.checkpoint().expect("checkpoint");
    assert_eq!(
        checkpoint["full_done"], false,
        "the kill must land mid-sync for this test to mean anything"
    );

    let outcome = project.run();
    assert_eq!(outcome.code, 0, "{}{}", outcome.stdout, outcome.stderr);
    let messages = common::consume_all(&topic, rows as usize, Duration::from_secs(120));
    let seen = ids(&messages);
    assert_eq!(seen.len() as u64, rows, "every source row is in Kafka");
    assert!(seen.keys().all(|id| (1..=rows as i64).contains(id)));
    let duplicates = messages.len() as u64 - rows;
    assert!(
        duplicates <= concurrency * chunk_rows,
        "{duplicates} duplicates: more than the {concurrency} chunks of {chunk_rows} rows in flight"
    );
}

#[tokio::test]
async fn a_table_dropped_mid_sync_is_named() {
    let db = common::unique("fs_drop");
    create_items(&db, 300_000).await;
    let project = Project::new(
        "fs_drop",
        &mariadb_source(),
        ", chunk_rows = 5000, full_concurrency = 1",
        "",
        &format!(
            "SYNC TABLE {db}.items TO TOPIC '{}';",
            common::unique("fs_drop")
        ),
    );
    let child = project.spawn();
    project.wait_for_chunks(1);
    let mut conn = common::mariadb().await;
    conn.query_drop(format!("DROP TABLE {db}.items"))
        .await
        .expect("drop");
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "table {db}.items no longer exists (it was dropped during full sync)"
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_row_larger_than_the_message_limit_is_named() {
    let db = common::unique("fs_big");
    let mut conn = common::mariadb().await;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE DATABASE {db};
CREATE TABLE {db}.blobs (id INT PRIMARY KEY, body LONGBLOB);
INSERT INTO {db}.blobs VALUES (1, 'small'), (2, REPEAT('x', 2000000))"
        ),
    )
    .await;
    let project = Project::new(
        "fs_big",
        &mariadb_source(),
        "",
        ", 'message.max.bytes' = '1000000'",
        &format!(
            "SYNC TABLE {db}.blobs TO TOPIC '{}';",
            common::unique("fs_big")
        ),
    );
    let outcome = project.run();
    assert_eq!(outcome.code, 2, "{}{}", outcome.stdout, outcome.stderr);
    assert!(
        outcome.stderr.contains(&format!(
            "table {db}.blobs: the row with key {{\"id\":2}} is larger than"
        )),
        "{}",
        outcome.stderr
    );
}

#[tokio::test]
async fn seekdb_tables_sync_in_full() {
    let db = common::unique("fs_ob");
    let mut conn = common::seekdb().await;
    let values: Vec<String> = (1..=1000)
        .map(|i| format!("({i}, 'row {i}', {i}.5, '2024-05-01 10:00:0{}')", i % 10))
        .collect();
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE DATABASE {db};
CREATE TABLE {db}.t (id INT PRIMARY KEY, name VARCHAR(20), amount DECIMAL(10,1), at DATETIME);
INSERT INTO {db}.t VALUES {}",
            values.join(", ")
        ),
    )
    .await;
    let topic = common::unique("fs_ob");
    let project = Project::new(
        "fs_ob",
        "type = 'oceanbase', host = '127.0.0.1', port = 2881, user = 'root'",
        ", chunk_rows = 300",
        "",
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    let outcome = project.run();
    assert_eq!(outcome.code, 0, "{}{}", outcome.stdout, outcome.stderr);
    let messages = common::consume_all(&topic, 1000, Duration::from_secs(60));
    assert_eq!(ids(&messages).len(), 1000);
    let one = messages
        .iter()
        .find(|m| m.key.as_deref() == Some("{\"id\":12}"))
        .expect("row 12");
    let value: Value = serde_json::from_str(&one.payload).unwrap();
    assert_eq!(value["allMetaData"]["dbType"], "OB_MYSQL");
    assert_eq!(
        value["postStruct"].to_string(),
        "{\"amount\":12.5,\"at\":\"2024-05-01 10:00:02\",\"id\":12,\"name\":\"row 12\"}"
    );
}

/// SIGTERM before any row is read — while the run plans, reads the catalog, creates topics and
/// starts its exactly-once producers — pauses it (exit 0) instead of killing it; the next run
/// does the whole sync.
#[tokio::test]
async fn sigterm_during_start_up_pauses_cleanly() {
    let db = common::unique("fs_early");
    let rows = 1_000u64;
    create_items(&db, rows).await;
    let topic = common::unique("fs_early");
    let project = Project::new(
        "fs_early",
        &mariadb_source(),
        ", exactly_once = true",
        "",
        &format!("SYNC TABLE {db}.items TO TOPIC '{topic}';"),
    );
    let child = project.spawn();
    std::thread::sleep(Duration::from_millis(150));
    pause_with_sigterm(child);

    let outcome = project.run();
    assert_eq!(outcome.code, 0, "{}{}", outcome.stdout, outcome.stderr);
    let messages = common::consume_all(&topic, rows as usize, Duration::from_secs(60));
    assert_eq!(messages.len() as u64, rows, "every row once");
}

#[tokio::test]
async fn sigterm_pauses_cleanly_and_the_next_run_finishes() {
    let db = common::unique("fs_pause");
    let rows = 300_000u64;
    create_items(&db, rows).await;
    let topic = common::unique("fs_pause");
    let project = Project::new(
        "fs_pause",
        &mariadb_source(),
        ", chunk_rows = 5000, full_concurrency = 2",
        "",
        &format!("SYNC TABLE {db}.items TO TOPIC '{topic}';"),
    );
    let child = project.spawn();
    project.wait_for_chunks(1);
    pause_with_sigterm(child);
    let checkpoint = project.checkpoint().expect("checkpoint");
    assert_eq!(checkpoint["full_done"], false);

    let outcome = project.run();
    assert_eq!(outcome.code, 0, "{}{}", outcome.stdout, outcome.stderr);
    assert!(outcome.stdout.contains("run done:"), "{}", outcome.stdout);
    let messages = common::consume_all(&topic, rows as usize, Duration::from_secs(120));
    assert_eq!(ids(&messages).len() as u64, rows);
}

/// Every column type with edge values through the real binary protocol into Default-format
/// messages, compared with `testdata/formats/default/full_sync.jsonl` (rewritten with
/// `TRIBUTARY_BLESS=1`; a reviewer reads the diff).
#[tokio::test]
async fn every_column_type_encodes_as_the_golden_file_says() {
    let db = common::unique("fs_types");
    let mut conn = common::mariadb().await;
    common::run_sql(
        &mut conn,
        &std::fs::read_to_string("testdata/formats/all_types.sql")
            .expect("all_types.sql")
            .replace("DB__", &db),
    )
    .await;
    let topic = common::unique("fs_types");
    let project = Project::new(
        "fs_types",
        &mariadb_source(),
        "",
        "",
        &format!("SYNC TABLE {db}.all_types TO TOPIC '{topic}';"),
    );
    let outcome = project.run();
    assert_eq!(outcome.code, 0, "{}{}", outcome.stdout, outcome.stderr);
    let mut messages = common::consume_all(&topic, 4, Duration::from_secs(60));
    assert_eq!(messages.len(), 4);
    messages.sort_by_key(|m| m.key.clone());
    let actual: String = messages
        .iter()
        .map(|m| {
            let payload = m.payload.replace(&db, "DB");
            format!("{}\t{payload}\n", m.key.as_deref().unwrap_or("null"))
        })
        .collect();
    for m in &messages {
        serde_json::from_str::<Value>(&m.payload).expect("valid JSON");
    }
    let golden = Path::new("testdata/formats/default/full_sync.jsonl");
    if std::env::var("TRIBUTARY_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(golden, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(golden).unwrap_or_default();
    assert_eq!(
        actual,
        expected,
        "Default-format full-sync rows differ from {} (TRIBUTARY_BLESS=1 rewrites it)",
        golden.display()
    );
}

#[tokio::test]
async fn composite_and_text_keys_are_chunked_by_walking_the_index() {
    let db = common::unique("fs_walk");
    let mut conn = common::mariadb().await;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE DATABASE {db};
CREATE TABLE {db}.pairs (a INT NOT NULL, b VARCHAR(10) NOT NULL, v INT, PRIMARY KEY (a, b));
INSERT INTO {db}.pairs SELECT seq % 7, CONCAT('k', seq), seq FROM {db}.seq_1_to_2000"
        ),
    )
    .await;
    let topic = common::unique("fs_walk");
    let project = Project::new(
        "fs_walk",
        &mariadb_source(),
        ", chunk_rows = 300, full_concurrency = 3",
        "",
        &format!("SYNC TABLE {db}.pairs TO TOPIC '{topic}';"),
    );
    let outcome = project.run();
    assert_eq!(outcome.code, 0, "{}{}", outcome.stdout, outcome.stderr);
    let checkpoint = project.checkpoint().expect("checkpoint");
    let chunks = checkpoint["tables"][format!("{db}.pairs")]["chunks"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        chunks, 7,
        "2000 rows in chunks of exactly 300 rows, found {chunks} chunks"
    );
    assert_chunks_bounded(&chunk_sizes(&project, &format!("{db}.pairs")), 300, 2000);
    let messages = common::consume_all(&topic, 2000, Duration::from_secs(60));
    let keys: std::collections::HashSet<&str> =
        messages.iter().filter_map(|m| m.key.as_deref()).collect();
    assert_eq!(messages.len(), 2000);
    assert_eq!(keys.len(), 2000, "each (a, b) exactly once");
    assert!(keys.contains("{\"a\":1,\"b\":\"k1\"}"));
}

/// The rows each chunk of `table` held, from the checkpoint; every chunk must be done.
fn chunk_sizes(project: &Project, table: &str) -> Vec<u64> {
    let checkpoint = project.checkpoint().expect("checkpoint");
    checkpoint["tables"][table]["chunks"]
        .as_array()
        .unwrap_or_else(|| panic!("no chunks of {table} in the checkpoint"))
        .iter()
        .map(|chunk| {
            assert_eq!(chunk["done"], true, "{chunk}");
            chunk["rows"].as_u64().expect("rows")
        })
        .collect()
}

/// The chunks hold every row once, none more than twice `chunk_rows`.
fn assert_chunks_bounded(sizes: &[u64], chunk_rows: u64, rows: u64) {
    assert_eq!(
        sizes.iter().sum::<u64>(),
        rows,
        "the chunks hold every row once: {sizes:?}"
    );
    assert!(
        sizes.iter().all(|&n| n <= 2 * chunk_rows),
        "a chunk holds more than 2 x {chunk_rows} rows: {sizes:?}"
    );
}

/// Syncs table `db.t` of `rows` rows from `source` in chunks of `chunk_rows`; checks in the
/// checkpoint that the chunks hold every row once and none more than twice `chunk_rows`.
/// Returns the rows of each chunk and the topic's messages.
fn sync_in_chunks(
    name: &str,
    source: &str,
    db: &str,
    chunk_rows: u64,
    rows: u64,
) -> (Vec<u64>, Vec<common::Consumed>) {
    let topic = common::unique(name);
    let project = Project::new(
        name,
        source,
        &format!(", chunk_rows = {chunk_rows}, full_concurrency = 2"),
        "",
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    let outcome = project.run();
    assert_eq!(outcome.code, 0, "{}{}", outcome.stdout, outcome.stderr);
    let sizes = chunk_sizes(&project, &format!("{db}.t"));
    assert_chunks_bounded(&sizes, chunk_rows, rows);
    let messages = common::consume_all(&topic, rows as usize, Duration::from_secs(120));
    (sizes, messages)
}

/// The example: ids 1..49,999 and one at 10^15. Split between MIN and MAX by the row
/// estimate, it was one chunk of 49,999 rows and eight empty ones.
#[tokio::test]
async fn a_sparse_integer_key_is_chunked_on_the_keys_that_exist() {
    let db = common::unique("fs_sparse");
    let rows = 50_000u64;
    let mut conn = common::mariadb().await;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE DATABASE {db};
CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, v VARCHAR(10));
INSERT INTO {db}.t SELECT seq, 'v' FROM {db}.seq_1_to_49999;
INSERT INTO {db}.t VALUES (1000000000000000, 'far')"
        ),
    )
    .await;
    let (sizes, messages) = sync_in_chunks("fs_sparse", &mariadb_source(), &db, 5000, rows);
    // Ten of 5000 rows and the open end past the last bound (empty here).
    assert_eq!(sizes.len(), 11, "{sizes:?}");
    let seen = ids(&messages);
    assert_eq!(seen.len() as u64, rows, "every row arrives");
    assert!(seen.contains_key(&1_000_000_000_000_000));
    assert_eq!(messages.len() as u64, rows, "and once");
}

/// A text key where nine rows in ten share a long prefix, with accented and mixed-case keys
/// (compared by the column's collation, as the bounds are).
#[tokio::test]
async fn a_skewed_text_key_is_chunked_within_twice_chunk_rows() {
    let db = common::unique("fs_skew");
    let rows = 20_000u64;
    let mut conn = common::mariadb().await;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE DATABASE {db};
CREATE TABLE {db}.t (k VARCHAR(60) PRIMARY KEY, v INT) DEFAULT CHARSET utf8mb4;
INSERT INTO {db}.t SELECT CONCAT('order-2024-11-30-', LPAD(seq, 8, '0')), seq
  FROM {db}.seq_1_to_18000;
INSERT INTO {db}.t SELECT CONCAT(IF(seq % 2 = 0, 'É', 'b'), MD5(seq)), seq FROM {db}.seq_1_to_2000"
        ),
    )
    .await;
    let (_, messages) = sync_in_chunks("fs_skew", &mariadb_source(), &db, 1500, rows);
    let keys: std::collections::HashSet<&str> =
        messages.iter().filter_map(|m| m.key.as_deref()).collect();
    assert_eq!(keys.len() as u64, rows, "every row arrives");
    assert_eq!(messages.len() as u64, rows, "and once");
}

/// seekdb (OceanBase) reports `TABLE_ROWS = 0` for new tables; trusted, that estimate made the
/// whole table one chunk.
#[tokio::test]
async fn an_estimate_of_0_still_gives_bounded_chunks() {
    let db = common::unique("fs_noest");
    let rows = 3000u64;
    let mut conn = common::seekdb().await;
    let values: Vec<String> = (1..=rows).map(|i| format!("({i}, 'v{i}')")).collect();
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE DATABASE {db};
CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(10));
INSERT INTO {db}.t VALUES {}",
            values.join(", ")
        ),
    )
    .await;
    let estimate: Option<u64> = conn
        .exec_first(
            "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND \
             TABLE_NAME = 't'",
            (&db,),
        )
        .await
        .expect("TABLE_ROWS");
    assert_eq!(
        estimate,
        Some(0),
        "this test needs a source whose row estimate is 0"
    );
    let (sizes, messages) = sync_in_chunks(
        "fs_noest",
        "type = 'oceanbase', host = '127.0.0.1', port = 2881, user = 'root'",
        &db,
        300,
        rows,
    );
    // Walked: ten of 300 rows and the open end past the last bound (empty here).
    assert_eq!(sizes.len(), 11, "{sizes:?}");
    assert_eq!(ids(&messages).len() as u64, rows, "every row arrives");
}

/// SIGTERM while a long index walk plans the chunks pauses it between two steps (exit 0), rather
/// than after the whole walk (the next run plans the table again).
#[tokio::test]
async fn sigterm_during_a_long_walk_pauses_it() {
    let db = common::unique("fs_walkstop");
    let rows = 50_000u64;
    let mut conn = common::mariadb().await;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE DATABASE {db};
CREATE TABLE {db}.t (k VARCHAR(20) PRIMARY KEY, v INT);
INSERT INTO {db}.t SELECT CONCAT('k', seq), seq FROM {db}.seq_1_to_{rows}"
        ),
    )
    .await;
    let topic = common::unique("fs_walkstop");
    // One row a chunk: the walk takes one step a row.
    let project = Project::new(
        "fs_walkstop",
        &mariadb_source(),
        ", chunk_rows = 1",
        "",
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    let child = project.spawn();
    // Schema sync is checkpointed just before full sync plans.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !project
        .checkpoint()
        .is_some_and(|c| c["schema_done"] == true)
    {
        assert!(Instant::now() < deadline, "schema sync did not finish");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    pause_with_sigterm(child);
    let checkpoint = project.checkpoint().expect("checkpoint");
    assert!(
        checkpoint["tables"][format!("{db}.t")]["chunks"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "the pause came between two steps of the walk, not after it"
    );
}
