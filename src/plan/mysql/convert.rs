//! MySQL's implicit conversions, value by value: a string read as a number (the longest numeric
//! prefix, as `'12abc' = 12` shows), numbers and dates written as strings, and date-time strings
//! read as dates. The kernels in [`super::functions`] apply them to whole arrays.

use crate::plan::types::{DateTimeValue, DateValue};
use crate::temporal::{civil_from_days, days_from_civil, is_valid_date, parse_offset};

/// MySQL's whitespace for number parsing: space, tab, LF, VT, FF, CR.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The numeric prefix of `s`: `[sign] digits [. digits] [e [sign] digits]`, after leading
/// whitespace; `None` when there are no digits.
fn numeric_prefix(s: &str) -> Option<&str> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() && is_space(bytes[i]) {
        i += 1;
    }
    let start = i;
    if i < bytes.len() && matches!(bytes[i], b'+' | b'-') {
        i += 1;
    }
    let int_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    if i < bytes.len() && bytes[i] == b'.' {
        let frac_start = i + 1;
        let mut j = frac_start;
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            j += 1;
        }
        if j > frac_start || digits > 0 {
            digits += j - frac_start;
            i = j;
        }
    }
    if digits == 0 {
        return None;
    }
    if i < bytes.len() && matches!(bytes[i], b'e' | b'E') {
        let mut j = i + 1;
        if j < bytes.len() && matches!(bytes[j], b'+' | b'-') {
            j += 1;
        }
        let exp_start = j;
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            j += 1;
        }
        if j > exp_start {
            i = j;
        }
    }
    Some(&s[start..i])
}

/// A string as MySQL reads it as a DOUBLE: `'12abc'` → 12, `' 7'` → 7, `'1e2'` → 100,
/// `'abc'` → 0, `'0x10'` → 0; out of range → ±DBL_MAX.
pub fn str_to_double(s: &str) -> f64 {
    let Some(prefix) = numeric_prefix(s) else {
        return 0.0;
    };
    let prefix = prefix.strip_prefix('+').unwrap_or(prefix);
    let value: f64 = prefix.parse().unwrap_or(0.0);
    if value.is_infinite() {
        f64::MAX.copysign(value)
    } else {
        value
    }
}

/// A string as MySQL reads it as an integer (CAST AS SIGNED/UNSIGNED, integer arguments):
/// whitespace, sign, digits, nothing more (`'12.7'` → 12, `'1e3'` → 1); too large saturates.
/// Returns whether it is negative and its magnitude.
pub fn str_to_int(s: &str) -> (bool, u64) {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() && is_space(bytes[i]) {
        i += 1;
    }
    let mut negative = false;
    if i < bytes.len() && matches!(bytes[i], b'+' | b'-') {
        negative = bytes[i] == b'-';
        i += 1;
    }
    let mut magnitude: u64 = 0;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        magnitude = magnitude
            .saturating_mul(10)
            .saturating_add(u64::from(bytes[i] - b'0'));
        i += 1;
    }
    (negative && magnitude > 0, magnitude)
}

/// A signed integer from a sign and magnitude: MySQL's CAST AS SIGNED (a magnitude beyond
/// BIGINT is read as BIGINT UNSIGNED and reinterpreted: `'99999999999999999999'` → -1).
pub fn signed_of((negative, magnitude): (bool, u64)) -> i64 {
    if negative {
        if magnitude > i64::MAX as u64 + 1 {
            i64::MIN
        } else {
            (magnitude as i64).wrapping_neg()
        }
    } else {
        magnitude as i64
    }
}

/// An unsigned integer from a sign and magnitude: MySQL's CAST AS UNSIGNED (`-1` wraps).
pub fn unsigned_of((negative, magnitude): (bool, u64)) -> u64 {
    if negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    }
}

