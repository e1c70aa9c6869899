//! What users carry through a host-mode laggN — TCP, UDP and a VLAN subinterface — against a
//! partner that behaves like a real wire: its veths have transmit checksum and VLAN offloads
//! off, so a segment that leaves a member with only a partial checksum is counted in the
//! partner's `InCsumErrors` and dropped, and a VLAN tag that rides in skb metadata instead of
//! the frame's bytes shows as an untagged frame. Needs root, iperf3 and tcpdump (scripts/setup.sh
//! installs them); fails otherwise, never skips.

mod common;

use std::time::Duration;

use common::ovs::Ovs;
use common::{run_ok, serial, Bed, Daemon};
use xlagg_bench::iperf::{checksum_errors, snmp, IperfRun};

const LAGG_ADDR: &str = "10.77.0.1";
const PARTNER_ADDR: &str = "10.77.0.2";
/// Bytes per direction: enough for TCP to reach its steady state and use every member.
const BULK: u64 = 100 << 20;

/// The partner's ports as a wire sees them: what leaves them carries its checksum and its VLAN
/// tag in the bytes.
fn wire_partner(bed: &Bed, ports: &[String]) {
    for p in ports {
        run_ok(&mut bed.exec("ptr", &["ethtool", "-K", p, "tx", "off", "txvlan", "off"]));
    }
}

fn host_lagg(bed: &Bed, proto: &str, extra: &str) -> Daemon {
    let config = bed
        .config(
            proto,
            &format!("addresses = [\"{LAGG_ADDR}/24\"]\n{extra}"),
            true,
        )
        .replace(
            "link_poll_ms = 10000",
            "link_poll_ms = 10000\nstatus_interval_ms = 100",
        );
    Daemon::start(bed, &config)
}

/// TCP both ways (at least [`BULK`] bytes each) and UDP, then no checksum error on either side.
fn bulk_both_ways(bed: &Bed, what: &str, server: &str, client: &str) {
    let (app, ptr) = (bed.ns("app"), bed.ns("ptr"));
    let before = (snmp(&ptr).expect("snmp"), snmp(&app).expect("snmp"));
    for reverse in [false, true] {
        let report = IperfRun {
            server_ns: &ptr,
            server_addr: server,
            client_ns: &app,
            client_addr: client,
            bytes: BULK,
            reverse,
            udp_rate: None,
            port: 5201,
        }
        .run(Duration::from_secs(60))
        .unwrap_or_else(|e| {
            panic!(
                "{what}: TCP {} through lagg0 failed: {e:#}\npartner checksum errors: {}",
                if reverse { "to lagg0" } else { "from lagg0" },
                checksum_errors(&snmp(&ptr).unwrap_or_default())
            )
        });
        // TCP delivered the whole transfer or iperf3 would have failed; its receiver's own
        // count may stop a little before the last segment.
        assert!(
            report.sent >= BULK && report.bytes * 100 >= BULK * 95,
            "{what}: {} bytes sent, {} counted by the receiver, of {BULK}",
            report.sent,
            report.bytes
        );
        eprintln!(
            "{what}: TCP {} {:.2} Gbit/s, {} retransmits",
            if reverse { "to lagg0" } else { "from lagg0" },
            report.bits_per_second / 1e9,
            report.retransmits
        );
    }
    let udp = IperfRun {
        server_ns: &ptr,
        server_addr: server,
        client_ns: &app,
        client_addr: client,
        bytes: 10 << 20,
        reverse: false,
        udp_rate: Some(200_000_000),
        port: 5201,
    }
    .run(Duration::from_secs(30))
    .unwrap_or_else(|e| panic!("{what}: UDP through lagg0 failed: {e:#}"));
    let after = (snmp(&ptr).expect("snmp"), snmp(&app).expect("snmp"));
    assert_eq!(
        checksum_errors(&after.0) - checksum_errors(&before.0),
        0,
        "{what}: the partner counted checksum errors in what lagg0 sent"
    );
    assert_eq!(
        checksum_errors(&after.1) - checksum_errors(&before.1),
        0,
        "{what}: lagg0 counted checksum errors in what the partner sent"
    );
    let delivered = after.0.get("Udp.InDatagrams").copied().unwrap_or(0)
        - before.0.get("Udp.InDatagrams").copied().unwrap_or(0);
    assert!(
        udp.packets > 0 && delivered * 10 >= udp.packets * 9,
        "{what}: UDP: {} datagrams sent, {delivered} delivered with a good checksum",
        udp.packets
    );
}

#[test]
fn tcp_and_udp_cross_lagg0_with_valid_checksums_for_every_protocol() {
    let _serial = serial();
    for proto in ["failover", "loadbalance", "roundrobin", "broadcast"] {
        let bed = Bed::up(2, true);
        wire_partner(&bed, &bed.partner_names());
        let _daemon = host_lagg(&bed, proto, "");
        bulk_both_ways(&bed, proto, PARTNER_ADDR, LAGG_ADDR);
    }
}

#[test]
fn tcp_crosses_lagg0_with_lacp_against_open_vswitch() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let ovs = Ovs::start(&bed);
    wire_partner(&bed, &bed.partner_names());
    let mut daemon = host_lagg(&bed, "lacp", "lacp_fast_timeout = true\n");
    daemon.wait_status(20, "both ports distributing against Open vSwitch", |f| {
        ["xlm0", "xlm1"]
            .iter()
            .all(|p| f.get(*p).is_some_and(|s| s.contains("DISTRIBUTING")))
    });
    bulk_both_ways(&bed, "lacp", PARTNER_ADDR, LAGG_ADDR);
    drop(ovs);
}
