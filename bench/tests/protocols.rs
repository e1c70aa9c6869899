//! Every lagg protocol with real frames through xlaggd in the namespace test bed: the sink on
//! the partner side records which member carried each frame. Needs root; fails otherwise.

mod common;

use std::time::Duration;

use common::{carriers, serial, wait_until, Bed, Daemon, Sink};

const MEMBERS: usize = 4;

#[test]
fn loadbalance_uses_every_member_and_keeps_each_flow_on_one() {
    let _serial = serial();
    let bed = Bed::up(MEMBERS, false);
    let daemon = Daemon::start(&bed, &bed.config("loadbalance", "", false));
    let sink = Sink::start(&bed);
    bed.send(1000, 3, 0);
    let report = sink.finish();
    let total: u64 = report.ports.iter().map(|p| p.frames).sum();
    assert_eq!(
        total,
        3000,
        "every frame arrives exactly once: {:?}",
        report.ports.iter().map(|p| p.frames).collect::<Vec<_>>()
    );
    for port in &report.ports {
        assert!(
            port.frames > 0,
            "{} carried nothing: loadbalance must use every member",
            port.name
        );
    }
    for flow in 0..1000u32 {
        let holders: Vec<&str> = report
            .ports
            .iter()
            .filter(|p| p.flows.contains_key(&flow))
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(holders.len(), 1, "flow {flow} seen on {holders:?}");
        let port = report
            .ports
            .iter()
            .find(|p| p.name == holders[0])
            .expect("holder");
        assert_eq!(
            port.flows[&flow], 3,
            "flow {flow}: all three frames on {}",
            port.name
        );
    }
    let status = daemon.stop();
    assert!(
        status.contains("xld0"),
        "final status table printed: {status}"
    );
}

#[test]
fn roundrobin_with_rr_limit_2_sends_pairs_in_member_order() {
    let _serial = serial();
    let bed = Bed::up(MEMBERS, false);
    let _daemon = Daemon::start(&bed, &bed.config("roundrobin", "rr_limit = 2\n", false));
    let sink = Sink::start(&bed);
    bed.send(1, 40, 0);
    let report = sink.finish();
    let map = carriers(&report);
    assert_eq!(map.len(), 40, "every frame arrives: {map:?}");
    for (seq, ports) in &map {
        let expected = (*seq as usize / 2) % MEMBERS;
        assert_eq!(
            ports,
            &vec![expected],
            "frame {seq} should go to member {expected} (pairs in turn)"
        );
    }
}

#[test]
fn failover_uses_master_then_next_port_then_master_again() {
    let _serial = serial();
    let bed = Bed::up(MEMBERS, false);
    let _daemon = Daemon::start(&bed, &bed.config("failover", "", false));
    let sink = Sink::start(&bed);
    let carrier = |up: bool| {
        move |bed: &Bed| {
            let out = bed.ip("app", &["-o", "link", "show", "xlm0"]);
            out.contains("LOWER_UP") == up
        }
    };
    bed.send(10, 2, 0);
    bed.ip("ptr", &["link", "set", "xlp0", "down"]);
    let down = carrier(false);
    wait_until(5, "xlm0 to lose carrier", || down(&bed));
    // xlaggd learns of it from the kernel notification (its safety-net re-read is 10 s here).
    std::thread::sleep(Duration::from_millis(300));
    bed.send(10, 2, 100);
    bed.ip("ptr", &["link", "set", "xlp0", "up"]);
    let up = carrier(true);
    wait_until(5, "xlm0 to regain carrier", || up(&bed));
    std::thread::sleep(Duration::from_millis(300));
    bed.send(10, 2, 200);
    let report = sink.finish();
    let map = carriers(&report);
    for (seq, ports) in &map {
        let expected = if (100..200).contains(seq) { 1 } else { 0 };
        assert_eq!(
            ports,
            &vec![expected],
            "frame {seq}: phase {} should use member {expected}",
            seq / 100
        );
    }
    let phases: Vec<usize> = (0..3)
        .map(|p| map.keys().filter(|s| **s / 100 == p).count())
        .collect();
    assert_eq!(phases, [20, 20, 20], "every frame of each phase arrives");
}

