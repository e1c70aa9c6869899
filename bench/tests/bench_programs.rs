//! The benchmark's in-kernel sink on byte vectors (BPF_PROG_TEST_RUN): every frame shape is
//! counted per flow, a sequence number below its flow's highest counts as a reordering, and
//! stamped frames land in the latency histogram. Needs root; fails otherwise.

mod common;

use xlagg_bench::traffic::{build_shaped, Marker, Shape};
use xlagg_common::SinkCounter;
use xlagg_dataplane::xdp::{PortProgram, ProgramKind};

#[test]
fn the_sink_counts_flows_reorderings_and_latency_for_every_shape() {
    common::require_root();
    let p = PortProgram::load("sink", ProgramKind::Sink).expect("the sink program loads");
    let shapes = [
        Shape::default(),
        Shape {
            ipv6: true,
            vlan: None,
        },
        Shape {
            ipv6: false,
            vlan: Some(10),
        },
        Shape {
            ipv6: true,
            vlan: Some(10),
        },
    ];
    let mut buf = [0u8; 2048];
    // Flow 3: sequences 0, 2, 1 (one reordering); flow 5: 0 and 1, stamped.
    let frames = [
        (3u32, 0u64, 0u32),
        (3, 2, 0),
        (3, 1, 0),
        (5, 0, 1),
        (5, 1, 1),
    ];
    for (k, shape) in shapes.into_iter().enumerate() {
        for (flow, seq, stamp) in frames {
            // Each shape gets its own flows (16 apart).
            let flow = flow + 16 * k as u32;
            let n = build_shaped(
                &mut buf,
                128,
                Marker {
                    flow,
                    seq,
                    stamp_ns: stamp,
                },
                shape,
            );
            assert_eq!(p.test_run(&buf[..n]).expect("run"), 1, "XDP_DROP");
        }
    }
    let garbage = [0u8; 60];
    p.test_run(&garbage).expect("run");
    let s = p.sink_stats().expect("stats");
    assert_eq!(s[SinkCounter::Frames as usize], 21);
    assert_eq!(s[SinkCounter::Test as usize], 20);
    assert_eq!(s[SinkCounter::Reordered as usize], 4, "one per shape");
    assert_eq!(s[SinkCounter::Stamped as usize], 8);
    let flows = p.sink_flows(64).expect("flows");
    for k in 0..4 {
        assert_eq!(
            (flows[3 + 16 * k], flows[5 + 16 * k], flows[16 * k]),
            (3, 2, 0)
        );
    }
    let latency: u64 = p.sink_latency().expect("latency").iter().sum();
    assert_eq!(latency, 8);
}
