#![cfg(feature = "lake")]
//! The lake sink against real readers: what pyarrow, duckdb, the `deltalake` package and
//! polars read from the files tributary wrote must be the source's rows (full sync), and the
//! changelog replayed per key must be the source's final state (incremental).

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use common::{Project, mariadb, run_sql, unique};
use mysql_async::prelude::Queryable;
use serde_json::Value;

/// The Python with the independent readers (`scripts/services up lakepy`).
fn python() -> std::path::PathBuf {
    let venv =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".services/lakepy/venv/bin/python");
    assert!(
        venv.exists(),
        "the lake readers are not installed at {}; run `scripts/services up lakepy`",
        venv.display()
    );
    venv
}

type Row = BTreeMap<String, Option<String>>;

/// The rows `reader` reads at `path`.
fn read_lake(reader: &str, path: &str, env: &[(&str, String)]) -> Vec<Row> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lake/read_table.py");
    let out = Command::new(python())
        .arg(&script)
        .args([reader, path])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run the python reader");
    assert!(
        out.status.success(),
        "{reader} could not read {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let value: BTreeMap<String, Value> = serde_json::from_str(line).expect("json row");
            value
                .into_iter()
                .map(|(k, v)| (k, v.as_str().map(str::to_string)))
                .collect()
        })
        .collect()
}

/// The source's rows as text, by id: `SELECT id, <expressions>` in UTC.
async fn source_rows(
    conn: &mut mysql_async::Conn,
    table: &str,
    columns: &[(&str, &str)],
) -> BTreeMap<String, Row> {
    conn.query_drop("SET time_zone = '+00:00'").await.unwrap();
    let select = columns
        .iter()
        .map(|(_, expr)| format!("CAST({expr} AS CHAR)"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows: Vec<mysql_async::Row> = conn
        .query(format!(
            "SELECT CAST(id AS CHAR), {select} FROM {table} ORDER BY id"
        ))
        .await
        .unwrap();
    rows.into_iter()
        .map(|row| {
            let id: String = row.get(0).unwrap();
            let mut values = Row::new();
            values.insert("id".to_string(), Some(id.clone()));
            for (i, (name, _)) in columns.iter().enumerate() {
                let value: Option<String> = row.get(i + 1).unwrap();
                values.insert(name.to_string(), value);
            }
            (id, values)
        })
        .collect()
}

/// A lake row without its change columns.
fn data(row: &Row) -> Row {
    row.iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The changelog replayed per key in `_seq` order: the table's current state.
fn replay(rows: &[Row]) -> BTreeMap<String, Row> {
    let mut ordered: Vec<&Row> = rows.iter().collect();
    ordered.sort_by_key(|r| {
        r["_seq"]
            .as_deref()
            .and_then(|s| s.parse::<i64>().ok())
            .expect("_seq")
    });
    let mut state = BTreeMap::new();
    for row in ordered {
        let id = row["id"].clone().expect("id");
        match row["_op"].as_deref() {
            Some("snapshot" | "insert" | "update") => {
                state.insert(id, data(row));
            }
            Some("delete") => {
                state.remove(&id);
            }
            Some("update_before") => {}
            other => panic!("unexpected _op {other:?}"),
        }
    }
    state
}

const TYPES_TABLE: &str = "CREATE TABLE t (
    id INT PRIMARY KEY,
    u BIGINT UNSIGNED,
    tiny TINYINT UNSIGNED,
    d DECIMAL(12,2),
    s VARCHAR(40),
    dt DATETIME,
    ts TIMESTAMP NULL,
    day DATE,
    tm TIME,
    b BLOB,
    f DOUBLE
)";

const TYPES_ROWS: &str =
    "INSERT INTO t SELECT seq, seq * 1000003 + 18446744000000000000 * (seq % 2),
    seq % 256, seq / 8, IF(seq % 11 = 0, NULL, CONCAT('row ', seq, ' é')),
    '2024-01-01 00:00:00' + INTERVAL seq MINUTE, '2024-02-01 00:00:00' + INTERVAL seq SECOND,
    '2020-01-01' + INTERVAL seq % 1000 DAY, SEC_TO_TIME(seq % 86400), UNHEX(HEX(seq)), seq / 4
  FROM seq_1_to_20000";

/// The columns as text: Delta holds TIME as microseconds since midnight.
fn typed_columns(delta: bool) -> Vec<(&'static str, &'static str)> {
    vec![
        ("u", "u"),
        ("tiny", "tiny"),
        ("d", "d"),
        ("s", "s"),
        ("dt", "dt"),
        ("ts", "ts"),
        ("day", "day"),
        (
            "tm",
            if delta {
                "TIME_TO_SEC(tm) * 1000000 + MICROSECOND(tm)"
            } else {
                "tm"
            },
        ),
        ("b", "LOWER(HEX(b))"),
        ("f", "f"),
    ]
}

/// Each test's own replica id: the tests of this file stream at the same time.
fn source(test: u32) -> String {
    common::mariadb_source_numbered(test)
}

fn lake_project(name: &str, kind: &str, path: &str, options: &str, db: &str) -> Project {
    let test = match name {
        "lakefull" => 1,
        "lakedelta" => 2,
        "lakekill" => 3,
        _ => 4,
    };
    Project::with_sink(
        name,
        &source(test),
        &format!("type = '{kind}', path = '{path}'"),
        options,
        &format!("SYNC TABLE {db}.* TO TABLE '${{database}}/${{table}}';"),
    )
}

async fn typed_database() -> (mysql_async::Conn, String) {
    database("lake", &format!("{TYPES_TABLE};\n{TYPES_ROWS}")).await
}

#[tokio::test]
async fn full_sync_to_parquet_reads_back_as_the_source_with_pyarrow_and_duckdb() {
    let (mut conn, db) = typed_database().await;
    let lake = common::temp_dir("lakefull").join("lake");
    let project = lake_project(
        "lakefull",
        "parquet",
        &lake.display().to_string(),
        "sync = 'full', chunk_rows = 3000, full_concurrency = 1",
        &db,
    );
    // Files of 1 MiB, not one per chunk: the 20,000 rows fill a few.
    let text = std::fs::read_to_string(&project.file).unwrap();
    std::fs::write(
        &project.file,
        text.replace("type = 'parquet',", "type = 'parquet', file_size_mb = 1,"),
    )
    .unwrap();
    let outcome = project.run(&[]);
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let expected = source_rows(&mut conn, &format!("{db}.t"), &typed_columns(false)).await;
    let table = lake.join(&db).join("t");
    let files: Vec<_> = std::fs::read_dir(&table)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "parquet"))
        .collect();
    assert!(
        (2..7).contains(&files.len()),
        "files of about 1 MiB holding several 3000-row chunks each: {}",
        files.len()
    );
    for reader in ["pyarrow", "duckdb"] {
        let rows = read_lake(reader, &table.display().to_string(), &[]);
        assert_eq!(rows.len(), expected.len(), "{reader}: every row once");
        assert!(rows.iter().all(|r| r["_op"].as_deref() == Some("snapshot")));
        let read: BTreeMap<String, Row> = rows
            .iter()
            .map(|r| (r["id"].clone().unwrap(), data(r)))
            .collect();
        assert_eq!(read.len(), expected.len(), "{reader}: no id twice");
        for (id, row) in &expected {
            assert_eq!(read.get(id), Some(row), "{reader}: row {id}");
        }
    }
}

