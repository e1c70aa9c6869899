//! Per-frame cost of the distribution decision: header parse + hash, bucket lookup, and
//! `distribute` over a 64-frame batch for every policy. The target is hash plus distribute at
//! most 10 ns per frame; criterion reports the time per batch and per frame (throughput in
//! elements). Run: `cargo bench -p xlagg-dataplane --bench distribute`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use xlagg_dataplane::distribution::{
    distribute, DistributionTable, Egress, RoundRobinCursor, TxPolicy,
};
use xlagg_dataplane::flow::{hash_frame, HashLayers};

const BATCH: usize = 64;

#[path = "../tests/support/frames.rs"]
mod frames;

fn bench(c: &mut Criterion) {
    let owned: Vec<Vec<u8>> = (0..BATCH as u16).map(frames::udp4).collect();
    let batch: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    let mut out = [Egress::Drop; BATCH];

    let mut g = c.benchmark_group("per_frame");
    g.throughput(Throughput::Elements(1));
    g.bench_function("hash_l2_l3_l4", |b| {
        b.iter(|| hash_frame(black_box(batch[7]), HashLayers::DEFAULT, 1))
    });
    g.bench_function("hash_l3_l4", |b| {
        b.iter(|| hash_frame(black_box(batch[7]), HashLayers::L3.with(HashLayers::L4), 1))
    });
    let table = DistributionTable::new(
        TxPolicy::Hash {
            layers: HashLayers::DEFAULT,
        },
        1,
    )
    .with_active(&[0, 1, 2, 3]);
    g.bench_function("bucket_lookup", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = i.wrapping_add(97);
            black_box(table.buckets()[i & 255])
        })
    });
    g.finish();

    let mut g = c.benchmark_group("distribute_64");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (name, policy) in [
        (
            "loadbalance_l2_l3_l4",
            TxPolicy::Hash {
                layers: HashLayers::DEFAULT,
            },
        ),
        ("failover", TxPolicy::Failover),
        ("roundrobin", TxPolicy::RoundRobin { limit: 1 }),
        ("broadcast", TxPolicy::Broadcast),
    ] {
        let table = DistributionTable::new(policy, 1).with_active(&[0, 1, 2, 3]);
        let mut rr = RoundRobinCursor::default();
        g.bench_function(name, |b| {
            b.iter(|| {
                distribute(black_box(&table), &mut rr, black_box(&batch), &mut out);
                black_box(&out);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
