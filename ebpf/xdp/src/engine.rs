//! The lagg's object for the engines that distribute in the kernel: the XDP engine (one XDP
//! program on every member and on the upper port) and the tc host path (two tc programs: on
//! laggN's egress and on every member's ingress), over the same maps and the same rules, and
//! the watches of every engine (`watch.rs`). One object per lagg.
//!
//! The XDP engine, per frame:
//! 1. the port is looked up by ingress ifindex (`XLAGG_EPORTS`); a device that is not one of
//!    the lagg's passes untouched;
//! 2. the port checks of `xlagg_common::filter`, exactly as the AF_XDP engine's port program
//!    makes them (slow protocols, micro-BFD and probe replies to the control path, not
//!    collecting);
//! 3. a member's data frame is redirected to the upper port;
//! 4. an upper port's data frame is placed by the live table ([`place`]: `XLAGG_ESEL` picks
//!    one of the two copies in `XLAGG_ETABLE`; the control thread writes the other copy and
//!    then flips the selector, so a frame reads one whole table, old or new): failover to the
//!    first active member, loadbalance and lacp through the bucket of the shared flow hash,
//!    roundrobin `rr_limit` frames at a time on a per-CPU count, broadcast to every active
//!    member at once (`BPF_F_BROADCAST` over the copy's broadcast devmap), none dropped.
//!
//! The tc host path (`host.rs`) makes the same checks and the same placement on skbs, so the
//! host's own traffic keeps its segmentation and checksum offloads end to end.
//!
//! A member that stops taking frames is left at once, before the control thread has heard of
//! a link change: a watch marks it (its word in `XLAGG_EDOWN`) and a frame whose pick is a
//! marked member is placed by the table without it (`XLAGG_EFALL`, written with every publish:
//! the table the control thread publishes once it has seen the member go, so no flow moves
//! twice). The control thread clears the word when the member is usable again (and retries a
//! marked member it still sees up once a second). The AF_XDP workers share the words (mapped
//! into their memory).
//!
//! Counters per slot and reason live in one per-CPU array. Multi-buffer (jumbo) frames are
//! redirected whole; the kernel cannot clone them for an XDP broadcast, so there they are
//! dropped and counted (the configuration refuses a broadcast lagg with a jumbo MTU on that
//! engine).
#![no_std]
#![no_main]

mod host;
mod packet;
mod watch;

