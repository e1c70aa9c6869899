//! The XDP engine: a lagg's distribution inside the XDP program, for devices where AF_XDP
//! copies every frame (veth, virtio, most cloud NICs). One object per lagg; its program is
//! attached to every member and to the upper port (the forward port, or laggN's peer).
//!
//! Per frame:
//! 1. the port is looked up by ingress ifindex (`XLAGG_EPORTS`); a device that is not one of
//!    the lagg's passes untouched;
//! 2. the port checks of `filter.rs`, exactly as the AF_XDP engine's port program makes them
//!    (slow protocols, micro-BFD and probe replies to the control path, not collecting);
//! 3. a member's data frame is redirected to the upper port;
//! 4. an upper port's data frame is distributed by the live table (`XLAGG_ESEL` picks one of
//!    the two copies in `XLAGG_ETABLE`; the control thread writes the other copy and then
//!    flips the selector, so a frame reads one whole table, old or new): failover to the
//!    first active member, loadbalance and lacp through the bucket of the shared flow hash,
//!    roundrobin `rr_limit` frames at a time on a per-CPU count, broadcast to every active
//!    member at once (`BPF_F_BROADCAST` over the copy's broadcast devmap), none dropped.
//!
//! Counters per slot and reason live in one per-CPU array. Multi-buffer (jumbo) frames are
//! redirected whole; the kernel cannot clone them for broadcast, so there they are dropped
//! and counted (the configuration refuses a broadcast lagg with a jumbo MTU on this engine).
#![no_std]
#![no_main]

mod filter;
mod packet;

use aya_ebpf::{
    bindings::xdp_action,
    helpers::bpf_xdp_get_buff_len,
    macros::{map, xdp},
    maps::{Array, DevMapHash, HashMap, PerCpuArray},
    programs::XdpContext,
};
use filter::{classify, Verdict};
use packet::Packet;
use xlagg_common::{
    engine_policy, hash, EngineCounter, EngineCounters, EnginePort, EngineTable, XdpCounter,
    ENGINE_MEMBERS, ENGINE_SLOTS, ENGINE_UPPER_SLOT,
};

#[map(name = "XLAGG_EPORTS")]
static PORTS: HashMap<u32, EnginePort> = HashMap::with_max_entries(ENGINE_SLOTS, 0);

#[map(name = "XLAGG_ETABLE")]
static TABLES: Array<EngineTable> = Array::with_max_entries(2, 0);

#[map(name = "XLAGG_ESEL")]
static SELECT: Array<u32> = Array::with_max_entries(1, 0);

#[map(name = "XLAGG_ETX")]
static TX: DevMapHash = DevMapHash::with_max_entries(ENGINE_SLOTS, 0);

#[map(name = "XLAGG_EBC0")]
static BCAST0: DevMapHash = DevMapHash::with_max_entries(ENGINE_MEMBERS, 0);

#[map(name = "XLAGG_EBC1")]
static BCAST1: DevMapHash = DevMapHash::with_max_entries(ENGINE_MEMBERS, 0);

#[map(name = "XLAGG_ERR")]
static RR: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "XLAGG_ECNT")]
static COUNTERS: PerCpuArray<EngineCounters> = PerCpuArray::with_max_entries(ENGINE_SLOTS, 0);

/// `bpf_redirect_map` flags: every entry of the map, except the ingress device.
const BPF_F_BROADCAST: u64 = 1 << 3;
const BPF_F_EXCLUDE_INGRESS: u64 = 1 << 4;

#[inline(always)]
fn add(slot: u32, counter: EngineCounter, n: u64) {
    add2(slot, counter, n, None);
}

/// Adds `n` to `counter` of `slot`, and the second count too when given (one lookup).
#[inline(always)]
fn add2(slot: u32, counter: EngineCounter, n: u64, also: Option<(EngineCounter, u64)>) {
    if let Some(p) = COUNTERS.get_ptr_mut(slot) {
        // SAFETY: a successful per-CPU lookup; only this CPU writes its slot, and one program
        // runs at a time on a CPU.
        let c = unsafe { &mut (*p).n };
        if let Some(v) = c.get_mut(counter as usize) {
            *v += n;
        }
        if let Some((counter, n)) = also {
            if let Some(v) = c.get_mut(counter as usize) {
                *v += n;
            }
        }
    }
}

#[inline(always)]
const fn reason(counter: XdpCounter) -> EngineCounter {
    match counter {
        XdpCounter::NotCollecting => EngineCounter::NotCollecting,
        XdpCounter::SlowProtocol => EngineCounter::SlowProtocol,
        XdpCounter::Probe => EngineCounter::Probe,
        XdpCounter::Unsolicited => EngineCounter::Unsolicited,
        XdpCounter::Malformed | XdpCounter::Redirected | XdpCounter::NoSocket => {
            EngineCounter::Malformed
        }
    }
}

