//! `engine = "xdp"`: every protocol with real frames through xlaggd whose distribution runs in
//! the XDP program, with the assertions the AF_XDP engine's tests make (every flow on one
//! member, the rr_limit pattern, failover order, broadcast copies, nothing on `none`), ping
//! and TCP through a host-mode laggN to a partner that checks checksums, no program left
//! after SIGKILL, and, for both engines, a master whose carrier goes left by the data path
//! itself while the control thread still holds it (a downdelay), and a hash seed that moves
//! about (N-1)/N of the flows once while a restart moves none. Needs root, ethtool and iperf3
//! (scripts/setup.sh installs them); fails otherwise, never skips.
//!
//! A veth takes frames redirected into its peer only while it runs XDP or GRO (a kernel
//! rule of XDP redirect): the partner and source ends get GRO here, as a NIC needs nothing.

mod common;

use std::time::Duration;

use common::{bench_bin, carriers, run, run_ok, serial, wait_until, Bed, Daemon, Sink};
use xlagg_bench::iperf::{checksum_errors, snmp, IperfRun};

const MEMBERS: usize = 4;

/// A bed whose far ends take redirected frames.
fn bed(members: usize, bridge: bool) -> Bed {
    let bed = Bed::up(members, bridge);
    for p in bed.partner_names() {
        run_ok(&mut bed.exec("ptr", &["ethtool", "-K", &p, "gro", "on"]));
    }
    run_ok(&mut bed.exec("src", &["ethtool", "-K", "xls0", "gro", "on"]));
    bed
}

fn config(bed: &Bed, proto: &str, extra: &str, host: bool) -> String {
    bed.config(proto, &format!("engine = \"xdp\"\n{extra}"), host)
}

/// Sends from one CPU, so the frames meet one per-CPU round-robin count.
fn send_pinned(bed: &Bed, flows: u32, per_flow: u32, first_seq: u64) {
    let bench = bench_bin();
    run_ok(&mut bed.exec(
        "src",
        &[
            "taskset",
            "-c",
            "0",
            bench.to_str().expect("utf-8 path"),
            "send",
            "--iface",
            "xls0",
            "--flows",
            &flows.to_string(),
            "--per-flow",
            &per_flow.to_string(),
            "--first-seq",
            &first_seq.to_string(),
        ],
    ));
}

fn xdp_lines(bed: &Bed) -> Vec<String> {
    bed.ip("app", &["-d", "-o", "link", "show"])
        .lines()
        .filter(|l| l.contains("xdp"))
        .map(str::to_string)
        .collect()
}

#[test]
fn loadbalance_in_the_xdp_engine_uses_every_member_and_keeps_each_flow_on_one() {
    let _serial = serial();
    let bed = bed(MEMBERS, false);
    let daemon = Daemon::start(&bed, &config(&bed, "loadbalance", "", false));
    // One program, on every member and the forward port.
    let lines = xdp_lines(&bed);
    for port in bed
        .member_names()
        .iter()
        .map(String::as_str)
        .chain(["xld0"])
    {
        assert!(
            lines.iter().any(|l| l.contains(&format!(": {port}"))),
            "{port} has no XDP program: {lines:?}"
        );
    }
    let sink = Sink::start(&bed);
    bed.send(1000, 3, 0);
    let report = sink.finish();
    let per: Vec<u64> = report.ports.iter().map(|p| p.frames).collect();
    assert_eq!(per.iter().sum::<u64>(), 3000, "every frame once: {per:?}");
    assert!(
        per.iter().all(|&n| n > 300),
        "every member carries its share: {per:?}"
    );
    for flow in 0..1000u32 {
        let holders: Vec<&str> = report
            .ports
            .iter()
            .filter(|p| p.flows.contains_key(&flow))
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(holders.len(), 1, "flow {flow} seen on {holders:?}");
    }
    let status = daemon.stop();
    assert!(
        status.contains("engine xdp"),
        "status names the engine: {status}"
    );
}

