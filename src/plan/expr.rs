//! Row filters: the `WHERE` of a `SYNC` statement, translated with MySQL's meaning
//! ([`super::mysql`]), type-checked against the table's Arrow schema and compiled once into a
//! DataFusion physical expression that runs on whole batches.
//!
//! Column names resolve case-insensitively, as MySQL's do; an exact match wins. The filter may
//! use only the table's own columns (OMS's rule), so any other name is an error listing them.

use crate::project::{SourceKind, Zone};
use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use datafusion_common::DFSchema;
use datafusion_common::tree_node::TreeNode;
use datafusion_expr::ExprSchemable;
use datafusion_expr::execution_props::ExecutionProps;
use datafusion_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion_optimizer::analyzer::type_coercion::TypeCoercionRewriter;
use datafusion_physical_expr::{PhysicalExpr, create_physical_expr};
use sqlparser::ast::{Expr as SqlExpr, Ident, visit_expressions_mut};

use super::ColumnDef;

/// A compiled row filter.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    /// The condition as written.
    pub text: String,
    /// The physical expression, over the full table schema.
    pub expr: Arc<dyn PhysicalExpr>,
}

/// What a filter is compiled against besides the Arrow schema.
pub struct TableInfo<'a> {
    /// `db.table`, for messages.
    pub name: &'a str,
    /// The table's columns, in the schema's order (types, collations, character sets).
    pub columns: &'a [ColumnDef],
    /// The table's default collation.
    pub collation: Option<&'a str>,
    /// The session zone TIMESTAMP values and date-time constants with an offset are read in.
    pub zone: &'a Zone,
    /// Which server: MariaDB and MySQL read a date-time constant's offset differently.
    pub flavor: SourceKind,
}

/// Replaces each column name in the filter with the table's spelling of it.
fn resolve_columns(expr: &mut SqlExpr, schema: &SchemaRef, table: &str) -> Result<(), String> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let resolve = |ident: &mut Ident| -> Result<(), String> {
        if names.contains(&ident.value.as_str()) {
            return Ok(());
        }
        let matches: Vec<&&str> = names
            .iter()
            .filter(|n| n.eq_ignore_ascii_case(&ident.value))
            .collect();
        match matches.as_slice() {
            [one] => {
                ident.value = one.to_string();
                Ok(())
            }
            _ => Err(format!(
                "unknown column `{}` in the WHERE of {table}; its columns are: {}",
                ident.value,
                names.join(", ")
            )),
        }
    };
    let mut failure = None;
    let _ = visit_expressions_mut(expr, |e| {
        let result = match e {
            SqlExpr::Identifier(ident) => resolve(ident),
            SqlExpr::CompoundIdentifier(parts) => match parts.as_mut_slice() {
                [column] => resolve(column),
                _ => Err(format!(
                    "`{}` in the WHERE of {table}: a row filter may use only the table's own \
                     columns, written without a table name",
                    parts
                        .iter()
                        .map(|p| p.value.as_str())
                        .collect::<Vec<_>>()
                        .join(".")
                )),
            },
            SqlExpr::Subquery(_) | SqlExpr::Exists { .. } | SqlExpr::InSubquery { .. } => {
                Err(format!(
                    "the WHERE of {table} has a subquery; a row filter may use only the table's own \
                     columns"
                ))
            }
            _ => Ok(()),
        };
        match result {
            Ok(()) => ControlFlow::Continue(()),
            Err(message) => {
                failure = Some(message);
                ControlFlow::Break(())
            }
        }
    });
    failure.map_or(Ok(()), Err)
}

