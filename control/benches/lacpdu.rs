//! LACPDU parse and emit. Run: `cargo bench -p xlagg-control --bench lacpdu`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use xlagg_control::proto::lacp::pdu::{self, LacpState, Lacpdu, PortInfo};

fn bench(c: &mut Criterion) {
    let info = |system: u8, port: u16| PortInfo {
        system_priority: 0x8000,
        system: [2, 0, 0, 0, 0, system],
        key: 1,
        port_priority: 0x8000,
        port,
        state: LacpState(0x3f),
    };
    let pdu = Lacpdu {
        version: 1,
        actor: info(1, 1),
        partner: info(2, 3),
        collector_max_delay: 0,
    };
    let frame = pdu.emit([2, 0, 0, 0, 1, 0]);
    c.bench_function("lacpdu_parse", |b| b.iter(|| pdu::parse(black_box(&frame))));
    c.bench_function("lacpdu_emit", |b| {
        b.iter(|| black_box(&pdu).emit([2, 0, 0, 0, 1, 0]))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