#[tokio::test]
async fn a_delta_table_follows_inserts_updates_deletes_and_an_added_column() {
    let (mut conn, db) = typed_database().await;
    let dir = common::temp_dir("lakedelta");
    let lake = dir.join("lake");
    let project = lake_project(
        "lakedelta",
        "delta",
        &format!("file://{}", lake.display()),
        "sync = 'schema, full, incremental', incremental = 'dml, ddl', chunk_rows = 5000, \
         before_images = true",
        &db,
    );
    let mut run = project.spawn(&[]);
    project.wait_until_streaming(&mut run);
    run_sql(
        &mut conn,
        &format!(
            "USE {db};
UPDATE t SET s = CONCAT('changed ', id), d = d + 1 WHERE id % 7 = 0;
DELETE FROM t WHERE id % 13 = 0;
INSERT INTO t (id, u, s) SELECT seq + 100000, seq, 'new' FROM seq_1_to_500;
ALTER TABLE t ADD COLUMN extra VARCHAR(10) NULL;
UPDATE t SET extra = 'x' WHERE id % 5 = 0;
INSERT INTO t (id, s, extra) VALUES (200001, 'after ddl', 'y');
UPDATE t SET id = 300000 WHERE id = 3"
        ),
    )
    .await;
    project.catch_up_after(&mut run);
    let mut columns = typed_columns(true);
    columns.push(("extra", "extra"));
    let expected = source_rows(&mut conn, &format!("{db}.t"), &columns).await;
    let table = lake.join(&db).join("t").display().to_string();
    for reader in ["deltalake", "polars"] {
        let rows = read_lake(reader, &table, &[]);
        let state = replay(&rows);
        assert_eq!(
            state.len(),
            expected.len(),
            "{reader}: the keys of the source"
        );
        for (id, row) in &expected {
            assert_eq!(state.get(id), Some(row), "{reader}: row {id}");
        }
        let seqs: std::collections::BTreeSet<_> = rows
            .iter()
            .filter(|r| r["_op"].as_deref() != Some("snapshot"))
            .map(|r| r["_seq"].clone())
            .collect();
        let changes = rows
            .iter()
            .filter(|r| r["_op"].as_deref() != Some("snapshot"))
            .count();
        assert_eq!(
            seqs.len(),
            changes,
            "{reader}: every change once, each its own _seq"
        );
    }
    // `before_images`: an UPDATE's old row comes just before its new one.
    let rows = read_lake("deltalake", &table, &[]);
    let seq = |r: &Row| r["_seq"].as_deref().unwrap().parse::<i64>().unwrap();
    let before = rows
        .iter()
        .find(|r| r["id"].as_deref() == Some("7") && r["_op"].as_deref() == Some("update_before"))
        .expect("the before image of id 7's update");
    assert_eq!(before["s"].as_deref(), Some("row 7 é"), "{before:?}");
    let after = rows
        .iter()
        .find(|r| seq(r) == seq(before) + 1)
        .expect("the update after its before image");
    assert_eq!(after["_op"].as_deref(), Some("update"));
    assert_eq!(after["s"].as_deref(), Some("changed 7"), "{after:?}");
    // The DDL is recorded beside the tables.
    let ddl = read_lake("deltalake", &lake.join("_ddl").display().to_string(), &[]);
    assert!(
        ddl.iter().any(|r| r["statement"]
            .as_deref()
            .is_some_and(|s| s.contains("ADD COLUMN extra"))),
        "{ddl:?}"
    );
}

