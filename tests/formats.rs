//! Every format end to end against the real MariaDB and Kafka: the all-types table through full
//! sync, then an UPDATE, a DELETE, an INSERT and a DDL through the binlog, consumed back and
//! compared with `testdata/formats/<format>/records.jsonl` (times, positions and the database
//! name masked). A small `orders` table goes the same way into `examples.jsonl`: one readable
//! example of each record type per format, which docs/formats.md points to.
//! `TRIBUTARY_BLESS=1` rewrites the golden files; a reviewer reads the diff.

mod common;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

const FORMATS: &[&str] = &[
    "default",
    "default_extend_column_type",
    "canal",
    "dataworks_v2",
    "shareplex",
    "debezium",
    "debezium_flatten",
    "debezium_smt",
    "maxwell",
];

/// Keys whose values change from run to run: times, positions, sequences.
const VOLATILE: &[&str] = &[
    "ts",
    "ts_ms",
    "es",
    "eventTime",
    "systemTime",
    "checkpointTime",
    "time",
    "posttime",
    "timestamp",
    "checkpoint",
    "storeDataSequence",
    "transId",
    "xid",
    "pos",
    "scn",
    "position",
    "trans",
];

fn mask(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let volatile = VOLATILE.contains(&key.as_str())
                    && match v {
                        Value::Number(_) => true,
                        Value::String(s) => {
                            s.contains("mysql-bin")
                                || (!s.is_empty()
                                    && s.chars().all(|c| c.is_ascii_digit() || ".@:-T".contains(c)))
                        }
                        _ => false,
                    };
                if volatile {
                    *v = Value::from("<volatile>");
                } else {
                    mask(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask),
        _ => {}
    }
}

fn masked(format: &str, db: &str, messages: &[common::Consumed]) -> String {
    messages
        .iter()
        .map(|m| {
            let mut value: Value = serde_json::from_str(&m.payload)
                .unwrap_or_else(|e| panic!("{format}: invalid JSON {e}: {}", m.payload));
            mask(&mut value);
            let key = m.key.as_deref().unwrap_or("null").replace(db, "DB");
            format!("{key}\t{}\n", value.to_string().replace(db, "DB"))
        })
        .collect()
}

async fn records_of(format: &str) -> (String, String) {
    let db = common::unique(&format!("fmt_{format}"));
    let mut conn = common::mariadb().await;
    let script = std::fs::read_to_string("testdata/formats/all_types.sql")
        .expect("all_types.sql")
        .replace("DB__", &db);
    common::run_sql(&mut conn, &script).await;
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE TABLE {db}.orders (id BIGINT PRIMARY KEY, amount DECIMAL(10,2), note VARCHAR(32),
  created DATETIME(3), updated TIMESTAMP(6) NULL);
INSERT INTO {db}.orders VALUES (7, 12.50, 'hi', '2024-05-01 10:00:00.123', '2024-05-01 02:00:00.123456')"
        ),
    )
    .await;
    let topic = common::unique(&format!("fmt_{format}"));
    let examples_topic = format!("{topic}_orders");
    let dir = common::temp_dir("fmt");
    let file = dir.join("project.sql");
    std::fs::write(
        &file,
        format!(
            "CREATE SOURCE src WITH (type = 'mariadb', host = '127.0.0.1', port = 3307, user = 'root',
  server_id = {server_id});
CREATE SINK kafka WITH (type = 'kafka', 'bootstrap.servers' = '{kafka}');
CREATE PROJECT fmt FROM src TO kafka WITH (sync = 'schema, full, incremental',
  incremental = 'dml, ddl', format = '{format}', business_system_id = 'golden', topic_partitions = 1);
SYNC TABLE {db}.all_types TO TOPIC '{topic}';
SYNC TABLE {db}.orders TO TOPIC '{examples_topic}';
",
            kafka = common::kafka_bootstrap(),
            server_id = 7100 + FORMATS.iter().position(|f| *f == format).unwrap_or(0),
        ),
    )
    .unwrap();
    let state = dir.join("state");
    let args = [
        "run",
        file.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--until-caught-up",
    ];
    let outcome = common::tributary(&args);
    assert_eq!(
        outcome.code, 0,
        "{format}: {}{}",
        outcome.stdout, outcome.stderr
    );
    common::run_sql(
        &mut conn,
        &format!(
            "SET SESSION sql_mode = '';
UPDATE {db}.all_types SET c_varchar = 'changed', c_int = c_int + 1 WHERE id = 1;
DELETE FROM {db}.all_types WHERE id = 2;
INSERT INTO {db}.all_types (id, c_int, c_set, c_datetime) VALUES (5, 42, 'y,z', '2024-05-01 10:00:00.5');
ALTER TABLE {db}.all_types ADD COLUMN c_new INT;
INSERT INTO {db}.orders VALUES (8, 3.00, 'new', '2024-05-01 11:00:00', NULL);
UPDATE {db}.orders SET note = 'yo' WHERE id = 7;
DELETE FROM {db}.orders WHERE id = 8;
ALTER TABLE {db}.orders ADD COLUMN qty INT"
        ),
    )
    .await;
    let outcome = common::tributary(&args);
    assert_eq!(
        outcome.code, 0,
        "{format}: {}{}",
        outcome.stdout, outcome.stderr
    );
    let ddl = if format.starts_with("debezium") { 0 } else { 1 };
    let messages = common::consume_all(&topic, 7 + ddl, Duration::from_secs(60));
    let examples = common::consume_all(&examples_topic, 4 + ddl, Duration::from_secs(60));
    (
        masked(format, &db, &messages),
        masked(format, &db, &examples),
    )
}

#[tokio::test]
async fn every_format_matches_its_golden_records() {
    let bless = std::env::var("TRIBUTARY_BLESS").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    for format in FORMATS {
        let (records, examples) = records_of(format).await;
        for (file, actual) in [("records.jsonl", records), ("examples.jsonl", examples)] {
            let path = Path::new("testdata/formats").join(format).join(file);
            if bless {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &actual).unwrap();
            }
            let expected = std::fs::read_to_string(&path).unwrap_or_default();
            if actual != expected {
                failures.push(format!("--- {}\nactual:\n{actual}", path.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "formats differ from their golden files (TRIBUTARY_BLESS=1 rewrites them):\n{}",
        failures.join("\n")
    );
}
