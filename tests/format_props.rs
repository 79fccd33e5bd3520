//! Property tests over every format: each message is valid JSON, and DECIMAL and 64-bit integer
//! values read back exactly (as numbers, or as the decimal strings the Debezium family uses).

use std::sync::Arc;

use arrow::array::{ArrayRef, Decimal128Array, Int64Array, StringArray, UInt64Array};
use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use proptest::prelude::*;
use serde_json::Value;
use tributary::encode::{ChangeMeta, Encoder, Messages, TableContext};
use tributary::plan::{ColumnDef, SqlType};
use tributary::project::Format;
use tributary::transform::Emit;

fn column(name: &str, column_type: &str) -> ColumnDef {
    ColumnDef {
        name: name.into(),
        column_type: column_type.into(),
        sql_type: SqlType::parse(column_type),
        nullable: true,
        charset: None,
        collation: None,
    }
}

/// Finds the row object holding column `id` in any format's message.
fn row_of(message: &Value) -> Option<&serde_json::Map<String, Value>> {
    let candidates = [
        &message["postStruct"],
        &message["data"][0],
        &message["payload"]["after"]["data"],
        &message["key"],
        &message["data"],
        &message["payload"]["after"],
        &message["after"],
        message,
    ];
    candidates
        .into_iter()
        .filter_map(Value::as_object)
        .find(|o| o.contains_key("big"))
}

/// The value as text: a JSON number's digits or a string's content.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn decimal_text(unscaled: i128, scale: u32) -> String {
    let digits = unscaled.unsigned_abs().to_string();
    let sign = if unscaled < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn messages_are_json_and_numbers_round_trip(
        big in any::<i64>(),
        ubig in any::<u64>(),
        unscaled in -99_999_999_999_999_999_999_999_999_999_999_999i128..99_999_999_999_999_999_999_999_999_999_999_999i128,
        scale in 0u32..=30,
        note in "\\PC{0,20}",
    ) {
        let columns = vec![
            column("id", "int(11)"),
            column("big", "bigint(20)"),
            column("ubig", "bigint(20) unsigned"),
            column("amount", &format!("decimal(38,{scale})")),
            column("note", "varchar(20)"),
        ];
        let fields: Vec<_> = columns
            .iter()
            .map(|c| c.sql_type.arrow_field(&c.name, true, &c.column_type).unwrap())
            .collect();
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(arrow::array::Int32Array::from(vec![7])),
            Arc::new(Int64Array::from(vec![big])),
            Arc::new(UInt64Array::from(vec![ubig])),
            Arc::new(
                Decimal128Array::from(vec![unscaled])
                    .with_precision_and_scale(38, scale as i8)
                    .unwrap(),
            ),
            Arc::new(StringArray::from(vec![note.clone()])),
        ];
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap();
        for format in Format::ALL {
            let context = TableContext {
                database: "db".into(),
                table: "t".into(),
                db_field: "db".into(),
                db_type: "MYSQL",
                projection: (0..columns.len()).collect(),
                key: vec![0],
                shard: vec![0],
                business_system_id: Some("p".into()),
                columns: columns.clone(),
            };
            let mut encoder = Encoder::new(*format, context).unwrap();
            let mut messages = Messages::default();
            encoder.encode_snapshot(&batch, &mut messages);
            let meta = ChangeMeta { timestamp: 1_714_528_801, position: "f:4".into() };
            let mut sequence = 0;
            encoder.encode_changes(
                Some(&batch),
                Some(&batch),
                &[Emit::Update(0)],
                &meta,
                &mut sequence,
                &mut messages,
            );
            prop_assert_eq!(messages.len(), 2);
            for i in 0..messages.len() {
                let payload = std::str::from_utf8(messages.payload(i)).unwrap();
                let message: Value = serde_json::from_str(payload)
                    .map_err(|e| TestCaseError::fail(format!("{format}: {e}: {payload}")))?;
                let row = row_of(&message)
                    .ok_or_else(|| TestCaseError::fail(format!("{format}: no row in {payload}")))?;
                prop_assert_eq!(text(&row["big"]), big.to_string(), "{}", format);
                prop_assert_eq!(text(&row["ubig"]), ubig.to_string(), "{}", format);
                prop_assert_eq!(text(&row["amount"]), decimal_text(unscaled, scale), "{}", format);
                prop_assert_eq!(text(&row["note"]), note.clone(), "{}", format);
                if let Some(key) = messages.key(i) {
                    serde_json::from_slice::<Value>(key).map_err(|e| TestCaseError::fail(format!("{format} key: {e}")))?;
                }
            }
        }
    }
}
