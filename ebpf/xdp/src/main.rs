//! The XDP program xlagg attaches to every port it serves (members, the forward port and the
//! host-side port of `laggN`).
//!
//! Per frame: the port checks of `xlagg_common::filter` (malformed, slow protocols, micro-BFD, probe
//! replies, not collecting; what goes to the control path within its rate, `xlagg_common::limit`), then data goes to the AF_XDP socket of the receive queue; no
//! socket: drop, count `NoSocket`.
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

mod packet;

use aya_ebpf::{
    bindings::xdp_action,
    helpers::bpf_ktime_get_ns,
    macros::{map, xdp},
    maps::{Array, PerCpuArray, XskMap},
    programs::XdpContext,
};
use packet::Packet;
use xlagg_common::filter::{classify, FrameVerdict};
use xlagg_common::limit::{Control, TokenBucket};
use xlagg_common::{PortState, XdpCounter, MAX_QUEUES};

#[map(name = "XLAGG_XSKS")]
static XSKS: XskMap = XskMap::with_max_entries(MAX_QUEUES, 0);

#[map(name = "XLAGG_PORT")]
static PORT_STATE: Array<PortState> = Array::with_max_entries(1, 0);

#[map(name = "XLAGG_COUNTERS")]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(XdpCounter::COUNT, 0);

#[map(name = "XLAGG_LIMIT")]
static LIMITS: PerCpuArray<TokenBucket> = PerCpuArray::with_max_entries(Control::COUNT, 0);

/// Whether a control frame of `kind` is within its rate on this port (this CPU's bucket).
#[inline(always)]
fn admit(kind: Control) -> bool {
    let Some(bucket) = LIMITS.get_ptr_mut(kind as u32) else {
        return false;
    };
    // SAFETY: this CPU's slot of a successful per-CPU lookup; a helper without arguments.
    unsafe { (*bucket).take(bpf_ktime_get_ns(), kind.rate()) }
}

#[inline(always)]
fn count(counter: XdpCounter) {
    if let Some(slot) = COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: the pointer comes from a successful per-CPU map lookup, so it is valid for
        // this CPU's slot and nothing else writes it while this program runs on this CPU.
        unsafe { *slot += 1 };
    }
}

#[xdp(frags)]
pub fn xlagg_port(ctx: XdpContext) -> u32 {
    let state = PORT_STATE
        .get(0)
        .copied()
        .unwrap_or(PortState::collecting(false));
    match classify(&Packet::of(&ctx), &state) {
        FrameVerdict::Data => {}
        FrameVerdict::Pass(kind) if admit(kind) => {
            count(kind.counter());
            return xdp_action::XDP_PASS;
        }
        FrameVerdict::Pass(_) => {
            count(XdpCounter::RateLimited);
            return xdp_action::XDP_DROP;
        }
        FrameVerdict::Drop(counter) => {
            count(counter);
            return xdp_action::XDP_DROP;
        }
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
