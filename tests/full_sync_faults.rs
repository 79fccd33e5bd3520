//! Full sync through source faults, against a private MariaDB (`common::PrivateMariaDb`) that the
//! tests stop and start while the real Kafka takes the rows: a source that comes back within the
//! retries is ridden out (every row arrives; with `exactly_once` each once), one that stays away
//! ends the run with exit 2 and the finished chunks kept, and one that cannot be reached before
//! anything was written is exit 1.

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use serde_json::Value;

/// A private server with `db.items`: `rows` rows (id, a group, text).
async fn server_with_items(rows: u64) -> (common::PrivateMariaDb, String) {
    let server = common::PrivateMariaDb::start(&[]).await;
    let db = common::unique("fault");
    let mut conn = server.conn().await;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE DATABASE {db};
CREATE TABLE {db}.items (id BIGINT PRIMARY KEY, grp INT NOT NULL, name VARCHAR(40), note TEXT);
INSERT INTO {db}.items SELECT seq, seq % 5, CONCAT('item ', seq), REPEAT('n', 40)
  FROM {db}.seq_1_to_{rows}"
        ),
    )
    .await;
    drop(conn);
    (server, db)
}

fn project(
    name: &str,
    server: &common::PrivateMariaDb,
    options: &str,
    syncs: &str,
) -> common::Project {
    common::Project::new(
        name,
        &server.source_options(),
        &format!("sync = 'schema, full', topic_partitions = 3, batch_rows = 500{options}"),
        syncs,
    )
}

/// `run --until-caught-up` in the background, its output kept for the end.
fn spawn(project: &common::Project) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(project.args("run", &["--until-caught-up"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tributary")
}

fn checkpoint(project: &common::Project) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(project.checkpoint_path()).ok()?).ok()
}

fn chunks_done(project: &common::Project) -> usize {
    checkpoint(project)
        .and_then(|c| {
            c["tables"].as_object().map(|tables| {
                tables
                    .values()
                    .flat_map(|t| t["chunks"].as_array().cloned().unwrap_or_default())
                    .filter(|chunk| chunk["done"] == true)
                    .count()
            })
        })
        .unwrap_or(0)
}

/// Waits until `chunks` chunks are checkpointed while the run is still going.
fn wait_for_chunks(project: &common::Project, run: &mut Child, chunks: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while chunks_done(project) < chunks {
        assert!(
            run.try_wait().expect("wait").is_none(),
            "the run ended before {chunks} chunks were done"
        );
        assert!(Instant::now() < deadline, "no chunk finished within 120 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn ids(messages: &[common::Consumed]) -> HashMap<i64, usize> {
    let mut seen = HashMap::new();
    for m in messages {
        let key: Value = serde_json::from_str(m.key.as_deref().expect("a key")).expect("JSON key");
        *seen.entry(key["id"].as_i64().expect("id")).or_insert(0) += 1;
    }
    seen
}

/// Stops the source for 10 s in the middle of full sync, then starts it again; the run rides it
/// out. Returns the run's exit code, stdout and stderr.
async fn stop_the_source_mid_sync(
    server: &mut common::PrivateMariaDb,
    project: &common::Project,
) -> (Option<i32>, String, String) {
    let mut run = spawn(project);
    wait_for_chunks(project, &mut run, 2);
    server.stop();
    let mid_sync = checkpoint(project).expect("checkpoint");
    assert_eq!(
        mid_sync["full_done"], false,
        "the source must stop mid-sync for this test to mean anything"
    );
    std::thread::sleep(Duration::from_secs(10));
    if run.try_wait().expect("wait").is_some() {
        let output = run.wait_with_output().expect("wait");
        panic!(
            "the run ended ({}) instead of waiting for the source: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    server.start_again().await;
    let output = run.wait_with_output().expect("wait");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_source_stopped_for_10_s_mid_chunk_is_ridden_out() {
    common::require_kafka();
    let rows = 200_000u64;
    let (mut server, db) = server_with_items(rows).await;
    let topic = common::unique("fault_alo");
    let project = project(
        "fault_alo",
        &server,
        ", chunk_rows = 2000, full_concurrency = 2",
        &format!("SYNC TABLE {db}.items TO TOPIC '{topic}';"),
    );
    let (code, stdout, stderr) = stop_the_source_mid_sync(&mut server, &project).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("full sync of table {db}.items, chunk "))
            && stderr.contains("trying again after a pause"),
        "the readers met the fault and retried their chunks: {stderr}"
    );
    assert_eq!(checkpoint(&project).expect("checkpoint")["full_done"], true);

    // At least once: the rows a retried chunk had sent before the fault may come twice.
    let messages = common::consume_all(&topic, rows as usize, Duration::from_secs(120));
    let seen = ids(&messages);
    assert_eq!(seen.len() as u64, rows, "every row arrives");
    assert!(seen.keys().all(|id| (1..=rows as i64).contains(id)));
}

#[tokio::test]
async fn with_exactly_once_a_retried_chunk_repeats_nothing() {
    common::require_kafka();
    let rows = 200_000u64;
    let (mut server, db) = server_with_items(rows).await;
    let topic = common::unique("fault_eo");
    let project = project(
        "fault_eo",
        &server,
        ", chunk_rows = 10000, full_concurrency = 2, exactly_once = true",
        &format!("SYNC TABLE {db}.items TO TOPIC '{topic}';"),
    );
    let (code, stdout, stderr) = stop_the_source_mid_sync(&mut server, &project).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("trying again after a pause"),
        "the readers met the fault and retried their chunks: {stderr}"
    );

    // `consume_all` reads committed data: an aborted attempt's rows are not seen.
    let messages = common::consume_all(&topic, rows as usize, Duration::from_secs(120));
    let seen = ids(&messages);
    assert_eq!(seen.len() as u64, rows, "every row arrives");
    assert_eq!(messages.len() as u64, rows, "and only once");
}

#[tokio::test]
async fn a_source_that_stays_away_ends_the_run_with_exit_2_and_the_finished_chunks_kept() {
    common::require_kafka();
    let rows = 200_000u64;
    let (mut server, db) = server_with_items(rows).await;
    let topic = common::unique("fault_gone");
    let project = project(
        "fault_gone",
        &server,
        ", chunk_rows = 2000, full_concurrency = 2",
        &format!("SYNC TABLE {db}.items TO TOPIC '{topic}';"),
    );
    let mut run = spawn(&project);
    wait_for_chunks(&project, &mut run, 2);
    server.stop();
    let output = run.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("error: full sync of table {db}.items, chunk "))
            && stderr.contains("still failing after 6 retries")
            && stderr.contains("rerun once the source is reachable"),
        "the error names the table, the chunk and what to do: {stderr}"
    );
    let kept = checkpoint(&project).expect("checkpoint");
    assert_eq!(kept["full_done"], false);
    let done = chunks_done(&project);
    assert!(done >= 2, "the finished chunks are kept: {done}");

    // The rerun reads only what is not checkpointed, and every row is there.
    server.start_again().await;
    let outcome = project.run(&["--until-caught-up"]);
    assert_eq!(outcome.code, 0, "{}{}", outcome.stdout, outcome.stderr);
    let read: u64 = outcome
        .stdout
        .split("run done: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a summary line: {}", outcome.stdout));
    assert!(
        read <= rows - 2 * 2000,
        "the rerun skipped the {done} finished chunks but read {read} rows"
    );
    let messages = common::consume_all(&topic, rows as usize, Duration::from_secs(120));
    assert_eq!(ids(&messages).len() as u64, rows, "every row arrives");
}

