//! The counters no test can reach with frames from outside still have a site that counts
//! them. The others are checked by behaviour: the worker's `no_active_port` and the sockets'
//! `fill_ring_empty`, `rx_dropped` and `rx_ring_full` by real frames in
//! dataplane/tests/worker_counters.rs, packets and bytes there and in
//! dataplane/tests/worker_alloc.rs and the namespace tests' metrics, the XDP program's
//! counters in dataplane/tests/xdp_program.rs; `tx_ring_full` and invalid descriptors also by
//! the worker's unit tests over the fake kernel (dataplane/src/worker/tests.rs). What stays
//! here: `tx_ring_full` (a copy-mode
//! veth completes every transmit at once), `no_free_frame` (the pool running dry is what the
//! frame-accounting tests prevent), invalid descriptors (a kernel or worker bug) and the loop
//! and latency counters of the running loop, and the XDP engine's `not_redirected` (a frame
//! the kernel cannot redirect: no device in the slot, or a multi-buffer broadcast the
//! configuration refuses). The worker's `tx_refused` is checked by behaviour in
//! bench/tests/xdp_engine.rs (frames sent to a member whose carrier went).

use std::path::Path;

fn source(rel: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The worker's code: every file of dataplane/src/worker/ but its unit tests.
fn worker_source() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dataplane/src/worker");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs") && !p.ends_with("tests.rs"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "the worker's files: {files:?}");
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

#[test]
fn drop_reasons_frames_cannot_reach_are_still_counted_by_the_worker() {
    let worker = worker_source();
    for reason in ["TxRingFull", "NoFreeFrame", "InvalidDescriptor"] {
        let site = format!("DropReason::{reason} as usize]");
        assert!(
            worker.contains(&format!("drops[{site}")),
            "DropReason::{reason} is never counted in the worker"
        );
    }
    // The XDP engine's reason: counted by its program, summed into the port's drops.
    assert!(
        source("ebpf/xdp/src/engine.rs").contains("EngineCounter::NotRedirected"),
        "the XDP engine never counts not_redirected"
    );
    assert!(
        source("control/src/runtime/lagg/xdp_port.rs")
            .contains("drops[DropReason::NotRedirected as usize]"),
        "the XDP engine's not_redirected never reaches the port's drops"
    );
    let defined = source("dataplane/src/counters.rs");
    assert!(
        defined.contains("pub const COUNT: usize = 6;"),
        "a drop reason was added: count it in the worker and list it here"
    );
}

#[test]
fn socket_counters_frames_cannot_reach_are_still_copied_from_the_kernel() {
    let worker = worker_source();
    for counter in ["RxInvalidDescriptor", "TxInvalidDescriptor", "TxRingEmpty"] {
        assert!(
            worker.contains(&format!("(XskCounter::{counter}, s.")),
            "XskCounter::{counter} is never copied from XDP_STATISTICS"
        );
    }
    assert!(source("dataplane/src/counters.rs").contains("pub const COUNT: usize = 6;"));
}

/// The lagg's flaps, failovers and link/failover events are counted by the member set, whose
/// unit tests check them by behaviour (control/src/runtime/members.rs); LACP and link events are seen
/// in the namespace tests' timelines.
#[test]
fn the_running_loop_advances_its_loop_and_latency_counters() {
    let worker = worker_source();
    for site in [
        "bump(&self.counters.busy_ns",
        "bump(&self.counters.busy_loops",
        "bump(&self.counters.idle_loops",
        "bump(&self.counters.latency[",
        "bump(&self.counters.latency_sum_ns",
    ] {
        assert!(worker.contains(site), "dataplane/src/worker/ lacks {site}");
    }
}

#[test]
fn the_grafana_dashboard_uses_only_exported_metrics() {
    let text = source("dist/grafana/xlagg-dashboard.json");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let names: Vec<&str> = xlagg_control::mgmt::metrics::CATALOG
        .iter()
        .map(|m| m.name)
        .collect();
    let mut used = 0;
    for panel in dash["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if let Some(base) = word.strip_prefix("xlagg_").map(|_| word) {
                    let family = base
                        .strip_suffix("_bucket")
                        .or_else(|| base.strip_suffix("_sum"))
                        .or_else(|| base.strip_suffix("_count"))
                        .filter(|f| names.contains(f))
                        .unwrap_or(base);
                    assert!(
                        names.contains(&family),
                        "{family} in {expr} is not exported"
                    );
                    used += 1;
                }
            }
        }
    }
    assert!(used >= 15, "the dashboard uses the metrics: {used}");
}
