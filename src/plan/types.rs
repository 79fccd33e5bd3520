//! MySQL / OceanBase column types → Arrow types: the one mapping every source uses.
//!
//! The Arrow type is what the row filter is type-checked and evaluated against; the [`SqlType`]
//! stays beside it (and in the Arrow field's metadata under [`SQL_TYPE_KEY`]) because the formats
//! need more than Arrow keeps: BOOL vs TINYINT, ENUM/SET members, fractional-second precision,
//! CHAR vs VARCHAR. See docs/types.md for every decision.
//!
//! Zero and invalid dates (`0000-00-00`, `2024-02-30` under `ALLOW_INVALID_DATES`) have no Arrow
//! value, so they are stored as sentinels far below any real date, packed the way MySQL packs
//! them; [`DateValue`] and [`DateTimeValue`] recover the original fields. They sort before every
//! real date, as MySQL sorts them.

use std::collections::HashMap;
use std::fmt;

use arrow::datatypes::{DataType, Field, TimeUnit};

/// Arrow field metadata key holding the column's MySQL type as the server reports it.
pub const SQL_TYPE_KEY: &str = "tributary.sql_type";

/// A MySQL column type, as far as syncing needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlType {
    /// `TINYINT(1)`, which is how MySQL stores `BOOL`.
    Bool,
    TinyInt {
        unsigned: bool,
    },
    SmallInt {
        unsigned: bool,
    },
    MediumInt {
        unsigned: bool,
    },
    Int {
        unsigned: bool,
    },
    BigInt {
        unsigned: bool,
    },
    Decimal {
        precision: u8,
        scale: i8,
    },
    Float,
    Double,
    Bit {
        width: u16,
    },
    Year,
    Char {
        length: u32,
    },
    VarChar {
        length: u32,
    },
    Text,
    Binary {
        length: u32,
    },
    VarBinary {
        length: u32,
    },
    Blob,
    Enum {
        members: Vec<String>,
    },
    Set {
        members: Vec<String>,
    },
    Json,
    Date,
    /// Fractional-second precision 0–6.
    Time {
        fsp: u8,
    },
    DateTime {
        fsp: u8,
    },
    Timestamp {
        fsp: u8,
    },
    /// GEOMETRY, POINT, ... kept as their WKB bytes.
    Geometry,
    /// A type tributary cannot sync (e.g. OceanBase's VECTOR); the column must be left out.
    Unsupported(String),
}

impl SqlType {
    /// Parses `information_schema.COLUMNS.COLUMN_TYPE`, e.g. `bigint(20) unsigned`,
    /// `decimal(65,30)`, `enum('a','b')`, `datetime(6)`.
    pub fn parse(column_type: &str) -> SqlType {
        let lower = column_type.trim().to_ascii_lowercase();
        let unsigned = lower.split_whitespace().any(|w| w == "unsigned");
        let (name, args) = match lower.find('(') {
            Some(open) => {
                let close = lower.rfind(')').unwrap_or(lower.len());
                (
                    lower[..open].trim(),
                    column_type.trim()[open + 1..close.max(open + 1)].to_string(),
                )
            }
            None => (lower.split_whitespace().next().unwrap_or(""), String::new()),
        };
        let numbers: Vec<u32> = args
            .split(',')
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        let first = |default: u32| numbers.first().copied().unwrap_or(default);
        match name {
            "tinyint" if numbers == [1] && !unsigned => SqlType::Bool,
            "bool" | "boolean" => SqlType::Bool,
            "tinyint" => SqlType::TinyInt { unsigned },
            "smallint" => SqlType::SmallInt { unsigned },
            "mediumint" => SqlType::MediumInt { unsigned },
            "int" | "integer" => SqlType::Int { unsigned },
            "bigint" => SqlType::BigInt { unsigned },
            "decimal" | "numeric" | "dec" | "fixed" => SqlType::Decimal {
                precision: first(10).clamp(1, 65) as u8,
                scale: numbers.get(1).copied().unwrap_or(0).min(30) as i8,
            },
            "float" if first(0) > 24 => SqlType::Double,
            "float" => SqlType::Float,
            "double" | "real" | "double precision" => SqlType::Double,
            "bit" => SqlType::Bit {
                width: first(1).clamp(1, 64) as u16,
            },
            "year" => SqlType::Year,
            "char" => SqlType::Char { length: first(1) },
            "varchar" => SqlType::VarChar { length: first(0) },
            "tinytext" | "text" | "mediumtext" | "longtext" => SqlType::Text,
            "binary" => SqlType::Binary { length: first(1) },
            "varbinary" => SqlType::VarBinary { length: first(0) },
            "tinyblob" | "blob" | "mediumblob" | "longblob" => SqlType::Blob,
            "enum" => SqlType::Enum {
                members: quoted_list(&args),
            },
            "set" => SqlType::Set {
                members: quoted_list(&args),
            },
            "json" => SqlType::Json,
            "date" => SqlType::Date,
            "time" => SqlType::Time {
                fsp: first(0).min(6) as u8,
            },
            "datetime" => SqlType::DateTime {
                fsp: first(0).min(6) as u8,
            },
            "timestamp" => SqlType::Timestamp {
                fsp: first(0).min(6) as u8,
            },
            "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
            | "multipolygon" | "geometrycollection" | "geomcollection" => SqlType::Geometry,
            _ => SqlType::Unsupported(column_type.trim().to_string()),
        }
    }

