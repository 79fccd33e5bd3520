//! Rows as a lake table holds them: the SYNC's columns plus four change columns, so that any
//! engine can rebuild the current state from the log.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `_op` | string | `snapshot`, `insert`, `update_before`, `update`, `delete` (and, only in the changes an upsert table merges, `truncate`) |
//! | `_commit_ts` | timestamp (UTC, µs) | when the source committed the change; null for snapshot rows |
//! | `_position` | string | the binlog position of the change's transaction; null for snapshot rows |
//! | `_seq` | long | the change's order: 0 for snapshot rows, then increasing over all runs |
//!
//! A DELETE carries the deleted row's values (its before image). Delta Lake has no unsigned,
//! TIME or wide-decimal types: for Delta, such columns become the next wider signed type,
//! microseconds since midnight and text (docs/lake.md).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::compute::{cast, interleave};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::batch::ChangeMeta;
use crate::encode::ChangeImages;
use crate::error::{Error, Result};
use crate::plan::TablePlan;
use crate::project::SinkKind;
use crate::transform::Emit;

pub const OP: &str = "_op";
pub const COMMIT_TS: &str = "_commit_ts";
pub const POSITION: &str = "_position";
pub const SEQ: &str = "_seq";
const CHANGE_COLUMNS: [&str; 4] = [OP, COMMIT_TS, POSITION, SEQ];
/// The `_op` of a TRUNCATE in the changes an upsert table merges: every earlier row goes.
pub const TRUNCATE: &str = "truncate";

/// What `_op` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Snapshot,
    Insert,
    UpdateBefore,
    Update,
    Delete,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Snapshot => "snapshot",
            Op::Insert => "insert",
            Op::UpdateBefore => "update_before",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }
}

/// The type a lake table of `kind` stores a source column of type `source` as.
pub fn lake_type(source: &DataType, kind: SinkKind) -> DataType {
    if kind != SinkKind::Delta {
        return source.clone();
    }
    match source {
        DataType::UInt8 => DataType::Int16,
        DataType::UInt16 => DataType::Int32,
        DataType::UInt32 => DataType::Int64,
        DataType::UInt64 => DataType::Decimal128(20, 0),
        DataType::Time64(_) => DataType::Int64,
        DataType::Decimal256(..) => DataType::Utf8,
        other => other.clone(),
    }
}

/// The lake table's schema for `plan`: its columns (all nullable: a column a later DDL drops
/// is null from then on), then the change columns.
pub fn lake_schema(plan: &TablePlan, kind: SinkKind) -> Result<SchemaRef> {
    let mut fields = Vec::with_capacity(plan.projection.len() + CHANGE_COLUMNS.len());
    for &i in &plan.projection {
        let field = plan.schema.field(i);
        if CHANGE_COLUMNS.contains(&field.name().as_str()) {
            return Err(Error::Config(format!(
                "table {}: column `{}` has the name of a change column the lake table adds; \
                 leave it out with COLUMNS",
                plan.qualified(),
                field.name()
            )));
        }
        fields.push(Field::new(
            field.name(),
            lake_type(field.data_type(), kind),
            true,
        ));
    }
    fields.push(Field::new(OP, DataType::Utf8, false));
    fields.push(Field::new(
        COMMIT_TS,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        true,
    ));
    fields.push(Field::new(POSITION, DataType::Utf8, true));
    fields.push(Field::new(SEQ, DataType::Int64, false));
    Ok(Arc::new(Schema::new(fields)))
}

/// Snapshot rows (a batch of the table's full schema) as lake rows. Full-sync rows come
/// before every change (`_seq` 0); an online snapshot's rows take their place among the
/// stream's changes (`seq`).
pub fn snapshot_rows(
    plan: &TablePlan,
    schema: &SchemaRef,
    batch: &RecordBatch,
    seq: Option<&mut i64>,
) -> Result<RecordBatch> {
    let rows = batch.num_rows();
    let mut columns = project(plan, schema, batch.columns())?;
    columns.push(Arc::new(StringArray::from_iter_values(
        std::iter::repeat_n(Op::Snapshot.name(), rows),
    )));
    columns.push(Arc::new(
        TimestampMicrosecondArray::new_null(rows).with_timezone("UTC"),
    ));
    columns.push(Arc::new(StringArray::new_null(rows)));
    columns.push(Arc::new(match seq {
        None => Int64Array::from_value(0, rows),
        Some(seq) => next_seqs(seq, rows),
    }));
    finish(plan, schema, columns)
}

