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
//! A member that stops taking frames is left at once, before the control thread has heard of
//! a link change: the kernel reports every devmap flush on the `xdp_devmap_xmit` tracepoint,
//! where this object's transmit watch marks a member whose flush failed whole (its word in
//! `XLAGG_EDOWN`); a frame whose pick is a marked member is placed by the table without it
//! (`XLAGG_EFALL`, written with every publish: the table the control thread publishes once it
//! has seen the member go, so no flow moves twice). The control thread clears the word when
//! the member is usable again (and retries a marked member it still sees up once a second).
//! The AF_XDP workers share the words (mapped into their memory); for them this object's drop
//! watch marks a member the kernel drops a frame for once its carrier went, and a worker marks
//! a member whose device is down, so both engines leave a dead member within microseconds.
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
    helpers::{bpf_ktime_get_ns, bpf_probe_read_kernel, bpf_xdp_get_buff_len},
    macros::{map, raw_tracepoint, xdp},
    maps::{Array, DevMapHash, HashMap, PerCpuArray},
    programs::{RawTracePointContext, XdpContext},
};
use filter::{classify, Verdict};
use packet::Packet;
use xlagg_common::{
    engine_policy, hash, EngineCounter, EngineCounters, EnginePort, EngineTable, XdpCounter,
    LOST_EPOCH, LOST_WORDS, ENGINE_MEMBERS, ENGINE_SLOTS, ENGINE_UPPER_SLOT,
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

/// `BPF_F_MMAPABLE`: the AF_XDP workers map the words into their memory.
const BPF_F_MMAPABLE: u32 = 1 << 10;

#[map(name = "XLAGG_EDOWN")]
static DOWN: Array<u64> = Array::with_max_entries(LOST_WORDS, BPF_F_MMAPABLE);

#[map(name = "XLAGG_EFALL")]
static FALLBACK: Array<EngineTable> = Array::with_max_entries(2 * ENGINE_MEMBERS, 0);

/// The byte offset of `ifindex` in `struct net_device`, set at load from the running kernel's
/// BTF (0: unknown, the watch does nothing).
#[no_mangle]
static XLAGG_IFINDEX_OFFSET: u32 = 0;

/// The byte offset of `state` (the `__LINK_STATE_*` bits) in `struct net_device`, set as
/// above.
#[no_mangle]
static XLAGG_STATE_OFFSET: u32 = 0;

/// The byte offset of `dev` in `struct sk_buff`, set as above (the drop watch reads the device
/// a dropped buffer was for).
#[no_mangle]
static XLAGG_SKB_DEV_OFFSET: u32 = 0;

/// `__LINK_STATE_NOCARRIER`: set by `netif_carrier_off` the moment the driver (or, for a
/// veth, the peer's close) takes the carrier.
const NOCARRIER: u64 = 1 << 2;

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

/// The field of the kernel object at `base` that lies at the offset the global `offset` holds
/// (one of the offsets above); `None` when the offset is unknown (0) or the read faults.
#[inline(always)]
fn read_field<T>(base: *const u8, offset: &'static u32) -> Option<T> {
    // SAFETY: a read-only global the loader sets before the program loads.
    let offset = unsafe { core::ptr::read_volatile(offset) };
    if offset == 0 {
        return None;
    }
    // SAFETY: a checked kernel read (a fault reads as an error, never as a crash).
    unsafe { bpf_probe_read_kernel(base.wrapping_add(offset as usize) as *const T) }.ok()
}

/// The index of device `dev` (a `struct net_device *`); 0 when unknown.
#[inline(always)]
fn ifindex_of(dev: *const u8) -> u32 {
    read_field::<u32>(dev, &XLAGG_IFINDEX_OFFSET).unwrap_or(0)
}

/// Whether device `dev` (a `struct net_device *`) has no carrier.
#[inline(always)]
fn no_carrier(dev: *const u8) -> bool {
    read_field::<u64>(dev, &XLAGG_STATE_OFFSET).is_some_and(|state| state & NOCARRIER != 0)
}

/// The member slot of device `ifindex` when it is a member of this lagg not marked yet.
#[inline(always)]
fn unmarked_member(ifindex: u32) -> Option<u32> {
    // SAFETY: the value is copied out at once.
    let slot = unsafe { PORTS.get(&ifindex) }.map(|p| p.slot)?;
    (slot < ENGINE_MEMBERS && !is_down(slot)).then_some(slot)
}

/// Marks member `slot` as unable to transmit.
#[inline(always)]
fn mark_lost(slot: u32, now: u64) {
    // SAFETY: pointers from successful array lookups; a word is written whole.
    unsafe {
        if let Some(word) = DOWN.get_ptr_mut(slot) {
            core::ptr::write_volatile(word, now | 1);
        }
        if let Some(epoch) = DOWN.get_ptr_mut(LOST_EPOCH) {
            // Not atomic (the BPF target has no read-modify-write in `core`): two marks at
            // the same instant may count once, which still reads as a change.
            core::ptr::write_volatile(epoch, core::ptr::read_volatile(epoch).wrapping_add(1));
        }
    }
}

/// A member's devmap flushes have taken nothing for this long: it is marked. Long enough that
/// a receiver busy for a moment (its ring full until its NAPI runs, tens of microseconds) is
/// not taken for a dead one; short enough that a switchover stays well under a millisecond.
const STALL_NS: u64 = 250_000;

/// Streaks of whole-flush failures in progress: ifindex -> [first, last] (ns).
#[map(name = "XLAGG_ESTALL")]
static STALLS: HashMap<u32, [u64; 2]> = HashMap::with_max_entries(ENGINE_SLOTS, 0);

/// How many streaks may be in progress (so a healthy flush costs nothing while none is).
#[map(name = "XLAGG_ESTALLN")]
static STALLING: Array<u64> = Array::with_max_entries(1, 0);

/// The transmit watch: the kernel's report of every devmap flush (`xdp:xdp_devmap_xmit`,
/// arguments `from_dev, to_dev, sent, drops, err`).
/// - a flush to a member without carrier (the kernel's own link-state bit, which the driver
///   clears the moment it sees the link go) marks it at once, as does a flush that failed
///   with an error (`err` < 0: the device refused every frame, e.g. a veth whose peer is
///   down);
/// - flushes that take nothing (`sent` 0: the device's ring stays full, e.g. a NIC that stops
///   draining when its link goes) mark it once they have done so for [`STALL_NS`]; any flush
///   that sends ends the streak.
#[raw_tracepoint(tracepoint = "xdp_devmap_xmit")]
pub fn xlagg_tx_watch(ctx: RawTracePointContext) -> i32 {
    let sent = ctx.arg::<u64>(2) as i32;
    let drops = ctx.arg::<u64>(3) as i32;
    let err = ctx.arg::<u64>(4) as i32;
    let stalling = STALLING.get_ptr_mut(0);
    let dev: *const u8 = ctx.arg(1);
    let lost = no_carrier(dev) || err < 0;
    if !lost && (sent > 0 || drops <= 0) {
        // The common case: nothing to look up unless a streak is in progress.
        let Some(stalling) = stalling else {
            return 0;
        };
        // SAFETY: a successful array lookup.
        if unsafe { core::ptr::read_volatile(stalling) } == 0 {
            return 0;
        }
        let ifindex = ifindex_of(dev);
        // SAFETY: only the presence is read.
        if unsafe { STALLS.get(&ifindex) }.is_some() && STALLS.remove(&ifindex).is_ok() {
            // SAFETY: as above; approximate (not atomic), which only costs lookups.
            unsafe { *stalling = (*stalling).saturating_sub(1) };
        }
        return 0;
    }
    let ifindex = ifindex_of(dev);
    let Some(slot) = unmarked_member(ifindex) else {
        return 0;
    };
    // SAFETY: a helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    if lost {
        mark_lost(slot, now);
        return 0;
    }
    // SAFETY: the value is copied out at once.
    let streak = unsafe { STALLS.get(&ifindex) }.copied();
    match streak {
        // A streak whose last failure is old was ended by sends in between.
        Some([first, last]) if now.wrapping_sub(last) < STALL_NS => {
            if now.wrapping_sub(first) >= STALL_NS {
                mark_lost(slot, now);
            } else {
                let _ = STALLS.insert(&ifindex, &[first, now], 0);
            }
        }
        Some(_) => {
            let _ = STALLS.insert(&ifindex, &[now, now], 0);
        }
        None => {
            if STALLS.insert(&ifindex, &[now, now], 0).is_ok() {
                if let Some(stalling) = stalling {
                    // SAFETY: a successful array lookup; approximate, as above.
                    unsafe { *stalling += 1 };
                }
            }
        }
    }
    0
}