    /// The Arrow type values of this column are decoded into.
    pub fn arrow_type(&self) -> Option<DataType> {
        use SqlType::*;
        Some(match self {
            Bool => DataType::Int8,
            TinyInt { unsigned: false } => DataType::Int8,
            TinyInt { unsigned: true } => DataType::UInt8,
            SmallInt { unsigned: false } => DataType::Int16,
            SmallInt { unsigned: true } => DataType::UInt16,
            MediumInt { unsigned: false } | Int { unsigned: false } => DataType::Int32,
            MediumInt { unsigned: true } | Int { unsigned: true } => DataType::UInt32,
            BigInt { unsigned: false } => DataType::Int64,
            BigInt { unsigned: true } => DataType::UInt64,
            Decimal { precision, scale } if *precision <= 38 => {
                DataType::Decimal128(*precision, *scale)
            }
            Decimal { precision, scale } => DataType::Decimal256(*precision, *scale),
            Float => DataType::Float32,
            Double => DataType::Float64,
            Year => DataType::UInt16,
            Char { .. } | VarChar { .. } | Text | Enum { .. } | Set { .. } | Json => DataType::Utf8,
            Bit { .. } | Binary { .. } | VarBinary { .. } | Blob | Geometry => DataType::Binary,
            Date => DataType::Date32,
            Time { .. } => DataType::Time64(TimeUnit::Microsecond),
            DateTime { .. } => DataType::Timestamp(TimeUnit::Microsecond, None),
            Timestamp { .. } => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Unsupported(_) => return None,
        })
    }

    /// An Arrow field for a column of this type, carrying the MySQL type in its metadata.
    pub fn arrow_field(&self, name: &str, nullable: bool, column_type: &str) -> Option<Field> {
        let metadata = HashMap::from([(SQL_TYPE_KEY.to_string(), column_type.to_string())]);
        Some(Field::new(name, self.arrow_type()?, nullable).with_metadata(metadata))
    }

    /// Types whose values cannot form a Kafka key or a primary-key range (OMS `DB_DATA_TYPE_INDEX`).
    pub fn is_approximate(&self) -> bool {
        matches!(self, SqlType::Float | SqlType::Double)
    }
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SqlType::*;
        let sign = |unsigned: &bool| if *unsigned { " UNSIGNED" } else { "" };
        match self {
            Bool => write!(f, "BOOL"),
            TinyInt { unsigned } => write!(f, "TINYINT{}", sign(unsigned)),
            SmallInt { unsigned } => write!(f, "SMALLINT{}", sign(unsigned)),
            MediumInt { unsigned } => write!(f, "MEDIUMINT{}", sign(unsigned)),
            Int { unsigned } => write!(f, "INT{}", sign(unsigned)),
            BigInt { unsigned } => write!(f, "BIGINT{}", sign(unsigned)),
            Decimal { precision, scale } => write!(f, "DECIMAL({precision},{scale})"),
            Float => write!(f, "FLOAT"),
            Double => write!(f, "DOUBLE"),
            Bit { width } => write!(f, "BIT({width})"),
            Year => write!(f, "YEAR"),
            Char { length } => write!(f, "CHAR({length})"),
            VarChar { length } => write!(f, "VARCHAR({length})"),
            Text => write!(f, "TEXT"),
            Binary { length } => write!(f, "BINARY({length})"),
            VarBinary { length } => write!(f, "VARBINARY({length})"),
            Blob => write!(f, "BLOB"),
            Enum { members } => write!(f, "ENUM({})", members.len()),
            Set { members } => write!(f, "SET({})", members.len()),
            Json => write!(f, "JSON"),
            Date => write!(f, "DATE"),
            Time { fsp } => write!(f, "TIME({fsp})"),
            DateTime { fsp } => write!(f, "DATETIME({fsp})"),
            Timestamp { fsp } => write!(f, "TIMESTAMP({fsp})"),
            Geometry => write!(f, "GEOMETRY"),
            Unsupported(text) => write!(f, "{text} (unsupported)"),
        }
    }
}

