//! The kernels of MySQL functions and operators whose meaning DataFusion's built-ins do not
//! have, as one DataFusion scalar UDF parameterized by [`Func`]. Each works on whole Arrow arrays
//! (a constant argument, such as a LIKE pattern, is prepared once per batch); the translator in
//! [`super`] decides which one a filter needs and with which argument types.
//!
//! NULL in gives NULL out unless MySQL says otherwise (CONCAT_WS skips NULL arguments). Values
//! MySQL answers with NULL and a warning — a division by zero, an impossible date — are NULL
//! here; nothing here fails on data except a comparison its collation cannot weigh exactly
//! ([`super::collation::Inexact`]), which stops the run by design.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanBuilder, Date32Builder, Decimal128Builder,
    Float64Builder, Int64Builder, StringArray, StringBuilder, TimestampMicrosecondBuilder,
    UInt64Builder,
};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    Time64MicrosecondType, TimeUnit, TimestampMicrosecondType, UInt8Type, UInt16Type, UInt32Type,
    UInt64Type, i256,
};
use datafusion_common::{DataFusionError, Result, ScalarValue, exec_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::collation::{Collation, LikePattern};
use super::convert;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

impl CmpOp {
    /// DataFusion's operator for it.
    pub fn operator(self) -> datafusion_expr::Operator {
        use datafusion_expr::Operator;
        match self {
            CmpOp::Eq => Operator::Eq,
            CmpOp::NotEq => Operator::NotEq,
            CmpOp::Lt => Operator::Lt,
            CmpOp::LtEq => Operator::LtEq,
            CmpOp::Gt => Operator::Gt,
            CmpOp::GtEq => Operator::GtEq,
        }
    }

    fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Eq => ordering == Equal,
            CmpOp::NotEq => ordering != Equal,
            CmpOp::Lt => ordering == Less,
            CmpOp::LtEq => ordering != Greater,
            CmpOp::Gt => ordering == Greater,
            CmpOp::GtEq => ordering != Less,
        }
    }
}

/// How LENGTH counts a character set's bytes from its decoded text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteWidth {
    /// UTF-8 sets: the text's own bytes.
    Utf8,
    /// One byte a character (latin1, cp1251, …).
    Single,
    /// ASCII one byte, everything else two (gbk, big5, euckr; sjis/cp932 with their one-byte
    /// half-width katakana when `kana`).
    Double { kana: bool },
    /// utf16/utf16le: two bytes, four beyond the BMP; ucs2: two.
    Utf16,
    /// gb18030: what the encoder writes (1, 2 or 4 bytes).
    Gb18030,
}

impl ByteWidth {
    /// The rule for a character set, `None` when tributary cannot count its bytes.
    pub fn of_charset(charset: &str) -> Option<ByteWidth> {
        Some(match charset {
            "utf8mb4" | "utf8mb3" | "utf8" | "ascii" | "binary" => ByteWidth::Utf8,
            "latin1" | "latin2" | "latin5" | "latin7" | "cp1250" | "cp1251" | "cp1256"
            | "cp1257" | "cp866" | "koi8r" | "koi8u" | "greek" | "hebrew" | "macroman"
            | "tis620" => ByteWidth::Single,
            "gbk" | "gb2312" | "big5" | "euckr" | "hkscs" | "hkscs31" => {
                ByteWidth::Double { kana: false }
            }
            "sjis" | "cp932" => ByteWidth::Double { kana: true },
            "utf16" | "utf16le" | "ucs2" => ByteWidth::Utf16,
            "gb18030" | "gb18030_2022" => ByteWidth::Gb18030,
            _ => return None,
        })
    }

    fn count(self, text: &str) -> i64 {
        match self {
            ByteWidth::Utf8 => text.len() as i64,
            ByteWidth::Single => text.chars().count() as i64,
            ByteWidth::Double { kana } => text
                .chars()
                .map(|c| {
                    if c.is_ascii() || (kana && ('\u{FF61}'..='\u{FF9F}').contains(&c)) {
                        1
                    } else {
                        2
                    }
                })
                .sum(),
            ByteWidth::Utf16 => text.chars().map(|c| c.len_utf16() as i64 * 2).sum(),
            ByteWidth::Gb18030 => encoding_rs::GB18030.encode(text).0.len() as i64,
        }
    }
}

/// Which side TRIM works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrimSide {
    Both,
    Leading,
    Trailing,
}

/// A field of a date, date-time or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    Year,
    Quarter,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Microsecond,
}

/// An INTERVAL unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    Microsecond,
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl Unit {
    /// Whether adding it to a DATE gives a DATE (rather than a DATETIME).
    pub fn keeps_date(self) -> bool {
        matches!(
            self,
            Unit::Day | Unit::Week | Unit::Month | Unit::Quarter | Unit::Year
        )
    }
}

/// A REGEXP pattern, compiled once when the filter is planned.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub text: String,
    pub case_insensitive: bool,
    pub regex: regex::Regex,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.text == other.text && self.case_insensitive == other.case_insensitive
    }
}

impl Eq for Pattern {}

impl Hash for Pattern {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
        self.case_insensitive.hash(state);
    }
}

