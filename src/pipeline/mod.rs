//! The run: schema sync → full sync (→ incremental sync). The only place that spawns tasks and
//! makes channels. Full sync runs `full_concurrency` chunk readers; each chunk's rows are
//! filtered, encoded, partitioned and handed to the producer, and the chunk is reported done
//! only after Kafka acknowledged all of its messages. The coordinator then records it in the
//! checkpoint (see `checkpoint` for why this loses nothing).

use std::collections::{BTreeMap, VecDeque};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::checkpoint::{self, Checkpoint, Store, TableProgress};
use crate::encode::{Encoder, Messages, TableContext};
use crate::error::{Error, Result};
use crate::metrics::{Metrics, TableMetrics};
use crate::partition::Partitioner;
use crate::plan::{Plan, TablePlan};
use crate::project::{Partitioning, ProjectFile};
use crate::sink::admin;
use crate::sink::kafka::{Acks, KafkaSink, TransactionState};
use crate::sink::transactions;
use crate::source::{self, snapshot};
use crate::transform;

mod incremental;

/// Unacknowledged bytes the producer may hold: the memory bound of the sink side.
pub(crate) const MAX_IN_FLIGHT_BYTES: usize = 128 << 20;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub state_dir: Option<PathBuf>,
    pub until_caught_up: bool,
    pub metrics_addr: Option<String>,
}

/// What a run did, for the closing summary.
#[derive(Debug, Default)]
pub struct RunSummary {
    pub tables: usize,
    pub topics: usize,
    pub rows_read: u64,
    pub messages_sent: u64,
    pub bytes_sent: u64,
    pub elapsed: Duration,
    pub paused: bool,
    /// Where incremental sync starts (or would start).
    pub handoff: Option<checkpoint::BinlogPosition>,
    /// Row changes incremental sync sent.
    pub events: u64,
    /// Where incremental sync stopped (acknowledged).
    pub position: Option<checkpoint::BinlogPosition>,
}

/// One table during the run.
pub(crate) struct TableRun {
    pub(crate) plan: TablePlan,
    pub(crate) context: TableContext,
    pub(crate) partitioner: Partitioner,
    pub(crate) metrics: Arc<TableMetrics>,
}

impl TableRun {
    pub(crate) fn new(
        plan: &TablePlan,
        project: &ProjectFile,
        topics: &BTreeMap<String, usize>,
        metrics: &Metrics,
    ) -> TableRun {
        let partitions = topics.get(&plan.topic).copied().unwrap_or(1) as i32;
        TableRun {
            context: TableContext::new(
                plan,
                project.source.kind,
                &project.source.user,
                project.project.business_system_id.as_deref(),
            ),
            partitioner: Partitioner::new(
                plan.partitioning,
                &plan.database,
                &plan.table,
                partitions,
                plan.partition,
            ),
            metrics: metrics.table(&plan.qualified()),
            plan: plan.clone(),
        }
    }
}

struct ChunkDone {
    table: usize,
    chunk: usize,
    rows: u64,
}

pub fn state_store(project: &ProjectFile, state_dir: Option<&std::path::Path>) -> Store {
    Store::new(state_dir, &project.project.name.value)
}

