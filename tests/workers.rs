//! `run --worker` against the real MariaDB and Kafka, several worker processes on this
//! machine: full-sync chunks spread over the workers exactly once, a killed worker's chunks
//! finish elsewhere, and a killed stream owner is replaced without losing or repeating a row.
//! (The consumers read committed data, as `common::consume_all` does.)

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;

/// One worker of a project: its own state dir and log.
struct Worker {
    child: Child,
    log: std::path::PathBuf,
}

impl Worker {
    fn start(project: &common::Project, n: usize, extra: &[&str]) -> Worker {
        let dir = project.dir().join(format!("worker{n}"));
        std::fs::create_dir_all(&dir).expect("worker dir");
        let log = dir.join("run.log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("worker log");
        let child = Command::new(env!("CARGO_BIN_EXE_tributary"))
            .arg("run")
            .arg(&project.file)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg("--worker")
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start a worker");
        Worker { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Chunks this worker committed.
    fn chunks(&self) -> usize {
        self.log().matches("worker: chunk committed").count()
    }

    fn owns_stream(&self) -> bool {
        self.log().contains("this worker owns the stream now")
    }

    /// Waits (up to two minutes) for this worker to take the stream over.
    fn wait_for_stream(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !self.owns_stream() {
            assert!(Instant::now() < deadline, "{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the worker to end; its exit code.
    fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the worker did not end in time:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }

    /// Sends `signal` (`-TERM`, `-STOP`, ...) to the worker.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    fn terminate(&mut self) -> Option<i32> {
        self.signal("-TERM");
        self.wait(Duration::from_secs(60))
    }
}

/// A database with `t (id, v)` holding `rows` rows, and a project of it for workers.
async fn setup(name: &str, rows: u32, sync: &str) -> (mysql_async::Conn, String, common::Project) {
    common::require_kafka();
    let db = common::unique(name);
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
    let topic = common::unique(name);
    // The workers of a project share its plan and progress in Kafka: each test run is a new
    // project.
    let project = common::Project::new(
        &common::unique(name),
        &common::mariadb_source(name),
        &format!("sync = '{sync}', exactly_once = true, chunk_rows = 5000, topic_partitions = 3"),
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    (conn, topic, project)
}

fn assert_each_once(messages: &[common::Consumed], rows: usize, what: &str) {
    let seen = common::count_by_key(messages);
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "{what}: keys sent twice: {twice:?}");
    assert_eq!(seen.len(), rows, "{what}: every row once");
}

#[tokio::test]
async fn three_workers_share_a_full_sync_exactly_once() {
    let rows = 300_000;
    let (_conn, topic, project) = setup("workers3", rows, "schema, full").await;
    let mut workers: Vec<Worker> = (0..3).map(|n| Worker::start(&project, n, &[])).collect();
    for worker in &mut workers {
        let code = worker.wait(Duration::from_secs(300));
        assert_eq!(code, Some(0), "{}", worker.log());
    }
    let chunks: Vec<usize> = workers.iter().map(Worker::chunks).collect();
    assert_eq!(
        chunks.iter().sum::<usize>(),
        60,
        "each of the 60 chunks once: {chunks:?}"
    );
    assert!(
        chunks.iter().filter(|&&n| n > 0).count() >= 2,
        "the group spread the chunks: {chunks:?}"
    );
    let messages = common::consume_all(&topic, rows as usize, Duration::from_secs(120));
    assert_each_once(&messages, rows as usize, "three workers");
}

#[tokio::test]
async fn a_killed_workers_chunks_finish_elsewhere_exactly_once() {
    let rows = 300_000;
    let (_conn, topic, project) = setup("workerskill", rows, "schema, full").await;
    let mut workers: Vec<Worker> = (0..3).map(|n| Worker::start(&project, n, &[])).collect();
    // Mid-snapshot: once the victim committed a chunk.
    let deadline = Instant::now() + Duration::from_secs(120);
    while workers[0].chunks() == 0 {
        assert!(Instant::now() < deadline, "{}", workers[0].log());
        std::thread::sleep(Duration::from_millis(20));
    }
    workers[0].kill();
    let killed_with = workers[0].chunks();
    for worker in &mut workers[1..] {
        let code = worker.wait(Duration::from_secs(300));
        assert_eq!(code, Some(0), "{}", worker.log());
    }
    let others: usize = workers[1..].iter().map(Worker::chunks).sum();
    // (Its last commit may have landed just before its log line: the rows decide.)
    assert!(
        others > 0 && killed_with < 60,
        "the survivors read what the killed worker left: {killed_with} + {others}"
    );
    let messages = common::consume_all(&topic, rows as usize, Duration::from_secs(120));
    assert_each_once(&messages, rows as usize, "after a kill -9");
}

#[tokio::test]
async fn another_worker_takes_over_the_stream_when_its_owner_dies() {
    let initial = 1_000;
    let (mut conn, topic, project) = setup("workersha", initial, "schema, full, incremental").await;
    let mut workers: Vec<Worker> = (0..2).map(|n| Worker::start(&project, n, &[])).collect();
    let owner = stream_owner(&workers);
    let standby = 1 - owner;
    let mut inserts = Inserts::new(&project, initial + 1);
    inserts.run(&mut conn, 50).await;
    workers[owner].kill();
    let killed = Instant::now();
    // Killed in the middle of a commit, the owner would have left its transaction open on the
    // state topic, holding back every read of it until Kafka times the transaction out (60 s):
    // leave one open as it would, every time.
    leave_a_commit_open(&project);
    inserts.run(&mut conn, 50).await;
    workers[standby].wait_for_stream();
    let failover = killed.elapsed();
    eprintln!("stream failover took {failover:?}");
    // The new owner fences the dead one (aborting its transaction) before it reads the state
    // topic: the group's 6 s session timeout and a few seconds, not the transaction's timeout.
    assert!(
        failover < Duration::from_secs(40),
        "the failover waited for the dead owner's transaction: {failover:?}\n{}",
        workers[standby].log()
    );
    inserts.run(&mut conn, 20).await;
    // `status --worker` names the new owner, from Kafka alone.
    let name = {
        let log = workers[standby].log();
        let at = log.find("worker=worker-").expect("the worker's name") + "worker=".len();
        log[at..].split_whitespace().next().unwrap().to_string()
    };
    let status = common::tributary(&[
        "status",
        project.file.to_str().unwrap(),
        "--worker",
        "--json",
    ]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).expect("JSON");
    // A worker is `full_concurrency` members of the group, named after it.
    let member = |m: &serde_json::Value| m.as_str().is_some_and(|m| m.starts_with(&name));
    assert!(member(&status["stream_owner"]), "{name}: {status}");
    assert_eq!(status["chunks_done"], status["chunks"], "{status}");
    let members = status["workers"].as_array().expect("workers");
    assert_eq!(members.len(), 4, "the survivor's members only: {status}");
    assert!(members.iter().all(|m| member(&m["worker"])), "{status}");
    let total = (initial + 120 * 10) as usize;
    let messages = common::consume_all(&topic, total, Duration::from_secs(120));
    assert_eq!(workers[standby].terminate(), Some(0), "SIGTERM exits 0");
    assert_each_once(&messages, total, "through a failover");
}

/// What a stream owner killed between writing its progress and committing leaves behind: a
/// transaction of the stream's transactional id, open on the state topic.
fn leave_a_commit_open(project: &common::Project) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use tributary::sink::transactions::{STATE_TOPIC, transactional_id};
    let name = project.file.file_stem().unwrap().to_str().unwrap();
    let producer: BaseProducer = common::kafka_config()
        .set("transactional.id", transactional_id(name, "incremental"))
        .set("transaction.timeout.ms", "60000")
        .create()
        .expect("a transactional producer");
    let timeout = Duration::from_secs(30);
    producer
        .init_transactions(timeout)
        .expect("init_transactions");
    producer.begin_transaction().expect("begin_transaction");
    producer
        .send(
            BaseRecord::to(STATE_TOPIC)
                .key(&format!("{name}/crashed-mid-commit"))
                .payload("{}"),
        )
        .map_err(|(e, _)| e)
        .expect("send");
    producer.flush(timeout).expect("flush");
    // Never committed nor aborted: the process "died" here.
    std::mem::forget(producer);
}

/// The worker that owns the stream, once one does.
fn stream_owner(workers: &[Worker]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(owner) = workers.iter().position(Worker::owns_stream) {
            return owner;
        }
        let logs: Vec<String> = workers.iter().map(Worker::log).collect();
        assert!(
            Instant::now() < deadline,
            "no worker took the stream:\n{}",
            logs.join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `db.table` the project syncs (what `setup` wrote into it).
fn synced_table(project: &common::Project) -> String {
    let sql = std::fs::read_to_string(&project.file).unwrap();
    let start = sql.find("SYNC TABLE ").unwrap() + "SYNC TABLE ".len();
    sql[start..].split_whitespace().next().unwrap().to_string()
}

/// Inserts into the project's table, ten rows a statement, ids counting up.
struct Inserts {
    table: String,
    next: u32,
}

impl Inserts {
    fn new(project: &common::Project, next: u32) -> Inserts {
        Inserts {
            table: synced_table(project),
            next,
        }
    }

    async fn run(&mut self, conn: &mut mysql_async::Conn, statements: u32) {
        for _ in 0..statements {
            let values: Vec<String> = (self.next..self.next + 10)
                .map(|i| format!("({i}, 'new')"))
                .collect();
            conn.query_drop(format!(
                "INSERT INTO {} VALUES {}",
                self.table,
                values.join(", ")
            ))
            .await
            .expect("insert");
            self.next += 10;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn a_frozen_stream_owner_stands_by_once_another_worker_took_the_stream_over() {
    // Frozen (SIGSTOP) past the group's session timeout, the owner loses the stream's partition
    // while its stream still has work; thawed, its producer is fenced by the new owner before
    // it sees the revocation. It must stand by, not stop with exit 2.
    let initial = 500;
    let (mut conn, topic, project) =
        setup("workersfence", initial, "schema, full, incremental").await;
    let mut workers: Vec<Worker> = (0..2).map(|n| Worker::start(&project, n, &[])).collect();
    let owner = stream_owner(&workers);
    let standby = 1 - owner;
    let mut inserts = Inserts::new(&project, initial + 1);
    inserts.run(&mut conn, 20).await;
    workers[owner].signal("-STOP");
    inserts.run(&mut conn, 20).await;
    workers[standby].wait_for_stream();
    // The new owner's stream has started (and fenced the frozen one's producer).
    inserts.run(&mut conn, 20).await;
    workers[owner].signal("-CONT");
    inserts.run(&mut conn, 50).await;
    std::thread::sleep(Duration::from_secs(5));
    let thawed = workers[owner].child.try_wait().expect("try_wait");
    assert!(
        thawed.is_none(),
        "the thawed worker ended ({thawed:?}) instead of standing by:\n{}",
        workers[owner].log()
    );
    let total = (initial + 110 * 10) as usize;
    let messages = common::consume_all(&topic, total, Duration::from_secs(120));
    assert_each_once(&messages, total, "through a fenced handover");
    for worker in &mut workers {
        assert_eq!(
            worker.terminate(),
            Some(0),
            "SIGTERM exits 0:\n{}",
            worker.log()
        );
    }
}

#[tokio::test]
async fn a_worker_needs_exactly_once_and_says_so() {
    let (_conn, _topic, project) = setup("workersopt", 10, "schema, full").await;
    let text = std::fs::read_to_string(&project.file).unwrap();
    std::fs::write(&project.file, text.replace("exactly_once = true, ", "")).unwrap();
    let args = project.args("run", &["--worker"]);
    let outcome = common::tributary(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("add exactly_once = true"),
        "{}",
        outcome.stderr
    );
}

#[tokio::test]
async fn reset_forgets_the_workers_progress_and_waits_for_them_to_stop() {
    let rows = 2_000;
    let (_conn, topic, project) = setup("workersreset", rows, "schema, full, incremental").await;
    let mut worker = Worker::start(&project, 0, &[]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !worker.owns_stream() {
        assert!(Instant::now() < deadline, "{}", worker.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let reset = || common::tributary(&["reset", project.file.to_str().unwrap(), "--worker"]);
    let refused = reset();
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("stop them all"),
        "{}",
        refused.stderr
    );
    assert_eq!(worker.terminate(), Some(0), "{}", worker.log());
    let done = reset();
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert!(
        done.stdout.contains("the next workers start over"),
        "{}",
        done.stdout
    );
    // The same state dir: its own copy of the checkpoint does not stand in for Kafka's.
    let mut again = Worker::start(&project, 0, &["--until-caught-up"]);
    assert_eq!(
        again.wait(Duration::from_secs(200)),
        Some(0),
        "{}",
        again.log()
    );
    let messages = common::consume_all(&topic, 2 * rows as usize, Duration::from_secs(60));
    let seen = common::count_by_key(&messages);
    assert_eq!(seen.len(), rows as usize);
    assert!(
        seen.values().all(|&n| n == 2),
        "every row once per full sync: {:?}",
        seen.values()
            .filter(|&&n| n != 2)
            .take(3)
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_chunk_whose_source_connection_is_killed_is_retried_once_not_twice() {
    let rows = 200_000;
    let (mut conn, topic, project) = setup("workersfault", rows, "schema, full").await;
    let table = synced_table(&project);
    let db = table.split('.').next().unwrap();
    let mut worker = Worker::start(&project, 0, &[]);
    // Kill the worker's chunk reads on the server while it works: each is retried.
    let mut killed = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while killed < 3 && Instant::now() < deadline {
        let ids: Vec<u64> = conn
            .query(format!(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE '%{db}%' \
                 AND ID <> CONNECTION_ID()"
            ))
            .await
            .expect("processlist");
        for id in ids {
            if conn.query_drop(format!("KILL {id}")).await.is_ok() {
                killed += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(killed > 0, "no chunk read was caught on the server");
    assert_eq!(
        worker.wait(Duration::from_secs(300)),
        Some(0),
        "{}",
        worker.log()
    );
    let messages = common::consume_all(&topic, rows as usize, Duration::from_secs(120));
    assert_each_once(&messages, rows as usize, "after killed chunk reads");
}
