//! A stranger on a member's segment: frames that once steered a lagg, sent from the partner
//! namespace onto a member link next to a real partner. LACPDUs to the broadcast address or
//! carrying our own system id, micro-BFD Down packets without our discriminator, frames to the
//! micro-BFD and probe addresses that are not what the control path asked for. Every member
//! keeps distributing and each refusal is counted. Needs root and python3 (for the raw
//! socket); fails otherwise.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{run, serial, Bed, Daemon};
use xlagg_control::proto::bfd;
use xlagg_control::proto::lacp::pdu::{LacpState, Lacpdu, PortInfo, SLOW_PROTOCOLS_MAC};

/// Sends `frame` as is on `iface` of the partner namespace (an AF_PACKET socket).
fn inject(bed: &Bed, iface: &str, frame: &[u8]) {
    let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    let out = run(&mut bed.exec(
        "ptr",
        &[
            "python3",
            "-c",
            "import socket,sys\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n\
             s.bind((sys.argv[1],0))\ns.send(bytes.fromhex(sys.argv[2]))",
            iface,
            &hex,
        ],
    ));
    assert!(
        out.status.success(),
        "injecting on {iface}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn status(socket: &Path) -> serde_json::Value {
    let out = common::xlaggctl(socket, &["-j"]);
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn distributing(socket: &Path, port: usize) -> bool {
    status(socket)[0]["ports"][port]["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "DISTRIBUTING"))
}

fn port_field(socket: &Path, port: usize, path: &[&str]) -> u64 {
    let s = status(socket);
    let mut v = &s[0]["ports"][port];
    for p in path {
        v = &v[*p];
    }
    v.as_u64().unwrap_or(0)
}

/// Waits until every member of `socket`'s lagg distributes.
fn all_distributing(socket: &Path, members: usize, secs: u64) {
    common::wait_until(secs, "every member distributing", || {
        (0..members).all(|i| distributing(socket, i))
    });
}

const APP_SYSTEM: [u8; 6] = [0x02, 0x78, 0x6c, 0x00, 0x00, 0xa1];

fn lacp_lagg(ports: &str, addr: &str, system: Option<[u8; 6]>) -> String {
    let system = system.map_or(String::new(), |m| {
        format!(
            "lacp_system_mac = \"{}\"\n",
            m.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        )
    });
    format!(
        "[daemon]\nlink_poll_ms = 10000\nhttp = \"\"\n\n[[lagg]]\nname = \"lagg0\"\nlaggproto = \"lacp\"\n\
         laggports = [{ports}]\naddresses = [\"{addr}\"]\nlacp_fast_timeout = true\n{system}"
    )
}

/// An LACPDU from a system that would become xlm0's partner if heard: in sync, collecting,
/// distributing, with a key of its own.
fn strangers_lacpdu(actor_system: [u8; 6], dst: [u8; 6]) -> Vec<u8> {
    let state = LacpState(
        LacpState::ACTIVITY
            | LacpState::AGGREGATION
            | LacpState::SYNCHRONIZATION
            | LacpState::COLLECTING
            | LacpState::DISTRIBUTING,
    );
    let pdu = Lacpdu {
        version: 1,
        actor: PortInfo {
            system_priority: 0x8000,
            system: actor_system,
            key: 0x4242,
            port_priority: 0x8000,
            port: 9,
            state,
        },
        partner: PortInfo::default(),
        collector_max_delay: 0,
    };
    let mut frame = pdu.emit(actor_system).to_vec();
    frame[..6].copy_from_slice(&dst);
    frame
}

#[test]
fn lacpdus_to_the_broadcast_address_or_with_our_own_system_id_steer_nothing() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let partner = Daemon::start_in(
        &bed,
        "ptr",
        &lacp_lagg("\"xlp0\", \"xlp1\"", "10.77.0.2/24", None),
    );
    let app = Daemon::start(
        &bed,
        &lacp_lagg("\"xlm0\", \"xlm1\"", "10.77.0.1/24", Some(APP_SYSTEM)),
    );
    all_distributing(&app.socket, 2, 15);
    all_distributing(&partner.socket, 2, 15);
    // Ten of each over two seconds: well inside the 3 s fast timeout, so a frame that was
    // taken would show as a partner change and a port leaving distribution.
    for _ in 0..10 {
        inject(
            &bed,
            "xlp0",
            &strangers_lacpdu([0x02, 0x66, 0, 0, 0, 1], [0xff; 6]),
        );
        inject(
            &bed,
            "xlp0",
            &strangers_lacpdu(APP_SYSTEM, SLOW_PROTOCOLS_MAC),
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        distributing(&app.socket, 0) && distributing(&app.socket, 1),
        "{}",
        status(&app.socket)
    );
    let partner_seen = status(&app.socket)[0]["ports"][0]["lacp"]["partner"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!partner_seen.contains("4242"), "partner {partner_seen}");
    // To the broadcast address: dropped where it arrives, never seen by the control path;
    // with our own system id: seen, and refused as a loop.
    let illegal = port_field(&app.socket, 0, &["lacp", "counters", "illegal_rx"]);
    let looped = port_field(&app.socket, 0, &["lacp", "counters", "loop_rx"]);
    assert_eq!((illegal, looped), (0, 10));
    assert!(
        port_field(&app.socket, 0, &["drops", "xdp_unsolicited"]) >= 10,
        "{}",
        status(&app.socket)
    );
}

#[test]
fn micro_bfd_down_without_our_discriminator_takes_no_member_out() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let lagg = |prefix: &str, me: &str, peer: &str| {
        format!(
            "[daemon]\nlink_poll_ms = 10000\nhttp = \"\"\n\n[[lagg]]\nname = \"lagg0\"\nlaggproto = \"loadbalance\"\n\
             laggports = [\"{prefix}0\", \"{prefix}1\"]\naddresses = [\"{me}/24\"]\nbfd = true\nbfd_interval = 50\n\
             bfd_multiplier = 3\nbfd_peer = \"{peer}\"\n"
        )
    };
    let partner = Daemon::start_in(&bed, "ptr", &lagg("xlp", "10.77.0.2", "10.77.0.1"));
    let app = Daemon::start(&bed, &lagg("xlm", "10.77.0.1", "10.77.0.2"));
    common::wait_until(15, "sessions up", || {
        (0..2).all(|i| status(&app.socket)[0]["ports"][i]["bfd"] == "up")
    });
    let before = port_field(&app.socket, 0, &["bfd_counters", "invalid"]);
    // Down and AdminDown with your_discr 0, from the peer's address and from another one.
    for (state, src) in [
        (bfd::State::Down, [10, 77, 0, 2]),
        (bfd::State::AdminDown, [10, 77, 0, 2]),
        (bfd::State::Down, [10, 77, 0, 99]),
    ] {
        let packet = bfd::Packet {
            diag: 3,
            state,
            poll: false,
            fin: false,
            multiplier: 3,
            my_discr: 0x1234_5678,
            your_discr: 0,
            desired_min_tx_us: 1,
            required_min_rx_us: 1,
        }
        .emit();
        let frame = bfd::frame(
            [0x02, 0x66, 0, 0, 0, 2],
            src,
            [10, 77, 0, 1],
            49152,
            &packet,
        );
        for _ in 0..5 {
            inject(&bed, "xlp0", &frame);
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let s = status(&app.socket);
    assert_eq!(s[0]["ports"][0]["bfd"], "up", "{s}");
    assert!(distributing(&app.socket, 0), "{s}");
    let after = port_field(&app.socket, 0, &["bfd_counters", "invalid"]);
    assert!(
        after >= before + 15,
        "discarded and counted: {before} -> {after}"
    );
    drop(partner);
}

#[test]
fn frames_to_the_control_addresses_that_were_not_asked_for_are_dropped_and_counted() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    // A failover lagg without LACP or BFD: xlm1 is a backup, not collecting.
    let app = Daemon::start(
        &bed,
        "[daemon]\nlink_poll_ms = 10000\nhttp = \"\"\n\n[[lagg]]\nname = \"lagg0\"\nlaggproto = \"failover\"\n\
         laggports = [\"xlm0\", \"xlm1\"]\naddresses = [\"10.77.0.1/24\"]\n",
    );
    common::wait_until(10, "xlm0 active", || distributing(&app.socket, 0));
    let unsolicited = |s: &Path| port_field(s, 1, &["drops", "xdp_unsolicited"]);
    let before = unsolicited(&app.socket);
    // A micro-BFD frame (no BFD here), an LACPDU (no LACP here), and an ICMP echo to the
    // micro-BFD MAC.
    let bfd = bfd::frame(
        [0x02, 0x66, 0, 0, 0, 3],
        [10, 77, 0, 2],
        [10, 77, 0, 1],
        49152,
        &[0u8; bfd::PACKET_LEN],
    );
    let mut icmp = bfd.to_vec();
    icmp[14 + 9] = 1;
    inject(&bed, "xlp1", &bfd);
    inject(
        &bed,
        "xlp1",
        &strangers_lacpdu([0x02, 0x66, 0, 0, 0, 1], SLOW_PROTOCOLS_MAC),
    );
    inject(&bed, "xlp1", &icmp);
    common::wait_until(5, "three unsolicited frames counted on xlm1", || {
        unsolicited(&app.socket) >= before + 3
    });
}

/// A network namespace of the bed's prefix (`xl-ID-net`), for a stranger that is not on any
/// member segment at all; deleted on drop.
struct OtherNamespace(String);

impl OtherNamespace {
    fn new(bed: &Bed) -> OtherNamespace {
        let name = format!("xl-{}-net", bed.id);
        let _ = run(std::process::Command::new("ip").args(["netns", "del", &name]));
        let out = run(std::process::Command::new("ip").args(["netns", "add", &name]));
        assert!(out.status.success(), "ip netns add {name}");
        OtherNamespace(name)
    }

    fn ip(&self, args: &[&str]) {
        let out = run(std::process::Command::new("ip")
            .args(["-n", &self.0])
            .args(args));
        assert!(
            out.status.success(),
            "ip -n {} {}: {}",
            self.0,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn exec(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", &self.0]).args(args);
        cmd
    }
}

impl Drop for OtherNamespace {
    fn drop(&mut self) {
        // Its processes first (the redirect holder), then the namespace and its devices.
        let _ = run(std::process::Command::new("sh").args([
            "-c",
            &format!("ip netns pids {} | xargs -r kill -TERM", self.0),
        ]));
        std::thread::sleep(Duration::from_millis(200));
        let _ = run(std::process::Command::new("ip").args(["netns", "del", &self.0]));
    }
}

/// Every engine's watch sees devices of the whole machine. A device in another network
/// namespace that has a member's ifindex, no carrier and frames dropped or refused on it is
/// a stranger: none of the lagg's members is marked, and the member keeps its share.
#[test]
fn a_device_in_another_namespace_with_a_members_ifindex_marks_nothing() {
    let _serial = serial();
    for engine in ["afxdp", "xdp", "tc"] {
        stranger_in_another_namespace(engine);
    }
}

fn stranger_in_another_namespace(engine: &str) {
    let bed = Bed::up(2, false);
    if engine == "xdp" {
        // A veth takes the XDP engine's redirects only with GRO (or XDP) at its far end.
        for p in bed.partner_names() {
            common::run_ok(&mut bed.exec("ptr", &["ethtool", "-K", &p, "gro", "on"]));
        }
    }
    let host = engine == "tc";
    let extra = format!("engine = \"{engine}\"\n");
    let app = Daemon::start(&bed, &bed.config("loadbalance", &extra, host));
    all_distributing(&app.socket, 2, 10);
    let line = bed.ip("app", &["-o", "link", "show", "xlm0"]);
    let index: u32 = line
        .split(':')
        .next()
        .and_then(|i| i.trim().parse().ok())
        .expect("xlm0's ifindex");
    let other = OtherNamespace::new(&bed);
    let index = index.to_string();
    // d0 has xlm0's index and no carrier (its peer is down): what is sent on it is queued,
    // then dropped by the veth.
    other.ip(&[
        "link", "add", "d0", "index", &index, "type", "veth", "peer", "name", "d1",
    ]);
    other.ip(&["link", "set", "d0", "up"]);
    // s0 redirects what it receives to d0 by XDP: the devmap flush to d0 fails (an XDP
    // program on d1 lets d0 take XDP frames at all; d1 being down, each flush is refused).
    other.ip(&["link", "add", "s0", "type", "veth", "peer", "name", "s1"]);
    other.ip(&["link", "set", "s0", "up"]);
    other.ip(&["link", "set", "s1", "up"]);
    let bench = common::bench_bin();
    let bench = bench.to_str().expect("utf-8 path");
    let mut helpers = Vec::new();
    for args in [
        vec![bench, "drop", "--ifaces", "d1"],
        vec![bench, "redirect", "--from", "s0", "--to", "d0"],
    ] {
        let mut child = other
            .exec(&args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start a helper");
        let mut ready = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut ready,
        )
        .expect("read");
        assert!(ready.contains("ready"), "{args:?} started: {ready:?}");
        helpers.push(child);
    }
    for iface in ["d0", "s1"] {
        let out = run(&mut other.exec(&[
            bench,
            "send",
            "--iface",
            iface,
            "--flows",
            "50",
            "--per-flow",
            "4",
            "--pps",
            "2000",
        ]));
        assert!(
            out.status.success(),
            "{engine}: sending on the stranger's {iface}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for mut h in helpers {
        let _ = h.kill();
        let _ = h.wait();
    }
    let s = status(&app.socket);
    for m in 0..2 {
        assert_eq!(
            s[0]["ports"][m]["data_path_leaves"], 0,
            "{engine}: xlm{m} was left because of a device in another namespace: {s}"
        );
    }
    // And xlm0 still carries its share.
    let sink = common::Sink::start(&bed);
    if host {
        bed.send_on("app", "lagg0", 64, 2, 0);
    } else {
        bed.send(64, 2, 0);
    }
    let report = sink.finish();
    let per_port: Vec<u64> = report.ports.iter().map(|p| p.frames).collect();
    assert!(
        per_port.iter().all(|&n| n >= 20),
        "{engine}: every member keeps its share of 64 flows: {per_port:?}"
    );
    drop(other);
    drop(app);
}

/// `xlagg-bench flood` of `frames` on `iface` of the partner namespace for `seconds`, in the
/// background.
fn flood(bed: &Bed, iface: &str, frames: &[Vec<u8>], seconds: f64) -> std::process::Child {
    let bench = common::bench_bin();
    let mut args = vec![
        bench.to_str().expect("utf-8 path").to_string(),
        "flood".into(),
        "--iface".into(),
        iface.into(),
        "--seconds".into(),
        seconds.to_string(),
    ];
    for f in frames {
        args.push("--frame".into());
        args.push(f.iter().map(|b| format!("{b:02x}")).collect());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    bed.exec("ptr", &args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the flood")
}

/// Floods of frames the lagg must ignore (other slow-protocol subtypes to the Slow Protocols
/// address, LACPDUs to a unicast MAC not ours, other UDP to the micro-BFD MAC) are dropped
/// where they arrive: no port leaves distributing and no micro-BFD session drops. A flood of
/// valid-looking LACPDUs from a foreign system is held to the slow protocols' rate: the port
/// does what 802.1AX says with what passes, and comes back when the flood stops.
#[test]
fn floods_to_the_control_addresses_take_no_member_out() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let bfd = "bfd = true\nbfd_interval = 50\nbfd_multiplier = 3\n";
    let partner = Daemon::start_in(
        &bed,
        "ptr",
        &(lacp_lagg("\"xlp0\", \"xlp1\"", "10.77.0.2/24", None) + bfd),
    );
    let app = Daemon::start(
        &bed,
        &(lacp_lagg("\"xlm0\", \"xlm1\"", "10.77.0.1/24", Some(APP_SYSTEM)) + bfd),
    );
    all_distributing(&app.socket, 2, 20);
    all_distributing(&partner.socket, 2, 20);
    let bfd_downs = |s: &Path| port_field(s, 0, &["bfd_counters", "down"]);
    let downs_before = bfd_downs(&app.socket);
    let mut oam = strangers_lacpdu([0x02, 0x66, 0, 0, 0, 1], SLOW_PROTOCOLS_MAC);
    oam[14] = 3;
    let unicast = strangers_lacpdu([0x02, 0x66, 0, 0, 0, 1], [0x02, 0x66, 0, 0, 0, 9]);
    let mut udp = bfd::frame(
        [0x02, 0x66, 0, 0, 0, 3],
        [10, 77, 0, 2],
        [10, 77, 0, 1],
        49152,
        &[0u8; bfd::PACKET_LEN],
    )
    .to_vec();
    // UDP to port 9 instead of 6784 (its checksum no longer matters: it is dropped unread).
    udp[14 + 20 + 2..14 + 20 + 4].copy_from_slice(&9u16.to_be_bytes());
    // Longer than the 3 s fast LACP timeout and the 150 ms BFD detection.
    let flooding = flood(&bed, "xlp0", &[oam, unicast, udp], 6.0);
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(6) {
        assert!(
            distributing(&app.socket, 0) && distributing(&app.socket, 1),
            "a member left under a flood of frames to ignore: {}",
            status(&app.socket)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let out = flooding.wait_with_output().expect("flood");
    let sent: serde_json::Value = serde_json::from_slice(&out.stdout).expect("flood report");
    eprintln!("flood of frames to ignore: {sent}");
    assert!(sent["sent"].as_u64().unwrap_or(0) > 100_000, "{sent}");
    assert_eq!(
        bfd_downs(&app.socket),
        downs_before,
        "no BFD session dropped"
    );
    assert_eq!(status(&app.socket)[0]["ports"][0]["bfd"], "up");
    assert!(
        port_field(&app.socket, 0, &["drops", "xdp_unsolicited"]) > 100_000,
        "{}",
        status(&app.socket)
    );
    // Valid-looking LACPDUs from a foreign system, to the right address: what passes is held
    // to the slow protocols' rate and counted; the rest is dropped and counted.
    let foreign = strangers_lacpdu([0x02, 0x66, 0, 0, 0, 1], SLOW_PROTOCOLS_MAC);
    let flooding = flood(&bed, "xlp0", &[foreign], 4.0);
    let out = flooding.wait_with_output().expect("flood");
    let sent: serde_json::Value = serde_json::from_slice(&out.stdout).expect("flood report");
    eprintln!("flood of foreign LACPDUs: {sent}");
    let limited = port_field(&app.socket, 0, &["drops", "xdp_rate_limited"]);
    assert!(
        limited > 10_000,
        "rate_limited {limited}: {}",
        status(&app.socket)
    );
    // The real partner's LACPDUs take xlm0 back once the flood stops.
    all_distributing(&app.socket, 2, 15);
    drop(partner);
}

/// Sends `frame` as is on `iface` of namespace `role`.
fn inject_in(bed: &Bed, role: &str, iface: &str, frame: &[u8]) {
    let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    let out = run(&mut bed.exec(
        role,
        &[
            "python3",
            "-c",
            "import socket,sys\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n\
             s.bind((sys.argv[1],0))\ns.send(bytes.fromhex(sys.argv[2]))",
            iface,
            &hex,
        ],
    ));
    assert!(
        out.status.success(),
        "injecting on {iface}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// In forward mode, IEEE 802.1 link-local frames from downstream (an STP BPDU, a PAUSE frame,
/// LLDP, EAPOL) stop at the forward port and are counted, on both forward engines: a switch
/// with BPDU guard would shut the whole LAG on one BPDU. `forward_link_local` lets them by.
#[test]
fn link_local_frames_from_downstream_never_reach_the_members() {
    let _serial = serial();
    for (engine, forward) in [("afxdp", false), ("xdp", false), ("afxdp", true)] {
        let bed = Bed::up(2, false);
        for p in bed.partner_names() {
            common::run_ok(&mut bed.exec("ptr", &["ethtool", "-K", &p, "gro", "on"]));
        }
        let extra = format!("engine = \"{engine}\"\nforward_link_local = {forward}\n");
        let app = Daemon::start(&bed, &bed.config("broadcast", &extra, false));
        all_distributing(&app.socket, 2, 10);
        let capture = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &bed.ns("ptr"),
                "timeout",
                "3",
                "tcpdump",
                "-i",
                "xlp0",
                "-nn",
                "-c",
                "4",
                "--immediate-mode",
                "-Q",
                "in",
                "ether[0:4] = 0x0180c200",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("tcpdump");
        std::thread::sleep(Duration::from_millis(500));
        let src = [0x02, 0x66, 0, 0, 0, 7];
        for (last, ethertype) in [
            (0x00u8, 0x0026u16),
            (0x01, 0x8808),
            (0x03, 0x888e),
            (0x0e, 0x88cc),
        ] {
            let mut f = vec![0u8; 64];
            f[..6].copy_from_slice(&[0x01, 0x80, 0xc2, 0, 0, last]);
            f[6..12].copy_from_slice(&src);
            f[12..14].copy_from_slice(&ethertype.to_be_bytes());
            inject_in(&bed, "src", "xls0", &f);
        }
        let seen = capture.wait_with_output().expect("tcpdump");
        let lines = String::from_utf8_lossy(&seen.stdout).into_owned();
        eprintln!("{engine}, forward_link_local = {forward}: the partner saw\n{lines}");
        let seen = lines.lines().filter(|l| !l.trim().is_empty()).count();
        if forward {
            assert!(
                seen >= 3,
                "{engine}: forward_link_local lets them by: {seen} seen"
            );
        } else {
            assert_eq!(seen, 0, "{engine}: a link-local frame reached a member");
            let s = status(&app.socket);
            let counted = s[0]["upper_port"]["drops"]["xdp_link_local"]
                .as_u64()
                .unwrap_or(0);
            assert_eq!(counted, 4, "{engine}: counted at the forward port: {s}");
        }
        drop(app);
    }
}
