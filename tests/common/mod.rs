//! Connections to the real services that `scripts/services up` starts on loopback.
//!
//! A service that cannot be reached fails the test with a message naming it and saying how to
//! start it; tests never skip silently.

#![allow(dead_code)]

mod private_mariadb;
mod secure_kafka;

// Not every test binary uses them.
#[allow(unused_imports)]
pub use private_mariadb::PrivateMariaDb;
#[allow(unused_imports)]
pub use secure_kafka::SecureKafka;

/// The SASL users of [`SecureKafka`]: (mechanism, user, password).
pub fn secure_kafka_users() -> &'static [(&'static str, &'static str, &'static str)] {
    secure_kafka::USERS
}

use std::time::Duration;

use mysql_async::{Conn, Opts};
use rdkafka::ClientConfig;

/// Kafka bootstrap servers (env `TRIBUTARY_TEST_KAFKA`, default the local broker).
pub fn kafka_bootstrap() -> String {
    std::env::var("TRIBUTARY_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".to_string())
}

/// MariaDB URL (env `TRIBUTARY_TEST_MARIADB`).
pub fn mariadb_url() -> String {
    std::env::var("TRIBUTARY_TEST_MARIADB")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3307".to_string())
}

/// OceanBase seekdb URL (env `TRIBUTARY_TEST_SEEKDB`).
pub fn seekdb_url() -> String {
    std::env::var("TRIBUTARY_TEST_SEEKDB")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:2881".to_string())
}

/// Dolt URL (env `TRIBUTARY_TEST_DOLT`): the MySQL-flavor binlog primary, with GTIDs.
pub fn dolt_url() -> String {
    std::env::var("TRIBUTARY_TEST_DOLT")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3308".to_string())
}

async fn connect(service: &str, url: &str) -> Conn {
    let opts = Opts::from_url(url).unwrap_or_else(|e| panic!("bad {service} URL {url}: {e}"));
    match tokio::time::timeout(Duration::from_secs(20), Conn::new(opts)).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!(
            "{service} at {url} is not reachable: {e}. Start it with `scripts/services up` \
             (CI={}: a missing service fails the run)",
            ci()
        ),
        Err(_) => panic!(
            "{service} at {url} did not answer within 20 s. Start it with `scripts/services up`"
        ),
    }
}

pub async fn mariadb() -> Conn {
    connect("MariaDB", &mariadb_url()).await
}

pub async fn dolt() -> Conn {
    connect("Dolt", &dolt_url()).await
}

pub async fn seekdb() -> Conn {
    connect("OceanBase seekdb", &seekdb_url()).await
}

/// Producer/consumer/admin settings for the test broker.
pub fn kafka_config() -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", kafka_bootstrap())
        .set("socket.timeout.ms", "10000");
    config
}

/// Fails with a clear message when the broker does not answer a metadata request.
pub fn require_kafka() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = kafka_config()
        .create()
        .unwrap_or_else(|e| panic!("Kafka client setup failed: {e}"));
    if let Err(e) = consumer.fetch_metadata(None, Duration::from_secs(15)) {
        panic!(
            "Kafka at {} is not reachable: {e}. Start it with `scripts/services up`",
            kafka_bootstrap()
        );
    }
}

pub fn ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// A name unique to this test process, for databases and topics that tests create.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// What a `tributary` command printed and how it exited.
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the `tributary` binary built for this test run.
pub fn tributary(args: &[&str]) -> Outcome {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(args)
        .output()
        .expect("run tributary");
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A fresh directory for a test's project file and state.
pub fn temp_dir(prefix: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// One consumed message.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub partition: i32,
    pub key: Option<String>,
    pub payload: String,
}

/// Reads a topic from the beginning until `expected` messages arrived and the topic stays quiet
/// for a moment (so extra messages are seen too), or until `timeout`. HEARTBEAT records, which an
/// idle stream sends every few seconds, are left out: tests count changes.
pub fn consume_all(topic: &str, expected: usize, timeout: Duration) -> Vec<Consumed> {
    consume(topic, expected, timeout, false)
}

/// [`consume_all`] with the HEARTBEAT records.
pub fn consume_with_heartbeats(topic: &str, expected: usize, timeout: Duration) -> Vec<Consumed> {
    consume(topic, expected, timeout, true)
}

fn consume(topic: &str, expected: usize, timeout: Duration, heartbeats: bool) -> Vec<Consumed> {
    use rdkafka::Message;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = kafka_config()
        .set("group.id", unique("test_consumer"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut messages = Vec::new();
    let deadline = std::time::Instant::now() + timeout;
    let mut quiet_since = std::time::Instant::now();
    while std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                quiet_since = std::time::Instant::now();
                if !heartbeats && is_heartbeat(message.payload().unwrap_or_default()) {
                    continue;
                }
                messages.push(Consumed {
                    partition: message.partition(),
                    key: message
                        .key()
                        .map(|k| String::from_utf8_lossy(k).into_owned()),
                    payload: String::from_utf8_lossy(message.payload().unwrap_or_default())
                        .into_owned(),
                });
            }
            Some(Err(e)) => panic!("consuming {topic}: {e}"),
            None => {
                if messages.len() >= expected && quiet_since.elapsed() > Duration::from_secs(2) {
                    break;
                }
            }
        }
    }
    messages
}

