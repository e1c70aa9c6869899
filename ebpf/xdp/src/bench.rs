//! The programs of the benchmark and the namespace tests, in an object of their own so that
//! none of them ships in the appliance's port program:
//! - `xlagg_drop`: drops everything (a link that stays up but passes nothing);
//! - `xlagg_gen`: the in-kernel generator (`BPF_PROG_TEST_RUN` live frames);
//! - `xlagg_sink`: counts per flow, reorderings and latency at line rate, then drops;
//! - `xlagg_redirect`: the kernel's own forwarding between two devices, the reference;
//! - `xlagg_hash`: returns the shared flow hash of the frame it is run on (`BPF_PROG_TEST_RUN`),
//!   so tests compare the XDP side of the hash with the workers' on the same bytes;
//! - `xlagg_vlan_push` / `xlagg_vlan_pop` (tc): a VLAN subinterface where the kernel has no
//!   8021q: on egress, frames to one IPv4 prefix get the tag in skb metadata, exactly where a
//!   VLAN device with transmit tag offload puts it; on ingress, frames with that tag lose it.
//!
//! The drop, sink and redirect programs are `xdp.frags`, so they attach to devices with jumbo
//! MTUs and see a multi-buffer packet as one (the sink counts its whole length).
#![no_std]
#![no_main]

mod packet;

use aya_ebpf::bindings::{xdp_action, TC_ACT_SHOT, TC_ACT_UNSPEC};
use aya_ebpf::helpers::{bpf_ktime_get_ns, bpf_skb_vlan_pop, bpf_skb_vlan_push};
use aya_ebpf::macros::{classifier, map, xdp};
use aya_ebpf::maps::{Array, DevMap, PerCpuArray};
use aya_ebpf::programs::{TcContext, XdpContext};
use xlagg_common::{
    gen_offsets, hash, GenConfig, HashProbe, SinkCounter, VlanConfig, SINK_FLOWS,
    SINK_LATENCY_BUCKETS,
};

#[map(name = "XLAGG_HASHCF")]
static HASH_CONFIG: Array<HashProbe> = Array::with_max_entries(1, 0);

/// Returns the shared flow hash of the frame with the configured layers and seed (its return
/// value is the hash, not an XDP action: run only under `BPF_PROG_TEST_RUN`).
#[xdp]
pub fn xlagg_hash(ctx: XdpContext) -> u32 {
    let probe = HASH_CONFIG.get(0).copied().unwrap_or_default();
    let packet = packet::Packet::of(&ctx);
    hash::hash_frame(&packet, probe.layers as u8, probe.seed)
}

#[xdp(frags)]
pub fn xlagg_drop(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_DROP
}

#[map(name = "XLAGG_GENCFG")]
static GEN_CONFIG: Array<GenConfig> = Array::with_max_entries(1, 0);

#[map(name = "XLAGG_GENCNT")]
static GEN_COUNT: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// The benchmark generator, for `BPF_PROG_TEST_RUN` in live-frames mode: each run takes the
/// next sequence number of this CPU, writes it and its flow (`seq % flows`) into the frame,
/// sets the UDP source port from the flow, and transmits the frame on the ingress device.
/// The IPv4 header is not touched, so its checksum stays valid; the UDP checksum is zero.
#[xdp]
pub fn xlagg_gen(ctx: XdpContext) -> u32 {
    let start = ctx.data();
    let (flows, shift) = match GEN_CONFIG.get(0) {
        Some(c) => (
            if c.flows > 0 { u64::from(c.flows) } else { 1 },
            (c.shift & 0x3f) as usize,
        ),
        None => (1, 0),
    };
    if start + shift + gen_offsets::MIN_LEN > ctx.data_end() {
        return xdp_action::XDP_ABORTED;
    }
    let Some(counter) = GEN_COUNT.get_ptr_mut(0) else {
        return xdp_action::XDP_ABORTED;
    };
    // SAFETY: a per-CPU slot from a successful lookup; only this CPU's runs touch it.
    let seq = unsafe {
        let seq = *counter;
        *counter = seq + 1;
        seq
    };
    // checked_rem: no divide-by-zero panic path for the verifier to reject.
    let flow = seq.checked_rem(flows).unwrap_or(0) as u32;
    let sport = 10000 + (flow % 50000) as u16;
    // SAFETY: bpf_ktime_get_ns has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() } as u32;
    let base = start + shift;
    // SAFETY: every write below ends before start + shift + MIN_LEN, checked above.
    unsafe {
        *((base + gen_offsets::UDP_SOURCE) as *mut [u8; 2]) = sport.to_be_bytes();
        *((base + gen_offsets::FLOW) as *mut [u8; 4]) = flow.to_be_bytes();
        *((base + gen_offsets::SEQ) as *mut [u8; 8]) = seq.to_be_bytes();
        *((base + gen_offsets::STAMP) as *mut [u8; 4]) = now.to_be_bytes();
    }
    xdp_action::XDP_TX
}

#[map(name = "XLAGG_SINKST")]
static SINK_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(SinkCounter::COUNT, 0);

