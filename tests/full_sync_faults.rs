//! Full sync through source faults, against a private MariaDB (`common::PrivateMariaDb`) that the
//! tests stop and start while the real Kafka takes the rows: a source that cannot be reached
//! before anything was written is exit 1, and a connect that times out is a fault to retry.

mod common;

use mysql_async::prelude::*;

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