/// The records `emits` chose from a batch of row changes, as lake rows in order: an UPDATE is
/// its after image (preceded by its before image with `before_images`), a DELETE its before
/// image. `seq` is the last `_seq` given out; it moves on by the rows written.
pub fn change_rows(
    plan: &TablePlan,
    schema: &SchemaRef,
    images: &ChangeImages<'_>,
    emits: &[Emit],
    before_images: bool,
    meta: &ChangeMeta,
    seq: &mut i64,
) -> Result<RecordBatch> {
    // Source arrays: the before image is 0, the after image 1.
    const BEFORE: usize = 0;
    const AFTER: usize = 1;
    let mut picks: Vec<(usize, usize)> = Vec::with_capacity(emits.len());
    let mut ops: Vec<&'static str> = Vec::with_capacity(emits.len());
    for emit in emits {
        match *emit {
            Emit::Insert(row) => {
                picks.push((AFTER, row));
                ops.push(Op::Insert.name());
            }
            Emit::Update(row) => {
                if before_images {
                    picks.push((BEFORE, row));
                    ops.push(Op::UpdateBefore.name());
                }
                picks.push((AFTER, row));
                ops.push(Op::Update.name());
            }
            Emit::Delete(row) => {
                picks.push((BEFORE, row));
                ops.push(Op::Delete.name());
            }
        }
    }
    let image = images.after.or(images.before).ok_or_else(|| {
        Error::Definite(format!(
            "table {}: a row change without images",
            plan.qualified()
        ))
    })?;
    let mut full = Vec::with_capacity(image.num_columns());
    for c in 0..image.num_columns() {
        let before = images.before.map(|b| b.column(c).as_ref());
        let after = images.after.map(|a| a.column(c).as_ref());
        // A missing image is never picked; its place is held by the other.
        let sources: [&dyn Array; 2] = [
            before.or(after).unwrap_or(image.column(c).as_ref()),
            after.or(before).unwrap_or(image.column(c).as_ref()),
        ];
        full.push(interleave(&sources, &picks).map_err(|e| arrow_error(plan, e))?);
    }
    let rows = picks.len();
    let mut columns = project(plan, schema, &full)?;
    columns.push(Arc::new(StringArray::from(ops)));
    let micros = i64::from(meta.timestamp) * 1_000_000;
    columns.push(Arc::new(
        TimestampMicrosecondArray::from_value(micros, rows).with_timezone("UTC"),
    ));
    columns.push(Arc::new(StringArray::from_iter_values(
        std::iter::repeat_n(meta.position.as_str(), rows),
    )));
    columns.push(Arc::new(next_seqs(seq, rows)));
    finish(plan, schema, columns)
}

/// A TRUNCATE among the changes an upsert table merges: a row of nulls but for the change
/// columns.
pub fn truncate_row(
    plan: &TablePlan,
    schema: &SchemaRef,
    meta: &ChangeMeta,
    seq: &mut i64,
) -> Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .take(schema.fields().len() - CHANGE_COLUMNS.len())
        .map(|f| arrow::array::new_null_array(f.data_type(), 1))
        .collect();
    columns.push(Arc::new(StringArray::from(vec![TRUNCATE])));
    columns.push(Arc::new(
        TimestampMicrosecondArray::from_value(i64::from(meta.timestamp) * 1_000_000, 1)
            .with_timezone("UTC"),
    ));
    columns.push(Arc::new(StringArray::from(vec![meta.position.as_str()])));
    columns.push(Arc::new(next_seqs(seq, 1)));
    finish(plan, schema, columns)
}

/// The `_seq` of the next `rows` changes after `seq`, which moves past them.
fn next_seqs(seq: &mut i64, rows: usize) -> Int64Array {
    let first = *seq + 1;
    *seq += rows as i64;
    Int64Array::from_iter_values(first..first + rows as i64)
}

/// The SYNC's columns of a full-schema batch, cast to the lake's types.
fn project(plan: &TablePlan, schema: &SchemaRef, columns: &[ArrayRef]) -> Result<Vec<ArrayRef>> {
    let mut out = Vec::with_capacity(schema.fields().len());
    for (field, &i) in schema.fields().iter().zip(&plan.projection) {
        let column = &columns[i];
        if column.data_type() == field.data_type() {
            out.push(Arc::clone(column));
        } else {
            out.push(cast(column, field.data_type()).map_err(|e| arrow_error(plan, e))?);
        }
    }
    Ok(out)
}

fn finish(plan: &TablePlan, schema: &SchemaRef, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| arrow_error(plan, e))
}

fn arrow_error(plan: &TablePlan, e: arrow::error::ArrowError) -> Error {
    Error::Definite(format!(
        "table {}: cannot build the lake rows ({e}); please report this with the table's \
         definition",
        plan.qualified()
    ))
}
