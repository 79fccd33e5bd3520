//! Exactly-once delivery (`exactly_once = true`, design.md §4).
//!
//! Messages go out in Kafka transactions, and the progress they make — a full-sync chunk done,
//! the binlog position after the last source transaction, the schema history after a DDL — is
//! written into the same transaction, as a record of the compacted state topic. Kafka commits
//! both or neither, so after a crash the state topic says exactly what consumers reading
//! committed data (`isolation.level = read_committed`) have seen: a restart continues from there
//! and sends nothing twice. The local checkpoint file is still written (at least every 500 ms
//! while chunks finish or changes stream, and at the end); at start the state topic's newer records
//! overlay it, because a crash between a commit and the file's save leaves the file behind.
//!
//! Records are keyed `project/run/…`: `run` is a random id kept in the local checkpoint, so
//! `tributary reset` (which forgets the file) also forgets the progress in the topic.

use std::time::Duration;

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::ConsumerContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, ClientContext};
use rdkafka::{Offset, TopicPartitionList};

use super::client_config;
use crate::checkpoint::{Checkpoint, Progress};
use crate::error::{Error, Result};
use crate::project::SinkDef;

/// The compacted topic that holds every exactly-once project's progress.
pub const STATE_TOPIC: &str = "__tributary_state";

/// How long a transaction's commit (which first delivers everything in it) may take.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long reading the state topic at start may take. Every project shares the topic's one
/// partition, so a producer that died in the middle of a commit (of any project) holds every
/// reader back until Kafka aborts its transaction: after its `transaction.timeout.ms` (60 s by
/// default) and the broker's next check for timed-out transactions (every 10 s by default).
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Held back this long, the reader says why it waits.
const HELD_BACK_WARNING: Duration = Duration::from_secs(5);

/// The state topic's record of a piece of progress: keyed `project/run/…`, so that compaction
/// keeps the newest of each kind and `reset` (a new run id) forgets the old ones.
pub fn record(progress: &Progress, project: &str, run: &str) -> Result<(String, Vec<u8>)> {
    let key = match progress {
        Progress::Chunk { table, chunk, .. } => format!("{project}/{run}/chunk/{table}/{chunk}"),
        Progress::Incremental { .. } => format!("{project}/{run}/incremental"),
        Progress::Schemas { .. } => format!("{project}/{run}/schemas"),
        Progress::OnlineChunk { id, chunk, .. } => {
            format!("{project}/{run}/online/{id}/{chunk}")
        }
        // One key per XA transaction: compaction keeps its last step.
        Progress::XaPrepared { xid, .. } | Progress::XaFinished { xid, .. } => {
            format!("{project}/{run}/xa/{xid}")
        }
    };
    let payload = serde_json::to_vec(progress)
        .map_err(|e| Error::Definite(format!("cannot serialize progress: {e}")))?;
    Ok((key, payload))
}

/// Records in the checkpoint the progress the state topic holds (oldest first) where it is newer
/// than the checkpoint's own.
pub fn overlay(checkpoint: &mut Checkpoint, records: Vec<Progress>) {
    for record in records {
        checkpoint.record(record);
    }
}

/// A new run id: unique enough to tell this checkpoint's progress from a forgotten one's.
pub fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}", nanos, std::process::id())
}

/// The transactional id of one producer of a project: a restarted run uses the same ids, which
/// fences the crashed run's producers and aborts their open transactions at once.
pub fn transactional_id(project: &str, role: &str) -> String {
    format!("tributary-{project}-{role}")
}

/// Creates the state topic if it does not exist: one partition, compacted.
pub async fn ensure_state_topic(sink: &SinkDef, replication: i32) -> Result<()> {
    let existing = super::admin::fetch_topics(sink).await?;
    if existing.contains_key(STATE_TOPIC) {
        return Ok(());
    }
    let topic = NewTopic::new(STATE_TOPIC, 1, TopicReplication::Fixed(replication))
        .set("cleanup.policy", "compact");
    super::admin::create_topic(
        sink,
        topic,
        "exactly_once needs it: create it (1 partition, cleanup.policy=compact) or let the \
         sink's user create topics",
    )
    .await
}