/// A database of its own (`prefix` and a unique suffix), with what `script` makes in it.
async fn database(prefix: &str, script: &str) -> (mysql_async::Conn, String) {
    let mut conn = mariadb().await;
    let db = unique(prefix);
    run_sql(
        &mut conn,
        &format!("CREATE DATABASE {db};\nUSE {db};\n{script}"),
    )
    .await;
    (conn, db)
}

/// A database with `t (id, v, s)` holding `rows` rows.
async fn keyed_database(prefix: &str, rows: u32) -> (mysql_async::Conn, String) {
    database(
        prefix,
        &format!(
            "CREATE TABLE t (id INT PRIMARY KEY, v INT, s VARCHAR(20));
INSERT INTO t SELECT seq, seq, 'initial' FROM seq_1_to_{rows}"
        ),
    )
    .await
}

/// Exactly once, read back: every snapshot row once (`snapshots` of them), no change twice
/// (each statement of these tests changes a key once, so a change read twice would repeat its
/// key, kind and transaction), and the changelog replayed per key is the source's `t`.
async fn assert_exactly_once(
    conn: &mut mysql_async::Conn,
    db: &str,
    rows: &[Row],
    snapshots: usize,
    what: &str,
) {
    let expected = source_rows(conn, &format!("{db}.t"), &[("v", "v"), ("s", "s")]).await;
    let snapshot_ids: Vec<_> = rows
        .iter()
        .filter(|r| r["_op"].as_deref() == Some("snapshot"))
        .map(|r| r["id"].clone())
        .collect();
    let distinct: std::collections::BTreeSet<_> = snapshot_ids.iter().collect();
    assert_eq!(
        snapshot_ids.len(),
        distinct.len(),
        "{what}: no snapshot row twice"
    );
    // Chunks read after a change see it (design: the stream then repeats it), so a row changed
    // during the full sync may be in the snapshot or not; every other row of the table's first
    // `snapshots` is there, and nothing else is.
    let changed: std::collections::BTreeSet<_> = rows
        .iter()
        .filter(|r| r["_op"].as_deref() != Some("snapshot"))
        .map(|r| &r["id"])
        .collect();
    let initial: std::collections::BTreeSet<_> =
        (1..=snapshots).map(|id| Some(id.to_string())).collect();
    let missing: Vec<_> = initial
        .iter()
        .filter(|id| !changed.contains(id) && !distinct.contains(id))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: every snapshot row once: rows never changed are missing from the snapshot: \
         {missing:?}"
    );
    let extra: Vec<_> = distinct
        .iter()
        .filter(|id| !initial.contains(**id) && !changed.contains(**id))
        .take(5)
        .collect();
    assert!(
        extra.is_empty(),
        "{what}: snapshot rows neither in the table nor changed: {extra:?}"
    );
    let changes: Vec<_> = rows
        .iter()
        .filter(|r| r["_op"].as_deref() != Some("snapshot"))
        .map(|r| (r["id"].clone(), r["_op"].clone(), r["_position"].clone()))
        .collect();
    let distinct: std::collections::BTreeSet<_> = changes.iter().collect();
    assert_eq!(changes.len(), distinct.len(), "{what}: no change twice");
    let state = replay(rows);
    assert_eq!(state.len(), expected.len(), "{what}");
    for (id, row) in &expected {
        assert_eq!(state.get(id), Some(row), "{what}: row {id}");
    }
}

