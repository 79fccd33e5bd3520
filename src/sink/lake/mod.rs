//! The lake sink: the project's tables as Parquet files or Delta Lake tables, on a local disk
//! or S3, committed exactly once.
//!
//! Each producing task (a full-sync chunk reader, the binlog stream) owns a [`LakeWriter`]: it
//! writes the rows of each table to an open data file ([`file`]) as the change columns of
//! [`changelog`] describe them, and at each commit closes its files and commits them with the
//! source progress they make through the commit [`log`] — the same role a Kafka transaction
//! and the state topic play for the Kafka sink. Full sync commits per chunk, the stream every
//! `commit_interval_ms`.

pub mod changelog;
mod delta;
mod file;
pub mod log;
mod merge;
pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use object_store::ObjectStoreExt;

use self::file::OpenFile;
use self::log::{DataFile, Record};
use self::store::Store;
use super::kafka::Acks;
use crate::batch::ChangeMeta;
use crate::checkpoint::{Checkpoint, Progress};
use crate::encode::ChangeImages;
use crate::error::{Error, Result};
use crate::plan::TablePlan;
use crate::project::{ProjectFile, SinkKind};
use crate::transform::Emit;

/// A writer commits before it holds more open files than this (one per table written since its
/// last commit): memory stays at a row group per open file.
const MAX_OPEN_FILES: usize = 8;

/// The writer role of the binlog stream.
pub const STREAM_ROLE: &str = "incremental";

/// The lake table DDL statements are recorded in, relative to the sink's path.
pub const DDL_TABLE: &str = "_ddl";

/// A run's lake: the store, and what every writer shares about each table.
pub struct Lake {
    store: Store,
    kind: SinkKind,
    project: String,
    run: String,
    file_bytes: u64,
    before_images: bool,
    /// `mode = 'upsert'` (Delta): tables hold each key's current row ([`merge`]).
    upsert: bool,
    pub commit_interval: Duration,
    /// Delta tables, loaded once and committed to one commit at a time.
    tables: Mutex<HashMap<String, Arc<delta::Table>>>,
    /// Each lake table's schema as this run writes it: grown by ADD COLUMN, never narrowed.
    schemas: Mutex<HashMap<String, SchemaRef>>,
}

impl Lake {
    /// The sink's lake for run `run` (the checkpoint's run id).
    pub fn open(project: &ProjectFile, run: &str) -> Result<Arc<Lake>> {
        let sink = &project.sink;
        let lake = sink.lake.as_ref().ok_or_else(|| {
            Error::Config(format!("sink `{}` is not a lake sink", sink.name.value))
        })?;
        Ok(Arc::new(Lake {
            store: Store::open(sink)?,
            kind: sink.kind,
            project: project.project.name.value.clone(),
            run: run.to_string(),
            file_bytes: lake.file_bytes,
            before_images: project.project.before_images,
            upsert: sink.kind == SinkKind::Delta
                && project.project.mode == crate::project::LakeMode::Upsert,
            commit_interval: Duration::from_millis(lake.commit_interval_ms),
            tables: Mutex::new(HashMap::new()),
            schemas: Mutex::new(HashMap::new()),
        }))
    }

    /// Finishes publishing what the last runs committed, and returns the progress they made
    /// (to overlay the local checkpoint, which may be behind), with each role's next record
    /// number.
    pub async fn recover(&self) -> Result<(Vec<Progress>, HashMap<String, u64>)> {
        let records = log::read_all(&self.store, &self.project, &self.run).await?;
        let mut progress = Vec::new();
        let mut next = HashMap::new();
        for record in records {
            self.publish(&record).await?;
            next.insert(record.role.clone(), record.number + 1);
            progress.extend(record.progress);
        }
        Ok((progress, next))
    }

