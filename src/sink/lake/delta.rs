//! Delta Lake tables through delta-rs (its log protocol, without its query engine): created on
//! first use, appended to with `add` actions, their schema grown by a `metaData` action in the
//! same commit, and each commit carrying the writer's transaction id `(app id, record number)`
//! so that publishing a record twice adds its files once.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use deltalake_core::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake_core::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake_core::kernel::{
    Action, Add, MetadataExt, Remove, StructField, StructType, Transaction,
};
use deltalake_core::logstore::{LogStoreFactory, logstore_factories};
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use url::Url;

use super::log::DataFile;
use super::merge;
use super::store::Store;
use crate::error::{Error, Result};

/// One Delta table: loaded once, committed to one commit at a time (the writers of a run
/// share it; delta-rs would otherwise retry the conflicts among them).
pub struct Table {
    relative: String,
    url: Url,
    state: tokio::sync::Mutex<Option<DeltaTable>>,
    /// Upsert tables: the key statistics of the data files read so far (files never change).
    ranges: std::sync::Mutex<HashMap<String, Arc<merge::Ranges>>>,
}

/// How an upsert table's commit merges its files.
pub struct Upsert<'a> {
    pub key: &'a [String],
    /// The rows of the commit are the changes to merge (the stream's); otherwise they are
    /// snapshot rows of keys no other commit writes (full-sync chunks), appended as they are.
    pub merge: bool,
    /// The target size of the files a merge writes.
    pub file_bytes: u64,
    /// The merged files' names begin with this (the same on a retry of the commit).
    pub name: String,
}

impl Table {
    pub fn new(store: &Store, relative: &str) -> Table {
        Table {
            relative: relative.to_string(),
            url: store.url_of(relative),
            state: tokio::sync::Mutex::new(None),
            ranges: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The table, created with `schema` when it does not exist.
    pub async fn ensure(&self, store: &Store, schema: &SchemaRef) -> Result<()> {
        let mut state = self.state.lock().await;
        self.load(&mut state, store, Some(schema)).await?;
        Ok(())
    }

    async fn load<'a>(
        &self,
        state: &'a mut Option<DeltaTable>,
        store: &Store,
        create_with: Option<&SchemaRef>,
    ) -> Result<&'a mut DeltaTable> {
        if state.is_none() {
            register_s3();
            // delta-rs wants a local table's directory to exist, even to find no table there.
            if let Ok(dir) = self.url.to_file_path() {
                std::fs::create_dir_all(&dir)
                    .map_err(|e| self.error("creating the directory of", e))?;
            }
            let mut table = DeltaTableBuilder::from_url(self.url.clone())
                .map_err(|e| self.error("opening", e))?
                .with_storage_backend(Arc::clone(&store.objects), self.url.clone())
                .build()
                .map_err(|e| self.error("opening", e))?;
            match table.load().await {
                Ok(()) => {}
                Err(DeltaTableError::NotATable(_)) => {
                    let Some(schema) = create_with else {
                        return Err(Error::Definite(format!(
                            "lake table {}: no Delta table at {}",
                            self.relative, self.url
                        )));
                    };
                    let columns = struct_type(schema, &self.relative)?;
                    table = deltalake_core::operations::create::CreateBuilder::new()
                        .with_log_store(table.log_store())
                        .with_table_name(self.relative.replace('/', "."))
                        .with_columns(columns.fields().cloned())
                        .with_save_mode(SaveMode::Ignore)
                        .await
                        .map_err(|e| self.error("creating", e))?;
                    tracing::info!(table = %self.relative, url = %self.url, "Delta table created");
                }
                Err(e) => return Err(self.error("loading", e)),
            }
            *state = Some(table);
        }
        Ok(state.as_mut().expect("loaded above"))
    }

