//! `mode = 'upsert'`: a Delta table that holds each key's current row, kept by copy-on-write.
//!
//! The stream's writer stages its changes as changelog files, with the before image of every
//! update (so a key an UPDATE moved away from is deleted). Publishing a commit then merges them
//! into the table: the changes are reduced to each key's last one ([`reduce`]); the table's
//! files that may hold a changed key — by their row groups' key statistics ([`Ranges`]) — are
//! read, their other rows written again with the changed keys' new rows, and one Delta commit
//! removes the old files and adds the new ones. Full-sync chunks append instead: their keys are
//! disjoint, and a first run starts from an empty table.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, Scalar, StringArray, UInt32Array};
use arrow::compute::kernels::cmp::{gt_eq, lt_eq};
use arrow::compute::{and, filter_record_batch, sort_to_indices, take, take_record_batch};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::row::{RowConverter, SortField};
use futures::TryStreamExt;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};

use super::changelog::{OP, Op, SEQ, TRUNCATE};
use super::file::OpenFile;
use super::store::Store;
use crate::error::{Error, Result};

/// The key statistics of a data file: per row group, each key column's (min, max), or `None`
/// where the file does not say (such a row group may hold any key).
pub struct Ranges(Vec<Option<Vec<(ArrayRef, ArrayRef)>>>);

impl Ranges {
    pub fn from_metadata(metadata: &ParquetMetaData, schema: &Schema, key: &[String]) -> Ranges {
        let groups = metadata.row_groups();
        let mut columns = Vec::with_capacity(key.len());
        for name in key {
            let converter =
                StatisticsConverter::try_new(name, schema, metadata.file_metadata().schema_descr());
            let bounds = converter.and_then(|c| {
                Ok((
                    c.row_group_mins(groups.iter())?,
                    c.row_group_maxes(groups.iter())?,
                ))
            });
            match bounds {
                Ok(bounds) => columns.push(bounds),
                // A file without the column's statistics may hold any key.
                Err(_) => return Ranges(vec![None]),
            }
        }
        let ranges = (0..groups.len())
            .map(|g| {
                columns
                    .iter()
                    .map(|(mins, maxes)| {
                        (mins.is_valid(g) && maxes.is_valid(g))
                            .then(|| (mins.slice(g, 1), maxes.slice(g, 1)))
                    })
                    .collect::<Option<Vec<_>>>()
            })
            .collect();
        Ranges(ranges)
    }

