//! A row filter's MySQL meaning, as a DataFusion expression: the `WHERE` text (sqlparser's MySQL
//! AST) is translated node by node into DataFusion's logical expressions — its comparisons,
//! arithmetic, CASE and casts where they mean what MySQL's do, the kernels of [`functions`]
//! where they do not — so that the compiled filter keeps rows exactly as the source's own
//! `SELECT … WHERE` would.
//!
//! Translation is typed: every node gets MySQL's type for it ([`Ty`]), and that type decides what
//! an operator means — `'12abc' = 12` compares doubles, `name = 'bob'` compares under the
//! column's collation, `qty / 2` is a DECIMAL with four more digits, `created_at >= '2024-01-01'`
//! compares date-times. The rules are in docs/project-language.md (row filters); each is
//! checked against MariaDB by `tests/filters.rs`.
//!
//! Anything tributary cannot evaluate exactly is refused here, naming it — an unknown function,
//! a collation without a table, a mix of types MySQL resolves by rules not carried over — so that
//! `check` fails rather than the running sync sending the wrong rows.

mod ascii_weights;
pub mod collation;
pub mod convert;
pub mod functions;
mod general_ci;

use arrow::datatypes::{DataType, TimeUnit};
use datafusion_common::{Column, DFSchema, ScalarValue};
use datafusion_expr::expr::{Case, Cast};
use datafusion_expr::{BinaryExpr, Expr, ExprSchemable, Operator};
use sqlparser::ast::{
    BinaryOperator, CastKind, CharacterLength, DateTimeField, ExactNumberInfo, Expr as SqlExpr,
    Function, FunctionArg, FunctionArgExpr, FunctionArguments, Interval, TrimWhereField,
    UnaryOperator, Value,
};

use self::collation::{Collation, LikePattern, Rule};
use self::functions::{ByteWidth, CmpOp, Func, MysqlFunction, Part, Pattern, TrimSide, Unit};
use crate::plan::types::{DateTimeValue, SqlType};
use crate::plan::{ColumnDef, charset::Charset};
use crate::project::{SourceKind, Zone};

type R<T> = Result<T, String>;

/// What the translator knows about the table.
pub struct Context<'a> {
    pub schema: &'a DFSchema,
    /// The table's columns, in the schema's order.
    pub columns: &'a [ColumnDef],
    /// `db.table`, for messages.
    pub table: &'a str,
    /// The table's default collation: string literals take it (MySQL gives them the
    /// connection's, which a project does not have).
    pub table_collation: Option<&'a str>,
    /// The session zone: TIMESTAMP values are wall-clock times in it, as in a MySQL session.
    pub zone: &'a Zone,
    pub flavor: SourceKind,
}

/// The MySQL type of a translated expression.
#[derive(Debug, Clone)]
enum Ty {
    /// The NULL literal (no type of its own).
    Null,
    /// A condition: MySQL's 1/0, DataFusion's Boolean.
    Bool,
    /// Signed integers (Arrow Int8–Int64).
    Int,
    /// Unsigned integers (UInt8–UInt64, YEAR).
    UInt,
    /// DECIMAL with MySQL's declared scale; the Arrow scale may be larger (a division keeps
    /// nine digits more, and rounds to the declared scale where it is compared or shown).
    Decimal {
        scale: i8,
    },
    /// FLOAT and DOUBLE, as double.
    Double,
    Text(Text),
    /// Binary strings (BINARY, VARBINARY, BLOB).
    Bytes,
    Date,
    /// DATETIME and TIMESTAMP (a wall-clock time in the session zone), with their
    /// fractional-second digits.
    DateTime {
        fsp: u8,
    },
    Time {
        fsp: u8,
    },
    /// A value a filter may only test for NULL; says what it is.
    Opaque(String),
}

/// A string's collation (or why it has none tributary can use), its coercibility (MySQL's: 0
/// explicit COLLATE, 2 a column, 4 a literal, 5 a number as text) and character set.
#[derive(Debug, Clone)]
struct Text {
    collation: Result<Collation, String>,
    coercibility: u8,
    charset: String,
    /// ENUM and SET compare as text but are numbers in numeric context: refused there.
    members: bool,
}

#[derive(Debug, Clone)]
struct Typed {
    expr: Expr,
    ty: Ty,
    /// The value when the expression is a literal.
    literal: Option<ScalarValue>,
}

impl Typed {
    fn new(expr: Expr, ty: Ty) -> Typed {
        Typed {
            expr,
            ty,
            literal: None,
        }
    }

    fn literal(value: ScalarValue, ty: Ty) -> Typed {
        Typed {
            expr: Expr::Literal(value.clone(), None),
            ty,
            literal: Some(value),
        }
    }

    fn text_literal(&self) -> Option<&str> {
        match &self.literal {
            Some(ScalarValue::Utf8(Some(s))) => Some(s),
            _ => None,
        }
    }
}

fn udf(func: Func, args: Vec<Expr>) -> Expr {
    MysqlFunction::udf(func).call(args)
}

fn cast(expr: Expr, to: DataType) -> Expr {
    Expr::Cast(Cast::new(Box::new(expr), to))
}

fn binary(left: Expr, op: Operator, right: Expr) -> Expr {
    Expr::BinaryExpr(BinaryExpr::new(Box::new(left), op, Box::new(right)))
}

fn null_bool() -> Expr {
    Expr::Literal(ScalarValue::Boolean(None), None)
}

const DATETIME: DataType = DataType::Timestamp(TimeUnit::Microsecond, None);

fn describe(ty: &Ty) -> String {
    match ty {
        Ty::Null => "NULL".into(),
        Ty::Bool => "a condition".into(),
        Ty::Int | Ty::UInt => "an integer".into(),
        Ty::Decimal { .. } => "a DECIMAL".into(),
        Ty::Double => "a DOUBLE".into(),
        Ty::Text(t) if t.members => "an ENUM/SET".into(),
        Ty::Text(_) => "text".into(),
        Ty::Bytes => "a binary string".into(),
        Ty::Date => "a DATE".into(),
        Ty::DateTime { .. } => "a DATETIME".into(),
        Ty::Time { .. } => "a TIME".into(),
        Ty::Opaque(what) => what.clone(),
    }
}

fn is_numeric(ty: &Ty) -> bool {
    matches!(
        ty,
        Ty::Bool | Ty::Int | Ty::UInt | Ty::Decimal { .. } | Ty::Double
    )
}

fn is_temporal(ty: &Ty) -> bool {
    matches!(ty, Ty::Date | Ty::DateTime { .. } | Ty::Time { .. })
}

/// Translates a filter into a DataFusion condition with MySQL's meaning.
pub fn translate(context: &Context, expr: &SqlExpr) -> R<Expr> {
    let translator = Translator::new(context);
    let typed = translator.expr(expr)?;
    translator.condition(typed, "the filter")
}

struct Translator<'a> {
    cx: &'a Context<'a>,
    literal_collation: Result<Collation, String>,
}

