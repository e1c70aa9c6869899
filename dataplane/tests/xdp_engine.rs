//! The XDP engine and the shared flow hash, run in the kernel with `BPF_PROG_TEST_RUN`:
//! - the hash the XDP side computes equals the workers' on every byte vector (IPv4 with and
//!   without options, fragments, TCP/UDP/SCTP/ICMP, one and two VLAN tags, IPv6 with extension
//!   headers, every truncation, random bytes), for every layer set;
//! - the engine places each frame where the workers' `distribute` does, for every policy
//!   (failover, loadbalance, roundrobin with rr_limit, broadcast, none), and a membership change
//!   moves only the changed member's flows;
//! - a member's frames go to the upper port; the port checks match the port program's;
//! - a member marked lost (its word in the lost-member map, as the transmit watch or a worker
//!   writes it) is left at once by the table without it, before any publish, and its flows
//!   come back when the mark is cleared; the transmit watch loads and attaches;
//! - the drop watch (the AF_XDP engine's) marks a member whose carrier went at the first
//!   frame the kernel drops for it on the copy-mode transmit path, and no member that keeps its
//!   carrier.
//!
//! Needs root and the namespace test bed (devices for the ingress ifindex and the devmaps);
//! fails, saying why, otherwise.

#[path = "support/bed.rs"]
#[allow(dead_code)]
mod bed;
#[path = "support/frames.rs"]
mod frames;

use xlagg_common::{hash, EngineCounter, ENGINE_UPPER_SLOT};
use xlagg_dataplane::distribution::{
    distribute, DistributionTable, Egress, MemberIndex, RoundRobinCursor, TxPolicy,
};
use xlagg_dataplane::engine::{Hooks, XdpEngine};
use xlagg_dataplane::flow::{hash_frame, HashLayers};
use xlagg_dataplane::xdp::{PortProgram, ProgramKind};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;

/// A small deterministic generator (xorshift), so a failure names a reproducible frame.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn ipv4(proto: u8, ihl: u8, frag: u16, rng: &mut Rng) -> Vec<u8> {
    let mut f = rng.bytes(14 + usize::from(ihl) * 4 + 24);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x40 | ihl;
    f[20..22].copy_from_slice(&frag.to_be_bytes());
    f[23] = proto;
    f
}

fn ipv6(chain: &[(u8, u8)], last: u8, rng: &mut Rng) -> Vec<u8> {
    let mut f = rng.bytes(14 + 40);
    f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    f[14] = 0x60;
    f[20] = chain.first().map_or(last, |c| c.0);
    for (i, &(_, len)) in chain.iter().enumerate() {
        let next = chain.get(i + 1).map_or(last, |c| c.0);
        let mut ext = rng.bytes(8 * (usize::from(len) + 1));
        ext[0] = next;
        ext[1] = len;
        f.extend_from_slice(&ext);
    }
    f.extend_from_slice(&rng.bytes(16));
    f
}

fn tagged(mut f: Vec<u8>, tags: &[u16]) -> Vec<u8> {
    let mut head = f[..12].to_vec();
    for (i, &tpid) in tags.iter().enumerate() {
        head.extend_from_slice(&tpid.to_be_bytes());
        head.extend_from_slice(&(100 + i as u16).to_be_bytes());
    }
    head.extend(f.drain(12..));
    head
}

/// The byte vectors both hashes are compared on.
fn vectors() -> Vec<Vec<u8>> {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut out = Vec::new();
    for flow in 0..200 {
        out.push(frames::udp4(flow));
    }
    for proto in [6u8, 17, 132, 1, 47] {
        for ihl in [5u8, 6, 15, 4] {
            for frag in [0u16, 0x2000, 0x0010, 0x4000] {
                out.push(ipv4(proto, ihl, frag, &mut rng));
            }
        }
    }
    for tags in [&[0x8100u16][..], &[0x88a8, 0x8100], &[0x8100, 0x8100]] {
        for proto in [6u8, 17] {
            out.push(tagged(ipv4(proto, 5, 0, &mut rng), tags));
            out.push(tagged(ipv6(&[], proto, &mut rng), tags));
        }
    }
    for chain in [
        &[][..],
        &[(0u8, 0u8)],
        &[(0, 1), (60, 0)],
        &[(43, 2), (51, 1)],
        &[(44, 0)],
        &[(0, 0), (43, 0), (60, 0), (60, 0), (0, 0)],
    ] {
        for last in [6u8, 17, 132, 58] {
            out.push(ipv6(chain, last, &mut rng));
        }
    }
    let whole: Vec<Vec<u8>> = out.clone();
    for f in whole.iter().step_by(7) {
        for len in 14..f.len() {
            out.push(f[..len].to_vec());
        }
    }
    for _ in 0..500 {
        let len = 14 + (rng.next() % 120) as usize;
        let mut f = rng.bytes(len);
        match rng.next() % 4 {
            0 => f[12..14].copy_from_slice(&0x0800u16.to_be_bytes()),
            1 => f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes()),
            2 => f[12..14].copy_from_slice(&0x8100u16.to_be_bytes()),
            _ => {}
        }
        out.push(f);
    }
    out
}

