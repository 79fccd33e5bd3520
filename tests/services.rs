//! Proves each service that `scripts/services up` starts is real: MariaDB writes row events to a
//! binlog we can stream, seekdb stores and returns rows, Kafka takes and gives back messages on
//! every partition of a topic.

mod common;

use std::time::Duration;

use futures::StreamExt;
use mysql_async::binlog::events::EventData;
use mysql_async::binlog::value::BinlogValue;
use mysql_async::prelude::*;
use mysql_async::{BinlogStreamRequest, Value};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, TopicPartitionList};

#[tokio::test]
async fn mariadb_row_event_appears_in_the_binlog_stream() {
    let mut conn = common::mariadb().await;
    let db = common::unique("svc_binlog");
    conn.query_drop(format!(
        "CREATE DATABASE {db}; CREATE TABLE {db}.t (id INT PRIMARY KEY, name VARCHAR(20))"
    ))
    .await
    .expect("create table in MariaDB");

    let (file, pos): (String, u64) = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .expect("SHOW MASTER STATUS")
        .map(|row: mysql_async::Row| (row.get(0).unwrap(), row.get(1).unwrap()))
        .expect("MariaDB has no binlog: log_bin must be on (scripts/services sets it)");
    conn.query_drop(format!("INSERT INTO {db}.t VALUES (42, 'river')"))
        .await
        .expect("insert");

    let binlog_conn = common::mariadb().await;
    let request = BinlogStreamRequest::new(4000 + (std::process::id() % 1000))
        .with_filename(file.as_bytes())
        .with_pos(pos);
    let mut stream = binlog_conn
        .get_binlog_stream(request)
        .await
        .expect("binlog dump request");

    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(event) = stream.next().await {
            let event = event.expect("binlog event");
            let Some(EventData::RowsEvent(rows)) = event.read_data().expect("event data") else {
                continue;
            };
            let tme = stream
                .get_tme(rows.table_id())
                .expect("table map before rows");
            if tme.database_name() != db.as_str() || tme.table_name() != "t" {
                continue;
            }
            let (before, after) = rows
                .rows(tme)
                .next()
                .expect("one row")
                .expect("row decodes");
            assert!(before.is_none(), "an insert has no before image");
            let after = after.expect("an insert has an after image");
            let values: Vec<Value> = (0..after.len())
                .map(|i| match after.as_ref(i) {
                    Some(BinlogValue::Value(v)) => v.clone(),
                    other => panic!("unexpected binlog value {other:?}"),
                })
                .collect();
            return values;
        }
        panic!("binlog stream ended before the insert arrived");
    })
    .await
    .expect("the insert's row event within 20 s");

    assert_eq!(
        found,
        vec![Value::Int(42), Value::Bytes(b"river".to_vec())],
        "row event carries the inserted values"
    );
    conn.query_drop(format!("DROP DATABASE {db}")).await.ok();
}

#[tokio::test]
async fn seekdb_stores_and_returns_rows() {
    let mut conn = common::seekdb().await;
    let db = common::unique("svc_seekdb");
    conn.query_drop(format!(
        "CREATE DATABASE {db}; CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, amount DECIMAL(12,2), \
         note VARCHAR(32))"
    ))
    .await
    .expect("create table in seekdb");
    conn.query_drop(format!(
        "INSERT INTO {db}.t VALUES (1, 12.50, 'first'), (2, -0.01, NULL)"
    ))
    .await
    .expect("insert into seekdb");

    let rows: Vec<(i64, String, Option<String>)> = conn
        .query(format!(
            "SELECT id, CAST(amount AS CHAR), note FROM {db}.t ORDER BY id"
        ))
        .await
        .expect("read back from seekdb");
    assert_eq!(
        rows,
        vec![
            (1, "12.50".to_string(), Some("first".to_string())),
            (2, "-0.01".to_string(), None),
        ]
    );

    let version: String = conn
        .query_first("SELECT VERSION()")
        .await
        .expect("version")
        .expect("a version row");
    assert!(
        version.to_lowercase().contains("oceanbase") || version.contains("seekdb"),
        "the server on the seekdb port is OceanBase, not {version}"
    );
    conn.query_drop(format!("DROP DATABASE {db}")).await.ok();
}

#[tokio::test]
async fn kafka_topic_with_three_partitions_round_trips_messages() {
    common::require_kafka();
    let topic = common::unique("svc_kafka");
    let admin: AdminClient<_> = common::kafka_config().create().expect("admin client");
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 3, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(20))),
        )
        .await
        .expect("create topic request");
    created[0].as_ref().expect("topic created");

    let producer: FutureProducer = common::kafka_config()
        .set("acks", "all")
        .create()
        .expect("producer");
    for partition in 0..3 {
        let payload = format!("message for partition {partition}");
        producer
            .send(
                FutureRecord::to(&topic)
                    .partition(partition)
                    .key("k")
                    .payload(&payload),
                Duration::from_secs(20),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("delivery to partition {partition} failed: {e}"));
    }

    let consumer: BaseConsumer = common::kafka_config()
        .set("group.id", &topic)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..3 {
        assignment
            .add_partition_offset(&topic, partition, rdkafka::Offset::Beginning)
            .expect("assign");
    }
    consumer.assign(&assignment).expect("assign partitions");

    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < 3 && std::time::Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(500)) {
            let message = message.expect("consume");
            let payload = String::from_utf8(message.payload().unwrap_or_default().to_vec())
                .expect("utf-8 payload");
            seen.push((message.partition(), payload));
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        (0..3)
            .map(|p| (p, format!("message for partition {p}")))
            .collect::<Vec<_>>()
    );

    admin
        .delete_topics(&[&topic], &AdminOptions::new())
        .await
        .ok();
}