impl<'a> Translator<'a> {
    fn new(cx: &'a Context<'a>) -> Translator<'a> {
        let literal_collation = match cx.table_collation {
            Some(name) => Collation::from_name(name).map_err(|e| {
                format!(
                    "text literals take the table's collation, {}, which tributary does not \
                     evaluate",
                    e.0
                )
            }),
            None => Err(
                "the table's default collation is not known (a schema history written \
                         by an older tributary; `reset` re-reads it)"
                    .to_string(),
            ),
        };
        Translator {
            cx,
            literal_collation,
        }
    }

    fn refuse<T>(&self, message: impl std::fmt::Display) -> R<T> {
        Err(format!("the WHERE of {}: {message}", self.cx.table))
    }

    fn data_type(&self, expr: &Expr) -> R<DataType> {
        expr.get_type(self.cx.schema).map_err(|e| {
            // DataFusion's words (Int64, Utf8, coerce) are not the user's: say it in theirs.
            tracing::debug!(error = %e.strip_backtrace(), "a row filter does not type-check");
            format!(
                "the WHERE of {} mixes types in a way tributary cannot evaluate; compare \
                     and combine values of one kind (numbers, text, dates)",
                self.cx.table
            )
        })
    }

    fn literal_text(&self) -> Text {
        Text {
            collation: self.literal_collation.clone(),
            coercibility: 4,
            charset: "utf8mb4".into(),
            members: false,
        }
    }

    // ---------------------------------------------------------------- expressions

    fn expr(&self, e: &SqlExpr) -> R<Typed> {
        match e {
            SqlExpr::Identifier(ident) => self.column(&ident.value),
            SqlExpr::CompoundIdentifier(parts) if parts.len() == 1 => self.column(&parts[0].value),
            SqlExpr::Nested(inner) => self.expr(inner),
            SqlExpr::Value(value) => self.value(&value.value),
            SqlExpr::TypedString(typed) => {
                let text = match &typed.value.value {
                    Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
                    other => return self.refuse(format!("`{other}` is not a date literal")),
                };
                let text_literal =
                    Typed::literal(ScalarValue::Utf8(Some(text)), Ty::Text(self.literal_text()));
                use sqlparser::ast::DataType as D;
                let target = match &typed.data_type {
                    D::Date => Ty::Date,
                    D::Datetime(_) | D::Timestamp(..) => Ty::DateTime { fsp: 6 },
                    D::Time(..) => Ty::Time { fsp: 6 },
                    other => return self.refuse(format!("`{other} '...'` literals")),
                };
                self.temporal_literal(&target, &text_literal, e)
                    .map(|(t, _)| t)
            }
            SqlExpr::Prefixed { prefix, value } => {
                let t = self.expr(value)?;
                let Some(text) = t.text_literal().map(str::to_string) else {
                    return self.refuse(format!("`{e}`: an introducer needs a string literal"));
                };
                match prefix.value.to_ascii_lowercase().as_str() {
                    "_utf8mb4" | "_utf8" | "_utf8mb3" => Ok(t),
                    "_binary" => Ok(Typed::literal(
                        ScalarValue::Binary(Some(text.into_bytes())),
                        Ty::Bytes,
                    )),
                    other => self.refuse(format!(
                        "the introducer {other} (only _utf8mb4 and _binary are evaluated)"
                    )),
                }
            }
            SqlExpr::UnaryOp { op, expr } => {
                let t = self.expr(expr)?;
                match op {
                    UnaryOperator::Not => Ok(Typed::new(
                        Expr::Not(Box::new(self.condition(t, "NOT")?)),
                        Ty::Bool,
                    )),
                    UnaryOperator::Minus => self.negate(t),
                    UnaryOperator::Plus => self.numeric(t, "unary +"),
                    other => self.refuse(format!(
                        "the operator {other} is not one tributary's row filters evaluate; \
                         rewrite the condition without it"
                    )),
                }
            }
            SqlExpr::BinaryOp { left, op, right } => self.binary_op(left, op, right, e),
            SqlExpr::IsNull(x) => Ok(Typed::new(
                Expr::IsNull(Box::new(self.expr(x)?.expr)),
                Ty::Bool,
            )),
            SqlExpr::IsNotNull(x) => Ok(Typed::new(
                Expr::IsNotNull(Box::new(self.expr(x)?.expr)),
                Ty::Bool,
            )),
            SqlExpr::IsTrue(x) => self.is(x, Expr::IsTrue),
            SqlExpr::IsNotTrue(x) => self.is(x, Expr::IsNotTrue),
            SqlExpr::IsFalse(x) => self.is(x, Expr::IsFalse),
            SqlExpr::IsNotFalse(x) => self.is(x, Expr::IsNotFalse),
            SqlExpr::IsUnknown(x) => self.is(x, Expr::IsUnknown),
            SqlExpr::IsNotUnknown(x) => self.is(x, Expr::IsNotUnknown),
            SqlExpr::InList {
                expr,
                list,
                negated,
            } => {
                let x = self.expr(expr)?;
                let mut comparisons = Vec::with_capacity(list.len());
                for item in list {
                    let item = self.expr(item)?;
                    comparisons.push(self.compare(CmpOp::Eq, x.clone(), item, "IN")?);
                }
                let any = balanced(comparisons, Operator::Or)
                    .unwrap_or_else(|| Expr::Literal(ScalarValue::Boolean(Some(false)), None));
                Ok(Typed::new(maybe_not(any, *negated), Ty::Bool))
            }
            SqlExpr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let x = self.expr(expr)?;
                let low = self.compare(CmpOp::GtEq, x.clone(), self.expr(low)?, "BETWEEN")?;
                let high = self.compare(CmpOp::LtEq, x, self.expr(high)?, "BETWEEN")?;
                Ok(Typed::new(
                    maybe_not(binary(low, Operator::And, high), *negated),
                    Ty::Bool,
                ))
            }
            SqlExpr::Like {
                negated,
                any: false,
                expr,
                pattern,
                escape_char,
            } => self.like(
                expr,
                pattern,
                escape_char.as_ref().map(|v| &v.value),
                *negated,
            ),
            SqlExpr::RLike {
                negated,
                expr,
                pattern,
                ..
            } => self.regexp(expr, pattern, *negated),
            SqlExpr::Cast {
                kind: CastKind::Cast,
                expr,
                data_type,
                array: false,
                format: None,
            } => {
                let t = self.expr(expr)?;
                self.cast_to(t, data_type, e)
            }
            SqlExpr::Convert {
                is_try: false,
                expr,
                data_type: Some(data_type),
                charset: None,
                target_before_value: false,
                styles,
            } if styles.is_empty() => {
                let t = self.expr(expr)?;
                self.cast_to(t, data_type, e)
            }
            SqlExpr::Collate { expr, collation } => self.collate(expr, &collation.to_string()),
            SqlExpr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![self.expr(expr)?];
                match substring_from {
                    Some(from) => args.push(self.expr(from)?),
                    None => return self.refuse("SUBSTRING needs a position"),
                }
                if let Some(length) = substring_for {
                    args.push(self.expr(length)?);
                }
                self.substring(Func::Substr, args, "SUBSTRING")
            }
            SqlExpr::Trim {
                trim_where,
                trim_what,
                expr,
                trim_characters: None,
            } => {
                let side = match trim_where {
                    None | Some(TrimWhereField::Both) => TrimSide::Both,
                    Some(TrimWhereField::Leading) => TrimSide::Leading,
                    Some(TrimWhereField::Trailing) => TrimSide::Trailing,
                };
                let mut args = vec![self.expr(expr)?];
                if let Some(what) = trim_what {
                    args.push(self.expr(what)?);
                }
                self.text_function(Func::Trim(side), args, "TRIM")
            }
            SqlExpr::Extract { field, expr, .. } => {
                let part = match field {
                    DateTimeField::Year | DateTimeField::Years => Part::Year,
                    DateTimeField::Quarter => Part::Quarter,
                    DateTimeField::Month | DateTimeField::Months => Part::Month,
                    DateTimeField::Day | DateTimeField::Days => Part::Day,
                    DateTimeField::Hour | DateTimeField::Hours => Part::Hour,
                    DateTimeField::Minute | DateTimeField::Minutes => Part::Minute,
                    DateTimeField::Second | DateTimeField::Seconds => Part::Second,
                    DateTimeField::Microsecond | DateTimeField::Microseconds => Part::Microsecond,
                    other => return self.refuse(format!("EXTRACT({other} FROM …)")),
                };
                self.part(part, self.expr(expr)?, "EXTRACT")
            }
            SqlExpr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let operand = operand.as_deref().map(|o| self.expr(o)).transpose()?;
                let mut whens = Vec::with_capacity(conditions.len());
                let mut results = Vec::with_capacity(conditions.len() + 1);
                for when in conditions {
                    let condition = self.expr(&when.condition)?;
                    whens.push(match &operand {
                        Some(operand) => {
                            self.compare(CmpOp::Eq, operand.clone(), condition, "CASE")?
                        }
                        None => self.condition(condition, "CASE WHEN")?,
                    });
                    results.push(self.expr(&when.result)?);
                }
                let has_else = else_result.is_some();
                if let Some(otherwise) = else_result {
                    results.push(self.expr(otherwise)?);
                }
                let (mut exprs, ty) = self.unify(results, "CASE")?;
                let otherwise = if has_else { exprs.pop() } else { None };
                Ok(Typed::new(self.case(whens, exprs, otherwise, &ty), ty))
            }
            SqlExpr::Function(function) => self.function(function, e),
            SqlExpr::Interval(_) => self
                .refuse("INTERVAL works only in DATE_ADD / DATE_SUB or `date + INTERVAL n unit`"),
            SqlExpr::ILike { .. } => {
                self.refuse("ILIKE is not MySQL; LIKE ignores case under _ci collations")
            }
            other => self.refuse(format!(
                "`{other}` is not something tributary evaluates in a row filter (what it \
                 evaluates is listed in docs/project-language.md)"
            )),
        }
    }

    fn is(&self, x: &SqlExpr, make: fn(Box<Expr>) -> Expr) -> R<Typed> {
        let t = self.expr(x)?;
        Ok(Typed::new(
            make(Box::new(self.condition(t, "IS")?)),
            Ty::Bool,
        ))
    }

    fn column(&self, name: &str) -> R<Typed> {
        let Some(index) = self
            .cx
            .schema
            .fields()
            .iter()
            .position(|f| f.name() == name)
        else {
            return self.refuse(format!("unknown column `{name}`"));
        };
        let field = self.cx.schema.field(index);
        let column = self.cx.columns.get(index).filter(|c| c.name == *name);
        let expr = Expr::Column(Column::new_unqualified(name));
        let Some(column) = column else {
            return self.refuse(format!("column `{name}` is not described by the catalog"));
        };
        if column.sql_type.arrow_type().as_ref() != Some(field.data_type()) {
            return Ok(Typed::new(
                expr,
                Ty::Opaque(format!(
                    "column `{name}`, whose values tributary does not decode ({})",
                    column.column_type
                )),
            ));
        }
        let ty = match &column.sql_type {
            SqlType::Bool
            | SqlType::TinyInt { unsigned: false }
            | SqlType::SmallInt { unsigned: false }
            | SqlType::MediumInt { unsigned: false }
            | SqlType::Int { unsigned: false }
            | SqlType::BigInt { unsigned: false } => Ty::Int,
            SqlType::TinyInt { .. }
            | SqlType::SmallInt { .. }
            | SqlType::MediumInt { .. }
            | SqlType::Int { .. }
            | SqlType::BigInt { .. }
            | SqlType::Year => Ty::UInt,
            SqlType::Decimal { precision, scale } if *precision <= 38 => {
                Ty::Decimal { scale: *scale }
            }
            SqlType::Float => {
                return Ok(Typed::new(cast(expr, DataType::Float64), Ty::Double));
            }
            SqlType::Double => Ty::Double,
            SqlType::Char { .. } | SqlType::VarChar { .. } | SqlType::Text => {
                Ty::Text(self.column_text(column, false))
            }
            SqlType::Enum { .. } | SqlType::Set { .. } => Ty::Text(self.column_text(column, true)),
            SqlType::Binary { .. } | SqlType::VarBinary { .. } | SqlType::Blob => Ty::Bytes,
            SqlType::Date => Ty::Date,
            SqlType::DateTime { fsp } => Ty::DateTime { fsp: *fsp },
            SqlType::Timestamp { fsp } => {
                let wall_clock = self.wall_clock(expr, name)?;
                return Ok(Typed::new(wall_clock, Ty::DateTime { fsp: *fsp }));
            }
            SqlType::Time { fsp } => Ty::Time { fsp: *fsp },
            other => Ty::Opaque(format!("column `{name}` of type {other}")),
        };
        Ok(Typed::new(expr, ty))
    }

    /// A TIMESTAMP (an instant) as MySQL's session sees it: the wall-clock time in the zone.
    fn wall_clock(&self, instant: Expr, name: &str) -> R<Expr> {
        let utc = cast(instant, DATETIME);
        match self.cx.zone {
            Zone::Offset(0) => Ok(utc),
            Zone::Offset(seconds) => {
                let shift = Expr::Literal(ScalarValue::Int64(Some(seconds * 1_000_000)), None);
                let micros = binary(cast(utc, DataType::Int64), Operator::Plus, shift);
                Ok(cast(micros, DATETIME))
            }
            Zone::Varying(zone) => self.refuse(format!(
                "column `{name}` is a TIMESTAMP, which MySQL reads in the session's time zone, \
                 and the server's ({zone}) changes its offset during the year, which row filters \
                 do not follow: set the source's `timezone` option to the offset to read it in, \
                 e.g. '+01:00'"
            )),
        }
    }

    fn column_text(&self, column: &ColumnDef, members: bool) -> Text {
        let collation = match &column.collation {
            Some(name) => Collation::from_name(name).map_err(|e| {
                format!(
                    "column `{}` has collation {}, which tributary does not evaluate (see \
                     docs/project-language.md for the ones it does); compare it under another \
                     with COLLATE, e.g. `{} COLLATE utf8mb4_bin`",
                    column.name, e.0, column.name
                )
            }),
            None => Err(format!(
                "the collation of column `{}` is not known (a schema history written by an \
                 older tributary; `reset` re-reads it)",
                column.name
            )),
        };
        let charset = column
            .charset
            .clone()
            .or_else(|| column.collation.as_deref().map(Charset::of_collation))
            .unwrap_or_else(|| "utf8mb4".into());
        Text {
            collation,
            coercibility: 2,
            charset,
            members,
        }
    }

    fn value(&self, value: &Value) -> R<Typed> {
        match value {
            Value::Number(text, _) => self.number(text),
            Value::SingleQuotedString(s)
            | Value::DoubleQuotedString(s)
            | Value::NationalStringLiteral(s) => Ok(Typed::literal(
                ScalarValue::Utf8(Some(s.clone())),
                Ty::Text(self.literal_text()),
            )),
            Value::Boolean(b) => Ok(Typed::literal(ScalarValue::Boolean(Some(*b)), Ty::Bool)),
            Value::Null => Ok(Typed::literal(ScalarValue::Null, Ty::Null)),
            other => self.refuse(format!(
                "the literal {other} (hexadecimal and bit literals are not evaluated)"
            )),
        }
    }

    /// A number literal: integers are BIGINT (or BIGINT UNSIGNED, or DECIMAL when larger), a
    /// fraction makes an exact DECIMAL, an exponent a DOUBLE — as MySQL reads them.
    fn number(&self, text: &str) -> R<Typed> {
        if text.contains(['e', 'E']) {
            return match text.parse::<f64>() {
                Ok(v) => Ok(Typed::literal(ScalarValue::Float64(Some(v)), Ty::Double)),
                Err(_) => self.refuse(format!("the number {text}")),
            };
        }
        if let Ok(v) = text.parse::<i64>() {
            return Ok(Typed::literal(ScalarValue::Int64(Some(v)), Ty::Int));
        }
        if let Ok(v) = text.parse::<u64>() {
            return Ok(Typed::literal(ScalarValue::UInt64(Some(v)), Ty::UInt));
        }
        let (int_part, frac_part) = text.split_once('.').unwrap_or((text, ""));
        let int_part = int_part.trim_start_matches('0');
        let precision = (int_part.len() + frac_part.len()).max(1);
        if precision > 38 {
            return self.refuse(format!("the number {text} has more than 38 digits"));
        }
        let scale = frac_part.len() as i8;
        let digits = format!("{int_part}{frac_part}");
        let value: i128 = digits.trim_start_matches('0').parse().unwrap_or(0);
        Ok(Typed::literal(
            ScalarValue::Decimal128(Some(value), precision.max(scale as usize) as u8, scale),
            Ty::Decimal { scale },
        ))
    }

    // ---------------------------------------------------------------- conversions

    /// A value as a condition: MySQL's truth is "not zero" for numbers and for strings read as
    /// numbers; NULL stays NULL.
    fn condition(&self, t: Typed, context: &str) -> R<Expr> {
        match &t.ty {
            Ty::Bool => Ok(t.expr),
            Ty::Null => Ok(null_bool()),
            Ty::Int | Ty::UInt | Ty::Decimal { .. } | Ty::Double => {
                let t = self.round_declared(t)?;
                Ok(binary(
                    t.expr,
                    Operator::NotEq,
                    Expr::Literal(ScalarValue::Int64(Some(0)), None),
                ))
            }
            Ty::Text(text) if !text.members => Ok(binary(
                udf(Func::ToDouble, vec![t.expr]),
                Operator::NotEq,
                Expr::Literal(ScalarValue::Float64(Some(0.0)), None),
            )),
            other => self.refuse(format!(
                "{context} needs a condition, and {} is not one; compare it with something",
                describe(other)
            )),
        }
    }

    /// A value in numeric context: integers, decimals and doubles stay; conditions are 1/0;
    /// strings are read as doubles (`'12abc'` → 12).
    fn numeric(&self, t: Typed, context: &str) -> R<Typed> {
        match &t.ty {
            Ty::Null | Ty::Int | Ty::UInt | Ty::Decimal { .. } | Ty::Double => Ok(t),
            Ty::Bool => Ok(Typed::new(cast(t.expr, DataType::Int64), Ty::Int)),
            Ty::Text(text) if !text.members => {
                Ok(Typed::new(udf(Func::ToDouble, vec![t.expr]), Ty::Double))
            }
            other => self.refuse(format!(
                "{context} needs a number, and {} is not one tributary converts",
                describe(other)
            )),
        }
    }

    /// A DECIMAL whose Arrow scale exceeds its declared one, rounded to it (MySQL compares and
    /// shows a division's result at its declared scale).
    fn round_declared(&self, t: Typed) -> R<Typed> {
        if let Ty::Decimal { scale } = t.ty
            && let DataType::Decimal128(_, internal) = self.data_type(&t.expr)?
            && internal > scale
        {
            return Ok(Typed::new(
                udf(Func::RoundDecimal(scale), vec![t.expr]),
                t.ty,
            ));
        }
        Ok(t)
    }

    fn to_double(&self, t: Typed) -> R<Expr> {
        let t = self.round_declared(self.numeric(t, "a DOUBLE comparison")?)?;
        Ok(match t.ty {
            Ty::Double => t.expr,
            _ => cast(t.expr, DataType::Float64),
        })
    }

    /// An integer, UNSIGNED or DECIMAL as an Arrow decimal (integers exactly).
    fn to_decimal(&self, t: Typed) -> R<(Expr, i8)> {
        match t.ty {
            Ty::Int | Ty::UInt => Ok((cast(t.expr, DataType::Decimal128(20, 0)), 0)),
            Ty::Bool => Ok((
                cast(cast(t.expr, DataType::Int64), DataType::Decimal128(20, 0)),
                0,
            )),
            Ty::Decimal { scale } => Ok((t.expr, scale)),
            _ => self.refuse(format!("{} as a DECIMAL", describe(&t.ty))),
        }
    }

    /// A value as text, as MySQL writes it (numbers and dates become coercibility-5 strings).
    fn to_text(&self, t: Typed, context: &str) -> R<Typed> {
        let numeric_text = Text {
            coercibility: 5,
            ..self.literal_text()
        };
        match &t.ty {
            Ty::Text(_) => Ok(t),
            Ty::Null => Ok(Typed::literal(
                ScalarValue::Utf8(None),
                Ty::Text(numeric_text),
            )),
            Ty::Int | Ty::UInt | Ty::Bool | Ty::Decimal { .. } => {
                let t = self.round_declared(t)?;
                let expr = match &t.literal {
                    Some(ScalarValue::Boolean(Some(b))) => {
                        Expr::Literal(ScalarValue::Utf8(Some(u8::from(*b).to_string())), None)
                    }
                    _ => udf(Func::ToText(0), vec![t.expr]),
                };
                Ok(Typed::new(expr, Ty::Text(numeric_text)))
            }
            Ty::Date => Ok(Typed::new(
                udf(Func::ToText(0), vec![t.expr]),
                Ty::Text(numeric_text),
            )),
            Ty::DateTime { fsp } | Ty::Time { fsp } => Ok(Typed::new(
                udf(Func::ToText(*fsp), vec![t.expr]),
                Ty::Text(numeric_text),
            )),
            Ty::Double => self.refuse(format!(
                "{context} would write a DOUBLE as text, and MySQL's float formatting is not \
                 carried over; CAST it AS DECIMAL(p,s) first"
            )),
            other => self.refuse(format!("{context} cannot use {} as text", describe(other))),
        }
    }

    /// An integer argument (positions, lengths): MySQL rounds decimals half away from zero,
    /// doubles half to even, and reads strings' integer prefix.
    fn to_int(&self, t: Typed, context: &str) -> R<Expr> {
        match &t.ty {
            Ty::Int | Ty::Bool => Ok(cast(t.expr, DataType::Int64)),
            Ty::Null => Ok(Expr::Literal(ScalarValue::Int64(None), None)),
            Ty::UInt | Ty::Decimal { .. } | Ty::Double => {
                let t = self.round_declared(t)?;
                Ok(udf(Func::ToSigned, vec![t.expr]))
            }
            Ty::Text(text) if !text.members => Ok(udf(Func::ToSigned, vec![t.expr])),
            other => self.refuse(format!(
                "{context} needs an integer, not {}",
                describe(other)
            )),
        }
    }

    fn null_of(&self, ty: &Ty) -> Expr {
        let value = match ty {
            Ty::Null => ScalarValue::Null,
            Ty::Bool => ScalarValue::Boolean(None),
            Ty::Int => ScalarValue::Int64(None),
            Ty::UInt => ScalarValue::UInt64(None),
            Ty::Decimal { scale } => ScalarValue::Decimal128(None, 38, *scale),
            Ty::Double => ScalarValue::Float64(None),
            Ty::Text(_) => ScalarValue::Utf8(None),
            Ty::Bytes | Ty::Opaque(_) => ScalarValue::Binary(None),
            Ty::Date => ScalarValue::Date32(None),
            Ty::DateTime { .. } => ScalarValue::TimestampMicrosecond(None, None),
            Ty::Time { .. } => ScalarValue::Time64Microsecond(None),
        };
        Expr::Literal(value, None)
    }

    // ---------------------------------------------------------------- operators

    fn binary_op(
        &self,
        left: &SqlExpr,
        op: &BinaryOperator,
        right: &SqlExpr,
        whole: &SqlExpr,
    ) -> R<Typed> {
        use BinaryOperator as B;
        // Date arithmetic: `d + INTERVAL n unit`, `INTERVAL n unit + d`, `d - INTERVAL n unit`.
        match (left, op, right) {
            (date, B::Plus, SqlExpr::Interval(i)) | (SqlExpr::Interval(i), B::Plus, date) => {
                return self.date_add(self.expr(date)?, i, false, "+ INTERVAL");
            }
            (date, B::Minus, SqlExpr::Interval(i)) => {
                return self.date_add(self.expr(date)?, i, true, "- INTERVAL");
            }
            _ => {}
        }
        let l = self.expr(left)?;
        let r = self.expr(right)?;
        let cmp = |op| {
            self.compare(op, l.clone(), r.clone(), "a comparison")
                .map(|e| Typed::new(e, Ty::Bool))
        };
        match op {
            B::And => self.logical(l, Operator::And, r, "AND"),
            B::Or => self.logical(l, Operator::Or, r, "OR"),
            // NULL when either side is, else whether they differ.
            B::Xor => self.logical(l, Operator::NotEq, r, "XOR"),
            B::Eq => cmp(CmpOp::Eq),
            B::NotEq => cmp(CmpOp::NotEq),
            B::Lt => cmp(CmpOp::Lt),
            B::LtEq => cmp(CmpOp::LtEq),
            B::Gt => cmp(CmpOp::Gt),
            B::GtEq => cmp(CmpOp::GtEq),
            B::Spaceship => self.null_safe_equal(l, r),
            B::Plus => self.arithmetic(Operator::Plus, l, r),
            B::Minus => self.arithmetic(Operator::Minus, l, r),
            B::Multiply => self.arithmetic(Operator::Multiply, l, r),
            B::Divide => self.divide(l, r),
            B::MyIntegerDivide => self.int_divide(l, r),
            B::Modulo => self.modulo(l, r),
            B::StringConcat => self.refuse(
                "`||` is OR in MySQL unless PIPES_AS_CONCAT is set; write OR or CONCAT() so \
                 that the filter means one thing",
            ),
            other => self.refuse(format!(
                "the operator {other} in `{whole}` is not one tributary's row filters \
                 evaluate; rewrite the condition without it"
            )),
        }
    }

    /// AND, OR, XOR of two conditions (SQL's three-valued logic, as MySQL's).
    fn logical(&self, l: Typed, op: Operator, r: Typed, name: &str) -> R<Typed> {
        let (l, r) = (self.condition(l, name)?, self.condition(r, name)?);
        Ok(Typed::new(binary(l, op, r), Ty::Bool))
    }

    fn negate(&self, t: Typed) -> R<Typed> {
        let t = self.numeric(t, "unary minus")?;
        if let Some(literal) = &t.literal {
            let folded = match literal {
                ScalarValue::Int64(Some(v)) => v
                    .checked_neg()
                    .map(|v| Typed::literal(ScalarValue::Int64(Some(v)), Ty::Int)),
                ScalarValue::UInt64(Some(v)) if *v == i64::MAX as u64 + 1 => {
                    Some(Typed::literal(ScalarValue::Int64(Some(i64::MIN)), Ty::Int))
                }
                ScalarValue::Decimal128(Some(v), p, s) => Some(Typed::literal(
                    ScalarValue::Decimal128(Some(-v), *p, *s),
                    t.ty.clone(),
                )),
                ScalarValue::Float64(Some(v)) => {
                    Some(Typed::literal(ScalarValue::Float64(Some(-v)), Ty::Double))
                }
                _ => None,
            };
            if let Some(folded) = folded {
                return Ok(folded);
            }
        }
        match t.ty {
            Ty::Null => Ok(t),
            Ty::Int => Ok(Typed::new(
                Expr::Negative(Box::new(cast(t.expr, DataType::Int64))),
                Ty::Int,
            )),
            Ty::UInt => Ok(Typed::new(
                Expr::Negative(Box::new(cast(t.expr, DataType::Decimal128(20, 0)))),
                Ty::Decimal { scale: 0 },
            )),
            _ => Ok(Typed::new(Expr::Negative(Box::new(t.expr)), t.ty)),
        }
    }

    /// Both operands in numeric context; `None` when either is NULL (and so is the result).
    fn operands(&self, l: Typed, r: Typed, name: &str) -> R<Option<(Typed, Typed)>> {
        let (l, r) = (self.numeric(l, name)?, self.numeric(r, name)?);
        Ok((!matches!(l.ty, Ty::Null) && !matches!(r.ty, Ty::Null)).then_some((l, r)))
    }

    /// An operation on doubles; `null_on_zero`: NULL for a zero right side (`/`, MOD).
    fn double_op(&self, l: Typed, op: Operator, r: Typed, null_on_zero: bool) -> R<Typed> {
        let (l, r) = (self.to_double(l)?, self.to_double(r)?);
        let r = if null_on_zero {
            self.null_if_zero(r)
        } else {
            r
        };
        Ok(Typed::new(binary(l, op, r), Ty::Double))
    }

    /// `+`, `-`, `*`: doubles if either side is one; otherwise exact decimals (integers too, so
    /// that nothing wraps where MySQL would stop with "out of range").
    fn arithmetic(&self, op: Operator, l: Typed, r: Typed) -> R<Typed> {
        let Some((l, r)) = self.operands(l, r, &format!("`{op}`"))? else {
            return Ok(Typed::literal(ScalarValue::Null, Ty::Null));
        };
        if any_double(&l, &r) {
            return self.double_op(l, op, r, false);
        }
        let ((le, ls), (re, rs)) = (self.to_decimal(l)?, self.to_decimal(r)?);
        let scale = if op == Operator::Multiply {
            ls + rs
        } else {
            ls.max(rs)
        };
        Ok(Typed::new(binary(le, op, re), Ty::Decimal { scale }))
    }

    /// `/`: NULL for a zero divisor; a DOUBLE if either side is one, else MySQL's DECIMAL
    /// division (the dividend's scale plus 4, computed to nine digits more).
    fn divide(&self, l: Typed, r: Typed) -> R<Typed> {
        let Some((l, r)) = self.operands(l, r, "`/`")? else {
            return Ok(Typed::literal(ScalarValue::Null, Ty::Null));
        };
        if any_double(&l, &r) {
            return self.double_op(l, Operator::Divide, r, true);
        }
        let ((le, declared), (re, _)) = (self.to_decimal(l)?, self.to_decimal(r)?);
        let (DataType::Decimal128(_, s1), DataType::Decimal128(_, s2)) =
            (self.data_type(&le)?, self.data_type(&re)?)
        else {
            return self.refuse("`/` of values wider than DECIMAL(38)");
        };
        let internal = (i16::from(s1) + i16::from(s2) + 4 + 8) / 9 * 9;
        if internal > 30 {
            return self.refuse("divisions nested this deep need more than 30 decimal digits");
        }
        Ok(Typed::new(
            udf(Func::DecimalDiv(internal as i8), vec![le, re]),
            Ty::Decimal {
                scale: (declared + 4).min(30),
            },
        ))
    }

    fn null_if_zero(&self, e: Expr) -> Expr {
        Expr::Case(Case::new(
            None,
            vec![(
                Box::new(binary(
                    e.clone(),
                    Operator::Eq,
                    Expr::Literal(ScalarValue::Int64(Some(0)), None),
                )),
                Box::new(Expr::Literal(ScalarValue::Null, None)),
            )],
            Some(Box::new(e)),
        ))
    }

    /// `DIV`: integer division, truncated; NULL for a zero divisor.
    fn int_divide(&self, l: Typed, r: Typed) -> R<Typed> {
        let Some((l, r)) = self.operands(l, r, "DIV")? else {
            return Ok(Typed::literal(ScalarValue::Null, Ty::Null));
        };
        let (le, re) = if any_double(&l, &r) {
            (self.to_double(l)?, self.to_double(r)?)
        } else {
            let l = self.round_declared(l)?;
            let r = self.round_declared(r)?;
            (self.to_decimal(l)?.0, self.to_decimal(r)?.0)
        };
        Ok(Typed::new(udf(Func::IntDiv, vec![le, re]), Ty::Int))
    }

    /// `%` and MOD: the sign of the dividend; NULL for a zero divisor.
    fn modulo(&self, l: Typed, r: Typed) -> R<Typed> {
        let Some((l, r)) = self.operands(l, r, "MOD")? else {
            return Ok(Typed::literal(ScalarValue::Null, Ty::Null));
        };
        if any_double(&l, &r) {
            return self.double_op(l, Operator::Modulo, r, true);
        }
        if matches!(l.ty, Ty::Int | Ty::Bool) && matches!(r.ty, Ty::Int | Ty::Bool) {
            let (l, r) = (cast(l.expr, DataType::Int64), cast(r.expr, DataType::Int64));
            return Ok(Typed::new(
                binary(l, Operator::Modulo, self.null_if_zero(r)),
                Ty::Int,
            ));
        }
        let l = self.round_declared(l)?;
        let r = self.round_declared(r)?;
        let ((le, ls), (re, rs)) = (self.to_decimal(l)?, self.to_decimal(r)?);
        let scale = ls.max(rs);
        let to = DataType::Decimal128(38, scale);
        Ok(Typed::new(
            binary(
                cast(le, to.clone()),
                Operator::Modulo,
                self.null_if_zero(cast(re, to)),
            ),
            Ty::Decimal { scale },
        ))
    }

    fn null_safe_equal(&self, l: Typed, r: Typed) -> R<Typed> {
        let expr = match (&l.ty, &r.ty) {
            (Ty::Null, Ty::Null) => Expr::Literal(ScalarValue::Boolean(Some(true)), None),
            (Ty::Null, _) => Expr::IsNull(Box::new(r.expr)),
            (_, Ty::Null) => Expr::IsNull(Box::new(l.expr)),
            _ => {
                let (le, re) = (l.expr.clone(), r.expr.clone());
                let equal = self.compare(CmpOp::Eq, l, r, "<=>")?;
                Expr::Case(Case::new(
                    None,
                    vec![
                        (
                            Box::new(Expr::IsNull(Box::new(le.clone()))),
                            Box::new(Expr::IsNull(Box::new(re.clone()))),
                        ),
                        (
                            Box::new(Expr::IsNull(Box::new(re))),
                            Box::new(Expr::Literal(ScalarValue::Boolean(Some(false)), None)),
                        ),
                    ],
                    Some(Box::new(equal)),
                ))
            }
        };
        Ok(Typed::new(expr, Ty::Bool))
    }

    /// A comparison with MySQL's rules: strings under their collation, numbers exactly, a
    /// string and a number as doubles, dates against dates (a string constant read as one).
    fn compare(&self, op: CmpOp, l: Typed, r: Typed, context: &str) -> R<Expr> {
        let operator = op.operator();
        match (&l.ty, &r.ty) {
            (Ty::Opaque(what), _) | (_, Ty::Opaque(what)) => self.refuse(format!(
                "{context} cannot compare {what}; only IS [NOT] NULL can test it"
            )),
            (Ty::Null, _) | (_, Ty::Null) => Ok(null_bool()),
            (Ty::Text(a), Ty::Text(b)) => {
                let (a, b) = (a.clone(), b.clone());
                self.text_compare(op, l, r, &a, &b, context)
            }
            (Ty::Bytes, Ty::Bytes | Ty::Text(_)) | (Ty::Text(_), Ty::Bytes) => {
                let as_bytes = |t: Typed| match t.ty {
                    Ty::Bytes => t.expr,
                    _ => cast(t.expr, DataType::Binary),
                };
                Ok(binary(as_bytes(l), operator, as_bytes(r)))
            }
            (a, b) if is_temporal(a) || is_temporal(b) => {
                let (le, re) = self.temporal_pair(l, r, context)?;
                Ok(binary(le, operator, re))
            }
            (a, b) if is_numeric(a) && is_numeric(b) => {
                if matches!(a, Ty::Double) || matches!(b, Ty::Double) {
                    return Ok(binary(self.to_double(l)?, operator, self.to_double(r)?));
                }
                let signedness_differs = (matches!(a, Ty::UInt) && matches!(b, Ty::Int | Ty::Bool))
                    || (matches!(b, Ty::UInt) && matches!(a, Ty::Int | Ty::Bool));
                if matches!(a, Ty::Decimal { .. })
                    || matches!(b, Ty::Decimal { .. })
                    || signedness_differs
                {
                    let (le, _) = self.to_decimal(self.round_declared(l)?)?;
                    let (re, _) = self.to_decimal(self.round_declared(r)?)?;
                    return Ok(binary(le, operator, re));
                }
                let int = |t: Typed| match t.ty {
                    Ty::Bool => cast(t.expr, DataType::Int64),
                    _ => t.expr,
                };
                Ok(binary(int(l), operator, int(r)))
            }
            (Ty::Text(t), b) | (b, Ty::Text(t)) if is_numeric(b) => {
                if t.members {
                    return self.refuse(format!(
                        "{context} compares an ENUM/SET with a number, which MySQL does by the \
                         member's index; compare it with its text instead"
                    ));
                }
                Ok(binary(self.to_double(l)?, operator, self.to_double(r)?))
            }
            (a, b) => self.refuse(format!(
                "{context} compares {} with {}, which tributary does not evaluate",
                describe(a),
                describe(b)
            )),
        }
    }

    fn text_compare(
        &self,
        op: CmpOp,
        l: Typed,
        r: Typed,
        a: &Text,
        b: &Text,
        context: &str,
    ) -> R<Expr> {
        let info = aggregate(a, b);
        let collation = match info.collation {
            Ok(c) => c,
            Err(why) => return self.refuse(format!("{context} compares text: {why}")),
        };
        let ordering = !matches!(op, CmpOp::Eq | CmpOp::NotEq);
        if ordering && !collation.orders() {
            return self.refuse(format!(
                "{context} orders text under collation {}, whose order of punctuation and letters \
                 (UCA's) tributary does not carry; use = / <> / IN / LIKE, or COLLATE \
                 utf8mb4_bin",
                collation.name
            ));
        }
        if ordering && (a.members || b.members) {
            return self.refuse(format!(
                "{context} orders an ENUM/SET, which MySQL orders by member index"
            ));
        }
        for side in [&l, &r] {
            if let Some(text) = side.text_literal() {
                let exact = if ordering {
                    collation.compare(text, text).is_ok()
                } else {
                    collation.equal(text, text).is_ok()
                };
                if !exact {
                    return self.refuse(format!(
                        "{context} compares {text:?} under collation {}, which tributary \
                         evaluates only for printable ASCII text",
                        collation.name
                    ));
                }
            }
        }
        if collation.rule == Rule::Bytes {
            let operator = op.operator();
            return Ok(binary(
                cast(l.expr, DataType::Binary),
                operator,
                cast(r.expr, DataType::Binary),
            ));
        }
        Ok(udf(Func::StrCmp(op, collation), vec![l.expr, r.expr]))
    }

    /// Two sides of a comparison involving a date, date-time or time, in one Arrow type.
    fn temporal_pair(&self, l: Typed, r: Typed, context: &str) -> R<(Expr, Expr)> {
        let swap = !is_temporal(&l.ty);
        let (t, other) = if swap { (r, l) } else { (l, r) };
        let (a, b) = match (&t.ty, &other.ty) {
            (Ty::Date, Ty::Date) => (t.expr, other.expr),
            (Ty::DateTime { .. }, Ty::DateTime { .. }) | (Ty::Time { .. }, Ty::Time { .. }) => {
                (t.expr, other.expr)
            }
            (Ty::Date, Ty::DateTime { .. }) => (udf(Func::DateTimeOf, vec![t.expr]), other.expr),
            (Ty::DateTime { .. }, Ty::Date) => (t.expr, udf(Func::DateTimeOf, vec![other.expr])),
            (_, Ty::Text(_)) if other.text_literal().is_some() => {
                let (literal, as_datetime) =
                    self.temporal_literal(&t.ty, &other, &other_sql(&other))?;
                let column = if as_datetime && matches!(t.ty, Ty::Date) {
                    udf(Func::DateTimeOf, vec![t.expr])
                } else {
                    t.expr
                };
                (column, literal.expr)
            }
            (a, Ty::Text(_)) => {
                return self.refuse(format!(
                    "{context} compares {} with a text expression; MySQL reads such text as a \
                     date row by row, which tributary does not — compare with a constant, or \
                     with DATE(text)",
                    describe(a)
                ));
            }
            (a, b) => {
                return self.refuse(format!(
                    "{context} compares {} with {}, which tributary does not evaluate",
                    describe(a),
                    describe(b)
                ));
            }
        };
        Ok(if swap { (b, a) } else { (a, b) })
    }

    /// A string constant as a value of temporal type `target`: the literal, and whether it had
    /// a time a DATE must be compared with as a DATETIME.
    fn temporal_literal(
        &self,
        target: &Ty,
        text: &Typed,
        whole: &dyn std::fmt::Display,
    ) -> R<(Typed, bool)> {
        let Some(s) = text.text_literal() else {
            return self.refuse(format!("`{whole}` needs a string constant"));
        };
        if let Ty::Time { fsp } = target {
            return match parse_time(s) {
                Some(micros) => Ok((
                    Typed::literal(
                        ScalarValue::Time64Microsecond(Some(micros)),
                        Ty::Time { fsp: *fsp },
                    ),
                    false,
                )),
                None => self.refuse(format!("{s:?} is not a time tributary reads")),
            };
        }
        let Some(parsed) = convert::parse_datetime(s) else {
            return self.refuse(format!(
                "{s:?} is not a date or date-time tributary reads (YYYY-MM-DD [HH:MM:SS[.ffffff]]); \
                 MySQL would compare it with warnings"
            ));
        };
        let parsed = self.in_session_zone(parsed, s)?;
        if matches!(target, Ty::Date) && !parsed.has_time {
            return Ok((
                Typed::literal(
                    ScalarValue::Date32(Some(convert::parsed_date(&parsed))),
                    Ty::Date,
                ),
                false,
            ));
        }
        Ok((
            Typed::literal(
                ScalarValue::TimestampMicrosecond(Some(parsed.value.to_arrow()), None),
                Ty::DateTime { fsp: 6 },
            ),
            matches!(target, Ty::Date),
        ))
    }

    /// A date-time constant with an offset (`'2024-01-01 10:00:00+08:00'`, read as UTC) as the
    /// session reads it: MySQL (8.0.19 on) converts it into the session zone; MariaDB drops
    /// the offset with a warning, which no filter should rely on.
    fn in_session_zone(
        &self,
        mut parsed: convert::ParsedDateTime,
        s: &str,
    ) -> R<convert::ParsedDateTime> {
        if !parsed.zoned {
            return Ok(parsed);
        }
        if self.cx.flavor == SourceKind::MariaDb {
            return self.refuse(format!(
                "{s:?} carries a UTC offset, which MariaDB ignores (it reads the time as if \
                 written without one, with a warning): write it without the offset"
            ));
        }
        match (self.cx.zone, &mut parsed.value) {
            (Zone::Offset(zone), DateTimeValue::Micros(micros)) => *micros += zone * 1_000_000,
            (Zone::Varying(zone), _) => {
                return self.refuse(format!(
                    "{s:?} carries a UTC offset, which MySQL converts into the session's time \
                     zone, and the server's ({zone}) changes its offset during the year: set \
                     the source's `timezone` option"
                ));
            }
            _ => {}
        }
        Ok(parsed)
    }

    // ---------------------------------------------------------------- LIKE, REGEXP, COLLATE

    fn like(
        &self,
        expr: &SqlExpr,
        pattern: &SqlExpr,
        escape: Option<&Value>,
        negated: bool,
    ) -> R<Typed> {
        let x = self.expr(expr)?;
        let p = self.expr(pattern)?;
        let escape = match escape {
            None => Some('\\'),
            Some(Value::SingleQuotedString(s) | Value::DoubleQuotedString(s)) => {
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (None, _) => None,
                    (Some(c), None) => Some(c),
                    _ => return self.refuse("LIKE … ESCAPE takes one character"),
                }
            }
            Some(other) => return self.refuse(format!("LIKE … ESCAPE {other}")),
        };
        let bytes = matches!(x.ty, Ty::Bytes) || matches!(p.ty, Ty::Bytes);
        let (x, p, collation) = if bytes {
            let as_bytes = |t: Typed| -> R<Expr> {
                match t.ty {
                    Ty::Bytes => Ok(t.expr),
                    Ty::Null => Ok(Expr::Literal(ScalarValue::Binary(None), None)),
                    _ => Ok(self.to_text(t, "LIKE")?.expr),
                }
            };
            let text = p.text_literal().map(str::to_string);
            (as_bytes(x)?, as_bytes(p)?, (Collation::binary(), text))
        } else {
            let x = self.to_text(x, "LIKE")?;
            let p = self.to_text(p, "LIKE")?;
            let (Ty::Text(a), Ty::Text(b)) = (&x.ty, &p.ty) else {
                return self.refuse("LIKE needs text");
            };
            let collation = match aggregate(a, b).collation {
                Ok(c) => c,
                Err(why) => return self.refuse(format!("LIKE: {why}")),
            };
            let text = p.text_literal().map(str::to_string);
            (x.expr, p.expr, (collation, text))
        };
        let (collation, literal) = collation;
        if let Some(text) = literal
            && LikePattern::compile(&text, escape, &collation).is_err()
        {
            return self.refuse(format!(
                "LIKE {text:?} under collation {}, which tributary evaluates only for printable \
                 ASCII text",
                collation.name
            ));
        }
        let matched = udf(Func::Like(collation, escape), vec![x, p]);
        Ok(Typed::new(maybe_not(matched, negated), Ty::Bool))
    }

    fn regexp(&self, expr: &SqlExpr, pattern: &SqlExpr, negated: bool) -> R<Typed> {
        let x = self.to_text(self.expr(expr)?, "REGEXP")?;
        let p = self.expr(pattern)?;
        let Some(text) = p.text_literal().map(str::to_string) else {
            return self.refuse("REGEXP needs a string constant as its pattern");
        };
        let (Ty::Text(a), Ty::Text(b)) = (&x.ty, &p.ty) else {
            return self.refuse("REGEXP needs text");
        };
        let case_insensitive = match aggregate(a, b).collation {
            Ok(c) => c.case_insensitive(),
            Err(why) => return self.refuse(format!("REGEXP: {why}")),
        };
        let translated = pcre_dollars(&text);
        let regex = regex::RegexBuilder::new(&translated)
            .case_insensitive(case_insensitive)
            .build()
            .map_err(|e| {
                format!(
                    "the WHERE of {}: REGEXP {text:?} cannot be evaluated exactly: tributary \
                     matches with Rust's regex crate, which has no backreferences, look-around \
                     or possessive quantifiers ({})",
                    self.cx.table,
                    e.to_string().lines().last().unwrap_or_default().trim()
                )
            })?;
        let matched = udf(
            Func::Regexp(Pattern {
                text,
                case_insensitive,
                regex,
            }),
            vec![x.expr],
        );
        Ok(Typed::new(maybe_not(matched, negated), Ty::Bool))
    }

    fn collate(&self, expr: &SqlExpr, name: &str) -> R<Typed> {
        let t = self.expr(expr)?;
        let collation = Collation::from_name(name).map_err(|e| {
            format!(
                "the WHERE of {}: COLLATE {}: tributary does not evaluate that collation",
                self.cx.table, e.0
            )
        })?;
        let Ty::Text(text) = &t.ty else {
            return self.refuse(format!(
                "COLLATE {name} applies to text, not {}",
                describe(&t.ty)
            ));
        };
        let wanted = Charset::of_collation(&collation.name);
        let charset = if text.coercibility >= 4 {
            "utf8mb4"
        } else {
            text.charset.as_str()
        };
        let same = wanted == charset
            || (matches!(wanted.as_str(), "utf8mb3" | "utf8")
                && matches!(charset, "utf8mb3" | "utf8"));
        if !same {
            return self.refuse(format!(
                "COLLATE {name} is not a collation of character set {charset} (MySQL refuses it too)"
            ));
        }
        let text = Text {
            collation: Ok(collation),
            coercibility: 0,
            charset: charset.to_string(),
            members: text.members,
        };
        Ok(Typed {
            expr: t.expr,
            ty: Ty::Text(text),
            literal: t.literal,
        })
    }

    // ---------------------------------------------------------------- CAST

    fn cast_to(&self, t: Typed, to: &sqlparser::ast::DataType, whole: &SqlExpr) -> R<Typed> {
        use sqlparser::ast::DataType as D;
        let convertible = |t: &Typed| {
            matches!(
                t.ty,
                Ty::Null | Ty::Bool | Ty::Int | Ty::UInt | Ty::Decimal { .. } | Ty::Double
            ) || matches!(&t.ty, Ty::Text(x) if !x.members)
        };
        match to {
            D::Signed
            | D::SignedInteger
            | D::Unsigned
            | D::UnsignedInteger
            | D::Decimal(_)
            | D::Dec(_)
            | D::Numeric(_)
            | D::Double(_)
            | D::DoublePrecision
            | D::Float(_)
            | D::Real
                if !convertible(&t) =>
            {
                self.refuse(format!(
                    "`{whole}`: CAST of {} to a number",
                    describe(&t.ty)
                ))
            }
            D::Signed | D::SignedInteger => {
                let t = self.round_declared(t)?;
                Ok(Typed::new(udf(Func::ToSigned, vec![t.expr]), Ty::Int))
            }
            D::Unsigned | D::UnsignedInteger => {
                let t = self.round_declared(t)?;
                Ok(Typed::new(udf(Func::ToUnsigned, vec![t.expr]), Ty::UInt))
            }
            D::Decimal(info) | D::Dec(info) | D::Numeric(info) => {
                let (precision, scale) = match info {
                    ExactNumberInfo::None => (10, 0),
                    ExactNumberInfo::Precision(p) => (*p, 0),
                    ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s),
                };
                if !(1..=38).contains(&precision) || scale < 0 || scale as u64 > precision.min(30) {
                    return self.refuse(format!("`{whole}`: DECIMAL({precision},{scale}) (tributary evaluates precisions up to 38)"));
                }
                let t = self.round_declared(t)?;
                Ok(Typed::new(
                    udf(Func::ToDecimal(precision as u8, scale as i8), vec![t.expr]),
                    Ty::Decimal { scale: scale as i8 },
                ))
            }
            D::Double(_) | D::DoublePrecision | D::Float(_) | D::Real => {
                Ok(Typed::new(self.to_double(t)?, Ty::Double))
            }
            D::Char(length) | D::Character(length) => {
                let text = self.to_text(t, "CAST AS CHAR")?;
                let Ty::Text(info) = text.ty else {
                    return self.refuse("CAST AS CHAR");
                };
                let info = Text {
                    coercibility: 2,
                    collation: if info.coercibility >= 4 {
                        self.literal_collation.clone()
                    } else {
                        info.collation
                    },
                    ..info
                };
                let expr = match length {
                    None => text.expr,
                    Some(CharacterLength::IntegerLength { length, .. }) => udf(
                        Func::Left,
                        vec![
                            text.expr,
                            Expr::Literal(ScalarValue::Int64(Some(*length as i64)), None),
                        ],
                    ),
                    Some(other) => return self.refuse(format!("CAST AS CHAR({other})")),
                };
                Ok(Typed::new(expr, Ty::Text(info)))
            }
            D::Date => self.date_of(t, "CAST AS DATE"),
            D::Datetime(fsp) | D::Timestamp(fsp, _) => {
                let fsp = fsp.unwrap_or(0).min(6) as u8;
                match &t.ty {
                    Ty::Null => Ok(Typed::new(
                        self.null_of(&Ty::DateTime { fsp }),
                        Ty::DateTime { fsp },
                    )),
                    Ty::Date | Ty::DateTime { .. } => Ok(Typed::new(
                        udf(Func::DateTimeOf, vec![t.expr]),
                        Ty::DateTime { fsp },
                    )),
                    Ty::Text(x) if !x.members => Ok(Typed::new(
                        udf(Func::DateTimeOf, vec![t.expr]),
                        Ty::DateTime { fsp },
                    )),
                    other => self.refuse(format!(
                        "`{whole}`: CAST of {} AS DATETIME",
                        describe(other)
                    )),
                }
            }
            D::Binary(None) => match &t.ty {
                Ty::Text(_) => Ok(Typed::new(cast(t.expr, DataType::Binary), Ty::Bytes)),
                Ty::Bytes | Ty::Null => Ok(Typed::new(t.expr, Ty::Bytes)),
                other => self.refuse(format!("`{whole}`: BINARY of {}", describe(other))),
            },
            other => self.refuse(format!("`{whole}`: CAST AS {other} is not evaluated")),
        }
    }

    // ---------------------------------------------------------------- functions

    fn function(&self, f: &Function, whole: &SqlExpr) -> R<Typed> {
        let name = f.name.to_string().to_ascii_uppercase();
        if f.filter.is_some()
            || f.over.is_some()
            || !f.within_group.is_empty()
            || f.parameters != FunctionArguments::None
        {
            return self.refuse(format!("`{whole}` is not a scalar function call"));
        }
        let raw_args: Vec<&SqlExpr> = match &f.args {
            FunctionArguments::None => Vec::new(),
            FunctionArguments::List(list)
                if list.duplicate_treatment.is_none() && list.clauses.is_empty() =>
            {
                let mut args = Vec::new();
                for arg in &list.args {
                    match arg {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => args.push(e),
                        other => return self.refuse(format!("`{other}` as an argument of {name}")),
                    }
                }
                args
            }
            _ => return self.refuse(format!("`{whole}` is not a scalar function call")),
        };
        let arity = |range: std::ops::RangeInclusive<usize>, shown: &str| -> R<()> {
            if range.contains(&raw_args.len()) {
                Ok(())
            } else {
                self.refuse(format!("{name}() takes {shown}, not {}", raw_args.len()))
            }
        };
        // The date functions take INTERVAL arguments, which are not expressions on their own.
        match name.as_str() {
            "DATE_ADD" | "ADDDATE" | "DATE_SUB" | "SUBDATE" => {
                arity(2..=2, "two arguments")?;
                let date = self.expr(raw_args[0])?;
                let subtract = name.contains("SUB");
                return match raw_args[1] {
                    SqlExpr::Interval(interval) => self.date_add(date, interval, subtract, &name),
                    days if name.ends_with("DATE") => {
                        let days = Interval {
                            value: Box::new(days.clone()),
                            leading_field: Some(DateTimeField::Day),
                            leading_precision: None,
                            last_field: None,
                            fractional_seconds_precision: None,
                        };
                        self.date_add(date, &days, subtract, &name)
                    }
                    _ => self.refuse(format!(
                        "{name}() needs INTERVAL n unit as its second argument"
                    )),
                };
            }
            _ => {}
        }
        let args = raw_args
            .iter()
            .map(|a| self.expr(a))
            .collect::<R<Vec<_>>>()?;
        let one = |args: Vec<Typed>| args.into_iter().next();
        match name.as_str() {
            "IFNULL" | "COALESCE" => {
                if name == "IFNULL" {
                    arity(2..=2, "two arguments")?;
                } else {
                    arity(1..=usize::MAX, "at least one argument")?;
                }
                let (exprs, ty) = self.unify(args, &name)?;
                let mut whens = Vec::new();
                let mut results = Vec::new();
                let last = exprs.last().cloned();
                for e in exprs.iter().take(exprs.len().saturating_sub(1)) {
                    whens.push(Expr::IsNotNull(Box::new(e.clone())));
                    results.push(e.clone());
                }
                let expr = if whens.is_empty() {
                    last.unwrap_or_else(|| self.null_of(&ty))
                } else {
                    self.case(whens, results, last, &ty)
                };
                Ok(Typed::new(expr, ty))
            }
            "NULLIF" => {
                arity(2..=2, "two arguments")?;
                let mut args = args.into_iter();
                let (a, b) = (args.next().ok_or("NULLIF")?, args.next().ok_or("NULLIF")?);
                let equal = self.compare(CmpOp::Eq, a.clone(), b, "NULLIF")?;
                let ty = a.ty.clone();
                let expr = Expr::Case(Case::new(
                    None,
                    vec![(Box::new(equal), Box::new(self.null_of(&ty)))],
                    Some(Box::new(a.expr)),
                ));
                Ok(Typed::new(expr, ty))
            }
            "IF" => {
                arity(3..=3, "three arguments")?;
                let mut args = args.into_iter();
                let condition = self.condition(args.next().ok_or("IF")?, "IF")?;
                let (exprs, ty) = self.unify(args.collect(), "IF")?;
                let mut exprs = exprs.into_iter();
                let (then, otherwise) = (exprs.next(), exprs.next());
                Ok(Typed::new(
                    self.case(vec![condition], then.into_iter().collect(), otherwise, &ty),
                    ty,
                ))
            }
            "ISNULL" => {
                arity(1..=1, "one argument")?;
                let a = one(args).ok_or("ISNULL")?;
                Ok(Typed::new(Expr::IsNull(Box::new(a.expr)), Ty::Bool))
            }
            "CONCAT" => {
                arity(1..=usize::MAX, "at least one argument")?;
                self.concat(Func::Concat, args, &name)
            }
            "CONCAT_WS" => {
                arity(2..=usize::MAX, "at least two arguments")?;
                self.concat(Func::ConcatWs, args, &name)
            }
            "LENGTH" | "OCTET_LENGTH" => {
                arity(1..=1, "one argument")?;
                let a = one(args).ok_or("LENGTH")?;
                let (expr, width) = match &a.ty {
                    Ty::Bytes => (a.expr, ByteWidth::Utf8),
                    _ => {
                        let t = self.to_text(a, &name)?;
                        let Ty::Text(info) = &t.ty else {
                            return self.refuse(&name);
                        };
                        let charset = if info.coercibility >= 4 {
                            "utf8mb4"
                        } else {
                            info.charset.as_str()
                        };
                        match ByteWidth::of_charset(charset) {
                            Some(width) => (t.expr, width),
                            None => {
                                return self.refuse(format!(
                                    "LENGTH() counts bytes of character set {charset}, which \
                                     tributary cannot count; use CHAR_LENGTH()"
                                ));
                            }
                        }
                    }
                };
                Ok(Typed::new(udf(Func::Length(width), vec![expr]), Ty::Int))
            }
            "CHAR_LENGTH" | "CHARACTER_LENGTH" => {
                arity(1..=1, "one argument")?;
                let a = one(args).ok_or("CHAR_LENGTH")?;
                let expr = match a.ty {
                    Ty::Bytes => a.expr,
                    _ => self.to_text(a, &name)?.expr,
                };
                Ok(Typed::new(udf(Func::CharLength, vec![expr]), Ty::Int))
            }
            "LOWER" | "LCASE" | "UPPER" | "UCASE" => {
                arity(1..=1, "one argument")?;
                let a = one(args).ok_or("LOWER")?;
                if matches!(a.ty, Ty::Bytes) {
                    // MySQL leaves binary strings as they are.
                    return Ok(a);
                }
                let func = if name.starts_with('L') {
                    Func::Lower
                } else {
                    Func::Upper
                };
                self.text_function(func, vec![a], &name)
            }
            "SUBSTR" | "SUBSTRING" | "MID" => {
                arity(2..=3, "two or three arguments")?;
                self.substring(Func::Substr, args, &name)
            }
            "LEFT" | "RIGHT" => {
                arity(2..=2, "two arguments")?;
                let func = if name == "LEFT" {
                    Func::Left
                } else {
                    Func::Right
                };
                self.substring(func, args, &name)
            }
            "TRIM" | "LTRIM" | "RTRIM" => {
                arity(1..=1, "one argument")?;
                let side = match name.as_str() {
                    "LTRIM" => TrimSide::Leading,
                    "RTRIM" => TrimSide::Trailing,
                    _ => TrimSide::Both,
                };
                self.text_function(Func::Trim(side), args, &name)
            }
            "REPLACE" => {
                arity(3..=3, "three arguments")?;
                self.text_function(Func::Replace, args, &name)
            }
            "DATE" => {
                arity(1..=1, "one argument")?;
                self.date_of(one(args).ok_or("DATE")?, "DATE()")
            }
            "YEAR" | "QUARTER" | "MONTH" | "DAY" | "DAYOFMONTH" | "HOUR" | "MINUTE" | "SECOND"
            | "MICROSECOND" => {
                arity(1..=1, "one argument")?;
                let part = match name.as_str() {
                    "YEAR" => Part::Year,
                    "QUARTER" => Part::Quarter,
                    "MONTH" => Part::Month,
                    "DAY" | "DAYOFMONTH" => Part::Day,
                    "HOUR" => Part::Hour,
                    "MINUTE" => Part::Minute,
                    "SECOND" => Part::Second,
                    _ => Part::Microsecond,
                };
                self.part(part, one(args).ok_or("YEAR")?, &name)
            }
            "DATEDIFF" => {
                arity(2..=2, "two arguments")?;
                let mut args = args.into_iter();
                let a = self.date_of(args.next().ok_or("DATEDIFF")?, "DATEDIFF()")?;
                let b = self.date_of(args.next().ok_or("DATEDIFF")?, "DATEDIFF()")?;
                if matches!(a.ty, Ty::Null) || matches!(b.ty, Ty::Null) {
                    return Ok(Typed::literal(ScalarValue::Null, Ty::Null));
                }
                Ok(Typed::new(
                    udf(Func::DateDiff, vec![a.expr, b.expr]),
                    Ty::Int,
                ))
            }
            "MOD" => {
                arity(2..=2, "two arguments")?;
                let mut args = args.into_iter();
                let (a, b) = (args.next().ok_or("MOD")?, args.next().ok_or("MOD")?);
                self.modulo(a, b)
            }
            "ABS" => {
                arity(1..=1, "one argument")?;
                let a = self.numeric(one(args).ok_or("ABS")?, "ABS()")?;
                let a = match a.ty {
                    Ty::UInt | Ty::Null => return Ok(a),
                    Ty::Int => Typed::new(
                        cast(a.expr, DataType::Decimal128(20, 0)),
                        Ty::Decimal { scale: 0 },
                    ),
                    _ => a,
                };
                let negative = binary(
                    a.expr.clone(),
                    Operator::Lt,
                    Expr::Literal(ScalarValue::Int64(Some(0)), None),
                );
                let expr = Expr::Case(Case::new(
                    None,
                    vec![(
                        Box::new(negative),
                        Box::new(Expr::Negative(Box::new(a.expr.clone()))),
                    )],
                    Some(Box::new(a.expr)),
                ));
                Ok(Typed::new(expr, a.ty))
            }
            "NOW" | "CURDATE" | "CURRENT_DATE" | "CURTIME" | "CURRENT_TIME"
            | "CURRENT_TIMESTAMP" | "LOCALTIME" | "LOCALTIMESTAMP" | "SYSDATE" | "UTC_DATE"
            | "UTC_TIME" | "UTC_TIMESTAMP" | "UNIX_TIMESTAMP" | "RAND" | "UUID"
            | "CONNECTION_ID" | "USER" | "CURRENT_USER" | "DATABASE" => self.refuse(format!(
                "{name}() depends on when and where the row is read, so a snapshot and the stream \
                 would judge the same row differently; tributary does not evaluate it — compare \
                 with a constant instead"
            )),
            _ => self.refuse(format!(
                "{name}() is not a function tributary evaluates in a row filter (the ones it \
                 does, with MySQL's meaning, are listed in docs/project-language.md)"
            )),
        }
    }

    fn case(&self, whens: Vec<Expr>, thens: Vec<Expr>, otherwise: Option<Expr>, ty: &Ty) -> Expr {
        Expr::Case(Case::new(
            None,
            whens
                .into_iter()
                .zip(thens)
                .map(|(w, t)| (Box::new(w), Box::new(t)))
                .collect(),
            Some(Box::new(otherwise.unwrap_or_else(|| self.null_of(ty)))),
        ))
    }

    /// Text functions of a first text argument (the result keeps its collation).
    fn text_function(&self, func: Func, args: Vec<Typed>, name: &str) -> R<Typed> {
        let mut exprs = Vec::with_capacity(args.len());
        let mut info = None;
        for arg in args {
            if matches!(arg.ty, Ty::Null) {
                return Ok(Typed::new(
                    self.null_of(&Ty::Text(self.literal_text())),
                    Ty::Text(self.literal_text()),
                ));
            }
            let t = self.to_text(arg, name)?;
            if info.is_none()
                && let Ty::Text(text) = &t.ty
            {
                info = Some(Text {
                    members: false,
                    ..text.clone()
                });
            }
            exprs.push(t.expr);
        }
        let info = info.unwrap_or_else(|| self.literal_text());
        Ok(Typed::new(udf(func, exprs), Ty::Text(info)))
    }

    fn substring(&self, func: Func, args: Vec<Typed>, name: &str) -> R<Typed> {
        let mut args = args.into_iter();
        let Some(text) = args.next() else {
            return self.refuse(format!("{name}() needs arguments"));
        };
        if matches!(text.ty, Ty::Null) {
            return Ok(Typed::new(
                self.null_of(&Ty::Text(self.literal_text())),
                Ty::Text(self.literal_text()),
            ));
        }
        if matches!(text.ty, Ty::Bytes) {
            return self.refuse(format!("{name}() of a binary string"));
        }
        let text = self.to_text(text, name)?;
        let Ty::Text(info) = text.ty.clone() else {
            return self.refuse(name);
        };
        let mut exprs = vec![text.expr];
        for arg in args {
            exprs.push(self.to_int(arg, name)?);
        }
        Ok(Typed::new(
            udf(func, exprs),
            Ty::Text(Text {
                members: false,
                ..info
            }),
        ))
    }

    fn concat(&self, func: Func, args: Vec<Typed>, name: &str) -> R<Typed> {
        let mut exprs = Vec::with_capacity(args.len());
        let mut info: Option<Text> = None;
        for arg in args {
            if matches!(arg.ty, Ty::Bytes) {
                return self.refuse(format!("{name}() of a binary string"));
            }
            let t = self.to_text(arg, name)?;
            if let Ty::Text(text) = &t.ty {
                info = Some(match info {
                    None => text.clone(),
                    Some(so_far) => aggregate(&so_far, text),
                });
            }
            exprs.push(t.expr);
        }
        let info = info.unwrap_or_else(|| self.literal_text());
        Ok(Typed::new(
            udf(func, exprs),
            Ty::Text(Text {
                members: false,
                ..info
            }),
        ))
    }

    /// DATE(x), CAST(x AS DATE): a DATE from a date, a date-time, or text (NULL when the text
    /// is no date).
    fn date_of(&self, t: Typed, name: &str) -> R<Typed> {
        match &t.ty {
            Ty::Null => Ok(Typed::new(self.null_of(&Ty::Date), Ty::Date)),
            Ty::Date => Ok(t),
            Ty::DateTime { .. } => Ok(Typed::new(udf(Func::DateOf, vec![t.expr]), Ty::Date)),
            Ty::Text(x) if !x.members => {
                if let Some(s) = t.text_literal() {
                    let (literal, _) = self.temporal_literal(&Ty::DateTime { fsp: 6 }, &t, &s)?;
                    return Ok(Typed::new(udf(Func::DateOf, vec![literal.expr]), Ty::Date));
                }
                Ok(Typed::new(udf(Func::DateOf, vec![t.expr]), Ty::Date))
            }
            other => self.refuse(format!("{name} of {}", describe(other))),
        }
    }

    fn part(&self, part: Part, t: Typed, name: &str) -> R<Typed> {
        let date_part = matches!(part, Part::Year | Part::Quarter | Part::Month | Part::Day);
        match &t.ty {
            Ty::Null => Ok(Typed::literal(ScalarValue::Null, Ty::Null)),
            Ty::Date | Ty::DateTime { .. } => {
                Ok(Typed::new(udf(Func::Part(part), vec![t.expr]), Ty::Int))
            }
            Ty::Time { .. } if !date_part => {
                Ok(Typed::new(udf(Func::Part(part), vec![t.expr]), Ty::Int))
            }
            Ty::Text(x) if !x.members && date_part => {
                Ok(Typed::new(udf(Func::Part(part), vec![t.expr]), Ty::Int))
            }
            other => self.refuse(format!("{name}() of {}", describe(other))),
        }
    }

    fn date_add(&self, date: Typed, interval: &Interval, subtract: bool, name: &str) -> R<Typed> {
        let unit = match (&interval.leading_field, &interval.last_field) {
            (Some(field), None) => match field {
                DateTimeField::Microsecond | DateTimeField::Microseconds => Unit::Microsecond,
                DateTimeField::Second | DateTimeField::Seconds => Unit::Second,
                DateTimeField::Minute | DateTimeField::Minutes => Unit::Minute,
                DateTimeField::Hour | DateTimeField::Hours => Unit::Hour,
                DateTimeField::Day | DateTimeField::Days => Unit::Day,
                DateTimeField::Week(None) | DateTimeField::Weeks => Unit::Week,
                DateTimeField::Month | DateTimeField::Months => Unit::Month,
                DateTimeField::Quarter => Unit::Quarter,
                DateTimeField::Year | DateTimeField::Years => Unit::Year,
                other => return self.refuse(format!("{name}: INTERVAL … {other}")),
            },
            _ => {
                return self.refuse(format!(
                    "{name}: INTERVAL `{interval}` (one unit, e.g. INTERVAL 7 DAY)"
                ));
            }
        };
        let amount = self.expr(&interval.value)?;
        let amount = match (&amount.ty, &amount.literal) {
            (Ty::Int | Ty::UInt | Ty::Bool, _) => cast(amount.expr, DataType::Int64),
            (Ty::Null, _) => Expr::Literal(ScalarValue::Int64(None), None),
            (Ty::Text(_), Some(ScalarValue::Utf8(Some(s)))) if s.trim().parse::<i64>().is_ok() => {
                Expr::Literal(ScalarValue::Int64(s.trim().parse::<i64>().ok()), None)
            }
            _ => {
                return self.refuse(format!(
                    "{name}: INTERVAL takes an integer amount here (MySQL rounds or reads other \
                     amounts by rules tributary does not carry)"
                ));
            }
        };
        let amount = if subtract {
            Expr::Negative(Box::new(amount))
        } else {
            amount
        };
        let date = match (&date.ty, date.text_literal()) {
            (Ty::Text(_), Some(s)) => {
                let s = s.to_string();
                let (literal, _) = self.temporal_literal(&Ty::DateTime { fsp: 6 }, &date, &s)?;
                match convert::parse_datetime(&s) {
                    Some(p) if !p.has_time => Typed::literal(
                        ScalarValue::Date32(Some(convert::parsed_date(&p))),
                        Ty::Date,
                    ),
                    _ => Typed {
                        ty: Ty::DateTime { fsp: 0 },
                        ..literal
                    },
                }
            }
            _ => date,
        };
        match date.ty {
            Ty::Null => Ok(Typed::literal(ScalarValue::Null, Ty::Null)),
            Ty::Date if unit.keeps_date() => Ok(Typed::new(
                udf(Func::DateAdd(unit), vec![date.expr, amount]),
                Ty::Date,
            )),
            Ty::Date | Ty::DateTime { .. } => {
                let fsp = match (date.ty, unit) {
                    (_, Unit::Microsecond) => 6,
                    (Ty::DateTime { fsp }, _) => fsp,
                    _ => 0,
                };
                let datetime = udf(Func::DateTimeOf, vec![date.expr]);
                Ok(Typed::new(
                    udf(Func::DateAdd(unit), vec![datetime, amount]),
                    Ty::DateTime { fsp },
                ))
            }
            other => self.refuse(format!("{name} of {}", describe(&other))),
        }
    }

    // ---------------------------------------------------------------- type unification

    /// The common type of CASE branches, IF's and COALESCE's arguments, as MySQL aggregates
    /// them: numbers to the widest number, dates to date-times, anything with text to text.
    fn unify(&self, items: Vec<Typed>, name: &str) -> R<(Vec<Expr>, Ty)> {
        let typed: Vec<&Ty> = items
            .iter()
            .map(|t| &t.ty)
            .filter(|t| !matches!(t, Ty::Null))
            .collect();
        if let Some(Ty::Opaque(what)) = typed.iter().find(|t| matches!(t, Ty::Opaque(_))) {
            return self.refuse(format!("{name} cannot use {what}"));
        }
        let all = |f: fn(&Ty) -> bool| typed.iter().all(|t| f(t));
        // The largest scale or fractional-second precision among the items.
        let widest =
            |f: fn(&Ty) -> Option<i16>| typed.iter().filter_map(|t| f(t)).max().unwrap_or(0);
        let target = if typed.is_empty() {
            Ty::Null
        } else if all(|t| matches!(t, Ty::Bool)) {
            Ty::Bool
        } else if all(is_numeric) {
            if typed.iter().any(|t| matches!(t, Ty::Double)) {
                Ty::Double
            } else if typed.iter().any(|t| matches!(t, Ty::Decimal { .. }))
                || (typed.iter().any(|t| matches!(t, Ty::UInt))
                    && typed.iter().any(|t| matches!(t, Ty::Int | Ty::Bool)))
            {
                let scale = widest(|t| match t {
                    Ty::Decimal { scale } => Some((*scale).into()),
                    _ => None,
                });
                Ty::Decimal { scale: scale as i8 }
            } else if all(|t| matches!(t, Ty::UInt)) {
                Ty::UInt
            } else {
                Ty::Int
            }
        } else if all(|t| matches!(t, Ty::Date)) {
            Ty::Date
        } else if all(|t| matches!(t, Ty::Date | Ty::DateTime { .. })) {
            let fsp = widest(|t| match t {
                Ty::DateTime { fsp } => Some((*fsp).into()),
                _ => None,
            });
            Ty::DateTime { fsp: fsp as u8 }
        } else if all(|t| matches!(t, Ty::Time { .. })) {
            let fsp = widest(|t| match t {
                Ty::Time { fsp } => Some((*fsp).into()),
                _ => None,
            });
            Ty::Time { fsp: fsp as u8 }
        } else if all(|t| matches!(t, Ty::Bytes)) {
            Ty::Bytes
        } else if typed.iter().any(|t| matches!(t, Ty::Text(_)))
            && all(|t| !matches!(t, Ty::Bytes | Ty::Double))
        {
            // Text wins: the others become text, the collation is aggregated.
            let mut info: Option<Text> = None;
            for t in &typed {
                if let Ty::Text(text) = t {
                    info = Some(match info {
                        None => text.clone(),
                        Some(so_far) => aggregate(&so_far, text),
                    });
                }
            }
            Ty::Text(Text {
                members: false,
                ..info.unwrap_or_else(|| self.literal_text())
            })
        } else {
            let shown: Vec<String> = typed.iter().map(|t| describe(t)).collect();
            return self.refuse(format!(
                "{name} mixes {}, which tributary does not unify",
                shown.join(" and ")
            ));
        };
        let mut exprs = Vec::with_capacity(items.len());
        for item in items {
            if matches!(item.ty, Ty::Null) {
                exprs.push(self.null_of(&target));
                continue;
            }
            let expr = match &target {
                Ty::Double => self.to_double(item)?,
                Ty::Decimal { scale } => {
                    let (e, _) = self.to_decimal(self.round_declared(item)?)?;
                    cast(e, DataType::Decimal128(38, *scale))
                }
                Ty::Int => cast(item.expr, DataType::Int64),
                Ty::UInt => cast(item.expr, DataType::UInt64),
                Ty::DateTime { .. } => match item.ty {
                    Ty::Date => udf(Func::DateTimeOf, vec![item.expr]),
                    _ => item.expr,
                },
                Ty::Text(_) => self.to_text(item, name)?.expr,
                _ => item.expr,
            };
            exprs.push(expr);
        }
        Ok((exprs, target))
    }
}

