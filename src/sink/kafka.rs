//! The Kafka producer: many messages in flight, never awaited one by one. Each message carries
//! its [`Acks`] group (a full-sync chunk, a source transaction) to librdkafka's delivery
//! callback, which counts it down; the stages await the group before they checkpoint. Bytes in
//! flight are bounded by a budget each batch reserves once and each callback refills, so a slow
//! broker slows the writers instead of growing memory.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use tokio::sync::Notify;

use super::transactions::STATE_TOPIC;
use crate::checkpoint::Progress;
use crate::error::{Error, Result};
use crate::project::SinkDef;

/// Producer settings that override the bulk-load [`DEFAULTS`] for one kind of producer.
pub type Defaults = &'static [(&'static str, &'static str)];

/// Producer settings tuned for bulk loads; any quoted property of the sink overrides them.
const DEFAULTS: &[(&str, &str)] = &[
    ("compression.type", "lz4"),
    ("linger.ms", "20"),
    ("batch.size", "1000000"),
    ("batch.num.messages", "100000"),
    ("queue.buffering.max.messages", "1000000"),
    ("queue.buffering.max.kbytes", "1048576"),
    ("enable.idempotence", "true"),
    ("message.timeout.ms", "60000"),
];

/// Deliveries of one group of messages (a chunk): how many are still unacknowledged, and the
/// first failure.
#[derive(Debug, Default)]
pub struct Acks {
    pending: AtomicU64,
    sent: AtomicU64,
    failure: Mutex<Option<String>>,
    settled: Notify,
}

impl Acks {
    pub fn new() -> Arc<Acks> {
        Arc::new(Acks::default())
    }

    /// Messages handed to the producer so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Acquire)
    }

    /// Waits until every message sent so far is acknowledged; the first delivery error if any.
    pub async fn settled(&self) -> std::result::Result<(), String> {
        loop {
            let notified = self.settled.notified();
            if self.pending.load(Ordering::Acquire) == 0 {
                break;
            }
            notified.await;
        }
        match self.failure.lock().map(|f| f.clone()) {
            Ok(Some(failure)) => Err(failure),
            _ => Ok(()),
        }
    }

    /// Without waiting: `None` while messages are unacknowledged, else the outcome.
    pub fn try_settled(&self) -> Option<std::result::Result<(), String>> {
        if self.pending.load(Ordering::Acquire) != 0 {
            return None;
        }
        match self.failure.lock().map(|f| f.clone()) {
            Ok(Some(failure)) => Some(Err(failure)),
            _ => Some(Ok(())),
        }
    }

    /// Counts `messages` more as handed over and unacknowledged.
    pub(crate) fn expect(&self, messages: u64) {
        self.pending.fetch_add(messages, Ordering::AcqRel);
        self.sent.fetch_add(messages, Ordering::AcqRel);
    }

    /// Counts `messages` as acknowledged (with the first failure among them, if any).
    pub(crate) fn settle(&self, messages: u64, failure: Option<String>) {
        if let Some(failure) = failure
            && let Ok(mut first) = self.failure.lock()
            && first.is_none()
        {
            *first = Some(failure);
        }
        if self.pending.fetch_sub(messages, Ordering::AcqRel) == messages {
            self.settled.notify_waiters();
        }
    }

    /// Takes back `messages` that were expected but never handed over.
    fn withdraw(&self, messages: u64) {
        self.sent.fetch_sub(messages, Ordering::AcqRel);
        self.settle(messages, None);
    }
}

/// What librdkafka holds per message beside its key and payload: its message struct and the
/// message's share of the request buffers. Counted in the in-flight budget, so the budget bounds
/// memory rather than payload (small messages would otherwise take twice the budget).
const MESSAGE_OVERHEAD: usize = 256;

/// The unacknowledged bytes of a producer. A batch reserves its bytes once, before its first
/// message is handed over; each delivery callback gives its message's bytes back. A writer waits
/// while the producer is at its limit, so memory stays bounded by the limit plus one batch per
/// writer. Lock-free on the delivery path: a callback wakes writers only when it brings the
/// total back under the limit.
#[derive(Debug)]
struct InFlight {
    bytes: AtomicUsize,
    max: usize,
    room: Notify,
}

impl InFlight {
    async fn reserve(&self, bytes: usize) {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if self.bytes.load(Ordering::Acquire) < self.max {
                break;
            }
            room.await;
        }
        self.bytes.fetch_add(bytes, Ordering::AcqRel);
    }

    fn release(&self, bytes: usize) {
        let before = self.bytes.fetch_sub(bytes, Ordering::AcqRel);
        if before >= self.max && before - bytes < self.max {
            self.room.notify_waiters();
        }
    }
}

pub struct DeliveryContext {
    in_flight: Arc<InFlight>,
}

impl ClientContext for DeliveryContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        super::librdkafka_log(level, fac, message);
    }
}

impl ProducerContext for DeliveryContext {
    /// A message's group; its size is read back from the message itself.
    type DeliveryOpaque = Arc<Acks>;

