//! `tributary check` against the real services: a good project passes; each broken setting fails
//! with a message naming it, and the exit code is 1.

mod common;

use common::Outcome;

use std::path::{Path, PathBuf};

use mysql_async::Conn;
use mysql_async::prelude::*;

/// The binlog-format test changes a global server setting; every test here holds this lock so
/// none runs `check` while it is changed.
static SERVER_SETTINGS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn create_shop_schema(conn: &mut Conn) {
    let schema = std::fs::read_to_string("sql/demo/shop_schema.sql").expect("shop schema");
    common::run_sql(conn, &schema).await;
}

fn check(project: &Path) -> Outcome {
    common::tributary(&["check", project.to_str().expect("utf-8 path")])
}

/// Writes a project file from the quickstart example with some text replaced.
fn variant(name: &str, replacements: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string("sql/examples/quickstart.sql").expect("quickstart");
    for (from, to) in replacements {
        assert!(text.contains(from), "quickstart.sql has `{from}`");
        text = text.replace(from, to);
    }
    let dir = std::env::temp_dir().join(common::unique("tributary_check"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{name}.sql"));
    std::fs::write(&path, text).expect("write project");
    path
}

async fn prepare() -> tokio::sync::MutexGuard<'static, ()> {
    let guard = SERVER_SETTINGS.lock().await;
    create_shop_schema(&mut common::mariadb().await).await;
    guard
}

#[tokio::test]
async fn example_projects_pass_check() {
    let _guard = prepare().await;
    create_shop_schema(&mut common::seekdb().await).await;
    for example in ["quickstart", "filters", "oceanbase"] {
        let outcome = check(Path::new(&format!("sql/examples/{example}.sql")));
        assert_eq!(
            outcome.code, 0,
            "{example}.sql fails check:\n{}{}",
            outcome.stdout, outcome.stderr
        );
        assert!(outcome.stdout.contains("check: all"), "{}", outcome.stdout);
        assert!(!outcome.stdout.contains("FAIL"), "{}", outcome.stdout);
    }
}

#[tokio::test]
async fn statement_binlog_format_fails_naming_the_variable() {
    let _guard = prepare().await;
    let mut conn = common::mariadb().await;
    conn.query_drop("SET GLOBAL binlog_format = 'MIXED'")
        .await
        .expect("set binlog_format");
    let outcome = check(Path::new("sql/examples/quickstart.sql"));
    conn.query_drop("SET GLOBAL binlog_format = 'ROW'")
        .await
        .expect("restore binlog_format");
    assert_eq!(outcome.code, 1, "{}{}", outcome.stdout, outcome.stderr);
    assert!(
        outcome.stdout.contains(
            "FAIL source shop_db: binlog_format: binlog_format is MIXED; incremental sync needs \
             binlog_format=ROW"
        ),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome.stderr.contains("checks failed"),
        "{}",
        outcome.stderr
    );
}

#[tokio::test]
async fn missing_table_fails_naming_it() {
    let _guard = prepare().await;
    let project = variant(
        "missing_table",
        &[(
            "SYNC TABLE shop.orders TO",
            "SYNC TABLE shop.no_such_orders TO",
        )],
    );
    let outcome = check(&project);
    assert_eq!(outcome.code, 1);
    assert!(
        outcome.stdout.contains("FAIL project plan: ")
            && outcome
                .stdout
                .contains("table `shop.no_such_orders` does not exist on source `shop_db`"),
        "{}",
        outcome.stdout
    );
}

#[tokio::test]
async fn every_missing_table_and_a_rejected_kafka_property_are_listed() {
    let _guard = prepare().await;
    let project = variant(
        "missing_tables",
        &[
            (
                "SYNC TABLE shop.orders TO TOPIC 'shop.orders'",
                "SYNC TABLE shop.no_such_orders TO TOPIC 'shop.orders';\n\
                 SYNC TABLE shop.no_such_items TO TOPIC 'shop.items'",
            ),
            (
                "'bootstrap.servers' = '127.0.0.1:9092'",
                "'bootstrap.servers' = '127.0.0.1:9092',\n  'linger.ms' = 'soon'",
            ),
        ],
    );
    let outcome = check(&project);
    assert_eq!(outcome.code, 1, "{}{}", outcome.stdout, outcome.stderr);
    for table in ["shop.no_such_orders", "shop.no_such_items"] {
        assert!(
            outcome.stdout.contains(&format!(
                "table `{table}` does not exist on source `shop_db`"
            )),
            "{table} is not listed:\n{}",
            outcome.stdout
        );
    }
    // The property is located at its line: the 15th of the file, where the key starts.
    assert!(
        outcome.stdout.contains(&format!(
            "FAIL sink kafka: settings: {}:15:3: librdkafka rejects 'linger.ms' = 'soon'",
            project.display()
        )),
        "{}",
        outcome.stdout
    );
    assert!(outcome.stderr.contains("3 of"), "{}", outcome.stderr);
}

#[tokio::test]
async fn wrong_password_fails_naming_the_credentials() {
    let _guard = prepare().await;
    let project = variant("wrong_password", &[("password = ''", "password = 'wrong'")]);
    let outcome = check(&project);
    assert_eq!(outcome.code, 1);
    assert!(
        outcome.stdout.contains("FAIL source shop_db: connection:")
            && outcome.stdout.contains("rejected the credentials"),
        "{}",
        outcome.stdout
    );
}

#[tokio::test]
async fn unreachable_kafka_fails_naming_the_sink() {
    let _guard = prepare().await;
    let project = variant("no_kafka", &[("'127.0.0.1:9092'", "'127.0.0.1:1'")]);
    let outcome = check(&project);
    assert_eq!(outcome.code, 1);
    assert!(
        outcome.stdout.contains("FAIL sink kafka: connection:")
            && outcome.stdout.contains("127.0.0.1:1 did not answer"),
        "{}",
        outcome.stdout
    );
    assert!(outcome.stdout.contains("ok   source shop_db: connection"));
}

#[tokio::test]
async fn oceanbase_incremental_needs_the_binlog_service() {
    let _guard = prepare().await;
    create_shop_schema(&mut common::seekdb().await).await;
    let text = std::fs::read_to_string("sql/examples/oceanbase.sql")
        .expect("oceanbase example")
        .replace(
            "sync = 'schema, full'",
            "sync = 'schema, full, incremental'",
        );
    let dir = std::env::temp_dir().join(common::unique("tributary_check"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let project = dir.join("ob_incremental.sql");
    std::fs::write(&project, text).expect("write");
    let outcome = check(&project);
    assert_eq!(outcome.code, 1);
    assert!(
        outcome
            .stdout
            .contains("FAIL source ob: binlog service 127.0.0.1:2881: this server has no binlog"),
        "{}",
        outcome.stdout
    );
}

#[tokio::test]
async fn topic_problems_fail_the_topic_check() {
    let _guard = prepare().await;
    let topic = common::unique("absent_topic");
    let missing = variant(
        "topic_missing_without_schema_sync",
        &[
            ("sync = 'schema, full, incremental'", "sync = 'full'"),
            ("'shop.orders' WHERE", &format!("'{topic}' WHERE")),
        ],
    );
    let outcome = check(&missing);
    assert_eq!(outcome.code, 1);
    assert!(
        outcome.stdout.contains("FAIL sink kafka: topics:")
            && outcome.stdout.contains(&topic)
            && outcome.stdout.contains("schema sync is off"),
        "{}",
        outcome.stdout
    );

    let one = variant(
        "one_partition_out_of_range",
        &[(
            "partitioning = 'hash'",
            "partitioning = 'one', partition = 5",
        )],
    );
    let outcome = check(&one);
    assert_eq!(outcome.code, 1);
    assert!(
        outcome.stdout.contains("goes to partition 5 of topic")
            && outcome.stdout.contains("which has 3 partitions"),
        "{}",
        outcome.stdout
    );

    let bad_property = variant(
        "bad_property",
        &[(
            "'bootstrap.servers'",
            "'no.such.property' = 'x', 'bootstrap.servers'",
        )],
    );
    let outcome = check(&bad_property);
    assert_eq!(outcome.code, 1);
    assert!(
        outcome.stdout.contains("FAIL sink kafka: settings:")
            && outcome.stdout.contains("no.such.property"),
        "{}",
        outcome.stdout
    );
}

#[tokio::test]
async fn explain_and_import_objects_print_what_they_read() {
    let _guard = prepare().await;
    let outcome = common::tributary(&["explain", "sql/examples/quickstart.sql"]);
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert!(
        outcome
            .stdout
            .contains("table shop.orders -> topic shop.orders (SYNC #2)"),
        "{}",
        outcome.stdout
    );
    assert!(outcome.stdout.contains("filter: status <> 'test'"));

    let outcome = common::tributary(&["import-objects", "testdata/objects/oms_objects.csv"]);
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let expected =
        std::fs::read_to_string("testdata/objects/oms_objects.out").expect("expected output");
    assert_eq!(outcome.stdout, expected);

    let outcome = common::tributary(&[
        "explain",
        "testdata/sql/err_option_unknown_project_typo.sql",
    ]);
    assert_eq!(outcome.code, 1);
    assert!(
        outcome.stderr.contains(
            "testdata/sql/err_option_unknown_project_typo.sql:3:47: unknown option \
             `full_concurency`"
        ),
        "{}",
        outcome.stderr
    );
}
