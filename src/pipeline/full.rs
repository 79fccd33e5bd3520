//! Full sync: `full_concurrency` chunk readers take key-range chunks from one queue; each
//! chunk's rows become batches (`batch`), pass the row filter (`transform`) and go to the
//! reader's writer on the delivery path. A chunk is reported done only after Kafka acknowledged
//! all of its messages (with `exactly_once`, after its transaction committed); only then does the
//! checkpoint record it (see `checkpoint` for why this loses nothing).

use std::collections::{HashMap, VecDeque};

use std::sync::{Arc, Mutex};

use mysql_async::{Conn, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::live_catalog;
use super::progress::{Progress, Watched};
use super::retry::Backoff;
use crate::batch::BatchBuilder;
use crate::checkpoint::{self, Checkpointer, Chunk, TableProgress};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::plan::TablePlan;
use crate::position::KeyRange;
use crate::project::ProjectFile;
use crate::sink::admin::TopicPartitions;
use crate::sink::delivery::{Delivery, Route, Writer};
use crate::sink::kafka::Acks;
use crate::source::{self, history::TableSchema, snapshot};
use crate::transform;

pub(super) struct FullSync<'a> {
    pub project: &'a ProjectFile,
    pub tables: &'a [TablePlan],
    pub topics: &'a TopicPartitions,
    pub metrics: &'a Arc<Metrics>,
    pub delivery: &'a Delivery,
    pub stop: watch::Receiver<bool>,
    /// A failing reader stops the others: the run ends with a consistent checkpoint.
    pub stop_all: Arc<watch::Sender<bool>>,
}

/// A chunk whose messages Kafka all acknowledged.
struct ChunkDone {
    table: usize,
    chunk: usize,
    rows: u64,
}

