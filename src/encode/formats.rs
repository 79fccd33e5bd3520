//! The formats beside Default (reference §7.2–§7.9): Canal, Dataworks V2, SharePlex, the Debezium
//! family and Maxwell. One encoder walks the records of a batch; each format writes its own
//! envelope around images written by the value family it uses (§6). Decisions where the
//! reference is silent are in docs/formats.md.

use std::io::Write;

use arrow::record_batch::RecordBatch;

use super::value::{self, ValueWriter};
use super::{ChangeMeta, Messages, TableContext, ddl_type};
use crate::plan::SqlType;
use crate::project::Format;
use crate::transform::Emit;

/// What a record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A full-sync row.
    Row,
    Insert,
    Update,
    Delete,
}

/// Which value encoding a format uses (reference §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Default,
    Debezium,
    Maxwell,
}

#[derive(Debug)]
pub struct FormatEncoder {
    pub(super) context: TableContext,
    format: Format,
    family: Family,
    /// `"name":` of each sent column.
    names: Vec<Vec<u8>>,
    /// Fractional-second precision of each sent column (Maxwell prints six digits when > 0).
    fsp: Vec<u8>,
    /// `["id"]` or `null`: the key's column names.
    key_names: Vec<u8>,
    /// Canal's `sqlType` and `mysqlType` maps, Dataworks' `column` list.
    canal_types: Vec<u8>,
    dataworks_columns: Vec<u8>,
}

/// Milliseconds since the epoch, now.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The bare upper-case type name: `bigint(20) unsigned` → `BIGINT`.
pub fn bare_type(column_type: &str) -> String {
    column_type
        .split(['(', ' '])
        .next()
        .unwrap_or("")
        .to_ascii_uppercase()
}

/// `java.sql.Types` of a column, as Canal reports it.
fn java_sql_type(sql: &SqlType) -> i32 {
    use SqlType::*;
    match sql {
        Bool => -7,
        TinyInt { .. } => -6,
        SmallInt { .. } => 5,
        MediumInt { .. } | Int { .. } => 4,
        BigInt { .. } => -5,
        Decimal { .. } => 3,
        Float => 7,
        Double => 8,
        Bit { .. } => -7,
        Year => 12,
        Char { .. } | Enum { .. } | Set { .. } => 1,
        VarChar { .. } | Json => 12,
        Text => 2005,
        Binary { .. } => -2,
        VarBinary { .. } => -3,
        Blob | Geometry | Unsupported(_) => 2004,
        Date => 91,
        Time { .. } => 92,
        DateTime { .. } | Timestamp { .. } => 93,
    }
}

impl FormatEncoder {
    pub fn new(format: Format, context: TableContext) -> FormatEncoder {
        let family = match format {
            Format::Debezium | Format::DebeziumFlatten | Format::DebeziumSmt => Family::Debezium,
            Format::Maxwell => Family::Maxwell,
            _ => Family::Default,
        };
        let names = context
            .projection
            .iter()
            .map(|&i| {
                let mut name = Vec::new();
                value::write_string(&context.columns[i].name, &mut name);
                name.push(b':');
                name
            })
            .collect();
        let fsp = context
            .projection
            .iter()
            .map(|&i| match context.columns[i].sql_type {
                SqlType::DateTime { fsp } | SqlType::Timestamp { fsp } | SqlType::Time { fsp } => {
                    fsp
                }
                _ => 0,
            })
            .collect();
        let mut key_names = Vec::new();
        if context.key.is_empty() {
            key_names.extend_from_slice(b"null");
        } else {
            key_names.push(b'[');
            for (n, &i) in context.key.iter().enumerate() {
                if n > 0 {
                    key_names.push(b',');
                }
                value::write_string(&context.columns[i].name, &mut key_names);
            }
            key_names.push(b']');
        }
        let mut canal_types = b"\"sqlType\":{".to_vec();
        let mut mysql_types = b"\"mysqlType\":{".to_vec();
        let mut dataworks_columns = b"[".to_vec();
        for (n, &i) in context.projection.iter().enumerate() {
            let column = &context.columns[i];
            if n > 0 {
                canal_types.push(b',');
                mysql_types.push(b',');
                dataworks_columns.push(b',');
            }
            value::write_string(&column.name, &mut canal_types);
            let _ = write!(canal_types, ":{}", java_sql_type(&column.sql_type));
            value::write_string(&column.name, &mut mysql_types);
            mysql_types.push(b':');
            value::write_string(
                &bare_type(&column.column_type).to_ascii_lowercase(),
                &mut mysql_types,
            );
            dataworks_columns.extend_from_slice(b"{\"name\":");
            value::write_string(&column.name, &mut dataworks_columns);
            dataworks_columns.extend_from_slice(b",\"type\":");
            value::write_string(&bare_type(&column.column_type), &mut dataworks_columns);
            dataworks_columns.push(b'}');
        }
        canal_types.extend_from_slice(b"},");
        canal_types.extend_from_slice(&mysql_types);
        canal_types.push(b'}');
        dataworks_columns.push(b']');
        FormatEncoder {
            context,
            format,
            family,
            names,
            fsp,
            key_names,
            canal_types,
            dataworks_columns,
        }
    }

