//! The checks every port of a lagg makes before a frame is data, in one place for every
//! engine (the AF_XDP engine's port program, the XDP engine, the tc host path), so a hostile
//! segment meets the same rules whichever engine runs:
//!
//! 1. shorter than an Ethernet header: drop, `Malformed`;
//! 2. ethertype 0x8809: where the control path runs LACP, an LACPDU or a Marker PDU (subtype 1
//!    or 2) to the Slow Protocols address (01-80-C2-00-00-02) passes to the kernel (its
//!    AF_PACKET socket reads it) whatever the port state; any other slow-protocol frame, and
//!    every one elsewhere, is dropped, `Unsolicited`;
//! 3. to RFC 7130's micro-BFD MAC: where the control path runs micro-BFD and the frame is
//!    IPv4/UDP to port 6784 (not a fragment), pass, `Probe`; anything else to it: drop,
//!    `Unsolicited`;
//! 4. to the port's probe MAC: an ARP reply or an ICMPv6 neighbour advertisement, pass,
//!    `Probe`; anything else: drop, `Unsolicited`;
//! 5. on the forward port, an IEEE 802.1 link-local frame (to 01-80-C2-00-00-00..0F) from
//!    downstream: drop, `LinkLocal` (unless the configuration forwards them);
//! 6. the port is not collecting: drop, `NotCollecting`;
//! 7. otherwise the frame is data.
//!
//! What passes is rate-limited by the program per port and per kind ([`crate::limit`]).
//!
//! Generic over [`FrameBytes`], so the BPF programs read their packets their own way and the
//! host tests read a byte slice.

use crate::hash::FrameBytes;
use crate::limit::Control;
use crate::{PortState, XdpCounter, ETHERTYPE_SLOW, MICRO_BFD_MAC, MICRO_BFD_PORT};

/// IEEE 802.3's Slow Protocols multicast address, the only destination of LACPDUs and Marker
/// PDUs.
pub const SLOW_PROTOCOLS_MAC: [u8; 6] = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x02];

/// Slow protocol subtypes the control path runs: LACP and Marker.
const LACP_SUBTYPE: u8 = 1;
const MARKER_SUBTYPE: u8 = 2;

/// Ethernet header length.
pub const ETH_HLEN: usize = 14;

/// What becomes of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameVerdict {
    /// Data: the engine decides.
    Data,
    /// To the kernel's stack (the control path's sockets), within this kind's rate.
    Pass(Control),
    /// Dropped, counted under this reason.
    Drop(XdpCounter),
}

/// Applies the checks above to `frame` on a port in `state`.
#[inline(always)]
pub fn classify<F: FrameBytes + ?Sized>(frame: &F, state: &PortState) -> FrameVerdict {
    // Nearly every frame has its first 38 bytes: one read for the destination and ethertype.
    let (dst, ethertype) = match frame.head() {
        Some(h) => (
            [h[0], h[1], h[2], h[3], h[4], h[5]],
            u16::from_be_bytes([h[12], h[13]]),
        ),
        None => match (frame.be32(0), frame.be16(4), frame.be16(12)) {
            (Some(a), Some(b), Some(t)) => {
                let [a0, a1, a2, a3] = a.to_be_bytes();
                let [b0, b1] = b.to_be_bytes();
                ([a0, a1, a2, a3, b0, b1], t)
            }
            _ => return FrameVerdict::Drop(XdpCounter::Malformed),
        },
    };
    if ethertype == ETHERTYPE_SLOW {
        let subtype = frame.byte(ETH_HLEN);
        if state.has(PortState::LACP)
            && dst == SLOW_PROTOCOLS_MAC
            && matches!(subtype, Some(LACP_SUBTYPE | MARKER_SUBTYPE))
        {
            return FrameVerdict::Pass(Control::Slow);
        }
        return FrameVerdict::Drop(XdpCounter::Unsolicited);
    }
    if dst == MICRO_BFD_MAC {
        if state.has(PortState::BFD) && is_micro_bfd(frame, ethertype) {
            return FrameVerdict::Pass(Control::Bfd);
        }
        return FrameVerdict::Drop(XdpCounter::Unsolicited);
    }
    if dst == state.probe_mac && state.probe_mac != [0; 6] {
        if is_probe_reply(frame, ethertype) {
            return FrameVerdict::Pass(Control::ProbeReply);
        }
        return FrameVerdict::Drop(XdpCounter::Unsolicited);
    }
    if state.has(PortState::DROP_LINK_LOCAL)
        && dst[..5] == SLOW_PROTOCOLS_MAC[..5]
        && dst[5] <= 0x0f
    {
        return FrameVerdict::Drop(XdpCounter::LinkLocal);
    }
    if !state.is_collecting() {
        return FrameVerdict::Drop(XdpCounter::NotCollecting);
    }
    FrameVerdict::Data
}