impl FullSync<'_> {
    /// Runs full sync to its end; whether it was paused (Ctrl-C / SIGTERM) before finishing.
    pub async fn run(self, checkpoint: &mut Checkpointer) -> Result<bool> {
        let mut stop = self.stop.clone();
        let mut backoff = Backoff::new();
        loop {
            let error = match self.prepare(checkpoint).await {
                Ok(()) => break,
                Err(error) => error,
            };
            let error = match backoff.wait(&error, "planning full sync", &mut stop).await {
                Ok(true) => continue,
                Ok(false) => error,
                Err(paused) => paused,
            };
            if let Error::Paused = error {
                // What was planned is kept; a table planned halfway is planned again.
                checkpoint.save().await?;
                tracing::info!("paused while planning full sync; rerun to continue");
                return Ok(true);
            }
            return Err(backoff.give_up(
                error,
                "planning full sync",
                "no row was read yet; rerun once the source is reachable",
            ));
        }
        let state = checkpoint.state();
        let mut queue = VecDeque::new();
        let mut ranges = Vec::new();
        for (t, table) in self.tables.iter().enumerate() {
            let progress = &state.tables[&table.qualified()];
            ranges.push(progress.chunks.iter().map(Chunk::range).collect::<Vec<_>>());
            for (c, chunk) in progress.chunks.iter().enumerate() {
                if !chunk.done {
                    queue.push_back((t, c));
                }
            }
        }
        let already_done: u64 = self
            .tables
            .iter()
            .map(|t| state.tables[&t.qualified()].rows_done())
            .sum();
        tracing::info!(
            chunks = queue.len(),
            tables = self.tables.len(),
            rows_already_done = already_done,
            "full sync starts"
        );

        let concurrency = self.project.project.full_concurrency;
        let writers = self.delivery.snapshot_writers(concurrency).await?;
        let tables = Arc::new(self.tables.to_vec());
        let ranges = Arc::new(ranges);
        let queue = Arc::new(Mutex::new(queue));
        let (done_tx, mut done_rx) = mpsc::channel::<ChunkDone>(64);
        let mut readers = JoinSet::new();
        for writer in writers {
            let reader = ChunkReader {
                project: self.project.clone(),
                tables: Arc::clone(&tables),
                ranges: Arc::clone(&ranges),
                queue: Arc::clone(&queue),
                topics: self.topics.clone(),
                metrics: Arc::clone(self.metrics),
                routes: HashMap::new(),
                writer,
                waiting: Vec::new(),
                done: done_tx.clone(),
                stop: self.stop.clone(),
                stop_all: Arc::clone(&self.stop_all),
            };
            readers.spawn(reader.run());
        }
        drop(done_tx);

        let watched: Vec<Watched<'_>> = self
            .tables
            .iter()
            .map(|plan| Watched {
                plan,
                metrics: self.metrics.table(&plan.qualified()),
            })
            .collect();
        let chunk_gauges = |checkpoint: &Checkpointer, t: usize| {
            if let Some(progress) = checkpoint.state().tables.get(&self.tables[t].qualified()) {
                let done = progress.chunks.iter().filter(|c| c.done).count();
                watched[t].metrics.chunks(done, progress.chunks.len());
            }
        };
        for t in 0..self.tables.len() {
            chunk_gauges(checkpoint, t);
        }
        self.metrics.full_rows_estimate(
            self.tables
                .iter()
                .filter_map(|t| state_estimate(checkpoint, t))
                .sum(),
        );
        let mut progress = Progress::new(&watched, checkpoint.state());
        let mut ticker = tokio::time::interval(progress.interval());
        let recorded = loop {
            tokio::select! {
                done = done_rx.recv() => {
                    let Some(done) = done else { break Ok(()) };
                    checkpoint.record(checkpoint::Progress::Chunk {
                        table: self.tables[done.table].qualified(),
                        chunk: done.chunk,
                        rows: done.rows,
                    });
                    chunk_gauges(checkpoint, done.table);
                    if let Err(e) = checkpoint.save_due().await {
                        break Err(e);
                    }
                }
                _ = ticker.tick() => {
                    progress.report(&watched, checkpoint.state());
                    // A chunk recorded just after a save is not left unsaved until the next one.
                    if let Err(e) = checkpoint.save_due().await {
                        break Err(e);
                    }
                }
            }
        };
        let mut failure = recorded.err();
        if failure.is_some() {
            let _ = self.stop_all.send(true);
        }
        while let Some(result) = readers.join_next().await {
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
        // Whatever was acknowledged is kept, whatever ends the run.
        while let Ok(done) = done_rx.try_recv() {
            checkpoint.record(checkpoint::Progress::Chunk {
                table: self.tables[done.table].qualified(),
                chunk: done.chunk,
                rows: done.rows,
            });
        }
        checkpoint.save().await?;
        progress.finish(
            &watched,
            checkpoint.state(),
            failure.is_some() || *self.stop.borrow(),
        );
        if let Some(error) = failure {
            return Err(error);
        }
        if *self.stop.borrow() {
            tracing::info!("paused: finished chunks are checkpointed; rerun to continue");
            return Ok(true);
        }
        checkpoint.update(|c| c.full_done = true);
        checkpoint.save().await?;
        Ok(false)
    }

    /// The handoff position (before anything is read), the start of the schema history, and
    /// the chunks of every table not planned yet.
    async fn prepare(&self, checkpoint: &mut Checkpointer) -> Result<()> {
        let project = self.project;
        if checkpoint.state().full_started_at == 0 {
            checkpoint.update(|c| c.full_started_at = checkpoint::unix_now());
        }
        // The handoff position comes first: everything after it reaches incremental sync.
        if project.project.sync.incremental && checkpoint.state().handoff.is_none() {
            let handoff = snapshot::binlog_position(&project.source).await?;
            if handoff.is_none() {
                return Err(Error::Config(format!(
                    "source `{}` has no binlog at {}:{}, so incremental sync could not continue \
                     after full sync; point binlog_host/binlog_port at the binlog (the OceanBase \
                     Binlog Service) or remove 'incremental' from `sync`",
                    project.source.name.value,
                    project.source.binlog_host,
                    project.source.binlog_port
                )));
            }
            // The schema history starts here too: events after the handoff decode with the
            // schemas as they were when it was taken.
            let schemas = match checkpoint.state().schemas {
                Some(_) => None,
                None => Some(TableSchema::of(&live_catalog(project).await?)),
            };
            checkpoint.update(|c| {
                c.handoff = handoff;
                if schemas.is_some() {
                    c.schemas = schemas;
                }
            });
            checkpoint.save().await?;
        }

        let mut conn = source::connect(&project.source).await?;
        snapshot::prepare_session(&mut conn, project.source.kind).await?;
        for table in self.tables {
            let name = table.qualified();
            let planned = checkpoint
                .state()
                .tables
                .get(&name)
                .is_some_and(|p| !p.chunks.is_empty());
            if !planned {
                let stop = &self.stop;
                let (ranges, rows_estimate) =
                    snapshot::plan_chunks(&mut conn, table, project.project.chunk_rows, || {
                        *stop.borrow()
                    })
                    .await?;
                checkpoint.update(|c| {
                    c.tables.insert(
                        name,
                        TableProgress {
                            chunks: ranges.into_iter().map(Chunk::planned).collect(),
                            rows_estimate,
                        },
                    );
                });
                checkpoint.save().await?;
            }
        }
        Ok(())
    }
}