/// The functions: see each variant for its argument types (the translator casts to them).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Func {
    /// (Utf8, Utf8) → Boolean, under a collation.
    StrCmp(CmpOp, Collation),
    /// (Utf8 | Binary, Utf8 | Binary pattern) → Boolean, under a collation, with an escape.
    Like(Collation, Option<char>),
    /// (Utf8) → Boolean.
    Regexp(Pattern),
    /// (Utf8) → Float64, MySQL's reading of a string as a number.
    ToDouble,
    /// (integer | Decimal128 | Float64 | Utf8 | Boolean) → Int64, as CAST AS SIGNED.
    ToSigned,
    /// The same → UInt64, as CAST AS UNSIGNED.
    ToUnsigned,
    /// The same → Decimal128(precision, scale), as CAST AS DECIMAL (rounded, clamped).
    ToDecimal(u8, i8),
    /// (Decimal128) → Decimal128 of a smaller scale, rounded half away from zero.
    RoundDecimal(i8),
    /// (Decimal128, Decimal128) → Decimal128(38, scale): MySQL's division, truncated at
    /// `scale` digits; NULL on a zero divisor.
    DecimalDiv(i8),
    /// (Decimal128 | Float64, same) → Int64: DIV, truncated; NULL on a zero divisor.
    IntDiv,
    /// (integer | Decimal128 | Boolean | Date32 | Timestamp | Time64) → Utf8 as MySQL writes
    /// it; the value is the fractional-second digits of a date-time or time.
    ToText(u8),
    /// (Utf8...) → Utf8; NULL if any argument is.
    Concat,
    /// (separator, Utf8...) → Utf8; NULL arguments skipped.
    ConcatWs,
    /// (Utf8 | Binary) → Int64 bytes, in a character set.
    Length(ByteWidth),
    /// (Utf8 | Binary) → Int64 characters (bytes of Binary).
    CharLength,
    Lower,
    Upper,
    /// (Utf8, Int64 [, Int64]) → Utf8, MySQL's SUBSTRING (1-based, negative from the end).
    Substr,
    Left,
    Right,
    /// (Utf8 [, Utf8 remstr]) → Utf8: the whole remstr (default a space) removed repeatedly.
    Trim(TrimSide),
    /// (Utf8, Utf8, Utf8) → Utf8, case-sensitive as MySQL's REPLACE.
    Replace,
    /// (Date32 | Timestamp | Utf8) → Date32; NULL for text that is no date.
    DateOf,
    /// (Date32 | Timestamp | Utf8) → Timestamp.
    DateTimeOf,
    /// (Date32 | Timestamp | Time64 | Utf8) → Int64.
    Part(Part),
    /// (Date32 | Timestamp, Int64) → Date32 or Timestamp (the first argument's type).
    DateAdd(Unit),
    /// (Date32, Date32) → Int64 days.
    DateDiff,
}

/// A [`Func`] as a DataFusion UDF.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MysqlFunction {
    func: Func,
    name: String,
    signature: Signature,
}

impl MysqlFunction {
    pub fn udf(func: Func) -> Arc<ScalarUDF> {
        let name = format!("mysql_{}", func.name());
        Arc::new(ScalarUDF::new_from_impl(MysqlFunction {
            func,
            name,
            signature: Signature::variadic_any(Volatility::Immutable),
        }))
    }
}

impl Func {
    fn name(&self) -> String {
        match self {
            Func::StrCmp(op, c) => format!("cmp_{op:?}_{}", c.name).to_ascii_lowercase(),
            Func::Like(c, _) => format!("like_{}", c.name),
            Func::Regexp(p) => format!(
                "regexp{}[{:?}]",
                if p.case_insensitive { "_ci" } else { "" },
                p.text
            ),
            Func::ToDecimal(p, s) => format!("to_decimal_{p}_{s}"),
            Func::RoundDecimal(s) => format!("round_decimal_{s}"),
            Func::DecimalDiv(s) => format!("div_{s}"),
            Func::ToText(fsp) => format!("to_text_{fsp}"),
            Func::Length(w) => format!("length_{w:?}").to_ascii_lowercase(),
            Func::Trim(side) => format!("trim_{side:?}").to_ascii_lowercase(),
            Func::Part(p) => format!("{p:?}").to_ascii_lowercase(),
            Func::DateAdd(u) => format!("date_add_{u:?}").to_ascii_lowercase(),
            other => snake(&format!("{other:?}")),
        }
    }
}

fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl ScalarUDFImpl for MysqlFunction {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(match &self.func {
            Func::StrCmp(..) | Func::Like(..) | Func::Regexp(_) => DataType::Boolean,
            Func::ToDouble => DataType::Float64,
            Func::ToSigned
            | Func::IntDiv
            | Func::Length(_)
            | Func::CharLength
            | Func::Part(_)
            | Func::DateDiff => DataType::Int64,
            Func::ToUnsigned => DataType::UInt64,
            Func::ToDecimal(p, s) => DataType::Decimal128(*p, *s),
            Func::RoundDecimal(s) => match args.first() {
                Some(DataType::Decimal128(p, from)) => DataType::Decimal128(
                    (*p as i16 - (*from as i16 - *s as i16)).clamp(1, 38) as u8,
                    *s,
                ),
                other => return exec_err!("{} of {other:?}", self.name),
            },
            Func::DecimalDiv(s) => DataType::Decimal128(38, *s),
            Func::ToText(_)
            | Func::Concat
            | Func::ConcatWs
            | Func::Lower
            | Func::Upper
            | Func::Substr
            | Func::Left
            | Func::Right
            | Func::Trim(_)
            | Func::Replace => DataType::Utf8,
            Func::DateOf => DataType::Date32,
            Func::DateTimeOf => DataType::Timestamp(TimeUnit::Microsecond, None),
            Func::DateAdd(_) => match args.first() {
                Some(DataType::Date32) => DataType::Date32,
                _ => DataType::Timestamp(TimeUnit::Microsecond, None),
            },
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let array: ArrayRef = match &self.func {
            Func::Like(collation, escape) => like(&args.args, rows, collation, *escape)?,
            Func::StrCmp(op, collation) => compare_text(&args.args, rows, *op, collation)?,
            func => {
                let arrays = args
                    .args
                    .iter()
                    .map(|a| a.to_array(rows))
                    .collect::<Result<Vec<_>>>()?;
                evaluate(func, &arrays, rows)?
            }
        };
        Ok(ColumnarValue::Array(array))
    }
}

fn fail(message: impl Into<String>) -> DataFusionError {
    DataFusionError::Execution(message.into())
}

fn strings(array: &ArrayRef) -> Result<StringArray> {
    match array.data_type() {
        DataType::Utf8 => Ok(array.as_string::<i32>().clone()),
        _ => Ok(arrow::compute::cast(array, &DataType::Utf8)?
            .as_string::<i32>()
            .clone()),
    }
}

fn ints(array: &ArrayRef) -> Result<arrow::array::Int64Array> {
    Ok(arrow::compute::cast(array, &DataType::Int64)?
        .as_primitive::<Int64Type>()
        .clone())
}

/// A string function of one text argument.
fn map_text(array: &ArrayRef, mut f: impl FnMut(&str, &mut String)) -> Result<ArrayRef> {
    let input = strings(array)?;
    let mut builder = StringBuilder::with_capacity(input.len(), input.value_data().len());
    let mut buffer = String::new();
    for value in input.iter() {
        match value {
            Some(value) => {
                buffer.clear();
                f(value, &mut buffer);
                builder.append_value(&buffer);
            }
            None => builder.append_null(),
        }
    }
    Ok(Arc::new(builder.finish()))
}

fn evaluate(func: &Func, args: &[ArrayRef], rows: usize) -> Result<ArrayRef> {
    let arg = |i: usize| -> Result<&ArrayRef> {
        args.get(i)
            .ok_or_else(|| fail(format!("{func:?} lacks argument {i}")))
    };
    Ok(match func {
        Func::Regexp(pattern) => {
            let a = strings(arg(0)?)?;
            let mut out = BooleanBuilder::with_capacity(rows);
            for x in a.iter() {
                out.append_option(x.map(|x| pattern.regex.is_match(x)));
            }
            Arc::new(out.finish())
        }
        Func::ToDouble => {
            let a = strings(arg(0)?)?;
            let mut out = Float64Builder::with_capacity(rows);
            for x in a.iter() {
                out.append_option(x.map(convert::str_to_double));
            }
            Arc::new(out.finish())
        }
        Func::ToSigned => {
            let mut out = Int64Builder::with_capacity(rows);
            for_integer(arg(0)?, |v| {
                out.append_option(v.map(|v| match v {
                    IntValue::Exact(n) => n.clamp(i64::MIN.into(), i64::MAX.into()) as i64,
                    // BIGINT UNSIGNED reinterpreted, as MySQL does.
                    IntValue::Unsigned(n) => n as i64,
                    IntValue::Parsed(sign) => convert::signed_of(sign),
                }))
            })?;
            Arc::new(out.finish())
        }
        Func::ToUnsigned => {
            let mut out = UInt64Builder::with_capacity(rows);
            for_integer(arg(0)?, |v| {
                out.append_option(v.map(|v| match v {
                    IntValue::Exact(n) if n < 0 => (n.max(i64::MIN.into()) as i64) as u64,
                    IntValue::Exact(n) => n.min(u64::MAX.into()) as u64,
                    IntValue::Unsigned(n) => n,
                    IntValue::Parsed(sign) => convert::unsigned_of(sign),
                }))
            })?;
            Arc::new(out.finish())
        }
        Func::ToDecimal(precision, scale) => {
            let max = 10i128.pow(u32::from(*precision)) - 1;
            let mut out = Decimal128Builder::with_capacity(rows);
            let a = arg(0)?;
            let clamp = |v: i128| v.clamp(-max, max);
            match a.data_type() {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                    for x in strings(a)?.iter() {
                        out.append_option(x.map(|x| match convert::str_to_decimal(x, *scale) {
                            Some(v) => clamp(v),
                            None if x.trim_start().starts_with('-') => -max,
                            None => max,
                        }));
                    }
                }
                DataType::Float64 | DataType::Float32 => {
                    let f = arrow::compute::cast(a, &DataType::Float64)?;
                    for x in f.as_primitive::<Float64Type>().iter() {
                        out.append_option(x.map(|x| {
                            match convert::str_to_decimal(&format!("{x}"), *scale) {
                                Some(v) => clamp(v),
                                None if x < 0.0 => -max,
                                None => max,
                            }
                        }));
                    }
                }
                DataType::Decimal128(_, from) => {
                    for x in a.as_primitive::<Decimal128Type>().iter() {
                        out.append_option(x.map(|x| clamp(rescale(x, *from, *scale))));
                    }
                }
                _ => {
                    // Integers and booleans: exact in i128.
                    let wide = arrow::compute::cast(a, &DataType::Decimal128(38, 0))?;
                    for x in wide.as_primitive::<Decimal128Type>().iter() {
                        out.append_option(x.map(|x| clamp(rescale(x, 0, *scale))));
                    }
                }
            }
            Arc::new(out.finish().with_precision_and_scale(*precision, *scale)?)
        }
        Func::RoundDecimal(scale) => {
            let a = arg(0)?;
            let DataType::Decimal128(p, from) = a.data_type() else {
                return exec_err!("round_decimal of {}", a.data_type());
            };
            let to = DataType::Decimal128(
                (*p as i16 - (*from as i16 - *scale as i16)).clamp(1, 38) as u8,
                *scale,
            );
            let values: arrow::array::Decimal128Array = a
                .as_primitive::<Decimal128Type>()
                .unary(|x| rescale(x, *from, *scale));
            Arc::new(values.with_data_type(to))
        }
        Func::DecimalDiv(scale) => {
            let (a, b) = (arg(0)?, arg(1)?);
            let (DataType::Decimal128(_, s1), DataType::Decimal128(_, s2)) =
                (a.data_type(), b.data_type())
            else {
                return exec_err!(
                    "decimal division of {} and {}",
                    a.data_type(),
                    b.data_type()
                );
            };
            let mut out = Decimal128Builder::with_capacity(rows);
            let (a, b) = (
                a.as_primitive::<Decimal128Type>(),
                b.as_primitive::<Decimal128Type>(),
            );
            for (x, y) in a.iter().zip(b.iter()) {
                match (x, y) {
                    (Some(_), Some(0)) | (None, _) | (_, None) => out.append_null(),
                    (Some(x), Some(y)) => {
                        let q = quotient(x, *s1, y, *s2, *scale)
                            .filter(|q| q.unsigned_abs() < 10u128.pow(38))
                            .ok_or_else(|| {
                                fail("a division in the filter is out of DECIMAL's range")
                            })?;
                        out.append_value(q);
                    }
                }
            }
            Arc::new(out.finish().with_precision_and_scale(38, *scale)?)
        }
        Func::IntDiv => {
            let (a, b) = (arg(0)?, arg(1)?);
            let mut out = Int64Builder::with_capacity(rows);
            match (a.data_type(), b.data_type()) {
                (DataType::Decimal128(_, s1), DataType::Decimal128(_, s2)) => {
                    let (a, b) = (
                        a.as_primitive::<Decimal128Type>(),
                        b.as_primitive::<Decimal128Type>(),
                    );
                    for (x, y) in a.iter().zip(b.iter()) {
                        match (x, y) {
                            (Some(_), Some(0)) | (None, _) | (_, None) => out.append_null(),
                            (Some(x), Some(y)) => {
                                let q = quotient(x, *s1, y, *s2, 0)
                                    .and_then(|q| i64::try_from(q).ok())
                                    .ok_or_else(|| {
                                        fail("DIV in the filter is out of BIGINT's range")
                                    })?;
                                out.append_value(q);
                            }
                        }
                    }
                }
                _ => {
                    let a = arrow::compute::cast(a, &DataType::Float64)?;
                    let b = arrow::compute::cast(b, &DataType::Float64)?;
                    let (a, b) = (
                        a.as_primitive::<Float64Type>(),
                        b.as_primitive::<Float64Type>(),
                    );
                    for (x, y) in a.iter().zip(b.iter()) {
                        match (x, y) {
                            (Some(x), Some(y)) if y != 0.0 => {
                                let q = (x / y).trunc();
                                if q.abs() >= 9.223_372_036_854_776e18 {
                                    return exec_err!("DIV in the filter is out of BIGINT's range");
                                }
                                out.append_value(q as i64);
                            }
                            _ => out.append_null(),
                        }
                    }
                }
            }
            Arc::new(out.finish())
        }
        Func::ToText(fsp) => to_text(arg(0)?, *fsp)?,
        Func::Concat => {
            let parts = args.iter().map(strings).collect::<Result<Vec<_>>>()?;
            let mut out = StringBuilder::with_capacity(rows, 0);
            let mut buffer = String::new();
            for row in 0..rows {
                buffer.clear();
                let mut null = false;
                for part in &parts {
                    if part.is_null(row) {
                        null = true;
                        break;
                    }
                    buffer.push_str(part.value(row));
                }
                if null {
                    out.append_null();
                } else {
                    out.append_value(&buffer);
                }
            }
            Arc::new(out.finish())
        }
        Func::ConcatWs => {
            let parts = args.iter().map(strings).collect::<Result<Vec<_>>>()?;
            let (separator, parts) = parts
                .split_first()
                .ok_or_else(|| fail("CONCAT_WS without a separator"))?;
            let mut out = StringBuilder::with_capacity(rows, 0);
            let mut buffer = String::new();
            for row in 0..rows {
                if separator.is_null(row) {
                    out.append_null();
                    continue;
                }
                buffer.clear();
                let mut first = true;
                for part in parts.iter().filter(|p| !p.is_null(row)) {
                    if !first {
                        buffer.push_str(separator.value(row));
                    }
                    first = false;
                    buffer.push_str(part.value(row));
                }
                out.append_value(&buffer);
            }
            Arc::new(out.finish())
        }
        Func::Length(width) => {
            let a = arg(0)?;
            let mut out = Int64Builder::with_capacity(rows);
            if let Some(bytes) = a.as_binary_opt::<i32>() {
                for x in bytes.iter() {
                    out.append_option(x.map(|x| x.len() as i64));
                }
            } else {
                for x in strings(a)?.iter() {
                    out.append_option(x.map(|x| width.count(x)));
                }
            }
            Arc::new(out.finish())
        }
        Func::CharLength => {
            let a = arg(0)?;
            let mut out = Int64Builder::with_capacity(rows);
            if let Some(bytes) = a.as_binary_opt::<i32>() {
                for x in bytes.iter() {
                    out.append_option(x.map(|x| x.len() as i64));
                }
            } else {
                for x in strings(a)?.iter() {
                    out.append_option(x.map(|x| x.chars().count() as i64));
                }
            }
            Arc::new(out.finish())
        }
        Func::Lower => map_text(arg(0)?, |s, out| {
            out.extend(s.chars().map(|c| single(c.to_lowercase(), c)))
        })?,
        Func::Upper => map_text(arg(0)?, |s, out| {
            out.extend(s.chars().map(|c| single(c.to_uppercase(), c)))
        })?,
        Func::Substr | Func::Left | Func::Right => {
            let text = strings(arg(0)?)?;
            let first = ints(arg(1)?)?;
            let length = args.get(2).map(ints).transpose()?;
            let mut out = StringBuilder::with_capacity(rows, text.value_data().len());
            for row in 0..rows {
                if text.is_null(row)
                    || first.is_null(row)
                    || length.as_ref().is_some_and(|l| l.is_null(row))
                {
                    out.append_null();
                    continue;
                }
                let s = text.value(row);
                let n = first.value(row);
                let piece = match func {
                    Func::Left => take_chars(s, 0, n),
                    Func::Right => {
                        let count = s.chars().count() as i64;
                        if n <= 0 {
                            ""
                        } else {
                            take_chars(s, (count - n).max(0), n)
                        }
                    }
                    _ => substr(s, n, length.as_ref().map(|l| l.value(row))),
                };
                out.append_value(piece);
            }
            Arc::new(out.finish())
        }
        Func::Trim(side) => {
            let text = strings(arg(0)?)?;
            let remove = args.get(1).map(strings).transpose()?;
            let mut out = StringBuilder::with_capacity(rows, text.value_data().len());
            for row in 0..rows {
                if text.is_null(row) || remove.as_ref().is_some_and(|r| r.is_null(row)) {
                    out.append_null();
                    continue;
                }
                let r = remove.as_ref().map_or(" ", |r| r.value(row));
                let mut s = text.value(row);
                if !r.is_empty() {
                    if *side != TrimSide::Trailing {
                        while let Some(rest) = s.strip_prefix(r) {
                            s = rest;
                        }
                    }
                    if *side != TrimSide::Leading {
                        while let Some(rest) = s.strip_suffix(r) {
                            s = rest;
                        }
                    }
                }
                out.append_value(s);
            }
            Arc::new(out.finish())
        }
        Func::Replace => {
            let (text, from, to) = (strings(arg(0)?)?, strings(arg(1)?)?, strings(arg(2)?)?);
            let mut out = StringBuilder::with_capacity(rows, text.value_data().len());
            for row in 0..rows {
                if text.is_null(row) || from.is_null(row) || to.is_null(row) {
                    out.append_null();
                } else if from.value(row).is_empty() {
                    out.append_value(text.value(row));
                } else {
                    out.append_value(text.value(row).replace(from.value(row), to.value(row)));
                }
            }
            Arc::new(out.finish())
        }
        Func::DateOf => {
            let a = arg(0)?;
            let mut out = Date32Builder::with_capacity(rows);
            match a.data_type() {
                DataType::Date32 => return Ok(Arc::clone(a)),
                DataType::Timestamp(..) => {
                    for x in timestamps(a)?.iter() {
                        out.append_option(x.map(convert::datetime_to_date));
                    }
                }
                _ => {
                    for x in strings(a)?.iter() {
                        out.append_option(
                            x.and_then(convert::parse_datetime)
                                .map(|p| convert::parsed_date(&p)),
                        );
                    }
                }
            }
            Arc::new(out.finish())
        }
        Func::DateTimeOf => {
            let a = arg(0)?;
            let mut out = TimestampMicrosecondBuilder::with_capacity(rows);
            match a.data_type() {
                DataType::Date32 => {
                    for x in a.as_primitive::<Date32Type>().iter() {
                        out.append_option(x.map(convert::date_to_datetime));
                    }
                }
                DataType::Timestamp(..) => {
                    for x in timestamps(a)?.iter() {
                        out.append_option(x);
                    }
                }
                _ => {
                    for x in strings(a)?.iter() {
                        out.append_option(
                            x.and_then(convert::parse_datetime)
                                .map(|p| p.value.to_arrow()),
                        );
                    }
                }
            }
            Arc::new(out.finish())
        }
        Func::Part(part) => {
            let a = arg(0)?;
            let mut out = Int64Builder::with_capacity(rows);
            let date = |(y, m, d): (i64, u32, u32)| (y, m, d, 0, 0, 0, 0);
            let mut push = |fields: Option<(i64, u32, u32, u32, u32, u32, u32)>| {
                out.append_option(fields.map(|(y, mo, d, h, mi, s, us)| match part {
                    Part::Year => y,
                    Part::Quarter => (i64::from(mo) + 2) / 3,
                    Part::Month => mo.into(),
                    Part::Day => d.into(),
                    Part::Hour => h.into(),
                    Part::Minute => mi.into(),
                    Part::Second => s.into(),
                    Part::Microsecond => us.into(),
                }))
            };
            match a.data_type() {
                DataType::Date32 => {
                    for x in a.as_primitive::<Date32Type>().iter() {
                        push(x.map(|x| date(convert::date_fields(x))));
                    }
                }
                DataType::Timestamp(..) => {
                    for x in timestamps(a)?.iter() {
                        push(x.map(convert::datetime_fields));
                    }
                }
                DataType::Time64(_) => {
                    for x in a.as_primitive::<Time64MicrosecondType>().iter() {
                        push(x.map(|x| {
                            let us = x.unsigned_abs();
                            let s = us / 1_000_000;
                            (
                                0,
                                0,
                                0,
                                (s / 3600) as u32,
                                (s / 60 % 60) as u32,
                                (s % 60) as u32,
                                (us % 1_000_000) as u32,
                            )
                        }));
                    }
                }
                _ => {
                    for x in strings(a)?.iter() {
                        push(
                            x.and_then(convert::parse_datetime)
                                .map(|p| convert::datetime_fields(p.value.to_arrow())),
                        );
                    }
                }
            }
            Arc::new(out.finish())
        }
        Func::DateAdd(unit) => {
            let (a, amount) = (arg(0)?, ints(arg(1)?)?);
            match a.data_type() {
                DataType::Date32 => {
                    let mut out = Date32Builder::with_capacity(rows);
                    for (x, n) in a.as_primitive::<Date32Type>().iter().zip(amount.iter()) {
                        out.append_option(x.zip(n).and_then(|(x, n)| add_to_date(x, n, *unit)));
                    }
                    Arc::new(out.finish())
                }
                _ => {
                    let mut out = TimestampMicrosecondBuilder::with_capacity(rows);
                    for (x, n) in timestamps(a)?.iter().zip(amount.iter()) {
                        out.append_option(x.zip(n).and_then(|(x, n)| add_to_datetime(x, n, *unit)));
                    }
                    Arc::new(out.finish())
                }
            }
        }
        Func::DateDiff => {
            let (a, b) = (arg(0)?, arg(1)?);
            let mut out = Int64Builder::with_capacity(rows);
            for (x, y) in a
                .as_primitive::<Date32Type>()
                .iter()
                .zip(b.as_primitive::<Date32Type>().iter())
            {
                out.append_option(
                    x.and_then(convert::date_days)
                        .zip(y.and_then(convert::date_days))
                        .map(|(x, y)| x - y),
                );
            }
            Arc::new(out.finish())
        }
        Func::Like(..) | Func::StrCmp(..) => {
            return exec_err!("{func:?} is evaluated by its own kernel");
        }
    })
}