#[tokio::test]
async fn killed_during_commits_the_lake_neither_loses_nor_repeats_a_row() {
    let (mut conn, db) = keyed_database("lakekill", 60_000).await;
    let dir = common::temp_dir("lakekill");
    let lake = dir.join("lake");
    let project = lake_project(
        "lakekill",
        "parquet",
        &lake.display().to_string(),
        "sync = 'full, incremental', chunk_rows = 4000, full_concurrency = 2",
        &db,
    );
    for round in 0..4u32 {
        let mut run = project.spawn(&[]);
        tokio::time::sleep(Duration::from_millis(700 + 400 * u64::from(round))).await;
        run_sql(
            &mut conn,
            &format!(
                "USE {db};
UPDATE t SET v = v + 1, s = 'round {round}' WHERE id % 3 = {m};
INSERT INTO t SELECT seq + {base}, seq, 'inserted' FROM seq_1_to_300;
DELETE FROM t WHERE id % 17 = {round}",
                m = round % 3,
                base = 100_000 * (round + 1)
            ),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        run.kill().expect("kill -9");
        run.wait().expect("wait");
    }
    project.catch_up();
    let table = lake.join(&db).join("t").display().to_string();
    let rows = read_lake("pyarrow", &table, &[]);
    assert_exactly_once(&mut conn, &db, &rows, 60_000, "parquet").await;
}

/// The S3 server `scripts/services up s3` runs, and its test credentials.
const S3_ENDPOINT: &str = "http://127.0.0.1:8333";
const S3_KEY: &str = "tributary";
const S3_SECRET: &str = "tributary-secret";

fn s3_env() -> Vec<(&'static str, String)> {
    vec![
        ("S3_ENDPOINT", S3_ENDPOINT.to_string()),
        ("S3_KEY", S3_KEY.to_string()),
        ("S3_SECRET", S3_SECRET.to_string()),
    ]
}

fn require_s3() {
    let reachable = std::net::TcpStream::connect_timeout(
        &"127.0.0.1:8333".parse().unwrap(),
        Duration::from_secs(2),
    )
    .is_ok();
    assert!(
        reachable,
        "the S3 server at {S3_ENDPOINT} is not running; start it with `scripts/services up s3`"
    );
}

/// Full sync, then changes streamed across a kill -9, to `kind` tables on S3: the replayed
/// table is the source's, every change once.
async fn s3_round_trip(kind: &str, reader: &str) {
    require_s3();
    let (mut conn, db) = keyed_database("lakes3", 20_000).await;
    let project = Project::with_sink(
        &format!("lakes3{kind}"),
        &source(if kind == "delta" { 5 } else { 6 }),
        &format!(
            "type = '{kind}', path = 's3://lake/{db}', 's3.endpoint' = '{S3_ENDPOINT}', \
             's3.access_key_id' = '{S3_KEY}', 's3.secret_access_key' = env('LAKE_S3_SECRET'), \
             commit_interval_ms = 300"
        ),
        "sync = 'full, incremental', chunk_rows = 2500",
        &format!("SYNC TABLE {db}.t TO TABLE '${{table}}';"),
    );
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { std::env::set_var("LAKE_S3_SECRET", S3_SECRET) };
    let mut run = project.spawn(&[]);
    project.wait_until_streaming(&mut run);
    run_sql(
        &mut conn,
        &format!(
            "USE {db};
UPDATE t SET v = v * 2, s = 'doubled' WHERE id % 4 = 0;
DELETE FROM t WHERE id % 9 = 0;
INSERT INTO t SELECT seq + 50000, seq, 'new' FROM seq_1_to_700"
        ),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    run.kill().expect("kill -9");
    run.wait().expect("wait");
    run_sql(
        &mut conn,
        &format!("USE {db};\nUPDATE t SET s = 'after the kill' WHERE id % 5 = 1"),
    )
    .await;
    project.catch_up();
    let rows = read_lake(reader, &format!("s3://lake/{db}/t"), &s3_env());
    assert_exactly_once(&mut conn, &db, &rows, 20_000, kind).await;
}

#[tokio::test]
async fn delta_tables_on_s3_survive_a_kill() {
    s3_round_trip("delta", "deltalake").await;
}

#[tokio::test]
async fn parquet_tables_on_s3_survive_a_kill() {
    s3_round_trip("parquet", "pyarrow").await;
}

#[tokio::test]
async fn check_probes_the_store_and_a_reset_project_does_not_append_to_its_old_tables() {
    let (_conn, db) = database(
        "lakereset",
        "CREATE TABLE t (id INT PRIMARY KEY);
INSERT INTO t SELECT seq FROM seq_1_to_100",
    )
    .await;
    let lake = common::temp_dir("lakereset").join("lake");
    let project = lake_project(
        "lakereset",
        "delta",
        &lake.display().to_string(),
        "sync = 'schema, full'",
        &db,
    );
    let check = common::tributary(&["check", project.file.to_str().unwrap()]);
    assert!(
        check
            .stdout
            .contains("delta tables can be written at file://"),
        "{}{}",
        check.stdout,
        check.stderr
    );
    assert_eq!(project.run(&[]).code, 0);
    let args = project.args("reset", &[]);
    let reset = common::tributary(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(reset.code, 0, "{}", reset.stderr);
    let again = project.run(&[]);
    assert_ne!(again.code, 0);
    assert!(
        again
            .stderr
            .contains("already holds data written by an earlier run"),
        "{}",
        again.stderr
    );
    let rows = read_lake(
        "deltalake",
        &lake.join(&db).join("t").display().to_string(),
        &[],
    );
    assert_eq!(rows.len(), 100, "the refused run wrote nothing");
}

#[tokio::test]
async fn a_table_added_to_a_running_lake_project_is_snapshotted_among_its_changes() {
    let (mut conn, db) = database(
        "lakeonline",
        "CREATE TABLE t (id INT PRIMARY KEY, v INT);
INSERT INTO t SELECT seq, seq FROM seq_1_to_100;
CREATE TABLE added (id INT PRIMARY KEY, v INT, s VARCHAR(20));
INSERT INTO added SELECT seq, seq, 'initial' FROM seq_1_to_30000",
    )
    .await;
    let lake = common::temp_dir("lakeonline").join("lake");
    let project = Project::with_sink(
        "lakeonline",
        &source(7),
        &format!(
            "type = 'delta', path = '{}', commit_interval_ms = 200",
            lake.display()
        ),
        "sync = 'schema, full, incremental', chunk_rows = 2000",
        &format!("SYNC TABLE {db}.t TO TABLE '${{database}}/${{table}}';"),
    );
    project.catch_up();
    project.append(&format!(
        "SYNC TABLE {db}.added TO TABLE '${{database}}/${{table}}';"
    ));
    let mut run = project.spawn(&[]);
    project.wait_until_streaming(&mut run);
    for round in 0..5 {
        run_sql(
            &mut conn,
            &format!(
                "USE {db};
UPDATE added SET v = v + 1000, s = 'round {round}' WHERE id % 97 = {round};
DELETE FROM added WHERE id % 1009 = {round}"
            ),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    project.catch_up_after(&mut run);
    // A re-snapshot of some rows on demand: more snapshot rows, the same state.
    let args = project.args(
        "snapshot",
        &[&format!("{db}.added"), "--where", "id <= 100"],
    );
    let asked = common::tributary(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(asked.code, 0, "{}", asked.stderr);
    let resnapshot = project.catch_up();
    let expected = source_rows(&mut conn, &format!("{db}.added"), &[("v", "v"), ("s", "s")]).await;
    let rows = read_lake(
        "deltalake",
        &lake.join(&db).join("added").display().to_string(),
        &[],
    );
    // Every row the source still has was snapshotted; those the re-snapshot matched twice.
    let mut snapshots: BTreeMap<String, usize> = BTreeMap::new();
    for row in rows
        .iter()
        .filter(|r| r["_op"].as_deref() == Some("snapshot"))
    {
        *snapshots.entry(row["id"].clone().unwrap()).or_default() += 1;
    }
    for id in expected.keys() {
        let wanted = if id.parse::<u32>().unwrap() <= 100 {
            2
        } else {
            1
        };
        assert!(
            snapshots.get(id).copied().unwrap_or(0) >= wanted,
            "row {id}: {:?} snapshot rows\n{}{}",
            snapshots.get(id),
            resnapshot.stdout,
            resnapshot.stderr
        );
    }
    let state = replay(&rows);
    assert_eq!(state.len(), expected.len());
    for (id, row) in &expected {
        assert_eq!(state.get(id), Some(row), "row {id}");
    }
}

/// The rows of an upsert table by id, each id once, none a delete.
fn upsert_state(rows: &[Row], what: &str) -> BTreeMap<String, Row> {
    let mut state = BTreeMap::new();
    for row in rows {
        let op = row["_op"].as_deref();
        assert!(
            matches!(op, Some("snapshot" | "insert" | "update")),
            "{what}: an upsert table holds rows, not changes: {row:?}"
        );
        let id = row["id"].clone().expect("id");
        assert!(
            state.insert(id.clone(), data(row)).is_none(),
            "{what}: id {id} twice"
        );
    }
    state
}

#[tokio::test]
async fn an_upsert_delta_table_holds_the_source_state_through_changes_ddl_and_a_kill() {
    let (mut conn, db) = database(
        "lakeupsert",
        &format!(
            "{TYPES_TABLE};\n{TYPES_ROWS};
CREATE TABLE small (id INT PRIMARY KEY, v INT);
INSERT INTO small SELECT seq, seq FROM seq_1_to_50"
        ),
    )
    .await;
    let lake = common::temp_dir("lakeupsert").join("lake");
    let project = Project::with_sink(
        "lakeupsert",
        &source(8),
        &format!(
            "type = 'delta', path = '{}', commit_interval_ms = 300, file_size_mb = 1",
            lake.display()
        ),
        "sync = 'schema, full, incremental', incremental = 'dml, ddl', chunk_rows = 2000, \
         mode = 'upsert'",
        &format!("SYNC TABLE {db}.* TO TABLE '${{table}}';"),
    );
    let mut run = project.spawn(&[]);
    project.wait_until_streaming(&mut run);
    run_sql(
        &mut conn,
        &format!(
            "USE {db};
UPDATE t SET s = CONCAT('changed ', id), d = d + 1 WHERE id % 7 = 0;
DELETE FROM t WHERE id % 13 = 0;
INSERT INTO t (id, u, s) SELECT seq + 100000, seq, 'new' FROM seq_1_to_500;
UPDATE t SET s = 'twice' WHERE id BETWEEN 100001 AND 100010;
ALTER TABLE t ADD COLUMN extra VARCHAR(10) NULL;
UPDATE t SET extra = 'x' WHERE id % 5 = 0;
UPDATE t SET id = 300000 WHERE id = 3;
TRUNCATE TABLE small;
INSERT INTO small VALUES (7, 70), (8, 80)"
        ),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    run.kill().expect("kill -9");
    run.wait().expect("wait");
    run_sql(
        &mut conn,
        &format!(
            "USE {db};
UPDATE t SET s = 'after the kill', extra = 'z' WHERE id % 6 = 1;
DELETE FROM t WHERE id BETWEEN 100400 AND 100450;
INSERT INTO t (id, s, extra) VALUES (200001, 'after ddl', 'y');
UPDATE small SET v = v + 1 WHERE id = 8"
        ),
    )
    .await;
    project.catch_up();
    let mut columns = typed_columns(true);
    columns.push(("extra", "extra"));
    let expected = source_rows(&mut conn, &format!("{db}.t"), &columns).await;
    let small = source_rows(&mut conn, &format!("{db}.small"), &[("v", "v")]).await;
    assert_eq!(small.len(), 2, "the TRUNCATE and the two rows after it");
    for reader in ["deltalake", "polars"] {
        let table = lake.join("t").display().to_string();
        let state = upsert_state(&read_lake(reader, &table, &[]), reader);
        assert_eq!(state.len(), expected.len(), "{reader}: the source's keys");
        for (id, row) in &expected {
            assert_eq!(state.get(id), Some(row), "{reader}: row {id}");
        }
        let table = lake.join("small").display().to_string();
        let state = upsert_state(&read_lake(reader, &table, &[]), reader);
        assert_eq!(state, small, "{reader}: the truncated table");
    }
}
