//! Row filters: the `WHERE` of a `SYNC` statement, type-checked against the table's Arrow schema
//! and compiled once into a DataFusion physical expression that runs on whole batches.
//!
//! Column names resolve case-insensitively, as MySQL's do; an exact match wins. The filter may
//! use only the table's own columns (OMS's rule), so any other name is an error listing them.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use datafusion_common::ScalarValue;
use datafusion_common::config::ConfigOptions;
use datafusion_common::tree_node::{Transformed, TreeNode};
use datafusion_common::{DFSchema, TableReference};
use datafusion_expr::execution_props::ExecutionProps;
use datafusion_expr::expr::{Between, BinaryExpr, Cast, InList};
use datafusion_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion_expr::planner::ContextProvider;
use datafusion_expr::{
    AggregateUDF, Expr, ExprSchemable, HigherOrderUDF, Operator, ScalarUDF, TableSource, WindowUDF,
};
use datafusion_optimizer::analyzer::type_coercion::TypeCoercionRewriter;
use datafusion_physical_expr::{PhysicalExpr, create_physical_expr};
use datafusion_sql::planner::{ParserOptions, PlannerContext, SqlToRel};
use datafusion_sql::sqlparser::ast::{Expr as SqlExpr, Ident, visit_expressions_mut};

/// A compiled row filter.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    /// The condition as written.
    pub text: String,
    /// The physical expression, over the full table schema.
    pub expr: Arc<dyn PhysicalExpr>,
}

/// The scalar functions a filter may call: DataFusion's built-ins for the features we enable.
struct Functions {
    scalar: BTreeMap<String, Arc<ScalarUDF>>,
    options: ConfigOptions,
}

impl Functions {
    fn new() -> Self {
        let mut scalar = BTreeMap::new();
        for udf in datafusion_functions::all_default_functions() {
            for alias in udf.aliases() {
                scalar.insert(alias.to_ascii_lowercase(), Arc::clone(&udf));
            }
            scalar.insert(udf.name().to_ascii_lowercase(), udf);
        }
        Functions {
            scalar,
            options: ConfigOptions::default(),
        }
    }
}

impl ContextProvider for Functions {
    fn get_table_source(
        &self,
        name: TableReference,
    ) -> datafusion_common::Result<Arc<dyn TableSource>> {
        datafusion_common::plan_err!(
            "a row filter may use only the table's own columns, not table `{name}`"
        )
    }

    fn get_function_meta(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        self.scalar.get(&name.to_ascii_lowercase()).cloned()
    }

    fn get_higher_order_meta(&self, _name: &str) -> Option<Arc<HigherOrderUDF>> {
        None
    }

    fn get_aggregate_meta(&self, _name: &str) -> Option<Arc<AggregateUDF>> {
        None
    }

    fn get_window_meta(&self, _name: &str) -> Option<Arc<WindowUDF>> {
        None
    }

    fn get_variable_type(&self, _variable_names: &[String]) -> Option<DataType> {
        None
    }

    fn options(&self) -> &ConfigOptions {
        &self.options
    }

    fn udf_names(&self) -> Vec<String> {
        self.scalar.keys().cloned().collect()
    }

