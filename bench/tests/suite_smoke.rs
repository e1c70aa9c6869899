//! `xlagg-bench suite` end to end on a short setting: it builds its test bed, measures every
//! forwarder at every size (9000-byte frames too, at MTU 9000, with the AF_XDP generator) with
//! the in-kernel sink, writes the results folder,
//! removes the bed, and `compare` reads the results back; and the same with the AF_XDP generator
//! forced, as a kernel that refuses live-frames test runs gets it. Needs root; fails otherwise.

mod common;

use std::process::Command;

use common::{bench_bin, require_root, run, serial};

/// Runs `xlagg-bench suite ARGS --out DIR` from the repository (DIR: a fresh temporary folder
/// named after `name`); asserts that it succeeded and returns DIR and its results.json.
fn suite(name: &str, args: &[&str]) -> (std::path::PathBuf, serde_json::Value) {
    let out = std::env::temp_dir().join(format!("xlagg-suite-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let result = run(Command::new(bench_bin())
        .current_dir(&repo)
        .arg("suite")
        .args(args)
        .arg("--out")
        .arg(&out));
    assert!(
        result.status.success(),
        "suite failed:\n{}\n{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    let json = serde_json::from_str(
        &std::fs::read_to_string(out.join("results.json")).expect("results.json"),
    )
    .expect("JSON");
    (out, json)
}

#[test]
fn the_suite_writes_results_and_compare_reads_them() {
    let _serial = serial();
    require_root();
    let (out, json) = suite(
        "smoke",
        &[
            "--runs",
            "1",
            "--seconds",
            "2",
            "--protocols",
            "loadbalance",
            "--scenarios",
            "throughput,latency",
        ],
    );
    // The flat-out runs use the in-kernel generator where this kernel allows live frames, and
    // the AF_XDP one where it refuses them; the results say which ran.
    let expected = if xlagg_bench::xdpgen::live_frames().is_ok() {
        "xdp"
    } else {
        "afxdp"
    };
    assert_eq!(json["generator"], expected, "the generator recorded");
    let summary = std::fs::read_to_string(out.join("summary.md")).expect("summary.md");
    assert!(
        summary.contains("Generator of the flat-out runs"),
        "{summary}"
    );
    let rows = json["throughput"].as_array().expect("throughput rows");
    assert_eq!(
        rows.len(),
        16,
        "4 sizes x (ceiling, kernel, loadbalance on each engine)"
    );
    for variant in ["loadbalance", "loadbalance (XDP engine)"] {
        assert!(
            rows.iter()
                .any(|r| r["size"] == "9000B" && r["variant"] == variant),
            "a jumbo row of {variant}: {rows:?}"
        );
    }
    for row in rows {
        assert!(
            row["mpps"]["median"].as_f64().unwrap_or(0.0) > 0.01,
            "{row}"
        );
    }
    let latency = json["latency"].as_array().expect("latency rows");
    assert_eq!(latency.len(), 2);
    assert!(
        latency[1]["samples"].as_u64().unwrap_or(0) > 1000,
        "{}",
        latency[1]
    );
    for f in ["summary.md", "throughput.svg", "latency.svg"] {
        assert!(out.join(f).exists(), "{f} written");
    }
    let cmp = run(Command::new(bench_bin())
        .arg("compare")
        .arg(out.join("results.json"))
        .arg(out.join("results.json")));
    let text = String::from_utf8_lossy(&cmp.stdout);
    assert!(cmp.status.success() && text.contains("1.000"), "{text}");
    let _ = std::fs::remove_dir_all(&out);
    let beds = run(Command::new("ip").args(["netns", "list"]));
    assert!(
        !String::from_utf8_lossy(&beds.stdout).contains("xl-bq"),
        "the suite removed its test bed"
    );
}

/// The fallback a kernel that refuses live-frames test runs gets, forced here so it runs on
/// every kernel: the suite measures with the AF_XDP generator and says so.
#[test]
fn the_suite_runs_on_the_afxdp_generator_when_live_frames_are_not_there() {
    let _serial = serial();
    require_root();
    let (out, json) = suite(
        "afxdp",
        &[
            "--runs",
            "1",
            "--seconds",
            "2",
            "--protocols",
            "loadbalance",
            "--engines",
            "xdp",
            "--sizes",
            "64",
            "--scenarios",
            "throughput",
            "--generator",
            "afxdp",
        ],
    );
    assert_eq!(json["generator"], "afxdp");
    let rows = json["throughput"].as_array().expect("throughput rows");
    assert_eq!(
        rows.len(),
        3,
        "ceiling, kernel, loadbalance (XDP engine): {rows:?}"
    );
    for row in rows {
        assert!(
            row["mpps"]["median"].as_f64().unwrap_or(0.0) > 0.01,
            "the AF_XDP generator carried traffic: {row}"
        );
    }
    let summary = std::fs::read_to_string(out.join("summary.md")).expect("summary.md");
    assert!(summary.contains("AF_XDP (copy mode)"), "{summary}");
    let _ = std::fs::remove_dir_all(&out);
}

/// RFC 2544 on a short setting: NDR and PDR by search for the AF_XDP ceiling, the kernel's
/// redirect and loadbalance on both engines, each trial's loss from the tester port's kernel
/// counters and the sink's counts; the answers must follow from the trials as recorded.
#[test]
fn rfc2544_finds_ndr_and_pdr_from_counters_at_both_ends() {
    let _serial = serial();
    require_root();
    let (out, json) = suite(
        "rfc",
        &[
            "--runs",
            "1",
            "--protocols",
            "loadbalance",
            "--scenarios",
            "rfc2544",
            "--rfc2544-sizes",
            "64",
            "--trial-seconds",
            "1",
            "--phases",
            "1",
            "--width",
            "0.05",
        ],
    );
    let rows = json["rfc2544"].as_array().expect("rfc2544 rows");
    let names: Vec<&str> = rows.iter().filter_map(|r| r["variant"].as_str()).collect();
    assert_eq!(
        names,
        [
            "ceiling (AF_XDP, fixed member)",
            "kernel XDP redirect",
            "loadbalance",
            "loadbalance (XDP engine)"
        ]
    );
    for row in rows {
        let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
        let (ndr, pdr) = (
            f(&row["ndr_mpps"]["median"]) * 1e6,
            f(&row["pdr_mpps"]["median"]) * 1e6,
        );
        let tester = f(&row["tester_max_mpps"]["median"]) * 1e6;
        assert!(
            ndr > 0.0 && ndr <= pdr && pdr <= tester * 1.000_001,
            "0 < NDR <= PDR <= the tester's rate: {row}"
        );
        let trials = row["trials"].as_array().expect("trials");
        for t in trials {
            let (sent, received, copies) = (
                t["sent"].as_u64().unwrap(),
                t["received"].as_u64().unwrap(),
                t["copies"].as_u64().unwrap(),
            );
            // The tester port's counters agree with the generator's completions, and loss
            // is what they and the sink's counts say.
            let generator = t["generator_sent"].as_u64().unwrap();
            assert!(
                sent.abs_diff(generator) <= sent / 100 + 64,
                "port counters against completions: {t}"
            );
            assert!(received <= sent * copies, "{t}");
            let loss = (sent * copies - received) as f64 / (sent * copies) as f64;
            assert!((f(&t["loss"]) - loss).abs() < 1e-9, "{t}");
        }
        // NDR is a trial's rate that lost nothing, with no lossy trial below it.
        let rate = |t: &serde_json::Value| match f(&t["target_pps"]) {
            0.0 => f(&t["offered_pps"]),
            r => r,
        };
        let at_ndr = trials
            .iter()
            .find(|t| (rate(t) - ndr).abs() < 1.0)
            .unwrap_or_else(|| panic!("a trial at NDR {ndr}: {row}"));
        assert_eq!(at_ndr["received"], at_ndr["sent"], "{at_ndr}");
        for t in trials {
            assert!(
                rate(t) >= ndr || f(&t["loss"]) == 0.0,
                "a lossy trial below NDR {ndr}: {t}"
            );
        }
        let latency = row["latency"].as_array().expect("latency");
        assert_eq!(latency.len(), 3, "10, 50, 90 % of PDR: {row}");
        for l in latency {
            assert!(l["samples"].as_u64().unwrap_or(0) > 1000, "{l}");
        }
    }
    let summary = std::fs::read_to_string(out.join("summary.md")).expect("summary.md");
    assert!(summary.contains("## RFC 2544"), "{summary}");
    assert!(out.join("rfc2544.svg").exists(), "rfc2544.svg written");
    let _ = std::fs::remove_dir_all(&out);
    let beds = run(Command::new("ip").args(["netns", "list"]));
    assert!(
        !String::from_utf8_lossy(&beds.stdout).contains("xl-bq"),
        "the suite removed its test bed"
    );
}