    pub(super) fn is_dataworks(&self) -> bool {
        self.format == Format::DataworksV2
    }

    pub(super) fn is_maxwell(&self) -> bool {
        self.format == Format::Maxwell
    }

    fn write_value(&self, column: usize, writer: &ValueWriter, row: usize, out: &mut Vec<u8>) {
        match self.family {
            Family::Default => writer.write_default(row, out),
            Family::Debezium => writer.write_debezium(row, out),
            Family::Maxwell => writer.write_maxwell(row, self.fsp[column], out),
        }
    }

    /// The sent columns of one row as a JSON object's members (no braces).
    fn write_members(&self, writers: &[ValueWriter], row: usize, out: &mut Vec<u8>) {
        for (n, (name, writer)) in self.names.iter().zip(writers).enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(name);
            self.write_value(n, writer, row, out);
        }
    }

    fn write_object(&self, image: Option<(&[ValueWriter], usize)>, out: &mut Vec<u8>) {
        match image {
            Some((writers, row)) => {
                out.push(b'{');
                self.write_members(writers, row, out);
                out.push(b'}');
            }
            None => out.extend_from_slice(b"null"),
        }
    }

    /// The columns whose value changed between two images, with the values of `pick`.
    fn write_changed(
        &self,
        before: (&[ValueWriter], usize),
        after: (&[ValueWriter], usize),
        pick_before: bool,
        out: &mut Vec<u8>,
    ) {
        out.push(b'{');
        let mut first = true;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for (n, name) in self.names.iter().enumerate() {
            a.clear();
            b.clear();
            self.write_value(n, &before.0[n], before.1, &mut a);
            self.write_value(n, &after.0[n], after.1, &mut b);
            if a != b {
                if !first {
                    out.push(b',');
                }
                first = false;
                out.extend_from_slice(name);
                out.extend_from_slice(if pick_before { &a } else { &b });
            }
        }
        out.push(b'}');
    }

    /// The key's values as text joined by `separator`, each optionally quoted.
    fn write_key_text(&self, keys: (&[ValueWriter], usize), separator: &[u8], out: &mut Vec<u8>) {
        for (n, writer) in keys.0.iter().enumerate() {
            if n > 0 {
                out.extend_from_slice(separator);
            }
            writer.write_text(keys.1, out);
        }
    }

    pub fn encode_snapshot(&mut self, batch: &RecordBatch, out: &mut Messages) {
        let columns = self.context.writers(batch, &self.context.projection);
        let keys = self.context.writers(batch, &self.context.key);
        let now = now_ms();
        for row in 0..batch.num_rows() {
            self.write_record(
                Kind::Row,
                None,
                Some((&columns, row)),
                (&keys, row),
                None,
                0,
                now,
                &mut out.payload,
            );
            out.end_payload();
        }
    }

    pub fn encode_changes(
        &mut self,
        before: Option<&RecordBatch>,
        after: Option<&RecordBatch>,
        emits: &[Emit],
        meta: &ChangeMeta,
        sequence: &mut u64,
        out: &mut Messages,
    ) {
        let super::Images {
            before_columns,
            after_columns,
            before_keys,
            after_keys,
        } = self.context.images(before, after);
        let now = now_ms();
        for emit in emits {
            *sequence += 1;
            let (kind, prev, post) = match *emit {
                Emit::Insert(row) => (Kind::Insert, None, Some(row)),
                Emit::Update(row) => (Kind::Update, Some(row), Some(row)),
                Emit::Delete(row) => (Kind::Delete, Some(row), None),
            };

            let keys = match post {
                Some(row) => (after_keys.as_deref().unwrap_or(&[]), row),
                None => (before_keys.as_deref().unwrap_or(&[]), prev.unwrap_or(0)),
            };
            self.write_record(
                kind,
                before_columns.as_deref().zip(prev),
                after_columns.as_deref().zip(post),
                keys,
                Some(meta),
                *sequence,
                now,
                &mut out.payload,
            );
            out.end_payload();
        }
    }

    /// A DDL record, or `false` for formats that send none (the Debezium family: reference §7.6
    /// documents no DDL for them).
    pub fn encode_ddl(&mut self, statement: &str, meta: &ChangeMeta, out: &mut Messages) -> bool {
        let buf = &mut out.payload;
        let context = &self.context;
        let now = now_ms();
        let es = u64::from(meta.timestamp) * 1000;
        match self.format {
            Format::Canal => {
                self.write_database_table(buf);
                buf.extend_from_slice(b",\"type\":");
                let kind = canal_ddl_kind(statement).unwrap_or("ALTER");
                value::write_string(kind, buf);
                let _ = write!(buf, ",\"isDdl\":true,\"es\":{es},\"ts\":{now},\"sql\":");
                value::write_string(statement, buf);
                buf.extend_from_slice(
                    b",\"sqlType\":null,\"mysqlType\":null,\"data\":null,\"old\":null,\
                      \"pkNames\":null}",
                );
            }
            Format::DataworksV2 => {
                self.dataworks_head(buf);
                buf.extend_from_slice(b"\"column\":null,\"pk\":null},\"payload\":{\"before\":null,\"after\":null,\"op\":");
                let op = canal_ddl_kind(statement).unwrap_or("QUERY");
                value::write_string(op, buf);
                let _ = write!(
                    buf,
                    ",\"timestamp\":{{\"eventTime\":{es},\"systemTime\":{now},\"checkpointTime\":{}}},\"ddl\":{{\"text\":",
                    meta.timestamp
                );
                value::write_string(statement, buf);
                buf.extend_from_slice(b"},\"scn\":\"null\"},\"extend\":{}}");
            }
            Format::Shareplex => {
                buf.extend_from_slice(b"{\"data\":{},\"meta\":{\"time\":");
                write_time_text(u64::from(meta.timestamp), buf);
                buf.extend_from_slice(b",\"op\":\"ddl\",\"posttime\":");
                write_time_text(now / 1000, buf);
                buf.extend_from_slice(b",\"idx\":\"0/0\",\"size\":0,\"seq\":0,\"table\":");
                value::write_string(&format!("{}.{}", context.database, context.table), buf);
                buf.extend_from_slice(b",\"rowid\":");
                value::write_string(&format!("{}.{}-", context.database, context.table), buf);
                buf.extend_from_slice(b",\"trans\":null,\"scn\":\"null\"},\"sql\":{\"ddl\":");
                value::write_string(statement, buf);
                buf.extend_from_slice(b"}}");
            }
            Format::Maxwell => {
                self.write_database_table(buf);
                let kind = match ddl_type(statement) {
                    "CREATE_TABLE" => "table-create",
                    "DROP_TABLE" => "table-drop",
                    _ => "table-alter",
                };
                buf.extend_from_slice(b",\"type\":");
                value::write_string(kind, buf);
                let _ = write!(
                    buf,
                    ",\"ts\":{},\"xid\":null,\"commit\":true,\"position\":\"{}\"",
                    meta.timestamp, meta.timestamp
                );
                buf.extend_from_slice(
                    b",\"primary_key\":null,\"primary_key_columns\":null,\"data\":null,\"old\":null,\"sql\":",
                );
                value::write_string(statement, buf);
                buf.extend_from_slice(b",\"def\":{\"database\":");
                value::write_string(&context.database, buf);
                buf.extend_from_slice(b",\"table\":");
                value::write_string(&context.table, buf);
                buf.extend_from_slice(b",\"primary-key\":[],\"columns\":[]}}");
            }
            _ => return false,
        }
        out.end_payload();
        true
    }

    /// `{"database":"shop","table":"orders"` — how Canal and Maxwell records begin.
    fn write_database_table(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(b"{\"database\":");
        value::write_string(&self.context.database, buf);
        buf.extend_from_slice(b",\"table\":");
        value::write_string(&self.context.table, buf);
    }

    fn dataworks_head(&self, buf: &mut Vec<u8>) {
        let context = &self.context;
        buf.extend_from_slice(b"{\"version\":\"2.0\",\"schema\":{\"source\":{\"dbType\":");
        value::write_string(&context.db_type.to_ascii_lowercase(), buf);
        buf.extend_from_slice(b",\"dbVersion\":null,\"dbName\":");
        value::write_string(&context.database, buf);
        buf.extend_from_slice(b",\"schema\":null,\"table\":");
        value::write_string(&context.table, buf);
        buf.extend_from_slice(b"},");
    }

    #[allow(clippy::too_many_arguments)]
    fn write_record(
        &self,
        kind: Kind,
        before: Option<(&[ValueWriter], usize)>,
        after: Option<(&[ValueWriter], usize)>,
        keys: (&[ValueWriter], usize),
        meta: Option<&ChangeMeta>,
        sequence: u64,
        now: u64,
        buf: &mut Vec<u8>,
    ) {
        let context = &self.context;
        // Full-sync rows have no commit: the time they are read stands in.
        let seconds = meta.map_or(now / 1000, |m| u64::from(m.timestamp));
        let es = meta.map_or(now, |m| u64::from(m.timestamp) * 1000);
        let row_image = after.or(before);
        match self.format {
            Format::Canal => {
                self.write_database_table(buf);
                let kind = match kind {
                    Kind::Row | Kind::Insert => "INSERT",
                    Kind::Update => "UPDATE",
                    Kind::Delete => "DELETE",
                };
                let _ = write!(
                    buf,
                    ",\"type\":\"{kind}\",\"isDdl\":false,\"es\":{es},\"ts\":{now},\"sql\":\"\",\"pkNames\":"
                );
                buf.extend_from_slice(&self.key_names);
                buf.push(b',');
                buf.extend_from_slice(&self.canal_types);
                buf.extend_from_slice(b",\"data\":[");
                self.write_object(row_image, buf);
                buf.extend_from_slice(b"],\"old\":");
                match (kind, before, after) {
                    ("UPDATE", Some(b), Some(a)) => {
                        buf.push(b'[');
                        self.write_changed(b, a, true, buf);
                        buf.push(b']');
                    }
                    _ => buf.extend_from_slice(b"null"),
                }
                buf.push(b'}');
            }
            Format::DataworksV2 => {
                self.dataworks_head(buf);
                buf.extend_from_slice(b"\"column\":");
                buf.extend_from_slice(&self.dataworks_columns);
                buf.extend_from_slice(b",\"pk\":");
                buf.extend_from_slice(&self.key_names);
                buf.extend_from_slice(b"},\"payload\":{\"before\":");
                let wrap = |image: Option<(&[ValueWriter], usize)>, buf: &mut Vec<u8>| match image {
                    Some(image) => {
                        buf.extend_from_slice(b"{\"data\":");
                        self.write_object(Some(image), buf);
                        buf.push(b'}');
                    }
                    None => buf.extend_from_slice(b"null"),
                };
                wrap(before, buf);
                buf.extend_from_slice(b",\"after\":");
                wrap(after, buf);
                let op = match kind {
                    Kind::Row | Kind::Insert => "INSERT",
                    Kind::Update => "UPDATE",
                    Kind::Delete => "DELETE",
                };
                let _ = write!(
                    buf,
                    ",\"op\":\"{op}\",\"timestamp\":{{\"eventTime\":{es},\"systemTime\":{now},\"checkpointTime\":{seconds}}},\"ddl\":null,\"scn\":\"null\"}},\"extend\":"
                );
                match &context.business_system_id {
                    Some(id) => {
                        buf.extend_from_slice(b"{\"load_fm\":");
                        value::write_string(id, buf);
                        buf.extend_from_slice(b"}}");
                    }
                    None => buf.extend_from_slice(b"{}}"),
                }
            }
            Format::Shareplex => {
                buf.extend_from_slice(b"{\"data\":");
                match (kind, before, after) {
                    (Kind::Update, Some(b), Some(a)) => self.write_changed(b, a, false, buf),
                    _ => self.write_object(row_image, buf),
                }
                buf.extend_from_slice(b",\"meta\":{\"time\":");
                write_time_text(seconds, buf);
                let op = match kind {
                    Kind::Row | Kind::Insert => "ins",
                    Kind::Update => "upd",
                    Kind::Delete => "del",
                };
                let _ = write!(buf, ",\"op\":\"{op}\",\"posttime\":");
                write_time_text(now / 1000, buf);
                let _ = write!(
                    buf,
                    ",\"idx\":\"1/1\",\"size\":1,\"seq\":{},\"table\":",
                    sequence.max(1)
                );
                value::write_string(&format!("{}.{}", context.database, context.table), buf);
                buf.extend_from_slice(b",\"rowid\":\"");
                value::write_escaped(&format!("{}.{}-", context.database, context.table), buf);
                self.write_key_text(keys, b"\\u0001", buf);
                buf.extend_from_slice(b"\",\"trans\":");
                match meta {
                    Some(m) => value::write_string(&m.position, buf),
                    None => buf.extend_from_slice(b"null"),
                }
                let _ = write!(
                    buf,
                    ",\"scn\":\"{}\"}}",
                    seconds * 100_000 + sequence % 100_000
                );
                if let (Kind::Update, Some(b)) = (kind, before) {
                    buf.extend_from_slice(b",\"key\":");
                    self.write_object(Some(b), buf);
                }
                buf.push(b'}');
            }
            Format::Debezium | Format::DebeziumFlatten => {
                let wrapped = self.format == Format::Debezium;
                if wrapped {
                    buf.extend_from_slice(b"{\"payload\":");
                }
                let op = match kind {
                    Kind::Row | Kind::Insert => "c",
                    Kind::Update => "u",
                    Kind::Delete => "d",
                };
                let _ = write!(
                    buf,
                    "{{\"op\":\"{op}\",\"source\":{{\"version\":\"\",\"connector\":"
                );
                value::write_string(context.db_type, buf);
                let _ = write!(
                    buf,
                    ",\"name\":\"OMS\",\"ts_ms\":{},\"db\":",
                    seconds * 1000
                );
                value::write_string(&context.database, buf);
                buf.extend_from_slice(b",\"table\":");
                value::write_string(&context.table, buf);
                let _ = write!(buf, ",\"pos\":\"{sequence}@{seconds}\"}},\"before\":");
                self.write_object(before, buf);
                buf.extend_from_slice(b",\"after\":");
                self.write_object(after, buf);
                let _ = write!(buf, ",\"ts_ms\":{now}}}");
                if wrapped {
                    buf.push(b'}');
                }
            }
            Format::DebeziumSmt => {
                buf.push(b'{');
                if let Some((writers, row)) = row_image {
                    self.write_members(writers, row, buf);
                    if !self.names.is_empty() {
                        buf.push(b',');
                    }
                }
                let deleted = if kind == Kind::Delete {
                    "true"
                } else {
                    "false"
                };
                let _ = write!(buf, "\"__deleted\":\"{deleted}\"}}");
            }
            Format::Maxwell => {
                self.write_database_table(buf);
                let kind_name = match kind {
                    Kind::Row | Kind::Insert => "insert",
                    Kind::Update => "update",
                    Kind::Delete => "delete",
                };
                // Full sync: Maxwell's fixed `ts` (reference §7.9).
                let ts = if kind == Kind::Row {
                    1_600_000_000
                } else {
                    seconds
                };
                let _ = write!(buf, ",\"type\":\"{kind_name}\",\"ts\":{ts},\"xid\":");
                match meta {
                    Some(m) => value::write_string(&m.position, buf),
                    None => buf.extend_from_slice(b"null"),
                }
                let _ = write!(
                    buf,
                    ",\"commit\":true,\"position\":\"{seconds}\",\"primary_key\":"
                );
                if keys.0.is_empty() {
                    buf.extend_from_slice(b"[]");
                } else {
                    buf.extend_from_slice(b"[\"");
                    self.write_key_text(keys, b"\",\"", buf);
                    buf.extend_from_slice(b"\"]");
                }
                buf.extend_from_slice(b",\"primary_key_columns\":");
                if self.context.key.is_empty() {
                    buf.extend_from_slice(b"[]");
                } else {
                    buf.extend_from_slice(&self.key_names);
                }
                buf.extend_from_slice(b",\"data\":");
                self.write_object(row_image, buf);
                buf.extend_from_slice(b",\"old\":");
                match kind {
                    Kind::Update => self.write_object(before, buf),
                    _ => buf.extend_from_slice(b"null"),
                }
                buf.extend_from_slice(b",\"sql\":null,\"def\":null}");
            }
            // The Default formats have their own encoder; `Encoder::new` never routes them here.
            Format::Default | Format::DefaultExtendColumnType => {}
        }
    }
}

/// Canal's DDL event names (also Dataworks' `op`); `None` for a statement that is none of them.
fn canal_ddl_kind(statement: &str) -> Option<&'static str> {
    Some(match ddl_type(statement) {
        "CREATE_TABLE" => "CREATE",
        "ALTER_TABLE" => "ALTER",
        "DROP_TABLE" => "ERASE",
        "TRUNCATE_TABLE" => "TRUNCATE",
        "RENAME_TABLE" => "RENAME",
        "CREATE_INDEX" => "CINDEX",
        "DROP_INDEX" => "DINDEX",
        _ => return None,
    })
}

/// `YYYY-MM-DDTHH:mm:ss` (UTC) of epoch seconds, quoted.
fn write_time_text(seconds: u64, out: &mut Vec<u8>) {
    out.push(b'"');
    let start = out.len();
    value::write_datetime(seconds as i64 * 1_000_000, out);
    if let Some(space) = out[start..].iter().position(|&b| b == b' ') {
        out[start + space] = b'T';
    }
    out.push(b'"');
}