#[map(name = "XLAGG_SINKFL")]
static SINK_FLOW_COUNT: Array<u64> = Array::with_max_entries(SINK_FLOWS, 0);

#[map(name = "XLAGG_SINKLS")]
static SINK_LAST: Array<u64> = Array::with_max_entries(SINK_FLOWS, 0);

#[map(name = "XLAGG_SINKLT")]
static SINK_LATENCY: PerCpuArray<u64> = PerCpuArray::with_max_entries(SINK_LATENCY_BUCKETS, 0);

#[inline(always)]
fn sink_count(c: SinkCounter, n: u64) {
    if let Some(slot) = SINK_STATS.get_ptr_mut(c as u32) {
        // SAFETY: a per-CPU slot from a successful lookup.
        unsafe { *slot += n };
    }
}

/// The latency bucket of `ns`: four per octave from 64 ns (as the workers' histogram).
#[inline(always)]
fn latency_bucket(ns: u64) -> u32 {
    let mut v = ns;
    let mut octave = 0u32;
    if v >= 1 << 32 {
        v >>= 32;
        octave += 32;
    }
    if v >= 1 << 16 {
        v >>= 16;
        octave += 16;
    }
    if v >= 1 << 8 {
        v >>= 8;
        octave += 8;
    }
    if v >= 1 << 4 {
        v >>= 4;
        octave += 4;
    }
    if v >= 1 << 2 {
        v >>= 2;
        octave += 2;
    }
    if v >= 1 << 1 {
        octave += 1;
    }
    if octave < 6 {
        return 0;
    }
    let quarter = ((ns >> (octave - 2)) & 3) as u32;
    let b = (octave - 6) * 4 + quarter;
    if b >= SINK_LATENCY_BUCKETS {
        SINK_LATENCY_BUCKETS - 1
    } else {
        b
    }
}

/// `[armed, first test frame at, last test frame at, first's sequence number, last's,
/// largest jump]` (CLOCK_MONOTONIC ns): userspace arms, the sink stamps. The largest jump is
/// the most sequence numbers missing between two consecutive test frames on this port since
/// armed (the longest run of frames lost on the way while the port carried the traffic; it
/// takes frames to arrive in order, as one worker or one CPU sends them).
#[map(name = "XLAGG_SINKFS")]
static SINK_FIRST: Array<u64> = Array::with_max_entries(6, 0);

/// The benchmark's sink, attached to the partner ports: counts every frame; for test frames
/// (untagged or one VLAN tag, IPv4 or IPv6, UDP, marker "XL") counts the flow, notes a
/// reordering when the sequence number is below the flow's highest so far, and records the
/// latency from the generator's stamp; then drops.
#[xdp(frags)]
pub fn xlagg_sink(ctx: XdpContext) -> u32 {
    let start = ctx.data();
    let end = ctx.data_end();
    sink_count(SinkCounter::Frames, 1);
    // SAFETY: the helper only reads the context the kernel passed to this program.
    let bytes = unsafe { aya_ebpf::helpers::bpf_xdp_get_buff_len(ctx.ctx) };
    sink_count(SinkCounter::Bytes, bytes);
    if start + 14 > end {
        return xdp_action::XDP_DROP;
    }
    // SAFETY: bytes 12..14 are inside the frame, checked above.
    let mut ethertype = unsafe { u16::from_be_bytes(*((start + 12) as *const [u8; 2])) };
    let mut l3 = 14usize;
    if ethertype == 0x8100 {
        if start + 18 > end {
            return xdp_action::XDP_DROP;
        }
        // SAFETY: bytes 16..18 are inside the frame, checked above.
        ethertype = unsafe { u16::from_be_bytes(*((start + 16) as *const [u8; 2])) };
        l3 = 18;
    }
    let payload = match ethertype {
        0x0800 => l3 + 20 + 8,
        0x86dd => l3 + 40 + 8,
        _ => return xdp_action::XDP_DROP,
    };
    // Marker (2) + flow (4) + sequence (8) + stamp (4).
    if start + payload + 18 > end {
        return xdp_action::XDP_DROP;
    }
    let p = start + payload;
    // SAFETY: the 18 payload bytes are inside the frame, checked above.
    let (magic, flow, seq, stamp) = unsafe {
        (
            *(p as *const [u8; 2]),
            u32::from_be_bytes(*((p + 2) as *const [u8; 4])),
            u64::from_be_bytes(*((p + 6) as *const [u8; 8])),
            u32::from_be_bytes(*((p + 14) as *const [u8; 4])),
        )
    };
    if magic != *b"XL" {
        return xdp_action::XDP_DROP;
    }
    sink_count(SinkCounter::Test, 1);
    // The first test frame since armed and the last one, with their sequence numbers (the
    // switchover's clock and its count of frames lost: the generator numbers every frame).
    if let (Some(arm), Some(first), Some(last), Some(first_seq), Some(last_seq), Some(jump)) = (
        SINK_FIRST.get_ptr(0),
        SINK_FIRST.get_ptr_mut(1),
        SINK_FIRST.get_ptr_mut(2),
        SINK_FIRST.get_ptr_mut(3),
        SINK_FIRST.get_ptr_mut(4),
        SINK_FIRST.get_ptr_mut(5),
    ) {
        // SAFETY: slots of successful lookups; a race between CPUs only picks one of two
        // nearly equal stamps.
        unsafe {
            if *arm != 0 {
                let now = bpf_ktime_get_ns();
                if *last_seq != 0 && seq > *last_seq + 1 && seq - *last_seq - 1 > *jump {
                    *jump = seq - *last_seq - 1;
                }
                *last = now;
                *last_seq = seq;
                if *first == 0 {
                    *first = now;
                    *first_seq = seq;
                }
            }
        }
    }
    let slot = flow & (SINK_FLOWS - 1);
    if let Some(c) = SINK_FLOW_COUNT.get_ptr_mut(slot) {
        // SAFETY: a slot from a successful lookup; one receive queue updates it.
        unsafe { *c += 1 };
    }
    if let Some(last) = SINK_LAST.get_ptr_mut(slot) {
        // SAFETY: as above.
        unsafe {
            if seq + 1 < *last {
                sink_count(SinkCounter::Reordered, 1);
            } else {
                *last = seq + 1;
            }
        }
    }
    if stamp != 0 {
        // SAFETY: bpf_ktime_get_ns has no preconditions.
        let now = unsafe { bpf_ktime_get_ns() } as u32;
        let latency = u64::from(now.wrapping_sub(stamp));
        if let Some(b) = SINK_LATENCY.get_ptr_mut(latency_bucket(latency)) {
            // SAFETY: a per-CPU slot from a successful lookup.
            unsafe { *b += 1 };
        }
        sink_count(SinkCounter::Stamped, 1);
    }
    xdp_action::XDP_DROP
}

