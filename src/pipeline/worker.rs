//! `run --worker`: one of N processes sharing a project, with Kafka as the only coordinator
//! (the Kafka side is `sink::work`).
//!
//! ```text
//!   plan once ──► work topic: chunk records (partitions 1..) ──► the group spreads them
//!   (planner id        │                                          over the workers
//!    fences rivals)    └─ state topic: the plan (handoff, schemas, chunk counts)
//!
//!   each worker: chunk record ─► rows ─► one transaction: messages + chunk progress + offset
//!   every chunk done ─► the holder of partition 0 streams the binlog; on its death or exit the
//!                       group gives partition 0 to another, whose stream producer fences it
//! ```
//!
//! All workers commit progress under the one run id [`WORKER_RUN`], so each reads the others'
//! progress from the state topic; a worker's own state dir only holds its lock and a copy of
//! the checkpoint.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::Conn;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::full::ChunkRows;
use super::retry::Backoff;
use super::{Pause, PhaseSummary, RunOptions, RunSummary, live_catalog, schema_sync};
use crate::batch::BatchBuilder;
use crate::checkpoint::{self, Checkpoint, Checkpointer, Chunk};
use crate::error::{Error, Result};
use crate::metrics::{Metrics, RunPhase};
use crate::plan::Plan;
use crate::position::BinlogPosition;
use crate::project::ProjectFile;
use crate::sink::admin::TopicPartitions;
use crate::sink::delivery::{Delivery, Route, Writer};
use crate::sink::kafka::Acks;
use crate::sink::transactions::{self, STATE_TOPIC};
use crate::sink::work::{self, Planner, WorkConsumer, WorkItem, WorkRecord};
use crate::source::{self, history::TableSchema, snapshot};

/// The run id every worker of a project commits its progress under.
pub const WORKER_RUN: &str = "workers";

/// How long a fenced planner waits for the plan of the worker that fenced it before it plans
/// again (that worker may have died).
const PLAN_WAIT: Duration = Duration::from_secs(30);

/// What the planning worker decided, for all: in the state topic beside the progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WorkPlan {
    /// This plan's id: chunk records of an earlier plan (before a `reset --worker`) are
    /// passed by.
    #[serde(default)]
    id: String,
    /// Each table's chunk count.
    chunks: BTreeMap<String, usize>,
    rows_estimate: u64,
    /// Where the stream starts (taken before any chunk is read).
    handoff: Option<BinlogPosition>,
    /// The schema history's start, at the handoff.
    schemas: Option<Vec<TableSchema>>,
}

impl WorkPlan {
    fn total_chunks(&self) -> usize {
        self.chunks.values().sum()
    }
}

/// A chunk record of the work topic.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChunkTask {
    #[serde(default)]
    plan: String,
    table: String,
    chunk: usize,
    range: Chunk,
}

fn plan_key(project: &str) -> String {
    format!("{project}/{WORKER_RUN}/plan")
}

/// A stable name for this worker: the same state dir is the same worker, whose restart fences
/// the transactions its last life left open.
fn worker_name(store: &checkpoint::Store) -> String {
    let path = store.path();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in path.to_string_lossy().bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("worker-{hash:016x}")
}