pub async fn run(plan: Plan, options: RunOptions) -> Result<RunSummary> {
    let started = Instant::now();
    let project = &plan.project;
    let store = state_store(project, options.state_dir.as_deref());
    let mut checkpoint = store.load()?.unwrap_or_else(|| Checkpoint {
        project: project.project.name.value.clone(),
        format: checkpoint::FORMAT,
        ..Checkpoint::default()
    });
    checkpoint.upgrade(project.source.kind);
    // Every table's encoder is built before anything is written: a format this build cannot
    // write fails the run up front.
    for table in &plan.tables {
        let context = TableContext::new(
            table,
            project.source.kind,
            &project.source.user,
            project.project.business_system_id.as_deref(),
        );
        Encoder::new(table.format, context)
            .map_err(|e| Error::Config(format!("table {}: {e}", table.qualified())))?;
    }
    let metrics = Metrics::new(plan.tables.iter().map(TablePlan::qualified));
    if let Some(addr) = &options.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::io(format!("cannot serve metrics on --metrics-addr {addr}"), e))?;
        tokio::spawn(crate::metrics::serve(listener, Arc::clone(&metrics)));
    }

    let topics = schema_sync(&plan, &mut checkpoint, &store).await?;
    let exactly_once = if project.project.exactly_once {
        Some(exactly_once_state(project, &mut checkpoint, &store).await?)
    } else {
        if !checkpoint.run_id.is_empty() {
            // Without transactions the file moves on alone: what the state topic holds for the
            // old run id must not overlay it if exactly_once comes back.
            checkpoint.run_id.clear();
            checkpoint.exactly_once_commits = 0;
            store.save(&mut checkpoint)?;
        }
        None
    };
    let mut summary = RunSummary {
        tables: plan.tables.len(),
        topics: plan
            .tables
            .iter()
            .map(|t| t.topic.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        ..RunSummary::default()
    };

    if project.project.sync.full && !checkpoint.full_done {
        let tables: Vec<TableRun> = plan
            .tables
            .iter()
            .map(|t| TableRun::new(t, project, &topics, &metrics))
            .collect();
        let paused = full_sync(
            project,
            tables,
            &mut checkpoint,
            &store,
            &metrics,
            exactly_once.as_ref(),
        )
        .await?;
        summary.paused = paused;
    }
    summary.rows_read = metrics
        .tables
        .values()
        .map(|t| t.rows_read.load(Ordering::Relaxed))
        .sum();
    summary.messages_sent = metrics
        .tables
        .values()
        .map(|t| t.messages_sent.load(Ordering::Relaxed))
        .sum();
    summary.bytes_sent = metrics
        .tables
        .values()
        .map(|t| t.bytes_sent.load(Ordering::Relaxed))
        .sum();
    summary.handoff = checkpoint.handoff.clone();
    summary.elapsed = started.elapsed();
    if summary.paused {
        return Ok(summary);
    }

    if project.project.sync.incremental {
        let outcome = incremental::run(
            &plan,
            &topics,
            &metrics,
            &mut checkpoint,
            &store,
            options.until_caught_up,
            exactly_once.as_ref(),
        )
        .await?;
        summary.paused = outcome.paused;
        summary.events = outcome.events;
        summary.position = checkpoint.incremental.clone();
        summary.elapsed = started.elapsed();
    }
    Ok(summary)
}

/// With `exactly_once`: the run id (new on a first run), the state topic, and the progress the
/// last runs committed there — which may be ahead of the local file after a crash.
async fn exactly_once_state(
    project: &ProjectFile,
    checkpoint: &mut Checkpoint,
    store: &Store,
) -> Result<TransactionState> {
    if checkpoint.run_id.is_empty() {
        checkpoint.run_id = transactions::new_run_id();
        store.save(checkpoint)?;
    }
    let state = TransactionState {
        project: project.project.name.value.clone(),
        run: checkpoint.run_id.clone(),
    };
    transactions::ensure_state_topic(&project.sink, project.project.topic_replication).await?;
    // Fence this project's producers first: a crashed run's open transactions are aborted, so
    // reading committed records is not stopped short of the ones committed after them.
    let roles = std::iter::once("incremental".to_string())
        .chain((0..project.project.full_concurrency).map(|reader| format!("full-{reader}")));
    for role in roles {
        let id = transactions::transactional_id(&state.project, &role);
        drop(KafkaSink::transactional(&project.sink, 1 << 20, &id, &[]).await?);
    }
    let progress = transactions::read_progress(&project.sink, &state.project, &state.run).await?;
    if !progress.is_empty() {
        tracing::info!(
            records = progress.len(),
            "exactly_once: progress committed to Kafka overlays the local checkpoint"
        );
        transactions::overlay(checkpoint, progress);
        store.save(checkpoint)?;
    }
    Ok(state)
}

