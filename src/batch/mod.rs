//! Rows from the source → Arrow `RecordBatch`es of the table's full schema, one builder per
//! column, values appended straight from the MySQL protocol's value kinds (no text round trips
//! except DECIMAL, which the protocol itself sends as text).
//!
//! Snapshot rows and binlog row events go through the same builder, so a value reads the same
//! either way. A binlog run of same-kind changes becomes a [`ChangeBatch`]: the operation, the
//! before and after images as two batches of the same schema, and where and when it committed
//! (design.md §1). Snapshot rows stay plain batches of the table's schema: they are all
//! "after" images, with no commit time or position.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, Date32Builder, Decimal128Builder, Decimal256Builder, Float32Builder,
    Float64Builder, Int8Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder, UInt8Builder, UInt16Builder,
    UInt32Builder, UInt64Builder,
};
use arrow::datatypes::{DataType, SchemaRef, i256};
use arrow::record_batch::RecordBatch;
use mysql_async::Value;

use crate::error::{Error, Result as TribResult};
use crate::plan::SqlType;
use crate::plan::charset::ColumnText;
use crate::plan::types::{DateTimeValue, DateValue};
use crate::source::binlog::{Op, RowChange, decode_text, normalize_row};

/// A batch is cut early when its values pass this size: Arrow's 32-bit offsets cap one column at
/// 2 GiB, and memory stays bounded however wide the rows are.
pub const MAX_BATCH_BYTES: usize = 64 << 20;

/// Where a change came from, for the metadata the formats carry.
#[derive(Debug, Clone)]
pub struct ChangeMeta {
    /// Commit time, Unix seconds.
    pub timestamp: u32,
    /// The transaction's end position, `file:pos`.
    pub position: String,
}

/// Changes of one table, all of one kind, in source order.
#[derive(Debug)]
pub struct ChangeBatch {
    /// What the source did to the rows (the binlog event kind).
    pub op: Op,
    /// The rows before the change (UPDATE, DELETE).
    pub before: Option<RecordBatch>,
    /// The rows after the change (INSERT, UPDATE, snapshot rows).
    pub after: Option<RecordBatch>,
}

impl ChangeBatch {
    /// Rows in the batch.
    pub fn rows(&self) -> usize {
        self.before
            .as_ref()
            .or(self.after.as_ref())
            .map_or(0, RecordBatch::num_rows)
    }

    /// Row changes of one table and kind from the binlog, their images taken (not copied) and
    /// normalized to what a snapshot reads for the same columns, text decoded from each
    /// column's character set (`text`, one per column).
    pub fn from_binlog(
        schema: &SchemaRef,
        types: &[SqlType],
        text: &[ColumnText],
        changes: &mut [RowChange],
        table: &str,
        position: &str,
    ) -> TribResult<ChangeBatch> {
        let op = changes.first().map_or(Op::Insert, |c| c.op);
        let rows = changes.len();
        // UTF-8 tables (the usual case) skip the step entirely.
        let decode = text.iter().any(|t| *t != ColumnText::Keep);
        let mut image =
            |take: fn(&mut RowChange) -> Option<Vec<Value>>| -> TribResult<Option<RecordBatch>> {
                let mut builder: Option<BatchBuilder> = None;
                for change in changes.iter_mut() {
                    let Some(mut values) = take(change) else {
                        return Ok(None);
                    };
                    normalize_row(&mut values, types);
                    if decode {
                        decode_text(&mut values, text).map_err(|(i, e)| {
                            Error::Definite(format!(
                                "table {table}, column `{}`: {e}; at {position}",
                                schema.fields().get(i).map_or("?", |f| f.name().as_str())
                            ))
                        })?;
                    }
                    builder
                        .get_or_insert_with(|| BatchBuilder::new(Arc::clone(schema), rows))
                        .push_row(&values)
                        .map_err(|e| {
                            Error::Definite(format!(
                                "table {table}: a binlog row does not fit the table's schema ({e}) \
                             at {position}; did its DDL happen before tributary knew the table?"
                            ))
                        })?;
                }
                Ok(builder.map(|mut b| b.finish()))
            };
        let before = image(|c| c.before.take())?;
        let after = image(|c| c.after.take())?;
        Ok(ChangeBatch { op, before, after })
    }
}

