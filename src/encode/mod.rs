//! Encoders: a batch of rows → Kafka message payloads and keys, in one of the formats
//! (design.md §5). Each format is a file; values are written by the shared writers in
//! [`value`]. Encoders work on whole batches and write into reused buffers.

pub mod default;
pub mod formats;
pub mod value;

use arrow::record_batch::RecordBatch;

pub use crate::batch::ChangeMeta;
use crate::plan::{ColumnDef, TablePlan};
use crate::project::{Format, SourceKind};
use value::ValueWriter;

/// While the source is idle, a HEARTBEAT record goes to every partition of each topic this
/// often, in the formats that document one (docs/formats.md).
pub const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Message keys of a batch, one per row or message, in one reused buffer.
#[derive(Debug, Default)]
pub struct Keys {
    bytes: Vec<u8>,
    /// Each key as a range of `bytes`; `None` for a null key.
    ranges: Vec<Option<(usize, usize)>>,
}

impl Keys {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ranges.clear();
    }

    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let (start, end) = self.ranges.get(i).copied().flatten()?;
        Some(&self.bytes[start..end])
    }

    /// Total key bytes.
    pub fn bytes(&self) -> usize {
        self.bytes.len()
    }

    fn push(&mut self, key: Option<&[u8]>) {
        match key {
            Some(key) => {
                let start = self.bytes.len();
                self.bytes.extend_from_slice(key);
                self.ranges.push(Some((start, self.bytes.len())));
            }
            None => self.ranges.push(None),
        }
    }
}

/// The messages of one batch, in row order, in reused buffers.
#[derive(Debug, Default)]
pub struct Messages {
    payload: Vec<u8>,
    payload_ends: Vec<usize>,
    keys: Keys,
}

impl Messages {
    pub fn clear(&mut self) {
        self.payload.clear();
        self.payload_ends.clear();
        self.keys.clear();
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
        self.keys.get(i)
    }

    /// Total payload bytes.
    pub fn payload_bytes(&self) -> usize {
        self.payload.len()
    }

    /// Total payload and key bytes, for in-flight accounting.
    pub fn bytes(&self) -> usize {
        self.payload.len() + self.keys.bytes()
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
    /// The project's `business_system_id` (Dataworks' `extend.load_fm`).
    pub business_system_id: Option<String>,
}

impl TableContext {
    pub fn new(
        plan: &TablePlan,
        kind: SourceKind,
        user: &str,
        business_system_id: Option<&str>,
    ) -> TableContext {
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
            business_system_id: business_system_id.map(str::to_string),
        }
    }

    /// Writers for the sent columns and the key of a change's before and after images.
    fn images<'a>(
        &self,
        before: Option<&'a RecordBatch>,
        after: Option<&'a RecordBatch>,
    ) -> Images<'a> {
        Images {
            before_columns: before.map(|b| self.writers(b, &self.projection)),
            after_columns: after.map(|a| self.writers(a, &self.projection)),
            before_keys: before.map(|b| self.writers(b, &self.key)),
            after_keys: after.map(|a| self.writers(a, &self.key)),
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

/// Value writers over a change's images, chosen once per batch.
struct Images<'a> {
    before_columns: Option<Vec<ValueWriter<'a>>>,
    after_columns: Option<Vec<ValueWriter<'a>>>,
    before_keys: Option<Vec<ValueWriter<'a>>>,
    after_keys: Option<Vec<ValueWriter<'a>>>,
}

/// The encoder of one table's messages.
#[derive(Debug)]
pub enum Encoder {
    Default(default::DefaultEncoder),
    Other(formats::FormatEncoder),
}

impl Encoder {
    /// The encoder for a format; an error for a format this build cannot write yet.
    pub fn new(format: Format, context: TableContext) -> Result<Encoder, String> {
        match format {
            Format::Default => Ok(Encoder::Default(default::DefaultEncoder::new(
                context, false,
            ))),
            Format::DefaultExtendColumnType => Ok(Encoder::Default(default::DefaultEncoder::new(
                context, true,
            ))),
            other => Ok(Encoder::Other(formats::FormatEncoder::new(other, context))),
        }
    }

