//! The tc host path: a host-mode lagg's own traffic stays an skb from the host's socket to
//! the member's driver and back, so the kernel's segmentation (TSO/GSO), checksum offload,
//! VLAN tags in metadata and GRO are kept whole. Two programs over the engine's maps and
//! rules:
//! - `xlagg_host_out` on laggN's egress: places each skb by the live table ([`crate::place`],
//!   the flow hash of `xlagg_common::hash`, the lost-member fallback), and redirects it to the
//!   member's egress (`bpf_redirect`); broadcast clones it to every active member;
//! - `xlagg_host_in` on every member's ingress (after the driver's GRO): the port checks of
//!   `xlagg_common::filter` (control frames to the control path's sockets, nothing on a port
//!   that is not collecting), then redirects the skb into laggN's receive path
//!   (`bpf_redirect` with `BPF_F_INGRESS`), as if laggN had received it.
//!
//! A GSO skb is counted as the segments it carries (`gso_segs`), with its bytes.

use aya_ebpf::{
    bindings::{__sk_buff, TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT},
    helpers::{bpf_clone_redirect, bpf_redirect, bpf_skb_load_bytes},
    macros::classifier,
    programs::TcContext,
};
use xlagg_common::filter::{classify, FrameVerdict};
use xlagg_common::hash::{self, FrameBytes};
use xlagg_common::{engine_policy, EngineCounter, ENGINE_MEMBERS, ENGINE_UPPER_SLOT};

use crate::{add, add2, admit, live_table, next_turn, place, reason, IFINDEX, PORTS};

/// `bpf_redirect` flag: into the device's receive path instead of its transmit path.
const BPF_F_INGRESS: u64 = 1;

/// The bytes of an skb, read through `bpf_skb_load_bytes` (which reads across the linear
/// part and the fragments of a GRO or GSO skb alike).
struct Skb(*mut __sk_buff);

impl Skb {
    #[inline(always)]
    fn read<const N: usize>(&self, at: usize) -> Option<[u8; N]> {
        let mut buf = [0u8; N];
        if at > 0xffff {
            return None;
        }
        // SAFETY: the helper writes at most N bytes into `buf`, which has N, and fails when
        // [at, at + N) is not inside the packet.
        let rc = unsafe {
            bpf_skb_load_bytes(
                self.0 as *const _,
                at as u32,
                buf.as_mut_ptr().cast(),
                N as u32,
            )
        };
        (rc == 0).then_some(buf)
    }
}

impl FrameBytes for Skb {
    #[inline(always)]
    fn byte(&self, at: usize) -> Option<u8> {
        self.read::<1>(at).map(|b| b[0])
    }

    #[inline(always)]
    fn be16(&self, at: usize) -> Option<u16> {
        self.read::<2>(at).map(u16::from_be_bytes)
    }

    #[inline(always)]
    fn be32(&self, at: usize) -> Option<u32> {
        self.read::<4>(at).map(u32::from_be_bytes)
    }

    #[inline(always)]
    fn be64(&self, at: usize) -> Option<u64> {
        self.read::<8>(at).map(u64::from_be_bytes)
    }

    #[inline(always)]
    fn head(&self) -> Option<[u8; 38]> {
        self.read::<38>(0)
    }
}

/// An skb whose VLAN tag rides in metadata (a VLAN subinterface over laggN with transmit tag
/// offload), read as the frame the wire will carry: the tag between the source MAC and the
/// ethertype. So the flow hash sees the VLAN id as the other engines see it in the bytes.
/// Reads never straddle the tag except the tag's own two fields, which is all the hash reads.
struct Tagged {
    skb: Skb,
    tpid: u16,
    tci: u16,
}

impl Tagged {
    /// Where virtual offset `at` (`n` bytes) lies in the skb's bytes, or the tag itself.
    #[inline(always)]
    fn map(&self, at: usize, n: usize) -> Option<usize> {
        if at + n <= 12 {
            Some(at)
        } else if at >= 16 {
            Some(at - 4)
        } else {
            None
        }
    }
}