/// The drop watch, for the AF_XDP engine: the kernel's report of every buffer dropped
/// (`skb:kfree_skb`, first argument the `struct sk_buff *`). A copy-mode AF_XDP transmit to a
/// device without carrier is dropped before the driver sees it (`__dev_direct_xmit`), so the
/// first frame a worker sends to a member whose carrier went marks the member. The carrier
/// bit decides, not the drop: a device whose receiver's ring is full drops too (and the
/// worker's `sendto` answers EBUSY alike) but keeps its carrier, and is not marked.
#[raw_tracepoint(tracepoint = "kfree_skb")]
pub fn xlagg_drop_watch(ctx: RawTracePointContext) -> i32 {
    let skb: *const u8 = ctx.arg(0);
    let Some(dev) = read_field::<u64>(skb, &XLAGG_SKB_DEV_OFFSET) else {
        return 0;
    };
    let dev = dev as *const u8;
    // Most drops anywhere on the machine end here: one more kernel read.
    if dev.is_null() || !no_carrier(dev) {
        return 0;
    }
    if let Some(slot) = unmarked_member(ifindex_of(dev)) {
        // SAFETY: a helper without arguments.
        mark_lost(slot, unsafe { bpf_ktime_get_ns() });
    }
    0
}

/// Whether member slot `m` is marked as unable to transmit (its word).
#[inline(always)]
fn is_down(m: u32) -> bool {
    DOWN.get(m).is_some_and(|&w| w != 0)
}

