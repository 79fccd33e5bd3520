//! The Default format (reference §7.1): `prevStruct`, `postStruct`, `allMetaData`, `recordType`.
//! Full-sync rows are `recordType: "ROW"` with the row in `postStruct` (docs/formats.md).

use arrow::record_batch::RecordBatch;

use super::value::{self, ValueWriter};
use super::{ChangeMeta, Messages, TableContext};
use crate::transform::Emit;

#[derive(Debug)]
pub struct DefaultEncoder {
    pub(super) context: TableContext,
    /// `"name":` for each sent column, with the separating comma before all but the first.
    column_prefixes: Vec<Vec<u8>>,
    /// `record_primary_key` as JSON (`"id"`, `"a\u0001b"`) or `null`.
    primary_key_names: Vec<u8>,
    /// The constant metadata after `record_primary_value` of a full-sync row.
    snapshot_tail: Vec<u8>,
    /// DefaultExtendColumnType (reference §7.2): `,"__light_type":{...}` closing each image.
    light_type: Option<Vec<u8>>,
}

impl DefaultEncoder {
    pub fn new(context: TableContext, extend_column_type: bool) -> DefaultEncoder {
        let light_type = extend_column_type.then(|| {
            let mut types = b",\"__light_type\":{".to_vec();
            for (n, &i) in context.projection.iter().enumerate() {
                if n > 0 {
                    types.push(b',');
                }
                let column = &context.columns[i];
                value::write_string(&column.name, &mut types);
                types.extend_from_slice(b":{\"schemaType\":");
                value::write_string(&super::formats::bare_type(&column.column_type), &mut types);
                types.push(b'}');
            }
            types.push(b'}');
            types
        });
        let column_prefixes = context
            .projection
            .iter()
            .enumerate()
            .map(|(n, &i)| {
                let mut prefix = Vec::new();
                if n > 0 {
                    prefix.push(b',');
                }
                value::write_string(&context.columns[i].name, &mut prefix);
                prefix.push(b':');
                prefix
            })
            .collect();
        let mut primary_key_names = Vec::new();
        if context.key.is_empty() {
            primary_key_names.extend_from_slice(b"null");
        } else {
            let names: Vec<&str> = context
                .key
                .iter()
                .map(|&i| context.columns[i].name.as_str())
                .collect();
            value::write_string(&names.join("\u{1}"), &mut primary_key_names);
        }
        let mut snapshot_tail = Vec::new();
        snapshot_tail.extend_from_slice(b",\"source_identity\":null,\"dbType\":");
        value::write_string(context.db_type, &mut snapshot_tail);
        snapshot_tail.extend_from_slice(b",\"storeDataSequence\":null,\"table_name\":");
        value::write_string(&context.table, &mut snapshot_tail);
        snapshot_tail.extend_from_slice(b",\"db\":");
        value::write_string(&context.db_field, &mut snapshot_tail);
        snapshot_tail.extend_from_slice(
            b",\"timestamp\":null,\"uniqueId\":null,\"transId\":null,\"clusterId\":null,\
              \"ddlType\":null},\"recordType\":\"ROW\"}",
        );
        DefaultEncoder {
            context,
            column_prefixes,
            primary_key_names,
            snapshot_tail,
            light_type,
        }
    }

    pub fn encode_snapshot(&mut self, batch: &RecordBatch, out: &mut Messages) {
        let columns = self.context.writers(batch, &self.context.projection);
        let keys = self.context.writers(batch, &self.context.key);
        let key_names: Vec<&str> = self
            .context
            .key
            .iter()
            .map(|&i| self.context.columns[i].name.as_str())
            .collect();
        for row in 0..batch.num_rows() {
            let buf = &mut out.payload;
            buf.extend_from_slice(b"{\"prevStruct\":null,\"postStruct\":{");
            for (prefix, writer) in self.column_prefixes.iter().zip(&columns) {
                buf.extend_from_slice(prefix);
                writer.write_default(row, buf);
            }
            if let Some(types) = &self.light_type {
                buf.extend_from_slice(types);
            }
            buf.extend_from_slice(b"},\"allMetaData\":{\"checkpoint\":");
            write_key_values(&keys, Some(&key_names), row, buf);
            buf.extend_from_slice(b",\"record_primary_key\":");
            buf.extend_from_slice(&self.primary_key_names);
            buf.extend_from_slice(b",\"record_primary_value\":");
            write_key_values(&keys, None, row, buf);
            buf.extend_from_slice(&self.snapshot_tail);
            out.end_payload();
        }
    }
}