/// Aggregates two strings' collations as MySQL does: the lower coercibility wins; at equal
/// coercibility the binary string wins, then the `_bin` collation of the same character set,
/// then a Unicode set over another; otherwise MySQL reports an illegal mix (and so does this).
fn aggregate(a: &Text, b: &Text) -> Text {
    use std::cmp::Ordering::*;
    match a.coercibility.cmp(&b.coercibility) {
        Less => return a.clone(),
        Greater => return b.clone(),
        Equal => {}
    }
    let charset = |c: &Collation| Charset::of_collation(&c.name);
    let bin = |c: &Collation| c.name.ends_with("_bin");
    match (&a.collation, &b.collation) {
        (Ok(x), Ok(y)) if x == y => a.clone(),
        (Ok(x), Ok(_)) if x.rule == Rule::Bytes => a.clone(),
        (Ok(_), Ok(y)) if y.rule == Rule::Bytes => b.clone(),
        (Ok(x), Ok(y)) if charset(x) == charset(y) && bin(x) != bin(y) => {
            if bin(x) {
                a.clone()
            } else {
                b.clone()
            }
        }
        (Ok(x), Ok(y)) => {
            let unicode = |c: &Collation| charset(c).starts_with("utf8");
            match (unicode(x), unicode(y)) {
                (true, false) => a.clone(),
                (false, true) => b.clone(),
                _ => Text {
                    collation: Err(format!(
                        "it mixes collations {} and {}, which MySQL refuses (\"Illegal mix of \
                         collations\"); add COLLATE to one side",
                        x.name, y.name
                    )),
                    ..a.clone()
                },
            }
        }
        (Err(_), _) => a.clone(),
        (_, Err(_)) => b.clone(),
    }
}