#[test]
fn broadcast_reaches_every_member() {
    let _serial = serial();
    let bed = Bed::up(MEMBERS, false);
    let _daemon = Daemon::start(&bed, &bed.config("broadcast", "", false));
    let sink = Sink::start(&bed);
    bed.send(5, 10, 0);
    let report = sink.finish();
    for port in &report.ports {
        assert_eq!(
            port.frames, 50,
            "{} must get a copy of each of the 50 frames",
            port.name
        );
    }
    let map = carriers(&report);
    assert_eq!(map.len(), 50);
    assert!(map.values().all(|p| p.len() == MEMBERS));
}

#[test]
fn none_reaches_no_member_and_the_interface_stays() {
    let _serial = serial();
    let bed = Bed::up(MEMBERS, false);
    let daemon = Daemon::start(&bed, &bed.config("none", "", true));
    let sink = Sink::start(&bed);
    // Host mode: lagg0 exists and is up even though it carries nothing.
    let lagg0 = bed.ip("app", &["-o", "link", "show", "lagg0"]);
    assert!(lagg0.contains("UP"), "lagg0 stays: {lagg0}");
    bed.send_on("app", "lagg0", 50, 2, 0);
    let report = sink.finish();
    for port in &report.ports {
        assert_eq!(
            port.frames, 0,
            "{} carried frames under laggproto none",
            port.name
        );
    }
    // The frames did reach the engine through lagg0 and were dropped there, not lost earlier
    // (the host path's upper port is lagg0 itself, where they are refused to the sender).
    let status = daemon.stop();
    let upper = status
        .lines()
        .find(|l| l.trim_start().starts_with("lagg0 "))
        .unwrap_or_else(|| panic!("no lagg0 line in the final status:\n{status}"));
    // The workers count what they receive, then what they drop; the kernel's engines count
    // a dropped frame under its reason only.
    let rx: u64 = upper
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let dropped: u64 = upper
        .split_whitespace()
        .find_map(|w| w.strip_prefix("no_active_port="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        rx.max(dropped) >= 100 && dropped >= 100,
        "the engine took the 100 frames sent on lagg0 and dropped them as protocol none: {upper}"
    );
}

#[test]
fn two_workers_on_two_queues_share_the_load_and_keep_each_flow_on_one_member() {
    let _serial = serial();
    let bed = Bed::up_with_queues(2, false, 2);
    let _daemon = Daemon::start(&bed, &bed.config("loadbalance", "cores = [0, 1]\n", false));
    let sink = Sink::start(&bed);
    bed.send(1000, 3, 0);
    let report = sink.finish();
    let total: u64 = report.ports.iter().map(|p| p.frames).sum();
    assert_eq!(total, 3000, "every frame arrives exactly once");
    for flow in 0..1000u32 {
        let holders = report
            .ports
            .iter()
            .filter(|p| p.flows.contains_key(&flow))
            .count();
        assert_eq!(
            holders, 1,
            "flow {flow} on {holders} members: both workers must use one table"
        );
    }
    // Both receive queues of the forward port, so both workers, carried traffic.
    let stats = common::run_ok(&mut bed.exec("app", &["ethtool", "-S", "xld0"]));
    let per_queue: Vec<u64> = (0..2)
        .map(|q| {
            stats
                .lines()
                .find(|l| {
                    l.trim_start()
                        .starts_with(&format!("rx_queue_{q}_xdp_packets:"))
                })
                .and_then(|l| l.split(':').nth(1))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        })
        .collect();
    assert!(
        per_queue.iter().all(|&n| n > 100),
        "both queues busy: {per_queue:?}\n{stats}"
    );
}
