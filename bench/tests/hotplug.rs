//! Membership changes under traffic (20 kpps over 128 flows through a forward-mode
//! loadbalance lagg): a member joins and leaves at run time, and a member's carrier drops and
//! returns on the partner side. Flows that never touched the member in question arrive
//! complete and in order on one port; the member takes only its share. Needs root; fails
//! otherwise.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::{serial, Bed, Daemon, Sink};

fn ctl(socket: &Path, args: &[&str]) {
    let out = common::xlaggctl(socket, args);
    assert!(
        out.status.success(),
        "xlaggctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn xdp_id(bed: &Bed, iface: &str) -> Option<u32> {
    let line = bed.ip("app", &["-o", "link", "show", iface]);
    let at = line.find("prog/xdp id ")?;
    line[at + 12..].split_whitespace().next()?.parse().ok()
}

#[test]
fn members_join_and_leave_under_traffic_without_touching_other_flows() {
    let _serial = serial();
    let bed = Bed::up(3, false);
    let config = "[daemon]\nlink_poll_ms = 10000\n\n[[lagg]]\nname = \"lagg0\"\nlaggproto = \"loadbalance\"\n\
                  laggports = [\"xlm0\", \"xlm1\"]\nupper = \"forward\"\nforward_port = \"xld0\"\n";
    let daemon = Daemon::start(&bed, config);
    let sink = Sink::start(&bed);
    let mut sender = start_sender(&bed);
    let ids = (xdp_id(&bed, "xlm0"), xdp_id(&bed, "xlm1"));
    std::thread::sleep(Duration::from_millis(1200));
    ctl(&daemon.socket, &["lagg0", "laggport", "xlm2"]);
    assert!(
        xdp_id(&bed, "xlm2").is_some(),
        "the new member has its program"
    );
    assert_eq!(
        (xdp_id(&bed, "xlm0"), xdp_id(&bed, "xlm1")),
        ids,
        "the others keep theirs"
    );
    std::thread::sleep(Duration::from_millis(1200));
    ctl(&daemon.socket, &["lagg0", "-laggport", "xlm2"]);
    assert_eq!(
        xdp_id(&bed, "xlm2"),
        None,
        "the member that left is released"
    );
    assert_eq!((xdp_id(&bed, "xlm0"), xdp_id(&bed, "xlm1")), ids);
    let status = sender.wait().expect("sender");
    assert!(status.success());
    let report = sink.finish();
    check_untouched_flows(&report, 2, &drops(&daemon));
    let file = std::fs::read_to_string(&daemon.config).expect("config");
    assert!(file.contains("laggports = [\"xlm0\", \"xlm1\"]"), "{file}");
}

#[test]
fn a_carrier_flap_under_traffic_moves_only_that_members_flows() {
    let _serial = serial();
    let bed = Bed::up(3, false);
    let daemon = Daemon::start(&bed, &bed.config("loadbalance", "", false));
    let sink = Sink::start(&bed);
    let mut sender = start_sender(&bed);
    std::thread::sleep(Duration::from_millis(1200));
    bed.ip("ptr", &["link", "set", "xlp1", "down"]);
    std::thread::sleep(Duration::from_millis(1200));
    bed.ip("ptr", &["link", "set", "xlp1", "up"]);
    let status = sender.wait().expect("sender");
    assert!(status.success());
    let report = sink.finish();
    check_untouched_flows(&report, 1, &drops(&daemon));
    // The flapping member's flows lost at most what was in flight when the carrier went.
    let total: u64 = report.ports.iter().map(|p| p.seqs.len() as u64).sum();
    assert!(
        total + 200 >= FLOWS * PER_FLOW,
        "delivered {total} of {}: more than the switchover window lost",
        FLOWS * PER_FLOW
    );
    drop(daemon);
}

const FLOWS: u64 = 128;
const PER_FLOW: u64 = 600;

/// The lagg's drops by port (worker and XDP program), for failure messages.
fn drops(daemon: &Daemon) -> String {
    let out = common::xlaggctl(&daemon.socket, &["-j"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v[0]["ports"]
        .as_array()
        .map(|ports| {
            ports
                .iter()
                .map(|p| format!("{} {}", p["name"], p["drops"]))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// The paced sender: FLOWS flows x PER_FLOW frames at 20 kpps (about 3.8 s).
fn start_sender(bed: &Bed) -> std::process::Child {
    bed.start_sender(FLOWS as u32, PER_FLOW as u32, 0, 20_000)
}

/// Every flow that never arrived on port `touched` arrived complete, in order, on one port;
/// `touched` carried some flows, but not most.
fn check_untouched_flows(
    report: &xlagg_bench::packet_tools::SinkReport,
    touched: usize,
    drops: &str,
) {
    for port in &report.ports {
        assert_eq!(
            port.sink_dropped, 0,
            "the sink's own socket on {} overflowed: the check below would blame the lagg",
            port.name
        );
    }
    // Per flow: (port, sequence numbers in arrival order). Sequence n belongs to flow n % FLOWS.
    let mut seen: BTreeMap<u64, Vec<(usize, u64)>> = BTreeMap::new();
    for (p, port) in report.ports.iter().enumerate() {
        for &seq in &port.seqs {
            seen.entry(seq % FLOWS).or_default().push((p, seq));
        }
    }
    let moved: BTreeSet<u64> = report.ports[touched]
        .seqs
        .iter()
        .map(|s| s % FLOWS)
        .collect();
    assert!(!moved.is_empty(), "the member carried flows");
    assert!(
        moved.len() < FLOWS as usize * 2 / 3,
        "it took about its share (a third), not everything: {} of {FLOWS}",
        moved.len()
    );
    let mut checked = 0;
    for flow in 0..FLOWS {
        if moved.contains(&flow) {
            continue;
        }
        let arrivals = seen.get(&flow).cloned().unwrap_or_default();
        let ports: BTreeSet<usize> = arrivals.iter().map(|a| a.0).collect();
        assert_eq!(
            ports.len(),
            1,
            "flow {flow} stayed on one member: {ports:?}"
        );
        assert_eq!(
            arrivals.len() as u64,
            PER_FLOW,
            "flow {flow} lost frames; the lagg's drop counters: {drops}"
        );
        assert!(
            arrivals.windows(2).all(|w| w[0].1 < w[1].1),
            "flow {flow} arrived out of order"
        );
        checked += 1;
    }
    assert!(checked > 0);
}

#[test]
fn an_lacp_member_joins_and_leaves_a_running_aggregate() {
    let _serial = serial();
    let bed = Bed::up(3, false);
    let lagg = |prefix: &str| {
        format!(
            "[daemon]\nlink_poll_ms = 10000\n\n[[lagg]]\nname = \"lagg0\"\nlaggproto = \"lacp\"\n\
             laggports = [\"{prefix}0\", \"{prefix}1\"]\nlacp_fast_timeout = true\n"
        )
    };
    let partner = Daemon::start_in(&bed, "ptr", &lagg("xlp"));
    let app = Daemon::start(&bed, &lagg("xlm"));
    let distributing = |d: &Daemon| -> Vec<bool> {
        let out = common::xlaggctl(&d.socket, &["-j", "lagg0"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        v[0]["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .map(|p| {
                p["flags"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|x| x == "DISTRIBUTING"))
            })
            .collect()
    };
    let wait = |what: &str, cond: &dyn Fn() -> bool| {
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if cond() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}");
    };
    wait("two members distributing", &|| {
        distributing(&app) == [true, true]
    });
    let ids = (xdp_id(&bed, "xlm0"), xdp_id(&bed, "xlm1"));
    ctl(&partner.socket, &["lagg0", "laggport", "xlp2"]);
    ctl(&app.socket, &["lagg0", "laggport", "xlm2"]);
    wait("the third member negotiated and distributing", &|| {
        distributing(&app) == [true, true, true]
    });
    assert_eq!(
        (xdp_id(&bed, "xlm0"), xdp_id(&bed, "xlm1")),
        ids,
        "in place"
    );
    ctl(&app.socket, &["lagg0", "-laggport", "xlm0"]);
    wait("two members again", &|| distributing(&app) == [true, true]);
    wait("the partner took its side out", &|| {
        distributing(&partner).iter().filter(|d| **d).count() == 2
    });
}

#[test]
fn a_member_that_left_comes_back_into_its_slot_and_carries_traffic() {
    let _serial = serial();
    let bed = Bed::up(3, false);
    let daemon = Daemon::start(&bed, &bed.config("loadbalance", "", false));
    let ids = (xdp_id(&bed, "xlm0"), xdp_id(&bed, "xlm2"));
    ctl(&daemon.socket, &["lagg0", "-laggport", "xlm1"]);
    assert_eq!(xdp_id(&bed, "xlm1"), None);
    ctl(&daemon.socket, &["lagg0", "laggport", "xlm1"]);
    assert!(xdp_id(&bed, "xlm1").is_some());
    assert_eq!(
        (xdp_id(&bed, "xlm0"), xdp_id(&bed, "xlm2")),
        ids,
        "in place both times"
    );
    // Every member carries its share again.
    let sink = Sink::start(&bed);
    bed.send(256, 4, 0);
    let report = sink.finish();
    for port in &report.ports {
        assert!(port.frames > 0, "{} carried nothing", port.name);
    }
    let total: u64 = report.ports.iter().map(|p| p.frames).sum();
    assert_eq!(total, 1024, "every frame delivered once");
}
