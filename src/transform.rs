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