impl DefaultEncoder {
    fn write_image(
        &self,
        writers: Option<&Vec<ValueWriter>>,
        row: Option<usize>,
        buf: &mut Vec<u8>,
    ) {
        match (writers, row) {
            (Some(writers), Some(row)) => {
                buf.push(b'{');
                for (prefix, writer) in self.column_prefixes.iter().zip(writers) {
                    buf.extend_from_slice(prefix);
                    writer.write_default(row, buf);
                }
                if let Some(types) = &self.light_type {
                    buf.extend_from_slice(types);
                }
                buf.push(b'}');
            }
            _ => buf.extend_from_slice(b"null"),
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
        let context = &self.context;
        let super::Images {
            before_columns,
            after_columns,
            before_keys,
            after_keys,
        } = context.images(before, after);
        let mut timestamp = Vec::new();
        value::write_string(&meta.timestamp.to_string(), &mut timestamp);
        let mut position = Vec::new();
        value::write_string(&meta.position, &mut position);
        for emit in emits {
            let (record, prev, post) = match *emit {
                Emit::Insert(row) => ("INSERT", None, Some(row)),
                Emit::Update(row) => ("UPDATE", Some(row), Some(row)),
                Emit::Delete(row) => ("DELETE", Some(row), None),
            };
            let (keys, key_row) = match post {
                Some(row) => (after_keys.as_ref(), row),
                None => (before_keys.as_ref(), prev.unwrap_or(0)),
            };
            *sequence += 1;
            let buf = &mut out.payload;
            buf.extend_from_slice(b"{\"prevStruct\":");
            self.write_image(before_columns.as_ref(), prev, buf);
            buf.extend_from_slice(b",\"postStruct\":");
            self.write_image(after_columns.as_ref(), post, buf);
            buf.extend_from_slice(b",\"allMetaData\":{\"checkpoint\":");
            buf.extend_from_slice(&timestamp);
            buf.extend_from_slice(b",\"record_primary_key\":");
            buf.extend_from_slice(&self.primary_key_names);
            buf.extend_from_slice(b",\"record_primary_value\":");
            write_key_values(keys.map_or(&[][..], Vec::as_slice), None, key_row, buf);
            buf.extend_from_slice(b",\"source_identity\":null,\"dbType\":");
            value::write_string(context.db_type, buf);
            buf.extend_from_slice(b",\"storeDataSequence\":");
            let store_sequence = u64::from(meta.timestamp) * 100_000 + *sequence % 100_000;
            buf.extend_from_slice(itoa::Buffer::new().format(store_sequence).as_bytes());
            buf.extend_from_slice(b",\"table_name\":");
            value::write_string(&context.table, buf);
            buf.extend_from_slice(b",\"db\":");
            value::write_string(&context.db_field, buf);
            buf.extend_from_slice(b",\"timestamp\":");
            buf.extend_from_slice(&timestamp);
            buf.extend_from_slice(b",\"uniqueId\":null,\"transId\":");
            buf.extend_from_slice(&position);
            buf.extend_from_slice(b",\"clusterId\":null,\"ddlType\":null},\"recordType\":\"");
            buf.extend_from_slice(record.as_bytes());
            buf.extend_from_slice(b"\"}");
            out.end_payload();
        }
    }

    pub fn encode_ddl(&mut self, statement: &str, meta: &ChangeMeta, out: &mut Messages) {
        let context = &self.context;
        let buf = &mut out.payload;
        buf.extend_from_slice(b"{\"prevStruct\":null,\"postStruct\":{\"ddl\":");
        value::write_string(statement, buf);
        if self.light_type.is_some() {
            buf.extend_from_slice(b",\"__light_type\":{\"ddl\":{\"schemaType\":\"VAR_STRING\"}}");
        }
        buf.extend_from_slice(b"},\"allMetaData\":{\"checkpoint\":");
        value::write_string(&meta.timestamp.to_string(), buf);
        buf.extend_from_slice(
            b",\"record_primary_key\":null,\"record_primary_value\":null,\"source_identity\":null,\
              \"dbType\":",
        );
        value::write_string(context.db_type, buf);
        buf.extend_from_slice(b",\"storeDataSequence\":null,\"table_name\":");
        value::write_string(&context.table, buf);
        buf.extend_from_slice(b",\"db\":");
        value::write_string(&context.db_field, buf);
        buf.extend_from_slice(b",\"timestamp\":");
        value::write_string(&meta.timestamp.to_string(), buf);
        buf.extend_from_slice(b",\"uniqueId\":null,\"transId\":");
        value::write_string(&meta.position, buf);
        buf.extend_from_slice(b",\"clusterId\":null,\"ddlType\":");
        value::write_string(super::ddl_type(statement), buf);
        buf.extend_from_slice(b"},\"recordType\":\"DDL\"}");
        out.end_payload();
    }
}

/// The key's values as one JSON string joined with `\u0001` (`"7"`), or with names for the
/// full-sync `checkpoint` (`"id=7"`); `null` for a table without a key.
fn write_key_values(keys: &[ValueWriter], names: Option<&[&str]>, row: usize, out: &mut Vec<u8>) {
    if keys.is_empty() {
        out.extend_from_slice(b"null");
        return;
    }
    out.push(b'"');
    for (n, writer) in keys.iter().enumerate() {
        if n > 0 {
            out.extend_from_slice(b"\\u0001");
        }
        if let Some(names) = names {
            value::write_escaped(names[n], out);
            out.push(b'=');
        }
        writer.write_text(row, out);
    }
    out.push(b'"');
}
