//! Encoders: a batch of rows → Kafka message payloads and keys, in one of the formats
//! (design.md §5). Each format is a file; values are written by the shared writers in
//! [`value`]. Encoders work on whole batches and write into reused buffers.

pub mod default;
pub mod value;

use arrow::record_batch::RecordBatch;

use crate::plan::{ColumnDef, TablePlan};
use crate::project::{Format, SourceKind};
use value::ValueWriter;

/// The messages of one batch, in row order, in two reused buffers.
#[derive(Debug, Default)]
pub struct Messages {
    payload: Vec<u8>,
    payload_ends: Vec<usize>,
    key: Vec<u8>,
    /// `None` for a message with a null key.
    key_ends: Vec<Option<usize>>,
}

impl Messages {
    pub fn clear(&mut self) {
        self.payload.clear();
        self.payload_ends.clear();
        self.key.clear();
        self.key_ends.clear();
    }

    pub fn len(&self) -> usize {
        self.payload_ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.payload_ends.is_empty()
    }

    pub fn payload(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.payload_ends[i - 1] };
        &self.payload[start..self.payload_ends[i]]
    }

    pub fn key(&self, i: usize) -> Option<&[u8]> {
        let end = self.key_ends[i]?;
        let start = self.key_ends[..i]
            .iter()
            .rev()
            .find_map(|e| *e)
            .unwrap_or(0);
        Some(&self.key[start..end])
    }

    /// Total payload bytes, for in-flight accounting.
    pub fn payload_bytes(&self) -> usize {
        self.payload.len()
    }

    fn end_payload(&mut self) {
        self.payload_ends.push(self.payload.len());
    }
}

/// What every format needs to know about a table, computed once per table.
#[derive(Debug, Clone)]
pub struct TableContext {
    pub database: String,
    pub table: String,
    /// The `db` field: `tenant.database` for OceanBase (when the user names a tenant), else the
    /// database.
    pub db_field: String,
    /// OMS's `dbType`: `OB_MYSQL` or `MYSQL`.
    pub db_type: &'static str,
    pub columns: Vec<ColumnDef>,
    pub projection: Vec<usize>,
    pub key: Vec<usize>,
    pub shard: Vec<usize>,
}

impl TableContext {
    pub fn new(plan: &TablePlan, kind: SourceKind, user: &str) -> TableContext {
        let tenant = user
            .split_once('@')
            .map(|(_, t)| t.split('#').next().unwrap_or(t));
        let (db_field, db_type) = match (kind, tenant) {
            (SourceKind::OceanBase, Some(tenant)) => {
                (format!("{tenant}.{}", plan.database), "OB_MYSQL")
            }
            (SourceKind::OceanBase, None) => (plan.database.clone(), "OB_MYSQL"),
            _ => (plan.database.clone(), "MYSQL"),
        };
        TableContext {
            database: plan.database.clone(),
            table: plan.table.clone(),
            db_field,
            db_type,
            columns: plan.columns.clone(),
            projection: plan.projection.clone(),
            key: plan.key.clone(),
            shard: plan.shard.clone(),
        }
    }

    /// Writers for the given columns of a batch of the full table schema.
    fn writers<'a>(&self, batch: &'a RecordBatch, columns: &[usize]) -> Vec<ValueWriter<'a>> {
        columns
            .iter()
            .filter_map(|&i| ValueWriter::new(batch.column(i).as_ref(), &self.columns[i].sql_type))
            .collect()
    }
}

/// The encoder of one table's messages.
#[derive(Debug)]
pub enum Encoder {
    Default(default::DefaultEncoder),
}

impl Encoder {
    /// The encoder for a format; an error for a format this build cannot write yet.
    pub fn new(format: Format, context: TableContext) -> Result<Encoder, String> {
        match format {
            Format::Default => Ok(Encoder::Default(default::DefaultEncoder::new(context))),
            other => Err(format!(
                "format '{other}' is not available in this build yet; use format = 'default'"
            )),
        }
    }

    /// Full-sync rows: one message per row of `batch` (the full table schema, filtered).
    pub fn encode_snapshot(&mut self, batch: &RecordBatch, out: &mut Messages) {
        match self {
            Encoder::Default(e) => e.encode_snapshot(batch, out),
        }
        write_keys(self.context(), batch, out);
    }

    pub fn context(&self) -> &TableContext {
        match self {
            Encoder::Default(e) => &e.context,
        }
    }
}

/// Message keys (design.md §4): a JSON object of the shard columns' values, e.g. `{"id":7}`;
/// a null key when the table has no shard columns.
fn write_keys(context: &TableContext, batch: &RecordBatch, out: &mut Messages) {
    if context.shard.is_empty() {
        out.key_ends
            .extend(std::iter::repeat_n(None, batch.num_rows()));
        return;
    }
    let writers = context.writers(batch, &context.shard);
    let names: Vec<Vec<u8>> = context
        .shard
        .iter()
        .map(|&i| {
            let mut name = Vec::new();
            value::write_string(&context.columns[i].name, &mut name);
            name.push(b':');
            name
        })
        .collect();
    for row in 0..batch.num_rows() {
        out.key.push(b'{');
        for (n, (name, writer)) in names.iter().zip(&writers).enumerate() {
            if n > 0 {
                out.key.push(b',');
            }
            out.key.extend_from_slice(name);
            writer.write_default(row, &mut out.key);
        }
        out.key.push(b'}');
        out.key_ends.push(Some(out.key.len()));
    }
}