pub async fn run(plan: Plan, options: RunOptions) -> Result<RunSummary> {
    let started = Instant::now();
    let project = &plan.project;
    if project.sink.is_lake() {
        return Err(Error::Config(format!(
            "--worker coordinates workers through Kafka, but sink `{}` is a lake sink; run the \
             project without --worker",
            project.sink.name.value
        )));
    }
    if !project.project.exactly_once {
        return Err(Error::Config(format!(
            "--worker commits each chunk with its work record's offset in a Kafka transaction: \
             add exactly_once = true to CREATE PROJECT {}",
            project.project.name.value
        )));
    }
    let pause = options.pause.clone().unwrap_or_else(Pause::on_signals);
    let store = super::state_store(project, options.state_dir.as_deref());
    let _lock = store.lock()?;
    let worker = worker_name(&store);
    let state = store.load()?.unwrap_or_else(|| Checkpoint {
        project: project.project.name.value.clone(),
        format: checkpoint::FORMAT,
        ..Checkpoint::default()
    });
    let metrics = super::start_metrics(&plan, &options).await?;
    let mut delivery = Delivery::new(project, &metrics, Some(pause.sender.subscribe()));
    let mut checkpoint = Checkpointer::new(state, store);
    let topics = schema_sync(&plan, &delivery, &mut checkpoint).await?;
    delivery.join_workers(WORKER_RUN).await?;
    let name = &project.project.name.value;
    work::ensure_work_topic(&project.sink, name, project.project.topic_replication).await?;
    let work_plan = plan_once(&plan, &pause).await?;
    // `full_concurrency` members of the group, each reading one chunk at a time.
    let members = project.project.full_concurrency.max(1);
    let consumers = (0..members)
        .map(|m| WorkConsumer::join(&project.sink, name, &format!("{worker}-{m}")))
        .collect::<Result<Vec<_>>>()?;
    tracing::info!(%worker, members, chunks = work_plan.total_chunks(), "worker joined the project's group");
    let mut team = Team {
        plan: &plan,
        topics: &topics,
        metrics: &metrics,
        delivery: &delivery,
        consumers,
        work: &work_plan,
        pause: &pause,
        worker: &worker,
    };
    let mut summary = RunSummary::default();
    let result = async {
        if project.project.sync.full {
            metrics.set_phase(RunPhase::Full);
            let (before, began) = (metrics.totals(), Instant::now());
            let chunks = team.full_sync().await;
            summary.full = Some(PhaseSummary {
                totals: metrics.totals() - before,
                elapsed: began.elapsed(),
            });
            let chunks = chunks?;
            tracing::info!(%worker, chunks, "this worker's share of full sync is done");
            summary.paused = pause.requested();
        }
        if !summary.paused && project.project.sync.incremental {
            metrics.set_phase(RunPhase::Incremental);
            let (before, began) = (metrics.totals(), Instant::now());
            let paused = team
                .follow_stream(&mut checkpoint, options.until_caught_up)
                .await;
            summary.incremental = Some(PhaseSummary {
                totals: metrics.totals() - before,
                elapsed: began.elapsed(),
            });
            summary.paused = paused?;
            summary.position = checkpoint.state().incremental.clone();
        }
        Ok::<(), Error>(())
    }
    .await;
    // The others take this worker's partitions at once, not after its session times out.
    for consumer in &team.consumers {
        consumer.leave();
    }
    super::close_run(summary, result, &metrics, started)
}

/// The committed plan, or `None`.
async fn committed_plan(project: &ProjectFile) -> Result<Option<WorkPlan>> {
    let key = plan_key(&project.project.name.value);
    let records = transactions::read_records(&project.sink, &key).await?;
    records
        .into_iter()
        .rev()
        .find(|(k, _)| *k == key)
        .map(|(_, payload)| {
            serde_json::from_slice(&payload).map_err(|e| {
                Error::Definite(format!(
                    "the workers' plan in {STATE_TOPIC} (key {key}) is not readable ({e}); it \
                     was written by another build of tributary: run the same build on every \
                     worker"
                ))
            })
        })
        .transpose()
}