    /// Full-sync rows: one message per row of `batch` (the full table schema, filtered).
    pub fn encode_snapshot(&mut self, batch: &RecordBatch, out: &mut Messages) {
        match self {
            Encoder::Default(e) => e.encode_snapshot(batch, out),
            Encoder::Other(e) => e.encode_snapshot(batch, out),
        }
        let maxwell = self.is_maxwell();
        write_keys(self.context(), batch, maxwell, &mut out.keys);
    }

    /// Each row's message key, as this table's messages carry it: built once per image and
    /// shared by the key-change check, the partitioner and the messages.
    pub fn keys(&self, batch: &RecordBatch, out: &mut Keys) {
        out.clear();
        write_keys(self.context(), batch, self.is_maxwell(), out);
    }

    /// Incremental records, one message per emit, in order; the key comes from the image the
    /// record carries (the before image for a DELETE).
    pub fn encode_changes(
        &mut self,
        before: Option<&RecordBatch>,
        after: Option<&RecordBatch>,
        emits: &[crate::transform::Emit],
        meta: &ChangeMeta,
        sequence: &mut u64,
        out: &mut Messages,
    ) {
        let mut before_keys = Keys::default();
        let mut after_keys = Keys::default();
        if let Some(before) = before {
            self.keys(before, &mut before_keys);
        }
        if let Some(after) = after {
            self.keys(after, &mut after_keys);
        }
        let images = ChangeImages {
            before,
            after,
            before_keys: &before_keys,
            after_keys: &after_keys,
        };
        self.encode_keyed_changes(&images, emits, meta, sequence, out);
    }

    /// [`Encoder::encode_changes`] with the images' keys already built.
    pub fn encode_keyed_changes(
        &mut self,
        images: &ChangeImages<'_>,
        emits: &[crate::transform::Emit],
        meta: &ChangeMeta,
        sequence: &mut u64,
        out: &mut Messages,
    ) {
        let (before, after) = (images.before, images.after);
        match self {
            Encoder::Default(e) => e.encode_changes(before, after, emits, meta, sequence, out),
            Encoder::Other(e) => e.encode_changes(before, after, emits, meta, sequence, out),
        }
        for emit in emits {
            let key = match *emit {
                crate::transform::Emit::Delete(row) => images.before_keys.get(row),
                crate::transform::Emit::Insert(row) | crate::transform::Emit::Update(row) => {
                    images.after_keys.get(row)
                }
            };
            out.keys.push(key);
        }
    }

    /// A DDL statement as one message (for each partition the caller sends it to); `false`
    /// when the format sends no DDL.
    pub fn encode_ddl(&mut self, statement: &str, meta: &ChangeMeta, out: &mut Messages) -> bool {
        let sent = match self {
            Encoder::Default(e) => {
                e.encode_ddl(statement, meta, out);
                true
            }
            Encoder::Other(e) => e.encode_ddl(statement, meta, out),
        };
        if sent {
            out.keys.push(None);
        }
        sent
    }

    pub fn context(&self) -> &TableContext {
        match self {
            Encoder::Default(e) => &e.context,
            Encoder::Other(e) => &e.context,
        }
    }

    /// A HEARTBEAT record at `seconds` for the formats that document one (Default and
    /// DefaultExtendColumnType §7.1, Dataworks §7.4); `false` for the others.
    pub fn encode_heartbeat(&mut self, seconds: u64, out: &mut Messages) -> bool {
        let buf = &mut out.payload;
        match self {
            Encoder::Default(e) => {
                buf.extend_from_slice(
                    b"{\"prevStruct\":null,\"postStruct\":null,\"allMetaData\":{\"checkpoint\":",
                );
                value::write_string(&seconds.to_string(), buf);
                buf.extend_from_slice(b",\"dbType\":");
                value::write_string(e.context.db_type, buf);
                buf.extend_from_slice(b",\"timestamp\":");
                value::write_string(&seconds.to_string(), buf);
                buf.extend_from_slice(b"},\"recordType\":\"HEARTBEAT\"}");
            }
            Encoder::Other(e) if e.is_dataworks() => {
                let _ = std::io::Write::write_fmt(
                    buf,
                    format_args!(
                        "{{\"version\":\"2.0\",\"payload\":{{\"timestamp\":{{\"eventTime\":{}}},\"op\":\"HEARTBEAT\"}}}}",
                        seconds * 1000
                    ),
                );
            }
            Encoder::Other(_) => return false,
        }
        out.end_payload();
        out.keys.push(None);
        true
    }

