//! The watches: raw tracepoint programs that mark a member lost (its word in `XLAGG_EDOWN`)
//! the moment the kernel shows it cannot transmit, before the control thread hears of a link
//! change. One per engine, each on the kernel's report of that engine's transmit:
//! - the transmit watch (`xdp_devmap_xmit`, the XDP engine's devmap flushes);
//! - the drop watch (`kfree_skb`, the AF_XDP engine's copy-mode transmits, dropped without
//!   carrier before the driver);
//! - the queue watch (`net_dev_queue`, every skb handed to a device's queue: the tc host
//!   path's redirects), which sees a member without carrier at the first skb sent to it;
//! - the redirect watch (`xdp_redirect_err`, an XDP redirect the kernel refused before any
//!   flush: the XDP engine's devmap slot of a member that cannot take XDP frames at all, such
//!   as a veth whose far end runs neither XDP nor GRO), which marks the member, counts the
//!   frame on it and keeps the kernel's error for the control thread to explain.
//!
//! These tracepoints fire for every device of the machine, in every network namespace, and an
//! ifindex names a device only inside its own namespace: a device elsewhere with the same
//! index (a container's, or one any user makes in a user namespace) is not a member. So a
//! device counts only when its ifindex is a member's **and** its namespace is the lagg's
//! (the namespace's cookie, compared through `dev->nd_net.net->net_cookie`). The offsets of
//! those fields come from the running kernel's BTF; where one is unknown (0) the watch marks
//! nothing.

use aya_ebpf::{
    helpers::{bpf_ktime_get_ns, bpf_probe_read_kernel},
    macros::{map, raw_tracepoint},
    maps::{Array, HashMap},
    programs::RawTracePointContext,
};
use xlagg_common::{EngineCounter, ENGINE_MEMBERS, ENGINE_SLOTS, LOST_EPOCH};

use crate::{add, is_down, DOWN, PORTS};

/// The byte offset of `ifindex` in `struct net_device`, set at load from the running kernel's
/// BTF (0: unknown, the watch does nothing).
#[no_mangle]
static XLAGG_IFINDEX_OFFSET: u32 = 0;

/// The byte offset of `state` (the `__LINK_STATE_*` bits) in `struct net_device`, set as
/// above.
#[no_mangle]
static XLAGG_STATE_OFFSET: u32 = 0;

/// The byte offset of `dev` in `struct sk_buff`, set as above (the drop and queue watches
/// read the device a buffer was for).
#[no_mangle]
static XLAGG_SKB_DEV_OFFSET: u32 = 0;

/// The byte offset of `nd_net` (its `struct net *`) in `struct net_device`, set as above.
#[no_mangle]
static XLAGG_NETDEV_NET_OFFSET: u32 = 0;

/// The byte offset of `net_cookie` in `struct net`, set as above.
#[no_mangle]
static XLAGG_NET_COOKIE_OFFSET: u32 = 0;

/// The cookie of the lagg's network namespace (`SO_NETNS_COOKIE`), set at load.
#[no_mangle]
static XLAGG_NETNS_COOKIE: u64 = 0;

/// `__LINK_STATE_NOCARRIER`: set by `netif_carrier_off` the moment the driver (or, for a
/// veth, the peer's close) takes the carrier.
const NOCARRIER: u64 = 1 << 2;

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

/// Whether device `dev` lives in the lagg's network namespace.
#[inline(always)]
fn in_our_namespace(dev: *const u8) -> bool {
    // SAFETY: a read-only global the loader sets before the program loads.
    let ours = unsafe { core::ptr::read_volatile(&XLAGG_NETNS_COOKIE) };
    let Some(net) = read_field::<u64>(dev, &XLAGG_NETDEV_NET_OFFSET) else {
        return false;
    };
    ours != 0 && read_field::<u64>(net as *const u8, &XLAGG_NET_COOKIE_OFFSET) == Some(ours)
}

