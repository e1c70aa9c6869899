//! The host path (`engine = "tc"`, host mode's default): laggN's own traffic stays in the
//! kernel's skb path with its offloads. What it must show beside what every host-mode test
//! shows through it (wire.rs: TCP both ways to a partner that checks checksums, UDP, a VLAN,
//! LACP against Open vSwitch; jumbo.rs: MTU 9000):
//! - it is the default in host mode, laggN keeps its segmentation and checksum offloads and
//!   the members get GRO, all set back when the lagg stops;
//! - `hw_offload = false` turns segmentation, GRO and checksumming off on laggN and the
//!   members, as TrueNAS means it;
//! - the data path leaves a member without carrier before the control thread does;
//! - one TCP stream survives repeated carrier losses of its member in failover and in lacp
//!   (against Open vSwitch), with its longest stall printed.
//!
//! Needs root, ethtool, iperf3 and Open vSwitch (scripts/setup.sh installs them); fails
//! otherwise, never skips.

mod common;

use std::time::Duration;

use common::{carriers, run, serial, wait_until, Bed, Daemon, Sink};

const MEMBERS: usize = 2;

/// `ethtool -k` of `iface` in namespace `role`, as `name -> on`.
fn features(bed: &Bed, role: &str, iface: &str) -> std::collections::BTreeMap<String, bool> {
    let out = run(&mut bed.exec(role, &["ethtool", "-k", iface]));
    assert!(out.status.success(), "ethtool -k {iface}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.trim().split_once(':')?;
            let on = rest.split_whitespace().next()? == "on";
            Some((name.to_string(), on))
        })
        .collect()
}

fn status(daemon: &Daemon) -> serde_json::Value {
    let out = common::xlaggctl(&daemon.socket, &["-j"]);
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

#[test]
fn host_mode_runs_the_tc_engine_by_default_and_keeps_laggns_offloads() {
    let _serial = serial();
    let bed = Bed::up(MEMBERS, true);
    let before = features(&bed, "app", "xlm0");
    assert!(
        !before["generic-receive-offload"],
        "a veth starts without GRO"
    );
    let daemon = Daemon::start(
        &bed,
        &bed.config("loadbalance", "addresses = [\"10.77.0.1/24\"]\n", true),
    );
    let s = status(&daemon);
    assert_eq!(s[0]["engine"], "tc", "host mode's default engine: {s}");
    let lagg0 = features(&bed, "app", "lagg0");
    for f in [
        "tcp-segmentation-offload",
        "generic-segmentation-offload",
        "tx-checksumming",
    ] {
        assert!(lagg0[f], "lagg0 keeps {f} on the host path");
    }
    for m in bed.member_names() {
        assert!(
            features(&bed, "app", &m)["generic-receive-offload"],
            "{m}: GRO on, so the host path takes coalesced skbs"
        );
    }
    let ping = run(&mut bed.exec(
        "app",
        &["ping", "-c", "2", "-i", "0.2", "-W", "1", "10.77.0.2"],
    ));
    assert!(ping.status.success(), "ping through lagg0");
    daemon.stop();
    assert_eq!(
        features(&bed, "app", "xlm0")["generic-receive-offload"],
        before["generic-receive-offload"],
        "GRO set back at stop"
    );
}

#[test]
fn hw_offload_false_turns_offloads_off_on_lagg0_and_the_members_and_back_at_stop() {
    let _serial = serial();
    let bed = Bed::up(MEMBERS, true);
    let before = features(&bed, "app", "xlm1");
    let daemon = Daemon::start(
        &bed,
        &bed.config(
            "failover",
            "addresses = [\"10.77.0.1/24\"]\nhw_offload = false\n",
            true,
        ),
    );
    let off = [
        "tcp-segmentation-offload",
        "generic-segmentation-offload",
        "generic-receive-offload",
        "tx-checksumming",
        "rx-checksumming",
    ];
    for iface in ["lagg0", "xlm0", "xlm1"] {
        let f = features(&bed, "app", iface);
        for name in off {
            assert!(!f[name], "{iface}: {name} off with hw_offload = false");
        }
    }
    // Everything still crosses, segmented and checksummed in software.
    let ping = run(&mut bed.exec(
        "app",
        &["ping", "-c", "2", "-i", "0.2", "-W", "1", "10.77.0.2"],
    ));
    assert!(ping.status.success(), "ping through lagg0 without offloads");
    daemon.stop();
    let after = features(&bed, "app", "xlm1");
    for name in off {
        assert_eq!(after[name], before[name], "xlm1: {name} set back at stop");
    }
}

#[test]
fn the_host_path_leaves_a_master_without_carrier_before_the_control_thread_does() {
    let _serial = serial();
    let bed = Bed::up(MEMBERS, false);
    // The control thread keeps xlm0 for 5 s after its carrier goes (downdelay): frames lagg0
    // sends meanwhile reach the backup only because the data path leaves xlm0 by itself.
    let daemon = Daemon::start(&bed, &bed.config("failover", "downdelay = 5000\n", true));
    let sink = Sink::start(&bed);
    bed.send_on("app", "lagg0", 10, 2, 0);
    bed.ip("ptr", &["link", "set", "xlp0", "down"]);
    wait_until(5, "xlm0 to lose carrier", || {
        !bed.ip("app", &["-o", "link", "show", "xlm0"])
            .contains("LOWER_UP")
    });
    // The first skb queued to the dead member marks it (and is lost); the rest go to the
    // backup.
    bed.send_on("app", "lagg0", 10, 2, 100);
    std::thread::sleep(Duration::from_millis(100));
    bed.send_on("app", "lagg0", 10, 2, 200);
    wait_until(4, "the status to count the data path leaving xlm0", || {
        status(&daemon)[0]["ports"][0]["data_path_leaves"] == 1
    });
    assert_eq!(status(&daemon)[0]["ports"][1]["data_path_leaves"], 0);
    let report = sink.finish();
    let map = carriers(&report);
    for (seq, ports) in &map {
        match seq / 100 {
            0 => assert_eq!(ports, &vec![0], "frame {seq} before the cut: the master"),
            _ => assert_eq!(ports, &vec![1], "frame {seq} after the cut: the backup"),
        }
    }
    assert_eq!(
        map.keys().filter(|s| **s >= 200).count(),
        20,
        "every frame sent once the master was marked reaches the backup"
    );
}

#[test]
fn a_tcp_stream_survives_member_flaps_in_failover_and_lacp() {
    let _serial = serial();
    common::require_root();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = run(std::process::Command::new(common::bench_bin())
        .current_dir(&repo)
        .args(["stream", "--flaps", "5", "--protocols", "failover,lacp"]));
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}");
    assert!(
        out.status.success(),
        "a stream died:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for proto in ["failover", "lacp"] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(proto))
            .unwrap_or_else(|| panic!("no {proto} row:\n{text}"));
        assert!(
            line.trim_end().ends_with("true"),
            "{proto} survived: {line}"
        );
    }
}
