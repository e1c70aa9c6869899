//! The XDP program xlagg attaches to every port it serves (members, the forward port and the
//! host-side port of `laggN`).
//!
//! Per frame, in this order:
//! 1. shorter than an Ethernet header: drop, count `Malformed`;
//! 2. ethertype 0x8809 (LACP, Marker): `XDP_PASS` to the kernel, where the control thread's
//!    AF_PACKET socket reads it; never to the workers, whatever the port state;
//! 3. to RFC 7130's micro-BFD MAC or to the port's probe MAC (replies to the ARP/NS probe
//!    monitor): `XDP_PASS` to the control path, count `Probe`, whatever the port state;
//! 4. the port is not collecting (per-port state map written by userspace): drop, count
//!    `NotCollecting`;
//! 5. redirect to the AF_XDP socket of the receive queue; no socket: drop, count `NoSocket`.
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
use xlagg_common::{PortState, XdpCounter, ETHERTYPE_SLOW, MAX_QUEUES, MICRO_BFD_MAC};

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

#[xdp]
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
    if ethertype == ETHERTYPE_SLOW {
        count(XdpCounter::SlowProtocol);
        return xdp_action::XDP_PASS;
    }
    // SAFETY: the six destination bytes lie inside [start, end), checked above.
    let dst = unsafe { *(start as *const [u8; 6]) };
    let (collecting, probe_mac) = match PORT_STATE.get(0) {
        Some(state) => (state.is_collecting(), state.probe_mac),
        None => (false, [0; 6]),
    };
    if dst == MICRO_BFD_MAC || (dst == probe_mac && probe_mac != [0; 6]) {
        count(XdpCounter::Probe);
        return xdp_action::XDP_PASS;
    }
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