/// The row estimate of a table's planned chunks.
fn state_estimate(checkpoint: &Checkpointer, table: &TablePlan) -> Option<u64> {
    checkpoint
        .state()
        .tables
        .get(&table.qualified())
        .map(|p| p.rows_estimate)
}

/// One of the `full_concurrency` readers: takes chunks from the queue until it is empty.
struct ChunkReader {
    project: ProjectFile,
    tables: Arc<Vec<TablePlan>>,
    ranges: Arc<Vec<Vec<KeyRange>>>,
    queue: Arc<Mutex<VecDeque<(usize, usize)>>>,
    topics: TopicPartitions,
    metrics: Arc<Metrics>,
    /// This reader's route of each table it has read, by table index.
    routes: HashMap<usize, Route>,
    writer: Writer,
    /// Chunks read into a lake writer's open files, reported done once a commit published
    /// them.
    waiting: Vec<(ChunkDone, Arc<Acks>)>,
    done: mpsc::Sender<ChunkDone>,
    stop: watch::Receiver<bool>,
    stop_all: Arc<watch::Sender<bool>>,
}

impl ChunkReader {
    async fn run(mut self) -> Result<()> {
        let result = self.read_chunks().await;
        match &result {
            Err(Error::Paused) => self.writer.flush(std::time::Duration::from_secs(10)),
            Err(_) => {
                let _ = self.stop_all.send(true);
            }
            Ok(()) => {}
        }
        result
    }

    fn next_chunk(&self) -> Option<(usize, usize)> {
        self.queue.lock().ok()?.pop_front()
    }

    /// Reads chunks until the queue is empty. A transient fault (the source's connection lost,
    /// the server restarting) retries the chunk it hit, on a new connection, while the other
    /// readers go on; only a fault that outlasts the retries stops the run.
    async fn read_chunks(&mut self) -> Result<()> {
        let mut conn = None;
        let mut builders: HashMap<usize, BatchBuilder> = HashMap::new();
        let mut stop = self.stop.clone();
        while let Some((t, c)) = self.next_chunk() {
            if *self.stop.borrow() {
                // Between chunks the open files hold whole chunks only: they are kept.
                self.commit_waiting().await?;
                return Err(Error::Paused);
            }
            let mut backoff = Backoff::new();
            let (rows, acks) = loop {
                let error = match self.read_chunk(&mut conn, &mut builders, t, c).await {
                    Ok(read) => break read,
                    Err(error) => error,
                };
                // A failed attempt aborted what the writer held: its chunks are read again.
                self.requeue_aborted();
                // The connection may be broken: the next attempt opens a new one.
                conn = None;
                let what = format!(
                    "full sync of table {}, chunk {} of {} ({})",
                    self.tables[t].qualified(),
                    c + 1,
                    self.ranges[t].len(),
                    snapshot::describe_range(&self.tables[t], &self.ranges[t][c]),
                );
                match backoff.wait(&error, &what, &mut stop).await? {
                    true => {
                        self.metrics.error(crate::error::ErrorKind::Transient);
                        continue;
                    }
                    false => {
                        return Err(backoff.give_up(
                            error,
                            &what,
                            "the chunks that finished are checkpointed: rerun once the source \
                             is reachable to read the rest",
                        ));
                    }
                }
            };
            let done = ChunkDone {
                table: t,
                chunk: c,
                rows,
            };
            if self.writer.defers_commits() {
                self.waiting.push((done, acks));
                self.report_committed().await?;
            } else {
                let _ = self.done.send(done).await;
            }
        }
        self.commit_waiting().await
    }

    /// Commits what a lake writer still holds, and reports its chunks done.
    async fn commit_waiting(&mut self) -> Result<()> {
        if self.writer.defers_commits() {
            if let Err(e) = self.writer.commit(&[]).await {
                self.requeue_aborted();
                return Err(e);
            }
            self.report_committed().await?;
        }
        Ok(())
    }