use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_ktime_get_ns, bpf_xdp_get_buff_len},
    macros::{map, xdp},
    maps::{Array, DevMapHash, HashMap, PerCpuArray},
    programs::XdpContext,
};
use packet::Packet;
use xlagg_common::filter::{classify, FrameVerdict};
use xlagg_common::limit::{Control, TokenBucket};
use xlagg_common::{
    engine_policy, hash, BucketHits, EngineCounter, EngineCounters, EnginePort, EngineTable,
    XdpCounter, ENGINE_BUCKETS, ENGINE_MEMBERS, ENGINE_SLOTS, ENGINE_UPPER_SLOT, LOST_WORDS,
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

#[map(name = "XLAGG_EBKT")]
static BUCKETS: PerCpuArray<BucketHits> = PerCpuArray::with_max_entries(1, 0);

/// `BPF_F_MMAPABLE`: the AF_XDP workers map the words into their memory.
const BPF_F_MMAPABLE: u32 = 1 << 10;

#[map(name = "XLAGG_EDOWN")]
static DOWN: Array<u64> = Array::with_max_entries(LOST_WORDS, BPF_F_MMAPABLE);

#[map(name = "XLAGG_EFALL")]
static FALLBACK: Array<EngineTable> = Array::with_max_entries(2 * ENGINE_MEMBERS, 0);

/// The control-path rate limits: a token bucket per slot and [`Control`] kind (per CPU).
#[map(name = "XLAGG_ELIMIT")]
static LIMITS: PerCpuArray<TokenBucket> =
    PerCpuArray::with_max_entries(ENGINE_SLOTS * Control::COUNT, 0);

/// Whether a control frame of `kind` on `slot` is within its rate (this CPU's bucket).
#[inline(always)]
fn admit(slot: u32, kind: Control) -> bool {
    let Some(bucket) = LIMITS.get_ptr_mut(slot * Control::COUNT + kind as u32) else {
        return false;
    };
    // SAFETY: this CPU's slot of a successful per-CPU lookup; a helper without arguments.
    unsafe { (*bucket).take(bpf_ktime_get_ns(), kind.rate()) }
}

/// Slot -> ifindex (members by slot, laggN at the upper slot): where the tc host path
/// redirects (it cannot read a devmap).
#[map(name = "XLAGG_EIFX")]
static IFINDEX: Array<u32> = Array::with_max_entries(ENGINE_SLOTS, 0);

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

/// The engine's counter of a port check's reason.
#[inline(always)]
const fn reason(counter: XdpCounter) -> EngineCounter {
    match counter {
        XdpCounter::NotCollecting => EngineCounter::NotCollecting,
        XdpCounter::SlowProtocol => EngineCounter::SlowProtocol,
        XdpCounter::Probe => EngineCounter::Probe,
        XdpCounter::Unsolicited => EngineCounter::Unsolicited,
        XdpCounter::RateLimited => EngineCounter::RateLimited,
        XdpCounter::LinkLocal => EngineCounter::LinkLocal,
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
            add2(
                from,
                EngineCounter::RxPackets,
                1,
                Some((EngineCounter::RxBytes, bytes)),
            );
            add2(
                to,
                EngineCounter::TxPackets,
                1,
                Some((EngineCounter::TxBytes, bytes)),
            );
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

/// The live copy of the table (0 or 1) and the table itself.
#[inline(always)]
fn live_table() -> Option<(u32, &'static EngineTable)> {
    let copy = SELECT.get(0).copied().unwrap_or(0) & 1;
    let table = TABLES.get_ptr(copy)?;
    // SAFETY: a successful array lookup points at a whole value for the program's run; the
    // control thread writes only the copy the selector does not name.
    Some((copy, unsafe { &*table }))
}

/// This CPU's next round-robin count.
#[inline(always)]
fn next_turn() -> Option<u64> {
    let count = RR.get_ptr_mut(0)?;
    // SAFETY: this CPU's slot of a successful per-CPU lookup.
    Some(unsafe {
        let n = *count;
        *count = n.wrapping_add(1);
        n
    })
}

/// The member a frame goes to by `table` (copy `copy` of the live tables), for the failover,
/// hash and round-robin policies: `h` is its flow hash, `n` this CPU's round-robin count. A
/// member marked lost is replaced by the pick of the table without it. `Err`: why the frame
/// is dropped.
#[inline(always)]
fn place(table: &EngineTable, copy: u32, h: u32, n: u64) -> Result<u32, EngineCounter> {
    let mut member = pick(table, h, n).ok_or(EngineCounter::NoActivePort)?;
    if table.policy == engine_policy::HASH {
        if let Some(hits) = BUCKETS.get_ptr_mut(0) {
            // SAFETY: this CPU's value of a successful per-CPU lookup; the index is masked
            // to the array's length.
            unsafe {
                let slot = &mut (*hits).n[h as usize & (ENGINE_BUCKETS - 1)];
                *slot = slot.wrapping_add(1);
            }
        }
    }
    if member < ENGINE_MEMBERS && is_down(member) {
        // The member stopped taking frames; the control thread has not republished yet.
        let fallback = FALLBACK
            .get_ptr(copy * ENGINE_MEMBERS + member)
            .ok_or(EngineCounter::NoActivePort)?;
        // SAFETY: as for the live table: written only while its copy is not live.
        member = match pick(unsafe { &*fallback }, h, n) {
            Some(m) if !is_down(m) => m,
            _ => return Err(EngineCounter::NoActivePort),
        };
    }
    if member >= ENGINE_MEMBERS {
        return Err(EngineCounter::NotRedirected);
    }
    Ok(member)
}

#[xdp(frags)]
pub fn xlagg_engine(ctx: XdpContext) -> u32 {
    let ifindex = ctx.ingress_ifindex() as u32;
    // SAFETY: the value is copied out at once; the control thread replaces entries whole.
    let Some(port) = (unsafe { PORTS.get(ifindex) }).copied() else {
        return xdp_action::XDP_PASS;
    };
    let slot = port.slot;
    if slot >= ENGINE_SLOTS {
        return xdp_action::XDP_DROP;
    }
    let packet = Packet::of(&ctx);
    match classify(&packet, &port.state()) {
        FrameVerdict::Data => {}
        FrameVerdict::Pass(kind) if admit(slot, kind) => {
            add(slot, reason(kind.counter()), 1);
            return xdp_action::XDP_PASS;
        }
        FrameVerdict::Pass(_) => return drop(slot, EngineCounter::RateLimited),
        FrameVerdict::Drop(counter) => return drop(slot, reason(counter)),
    }
    // SAFETY: the context is the one the kernel passed to this program.
    let bytes = unsafe { bpf_xdp_get_buff_len(ctx.ctx) };
    if port.flags & EnginePort::UPPER == 0 {
        return send(slot, ENGINE_UPPER_SLOT, bytes);
    }
    let Some((copy, table)) = live_table() else {
        return drop(slot, EngineCounter::NotRedirected);
    };
    let active = (table.active_len as usize).min(ENGINE_MEMBERS as usize);
    let (h, n) = match table.policy {
        engine_policy::FIXED if table.fixed < ENGINE_MEMBERS => {
            return send(slot, table.fixed, bytes)
        }
        engine_policy::FIXED => return drop(slot, EngineCounter::NotRedirected),
        _ if active == 0 => return drop(slot, EngineCounter::NoActivePort),
        engine_policy::HASH => (hash::hash_frame(&packet, table.layers as u8, table.seed), 0),
        engine_policy::ROUND_ROBIN => match next_turn() {
            Some(n) => (0, n),
            None => return drop(slot, EngineCounter::NotRedirected),
        },
        engine_policy::BROADCAST => {
            if bytes > (packet.end - packet.start) as u64 {
                // A multi-buffer frame: the kernel cannot clone it for every member.
                return drop(slot, EngineCounter::NotRedirected);
            }
            let map = if copy == 0 { &BCAST0 } else { &BCAST1 };
            let flags = BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS;
            return match map.redirect(0, flags | u64::from(xdp_action::XDP_DROP)) {
                Ok(action) => {
                    add2(
                        slot,
                        EngineCounter::RxPackets,
                        1,
                        Some((EngineCounter::RxBytes, bytes)),
                    );
                    for i in 0..ENGINE_MEMBERS as usize {
                        if i < active {
                            let m = u32::from(table.active[i]);
                            add2(
                                m,
                                EngineCounter::TxPackets,
                                1,
                                Some((EngineCounter::TxBytes, bytes)),
                            );
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
    match place(table, copy, h, n) {
        Ok(member) => send(slot, member, bytes),
        Err(counter) => drop(slot, counter),
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
