//! The soak's short form: four segments (a change through the API, a carrier flap, a member
//! leaving and joining, a daemon restart) under 10 kpps through a loadbalance lagg; no frame
//! lost outside an event's window, no flow reordered, memory and descriptors flat. The long
//! form is `xlagg-bench soak --seconds 600`. Needs root; fails otherwise.

mod common;

use common::{bench_bin, require_root, run, serial};

#[test]
fn four_events_under_traffic_lose_nothing_outside_their_windows() {
    let _serial = serial();
    require_root();
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/testbed.sh");
    let out = run(std::process::Command::new(bench_bin()).args([
        "soak",
        "--seconds",
        "24",
        "--segment",
        "6",
        "--restart-every",
        "4",
        "--pps",
        "10000",
        "--testbed",
        script.to_str().expect("utf-8"),
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("soak passed"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for event in ["change", "flap", "membership", "restart"] {
        assert!(text.contains(event), "{event} ran: {text}");
    }
}