    fn udaf_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn udwf_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn higher_order_function_names(&self) -> Vec<String> {
        Vec::new()
    }
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

/// Type-checks and compiles a filter against a table's full Arrow schema. `table` names the table
/// in messages. The error text is what a person needs to fix the filter.
pub fn compile_filter(
    expr: &SqlExpr,
    text: &str,
    schema: &SchemaRef,
    table: &str,
) -> Result<CompiledFilter, String> {
    let mut expr = expr.clone();
    resolve_columns(&mut expr, schema, table)?;
    let df_schema = DFSchema::try_from(schema.as_ref().clone())
        .map_err(|e| format!("cannot describe the columns of {table}: {e}"))?;
    let functions = Functions::new();
    let options = ParserOptions {
        parse_float_as_decimal: true,
        enable_ident_normalization: false,
        map_string_types_to_utf8view: false,
        ..ParserOptions::default()
    };
    let planner = SqlToRel::new_with_options(&functions, options);
    let fail = |e: datafusion_common::DataFusionError| {
        let message = e.strip_backtrace();
        let message = message
            .trim_start_matches("Error during planning: ")
            .trim_start_matches("This feature is not implemented: ");
        // DataFusion's "Did you mean" picks among equally close names in no fixed order.
        let message = match message.split_once("Did you mean") {
            Some((head, _)) if head.starts_with("Invalid function") => {
                format!(
                    "{} The functions a filter may call are listed in docs/project-language.md.",
                    head.trim_end()
                )
            }
            _ => message.to_string(),
        };
        format!(
            "the WHERE of {table} does not type-check: {}",
            message.split_whitespace().collect::<Vec<_>>().join(" ")
        )
    };
    let logical = planner
        .sql_to_expr(expr, &df_schema, &mut PlannerContext::new())
        .map_err(fail)?;
    let logical = type_temporal_literals(logical, &df_schema).map_err(fail)?;
    let mut coercion = TypeCoercionRewriter::new(&df_schema);
    let logical = logical.rewrite(&mut coercion).map_err(fail)?.data;
    let data_type = logical.get_type(&df_schema).map_err(fail)?;
    if data_type != DataType::Boolean {
        return Err(format!(
            "the WHERE of {table} is a {data_type} expression, not a condition; compare it with \
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

fn is_comparison(op: Operator) -> bool {
    use Operator::*;
    matches!(
        op,
        Eq | NotEq | Lt | LtEq | Gt | GtEq | IsDistinctFrom | IsNotDistinctFrom
    )
}

/// The temporal type of a column reference, if it is one.
fn temporal_column_type(expr: &Expr, schema: &DFSchema) -> Option<DataType> {
    let Expr::Column(_) = expr else {
        return None;
    };
    let data_type = expr.get_type(schema).ok()?;
    matches!(
        data_type,
        DataType::Date32 | DataType::Timestamp(..) | DataType::Time64(_)
    )
    .then_some(data_type)
}

/// A string literal becomes a literal of the column's own type.
fn cast_string_literal(expr: Expr, to: &Option<DataType>) -> Expr {
    match (to, &expr) {
        (Some(to), Expr::Literal(ScalarValue::Utf8(Some(_)), _)) => {
            Expr::Cast(Cast::new(Box::new(expr), to.clone()))
        }
        _ => expr,
    }
}

/// `created_at >= '2024-01-01'` would otherwise be coerced to nanosecond timestamps, which
/// cannot hold MySQL's year 1000 or our zero-date sentinels; comparing in the column's own type
/// keeps every stored value comparable.
fn type_temporal_literals(expr: Expr, schema: &DFSchema) -> datafusion_common::Result<Expr> {
    expr.transform_up(|e| {
        Ok(match e {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) if is_comparison(op) => {
                let left_type = temporal_column_type(&left, schema);
                let right_type = temporal_column_type(&right, schema);
                Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                    left: Box::new(cast_string_literal(*left, &right_type)),
                    op,
                    right: Box::new(cast_string_literal(*right, &left_type)),
                }))
            }
            Expr::Between(Between {
                expr,
                negated,
                low,
                high,
            }) => {
                let to = temporal_column_type(&expr, schema);
                Transformed::yes(Expr::Between(Between {
                    expr,
                    negated,
                    low: Box::new(cast_string_literal(*low, &to)),
                    high: Box::new(cast_string_literal(*high, &to)),
                }))
            }
            Expr::InList(InList {
                expr,
                list,
                negated,
            }) => {
                let to = temporal_column_type(&expr, schema);
                Transformed::yes(Expr::InList(InList {
                    expr,
                    list: list
                        .into_iter()
                        .map(|item| cast_string_literal(item, &to))
                        .collect(),
                    negated,
                }))
            }
            other => Transformed::no(other),
        })
    })
    .map(|t| t.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::types::DateTimeValue;
    use arrow::array::{
        Array, BooleanArray, Decimal128Array, StringArray, TimestampMicrosecondArray,
    };
    use arrow::datatypes::{Field, Schema, TimeUnit};
    use arrow::record_batch::RecordBatch;
    use datafusion_sql::sqlparser::dialect::MySqlDialect;
    use datafusion_sql::sqlparser::parser::Parser;

    fn evaluate(condition: &str, batch: &RecordBatch) -> Result<Vec<Option<bool>>, String> {
        let expr = Parser::new(&MySqlDialect {})
            .try_with_sql(condition)
            .and_then(|mut p| p.parse_expr())
            .map_err(|e| e.to_string())?;
        let filter = compile_filter(&expr, condition, &batch.schema(), "db.t")?;
        let value = filter.expr.evaluate(batch).map_err(|e| e.to_string())?;
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

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("Amount", DataType::Decimal128(12, 2), false),
            Field::new("status", DataType::Utf8, true),
            Field::new(
                "created_at",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                false,
            ),
        ]));
        let zero_date = DateTimeValue::from_parts(0, 0, 0, 0, 0, 0, 0).to_arrow();
        let year_1000 = DateTimeValue::from_parts(1000, 1, 1, 0, 0, 0, 0).to_arrow();
        let march = DateTimeValue::from_parts(2024, 3, 1, 12, 0, 0, 5).to_arrow();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(
                    Decimal128Array::from(vec![10_050, 99, 250_000])
                        .with_precision_and_scale(12, 2)
                        .unwrap(),
                ),
                Arc::new(StringArray::from(vec![Some("paid"), None, Some("test")])),
                Arc::new(TimestampMicrosecondArray::from(vec![
                    march, zero_date, year_1000,
                ])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn filters_evaluate_on_whole_batches() {
        let batch = batch();
        assert_eq!(
            evaluate("amount > 100 AND status <> 'test'", &batch).unwrap(),
            vec![Some(true), Some(false), Some(false)]
        );
        assert_eq!(
            evaluate("STATUS IS NULL OR amount BETWEEN 0.5 AND 1", &batch).unwrap(),
            vec![Some(false), Some(true), Some(false)]
        );
        // Zero dates and year 1000 compare without overflow; the zero date sorts first.
        assert_eq!(
            evaluate("created_at >= '2024-01-01 00:00:00'", &batch).unwrap(),
            vec![Some(true), Some(false), Some(false)]
        );
        assert_eq!(
            evaluate("created_at < '1001-01-01'", &batch).unwrap(),
            vec![Some(false), Some(true), Some(true)]
        );
    }

    #[test]
    fn filters_that_do_not_type_check_say_why() {
        let batch = batch();
        let error = evaluate("nope = 1", &batch).unwrap_err();
        assert!(error.contains("unknown column `nope`"), "{error}");
        let error = evaluate("amount + 1", &batch).unwrap_err();
        assert!(error.contains("not a condition"), "{error}");
    }
}