/// The one-character case mapping, else the character itself (MySQL maps character by
/// character: `UPPER('ß')` is `ß`).
fn single(mut mapped: impl Iterator<Item = char>, c: char) -> char {
    match (mapped.next(), mapped.next()) {
        (Some(m), None) => m,
        _ => c,
    }
}

fn timestamps(array: &ArrayRef) -> Result<arrow::array::TimestampMicrosecondArray> {
    let plain = arrow::compute::cast(array, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
    Ok(plain.as_primitive::<TimestampMicrosecondType>().clone())
}

fn pow10(exponent: u32) -> i256 {
    i256::from_i128(10)
        .checked_pow(exponent)
        .unwrap_or(i256::MAX)
}

/// `x·10^-sx / (y·10^-sy)` at `scale` decimal digits, truncated toward zero (MySQL's decimal
/// division and DIV); `None` when it does not fit in 128 bits.
fn quotient(x: i128, sx: i8, y: i128, sy: i8, scale: i8) -> Option<i128> {
    // = x · 10^(scale − sx + sy) / y
    let shift = i32::from(scale) - i32::from(sx) + i32::from(sy);
    let (num, den) = if shift >= 0 {
        (
            i256::from_i128(x).checked_mul(pow10(shift as u32))?,
            i256::from_i128(y),
        )
    } else {
        (
            i256::from_i128(x),
            i256::from_i128(y).checked_mul(pow10((-shift) as u32))?,
        )
    };
    num.checked_div(den)?.to_i128()
}

/// A decimal from scale `from` to scale `to`, rounding half away from zero.
fn rescale(value: i128, from: i8, to: i8) -> i128 {
    if to >= from {
        value.saturating_mul(10i128.saturating_pow((to - from) as u32))
    } else {
        let divisor = 10i128.saturating_pow((from - to) as u32);
        let (q, r) = (value / divisor, value % divisor);
        if r.unsigned_abs() * 2 >= divisor.unsigned_abs() {
            q + value.signum()
        } else {
            q
        }
    }
}

/// `n` characters of `s` from character `start` (both clamped).
fn take_chars(s: &str, start: i64, n: i64) -> &str {
    if n <= 0 || start < 0 {
        return "";
    }
    let mut indices = s
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(s.len()));
    let Some(begin) = indices.nth(start as usize) else {
        return "";
    };
    let end = s
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(s.len()))
        .nth((start + n) as usize)
        .unwrap_or(s.len());
    &s[begin..end.max(begin)]
}