/// A string as a DECIMAL of `scale` (CAST AS DECIMAL): its numeric prefix, rounded half away
/// from zero; `None` when the value does not fit in 38 digits.
pub fn str_to_decimal(s: &str, scale: i8) -> Option<i128> {
    let Some(prefix) = numeric_prefix(s) else {
        return Some(0);
    };
    let (negative, rest) = match prefix.as_bytes().first() {
        Some(b'-') => (true, &prefix[1..]),
        Some(b'+') => (false, &prefix[1..]),
        _ => (false, prefix),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().unwrap_or(0)),
        None => (rest, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: String = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    // value = digits × 10^(exponent − frac_len); scaled = value × 10^scale.
    let shift = exponent - frac_part.len() as i64 + i64::from(scale);
    if digits.is_empty() {
        return Some(0);
    }
    let magnitude: i128 = if shift >= 0 {
        if digits.len() as i64 + shift > 38 {
            return None;
        }
        let base: i128 = digits.parse().ok()?;
        base.checked_mul(10i128.checked_pow(shift as u32)?)?
    } else {
        let cut = (-shift) as usize;
        if cut > digits.len() {
            // Everything is below the scale: rounds to 0 or to one unit.
            let first_dropped = if cut == digits.len() {
                digits.as_bytes()[0]
            } else {
                b'0'
            };
            i128::from(first_dropped >= b'5')
        } else {
            let kept = &digits[..digits.len() - cut];
            if kept.len() > 38 {
                return None;
            }
            let base: i128 = if kept.is_empty() {
                0
            } else {
                kept.parse().ok()?
            };
            let round_up = digits.as_bytes()[digits.len() - cut] >= b'5';
            base + i128::from(round_up)
        }
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// A DECIMAL's text: `-0.50`, `12`.
pub fn decimal_to_string(value: i128, scale: i8, out: &mut String) {
    let negative = value < 0;
    let digits = value.unsigned_abs().to_string();
    if negative {
        out.push('-');
    }
    if scale <= 0 {
        out.push_str(&digits);
        for _ in 0..(-scale) {
            out.push('0');
        }
        return;
    }
    let scale = scale as usize;
    if digits.len() <= scale {
        out.push_str("0.");
        for _ in digits.len()..scale {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let (int_part, frac_part) = digits.split_at(digits.len() - scale);
        out.push_str(int_part);
        out.push('.');
        out.push_str(frac_part);
    }
}

/// The fields of a DATE value as MySQL shows them (zero and invalid dates keep theirs).
pub fn date_fields(value: i32) -> (i64, u32, u32) {
    match DateValue::from_arrow(value) {
        DateValue::Days(days) => civil_from_days(days.into()),
        DateValue::Invalid { year, month, day } => (year.into(), month, day),
    }
}

/// The fields of a DATETIME value: year, month, day, hour, minute, second, microsecond.
pub fn datetime_fields(value: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    match DateTimeValue::from_arrow(value) {
        DateTimeValue::Micros(micros) => {
            let days = micros.div_euclid(86_400_000_000);
            let in_day = micros.rem_euclid(86_400_000_000);
            let (y, m, d) = civil_from_days(days);
            let seconds = in_day / 1_000_000;
            (
                y,
                m,
                d,
                (seconds / 3600) as u32,
                (seconds / 60 % 60) as u32,
                (seconds % 60) as u32,
                (in_day % 1_000_000) as u32,
            )
        }
        DateTimeValue::Invalid {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
        } => (year.into(), month, day, hour, minute, second, micros),
    }
}

/// Whether a DATE value is a real calendar date (not a zero or invalid one).
pub fn date_is_real(value: i32) -> bool {
    matches!(DateValue::from_arrow(value), DateValue::Days(_))
}

/// Whether a DATETIME value is a real one.
pub fn datetime_is_real(value: i64) -> bool {
    matches!(DateTimeValue::from_arrow(value), DateTimeValue::Micros(_))
}

/// A DATE as the DATETIME at its midnight (zero and invalid dates stay so, in order).
pub fn date_to_datetime(value: i32) -> i64 {
    match DateValue::from_arrow(value) {
        DateValue::Days(days) => i64::from(days) * 86_400_000_000,
        DateValue::Invalid { year, month, day } => DateTimeValue::Invalid {
            year,
            month,
            day,
            hour: 0,
            minute: 0,
            second: 0,
            micros: 0,
        }
        .to_arrow(),
    }
}

/// The DATE part of a DATETIME.
pub fn datetime_to_date(value: i64) -> i32 {
    match DateTimeValue::from_arrow(value) {
        DateTimeValue::Micros(micros) => micros.div_euclid(86_400_000_000) as i32,
        DateTimeValue::Invalid {
            year, month, day, ..
        } => DateValue::Invalid { year, month, day }.to_arrow(),
    }
}

pub fn format_date(value: i32, out: &mut String) {
    let (y, m, d) = date_fields(value);
    use std::fmt::Write;
    let _ = write!(out, "{y:04}-{m:02}-{d:02}");
}

/// `YYYY-MM-DD HH:MM:SS` with `fsp` fractional digits, as MySQL shows a DATETIME(fsp).
pub fn format_datetime(value: i64, fsp: u8, out: &mut String) {
    let (y, mo, d, h, mi, s, us) = datetime_fields(value);
    use std::fmt::Write;
    let _ = write!(out, "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}");
    push_fraction(us, fsp, out);
}

/// `[-]HH:MM:SS` with `fsp` fractional digits, as MySQL shows a TIME(fsp).
pub fn format_time(value: i64, fsp: u8, out: &mut String) {
    use std::fmt::Write;
    let negative = value < 0;
    let micros = value.unsigned_abs();
    let seconds = micros / 1_000_000;
    if negative {
        out.push('-');
    }
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    push_fraction((micros % 1_000_000) as u32, fsp, out);
}

fn push_fraction(micros: u32, fsp: u8, out: &mut String) {
    if fsp > 0 {
        let digits = format!("{micros:06}");
        out.push('.');
        out.push_str(&digits[..usize::from(fsp.min(6))]);
    }
}

/// A date-time string read the way MySQL reads one: `YYYY-MM-DD[ HH:MM[:SS[.ffffff]]]` with any
/// punctuation between the date's parts and `T` or spaces before the time, one- or two-digit
/// parts, two-digit years (70–99 → 19xx, else 20xx), `YYYYMMDD[HHMMSS]`, and an optional UTC
/// offset (`+08:00`, `Z`). Zero dates (`0000-00-00`) are kept; any other impossible date, or text
/// after the value, is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedDateTime {
    pub value: DateTimeValue,
    /// Whether the string had a time part.
    pub has_time: bool,
    /// Whether it carried a UTC offset (then `value` is the UTC time).
    pub zoned: bool,
}

pub fn parse_datetime(text: &str) -> Option<ParsedDateTime> {
    let text = text.trim_matches(|c: char| c == ' ' || c == '\t' || c == '\n' || c == '\r');
    // A trailing offset: `+hh:mm`, `-hh:mm` after the time, or `Z`.
    let (body, offset) = split_offset(text);
    let bytes = body.as_bytes();
    let (date_text, time_text) = if bytes.iter().all(u8::is_ascii_digit) {
        match bytes.len() {
            8 => (body, None),
            14 => (&body[..8], Some(&body[8..])),
            6 => (body, None),
            12 => (&body[..6], Some(&body[6..])),
            _ => return None,
        }
    } else {
        match body.find([' ', 'T']) {
            Some(at) => {
                let rest = body[at..].trim_start_matches([' ', 'T']);
                (&body[..at], (!rest.is_empty()).then_some(rest))
            }
            None => (body, None),
        }
    };
    let (year, month, day) = parse_date_part(date_text)?;
    let (hour, minute, second, micros) = match time_text {
        Some(t) => parse_time_part(t)?,
        None => (0, 0, 0, 0),
    };
    if hour > 23 || minute > 59 || second > 59 || month > 12 || day > 31 {
        return None;
    }
    let zero = year == 0 && month == 0 && day == 0;
    if !zero && !is_valid_date(year.into(), month, day) {
        return None;
    }
    if zero && offset.is_some() {
        return None;
    }
    let mut value = DateTimeValue::from_parts(year, month, day, hour, minute, second, micros);
    if let (Some(offset), DateTimeValue::Micros(micros)) = (offset, value) {
        value = DateTimeValue::Micros(micros - offset * 1_000_000);
    }
    Some(ParsedDateTime {
        value,
        has_time: time_text.is_some(),
        zoned: offset.is_some(),
    })
}

fn split_offset(text: &str) -> (&str, Option<i64>) {
    if let Some(body) = text.strip_suffix('Z').filter(|b| b.contains(':')) {
        return (body, Some(0));
    }
    // An offset follows a time (which has a ':'), so `2024-01-01` is not cut at its '-'.
    if let Some(at) = text
        .rfind(['+', '-'])
        .filter(|&at| text[..at].contains(':') && text[at..].len() >= 5 && text[at..].contains(':'))
        && let Some(offset) = parse_offset(&text[at..])
    {
        return (text[..at].trim_end(), Some(offset));
    }
    (text, None)
}

fn two_digit_year(year: u32, digits: usize) -> u32 {
    if digits <= 2 {
        if year < 70 { 2000 + year } else { 1900 + year }
    } else {
        year
    }
}

fn parse_date_part(text: &str) -> Option<(u32, u32, u32)> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let (y, rest) = match text.len() {
            8 => (&text[..4], &text[4..]),
            6 => (&text[..2], &text[2..]),
            _ => return None,
        };
        let year = two_digit_year(y.parse().ok()?, y.len());
        return Some((year, rest[..2].parse().ok()?, rest[2..].parse().ok()?));
    }
    let mut parts = text.split(|c: char| c.is_ascii_punctuation());
    let y = parts.next()?;
    let m = parts.next()?;
    let d = parts.next()?;
    if parts.next().is_some() || y.is_empty() || y.len() > 4 || !(1..=2).contains(&m.len()) {
        return None;
    }
    if !(1..=2).contains(&d.len())
        || ![y, m, d]
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let year = two_digit_year(y.parse().ok()?, y.len());
    Some((year, m.parse().ok()?, d.parse().ok()?))
}

fn parse_time_part(text: &str) -> Option<(u32, u32, u32, u32)> {
    let (clock, fraction) = match text.split_once('.') {
        Some((c, f)) => (c, Some(f)),
        None => (text, None),
    };
    let (h, mi, s) = if clock.bytes().all(|b| b.is_ascii_digit()) && clock.len() == 6 {
        (&clock[..2], &clock[2..4], &clock[4..])
    } else {
        let mut parts = clock.split(':');
        let h = parts.next()?;
        let mi = parts.next()?;
        let s = parts.next().unwrap_or("0");
        if parts.next().is_some() {
            return None;
        }
        (h, mi, s)
    };
    let part = |p: &str| -> Option<u32> {
        if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            p.parse().ok()
        }
    };
    let micros = match fraction {
        None => 0,
        Some(f) if f.is_empty() || f.len() > 6 || !f.bytes().all(|b| b.is_ascii_digit()) => {
            return None;
        }
        Some(f) => format!("{f:0<6}").parse().ok()?,
    };
    Some((part(h)?, part(mi)?, part(s)?, micros))
}