fn any_double(l: &Typed, r: &Typed) -> bool {
    matches!(l.ty, Ty::Double) || matches!(r.ty, Ty::Double)
}

fn maybe_not(e: Expr, negated: bool) -> Expr {
    if negated { Expr::Not(Box::new(e)) } else { e }
}

/// ORs (or ANDs) as a balanced tree, so that a long IN list does not make a deep one.
fn balanced(mut items: Vec<Expr>, op: Operator) -> Option<Expr> {
    while items.len() > 1 {
        let mut next = Vec::with_capacity(items.len() / 2 + 1);
        let mut iter = items.into_iter();
        while let Some(a) = iter.next() {
            match iter.next() {
                Some(b) => next.push(binary(a, op, b)),
                None => next.push(a),
            }
        }
        items = next;
    }
    items.pop()
}

fn other_sql(t: &Typed) -> String {
    t.text_literal()
        .map(|s| format!("{s:?}"))
        .unwrap_or_default()
}

/// PCRE's `$` (and `\Z`) also match before a final newline; the regex crate's `$` does not. For
/// a yes/no match, `\n?\z` says the same.
fn pcre_dollars(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    let mut class_start = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('Z') if !in_class => out.push_str(r"(?:\n?\z)"),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                class_start = true;
                out.push(c);
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                continue;
            }
            ']' if in_class && !class_start => {
                in_class = false;
                out.push(c);
            }
            '$' if !in_class => out.push_str(r"(?:\n?\z)"),
            _ => out.push(c),
        }
        class_start = false;
    }
    out
}

/// A TIME literal: `[-]H…H:MM[:SS[.ffffff]]` → microseconds.
fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (clock, fraction) = s.split_once('.').unwrap_or((s, ""));
    let mut parts = clock.split(':');
    let hours: i64 = parts.next()?.parse().ok()?;
    let minutes: i64 = parts.next()?.parse().ok()?;
    let seconds: i64 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    if parts.next().is_some() || minutes > 59 || seconds > 59 || hours > 838 || fraction.len() > 6 {
        return None;
    }
    let micros: i64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<6}").parse().ok()?
    };
    let total = ((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + micros;
    Some(if negative { -total } else { total })
}
