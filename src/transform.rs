//! The row filter on a batch: the compiled WHERE evaluated once per batch, rows that do not
//! pass (false or NULL, as in SQL) dropped. Projection happens in the encoders, which read only
//! the sent columns; the key and partition still come from the full row (design.md §4).

use arrow::array::{Array, BooleanArray};
use arrow::compute::filter_record_batch;
use arrow::record_batch::RecordBatch;

use crate::error::{Error, Result};
use crate::plan::CompiledFilter;

/// The rows of `batch` that pass the filter (all of them without one).
pub fn filter_rows(
    filter: Option<&CompiledFilter>,
    batch: RecordBatch,
    table: &str,
) -> Result<RecordBatch> {
    let Some(filter) = filter else {
        return Ok(batch);
    };
    let fail = |e: String| {
        Error::Definite(format!(
            "the row filter of {table} ({}) failed on a batch: {e}",
            filter.text
        ))
    };
    let mask = filter
        .expr
        .evaluate(&batch)
        .and_then(|v| v.into_array(batch.num_rows()))
        .map_err(|e| fail(e.to_string()))?;
    let Some(mask) = mask.as_any().downcast_ref::<BooleanArray>() else {
        return Err(fail("the filter is not a condition".to_string()));
    };
    if mask.null_count() == 0 && mask.true_count() == batch.num_rows() {
        return Ok(batch);
    }
    filter_record_batch(&batch, mask).map_err(|e| fail(e.to_string()))
}

/// Which record a row change becomes after the row filter (OMS semantics, reference §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    /// The after image as an INSERT.
    Insert(usize),
    /// Both images as an UPDATE.
    Update(usize),
    /// The before image as a DELETE.
    Delete(usize),
}

/// The filter's verdict per row (NULL counts as false, as in SQL).
fn passes(filter: Option<&CompiledFilter>, batch: &RecordBatch, table: &str) -> Result<Vec<bool>> {
    let Some(filter) = filter else {
        return Ok(vec![true; batch.num_rows()]);
    };
    let mask = filter
        .expr
        .evaluate(batch)
        .and_then(|v| v.into_array(batch.num_rows()))
        .map_err(|e| {
            Error::Definite(format!(
                "the row filter of {table} ({}) failed on a batch: {e}",
                filter.text
            ))
        })?;
    let Some(mask) = mask.as_any().downcast_ref::<BooleanArray>() else {
        return Err(Error::Definite(format!(
            "the row filter of {table} is not a condition"
        )));
    };
    Ok((0..mask.len())
        .map(|i| mask.is_valid(i) && mask.value(i))
        .collect())
}

/// The records a batch of row changes becomes, in row order:
/// - INSERT and DELETE rows are kept when their one image passes the filter;
/// - an UPDATE whose images both pass stays an UPDATE, one whose before image alone passes
///   becomes a DELETE, one whose after image alone passes becomes an INSERT;
/// - an UPDATE that changes the message key becomes a DELETE of the old key then an INSERT of
///   the new one, so each key's history stays in one partition (design.md §4).
///
/// `key_changed(row)` says whether a row's shard values differ between its images.
pub fn changes(
    filter: Option<&CompiledFilter>,
    before: Option<&RecordBatch>,
    after: Option<&RecordBatch>,
    table: &str,
    key_changed: impl Fn(usize) -> bool,
) -> Result<Vec<Emit>> {
    let before_passes = before.map(|b| passes(filter, b, table)).transpose()?;
    let after_passes = after.map(|a| passes(filter, a, table)).transpose()?;
    let rows = before.or(after).map_or(0, RecordBatch::num_rows);
    let mut emits = Vec::with_capacity(rows);
    for row in 0..rows {
        let b = before_passes.as_ref().map(|p| p[row]);
        let a = after_passes.as_ref().map(|p| p[row]);
        match (b, a) {
            (None, Some(true)) => emits.push(Emit::Insert(row)),
            (Some(true), None) => emits.push(Emit::Delete(row)),
            (Some(true), Some(true)) if key_changed(row) => {
                emits.push(Emit::Delete(row));
                emits.push(Emit::Insert(row));
            }
            (Some(true), Some(true)) => emits.push(Emit::Update(row)),
            (Some(true), Some(false)) => emits.push(Emit::Delete(row)),
            (Some(false), Some(true)) => emits.push(Emit::Insert(row)),
            _ => {}
        }
    }
    Ok(emits)
}