    /// Whether some row of `keys` (the key columns, in key order) may be in the file.
    pub fn may_hold(&self, keys: &[ArrayRef]) -> Result<bool> {
        let rows = keys.first().map_or(0, |k| k.len());
        if rows == 0 {
            return Ok(false);
        }
        for group in &self.0 {
            let Some(bounds) = group else {
                return Ok(true);
            };
            let mut inside: Option<BooleanArray> = None;
            for (column, (min, max)) in keys.iter().zip(bounds) {
                let within = and(
                    &gt_eq(column, &Scalar::new(Arc::clone(min))).map_err(stat_error)?,
                    &lt_eq(column, &Scalar::new(Arc::clone(max))).map_err(stat_error)?,
                )
                .map_err(stat_error)?;
                inside = Some(match inside {
                    None => within,
                    Some(so_far) => and(&so_far, &within).map_err(stat_error)?,
                });
            }
            if inside.is_some_and(|m| m.true_count() > 0) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

fn stat_error(e: arrow::error::ArrowError) -> Error {
    Error::Definite(format!(
        "comparing changed keys with a data file's key statistics: {e}"
    ))
}

/// A data file's key statistics, from its footer.
pub async fn read_ranges(
    store: &Store,
    location: object_store::path::Path,
    size: u64,
    key: &[String],
) -> Result<Ranges> {
    let mut reader = StoreReader::new(store, &location, size);
    let metadata = ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new())
        .await
        .map_err(|e| Error::Sink(format!("reading the footer of {location}: {e}")))?;
    Ok(Ranges::from_metadata(
        metadata.metadata(),
        metadata.schema(),
        key,
    ))
}

/// Every row of a data file, batch by batch.
pub async fn read_file(
    store: &Store,
    location: object_store::path::Path,
    size: u64,
    mut each: impl FnMut(RecordBatch) -> Result<()>,
) -> Result<()> {
    let failed = |e: parquet::errors::ParquetError| {
        Error::Sink(format!("reading the lake data file {location}: {e}"))
    };
    let reader = StoreReader::new(store, &location, size);
    let mut batches = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(failed)?
        .build()
        .map_err(failed)?;
    while let Some(batch) = batches.try_next().await.map_err(failed)? {
        each(batch)?;
    }
    Ok(())
}

/// A data file in the sink's store, read as the Parquet reader asks (its footer, then its
/// column chunks), with the size the Delta log gives.
struct StoreReader {
    objects: Arc<dyn object_store::ObjectStore>,
    location: object_store::path::Path,
    size: u64,
}

impl StoreReader {
    fn new(store: &Store, location: &object_store::path::Path, size: u64) -> StoreReader {
        StoreReader {
            objects: Arc::clone(&store.objects),
            location: location.clone(),
            size,
        }
    }
}

fn store_read_error(e: object_store::Error) -> parquet::errors::ParquetError {
    parquet::errors::ParquetError::External(Box::new(e))
}

impl AsyncFileReader for StoreReader {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> futures::future::BoxFuture<'_, parquet::errors::Result<bytes::Bytes>> {
        use futures::FutureExt;
        use object_store::ObjectStoreExt;
        async move {
            self.objects
                .get_range(&self.location, range)
                .await
                .map_err(store_read_error)
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> futures::future::BoxFuture<'_, parquet::errors::Result<Vec<bytes::Bytes>>> {
        use futures::FutureExt;
        async move {
            self.objects
                .get_ranges(&self.location, &ranges)
                .await
                .map_err(store_read_error)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> futures::future::BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        use futures::FutureExt;
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// A commit's changes to an upsert table, reduced to each key's last.
pub struct Changes {
    /// Every changed key (the key columns), once.
    pub keys: Vec<ArrayRef>,
    /// The rows of the changed keys that exist after the commit, in key order.
    pub rows: RecordBatch,
    /// A TRUNCATE came before them: no earlier row of the table survives.
    pub truncated: bool,
    converter: RowConverter,
    changed: HashSet<Box<[u8]>>,
}

/// Reduces changelog rows (of the table's schema) to each key's last change.
pub fn reduce(table: &str, changes: &RecordBatch, key: &[String]) -> Result<Changes> {
    let failed = |e: arrow::error::ArrowError| {
        Error::Definite(format!("lake table {table}: merging the changes: {e}"))
    };
    let seq = column(table, changes, SEQ)?;
    let order = sort_to_indices(seq, None, None).map_err(failed)?;
    let mut changes = take_record_batch(changes, &order).map_err(failed)?;
    let ops = column(table, &changes, OP)?
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| Error::Definite(format!("lake table {table}: `{OP}` is not text")))?
        .clone();
    // Only what follows the last TRUNCATE counts.
    let truncated_at = (0..ops.len()).rev().find(|&i| ops.value(i) == TRUNCATE);
    if let Some(at) = truncated_at {
        changes = changes.slice(at + 1, changes.num_rows() - at - 1);
    }
    let ops = ops.slice(truncated_at.map_or(0, |at| at + 1), changes.num_rows());
    let key_columns = key
        .iter()
        .map(|name| column(table, &changes, name).cloned())
        .collect::<Result<Vec<_>>>()?;
    let converter = RowConverter::new(
        key_columns
            .iter()
            .map(|c| SortField::new(c.data_type().clone()))
            .collect(),
    )
    .map_err(failed)?;
    let rows = converter.convert_columns(&key_columns).map_err(failed)?;
    let mut last: HashMap<arrow::row::Row<'_>, usize> = HashMap::with_capacity(rows.num_rows());
    for i in 0..rows.num_rows() {
        last.insert(rows.row(i), i);
    }
    let mut survivors: Vec<(arrow::row::Row<'_>, usize)> = last
        .iter()
        .filter(|&(_, &i)| {
            let op = ops.value(i);
            op != Op::Delete.name() && op != Op::UpdateBefore.name()
        })
        .map(|(row, &i)| (*row, i))
        .collect();
    survivors.sort_unstable();
    let picks = UInt32Array::from_iter_values(survivors.iter().map(|&(_, i)| i as u32));
    let every: UInt32Array = last.values().map(|&i| i as u32).collect();
    let keys = key_columns
        .iter()
        .map(|c| take(c, &every, None).map_err(failed))
        .collect::<Result<Vec<_>>>()?;
    let changed = last.keys().map(|row| row.as_ref().into()).collect();
    Ok(Changes {
        keys,
        rows: take_record_batch(&changes, &picks).map_err(failed)?,
        truncated: truncated_at.is_some(),
        converter,
        changed,
    })
}

impl Changes {
    /// The rows of `batch` whose key did not change.
    pub fn unchanged(
        &self,
        table: &str,
        batch: &RecordBatch,
        key: &[String],
    ) -> Result<RecordBatch> {
        let failed = |e: arrow::error::ArrowError| {
            Error::Definite(format!("lake table {table}: merging the changes: {e}"))
        };
        let key_columns = key
            .iter()
            .map(|name| column(table, batch, name).cloned())
            .collect::<Result<Vec<_>>>()?;
        let rows = self
            .converter
            .convert_columns(&key_columns)
            .map_err(failed)?;
        let keep: BooleanArray = rows
            .iter()
            .map(|row| Some(!self.changed.contains(row.as_ref())))
            .collect();
        filter_record_batch(batch, &keep).map_err(failed)
    }
}

fn column<'a>(table: &str, batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch.column_by_name(name).ok_or_else(|| {
        Error::Definite(format!(
            "lake table {table}: a data file lacks column `{name}`, which the merge needs"
        ))
    })
}

/// The files a merge writes: a new one whenever the last reaches the target size, each with
/// a row group per source file so its key statistics stay narrow.
pub struct Rewrite<'a> {
    store: &'a Store,
    table: &'a str,
    schema: SchemaRef,
    key: &'a [String],
    name: String,
    file_bytes: u64,
    open: Option<OpenFile>,
    written: Vec<Written>,
}

/// A file a merge wrote.
pub struct Written {
    pub path: String,
    pub size: u64,
    pub rows: u64,
    pub ranges: Ranges,
}

impl<'a> Rewrite<'a> {
    /// Files named `<name>-<n>.parquet`: the same names on a retry of the same commit.
    pub fn new(
        store: &'a Store,
        table: &'a str,
        schema: SchemaRef,
        key: &'a [String],
        name: String,
        file_bytes: u64,
    ) -> Rewrite<'a> {
        Rewrite {
            store,
            table,
            schema,
            key,
            name,
            file_bytes,
            open: None,
            written: Vec::new(),
        }
    }

