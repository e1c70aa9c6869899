//! The XDP program run on byte vectors with BPF_PROG_TEST_RUN: every branch of its decision
//! (slow protocol, micro-BFD, probe replies, what the control path did not ask for, not
//! collecting, no socket) and its counters. Needs root (or CAP_BPF +
//! CAP_NET_ADMIN) to load programs; fails otherwise, never skips.

use xlagg_common::XdpCounter;
use xlagg_dataplane::xdp::{PortProgram, ProgramKind};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

fn frame(ethertype: u16, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&[0x01, 0x80, 0xc2, 0, 0, 0x02]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&ethertype.to_be_bytes());
    f
}

fn load(kind: ProgramKind) -> PortProgram {
    PortProgram::load("test", kind).unwrap_or_else(|e| {
        panic!("loading the XDP program needs root (CAP_BPF, CAP_NET_ADMIN); run the tests as root, as CI does: {e}")
    })
}

#[test]
fn slow_protocol_frames_pass_to_the_kernel_even_when_not_collecting() {
    let mut p = load(ProgramKind::Port);
    p.set_collecting(false).expect("state map");
    p.set_control(true, false).expect("state map");
    // A LACPDU-sized frame: ethertype 0x8809, subtype 1.
    let mut lacpdu = frame(0x8809, 124);
    lacpdu[14] = 1;
    assert_eq!(p.test_run(&lacpdu).expect("test run"), XDP_PASS);
    p.set_collecting(true).expect("state map");
    assert_eq!(p.test_run(&lacpdu).expect("test run"), XDP_PASS);
    let c = p.counters().expect("counters");
    assert_eq!(c[XdpCounter::SlowProtocol as usize], 2);
    assert_eq!(
        c[XdpCounter::Redirected as usize],
        0,
        "slow protocols never reach the workers"
    );
}

#[test]
fn data_frames_on_a_port_that_is_not_collecting_are_dropped_and_counted() {
    let mut p = load(ProgramKind::Port);
    p.set_collecting(false).expect("state map");
    for _ in 0..3 {
        assert_eq!(p.test_run(&frame(0x0800, 60)).expect("test run"), XDP_DROP);
    }
    assert_eq!(
        p.counters().expect("counters")[XdpCounter::NotCollecting as usize],
        3
    );
}

#[test]
fn a_fresh_program_drops_data_until_userspace_says_collecting() {
    let p = load(ProgramKind::Port);
    assert_eq!(p.test_run(&frame(0x86dd, 80)).expect("test run"), XDP_DROP);
    assert_eq!(
        p.counters().expect("counters")[XdpCounter::NotCollecting as usize],
        1
    );
}

#[test]
fn collecting_without_a_socket_for_the_queue_drops_and_counts_no_socket() {
    let mut p = load(ProgramKind::Port);
    p.set_collecting(true).expect("state map");
    assert_eq!(p.test_run(&frame(0x0800, 60)).expect("test run"), XDP_DROP);
    let c = p.counters().expect("counters");
    assert_eq!(c[XdpCounter::NoSocket as usize], 1);
    assert_eq!(c[XdpCounter::NotCollecting as usize], 0);
}

#[test]
fn slow_protocol_frames_where_lacp_does_not_run_are_dropped_never_forwarded() {
    let mut p = load(ProgramKind::Port);
    p.set_collecting(true).expect("state map");
    let mut lacpdu = frame(0x8809, 124);
    lacpdu[14] = 1;
    assert_eq!(p.test_run(&lacpdu).expect("test run"), XDP_DROP);
    let c = p.counters().expect("counters");
    assert_eq!(
        (
            c[XdpCounter::Unsolicited as usize],
            c[XdpCounter::SlowProtocol as usize]
        ),
        (1, 0)
    );
}

