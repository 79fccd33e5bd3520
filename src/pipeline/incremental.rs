//! Incremental sync: the binlog from the handoff (or the checkpoint) on, transaction by
//! transaction. Each transaction's messages share one delivery counter; the checkpoint's
//! position moves to a transaction's end only when its counter and every earlier one are settled,
//! so a restart resumes at a transaction boundary with nothing lost (at least once: the
//! transactions in flight may repeat).
//!
//! With `exactly_once`, source transactions are grouped into Kafka transactions (committed when
//! the binlog goes quiet, or after [`COMMIT_EVERY`] under load); each commits the position after
//! its last source transaction with it (see `sink::transactions`), and the checkpoint moves only
//! at a commit.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use tokio::sync::watch;

use super::{MAX_IN_FLIGHT_BYTES, TableRun, live_catalog, pause_on_signal, send_error};
use crate::batch::BatchBuilder;
use crate::checkpoint::{BinlogPosition, Checkpoint, Store, TableSchema};
use crate::encode::{ChangeMeta, Encoder, Messages, key_bytes};
use crate::error::{Error, ErrorKind, Result};
use crate::metrics::Metrics;
use crate::partition::Partitioner;
use crate::plan::{self, Plan, SqlType};
use crate::project::{Partitioning, StartPoint};
use crate::sink::admin;
use crate::sink::kafka::{Acks, KafkaSink, TransactionState};
use crate::sink::transactions::{self, Progress};
use crate::source::binlog::{self, BinlogReader, Change, Op, RowChange, normalize_row};
use crate::source::{ddl, snapshot};
use crate::transform::{self, Emit};

/// Reconnect attempts after a lost binlog connection before the run fails.
const MAX_RETRIES: u32 = 6;

/// While the source is idle, a HEARTBEAT record goes to every partition of each topic this
/// often, in the formats that document one (docs/formats.md).
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

/// How often the position is written while streaming (and always at the end).
const SAVE_EVERY: Duration = Duration::from_millis(500);

/// With `exactly_once`: a Kafka transaction commits once the binlog has nothing more to read
/// right away and it is this old — so a quiet stream commits each change within milliseconds
/// without a commit per source transaction...
const COMMIT_IDLE: Duration = Duration::from_millis(5);

/// ...and under a steady load, once it is this old: larger transactions, fewer commits.
const COMMIT_EVERY: Duration = Duration::from_millis(50);

/// The stream's transactional producer waits little before sending: a commit waits for its
/// messages, so the bulk-load `linger.ms` would add itself to every change's latency.
const STREAM_DEFAULTS: &[(&str, &str)] = &[("linger.ms", "2")];

pub struct Outcome {
    pub paused: bool,
    pub events: u64,
}

/// A synced table during incremental sync.
struct StreamTable {
    run: TableRun,
    encoder: Encoder,
    types: Vec<SqlType>,
}

/// The tables by `db.table`, rebuilt when DDL changes one.
struct Tables {
    by_name: HashMap<String, StreamTable>,
}

impl Tables {
    fn new(plan: &Plan, topics: &BTreeMap<String, usize>, metrics: &Metrics) -> Result<Tables> {
        let mut by_name = HashMap::new();
        for table in &plan.tables {
            let run = TableRun::new(table, &plan.project, topics, metrics);
            let encoder = Encoder::new(table.format, run.context.clone())
                .map_err(|e| Error::Config(format!("table {}: {e}", table.qualified())))?;
            let types = table.columns.iter().map(|c| c.sql_type.clone()).collect();
            by_name.insert(
                table.qualified().to_ascii_lowercase(),
                StreamTable {
                    run,
                    encoder,
                    types,
                },
            );
        }
        Ok(Tables { by_name })
    }

    fn get(&mut self, database: &str, table: &str) -> Option<&mut StreamTable> {
        self.by_name
            .get_mut(&format!("{database}.{table}").to_ascii_lowercase())
    }
}

