//! Value encoders shared by the formats: one writer per column, chosen once per batch from the
//! Arrow array and the MySQL type, writing JSON straight into the message buffer.
//!
//! The Default family (reference §6.1) is here: integers and DECIMAL as exact JSON numbers,
//! binary as Base64, DATE/TIME/DATETIME as text, TIMESTAMP as `"<epoch seconds>.<fraction>"`,
//! zero and invalid dates as their original text.

use std::io::Write;

use arrow::array::{
    Array, AsArray, BinaryArray, Date32Array, Decimal128Array, Decimal256Array, Float32Array,
    Float64Array, StringArray, Time64MicrosecondArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{
    DataType, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type,
    UInt64Type,
};
use base64::Engine;

use crate::plan::SqlType;
use crate::plan::types::{DateTimeValue, DateValue};

/// A typed view of one column of a batch.
pub enum ValueWriter<'a> {
    /// `TINYINT(1)`: Debezium prints it as a boolean.
    Bool(&'a dyn Array, fn(&dyn Array, usize) -> i64),
    /// SET: Maxwell prints it as an array of members.
    Set(&'a StringArray),
    Int(IntColumn<'a>),
    Float32(&'a Float32Array),
    Float64(&'a Float64Array),
    Decimal128(&'a Decimal128Array, i8),
    Decimal256(&'a Decimal256Array, i8),
    Text(&'a StringArray),
    Bytes(&'a BinaryArray),
    Date(&'a Date32Array),
    Time(&'a Time64MicrosecondArray),
    DateTime(&'a TimestampMicrosecondArray),
    Timestamp(&'a TimestampMicrosecondArray),
}

/// Integer columns of every width, read as i64 or u64.
pub enum IntColumn<'a> {
    Signed(&'a dyn Array, fn(&dyn Array, usize) -> i64),
    Unsigned(&'a dyn Array, fn(&dyn Array, usize) -> u64),
}

macro_rules! int_reader {
    ($t:ty, $out:ty) => {
        |array: &dyn Array, row: usize| array.as_primitive::<$t>().value(row) as $out
    };
}

impl<'a> ValueWriter<'a> {
    /// The writer for a column; `None` for an array type no MySQL column maps to.
    pub fn new(array: &'a dyn Array, sql: &SqlType) -> Option<ValueWriter<'a>> {
        if let (SqlType::Bool, DataType::Int8) = (sql, array.data_type()) {
            return Some(ValueWriter::Bool(array, int_reader!(Int8Type, i64)));
        }
        if let (SqlType::Set { .. }, DataType::Utf8) = (sql, array.data_type()) {
            return Some(ValueWriter::Set(array.as_string()));
        }
        Some(match array.data_type() {
            DataType::Int8 => {
                ValueWriter::Int(IntColumn::Signed(array, int_reader!(Int8Type, i64)))
            }
            DataType::Int16 => {
                ValueWriter::Int(IntColumn::Signed(array, int_reader!(Int16Type, i64)))
            }
            DataType::Int32 => {
                ValueWriter::Int(IntColumn::Signed(array, int_reader!(Int32Type, i64)))
            }
            DataType::Int64 => {
                ValueWriter::Int(IntColumn::Signed(array, int_reader!(Int64Type, i64)))
            }
            DataType::UInt8 => {
                ValueWriter::Int(IntColumn::Unsigned(array, int_reader!(UInt8Type, u64)))
            }
            DataType::UInt16 => {
                ValueWriter::Int(IntColumn::Unsigned(array, int_reader!(UInt16Type, u64)))
            }
            DataType::UInt32 => {
                ValueWriter::Int(IntColumn::Unsigned(array, int_reader!(UInt32Type, u64)))
            }
            DataType::UInt64 => {
                ValueWriter::Int(IntColumn::Unsigned(array, int_reader!(UInt64Type, u64)))
            }
            DataType::Float32 => ValueWriter::Float32(array.as_primitive()),
            DataType::Float64 => ValueWriter::Float64(array.as_primitive()),
            DataType::Decimal128(_, s) => ValueWriter::Decimal128(array.as_primitive(), *s),
            DataType::Decimal256(_, s) => ValueWriter::Decimal256(array.as_primitive(), *s),
            DataType::Utf8 => ValueWriter::Text(array.as_string()),
            DataType::Binary => ValueWriter::Bytes(array.as_binary()),
            DataType::Date32 => ValueWriter::Date(array.as_primitive()),
            DataType::Time64(_) => ValueWriter::Time(array.as_primitive()),
            DataType::Timestamp(..) => match sql {
                SqlType::Timestamp { .. } => ValueWriter::Timestamp(array.as_primitive()),
                _ => ValueWriter::DateTime(array.as_primitive()),
            },
            _ => return None,
        })
    }

    fn array(&self) -> &dyn Array {
        match self {
            ValueWriter::Int(IntColumn::Signed(a, _) | IntColumn::Unsigned(a, _)) => *a,
            ValueWriter::Bool(a, _) => *a,
            ValueWriter::Set(a) => *a,
            ValueWriter::Float32(a) => *a,
            ValueWriter::Float64(a) => *a,
            ValueWriter::Decimal128(a, _) => *a,
            ValueWriter::Decimal256(a, _) => *a,
            ValueWriter::Text(a) => *a,
            ValueWriter::Bytes(a) => *a,
            ValueWriter::Date(a) => *a,
            ValueWriter::Time(a) => *a,
            ValueWriter::DateTime(a) | ValueWriter::Timestamp(a) => *a,
        }
    }

    pub fn is_null(&self, row: usize) -> bool {
        self.array().is_null(row)
    }

    /// Writes the value as the Default family prints it (reference §6.1).
    pub fn write_default(&self, row: usize, out: &mut Vec<u8>) {
        if self.is_null(row) {
            out.extend_from_slice(b"null");
            return;
        }
        match self {
            ValueWriter::Text(_)
            | ValueWriter::Set(_)
            | ValueWriter::Bytes(_)
            | ValueWriter::Date(_) => {
                out.push(b'"');
                self.write_text(row, out);
                out.push(b'"');
            }
            ValueWriter::Time(_) | ValueWriter::DateTime(_) | ValueWriter::Timestamp(_) => {
                out.push(b'"');
                self.write_text(row, out);
                out.push(b'"');
            }
            _ => self.write_text(row, out),
        }
    }

    /// The value as unquoted text, JSON-escaped: numbers as digits, strings as their content,
    /// binary as Base64. Used inside quoted strings (`record_primary_value`) and by
    /// [`Self::write_default`].
    pub fn write_text(&self, row: usize, out: &mut Vec<u8>) {
        match self {
            ValueWriter::Bool(a, read) => {
                out.extend_from_slice(itoa::Buffer::new().format(read(*a, row)).as_bytes())
            }
            ValueWriter::Set(a) => write_escaped(a.value(row), out),
            ValueWriter::Int(IntColumn::Signed(a, read)) => {
                out.extend_from_slice(itoa::Buffer::new().format(read(*a, row)).as_bytes())
            }
            ValueWriter::Int(IntColumn::Unsigned(a, read)) => {
                out.extend_from_slice(itoa::Buffer::new().format(read(*a, row)).as_bytes())
            }
            ValueWriter::Float32(a) => write_float(a.value(row) as f64, Some(a.value(row)), out),
            ValueWriter::Float64(a) => write_float(a.value(row), None, out),
            ValueWriter::Decimal128(a, scale) => {
                write_decimal(itoa::Buffer::new().format(a.value(row)), *scale, out)
            }
            ValueWriter::Decimal256(a, scale) => {
                // Up to 77 digits and a sign, formatted on the stack: no String per value.
                let mut digits = [0u8; 80];
                let mut cursor = std::io::Cursor::new(&mut digits[..]);
                let _ = std::io::Write::write_fmt(&mut cursor, format_args!("{}", a.value(row)));
                let len = cursor.position() as usize;
                write_decimal(
                    std::str::from_utf8(&digits[..len]).unwrap_or("0"),
                    *scale,
                    out,
                )
            }
            ValueWriter::Text(a) => write_escaped(a.value(row), out),
            ValueWriter::Bytes(a) => write_base64(a.value(row), out),
            ValueWriter::Date(a) => write_date(a.value(row), out),
            ValueWriter::Time(a) => write_time(a.value(row), out),
            ValueWriter::DateTime(a) => write_datetime(a.value(row), out),
            ValueWriter::Timestamp(a) => write_epoch(a.value(row), out),
        }
    }
}

impl ValueWriter<'_> {
    /// The Debezium family (reference §6.2): BOOL as a boolean, DECIMAL as a string, binary as
    /// upper-case hex, DATE as days, TIME as µs, DATETIME as ms (wall clock as UTC), TIMESTAMP as
    /// an ISO-8601 UTC string, BIGINT UNSIGNED beyond the signed range as a string. Zero and
    /// invalid dates are `null` (no number means them).
    pub fn write_debezium(&self, row: usize, out: &mut Vec<u8>) {
        if self.is_null(row) {
            out.extend_from_slice(b"null");
            return;
        }
        match self {
            ValueWriter::Bool(a, read) => out.extend_from_slice(if read(*a, row) != 0 {
                b"true"
            } else {
                b"false"
            }),
            ValueWriter::Int(IntColumn::Unsigned(a, read)) if read(*a, row) > i64::MAX as u64 => {
                out.push(b'"');
                self.write_text(row, out);
                out.push(b'"');
            }
            ValueWriter::Decimal128(..) | ValueWriter::Decimal256(..) => {
                out.push(b'"');
                self.write_text(row, out);
                out.push(b'"');
            }
            ValueWriter::Bytes(a) => {
                out.push(b'"');
                for byte in a.value(row) {
                    let _ = write!(out, "{byte:02X}");
                }
                out.push(b'"');
            }
            ValueWriter::Date(a) => match DateValue::from_arrow(a.value(row)) {
                DateValue::Days(days) => {
                    out.extend_from_slice(itoa::Buffer::new().format(days).as_bytes())
                }
                DateValue::Invalid { .. } => out.extend_from_slice(b"null"),
            },
            ValueWriter::Time(a) => {
                out.extend_from_slice(itoa::Buffer::new().format(a.value(row)).as_bytes())
            }
            ValueWriter::DateTime(a) => match DateTimeValue::from_arrow(a.value(row)) {
                DateTimeValue::Micros(micros) => out.extend_from_slice(
                    itoa::Buffer::new()
                        .format(micros.div_euclid(1000))
                        .as_bytes(),
                ),
                DateTimeValue::Invalid { .. } => out.extend_from_slice(b"null"),
            },
            ValueWriter::Timestamp(a) => match DateTimeValue::from_arrow(a.value(row)) {
                DateTimeValue::Micros(_) => {
                    out.push(b'"');
                    write_datetime_iso(a.value(row), out);
                    out.extend_from_slice(b"Z\"");
                }
                DateTimeValue::Invalid { .. } => out.extend_from_slice(b"null"),
            },
            _ => self.write_default(row, out),
        }
    }

    /// Maxwell (reference §6.3): the Default values, except SET as an array of members and
    /// DATETIME/TIMESTAMP as `YYYY-MM-DD HH:mm:ss[.ffffff]` (TIMESTAMP in UTC), six fraction digits
    /// when the column has a fraction.
    pub fn write_maxwell(&self, row: usize, fsp: u8, out: &mut Vec<u8>) {
        if self.is_null(row) {
            out.extend_from_slice(b"null");
            return;
        }
        match self {
            ValueWriter::Set(a) => {
                out.push(b'[');
                for (i, member) in a
                    .value(row)
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .enumerate()
                {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_string(member, out);
                }
                out.push(b']');
            }
            ValueWriter::DateTime(a) | ValueWriter::Timestamp(a) => {
                let value = a.value(row);
                out.push(b'"');
                match DateTimeValue::from_arrow(value) {
                    DateTimeValue::Micros(micros) if fsp > 0 => {
                        write_datetime(micros - micros.rem_euclid(1_000_000), out);
                        let _ = write!(out, ".{:06}", micros.rem_euclid(1_000_000));
                    }
                    _ => write_datetime(value, out),
                }
                out.push(b'"');
            }
            _ => self.write_default(row, out),
        }
    }
}

/// `YYYY-MM-DDTHH:mm:ss[.ffffff]` of an instant in µs (trailing fraction zeros dropped).
fn write_datetime_iso(micros: i64, out: &mut Vec<u8>) {
    let start = out.len();
    write_datetime(micros, out);
    if let Some(space) = out[start..].iter().position(|&b| b == b' ') {
        out[start + space] = b'T';
    }
}

/// FLOAT and DOUBLE: the shortest text that reads back as the same value, with an exponent only
/// outside 1e-5..1e16 (so huge and tiny values stay short). NaN and infinity cannot be stored in
/// MySQL; they would print as `null`.
fn write_float(value: f64, single: Option<f32>, out: &mut Vec<u8>) {
    if !value.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    let magnitude = value.abs();
    let plain = magnitude == 0.0 || (1e-5..1e16).contains(&magnitude);
    let _ = match (single, plain) {
        (Some(f), true) => write!(out, "{f}"),
        (Some(f), false) => write!(out, "{f:e}"),
        (None, true) => write!(out, "{value}"),
        (None, false) => write!(out, "{value:e}"),
    };
}

/// Digits of the unscaled integer (`-1250`) and a scale (2) → `-12.50`.
fn write_decimal(digits: &str, scale: i8, out: &mut Vec<u8>) {
    let (negative, digits) = match digits.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, digits),
    };
    if negative {
        out.push(b'-');
    }
    let scale = scale.max(0) as usize;
    if scale == 0 {
        out.extend_from_slice(digits.as_bytes());
        return;
    }
    if digits.len() <= scale {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', scale - digits.len()));
        out.extend_from_slice(digits.as_bytes());
    } else {
        let (int, frac) = digits.split_at(digits.len() - scale);
        out.extend_from_slice(int.as_bytes());
        out.push(b'.');
        out.extend_from_slice(frac.as_bytes());
    }
}

/// JSON string content with `"`, `\` and control characters escaped.
pub fn write_escaped(text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                let _ = write!(out, "\\u{b:04x}");
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// A whole JSON string, quotes included.
pub fn write_string(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    write_escaped(text, out);
    out.push(b'"');
}

fn write_base64(bytes: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + bytes.len().div_ceil(3) * 4, 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(bytes, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
}

fn two(value: u32, out: &mut Vec<u8>) {
    out.push(b'0' + (value / 10 % 10) as u8);
    out.push(b'0' + (value % 10) as u8);
}

fn write_ymd(year: u32, month: u32, day: u32, out: &mut Vec<u8>) {
    two(year / 100, out);
    two(year % 100, out);
    out.push(b'-');
    two(month, out);
    out.push(b'-');
    two(day, out);
}

/// `.123` for 123000 µs: MySQL's fraction with trailing zeros dropped (nothing for 0).
fn write_fraction(micros: u32, out: &mut Vec<u8>) {
    if micros == 0 {
        return;
    }
    let mut digits = [0u8; 6];
    let mut rest = micros;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let len = 6 - digits.iter().rev().take_while(|&&d| d == b'0').count();
    out.push(b'.');
    out.extend_from_slice(&digits[..len]);
}

fn write_date(value: i32, out: &mut Vec<u8>) {
    match DateValue::from_arrow(value) {
        DateValue::Days(days) => {
            let (y, m, d) = crate::temporal::civil_from_days(days as i64);
            write_ymd(y as u32, m, d, out);
        }
        DateValue::Invalid { year, month, day } => write_ymd(year, month, day, out),
    }
}

fn write_hms(hour: u32, minute: u32, second: u32, micros: u32, out: &mut Vec<u8>) {
    if hour >= 100 {
        out.extend_from_slice(itoa::Buffer::new().format(hour).as_bytes());
    } else {
        two(hour, out);
    }
    out.push(b':');
    two(minute, out);
    out.push(b':');
    two(second, out);
    write_fraction(micros, out);
}

fn write_time(micros: i64, out: &mut Vec<u8>) {
    if micros < 0 {
        out.push(b'-');
    }
    let micros = micros.unsigned_abs();
    let seconds = micros / 1_000_000;
    write_hms(
        (seconds / 3600) as u32,
        (seconds / 60 % 60) as u32,
        (seconds % 60) as u32,
        (micros % 1_000_000) as u32,
        out,
    );
}

/// `YYYY-MM-DD HH:mm:ss[.ffffff]` of a DATETIME (its wall clock), original text when invalid.
pub fn write_datetime(value: i64, out: &mut Vec<u8>) {
    match DateTimeValue::from_arrow(value) {
        DateTimeValue::Micros(micros) => {
            let seconds = micros.div_euclid(1_000_000);
            let (y, m, d) = crate::temporal::civil_from_days(seconds.div_euclid(86_400));
            let in_day = seconds.rem_euclid(86_400) as u32;
            write_ymd(y as u32, m, d, out);
            out.push(b' ');
            write_hms(
                in_day / 3600,
                in_day / 60 % 60,
                in_day % 60,
                micros.rem_euclid(1_000_000) as u32,
                out,
            );
        }
        DateTimeValue::Invalid {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
        } => {
            write_ymd(year, month, day, out);
            out.push(b' ');
            write_hms(hour, minute, second, micros, out);
        }
    }
}

/// A TIMESTAMP as `<epoch seconds>[.fraction]`; a zero TIMESTAMP as `0000-00-00 00:00:00`.
fn write_epoch(value: i64, out: &mut Vec<u8>) {
    match DateTimeValue::from_arrow(value) {
        DateTimeValue::Micros(micros) => {
            out.extend_from_slice(
                itoa::Buffer::new()
                    .format(micros.div_euclid(1_000_000))
                    .as_bytes(),
            );
            write_fraction(micros.rem_euclid(1_000_000) as u32, out);
        }
        DateTimeValue::Invalid { .. } => out.extend_from_slice(b"0000-00-00 00:00:00"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl Fn(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn temporal_values_print_as_oms_does() {
        let created = DateTimeValue::from_parts(2024, 5, 1, 10, 0, 0, 123_000).to_arrow();
        assert_eq!(
            text(|o| write_datetime(created, o)),
            "2024-05-01 10:00:00.123"
        );
        let updated = DateTimeValue::from_parts(2024, 5, 1, 2, 0, 0, 123_456).to_arrow();
        assert_eq!(text(|o| write_epoch(updated, o)), "1714528800.123456");
        let zero = DateTimeValue::from_parts(0, 0, 0, 0, 0, 0, 0).to_arrow();
        assert_eq!(text(|o| write_epoch(zero, o)), "0000-00-00 00:00:00");
        assert_eq!(text(|o| write_datetime(zero, o)), "0000-00-00 00:00:00");
        let invalid = DateValue::from_parts(2024, 2, 30).to_arrow();
        assert_eq!(text(|o| write_date(invalid, o)), "2024-02-30");
        assert_eq!(text(|o| write_date(19_844, o)), "2024-05-01");
        assert_eq!(
            text(|o| write_time(-((838 * 3600 + 59 * 60 + 59) * 1_000_000 + 500_000), o)),
            "-838:59:59.5"
        );
        assert_eq!(text(|o| write_time(36_060_000_000, o)), "10:01:00");
    }

    #[test]
    fn numbers_and_bytes_print_exactly() {
        assert_eq!(text(|o| write_decimal("1250", 2, o)), "12.50");
        assert_eq!(text(|o| write_decimal("-1", 2, o)), "-0.01");
        assert_eq!(text(|o| write_decimal("0", 3, o)), "0.000");
        assert_eq!(text(|o| write_decimal("42", 0, o)), "42");
        assert_eq!(text(|o| write_base64(&[1, 2], o)), "AQI=");
        assert_eq!(text(|o| write_base64(&[], o)), "");
        assert_eq!(text(|o| write_float(0.1, None, o)), "0.1");
        assert_eq!(text(|o| write_float(1.1f32 as f64, Some(1.1), o)), "1.1");
        assert_eq!(
            text(|o| write_float(f64::MAX, None, o)),
            "1.7976931348623157e308"
        );
        assert_eq!(text(|o| write_float(-2.5e-300, None, o)), "-2.5e-300");
        assert_eq!(
            text(|o| write_escaped("a\"b\\c\n\u{1}é😀", o)),
            "a\\\"b\\\\c\\n\\u0001é😀"
        );
    }
}