/// `'a','b,c','it''s'` → `["a", "b,c", "it's"]`.
fn quoted_list(args: &str) -> Vec<String> {
    let mut members = Vec::new();
    let mut chars = args.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue;
        }
        let mut member = String::new();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    member.push('\'');
                } else {
                    break;
                }
            } else {
                member.push(c);
            }
        }
        members.push(member);
    }
    members
}

/// Below this, a `Date32` value is a packed zero or invalid date rather than a day number.
const INVALID_DATE_BASE: i32 = -2_000_000_000;
/// Below this, a timestamp value in µs is a packed zero or invalid date-time.
const INVALID_DATETIME_BASE: i64 = -9_000_000_000_000_000_000;

fn pack_date(year: u32, month: u32, day: u32) -> i64 {
    ((year as i64 * 13 + month as i64) << 5) | day as i64
}

fn unpack_date(packed: i64) -> (u32, u32, u32) {
    let ym = packed >> 5;
    ((ym / 13) as u32, (ym % 13) as u32, (packed & 31) as u32)
}

/// A DATE as stored in a `Date32` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateValue {
    /// Days since 1970-01-01.
    Days(i32),
    /// A zero or invalid date, with its original fields.
    Invalid { year: u32, month: u32, day: u32 },
}

impl DateValue {
    /// The value for a date the server sent as year, month, day.
    pub fn from_parts(year: u32, month: u32, day: u32) -> DateValue {
        if crate::temporal::is_valid_date(year as i64, month, day) {
            DateValue::Days(crate::temporal::days_from_civil(year as i64, month, day) as i32)
        } else {
            DateValue::Invalid { year, month, day }
        }
    }

    pub fn to_arrow(self) -> i32 {
        match self {
            DateValue::Days(days) => days,
            DateValue::Invalid { year, month, day } => {
                INVALID_DATE_BASE + pack_date(year, month, day) as i32
            }
        }
    }

    pub fn from_arrow(value: i32) -> DateValue {
        if value < INVALID_DATE_BASE / 2 {
            let (year, month, day) = unpack_date((value - INVALID_DATE_BASE) as i64);
            DateValue::Invalid { year, month, day }
        } else {
            DateValue::Days(value)
        }
    }
}

/// A DATETIME or TIMESTAMP as stored in a `Timestamp(µs)` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateTimeValue {
    /// Microseconds since the epoch (DATETIME: its wall clock read as UTC).
    Micros(i64),
    /// A zero or invalid date-time, with its original fields.
    Invalid {
        year: u32,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
        micros: u32,
    },
}

impl DateTimeValue {
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts(
        year: u32,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
        micros: u32,
    ) -> DateTimeValue {
        if crate::temporal::is_valid_date(year as i64, month, day) {
            let days = crate::temporal::days_from_civil(year as i64, month, day);
            let seconds = days * 86_400 + hour as i64 * 3600 + minute as i64 * 60 + second as i64;
            DateTimeValue::Micros(seconds * 1_000_000 + micros as i64)
        } else {
            DateTimeValue::Invalid {
                year,
                month,
                day,
                hour,
                minute,
                second,
                micros,
            }
        }
    }

    pub fn to_arrow(self) -> i64 {
        match self {
            DateTimeValue::Micros(micros) => micros,
            DateTimeValue::Invalid {
                year,
                month,
                day,
                hour,
                minute,
                second,
                micros,
            } => {
                let seconds = pack_date(year, month, day) * 86_400
                    + hour as i64 * 3600
                    + minute as i64 * 60
                    + second as i64;
                INVALID_DATETIME_BASE + seconds * 1_000_000 + micros as i64
            }
        }
    }