/// Before anything was written, an unreachable source is "nothing was written" (exit 1), at once.
#[tokio::test]
async fn an_unreachable_source_at_start_up_is_exit_1() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let project = common::Project::new(
        "fault_nosrc",
        &format!("type = 'mariadb', host = '127.0.0.1', port = {port}, user = 'root'"),
        "sync = 'schema, full'",
        "SYNC TABLE shop.orders TO TOPIC 'orders';",
    );
    let outcome = project.run(&["--until-caught-up"]);
    assert_eq!(outcome.code, 1, "{}{}", outcome.stdout, outcome.stderr);
    assert!(
        outcome.stderr.contains(&format!(
            "cannot connect to source `src` at 127.0.0.1:{port}"
        )) && outcome.stderr.contains("nothing was written"),
        "{}",
        outcome.stderr
    );
    assert!(
        !project.checkpoint_path().exists(),
        "nothing was written, not even a checkpoint"
    );
}

/// A server that takes the connection but never answers (stopped, overloaded) is a fault to
/// retry, not a wrong project: a full sync that reconnects to it waits for it.
#[tokio::test]
async fn a_connect_timeout_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("address").port();
    // Accepts and holds connections without a word.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let text = format!(
        "CREATE SOURCE src WITH (type = 'mariadb', host = '127.0.0.1', port = {port}, user = 'root');
CREATE SINK kafka WITH (type = 'kafka', 'bootstrap.servers' = '127.0.0.1:9092');
CREATE PROJECT p FROM src TO kafka;
SYNC TABLE shop.orders TO TOPIC 'orders';
"
    );
    let project =
        tributary::project::parse_project(std::path::Path::new("p.sql"), &text).expect("project");
    let error = tributary::source::connect(&project.source)
        .await
        .expect_err("no answer");
    assert_eq!(error.kind(), tributary::ErrorKind::Transient, "{error}");
    assert!(
        error.to_string().contains("no answer within 10 s"),
        "{error}"
    );
}

/// The private server keeps its data and its port across a clean stop and a start.
#[tokio::test]
async fn a_private_mariadb_stops_and_starts_on_its_port() {
    let mut server = common::PrivateMariaDb::start(&["binlog_row_image=MINIMAL"]).await;
    let mut conn = server.conn().await;
    common::run_sql(
        &mut conn,
        "CREATE DATABASE kept;\nCREATE TABLE kept.t (id INT PRIMARY KEY);\nINSERT INTO kept.t VALUES (1), (2)",
    )
    .await;
    let image: String = conn
        .query_first("SELECT @@GLOBAL.binlog_row_image")
        .await
        .expect("query")
        .expect("a row");
    assert_eq!(image, "MINIMAL", "the extra config line is in effect");
    drop(conn);
    server.stop();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", server.port())).is_err(),
        "nothing answers while it is stopped"
    );
    server.start_again().await;
    let mut conn = server.conn().await;
    let rows: u64 = conn
        .query_first("SELECT COUNT(*) FROM kept.t")
        .await
        .expect("query")
        .expect("a row");
    assert_eq!(rows, 2, "the data dir survived the restart");
    let dir = server.dir().to_path_buf();
    drop(conn);
    drop(server);
    assert!(!dir.exists(), "dropping the handle removes the data dir");
}