#[test]
fn roundrobin_in_the_xdp_engine_sends_pairs_in_member_order() {
    let _serial = serial();
    let bed = bed(MEMBERS, false);
    let _daemon = Daemon::start(&bed, &config(&bed, "roundrobin", "rr_limit = 2\n", false));
    let sink = Sink::start(&bed);
    send_pinned(&bed, 1, 40, 0);
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
fn failover_in_the_xdp_engine_uses_master_then_next_then_master() {
    let _serial = serial();
    let bed = bed(MEMBERS, false);
    let _daemon = Daemon::start(&bed, &config(&bed, "failover", "", false));
    let sink = Sink::start(&bed);
    let carrier = |up: bool| {
        move |bed: &Bed| {
            bed.ip("app", &["-o", "link", "show", "xlm0"])
                .contains("LOWER_UP")
                == up
        }
    };
    bed.send(10, 2, 0);
    bed.ip("ptr", &["link", "set", "xlp0", "down"]);
    wait_until(5, "xlm0 to lose carrier", || carrier(false)(&bed));
    std::thread::sleep(Duration::from_millis(300));
    bed.send(10, 2, 100);
    bed.ip("ptr", &["link", "set", "xlp0", "up"]);
    wait_until(5, "xlm0 to regain carrier", || carrier(true)(&bed));
    std::thread::sleep(Duration::from_millis(300));
    bed.send(10, 2, 200);
    let report = sink.finish();
    let map = carriers(&report);
    for (seq, ports) in &map {
        let expected = usize::from((100..200).contains(seq));
        assert_eq!(ports, &vec![expected], "frame {seq}: member {expected}");
    }
    let phases: Vec<usize> = (0..3)
        .map(|p| map.keys().filter(|s| **s / 100 == p).count())
        .collect();
    assert_eq!(phases, [20, 20, 20], "every frame of each phase arrives");
}

#[test]
fn the_xdp_engine_leaves_a_master_without_carrier_before_the_control_thread_does() {
    leaves_a_dead_master("xdp");
}

#[test]
fn the_afxdp_engine_leaves_a_master_without_carrier_before_the_control_thread_does() {
    leaves_a_dead_master("afxdp");
}

fn leaves_a_dead_master(engine: &str) {
    let _serial = serial();
    let bed = bed(MEMBERS, false);
    // The control thread keeps xlm0 for 5 s after its carrier goes (downdelay): frames sent
    // meanwhile reach the backup only because the data path leaves xlm0 by itself.
    let extra = format!("engine = \"{engine}\"\ndowndelay = 5000\n");
    let daemon = Daemon::start(&bed, &bed.config("failover", &extra, false));
    let sink = Sink::start(&bed);
    bed.send(10, 2, 0);
    bed.ip("ptr", &["link", "set", "xlp0", "down"]);
    wait_until(5, "xlm0 to lose carrier", || {
        !bed.ip("app", &["-o", "link", "show", "xlm0"])
            .contains("LOWER_UP")
    });
    // The first frames after the cut meet the dead member and mark it (they are lost);
    // everything after goes to the backup.
    bed.send(10, 2, 100);
    std::thread::sleep(Duration::from_millis(100));
    bed.send(10, 2, 200);
    let status = || {
        let out = common::xlaggctl(&daemon.socket, &["-j"]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("status JSON")
    };
    // Counted from the mark once the control thread looks (at the link event, or within a
    // second), whichever comes first.
    wait_until(
        4,
        &format!("{engine}: the status to count the data path leaving xlm0"),
        || status()[0]["ports"][0]["data_path_leaves"] == 1,
    );
    let out = common::xlaggctl(&daemon.socket, &["dump"]);
    let dump: serde_json::Value = serde_json::from_slice(&out.stdout).expect("dump is JSON");
    let events = dump["events"].as_array().expect("events");
    assert!(
        events.iter().any(|e| e["port"] == "xlm0"
            && e["text"]
                .as_str()
                .is_some_and(|t| t.contains("transmit refused"))),
        "{engine}: a 'transmit refused' event for xlm0: {events:?}"
    );
    let status = status();
    for m in 1..MEMBERS {
        assert_eq!(
            status[0]["ports"][m]["data_path_leaves"], 0,
            "{engine}: xlm{m} was left by the data path"
        );
    }
    if engine == "afxdp" {
        // The frames the kernel dropped for the dead master show in its drops (the workers
        // copy their counts twice a second).
        let refused = || {
            let out = common::xlaggctl(&daemon.socket, &["-j"]);
            let s: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
            s[0]["ports"][0]["drops"]["tx_refused"]
                .as_u64()
                .is_some_and(|n| n > 0)
        };
        wait_until(3, "xlm0's drops to count tx_refused", refused);
    }
    let report = sink.finish();
    let map = carriers(&report);
    for (seq, ports) in &map {
        match seq / 100 {
            0 => assert_eq!(ports, &vec![0], "frame {seq} before the cut: the master"),
            _ => assert_eq!(
                ports,
                &vec![1],
                "{engine}: frame {seq} after the cut: the backup"
            ),
        }
    }
    let late = map.keys().filter(|s| **s >= 200).count();
    assert_eq!(
        late, 20,
        "every frame sent once the master was marked reaches the backup"
    );
}

#[test]
fn broadcast_in_the_xdp_engine_copies_to_every_member_and_none_sends_nothing() {
    let _serial = serial();
    let bed = bed(MEMBERS, false);
    let daemon = Daemon::start(&bed, &config(&bed, "broadcast", "", false));
    let sink = Sink::start(&bed);
    bed.send(5, 4, 0);
    let report = sink.finish();
    for port in &report.ports {
        assert_eq!(
            port.frames, 20,
            "{} gets a copy of each of 20 frames",
            port.name
        );
    }
    daemon.stop();
    let _daemon = Daemon::start(&bed, &config(&bed, "none", "", false));
    let sink = Sink::start(&bed);
    bed.send(5, 4, 0);
    let report = sink.finish();
    let per: Vec<u64> = report.ports.iter().map(|p| p.frames).collect();
    assert!(per.iter().all(|&n| n == 0), "none sends nothing: {per:?}");
}

#[test]
fn ping_and_tcp_cross_a_host_mode_lagg_on_the_xdp_engine_and_sigkill_leaves_no_program() {
    let _serial = serial();
    let bed = bed(2, true);
    // The partner behaves like a wire: checksums complete in the bytes it sends.
    for p in bed.partner_names() {
        run_ok(&mut bed.exec("ptr", &["ethtool", "-K", &p, "tx", "off"]));
    }
    let extra = "addresses = [\"10.77.0.1/24\"]\n";
    let daemon = Daemon::start(&bed, &config(&bed, "loadbalance", extra, true));
    wait_until(10, "a first ping through lagg0", || {
        run(&mut bed.exec("app", &["ping", "-c", "1", "-W", "1", "10.77.0.2"]))
            .status
            .success()
    });
    let ping = run(&mut bed.exec(
        "app",
        &["ping", "-c", "20", "-i", "0.05", "-W", "2", "10.77.0.2"],
    ));
    let text = String::from_utf8_lossy(&ping.stdout);
    assert!(
        ping.status.success() && text.contains(" 0% packet loss"),
        "{text}"
    );
    let (app, ptr) = (bed.ns("app"), bed.ns("ptr"));
    for reverse in [false, true] {
        let before = snmp(&ptr).expect("snmp");
        let report = IperfRun {
            server_ns: &ptr,
            server_addr: "10.77.0.2",
            client_ns: &app,
            client_addr: "10.77.0.1",
            bytes: 50 << 20,
            seconds: None,
            streams: 1,
            reverse,
            udp_rate: None,
            port: 5201,
        }
        .run(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("TCP through lagg0 on the XDP engine failed: {e:#}"));
        eprintln!(
            "TCP through lagg0 (XDP engine, reverse {reverse}): {:.2} Gbit/s, {} retransmits",
            report.bits_per_second / 1e9,
            report.retransmits
        );
        let after = snmp(&ptr).expect("snmp");
        assert_eq!(
            checksum_errors(&after) - checksum_errors(&before),
            0,
            "the partner counted checksum errors in what lagg0 sent"
        );
    }
    assert!(
        !xdp_lines(&bed).is_empty(),
        "programs attached while it runs"
    );
    daemon.kill();
    let left = xdp_lines(&bed);
    assert!(left.is_empty(), "no XDP program after SIGKILL: {left:?}");
}

fn ctl(daemon: &Daemon, args: &[&str]) {
    let out = common::xlaggctl(&daemon.socket, args);
    assert!(
        out.status.success(),
        "xlaggctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Which member carried each flow (the frames of a flow all on one).
fn placement(
    report: &xlagg_bench::packet_tools::SinkReport,
) -> std::collections::BTreeMap<u32, usize> {
    let mut out = std::collections::BTreeMap::new();
    for (i, port) in report.ports.iter().enumerate() {
        for flow in port.flows.keys() {
            assert!(out.insert(*flow, i).is_none(), "flow {flow} on two members");
        }
    }
    out
}

#[test]
fn members_leave_and_join_a_running_xdp_engine_lagg_moving_only_their_flows() {
    let _serial = serial();
    let bed = bed(MEMBERS, false);
    let daemon = Daemon::start(&bed, &config(&bed, "loadbalance", "", false));
    let round = |first_seq: u64| {
        let sink = Sink::start(&bed);
        bed.send(400, 2, first_seq);
        placement(&sink.finish())
    };
    let before = round(0);
    assert_eq!(before.len(), 400);
    ctl(&daemon, &["lagg0", "-laggport", "xlm3"]);
    let lines = xdp_lines(&bed);
    assert!(
        !lines.iter().any(|l| l.contains(": xlm3")),
        "the member that left keeps no program: {lines:?}"
    );
    let without = round(1000);
    assert_eq!(without.len(), 400, "every flow still arrives");
    for (flow, &m) in &before {
        if m != 3 {
            assert_eq!(
                without[flow], m,
                "flow {flow} moved though its member stayed"
            );
        } else {
            assert_ne!(
                without[flow], 3,
                "flow {flow} still on the member that left"
            );
        }
    }
    ctl(&daemon, &["lagg0", "laggport", "xlm3"]);
    let again = round(2000);
    assert_eq!(again.len(), 400);
    let moved: Vec<_> = again
        .iter()
        .filter(|(f, m)| without[f] != **m)
        .map(|(_, m)| *m)
        .collect();
    assert!(
        moved.iter().all(|&m| m == 3) && moved.len() > 50,
        "the member that joined takes its share and only it gains flows: {} moved",
        moved.len()
    );
    drop(daemon);
}

/// A veth member whose far end runs neither XDP nor GRO refuses every XDP redirect before any
/// flush. The redirect watch marks it, so its flows go to the members that take them, counts
/// the refused frames on it and says why in the log and the timeline, with the fix.
#[test]
fn a_member_that_refuses_the_xdp_engines_redirects_is_left_and_explained() {
    let _serial = serial();
    let bed = bed(MEMBERS, false);
    // xlp0 takes nothing the XDP engine redirects to xlm0.
    run_ok(&mut bed.exec("ptr", &["ethtool", "-K", "xlp0", "gro", "off"]));
    let daemon = Daemon::start(&bed, &config(&bed, "loadbalance", "", false));
    let sink = Sink::start(&bed);
    bed.send(64, 4, 0);
    std::thread::sleep(Duration::from_millis(300));
    bed.send(64, 4, 1000);
    let report = sink.finish();
    let late: u64 = report
        .ports
        .iter()
        .map(|p| p.seqs.iter().filter(|s| **s >= 1000).count() as u64)
        .sum();
    assert_eq!(
        late,
        256,
        "once xlm0 is marked, every frame reaches a member that takes it: {:?}",
        report.ports.iter().map(|p| p.frames).collect::<Vec<_>>()
    );
    let status = || {
        let out = common::xlaggctl(&daemon.socket, &["-j"]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("status JSON")
    };
    wait_until(4, "xlm0 counted as left by the data path", || {
        status()[0]["ports"][0]["data_path_leaves"]
            .as_u64()
            .is_some_and(|n| n >= 1)
    });
    let s = status();
    assert!(
        s[0]["ports"][0]["drops"]["not_redirected"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "the refused frames are counted on xlm0: {s}"
    );
    let out = common::xlaggctl(&daemon.socket, &["dump"]);
    let dump: serde_json::Value = serde_json::from_slice(&out.stdout).expect("dump is JSON");
    assert!(
        dump["events"].as_array().expect("events").iter().any(
            |e| e["port"] == "xlm0" && e["text"].as_str().is_some_and(|t| t.contains("gro on"))
        ),
        "an event says why and what to do: {}",
        dump["events"]
    );
}

/// `hash_seed` on both engines: a restart on the same config places every flow where it was
/// (the default seed is fixed, not drawn per process), and another seed, set at run time,
/// moves about (N-1)/N of the flows once, says so in the event log, and keeps each flow on
/// one member.
#[test]
fn a_new_hash_seed_moves_about_three_flows_in_four_and_a_restart_none() {
    let _serial = serial();
    let bed = bed(MEMBERS, false);
    for engine in ["afxdp", "xdp"] {
        let cfg = bed.config("loadbalance", &format!("engine = \"{engine}\""), false);
        let round = |first_seq: u64| {
            let sink = Sink::start(&bed);
            bed.send(400, 2, first_seq);
            let placed = placement(&sink.finish());
            assert_eq!(placed.len(), 400, "{engine}: every flow arrives");
            placed
        };
        let daemon = Daemon::start(&bed, &cfg);
        let before = round(0);
        daemon.kill();
        let daemon = Daemon::start(&bed, &cfg);
        let restarted = round(1000);
        assert_eq!(
            before, restarted,
            "{engine}: a restart on the same config moves no flow"
        );
        ctl(&daemon, &["lagg0", "hash_seed", "7"]);
        let seeded = round(2000);
        let moved = seeded.iter().filter(|(f, m)| before[f] != **m).count();
        let share = moved as f64 / 400.0;
        println!("{engine}: hash_seed 7 moved {moved} of 400 flows ({share:.2}; 3/4 expected)");
        assert!(
            (0.6..=0.9).contains(&share),
            "{engine}: another seed moves about 3 flows in 4 over 4 members: {moved} of 400"
        );
        assert!(
            daemon.told("hash_seed 7: flows rehashed"),
            "{engine}: the event log says the flows moved"
        );
        drop(daemon);
    }
}
