//! `exactly_once = true` against the real MariaDB and Kafka: messages and the progress they
//! make are committed in the same Kafka transactions, so a consumer reading committed data sees
//! every row once — after a restart from a checkpoint file that lags Kafka, and after `kill -9`.
//! (librdkafka consumers read committed data by default, as `common::consume_all` does.)

mod common;

use std::time::Duration;

use mysql_async::prelude::*;
use serde_json::Value;

fn project(name: &str, options: &str, syncs: &str) -> common::Project {
    common::Project::new(
        name,
        &common::mariadb_source(name),
        &format!("topic_partitions = 3, exactly_once = true{options}"),
        syncs,
    )
}

fn read_checkpoint(project: &common::Project) -> Value {
    serde_json::from_slice(&std::fs::read(project.checkpoint_path()).expect("checkpoint"))
        .expect("checkpoint JSON")
}

fn write_checkpoint(project: &common::Project, checkpoint: &Value) {
    std::fs::write(
        project.checkpoint_path(),
        serde_json::to_vec_pretty(checkpoint).expect("JSON"),
    )
    .expect("write checkpoint");
}

#[tokio::test]
async fn full_sync_chunks_commit_with_their_progress() {
    common::require_kafka();
    let db = common::unique("eo_full");
    let rows = 30_000;
    let mut conn = common::mariadb().await;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE DATABASE {db};
CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(20));
INSERT INTO {db}.t SELECT seq, CONCAT('v', seq) FROM {db}.seq_1_to_{rows}"
        ),
    )
    .await;
    let topic = common::unique("eo_full");
    let project = project(
        "eo_full",
        ", sync = 'schema, full', chunk_rows = 4000, full_concurrency = 2",
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    project.catch_up();

    // A crash between a chunk's commit and the file's save leaves the file behind Kafka; the
    // worst case is a file that knows no finished chunk at all.
    let mut checkpoint = read_checkpoint(&project);
    checkpoint["full_done"] = Value::Bool(false);
    let chunks = checkpoint["tables"][format!("{db}.t")]["chunks"]
        .as_array_mut()
        .expect("chunks");
    assert!(chunks.len() >= 8, "the table was read in chunks");
    for chunk in chunks {
        chunk["done"] = Value::Bool(false);
    }
    write_checkpoint(&project, &checkpoint);

    let rerun = project.catch_up();
    assert!(
        rerun.stdout.contains("0 rows read"),
        "the progress committed to Kafka says every chunk is done: {}",
        rerun.stdout
    );
    let messages = common::consume_all(&topic, rows, Duration::from_secs(60));
    let seen = common::count_by_key(&messages);
    assert_eq!(seen.len(), rows, "every row is in Kafka");
    assert_eq!(messages.len(), rows, "and only once");
}

#[tokio::test]
async fn a_checkpoint_file_behind_kafka_does_not_resend_committed_changes() {
    common::require_kafka();
    let db = common::unique("eo_stale");
    let mut conn = common::mariadb().await;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE DATABASE {db};
CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT);
INSERT INTO {db}.t VALUES (1, 0)"
        ),
    )
    .await;
    let topic = common::unique("eo_stale");
    let project = project(
        "eo_stale",
        ", sync = 'schema, full, incremental', incremental = 'dml, ddl'",
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    project.catch_up();
    let stale = read_checkpoint(&project);

    for i in 2..=51 {
        conn.query_drop(format!(
            "INSERT INTO {db}.t VALUES ({i}, 0); UPDATE {db}.t SET v = v + 1 WHERE id = 1"
        ))
        .await
        .expect("write");
    }
    common::run_sql(
        &mut conn,
        &format!("ALTER TABLE {db}.t ADD COLUMN w INT;\nINSERT INTO {db}.t VALUES (52, 0, 7)"),
    )
    .await;
    let second = project.catch_up();
    // 101 row changes and the DDL on each of the topic's 3 partitions: the messages sent.
    assert!(
        second.stdout.contains("104 changes sent"),
        "{}",
        second.stdout
    );

    // Back to the file from before those changes: Kafka's committed progress (position and
    // schema history) must win.
    write_checkpoint(&project, &stale);
    let third = project.catch_up();
    assert!(third.stdout.contains("0 changes sent"), "{}", third.stdout);
    common::run_sql(&mut conn, &format!("UPDATE {db}.t SET w = 8 WHERE id = 52")).await;
    let fourth = project.catch_up();
    assert!(fourth.stdout.contains("1 change sent"), "{}", fourth.stdout);

    // 1 snapshot row + 50 inserts + 50 updates + the DDL on each of 3 partitions + 1 insert
    // + 1 update.
    let messages = common::consume_all(&topic, 106, Duration::from_secs(60));
    assert_eq!(messages.len(), 106, "every change once");
    let last: Value = messages
        .iter()
        .map(|m| serde_json::from_str::<Value>(&m.payload).expect("JSON"))
        .find(|v| v["postStruct"]["w"] == 8)
        .expect("the change after the restart, decoded with the schema after the DDL");
    assert_eq!(last["recordType"], "UPDATE");
    // The count of messages incremental sync sent survives the stale file too.
    let status = project.status();
    assert_eq!(status["incremental_changes"], 105, "{status}");
}

#[tokio::test]
async fn kill_9_mid_stream_then_rerun_sends_every_row_once() {
    common::require_kafka();
    let (db, topic, project, mut conn) =
        common::streamed_table("eo_kill", "id INT PRIMARY KEY, v VARCHAR(20)", |syncs| {
            project("eo_kill", ", sync = 'schema, full, incremental'", syncs)
        })
        .await;
    let rows = 20_000;
    let seen =
        common::insert_through_a_kill(&project, &mut conn, &format!("{db}.t"), &topic, rows).await;
    assert_eq!(seen.len(), rows, "every inserted row is in Kafka");
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(repeated.is_empty(), "rows sent twice: {repeated:?}");
}