    /// Adds `files` in one commit identified by `(app_id, number)`, unless the table already
    /// holds that commit. A file with columns the table lacks grows the table's schema first.
    /// An upsert table's changes are merged into the files instead ([`merge`]).
    pub async fn commit(
        &self,
        store: &Store,
        app_id: &str,
        number: u64,
        files: &[&DataFile],
        upsert: Option<&Upsert<'_>>,
    ) -> Result<()> {
        let mut state = self.state.lock().await;
        let first_schema = files
            .iter()
            .find_map(|f| f.schema.as_deref())
            .map(parse_schema)
            .transpose()
            .map_err(|e| self.error("reading a commit's schema", e))?;
        let create_with = first_schema
            .as_ref()
            .map(|s| -> std::result::Result<SchemaRef, DeltaTableError> {
                use deltalake_core::kernel::engine::arrow_conversion::TryIntoArrow;
                let arrow: arrow::datatypes::Schema = s.try_into_arrow()?;
                Ok(Arc::new(arrow))
            })
            .transpose()
            .map_err(|e| self.error("reading a commit's schema", e))?;
        let table = self.load(&mut state, store, create_with.as_ref()).await?;
        let snapshot = table.snapshot().map_err(|e| self.error("reading", e))?;
        let log_store = table.log_store();
        let done = snapshot
            .transaction_version(log_store.as_ref(), app_id)
            .await
            .map_err(|e| self.error("reading", e))?;
        if done.is_some_and(|v| v >= number as i64) {
            return Ok(());
        }
        let mut actions: Vec<Action> = Vec::with_capacity(files.len() + 1);
        let current = snapshot.schema();
        let mut fields: Vec<StructField> = current.fields().cloned().collect();
        let mut grown = false;
        for schema in files.iter().filter_map(|f| f.schema.as_deref()) {
            let schema = parse_schema(schema).map_err(|e| self.error("reading a schema", e))?;
            for field in schema.fields() {
                match fields.iter().find(|f| f.name() == field.name()) {
                    Some(existing) if existing.data_type() == field.data_type() => {}
                    Some(existing) => {
                        return Err(Error::Definite(format!(
                            "lake table {}: column `{}` is {:?} in the Delta table but {:?} in \
                             the rows; write the table to a new path and snapshot it again",
                            self.relative,
                            field.name(),
                            existing.data_type(),
                            field.data_type()
                        )));
                    }
                    None => {
                        fields.push(field.clone());
                        grown = true;
                    }
                }
            }
        }
        let schema = StructType::try_new(fields).map_err(|e| self.error("growing", e))?;
        if grown {
            let metadata = MetadataExt::with_schema(snapshot.metadata().clone(), &schema)
                .map_err(|e| self.error("growing", e))?;
            actions.push(Action::Metadata(metadata));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let add = |path: &str, size: u64, rows: u64| {
            Action::Add(Add {
                path: path.to_string(),
                size: size as i64,
                partition_values: HashMap::new(),
                modification_time: now,
                data_change: true,
                stats: Some(format!("{{\"numRecords\":{rows}}}")),
                ..Default::default()
            })
        };
        let mut merged = Vec::new();
        match upsert {
            Some(upsert) if upsert.merge => {
                use deltalake_core::kernel::engine::arrow_conversion::TryIntoArrow;
                let arrow: arrow::datatypes::Schema = (&schema)
                    .try_into_arrow()
                    .map_err(|e| self.error("reading the schema of", e))?;
                let existing: Vec<(String, u64)> = snapshot
                    .log_data()
                    .iter()
                    .map(|f| (f.path().to_string(), f.size().max(0) as u64))
                    .collect();
                let (removed, written) = self
                    .merge(store, Arc::new(arrow), upsert, files, &existing)
                    .await?;
                for (path, size) in removed {
                    actions.push(Action::Remove(Remove {
                        path,
                        data_change: true,
                        deletion_timestamp: Some(now),
                        extended_file_metadata: Some(false),
                        size: Some(size as i64),
                        ..Default::default()
                    }));
                }
                for file in written {
                    actions.push(add(&file.path, file.size, file.rows));
                    merged.push((file.path, Arc::new(file.ranges)));
                }
            }
            _ => actions.extend(files.iter().map(|f| add(&f.published, f.size, f.rows))),
        }
        let properties = CommitProperties::default()
            .with_application_transaction(Transaction::new(app_id, number as i64));
        let operation = match upsert {
            Some(upsert) if upsert.merge => DeltaOperation::Update { predicate: None },
            _ => DeltaOperation::Write {
                mode: SaveMode::Append,
                partition_by: None,
                predicate: None,
            },
        };
        let committed = CommitBuilder::from(properties)
            .with_actions(actions)
            .build(Some(snapshot), log_store, operation)
            .await
            .map_err(|e| self.error("committing to", e))?;
        table.state = Some(committed.snapshot());
        // Known only once committed: a failed commit's files are written again on its retry.
        self.ranges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(merged);
        if upsert.is_some_and(|u| u.merge) {
            use object_store::ObjectStoreExt;
            // The merged changes: no reader or rerun needs them once committed.
            for file in files {
                let location = store.path(&format!("{}/{}", self.relative, file.written));
                if let Err(e) = store.objects.delete(&location).await {
                    tracing::debug!(error = %e, %location, "could not delete merged changes");
                }
            }
        }
        Ok(())
    }

    /// Merges the changes `files` hold into the table's `existing` files: the files that may
    /// hold a changed key are read and written again without those keys, followed by the keys'
    /// new rows. Returns the files removed and the files written.
    async fn merge(
        &self,
        store: &Store,
        schema: SchemaRef,
        upsert: &Upsert<'_>,
        files: &[&DataFile],
        existing: &[(String, u64)],
    ) -> Result<(Vec<(String, u64)>, Vec<merge::Written>)> {
        let table = self.relative.as_str();
        let mut batches = Vec::new();
        for file in files {
            let location = store.path(&format!("{table}/{}", file.written));
            merge::read_file(store, location, file.size, |batch| {
                batches.push(super::conform(table, &batch, &schema)?);
                Ok(())
            })
            .await?;
        }
        let all = arrow::compute::concat_batches(&schema, &batches)
            .map_err(|e| self.error("merging into", e))?;
        drop(batches);
        let changes = merge::reduce(table, &all, upsert.key)?;
        drop(all);
        let mut removed = Vec::new();
        for (path, size) in existing {
            if changes.truncated
                || self
                    .ranges_of(store, path, *size, upsert.key)
                    .await?
                    .may_hold(&changes.keys)?
            {
                removed.push((path.clone(), *size));
            }
        }
        let mut rewrite = merge::Rewrite::new(
            store,
            table,
            Arc::clone(&schema),
            upsert.key,
            upsert.name.clone(),
            upsert.file_bytes,
        );
        if !changes.truncated {
            for (path, size) in &removed {
                let location = store.path(&format!("{table}/{path}"));
                let mut kept = Vec::new();
                merge::read_file(store, location, *size, |batch| {
                    let batch = super::conform(table, &batch, &schema)?;
                    kept.push(changes.unchanged(table, &batch, upsert.key)?);
                    Ok(())
                })
                .await?;
                for batch in &kept {
                    rewrite.write(batch).await?;
                }
                rewrite.end_group().await?;
            }
        }
        rewrite.write(&changes.rows).await?;
        let written = rewrite.finish().await?;
        let mut ranges = self.ranges.lock().unwrap_or_else(|e| e.into_inner());
        for (path, _) in &removed {
            ranges.remove(path);
        }
        Ok((removed, written))
    }

    /// The key statistics of one of the table's files (its footer, read once).
    async fn ranges_of(
        &self,
        store: &Store,
        path: &str,
        size: u64,
        key: &[String],
    ) -> Result<Arc<merge::Ranges>> {
        let known = self
            .ranges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
            .cloned();
        if let Some(ranges) = known {
            return Ok(ranges);
        }
        let location = store.path(&format!("{}/{path}", self.relative));
        let ranges = Arc::new(merge::read_ranges(store, location, size, key).await?);
        self.ranges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_string(), Arc::clone(&ranges));
        Ok(ranges)
    }