/// Builds one table's rows into record batches of its full Arrow schema.
pub struct BatchBuilder {
    schema: SchemaRef,
    columns: Vec<Column>,
    rows: usize,
    bytes: usize,
}

enum Column {
    Int8(Int8Builder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    UInt8(UInt8Builder),
    UInt16(UInt16Builder),
    UInt32(UInt32Builder),
    UInt64(UInt64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Decimal128(Decimal128Builder, u8, i8),
    Decimal256(Decimal256Builder, u8, i8),
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
    Date32(Date32Builder),
    Time64(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder, Option<Arc<str>>),
}

impl Column {
    fn new(data_type: &DataType, capacity: usize) -> Column {
        match data_type {
            DataType::Int8 => Column::Int8(Int8Builder::with_capacity(capacity)),
            DataType::Int16 => Column::Int16(Int16Builder::with_capacity(capacity)),
            DataType::Int32 => Column::Int32(Int32Builder::with_capacity(capacity)),
            DataType::Int64 => Column::Int64(Int64Builder::with_capacity(capacity)),
            DataType::UInt8 => Column::UInt8(UInt8Builder::with_capacity(capacity)),
            DataType::UInt16 => Column::UInt16(UInt16Builder::with_capacity(capacity)),
            DataType::UInt32 => Column::UInt32(UInt32Builder::with_capacity(capacity)),
            DataType::UInt64 => Column::UInt64(UInt64Builder::with_capacity(capacity)),
            DataType::Float32 => Column::Float32(Float32Builder::with_capacity(capacity)),
            DataType::Float64 => Column::Float64(Float64Builder::with_capacity(capacity)),
            DataType::Decimal128(p, s) => {
                Column::Decimal128(Decimal128Builder::with_capacity(capacity), *p, *s)
            }
            DataType::Decimal256(p, s) => {
                Column::Decimal256(Decimal256Builder::with_capacity(capacity), *p, *s)
            }
            DataType::Utf8 => Column::Utf8(StringBuilder::with_capacity(capacity, capacity * 16)),
            DataType::Date32 => Column::Date32(Date32Builder::with_capacity(capacity)),
            DataType::Time64(_) => {
                Column::Time64(Time64MicrosecondBuilder::with_capacity(capacity))
            }
            DataType::Timestamp(_, tz) => Column::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(capacity),
                tz.clone(),
            ),
            // Binary, and the opaque placeholder of columns tributary does not send.
            _ => Column::Binary(BinaryBuilder::with_capacity(capacity, capacity * 16)),
        }
    }

    /// Appends one value; the error says what the value was.
    fn push(&mut self, value: &Value) -> Result<usize, String> {
        if let Value::NULL = value {
            self.push_null();
            return Ok(0);
        }
        let wrong = || format!("unexpected value {value:?}");
        macro_rules! int {
            ($builder:expr, $t:ty) => {{
                let v: $t = match value {
                    Value::Int(i) => <$t>::try_from(*i).map_err(|_| wrong())?,
                    Value::UInt(u) => <$t>::try_from(*u).map_err(|_| wrong())?,
                    Value::Bytes(b) => std::str::from_utf8(b)
                        .ok()
                        .and_then(|s| s.trim().parse::<$t>().ok())
                        .ok_or_else(wrong)?,
                    _ => return Err(wrong()),
                };
                $builder.append_value(v);
                Ok(std::mem::size_of::<$t>())
            }};
        }
        match self {
            Column::Int8(b) => int!(b, i8),
            Column::Int16(b) => int!(b, i16),
            Column::Int32(b) => int!(b, i32),
            Column::Int64(b) => int!(b, i64),
            Column::UInt8(b) => int!(b, u8),
            Column::UInt16(b) => int!(b, u16),
            Column::UInt32(b) => int!(b, u32),
            Column::UInt64(b) => int!(b, u64),
            Column::Float32(b) => {
                b.append_value(match value {
                    Value::Float(f) => *f,
                    Value::Double(d) => *d as f32,
                    Value::Bytes(t) => parse_text(t).ok_or_else(wrong)?,
                    _ => return Err(wrong()),
                });
                Ok(4)
            }
            Column::Float64(b) => {
                b.append_value(match value {
                    Value::Double(d) => *d,
                    Value::Float(f) => *f as f64,
                    Value::Bytes(t) => parse_text(t).ok_or_else(wrong)?,
                    _ => return Err(wrong()),
                });
                Ok(8)
            }
            Column::Decimal128(b, _, scale) => {
                let Value::Bytes(text) = value else {
                    return Err(wrong());
                };
                let v = parse_decimal(text, *scale).ok_or_else(wrong)?;
                b.append_value(v);
                Ok(16)
            }
            Column::Decimal256(b, _, scale) => {
                let Value::Bytes(text) = value else {
                    return Err(wrong());
                };
                b.append_value(parse_decimal256(text, *scale).ok_or_else(wrong)?);
                Ok(32)
            }
            // Text arrives as UTF-8 (a snapshot's connection is utf8mb4; the stream decodes
            // other character sets first): anything else is an error, never U+FFFD.
            Column::Utf8(b) => match value {
                Value::Bytes(bytes) => {
                    let text = std::str::from_utf8(bytes).map_err(|e| {
                        format!(
                            "a text value is not valid UTF-8 from byte {} on; it was not \
                             decoded from its character set",
                            e.valid_up_to()
                        )
                    })?;
                    b.append_value(text);
                    Ok(bytes.len())
                }
                Value::Int(i) => {
                    b.append_value(i.to_string());
                    Ok(8)
                }
                Value::UInt(u) => {
                    b.append_value(u.to_string());
                    Ok(8)
                }
                _ => Err(wrong()),
            },
            Column::Binary(b) => match value {
                Value::Bytes(bytes) => {
                    b.append_value(bytes);
                    Ok(bytes.len())
                }
                _ => Err(wrong()),
            },
            Column::Date32(b) => {
                let Value::Date(y, m, d, ..) = *value else {
                    return Err(wrong());
                };
                b.append_value(DateValue::from_parts(y as u32, m as u32, d as u32).to_arrow());
                Ok(4)
            }
            Column::Time64(b) => {
                let Value::Time(negative, days, h, m, s, us) = *value else {
                    return Err(wrong());
                };
                let micros = ((days as i64 * 24 + h as i64) * 3600 + m as i64 * 60 + s as i64)
                    * 1_000_000
                    + us as i64;
                b.append_value(if negative { -micros } else { micros });
                Ok(8)
            }
            Column::Timestamp(b, _) => {
                let Value::Date(y, mo, d, h, mi, s, us) = *value else {
                    return Err(wrong());
                };
                let v = DateTimeValue::from_parts(
                    y as u32, mo as u32, d as u32, h as u32, mi as u32, s as u32, us,
                );
                b.append_value(v.to_arrow());
                Ok(8)
            }
        }
    }

    fn push_null(&mut self) {
        match self {
            Column::Int8(b) => b.append_null(),
            Column::Int16(b) => b.append_null(),
            Column::Int32(b) => b.append_null(),
            Column::Int64(b) => b.append_null(),
            Column::UInt8(b) => b.append_null(),
            Column::UInt16(b) => b.append_null(),
            Column::UInt32(b) => b.append_null(),
            Column::UInt64(b) => b.append_null(),
            Column::Float32(b) => b.append_null(),
            Column::Float64(b) => b.append_null(),
            Column::Decimal128(b, ..) => b.append_null(),
            Column::Decimal256(b, ..) => b.append_null(),
            Column::Utf8(b) => b.append_null(),
            Column::Binary(b) => b.append_null(),
            Column::Date32(b) => b.append_null(),
            Column::Time64(b) => b.append_null(),
            Column::Timestamp(b, _) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Int8(b) => Arc::new(b.finish()),
            Column::Int16(b) => Arc::new(b.finish()),
            Column::Int32(b) => Arc::new(b.finish()),
            Column::Int64(b) => Arc::new(b.finish()),
            Column::UInt8(b) => Arc::new(b.finish()),
            Column::UInt16(b) => Arc::new(b.finish()),
            Column::UInt32(b) => Arc::new(b.finish()),
            Column::UInt64(b) => Arc::new(b.finish()),
            Column::Float32(b) => Arc::new(b.finish()),
            Column::Float64(b) => Arc::new(b.finish()),
            Column::Decimal128(b, p, s) => Arc::new(
                b.finish()
                    .with_precision_and_scale(*p, *s)
                    .expect("precision and scale come from a valid Arrow type"),
            ),
            Column::Decimal256(b, p, s) => Arc::new(
                b.finish()
                    .with_precision_and_scale(*p, *s)
                    .expect("precision and scale come from a valid Arrow type"),
            ),
            Column::Utf8(b) => Arc::new(b.finish()),
            Column::Binary(b) => Arc::new(b.finish()),
            Column::Date32(b) => Arc::new(b.finish()),
            Column::Time64(b) => Arc::new(b.finish()),
            Column::Timestamp(b, tz) => Arc::new(b.finish().with_timezone_opt(tz.clone())),
        }
    }
}

fn parse_text<T: std::str::FromStr>(bytes: &[u8]) -> Option<T> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

/// The integer types a DECIMAL's unscaled value is parsed into.
trait Unscaled: Copy {
    const ZERO: Self;
    fn push_digit(self, digit: u8) -> Option<Self>;
    fn negate(self) -> Option<Self>;
}

impl Unscaled for i128 {
    const ZERO: Self = 0;
    fn push_digit(self, digit: u8) -> Option<Self> {
        self.checked_mul(10)?.checked_add(digit as i128)
    }
    fn negate(self) -> Option<Self> {
        self.checked_neg()
    }
}

impl Unscaled for i256 {
    const ZERO: Self = i256::ZERO;
    fn push_digit(self, digit: u8) -> Option<Self> {
        self.checked_mul(i256::from_i128(10))?
            .checked_add(i256::from_i128(digit as i128))
    }
    fn negate(self) -> Option<Self> {
        self.checked_neg()
    }
}

/// `-123.45` with scale 2 → -12345; more fraction digits than the scale is an error (the server
/// sends exactly `scale` of them).
fn parse_unscaled<T: Unscaled>(text: &[u8], scale: i8) -> Option<T> {
    let (negative, digits) = match text.first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let mut value = T::ZERO;
    let mut fraction_digits: i8 = -1;
    for &c in digits {
        match c {
            b'0'..=b'9' => {
                value = value.push_digit(c - b'0')?;
                if fraction_digits >= 0 {
                    fraction_digits += 1;
                }
            }
            b'.' if fraction_digits < 0 => fraction_digits = 0,
            _ => return None,
        }
    }
    for _ in fraction_digits.max(0)..scale {
        value = value.push_digit(0)?;
    }
    if fraction_digits > scale {
        return None;
    }
    if negative {
        value.negate()
    } else {
        Some(value)
    }
}

pub fn parse_decimal(text: &[u8], scale: i8) -> Option<i128> {
    parse_unscaled(text, scale)
}

fn parse_decimal256(text: &[u8], scale: i8) -> Option<i256> {
    parse_unscaled(text, scale)
}

impl BatchBuilder {
    pub fn new(schema: SchemaRef, capacity: usize) -> BatchBuilder {
        let columns = schema
            .fields()
            .iter()
            .map(|f| Column::new(f.data_type(), capacity))
            .collect();
        BatchBuilder {
            schema,
            columns,
            rows: 0,
            bytes: 0,
        }
    }

