//! The checks every port of a lagg makes before a frame is data, shared by the port program
//! (AF_XDP engine) and the XDP engine, so a hostile segment meets the same rules in both:
//!
//! 1. shorter than an Ethernet header: drop, `Malformed`;
//! 2. ethertype 0x8809 (LACP, Marker): where the control path runs LACP, pass to the kernel
//!    (its AF_PACKET socket reads it) whatever the port state; elsewhere drop, `Unsolicited`;
//! 3. to RFC 7130's micro-BFD MAC: where the control path runs micro-BFD and the frame is
//!    IPv4/UDP to port 6784 (not a fragment), pass, `Probe`; anything else to it: drop,
//!    `Unsolicited`;
//! 4. to the port's probe MAC: an ARP reply or an ICMPv6 neighbour advertisement, pass,
//!    `Probe`; anything else: drop, `Unsolicited`;
//! 5. the port is not collecting: drop, `NotCollecting`;
//! 6. otherwise the frame is data.

use aya_ebpf::bindings::xdp_action;
use xlagg_common::{PortState, XdpCounter, ETHERTYPE_SLOW, MICRO_BFD_MAC, MICRO_BFD_PORT};

/// Ethernet header length.
pub const ETH_HLEN: usize = 14;

/// What becomes of a frame.
pub enum Verdict {
    /// Data: the engine decides.
    Data,
    /// Not data: return this action and count this reason.
    Done(u32, XdpCounter),
}

/// Applies the checks above to the frame in `[start, end)` on a port in `state`.
#[inline(always)]
pub fn classify(start: usize, end: usize, state: &PortState) -> Verdict {
    if start + ETH_HLEN > end {
        return Verdict::Done(xdp_action::XDP_DROP, XdpCounter::Malformed);
    }
    // SAFETY: bytes 12 and 13 lie inside [start, end), checked just above.
    let ethertype = unsafe {
        u16::from_be_bytes([*((start + 12) as *const u8), *((start + 13) as *const u8)])
    };
    if ethertype == ETHERTYPE_SLOW {
        if state.has(PortState::LACP) {
            return Verdict::Done(xdp_action::XDP_PASS, XdpCounter::SlowProtocol);
        }
        return Verdict::Done(xdp_action::XDP_DROP, XdpCounter::Unsolicited);
    }
    // SAFETY: the six destination bytes lie inside [start, end), checked above.
    let dst = unsafe { *(start as *const [u8; 6]) };
    if dst == MICRO_BFD_MAC {
        if state.has(PortState::BFD) && is_micro_bfd(start, end, ethertype) {
            return Verdict::Done(xdp_action::XDP_PASS, XdpCounter::Probe);
        }
        return Verdict::Done(xdp_action::XDP_DROP, XdpCounter::Unsolicited);
    }
    if dst == state.probe_mac && state.probe_mac != [0; 6] {
        if is_probe_reply(start, end, ethertype) {
            return Verdict::Done(xdp_action::XDP_PASS, XdpCounter::Probe);
        }
        return Verdict::Done(xdp_action::XDP_DROP, XdpCounter::Unsolicited);
    }
    if !state.is_collecting() {
        return Verdict::Done(xdp_action::XDP_DROP, XdpCounter::NotCollecting);
    }
    Verdict::Data
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