fn root_or_fail<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| {
        panic!("loading XDP programs needs root (CAP_BPF, CAP_NET_ADMIN); run the tests as root, as CI does: {e}")
    })
}

#[test]
fn the_xdp_side_of_the_flow_hash_equals_the_workers_on_every_vector() {
    let mut probe = root_or_fail(PortProgram::load("hash", ProgramKind::Hash));
    let vectors = vectors();
    let mut checked = 0;
    for bits in 1u8..8 {
        for seed in [0u64, 0x0123_4567_89ab_cdef, u64::MAX] {
            probe.set_hash_probe(bits, seed).expect("hash config");
            let layers = HashLayers::parse(&layer_names(bits)).expect("layers");
            for (i, f) in vectors.iter().enumerate() {
                let kernel = probe.test_run(f).expect("test run");
                let user = hash_frame(f, layers, seed);
                assert_eq!(
                    kernel, user,
                    "vector {i} ({} bytes, layers {layers}, seed {seed:#x}): XDP {kernel:#x}, workers {user:#x}: {f:02x?}",
                    f.len()
                );
                assert_eq!(user, hash::hash_frame(f.as_slice(), bits, seed));
                checked += 1;
            }
        }
    }
    assert!(checked > 10_000, "{checked} comparisons");
}

fn layer_names(bits: u8) -> String {
    let mut v = Vec::new();
    for (bit, name) in [(1u8, "l2"), (2, "l3"), (4, "l4")] {
        if bits & bit != 0 {
            v.push(name);
        }
    }
    v.join(",")
}

/// An engine attached to the bed's four members (slots 0..4) and its forward port (upper).
struct Rig {
    _bed: bed::Bed,
    engine: XdpEngine,
    members: Vec<u32>,
    upper: u32,
}

fn rig(id: &str) -> Rig {
    let bed = bed::Bed::up(id, 4);
    bed::enter(&bed.ns("app"));
    // Per-CPU round-robin counts: keep every test run on one CPU.
    core_affinity::set_for_current(core_affinity::CoreId { id: 0 });
    let mut engine = root_or_fail(XdpEngine::load("lagg0", Hooks::Xdp));
    let members: Vec<u32> = (0..4).map(|i| bed::ifindex(&format!("xlm{i}"))).collect();
    for (slot, &ifindex) in members.iter().enumerate() {
        engine
            .attach(&format!("xlm{slot}"), ifindex, slot as u32, false)
            .expect("attach member");
        engine.set_collecting(ifindex, true).expect("collecting");
    }
    let upper = bed::ifindex("xld0");
    engine
        .attach("xld0", upper, ENGINE_UPPER_SLOT, true)
        .expect("attach upper");
    engine.set_collecting(upper, true).expect("collecting");
    Rig {
        _bed: bed,
        engine,
        members,
        upper,
    }
}

impl Rig {
    fn tx(&self) -> Vec<u64> {
        (0..4)
            .map(|s| self.engine.counters(s).expect("counters")[EngineCounter::TxPackets as usize])
            .collect()
    }

    /// Runs `frame` in on the upper port; the members it was sent to.
    fn place(&self, frame: &[u8]) -> (u32, Vec<MemberIndex>) {
        let before = self.tx();
        let action = self.engine.test_run(frame, self.upper).expect("test run");
        let after = self.tx();
        let to = (0..4u8)
            .filter(|&m| after[usize::from(m)] > before[usize::from(m)])
            .collect();
        (action, to)
    }
}

fn workers(table: &DistributionTable, rr: &mut RoundRobinCursor, frame: &[u8]) -> Egress {
    let mut out = [Egress::Drop];
    distribute(table, rr, &[frame], &mut out);
    out[0]
}

