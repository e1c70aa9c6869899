//! Jumbo frames (MTU 9000): 8000-byte UDP frames of 1000 flows through loadbalance, failover,
//! lacp (against Open vSwitch), roundrobin and broadcast, each frame checked whole (length and every payload byte)
//! and in order per flow at the partner; an 8900-byte ping and TCP through a host-mode laggN;
//! a member below the lagg's MTU refused at start and at a change, and one lowered at run
//! time taken out; the MTU changed on a running lagg without a restart. Needs root,
//! openvswitch-switch, iperf3 (scripts/setup.sh installs them); fails otherwise, never skips.

mod common;

use std::path::Path;
use std::time::Duration;

use common::ovs::Ovs;
use common::{run, run_ok, serial, wait_until, Bed, Daemon, Sink};
use xlagg_bench::iperf::{checksum_errors, snmp, IperfRun};
use xlagg_bench::packet_tools::SinkReport;

const FLOWS: u32 = 1000;
const PER_FLOW: u32 = 3;
/// Wire size of the test frames, FCS included.
const SIZE: u32 = 8000;

fn set_mtu(bed: &Bed, role: &str, iface: &str, mtu: u32) {
    bed.ip(role, &["link", "set", iface, "mtu", &mtu.to_string()]);
}

/// MTU 9000 on every link of the bed: the source and forward ports, the members and the
/// partner's ports (and its bridge, when there is one).
fn jumbo_bed(members: usize, bridge: bool) -> Bed {
    let bed = Bed::up(members, bridge);
    set_mtu(&bed, "src", "xls0", 9000);
    set_mtu(&bed, "app", "xld0", 9000);
    for (m, p) in bed.member_names().iter().zip(bed.partner_names()) {
        set_mtu(&bed, "app", m, 9000);
        set_mtu(&bed, "ptr", &p, 9000);
    }
    if bridge {
        set_mtu(&bed, "ptr", "xlbr0", 9000);
    }
    bed
}