/// MySQL's SUBSTRING(s, pos[, len]): 1-based; 0 gives ''; negative counts from the end.
fn substr(s: &str, pos: i64, len: Option<i64>) -> &str {
    let count = s.chars().count() as i64;
    let start = match pos {
        0 => return "",
        p if p > 0 => p - 1,
        p => count + p,
    };
    if start < 0 || start >= count {
        return "";
    }
    let n = match len {
        Some(l) if l <= 0 => return "",
        Some(l) => l.min(count - start),
        None => count - start,
    };
    take_chars(s, start, n)
}

fn add_to_date(value: i32, amount: i64, unit: Unit) -> Option<i32> {
    let (y, m, d) = convert::date_fields(value);
    convert::date_days(value)?;
    let days = match unit {
        Unit::Day => convert::days_of(y, m, d).checked_add(amount)?,
        Unit::Week => convert::days_of(y, m, d).checked_add(amount.checked_mul(7)?)?,
        Unit::Month | Unit::Quarter | Unit::Year => {
            let months = match unit {
                Unit::Month => amount,
                Unit::Quarter => amount.checked_mul(3)?,
                _ => amount.checked_mul(12)?,
            };
            let (y, m, d) = convert::add_months(y, m, d, months)?;
            convert::days_of(y, m, d)
        }
        _ => return None,
    };
    convert::days_to_date(days)
}