/// Runs SQL statements separated by `;\n` (comment lines skipped).
pub async fn run_sql(conn: &mut Conn, script: &str) {
    use mysql_async::prelude::Queryable;
    for statement in script.split(";\n") {
        let statement: String = statement
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        if !statement.trim().is_empty() {
            conn.query_drop(&statement)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
    }
}

/// A project file and its state dir in a fresh temp dir: `CREATE SOURCE src WITH ({source})`,
/// a sink for the test broker and `CREATE PROJECT {name} ... WITH ({options})`.
pub struct Project {
    pub file: std::path::PathBuf,
    pub state: std::path::PathBuf,
}

impl Project {
    pub fn new(name: &str, source: &str, options: &str, syncs: &str) -> Project {
        let sink = format!(
            "type = 'kafka', 'bootstrap.servers' = '{}'",
            kafka_bootstrap()
        );
        Project::with_sink(name, source, &sink, options, syncs)
    }

    /// A project whose sink (`CREATE SINK kafka WITH ({sink})`) is the test's own.
    pub fn with_sink(name: &str, source: &str, sink: &str, options: &str, syncs: &str) -> Project {
        let dir = temp_dir(name);
        let file = dir.join(format!("{name}.sql"));
        std::fs::write(
            &file,
            format!(
                "CREATE SOURCE src WITH ({source});
CREATE SINK kafka WITH ({sink});
CREATE PROJECT {name} FROM src TO kafka WITH ({options});
{syncs}
"
            ),
        )
        .expect("write project");
        Project {
            file,
            state: dir.join("state"),
        }
    }

    /// The directory the project file is in (a fresh temp dir).
    pub fn dir(&self) -> std::path::PathBuf {
        self.file.parent().expect("project dir").to_path_buf()
    }

    /// Adds statements (SYNCs) to the project file, as a user editing it would.
    pub fn append(&self, statements: &str) {
        let mut text = std::fs::read_to_string(&self.file).expect("read project");
        text.push_str(statements);
        text.push('\n');
        std::fs::write(&self.file, text).expect("write project");
    }

    /// `command FILE --state-dir STATE extra...`
    pub fn args(&self, command: &str, extra: &[&str]) -> Vec<String> {
        let mut args = vec![
            command.to_string(),
            self.file.display().to_string(),
            "--state-dir".to_string(),
            self.state.display().to_string(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    }

    pub fn run(&self, extra: &[&str]) -> Outcome {
        let args = self.args("run", extra);
        tributary(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// `run --until-caught-up`, which must succeed.
    pub fn catch_up(&self) -> Outcome {
        let outcome = self.run(&["--until-caught-up"]);
        assert_eq!(outcome.code, 0, "{}{}", outcome.stdout, outcome.stderr);
        outcome
    }

    /// Pauses a spawned run (SIGTERM, which must exit 0), then runs until caught up.
    pub fn catch_up_after(&self, run: &mut std::process::Child) -> Outcome {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &run.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let status = run.wait().expect("wait");
        assert_eq!(status.code(), Some(0), "{}", self.log());
        self.catch_up()
    }

    /// A `run` in the background, to be killed or awaited. Its stderr goes to [`Project::log`].
    pub fn spawn(&self, extra: &[&str]) -> std::process::Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("run log");
        std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
            .args(self.args("run", extra))
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tributary")
    }

    fn log_path(&self) -> std::path::PathBuf {
        self.state.with_file_name("run.log")
    }

    /// What the runs started with [`Project::spawn`] wrote to stderr, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// `status --json`.
    pub fn status(&self) -> serde_json::Value {
        let args = self.args("status", &["--json"]);
        let outcome = tributary(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(outcome.code, 0, "{}", outcome.stderr);
        serde_json::from_str(&outcome.stdout).expect("status JSON")
    }

    pub fn checkpoint_path(&self) -> std::path::PathBuf {
        self.state.join("checkpoint.json")
    }

    /// Waits until a streaming `run` has recorded where its stream starts (it must not end
    /// first), then a moment for its binlog connection to register.
    pub fn wait_until_streaming(&self, run: &mut std::process::Child) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(self.checkpoint_path())
            .is_ok_and(|c| c.replace(' ', "").contains("\"incremental\":{"))
        {
            assert!(
                run.try_wait().expect("wait").is_none(),
                "the run ended before it streamed:\n{}",
                self.log()
            );
            assert!(
                std::time::Instant::now() < deadline,
                "the run did not start streaming:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// `scripts/services ACTION SERVICE`, which must succeed (tests that stop a shared service).
pub fn service(action: &str, name: &str) {
    let status = std::process::Command::new("scripts/services")
        .args([action, name])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("scripts/services");
    assert!(status.success(), "scripts/services {action} {name} failed");
}

/// The test MariaDB as a source without a `server_id`: the project's default replica id.
pub fn mariadb_source_default_id() -> String {
    let url = Opts::from_url(&mariadb_url()).expect("MariaDB URL");
    connection_options("mariadb", &url)
}

/// The source options for the test MariaDB, with a replica id of this test's own.
pub fn mariadb_source(name: &str) -> String {
    let url = Opts::from_url(&mariadb_url()).expect("MariaDB URL");
    source_options(
        "mariadb",
        &url,
        6000 + std::process::id() % 1000 + name.len() as u32,
    )
}

/// [`mariadb_source`] with replica id number `n` of this test process (tests of one binary run
/// at once: each streaming test needs its own).
pub fn mariadb_source_numbered(n: u32) -> String {
    let url = Opts::from_url(&mariadb_url()).expect("MariaDB URL");
    source_options("mariadb", &url, 6000 + std::process::id() % 1000 + 100 + n)
}

/// The source options for the test Dolt server (MySQL flavor).
pub fn dolt_source(name: &str) -> String {
    let url = Opts::from_url(&dolt_url()).expect("Dolt URL");
    source_options(
        "mysql",
        &url,
        7000 + std::process::id() % 1000 + name.len() as u32,
    )
}

fn source_options(kind: &str, url: &Opts, server_id: u32) -> String {
    format!("{}, server_id = {server_id}", connection_options(kind, url))
}

fn connection_options(kind: &str, url: &Opts) -> String {
    format!(
        "type = '{kind}', host = '{}', port = {}, user = '{}', password = '{}'",
        url.ip_or_hostname(),
        url.tcp_port(),
        url.user().unwrap_or("root"),
        url.pass().unwrap_or(""),
    )
}

/// A MariaDB database with table `t (columns)` synced to its own topic by the project
/// `project(sync statement)` makes, caught up once. Returns the database, the topic, the project
/// and a connection.
pub async fn streamed_table(
    name: &str,
    columns: &str,
    project: impl FnOnce(&str) -> Project,
) -> (String, String, Project, Conn) {
    let mut conn = mariadb().await;
    let (db, topic) = new_table(&mut conn, name, columns).await;
    let project = project(&format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"));
    project.catch_up();
    (db, topic, project, conn)
}

/// A new database `{name}_…` with table `t (columns)` on `conn`'s server, and a new topic name.
pub async fn new_table(conn: &mut Conn, name: &str, columns: &str) -> (String, String) {
    let db = unique(name);
    run_sql(
        conn,
        &format!("CREATE DATABASE {db};\nCREATE TABLE {db}.t ({columns})"),
    )
    .await;
    (db, unique(name))
}

/// Starts `project` streaming, inserts `rows` rows `(id, 'v')` into `table` in transactions of
/// 100, `kill -9`s the run halfway, then reruns it until caught up. Returns each message key's
/// count in `topic`.
pub async fn insert_through_a_kill(
    project: &Project,
    conn: &mut Conn,
    table: &str,
    topic: &str,
    rows: usize,
) -> std::collections::HashMap<String, usize> {
    use mysql_async::prelude::Queryable;
    let mut child = project.spawn(&[]);
    for batch in 0..rows / 100 {
        let values: Vec<String> = (0..100)
            .map(|i| format!("({}, 'v')", batch * 100 + i + 1))
            .collect();
        conn.query_drop(format!("INSERT INTO {table} VALUES {}", values.join(", ")))
            .await
            .expect("insert");
        if batch == rows / 200 {
            child.kill().expect("kill -9");
        }
    }
    child.wait().expect("reap");
    project.catch_up();
    count_by_key(&consume_all(topic, rows, Duration::from_secs(120)))
}

/// Each message key's count.
pub fn count_by_key(messages: &[Consumed]) -> std::collections::HashMap<String, usize> {
    let mut seen = std::collections::HashMap::new();
    for m in messages {
        *seen.entry(m.key.clone().expect("a key")).or_insert(0) += 1;
    }
    seen
}

/// A HEARTBEAT record of the Default or DataWorks format.
fn is_heartbeat(payload: &[u8]) -> bool {
    let text = String::from_utf8_lossy(payload);
    text.contains("\"recordType\":\"HEARTBEAT\"") || text.contains("\"op\":\"HEARTBEAT\"")
}

/// The numeric keys of messages (`{"id":7}`, `7`, …), in order.
pub fn numeric_keys(messages: &[Consumed]) -> Vec<u32> {
    messages
        .iter()
        .map(|m| {
            let key = m.key.as_deref().expect("a key");
            key.trim_matches(|c: char| !c.is_ascii_digit())
                .parse()
                .unwrap_or_else(|_| panic!("a numeric key: {key}"))
        })
        .collect()
}