pub async fn run(
    plan: &Plan,
    topics: &BTreeMap<String, usize>,
    metrics: &Arc<Metrics>,
    checkpoint: &mut Checkpoint,
    store: &Store,
    until_caught_up: bool,
    exactly_once: Option<&TransactionState>,
) -> Result<Outcome> {
    let project = &plan.project;
    // `start_timestamp`: transactions committed before it are skipped, on every run.
    let skip_before = match project.project.start.as_ref().map(|s| &s.value) {
        Some(StartPoint::Timestamp(t)) => Some(*t),
        _ => None,
    };
    let start = match (
        &checkpoint.incremental,
        &checkpoint.handoff,
        &project.project.start,
    ) {
        (Some(position), _, _) | (None, Some(position), _) => position.clone(),
        (None, None, Some(start)) => match &start.value {
            StartPoint::Position { file, pos } => BinlogPosition {
                file: file.clone(),
                pos: *pos,
                gtid: None,
            },
            StartPoint::Timestamp(t) => binlog::position_at(&project.source, *t).await?,
            StartPoint::Gtid(gtid) => {
                // The file and position are the server's own once the GTID stream starts.
                BinlogPosition {
                    file: String::new(),
                    pos: 4,
                    gtid: Some(gtid.clone()),
                }
            }
        },
        (None, None, None) => snapshot::binlog_position(&project.source)
            .await?
            .ok_or_else(|| {
                Error::Definite(format!(
                    "source `{}` has no binlog to stream from (SHOW MASTER STATUS is empty)",
                    project.source.name.value
                ))
            })?,
    };
    if checkpoint.incremental.is_none() {
        checkpoint.incremental_started_at = crate::checkpoint::unix_now();
        checkpoint.incremental = Some(start.clone());
        store.save(checkpoint)?;
    }
    tracing::info!(file = %start.file, pos = start.pos, "incremental sync starts");

    // Decode with the schemas as of the checkpoint (the schema history), not today's.
    let plan = match &checkpoint.schemas {
        Some(schemas) => plan::plan(project.clone(), &TableSchema::catalog(schemas))?,
        None => {
            let catalog = live_catalog(project).await?;
            checkpoint.schemas = Some(TableSchema::of(&catalog));
            store.save(checkpoint)?;
            plan::plan(project.clone(), &catalog)?
        }
    };
    let plan = &plan;
    let mut stream = Stream {
        plan: plan.clone(),
        schemas: checkpoint.schemas.clone().unwrap_or_default(),
        topics: topics.clone(),
        metrics: Arc::clone(metrics),
        tables: Tables::new(plan, topics, metrics)?,
        sink: match exactly_once {
            None => KafkaSink::new(&project.sink, MAX_IN_FLIGHT_BYTES)?,
            Some(_) => {
                let id = transactions::transactional_id(&project.project.name.value, "incremental");
                KafkaSink::transactional(&project.sink, MAX_IN_FLIGHT_BYTES, &id, STREAM_DEFAULTS)
                    .await?
            }
        },
        messages: Messages::default(),
        partitions: Vec::new(),
        sequence: 0,
        events: 0,
    };
    let mut reader = BinlogReader::open(&project.source, &start, until_caught_up)
        .await?
        .with_table_filter(synced_tables(project));
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let signals = tokio::spawn(pause_on_signal(Arc::new(stop_tx)));
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut last_save = Instant::now();
    let mut paused = false;
    let mut retries = 0u32;
    let mut last_heartbeat = Instant::now();
    let mut batch = exactly_once.map(|state| KafkaTransaction::new(state.clone()));
    let result = loop {
        let commit_at = batch.as_ref().and_then(KafkaTransaction::commit_when_idle);
        // In this order: a pause first, then the binlog, and only when it has nothing ready the
        // timers (commit, save, heartbeat).
        let change = tokio::select! {
            biased;
            _ = stop_rx.changed() => {
                paused = true;
                break Ok(());
            }
            change = reader.next() => change,
            _ = sleep_until(commit_at), if commit_at.is_some() => {
                if let Some(batch) = &mut batch
                    && let Err(e) = batch.commit(&stream.sink, checkpoint, &mut pending).await
                {
                    break Err(e);
                }
                if let Err(e) = advance(&mut pending, checkpoint, &stream.metrics) {
                    break Err(e);
                }
                continue;
            }
            // While the source is idle, record what Kafka acknowledged meanwhile.
            _ = tokio::time::sleep(SAVE_EVERY) => {
                if let Err(e) = advance(&mut pending, checkpoint, &stream.metrics) {
                    break Err(e);
                }
                if let Err(e) = store.save(checkpoint) {
                    break Err(e);
                }
                if last_heartbeat.elapsed() >= HEARTBEAT_EVERY {
                    last_heartbeat = Instant::now();
                    let sent = match &mut batch {
                        Some(batch) => match batch.open(&stream.sink) {
                            Ok(()) => stream.heartbeat().await,
                            Err(e) => Err(e),
                        },
                        None => stream.heartbeat().await,
                    };
                    if let Err(e) = sent {
                        break Err(e);
                    }
                }
                continue;
            }
        };
        let change = match change {
            Ok(Some(change)) => {
                retries = 0;
                change
            }
            Ok(None) => break Ok(()),
            Err(e) if e.kind() == ErrorKind::Transient && retries < MAX_RETRIES => {
                retries += 1;
                let backoff = Duration::from_millis(500 << retries.min(5));
                tracing::warn!(error = %e, attempt = retries, "the binlog connection was lost; reconnecting from the checkpoint");
                // Resume exactly after the last acknowledged transaction.
                if let Some(batch) = &mut batch
                    && let Err(e) = batch.commit(&stream.sink, checkpoint, &mut pending).await
                {
                    break Err(e);
                }
                if let Err(e) = drain(&mut pending, checkpoint).await {
                    break Err(e);
                }
                store.save(checkpoint)?;
                if !pending.is_empty() {
                    // Resuming with unacknowledged transactions would replay them against a
                    // schema that is already past them.
                    break Err(e);
                }
                tokio::time::sleep(backoff).await;
                let Some(from) = checkpoint.incremental.clone() else {
                    break Err(e);
                };
                match BinlogReader::open(&project.source, &from, until_caught_up).await {
                    Ok(reopened) => {
                        reader = reopened.with_table_filter(synced_tables(project));
                        stream.metrics.reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(open_error) if open_error.kind() == ErrorKind::Transient => {}
                    Err(open_error) => break Err(open_error),
                }
                continue;
            }
            Err(e) => break Err(e),
        };
        if let Some(batch) = &mut batch
            && let Err(e) = batch.open(&stream.sink)
        {
            break Err(e);
        }
        let acks = Acks::new();
        let mut schemas = None;
        let (end, commit_time) = match &change {
            Change::Transaction { end, timestamp, .. }
            | Change::Statement { end, timestamp, .. } => (end.clone(), *timestamp),
        };
        let meta = ChangeMeta {
            timestamp: commit_time,
            position: format!("{}:{}", end.file, end.pos),
        };
        match change {
            Change::Transaction { changes, .. } => {
                let skipped = skip_before.is_some_and(|t| i64::from(commit_time) < t);
                if !skipped && let Err(e) = stream.transaction(changes, &meta, &acks).await {
                    break Err(e);
                }
            }
            Change::Statement { schema, query, .. } => {
                match stream.statement(&schema, &query, &meta, &acks).await {
                    Ok(new_schemas) => schemas = new_schemas,
                    Err(e) => break Err(e),
                }
            }
        }
        let sent = Pending {
            end,
            changes: acks.sent(),
            acks,
            schemas: schemas.take(),
            committed: commit_time,
        };
        match &mut batch {
            Some(batch) => {
                batch.members.push(sent);
                if batch.due()
                    && let Err(e) = batch.commit(&stream.sink, checkpoint, &mut pending).await
                {
                    break Err(e);
                }
            }
            None => pending.push_back(sent),
        }
        if let Err(e) = advance(&mut pending, checkpoint, &stream.metrics) {
            break Err(e);
        }
        if last_save.elapsed() >= SAVE_EVERY {
            if let Err(e) = store.save(checkpoint) {
                break Err(e);
            }
            last_save = Instant::now();
        }
    };
    signals.abort();
    // A clean end commits the Kafka transaction being filled; a failure aborts it, and the
    // rerun starts after the last commit.
    let result = match (result, &mut batch) {
        (Ok(()), Some(batch)) => batch.commit(&stream.sink, checkpoint, &mut pending).await,
        (Err(e), Some(batch)) => {
            batch.abort(&stream.sink);
            Err(e)
        }
        (result, None) => result,
    };
    // Whatever happened, keep every acknowledged transaction: wait (bounded) for the rest.
    if let Err(e) = drain(&mut pending, checkpoint).await {
        store.save(checkpoint)?;
        return Err(e);
    }
    store.save(checkpoint)?;
    result?;
    if !pending.is_empty() {
        return Err(Error::Sink(
            "Kafka did not acknowledge the last transactions within 30 s; the checkpoint stays \
             before them and a rerun sends them again"
                .to_string(),
        ));
    }
    Ok(Outcome {
        paused,
        events: stream.events,
    })
}

/// Waits (bounded) until every sent transaction is acknowledged, moving the checkpoint.
async fn drain(pending: &mut VecDeque<Pending>, checkpoint: &mut Checkpoint) -> Result<()> {
    let metrics = Metrics::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pending.is_empty() && Instant::now() < deadline {
        advance(pending, checkpoint, &metrics)?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// Sleeps until `at`; forever without one (the `select!` branch is disabled then anyway).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// With `exactly_once`: the Kafka transaction being filled, and the source transactions in it.
/// They join `pending` (and may move the checkpoint) only once Kafka committed them: before
/// that, an acknowledged message can still be aborted.
struct KafkaTransaction {
    state: TransactionState,
    opened: Option<Instant>,
    members: Vec<Pending>,
}

impl KafkaTransaction {
    fn new(state: TransactionState) -> KafkaTransaction {
        KafkaTransaction {
            state,
            opened: None,
            members: Vec::new(),
        }
    }

    fn open(&mut self, sink: &KafkaSink) -> Result<()> {
        if self.opened.is_none() {
            sink.begin()?;
            self.opened = Some(Instant::now());
        }
        Ok(())
    }

    /// When to commit if the binlog stays quiet.
    fn commit_when_idle(&self) -> Option<Instant> {
        self.opened.map(|opened| opened + COMMIT_IDLE)
    }

    /// Whether to commit even though the binlog has more.
    fn due(&self) -> bool {
        self.opened
            .is_some_and(|opened| opened.elapsed() >= COMMIT_EVERY)
    }

    /// Commits the open transaction with the position after its last source transaction (and
    /// the schema history, after a DDL).
    async fn commit(
        &mut self,
        sink: &KafkaSink,
        checkpoint: &mut Checkpoint,
        pending: &mut VecDeque<Pending>,
    ) -> Result<()> {
        if self.opened.take().is_none() {
            return Ok(());
        }
        let commit = checkpoint.exactly_once_commits + 1;
        let mut progress = Vec::new();
        if let Some(last) = self.members.last() {
            let earlier: u64 = pending.iter().map(|p| p.changes).sum();
            let changes: u64 = self.members.iter().map(|p| p.changes).sum();
            progress.push(Progress::Incremental {
                commit,
                position: last.end.clone(),
                committed: u64::from(last.committed),
                changes: checkpoint.incremental_changes + earlier + changes,
            });
        }
        if let Some(schemas) = self.members.iter().rev().find_map(|p| p.schemas.clone()) {
            progress.push(Progress::Schemas { commit, schemas });
        }
        if let Err(e) = sink.commit(&self.state, &progress).await {
            self.abort(sink);
            return Err(e);
        }
        if !progress.is_empty() {
            checkpoint.exactly_once_commits = commit;
        }
        pending.extend(self.members.drain(..));
        Ok(())
    }

    fn abort(&mut self, sink: &KafkaSink) {
        if self.opened.take().is_some() {
            sink.abort();
        }
        self.members.clear();
    }
}

/// A transaction or statement sent to Kafka, not yet known to be acknowledged.
struct Pending {
    end: BinlogPosition,
    acks: Arc<Acks>,
    /// The schemas after a DDL, recorded once the checkpoint moves past it.
    schemas: Option<Vec<TableSchema>>,
    /// Commit time, Unix seconds, for the lag.
    committed: u32,
    /// Messages sent for it.
    changes: u64,
}

/// Moves the checkpoint over every settled transaction at the front of the queue.
fn advance(
    pending: &mut VecDeque<Pending>,
    checkpoint: &mut Checkpoint,
    metrics: &Metrics,
) -> Result<()> {
    while let Some(Pending { acks, .. }) = pending.front() {
        match acks.try_settled() {
            None => break,
            Some(Err(failure)) => {
                return Err(Error::Sink(format!(
                    "incremental sync: {failure}; the checkpoint stays before this transaction \
                     and a rerun sends it again"
                )));
            }
            Some(Ok(())) => {
                if let Some(done) = pending.pop_front() {
                    let now = crate::checkpoint::unix_now();
                    metrics.lag_seconds.store(
                        now.saturating_sub(u64::from(done.committed)),
                        Ordering::Relaxed,
                    );
                    checkpoint.incremental = Some(done.end);
                    checkpoint.incremental_committed = u64::from(done.committed);
                    checkpoint.incremental_changes += done.changes;
                    if let Some(schemas) = done.schemas {
                        checkpoint.schemas = Some(schemas);
                    }
                }
            }
        }
    }
    Ok(())
}

struct Stream {
    plan: Plan,
    /// The source's schemas as of the last event read (the head of the schema history).
    schemas: Vec<TableSchema>,
    topics: BTreeMap<String, usize>,
    metrics: Arc<Metrics>,
    tables: Tables,
    sink: KafkaSink,
    messages: Messages,
    partitions: Vec<i32>,
    sequence: u64,
    events: u64,
}

impl Stream {
    /// A transaction's row changes, in order, each run of same-table same-kind changes as one
    /// batch.
    async fn transaction(
        &mut self,
        changes: Vec<RowChange>,
        meta: &ChangeMeta,
        acks: &Arc<Acks>,
    ) -> Result<()> {
        let mut start = 0;
        while start < changes.len() {
            let first = &changes[start];
            // A run of same-table, same-kind changes, at most `batch_rows` long: the pieces of a
            // large transaction share its delivery counter, so it stays whole.
            let limit = self.plan.project.project.batch_rows.max(1);
            let end = changes[start..]
                .iter()
                .take(limit)
                .position(|c| {
                    c.op != first.op || c.table != first.table || c.database != first.database
                })
                .map_or((start + limit).min(changes.len()), |n| start + n);
            self.rows(&changes[start..end], meta, acks).await?;
            start = end;
        }
        Ok(())
    }

    async fn rows(
        &mut self,
        changes: &[RowChange],
        meta: &ChangeMeta,
        acks: &Arc<Acks>,
    ) -> Result<()> {
        let first = &changes[0];
        let dml = self.plan.project.project.dml;
        let Some(table) = self.tables.get(&first.database, &first.table) else {
            return Ok(());
        };
        let qualified = table.run.plan.qualified();
        let build = |image: fn(&RowChange) -> Option<&Vec<mysql_async::Value>>| -> Result<Option<RecordBatch>> {
            let mut builder = BatchBuilder::new(Arc::clone(&table.run.plan.schema), changes.len());
            for change in changes {
                let Some(values) = image(change) else {
                    return Ok(None);
                };
                let mut values = values.clone();
                normalize_row(&mut values, &table.types);
                builder.push_row(&values).map_err(|e| {
                    Error::Definite(format!(
                        "table {qualified}: a binlog row does not fit the table's schema ({e}) at \
                         {}; did its DDL happen before tributary knew the table?",
                        meta.position
                    ))
                })?;
            }
            Ok(Some(builder.finish()))
        };
        let before = build(|c| c.before.as_ref())?;
        let after = build(|c| c.after.as_ref())?;
        let before_keys = before.as_ref().map(|b| key_bytes(&table.run.context, b));
        let after_keys = after.as_ref().map(|a| key_bytes(&table.run.context, a));
        let key_changed = |row: usize| match (&before_keys, &after_keys) {
            (Some(b), Some(a)) => b[row] != a[row],
            _ => false,
        };
        let emits: Vec<Emit> = transform::changes(
            table.run.plan.filter.as_ref(),
            before.as_ref(),
            after.as_ref(),
            &qualified,
            key_changed,
        )?
        .into_iter()
        .filter(|emit| match emit {
            Emit::Insert(_) => dml.insert,
            Emit::Update(_) => dml.update,
            Emit::Delete(_) => dml.delete,
        })
        .collect();
        table
            .run
            .metrics
            .rows_read
            .fetch_add(changes.len() as u64, Ordering::Relaxed);
        if emits.is_empty() {
            return Ok(());
        }
        self.messages.clear();
        table.encoder.encode_changes(
            before.as_ref(),
            after.as_ref(),
            &emits,
            meta,
            &mut self.sequence,
            &mut self.messages,
        );
        self.partitions.clear();
        table.run.partitioner.assign(
            (0..self.messages.len()).map(|i| self.messages.key(i)),
            &mut self.partitions,
        );
        for i in 0..self.messages.len() {
            self.sink
                .send(
                    &table.run.plan.topic,
                    self.partitions[i],
                    self.messages.key(i),
                    self.messages.payload(i),
                    acks,
                )
                .await
                .map_err(|e| send_error(&table.run.plan, self.messages.key(i), e))?;
        }
        self.events += self.messages.len() as u64;
        self.metrics
            .changes_sent
            .fetch_add(self.messages.len() as u64, Ordering::Relaxed);
        table
            .run
            .metrics
            .messages_sent
            .fetch_add(self.messages.len() as u64, Ordering::Relaxed);
        let _ = op_name(first.op);
        Ok(())
    }

    /// HEARTBEAT records to every partition of each topic whose format has one. Their delivery
    /// moves no checkpoint, so their acknowledgements are not awaited.
    async fn heartbeat(&mut self) -> Result<()> {
        let seconds = crate::checkpoint::unix_now();
        let acks = Acks::new();
        let mut done: Vec<String> = Vec::new();
        let names: Vec<String> = self.tables.by_name.keys().cloned().collect();
        for name in names {
            let Some(table) = self.tables.by_name.get_mut(&name) else {
                continue;
            };
            let topic = table.run.plan.topic.clone();
            if done.contains(&topic) {
                continue;
            }
            done.push(topic.clone());
            self.messages.clear();
            if !table.encoder.encode_heartbeat(seconds, &mut self.messages) {
                continue;
            }
            let partitions = self.topics.get(&topic).copied().unwrap_or(1) as i32;
            for partition in 0..partitions {
                self.sink
                    .send(&topic, partition, None, self.messages.payload(0), &acks)
                    .await
                    .map_err(|e| send_error(&table.run.plan, None, e))?;
            }
        }
        Ok(())
    }

    /// A statement from the binlog: DDL on a synced table is sent (when `incremental` includes
    /// `ddl`) and the schemas are read again for the events after it; returns them for the
    /// schema history.
    async fn statement(
        &mut self,
        schema: &str,
        query: &str,
        meta: &ChangeMeta,
        acks: &Arc<Acks>,
    ) -> Result<Option<Vec<TableSchema>>> {
        let named = ddl::tables_named(schema, query);
        let project = self.plan.project.clone();
        let matches_a_sync = |name: &str| {
            let Some((database, table)) = name.split_once('.') else {
                return false;
            };
            project.syncs.iter().any(|s| {
                s.tables.matches(database, table)
                    && !s.except.iter().any(|e| e.matches(database, table))
            })
        };
        let (known, reaches_new): (Vec<String>, bool) = match &named {
            Some(tables) => (
                tables
                    .iter()
                    .map(|t| t.to_ascii_lowercase())
                    .filter(|t| self.tables.by_name.contains_key(t))
                    .collect(),
                tables.iter().any(|t| {
                    !self.tables.by_name.contains_key(&t.to_ascii_lowercase()) && matches_a_sync(t)
                }),
            ),
            None => {
                tracing::warn!(statement = %query, "a statement tributary cannot parse is passed through as DDL");
                let prefix = format!("{}.", schema.to_ascii_lowercase());
                let tables = self
                    .tables
                    .by_name
                    .keys()
                    .filter(|t| t.starts_with(&prefix))
                    .cloned()
                    .collect();
                (tables, false)
            }
        };
        if known.is_empty() && !reaches_new {
            return Ok(None);
        }
        for name in &known {
            self.send_ddl(name, query, meta, acks).await?;
        }
        let mut schemas = self.schemas.clone();
        let catalog = match ddl::apply(&mut schemas, schema, query) {
            ddl::Applied::Yes => TableSchema::catalog(&schemas),
            ddl::Applied::No => live_catalog(&project).await?,
        };
        let schemas = self.replan(catalog).await?;
        // A table created (or renamed) into a SYNC pattern is picked up from here on.
        if let Some(tables) = &named {
            for name in tables.iter().map(|t| t.to_ascii_lowercase()) {
                if !known.contains(&name) && self.tables.by_name.contains_key(&name) {
                    tracing::info!(table = %name, "a new table matches a SYNC pattern");
                    self.send_ddl(&name, query, meta, acks).await?;
                }
            }
        }
        Ok(Some(schemas))
    }

    /// Sends a DDL statement to every partition of the table's topic (hash), or to the table's
    /// partition (table, one), when the project syncs DDL.
    async fn send_ddl(
        &mut self,
        name: &str,
        query: &str,
        meta: &ChangeMeta,
        acks: &Arc<Acks>,
    ) -> Result<()> {
        if !self.plan.project.project.incremental.ddl {
            return Ok(());
        }
        let Some(table) = self.tables.by_name.get_mut(name) else {
            return Ok(());
        };
        self.messages.clear();
        if !table.encoder.encode_ddl(query, meta, &mut self.messages) {
            return Ok(());
        }
        let partitions = self.topics.get(&table.run.plan.topic).copied().unwrap_or(1) as i32;
        let targets: Vec<i32> = match (table.run.plan.partitioning, table.run.partitioner) {
            (Partitioning::Hash, _) => (0..partitions).collect(),
            (_, Partitioner::Table { partition } | Partitioner::One { partition }) => {
                vec![partition]
            }
            (_, Partitioner::Hash { fallback, .. }) => vec![fallback],
        };
        for partition in targets {
            self.sink
                .send(
                    &table.run.plan.topic,
                    partition,
                    None,
                    self.messages.payload(0),
                    acks,
                )
                .await
                .map_err(|e| send_error(&table.run.plan, None, e))?;
        }
        Ok(())
    }

    /// Reads the catalog again and rebuilds the tables (after DDL).
    async fn replan(&mut self, catalog: plan::Catalog) -> Result<Vec<TableSchema>> {
        let project = self.plan.project.clone();
        let plan = plan::plan(project, &catalog)?;
        let missing: Vec<String> = plan
            .tables
            .iter()
            .map(|t| t.topic.clone())
            .filter(|t| !self.topics.contains_key(t))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if !missing.is_empty() {
            let options = &plan.project.project;
            if !options.sync.schema {
                return Err(Error::Config(format!(
                    "a new table needs topics {} that do not exist, and schema sync is off",
                    missing.join(", ")
                )));
            }
            let sink = &plan.project.sink;
            for (topic, result) in admin::create_topics(
                sink,
                &missing,
                options.topic_partitions,
                options.topic_replication,
                false,
            )
            .await?
            {
                result.map_err(|reason| {
                    Error::Sink(format!(
                        "cannot create topic {topic} for a new table: {reason}"
                    ))
                })?;
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let topics = admin::fetch_topics(sink).await?;
                if missing
                    .iter()
                    .all(|t| topics.get(t).is_some_and(|p| *p > 0))
                {
                    self.topics = topics;
                    break;
                }
                if Instant::now() > deadline {
                    return Err(Error::Sink(format!(
                        "topics {} were created but do not appear in the metadata",
                        missing.join(", ")
                    )));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.tables = Tables::new(&plan, &self.topics, &self.metrics)?;
        self.plan = plan;
        self.schemas = TableSchema::of(&catalog);
        Ok(self.schemas.clone())
    }
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Insert => "insert",
        Op::Update => "update",
        Op::Delete => "delete",
    }
}

/// The tables any SYNC statement could match (tables created later included): rows of other
/// tables are dropped as they are read.
fn synced_tables(project: &crate::project::ProjectFile) -> binlog::TableFilter {
    let syncs: Vec<(
        crate::project::TablePattern,
        Vec<crate::project::TablePattern>,
    )> = project
        .syncs
        .iter()
        .map(|s| (s.tables.clone(), s.except.clone()))
        .collect();
    Box::new(move |database, table| {
        syncs.iter().any(|(pattern, except)| {
            pattern.matches(database, table) && !except.iter().any(|e| e.matches(database, table))
        })
    })
}
