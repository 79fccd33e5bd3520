//! Workers (`run --worker`): the Kafka side of several processes sharing one project, with
//! Kafka's consumer group protocol as their only coordinator.
//!
//! Each project has a work topic, `tributary-work.<project>`: partition 0 stands for the binlog
//! stream and holds no records — the worker the group assigns it to streams — and the other
//! partitions hold one record per full-sync chunk, published once by whichever worker first
//! fences the project's planner id ([`Planner`]). The group coordinator spreads the partitions
//! over the workers (cooperative rebalancing); a worker commits a chunk's rows and its record's
//! offset in one Kafka transaction ([`Consumed`]), so a chunk is done exactly when its rows are
//! committed, and a dead worker's unfinished chunks go to the others.

use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::{Consumer, ConsumerContext, ConsumerGroupMetadata, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use super::admin::METADATA_TIMEOUT;
use super::client_config;
use super::transactions::COMMIT_TIMEOUT;
use crate::error::{Error, Result};
use crate::project::SinkDef;

/// The work topic's partition that stands for the binlog stream.
pub const STREAM_PARTITION: i32 = 0;

/// Partitions for full-sync chunks: the most workers that can read chunks at once.
pub const CHUNK_PARTITIONS: i32 = 12;

/// How long the group waits for a silent worker before its partitions move (the broker's
/// least by default): a killed stream owner is replaced within about this.
const SESSION_TIMEOUT_MS: &str = "6000";

/// A worker's transactions time out after this: a killed worker's open transaction (and the
/// chunk offset in it) is aborted by Kafka within it, so another worker can take the chunk. A
/// chunk must be read and committed within it (the sink's 'transaction.timeout.ms' overrides).
pub const TRANSACTION_TIMEOUT_MS: &str = "20000";

pub fn work_topic(project: &str) -> String {
    format!("tributary-work.{project}")
}

pub fn group_id(project: &str) -> String {
    format!("tributary-{project}")
}

/// Creates the project's work topic if it does not exist.
pub async fn ensure_work_topic(sink: &SinkDef, project: &str, replication: i32) -> Result<()> {
    let topic = work_topic(project);
    let existing = super::admin::fetch_topics(sink).await?;
    if let Some(&partitions) = existing.get(&topic) {
        if partitions as i32 != CHUNK_PARTITIONS + 1 {
            return Err(Error::Config(format!(
                "the work topic {topic} has {partitions} partitions, not {}; delete it (no \
                 worker may be running) and start the workers again",
                CHUNK_PARTITIONS + 1
            )));
        }
        return Ok(());
    }
    // Chunk records are few and small; they must outlive the longest full sync.
    let new = NewTopic::new(
        &topic,
        CHUNK_PARTITIONS + 1,
        TopicReplication::Fixed(replication),
    )
    .set("retention.ms", "-1");
    super::admin::create_topic(
        sink,
        new,
        &format!(
            "workers need it: create it ({} partitions) or let the sink's user create topics",
            CHUNK_PARTITIONS + 1
        ),
    )
    .await
}

/// A record to publish with the plan.
pub struct WorkRecord {
    pub topic: String,
    pub partition: i32,
    pub key: String,
    pub payload: Vec<u8>,
}

/// The project's planner: one transactional id for every worker, so that starting it fences
/// (and aborts the transaction of) any other worker planning at the same time. What a fenced
/// planner publishes is never seen; the caller checks for a committed plan after fencing.
pub struct Planner {
    producer: BaseProducer<QuietContext>,
    id: String,
}

/// The planner's client context: being fenced by a rival planner is expected, not an error to
/// log (the caller reports what it means).
struct QuietContext;

impl ClientContext for QuietContext {
    fn log(&self, _level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        tracing::debug!(fac, "librdkafka (planner): {message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!("librdkafka (planner): {error}: {reason}");
    }
}

impl rdkafka::producer::ProducerContext for QuietContext {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

impl Planner {
    pub async fn fence(sink: &SinkDef, project: &str) -> Result<Planner> {
        let id = super::transactions::transactional_id(project, "planner");
        let mut config = client_config(sink);
        config.set("transactional.id", &id);
        let producer: BaseProducer<QuietContext> = config
            .create_with_context(QuietContext)
            .map_err(|e| Error::Kafka {
                context: format!("sink `{}`: cannot create the planner", sink.name.value),
                source: e,
            })?;
        let context = format!("workers: starting the planner {id}");
        let producer = tokio::task::spawn_blocking(move || {
            producer
                .init_transactions(COMMIT_TIMEOUT)
                .map(|()| producer)
        })
        .await
        .map_err(|e| Error::Definite(format!("{context}: {e}")))?
        .map_err(|source| Error::Kafka { context, source })?;
        Ok(Planner { producer, id })
    }

    /// Publishes `records` in one transaction.
    pub async fn publish(self, records: Vec<WorkRecord>) -> Result<()> {
        let Planner { producer, id } = self;
        let context = format!("workers: publishing the plan with {id}");
        tokio::task::spawn_blocking(move || -> std::result::Result<(), KafkaError> {
            producer.begin_transaction()?;
            for record in &records {
                send(
                    &producer,
                    &record.topic,
                    record.partition,
                    &record.key,
                    Some(&record.payload),
                )?;
            }
            producer.commit_transaction(COMMIT_TIMEOUT)
        })
        .await
        .map_err(|e| Error::Definite(format!("{context}: {e}")))?
        .map_err(|source| Error::Kafka { context, source })
    }
}

/// Deletes the state topic records `keys` (tombstones: compaction drops them, readers forget
/// them at once).
pub async fn forget(sink: &SinkDef, keys: Vec<String>) -> Result<()> {
    let producer: BaseProducer<QuietContext> = client_config(sink)
        .create_with_context(QuietContext)
        .map_err(|e| Error::Kafka {
            context: format!("sink `{}`: cannot create a producer", sink.name.value),
            source: e,
        })?;
    let context = format!(
        "workers: deleting records of {}",
        super::transactions::STATE_TOPIC
    );
    tokio::task::spawn_blocking(move || -> std::result::Result<(), KafkaError> {
        for key in &keys {
            send(&producer, super::transactions::STATE_TOPIC, 0, key, None)?;
        }
        producer.flush(COMMIT_TIMEOUT)
    })
    .await
    .map_err(|e| Error::Definite(format!("{context}: {e}")))?
    .map_err(|source| Error::Kafka { context, source })
}

/// Hands one record to `producer`, waiting while its queue is full; no payload is a tombstone.
fn send(
    producer: &BaseProducer<QuietContext>,
    topic: &str,
    partition: i32,
    key: &str,
    payload: Option<&[u8]>,
) -> std::result::Result<(), KafkaError> {
    loop {
        let mut record = BaseRecord::<str, [u8]>::to(topic)
            .partition(partition)
            .key(key);
        if let Some(payload) = payload {
            record = record.payload(payload);
        }
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                producer.poll(Duration::from_millis(50));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// A chunk record's offset and the group it was consumed in: committed with the chunk's rows.
pub struct Consumed {
    pub offsets: TopicPartitionList,
    pub group: ConsumerGroupMetadata,
}

/// A record of the work topic.
pub struct WorkItem {
    pub partition: i32,
    pub offset: i64,
    pub payload: Vec<u8>,
}

/// The worker's membership of the project's group.
pub struct WorkConsumer {
    consumer: StreamConsumer<WorkContext>,
    topic: String,
}

struct WorkContext;

impl ClientContext for WorkContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        super::librdkafka_log(level, fac, message);
    }
}

impl ConsumerContext for WorkContext {}

impl WorkConsumer {
    /// Joins the project's group as `worker`.
    pub fn join(sink: &SinkDef, project: &str, worker: &str) -> Result<WorkConsumer> {
        let topic = work_topic(project);
        let consumer: StreamConsumer<WorkContext> = client_config(sink)
            .set("group.id", group_id(project))
            .set("client.id", worker)
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            // Only chunk records of a committed plan; offsets committed by a worker's open
            // transaction are waited for (KIP-447), not read past.
            .set("isolation.level", "read_committed")
            .set("session.timeout.ms", SESSION_TIMEOUT_MS)
            .set("heartbeat.interval.ms", "1000")
            .create_with_context(WorkContext)
            .map_err(|e| Error::Kafka {
                context: format!("sink `{}`: cannot join the workers' group", sink.name.value),
                source: e,
            })?;
        consumer
            .subscribe(&[topic.as_str()])
            .map_err(|e| Error::Kafka {
                context: format!("workers: subscribing to {topic}"),
                source: e,
            })?;
        Ok(WorkConsumer { consumer, topic })
    }

    /// The next chunk record, if one comes within `wait` (polling also serves rebalances).
    pub async fn next(&self, wait: Duration) -> Result<Option<WorkItem>> {
        match tokio::time::timeout(wait, self.consumer.recv()).await {
            Err(_) => Ok(None),
            Ok(Ok(message)) => Ok(Some(WorkItem {
                partition: message.partition(),
                offset: message.offset(),
                payload: message.payload().unwrap_or_default().to_vec(),
            })),
            Ok(Err(e)) => Err(Error::Kafka {
                context: format!("workers: reading {}", self.topic),
                source: e,
            }),
        }
    }

    /// Whether this worker holds the stream's partition.
    pub fn owns_stream(&self) -> bool {
        self.consumer
            .assignment()
            .is_ok_and(|list| list.find_partition(&self.topic, STREAM_PARTITION).is_some())
    }

    /// The offset to commit with `item`'s chunk.
    pub fn consumed(&self, item: &WorkItem) -> Result<Consumed> {
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(&self.topic, item.partition, Offset::Offset(item.offset + 1))
            .map_err(|e| Error::Kafka {
                context: "workers: the chunk's offset".to_string(),
                source: e,
            })?;
        let group = self.consumer.group_metadata().ok_or_else(|| {
            Error::Definite("workers: the group's metadata is not known yet".to_string())
        })?;
        Ok(Consumed { offsets, group })
    }

    /// Reads `item` again (its transaction was aborted), if its partition is still this
    /// worker's; otherwise its new owner reads it from the committed offset.
    pub fn rewind(&self, item: &WorkItem) {
        if let Err(e) = self.consumer.seek(
            &self.topic,
            item.partition,
            Offset::Offset(item.offset),
            Duration::from_secs(5),
        ) {
            tracing::debug!(error = %e, partition = item.partition, "workers: not rewound");
        }
    }

    /// Leaves the group at once, so the others take this worker's partitions now.
    pub fn leave(&self) {
        self.consumer.unsubscribe();
    }
}

/// One member of a project's group, as the coordinator describes it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Member {
    /// The worker's name (its client id).
    pub worker: String,
    pub host: String,
    /// Work topic partitions assigned to it (0 is the stream).
    pub partitions: Vec<i32>,
    /// Chunk records in its partitions not committed yet.
    pub chunks_pending: i64,
}

/// The project's workers now: the group's members and the chunks each has still to read.
pub async fn members(sink: &SinkDef, project: &str) -> Result<Vec<Member>> {
    let config = client_config(sink);
    let project = project.to_string();
    let name = sink.name.value.clone();
    tokio::task::spawn_blocking(move || members_blocking(config, &project, &name))
        .await
        .map_err(|e| Error::Definite(format!("describing the workers failed: {e}")))?
}

fn members_blocking(
    mut config: rdkafka::ClientConfig,
    project: &str,
    sink: &str,
) -> Result<Vec<Member>> {
    use rdkafka::consumer::BaseConsumer;
    let kafka = |context: String| move |source: KafkaError| Error::Kafka { context, source };
    let group = group_id(project);
    let topic = work_topic(project);
    // Of the group, without joining it: offsets and the description only.
    let consumer: BaseConsumer = config
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(kafka(format!("sink `{sink}`: cannot create a consumer")))?;
    let groups = consumer
        .fetch_group_list(Some(&group), METADATA_TIMEOUT)
        .map_err(kafka(format!("sink `{sink}`: describing group {group}")))?;
    let mut members = Vec::new();
    for described in groups.groups() {
        for member in described.members() {
            let partitions = member
                .assignment()
                .map(|bytes| assigned_partitions(bytes, &topic))
                .unwrap_or_default();
            members.push(Member {
                worker: member.client_id().to_string(),
                host: member.client_host().trim_start_matches('/').to_string(),
                partitions,
                chunks_pending: 0,
            });
        }
    }
    let mut list = TopicPartitionList::new();
    for partition in 1..=CHUNK_PARTITIONS {
        list.add_partition(&topic, partition);
    }
    let committed = consumer
        .committed_offsets(list, METADATA_TIMEOUT)
        .map_err(kafka(format!(
            "sink `{sink}`: reading the offsets of {group}"
        )))?;
    for member in &mut members {
        for &partition in member.partitions.iter().filter(|&&p| p != STREAM_PARTITION) {
            let (_, end) = consumer
                .fetch_watermarks(&topic, partition, METADATA_TIMEOUT)
                .map_err(kafka(format!("sink `{sink}`: reading the end of {topic}")))?;
            let at = match committed
                .find_partition(&topic, partition)
                .map(|p| p.offset())
            {
                Some(Offset::Offset(at)) => at,
                _ => 0,
            };
            // The end counts the transaction markers of the plan's commit too.
            member.chunks_pending += (end - at - 1).max(0);
        }
    }
    members.sort_by(|a, b| a.worker.cmp(&b.worker));
    Ok(members)
}

/// The partitions of `topic` in a consumer protocol assignment: a version (int16), then an
/// array (int32 count) of topic (int16 length + bytes) and partitions (int32 count + int32s).
fn assigned_partitions(bytes: &[u8], topic: &str) -> Vec<i32> {
    fn take<const N: usize>(bytes: &mut &[u8]) -> Option<[u8; N]> {
        let (head, rest) = bytes.split_first_chunk::<N>()?;
        *bytes = rest;
        Some(*head)
    }
    let mut cursor = bytes;
    let mut found = Vec::new();
    let parsed = (|| -> Option<()> {
        take::<2>(&mut cursor)?;
        let topics = i32::from_be_bytes(take::<4>(&mut cursor)?);
        for _ in 0..topics.max(0) {
            let length = i16::from_be_bytes(take::<2>(&mut cursor)?).max(0) as usize;
            let (name, rest) = cursor.split_at_checked(length)?;
            cursor = rest;
            let count = i32::from_be_bytes(take::<4>(&mut cursor)?);
            for _ in 0..count.max(0) {
                let partition = i32::from_be_bytes(take::<4>(&mut cursor)?);
                if name == topic.as_bytes() {
                    found.push(partition);
                }
            }
        }
        Some(())
    })();
    if parsed.is_none() {
        tracing::debug!("workers: a member's assignment is not in the consumer protocol");
    }
    found.sort_unstable();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_members_assignment_names_its_partitions() {
        let mut bytes = vec![0, 1, 0, 0, 0, 2];
        for (topic, partitions) in [("other", vec![5i32]), ("tributary-work.p", vec![3, 0])] {
            bytes.extend((topic.len() as i16).to_be_bytes());
            bytes.extend(topic.as_bytes());
            bytes.extend((partitions.len() as i32).to_be_bytes());
            for p in partitions {
                bytes.extend(p.to_be_bytes());
            }
        }
        bytes.extend([0xff, 0xff, 0xff, 0xff]);
        assert_eq!(assigned_partitions(&bytes, "tributary-work.p"), vec![0, 3]);
        assert_eq!(
            assigned_partitions(&bytes[..9], "tributary-work.p"),
            Vec::<i32>::new()
        );
    }
}