/// A DATE value (Arrow `Date32`) from a parsed date-time, its time dropped.
pub fn parsed_date(parsed: &ParsedDateTime) -> i32 {
    datetime_to_date(parsed.value.to_arrow())
}

/// The date `months` months after `(year, month, day)`, its day clamped to the month's last;
/// `None` outside years 0–9999.
pub fn add_months(year: i64, month: u32, day: u32, months: i64) -> Option<(i64, u32, u32)> {
    let total = year.checked_mul(12)? + i64::from(month) - 1 + months;
    let (year, month) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
    if !(0..=9999).contains(&year) {
        return None;
    }
    let mut day = day;
    while day > 28 && !is_valid_date(year, month, day) {
        day -= 1;
    }
    Some((year, month, day))
}

/// Days since the epoch of a real date; `None` for zero or invalid ones.
pub fn date_days(value: i32) -> Option<i64> {
    match DateValue::from_arrow(value) {
        DateValue::Days(days) => Some(days.into()),
        DateValue::Invalid { .. } => None,
    }
}

/// A day number back to a DATE value; `None` outside years 0–9999 (MySQL's NULL).
pub fn days_to_date(days: i64) -> Option<i32> {
    let (year, _, _) = civil_from_days(days);
    (0..=9999).contains(&year).then_some(days as i32)
}

