//! `rebalance = true` under skewed traffic, on the AF_XDP and the XDP engine in forward mode:
//! two elephant flows that the hash puts on the same member (each 2000 frames/s, pausing
//! 150 ms every second) among 200 mice (a frame every 200 ms each). The partner's sink stamps
//! every frame; the test checks that the busiest member's share falls, that every flow that
//! changed member did so across a gap of at least the idle time (so nothing it sent before
//! could arrive after), and that no flow has a frame out of sequence. Needs root (namespaces,
//! XDP, AF_XDP); fails otherwise, never skips.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{bench_bin, run_ok, serial, Bed, Daemon, Sink};
use xlagg_bench::packet_tools::SinkReport;

const ELEPHANT_PPS: u32 = 2000;
const MICE: u32 = 200;
const MICE_FIRST: u32 = 1000;
const RUN_S: u32 = 7;
const IDLE_MS: u64 = 30;

fn sender(
    bed: &Bed,
    first_flow: u32,
    flows: u32,
    per_flow: u32,
    pps: u32,
    first_seq: u64,
) -> Child {
    let bench = bench_bin();
    bed.exec(
        "src",
        &[
            bench.to_str().expect("utf-8 path"),
            "send",
            "--iface",
            "xls0",
            "--first-flow",
            &first_flow.to_string(),
            "--flows",
            &flows.to_string(),
            "--per-flow",
            &per_flow.to_string(),
            "--pps",
            &pps.to_string(),
            "--first-seq",
            &first_seq.to_string(),
        ],
    )
    .stdout(Stdio::null())
    .spawn()
    .expect("start the sender")
}

/// Which member (index) carried each of flows 0..64, one frame each.
fn placement(bed: &Bed) -> BTreeMap<u32, usize> {
    let sink = Sink::start(bed);
    let status = sender(bed, 0, 64, 1, 2000, 0).wait().expect("sender");
    assert!(status.success());
    let report = sink.finish();
    let mut out = BTreeMap::new();
    for (i, port) in report.ports.iter().enumerate() {
        for flow in port.flows.keys() {
            out.insert(*flow, i);
        }
    }
    out
}

