//! The Default format (reference §7.1): `prevStruct`, `postStruct`, `allMetaData`, `recordType`.
//! Full-sync rows are `recordType: "ROW"` with the row in `postStruct` (docs/formats.md).

use arrow::record_batch::RecordBatch;

use super::value::{self, ValueWriter};
use super::{Messages, TableContext};

#[derive(Debug)]
pub struct DefaultEncoder {
    pub(super) context: TableContext,
    /// `"name":` for each sent column, with the separating comma before all but the first.
    column_prefixes: Vec<Vec<u8>>,
    /// `record_primary_key` as JSON (`"id"`, `"a\u0001b"`) or `null`.
    primary_key_names: Vec<u8>,
    /// The constant metadata after `record_primary_value` of a full-sync row.
    snapshot_tail: Vec<u8>,
}

impl DefaultEncoder {
    pub fn new(context: TableContext) -> DefaultEncoder {
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