    /// Appends a row; on error, names the column and the value.
    pub fn push_row(&mut self, values: &[Value]) -> Result<(), String> {
        if values.len() != self.columns.len() {
            return Err(format!(
                "the source sent {} columns, the table has {}",
                values.len(),
                self.columns.len()
            ));
        }
        for (i, (column, value)) in self.columns.iter_mut().zip(values).enumerate() {
            self.bytes += column
                .push(value)
                .map_err(|e| format!("column `{}`: {e}", self.schema.field(i).name()))?;
        }
        self.rows += 1;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Approximate bytes of the values appended since the last `finish`.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether the batch should be cut: `rows` long, or [`MAX_BATCH_BYTES`] of values.
    pub fn is_full(&self, rows: usize) -> bool {
        self.rows >= rows || self.bytes >= MAX_BATCH_BYTES
    }

    /// Drops the rows appended since the last `finish`: a chunk that is read again from its
    /// start must not send the rows of the attempt that failed.
    pub fn clear(&mut self) {
        for column in &mut self.columns {
            column.finish();
        }
        self.rows = 0;
        self.bytes = 0;
    }

    /// The rows appended so far as a batch; the builder starts over, keeping its buffers.
    pub fn finish(&mut self) -> RecordBatch {
        let arrays: Vec<ArrayRef> = self.columns.iter_mut().map(Column::finish).collect();
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(Arc::clone(&self.schema), arrays)
            .expect("every column builder matches its field")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::SqlType;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Decimal128Type, Schema};

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(parse_decimal(b"12.50", 2), Some(1250));
        assert_eq!(parse_decimal(b"-0.01", 2), Some(-1));
        assert_eq!(parse_decimal(b"7", 2), Some(700));
        assert_eq!(parse_decimal(b"1.234", 2), None);
        assert_eq!(parse_decimal(b"1x", 0), None);
        let wide = parse_decimal256(
            b"-99999999999999999999999999999999999.999999999999999999999999999999",
            30,
        )
        .unwrap();
        assert_eq!(
            wide.to_string(),
            "-99999999999999999999999999999999999999999999999999999999999999999"
        );
    }