#[test]
fn the_engine_places_every_frame_where_the_workers_do() {
    let mut rig = rig("xe1");
    let vectors = vectors();
    let policies = [
        TxPolicy::Hash {
            layers: HashLayers::DEFAULT,
        },
        TxPolicy::Hash {
            layers: HashLayers::L3,
        },
        TxPolicy::Failover,
        TxPolicy::RoundRobin { limit: 3 },
        TxPolicy::Broadcast,
        TxPolicy::None,
    ];
    for policy in policies {
        for active in [&[0u8, 1, 2, 3][..], &[1, 3], &[2]] {
            let table = DistributionTable::new(policy, 0xfeed_beef).with_active(active);
            rig.engine.publish(&table).expect("publish");
            let mut rr = RoundRobinCursor::default();
            // Round robin: the engine's per-CPU count goes on across tables; line the
            // workers' cursor up with it by sending until the engine starts a new turn.
            let mut skew = 0;
            if matches!(policy, TxPolicy::RoundRobin { .. }) && active.len() > 1 {
                let (_, first) = rig.place(&vectors[0]);
                let mut last = first;
                loop {
                    let (_, to) = rig.place(&vectors[0]);
                    if to != last {
                        // `to` opens a turn: the workers' cursor starts there too.
                        let at = active
                            .iter()
                            .position(|m| Some(m) == to.first())
                            .expect("active");
                        for _ in 0..(at * 3) {
                            workers(&table, &mut rr, &vectors[0]);
                        }
                        workers(&table, &mut rr, &vectors[0]);
                        break;
                    }
                    last = to;
                    skew += 1;
                    assert!(skew < 10, "no new turn after {skew} frames");
                }
            }
            for (i, f) in vectors.iter().enumerate().take(600) {
                let (action, to) = rig.place(f);
                let expect = workers(&table, &mut rr, f);
                let want: Vec<MemberIndex> = match expect {
                    Egress::Drop => Vec::new(),
                    Egress::Port(m) => vec![m],
                    Egress::AllActive => active.to_vec(),
                };
                assert_eq!(
                    to, want,
                    "{policy:?} over {active:?}, vector {i}: engine sent to {to:?}, workers to {want:?}"
                );
                let want_action = if want.is_empty() {
                    XDP_DROP
                } else {
                    XDP_REDIRECT
                };
                assert_eq!(action, want_action, "{policy:?}, vector {i}");
            }
        }
    }
}

#[test]
fn a_member_leaving_moves_only_its_flows_and_members_send_to_the_upper_port() {
    let mut rig = rig("xe2");
    let table = DistributionTable::new(
        TxPolicy::Hash {
            layers: HashLayers::DEFAULT,
        },
        7,
    )
    .with_active(&[0, 1, 2, 3]);
    rig.engine.publish(&table).expect("publish");
    let flows: Vec<Vec<u8>> = (0..400).map(frames::udp4).collect();
    let before: Vec<Vec<MemberIndex>> = flows.iter().map(|f| rig.place(f).1).collect();
    for m in 0..4u8 {
        assert!(
            before.iter().filter(|t| t.as_slice() == [m]).count() > 50,
            "member {m} carries too few of 400 flows"
        );
    }
    rig.engine
        .publish(&table.with_active(&[0, 1, 3]))
        .expect("publish");
    for (i, f) in flows.iter().enumerate() {
        let after = rig.place(f).1;
        if before[i] != [2] {
            assert_eq!(after, before[i], "flow {i} moved though its member stayed");
        } else {
            assert_ne!(after, [2], "flow {i} still on the member that left");
        }
    }
    // A member's data frame goes to the upper port, counted on both.
    let upper_before = rig.engine.counters(ENGINE_UPPER_SLOT).expect("counters");
    let action = rig
        .engine
        .test_run(&flows[0], rig.members[1])
        .expect("test run");
    assert_eq!(action, XDP_REDIRECT);
    let upper_after = rig.engine.counters(ENGINE_UPPER_SLOT).expect("counters");
    assert_eq!(
        upper_after[EngineCounter::TxPackets as usize],
        upper_before[EngineCounter::TxPackets as usize] + 1
    );
    assert_eq!(
        rig.engine.counters(1).expect("counters")[EngineCounter::RxPackets as usize],
        1
    );
}

