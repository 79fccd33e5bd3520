//! The row images of a rows event, decoded straight into values.
//!
//! mysql_common's `BinlogRow` parses the table map's optional metadata again for every row and
//! builds a full `Column` for every column of every row (schema, table and column names copied
//! in, twice over), which the stream then throws away: a fifth of the catch-up CPU. This reads
//! the same bytes the same way — the present-columns and null bitmaps, the shared image of a
//! partial update, and each value with mysql_common's own value decoder (`BinlogValue`) — with
//! what the table map says worked out once per table map ([`RowLayout`]).
//!
//! It accepts and refuses exactly what `BinlogRow` does: a table map whose optional metadata
//! `BinlogRow` cannot read makes every row of its events an error, as there. Fuzzing and test
//! builds decode every row both ways and stop on any difference.

use std::io;
use std::ops::Index;

use mysql_async::Value;
use mysql_common::binlog::events::{OptionalMetaExtractor, RowsEventData, TableMapEvent};
use mysql_common::binlog::value::BinlogValue;
use mysql_common::constants::ColumnType;
use mysql_common::io::ParseBuf;
use mysql_common::misc::raw::RawInt;
use mysql_common::misc::raw::int::LenEnc;
use mysql_common::proto::MyDeserialize;

/// Partial JSON updates are stored when a shared image's value options have this bit.
const PARTIAL_JSON_UPDATES: u64 = 1;

/// One column as its values are decoded.
#[derive(Debug, Clone)]
struct ColumnLayout {
    column_type: ColumnType,
    meta: Vec<u8>,
    unsigned: bool,
    /// For JSON columns: which bit of a partial update's bitmap is this column's.
    json: Option<usize>,
}

/// How the rows of one table map's rows events are laid out, for events of `columns` columns.
#[derive(Debug, Clone)]
pub struct RowLayout {
    columns: Vec<ColumnLayout>,
    /// JSON columns in the whole table map: the size of a partial update's bitmap.
    json_columns: usize,
    /// Why no row of such an event can be read (the table map's metadata is damaged).
    damaged: Option<String>,
}

impl RowLayout {
    /// The layout of rows events of `columns` columns mapped by `tme`. Walks the columns as
    /// `BinlogRow` does for each row, so that what it cannot read is found here once.
    pub fn of(tme: &TableMapEvent<'_>, columns: u64) -> RowLayout {
        let mut layout = RowLayout {
            columns: Vec::new(),
            json_columns: tme.json_column_count(),
            damaged: None,
        };
        if let Err(e) = layout.walk(tme, columns) {
            layout.damaged = Some(e.to_string());
        }
        layout
    }

    fn walk(&mut self, tme: &TableMapEvent<'_>, columns: u64) -> io::Result<()> {
        let extractor = OptionalMetaExtractor::new(tme.iter_optional_meta())?;
        let mut signedness = extractor.iter_signedness();
        let mut charsets = extractor.iter_charset();
        let mut enum_and_set_charsets = extractor.iter_enum_and_set_charset();
        let mut primary_key = extractor.iter_primary_key();
        let mut names = extractor.iter_column_name();
        let mut json = 0;
        for i in 0..columns as usize {
            let column_type = match tme.get_column_type(i) {
                Ok(Some(column_type)) => column_type,
                Ok(None) => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "No column type"));
                }
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            };
            let meta = tme.get_column_metadata(i).unwrap_or(&[]).to_vec();
            let json_bit = (column_type == ColumnType::MYSQL_TYPE_JSON).then(|| {
                json += 1;
                json - 1
            });
            let unsigned = column_type.is_numeric_type() && signedness.next().unwrap_or(false);
            // Read only to fail where `BinlogRow` fails: the values do not depend on them.
            if column_type.is_character_type() {
                charsets.next().transpose()?;
            } else if column_type.is_enum_or_set_type() {
                enum_and_set_charsets.next().transpose()?;
            }
            names.next().transpose()?;
            primary_key
                .next_if(|next| next.is_err() || next.as_ref().ok() == Some(&(i as u64)))
                .transpose()?;
            self.columns.push(ColumnLayout {
                column_type,
                meta,
                unsigned,
                json: json_bit,
            });
        }
        Ok(())
    }

    /// The before and after image of each row of `event` (whose table map this layout is of).
    pub fn rows<'a>(&'a self, event: &'a RowsEventData<'a>) -> Rows<'a> {
        let columns = event.num_columns() as usize;
        Rows {
            layout: self,
            before: present(event.columns_before_image(), columns),
            after: present(event.columns_after_image(), columns),
            partial: matches!(event, RowsEventData::PartialUpdateRowsEvent(_)),
            data: ParseBuf(event.rows_data()),
        }
    }
}

/// Which columns an image holds, from the event's bitmap (`columns` bits long).
fn present<B>(bits: Option<&B>, columns: usize) -> Option<Vec<bool>>
where
    B: Index<usize, Output = bool> + ?Sized,
{
    bits.map(|bits| (0..columns).map(|i| bits[i]).collect())
}

/// The rows of one rows event: `(before, after)` images, each `None` when the event has none.
pub struct Rows<'a> {
    layout: &'a RowLayout,
    before: Option<Vec<bool>>,
    after: Option<Vec<bool>>,
    partial: bool,
    data: ParseBuf<'a>,
}

/// A row's images.
pub type Images = (Option<Vec<Value>>, Option<Vec<Value>>);

impl Iterator for Rows<'_> {
    type Item = io::Result<Images>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.data.is_empty() {
            return None;
        }
        let mut images = || -> io::Result<Images> {
            let before = match &self.before {
                Some(present) => Some(image(self.layout, present, false, &mut self.data)?),
                None => None,
            };
            let after = match &self.after {
                Some(present) => Some(image(self.layout, present, self.partial, &mut self.data)?),
                None => None,
            };
            Ok((before, after))
        };
        Some(images())
    }
}

