//! What users carry through a host-mode laggN — TCP, UDP and a VLAN subinterface — over veths
//! that behave like a real wire: every veth's transmit checksum and VLAN offloads are off, the
//! members' (where a NIC's hardware would finish a checksum-partial segment or insert a tag,
//! a veth hands the skb to its peer unfinished, and its stack would trust it) and the
//! partner's. So what crosses carries its checksum and its tag in its bytes: a segment with
//! only a partial checksum is counted in the receiver's `InCsumErrors` and dropped, and a tag
//! left in metadata shows as an untagged frame. The host path keeps laggN's offloads: the
//! kernel finishes segments and checksums for the member that lacks them, as it does for any
//! device. Needs root, iperf3 and tcpdump (scripts/setup.sh installs them); fails otherwise,
//! never skips.

mod common;

use std::time::Duration;

use common::ovs::Ovs;
use common::{run, run_ok, serial, Bed, Daemon};
use xlagg_bench::iperf::{checksum_errors, snmp, IperfRun};

const LAGG_ADDR: &str = "10.77.0.1";
const PARTNER_ADDR: &str = "10.77.0.2";
/// Bytes per direction: enough for TCP to reach its steady state and use every member.
const BULK: u64 = 100 << 20;

/// Both ends of every member link as a wire sees them: what leaves them carries its checksum
/// and its VLAN tag in the bytes.
fn wire_links(bed: &Bed, ports: &[String]) {
    for p in ports {
        run_ok(&mut bed.exec("ptr", &["ethtool", "-K", p, "tx", "off", "txvlan", "off"]));
        let member = p.replace("xlp", "xlm");
        run_ok(&mut bed.exec(
            "app",
            &["ethtool", "-K", &member, "tx", "off", "txvlan", "off"],
        ));
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
        // What the receiving side's IP layer took in: the kernel's count, not iperf3's.
        let receiver = if reverse { &app } else { &ptr };
        let octets = || snmp(receiver).expect("snmp")["IpExt.InOctets"];
        let received_before = octets();
        let report = IperfRun {
            server_ns: &ptr,
            server_addr: server,
            client_ns: &app,
            client_addr: client,
            bytes: BULK,
            seconds: None,
            streams: 1,
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
        // TCP delivered the whole transfer or iperf3 would have failed; iperf3's receiver
        // may stop counting before the last segments in its socket buffer, so the bytes are
        // checked where the receiving kernel counted them.
        let received = octets() - received_before;
        assert!(
            report.sent >= BULK && received >= BULK,
            "{what}: {} bytes sent, {received} IP bytes received (iperf3 counted {}), of {BULK}",
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
        seconds: None,
        streams: 1,
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
        wire_links(&bed, &bed.partner_names());
        let _daemon = host_lagg(&bed, proto, "");
        bulk_both_ways(&bed, proto, PARTNER_ADDR, LAGG_ADDR);
    }
}

#[test]
fn tcp_crosses_lagg0_with_lacp_against_open_vswitch() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let ovs = Ovs::start(&bed);
    wire_links(&bed, &bed.partner_names());
    let mut daemon = host_lagg(&bed, "lacp", "lacp_fast_timeout = true\n");
    daemon.wait_status(20, "both ports distributing against Open vSwitch", |f| {
        ["xlm0", "xlm1"]
            .iter()
            .all(|p| f.get(*p).is_some_and(|s| s.contains("DISTRIBUTING")))
    });
    bulk_both_ways(&bed, "lacp", PARTNER_ADDR, LAGG_ADDR);
    drop(ovs);
}

/// `xlagg-bench ARGS` in namespace `role` until dropped (after it printed "ready").
struct Helper(Option<std::process::Child>);

impl Helper {
    fn start(bed: &Bed, role: &str, args: &[&str]) -> Helper {
        let bench = common::bench_bin();
        let mut all = vec![bench.to_str().expect("utf-8 path")];
        all.extend(args);
        let mut child = bed
            .exec(role, &all)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start xlagg-bench");
        let out = child.stdout.take().expect("stdout");
        let me = Helper(Some(child));
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).expect("read");
        assert!(
            line.contains("ready"),
            "xlagg-bench {args:?} did not start: {line:?}"
        );
        me
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }
}

/// VLAN 100 with 10.78.0.1/24 on lagg0 and 10.78.0.2/24 on the partner's bridge: real VLAN
/// devices (`lagg0.100`) where the kernel has 8021q; where it has not, the tc stand-in puts
/// the tag in skb metadata on egress exactly as a VLAN device with tag offload does.
fn vlan_100(bed: &Bed) -> Vec<Helper> {
    let mut holders = Vec::new();
    for (role, dev, addr) in [
        ("app", "lagg0", "10.78.0.1/24"),
        ("ptr", "xlbr0", "10.78.0.2/24"),
    ] {
        if xlagg_bench::vlan::kernel_has_vlan() {
            let sub = format!("{dev}.100");
            bed.ip(
                role,
                &[
                    "link", "add", "link", dev, "name", &sub, "type", "vlan", "id", "100",
                ],
            );
            bed.ip(role, &["addr", "add", addr, "dev", &sub]);
            bed.ip(role, &["link", "set", &sub, "up"]);
        } else {
            holders.push(Helper::start(
                bed,
                role,
                &[
                    "vlan",
                    "--iface",
                    dev,
                    "--vid",
                    "100",
                    "--prefix",
                    "10.78.0.0/24",
                ],
            ));
            bed.ip(role, &["addr", "add", addr, "dev", dev]);
        }
    }
    eprintln!(
        "VLAN 100: {}",
        if holders.is_empty() {
            "8021q devices"
        } else {
            "tc stand-in (this kernel has no 8021q)"
        }
    );
    holders
}

#[test]
fn vlan_100_over_lagg0_carries_its_tag_on_the_wire_ping_and_tcp() {
    let _serial = serial();
    let bed = Bed::up(2, true);
    wire_links(&bed, &bed.partner_names());
    let _daemon = host_lagg(&bed, "loadbalance", "");
    let _vlan = vlan_100(&bed);
    // The tag must be in the bytes that reach the partner's ports: an untagged frame never
    // reaches the partner's VLAN 100; the capture shows the tag as the partner's bridge got it.
    let capture = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &bed.ns("ptr"),
            "timeout",
            "10",
            "tcpdump",
            "-i",
            "xlbr0",
            "-e",
            "-nn",
            "-c",
            "1",
            "--immediate-mode",
            "-Q",
            "in",
            "vlan 100 and icmp",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tcpdump");
    std::thread::sleep(Duration::from_millis(500));
    let ping = run(&mut bed.exec(
        "app",
        &["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.78.0.2"],
    ));
    assert!(
        ping.status.success(),
        "ping over VLAN 100 failed:\n{}",
        String::from_utf8_lossy(&ping.stdout)
    );
    let seen = capture.wait_with_output().expect("tcpdump output");
    let seen = String::from_utf8_lossy(&seen.stdout);
    assert!(
        seen.contains("vlan 100"),
        "the partner saw no frame tagged with VLAN 100: {seen:?}"
    );
    bulk_both_ways(&bed, "vlan 100", "10.78.0.2", "10.78.0.1");
}