#[tokio::test]
async fn check_names_the_state_topic() {
    common::require_kafka();
    let mut conn = common::mariadb().await;
    let (db, _) = common::new_table(&mut conn, "eo_check", "id INT PRIMARY KEY").await;
    let project = project(
        "eo_check",
        ", sync = 'schema, full'",
        &format!("SYNC TABLE {db}.t TO TOPIC 'eo_check';"),
    );
    let outcome = common::tributary(&["check", &project.file.display().to_string()]);
    assert_eq!(outcome.code, 0, "{}{}", outcome.stdout, outcome.stderr);
    assert!(
        outcome
            .stdout
            .contains("exactly_once: progress goes to __tributary_state in Kafka transactions"),
        "{}",
        outcome.stdout
    );
}

/// With read_committed, a consumer's end of partition stops at the first open transaction: an
/// unrelated producer's transaction open on the state topic made a restart stop reading before
/// the project's newest commits, and send them again.
#[tokio::test]
async fn another_open_transaction_on_the_state_topic_does_not_hide_committed_progress() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    common::require_kafka();
    let db = common::unique("eo_lso");
    let mut conn = common::mariadb().await;
    common::run_sql(
        &mut conn,
        &format!("CREATE DATABASE {db};\nCREATE TABLE {db}.t (id INT PRIMARY KEY, v INT)"),
    )
    .await;
    let start: mysql_async::Row = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .expect("binlog position")
        .expect("a binlog");
    let (file, pos): (String, u64) = (start.get(0).expect("file"), start.get(1).expect("pos"));
    for i in 1..=20 {
        conn.query_drop(format!("INSERT INTO {db}.t VALUES ({i}, 0)"))
            .await
            .expect("insert");
    }

    // Another producer's transaction, open on the state topic before this project commits.
    let other: BaseProducer = common::kafka_config()
        .set("transactional.id", common::unique("eo_lso_other"))
        .create()
        .expect("producer");
    other
        .init_transactions(Duration::from_secs(30))
        .expect("init");
    other.begin_transaction().expect("begin");
    other
        .send(
            BaseRecord::to("__tributary_state")
                .partition(0)
                .key("someone-else/x")
                .payload("{}"),
        )
        .map_err(|(e, _)| e)
        .expect("send");
    other.flush(Duration::from_secs(10)).expect("flush");

    let topic = common::unique("eo_lso");
    let project = project(
        "eo_lso",
        &format!(", sync = 'schema, incremental', start_position = '{file}:{pos}'"),
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    let first = project.catch_up();
    assert!(
        first.stdout.contains("sync: 20 changes sent"),
        "{}",
        first.stdout
    );

    // The file falls behind Kafka (a crash right after the stream started).
    let mut stale = read_checkpoint(&project);
    stale["incremental"] =
        serde_json::json!({ "file": file, "pos": pos, "gtid": stale["incremental"]["gtid"] });
    stale["incremental_changes"] = 0.into();
    stale["exactly_once_commits"] = 0.into();
    write_checkpoint(&project, &stale);

    // The restart reads the state topic to its end: it waits for the other transaction, which
    // ends a moment later.
    let args = project.args("run", &["--until-caught-up"]);
    let restart = std::thread::spawn(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
            .args(args)
            .output()
            .expect("run")
    });
    std::thread::sleep(Duration::from_secs(3));
    other
        .abort_transaction(Duration::from_secs(30))
        .expect("abort");
    let output = restart.join().expect("restart");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("sync: 0 changes sent"),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let messages = common::consume_all(&topic, 20, Duration::from_secs(30));
    assert_eq!(messages.len(), 20, "every change once");
}

/// After a fence librdkafka refuses every message with a bare "fatal error". A worker whose
/// stream was taken over while it was frozen read that as an ordinary refusal and stopped with
/// exit 2 instead of standing by: the refusal must say the producer was fenced.
#[tokio::test]
async fn a_fenced_producers_refusal_says_it_was_fenced() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use tributary::sink::kafka::{Acks, KafkaSink};
    common::require_kafka();
    let topic = common::unique("eo_fenced");
    let admin: AdminClient<_> = common::kafka_config().create().expect("admin client");
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(20))),
        )
        .await
        .expect("create topic request");
    created[0].as_ref().expect("topic created");
    let project = project(
        "eo_fenced",
        "",
        &format!("SYNC TABLE d.t TO TOPIC '{topic}';"),
    );
    let sink = tributary::project::ProjectFile::load(&project.file)
        .expect("the project")
        .sink;
    let id = common::unique("eo_fenced");
    let fenced = KafkaSink::transactional(&sink, 1 << 20, &id, &[])
        .await
        .expect("a transactional producer");
    fenced.begin().expect("begin");
    let _newer = KafkaSink::transactional(&sink, 1 << 20, &id, &[])
        .await
        .expect("a newer producer with the same id");
    let acks = Acks::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let message = std::iter::once((0, Some(&b"k"[..]), &b"v"[..]));
        match fenced.send_all(&topic, message, 2, &acks).await {
            Err(refused) => break refused,
            Ok(()) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the fenced producer kept taking messages"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let error = tributary::Error::Kafka {
        context: "sending".into(),
        source: refused.error,
    };
    assert!(error.is_fenced(), "not told apart as fenced: {error}");
}
