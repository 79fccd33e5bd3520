//! Incremental sync: the binlog from the handoff (or the checkpoint) on, transaction by
//! transaction. A reader task decodes the binlog into committed transactions while this stage
//! turns the previous ones into change batches and hands them to the delivery path, so reading
//! and encoding use a core each. Each transaction's messages share one [`Acks`] group; the
//! checkpoint's position moves to a transaction's end only when its group and every earlier one
//! are settled, so a restart resumes at a transaction boundary with nothing lost (at least once:
//! the transactions in flight may repeat).
//!
//! With `exactly_once`, source transactions are grouped into Kafka transactions (committed when
//! the binlog goes quiet, or after [`COMMIT_EVERY`] under load); each commits the position after
//! its last source transaction with it (see `sink::transactions`), and the checkpoint moves only
//! at a commit.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::online::{self, ChunkSent, Online};
use super::progress::StreamProgress;
use super::{database_defaults, live_catalog};
use crate::batch::{ChangeBatch, ChangeMeta};
use crate::checkpoint::{self, Checkpointer, Progress};
use crate::encode::HEARTBEAT_EVERY;
use crate::error::{Error, ErrorKind, Result};
use crate::metrics::Metrics;
use crate::plan::charset::{BinlogCharsets, ColumnText};
use crate::plan::{self, Plan, SqlType};
use crate::position::BinlogPosition;
use crate::project::{ProjectFile, StartPoint};
use crate::sink::admin::TopicPartitions;
use crate::sink::delivery::{Delivery, Route, Writer};
use crate::sink::kafka::Acks;
use crate::source::binlog::{self, BinlogReader, Change, RowChange};
use crate::source::history::{self, Ddl, TableSchema};
use crate::source::snapshot;
use crate::transform::{self, Emit};

/// Reconnect attempts after a lost binlog connection before the run fails.
const MAX_RETRIES: u32 = 6;

/// With `exactly_once`: a Kafka transaction commits once the binlog has nothing more to read
/// right away and it is this old — so a quiet stream commits each change within milliseconds
/// without a commit per source transaction...
const COMMIT_IDLE: Duration = Duration::from_millis(5);

/// ...and under a steady load, once it is this old: larger transactions, fewer commits.
const COMMIT_EVERY: Duration = Duration::from_millis(50);

/// While changes flow, how often the state dir is looked at for `tributary snapshot` requests.
const REQUESTS_EVERY: Duration = Duration::from_secs(1);

/// Committed transactions the reader task may decode ahead of the stage.
const READ_AHEAD: usize = 64;

pub(super) struct Outcome {
    pub paused: bool,
}

/// A synced table during incremental sync.
struct StreamTable {
    route: Route,
    types: Vec<SqlType>,
    /// How each column's text is decoded, by the schema history's character sets.
    text: Arc<[ColumnText]>,
    /// The same by the character sets of the last table map that named them (they win).
    binlog_text: Option<(BinlogCharsets, Arc<[ColumnText]>)>,
}

impl StreamTable {
    /// How to decode text of rows whose table map named `charsets` (or did not): worked out
    /// once per table map.
    fn text(&mut self, charsets: Option<&BinlogCharsets>) -> Arc<[ColumnText]> {
        let Some(charsets) = charsets else {
            return Arc::clone(&self.text);
        };
        match &self.binlog_text {
            Some((seen, text)) if Arc::ptr_eq(seen, charsets) || seen == charsets => {
                Arc::clone(text)
            }
            _ => {
                let plan = &self.route.plan;
                let text: Arc<[ColumnText]> =
                    ColumnText::resolve(&plan.columns, &plan.schema, Some(charsets)).into();
                self.binlog_text = Some((Arc::clone(charsets), Arc::clone(&text)));
                text
            }
        }
    }
}

pub(super) struct Stream<'a> {
    /// The plan as of the head of the schema history.
    plan: Plan,
    delivery: &'a Delivery,
    metrics: Arc<Metrics>,
    topics: TopicPartitions,
    /// The synced tables by `db.table` in lower case, rebuilt when DDL changes one.
    tables: HashMap<String, StreamTable>,
    /// The source's schemas as of the last event read (the head of the schema history).
    schemas: Vec<TableSchema>,
    writer: Writer,
    start: BinlogPosition,
    until_caught_up: bool,
    events: u64,
    /// XA transactions prepared and not yet finished, as read (see `Checkpoint::prepared_xa`).
    prepared_xa: BTreeMap<String, Option<BinlogPosition>>,
    /// Online snapshots, read between transactions.
    online: Online,
    /// Where the stage stands: the end of the last transaction or statement it handled, and
    /// that one's commit time.
    position: BinlogPosition,
    committed: u32,
    /// Tables DDL brought into a SYNC pattern since the checkpoint last heard of them, and
    /// whether they bring rows (renamed in, not created).
    picked_up: Vec<(String, bool)>,
    /// When the state dir was last looked at for `tributary snapshot` requests.
    requests_checked: Instant,
}