/// The member slot of device `dev` when it is a member of this lagg (its index and its
/// namespace) not marked yet.
#[inline(always)]
fn unmarked_member(dev: *const u8) -> Option<u32> {
    let ifindex = ifindex_of(dev);
    // SAFETY: the value is copied out at once.
    let slot = unsafe { PORTS.get(ifindex) }.map(|p| p.slot)?;
    (slot < ENGINE_MEMBERS && !is_down(slot) && in_our_namespace(dev)).then_some(slot)
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

/// Marks the member `dev` is, if it is one of ours without carrier.
#[inline(always)]
fn mark_if_member_without_carrier(dev: *const u8) {
    // Most buffers anywhere on the machine end here: one kernel read.
    if dev.is_null() || !no_carrier(dev) {
        return;
    }
    if let Some(slot) = unmarked_member(dev) {
        // SAFETY: a helper without arguments.
        mark_lost(slot, unsafe { bpf_ktime_get_ns() });
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
        if unsafe { STALLS.get(ifindex) }.is_some() && STALLS.remove(ifindex).is_ok() {
            // SAFETY: as above; approximate (not atomic), which only costs lookups.
            unsafe { *stalling = (*stalling).saturating_sub(1) };
        }
        return 0;
    }
    let Some(slot) = unmarked_member(dev) else {
        return 0;
    };
    let ifindex = ifindex_of(dev);
    // SAFETY: a helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    if lost {
        mark_lost(slot, now);
        return 0;
    }
    // SAFETY: the value is copied out at once.
    let streak = unsafe { STALLS.get(ifindex) }.copied();
    match streak {
        // A streak whose last failure is old was ended by sends in between.
        Some([first, last]) if now.wrapping_sub(last) < STALL_NS => {
            if now.wrapping_sub(first) >= STALL_NS {
                mark_lost(slot, now);
            } else {
                let _ = STALLS.insert(ifindex, [first, now], 0);
            }
        }
        Some(_) => {
            let _ = STALLS.insert(ifindex, [now, now], 0);
        }
        None => {
            if STALLS.insert(ifindex, [now, now], 0).is_ok() {
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
    if let Some(dev) = read_field::<u64>(skb, &XLAGG_SKB_DEV_OFFSET) {
        mark_if_member_without_carrier(dev as *const u8);
    }
    0
}

/// The queue watch, for the tc host path: the kernel's report of every buffer handed to a
/// device's transmit queue (`net:net_dev_queue`, first argument the `struct sk_buff *`, whose
/// `dev` is the device). The host path's redirect hands a member its skbs there; the first one
/// after its carrier went marks it, whether its driver then drops the skb (a veth whose peer
/// is down) or its queue holds it (a NIC that stopped its queues with the link).
#[raw_tracepoint(tracepoint = "net_dev_queue")]
pub fn xlagg_queue_watch(ctx: RawTracePointContext) -> i32 {
    let skb: *const u8 = ctx.arg(0);
    if let Some(dev) = read_field::<u64>(skb, &XLAGG_SKB_DEV_OFFSET) {
        mark_if_member_without_carrier(dev as *const u8);
    }
    0
}

/// The id of the engine's slot devmap (`XLAGG_ETX`), written by the loader once the maps
/// exist: the redirect watch takes only its refusals.
#[map(name = "XLAGG_ETXID")]
static TX_MAP_ID: Array<u32> = Array::with_max_entries(1, 0);

/// Per member slot, the last error the kernel refused a redirect to it with (positive errno;
/// 0: none), for the control thread to explain.
#[map(name = "XLAGG_EREFUSED")]
static REFUSED: Array<u32> = Array::with_max_entries(ENGINE_MEMBERS, 0);

/// The redirect watch: the kernel's report of an XDP redirect it refused before any flush
/// (`xdp:xdp_redirect_err`, arguments `dev, xdp, tgt, err, map_type, map_id, index`). A
/// refusal to a member slot of this engine's devmap counts a frame not redirected on the
/// member, keeps the error, and marks the member, so its frames go to the others until the
/// control thread, which says why, tries it again.
#[raw_tracepoint(tracepoint = "xdp_redirect_err")]
pub fn xlagg_redirect_watch(ctx: RawTracePointContext) -> i32 {
    let map_id = ctx.arg::<u64>(5) as u32;
    let ours = TX_MAP_ID.get(0).copied().unwrap_or(0);
    if ours == 0 || map_id != ours {
        return 0;
    }
    let slot = ctx.arg::<u64>(6) as u32;
    if slot >= ENGINE_MEMBERS {
        return 0;
    }
    add(slot, EngineCounter::NotRedirected, 1);
    let err = (ctx.arg::<u64>(3) as i32).unsigned_abs();
    if let Some(word) = REFUSED.get_ptr_mut(slot) {
        // SAFETY: a successful array lookup; a u32 written whole.
        unsafe { core::ptr::write_volatile(word, err) };
    }
    if !is_down(slot) {
        // SAFETY: a helper without arguments.
        mark_lost(slot, unsafe { bpf_ktime_get_ns() });
    }
    0
}