/// The progress a project's run committed, oldest first (read committed only).
pub async fn read_progress(sink: &SinkDef, project: &str, run: &str) -> Result<Vec<Progress>> {
    let records = read_records(sink, &format!("{project}/{run}/")).await?;
    // A tombstone or a record this build cannot read says nothing about progress.
    Ok(records
        .into_iter()
        .filter_map(|(_, payload)| serde_json::from_slice::<Progress>(&payload).ok())
        .collect())
}

/// The committed records of the state topic whose key starts with `prefix`, oldest first.
pub async fn read_records(sink: &SinkDef, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let config = client_config(sink);
    let prefix = prefix.to_string();
    let name = sink.name.value.clone();
    tokio::task::spawn_blocking(move || read_blocking(config, &prefix, &name))
        .await
        .map_err(|e| Error::Definite(format!("reading {STATE_TOPIC} failed: {e}")))?
}

/// The state reader's client context: reaching the end of the topic is how it knows it is done,
/// not an error to log.
struct StateReader;

impl ClientContext for StateReader {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        super::librdkafka_log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::PartitionEOF) {
            tracing::error!("librdkafka: {error}: {reason}");
        }
    }
}

impl ConsumerContext for StateReader {}

fn read_blocking(
    mut config: ClientConfig,
    prefix: &str,
    sink: &str,
) -> Result<Vec<(String, Vec<u8>)>> {
    let kafka = |context: String| move |source: KafkaError| Error::Kafka { context, source };
    // The partition's real end, asked for read uncommitted: asked read committed, Kafka answers
    // with the last stable offset, which is where an open transaction holds the reader back.
    let end_probe: BaseConsumer<StateReader> = config
        .clone()
        .set("isolation.level", "read_uncommitted")
        .create_with_context(StateReader)
        .map_err(kafka(format!("sink `{sink}`: cannot create a consumer")))?;
    let consumer: BaseConsumer<StateReader> = config
        .set("group.id", "tributary-state-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        // The end of the topic is what the reader waits for: do not let the broker hold an
        // empty fetch for the default 500 ms.
        .set("fetch.wait.max.ms", "10")
        .create_with_context(StateReader)
        .map_err(kafka(format!("sink `{sink}`: cannot create a consumer")))?;
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(STATE_TOPIC, 0, Offset::Beginning)
        .map_err(kafka(format!("sink `{sink}`: reading {STATE_TOPIC}")))?;
    consumer
        .assign(&assignment)
        .map_err(kafka(format!("sink `{sink}`: reading {STATE_TOPIC}")))?;
    let deadline = std::time::Instant::now() + READ_TIMEOUT;
    // The end is the partition's high watermark, taken now. With read_committed, librdkafka
    // reports the end of the partition at the last stable offset, which an open transaction of
    // any producer holds back: stopping there would miss this project's newest commits. Reading
    // on past it waits for that transaction to end.
    let end = loop {
        match end_probe.fetch_watermarks(STATE_TOPIC, 0, Duration::from_secs(5)) {
            Ok((_, high)) => break high,
            Err(e) if std::time::Instant::now() < deadline => {
                tracing::debug!(error = %e, "exactly_once: the state topic's end is not known yet");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => {
                return Err(Error::Kafka {
                    context: format!("sink `{sink}`: reading the end of {STATE_TOPIC}"),
                    source: e,
                });
            }
        }
    };
    let mut progress = Vec::new();
    let mut held_back: Option<std::time::Instant> = None;
    let mut warned = false;
    loop {
        if std::time::Instant::now() > deadline {
            return Err(Error::Sink(format!(
                "exactly_once: could not read {STATE_TOPIC} to its end within {} s: an open \
                 transaction of a producer that stopped mid-commit (of any project) holds it \
                 back; Kafka aborts it after that producer's transaction.timeout.ms — retry \
                 then, or restart the project it belongs to, which aborts it at once",
                READ_TIMEOUT.as_secs()
            )));
        }
        if !warned && held_back.is_some_and(|since| since.elapsed() >= HELD_BACK_WARNING) {
            warned = true;
            tracing::warn!(
                "exactly_once: {STATE_TOPIC} is held back by an open transaction (a producer \
                 that stopped mid-commit?); waiting up to {} s for Kafka to abort it",
                READ_TIMEOUT.as_secs()
            );
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(_))) => {
                if read_to(&consumer, end) {
                    break;
                }
                // Held back by an open transaction: read on once it ends (or time out above).
                held_back.get_or_insert_with(std::time::Instant::now);
                std::thread::sleep(Duration::from_millis(20));
            }
            // Just created: the partition may take a moment to have a leader.
            Some(Err(e))
                if e.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownTopicOrPartition)
                    || e.rdkafka_error_code() == Some(RDKafkaErrorCode::LeaderNotAvailable) =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            Some(Err(e)) => {
                return Err(Error::Kafka {
                    context: format!("sink `{sink}`: reading {STATE_TOPIC}"),
                    source: e,
                });
            }
            Some(Ok(message)) => {
                let key = message
                    .key()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                if !key.starts_with(prefix) {
                    continue;
                }
                match message.payload() {
                    Some(payload) => progress.push((key.into_owned(), payload.to_vec())),
                    // A tombstone forgets its key's earlier records (`reset --worker`).
                    None => progress.retain(|(k, _)| *k != key),
                }
            }
        }
    }
    Ok(progress)
}