    #[test]
    fn protocol_values_land_in_their_arrow_columns() {
        let fields = [
            ("id", "bigint(20) unsigned"),
            ("amount", "decimal(10,2)"),
            ("note", "varchar(10)"),
            ("d", "date"),
            ("t", "time(6)"),
            ("ts", "timestamp(6)"),
        ]
        .map(|(name, ty)| SqlType::parse(ty).arrow_field(name, true, ty).unwrap());
        let schema = Arc::new(Schema::new(fields.to_vec()));
        let mut builder = BatchBuilder::new(schema, 4);
        builder
            .push_row(&[
                Value::UInt(u64::MAX),
                Value::Bytes(b"12.50".to_vec()),
                Value::Bytes("héllo".as_bytes().to_vec()),
                Value::Date(0, 0, 0, 0, 0, 0, 0),
                Value::Time(true, 1, 2, 3, 4, 5),
                Value::Date(2024, 5, 1, 2, 0, 0, 123_456),
            ])
            .unwrap();
        builder
            .push_row(&[
                Value::UInt(1),
                Value::NULL,
                Value::NULL,
                Value::Date(2024, 5, 1, 0, 0, 0, 0),
                Value::NULL,
                Value::NULL,
            ])
            .unwrap();
        let error = builder
            .push_row(&[
                Value::Int(-1),
                Value::NULL,
                Value::NULL,
                Value::NULL,
                Value::NULL,
                Value::NULL,
            ])
            .unwrap_err();
        assert!(error.starts_with("column `id`"), "{error}");
        let batch = builder.finish();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(
            batch
                .column(0)
                .as_primitive::<arrow::datatypes::UInt64Type>()
                .value(0),
            u64::MAX
        );
        assert_eq!(
            batch.column(1).as_primitive::<Decimal128Type>().value(0),
            1250
        );
        assert!(batch.column(1).is_null(1));
        assert_eq!(batch.column(2).as_string::<i32>().value(0), "héllo");
        let zero = batch
            .column(3)
            .as_primitive::<arrow::datatypes::Date32Type>()
            .value(0);
        assert_eq!(
            DateValue::from_arrow(zero),
            DateValue::Invalid {
                year: 0,
                month: 0,
                day: 0
            }
        );
        let time = batch
            .column(4)
            .as_primitive::<arrow::datatypes::Time64MicrosecondType>()
            .value(0);
        assert_eq!(time, -(((24 + 2) * 3600 + 3 * 60 + 4) * 1_000_000 + 5));
        let ts = batch
            .column(5)
            .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
            .value(0);
        assert_eq!(ts, 1_714_528_800_123_456);
    }

    #[test]
    fn cleared_rows_are_not_in_the_next_batch() {
        let field = SqlType::parse("int")
            .arrow_field("id", false, "int")
            .unwrap();
        let mut builder = BatchBuilder::new(Arc::new(Schema::new(vec![field])), 4);
        for id in [1, 2] {
            builder.push_row(&[Value::Int(id)]).unwrap();
        }
        builder.clear();
        assert!(builder.is_empty());
        assert_eq!(builder.bytes(), 0);
        builder.push_row(&[Value::Int(3)]).unwrap();
        let batch = builder.finish();
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(
            batch
                .column(0)
                .as_primitive::<arrow::datatypes::Int32Type>()
                .value(0),
            3
        );
    }
}