    pub async fn write(&mut self, rows: &RecordBatch) -> Result<()> {
        if rows.num_rows() == 0 {
            return Ok(());
        }
        if self.open.is_none() {
            let path = format!("{}-{:04}.parquet", self.name, self.written.len() + 1);
            let file = OpenFile::create(
                self.store,
                self.table,
                path.clone(),
                path,
                Arc::clone(&self.schema),
            )?;
            self.open = Some(file);
        }
        let file = self.open.as_mut().expect("opened above");
        file.write(rows).await?;
        if file.bytes() >= self.file_bytes {
            self.close().await?;
        }
        Ok(())
    }

    /// Ends the row group: what follows comes from another file, or is the changed rows.
    pub async fn end_group(&mut self) -> Result<()> {
        match &mut self.open {
            Some(file) => file.flush().await,
            None => Ok(()),
        }
    }

    async fn close(&mut self) -> Result<()> {
        if let Some(file) = self.open.take() {
            let path = file.published.clone();
            let closed = file.close().await?;
            self.written.push(Written {
                path,
                size: closed.size,
                rows: closed.rows,
                ranges: Ranges::from_metadata(&closed.metadata, &self.schema, self.key),
            });
        }
        Ok(())
    }

    /// Closes the last file; returns the files written.
    pub async fn finish(mut self) -> Result<Vec<Written>> {
        self.close().await?;
        Ok(self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, Int64Array};
    use arrow::datatypes::{DataType, Field};

    fn changes(rows: &[(i32, &str, i64)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, true),
            Field::new(OP, DataType::Utf8, false),
            Field::new(SEQ, DataType::Int64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
            ],
        )
        .unwrap()
    }

