//! Several runs against one server (design.md §2): projects that set no `server_id` stream from
//! one MariaDB side by side, and a second run of one project is refused while the first holds
//! its state dir.

mod common;

use std::process::{Child, Command};
use std::time::Duration;

use mysql_async::prelude::*;

fn streaming_project(name: &str, db: &str, topic: &str) -> common::Project {
    common::Project::new(
        name,
        &common::mariadb_source_default_id(),
        "sync = 'schema, incremental', topic_partitions = 1",
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    )
}

/// SIGTERM pauses a streaming run cleanly: exit 0.
fn pause(mut run: Child) {
    Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status()
        .expect("kill -TERM");
    let status = run.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "a paused run exits 0");
}

#[tokio::test]
async fn projects_without_a_server_id_stream_from_one_server_side_by_side() {
    common::require_kafka();
    let mut conn = common::mariadb().await;
    let (db, topic_a) =
        common::new_table(&mut conn, "side_a", "id INT PRIMARY KEY, v VARCHAR(8)").await;
    let topic_b = common::unique("side_b");
    let a = streaming_project("side_a", &db, &topic_a);
    let b = streaming_project("side_b", &db, &topic_b);
    let mut run_a = a.spawn(&[]);
    a.wait_until_streaming(&mut run_a);
    let mut run_b = b.spawn(&[]);
    b.wait_until_streaming(&mut run_b);

    for batch in 0..2 {
        let values: Vec<String> = (1..=100)
            .map(|i| format!("({}, 'v')", batch * 100 + i))
            .collect();
        conn.query_drop(format!("INSERT INTO {db}.t VALUES {}", values.join(", ")))
            .await
            .expect("insert");
    }
    for topic in [&topic_a, &topic_b] {
        let messages = common::consume_all(topic, 200, Duration::from_secs(60));
        assert_eq!(messages.len(), 200, "every row reaches {topic}");
    }
    // With one default replica id, the second project's connection made the server drop the
    // first's ("same server_uuid/server_id"), which ended it with exit 2.
    assert!(
        run_a.try_wait().expect("wait").is_none(),
        "the first project still streams after the second started"
    );
    assert!(run_b.try_wait().expect("wait").is_none());
    pause(run_a);
    pause(run_b);
}

#[tokio::test]
async fn a_second_run_of_a_project_is_refused_and_names_the_first() {
    common::require_kafka();
    let mut conn = common::mariadb().await;
    let (db, topic) =
        common::new_table(&mut conn, "second_run", "id INT PRIMARY KEY, v VARCHAR(8)").await;
    let project = streaming_project("second_run", &db, &topic);
    let mut first = project.spawn(&[]);
    project.wait_until_streaming(&mut first);

    let second = project.run(&["--until-caught-up"]);
    assert_eq!(second.code, 1, "{}{}", second.stdout, second.stderr);
    assert!(
        second
            .stderr
            .contains(&format!("in use by another run (pid {})", first.id())),
        "{}",
        second.stderr
    );
    assert!(
        first.try_wait().expect("wait").is_none(),
        "the first run keeps streaming"
    );
    pause(first);
    // Once the first run ended, the project runs again.
    project.catch_up();
}

#[tokio::test]
async fn check_reports_a_replica_id_another_run_streams_with() {
    common::require_kafka();
    let mut conn = common::mariadb().await;
    let (db, topic) =
        common::new_table(&mut conn, "id_clash", "id INT PRIMARY KEY, v VARCHAR(8)").await;
    // Both projects name the same replica id.
    let source = common::mariadb_source("id_clash");
    let syncs = format!("SYNC TABLE {db}.t TO TOPIC '{topic}';");
    let options = "sync = 'schema, incremental', topic_partitions = 1";
    let running = common::Project::new("id_clash_a", &source, options, &syncs);
    let other = common::Project::new("id_clash_b", &source, options, &syncs);
    let mut run = running.spawn(&[]);
    running.wait_until_streaming(&mut run);

    let file = other.file.display().to_string();
    let args = ["check", file.as_str()];
    let check = common::tributary(&args);
    assert_eq!(check.code, 1, "{}{}", check.stdout, check.stderr);
    let said = format!("{}{}", check.stdout, check.stderr);
    assert!(
        said.contains("is already used by a replica connected from"),
        "{said}"
    );
    pause(run);
    // Once the other run is gone, the id is free again — when the server noticed: its dump
    // thread finds the connection closed when it next has an event to send.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for id in 1.. {
        // (The first write after the peer closed still lands in the socket buffer.)
        conn.query_drop(format!("INSERT INTO {db}.t VALUES ({id}, 'wake')"))
            .await
            .expect("insert");
        let check = common::tributary(&args);
        if check.code == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}{}",
            check.stdout,
            check.stderr
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