impl FrameBytes for Tagged {
    #[inline(always)]
    fn byte(&self, at: usize) -> Option<u8> {
        self.skb.byte(self.map(at, 1)?)
    }

    #[inline(always)]
    fn be16(&self, at: usize) -> Option<u16> {
        match at {
            12 => Some(self.tpid),
            14 => Some(self.tci),
            _ => self.skb.be16(self.map(at, 2)?),
        }
    }

    #[inline(always)]
    fn be32(&self, at: usize) -> Option<u32> {
        self.skb.be32(self.map(at, 4)?)
    }

    #[inline(always)]
    fn be64(&self, at: usize) -> Option<u64> {
        self.skb.be64(self.map(at, 8)?)
    }

    #[inline(always)]
    fn head(&self) -> Option<[u8; 38]> {
        // A tagged frame takes the hash's general path.
        None
    }
}

/// Packets and bytes an skb stands for on the wire.
#[inline(always)]
fn size(skb: *mut __sk_buff) -> (u64, u64) {
    // SAFETY: the context's skb pointer is valid for the whole run.
    let (segs, len) = unsafe { ((*skb).gso_segs, (*skb).len) };
    (u64::from(segs.max(1)), u64::from(len))
}

/// The device in slot `slot` (0: none).
#[inline(always)]
fn device(slot: u32) -> u32 {
    IFINDEX.get(slot).copied().unwrap_or(0)
}

#[inline(always)]
fn shot(slot: u32, counter: EngineCounter) -> i32 {
    add(slot, counter, 1);
    TC_ACT_SHOT
}

/// Redirects to the egress of member `to`, counting on the upper port and the member.
#[inline(always)]
fn out(to: u32, packets: u64, bytes: u64) -> i32 {
    let ifindex = device(to);
    if ifindex == 0 {
        return shot(ENGINE_UPPER_SLOT, EngineCounter::NotRedirected);
    }
    // SAFETY: a helper taking plain values.
    let action = unsafe { bpf_redirect(ifindex, 0) } as i32;
    if action != TC_ACT_REDIRECT {
        return shot(ENGINE_UPPER_SLOT, EngineCounter::NotRedirected);
    }
    add2(
        ENGINE_UPPER_SLOT,
        EngineCounter::RxPackets,
        packets,
        Some((EngineCounter::RxBytes, bytes)),
    );
    add2(
        to,
        EngineCounter::TxPackets,
        packets,
        Some((EngineCounter::TxBytes, bytes)),
    );
    action
}

/// laggN's egress: what the host sends, placed on a member.
#[classifier]
pub fn xlagg_host_out(ctx: TcContext) -> i32 {
    let skb = ctx.skb.skb;
    let (packets, bytes) = size(skb);
    let Some((copy, table)) = live_table() else {
        return shot(ENGINE_UPPER_SLOT, EngineCounter::NotRedirected);
    };
    let active = (table.active_len as usize).min(ENGINE_MEMBERS as usize);
    let (h, n) = match table.policy {
        engine_policy::FIXED if table.fixed < ENGINE_MEMBERS => {
            return out(table.fixed, packets, bytes)
        }
        engine_policy::FIXED => return shot(ENGINE_UPPER_SLOT, EngineCounter::NotRedirected),
        _ if active == 0 => return shot(ENGINE_UPPER_SLOT, EngineCounter::NoActivePort),
        engine_policy::HASH => {
            let layers = table.layers as u8;
            // SAFETY: the context's skb pointer is valid for the whole run.
            let (present, proto, tci) =
                unsafe { ((*skb).vlan_present, (*skb).vlan_proto, (*skb).vlan_tci) };
            let h = if present != 0 {
                let tagged = Tagged {
                    skb: Skb(skb),
                    tpid: u16::from_be(proto as u16),
                    tci: tci as u16,
                };
                hash::hash_frame(&tagged, layers, table.seed)
            } else {
                hash::hash_frame(&Skb(skb), layers, table.seed)
            };
            (h, 0)
        }
        engine_policy::ROUND_ROBIN => match next_turn() {
            Some(n) => (0, n),
            None => return shot(ENGINE_UPPER_SLOT, EngineCounter::NotRedirected),
        },
        engine_policy::BROADCAST => return broadcast(skb, table, active, packets, bytes),
        engine_policy::FAILOVER => (0, 0),
        _ => return shot(ENGINE_UPPER_SLOT, EngineCounter::NoActivePort),
    };
    match place(table, copy, h, n) {
        Ok(member) => out(member, packets, bytes),
        Err(counter) => shot(ENGINE_UPPER_SLOT, counter),
    }
}