    /// Reports done the waiting chunks a commit published.
    async fn report_committed(&mut self) -> Result<()> {
        let mut still = Vec::with_capacity(self.waiting.len());
        for (done, acks) in std::mem::take(&mut self.waiting) {
            match acks.try_settled() {
                None => still.push((done, acks)),
                Some(Ok(())) => {
                    let _ = self.done.send(done).await;
                }
                Some(Err(e)) => {
                    return Err(Error::Sink(format!(
                        "full sync of {}: {e}",
                        self.tables[done.table].qualified()
                    )));
                }
            }
        }
        self.waiting = still;
        Ok(())
    }

    /// Puts the waiting chunks an abort dropped back at the front of the queue.
    fn requeue_aborted(&mut self) {
        let (failed, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(_, acks)| matches!(acks.try_settled(), Some(Err(_))));
        self.waiting = kept;
        if let Ok(mut queue) = self.queue.lock() {
            for (done, _) in failed.into_iter().rev() {
                queue.push_front((done.table, done.chunk));
            }
        }
    }

    /// One attempt at chunk `c` of table `t`, on `conn` (connected first when it is `None`):
    /// with `exactly_once` in a Kafka transaction of its own, which a failed read aborts so that
    /// its rows are never seen; without, the rows sent before a failure stay and are sent again
    /// by the next attempt (at least once). Returns the rows read once Kafka acknowledged (or
    /// committed) every message of the chunk.
    async fn read_chunk(
        &mut self,
        conn: &mut Option<Conn>,
        builders: &mut HashMap<usize, BatchBuilder>,
        t: usize,
        c: usize,
    ) -> Result<(u64, Arc<Acks>)> {
        let conn = snapshot::session(conn, &self.project.source).await?;
        let batch_rows = self.project.project.batch_rows;
        let table = &self.tables[t];
        let route = match self.routes.entry(t) {
            std::collections::hash_map::Entry::Occupied(route) => route.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => slot.insert(Route::new(
                table,
                &self.project,
                &self.topics,
                &self.metrics,
            )?),
        };
        let builder = builders
            .entry(t)
            .or_insert_with(|| BatchBuilder::new(Arc::clone(&table.schema), batch_rows));
        self.writer.begin()?;
        let acks = Acks::new();
        let mut rows = ChunkRows {
            table,
            builder,
            batch_rows,
            route,
            writer: &mut self.writer,
            acks: &acks,
            stop: &self.stop,
        };
        let read =
            snapshot::read_chunk(conn, table, &self.ranges[t][c], None, None, &mut rows).await;
        let rows = match read {
            Ok(rows) => rows,
            Err(e) => {
                self.writer.abort();
                // Rows of this attempt not yet sent must not go out with the next one.
                builder.clear();
                return Err(e);
            }
        };
        let qualified = table.qualified();
        self.writer
            .commit_chunk(&[crate::checkpoint::Progress::Chunk {
                table: qualified.clone(),
                chunk: c,
                rows,
            }])
            .await?;
        if !self.writer.defers_commits() {
            acks.settled().await.map_err(|e| {
                Error::Sink(format!(
                    "full sync of {qualified}: {e}; the chunk is not checkpointed and is read \
                     again on the next run"
                ))
            })?;
        }
        Ok((rows, acks))
    }
}

/// One chunk's rows on their way: built into batches, filtered, handed to the writer.
pub(super) struct ChunkRows<'a> {
    pub table: &'a TablePlan,
    pub builder: &'a mut BatchBuilder,
    pub batch_rows: usize,
    pub route: &'a mut Route,
    pub writer: &'a mut Writer,
    pub acks: &'a Arc<Acks>,
    pub stop: &'a watch::Receiver<bool>,
}

impl snapshot::RowHandler for ChunkRows<'_> {
    fn push(&mut self, values: &[Value]) -> Result<bool> {
        self.builder.push_row(values).map_err(|e| {
            Error::Definite(format!(
                "table {}: cannot decode a row ({e}); please report this with the column's type",
                self.table.qualified()
            ))
        })?;
        Ok(self.builder.is_full(self.batch_rows))
    }

    async fn flush(&mut self) -> Result<()> {
        if *self.stop.borrow() {
            return Err(Error::Paused);
        }
        if self.builder.is_empty() {
            return Ok(());
        }
        let batch = self.builder.finish();
        let read = batch.num_rows();
        let batch =
            transform::filter_rows(self.table.filter.as_ref(), batch, &self.table.qualified())?;
        self.writer
            .snapshot(self.route, read, &batch, self.acks)
            .await
    }
}