/// Translates, type-checks and compiles a filter against a table's full Arrow schema. The error
/// text is what a person needs to fix the filter.
pub fn compile_filter(
    expr: &SqlExpr,
    text: &str,
    schema: &SchemaRef,
    table: &TableInfo,
) -> Result<CompiledFilter, String> {
    let name = table.name;
    let mut expr = expr.clone();
    resolve_columns(&mut expr, schema, name)?;
    let df_schema = DFSchema::try_from(schema.as_ref().clone())
        .map_err(|e| format!("cannot describe the columns of {name}: {e}"))?;
    let logical = super::mysql::translate(
        &super::mysql::Context {
            schema: &df_schema,
            columns: table.columns,
            table: name,
            table_collation: table.collation,
            zone: table.zone,
            flavor: table.flavor,
        },
        &expr,
    )?;
    let fail = |e: datafusion_common::DataFusionError| {
        // DataFusion's words (Int64, Utf8, coerce) are not the user's: said in theirs, and
        // DataFusion's at debug level for a bug report.
        tracing::debug!(error = %e.strip_backtrace(), "a row filter does not type-check");
        format!(
            "the WHERE of {name} does not type-check: it mixes values tributary cannot compare \
             or combine (numbers, text, dates and times); rewrite `{text}` with values of one \
             kind, or CAST() one side"
        )
    };
    let mut coercion = TypeCoercionRewriter::new(&df_schema);
    let logical = logical.rewrite(&mut coercion).map_err(fail)?.data;
    let data_type = logical.get_type(&df_schema).map_err(fail)?;
    if data_type != DataType::Boolean {
        return Err(format!(
            "the WHERE of {name} is a {data_type} expression, not a condition; compare it with \
             something, e.g. `{text} > 0`"
        ));
    }
    let physical = create_physical_expr(
        &logical,
        &df_schema,
        &ExecutionProps::new(),
        &PhysicalPlanningContext::default(),
    )
    .map_err(fail)?;
    Ok(CompiledFilter {
        text: text.to_string(),
        expr: physical,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::SqlType;
    use crate::plan::types::{DateTimeValue, DateValue};
    use crate::project::dialect::FilterDialect;
    use arrow::array::{
        Array, ArrayRef, BooleanArray, Date32Array, Decimal128Array, Int32Array, StringArray,
        TimestampMicrosecondArray,
    };
    use arrow::datatypes::Schema;
    use arrow::record_batch::RecordBatch;
    use sqlparser::parser::Parser;

    fn column(name: &str, column_type: &str, collation: Option<&str>) -> ColumnDef {
        ColumnDef {
            name: name.into(),
            column_type: column_type.into(),
            sql_type: SqlType::parse(column_type),
            nullable: true,
            charset: collation.map(crate::plan::charset::Charset::of_collation),
            collation: collation.map(str::to_string),
        }
    }

    /// A table: Amount decimal(12,2), status (general_ci), code (bin), created_at datetime(6),
    /// qty int, born date.
    fn table() -> (Vec<ColumnDef>, RecordBatch) {
        let columns = vec![
            column("Amount", "decimal(12,2)", None),
            column("status", "varchar(10)", Some("utf8mb4_general_ci")),
            column("code", "varchar(10)", Some("utf8mb4_bin")),
            column("created_at", "datetime(6)", None),
            column("qty", "int(11)", None),
            column("born", "date", None),
        ];
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|c| {
                    c.sql_type
                        .arrow_field(&c.name, true, &c.column_type)
                        .unwrap()
                })
                .collect::<Vec<_>>(),
        ));
        let zero_date = DateTimeValue::from_parts(0, 0, 0, 0, 0, 0, 0).to_arrow();
        let year_1000 = DateTimeValue::from_parts(1000, 1, 1, 0, 0, 0, 0).to_arrow();
        let march = DateTimeValue::from_parts(2024, 3, 1, 12, 0, 0, 5).to_arrow();
        let day = |y, m, d| DateValue::from_parts(y, m, d).to_arrow();
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(
                Decimal128Array::from(vec![10_050, 99, 250_000])
                    .with_precision_and_scale(12, 2)
                    .unwrap(),
            ),
            Arc::new(StringArray::from(vec![Some("Paid"), None, Some("test  ")])),
            Arc::new(StringArray::from(vec![Some("Paid"), Some("ab"), Some("x")])),
            Arc::new(TimestampMicrosecondArray::from(vec![
                march, zero_date, year_1000,
            ])),
            Arc::new(Int32Array::from(vec![Some(3), Some(0), None])),
            Arc::new(Date32Array::from(vec![
                day(2024, 3, 31),
                day(0, 0, 0),
                day(1999, 12, 31),
            ])),
        ];
        (columns, RecordBatch::try_new(schema, arrays).unwrap())
    }

    fn evaluate(condition: &str) -> Result<Vec<Option<bool>>, String> {
        evaluate_in(condition, &Zone::Offset(0), SourceKind::MySql)
    }

    fn evaluate_in(
        condition: &str,
        zone: &Zone,
        flavor: SourceKind,
    ) -> Result<Vec<Option<bool>>, String> {
        let (columns, batch) = table();
        let expr = Parser::new(&FilterDialect)
            .try_with_sql(condition)
            .and_then(|mut p| p.parse_expr())
            .map_err(|e| e.to_string())?;
        let info = TableInfo {
            name: "db.t",
            columns: &columns,
            collation: Some("utf8mb4_general_ci"),
            zone,
            flavor,
        };
        let filter = compile_filter(&expr, condition, &batch.schema(), &info)?;
        let value = filter.expr.evaluate(&batch).map_err(|e| e.to_string())?;
        let array = value
            .into_array(batch.num_rows())
            .map_err(|e| e.to_string())?;
        let booleans = array
            .as_any()
            .downcast_ref::<BooleanArray>()
            .expect("a boolean result")
            .clone();
        Ok((0..booleans.len())
            .map(|i| booleans.is_valid(i).then(|| booleans.value(i)))
            .collect())
    }

    fn rows(condition: &str) -> Vec<Option<bool>> {
        evaluate(condition).unwrap_or_else(|e| panic!("{condition}: {e}"))
    }

    const T: Option<bool> = Some(true);
    const F: Option<bool> = Some(false);
    const N: Option<bool> = None;

    #[test]
    fn filters_evaluate_on_whole_batches() {
        assert_eq!(rows("amount > 100 AND status <> 'test'"), [T, F, F]);
        assert_eq!(
            rows("STATUS IS NULL OR amount BETWEEN 0.5 AND 1"),
            [F, T, F]
        );
        // Zero dates and year 1000 compare without overflow; the zero date sorts first.
        assert_eq!(rows("created_at >= '2024-01-01 00:00:00'"), [T, F, F]);
        assert_eq!(rows("created_at < '1001-01-01'"), [F, T, T]);
    }

    #[test]
    fn a_constant_with_an_offset_is_read_in_the_session_zone() {
        // 20:00 at +08:00 is 12:00 UTC: the first row (12:00:00.000005) is after it in a UTC
        // session, before it in a +01:00 one (13:00).
        let condition = "created_at >= '2024-03-01 20:00:00+08:00'";
        let mysql = SourceKind::MySql;
        assert_eq!(
            evaluate_in(condition, &Zone::Offset(0), mysql).unwrap()[0],
            T
        );
        assert_eq!(
            evaluate_in(condition, &Zone::Offset(3600), mysql).unwrap()[0],
            F
        );
        let varying = Zone::Varying("Europe/Paris".into());
        let refused = evaluate_in(condition, &varying, mysql).unwrap_err();
        assert!(refused.contains("`timezone`"), "{refused}");
        let mariadb = evaluate_in(condition, &Zone::Offset(0), SourceKind::MariaDb).unwrap_err();
        assert!(mariadb.contains("MariaDB ignores"), "{mariadb}");
        // Without an offset, the zone does not matter to a DATETIME.
        let plain = "created_at >= '2024-03-01 12:00:00'";
        assert_eq!(
            evaluate_in(plain, &varying, SourceKind::MariaDb).unwrap()[0],
            T
        );
    }

    #[test]
    fn text_compares_under_its_collation() {
        assert_eq!(rows("status = 'PAID'"), [T, N, F]);
        assert_eq!(rows("status = 'test'"), [F, N, T]);
        assert_eq!(rows("code = 'PAID'"), [F, F, F]);
        assert_eq!(rows("code = 'Paid '"), [T, F, F]);
        assert_eq!(rows("status IN ('paid', 'x')"), [T, N, F]);
        assert_eq!(rows("status LIKE 'p%'"), [T, N, F]);
        assert_eq!(rows("code LIKE 'p%'"), [F, F, F]);
        assert_eq!(rows("code COLLATE utf8mb4_general_ci = 'PAID'"), [T, F, F]);
        assert_eq!(rows("BINARY status = 'paid'"), [F, N, F]);
        assert_eq!(rows("status REGEXP '^pa'"), [T, N, F]);
        assert_eq!(rows("code REGEXP '^pa'"), [F, F, F]);
    }

    #[test]
    fn numbers_and_strings_compare_as_mysql_does() {
        assert_eq!(rows("code = 0"), [T, T, T]);
        assert_eq!(rows("qty / 0 IS NULL"), [T, T, T]);
        assert_eq!(rows("qty / 2 = 1.5"), [T, F, N]);
        assert_eq!(rows("qty DIV 2 = 1"), [T, F, N]);
        assert_eq!(rows("MOD(qty, 2) = 1"), [T, F, N]);
        assert_eq!(rows("qty % 0 IS NULL"), [T, T, T]);
        assert_eq!(rows("IFNULL(qty, 7) = 7"), [F, F, T]);
        assert_eq!(rows("COALESCE(NULL, qty, 9) > 2"), [T, F, T]);
        assert_eq!(rows("IF(qty, 'y', 'n') = 'Y'"), [T, F, F]);
        assert_eq!(rows("qty"), [T, F, N]);
        assert_eq!(rows("CAST('12abc' AS SIGNED) = 12"), [T, T, T]);
        assert_eq!(rows("amount / 3 = 33.50"), [T, F, F]);
    }

    #[test]
    fn strings_functions_follow_mysql() {
        assert_eq!(rows("SUBSTR(status, 2) = 'aid'"), [T, N, F]);
        assert_eq!(rows("SUBSTRING(status FROM -3 FOR 2) = 'ai'"), [T, N, F]);
        assert_eq!(rows("LENGTH(status) = 6"), [F, N, T]);
        assert_eq!(rows("CONCAT(status, qty) = 'paid3'"), [T, N, N]);
        assert_eq!(rows("LEFT(code, -1) = ''"), [T, T, T]);
        assert_eq!(rows("TRIM(status) = 'test'"), [F, N, T]);
    }

    #[test]
    fn dates_follow_mysql() {
        assert_eq!(rows("YEAR(born) = 2024"), [T, F, F]);
        assert_eq!(rows("MONTH(born) = 0"), [F, T, F]);
        assert_eq!(rows("DATE(created_at) = '2024-03-01'"), [T, F, F]);
        assert_eq!(
            rows("DATE_SUB(born, INTERVAL 1 MONTH) = '2024-02-29'"),
            [T, N, F]
        );
        assert_eq!(rows("born + INTERVAL 1 DAY = '2000-01-01'"), [F, N, T]);
        assert_eq!(rows("born = '2024-03-31 00:00:00'"), [T, F, F]);
    }

    #[test]
    fn filters_that_cannot_be_evaluated_exactly_are_refused_by_name() {
        let error = evaluate("nope = 1").unwrap_err();
        assert!(error.contains("unknown column `nope`"), "{error}");
        let error = evaluate("created_at").unwrap_err();
        assert!(error.contains("needs a condition"), "{error}");
        let error = evaluate("SOUNDEX(status) = 'P300'").unwrap_err();
        assert!(error.contains("SOUNDEX()"), "{error}");
        let error = evaluate("created_at > NOW()").unwrap_err();
        assert!(error.contains("NOW()"), "{error}");
        let error = evaluate("status REGEXP 'a(?=b)'").unwrap_err();
        assert!(error.contains("REGEXP"), "{error}");
        let error = evaluate("status COLLATE utf8mb4_czech_ci = 'x'").unwrap_err();
        assert!(error.contains("utf8mb4_czech_ci"), "{error}");
        // A `_bin` collation wins over a `_ci` one of the same set.
        assert_eq!(rows("status = code"), [T, N, F]);
    }
}