/// IPv4, not a fragment, UDP to the micro-BFD port (RFC 7130).
#[inline(always)]
fn is_micro_bfd<F: FrameBytes + ?Sized>(frame: &F, ethertype: u16) -> bool {
    if ethertype != 0x0800 {
        return false;
    }
    let ip = ETH_HLEN;
    let (Some(version_ihl), Some(frag), Some(protocol)) =
        (frame.byte(ip), frame.be16(ip + 6), frame.byte(ip + 9))
    else {
        return false;
    };
    if version_ihl >> 4 != 4 || protocol != 17 || frag & 0x3fff != 0 {
        return false;
    }
    let ihl = usize::from(version_ihl & 0x0f) * 4;
    if ihl < 20 {
        return false;
    }
    frame.be16(ip + ihl + 2) == Some(MICRO_BFD_PORT)
}

/// An ARP reply, or an ICMPv6 neighbour advertisement right after the IPv6 header.
#[inline(always)]
fn is_probe_reply<F: FrameBytes + ?Sized>(frame: &F, ethertype: u16) -> bool {
    match ethertype {
        0x0806 => frame.be16(ETH_HLEN + 6) == Some(2),
        0x86dd => frame.byte(ETH_HLEN + 6) == Some(58) && frame.byte(ETH_HLEN + 40) == Some(136),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(flags: u32, probe_mac: [u8; 6]) -> PortState {
        PortState {
            flags,
            reserved: 0,
            probe_mac,
            pad: [0; 2],
        }
    }

    fn frame(dst: [u8; 6], ethertype: u16, body: &[u8]) -> [u8; 128] {
        let mut f = [0u8; 128];
        f[..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        f[14..14 + body.len()].copy_from_slice(body);
        f
    }

    const US: [u8; 6] = [2, 0, 0, 0, 0, 9];
    const PROBE: [u8; 6] = [2, 0x78, 0x6c, 0, 0, 9];

    #[test]
    fn short_frames_are_malformed() {
        let s = state(PortState::COLLECTING, [0; 6]);
        assert_eq!(
            classify(&[0u8; 13][..], &s),
            FrameVerdict::Drop(XdpCounter::Malformed)
        );
        // Shorter than the 38-byte fast read but a whole header: data.
        assert_eq!(
            classify(&frame(US, 0x0800, &[])[..20], &s),
            FrameVerdict::Data
        );
    }

    #[test]
    fn slow_protocols_go_to_the_control_path_only_where_lacp_runs() {
        let f = frame(SLOW_PROTOCOLS_MAC, 0x8809, &[1, 1]);
        let lacp = state(PortState::LACP, [0; 6]);
        assert_eq!(classify(&f[..], &lacp), FrameVerdict::Pass(Control::Slow));
        let marker = frame(SLOW_PROTOCOLS_MAC, 0x8809, &[2, 1]);
        assert_eq!(
            classify(&marker[..], &lacp),
            FrameVerdict::Pass(Control::Slow)
        );
        assert_eq!(
            classify(&f[..], &state(PortState::COLLECTING, [0; 6])),
            FrameVerdict::Drop(XdpCounter::Unsolicited)
        );
    }

    #[test]
    fn slow_protocol_frames_to_another_address_or_of_another_subtype_are_dropped() {
        let lacp = state(PortState::LACP | PortState::COLLECTING, [0; 6]);
        // An LACPDU to a unicast MAC, or to the broadcast address.
        for dst in [US, [0xff; 6]] {
            assert_eq!(
                classify(&frame(dst, 0x8809, &[1, 1])[..], &lacp),
                FrameVerdict::Drop(XdpCounter::Unsolicited)
            );
        }
        // OAM (3), OSSP (10), and an unknown subtype, to the right address.
        for subtype in [3, 10, 0x7f] {
            assert_eq!(
                classify(&frame(SLOW_PROTOCOLS_MAC, 0x8809, &[subtype, 1])[..], &lacp),
                FrameVerdict::Drop(XdpCounter::Unsolicited)
            );
        }
    }

    #[test]
    fn micro_bfd_needs_ipv4_udp_6784_unfragmented() {
        let mut ip = [0u8; 28];
        ip[0] = 0x45;
        ip[9] = 17;
        ip[22..24].copy_from_slice(&6784u16.to_be_bytes());
        let bfd = state(PortState::BFD | PortState::COLLECTING, [0; 6]);
        let f = frame(MICRO_BFD_MAC, 0x0800, &ip);
        assert_eq!(classify(&f[..], &bfd), FrameVerdict::Pass(Control::Bfd));
        let off = state(PortState::COLLECTING, [0; 6]);
        assert_eq!(
            classify(&f[..], &off),
            FrameVerdict::Drop(XdpCounter::Unsolicited)
        );
        let mut fragment = ip;
        fragment[6] = 0x20;
        assert_eq!(
            classify(&frame(MICRO_BFD_MAC, 0x0800, &fragment)[..], &bfd),
            FrameVerdict::Drop(XdpCounter::Unsolicited)
        );
        let mut other_port = ip;
        other_port[22..24].copy_from_slice(&3784u16.to_be_bytes());
        assert_eq!(
            classify(&frame(MICRO_BFD_MAC, 0x0800, &other_port)[..], &bfd),
            FrameVerdict::Drop(XdpCounter::Unsolicited)
        );
    }

    #[test]
    fn only_replies_to_the_probe_mac_pass() {
        let s = state(PortState::COLLECTING, PROBE);
        let mut arp = [0u8; 28];
        arp[6..8].copy_from_slice(&2u16.to_be_bytes());
        assert_eq!(
            classify(&frame(PROBE, 0x0806, &arp)[..], &s),
            FrameVerdict::Pass(Control::ProbeReply)
        );
        arp[7] = 1;
        assert_eq!(
            classify(&frame(PROBE, 0x0806, &arp)[..], &s),
            FrameVerdict::Drop(XdpCounter::Unsolicited)
        );
        let mut na = [0u8; 48];
        na[6] = 58;
        na[40] = 136;
        assert_eq!(
            classify(&frame(PROBE, 0x86dd, &na)[..], &s),
            FrameVerdict::Pass(Control::ProbeReply)
        );
        // No probe MAC set: an all-zero destination is data, not a probe reply.
        let none = state(PortState::COLLECTING, [0; 6]);
        assert_eq!(
            classify(&frame([0; 6], 0x0806, &arp)[..], &none),
            FrameVerdict::Data
        );
    }

    #[test]
    fn link_local_frames_from_downstream_stop_at_the_forward_port() {
        let forward = state(PortState::COLLECTING | PortState::DROP_LINK_LOCAL, [0; 6]);
        for last in [0x00, 0x01, 0x03, 0x0e] {
            let dst = [0x01, 0x80, 0xc2, 0, 0, last];
            assert_eq!(
                classify(&frame(dst, 0x0027, &[0x42, 0x42, 3])[..], &forward),
                FrameVerdict::Drop(XdpCounter::LinkLocal),
                "01-80-c2-00-00-{last:02x}"
            );
        }
        // 01-80-C2-00-00-10 and beyond are not link-local.
        let dst = [0x01, 0x80, 0xc2, 0, 0, 0x10];
        assert_eq!(
            classify(&frame(dst, 0x0800, &[0x45])[..], &forward),
            FrameVerdict::Data
        );
        // Where the configuration forwards them (no flag), they are data.
        let open = state(PortState::COLLECTING, [0; 6]);
        let stp = [0x01, 0x80, 0xc2, 0, 0, 0];
        assert_eq!(
            classify(&frame(stp, 0x0027, &[0x42])[..], &open),
            FrameVerdict::Data
        );
    }

    #[test]
    fn data_needs_a_collecting_port() {
        let f = frame(US, 0x0800, &[0x45]);
        assert_eq!(
            classify(&f[..], &state(PortState::COLLECTING, [0; 6])),
            FrameVerdict::Data
        );
        assert_eq!(
            classify(&f[..], &state(0, [0; 6])),
            FrameVerdict::Drop(XdpCounter::NotCollecting)
        );
    }
}