/// A copy on every active member: clones to all but the last, which takes the skb itself.
#[inline(always)]
fn broadcast(
    skb: *mut __sk_buff,
    table: &xlagg_common::EngineTable,
    active: usize,
    packets: u64,
    bytes: u64,
) -> i32 {
    let mut last = ENGINE_MEMBERS;
    for i in 0..ENGINE_MEMBERS as usize {
        if i >= active {
            break;
        }
        let m = u32::from(table.active[i]);
        if m >= ENGINE_MEMBERS {
            continue;
        }
        if last < ENGINE_MEMBERS {
            let ifindex = device(last);
            // SAFETY: the helper takes the context's skb and plain values.
            let rc = unsafe { bpf_clone_redirect(skb, ifindex, 0) };
            if ifindex != 0 && rc == 0 {
                add2(
                    last,
                    EngineCounter::TxPackets,
                    packets,
                    Some((EngineCounter::TxBytes, bytes)),
                );
            } else {
                add(last, EngineCounter::NotRedirected, 1);
            }
        }
        last = m;
    }
    add2(
        ENGINE_UPPER_SLOT,
        EngineCounter::RxPackets,
        packets,
        Some((EngineCounter::RxBytes, bytes)),
    );
    if last >= ENGINE_MEMBERS {
        return shot(ENGINE_UPPER_SLOT, EngineCounter::NoActivePort);
    }
    let ifindex = device(last);
    // SAFETY: a helper taking plain values.
    let action = unsafe { bpf_redirect(ifindex, 0) } as i32;
    if ifindex == 0 || action != TC_ACT_REDIRECT {
        add(last, EngineCounter::NotRedirected, 1);
        return TC_ACT_SHOT;
    }
    add2(
        last,
        EngineCounter::TxPackets,
        packets,
        Some((EngineCounter::TxBytes, bytes)),
    );
    action
}

/// A member's ingress: control frames to the control path, data into laggN.
#[classifier]
pub fn xlagg_host_in(ctx: TcContext) -> i32 {
    let skb = ctx.skb.skb;
    // SAFETY: the context's skb pointer is valid for the whole run.
    let ifindex = unsafe { (*skb).ingress_ifindex };
    // SAFETY: the value is copied out at once; the control thread replaces entries whole.
    let Some(port) = (unsafe { PORTS.get(ifindex) }).copied() else {
        return TC_ACT_OK;
    };
    let slot = port.slot;
    if slot >= ENGINE_MEMBERS {
        return TC_ACT_OK;
    }
    match classify(&Skb(skb), &port.state()) {
        FrameVerdict::Data => {}
        FrameVerdict::Pass(kind) if admit(slot, kind) => {
            add(slot, reason(kind.counter()), 1);
            return TC_ACT_OK;
        }
        FrameVerdict::Pass(_) => return shot(slot, EngineCounter::RateLimited),
        FrameVerdict::Drop(counter) => return shot(slot, reason(counter)),
    }
    let upper = device(ENGINE_UPPER_SLOT);
    if upper == 0 {
        return shot(slot, EngineCounter::NotRedirected);
    }
    let (packets, bytes) = size(skb);
    // SAFETY: a helper taking plain values.
    let action = unsafe { bpf_redirect(upper, BPF_F_INGRESS) } as i32;
    if action != TC_ACT_REDIRECT {
        return shot(slot, EngineCounter::NotRedirected);
    }
    add2(
        slot,
        EngineCounter::RxPackets,
        packets,
        Some((EngineCounter::RxBytes, bytes)),
    );
    add2(
        ENGINE_UPPER_SLOT,
        EngineCounter::TxPackets,
        packets,
        Some((EngineCounter::TxBytes, bytes)),
    );
    action
}