/// One row image: the present columns' values (NULL for a null one).
fn image<'a>(
    layout: &'a RowLayout,
    present: &[bool],
    shared_image: bool,
    data: &mut ParseBuf<'a>,
) -> io::Result<Vec<Value>> {
    // A partial update's after image opens with its value options (WL#2955).
    let partial_bits: Option<&[u8]> = if shared_image {
        let options = *data.parse::<RawInt<LenEnc>>(())?;
        if options & PARTIAL_JSON_UPDATES > 0 {
            Some(data.parse(layout.json_columns.div_ceil(8))?)
        } else {
            None
        }
    } else {
        None
    };
    let count = present.iter().filter(|&&p| p).count();
    let nulls: &[u8] = data.parse(count.div_ceil(8))?;
    if let Some(damaged) = &layout.damaged {
        return Err(io::Error::new(io::ErrorKind::InvalidData, damaged.clone()));
    }
    let mut values = Vec::with_capacity(count);
    let columns = layout.columns.iter().zip(present).filter(|(_, p)| **p);
    for (at, (column, _)) in columns.enumerate() {
        if bit(nulls, at) {
            values.push(Value::NULL);
        } else {
            let is_partial = match (column.json, partial_bits) {
                (Some(k), Some(bits)) if k < layout.json_columns => bit(bits, k),
                _ => false,
            };
            let ctx = (
                column.column_type,
                column.meta.as_slice(),
                column.unsigned,
                is_partial,
            );
            let value = BinlogValue::deserialize(ctx, data)?;
            values.push(Value::try_from(value).map_err(|e| {
                io::Error::other(format!(
                    "{e} (partial JSON updates need binlog_row_value_options='')"
                ))
            })?);
        }
    }
    Ok(values)
}

/// Bit `i` of a bitmap, least significant bit first.
fn bit(bytes: &[u8], i: usize) -> bool {
    bytes.get(i / 8).is_some_and(|b| b >> (i % 8) & 1 == 1)
}

/// Fuzzing and test builds: what `layout` decodes from `event` must be what mysql_common's
/// `BinlogRow` decodes, row by row, up to the first row either cannot read.
#[cfg(any(test, fuzzing))]
pub fn assert_same_as_binlog_row(
    layout: &RowLayout,
    event: &RowsEventData<'_>,
    tme: &TableMapEvent<'_>,
) {
    let values =
        |row: Option<mysql_common::binlog::row::BinlogRow>| -> io::Result<Option<Vec<Value>>> {
            row.map(|row| {
                row.unwrap()
                    .into_iter()
                    .map(|v| Value::try_from(v).map_err(io::Error::other))
                    .collect()
            })
            .transpose()
        };
    let most = event.rows_data().len() + 1;
    let mut ours = layout.rows(event);
    let mut theirs = event.rows(tme);
    for n in 0..most {
        let theirs = theirs
            .next()
            .map(|row| row.and_then(|(before, after)| Ok((values(before)?, values(after)?))));
        match (ours.next(), theirs) {
            (None, None) => return,
            (Some(Err(_)), Some(Err(_))) => return,
            (Some(Ok(a)), Some(Ok(b))) => assert_eq!(
                format!("{a:?}"),
                format!("{b:?}"),
                "row {n}: the decoders disagree"
            ),
            (a, b) => panic!("row {n}: the decoders disagree: {a:?} / {b:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::source::binlog::{BinlogReader, Change, Op};

    /// Reads a recorded binlog to its end (the reader checks every rows event against
    /// `BinlogRow` in test builds): its row changes by kind, or the first error.
    fn read(bytes: Vec<u8>, file: &str) -> crate::Result<[usize; 3]> {
        let mut reader = BinlogReader::recorded(bytes, file)?;
        let mut kinds = [0; 3];
        while let Some(change) = futures::executor::block_on(reader.next())? {
            if let Change::Transaction { changes, .. } = change {
                for change in changes {
                    kinds[change.op as usize] += 1;
                }
            }
        }
        Ok(kinds)
    }

    fn testdata(path: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(path)
    }

    #[test]
    fn recorded_binlogs_decode_as_binlog_row_does() {
        // MySQL 8 built to its documented layout, and a MariaDB 10.11 binlog of a table of
        // every column type (FULL row metadata): inserts (one all NULL), updates, a delete.
        for (file, kinds) in [
            ("mysql8_dml_ddl.bin", [1, 1, 1]),
            ("mariadb_types.bin", [3, 3, 1]),
        ] {
            let bytes = std::fs::read(testdata("binlog").join(file)).expect("the fixture");
            let read = read(bytes, file).unwrap_or_else(|e| panic!("{file}: {e}"));
            let [insert, update, delete] =
                [Op::Insert, Op::Update, Op::Delete].map(|op| op as usize);
            assert_eq!(
                [read[insert], read[update], read[delete]],
                kinds,
                "{file}: inserts, updates, deletes"
            );
        }
    }

    #[test]
    fn inputs_the_fuzzer_found_decode_as_binlog_row_does() {
        let dir = testdata("fuzz/binlog_events");
        for entry in std::fs::read_dir(&dir).expect("the crash inputs") {
            let path = entry.expect("an entry").path();
            let mut bytes = b"\xfebin".to_vec();
            bytes.extend(std::fs::read(&path).expect("an input"));
            // An error or changes: never a panic, never a disagreement.
            let _ = read(bytes, "fuzz-bin.000001");
        }
    }
}
