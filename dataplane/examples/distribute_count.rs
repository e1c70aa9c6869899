//! Runs `distribute` over a 64-frame batch a fixed number of times, for counting instructions
//! per frame with `valgrind --tool=callgrind` (repeatable where wall-clock time is not):
//! `valgrind --tool=callgrind target/release/examples/distribute_count`.

use std::hint::black_box;

use xlagg_dataplane::distribution::{
    distribute, DistributionTable, Egress, RoundRobinCursor, TxPolicy,
};
use xlagg_dataplane::flow::HashLayers;

fn main() {
    let frames: Vec<Vec<u8>> = (0..64u16)
        .map(|flow| {
            let mut f = vec![0u8; 60];
            f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            f[14] = 0x45;
            f[23] = 17;
            f[26..30].copy_from_slice(&[10, 78, (flow >> 8) as u8, flow as u8]);
            f[30..34].copy_from_slice(&[10, 79, 0, 1]);
            f[34..36].copy_from_slice(&(10000 + flow).to_be_bytes());
            f
        })
        .collect();
    let batch: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let table = DistributionTable::new(
        TxPolicy::Hash {
            layers: HashLayers::DEFAULT,
        },
        1,
    )
    .with_active(&[0, 1, 2, 3]);
    let mut rr = RoundRobinCursor::default();
    let mut out = [Egress::Drop; 64];
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    for _ in 0..rounds {
        distribute(black_box(&table), &mut rr, black_box(&batch), &mut out);
        black_box(&out);
    }
}