#[test]
fn only_lacp_and_marker_to_the_slow_protocols_address_reach_the_control_path() {
    let mut p = load(ProgramKind::Port);
    p.set_control(true, false).expect("state map");
    // A bare 0x8809 header (the shortest frame a test run takes) has no subtype.
    assert_eq!(p.test_run(&frame(0x8809, 14)).expect("test run"), XDP_DROP);
    let mut oam = frame(0x8809, 60);
    oam[14] = 3;
    assert_eq!(p.test_run(&oam).expect("test run"), XDP_DROP);
    let mut unicast = frame(0x8809, 124);
    unicast[14] = 1;
    unicast[..6].copy_from_slice(&[0x02, 0x66, 0, 0, 0, 9]);
    assert_eq!(p.test_run(&unicast).expect("test run"), XDP_DROP);
    let mut marker = frame(0x8809, 124);
    marker[14] = 2;
    assert_eq!(p.test_run(&marker).expect("test run"), XDP_PASS);
    let c = p.counters().expect("counters");
    assert_eq!(
        (
            c[XdpCounter::Unsolicited as usize],
            c[XdpCounter::SlowProtocol as usize]
        ),
        (3, 1)
    );
    let drop = load(ProgramKind::Drop);
    assert_eq!(
        drop.test_run(&frame(0x0800, 60)).expect("test run"),
        XDP_DROP
    );
}

#[test]
fn control_frames_beyond_their_rate_are_dropped_and_counted() {
    let mut p = load(ProgramKind::Port);
    p.set_control(true, false).expect("state map");
    let mut lacpdu = frame(0x8809, 124);
    lacpdu[14] = 1;
    // One test run after another: far above the slow protocols' 50 a second.
    for _ in 0..200 {
        let _ = p.test_run(&lacpdu).expect("test run");
    }
    let c = p.counters().expect("counters");
    let (passed, limited) = (
        c[XdpCounter::SlowProtocol as usize],
        c[XdpCounter::RateLimited as usize],
    );
    assert_eq!(passed + limited, 200);
    // The burst, and what the rate refilled while the runs took.
    assert!(
        (25..=40).contains(&passed),
        "passed {passed}, limited {limited}"
    );
}

/// A micro-BFD frame: IPv4 (header length `ihl` words), UDP to `port`.
fn bfd_frame(ihl: u8, port: u16, fragment: bool) -> Vec<u8> {
    let l4 = 14 + usize::from(ihl) * 4;
    let mut f = vec![0u8; l4 + 8 + 24];
    f[..6].copy_from_slice(&xlagg_common::MICRO_BFD_MAC);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x40 | ihl;
    f[22] = 255;
    f[23] = 17;
    if fragment {
        f[20] = 0x20;
    }
    f[l4 + 2..l4 + 4].copy_from_slice(&port.to_be_bytes());
    f
}

#[test]
fn micro_bfd_passes_only_where_it_runs_and_only_as_ipv4_udp_to_6784() {
    let mut p = load(ProgramKind::Port);
    p.set_collecting(false).expect("state map");
    let good = bfd_frame(5, 6784, false);
    assert_eq!(p.test_run(&good).expect("run"), XDP_DROP, "no BFD here");
    p.set_control(false, true).expect("state map");
    assert_eq!(p.test_run(&good).expect("run"), XDP_PASS);
    assert_eq!(
        p.test_run(&bfd_frame(6, 6784, false)).expect("run"),
        XDP_PASS,
        "IPv4 options"
    );
    for (bad, what) in [
        (bfd_frame(5, 53, false), "another UDP port"),
        (bfd_frame(5, 6784, true), "a fragment"),
        (
            bfd_frame(5, 6784, false)[..36].to_vec(),
            "cut before the UDP port",
        ),
        (
            {
                let mut f = bfd_frame(5, 6784, false);
                f[23] = 6;
                f
            },
            "TCP",
        ),
    ] {
        assert_eq!(p.test_run(&bad).expect("run"), XDP_DROP, "{what}");
    }
    p.set_collecting(true).expect("state map");
    assert_eq!(
        p.test_run(&bfd_frame(5, 53, false)).expect("run"),
        XDP_DROP,
        "not even on a collecting port"
    );
    let c = p.counters().expect("counters");
    assert_eq!(c[XdpCounter::Probe as usize], 2);
    assert_eq!(c[XdpCounter::Unsolicited as usize], 6);
    assert_eq!(
        c[XdpCounter::Redirected as usize] + c[XdpCounter::NoSocket as usize],
        0
    );
}

