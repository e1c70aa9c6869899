//! The XDP program xlagg attaches to every port it serves (members, the forward port and the
//! host-side port of `laggN`).
//!
//! Per frame, in this order:
//! 1. shorter than an Ethernet header: drop, count `Malformed`;
//! 2. ethertype 0x8809 (LACP, Marker): where the control path runs LACP, `XDP_PASS` to the
//!    kernel, where its AF_PACKET socket reads it, whatever the port state; elsewhere drop,
//!    count `Unsolicited` (slow protocols are never data);
//! 3. to RFC 7130's micro-BFD MAC: where the control path runs micro-BFD and the frame is
//!    IPv4/UDP to port 6784 (not a fragment), `XDP_PASS`, count `Probe`; anything else to that
//!    MAC: drop, count `Unsolicited`;
//! 4. to the port's probe MAC (replies to the ARP/NS probe monitor): an ARP reply or an ICMPv6
//!    neighbour advertisement, `XDP_PASS`, count `Probe`; anything else: drop, `Unsolicited`;
//! 5. the port is not collecting (per-port state map written by userspace): drop, count
//!    `NotCollecting`;
//! 6. redirect to the AF_XDP socket of the receive queue; no socket: drop, count `NoSocket`.
//!
//! So a host on the member segment reaches the control path only with the frames it asked
//! for, and the member's own stack sees nothing else of a port that is not collecting.
//!
//! Built as `xdp.frags`: a jumbo frame arrives as one multi-buffer packet whose first buffer
//! holds every header read here, and goes to an AF_XDP socket bound with `XDP_USE_SG` as a
//! chain of descriptors. Attaching a frags program is also what lets a veth carry an MTU
//! above a page.
//!
//! One object is loaded per port, so each port has its own maps and can be attached and
//! detached on its own. No logging in this path. The benchmark's and tests' programs live in
//! their own object (`src/bench.rs`), never in this one.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    macros::{map, xdp},
    maps::{Array, PerCpuArray, XskMap},
    programs::XdpContext,
};
use xlagg_common::{
    PortState, XdpCounter, ETHERTYPE_SLOW, MAX_QUEUES, MICRO_BFD_MAC, MICRO_BFD_PORT,
};

#[map(name = "XLAGG_XSKS")]
static XSKS: XskMap = XskMap::with_max_entries(MAX_QUEUES, 0);

#[map(name = "XLAGG_PORT")]
static PORT_STATE: Array<PortState> = Array::with_max_entries(1, 0);

#[map(name = "XLAGG_COUNTERS")]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(XdpCounter::COUNT, 0);

const ETH_HLEN: usize = 14;

#[inline(always)]
fn count(counter: XdpCounter) {
    if let Some(slot) = COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: the pointer comes from a successful per-CPU map lookup, so it is valid for
        // this CPU's slot and nothing else writes it while this program runs on this CPU.
        unsafe { *slot += 1 };
    }
}

/// IPv4, not a fragment, UDP to the micro-BFD port (RFC 7130).
#[inline(always)]
fn is_micro_bfd(start: usize, end: usize, ethertype: u16) -> bool {
    if ethertype != 0x0800 || start + ETH_HLEN + 20 > end {
        return false;
    }
    let ip = start + ETH_HLEN;
    // SAFETY: the 20-byte IPv4 header lies inside [start, end), checked above.
    let (version_ihl, frag, protocol) = unsafe {
        (
            *(ip as *const u8),
            u16::from_be_bytes(*((ip + 6) as *const [u8; 2])),
            *((ip + 9) as *const u8),
        )
    };
    if version_ihl >> 4 != 4 || protocol != 17 || frag & 0x3fff != 0 {
        return false;
    }
    let ihl = usize::from(version_ihl & 0x0f) * 4;
    if ihl < 20 {
        return false;
    }
    let udp = ip + ihl;
    if udp + 4 > end {
        return false;
    }
    // SAFETY: bytes 2 and 3 of the UDP header lie inside [start, end), checked above.
    let dport = unsafe { u16::from_be_bytes(*((udp + 2) as *const [u8; 2])) };
    dport == MICRO_BFD_PORT
}

/// An ARP reply, or an ICMPv6 neighbour advertisement right after the IPv6 header.
#[inline(always)]
fn is_probe_reply(start: usize, end: usize, ethertype: u16) -> bool {
    match ethertype {
        0x0806 => {
            if start + ETH_HLEN + 8 > end {
                return false;
            }
            // SAFETY: the ARP operation (bytes 6 and 7 of the ARP header) is inside the frame.
            let op = unsafe { u16::from_be_bytes(*((start + ETH_HLEN + 6) as *const [u8; 2])) };
            op == 2
        }
        0x86dd => {
            if start + ETH_HLEN + 41 > end {
                return false;
            }
            // SAFETY: the next-header byte and the first ICMPv6 byte are inside the frame.
            let (next, icmp_type) = unsafe {
                (
                    *((start + ETH_HLEN + 6) as *const u8),
                    *((start + ETH_HLEN + 40) as *const u8),
                )
            };
            next == 58 && icmp_type == 136
        }
        _ => false,
    }
}

#[xdp(frags)]
pub fn xlagg_port(ctx: XdpContext) -> u32 {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + ETH_HLEN > end {
        count(XdpCounter::Malformed);
        return xdp_action::XDP_DROP;
    }
    // SAFETY: bytes 12 and 13 lie inside [start, end), checked just above.
    let ethertype = unsafe {
        u16::from_be_bytes([*((start + 12) as *const u8), *((start + 13) as *const u8)])
    };
    let state = PORT_STATE.get(0).copied().unwrap_or(PortState::collecting(false));
    if ethertype == ETHERTYPE_SLOW {
        if state.has(PortState::LACP) {
            count(XdpCounter::SlowProtocol);
            return xdp_action::XDP_PASS;
        }
        count(XdpCounter::Unsolicited);
        return xdp_action::XDP_DROP;
    }
    // SAFETY: the six destination bytes lie inside [start, end), checked above.
    let dst = unsafe { *(start as *const [u8; 6]) };
    if dst == MICRO_BFD_MAC {
        if state.has(PortState::BFD) && is_micro_bfd(start, end, ethertype) {
            count(XdpCounter::Probe);
            return xdp_action::XDP_PASS;
        }
        count(XdpCounter::Unsolicited);
        return xdp_action::XDP_DROP;
    }
    if dst == state.probe_mac && state.probe_mac != [0; 6] {
        if is_probe_reply(start, end, ethertype) {
            count(XdpCounter::Probe);
            return xdp_action::XDP_PASS;
        }
        count(XdpCounter::Unsolicited);
        return xdp_action::XDP_DROP;
    }
    let collecting = state.is_collecting();
    if !collecting {
        count(XdpCounter::NotCollecting);
        return xdp_action::XDP_DROP;
    }
    match XSKS.redirect(ctx.rx_queue_index(), 0) {
        Ok(action) => {
            count(XdpCounter::Redirected);
            action
        }
        Err(_) => {
            count(XdpCounter::NoSocket);
            xdp_action::XDP_DROP
        }
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
