//! Online snapshots: a table's existing rows sent while the binlog stream keeps flowing — for a
//! table new to the project, a table created or renamed into a SYNC pattern, or on request
//! (`tributary snapshot`, whole tables or the rows matching a condition).
//!
//! ## Why a snapshot row never overwrites a newer change
//!
//! The chunks are read by the stream's own stage, between two source transactions: while a
//! chunk is read, the stage takes nothing from the binlog, so the stream's position `X` stands
//! still. Every transaction the stream has sent ends at or before `X`, and the server had
//! committed each of them before the binlog handed it out. The chunk is read after that, in a
//! consistent snapshot `S` of its own, so `S` contains every change already sent: for each key
//! in the chunk, the snapshot row is at least as new as anything sent for that key before it.
//!
//! `S` may also contain transactions after `X`. Those are sent after the chunk, as the stream
//! reaches them: the key's messages then read snapshot row, then the change that the row
//! already shows, then what follows — replaying them per key ends at the source's state, the
//! same promise full sync's handoff makes (design.md §4). What can never happen is the reverse,
//! an older snapshot row after a newer change, which would leave a consumer with a stale row.
//!
//! This is the read-only variant of DBLog's watermarks: nothing is written to the source (no
//! watermark table, no extra privileges), and the low and high watermarks collapse into one,
//! the stream's position while the chunk is read, because the stream waits for the read. The
//! price is a pause of one chunk read in the stream's latency per chunk: online chunks are small
//! (`ONLINE_CHUNK_ROWS`) and the stream gets at least as much time between them (`MIN_GAP`).
//!
//! A server writes a transaction to its binlog a moment before the storage engine makes it
//! visible, so "read from the binlog" does not yet promise "in every later snapshot". The chunk's
//! snapshot closes that window where the server lets it (`snapshot::read_chunk` with the
//! stream's position): MariaDB reports the binlog position its consistent snapshot stands for,
//! and a snapshot older than `X` is taken again; MySQL with GTIDs waits for `X`'s GTID set with
//! `WAIT_FOR_EXECUTED_GTID_SET` first. Servers with neither (the OceanBase Binlog Service, Dolt)
//! keep the window, which docs/online-snapshots.md describes.
//!
//! ## Progress
//!
//! Each chunk's messages join the stream's acknowledgement queue with the stream's position;
//! the checkpoint records the chunk only once Kafka acknowledged them (with `exactly_once`, in
//! the same Kafka transaction as the changes around them). A rerun reads the unfinished chunks
//! again; a finished snapshot leaves the checkpoint.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::Conn;
use tokio::sync::watch;

use super::full::ChunkRows;
use crate::batch::BatchBuilder;
use crate::checkpoint::{Checkpoint, Checkpointer, Chunk, OnlineSnapshot, SyncedTable};
use crate::error::{Error, ErrorKind, Result};
use crate::metrics::Metrics;
use crate::plan::{Plan, TablePlan};
use crate::sink::delivery::{Route, Writer};
use crate::sink::kafka::Acks;
use crate::source::snapshot;

/// Online chunks hold at most this many rows (or `chunk_rows`, when smaller): the stream waits
/// for each read, so a chunk's read time is what it adds to the stream's latency (about 0.1 s
/// at this size; `scripts/bench online`).
const ONLINE_CHUNK_ROWS: u64 = 10_000;

/// Between two chunks the stream gets at least as long as the last chunk took (and this long at
/// least); four times as long when changes keep arriving, so a busy stream keeps most of the
/// time and a snapshot still finishes.
const MIN_GAP: Duration = Duration::from_millis(50);

/// After a chunk read failed (the source away), the next attempt waits this long; after
/// `MAX_FAILURES` in a row the run stops.
const RETRY_AFTER: Duration = Duration::from_secs(5);
const MAX_FAILURES: u32 = 6;

/// A chunk sent, to be recorded once Kafka acknowledged it.
#[derive(Debug, Clone)]
pub(super) struct ChunkSent {
    /// `db.table`, for the metrics.
    pub table: String,
    pub id: u64,
    pub chunk: usize,
    pub rows: u64,
}