/// Creates the missing topics (schema sync) and returns every topic's partition count.
async fn schema_sync(
    plan: &Plan,
    checkpoint: &mut Checkpoint,
    store: &Store,
) -> Result<BTreeMap<String, usize>> {
    let project = &plan.project;
    let sink = &project.sink;
    let wanted: Vec<String> = plan
        .tables
        .iter()
        .map(|t| t.topic.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut existing = admin::fetch_topics(sink).await?;
    let missing: Vec<String> = wanted
        .iter()
        .filter(|t| !existing.contains_key(*t))
        .cloned()
        .collect();
    if !missing.is_empty() {
        if !project.project.sync.schema {
            return Err(Error::Config(format!(
                "topics {} do not exist and schema sync is off; create them or add 'schema' to \
                 `sync`",
                missing.join(", ")
            )));
        }
        let results = admin::create_topics(
            sink,
            &missing,
            project.project.topic_partitions,
            project.project.topic_replication,
            false,
        )
        .await?;
        for (topic, result) in results {
            if let Err(reason) = result {
                return Err(Error::Sink(format!(
                    "schema sync: cannot create topic {topic}: {reason}"
                )));
            }
            tracing::info!(topic = %topic, "schema sync created the topic");
        }
        // Kafka creates topics asynchronously: wait (bounded) until the metadata shows them.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            existing = admin::fetch_topics(sink).await?;
            if missing
                .iter()
                .all(|t| existing.get(t).is_some_and(|p| *p > 0))
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(Error::Sink(format!(
                    "schema sync: topics {} were created but do not appear in the metadata",
                    missing.join(", ")
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for table in &plan.tables {
        let partitions = existing.get(&table.topic).copied().unwrap_or(0);
        if table.partitioning == Partitioning::One && table.partition as usize >= partitions {
            return Err(Error::Config(format!(
                "table {} goes to partition {} of topic {}, which has {partitions} partitions; \
                 change `partition`",
                table.qualified(),
                table.partition,
                table.topic
            )));
        }
    }
    if project.project.sync.schema && !checkpoint.schema_done {
        checkpoint.schema_done = true;
        store.save(checkpoint)?;
    }
    Ok(existing)
}

/// Full sync. Returns whether it was paused (Ctrl-C / SIGTERM) before finishing.
async fn full_sync(
    project: &ProjectFile,
    tables: Vec<TableRun>,
    checkpoint: &mut Checkpoint,
    store: &Store,
    metrics: &Arc<Metrics>,
    exactly_once: Option<&TransactionState>,
) -> Result<bool> {
    let options = &project.project;
    if checkpoint.full_started_at == 0 {
        checkpoint.full_started_at = checkpoint::unix_now();
    }
    // The handoff position comes first: everything after it reaches incremental sync.
    if options.sync.incremental && checkpoint.handoff.is_none() {
        checkpoint.handoff = snapshot::binlog_position(&project.source).await?;
        if checkpoint.handoff.is_none() {
            return Err(Error::Config(format!(
                "source `{}` has no binlog at {}:{}, so incremental sync could not continue \
                 after full sync; point binlog_host/binlog_port at the binlog (the OceanBase \
                 Binlog Service) or remove 'incremental' from `sync`",
                project.source.name.value, project.source.binlog_host, project.source.binlog_port
            )));
        }
        // The schema history starts here too: events after the handoff decode with the
        // schemas as they were when it was taken.
        if checkpoint.schemas.is_none() {
            let catalog = live_catalog(project).await?;
            checkpoint.schemas = Some(checkpoint::TableSchema::of(&catalog));
        }
        store.save(checkpoint)?;
    }

    let mut conn = source::connect(&project.source).await?;
    snapshot::prepare_session(&mut conn, project.source.kind).await?;
    for table in &tables {
        let name = table.plan.qualified();
        let planned = checkpoint
            .tables
            .get(&name)
            .is_some_and(|p| !p.chunks.is_empty());
        if !planned {
            let (chunks, rows_estimate) =
                snapshot::plan_chunks(&mut conn, &table.plan, options.chunk_rows).await?;
            checkpoint.tables.insert(
                name,
                TableProgress {
                    chunks,
                    rows_estimate,
                },
            );
            store.save(checkpoint)?;
        }
    }
    drop(conn);

    let mut queue = VecDeque::new();
    let mut chunk_defs = Vec::new();
    for (t, table) in tables.iter().enumerate() {
        let progress = &checkpoint.tables[&table.plan.qualified()];
        chunk_defs.push(progress.chunks.clone());
        for (c, chunk) in progress.chunks.iter().enumerate() {
            if !chunk.done {
                queue.push_back((t, c));
            }
        }
    }
    let already_done: u64 = tables
        .iter()
        .map(|t| checkpoint.tables[&t.plan.qualified()].rows_done())
        .sum();
    tracing::info!(
        chunks = queue.len(),
        tables = tables.len(),
        rows_already_done = already_done,
        "full sync starts"
    );

    // Exactly once: a transactional producer per reader, each chunk one transaction. The
    // in-flight bound is shared out so memory stays where it is without transactions.
    let mut sinks = Vec::new();
    match exactly_once {
        None => {
            let shared = Arc::new(KafkaSink::new(&project.sink, MAX_IN_FLIGHT_BYTES)?);
            sinks.resize(options.full_concurrency, shared);
        }
        Some(_) => {
            for reader in 0..options.full_concurrency {
                let id =
                    transactions::transactional_id(&options.name.value, &format!("full-{reader}"));
                let budget = MAX_IN_FLIGHT_BYTES / options.full_concurrency;
                sinks.push(Arc::new(
                    KafkaSink::transactional(&project.sink, budget, &id, &[]).await?,
                ));
            }
        }
    }
    let tables = Arc::new(tables);
    let chunk_defs = Arc::new(chunk_defs);
    let queue = Arc::new(Mutex::new(queue));
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let (done_tx, mut done_rx) = mpsc::channel::<ChunkDone>(64);
    let mut workers = JoinSet::new();
    for sink in &sinks {
        let worker = ChunkWorker {
            project: project.clone(),
            tables: Arc::clone(&tables),
            chunk_defs: Arc::clone(&chunk_defs),
            queue: Arc::clone(&queue),
            sink: Arc::clone(sink),
            transactions: exactly_once.cloned(),
            done: done_tx.clone(),
            stop: stop_rx.clone(),
            stop_all: Arc::clone(&stop_tx),
        };
        workers.spawn(worker.run());
    }
    drop(done_tx);

    let signals = tokio::spawn(pause_on_signal(Arc::clone(&stop_tx)));
    let mut progress = Progress::new(&tables, checkpoint);
    let mut ticker = tokio::time::interval(progress.interval());
    loop {
        tokio::select! {
            done = done_rx.recv() => {
                let Some(done) = done else { break };
                let name = tables[done.table].plan.qualified();
                if let Some(table) = checkpoint.tables.get_mut(&name) {
                    let chunk = &mut table.chunks[done.chunk];
                    chunk.done = true;
                    chunk.rows = done.rows;
                }
                store.save(checkpoint)?;
                metrics.chunks_done.fetch_add(1, Ordering::Relaxed);
            }
            _ = ticker.tick() => progress.report(&tables, checkpoint),
        }
    }
    signals.abort();
    let mut failure = None;
    while let Some(result) = workers.join_next().await {
        match result {
            Ok(Ok(())) | Ok(Err(Error::Paused)) => {}
            Ok(Err(e)) => {
                failure.get_or_insert(e);
            }
            Err(e) => {
                failure.get_or_insert(Error::Definite(format!("a chunk reader failed: {e}")));
            }
        }
    }
    progress.finish(&tables, checkpoint);
    if let Some(error) = failure {
        metrics.errors.fetch_add(1, Ordering::Relaxed);
        return Err(error);
    }
    let paused = *stop_rx.borrow();
    if paused {
        for sink in &sinks {
            sink.flush(Duration::from_secs(10));
        }
        tracing::info!("paused: finished chunks are checkpointed; rerun to continue");
        return Ok(true);
    }
    checkpoint.full_done = true;
    store.save(checkpoint)?;
    Ok(false)
}

/// The source's catalog now, for the databases the project's patterns reach.
pub(crate) async fn live_catalog(project: &ProjectFile) -> Result<crate::plan::Catalog> {
    let mut conn = source::connect(&project.source).await?;
    let databases = crate::plan::databases_needed(project);
    source::catalog::load_catalog(&mut conn, databases.as_deref()).await
}

pub(crate) async fn pause_on_signal(stop: Arc<watch::Sender<bool>>) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!(
        "pausing: finishing the chunks in flight is abandoned, acknowledged ones are kept"
    );
    let _ = stop.send(true);
}

/// One of the `full_concurrency` readers: takes chunks from the queue until it is empty.
struct ChunkWorker {
    project: ProjectFile,
    tables: Arc<Vec<TableRun>>,
    chunk_defs: Arc<Vec<Vec<checkpoint::Chunk>>>,
    queue: Arc<Mutex<VecDeque<(usize, usize)>>>,
    sink: Arc<KafkaSink>,
    /// With `exactly_once`: each chunk is one transaction of `sink`, which records its progress.
    transactions: Option<TransactionState>,
    done: mpsc::Sender<ChunkDone>,
    stop: watch::Receiver<bool>,
    stop_all: Arc<watch::Sender<bool>>,
}

impl ChunkWorker {
    async fn run(self) -> Result<()> {
        let result = self.read_chunks().await;
        if let Err(error) = &result
            && !matches!(error, Error::Paused)
        {
            // One failure stops the others: the run ends with a consistent checkpoint.
            let _ = self.stop_all.send(true);
        }
        result
    }

    fn next_chunk(&self) -> Option<(usize, usize)> {
        self.queue.lock().ok()?.pop_front()
    }

    async fn read_chunks(&self) -> Result<()> {
        let mut conn = source::connect(&self.project.source).await?;
        snapshot::prepare_session(&mut conn, self.project.source.kind).await?;
        let batch_rows = self.project.project.batch_rows;
        let mut messages = Messages::default();
        let mut partitions = Vec::new();
        while let Some((t, c)) = self.next_chunk() {
            if *self.stop.borrow() {
                return Err(Error::Paused);
            }
            let table = &self.tables[t];
            let qualified = table.plan.qualified();
            let mut encoder =
                Encoder::new(table.plan.format, table.context.clone()).map_err(Error::Config)?;
            if self.transactions.is_some() {
                self.sink.begin()?;
            }
            let acks = Acks::new();
            let mut batches = ChunkBatches {
                worker: self,
                table,
                qualified: &qualified,
                encoder: &mut encoder,
                messages: &mut messages,
                partitions: &mut partitions,
                acks: &acks,
            };
            let read = snapshot::read_chunk(
                &mut conn,
                &table.plan,
                &self.chunk_defs[t][c],
                batch_rows,
                &mut batches,
            )
            .await;
            let rows = match (read, &self.transactions) {
                (Ok(rows), Some(state)) => {
                    let progress = transactions::Progress::Chunk {
                        table: qualified.clone(),
                        chunk: c,
                        rows,
                    };
                    if let Err(e) = self.sink.commit(state, &[progress]).await {
                        self.sink.abort();
                        return Err(e);
                    }
                    rows
                }
                (Ok(rows), None) => rows,
                (Err(e), transactions) => {
                    if transactions.is_some() {
                        self.sink.abort();
                    }
                    return Err(e);
                }
            };
            acks.settled().await.map_err(|e| {
                Error::Sink(format!(
                    "full sync of {qualified}: {e}; the chunk is not checkpointed and is read \
                     again on the next run"
                ))
            })?;
            let _ = self
                .done
                .send(ChunkDone {
                    table: t,
                    chunk: c,
                    rows,
                })
                .await;
        }
        Ok(())
    }
}

/// One chunk's batches on their way to Kafka: filter, encode, partition, send.
struct ChunkBatches<'a> {
    worker: &'a ChunkWorker,
    table: &'a TableRun,
    qualified: &'a str,
    encoder: &'a mut Encoder,
    messages: &'a mut Messages,
    partitions: &'a mut Vec<i32>,
    acks: &'a Arc<Acks>,
}

impl snapshot::BatchHandler for ChunkBatches<'_> {
    async fn handle(&mut self, batch: arrow::record_batch::RecordBatch) -> Result<()> {
        if *self.worker.stop.borrow() {
            return Err(Error::Paused);
        }
        let table = self.table;
        let read = batch.num_rows() as u64;
        let batch = transform::filter_rows(table.plan.filter.as_ref(), batch, self.qualified)?;
        table.metrics.rows_read.fetch_add(read, Ordering::Relaxed);
        table
            .metrics
            .rows_filtered
            .fetch_add(read - batch.num_rows() as u64, Ordering::Relaxed);
        self.messages.clear();
        self.encoder.encode_snapshot(&batch, self.messages);
        self.partitions.clear();
        table.partitioner.assign(
            (0..self.messages.len()).map(|i| self.messages.key(i)),
            self.partitions,
        );
        for i in 0..self.messages.len() {
            self.worker
                .sink
                .send(
                    &table.plan.topic,
                    self.partitions[i],
                    self.messages.key(i),
                    self.messages.payload(i),
                    self.acks,
                )
                .await
                .map_err(|e| send_error(&table.plan, self.messages.key(i), e))?;
        }
        table
            .metrics
            .messages_sent
            .fetch_add(self.messages.len() as u64, Ordering::Relaxed);
        table
            .metrics
            .bytes_sent
            .fetch_add(self.messages.payload_bytes() as u64, Ordering::Relaxed);
        Ok(())
    }
}

pub(crate) fn send_error(
    table: &TablePlan,
    key: Option<&[u8]>,
    error: rdkafka::error::KafkaError,
) -> Error {
    let key = key
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .unwrap_or_else(|| "null".into());
    match error {
        rdkafka::error::KafkaError::MessageProduction(
            rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge,
        ) => Error::Sink(format!(
            "table {}: the row with key {key} is larger than the producer's message.max.bytes; \
             raise 'message.max.bytes' on the sink (and the topic's max.message.bytes), or leave \
             the large column out with COLUMNS",
            table.qualified()
        )),
        other => Error::Sink(format!(
            "table {}: Kafka refused the message with key {key}: {other}",
            table.qualified()
        )),
    }
}

/// Progress a person can watch: bars on a terminal, log lines otherwise.
struct Progress {
    bars: Option<(indicatif::MultiProgress, Vec<indicatif::ProgressBar>)>,
    started: Instant,
    base: Vec<u64>,
}

impl Progress {
    fn new(tables: &[TableRun], checkpoint: &Checkpoint) -> Progress {
        let base: Vec<u64> = tables
            .iter()
            .map(|t| checkpoint.tables[&t.plan.qualified()].rows_done())
            .collect();
        let bars = std::io::stderr().is_terminal().then(|| {
            let multi = indicatif::MultiProgress::new();
            let style = indicatif::ProgressStyle::with_template(
                "{prefix:>28} {bar:30} {pos:>10}/{len:10} rows {per_sec:>12} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            let bars = tables
                .iter()
                .map(|t| {
                    let estimate = checkpoint.tables[&t.plan.qualified()].rows_estimate;
                    let bar = multi.add(indicatif::ProgressBar::new(estimate.max(1)));
                    bar.set_style(style.clone());
                    bar.set_prefix(t.plan.qualified());
                    bar
                })
                .collect();
            (multi, bars)
        });
        Progress {
            bars,
            started: Instant::now(),
            base,
        }
    }

    fn interval(&self) -> Duration {
        if self.bars.is_some() {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(5)
        }
    }

    fn report(&mut self, tables: &[TableRun], checkpoint: &Checkpoint) {
        let read: Vec<u64> = tables
            .iter()
            .map(|t| t.metrics.rows_read.load(Ordering::Relaxed))
            .collect();
        if let Some((_, bars)) = &self.bars {
            for ((bar, base), read) in bars.iter().zip(&self.base).zip(&read) {
                bar.set_position(base + read);
            }
            return;
        }
        let total: u64 = read.iter().sum();
        let chunks_done: usize = checkpoint
            .tables
            .values()
            .map(|t| t.chunks.iter().filter(|c| c.done).count())
            .sum();
        let chunks: usize = checkpoint.tables.values().map(|t| t.chunks.len()).sum();
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        tracing::info!(
            rows_read = total,
            rows_per_sec = (total as f64 / elapsed) as u64,
            chunks_done,
            chunks,
            "full sync progress"
        );
    }

    fn finish(&mut self, tables: &[TableRun], checkpoint: &Checkpoint) {
        self.report(tables, checkpoint);
        if let Some((_, bars)) = &self.bars {
            for bar in bars {
                bar.finish();
            }
        }
    }
}
