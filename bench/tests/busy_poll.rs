//! Preferred busy polling (`busy_poll = true`): the workers drive their ports' NAPI, the ports
//! defer their interrupts while the lagg runs and get their settings back when it stops, and
//! every frame still arrives, each flow on one member. Needs root; fails otherwise.

mod common;

use common::{run, serial, Bed, Daemon, Sink};

/// `napi_defer_hard_irqs` and `gro_flush_timeout` of `port` in the appliance namespace.
fn knobs(bed: &Bed, port: &str) -> (String, String) {
    let read = |file: &str| {
        let out = run(&mut bed.exec("app", &["cat", &format!("/sys/class/net/{port}/{file}")]));
        assert!(out.status.success(), "reading {port}'s {file}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    (read("napi_defer_hard_irqs"), read("gro_flush_timeout"))
}

#[test]
fn a_busy_polling_lagg_forwards_every_frame_and_sets_its_ports_back() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let ports = ["xlm0", "xlm1", "xld0"];
    let before: Vec<_> = ports.iter().map(|p| knobs(&bed, p)).collect();
    let daemon = Daemon::start(
        &bed,
        &bed.config("loadbalance", "busy_poll = true\n", false),
    );
    for p in ports {
        assert_eq!(
            knobs(&bed, p),
            ("2".to_string(), "200000".to_string()),
            "{p} defers its interrupts while the lagg busy-polls"
        );
    }
    let sink = Sink::start(&bed);
    bed.send(64, 50, 0);
    let report = sink.finish();
    let got: u64 = report.ports.iter().map(|p| p.frames).sum();
    assert_eq!(got, 64 * 50, "every frame through the busy-polling workers");
    let mut port_of = std::collections::BTreeMap::new();
    for (i, p) in report.ports.iter().enumerate() {
        for flow in p.flows.keys() {
            assert_eq!(
                *port_of.entry(*flow).or_insert(i),
                i,
                "flow {flow} on two members"
            );
        }
    }
    daemon.stop();
    let after: Vec<_> = ports.iter().map(|p| knobs(&bed, p)).collect();
    assert_eq!(after, before, "the ports' settings are back after stop");
}

/// A daemon killed with SIGKILL cannot set its ports back; the next start does, before it
/// takes anything, from what the killed one wrote down (so it records the real originals).
/// The same holds for the offloads it changes (receive VLAN stripping, GRO).
#[test]
fn settings_a_killed_daemon_left_are_set_back_by_the_next_start() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let before = knobs(&bed, "xlm0");
    let vlan = |bed: &Bed| {
        let out = run(&mut bed.exec("app", &["ethtool", "-k", "xlm0"]));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("rx-vlan-offload:"))
            .map(|l| l.contains(": on"))
            .unwrap_or_default()
    };
    let vlan_before = vlan(&bed);
    assert!(vlan_before, "a veth strips VLAN tags by default");
    let daemon = Daemon::start(
        &bed,
        &bed.config("loadbalance", "busy_poll = true\n", false),
    );
    assert_eq!(knobs(&bed, "xlm0"), ("2".to_string(), "200000".to_string()));
    assert!(!vlan(&bed), "the port program needs the tags in the frame");
    daemon.kill();
    assert_eq!(
        knobs(&bed, "xlm0"),
        ("2".to_string(), "200000".to_string()),
        "SIGKILL leaves them changed"
    );
    // The next start, without busy polling, on the same socket.
    let daemon = Daemon::start(&bed, &bed.config("loadbalance", "", false));
    assert_eq!(knobs(&bed, "xlm0"), before, "set back at the next start");
    daemon.stop();
    assert_eq!(knobs(&bed, "xlm0"), before);
    assert_eq!(vlan(&bed), vlan_before, "and the VLAN offload with them");
}
