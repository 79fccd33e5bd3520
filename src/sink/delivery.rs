//! The delivery path: the one way messages leave tributary, whoever produces them (full-sync
//! chunk readers, the binlog stream, later online snapshots and workers).
//!
//! ```text
//!  stage ──(filtered change batch)──► Writer ──► Route: encode, partition ──► KafkaSink ──► Kafka
//!    ▲                                  │ one in-flight reservation and one metrics update per batch
//!    └──────── Acks (settled when Kafka acknowledged every message of the group) ◄──────┘
//! ```
//!
//! A stage hands a [`Writer`] whole batches with the [`Acks`] group they count in (a chunk, a
//! source transaction); it moves its checkpoint only once that group is settled. The writer owns
//! everything between the batch and the broker: the table's [`Route`] (encoder, partitioner,
//! topic), the in-flight budget, Kafka transactions with `exactly_once`, and the per-table
//! metrics — for every path alike. [`Delivery`] makes the writers and the destinations they
//! write to (topics now; tables when a lake sink sits beside Kafka behind the same calls).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;

use super::admin::{self, TopicPartitions};
use super::kafka::{Acks, Defaults, KafkaSink, Refused, TransactionState};
use super::lake::{Lake, LakeWriter, STREAM_ROLE};
use super::throttle::Throttle;
use super::transactions;
use crate::batch::{ChangeBatch, ChangeMeta};
use crate::checkpoint::{Checkpoint, Progress};
use crate::encode::{ChangeImages, Encoder, Keys, Messages, TableContext};
use crate::error::{Error, Result};
use crate::metrics::{Metrics, Phase, TableMetrics};
use crate::partition::Partitioner;
use crate::plan::TablePlan;
use crate::project::{Partitioning, ProjectFile};
use crate::transform::Emit;

/// Unacknowledged bytes the producers of a run may hold: the memory bound of the sink side.
pub const MAX_IN_FLIGHT_BYTES: usize = 64 << 20;

/// The stream's transactional producer waits little before sending: a commit waits for its
/// messages, so the bulk-load `linger.ms` would add itself to every change's latency.
const STREAM_DEFAULTS: Defaults = &[("linger.ms", "2")];

/// Full-sync producers keep the bulk-load defaults.
const NO_DEFAULTS: Defaults = &[];

/// A worker's chunk producer: a killed worker's open transaction ends soon (see
/// [`super::work::TRANSACTION_TIMEOUT_MS`]).
const WORKER_DEFAULTS: Defaults = &[
    (
        "transaction.timeout.ms",
        super::work::TRANSACTION_TIMEOUT_MS,
    ),
    ("message.timeout.ms", super::work::TRANSACTION_TIMEOUT_MS),
];

/// One table's way out: its topic, encoder and partitioner, and its metrics.
pub struct Route {
    pub plan: TablePlan,
    encoder: Encoder,
    partitioner: Partitioner,
    /// The topic's partition count.
    partitions: i32,
    metrics: TableMetrics,
}

impl Route {
    pub fn new(
        plan: &TablePlan,
        project: &ProjectFile,
        topics: &TopicPartitions,
        metrics: &Metrics,
    ) -> Result<Route> {
        let partitions = topics.get(&plan.topic).copied().unwrap_or(1) as i32;
        let context = TableContext::new(
            plan,
            project.source.kind,
            &project.source.user,
            project.project.business_system_id.as_deref(),
        );
        metrics.topic(&plan.topic);
        let encoder = Encoder::new(plan.format, context)
            .map_err(|e| Error::Config(format!("table {}: {e}", plan.qualified())))?;
        Ok(Route {
            partitioner: Partitioner::new(
                plan.partitioning,
                &plan.database,
                &plan.table,
                partitions,
                plan.partition,
            ),
            partitions,
            metrics: metrics.table(&plan.qualified()),
            encoder,
            plan: plan.clone(),
        })
    }

    /// The partitions a DDL statement goes to: every partition with `hash` (its rows are spread
    /// over them), else the table's one.
    fn ddl_partitions(&self) -> std::ops::Range<i32> {
        match (self.plan.partitioning, self.partitioner) {
            (Partitioning::Hash, _) => 0..self.partitions,
            (_, Partitioner::Table { partition } | Partitioner::One { partition }) => {
                partition..partition + 1
            }
            (_, Partitioner::Hash { fallback, .. }) => fallback..fallback + 1,
        }
    }
}