impl<'a> Stream<'a> {
    /// Where the stream starts (the checkpoint, the handoff or the project's start point) and
    /// the schemas it decodes with.
    pub async fn start(
        plan: &Plan,
        topics: &TopicPartitions,
        metrics: &Arc<Metrics>,
        delivery: &'a Delivery,
        checkpoint: &mut Checkpointer,
        until_caught_up: bool,
    ) -> Result<Stream<'a>> {
        let project = &plan.project;
        let state = checkpoint.state();
        let start = match (&state.incremental, &state.handoff, &project.project.start) {
            (Some(position), _, _) | (None, Some(position), _) => position.clone(),
            (None, None, Some(start)) => match &start.value {
                StartPoint::Position { file, pos } => BinlogPosition {
                    file: file.clone(),
                    pos: *pos,
                    gtid: None,
                    row_events: 0,
                },
                StartPoint::Timestamp(t) => binlog::position_at(&project.source, *t).await?,
                // Planning reads a date-time in the server's zone; a plan that skipped it
                // must not guess one.
                StartPoint::WallClock(_) => {
                    return Err(Error::Config(
                        "`start_timestamp` was not read in the server's time_zone: plan the \
                         project against the source first"
                            .into(),
                    ));
                }
                // The file and position are the server's own once the GTID stream starts.
                StartPoint::Gtid(gtid) => BinlogPosition {
                    file: String::new(),
                    pos: 4,
                    gtid: Some(gtid.clone()),
                    row_events: 0,
                },
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
        if state.incremental.is_none() {
            checkpoint.update(|c| {
                c.incremental_started_at = checkpoint::unix_now();
                c.incremental = Some(start.clone());
            });
            checkpoint.save().await?;
        }
        if let Some(schemas) = checkpoint.state().schemas.clone()
            && let Some(schemas) = with_new_tables(&schemas, plan, project).await?
        {
            checkpoint.update(|c| c.schemas = Some(schemas));
            checkpoint.save().await?;
        }
        // Decode with the schemas as of the checkpoint (the schema history), not today's.
        let catalog = match &checkpoint.state().schemas {
            Some(schemas) => TableSchema::catalog(schemas),
            None => {
                let catalog = live_catalog(project).await?;
                checkpoint.update(|c| c.schemas = Some(TableSchema::of(&catalog)));
                checkpoint.save().await?;
                catalog
            }
        };
        let plan = plan::plan(project.clone(), &catalog)?;
        let mut stream = Stream {
            tables: HashMap::new(),
            schemas: checkpoint.state().schemas.clone().unwrap_or_default(),
            topics: topics.clone(),
            metrics: Arc::clone(metrics),
            writer: delivery.stream_writer().await?,
            delivery,
            plan,
            start: start.clone(),
            until_caught_up,
            events: 0,
            prepared_xa: checkpoint.state().prepared_xa.clone(),
            online: Online::new(metrics),
            position: start.clone(),
            committed: 0,
            picked_up: Vec::new(),
            requests_checked: Instant::now(),
        };
        stream.tables = stream.routes(&stream.plan)?;
        // A lake changelog's `_seq` goes on from the changes earlier runs committed.
        stream
            .writer
            .continue_sequence(checkpoint.state().incremental_changes);
        online::compare_with_checkpoint(&stream.plan, checkpoint);
        online::take_requests(&stream.plan, checkpoint).await?;
        checkpoint.save().await?;
        Ok(stream)
    }

    /// Streams until the binlog ends (`--until-caught-up`), a pause, or a failure.
    pub async fn run(
        mut self,
        checkpoint: &mut Checkpointer,
        mut stop: watch::Receiver<bool>,
    ) -> Result<Outcome> {
        let project = self.plan.project.clone();
        // `start_timestamp`: transactions committed before it are skipped, on every run.
        let skip_before = match project.project.start.as_ref().map(|s| &s.value) {
            Some(StartPoint::Timestamp(t)) => Some(*t),
            _ => None,
        };
        tracing::info!(file = %self.start.file, pos = self.start.pos, "incremental sync starts");
        let mut reader = Reader::spawn(&project, self.start.clone(), self.until_caught_up);
        let mut pending: VecDeque<Pending> = VecDeque::new();
        let mut paused = false;
        let mut retries = 0u32;
        let mut heartbeat = Heartbeat::new();
        let mut hangup = Hangup::new();
        let mut batch = self
            .writer
            .exactly_once()
            .then(|| SinkTransaction::new(&self.writer));
        let mut progress = StreamProgress::new(&self.metrics, &self.start);
        let result = loop {
            progress.tick(&self.metrics, checkpoint.state());
            let commit_at = batch.as_ref().and_then(SinkTransaction::commit_when_idle);
            // In this order: a pause first, then the binlog, and only when it has nothing ready
            // the timers (commit, save, heartbeat).
            let change = tokio::select! {
                biased;
                _ = stop.changed() => {
                    paused = true;
                    break Ok(());
                }
                _ = hangup.recv() => {
                    // Everything sent is acknowledged first: the reader starts again after it,
                    // passing the rows of the tables the new SYNCs match.
                    if let Some(batch) = &mut batch
                        && let Err(e) = batch.commit(&mut self.writer, checkpoint, &mut pending).await
                    {
                        break Err(e);
                    }
                    if let Err(e) = drain(&mut pending, checkpoint, &self.metrics).await {
                        break Err(e);
                    }
                    if !pending.is_empty() {
                        break Err(Error::Sink(
                            "Kafka did not acknowledge the last transactions within 30 s of \
                             SIGHUP; the checkpoint stays before them and a rerun sends them \
                             again"
                                .to_string(),
                        ));
                    }
                    match self.reload(checkpoint).await {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(e) => break Err(e),
                    }
                    if let Some(from) = checkpoint.state().incremental.clone() {
                        reader.stop();
                        reader = Reader::spawn(&self.plan.project, from.clone(), self.until_caught_up);
                        self.position = from;
                    }
                    continue;
                }
                change = reader.next() => change,
                _ = sleep_until(commit_at), if commit_at.is_some() => {
                    if let Some(batch) = &mut batch
                        && let Err(e) = batch.commit(&mut self.writer, checkpoint, &mut pending).await
                    {
                        break Err(e);
                    }
                    if let Err(e) = advance(&mut pending, checkpoint, &self.metrics) {
                        break Err(e);
                    }
                    continue;
                }
                // While the source is idle, record what Kafka acknowledged meanwhile.
                _ = tokio::time::sleep(checkpoint::SAVE_EVERY) => {
                    if let Err(e) = advance(&mut pending, checkpoint, &self.metrics) {
                        break Err(e);
                    }
                    if pending.is_empty() && batch.as_ref().is_none_or(|b| b.opened.is_none()) {
                        // Nothing read for a while and nothing unacknowledged: caught up.
                        self.metrics.caught_up();
                    }
                    if let Err(e) = checkpoint.save().await {
                        break Err(e);
                    }
                    if let Err(e) = self.heartbeat_if_idle(&mut heartbeat, &mut batch).await {
                        break Err(e);
                    }
                    // A quiet binlog: requested snapshots are taken in, and chunks go back to
                    // back until a change arrives.
                    if let Err(e) = online::take_requests(&self.plan, checkpoint).await {
                        break Err(e);
                    }
                    if self.online.has_work(checkpoint.state())
                        && let Err(e) = self.online_chunk(checkpoint, &mut batch, &mut pending).await
                    {
                        break Err(e);
                    }
                    continue;
                }
            };
            // Only `--until-caught-up` ends a stream; the server closing it (a shutdown, a
            // restart) is a fault to ride out.
            let change = match change {
                Ok(None) if !self.until_caught_up => Err(Error::Transient(
                    "the source closed the binlog stream (a restart or a shutdown?)".to_string(),
                )),
                other => other,
            };
            let change = match change {
                Ok(Some(change)) => {
                    retries = 0;
                    change
                }
                // Caught up: the online snapshots pending finish first.
                Ok(None) => {
                    break self
                        .finish_online(checkpoint, &mut batch, &mut pending, &mut progress)
                        .await;
                }
                Err(e) if e.kind() == ErrorKind::Transient && retries < MAX_RETRIES => {
                    retries += 1;
                    let backoff = Duration::from_millis(500 << retries.min(5));
                    tracing::warn!(error = %e, attempt = retries, "the binlog connection was lost; reconnecting from the checkpoint");
                    // Resume exactly after the last acknowledged transaction.
                    if let Some(batch) = &mut batch
                        && let Err(e) = batch
                            .commit(&mut self.writer, checkpoint, &mut pending)
                            .await
                    {
                        break Err(e);
                    }
                    if let Err(e) = drain(&mut pending, checkpoint, &self.metrics).await {
                        break Err(e);
                    }
                    if let Err(e) = checkpoint.save().await {
                        break Err(e);
                    }
                    if !pending.is_empty() {
                        // Resuming with unacknowledged transactions would replay them against a
                        // schema that is already past them.
                        break Err(e);
                    }
                    tokio::time::sleep(backoff).await;
                    let Some(from) = checkpoint.state().incremental.clone() else {
                        break Err(e);
                    };
                    // The history goes back to the checkpoint's too: the events after it are
                    // decoded again.
                    if let Some(schemas) = checkpoint.state().schemas.clone()
                        && schemas != self.schemas
                        && let Err(e) = self.replan(TableSchema::catalog(&schemas)).await
                    {
                        break Err(e);
                    }
                    self.prepared_xa = checkpoint.state().prepared_xa.clone();
                    reader = Reader::spawn(&project, from, self.until_caught_up);
                    self.metrics.reconnected();
                    self.metrics.error(ErrorKind::Transient);
                    continue;
                }
                Err(e) => break Err(e),
            };
            if let Some(batch) = &mut batch
                && let Err(e) = batch.open(&self.writer)
            {
                break Err(e);
            }
            let acks = Acks::new();
            let mut schemas = None;
            let mut xa = None;
            let origin = change.origin();
            let (end, read_time) = change.end();
            let end = end.clone();
            // Every message of a transaction names where it starts and when (its pieces, when
            // it is large, are sent before its end is known).
            let meta = ChangeMeta {
                timestamp: origin.timestamp,
                position: origin.position.to_string(),
            };
            let began = origin.timestamp;
            // Before `start_timestamp` nothing is sent, but DDL still moves the schema history.
            let sends = skip_before.is_none_or(|t| i64::from(began) >= t);
            match change {
                Change::Transaction { changes, .. } => {
                    if sends && let Err(e) = self.transaction(changes, &meta, &acks).await {
                        break Err(e);
                    }
                }
                Change::Statement { schema, query, .. } => {
                    match self.statement(&schema, &query, sends, &meta, &acks).await {
                        Ok(new_schemas) => schemas = new_schemas,
                        Err(e) => break Err(e),
                    }
                }
                Change::XaPrepared {
                    xid,
                    synced,
                    origin,
                    ..
                } => {
                    let at = synced.then_some(origin.position);
                    self.prepared_xa.insert(xid.clone(), at.clone());
                    xa = Some(XaStep::Prepared { xid, at });
                }
                Change::XaFinished { xid, commit, .. } => {
                    if let Err(e) = self
                        .xa_finished(&xid, commit && sends, &end, &meta, &acks)
                        .await
                    {
                        break Err(e);
                    }
                    xa = Some(XaStep::Finished { xid });
                }
            }
            self.position = end.clone();
            self.committed = read_time;
            let sent = Pending {
                end,
                changes: acks.sent(),
                acks,
                schemas,
                xa,
                committed: read_time,
                online: None,
            };
            match &mut batch {
                Some(batch) => {
                    batch.members.push(sent);
                    if batch.due(&self.writer)
                        && let Err(e) = batch
                            .commit(&mut self.writer, checkpoint, &mut pending)
                            .await
                    {
                        break Err(e);
                    }
                }
                None => pending.push_back(sent),
            }
            if let Err(e) = advance(&mut pending, checkpoint, &self.metrics) {
                break Err(e);
            }
            if let Err(e) = checkpoint.save_due().await {
                break Err(e);
            }
            for (name, has_rows) in std::mem::take(&mut self.picked_up) {
                if let Some(table) = self
                    .plan
                    .tables
                    .iter()
                    .find(|t| t.qualified().eq_ignore_ascii_case(&name))
                {
                    online::picked_up(&self.plan, checkpoint, table, has_rows);
                }
            }
            if self.requests_checked.elapsed() >= REQUESTS_EVERY {
                self.requests_checked = Instant::now();
                if let Err(e) = online::take_requests(&self.plan, checkpoint).await {
                    break Err(e);
                }
            }
            if self.online.due(checkpoint.state(), reader.caught_up())
                && let Err(e) = self
                    .online_chunk(checkpoint, &mut batch, &mut pending)
                    .await
            {
                break Err(e);
            }
            // The binlog may be busy with other tables while these topics stay quiet.
            if let Err(e) = self.heartbeat_if_idle(&mut heartbeat, &mut batch).await {
                break Err(e);
            }
        };
        reader.stop();
        // A clean end commits the Kafka transaction being filled; a failure aborts it, and the
        // rerun starts after the last commit.
        let result = match (result, &mut batch) {
            (Ok(()), Some(batch)) => {
                batch
                    .commit(&mut self.writer, checkpoint, &mut pending)
                    .await
            }
            (Err(e), Some(batch)) => {
                batch.abort(&mut self.writer);
                Err(e)
            }
            (result, None) => result,
        };
        // Whatever happened, keep every acknowledged transaction: wait (bounded) for the rest.
        let drained = drain(&mut pending, checkpoint, &self.metrics).await;
        checkpoint.save().await?;
        progress.finish(&self.metrics, checkpoint.state());
        drained?;
        result?;
        if !pending.is_empty() {
            return Err(Error::Sink(
                "Kafka did not acknowledge the last transactions within 30 s; the checkpoint \
                 stays before them and a rerun sends them again"
                    .to_string(),
            ));
        }
        Ok(Outcome { paused })
    }

    /// The routes of the plan's tables, by `db.table` in lower case.
    fn routes(&self, plan: &Plan) -> Result<HashMap<String, StreamTable>> {
        let mut tables = HashMap::new();
        for table in &plan.tables {
            tables.insert(
                table.qualified().to_ascii_lowercase(),
                StreamTable {
                    route: Route::new(table, &plan.project, &self.topics, &self.metrics)?,
                    types: table.columns.iter().map(|c| c.sql_type.clone()).collect(),
                    text: ColumnText::resolve(&table.columns, &table.schema, None).into(),
                    binlog_text: None,
                },
            );
        }
        Ok(tables)
    }

    /// A transaction's row changes, in order, each run of same-table same-kind changes (at
    /// most `batch_rows` long) as one change batch: the pieces of a large transaction share its
    /// acknowledgement group, so it stays whole.
    async fn transaction(
        &mut self,
        mut changes: Vec<RowChange>,
        meta: &ChangeMeta,
        acks: &Arc<Acks>,
    ) -> Result<()> {
        let limit = self.plan.project.project.batch_rows.max(1);
        let mut start = 0;
        while start < changes.len() {
            let first = &changes[start];
            let end = changes[start..]
                .iter()
                .take(limit)
                .position(|c| {
                    c.op != first.op
                        || c.table != first.table
                        || c.database != first.database
                        || c.charsets != first.charsets
                })
                .map_or((start + limit).min(changes.len()), |n| start + n);
            self.rows(&mut changes[start..end], meta, acks).await?;
            start = end;
        }
        Ok(())
    }

    async fn rows(
        &mut self,
        changes: &mut [RowChange],
        meta: &ChangeMeta,
        acks: &Arc<Acks>,
    ) -> Result<()> {
        let dml = self.plan.project.project.dml;
        let key = format!("{}.{}", changes[0].database, changes[0].table).to_ascii_lowercase();
        let Some(table) = self.tables.get_mut(&key) else {
            return Ok(());
        };
        let text = table.text(changes[0].charsets.as_ref());
        let plan = &table.route.plan;
        let qualified = plan.qualified();
        // The schema history must describe the rows the binlog holds: decoding them with
        // another table's columns would send wrong values without a word.
        let columns: Vec<(&str, &SqlType)> = plan
            .columns
            .iter()
            .map(|c| (c.name.as_str(), &c.sql_type))
            .collect();
        if let Some(disagreement) = changes[0].columns.disagreement(&columns) {
            return Err(Error::Definite(format!(
                "table {qualified} at {}: {disagreement}. tributary's schema history is wrong \
                 for this table (a DDL it did not see, or a checkpoint from elsewhere); the \
                 checkpoint stays before this transaction. Send the table again with \
                 `tributary reset` and a new run",
                meta.position
            )));
        }
        let batch = ChangeBatch::from_binlog(
            &plan.schema,
            &table.types,
            &text,
            changes,
            &qualified,
            &meta.position,
        )?;
        let filter = plan.filter.clone();
        let sent = self
            .writer
            .changes(&mut table.route, &batch, meta, acks, |images| {
                let emits = transform::changes(
                    filter.as_ref(),
                    images.before,
                    images.after,
                    &qualified,
                    |row| images.key_changed(row),
                )?;
                Ok(emits
                    .into_iter()
                    .filter(|emit| match emit {
                        Emit::Insert(_) => dml.insert,
                        Emit::Update(_) => dml.update,
                        Emit::Delete(_) => dml.delete,
                    })
                    .collect())
            })
            .await?;
        self.events += sent as u64;
        Ok(())
    }

    /// `XA COMMIT` sends the rows of the transaction prepared earlier — read again from the
    /// binlog where it was prepared, since a restart may lie between the two; `XA ROLLBACK`
    /// sends nothing.
    async fn xa_finished(
        &mut self,
        xid: &str,
        commit: bool,
        end: &BinlogPosition,
        meta: &ChangeMeta,
        acks: &Arc<Acks>,
    ) -> Result<()> {
        let at = match self.prepared_xa.remove(xid) {
            Some(Some(at)) if commit => at,
            Some(_) => return Ok(()),
            None => {
                tracing::warn!(
                    xid,
                    position = %end,
                    "XA COMMIT of a transaction prepared before this stream started: its rows \
                     are not known to tributary; if it changed synced tables, send them again \
                     (`tributary reset`)"
                );
                return Ok(());
            }
        };
        let project = self.plan.project.clone();
        // A replica id of its own: a second connection under the stream's id would make the
        // server drop the stream's.
        let mut source = project.source.clone();
        source.server_id ^= 1 << 30;
        let mut reader = BinlogReader::open(&source, &at, false)
            .await?
            .with_table_filter(synced_tables(&project))
            .replaying_xa();
        while !reader.replayed() {
            match reader.next().await? {
                Some(Change::Transaction { changes, .. }) => {
                    self.transaction(changes, meta, acks).await?
                }
                Some(_) => {}
                None => {
                    return Err(Error::Definite(format!(
                        "the binlog ended before the prepared XA transaction {xid} at {at}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// HEARTBEAT records once every [`HEARTBEAT_EVERY`] in which nothing was sent — whether the
    /// binlog was idle or busy with tables the project does not sync.
    async fn heartbeat_if_idle(
        &mut self,
        heartbeat: &mut Heartbeat,
        batch: &mut Option<SinkTransaction>,
    ) -> Result<()> {
        if heartbeat.since.elapsed() < HEARTBEAT_EVERY {
            return Ok(());
        }
        let idle = self.events == heartbeat.events;
        *heartbeat = Heartbeat {
            since: Instant::now(),
            events: self.events,
        };
        if !idle {
            return Ok(());
        }
        if let Some(batch) = batch {
            batch.open(&self.writer)?;
        }
        self.heartbeat().await
    }

    /// HEARTBEAT records to every partition of each topic whose format has one.
    async fn heartbeat(&mut self) -> Result<()> {
        let seconds = checkpoint::unix_now();
        let mut done = BTreeSet::new();
        for table in self.tables.values_mut() {
            let topic = table.route.plan.topic.clone();
            if done.contains(&topic) {
                continue;
            }
            if self.writer.heartbeat(&mut table.route, seconds).await? {
                done.insert(topic);
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
        sends: bool,
        meta: &ChangeMeta,
        acks: &Arc<Acks>,
    ) -> Result<Option<Vec<TableSchema>>> {
        let project = self.plan.project.clone();
        let synced: Vec<&str> = self.tables.keys().map(String::as_str).collect();
        let ddl = Ddl::of(schema, query, &synced, |d, t| project.syncs_table(d, t));
        if !ddl.concerns_project() {
            return self.track(schema, query, &ddl).await;
        }
        let sends = sends && project.project.incremental.ddl;
        if sends {
            for name in &ddl.synced {
                self.send_ddl(name, query, meta, acks).await?;
            }
        }
        let named: Vec<String> = ddl.named.iter().flatten().cloned().collect();
        let catalog = match self.history_after(schema, query, &named).await? {
            Some(schemas) => TableSchema::catalog(&schemas),
            None => live_catalog(&project).await?,
        };
        // The plan was good when the run started: a DDL that breaks it (a type tributary cannot
        // send, a table now matched by two SYNCs) is a stop after data was written, not a
        // project error.
        self.replan(catalog).await.map_err(|e| match e.kind() {
            ErrorKind::Config => Error::Definite(format!(
                "after the DDL at {} (`{}`): {e}; the checkpoint stays before it: change the \
                 project (or the table) and run again",
                meta.position,
                query.trim()
            )),
            _ => e,
        })?;
        // A table created (or renamed) into a SYNC pattern is picked up from here on.
        for name in ddl.named.iter().flatten() {
            if !ddl.synced.contains(name) && self.tables.contains_key(name) {
                tracing::info!(table = %name, "a new table matches a SYNC pattern");
                // A created table starts empty and its rows come from the binlog (CREATE …
                // SELECT too); one renamed in brings rows no event carried.
                let created = query
                    .trim_start()
                    .get(..6)
                    .is_some_and(|w| w.eq_ignore_ascii_case("CREATE"));
                self.picked_up.push((name.clone(), !created));
                if sends {
                    self.send_ddl(name, query, meta, acks).await?;
                }
            }
        }
        Ok(Some(self.schemas.clone()))
    }

    /// A statement about tables the project does not sync still moves the schema history of
    /// the databases it covers: a later `RENAME` into a SYNC pattern brings the columns the
    /// table has by then, not those it had when the run started.
    async fn track(
        &mut self,
        schema: &str,
        query: &str,
        ddl: &Ddl,
    ) -> Result<Option<Vec<TableSchema>>> {
        let Some(named) = &ddl.named else {
            return Ok(None);
        };
        let covered = self.plan.project.databases();
        let tracked = |name: &String| {
            covered.covers(name.split_once('.').map_or("", |(d, _)| d))
                || self.schemas.iter().any(|t| qualified(t) == *name)
        };
        if !named.iter().any(tracked) {
            return Ok(None);
        }
        let next = match self.history_after(schema, query, named).await? {
            Some(next) => next,
            // A statement tributary cannot follow leaves its tables unknown: a later RENAME
            // into a pattern reads them from the catalog, as for a table from elsewhere.
            None => self
                .schemas
                .iter()
                .filter(|t| !named.contains(&qualified(t)))
                .cloned()
                .collect(),
        };
        if next == self.schemas {
            return Ok(None);
        }
        self.schemas = next;
        Ok(Some(self.schemas.clone()))
    }

    /// The schema history after `query`, `None` when the statement cannot be applied to it.
    /// What the statement leaves unknown comes from the server: a new table's database
    /// defaults, and the collations of the `named` tables.
    async fn history_after(
        &self,
        schema: &str,
        query: &str,
        named: &[String],
    ) -> Result<Option<Vec<TableSchema>>> {
        let Some(mut schemas) = history::after(&self.schemas, schema, query) else {
            return Ok(None);
        };
        let project = &self.plan.project;
        // A table created without a character set has its database's, which the statement
        // does not carry: the server's, asked once per such table.
        for table in schemas.iter_mut().filter(|t| {
            t.charset.is_none()
                && !self
                    .schemas
                    .iter()
                    .any(|s| s.database == t.database && s.name == t.name)
        }) {
            if let Some((charset, collation)) = database_defaults(project, &table.database).await? {
                table.take_database_defaults(&charset, &collation);
            }
        }
        // A set named without a collation has the server's default collation for it (for the
        // Unicode sets, the server's choice, which row filters compare under): the catalog
        // says which, for the tables this statement names.
        let is_named = |t: &TableSchema| named.contains(&qualified(t));
        if schemas.iter().any(|t| is_named(t) && t.lacks_collations()) {
            let live = live_catalog(project).await?;
            for table in schemas.iter_mut().filter(|t| is_named(t)) {
                table.take_live_collations(&live);
            }
        }
        Ok(Some(schemas))
    }

    /// SIGHUP: the project file is read again and its SYNC statements apply from the next
    /// change — a new table gets an online snapshot, a removed one stops. Source, sink and
    /// project options need a restart. A file that does not load or plan is reported and the
    /// run goes on as it was (`false`).
    async fn reload(&mut self, checkpoint: &mut Checkpointer) -> Result<bool> {
        let path = self.plan.project.path.clone();
        let mut project = self.plan.project.clone();
        match ProjectFile::load(&path) {
            Ok(fresh) => project.syncs = fresh.syncs,
            Err(e) => {
                tracing::warn!(error = %e, "SIGHUP: the project file does not load; the run goes on with the SYNC statements it has");
                return Ok(false);
            }
        }
        let planned = async {
            let live = plan::plan(project.clone(), &live_catalog(&project).await?)?;
            with_new_tables(&self.schemas, &live, &project).await
        }
        .await;
        let schemas = match planned {
            Ok(schemas) => schemas.unwrap_or_else(|| self.schemas.clone()),
            Err(e) => {
                tracing::warn!(error = %e, "SIGHUP: the project does not plan; the run goes on with the SYNC statements it has");
                return Ok(false);
            }
        };
        let previous = std::mem::replace(&mut self.plan.project, project);
        if let Err(e) = self.replan(TableSchema::catalog(&schemas)).await {
            tracing::warn!(error = %e, "SIGHUP: the project does not plan; the run goes on with the SYNC statements it has");
            self.plan.project = previous;
            return Ok(false);
        }
        tracing::info!(file = %path.display(), tables = self.plan.tables.len(), "SIGHUP: the project file is read again");
        online::compare_with_checkpoint(&self.plan, checkpoint);
        checkpoint.update(|c| c.schemas = Some(schemas));
        checkpoint.save().await?;
        Ok(true)
    }

    /// Reads and sends the next online snapshot chunk, between two source transactions (see
    /// `online` for why that order is safe); its progress joins the acknowledgement queue at
    /// the stream's position.
    async fn online_chunk(
        &mut self,
        checkpoint: &mut Checkpointer,
        batch: &mut Option<SinkTransaction>,
        pending: &mut VecDeque<Pending>,
    ) -> Result<()> {
        if let Some(batch) = batch.as_mut() {
            batch.open(&self.writer)?;
        }
        let acks = Acks::new();
        let name = self.online.next_table(checkpoint.state());
        let route = name
            .and_then(|n| self.tables.get_mut(&n))
            .map(|t| &mut t.route);
        let sent = self
            .online
            .step(
                &self.plan,
                route,
                &mut self.writer,
                checkpoint,
                &acks,
                &self.position,
            )
            .await?;
        let Some(sent) = sent else {
            return Ok(());
        };
        let step = Pending {
            end: self.position.clone(),
            changes: 0,
            acks,
            schemas: None,
            xa: None,
            committed: self.committed,
            online: Some(sent),
        };
        match batch {
            Some(batch) => {
                batch.members.push(step);
                if batch.due(&self.writer) {
                    batch.commit(&mut self.writer, checkpoint, pending).await?;
                }
            }
            None => pending.push_back(step),
        }
        advance(pending, checkpoint, &self.metrics)?;
        checkpoint.save_due().await
    }

    /// `--until-caught-up`: the online snapshots waiting (requested ones included) are sent
    /// before the run ends.
    async fn finish_online(
        &mut self,
        checkpoint: &mut Checkpointer,
        batch: &mut Option<SinkTransaction>,
        pending: &mut VecDeque<Pending>,
        progress: &mut StreamProgress,
    ) -> Result<()> {
        online::take_requests(&self.plan, checkpoint).await?;
        while let Some(wait) = self.online.waiting(checkpoint.state()) {
            tokio::time::sleep(wait).await;
            self.online_chunk(checkpoint, batch, pending).await?;
            progress.tick(&self.metrics, checkpoint.state());
        }
        Ok(())
    }

    /// Sends a DDL statement when the project syncs DDL.
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
        if let Some(table) = self.tables.get_mut(name) {
            self.writer.ddl(&mut table.route, query, meta, acks).await?;
        }
        Ok(())
    }

    /// Plans the tables again with `catalog` (after DDL), creating the topics new tables need.
    async fn replan(&mut self, catalog: plan::Catalog) -> Result<()> {
        let plan = plan::plan(self.plan.project.clone(), &catalog)?;
        let new: Vec<_> = plan
            .tables
            .iter()
            .filter(|t| !self.topics.contains_key(&t.topic))
            .cloned()
            .collect();
        if !new.is_empty() {
            self.topics = self
                .delivery
                .ensure_destinations(&new, "a new table")
                .await?;
        }
        self.tables = self.routes(&plan)?;
        self.plan = plan;
        self.schemas = TableSchema::of(&catalog);
        Ok(())
    }
}

/// The binlog reader on a task of its own, a few transactions ahead of the stage.
struct Reader {
    changes: mpsc::Receiver<Result<Option<Change>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Reader {
    fn spawn(project: &ProjectFile, from: BinlogPosition, until_caught_up: bool) -> Reader {
        let (tx, changes) = mpsc::channel(READ_AHEAD);
        let source = project.source.clone();
        let project = project.clone();
        let task = tokio::spawn(async move {
            let reader = BinlogReader::open(&source, &from, until_caught_up).await;
            let mut reader = match reader {
                Ok(reader) => reader.with_table_filter(synced_tables(&project)),
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            loop {
                let change = reader.next().await;
                let last = !matches!(change, Ok(Some(_)));
                if tx.send(change).await.is_err() || last {
                    return;
                }
            }
        });
        Reader { changes, task }
    }

    /// Whether nothing decoded waits to be taken.
    fn caught_up(&self) -> bool {
        self.changes.is_empty()
    }

    /// The next committed transaction or statement; `None` at the end of a non-blocking stream.
    async fn next(&mut self) -> Result<Option<Change>> {
        if let Some(change) = self.changes.recv().await {
            return change;
        }
        // The task ended without a word: it panicked (a decoding bug); say what it said.
        let reason = match (&mut self.task).await {
            Err(e) if e.is_panic() => {
                let panic = e.into_panic();
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            }
            _ => String::new(),
        };
        Err(Error::Definite(format!(
            "the binlog reader failed ({reason}); please report this with the binlog position \
             in the checkpoint — a rerun resumes from it"
        )))
    }

    fn stop(self) {
        self.task.abort();
    }
}

/// Waits (bounded) until every sent transaction is acknowledged, moving the checkpoint.
async fn drain(
    pending: &mut VecDeque<Pending>,
    checkpoint: &mut Checkpointer,
    metrics: &Metrics,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pending.is_empty() && Instant::now() < deadline {
        advance(pending, checkpoint, metrics)?;
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

/// SIGHUP, where the platform has it.
struct Hangup(Option<tokio::signal::unix::Signal>);

impl Hangup {
    fn new() -> Hangup {
        Hangup(tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok())
    }

    async fn recv(&mut self) {
        match &mut self.0 {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    }
}

/// When the last HEARTBEAT check was, and the messages sent by then.
struct Heartbeat {
    since: Instant,
    events: u64,
}

impl Heartbeat {
    fn new() -> Heartbeat {
        Heartbeat {
            since: Instant::now(),
            events: 0,
        }
    }
}

/// With `exactly_once` (and always with a lake sink): the Kafka transaction or lake commit
/// being filled, and the source transactions in it. They join `pending` (and may move the
/// checkpoint) only once it committed: before that, an acknowledged message can still be
/// aborted.
struct SinkTransaction {
    opened: Option<Instant>,
    members: Vec<Pending>,
    /// Commit this long after opening when the binlog goes quiet, and at the latest after
    /// `every` under load: Kafka commits within milliseconds, a lake sink every
    /// `commit_interval_ms` (each commit is a file per table).
    idle: Duration,
    every: Duration,
}

impl SinkTransaction {
    fn new(writer: &Writer) -> SinkTransaction {
        let (idle, every) = match writer.commit_interval() {
            Some(interval) => (interval, interval),
            None => (COMMIT_IDLE, COMMIT_EVERY),
        };
        SinkTransaction {
            opened: None,
            members: Vec::new(),
            idle,
            every,
        }
    }

    fn open(&mut self, writer: &Writer) -> Result<()> {
        if self.opened.is_none() {
            writer.begin()?;
            self.opened = Some(Instant::now());
        }
        Ok(())
    }

    /// When to commit if the binlog stays quiet.
    fn commit_when_idle(&self) -> Option<Instant> {
        self.opened.map(|opened| opened + self.idle)
    }

    /// Whether to commit even though the binlog has more: the interval passed, or the writer
    /// holds as much as it should (a lake writer's files of many tables).
    fn due(&self, writer: &Writer) -> bool {
        self.opened
            .is_some_and(|opened| opened.elapsed() >= self.every)
            || writer.holds_enough()
    }

    /// Commits the open transaction with the position after its last source transaction (and
    /// the schema history, after a DDL).
    async fn commit(
        &mut self,
        writer: &mut Writer,
        checkpoint: &mut Checkpointer,
        pending: &mut VecDeque<Pending>,
    ) -> Result<()> {
        if self.opened.take().is_none() {
            return Ok(());
        }
        let state = checkpoint.state();
        let commit = state.exactly_once_commits + 1;
        let mut progress = Vec::new();
        if let Some(last) = self.members.last() {
            let earlier: u64 = pending.iter().map(|p| p.changes).sum();
            let changes: u64 = self.members.iter().map(|p| p.changes).sum();
            progress.push(Progress::Incremental {
                commit,
                position: last.end.clone(),
                committed: u64::from(last.committed),
                changes: state.incremental_changes + earlier + changes,
            });
        }
        if let Some(schemas) = self.members.iter().rev().find_map(|p| p.schemas.clone()) {
            progress.push(Progress::Schemas { commit, schemas });
        }
        progress.extend(
            self.members
                .iter()
                .filter_map(|p| p.xa.as_ref().map(|step| step.progress(commit))),
        );
        progress.extend(
            self.members
                .iter()
                .filter_map(|p| p.online.as_ref().map(|sent| sent.progress(commit))),
        );
        if let Err(e) = writer.commit(&progress).await {
            self.members.clear();
            return Err(e);
        }
        if !progress.is_empty() {
            checkpoint.update(|c| c.exactly_once_commits = commit);
        }
        pending.extend(self.members.drain(..));
        Ok(())
    }

    fn abort(&mut self, writer: &mut Writer) {
        if self.opened.take().is_some() {
            writer.abort();
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
    /// An XA transaction prepared or finished, recorded likewise.
    xa: Option<XaStep>,
    /// Commit time, Unix seconds, for the lag.
    committed: u32,
    /// Messages sent for it.
    changes: u64,
    /// An online snapshot chunk, recorded likewise.
    online: Option<ChunkSent>,
}

/// A step of an XA transaction the checkpoint keeps track of.
enum XaStep {
    Prepared {
        xid: String,
        at: Option<BinlogPosition>,
    },
    Finished {
        xid: String,
    },
}

impl XaStep {
    fn progress(&self, commit: u64) -> Progress {
        match self {
            XaStep::Prepared { xid, at } => Progress::XaPrepared {
                commit,
                xid: xid.clone(),
                at: at.clone(),
            },
            XaStep::Finished { xid } => Progress::XaFinished {
                commit,
                xid: xid.clone(),
            },
        }
    }
}

/// Records in the checkpoint every settled transaction at the front of the queue.
fn advance(
    pending: &mut VecDeque<Pending>,
    checkpoint: &mut Checkpointer,
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
                let Some(done) = pending.pop_front() else {
                    break;
                };
                metrics.acknowledged(u64::from(done.committed));
                // With exactly_once the commit already counted; the position is the same.
                let commit = 0;
                let changes = checkpoint.state().incremental_changes + done.changes;
                checkpoint.record(Progress::Incremental {
                    commit,
                    position: done.end,
                    committed: u64::from(done.committed),
                    changes,
                });
                if let Some(schemas) = done.schemas {
                    checkpoint.record(Progress::Schemas { commit, schemas });
                }
                if let Some(step) = &done.xa {
                    checkpoint.record(step.progress(commit));
                }
                if let Some(sent) = done.online {
                    checkpoint.record(sent.progress(commit));
                    metrics.table(&sent.table).online_chunk_done();
                }
            }
        }
    }
    Ok(())
}

/// The tables any SYNC statement could match (tables created later included): rows of other
/// tables are dropped as they are read.
fn synced_tables(project: &ProjectFile) -> binlog::TableFilter {
    let project = project.clone();
    Box::new(move |database, table| project.syncs_table(database, table))
}

/// `db.table` in lower case, as statements name tables.
fn qualified(table: &TableSchema) -> String {
    format!("{}.{}", table.database, table.name).to_ascii_lowercase()
}

/// A SYNC added to the project may reach a database the schema history does not cover: its
/// tables join the history as they are now — their rows come by an online snapshot. A table
/// missing from a database the history covers is left alone: the binlog creates it (or renames
/// it in) after the history's position, and replaying that DDL gives it its columns. `None` when
/// nothing is added.
async fn with_new_tables(
    schemas: &[TableSchema],
    plan: &Plan,
    project: &ProjectFile,
) -> Result<Option<Vec<TableSchema>>> {
    let covered = |t: &crate::plan::TablePlan| {
        schemas
            .iter()
            .any(|s| s.database.eq_ignore_ascii_case(&t.database))
    };
    if plan.tables.iter().all(covered) {
        return Ok(None);
    }
    let live = TableSchema::of(&live_catalog(project).await?);
    let mut schemas = schemas.to_vec();
    for table in plan.tables.iter().filter(|t| !covered(t)) {
        if let Some(schema) = live
            .iter()
            .find(|s| s.database == table.database && s.name == table.table)
        {
            schemas.push(schema.clone());
        }
    }
    Ok(Some(schemas))
}