#[test]
fn the_engine_makes_the_port_programs_checks() {
    let mut rig = rig("xe3");
    let table = DistributionTable::new(TxPolicy::Failover, 1).with_active(&[0, 1]);
    rig.engine.publish(&table).expect("publish");
    let m0 = rig.members[0];
    let mut lacpdu = vec![0u8; 124];
    lacpdu[0..6].copy_from_slice(&[0x01, 0x80, 0xc2, 0, 0, 0x02]);
    lacpdu[12..14].copy_from_slice(&0x8809u16.to_be_bytes());
    lacpdu[14] = 1;
    // No LACP on this port: dropped, never data.
    assert_eq!(rig.engine.test_run(&lacpdu, m0).expect("run"), XDP_DROP);
    rig.engine.set_control(m0, true, false).expect("control");
    assert_eq!(rig.engine.test_run(&lacpdu, m0).expect("run"), XDP_PASS);
    // Not collecting: data dropped, LACP still passes.
    rig.engine.set_collecting(m0, false).expect("collecting");
    assert_eq!(
        rig.engine.test_run(&frames::udp4(1), m0).expect("run"),
        XDP_DROP
    );
    assert_eq!(rig.engine.test_run(&lacpdu, m0).expect("run"), XDP_PASS);
    let c = rig.engine.counters(0).expect("counters");
    assert_eq!(c[EngineCounter::Unsolicited as usize], 1);
    assert_eq!(c[EngineCounter::SlowProtocol as usize], 2);
    assert_eq!(c[EngineCounter::NotCollecting as usize], 1);
    assert_eq!(c[EngineCounter::RxPackets as usize], 0);
    // A device that is not one of the lagg's passes untouched.
    assert_eq!(
        rig.engine.test_run(&frames::udp4(1), 1).expect("run on lo"),
        XDP_PASS
    );
}

#[test]
fn a_member_marked_lost_is_left_before_any_publish() {
    let mut rig = rig("xe4");
    // Every kernel this project supports has BTF and raw tracepoints; the watch must load.
    rig.engine
        .watch_transmit()
        .expect("the transmit watch (raw tracepoint on xdp_devmap_xmit)");
    let words = rig.engine.lost_words().expect("lost-member words");
    let epoch = xlagg_common::LOST_EPOCH as usize;
    let flows: Vec<Vec<u8>> = (0..200).map(frames::udp4).collect();
    for policy in [
        TxPolicy::Hash {
            layers: HashLayers::DEFAULT,
        },
        TxPolicy::Failover,
        TxPolicy::RoundRobin { limit: 1 },
    ] {
        // Member 0 is the master (failover) and carries a share of the flows.
        let table = DistributionTable::new(policy, 11).with_active(&[0, 1, 2, 3]);
        rig.engine.publish(&table).expect("publish");
        let before: Vec<Vec<MemberIndex>> = flows.iter().map(|f| rig.place(f).1).collect();
        assert!(
            before.iter().any(|t| t.as_slice() == [0]),
            "{policy:?}: member 0 unused"
        );
        // A worker (or the transmit watch) marks member 0: no publish follows.
        let count = words.get(epoch);
        assert!(words.mark(0, epoch), "{policy:?}: mark");
        assert!(
            !words.mark(0, epoch),
            "{policy:?}: a second mark is no news"
        );
        assert_eq!(words.get(epoch), count + 1);
        let without = table.with_active(&[1, 2, 3]);
        let mut rr = RoundRobinCursor::default();
        for (i, f) in flows.iter().enumerate() {
            let (action, to) = rig.place(f);
            assert_eq!(action, XDP_REDIRECT, "{policy:?}, flow {i}");
            assert_ne!(to, [0], "{policy:?}: flow {i} still on the marked member");
            if let TxPolicy::Hash { .. } | TxPolicy::Failover = policy {
                let Egress::Port(want) = workers(&without, &mut rr, f) else {
                    panic!("workers drop flow {i}");
                };
                assert_eq!(
                    to,
                    [want],
                    "{policy:?}: flow {i} not where the next table puts it"
                );
                if before[i] != [0] && matches!(policy, TxPolicy::Hash { .. }) {
                    assert_eq!(to, before[i], "flow {i} moved though its member was fine");
                }
            }
        }
        // Two members marked: the fallback for one still names the other; such frames drop.
        assert!(words.mark(1, epoch));
        let both = flows.iter().filter(|f| rig.place(f).0 == XDP_DROP).count();
        if matches!(policy, TxPolicy::Failover) {
            assert_eq!(both, flows.len(), "failover over 0 and 1 marked: 1 is next");
        }
        // Cleared (as the control thread does when the member is usable again): the table,
        // never changed, applies again.
        assert!(words.clear(0, epoch) && words.clear(1, epoch));
        assert!(!words.clear(0, epoch), "a clear word stays clear");
        if !matches!(policy, TxPolicy::RoundRobin { .. }) {
            let after: Vec<Vec<MemberIndex>> = flows.iter().map(|f| rig.place(f).1).collect();
            assert_eq!(after, before, "{policy:?}: placement not restored");
        }
    }
}