fn ctl(socket: &Path, args: &[&str]) -> Result<String, String> {
    let out = common::xlaggctl(socket, args);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn status(socket: &Path) -> serde_json::Value {
    let text = ctl(socket, &["-j"]).expect("status");
    serde_json::from_str(&text).expect("JSON")
}

/// Sends `FLOWS * PER_FLOW` jumbo test frames into the forward port, paced so that no queue
/// on the way has to hold more than a few milliseconds of them.
fn send_jumbo(bed: &Bed, first_seq: u64) {
    run_ok(&mut bed.sender(FLOWS, PER_FLOW, first_seq, SIZE, 5000));
}

/// Every frame arrived once, whole, each flow on one port and in send order there. Returns
/// the frames per port.
fn check_whole_and_in_order(what: &str, report: &SinkReport, first_seq: u64) -> Vec<u64> {
    check_delivery(what, report, first_seq, 1, true)
}

/// Every frame arrived `copies` times (once per port for broadcast), whole and in send order
/// on each port; with `one_port`, each flow on one port only. Returns the frames per port.
fn check_delivery(
    what: &str,
    report: &SinkReport,
    first_seq: u64,
    copies: u64,
    one_port: bool,
) -> Vec<u64> {
    let sent = u64::from(FLOWS * PER_FLOW) * copies;
    let dropped: u64 = report.ports.iter().map(|p| p.sink_dropped).sum();
    assert_eq!(dropped, 0, "{what}: the sink's own socket dropped frames");
    let got: u64 = report.ports.iter().map(|p| p.frames).sum();
    assert_eq!(got, sent, "{what}: {got} of {sent} frames arrived");
    for p in &report.ports {
        assert_eq!(
            p.damaged, 0,
            "{what}: {} frames on {} were not whole",
            p.damaged, p.name
        );
    }
    let mut port_of = std::collections::BTreeMap::new();
    for (i, p) in report.ports.iter().enumerate() {
        let mut last = std::collections::BTreeMap::new();
        for &seq in &p.seqs {
            let flow = (seq - first_seq) % u64::from(FLOWS);
            if let Some(prev) = last.insert(flow, seq) {
                assert!(
                    prev < seq,
                    "{what}: flow {flow} reordered on {}: {seq} after {prev}",
                    p.name
                );
            }
            let first = *port_of.entry(flow).or_insert(i);
            assert!(!one_port || first == i, "{what}: flow {flow} on two ports");
        }
    }
    report.ports.iter().map(|p| p.frames).collect()
}

#[test]
fn jumbo_frames_of_1000_flows_cross_whole_and_in_order_for_every_protocol() {
    let _serial = serial();
    for proto in ["loadbalance", "failover", "lacp", "roundrobin", "broadcast"] {
        let bed = jumbo_bed(2, false);
        let ovs = (proto == "lacp").then(|| Ovs::start(&bed));
        let extra = if proto == "lacp" {
            "mtu = 9000\nlacp_fast_timeout = true\n"
        } else {
            "mtu = 9000\n"
        };
        let config = bed.config(proto, extra, false).replace(
            "link_poll_ms = 10000",
            "link_poll_ms = 10000\nstatus_interval_ms = 100",
        );
        let mut daemon = Daemon::start(&bed, &config);
        if proto == "lacp" {
            daemon.wait_status(20, "both ports distributing against Open vSwitch", |f| {
                ["xlm0", "xlm1"]
                    .iter()
                    .all(|p| f.get(*p).is_some_and(|s| s.contains("DISTRIBUTING")))
            });
        }
        let sink = Sink::start(&bed);
        send_jumbo(&bed, 0);
        let report = sink.finish();
        let per_port = match proto {
            // Round-robin spreads each flow over the members (in order on each); broadcast
            // sends every frame on each.
            "roundrobin" => check_delivery(proto, &report, 0, 1, false),
            "broadcast" => check_delivery(proto, &report, 0, 2, false),
            _ => check_whole_and_in_order(proto, &report, 0),
        };
        eprintln!(
            "{proto}: {FLOWS} flows x {PER_FLOW} frames of {SIZE} bytes, per member {per_port:?}"
        );
        if proto == "failover" {
            assert_eq!(
                per_port[1], 0,
                "failover: the backup carried frames: {per_port:?}"
            );
        } else {
            assert!(
                per_port.iter().all(|&n| n > 0),
                "{proto}: a member carried nothing: {per_port:?}"
            );
        }
        let s = status(&daemon.socket);
        let upper = &s[0]["upper_port"];
        assert_eq!(
            upper["rx_packets"].as_u64(),
            Some(u64::from(FLOWS * PER_FLOW)),
            "{proto}: the forward port counts packets, not buffers: {upper}"
        );
        drop(daemon);
        drop(ovs);
    }
}

#[test]
fn an_8900_byte_ping_and_tcp_cross_a_host_mode_lagg_at_mtu_9000() {
    let _serial = serial();
    let bed = jumbo_bed(2, true);
    // The partner behaves like a wire: checksums complete in the bytes it sends.
    for p in bed.partner_names() {
        run_ok(&mut bed.exec("ptr", &["ethtool", "-K", &p, "tx", "off"]));
    }
    let config = bed.config(
        "loadbalance",
        "mtu = 9000\naddresses = [\"10.77.0.1/24\"]\n",
        true,
    );
    let _daemon = Daemon::start(&bed, &config);
    let link = bed.ip("app", &["-o", "link", "show", "lagg0"]);
    assert!(
        link.contains("mtu 9000"),
        "lagg0 is not at MTU 9000: {link}"
    );
    wait_until(10, "a first ping through lagg0", || {
        run(&mut bed.exec("app", &["ping", "-c", "1", "-W", "1", "10.77.0.2"]))
            .status
            .success()
    });
    // 8900 bytes of ICMP payload, not to be fragmented: 8928-byte packets both ways.
    let ping = run(&mut bed.exec(
        "app",
        &[
            "ping",
            "-c",
            "5",
            "-i",
            "0.2",
            "-W",
            "2",
            "-M",
            "do",
            "-s",
            "8900",
            "10.77.0.2",
        ],
    ));
    let text = String::from_utf8_lossy(&ping.stdout);
    assert!(
        ping.status.success(),
        "8900-byte ping through lagg0 failed:\n{text}"
    );
    assert!(
        text.contains("8908 bytes from"),
        "replies were not whole: {text}"
    );
    let (app, ptr) = (bed.ns("app"), bed.ns("ptr"));
    let before = snmp(&ptr).expect("snmp");
    let report = IperfRun {
        server_ns: &ptr,
        server_addr: "10.77.0.2",
        client_ns: &app,
        client_addr: "10.77.0.1",
        bytes: 50 << 20,
        seconds: None,
        streams: 1,
        reverse: false,
        udp_rate: None,
        port: 5201,
    }
    .run(Duration::from_secs(60))
    .unwrap_or_else(|e| panic!("TCP through lagg0 at MTU 9000 failed: {e:#}"));
    eprintln!(
        "TCP at MTU 9000 through lagg0: {:.2} Gbit/s, {} retransmits",
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

#[test]
fn a_member_below_the_lagg_mtu_is_refused_and_one_lowered_at_run_time_is_taken_out() {
    let _serial = serial();
    let bed = jumbo_bed(3, false);
    set_mtu(&bed, "app", "xlm1", 1500);
    set_mtu(&bed, "app", "xlm2", 1500);
    let config = bed
        .config("loadbalance", "mtu = 9000\n", false)
        .replace(", \"xlm2\"", "");
    let daemon = Daemon::start(&bed, &config);
    // At start: the lagg does not run, and says which member and what to do.
    wait_until(10, "lagg0 failed on xlm1's MTU", || {
        let s = status(&daemon.socket);
        s[0]["state"] == "failed"
            && s[0]["error"].as_str().is_some_and(|e| {
                e.contains("xlm1 has MTU 1500, below lagg0's mtu 9000")
                    && e.contains("ip link set dev xlm1 mtu 9000")
            })
    });
    // Raised: the lagg starts on its own (a link notification retries it).
    set_mtu(&bed, "app", "xlm1", 9000);
    wait_until(10, "lagg0 running once xlm1 carries 9000", || {
        status(&daemon.socket)[0]["active_ports"] == 2
    });
    // A change that adds a member below the MTU is refused, and names it; nothing changes.
    let err = ctl(&daemon.socket, &["lagg0", "laggport", "xlm2"]).expect_err("refused");
    assert!(err.contains("xlm2 has MTU 1500"), "{err}");
    let s = status(&daemon.socket);
    assert_eq!(s[0]["ports"].as_array().map(Vec::len), Some(2), "{s}");
    // Lowered at run time: taken out, the other member carries every flow, whole.
    set_mtu(&bed, "app", "xlm1", 1500);
    wait_until(5, "xlm1 taken out", || {
        status(&daemon.socket)[0]["active_ports"] == 1
    });
    let sink = Sink::start(&bed);
    send_jumbo(&bed, 0);
    let per_port = check_whole_and_in_order("xlm1 at 1500", &sink.finish(), 0);
    assert_eq!(
        per_port[1], 0,
        "the member at MTU 1500 carried frames: {per_port:?}"
    );
    // Raised again: back in.
    set_mtu(&bed, "app", "xlm1", 9000);
    wait_until(5, "xlm1 back", || {
        status(&daemon.socket)[0]["active_ports"] == 2
    });
}

#[test]
fn the_mtu_of_a_running_lagg_changes_in_place() {
    let _serial = serial();
    let bed = jumbo_bed(2, false);
    let daemon = Daemon::start(&bed, &bed.config("loadbalance", "", false));
    wait_until(10, "lagg0 running", || {
        status(&daemon.socket)[0]["active_ports"] == 2
    });
    bed.send(16, 10, 0);
    std::thread::sleep(Duration::from_millis(700));
    let before = status(&daemon.socket)[0]["upper_port"]["rx_packets"]
        .as_u64()
        .unwrap_or(0);
    assert!(before >= 160, "{before} frames counted before the change");
    ctl(&daemon.socket, &["lagg0", "mtu", "9000"]).expect("mtu 9000");
    let s = status(&daemon.socket);
    assert_eq!(s[0]["mtu"], 9000, "{s}");
    assert!(
        s[0]["upper_port"]["rx_packets"].as_u64().unwrap_or(0) >= before,
        "the counters started again: the lagg was restarted, not changed: {s}"
    );
    let sink = Sink::start(&bed);
    send_jumbo(&bed, 1_000_000);
    check_whole_and_in_order("after mtu 9000", &sink.finish(), 1_000_000);
    // And back down, in place too.
    ctl(&daemon.socket, &["lagg0", "mtu", "1500"]).expect("mtu 1500");
    let s = status(&daemon.socket);
    assert_eq!(s[0]["mtu"], 1500, "{s}");
    assert_eq!(s[0]["active_ports"], 2, "{s}");
}
