//! Encoder throughput per format: one 8192-row batch of ten mixed columns encoded to messages
//! (payloads and keys), the way full sync does it.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Decimal128Array, Float64Array, Int8Array, Int32Array, Int64Array, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tributary::encode::{Encoder, Messages, TableContext};
use tributary::plan::{ColumnDef, SqlType};
use tributary::project::Format;

const ROWS: usize = 8192;

fn column(name: &str, column_type: &str, nullable: bool) -> ColumnDef {
    ColumnDef {
        name: name.to_string(),
        column_type: column_type.to_string(),
        sql_type: SqlType::parse(column_type),
        nullable,
        charset: None,
        collation: None,
    }
}

fn batch(columns: &[ColumnDef]) -> RecordBatch {
    let fields: Vec<_> = columns
        .iter()
        .map(|c| {
            c.sql_type
                .arrow_field(&c.name, c.nullable, &c.column_type)
                .unwrap()
        })
        .collect();
    let n = ROWS as i64;
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(0..n)),
        Arc::new(Int32Array::from_iter_values(
            (0..n).map(|i| (i % 100_000) as i32),
        )),
        Arc::new(StringArray::from_iter_values(
            (0..ROWS).map(|i| ["new", "paid", "shipped", "done"][i % 4]),
        )),
        Arc::new(
            Decimal128Array::from_iter_values((0..n).map(|i| (i * 7919 % 10_000_000) as i128))
                .with_precision_and_scale(12, 2)
                .unwrap(),
        ),
        Arc::new(Float64Array::from_iter_values(
            (0..n).map(|i| i as f64 / 7.0),
        )),
        Arc::new(TimestampMicrosecondArray::from_iter_values(
            (0..n).map(|i| 1_704_067_200_000_000 + i * 1_000_123),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                (0..n).map(|i| 1_735_689_600_000_000 + i * 1_000_000),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from_iter_values(
            (0..ROWS).map(|i| format!("note {:032x}", i * 2_654_435_761)),
        )),
        Arc::new(StringArray::from_iter_values(
            (0..ROWS).map(|i| format!("{:08}", i)),
        )),
        Arc::new(Int8Array::from_iter_values(
            (0..ROWS).map(|i| (i % 128) as i8),
        )),
    ];
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
}

fn encode_formats(c: &mut Criterion) {
    let columns = vec![
        column("id", "bigint(20)", false),
        column("user_id", "int(11)", false),
        column("status", "varchar(16)", false),
        column("amount", "decimal(12,2)", false),
        column("score", "double", true),
        column("created_at", "datetime(6)", false),
        column("updated_at", "timestamp", false),
        column("note", "varchar(64)", true),
        column("code", "char(8)", false),
        column("flags", "tinyint(4)", false),
    ];
    let batch = batch(&columns);
    let context = TableContext {
        database: "bench".into(),
        table: "rows".into(),
        db_field: "bench".into(),
        db_type: "MYSQL",
        projection: (0..columns.len()).collect(),
        key: vec![0],
        shard: vec![0],
        business_system_id: None,
        columns,
    };
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(ROWS as u64));
    for &format in Format::ALL {
        let mut encoder = Encoder::new(format, context.clone()).unwrap();
        let mut messages = Messages::default();
        group.bench_function(format!("{format}_8192_rows_10_columns"), |b| {
            b.iter(|| {
                messages.clear();
                encoder.encode_snapshot(&batch, &mut messages);
                std::hint::black_box(messages.len());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, encode_formats);
criterion_main!(benches);