/// Where a batch's messages go.
enum Target {
    /// Each message to its key's partition.
    ByKey,
    /// The one message to each of these partitions.
    Each(std::ops::Range<i32>),
}

/// The run's sink: the destinations and the writers. Kafka is its one kind today.
pub struct Delivery {
    project: ProjectFile,
    metrics: Arc<Metrics>,
    /// With `exactly_once`: whose progress the transactions commit.
    transactions: Option<TransactionState>,
    /// With `exactly_once`: the transactional producers started (and so fenced) by
    /// [`Delivery::recover`], by role, until a writer takes them.
    started: std::sync::Mutex<BTreeMap<String, KafkaSink>>,
    /// The run's rate limits, shared by every writer.
    throttle: Arc<Throttle>,
    /// A lake sink, once [`Delivery::recover`] opened it; and each writer role's next commit
    /// record number.
    lake: Option<Arc<Lake>>,
    lake_records: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

impl Delivery {
    /// `stop` (Ctrl-C / SIGTERM) cuts throttling waits short.
    pub fn new(
        project: &ProjectFile,
        metrics: &Arc<Metrics>,
        stop: Option<tokio::sync::watch::Receiver<bool>>,
    ) -> Delivery {
        Delivery {
            project: project.clone(),
            metrics: Arc::clone(metrics),
            transactions: None,
            started: std::sync::Mutex::new(BTreeMap::new()),
            throttle: Arc::new(Throttle::new(
                project.project.max_rows_per_second,
                project.project.max_bytes_per_second,
                stop,
            )),
            lake: None,
            lake_records: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Makes sure the topics of `tables` exist (creating the missing ones when the project has
    /// schema sync), and returns every topic's partition count.
    pub async fn ensure_destinations(
        &self,
        tables: &[TablePlan],
        context: &str,
    ) -> Result<TopicPartitions> {
        let wanted: Vec<String> = tables
            .iter()
            .map(|t| t.topic.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let sink = &self.project.sink;
        let options = &self.project.project;
        if sink.is_lake() {
            if options.sync.schema {
                Lake::open(&self.project, "")?.ensure_tables(tables).await?;
            }
            return Ok(TopicPartitions::new());
        }
        if !options.sync.schema {
            let existing = admin::fetch_topics(sink).await?;
            let missing: Vec<&str> = wanted
                .iter()
                .filter(|t| !existing.contains_key(*t))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                return Err(Error::Config(format!(
                    "{context}: topics {} do not exist and schema sync is off; create them or \
                     add 'schema' to `sync`",
                    missing.join(", ")
                )));
            }
            return Ok(existing);
        }
        admin::ensure_topics(
            sink,
            &wanted,
            options.topic_partitions,
            options.topic_replication,
            context,
        )
        .await
    }

    /// With `exactly_once`: the run id (new on a first run), the state topic, the fencing of
    /// this project's earlier producers, and the progress the last runs committed — which
    /// overlays the local checkpoint where it is newer (a crash between a commit and the file's
    /// save leaves the file behind).
    pub async fn recover(
        &mut self,
        checkpoint: &mut Checkpoint,
        tables: &[TablePlan],
    ) -> Result<()> {
        let project = &self.project;
        // A new run id has no progress in the state topic yet: nothing to read back.
        let new_run = checkpoint.run_id.is_empty();
        if new_run {
            checkpoint.run_id = transactions::new_run_id();
        }
        if project.sink.is_lake() {
            let lake = Lake::open(project, &checkpoint.run_id)?;
            lake.refuse_keyless_tables(tables)?;
            if new_run {
                lake.refuse_filled_tables(tables).await?;
            }
            let (progress, next) = lake.recover().await?;
            if !progress.is_empty() {
                tracing::info!(
                    records = progress.len(),
                    "progress committed to the lake overlays the local checkpoint"
                );
                super::lake::overlay(checkpoint, progress);
            }
            if let Ok(mut records) = self.lake_records.lock() {
                *records = next;
            }
            self.lake = Some(lake);
            return Ok(());
        }
        let state = TransactionState {
            project: project.project.name.value.clone(),
            run: checkpoint.run_id.clone(),
        };
        transactions::ensure_state_topic(&project.sink, project.project.topic_replication).await?;
        // Fence first: starting this run's producers aborts a crashed run's open transactions,
        // so reading committed records is not stopped short of the ones committed after them.
        // The producers are started together, and kept for the writers.
        let readers = project.project.full_concurrency.max(1);
        let mut roles = vec![(
            STREAM_ROLE.to_string(),
            MAX_IN_FLIGHT_BYTES,
            STREAM_DEFAULTS,
        )];
        roles.extend((0..readers).map(|r| {
            (
                format!("full-{r}"),
                MAX_IN_FLIGHT_BYTES / readers,
                NO_DEFAULTS,
            )
        }));
        let producers = roles
            .iter()
            .map(|(role, budget, defaults)| {
                let id = transactions::transactional_id(&state.project, role);
                (id, *budget, *defaults)
            })
            .collect();
        let began = std::time::Instant::now();
        let started = KafkaSink::transactional_all(&project.sink, producers).await?;
        tracing::debug!(elapsed = ?began.elapsed(), "exactly_once: transactional producers started");
        if let Ok(mut kept) = self.started.lock() {
            kept.extend(roles.into_iter().map(|(role, ..)| role).zip(started));
        }
        let began = std::time::Instant::now();
        let progress = if new_run {
            Vec::new()
        } else {
            transactions::read_progress(&project.sink, &state.project, &state.run).await?
        };
        tracing::debug!(elapsed = ?began.elapsed(), "exactly_once: state topic read");
        if !progress.is_empty() {
            tracing::info!(
                records = progress.len(),
                "exactly_once: progress committed to Kafka overlays the local checkpoint"
            );
            transactions::overlay(checkpoint, progress);
        }
        self.transactions = Some(state);
        Ok(())
    }

    /// Workers (`run --worker`): every worker commits the project's progress to the state
    /// topic under the one run id `run`, each in transactions of its own producers; nothing is
    /// fenced here (the stream's producer fences the last owner when this worker takes over).
    pub async fn join_workers(&mut self, run: &str) -> Result<()> {
        let project = &self.project;
        transactions::ensure_state_topic(&project.sink, project.project.topic_replication).await?;
        self.transactions = Some(TransactionState {
            project: project.project.name.value.clone(),
            run: run.to_string(),
        });
        Ok(())
    }

    /// A worker's writer for full-sync chunks, with the transactional id `worker`.
    pub async fn worker_writer(&self, worker: &str) -> Result<Writer> {
        let kafka = self
            .start_transactional(worker, MAX_IN_FLIGHT_BYTES, WORKER_DEFAULTS)
            .await?;
        Ok(self.writer(Arc::new(kafka)))
    }

    /// A new transactional producer of this project's `role`: starting it fences the last
    /// producer with the same id.
    async fn start_transactional(
        &self,
        role: &str,
        budget: usize,
        defaults: Defaults,
    ) -> Result<KafkaSink> {
        let project = &self.project.project.name.value;
        let id = transactions::transactional_id(project, role);
        KafkaSink::transactional(&self.project.sink, budget, &id, defaults).await
    }

    /// The transactional producer of `role`: the one [`Delivery::recover`] started, or a new
    /// one.
    async fn transactional(
        &self,
        role: &str,
        budget: usize,
        defaults: Defaults,
    ) -> Result<KafkaSink> {
        if let Some(started) = self.started.lock().ok().and_then(|mut s| s.remove(role)) {
            return Ok(started);
        }
        self.start_transactional(role, budget, defaults).await
    }

    /// Writers for `count` concurrent full-sync readers: one shared producer, or with
    /// `exactly_once` a transactional producer each (a chunk is one transaction); the in-flight
    /// bound is shared out so memory stays where it is without transactions.
    pub async fn snapshot_writers(&self, count: usize) -> Result<Vec<Writer>> {
        let sink = &self.project.sink;
        let mut writers = Vec::with_capacity(count);
        if self.lake.is_some() {
            for reader in 0..count {
                writers.push(self.lake_writer(&format!("full-{reader}"))?);
            }
            return Ok(writers);
        }
        match &self.transactions {
            None => {
                let shared = Arc::new(KafkaSink::new(sink, MAX_IN_FLIGHT_BYTES)?);
                for _ in 0..count {
                    writers.push(self.writer(Arc::clone(&shared)));
                }
            }
            Some(_) => {
                for reader in 0..count {
                    let budget = MAX_IN_FLIGHT_BYTES / count.max(1);
                    let kafka = self
                        .transactional(&format!("full-{reader}"), budget, NO_DEFAULTS)
                        .await?;
                    writers.push(self.writer(Arc::new(kafka)));
                }
            }
        }
        Ok(writers)
    }

    /// Starts the stream's transactional producer, which fences the stream's last owner and
    /// aborts its open transaction at once; [`Delivery::stream_writer`] takes it. A worker does
    /// this before it reads the state topic: the dead owner's transaction would otherwise hold
    /// that read back until Kafka times it out (`transaction.timeout.ms`, 60 s by default).
    pub async fn fence_stream(&self) -> Result<()> {
        if self.lake.is_some() || self.transactions.is_none() {
            return Ok(());
        }
        let kafka = self
            .start_transactional(STREAM_ROLE, MAX_IN_FLIGHT_BYTES, STREAM_DEFAULTS)
            .await?;
        // A producer kept from an earlier turn as owner may have been fenced since: replace it.
        if let Ok(mut started) = self.started.lock() {
            started.insert(STREAM_ROLE.to_string(), kafka);
        }
        Ok(())
    }

    /// The binlog stream's writer.
    pub async fn stream_writer(&self) -> Result<Writer> {
        let sink = &self.project.sink;
        if self.lake.is_some() {
            let mut writer = self.lake_writer(STREAM_ROLE)?;
            writer.stream = true;
            return Ok(writer);
        }
        let kafka = match &self.transactions {
            None => KafkaSink::new(sink, MAX_IN_FLIGHT_BYTES)?,
            Some(_) => {
                self.transactional(STREAM_ROLE, MAX_IN_FLIGHT_BYTES, STREAM_DEFAULTS)
                    .await?
            }
        };
        let mut writer = self.writer(Arc::new(kafka));
        writer.stream = true;
        Ok(writer)
    }

    /// A lake sink's writer for `role`, numbering its commits after the last run's.
    fn lake_writer(&self, role: &str) -> Result<Writer> {
        let lake = self.lake.as_ref().ok_or_else(|| {
            Error::Definite("the lake sink is used before it was recovered".to_string())
        })?;
        let number = self
            .lake_records
            .lock()
            .ok()
            .and_then(|records| records.get(role).copied())
            .unwrap_or(1);
        Ok(self.writer_to(Out::Lake(LakeWriter::new(lake, role, number))))
    }

    fn writer(&self, kafka: Arc<KafkaSink>) -> Writer {
        self.writer_to(Out::Kafka(kafka))
    }

    fn writer_to(&self, out: Out) -> Writer {
        Writer {
            out,
            transactions: self.transactions.clone(),
            throttle: Arc::clone(&self.throttle),
            metrics: Arc::clone(&self.metrics),
            messages: Messages::default(),
            partitions: Vec::new(),
            before_keys: Keys::default(),
            after_keys: Keys::default(),
            sequence: 0,
            stream: false,
            heartbeats: false,
        }
    }
}

/// Where a writer's rows go.
enum Out {
    Kafka(Arc<KafkaSink>),
    Lake(LakeWriter),
}

/// One producing task's handle on the delivery path.
pub struct Writer {
    out: Out,
    transactions: Option<TransactionState>,
    throttle: Arc<Throttle>,
    metrics: Arc<Metrics>,
    messages: Messages,
    partitions: Vec<i32>,
    before_keys: Keys,
    after_keys: Keys,
    /// The order of change records within a run (the formats that carry one).
    sequence: u64,
    /// The binlog stream's writer: its messages count in the incremental phase.
    stream: bool,
    /// HEARTBEAT records are being sent (not counted as messages).
    heartbeats: bool,
}

impl Writer {
    /// Snapshot rows: `read` rows came from the source, `batch` holds those the row filter
    /// kept.
    pub async fn snapshot(
        &mut self,
        route: &mut Route,
        read: usize,
        batch: &RecordBatch,
        acks: &Arc<Acks>,
    ) -> Result<()> {
        route.metrics.read(read as u64, batch.num_rows() as u64);
        self.throttle_rows(read as u64).await;
        if let Out::Lake(lake) = &mut self.out {
            let bytes = lake.snapshot(&route.plan, batch, acks).await?;
            self.throttle_bytes(bytes).await;
            route
                .metrics
                .sent(Phase::Full, batch.num_rows() as u64, bytes);
            return Ok(());
        }
        self.messages.clear();
        route.encoder.encode_snapshot(batch, &mut self.messages);
        // Snapshot rows count as such, also when the stream's writer sends them (online
        // snapshots).
        self.deliver(route, Target::ByKey, acks, Phase::Full)
            .await?;
        Ok(())
    }

    /// Row changes. Each image's message keys are built once: `choose` picks the records from
    /// them (the row filter's crossing rules, key changes, the DML filter — see
    /// [`crate::transform::changes`]) and the messages carry them. Returns the messages sent.
    pub async fn changes(
        &mut self,
        route: &mut Route,
        batch: &ChangeBatch,
        meta: &ChangeMeta,
        acks: &Arc<Acks>,
        choose: impl FnOnce(&ChangeImages<'_>) -> Result<Vec<Emit>>,
    ) -> Result<usize> {
        self.before_keys.clear();
        self.after_keys.clear();
        if let Some(before) = &batch.before {
            route.encoder.keys(before, &mut self.before_keys);
        }
        if let Some(after) = &batch.after {
            route.encoder.keys(after, &mut self.after_keys);
        }
        let images = ChangeImages {
            before: batch.before.as_ref(),
            after: batch.after.as_ref(),
            before_keys: &self.before_keys,
            after_keys: &self.after_keys,
        };
        let emits = choose(&images)?;
        route.metrics.read(batch.rows() as u64, emits_rows(&emits));
        self.throttle_rows(batch.rows() as u64).await;
        if emits.is_empty() {
            return Ok(0);
        }
        let phase = self.phase();
        if let Out::Lake(lake) = &mut self.out {
            let (rows, bytes) = lake
                .changes(&route.plan, &images, &emits, meta, acks)
                .await?;
            self.throttle_bytes(bytes).await;
            route.metrics.sent(phase, rows as u64, bytes);
            return Ok(rows);
        }
        self.messages.clear();
        route.encoder.encode_keyed_changes(
            &images,
            &emits,
            meta,
            &mut self.sequence,
            &mut self.messages,
        );
        self.deliver(route, Target::ByKey, acks, self.phase()).await
    }

    /// A DDL statement, to the partitions that carry the table's rows; `false` when the format
    /// sends no DDL.
    pub async fn ddl(
        &mut self,
        route: &mut Route,
        statement: &str,
        meta: &ChangeMeta,
        acks: &Arc<Acks>,
    ) -> Result<bool> {
        if let Out::Lake(lake) = &mut self.out {
            lake.ddl(&route.plan, statement, meta, acks).await?;
            route.metrics.ddl(1);
            return Ok(true);
        }
        self.messages.clear();
        if !route
            .encoder
            .encode_ddl(statement, meta, &mut self.messages)
        {
            return Ok(false);
        }
        let partitions = route.ddl_partitions();
        let sent = self
            .deliver(route, Target::Each(partitions), acks, self.phase())
            .await?;
        route.metrics.ddl(sent as u64);
        Ok(true)
    }

    /// A HEARTBEAT record at `seconds` to every partition of the route's topic; `false` when the
    /// format has none. Heartbeats move no checkpoint: nobody awaits their acknowledgement.
    pub async fn heartbeat(&mut self, route: &mut Route, seconds: u64) -> Result<bool> {
        // A lake table's commits show the stream is alive; it has no heartbeat rows.
        if let Out::Lake(_) = self.out {
            return Ok(false);
        }
        self.messages.clear();
        if !route.encoder.encode_heartbeat(seconds, &mut self.messages) {
            return Ok(false);
        }
        let partitions = 0..route.partitions;
        // Not data: counted apart, so the message counters match what consumers count.
        self.heartbeats = true;
        let sent = self
            .deliver(route, Target::Each(partitions), &Acks::new(), self.phase())
            .await;
        self.heartbeats = false;
        self.metrics.heartbeats(sent? as u64);
        Ok(true)
    }

    /// The one send loop: partitions assigned, the batch's bytes reserved once, every message
    /// handed to the producer, the table's counters moved once.
    /// The phase this writer's changes count in.
    fn phase(&self) -> Phase {
        if self.stream {
            Phase::Incremental
        } else {
            Phase::Full
        }
    }

    async fn deliver(
        &mut self,
        route: &Route,
        target: Target,
        acks: &Arc<Acks>,
        phase: Phase,
    ) -> Result<usize> {
        if !self.heartbeats && !self.throttle.is_off() {
            let bytes = match &target {
                Target::ByKey => self.messages.payload_bytes(),
                Target::Each(partitions) => self.messages.payload(0).len() * partitions.len(),
            };
            self.throttle_bytes(bytes as u64).await;
        }
        let Out::Kafka(kafka) = &self.out else {
            return Err(Error::Definite(
                "a lake sink's writer was handed Kafka messages".to_string(),
            ));
        };
        let messages = &self.messages;
        let topic = route.plan.topic.as_str();
        let (sent, bytes) = match target {
            Target::ByKey => {
                self.partitions.clear();
                route.partitioner.assign(
                    (0..messages.len()).map(|i| messages.key(i)),
                    &mut self.partitions,
                );
                let records = self
                    .partitions
                    .iter()
                    .enumerate()
                    .map(|(i, &partition)| (partition, messages.key(i), messages.payload(i)));
                kafka
                    .send_all(topic, records, messages.bytes(), acks)
                    .await
                    .map_err(|refused| send_error(&route.plan, refused))?;
                (messages.len(), messages.payload_bytes())
            }
            Target::Each(partitions) => {
                let count = partitions.len();
                let payload = messages.payload(0);
                let records = partitions.map(|partition| (partition, None, payload));
                kafka
                    .send_all(topic, records, payload.len() * count, acks)
                    .await
                    .map_err(|refused| send_error(&route.plan, refused))?;
                (count, payload.len() * count)
            }
        };
        if self.heartbeats {
            return Ok(sent);
        }
        route.metrics.sent(phase, sent as u64, bytes as u64);
        Ok(sent)
    }

    /// Waits while the run is over `max_bytes_per_second`. (Borrows only what it needs: a
    /// lake writer's open files cannot be shared across an await.)
    fn throttle_bytes(&self, bytes: u64) -> impl Future<Output = ()> + Send + 'static {
        let (throttle, metrics) = (Arc::clone(&self.throttle), Arc::clone(&self.metrics));
        async move {
            if !throttle.is_off() {
                metrics.throttled(throttle.bytes(bytes).await);
            }
        }
    }

    /// Waits while the run is over `max_rows_per_second`.
    fn throttle_rows(&self, rows: u64) -> impl Future<Output = ()> + Send + 'static {
        let (throttle, metrics) = (Arc::clone(&self.throttle), Arc::clone(&self.metrics));
        async move {
            if !throttle.is_off() {
                metrics.throttled(throttle.rows(rows).await);
            }
        }
    }

    /// Opens a Kafka transaction (`exactly_once` only; nothing otherwise). A lake writer's
    /// transaction is always open: whatever it wrote since its last commit.
    pub fn begin(&self) -> Result<()> {
        match (&self.out, &self.transactions) {
            (Out::Kafka(kafka), Some(_)) => kafka.begin(),
            _ => Ok(()),
        }
    }

    /// Commits the open transaction with the progress its messages make (`exactly_once`
    /// only; nothing otherwise). A lake writer commits its files with the progress.
    pub async fn commit(&mut self, progress: &[Progress]) -> Result<()> {
        self.commit_consumed(progress, None).await
    }

    /// [`Writer::commit`], and with `consumed` (a worker's chunk) the work record's offset in
    /// the same transaction: the chunk is done exactly when its rows are committed.
    pub async fn commit_consumed(
        &mut self,
        progress: &[Progress],
        consumed: Option<&super::work::Consumed>,
    ) -> Result<()> {
        let began = std::time::Instant::now();
        match (&mut self.out, &self.transactions) {
            (Out::Lake(lake), _) => {
                if let Err(e) = lake.commit(progress).await {
                    lake.abort();
                    return Err(e);
                }
            }
            (Out::Kafka(kafka), Some(state)) => {
                if let Err(e) = kafka.commit(state, progress, consumed).await {
                    kafka.abort();
                    return Err(e);
                }
            }
            (Out::Kafka(_), None) => return Ok(()),
        }
        self.metrics.transaction_committed(began.elapsed());
        Ok(())
    }

    /// A full-sync chunk was read: its progress is committed now (a Kafka transaction, with
    /// `exactly_once`), or — a lake writer — with the file its rows are in, once that file is
    /// full (see [`Writer::defers_commits`]).
    pub async fn commit_chunk(&mut self, progress: &[Progress]) -> Result<()> {
        if let Out::Lake(lake) = &mut self.out {
            if let Err(e) = lake.commit_when_full(progress).await {
                lake.abort();
                return Err(e);
            }
            return Ok(());
        }
        self.commit(progress).await
    }

    /// Whether a chunk's rows may stay uncommitted after [`Writer::commit_chunk`] (a lake
    /// writer filling a file): its acknowledgements then come with a later commit, and an
    /// abort fails them.
    pub fn defers_commits(&self) -> bool {
        matches!(self.out, Out::Lake(_))
    }

    /// Aborts the open transaction (`exactly_once` only).
    pub fn abort(&mut self) {
        match (&mut self.out, &self.transactions) {
            (Out::Lake(lake), _) => lake.abort(),
            (Out::Kafka(kafka), Some(_)) => kafka.abort(),
            (Out::Kafka(_), None) => {}
        }
    }

    /// Whether what this writer sends counts only once committed: Kafka with
    /// `exactly_once`, and every lake sink.
    pub fn exactly_once(&self) -> bool {
        matches!(self.out, Out::Lake(_)) || self.transactions.is_some()
    }

    /// How long a commit may wait while changes keep coming: the lake sink's
    /// `commit_interval_ms`; `None` for Kafka (its transactions commit every 50 ms).
    pub fn commit_interval(&self) -> Option<std::time::Duration> {
        match &self.out {
            Out::Lake(lake) => Some(lake.commit_interval()),
            Out::Kafka(_) => None,
        }
    }

    /// Whether the writer should commit now rather than at its interval: a lake writer with
    /// files of many tables open, or a file full. (Kafka's producer bounds itself.)
    pub fn holds_enough(&self) -> bool {
        match &self.out {
            Out::Lake(lake) => lake.holds_enough(),
            Out::Kafka(_) => false,
        }
    }

    /// Lake change rows continue the `_seq` of earlier runs: `last` changes were committed.
    pub fn continue_sequence(&mut self, last: u64) {
        if let Out::Lake(lake) = &mut self.out {
            lake.continue_sequence(last);
        }
    }

    /// Waits (bounded) for everything in flight, e.g. before a clean pause.
    pub fn flush(&self, timeout: std::time::Duration) {
        if let Out::Kafka(kafka) = &self.out {
            kafka.flush(timeout);
        }
    }
}

/// Source rows that produced at least one record.
fn emits_rows(emits: &[Emit]) -> u64 {
    let mut rows = 0;
    let mut last = None;
    for emit in emits {
        let row = match *emit {
            Emit::Insert(row) | Emit::Update(row) | Emit::Delete(row) => row,
        };
        if last != Some(row) {
            rows += 1;
            last = Some(row);
        }
    }
    rows
}

fn send_error(table: &TablePlan, refused: Refused) -> Error {
    let key = refused
        .key
        .as_deref()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .unwrap_or_else(|| "null".into());
    match refused.error {
        rdkafka::error::KafkaError::MessageProduction(
            rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge,
        ) => Error::Sink(format!(
            "table {}: the row with key {key} is larger than the producer's message.max.bytes; \
             raise 'message.max.bytes' on the sink (and the topic's max.message.bytes), or leave \
             the large column out with COLUMNS",
            table.qualified()
        )),
        // Kept whole: a fenced producer is told apart from other refusals.
        source => Error::Kafka {
            context: format!(
                "table {}: Kafka refused the message with key {key}",
                table.qualified()
            ),
            source,
        },
    }
}
