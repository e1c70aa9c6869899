//! Runs `distribute` over a 64-frame batch a fixed number of times, for counting instructions
//! per frame with `valgrind --tool=callgrind` (repeatable where wall-clock time is not):
//! `valgrind --tool=callgrind target/release/examples/distribute_count`.

use std::hint::black_box;

use xlagg_dataplane::distribution::{
    distribute, DistributionTable, Egress, RoundRobinCursor, TxPolicy,
};
use xlagg_dataplane::flow::HashLayers;

#[path = "../tests/support/frames.rs"]
mod frames;

fn main() {
    let frames: Vec<Vec<u8>> = (0..64u16).map(frames::udp4).collect();
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