    fn delivery(&self, result: &DeliveryResult<'_>, acks: Arc<Acks>) {
        let (message, failure) = match result {
            Ok(message) => (message, None),
            Err((error, message)) => (
                message,
                Some(format!(
                    "Kafka did not take a message for topic {} (key {}): {error}",
                    message.topic(),
                    message
                        .key()
                        .map(|k| String::from_utf8_lossy(k).into_owned())
                        .unwrap_or_else(|| "null".into())
                )),
            ),
        };
        self.in_flight
            .release(message.payload_len() + message.key_len() + MESSAGE_OVERHEAD);
        acks.settle(1, failure);
    }
}

/// A message the producer refused, with its key for the error.
#[derive(Debug)]
pub struct Refused {
    pub key: Option<Vec<u8>>,
    pub error: KafkaError,
}

/// The project's producer.
pub struct KafkaSink {
    producer: ThreadedProducer<DeliveryContext>,
    in_flight: Arc<InFlight>,
    /// With `exactly_once`, for messages.
    transactional_id: Option<String>,
}

impl KafkaSink {
    /// A producer with the sink's properties; at most `max_in_flight_bytes` unacknowledged.
    pub fn new(sink: &SinkDef, max_in_flight_bytes: usize) -> Result<KafkaSink> {
        Self::with_config(sink, max_in_flight_bytes, None, &[])
    }

    /// A transactional producer (`exactly_once`): every message is sent inside a transaction
    /// that [`KafkaSink::begin`] opens and [`KafkaSink::commit`] commits. Taking the id fences
    /// any earlier producer with it and aborts that producer's open transaction.
    ///
    /// `defaults` override the bulk-load defaults (the sink's own properties still win): a commit
    /// waits for every message in it, so a stream commits sooner with a short `linger.ms`.
    pub async fn transactional(
        sink: &SinkDef,
        max_in_flight_bytes: usize,
        transactional_id: &str,
        defaults: &[(&str, &str)],
    ) -> Result<KafkaSink> {
        let producer =
            Self::with_config(sink, max_in_flight_bytes, Some(transactional_id), defaults)?;
        producer.blocking(
            format!("exactly_once: starting transactional producer {transactional_id}"),
            |p| p.init_transactions(super::transactions::COMMIT_TIMEOUT),
        )?;
        Ok(producer)
    }

    /// [`KafkaSink::transactional`] for several ids at once: each start waits for the
    /// transaction coordinator, so they wait together.
    pub async fn transactional_all(
        sink: &SinkDef,
        producers: Vec<(String, usize, Defaults)>,
    ) -> Result<Vec<KafkaSink>> {
        let starts: Vec<_> = producers
            .into_iter()
            .map(|(id, budget, defaults)| {
                let sink = sink.clone();
                tokio::spawn(async move { Self::transactional(&sink, budget, &id, defaults).await })
            })
            .collect();
        let mut started = Vec::with_capacity(starts.len());
        for start in starts {
            started.push(start.await.map_err(|e| {
                Error::Definite(format!("starting a transactional producer failed: {e}"))
            })??);
        }
        Ok(started)
    }

    fn with_config(
        sink: &SinkDef,
        max_in_flight_bytes: usize,
        transactional_id: Option<&str>,
        defaults: &[(&str, &str)],
    ) -> Result<KafkaSink> {
        let mut config = rdkafka::ClientConfig::new();
        for (key, value) in DEFAULTS.iter().chain(defaults) {
            config.set(*key, *value);
        }
        for (key, value) in &sink.properties {
            config.set(key.value.as_str(), value.as_str());
        }
        if let Some(id) = transactional_id {
            config.set("transactional.id", id);
        }
        let in_flight = Arc::new(InFlight {
            bytes: AtomicUsize::new(0),
            max: max_in_flight_bytes.max(1),
            room: Notify::new(),
        });
        let producer = config
            .create_with_context(DeliveryContext {
                in_flight: Arc::clone(&in_flight),
            })
            .map_err(|e| Error::Kafka {
                context: format!("sink `{}`: cannot create the producer", sink.name.value),
                source: e,
            })?;
        Ok(KafkaSink {
            producer,
            in_flight,
            transactional_id: transactional_id.map(str::to_string),
        })
    }

