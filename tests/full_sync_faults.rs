//! Full sync through source faults, against a private MariaDB (`common::PrivateMariaDb`) that the
//! test stops and starts while the real Kafka takes the rows.

mod common;

use mysql_async::prelude::*;

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