impl ChunkSent {
    pub fn progress(&self, commit: u64) -> crate::checkpoint::Progress {
        crate::checkpoint::Progress::OnlineChunk {
            commit,
            id: self.id,
            chunk: self.chunk,
            rows: self.rows,
        }
    }
}

/// The stage's online snapshot reader.
pub(super) struct Online {
    metrics: Arc<Metrics>,
    conn: Option<Conn>,
    builders: HashMap<String, BatchBuilder>,
    /// Chunks sent and not yet recorded: never read twice in one run.
    in_flight: HashSet<(u64, usize)>,
    /// When the last chunk read ended, and how long it took.
    last_chunk: Option<(Instant, Duration)>,
    retry_at: Option<Instant>,
    failures: u32,
    /// Chunk reads finish once started (a pause waits for the chunk, bounded by `chunk_rows`).
    never: watch::Receiver<bool>,
    _never: watch::Sender<bool>,
    /// The stream's position while the next chunk is read: its snapshot must hold everything
    /// up to there.
    stream_at: crate::position::BinlogPosition,
}

impl Online {
    pub fn new(metrics: &Arc<Metrics>) -> Online {
        let (tx, rx) = watch::channel(false);
        Online {
            metrics: Arc::clone(metrics),
            conn: None,
            builders: HashMap::new(),
            in_flight: HashSet::new(),
            last_chunk: None,
            retry_at: None,
            failures: 0,
            never: rx,
            _never: tx,
            stream_at: crate::position::BinlogPosition::default(),
        }
    }

    /// Whether a chunk waits to be read (and the last failure's pause is over).
    pub fn has_work(&self, state: &Checkpoint) -> bool {
        self.retry_at.is_none_or(|at| Instant::now() >= at) && self.next(state).is_some()
    }

    /// How long until the next chunk may be read (zero: now); `None` when none waits.
    pub fn waiting(&self, state: &Checkpoint) -> Option<Duration> {
        self.next(state)?;
        Some(self.retry_at.map_or(Duration::ZERO, |at| {
            at.saturating_duration_since(Instant::now())
        }))
    }

    /// Whether a chunk is due while changes flow; `caught_up`: the reader has nothing more
    /// decoded right now.
    pub fn due(&self, state: &Checkpoint, caught_up: bool) -> bool {
        let rested = self.last_chunk.is_none_or(|(ended, took)| {
            let gap = took.max(MIN_GAP);
            let since = ended.elapsed();
            since >= gap && (caught_up || since >= gap * 4)
        });
        rested && self.has_work(state)
    }