#[map(name = "XLAGG_REDIR")]
static REDIRECT_TARGET: DevMap = DevMap::with_max_entries(1, 0);

/// The in-kernel forwarding reference: every frame to the device in [`REDIRECT_TARGET`]
/// (what the kernel alone does between the same veths, no AF_XDP).
#[xdp(frags)]
pub fn xlagg_redirect(_ctx: XdpContext) -> u32 {
    match REDIRECT_TARGET.redirect(0, 0) {
        Ok(action) => action,
        Err(_) => xdp_action::XDP_DROP,
    }
}

#[map(name = "XLAGG_VLANCF")]
static VLAN_CONFIG: Array<VlanConfig> = Array::with_max_entries(1, 0);

/// Whether an untagged frame belongs to the configured prefix: IPv4 to an address in it, or
/// ARP whose target address is in it.
#[inline(always)]
fn in_prefix(ctx: &TcContext, cfg: &VlanConfig) -> bool {
    let Ok(ethertype) = ctx.load::<[u8; 2]>(12) else {
        return false;
    };
    let address_at = match u16::from_be_bytes(ethertype) {
        0x0800 => 14 + 16,
        0x0806 => 14 + 24,
        _ => return false,
    };
    match ctx.load::<[u8; 4]>(address_at) {
        Ok(address) => u32::from_be_bytes(address) & cfg.mask == cfg.prefix,
        Err(_) => false,
    }
}

/// Egress: an untagged frame of the configured prefix gets the configured tag in skb metadata.
/// Every frame goes on to the next program of the hook (`TC_ACT_UNSPEC`): the stand-in is
/// attached first, as a VLAN device sits above its parent's own programs.
#[classifier]
pub fn xlagg_vlan_push(ctx: TcContext) -> i32 {
    let Some(cfg) = VLAN_CONFIG.get(0) else {
        return TC_ACT_UNSPEC;
    };
    // SAFETY: the context's skb pointer is valid for the whole run.
    if unsafe { (*ctx.skb.skb).vlan_present } != 0 || !in_prefix(&ctx, cfg) {
        return TC_ACT_UNSPEC;
    }
    // SAFETY: the helper takes the context's skb; protocol in network order.
    unsafe { bpf_skb_vlan_push(ctx.skb.skb, 0x8100u16.to_be(), cfg.vid) };
    TC_ACT_UNSPEC
}

/// Ingress: a frame tagged with the configured VLAN id loses its tag; an untagged frame of the
/// prefix is dropped, as the parent of a real VLAN device would not deliver it to the VLAN.
#[classifier]
pub fn xlagg_vlan_pop(ctx: TcContext) -> i32 {
    let Some(cfg) = VLAN_CONFIG.get(0) else {
        return TC_ACT_UNSPEC;
    };
    // SAFETY: the context's skb pointer is valid for the whole run.
    let (present, tci) = unsafe { ((*ctx.skb.skb).vlan_present, (*ctx.skb.skb).vlan_tci) };
    if present != 0 {
        if (tci & 0x0fff) as u16 == cfg.vid & 0x0fff {
            // SAFETY: the helper takes the context's skb.
            unsafe { bpf_skb_vlan_pop(ctx.skb.skb) };
        }
        return TC_ACT_UNSPEC;
    }
    if in_prefix(&ctx, cfg) {
        return TC_ACT_SHOT;
    }
    TC_ACT_UNSPEC
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