/// The member `table` picks: `h` is the frame's flow hash (hash policy) and `n` this CPU's
/// round-robin count; `None`: no active member.
#[inline(always)]
fn pick(table: &EngineTable, h: u32, n: u64) -> Option<u32> {
    let active = (table.active_len as usize).min(ENGINE_MEMBERS as usize);
    if active == 0 {
        return None;
    }
    match table.policy {
        engine_policy::FAILOVER => Some(u32::from(table.active[0])),
        engine_policy::HASH => Some(u32::from(
            table.buckets[h as usize & (table.buckets.len() - 1)],
        )),
        engine_policy::ROUND_ROBIN => {
            let turn = n.checked_div(u64::from(table.rr_limit.max(1))).unwrap_or(0);
            // Below `active` <= 32, so the mask changes nothing but shows the verifier (which
            // does not bound a remainder) that the index is in bounds; `black_box` keeps the
            // compiler from dropping it.
            let at = turn.checked_rem(active as u64).unwrap_or(0) as usize;
            let at = core::hint::black_box(at) & (ENGINE_MEMBERS as usize - 1);
            table.active.get(at).map(|&m| u32::from(m))
        }
        _ => None,
    }
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
    let (h, n) = match table.policy {
        engine_policy::FIXED if table.fixed < ENGINE_MEMBERS => {
            return send(slot, table.fixed, bytes)
        }
        engine_policy::FIXED => return drop(slot, EngineCounter::NotRedirected),
        _ if active == 0 => return drop(slot, EngineCounter::NoActivePort),
        engine_policy::HASH => {
            let packet = Packet {
                ctx: ctx.ctx,
                start,
                end,
            };
            (hash::hash_frame(&packet, table.layers as u8, table.seed), 0)
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
            (0, n)
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
        engine_policy::FAILOVER => (0, 0),
        _ => return drop(slot, EngineCounter::NoActivePort),
    };
    let Some(mut member) = pick(table, h, n) else {
        return drop(slot, EngineCounter::NoActivePort);
    };
    if member < ENGINE_MEMBERS && is_down(member) {
        // The member stopped taking frames; the control thread has not republished yet.
        let Some(fallback) = FALLBACK.get_ptr(copy * ENGINE_MEMBERS + member) else {
            return drop(slot, EngineCounter::NoActivePort);
        };
        // SAFETY: as for `table`: written only while its copy is not live.
        member = match pick(unsafe { &*fallback }, h, n) {
            Some(m) if !is_down(m) => m,
            _ => return drop(slot, EngineCounter::NoActivePort),
        };
    }
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