    /// A first run (no checkpoint) must not append to tables an earlier run filled: its
    /// snapshot rows and `_seq` would mix with theirs, and no replay could tell which is newer.
    pub async fn refuse_filled_tables(&self, tables: &[TablePlan]) -> Result<()> {
        use futures::TryStreamExt;
        for plan in tables {
            let dir = self.store.path(&plan.topic);
            let mut listing = self.store.objects.list(Some(&dir));
            while let Some(meta) = listing
                .try_next()
                .await
                .map_err(|e| log::store_error(&format!("listing {dir}"), e))?
            {
                let name = meta.location.as_ref();
                let data = name.ends_with(".parquet")
                    && !name.contains("/_staging/")
                    && !name.contains("/_delta_log/");
                if data {
                    return Err(Error::Config(format!(
                        "lake table {} (for {}) already holds data written by an earlier run \
                         of this project, but there is no checkpoint for it (a reset, or a new \
                         state dir): move or delete the table, or write to a new path, before \
                         syncing it again",
                        plan.topic,
                        plan.qualified()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Upsert tables are kept by key: each table must have one, sent in full (COLUMNS).
    pub fn refuse_keyless_tables(&self, tables: &[TablePlan]) -> Result<()> {
        for plan in tables {
            self.key_of(plan)?;
        }
        Ok(())
    }

    /// The key columns an upsert table is kept by (none for a changelog).
    fn key_of(&self, plan: &TablePlan) -> Result<Vec<String>> {
        if !self.upsert {
            return Ok(Vec::new());
        }
        if plan.key_kind == crate::plan::KeyKind::None || plan.key.is_empty() {
            return Err(Error::Config(format!(
                "table {} has no primary key (nor a unique key of NOT NULL columns), which                  mode 'upsert' keeps rows by; give it one, or sync it with mode = 'changelog'",
                plan.qualified()
            )));
        }
        plan.key
            .iter()
            .map(|&k| {
                let name = plan.schema.field(k).name();
                if plan.projection.contains(&k) {
                    Ok(name.clone())
                } else {
                    Err(Error::Config(format!(
                        "table {}: COLUMNS leaves out key column `{name}`, which mode 'upsert'                          keeps rows by; add it to COLUMNS",
                        plan.qualified()
                    )))
                }
            })
            .collect()
    }

    /// Creates the Delta tables of `tables` that do not exist yet (schema sync); plain Parquet
    /// tables appear with their first file.
    pub async fn ensure_tables(&self, tables: &[TablePlan]) -> Result<()> {
        if self.kind != SinkKind::Delta {
            return Ok(());
        }
        for plan in tables {
            let schema = changelog::lake_schema(plan, self.kind)?;
            self.delta_table(&plan.topic)
                .ensure(&self.store, &schema)
                .await?;
        }
        Ok(())
    }

    fn delta_table(&self, relative: &str) -> Arc<delta::Table> {
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            tables
                .entry(relative.to_string())
                .or_insert_with(|| Arc::new(delta::Table::new(&self.store, relative))),
        )
    }

    /// The schema `table` is written with from now on, grown to take `schema` (new columns at
    /// the end). A column whose type changed cannot be held: the run stops rather than write
    /// values the table would misread.
    fn evolve(&self, table: &str, schema: &SchemaRef) -> Result<SchemaRef> {
        let mut schemas = self.schemas.lock().unwrap_or_else(|e| e.into_inner());
        let Some(current) = schemas.get(table) else {
            schemas.insert(table.to_string(), Arc::clone(schema));
            return Ok(Arc::clone(schema));
        };
        if current == schema {
            return Ok(Arc::clone(current));
        }
        let mut fields: Vec<Field> = current
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        let mut grown = false;
        for field in schema.fields() {
            match current.field_with_name(field.name()) {
                Ok(existing) if existing.data_type() == field.data_type() => {}
                Ok(existing) => {
                    return Err(Error::Definite(format!(
                        "lake table {table}: column `{}` changed type from {} to {}, which the \
                         table cannot hold; write the table to a new path (change its TO TABLE) \
                         and snapshot it again (`tributary snapshot`), or reset the project",
                        field.name(),
                        existing.data_type(),
                        field.data_type()
                    )));
                }
                Err(_) => {
                    // At the end, after the change columns: earlier files keep their layout.
                    fields.push(field.as_ref().clone());
                    grown = true;
                }
            }
        }
        if !grown {
            return Ok(Arc::clone(current));
        }
        let evolved = Arc::new(Schema::new(fields));
        tracing::info!(table, "the lake table's schema grows by the new columns");
        schemas.insert(table.to_string(), Arc::clone(&evolved));
        Ok(evolved)
    }

    /// Makes a committed record's files visible to readers (again, harmlessly, on a rerun).
    async fn publish(&self, record: &Record) -> Result<()> {
        let mut by_table: Vec<(&str, Vec<&DataFile>)> = Vec::new();
        for file in &record.files {
            match by_table.iter_mut().find(|(t, _)| *t == file.table) {
                Some((_, files)) => files.push(file),
                None => by_table.push((&file.table, vec![file])),
            }
        }
        for (table, files) in by_table {
            match self.kind {
                SinkKind::Delta => {
                    let app_id = format!("tributary-{}-{}-{}", self.project, self.run, record.role);
                    let key = &files[0].key;
                    let upsert = (!key.is_empty()).then(|| delta::Upsert {
                        key,
                        merge: record.role == STREAM_ROLE,
                        file_bytes: self.file_bytes,
                        name: format!("part-{}-{}-{:06}-m", self.run, record.role, record.number),
                    });
                    self.delta_table(table)
                        .commit(&self.store, &app_id, record.number, &files, upsert.as_ref())
                        .await?;
                }
                _ => {
                    for file in files {
                        self.rename_into_place(table, file).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Plain Parquet: a staged file renamed to where readers look.
    async fn rename_into_place(&self, table: &str, file: &DataFile) -> Result<()> {
        let from = self.store.path(&format!("{table}/{}", file.written));
        let to = self.store.path(&format!("{table}/{}", file.published));
        match self.store.objects.rename(&from, &to).await {
            Ok(()) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => {
                // Published by an earlier attempt, or lost: only the first is fine.
                match self.store.objects.head(&to).await {
                    Ok(_) => Ok(()),
                    Err(e) => Err(Error::Definite(format!(
                        "lake table {table}: the committed file {} is neither staged nor \
                         published ({e}); something removed it — reset the project and sync \
                         again",
                        file.published
                    ))),
                }
            }
            Err(e) => Err(log::store_error(&format!("publishing {to}"), e)),
        }
    }
}

/// One producing task's writer: its open files, and the acknowledgement groups waiting for
/// the next commit.
pub struct LakeWriter {
    lake: Arc<Lake>,
    role: String,
    /// The number of this role's next commit record.
    number: u64,
    open: Vec<OpenFile>,
    closed: Vec<DataFile>,
    /// Rows written per group, settled when they are committed.
    groups: Vec<(Arc<Acks>, u64)>,
    /// Progress made by what the open files hold, committed with them (full-sync chunks wait
    /// for their file to fill).
    stash: Vec<Progress>,
    /// The last `_seq` given out.
    seq: i64,
    /// Upsert tables written to, with their key columns.
    keys: HashMap<String, Vec<String>>,
    /// Files begun, for unique names.
    files: u64,
}

impl LakeWriter {
    pub fn new(lake: &Arc<Lake>, role: &str, number: u64) -> LakeWriter {
        LakeWriter {
            lake: Arc::clone(lake),
            role: role.to_string(),
            number,
            open: Vec::new(),
            closed: Vec::new(),
            groups: Vec::new(),
            stash: Vec::new(),
            seq: 0,
            keys: HashMap::new(),
            files: 0,
        }
    }

    pub fn commit_interval(&self) -> Duration {
        self.lake.commit_interval
    }

    /// Change rows continue the `_seq` of earlier runs from `last`.
    pub fn continue_sequence(&mut self, last: u64) {
        self.seq = self.seq.max(last as i64);
    }

    /// Snapshot rows (already filtered); returns the bytes they took in the file.
    pub async fn snapshot(
        &mut self,
        plan: &TablePlan,
        batch: &RecordBatch,
        acks: &Arc<Acks>,
    ) -> Result<u64> {
        if batch.num_rows() == 0 {
            return Ok(0);
        }
        self.key_table(plan)?;
        let schema = changelog::lake_schema(plan, self.lake.kind)?;
        // The stream's writer takes online snapshots: their rows are ordered among its changes.
        let seq = (self.role == STREAM_ROLE).then_some(&mut self.seq);
        let rows = changelog::snapshot_rows(plan, &schema, batch, seq)?;
        self.write(&plan.topic, &rows, acks).await
    }

    /// The records `emits` chose from a batch of row changes; returns the rows and bytes
    /// written.
    pub async fn changes(
        &mut self,
        plan: &TablePlan,
        images: &ChangeImages<'_>,
        emits: &[Emit],
        meta: &ChangeMeta,
        acks: &Arc<Acks>,
    ) -> Result<(usize, u64)> {
        self.key_table(plan)?;
        let schema = changelog::lake_schema(plan, self.lake.kind)?;
        // An upsert table's merge deletes the key an UPDATE moved away from.
        let rows = changelog::change_rows(
            plan,
            &schema,
            images,
            emits,
            self.lake.before_images || self.lake.upsert,
            meta,
            &mut self.seq,
        )?;
        let count = rows.num_rows();
        let bytes = self.write(&plan.topic, &rows, acks).await?;
        Ok((count, bytes))
    }

    /// A DDL statement, as a row of the sink's `_ddl` table.
    pub async fn ddl(
        &mut self,
        plan: &TablePlan,
        statement: &str,
        meta: &ChangeMeta,
        acks: &Arc<Acks>,
    ) -> Result<()> {
        if self.lake.upsert && is_truncate(statement) {
            self.key_table(plan)?;
            let schema = changelog::lake_schema(plan, self.lake.kind)?;
            let row = changelog::truncate_row(plan, &schema, meta, &mut self.seq)?;
            self.write(&plan.topic, &row, acks).await?;
        }
        self.seq += 1;
        let batch = ddl_row(plan, statement, meta, self.seq)?;
        self.write(DDL_TABLE, &batch, acks).await?;
        Ok(())
    }

    /// Notes the key an upsert table's rows are merged by.
    fn key_table(&mut self, plan: &TablePlan) -> Result<()> {
        if self.lake.upsert && !self.keys.contains_key(&plan.topic) {
            let key = self.lake.key_of(plan)?;
            self.keys.insert(plan.topic.clone(), key);
        }
        Ok(())
    }

    /// Appends `rows` to `table`'s open file (opening one, or a new one when the table's
    /// schema grew); a file that reached its target size is closed.
    async fn write(&mut self, table: &str, rows: &RecordBatch, acks: &Arc<Acks>) -> Result<u64> {
        let schema = self.lake.evolve(table, &rows.schema())?;
        let rows = conform(table, rows, &schema)?;
        // Apart from the match: a scrutinee's borrow would live across its awaits.
        let open = self.open.iter().position(|f| f.table == table);
        let index = match open {
            Some(i) if self.open[i].schema == schema => i,
            Some(i) => {
                let stale = self.open.swap_remove(i);
                self.close(stale).await?;
                self.open_file(table, &schema)?
            }
            None => self.open_file(table, &schema)?,
        };
        let file = &mut self.open[index];
        let before = file.bytes();
        file.write(&rows).await?;
        let bytes = file.bytes().saturating_sub(before);
        let count = rows.num_rows() as u64;
        acks.expect(count);
        match self.groups.last_mut() {
            Some((last, n)) if Arc::ptr_eq(last, acks) => *n += count,
            _ => self.groups.push((Arc::clone(acks), count)),
        }
        if self.open[index].bytes() >= self.lake.file_bytes {
            let full = self.open.swap_remove(index);
            self.close(full).await?;
        }
        Ok(bytes)
    }

    fn open_file(&mut self, table: &str, schema: &SchemaRef) -> Result<usize> {
        self.files += 1;
        let name = format!(
            "part-{}-{}-{:06}-{:04}.parquet",
            self.lake.run, self.role, self.number, self.files
        );
        let written = match self.lake.kind {
            SinkKind::Delta => name.clone(),
            // Readers of plain Parquet list the table's directory: a file is staged apart
            // until its commit.
            _ => format!("_staging/{name}"),
        };
        let file = OpenFile::create(&self.lake.store, table, written, name, Arc::clone(schema))?;
        self.open.push(file);
        Ok(self.open.len() - 1)
    }

    async fn close(&mut self, file: OpenFile) -> Result<()> {
        let key = self.keys.get(&file.table).cloned().unwrap_or_default();
        let table = file.table.clone();
        let written = file.written.clone();
        let published = file.published.clone();
        let schema = match self.lake.kind {
            SinkKind::Delta => Some(delta::schema_string(&file.schema, &table)?),
            _ => None,
        };
        let closed = file.close().await?;
        self.closed.push(DataFile {
            table,
            written,
            published,
            size: closed.size,
            rows: closed.rows,
            schema,
            key,
        });
        Ok(())
    }

    /// Full sync: `progress` (a chunk) is kept with the rows the open files hold, and
    /// committed once a file reached its target size (or too many files are open): files of
    /// `file_size_mb` rather than one per chunk.
    pub async fn commit_when_full(&mut self, progress: &[Progress]) -> Result<()> {
        self.stash.extend_from_slice(progress);
        if self.lake.upsert {
            // A row group per chunk: narrow key statistics let the stream's merges pass it by.
            for file in &mut self.open {
                file.flush().await?;
            }
        }
        if self.holds_enough() {
            self.commit(&[]).await?;
        }
        Ok(())
    }

    /// A file reached its target size, or files of more than [`MAX_OPEN_FILES`] tables are
    /// open: memory stays at a row group per open file.
    pub fn holds_enough(&self) -> bool {
        !self.closed.is_empty() || self.open.len() > MAX_OPEN_FILES
    }

    /// Commits everything written since the last commit, with `progress` (and what was kept
    /// by [`LakeWriter::commit_when_full`]): closes the open files, writes the commit record,
    /// publishes the files and settles the groups.
    pub async fn commit(&mut self, progress: &[Progress]) -> Result<()> {
        for file in std::mem::take(&mut self.open) {
            self.close(file).await?;
        }
        let mut progress_made = std::mem::take(&mut self.stash);
        progress_made.extend_from_slice(progress);
        if !self.closed.is_empty() || !progress_made.is_empty() {
            let record = Record {
                role: self.role.clone(),
                number: self.number,
                progress: progress_made,
                files: std::mem::take(&mut self.closed),
            };
            let lake = &self.lake;
            log::write(&lake.store, &lake.project, &lake.run, &record).await?;
            self.number += 1;
            lake.publish(&record).await?;
        }
        for (acks, rows) in self.groups.drain(..) {
            acks.settle(rows, None);
        }
        Ok(())
    }

    /// Drops what was written since the last commit: it is never published, and its groups
    /// fail (their rows are read again).
    pub fn abort(&mut self) {
        self.open.clear();
        self.closed.clear();
        self.stash.clear();
        for (acks, rows) in self.groups.drain(..) {
            acks.settle(rows, Some("the lake commit was aborted".to_string()));
        }
    }
}

/// Whether a DDL statement is a TRUNCATE (an upsert table empties; a changelog records it).
fn is_truncate(statement: &str) -> bool {
    let mut rest = statement.trim_start();
    // Leading comments, as a client may send them.
    loop {
        if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else if rest.starts_with("--") || rest.starts_with('#') {
            rest = rest.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    match (rest.get(..8), rest.get(8..)) {
        (Some(word), Some(after)) => {
            word.eq_ignore_ascii_case("truncate") && after.starts_with(char::is_whitespace)
        }
        _ => false,
    }
}

/// `rows` in the column order of `schema`, which holds every column of `rows` (and maybe
/// more: columns a DDL dropped, written as nulls).
pub(super) fn conform(table: &str, rows: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if rows.schema() == *schema {
        return Ok(rows.clone());
    }
    let columns = schema
        .fields()
        .iter()
        .map(|field| match rows.schema().index_of(field.name()) {
            Ok(i) => Arc::clone(rows.column(i)),
            Err(_) => arrow::array::new_null_array(field.data_type(), rows.num_rows()),
        })
        .collect();
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| {
        Error::Definite(format!(
            "lake table {table}: cannot fit the rows to the table's schema ({e})"
        ))
    })
}

/// The `_ddl` table's row for a statement.
fn ddl_row(plan: &TablePlan, statement: &str, meta: &ChangeMeta, seq: i64) -> Result<RecordBatch> {
    use arrow::array::{Int64Array, TimestampMicrosecondArray};
    let utc = Some("UTC".into());
    let schema = Arc::new(Schema::new(vec![
        Field::new("database", DataType::Utf8, false),
        Field::new("table", DataType::Utf8, false),
        Field::new("statement", DataType::Utf8, false),
        Field::new(
            changelog::COMMIT_TS,
            DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, utc),
            true,
        ),
        Field::new(changelog::POSITION, DataType::Utf8, true),
        Field::new(changelog::SEQ, DataType::Int64, false),
    ]));
    let columns: Vec<Arc<dyn Array>> = vec![
        Arc::new(StringArray::from(vec![plan.database.as_str()])),
        Arc::new(StringArray::from(vec![plan.table.as_str()])),
        Arc::new(StringArray::from(vec![statement])),
        Arc::new(
            TimestampMicrosecondArray::from(vec![i64::from(meta.timestamp) * 1_000_000])
                .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from(vec![meta.position.as_str()])),
        Arc::new(Int64Array::from(vec![seq])),
    ];
    RecordBatch::try_new(schema, columns)
        .map_err(|e| Error::Definite(format!("the _ddl row for {}: {e}", plan.qualified())))
}

/// `tributary check` for a lake sink: the store opens, and a probe object can be written, read
/// and deleted where the tables go.
pub async fn check(sink: &crate::project::SinkDef) -> Vec<crate::check::CheckItem> {
    use crate::check::CheckItem;
    let what = format!("sink {}", sink.name.value);
    let store = match Store::open(sink) {
        Ok(store) => store,
        Err(e) => return vec![CheckItem::fail(format!("{what}: settings"), e.to_string())],
    };
    let probe = store.path("_tributary/check-probe");
    let attempt = async {
        store
            .objects
            .put(&probe, object_store::PutPayload::from_static(b"tributary"))
            .await?;
        store.objects.get(&probe).await?.bytes().await?;
        store.objects.delete(&probe).await
    };
    match attempt.await {
        Ok(()) => vec![CheckItem::pass(
            format!("{what}: storage"),
            format!("{} tables can be written at {}", sink.kind, store.url),
        )],
        Err(e) => vec![CheckItem::fail(
            format!("{what}: storage"),
            format!(
                "cannot write at {}: {e}; check `path` and the 's3.*' properties",
                store.url
            ),
        )],
    }
}

/// Overlays the progress the lake's commit records hold on the local checkpoint.
pub fn overlay(checkpoint: &mut Checkpoint, progress: Vec<Progress>) {
    for record in progress {
        checkpoint.record(record);
    }
}