    fn error(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::Sink(format!(
            "lake table {}: {what} the Delta table at {}: {e}",
            self.relative, self.url
        ))
    }
}

/// A Delta schema (its JSON), for a commit record.
pub fn schema_string(schema: &SchemaRef, table: &str) -> Result<String> {
    let kernel = struct_type(schema, table)?;
    serde_json::to_string(&kernel)
        .map_err(|e| Error::Definite(format!("lake table {table}: the Delta schema: {e}")))
}

fn parse_schema(text: &str) -> std::result::Result<StructType, DeltaTableError> {
    Ok(serde_json::from_str(text)?)
}

fn struct_type(schema: &SchemaRef, table: &str) -> Result<StructType> {
    schema.as_ref().try_into_kernel().map_err(|e| {
        Error::Definite(format!(
            "lake table {table}: a column has a type Delta Lake cannot hold ({e})"
        ))
    })
}

/// delta-rs knows `file://` by itself; `s3://` tables go through the store tributary builds,
/// with delta-rs's default log store (commits by put-if-absent), instead of its AWS crate
/// (an AWS SDK and a DynamoDB lock the sink does not need: one run writes each table, and
/// commits to a table are serialized within it).
fn register_s3() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(scheme) = Url::parse("s3://") {
            let factory: Arc<dyn LogStoreFactory> = Arc::new(S3LogStores);
            logstore_factories().insert(scheme, factory);
        }
    });
}

struct S3LogStores;

impl LogStoreFactory for S3LogStores {
    fn with_options(
        &self,
        prefixed_store: deltalake_core::logstore::ObjectStoreRef,
        root_store: deltalake_core::logstore::ObjectStoreRef,
        location: &Url,
        options: &deltalake_core::logstore::StorageConfig,
    ) -> deltalake_core::DeltaResult<Arc<dyn deltalake_core::logstore::LogStore>> {
        Ok(deltalake_core::logstore::default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}