/// Whether interface `name` in namespace `ns` has its carrier (`LOWER_UP`).
fn has_carrier(ns: &str, name: &str) -> bool {
    let out = std::process::Command::new("ip")
        .args(["-n", ns, "-o", "link", "show", name])
        .output()
        .expect("ip");
    assert!(out.status.success(), "ip link show {name} in {ns}");
    String::from_utf8_lossy(&out.stdout).contains("LOWER_UP")
}

/// Runs `ip -n ns args`, which must succeed.
fn ip(ns: &str, args: &[&str]) {
    let ok = std::process::Command::new("ip")
        .arg("-n")
        .arg(ns)
        .args(args)
        .status()
        .expect("ip");
    assert!(ok.success(), "ip {args:?} in {ns}");
}

#[test]
fn the_drop_watch_marks_a_member_without_carrier_and_no_other() {
    let mut rig = rig("xe5");
    rig.engine
        .watch_drops()
        .expect("the drop watch (raw tracepoint on kfree_skb)");
    let words = rig.engine.lost_words().expect("lost-member words");
    let epoch = xlagg_common::LOST_EPOCH as usize;
    let (app, ptr) = (rig._bed.ns("app"), rig._bed.ns("ptr"));
    // The copy-mode AF_XDP transmit's path (`__dev_direct_xmit`), from a packet socket that
    // bypasses the qdisc: `n` frames of at least `size` bytes; how many the kernel refused.
    let send = |member: usize, n: usize, size: usize| {
        let socket = xlagg_sys::afpacket::PacketSocket::bind(rig.members[member], 0x0800)
            .expect("packet socket");
        const PACKET_QDISC_BYPASS: libc::c_int = 20;
        let on: libc::c_int = 1;
        // SAFETY: setsockopt with a live int of the size passed.
        let rc = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&socket),
                libc::SOL_PACKET,
                PACKET_QDISC_BYPASS,
                std::ptr::addr_of!(on).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "PACKET_QDISC_BYPASS");
        let mut refused = 0;
        for i in 0..n {
            let mut frame = frames::udp4(i as u16);
            frame.resize(frame.len().max(size), 0);
            if socket.send(&frame).is_err() {
                refused += 1;
            }
        }
        refused
    };
    // Members with carrier: frames go, nothing is marked.
    assert_eq!(send(1, 50, 0), 0, "xlm1 takes frames");
    // A member with carrier whose frames the kernel drops (too long for its partner end):
    // buffers dropped for it, and no mark.
    ip(&ptr, &["link", "set", "xlp1", "mtu", "1280"]);
    assert!(has_carrier(&app, "xlm1"));
    assert_eq!(
        send(1, 20, 1400),
        20,
        "xlp1 (MTU 1280) took 1400-byte frames"
    );
    assert_eq!(
        words.get(1),
        0,
        "a member with carrier is marked for a drop"
    );
    assert_eq!(words.get(epoch), 0, "no mark yet");
    // xlm0's partner end goes down: xlm0 loses its carrier (a veth's peer close takes it).
    assert!(has_carrier(&app, "xlm0"));
    ip(&ptr, &["link", "set", "xlp0", "down"]);
    assert!(
        !has_carrier(&app, "xlm0"),
        "xlm0 keeps its carrier after its peer went down"
    );
    let refused = send(0, 5, 0);
    assert!(
        refused > 0,
        "the kernel took every frame for xlm0 without carrier"
    );
    assert_ne!(
        words.get(0),
        0,
        "xlm0 dropped frames without carrier and is not marked"
    );
    assert_eq!(words.get(epoch), 1, "one mark, one change");
    for m in 1..4 {
        assert_eq!(words.get(m), 0, "xlm{m} marked though its carrier stayed");
    }
    // Marked once: more drops do not count as news.
    send(0, 5, 0);
    assert_eq!(words.get(epoch), 1, "a marked member is not marked again");
    // A member the lagg does not hold is never marked: xlm3 leaves, then loses its carrier.
    rig.engine.detach(rig.members[3]);
    ip(&ptr, &["link", "set", "xlp3", "down"]);
    assert!(!has_carrier(&app, "xlm3"));
    assert!(
        send(3, 5, 0) > 0,
        "the kernel took frames for xlm3 without carrier"
    );
    assert_eq!(words.get(3), 0, "a member that left was marked");
    assert_eq!(
        words.get(epoch),
        1,
        "a device outside the lagg moved the count"
    );
}