    pub fn from_arrow(value: i64) -> DateTimeValue {
        if value < INVALID_DATETIME_BASE / 2 {
            let packed = value - INVALID_DATETIME_BASE;
            let micros = (packed % 1_000_000) as u32;
            let seconds = packed / 1_000_000;
            let (year, month, day) = unpack_date(seconds / 86_400);
            let in_day = seconds % 86_400;
            DateTimeValue::Invalid {
                year,
                month,
                day,
                hour: (in_day / 3600) as u32,
                minute: (in_day / 60 % 60) as u32,
                second: (in_day % 60) as u32,
                micros,
            }
        } else {
            DateTimeValue::Micros(value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_types_map_to_arrow() {
        let cases = [
            ("tinyint(1)", DataType::Int8),
            ("tinyint(3) unsigned", DataType::UInt8),
            ("bigint(20) unsigned", DataType::UInt64),
            ("bigint", DataType::Int64),
            ("mediumint(8) unsigned", DataType::UInt32),
            ("decimal(10,2)", DataType::Decimal128(10, 2)),
            ("decimal(65,30)", DataType::Decimal256(65, 30)),
            ("float", DataType::Float32),
            ("double", DataType::Float64),
            ("bit(8)", DataType::Binary),
            ("year(4)", DataType::UInt16),
            ("varchar(32)", DataType::Utf8),
            ("enum('a','b')", DataType::Utf8),
            ("json", DataType::Utf8),
            ("varbinary(16)", DataType::Binary),
            ("longblob", DataType::Binary),
            ("date", DataType::Date32),
            ("time(6)", DataType::Time64(TimeUnit::Microsecond)),
            (
                "datetime(3)",
                DataType::Timestamp(TimeUnit::Microsecond, None),
            ),
            (
                "timestamp(6)",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            ),
            ("point", DataType::Binary),
        ];
        for (column_type, expected) in cases {
            assert_eq!(
                SqlType::parse(column_type).arrow_type(),
                Some(expected),
                "{column_type}"
            );
        }
        assert_eq!(SqlType::parse("vector(3)").arrow_type(), None);
        assert_eq!(SqlType::parse("tinyint(1)"), SqlType::Bool);
        assert_eq!(SqlType::parse("datetime(6)"), SqlType::DateTime { fsp: 6 });
    }

    #[test]
    fn enum_and_set_members_keep_quotes_and_commas() {
        assert_eq!(
            SqlType::parse("set('a','b,c','it''s')"),
            SqlType::Set {
                members: vec!["a".into(), "b,c".into(), "it's".into()]
            }
        );
    }

    #[test]
    fn zero_and_invalid_dates_are_recoverable_and_sort_first() {
        for (y, m, d) in [(0, 0, 0), (2024, 2, 30), (2024, 0, 5), (9999, 12, 31)] {
            let value = DateValue::from_parts(y, m, d);
            let back = DateValue::from_arrow(value.to_arrow());
            assert_eq!(back, value);
        }
        assert_eq!(
            DateValue::from_arrow(DateValue::from_parts(2024, 2, 30).to_arrow()),
            DateValue::Invalid {
                year: 2024,
                month: 2,
                day: 30
            }
        );
        let zero = DateValue::from_parts(0, 0, 0).to_arrow();
        let first_real = DateValue::from_parts(0, 1, 1).to_arrow();
        assert!(zero < first_real);

        let invalid = DateTimeValue::from_parts(2024, 2, 30, 23, 59, 58, 123_456);
        assert_eq!(DateTimeValue::from_arrow(invalid.to_arrow()), invalid);
        let zero = DateTimeValue::from_parts(0, 0, 0, 0, 0, 0, 0);
        assert_eq!(DateTimeValue::from_arrow(zero.to_arrow()), zero);
        assert!(zero.to_arrow() < DateTimeValue::from_parts(0, 1, 1, 0, 0, 0, 0).to_arrow());
        assert_eq!(
            DateTimeValue::from_parts(2024, 5, 1, 2, 0, 0, 123_456).to_arrow(),
            1_714_528_800_123_456
        );
    }
}