/// Whether the reader's position has reached `end` (an empty partition is read at once).
fn read_to(consumer: &BaseConsumer<StateReader>, end: i64) -> bool {
    if end <= 0 {
        return true;
    }
    let position = consumer
        .position()
        .ok()
        .and_then(|list| list.find_partition(STATE_TOPIC, 0).map(|p| p.offset()));
    matches!(position, Some(Offset::Offset(at)) if at >= end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Chunk, TableProgress};
    use crate::position::BinlogPosition;

    fn chunk() -> Chunk {
        Chunk {
            lower: None,
            upper: None,
            done: false,
            rows: 0,
        }
    }

    #[test]
    fn progress_records_round_trip_and_overlay_the_checkpoint() {
        let mut checkpoint = Checkpoint::default();
        checkpoint.tables.insert(
            "shop.orders".into(),
            TableProgress {
                chunks: vec![chunk(), chunk()],
                rows_estimate: 10,
            },
        );
        let records = [
            Progress::Chunk {
                table: "shop.orders".into(),
                chunk: 1,
                rows: 5,
            },
            Progress::Incremental {
                commit: 3,
                position: BinlogPosition {
                    file: "mysql-bin.000002".into(),
                    pos: 1234,
                    gtid: Some("0-1-9".into()),
                    row_events: 0,
                },
                committed: 1_700_000_000,
                changes: 42,
            },
        ];
        let mut read = Vec::new();
        for record in records {
            let (key, payload) = super::record(&record, "p", "r1").unwrap();
            assert!(key.starts_with("p/r1/"), "{key}");
            let back: Progress = serde_json::from_slice(&payload).unwrap();
            assert_eq!(back, record);
            read.push(back);
        }
        overlay(&mut checkpoint, read);
        let chunks = &checkpoint.tables["shop.orders"].chunks;
        assert!(!chunks[0].done);
        assert!(chunks[1].done && chunks[1].rows == 5);
        assert_eq!(checkpoint.incremental.as_ref().unwrap().pos, 1234);
        assert_eq!(checkpoint.incremental_changes, 42);
        assert_eq!(checkpoint.exactly_once_commits, 3);
        // An older commit (a record read past a newer file) does not move the checkpoint back;
        // a chunk the checkpoint does not know is ignored, not a panic.
        let older = Progress::Incremental {
            commit: 2,
            position: BinlogPosition {
                file: "mysql-bin.000001".into(),
                pos: 4,
                gtid: None,
                row_events: 0,
            },
            committed: 1,
            changes: 1,
        };
        let gone = Progress::Chunk {
            table: "shop.gone".into(),
            chunk: 7,
            rows: 1,
        };
        overlay(&mut checkpoint, vec![older, gone]);
        assert_eq!(checkpoint.incremental.as_ref().unwrap().pos, 1234);
        assert_eq!(checkpoint.incremental_changes, 42);
    }
}