fn add_to_datetime(value: i64, amount: i64, unit: Unit) -> Option<i64> {
    if !convert::datetime_is_real(value) {
        return None;
    }
    let micros = |per: i64| value.checked_add(amount.checked_mul(per)?);
    let result = match unit {
        Unit::Microsecond => micros(1)?,
        Unit::Second => micros(1_000_000)?,
        Unit::Minute => micros(60_000_000)?,
        Unit::Hour => micros(3_600_000_000)?,
        Unit::Day => micros(86_400_000_000)?,
        Unit::Week => micros(7 * 86_400_000_000)?,
        Unit::Month | Unit::Quarter | Unit::Year => {
            let (y, m, d, ..) = convert::datetime_fields(value);
            let in_day = value.rem_euclid(86_400_000_000);
            let months = match unit {
                Unit::Month => amount,
                Unit::Quarter => amount.checked_mul(3)?,
                _ => amount.checked_mul(12)?,
            };
            let (y, m, d) = convert::add_months(y, m, d, months)?;
            convert::days_of(y, m, d) * 86_400_000_000 + in_day
        }
    };
    convert::micros_to_datetime(result)
}

/// An integer argument's value: exact (from signed integers, rounded decimals and doubles),
/// unsigned, or parsed from text (sign and saturated magnitude).
enum IntValue {
    Exact(i128),
    Unsigned(u64),
    Parsed((bool, u64)),
}