/// Redirects to the device in slot `to`, counting on both ports.
#[inline(always)]
fn send(from: u32, to: u32, bytes: u64) -> u32 {
    match TX.redirect(to, u64::from(xdp_action::XDP_DROP)) {
        Ok(action) => {
            add2(from, EngineCounter::RxPackets, 1, Some((EngineCounter::RxBytes, bytes)));
            add2(to, EngineCounter::TxPackets, 1, Some((EngineCounter::TxBytes, bytes)));
            action
        }
        Err(_) => {
            add(from, EngineCounter::NotRedirected, 1);
            xdp_action::XDP_DROP
        }
    }
}

#[inline(always)]
fn drop(slot: u32, counter: EngineCounter) -> u32 {
    add(slot, counter, 1);
    xdp_action::XDP_DROP
}

#[xdp(frags)]
pub fn xlagg_engine(ctx: XdpContext) -> u32 {
    let ifindex = ctx.ingress_ifindex() as u32;
    // SAFETY: the value is copied out at once; the control thread replaces entries whole.
    let Some(port) = (unsafe { PORTS.get(&ifindex) }).copied() else {
        return xdp_action::XDP_PASS;
    };
    let slot = port.slot;
    if slot >= ENGINE_SLOTS {
        return xdp_action::XDP_DROP;
    }
    let (start, end) = (ctx.data(), ctx.data_end());
    if let Verdict::Done(action, counter) = classify(start, end, &port.state()) {
        add(slot, reason(counter), 1);
        return action;
    }
    // SAFETY: the context is the one the kernel passed to this program.
    let bytes = unsafe { bpf_xdp_get_buff_len(ctx.ctx) };
    if port.flags & EnginePort::UPPER == 0 {
        return send(slot, ENGINE_UPPER_SLOT, bytes);
    }
    let copy = SELECT.get(0).copied().unwrap_or(0) & 1;
    let Some(table) = TABLES.get_ptr(copy) else {
        return drop(slot, EngineCounter::NotRedirected);
    };
    // SAFETY: a successful array lookup points at a whole value for the program's run; the
    // control thread writes only the copy the selector does not name.
    let table = unsafe { &*table };
    let active = (table.active_len as usize).min(ENGINE_MEMBERS as usize);
    let member = match table.policy {
        engine_policy::FIXED => table.fixed,
        _ if active == 0 => return drop(slot, EngineCounter::NoActivePort),
        engine_policy::FAILOVER => u32::from(table.active[0]),
        engine_policy::HASH => {
            let packet = Packet {
                ctx: ctx.ctx,
                start,
                end,
            };
            let h = hash::hash_frame(&packet, table.layers as u8, table.seed);
            u32::from(table.buckets[h as usize & (table.buckets.len() - 1)])
        }
        engine_policy::ROUND_ROBIN => {
            let Some(count) = RR.get_ptr_mut(0) else {
                return drop(slot, EngineCounter::NotRedirected);
            };
            // SAFETY: this CPU's slot of a successful per-CPU lookup.
            let n = unsafe {
                let n = *count;
                *count = n.wrapping_add(1);
                n
            };
            let turn = n.checked_div(u64::from(table.rr_limit.max(1))).unwrap_or(0);
            // Below `active` <= 32, so the mask changes nothing but shows the verifier (which
            // does not bound a remainder) that the index is in bounds; `black_box` keeps the
            // compiler from dropping it.
            let at = turn.checked_rem(active as u64).unwrap_or(0) as usize;
            let at = core::hint::black_box(at) & (ENGINE_MEMBERS as usize - 1);
            match table.active.get(at) {
                Some(&m) => u32::from(m),
                None => return drop(slot, EngineCounter::NoActivePort),
            }
        }
        engine_policy::BROADCAST => {
            if bytes > (end - start) as u64 {
                // A multi-buffer frame: the kernel cannot clone it for every member.
                return drop(slot, EngineCounter::NotRedirected);
            }
            let map = if copy == 0 { &BCAST0 } else { &BCAST1 };
            let flags = BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS;
            return match map.redirect(0, flags | u64::from(xdp_action::XDP_DROP)) {
                Ok(action) => {
                    add2(slot, EngineCounter::RxPackets, 1, Some((EngineCounter::RxBytes, bytes)));
                    for i in 0..ENGINE_MEMBERS as usize {
                        if i < active {
                            let m = u32::from(table.active[i]);
                            add2(m, EngineCounter::TxPackets, 1, Some((EngineCounter::TxBytes, bytes)));
                        }
                    }
                    action
                }
                Err(_) => drop(slot, EngineCounter::NotRedirected),
            };
        }
        _ => return drop(slot, EngineCounter::NoActivePort),
    };
    if member >= ENGINE_MEMBERS {
        return drop(slot, EngineCounter::NotRedirected);
    }
    send(slot, member, bytes)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