/// Microseconds since the epoch back to a DATETIME value; `None` outside years 0–9999.
pub fn micros_to_datetime(micros: i64) -> Option<i64> {
    let (year, _, _) = civil_from_days(micros.div_euclid(86_400_000_000));
    (0..=9999).contains(&year).then_some(micros)
}

/// Days since the epoch of `(year, month, day)`.
pub fn days_of(year: i64, month: u32, day: u32) -> i64 {
    days_from_civil(year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_read_as_numbers_the_mysql_way() {
        assert_eq!(str_to_double("12abc"), 12.0);
        assert_eq!(str_to_double(" 7"), 7.0);
        assert_eq!(str_to_double("1e2"), 100.0);
        assert_eq!(str_to_double("1e"), 1.0);
        assert_eq!(str_to_double("abc"), 0.0);
        assert_eq!(str_to_double("0x10"), 0.0);
        assert_eq!(str_to_double(".5"), 0.5);
        assert_eq!(str_to_double("-"), 0.0);
        assert_eq!(str_to_double("+5"), 5.0);
        assert_eq!(str_to_double("1e400"), f64::MAX);
        assert_eq!(signed_of(str_to_int("12.7")), 12);
        assert_eq!(signed_of(str_to_int(" 12abc")), 12);
        assert_eq!(signed_of(str_to_int("1e3")), 1);
        assert_eq!(signed_of(str_to_int("99999999999999999999")), -1);
        assert_eq!(signed_of(str_to_int("-5")), -5);
        assert_eq!(unsigned_of(str_to_int("-1")), u64::MAX);
        assert_eq!(str_to_decimal("12.345", 2), Some(1235));
        assert_eq!(str_to_decimal("-12.345", 2), Some(-1235));
        assert_eq!(str_to_decimal("1e2", 1), Some(1000));
        assert_eq!(str_to_decimal("0.004", 2), Some(0));
        assert_eq!(str_to_decimal("0.005", 2), Some(1));
        assert_eq!(str_to_decimal("abc", 2), Some(0));
    }

    #[test]
    fn decimals_print_with_their_scale() {
        let show = |v, s| {
            let mut out = String::new();
            decimal_to_string(v, s, &mut out);
            out
        };
        assert_eq!(show(150, 2), "1.50");
        assert_eq!(show(-50, 2), "-0.50");
        assert_eq!(show(7, 0), "7");
        assert_eq!(show(5, 3), "0.005");
    }

    #[test]
    fn datetimes_parse_leniently_and_zero_dates_survive() {
        let p = |t| parse_datetime(t).map(|p| (datetime_fields(p.value.to_arrow()), p.has_time));
        assert_eq!(p("2024-01-05"), Some(((2024, 1, 5, 0, 0, 0, 0), false)));
        assert_eq!(p("2024-1-5 7:08"), Some(((2024, 1, 5, 7, 8, 0, 0), true)));
        assert_eq!(
            p("2024/01/05T10:11:12.5"),
            Some(((2024, 1, 5, 10, 11, 12, 500_000), true))
        );
        assert_eq!(
            p("20240105101112"),
            Some(((2024, 1, 5, 10, 11, 12, 0), true))
        );
        assert_eq!(p("24-01-05"), Some(((2024, 1, 5, 0, 0, 0, 0), false)));
        assert_eq!(p("0000-00-00"), Some(((0, 0, 0, 0, 0, 0, 0), false)));
        assert_eq!(p("2024-02-30"), None);
        assert_eq!(p("2024-01-05x"), None);
        assert_eq!(p("hello"), None);
        assert_eq!(
            p("2024-01-05 08:00:00+08:00"),
            Some(((2024, 1, 5, 0, 0, 0, 0), true))
        );
        let mut s = String::new();
        format_datetime(
            parse_datetime("2024-01-05 10:11:12.123456")
                .unwrap()
                .value
                .to_arrow(),
            3,
            &mut s,
        );
        assert_eq!(s, "2024-01-05 10:11:12.123");
        s.clear();
        format_date(DateValue::from_parts(0, 0, 0).to_arrow(), &mut s);
        assert_eq!(s, "0000-00-00");
        s.clear();
        format_time(-(3600 + 61) * 1_000_000, 0, &mut s);
        assert_eq!(s, "-01:01:01");
    }

    #[test]
    fn months_add_with_the_day_clamped() {
        assert_eq!(add_months(2024, 3, 31, -1), Some((2024, 2, 29)));
        assert_eq!(add_months(2024, 2, 29, 12), Some((2025, 2, 28)));
        assert_eq!(add_months(2024, 1, 15, -13), Some((2022, 12, 15)));
        assert_eq!(add_months(9999, 12, 1, 1), None);
    }
}