fn for_integer(array: &ArrayRef, mut f: impl FnMut(Option<IntValue>)) -> Result<()> {
    macro_rules! each {
        ($t:ty, $variant:ident, $as:ty) => {
            for x in array.as_primitive::<$t>().iter() {
                f(x.map(|x| IntValue::$variant(x as $as)));
            }
        };
    }
    match array.data_type() {
        DataType::Int8 => each!(Int8Type, Exact, i128),
        DataType::Int16 => each!(Int16Type, Exact, i128),
        DataType::Int32 => each!(Int32Type, Exact, i128),
        DataType::Int64 => each!(Int64Type, Exact, i128),
        DataType::UInt8 => each!(UInt8Type, Unsigned, u64),
        DataType::UInt16 => each!(UInt16Type, Unsigned, u64),
        DataType::UInt32 => each!(UInt32Type, Unsigned, u64),
        DataType::UInt64 => each!(UInt64Type, Unsigned, u64),
        DataType::Boolean => {
            for x in array.as_boolean().iter() {
                f(x.map(|x| IntValue::Exact(x.into())));
            }
        }
        DataType::Decimal128(_, scale) => {
            for x in array.as_primitive::<Decimal128Type>().iter() {
                f(x.map(|x| IntValue::Exact(rescale(x, *scale, 0))));
            }
        }
        DataType::Float64 | DataType::Float32 => {
            let doubles = arrow::compute::cast(array, &DataType::Float64)?;
            for x in doubles.as_primitive::<Float64Type>().iter() {
                // Doubles round half to even, as MySQL's rint().
                f(x.map(|x| IntValue::Exact(x.round_ties_even().clamp(-1e30, 1e30) as i128)));
            }
        }
        _ => {
            for x in strings(array)?.iter() {
                f(x.map(|x| IntValue::Parsed(convert::str_to_int(x))));
            }
        }
    }
    Ok(())
}

fn to_text(array: &ArrayRef, fsp: u8) -> Result<ArrayRef> {
    let mut out = StringBuilder::with_capacity(array.len(), array.len() * 8);
    let mut buffer = String::new();
    macro_rules! each {
        ($values:expr, $write:expr) => {
            for x in $values {
                match x {
                    Some(x) => {
                        buffer.clear();
                        #[allow(clippy::redundant_closure_call)]
                        ($write)(x, &mut buffer);
                        out.append_value(&buffer);
                    }
                    None => out.append_null(),
                }
            }
        };
    }
    match array.data_type() {
        DataType::Utf8 => return Ok(Arc::clone(array)),
        DataType::Date32 => each!(
            array.as_primitive::<Date32Type>().iter(),
            |x, b: &mut String| convert::format_date(x, b)
        ),
        DataType::Timestamp(..) => each!(timestamps(array)?.iter(), |x, b: &mut String| {
            convert::format_datetime(x, fsp, b)
        }),
        DataType::Time64(_) => each!(
            array.as_primitive::<Time64MicrosecondType>().iter(),
            |x, b: &mut String| convert::format_time(x, fsp, b)
        ),
        DataType::Decimal128(_, scale) => each!(
            array.as_primitive::<Decimal128Type>().iter(),
            |x, b: &mut String| convert::decimal_to_string(x, *scale, b)
        ),
        DataType::Boolean => each!(array.as_boolean().iter(), |x: bool, b: &mut String| b
            .push(if x { '1' } else { '0' })),
        DataType::Binary => {
            let bytes: &BinaryArray = array.as_binary::<i32>();
            each!(bytes.iter(), |x: &[u8], b: &mut String| b
                .push_str(&String::from_utf8_lossy(x)))
        }
        _ => {
            // Integers: Arrow writes them as MySQL does.
            return Ok(arrow::compute::cast(array, &DataType::Utf8)?);
        }
    }
    Ok(Arc::new(out.finish()))
}