#[test]
fn only_arp_replies_and_neighbour_advertisements_reach_the_probe_monitor() {
    let mut p = load(ProgramKind::Port);
    p.set_collecting(false).expect("state map");
    let probe = [0x06, 0x11, 0x22, 0x33, 0x44, 0x55];
    let mut reply = vec![0u8; 60];
    reply[..6].copy_from_slice(&probe);
    reply[12..14].copy_from_slice(&[0x08, 0x06]);
    reply[20..22].copy_from_slice(&[0, 2]);
    assert_eq!(
        p.test_run(&reply).expect("run"),
        XDP_DROP,
        "not collecting, no probe MAC"
    );
    p.set_probe_mac(probe).expect("state map");
    assert_eq!(p.test_run(&reply).expect("run"), XDP_PASS);
    let mut na = vec![0u8; 86];
    na[..6].copy_from_slice(&probe);
    na[12..14].copy_from_slice(&[0x86, 0xdd]);
    na[20] = 58;
    na[54] = 136;
    assert_eq!(p.test_run(&na).expect("run"), XDP_PASS);
    let mut request = reply.clone();
    request[21] = 1;
    let mut ns = na.clone();
    ns[54] = 135;
    let mut udp = na.clone();
    udp[20] = 17;
    let mut ipv4 = reply.clone();
    ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
    for (bad, what) in [
        (request, "ARP request"),
        (ns, "NS"),
        (udp, "UDP"),
        (ipv4, "IPv4"),
    ] {
        assert_eq!(p.test_run(&bad).expect("run"), XDP_DROP, "{what}");
    }
    // Setting the MAC kept the collecting flag (still off: data is dropped).
    let data = vec![0u8; 60];
    assert_eq!(p.test_run(&data).expect("run"), XDP_DROP);
    let c = p.counters().expect("counters");
    assert_eq!(c[XdpCounter::Probe as usize], 2);
    assert_eq!(c[XdpCounter::Unsolicited as usize], 4);
    assert_eq!(c[XdpCounter::NotCollecting as usize], 2);
}

#[test]
fn every_counter_but_redirected_and_malformed_is_reached_by_some_frame() {
    // Redirected needs a bound AF_XDP socket: the namespace tests forward real frames.
    // RateLimited has a test of its own.
    // Malformed (shorter than 14 bytes) cannot be made here: BPF_PROG_TEST_RUN refuses frames
    // shorter than an Ethernet header, as drivers do not deliver them.
    let mut p = load(ProgramKind::Port);
    p.set_control(true, true).expect("state map");
    let mut lacpdu = frame(0x8809, 60);
    lacpdu[14] = 1;
    let _ = p.test_run(&lacpdu).expect("run"); // SlowProtocol
    let _ = p.test_run(&bfd_frame(5, 6784, false)).expect("run"); // Probe
    let _ = p.test_run(&bfd_frame(5, 53, false)).expect("run"); // Unsolicited
    let _ = p.test_run(&frame(0x0800, 60)).expect("run"); // NotCollecting
    p.set_collecting(true).expect("state map");
    let _ = p.test_run(&frame(0x0800, 60)).expect("run"); // NoSocket
    p.set_drop_link_local(true).expect("state map");
    let mut bpdu = frame(0x0026, 60);
    bpdu[5] = 0;
    let _ = p.test_run(&bpdu).expect("run"); // LinkLocal
    let c = p.counters().expect("counters");
    for counter in XdpCounter::ALL {
        if !matches!(
            counter,
            XdpCounter::Redirected | XdpCounter::Malformed | XdpCounter::RateLimited
        ) {
            assert_eq!(c[counter as usize], 1, "{}", counter.name());
        }
    }
}