    /// Hands `records` (partition, key, payload; `bytes` in all) to the producer, reserving
    /// their bytes once (waiting only while the producer is at its in-flight limit); their
    /// acknowledgements are counted in `acks`.
    pub async fn send_all<'m>(
        &self,
        topic: &str,
        records: impl ExactSizeIterator<Item = (i32, Option<&'m [u8]>, &'m [u8])>,
        bytes: usize,
        acks: &Arc<Acks>,
    ) -> std::result::Result<(), Refused> {
        let count = records.len() as u64;
        if count == 0 {
            return Ok(());
        }
        let bytes = bytes + count as usize * MESSAGE_OVERHEAD;
        self.in_flight.reserve(bytes).await;
        acks.expect(count);
        let (mut handed, mut handed_bytes) = (0u64, 0usize);
        for (partition, key, payload) in records {
            let mut record = BaseRecord::with_opaque_to(topic, Arc::clone(acks))
                .partition(partition)
                .payload(payload);
            if let Some(key) = key {
                record = record.key(key);
            }
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err((error, _)) => {
                        // This message and the ones after it never leave: their bytes and
                        // counts are given back here, not by a callback.
                        self.in_flight.release(bytes.saturating_sub(handed_bytes));
                        acks.withdraw(count - handed);
                        return Err(Refused {
                            key: key.map(<[u8]>::to_vec),
                            error: self.cause(error),
                        });
                    }
                }
            }
            handed += 1;
            handed_bytes += payload.len() + key.map_or(0, <[u8]>::len) + MESSAGE_OVERHEAD;
        }
        Ok(())
    }

    /// After a fatal error (a fenced producer's, say) librdkafka refuses every message with
    /// the same "fatal error" code: the error behind it is what the caller must tell apart.
    fn cause(&self, error: KafkaError) -> KafkaError {
        match error {
            KafkaError::MessageProduction(RDKafkaErrorCode::Fatal) => {
                match self.producer.client().fatal_error() {
                    Some((code, _)) => KafkaError::MessageProduction(code),
                    None => error,
                }
            }
            other => other,
        }
    }

    /// Waits (bounded) for everything in flight, e.g. before a clean pause.
    pub fn flush(&self, timeout: Duration) {
        let _ = self.blocking(String::new(), |p| p.flush(timeout));
    }

    /// Opens a transaction (transactional producers only).
    pub fn begin(&self) -> Result<()> {
        self.producer
            .begin_transaction()
            .map_err(|source| Error::Kafka {
                context: format!(
                    "exactly_once: cannot begin a Kafka transaction with transactional id {}; \
                     the brokers must support transactions and the sink's user needs WRITE on \
                     that TransactionalId",
                    self.transactional_id.as_deref().unwrap_or_default()
                ),
                source,
            })
    }

    /// Adds `progress` to the open transaction and commits it: Kafka then holds the messages
    /// and the progress they make, or neither.
    /// With `consumed` (a worker's chunk), the work record's offset commits with them.
    pub async fn commit(
        &self,
        state: &TransactionState,
        progress: &[Progress],
        consumed: Option<&super::work::Consumed>,
    ) -> Result<()> {
        // Their delivery is part of the commit: the counter only serves `send_all`.
        let acks = Acks::new();
        for record in progress {
            let (key, payload) = super::transactions::record(record, &state.project, &state.run)?;
            let bytes = key.len() + payload.len();
            let one = std::iter::once((0, Some(key.as_bytes()), payload.as_slice()));
            self.send_all(STATE_TOPIC, one, bytes, &acks)
                .await
                .map_err(|refused| Error::Kafka {
                    context: format!("exactly_once: cannot write progress to {STATE_TOPIC}"),
                    source: refused.error,
                })?;
        }
        // rust-rdkafka's commit first flushes by polling in steps of up to 100 ms, which the
        // producer's own polling thread keeps losing: deliver everything here, then commit.
        let deadline = std::time::Instant::now() + super::transactions::COMMIT_TIMEOUT;
        while self.producer.in_flight_count() > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if let Some(consumed) = consumed {
            self.blocking(
                format!(
                    "worker: cannot commit the work record's offset with transaction {} (the \
                     worker may have lost the chunk's partition to another; it reads it again)",
                    self.transactional_id.as_deref().unwrap_or_default()
                ),
                |p| {
                    p.send_offsets_to_transaction(
                        &consumed.offsets,
                        &consumed.group,
                        super::transactions::COMMIT_TIMEOUT,
                    )
                },
            )?;
        }
        let started = std::time::Instant::now();
        let committed = self.blocking(
            format!(
                "exactly_once: Kafka did not commit transaction {} ({}); a rerun continues after \
                 the last committed one. If another run of this project took over the \
                 transactional id, stop one of them; if a full-sync chunk outlasts the \
                 producer's transaction.timeout.ms, lower `chunk_rows` or raise \
                 'transaction.timeout.ms' on the sink",
                self.transactional_id.as_deref().unwrap_or_default(),
                state.project
            ),
            |p| p.commit_transaction(super::transactions::COMMIT_TIMEOUT),
        );
        tracing::debug!(elapsed = ?started.elapsed(), "exactly_once: transaction committed");
        committed
    }

    /// Aborts the open transaction, best effort: a producer that cannot abort is fenced by the
    /// next run anyway.
    pub fn abort(&self) {
        let _ = self.blocking(String::new(), |p| {
            p.abort_transaction(super::transactions::COMMIT_TIMEOUT)
        });
    }

    /// A blocking producer call from async code: other tasks keep the runtime's other threads.
    fn blocking(
        &self,
        context: String,
        call: impl FnOnce(&ThreadedProducer<DeliveryContext>) -> rdkafka::error::KafkaResult<()>,
    ) -> Result<()> {
        let producer = &self.producer;
        let result = match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| call(producer))
            }
            _ => call(producer),
        };
        result.map_err(|source| Error::Kafka { context, source })
    }
}

/// Whose progress a transactional producer records: the project and its run id.
#[derive(Debug, Clone)]
pub struct TransactionState {
    pub project: String,
    pub run: String,
}
