//! Partitioner throughput: keys of a realistic shape (JSON objects of one BIGINT key) hashed to
//! a 3-partition topic, one 8192-row batch at a time.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tributary::partition::Partitioner;
use tributary::project::Partitioning;

fn hash_batch(c: &mut Criterion) {
    let keys: Vec<Vec<u8>> = (0..8192u64)
        .map(|id| format!("{{\"id\":{}}}", id * 7919 + 1_000_000).into_bytes())
        .collect();
    let partitioner = Partitioner::new(Partitioning::Hash, "shop", "orders", 3, 0);
    let mut out = Vec::with_capacity(keys.len());
    let mut group = c.benchmark_group("partition");
    group.throughput(Throughput::Elements(keys.len() as u64));
    group.bench_function("hash_8192_keys", |b| {
        b.iter(|| {
            out.clear();
            partitioner.assign(keys.iter().map(|k| Some(k.as_slice())), &mut out);
            std::hint::black_box(&out);
        })
    });
    group.finish();
}

criterion_group!(benches, hash_batch);
criterion_main!(benches);