/// `xlagg-bench sink --timestamps` on the partner ends.
fn timed_sink(bed: &Bed) -> Child {
    let bench = bench_bin();
    let mut child = bed
        .exec(
            "ptr",
            &[
                bench.to_str().expect("utf-8 path"),
                "sink",
                "--timestamps",
                "--ifaces",
                &bed.partner_names().join(","),
                "--max-ms",
                "60000",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sink");
    let err = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(err).lines();
    assert!(
        lines
            .next()
            .is_some_and(|l| l.is_ok_and(|l| l.contains("ready"))),
        "the sink did not start"
    );
    std::thread::spawn(move || for _ in lines.by_ref() {});
    child
}

fn finish(child: Child) -> SinkReport {
    std::thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().expect("sink output");
    serde_json::from_slice(&out.stdout).expect("sink report")
}

/// Per member, the frames of the first and of the last `secs` seconds of the run.
fn shares(report: &SinkReport, secs: u64) -> (Vec<u64>, Vec<u64>) {
    let times: Vec<u64> = report
        .ports
        .iter()
        .flat_map(|p| p.arrivals.iter().map(|a| a.2))
        .collect();
    let (first, last) = (
        times.iter().copied().min().unwrap_or(0),
        times.iter().copied().max().unwrap_or(0),
    );
    let span = secs * 1_000_000_000;
    let count = |from: u64, to: u64| {
        report
            .ports
            .iter()
            .map(|p| {
                p.arrivals
                    .iter()
                    .filter(|a| a.2 >= from && a.2 < to)
                    .count() as u64
            })
            .collect()
    };
    (
        count(first, first + span),
        count(last.saturating_sub(span), last + 1),
    )
}

fn imbalance(counts: &[u64]) -> f64 {
    let mean = counts.iter().sum::<u64>() as f64 / counts.len() as f64;
    counts.iter().copied().max().unwrap_or(0) as f64 / mean.max(1.0)
}

fn run_engine(bed: &Bed, engine: &str) {
    let config = bed.config(
        "loadbalance",
        &format!(
            "engine = \"{engine}\"\nlagghash = \"l3,l4\"\nrebalance = true\nrebalance_hold_ms = 1000\nrebalance_idle_ms = {IDLE_MS}\n"
        ),
        false,
    );
    let daemon = Daemon::start(bed, &config);
    let placed = placement(bed);
    let on_first: Vec<u32> = placed
        .iter()
        .filter(|(_, m)| **m == 0)
        .map(|(f, _)| *f)
        .collect();
    assert!(
        on_first.len() >= 2,
        "two flows on xlm0 among 64: {placed:?}"
    );
    let elephants = [on_first[0], on_first[1]];
    let sink = timed_sink(bed);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for flow in elephants {
            let stop = &stop;
            scope.spawn(move || {
                let mut k = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let per = ELEPHANT_PPS;
                    let status = sender(bed, flow, 1, per, ELEPHANT_PPS, k * u64::from(per))
                        .wait()
                        .expect("elephant");
                    assert!(status.success());
                    k += 1;
                    std::thread::sleep(Duration::from_millis(150));
                }
            });
        }
        let mice = sender(bed, MICE_FIRST, MICE, RUN_S * 5, MICE * 5, 0);
        let mice = mice.wait_with_output().expect("mice");
        assert!(mice.status.success());
        stop.store(true, Ordering::Relaxed);
    });
    let report = finish(sink);
    let status: serde_json::Value =
        serde_json::from_slice(&common::xlaggctl(&daemon.socket, &["-j", "lagg0"]).stdout)
            .expect("status");
    let moves = status[0]["rebalance"]["moves"]
        .as_u64()
        .expect("rebalance status");
    // Every flow in arrival order across both members: in sequence, and a change of member
    // only across a gap.
    let mut by_flow: BTreeMap<u32, Vec<(u64, u64, usize)>> = BTreeMap::new();
    for (i, p) in report.ports.iter().enumerate() {
        for &(seq, flow, t) in &p.arrivals {
            by_flow.entry(flow).or_default().push((t, seq, i));
        }
    }
    let (mut reordered, mut changes, mut min_gap) = (0u64, 0u64, u64::MAX);
    for frames in by_flow.values_mut() {
        frames.sort_unstable();
        for w in frames.windows(2) {
            if w[1].1 < w[0].1 {
                reordered += 1;
            }
            if w[1].2 != w[0].2 {
                changes += 1;
                min_gap = min_gap.min(w[1].0 - w[0].0);
            }
        }
    }
    let (before, after) = shares(&report, 2);
    let (ib, ia) = (imbalance(&before), imbalance(&after));
    eprintln!(
        "{engine}: imbalance of the frames {ib:.2} (first 2 s: {before:?}) -> {ia:.2} (last 2 s: {after:?}); \
         {moves} buckets moved, {changes} member changes of flows, shortest gap {} ms, {reordered} reordered",
        min_gap / 1_000_000
    );
    assert_eq!(reordered, 0, "{engine}: no flow out of sequence");
    assert!(moves > 0 && changes > 0, "{engine}: buckets moved");
    assert!(
        min_gap >= (IDLE_MS - 10) * 1_000_000,
        "{engine}: a flow changed member only across a gap of {IDLE_MS} ms: {} ms",
        min_gap / 1_000_000
    );
    assert!(
        ia < ib - 0.2,
        "{engine}: the spread evened out: {ib:.2} -> {ia:.2}"
    );
    assert!(
        daemon.told("rebalance: bucket"),
        "{engine}: the timeline tells of the moves"
    );
    drop(daemon);
}

#[test]
fn rebalancing_evens_out_skewed_traffic_and_reorders_no_frame_on_both_engines() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    // The far ends take the XDP engine's redirects (GRO), as in the XDP engine's tests.
    for p in bed.partner_names() {
        run_ok(&mut bed.exec("ptr", &["ethtool", "-K", &p, "gro", "on"]));
    }
    run_ok(&mut bed.exec("src", &["ethtool", "-K", "xls0", "gro", "on"]));
    for engine in ["afxdp", "xdp"] {
        run_engine(&bed, engine);
    }
}