    fn is_maxwell(&self) -> bool {
        matches!(self, Encoder::Other(e) if e.is_maxwell())
    }
}

/// A change's images with each row's key, built once.
pub struct ChangeImages<'a> {
    pub before: Option<&'a RecordBatch>,
    pub after: Option<&'a RecordBatch>,
    pub before_keys: &'a Keys,
    pub after_keys: &'a Keys,
}

impl ChangeImages<'_> {
    /// Whether a row's key differs between its images (an UPDATE that moves the row).
    pub fn key_changed(&self, row: usize) -> bool {
        self.before.is_some()
            && self.after.is_some()
            && self.before_keys.get(row) != self.after_keys.get(row)
    }
}

/// The DDL kind OMS names in `ddlType` (reference §7.1), from the statement's first words.
pub fn ddl_type(statement: &str) -> &'static str {
    let words: Vec<String> = statement
        .split_whitespace()
        .take(4)
        .map(str::to_ascii_uppercase)
        .collect();
    let word = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    match (word(0), word(1), word(2)) {
        ("CREATE", "TABLE", _) | ("CREATE", "TEMPORARY", "TABLE") => "CREATE_TABLE",
        ("ALTER", "TABLE", _) => "ALTER_TABLE",
        ("DROP", "TABLE", _) => "DROP_TABLE",
        ("TRUNCATE", _, _) => "TRUNCATE_TABLE",
        ("RENAME", "TABLE", _) => "RENAME_TABLE",
        ("CREATE", "INDEX", _) | ("CREATE", "UNIQUE", "INDEX") => "CREATE_INDEX",
        ("DROP", "INDEX", _) => "DROP_INDEX",
        _ => "UNKNOWN",
    }
}

/// Message keys (design.md §4): a JSON object of the shard columns' values, e.g. `{"id":7}`;
/// a null key when the table has no shard columns. Maxwell's native key names the database and
/// table too: `{"database":"shop","table":"orders","pk.id":7}`.
fn write_keys(context: &TableContext, batch: &RecordBatch, maxwell: bool, out: &mut Keys) {
    if context.shard.is_empty() {
        out.ranges
            .extend(std::iter::repeat_n(None, batch.num_rows()));
        return;
    }
    let writers = context.writers(batch, &context.shard);
    let names: Vec<Vec<u8>> = context
        .shard
        .iter()
        .map(|&i| {
            let mut name = Vec::new();
            if maxwell {
                value::write_string(&format!("pk.{}", context.columns[i].name), &mut name);
            } else {
                value::write_string(&context.columns[i].name, &mut name);
            }
            name.push(b':');
            name
        })
        .collect();
    let mut prefix = Vec::new();
    if maxwell {
        prefix.extend_from_slice(b"\"database\":");
        value::write_string(&context.database, &mut prefix);
        prefix.extend_from_slice(b",\"table\":");
        value::write_string(&context.table, &mut prefix);
        prefix.push(b',');
    }
    for row in 0..batch.num_rows() {
        let start = out.bytes.len();
        out.bytes.push(b'{');
        out.bytes.extend_from_slice(&prefix);
        for (n, (name, writer)) in names.iter().zip(&writers).enumerate() {
            if n > 0 {
                out.bytes.push(b',');
            }
            out.bytes.extend_from_slice(name);
            writer.write_default(row, &mut out.bytes);
        }
        out.bytes.push(b'}');
        out.ranges.push(Some((start, out.bytes.len())));
    }
}