/// LIKE: the pattern is compiled once when it is a constant, per row otherwise.
fn like(
    args: &[ColumnarValue],
    rows: usize,
    collation: &Collation,
    escape: Option<char>,
) -> Result<ArrayRef> {
    let [value, pattern] = args else {
        return exec_err!("LIKE takes two arguments");
    };
    let value = value.to_array(rows)?;
    let constant = match pattern {
        ColumnarValue::Scalar(ScalarValue::Utf8(text)) => Some(text.clone()),
        ColumnarValue::Scalar(ScalarValue::Null) => Some(None),
        _ => None,
    };
    let compile =
        |p: &str| LikePattern::compile(p, escape, collation).map_err(|e| fail(e.to_string()));
    let compiled = match &constant {
        Some(Some(p)) => Some(compile(p)?),
        _ => None,
    };
    let patterns = match constant {
        Some(_) => None,
        None => Some(strings(&pattern.to_array(rows)?)?),
    };
    let mut weights = Vec::new();
    let mut out = BooleanBuilder::with_capacity(rows);
    let binary = value.as_binary_opt::<i32>().cloned();
    let text = match binary {
        Some(_) => None,
        None => Some(strings(&value)?),
    };
    let mut per_row = None;
    for row in 0..rows {
        let p = match (&compiled, &patterns) {
            (Some(p), _) => p,
            (None, Some(ps)) if ps.is_valid(row) => per_row.insert(compile(ps.value(row))?),
            _ => {
                out.append_null();
                continue;
            }
        };
        match (&binary, &text) {
            (Some(b), _) if b.is_valid(row) => {
                weights.clear();
                weights.extend(b.value(row).iter().map(|&x| u32::from(x)));
                out.append_value(p.matches(&weights));
            }
            (_, Some(t)) if t.is_valid(row) => {
                collation
                    .weights_into(t.value(row), &mut weights)
                    .map_err(|e| fail(e.to_string()))?;
                out.append_value(p.matches(&weights));
            }
            _ => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}

/// A comparison of text under a collation; a constant side is read once.
fn compare_text(
    args: &[ColumnarValue],
    rows: usize,
    op: CmpOp,
    collation: &Collation,
) -> Result<ArrayRef> {
    let [left, right] = args else {
        return exec_err!("a comparison takes two arguments");
    };
    let holds = |x: &str, y: &str| -> Result<bool> {
        match op {
            CmpOp::Eq => collation.equal(x, y),
            CmpOp::NotEq => collation.equal(x, y).map(|e| !e),
            _ => collation.compare(x, y).map(|o| op.holds(o)),
        }
        .map_err(|e| fail(e.to_string()))
    };
    let constant = |v: &ColumnarValue| match v {
        ColumnarValue::Scalar(ScalarValue::Utf8(text)) => Some(text.clone()),
        ColumnarValue::Scalar(ScalarValue::Null) => Some(None),
        _ => None,
    };
    let mut out = BooleanBuilder::with_capacity(rows);
    match (constant(left), constant(right)) {
        (None, Some(y)) | (Some(y), None) => {
            let swapped = matches!(left, ColumnarValue::Scalar(_));
            let column = strings(&if swapped { right } else { left }.to_array(rows)?)?;
            for x in column.iter() {
                match (x, &y) {
                    (Some(x), Some(y)) if swapped => out.append_value(holds(y, x)?),
                    (Some(x), Some(y)) => out.append_value(holds(x, y)?),
                    _ => out.append_null(),
                }
            }
        }
        _ => {
            let (a, b) = (
                strings(&left.to_array(rows)?)?,
                strings(&right.to_array(rows)?)?,
            );
            for (x, y) in a.iter().zip(b.iter()) {
                match (x, y) {
                    (Some(x), Some(y)) => out.append_value(holds(x, y)?),
                    _ => out.append_null(),
                }
            }
        }
    }
    Ok(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substrings_follow_mysql() {
        assert_eq!(substr("hello", 0, None), "");
        assert_eq!(substr("hello", -3, None), "llo");
        assert_eq!(substr("hello", -3, Some(2)), "ll");
        assert_eq!(substr("hello", 2, Some(-1)), "");
        assert_eq!(substr("hello", 9, None), "");
        assert_eq!(substr("hello", -9, None), "");
        assert_eq!(substr("héllo", 2, Some(2)), "él");
        assert_eq!(take_chars("héllo", 0, 2), "hé");
        assert_eq!(take_chars("hello", 0, 9), "hello");
    }

    #[test]
    fn quotients_truncate_at_their_scale() {
        // 1/3 at nine digits; 2.00/3 at nine; -7 DIV 2; 7.5 DIV 2.
        assert_eq!(quotient(1, 0, 3, 0, 9), Some(333_333_333));
        assert_eq!(quotient(200, 2, 3, 0, 9), Some(666_666_666));
        assert_eq!(quotient(-7, 0, 2, 0, 0), Some(-3));
        assert_eq!(quotient(75, 1, 2, 0, 0), Some(3));
        assert_eq!(quotient(10, 0, 25, 1, 4), Some(40_000));
    }

    #[test]
    fn decimals_round_half_away_from_zero() {
        assert_eq!(rescale(25, 1, 0), 3);
        assert_eq!(rescale(-25, 1, 0), -3);
        assert_eq!(rescale(24, 1, 0), 2);
        assert_eq!(rescale(3, 0, 2), 300);
    }

    #[test]
    fn dates_add_months_and_days() {
        let d = |y, m, day| crate::plan::types::DateValue::from_parts(y, m, day).to_arrow();
        assert_eq!(
            add_to_date(d(2024, 3, 31), -1, Unit::Month),
            Some(d(2024, 2, 29))
        );
        assert_eq!(
            add_to_date(d(2024, 12, 31), 1, Unit::Day),
            Some(d(2025, 1, 1))
        );
        assert_eq!(add_to_date(d(0, 0, 0), 1, Unit::Day), None);
        assert_eq!(
            add_to_date(d(2024, 1, 1), 2, Unit::Week),
            Some(d(2024, 1, 15))
        );
    }

    #[test]
    fn byte_widths_count_as_the_character_set_does() {
        assert_eq!(ByteWidth::Utf8.count("é"), 2);
        assert_eq!(ByteWidth::Single.count("é"), 1);
        assert_eq!(ByteWidth::Double { kana: false }.count("a中"), 3);
        assert_eq!(ByteWidth::Utf16.count("a😀"), 6);
    }
}