    fn ids(batch: &RecordBatch) -> Vec<i32> {
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int32Array>()
            .unwrap();
        ids.values().to_vec()
    }

    #[test]
    fn each_key_keeps_its_last_change_and_a_moved_key_goes() {
        let key = ["id".to_string()];
        // Out of `_seq` order, as files of one commit may hold them.
        let batch = changes(&[
            (5, "update", 4),
            (1, "insert", 1),
            (2, "delete", 2),
            (3, "update_before", 5),
            (9, "update", 6),
            (5, "update_before", 3),
            (2, "insert", 7),
            (4, "delete", 8),
        ]);
        let reduced = reduce("t", &batch, &key).unwrap();
        assert!(!reduced.truncated);
        // 3 moved to 9: it goes; 4 is deleted; 2 came back; 5 was updated in place.
        assert_eq!(ids(&reduced.rows), vec![1, 2, 5, 9]);
        let mut changed =
            ids(&RecordBatch::try_from_iter([("id", Arc::clone(&reduced.keys[0]))]).unwrap());
        changed.sort_unstable();
        assert_eq!(changed, vec![1, 2, 3, 4, 5, 9]);
        let existing = changes(&[(3, "snapshot", 0), (4, "snapshot", 0), (6, "snapshot", 0)]);
        let kept = reduced.unchanged("t", &existing, &key).unwrap();
        assert_eq!(ids(&kept), vec![6]);
    }

    #[test]
    fn only_what_follows_a_truncate_counts() {
        let batch = changes(&[(1, "insert", 1), (0, TRUNCATE, 2), (2, "insert", 3)]);
        let reduced = reduce("t", &batch, &["id".to_string()]).unwrap();
        assert!(reduced.truncated);
        assert_eq!(ids(&reduced.rows), vec![2]);
    }

    #[test]
    fn row_group_statistics_pass_by_files_without_a_changed_key() {
        let range = |min: i32, max: i32| -> Option<Vec<(ArrayRef, ArrayRef)>> {
            Some(vec![(
                Arc::new(Int32Array::from(vec![min])) as ArrayRef,
                Arc::new(Int32Array::from(vec![max])) as ArrayRef,
            )])
        };
        let file = Ranges(vec![range(1, 100), range(200, 300)]);
        let keys = |k: &[i32]| vec![Arc::new(Int32Array::from(k.to_vec())) as ArrayRef];
        assert!(!file.may_hold(&keys(&[150, 301, 0])).unwrap());
        assert!(file.may_hold(&keys(&[150, 250])).unwrap());
        assert!(file.may_hold(&keys(&[100])).unwrap());
        assert!(!file.may_hold(&keys(&[])).unwrap());
        let unknown = Ranges(vec![range(1, 2), None]);
        assert!(
            unknown.may_hold(&keys(&[500])).unwrap(),
            "no statistics: any key"
        );
    }
}