    /// The table (`db.table`, lower case) whose chunk comes next.
    pub fn next_table(&self, state: &Checkpoint) -> Option<String> {
        let (id, _) = self.next(state)?;
        state
            .online
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.table.to_ascii_lowercase())
    }

    /// The next chunk to read: the oldest snapshot's first chunk neither done nor in flight
    /// (`None` for the chunk index: the snapshot is not planned yet).
    fn next(&self, state: &Checkpoint) -> Option<(u64, Option<usize>)> {
        state.online.iter().find_map(|s| {
            if !s.planned() {
                return Some((s.id, None));
            }
            s.chunks
                .iter()
                .enumerate()
                .find(|(c, chunk)| !chunk.done && !self.in_flight.contains(&(s.id, *c)))
                .map(|(c, _)| (s.id, Some(c)))
        })
    }

    /// Reads and sends the next chunk with `writer` through the table's `route`; `None` when
    /// there was nothing to send (a snapshot planned, or dropped). A failed read is retried
    /// later on a new connection; after `MAX_FAILURES` in a row it stops the run.
    /// `stream_at`: the stream's position, where it waits while the chunk is read.
    pub async fn step(
        &mut self,
        plan: &Plan,
        route: Option<&mut Route>,
        writer: &mut Writer,
        checkpoint: &mut Checkpointer,
        acks: &Arc<Acks>,
        stream_at: &crate::position::BinlogPosition,
    ) -> Result<Option<ChunkSent>> {
        let Some((id, chunk)) = self.next(checkpoint.state()) else {
            return Ok(None);
        };
        self.stream_at.clone_from(stream_at);
        let started = Instant::now();
        let result = self
            .try_step(plan, route, writer, checkpoint, acks, id, chunk)
            .await;
        self.last_chunk = Some((Instant::now(), started.elapsed()));
        match result {
            Ok(sent) => {
                self.failures = 0;
                self.retry_at = None;
                Ok(sent)
            }
            Err(e) if e.kind() == ErrorKind::Transient && self.failures < MAX_FAILURES => {
                self.failures += 1;
                self.conn = None;
                self.builders.clear();
                self.retry_at = Some(Instant::now() + RETRY_AFTER);
                tracing::warn!(error = %e, attempt = self.failures, "an online snapshot chunk could not be read; it is read again in {} s", RETRY_AFTER.as_secs());
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn try_step(
        &mut self,
        plan: &Plan,
        route: Option<&mut Route>,
        writer: &mut Writer,
        checkpoint: &mut Checkpointer,
        acks: &Arc<Acks>,
        id: u64,
        chunk: Option<usize>,
    ) -> Result<Option<ChunkSent>> {
        let Some(snapshot) = checkpoint
            .state()
            .online
            .iter()
            .find(|s| s.id == id)
            .cloned()
        else {
            return Ok(None);
        };
        let table = plan
            .tables
            .iter()
            .find(|t| t.qualified().eq_ignore_ascii_case(&snapshot.table));
        let (Some(table), Some(route)) = (table, route) else {
            tracing::warn!(table = %snapshot.table, "the project no longer syncs this table: its online snapshot is dropped");
            checkpoint.update(|c| c.online.retain(|s| s.id != id));
            checkpoint.save().await?;
            return Ok(None);
        };
        let project = &plan.project;
        let conn = snapshot::session(&mut self.conn, &project.source).await?;
        let Some(chunk) = chunk else {
            let chunk_rows = project.project.chunk_rows.min(ONLINE_CHUNK_ROWS);
            let (ranges, rows_estimate) =
                snapshot::plan_chunks(conn, table, chunk_rows, || false).await?;
            tracing::info!(table = %snapshot.table, reason = %snapshot.reason, chunks = ranges.len(), "online snapshot starts");
            self.metrics
                .table(&table.qualified())
                .online_planned(ranges.len());
            checkpoint.update(|c| {
                if let Some(s) = c.online.iter_mut().find(|s| s.id == id) {
                    s.chunks = ranges.into_iter().map(Chunk::planned).collect();
                    s.rows_estimate = rows_estimate;
                }
            });
            checkpoint.save().await?;
            return Ok(None);
        };
        let range = snapshot.chunks[chunk].range();
        let batch_rows = project.project.batch_rows;
        let builder = self
            .builders
            .entry(snapshot.table.clone())
            .or_insert_with(|| BatchBuilder::new(Arc::clone(&table.schema), batch_rows));
        builder.clear();
        let mut rows = ChunkRows {
            table,
            builder,
            batch_rows,
            route,
            writer,
            acks,
            stop: &self.never,
        };
        let read = snapshot::read_chunk(
            conn,
            table,
            &range,
            snapshot.condition.as_deref(),
            Some(&self.stream_at),
            &mut rows,
        )
        .await?;
        self.in_flight.insert((id, chunk));
        Ok(Some(ChunkSent {
            table: table.qualified(),
            id,
            chunk,
            rows: read,
        }))
    }
}

/// What each synced table is sent with now.
fn synced_now(plan: &Plan) -> BTreeMap<String, SyncedTable> {
    plan.tables
        .iter()
        .map(|t| (t.qualified(), synced_as(t)))
        .collect()
}

fn synced_as(table: &TablePlan) -> SyncedTable {
    SyncedTable {
        filter: table.filter.as_ref().map(|f| f.text.clone()),
        columns: table
            .projection
            .iter()
            .map(|&i| table.columns[i].name.clone())
            .collect(),
    }
}

/// The project file against what the checkpoint says it synced when it last streamed: a table
/// new to it gets an online snapshot (when `sync` includes `full`), a removed SYNC stops sending,
/// a changed WHERE or COLUMNS applies from the next change. Each is said in the log.
pub(super) fn compare_with_checkpoint(plan: &Plan, checkpoint: &mut Checkpointer) {
    let now = synced_now(plan);
    let full = plan.project.project.sync.full;
    let Some(known) = checkpoint.state().synced.clone() else {
        // The first stream (or a checkpoint from before tributary kept the list): what is
        // synced now is the baseline.
        checkpoint.update(|c| c.synced = Some(now));
        return;
    };
    for (table, how) in &now {
        match known.get(table) {
            None if full => {
                tracing::info!(table = %table, "a table new to the project: its existing rows are sent by an online snapshot while the stream flows");
                request(checkpoint, table, None, "new to the project");
            }
            None => {
                tracing::info!(table = %table, "a table new to the project: its changes are sent from here on (`sync` has no `full`, so its existing rows are not)");
            }
            Some(before) if before != how => {
                tracing::info!(table = %table, before = ?before, now = ?how, "the SYNC of this table changed: it applies from the next change; rows sent before are not sent again (`tributary snapshot` re-sends them)");
            }
            Some(_) => {}
        }
    }
    for table in known.keys().filter(|t| !now.contains_key(*t)) {
        tracing::info!(table = %table, "the project no longer syncs this table: nothing more is sent for it");
    }
    checkpoint.update(|c| {
        c.online.retain(|s| now.contains_key(&s.table));
        c.synced = Some(now);
    });
}

/// A table picked up while streaming (created or renamed into a SYNC pattern): the rows one
/// renamed in brings (`has_rows`) come by an online snapshot when `sync` includes `full`.
pub(super) fn picked_up(
    plan: &Plan,
    checkpoint: &mut Checkpointer,
    table: &TablePlan,
    has_rows: bool,
) {
    let name = table.qualified();
    if has_rows && plan.project.project.sync.full {
        request(checkpoint, &name, None, "renamed into a SYNC pattern");
    }
    checkpoint.update(|c| {
        c.synced
            .get_or_insert_with(BTreeMap::new)
            .insert(name, synced_as(table));
    });
}

/// Queues an online snapshot of `table`.
pub(super) fn request(
    checkpoint: &mut Checkpointer,
    table: &str,
    condition: Option<String>,
    reason: &str,
) {
    checkpoint.update(|c| {
        let id = c.next_online_id;
        c.next_online_id += 1;
        c.online.push(OnlineSnapshot {
            id,
            table: table.to_string(),
            condition,
            reason: reason.to_string(),
            chunks: Vec::new(),
            rows_estimate: 0,
        });
    });
}

/// Takes the `tributary snapshot` requests waiting in the state dir into the checkpoint (saved
/// before their files go). A table the project does not sync is named and skipped.
pub(super) async fn take_requests(plan: &Plan, checkpoint: &mut Checkpointer) -> Result<()> {
    let requests = checkpoint.store().snapshot_requests();
    if requests.is_empty() {
        return Ok(());
    }
    for (_, wanted) in &requests {
        for name in &wanted.tables {
            let Some(table) = plan
                .tables
                .iter()
                .find(|t| t.qualified().eq_ignore_ascii_case(name))
            else {
                tracing::warn!(table = %name, "a snapshot was requested for a table the project does not sync; skipped");
                continue;
            };
            tracing::info!(table = %table.qualified(), condition = ?wanted.condition, "online snapshot requested");
            request(
                checkpoint,
                &table.qualified(),
                wanted.condition.clone(),
                "requested",
            );
        }
    }
    checkpoint.save().await?;
    for (path, _) in requests {
        if let Err(e) = std::fs::remove_file(&path) {
            return Err(Error::io(
                format!("cannot remove the snapshot request {}", path.display()),
                e,
            ));
        }
    }
    Ok(())
}