/// The project's plan: the one committed, or this worker's, published once — the planner's
/// transactional id fences any worker planning at the same time, and a plan committed before
/// the fence is found after it.
async fn plan_once(plan: &Plan, pause: &Pause) -> Result<WorkPlan> {
    let project = &plan.project;
    let mut attempts = 0;
    loop {
        if let Some(work) = committed_plan(project).await? {
            return Ok(work);
        }
        if pause.requested() {
            return Err(Error::Paused);
        }
        let planner = Planner::fence(&project.sink, &project.project.name.value).await?;
        if let Some(work) = committed_plan(project).await? {
            return Ok(work);
        }
        let (work, records) = make_plan(plan).await?;
        match planner.publish(records).await {
            Ok(()) => {
                tracing::info!(
                    chunks = work.total_chunks(),
                    "workers: this worker published the plan"
                );
                return Ok(work);
            }
            Err(e) if attempts < 5 => {
                attempts += 1;
                // Fenced by a worker planning at the same time: wait for its plan rather than
                // fence it back.
                tracing::info!(error = %e, "workers: another worker is planning; waiting for its plan");
                let deadline = Instant::now() + PLAN_WAIT;
                while Instant::now() < deadline {
                    if let Some(work) = committed_plan(project).await? {
                        return Ok(work);
                    }
                    if pause.requested() {
                        return Err(Error::Paused);
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// The handoff position, the schema history's start and every table's chunks, as the records
/// that publish them.
async fn make_plan(plan: &Plan) -> Result<(WorkPlan, Vec<WorkRecord>)> {
    let project = &plan.project;
    let name = &project.project.name.value;
    let options = &project.project;
    // The handoff comes first: everything after it reaches the stream.
    let handoff = match options.sync.incremental && options.start.is_none() {
        true => Some(
            snapshot::binlog_position(&project.source)
                .await?
                .ok_or_else(|| {
                    Error::Config(format!(
                        "source `{}` has no binlog to stream from (SHOW MASTER STATUS is empty)",
                        project.source.name.value
                    ))
                })?,
        ),
        false => None,
    };
    let schemas = match options.sync.incremental {
        true => Some(TableSchema::of(&live_catalog(project).await?)),
        false => None,
    };
    let mut work = WorkPlan {
        id: transactions::new_run_id(),
        chunks: BTreeMap::new(),
        rows_estimate: 0,
        handoff,
        schemas,
    };
    let mut records = Vec::new();
    if options.sync.full {
        let mut conn = source::connect(&project.source).await?;
        snapshot::prepare_session(&mut conn, project.source.kind).await?;
        for table in &plan.tables {
            let (ranges, estimate) =
                snapshot::plan_chunks(&mut conn, table, options.chunk_rows, || false).await?;
            work.rows_estimate += estimate;
            work.chunks.insert(table.qualified(), ranges.len());
            for (chunk, range) in ranges.into_iter().enumerate() {
                let task = ChunkTask {
                    plan: work.id.clone(),
                    table: table.qualified(),
                    chunk,
                    range: Chunk::planned(range),
                };
                // Spread over the chunk partitions, so each worker gets a share.
                let partition = 1 + (records.len() as i32 % work::CHUNK_PARTITIONS);
                records.push(WorkRecord {
                    topic: work::work_topic(name),
                    partition,
                    key: format!("{}/{chunk}", task.table),
                    payload: to_json(&task)?,
                });
            }
        }
    }
    records.push(WorkRecord {
        topic: STATE_TOPIC.to_string(),
        partition: 0,
        key: plan_key(name),
        payload: to_json(&work)?,
    });
    Ok((work, records))
}

fn to_json(value: &impl Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Definite(format!("workers: {e}")))
}

/// The chunks every worker committed so far.
async fn chunks_done(project: &ProjectFile) -> Result<usize> {
    let prefix = format!("{}/{WORKER_RUN}/chunk/", project.project.name.value);
    let records = transactions::read_records(&project.sink, &prefix).await?;
    Ok(records
        .into_iter()
        .map(|(key, _)| key)
        .collect::<BTreeSet<_>>()
        .len())
}

/// `status --worker`: the project's workers as Kafka knows them — the plan, the chunks done,
/// each worker's partitions and pending chunks, the stream's owner and position.
pub async fn status(project: &ProjectFile) -> Result<serde_json::Value> {
    let name = &project.project.name.value;
    let plan = committed_plan(project).await?;
    let done = chunks_done(project).await?;
    let members = work::members(&project.sink, name).await?;
    let mut state = Checkpoint::default();
    transactions::overlay(
        &mut state,
        transactions::read_progress(&project.sink, name, WORKER_RUN).await?,
    );
    let owner = members
        .iter()
        .find(|m| m.partitions.contains(&work::STREAM_PARTITION))
        .map(|m| m.worker.clone());
    Ok(serde_json::json!({
        "project": name,
        "planned": plan.is_some(),
        "chunks": plan.as_ref().map_or(0, WorkPlan::total_chunks),
        "chunks_done": done,
        "rows_estimate": plan.as_ref().map_or(0, |p| p.rows_estimate),
        "workers": members,
        "stream_owner": owner,
        "incremental": state.incremental,
        "incremental_changes": state.incremental_changes,
        "incremental_committed": state.incremental_committed,
    }))
}

/// `reset --worker`: forgets the workers' plan and progress in Kafka, so that the next workers
/// start over; refused while any worker runs. Returns the records forgotten.
pub async fn reset(project: &ProjectFile) -> Result<usize> {
    let name = &project.project.name.value;
    let running = work::members(&project.sink, name).await?;
    if let Some(member) = running.first() {
        return Err(Error::Config(format!(
            "{} workers of project {name} are running ({} on {} among them): stop them all \
             before resetting",
            running.len(),
            member.worker,
            member.host
        )));
    }
    let keys: BTreeSet<String> =
        transactions::read_records(&project.sink, &format!("{name}/{WORKER_RUN}/"))
            .await?
            .into_iter()
            .map(|(key, _)| key)
            .collect();
    let count = keys.len();
    work::forget(&project.sink, keys.into_iter().collect()).await?;
    Ok(count)
}

/// What a worker works with.
struct Team<'a> {
    plan: &'a Plan,
    topics: &'a TopicPartitions,
    metrics: &'a Arc<Metrics>,
    delivery: &'a Delivery,
    consumers: Vec<WorkConsumer>,
    work: &'a WorkPlan,
    pause: &'a Pause,
    worker: &'a str,
}

impl Team<'_> {
    /// Reads the chunks the group gives this worker's members until every chunk of the plan
    /// is done (by any worker); returns how many this worker read.
    async fn full_sync(&mut self) -> Result<usize> {
        let plan = Arc::new(self.plan.clone());
        let mut running = tokio::task::JoinSet::new();
        for (m, consumer) in std::mem::take(&mut self.consumers).into_iter().enumerate() {
            let writer = self
                .delivery
                .worker_writer(&format!("{}-{m}", self.worker))
                .await?;
            let member = Member {
                index: m,
                plan: Arc::clone(&plan),
                topics: self.topics.clone(),
                metrics: Arc::clone(self.metrics),
                consumer,
                writer,
                pause: self.pause.clone(),
                total: self.work.total_chunks(),
                plan_id: self.work.id.clone(),
                routes: HashMap::new(),
                builders: HashMap::new(),
                conn: None,
                refused: 0,
            };
            running.spawn(member.full_sync());
        }
        let mut members = Vec::new();
        let mut read = 0;
        let mut failure = None;
        while let Some(joined) = running.join_next().await {
            match joined {
                Ok((member, result)) => {
                    match result {
                        Ok(chunks) => read += chunks,
                        Err(e) => {
                            // One member's failure stops the others: the worker exits 2.
                            let _ = self.pause.sender.send(true);
                            failure.get_or_insert(e);
                        }
                    }
                    members.push(member);
                }
                Err(e) => {
                    let _ = self.pause.sender.send(true);
                    failure.get_or_insert(Error::Definite(format!("a worker member failed: {e}")));
                }
            }
        }
        members.sort_by_key(|m| m.index);
        self.consumers = members.into_iter().map(|m| m.consumer).collect();
        match failure {
            Some(e) => Err(e),
            None => Ok(read),
        }
    }

    /// Whether one of this worker's members holds the stream's partition.
    fn owns_stream(&self) -> bool {
        self.consumers.iter().any(WorkConsumer::owns_stream)
    }

    /// Whether the group takes the stream's partition from this worker within `wait`.
    async fn lost_stream(&self, wait: Duration) -> Result<bool> {
        let deadline = Instant::now() + wait;
        while self.owns_stream() && Instant::now() < deadline {
            self.poll(Duration::from_millis(200)).await?;
        }
        Ok(!self.owns_stream())
    }

    /// Polls every member (which serves the group's rebalances).
    async fn poll(&self, wait: Duration) -> Result<()> {
        for consumer in &self.consumers {
            let _ = consumer.next(wait).await?;
        }
        Ok(())
    }

    /// Streams while the group gives this worker the stream's partition; stands by otherwise.
    /// Returns whether it was paused (otherwise caught up, with `until_caught_up`).
    async fn follow_stream(
        &self,
        checkpoint: &mut Checkpointer,
        until_caught_up: bool,
    ) -> Result<bool> {
        let project = &self.plan.project;
        loop {
            if self.pause.requested() {
                return Ok(true);
            }
            self.poll(Duration::from_millis(100)).await?;
            if !self.owns_stream() {
                continue;
            }
            let took_over = Instant::now();
            // Fence the last owner first: its open transaction would hold the read back.
            self.delivery.fence_stream().await?;
            // The last owner's progress, from the state topic: the stream goes on from there.
            let progress =
                transactions::read_progress(&project.sink, &project.project.name.value, WORKER_RUN)
                    .await?;
            // The stream's state is the plan's and what Kafka holds, never this state dir's
            // older copy (another worker may have streamed since; a reset forgot it).
            checkpoint.update(|c| {
                c.run_id = WORKER_RUN.to_string();
                c.full_done = true;
                c.handoff = self.work.handoff.clone();
                c.schemas = self.work.schemas.clone();
                c.incremental = None;
                c.incremental_committed = 0;
                c.incremental_changes = 0;
                c.exactly_once_commits = 0;
                c.prepared_xa.clear();
            });
            transactions::overlay(checkpoint.state_mut(), progress);
            checkpoint.save().await?;
            let (stop_tx, stop) = watch::channel(false);
            let stream = super::stream::Stream::start(
                self.plan,
                self.topics,
                self.metrics,
                self.delivery,
                checkpoint,
                until_caught_up,
            )
            .await?;
            tracing::info!(
                worker = %self.worker,
                position = ?checkpoint.state().incremental,
                elapsed = ?took_over.elapsed(),
                "this worker owns the stream now"
            );
            self.metrics.stream_owner(true);
            let running = stream.run(checkpoint, stop);
            tokio::pin!(running);
            let outcome = loop {
                tokio::select! {
                    outcome = &mut running => break outcome,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {
                        let _ = self.poll(Duration::from_millis(5)).await;
                        if !self.owns_stream() || self.pause.requested() {
                            let _ = stop_tx.send(true);
                        }
                    }
                }
            };
            self.metrics.stream_owner(false);
            let paused = match outcome {
                Ok(outcome) => outcome.paused,
                // The group moved the stream's partition and its new owner's producer fenced
                // this one before this worker saw the revocation: nothing was committed past
                // the new owner's start, so this worker stands by instead of failing.
                Err(e) if e.is_fenced() => {
                    // A process outside the group (a plain `run` of the project) fences the
                    // same way, but leaves this worker the partition: that stays an error.
                    if !self.lost_stream(Duration::from_secs(10)).await? {
                        return Err(e);
                    }
                    tracing::warn!(
                        worker = %self.worker,
                        "the stream was fenced by the worker that took it over: {}",
                        crate::error::report(&e)
                    );
                    true
                }
                Err(e) => return Err(e),
            };
            if !paused {
                return Ok(false);
            }
            if self.pause.requested() {
                return Ok(true);
            }
            tracing::info!(worker = %self.worker, "the stream's partition moved to another worker");
        }
    }
}

/// One member of the group in this worker: reads the chunks of the partitions the group gives
/// it, one at a time (offsets commit in order per partition), each in a transaction of its own
/// producer.
struct Member {
    index: usize,
    plan: Arc<Plan>,
    topics: TopicPartitions,
    metrics: Arc<Metrics>,
    consumer: WorkConsumer,
    writer: Writer,
    pause: Pause,
    /// The plan's chunks.
    total: usize,
    plan_id: String,
    routes: HashMap<String, Route>,
    builders: HashMap<String, BatchBuilder>,
    conn: Option<Conn>,
    /// Chunk commits Kafka refused in a row.
    refused: u32,
}

/// A member stops once Kafka refused this many chunk commits in a row (a rebalance refuses
/// one or two).
const MAX_REFUSED_COMMITS: u32 = 20;

impl Member {
    /// Reads chunks until every chunk of the plan is done; gives itself back for the stream.
    async fn full_sync(mut self) -> (Member, Result<usize>) {
        let result = self.read_chunks().await;
        (self, result)
    }

    async fn read_chunks(&mut self) -> Result<usize> {
        let mut read = 0;
        // When this member last asked whether every chunk is done (never yet: ask at once).
        let mut checked: Option<Instant> = None;
        loop {
            if self.pause.requested() {
                return Ok(read);
            }
            match self.consumer.next(Duration::from_millis(500)).await? {
                Some(item) if item.partition != work::STREAM_PARTITION => {
                    if self.chunk(&item).await? {
                        read += 1;
                    }
                }
                _ => {
                    // Idle: the others may still be reading theirs.
                    if checked.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                        if chunks_done(&self.plan.project).await? >= self.total {
                            return Ok(read);
                        }
                        checked = Some(Instant::now());
                    }
                }
            }
        }
    }

    /// Reads a chunk record's rows and commits them with the record's offset; whether this
    /// member committed it. A failed read is aborted and retried here; a refused commit is
    /// read again from the record (by this member, or by the one its partition moved to). Only
    /// a fault that outlasts the retries stops the worker.
    async fn chunk(&mut self, item: &WorkItem) -> Result<bool> {
        let task: ChunkTask = serde_json::from_slice(&item.payload).map_err(|e| {
            Error::Definite(format!(
                "workers: the chunk record at offset {} of partition {} is not readable ({e}); \
                 run the same build of tributary on every worker",
                item.offset, item.partition
            ))
        })?;
        if task.plan != self.plan_id {
            tracing::debug!(table = %task.table, chunk = task.chunk, "workers: a chunk of an earlier plan is passed by");
            return Ok(false);
        }
        let mut backoff = Backoff::new();
        let mut stop = self.pause.sender.subscribe();
        loop {
            let error = match self.read(&task, item).await {
                Ok(committed) => return Ok(committed),
                Err(error) => error,
            };
            // Retried here, in place: a rewind as well would read the chunk a second time.
            self.conn = None;
            let what = format!("worker: chunk {} of {}", task.chunk + 1, task.table);
            match backoff.wait(&error, &what, &mut stop).await? {
                true => continue,
                false => {
                    return Err(backoff.give_up(
                        error,
                        &what,
                        "the chunks that finished are committed: start the worker again to \
                         read the rest",
                    ));
                }
            }
        }
    }

    async fn read(&mut self, task: &ChunkTask, item: &WorkItem) -> Result<bool> {
        let project = &self.plan.project;
        let table = self
            .plan
            .tables
            .iter()
            .find(|t| t.qualified() == task.table)
            .ok_or_else(|| {
                Error::Config(format!(
                    "the workers' plan has a chunk of table {}, which this worker's project \
                     does not sync: run the same project file on every worker",
                    task.table
                ))
            })?;
        let conn = snapshot::session(&mut self.conn, &project.source).await?;
        let route = match self.routes.entry(task.table.clone()) {
            std::collections::hash_map::Entry::Occupied(route) => route.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(Route::new(table, project, &self.topics, &self.metrics)?)
            }
        };
        let batch_rows = project.project.batch_rows;
        let builder = self
            .builders
            .entry(task.table.clone())
            .or_insert_with(|| BatchBuilder::new(Arc::clone(&table.schema), batch_rows));
        let writer = &mut self.writer;
        writer.begin()?;
        let acks = Acks::new();
        let stop = self.pause.sender.subscribe();
        let mut rows = ChunkRows {
            table,
            builder,
            batch_rows,
            route,
            writer,
            acks: &acks,
            stop: &stop,
        };
        let read =
            snapshot::read_chunk(conn, table, &task.range.range(), None, None, &mut rows).await;
        let rows = match read {
            Ok(rows) => rows,
            Err(e) => {
                writer.abort();
                builder.clear();
                return Err(e);
            }
        };
        let consumed = self.consumer.consumed(item)?;
        let progress = checkpoint::Progress::Chunk {
            table: task.table.clone(),
            chunk: task.chunk,
            rows,
        };
        if let Err(e) = writer.commit_consumed(&[progress], Some(&consumed)).await {
            // Mostly a rebalance: the chunk's partition moved (Kafka refuses the offset of an
            // old group generation) and its new owner reads the chunk. Still ours, it comes
            // again.
            self.refused += 1;
            if self.refused > MAX_REFUSED_COMMITS {
                return Err(e);
            }
            tracing::info!(error = %e, table = %task.table, chunk = task.chunk, "worker: the chunk's commit was refused; it is read again");
            self.consumer.rewind(item);
            return Ok(false);
        }
        self.refused = 0;
        acks.settled().await.map_err(|e| {
            Error::Sink(format!(
                "worker: chunk {} of {}: {e}",
                task.chunk + 1,
                task.table
            ))
        })?;
        self.metrics.worker_chunk_committed();
        tracing::info!(table = %task.table, chunk = task.chunk, rows, "worker: chunk committed");
        Ok(true)
    }
}
