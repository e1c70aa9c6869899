//! Types shared by the xlagg XDP program (`ebpf/xdp`) and userspace (`dataplane`).
//!
//! Everything here is `#[repr(C)]` with explicit padding, so the kernel-side and user-side views
//! of a map value are byte-identical; sizes are checked at compile time. With the `user` feature
//! the value types implement `aya::Pod` so userspace can read and write them through aya maps.
//!
//! The one piece of logic here is the flow hash ([`hash`]), because both engines must compute
//! it identically; everything else is layouts and names.
#![cfg_attr(not(test), no_std)]

pub mod checksum;
pub mod filter;
pub mod hash;
pub mod limit;

/// Names of the maps and programs in the XDP object. BPF object names are at most 15 bytes.
pub mod names {
    /// `BPF_MAP_TYPE_XSKMAP`: receive queue index -> AF_XDP socket.
    pub const XSKS: &str = "XLAGG_XSKS";
    /// `BPF_MAP_TYPE_ARRAY` with one [`super::PortState`]: written by the control thread.
    pub const PORT_STATE: &str = "XLAGG_PORT";
    /// `BPF_MAP_TYPE_PERCPU_ARRAY` of `u64`, indexed by [`super::XdpCounter`].
    pub const COUNTERS: &str = "XLAGG_COUNTERS";
    /// `BPF_MAP_TYPE_PERCPU_ARRAY` of [`super::limit::TokenBucket`], one per
    /// [`super::limit::Control`] kind: the port program's control-path rate limits.
    pub const LIMITS: &str = "XLAGG_LIMIT";
    /// The same for the engine's object: `ENGINE_SLOTS * Control::COUNT`, by slot then kind.
    pub const ENGINE_LIMITS: &str = "XLAGG_ELIMIT";
    /// The program attached to member, forward and host-side ports.
    pub const PORT_PROGRAM: &str = "xlagg_port";
    /// A program that drops everything: the cheap sink used by tests and benchmarks on the
    /// partner side (veth still counts the frames in its `rx_packets`).
    pub const DROP_PROGRAM: &str = "xlagg_drop";
    /// The benchmark's in-kernel generator, run with `BPF_PROG_TEST_RUN` in live-frames mode:
    /// stamps a flow and a sequence number into each frame and returns `XDP_TX`.
    pub const GEN_PROGRAM: &str = "xlagg_gen";
    /// `BPF_MAP_TYPE_ARRAY` with one [`super::GenConfig`].
    pub const GEN_CONFIG: &str = "XLAGG_GENCFG";
    /// `BPF_MAP_TYPE_PERCPU_ARRAY` with one `u64`: frames generated on each CPU.
    pub const GEN_COUNT: &str = "XLAGG_GENCNT";
    /// The benchmark's in-kernel sink: counts test frames per flow, reorderings and latency.
    pub const SINK_PROGRAM: &str = "xlagg_sink";
    /// `BPF_MAP_TYPE_PERCPU_ARRAY` of `u64` indexed by [`super::SinkCounter`].
    pub const SINK_STATS: &str = "XLAGG_SINKST";
    /// `BPF_MAP_TYPE_ARRAY` of `u64`: test frames per flow (flow id modulo [`super::SINK_FLOWS`]).
    pub const SINK_FLOWS: &str = "XLAGG_SINKFL";
    /// `BPF_MAP_TYPE_ARRAY` of `u64`: the highest sequence number + 1 seen per flow.
    pub const SINK_LAST: &str = "XLAGG_SINKLS";
    /// `BPF_MAP_TYPE_PERCPU_ARRAY` of `u64`: frames per latency bucket (four per octave from
    /// 64 ns, [`super::SINK_LATENCY_BUCKETS`] of them).
    pub const SINK_LATENCY: &str = "XLAGG_SINKLT";
    /// `BPF_MAP_TYPE_ARRAY` of five `u64`: whether the sink is armed, the time of the first
    /// test frame since and of the last (CLOCK_MONOTONIC ns; 0: none yet), and their
    /// sequence numbers.
    pub const SINK_FIRST: &str = "XLAGG_SINKFS";
    /// The in-kernel forwarding reference: redirects every frame to [`REDIRECT_TARGET`]'s
    /// device.
    pub const REDIRECT_PROGRAM: &str = "xlagg_redirect";
    /// The tests' tc program that tags egress frames of one prefix (VLAN stand-in).
    pub const VLAN_PUSH_PROGRAM: &str = "xlagg_vlan_push";
    /// The tests' tc program that untags ingress frames of one VLAN id.
    pub const VLAN_POP_PROGRAM: &str = "xlagg_vlan_pop";
    /// Their configuration (one `VlanConfig`).
    pub const VLAN_CONFIG: &str = "XLAGG_VLANCF";
    /// `BPF_MAP_TYPE_DEVMAP` with one entry: where `xlagg_redirect` sends frames.
    pub const REDIRECT_TARGET: &str = "XLAGG_REDIR";
    /// The XDP engine's program, one per lagg, attached to every member and the upper port.
    pub const ENGINE_PROGRAM: &str = "xlagg_engine";
    /// `BPF_MAP_TYPE_HASH`: ingress ifindex -> [`super::EnginePort`].
    pub const ENGINE_PORTS: &str = "XLAGG_EPORTS";
    /// `BPF_MAP_TYPE_ARRAY` of two [`super::EngineTable`]: the live copy and the next one.
    pub const ENGINE_TABLES: &str = "XLAGG_ETABLE";
    /// `BPF_MAP_TYPE_ARRAY` with one `u32`: which copy of the tables (and of the broadcast
    /// maps) frames read, flipped after the other copy is written.
    pub const ENGINE_SELECT: &str = "XLAGG_ESEL";
    /// `BPF_MAP_TYPE_DEVMAP_HASH`: slot -> device (members by slot, the upper port at
    /// [`super::ENGINE_UPPER_SLOT`]); a port's entry goes with it.
    pub const ENGINE_TX: &str = "XLAGG_ETX";
    /// `BPF_MAP_TYPE_DEVMAP_HASH` (member slot -> device) of the active members for
    /// broadcast, copy 0.
    pub const ENGINE_BCAST0: &str = "XLAGG_EBC0";
    /// The same, copy 1.
    pub const ENGINE_BCAST1: &str = "XLAGG_EBC1";
    /// `BPF_MAP_TYPE_PERCPU_ARRAY` with one `u64`: each CPU's round-robin frame count.
    pub const ENGINE_RR: &str = "XLAGG_ERR";
    /// `BPF_MAP_TYPE_PERCPU_ARRAY` of [`super::EngineCounters`], one per slot.
    pub const ENGINE_COUNTERS: &str = "XLAGG_ECNT";
    /// `BPF_MAP_TYPE_ARRAY` (mmapable) of `u64`, [`super::LOST_WORDS`] of them: per member
    /// slot, nonzero once the member failed to transmit (the time, CLOCK_MONOTONIC ns, low bit
    /// set) until the control thread clears it; the last word counts the marks. Written by the
    /// transmit watch and the AF_XDP workers, read by the engine's program and the workers.
    pub const ENGINE_DOWN: &str = "XLAGG_EDOWN";
    /// `BPF_MAP_TYPE_PERCPU_ARRAY` with one [`super::BucketHits`]: what each bucket of the
    /// table placed (hash policy), the XDP engine and the tc host path alike.
    pub const ENGINE_BUCKETS: &str = "XLAGG_EBKT";
    /// `BPF_MAP_TYPE_ARRAY` of [`super::EngineTable`], `2 * ENGINE_MEMBERS`: for each copy of
    /// the live table and each active member `m`, the table without `m` (what the control
    /// thread publishes once it has seen `m` go).
    pub const ENGINE_FALLBACK: &str = "XLAGG_EFALL";
    /// The transmit watch: a raw tracepoint program on `xdp_devmap_xmit` that marks a member
    /// whose devmap flush failed whole.
    pub const TX_WATCH_PROGRAM: &str = "xlagg_tx_watch";
    /// The kernel tracepoint it is attached to.
    pub const TX_WATCH_TRACEPOINT: &str = "xdp_devmap_xmit";
    /// The global the loader sets to the byte offset of `ifindex` in the running kernel's
    /// `struct net_device` (from its BTF).
    pub const IFINDEX_OFFSET: &str = "XLAGG_IFINDEX_OFFSET";
    /// The same for `state` (the `__LINK_STATE_*` bits: the carrier).
    pub const STATE_OFFSET: &str = "XLAGG_STATE_OFFSET";
    /// The drop watch: a raw tracepoint program on `kfree_skb` that marks a member a dropped
    /// buffer was for when the member has no carrier (the AF_XDP engine's copy-mode transmit).
    pub const DROP_WATCH_PROGRAM: &str = "xlagg_drop_watch";
    /// The kernel tracepoint it is attached to.
    pub const DROP_WATCH_TRACEPOINT: &str = "kfree_skb";
    /// The global the loader sets to the byte offset of `dev` in `struct sk_buff`.
    pub const SKB_DEV_OFFSET: &str = "XLAGG_SKB_DEV_OFFSET";
    /// The global the loader sets to the byte offset of `nd_net` in `struct net_device`.
    pub const NETDEV_NET_OFFSET: &str = "XLAGG_NETDEV_NET_OFFSET";
    /// The global the loader sets to the byte offset of `net_cookie` in `struct net`.
    pub const NET_COOKIE_OFFSET: &str = "XLAGG_NET_COOKIE_OFFSET";
    /// The global the loader sets to the cookie of the lagg's network namespace: the watches
    /// take a device for a member only in that namespace.
    pub const NETNS_COOKIE: &str = "XLAGG_NETNS_COOKIE";
    /// The redirect watch: a raw tracepoint program on `xdp_redirect_err` that marks a member
    /// the kernel refused the XDP engine's redirects to.
    pub const REDIRECT_WATCH_PROGRAM: &str = "xlagg_redirect_watch";
    /// The kernel tracepoint it is attached to.
    pub const REDIRECT_WATCH_TRACEPOINT: &str = "xdp_redirect_err";
    /// `BPF_MAP_TYPE_ARRAY` with one `u32`: the id of [`ENGINE_TX`], for the redirect watch.
    pub const ENGINE_TX_ID: &str = "XLAGG_ETXID";
    /// `BPF_MAP_TYPE_ARRAY` of `u32`, one per member slot: the last errno of a refused
    /// redirect to it.
    pub const ENGINE_REFUSED: &str = "XLAGG_EREFUSED";
    /// The queue watch: a raw tracepoint program on `net_dev_queue` that marks a member an
    /// skb is queued to when the member has no carrier (the tc host path's transmit).
    pub const QUEUE_WATCH_PROGRAM: &str = "xlagg_queue_watch";
    /// The kernel tracepoint it is attached to.
    pub const QUEUE_WATCH_TRACEPOINT: &str = "net_dev_queue";
    /// The tc host path's program on laggN's egress: places what the host sends.
    pub const HOST_OUT_PROGRAM: &str = "xlagg_host_out";
    /// The tc host path's program on every member's ingress: control frames to the control
    /// path, data into laggN.
    pub const HOST_IN_PROGRAM: &str = "xlagg_host_in";
    /// `BPF_MAP_TYPE_ARRAY` of `u32`, one per slot: the slot's ifindex (the tc host path's
    /// redirect target; the upper slot is laggN).
    pub const ENGINE_IFINDEX: &str = "XLAGG_EIFX";
    /// The tests' program that returns the shared flow hash of a frame (run under
    /// `BPF_PROG_TEST_RUN`, never attached).
    pub const HASH_PROGRAM: &str = "xlagg_hash";
    /// `BPF_MAP_TYPE_ARRAY` with one [`super::HashProbe`]: the hash program's layers and seed.
    pub const HASH_CONFIG: &str = "XLAGG_HASHCF";
}

/// Settings of the generator program.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenConfig {
    /// Number of flows; frame `n` belongs to flow `n % flows` (0 is taken as 1).
    pub flows: u32,
    /// Bytes the frame's headers add over untagged IPv4 (a VLAN tag 4, IPv6 20), by which
    /// every offset of [`gen_offsets`] moves; at most 63.
    pub shift: u32,
}

/// Flows the sink counts one by one (flow ids are taken modulo this).
pub const SINK_FLOWS: u32 = 65536;
/// Latency buckets of the sink (four per octave from 64 ns to about 1 s).
pub const SINK_LATENCY_BUCKETS: u32 = 96;

/// What the sink counts, one slot each in its stats map.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkCounter {
    /// Every frame.
    Frames = 0,
    /// Bytes of every frame.
    Bytes = 1,
    /// Test frames (with the marker).
    Test = 2,
    /// Test frames with a sequence number below one already seen in their flow.
    Reordered = 3,
    /// Test frames whose latency was recorded (stamped by the generator).
    Stamped = 4,
}

impl SinkCounter {
    /// Number of counters.
    pub const COUNT: u32 = 5;
}

const _: () = assert!(core::mem::size_of::<GenConfig>() == 8);

/// Offsets in the generator's frames (Ethernet + IPv4 without options + UDP + marker):
/// UDP source port, and the payload's flow id and sequence number.
pub mod gen_offsets {
    /// UDP source port (network order).
    pub const UDP_SOURCE: usize = 34;
    /// Flow id in the payload (big-endian u32).
    pub const FLOW: usize = 44;
    /// Sequence number in the payload (big-endian u64).
    pub const SEQ: usize = 48;
    /// Send time in the payload: low 32 bits of `CLOCK_MONOTONIC` nanoseconds (big-endian).
    pub const STAMP: usize = 56;
    /// The frame must be at least this long.
    pub const MIN_LEN: usize = 60;
}

/// Upper bound on receive queues per port (the size of the XSKMAP).
pub const MAX_QUEUES: u32 = 256;

/// Ethertype of IEEE 802.3 Slow Protocols (LACP, Marker), handed to the control path.
pub const ETHERTYPE_SLOW: u16 = 0x8809;

/// Per-port state written by userspace and read by the XDP program for every frame.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortState {
    /// Bit set of `PortState::*` flags.
    pub flags: u32,
    /// Explicit padding; always zero.
    pub reserved: u32,
    /// Frames to this MAC (the port's probe monitor address) go to the control path; all
    /// zero: none.
    pub probe_mac: [u8; 6],
    /// Explicit padding; always zero.
    pub pad: [u8; 2],
}

/// RFC 7130's destination MAC of micro-BFD frames, which the XDP program hands to the control
/// path on every port.
pub const MICRO_BFD_MAC: [u8; 6] = [0x01, 0x00, 0x5e, 0x90, 0x00, 0x01];

/// RFC 7130's UDP destination port of micro-BFD.
pub const MICRO_BFD_PORT: u16 = 6784;

impl PortState {
    /// Frames received on this port are delivered to the workers. Without it they are dropped
    /// in XDP and counted as [`XdpCounter::NotCollecting`].
    pub const COLLECTING: u32 = 1 << 0;
    /// The control path reads LACP here: slow-protocol frames go to it (dropped otherwise).
    pub const LACP: u32 = 1 << 1;
    /// The control path runs micro-BFD here: IPv4/UDP frames to port 6784 and the micro-BFD
    /// MAC go to it.
    pub const BFD: u32 = 1 << 2;
    /// The forward port: IEEE 802.1 link-local frames (to 01-80-C2-00-00-00..0F: STP, PAUSE,
    /// EAPOL, LLDP) from downstream are dropped and counted, never sent onto the members (an
    /// 802.1D bridge does not relay them, and a switch with BPDU guard shuts the whole LAG on
    /// one BPDU).
    pub const DROP_LINK_LOCAL: u32 = 1 << 3;

    /// A state with the collecting flag set or clear.
    pub const fn collecting(on: bool) -> Self {
        Self {
            flags: if on { Self::COLLECTING } else { 0 },
            reserved: 0,
            probe_mac: [0; 6],
            pad: [0; 2],
        }
    }

    /// Whether frames on this port reach the workers.
    pub const fn is_collecting(&self) -> bool {
        self.flags & Self::COLLECTING != 0
    }

    /// Whether flag `flag` is set.
    pub const fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

const _: () = assert!(core::mem::size_of::<PortState>() == 16);

/// Reasons the XDP program counts, one slot each in the counters map.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpCounter {
    /// Handed to an AF_XDP socket.
    Redirected = 0,
    /// Dropped: the port is not collecting (standby failover port, LACP not yet collecting).
    NotCollecting = 1,
    /// Slow-protocol frame (0x8809) passed to the kernel for the control path.
    SlowProtocol = 2,
    /// Dropped: no AF_XDP socket is bound for the receive queue.
    NoSocket = 3,
    /// Dropped: shorter than an Ethernet header.
    Malformed = 4,
    /// A probe monitor frame (micro-BFD, or a reply to the port's ARP/NS probe) passed to the
    /// kernel for the control path.
    Probe = 5,
    /// Dropped: addressed to the control path (slow protocols, the micro-BFD or probe MAC) but
    /// not what it asked for on this port (no LACP here, not IPv4/UDP to 6784, not an ARP
    /// reply or neighbour advertisement).
    Unsolicited = 6,
    /// Dropped: a control-path frame beyond its kind's rate on this port (see
    /// [`limit`]).
    RateLimited = 7,
    /// Dropped: an IEEE 802.1 link-local frame from downstream on the forward port.
    LinkLocal = 8,
}

impl limit::Control {
    /// The counter a frame of this kind that passes is counted under.
    pub const fn counter(self) -> XdpCounter {
        match self {
            limit::Control::Slow => XdpCounter::SlowProtocol,
            limit::Control::Bfd | limit::Control::ProbeReply => XdpCounter::Probe,
        }
    }
}

impl XdpCounter {
    /// Number of counters (the counters map's size).
    pub const COUNT: u32 = 9;
    /// Every counter, in index order.
    pub const ALL: [XdpCounter; Self::COUNT as usize] = [
        XdpCounter::Redirected,
        XdpCounter::NotCollecting,
        XdpCounter::SlowProtocol,
        XdpCounter::NoSocket,
        XdpCounter::Malformed,
        XdpCounter::Probe,
        XdpCounter::Unsolicited,
        XdpCounter::RateLimited,
        XdpCounter::LinkLocal,
    ];

    /// The counter's name as metrics and status output show it.
    pub const fn name(self) -> &'static str {
        match self {
            XdpCounter::Redirected => "redirected",
            XdpCounter::NotCollecting => "not_collecting",
            XdpCounter::SlowProtocol => "slow_protocol",
            XdpCounter::NoSocket => "no_socket",
            XdpCounter::Malformed => "malformed",
            XdpCounter::Probe => "probe",
            XdpCounter::Unsolicited => "unsolicited",
            XdpCounter::RateLimited => "rate_limited",
            XdpCounter::LinkLocal => "link_local",
        }
    }
}

// SAFETY: PortState is repr(C), made of two u32 with no padding (size asserted above), and every
// bit pattern is a valid value.
#[cfg(feature = "user")]
unsafe impl aya::Pod for PortState {}

/// The tests' VLAN subinterface stand-in (`xlagg_vlan_push` / `xlagg_vlan_pop`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VlanConfig {
    /// IPv4 prefix (host order) whose frames are tagged on egress.
    pub prefix: u32,
    /// Its mask (host order).
    pub mask: u32,
    /// The VLAN id (and priority bits) of the tag.
    pub vid: u16,
    /// Explicit padding; always zero.
    pub pad: [u8; 2],
}

const _: () = assert!(core::mem::size_of::<VlanConfig>() == 12);

// SAFETY: VlanConfig is repr(C), two u32, one u16 and two padding bytes made explicit (size
// asserted above); any bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for VlanConfig {}

// SAFETY: GenConfig is repr(C), two u32 with no padding (size asserted above), any bit pattern
// is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for GenConfig {}

/// Members one lagg of the XDP engine can have (the slots of its maps).
pub const ENGINE_MEMBERS: u32 = 32;
/// The upper port's slot in the engine's maps (after the members).
pub const ENGINE_UPPER_SLOT: u32 = ENGINE_MEMBERS;
/// Slots in the engine's maps: the members and the upper port.
pub const ENGINE_SLOTS: u32 = ENGINE_MEMBERS + 1;
/// Words of the lost-member map: one per member slot, then the count of marks.
pub const LOST_WORDS: u32 = ENGINE_MEMBERS + 1;
/// The count of marks: its index in the lost-member map.
pub const LOST_EPOCH: u32 = ENGINE_MEMBERS;
/// Buckets of the engine's table (the workers' table has as many).
pub const ENGINE_BUCKETS: usize = 256;

/// One port of an XDP-engine lagg, keyed by its ifindex.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EnginePort {
    /// [`PortState`] flags, and [`EnginePort::UPPER`] for the upper port.
    pub flags: u32,
    /// The port's slot: its member slot, or [`ENGINE_UPPER_SLOT`].
    pub slot: u32,
    /// Frames to this MAC go to the control path (probe monitor); all zero: none.
    pub probe_mac: [u8; 6],
    /// Explicit padding; always zero.
    pub pad: [u8; 2],
}

impl EnginePort {
    /// The upper port: what it receives is distributed over the members.
    pub const UPPER: u32 = 1 << 8;

    /// The port state part of it (what the port filter reads).
    pub const fn state(&self) -> PortState {
        PortState {
            flags: self.flags,
            reserved: 0,
            probe_mac: self.probe_mac,
            pad: [0; 2],
        }
    }
}

const _: () = assert!(core::mem::size_of::<EnginePort>() == 16);

/// How the engine spreads what the upper port receives (the workers' `TxPolicy`).
pub mod engine_policy {
    /// Nothing is transmitted.
    pub const NONE: u32 = 0;
    /// Everything to `active[0]`.
    pub const FAILOVER: u32 = 1;
    /// The bucket of the flow hash.
    pub const HASH: u32 = 2;
    /// Each active member in turn, `rr_limit` frames at a time (per CPU).
    pub const ROUND_ROBIN: u32 = 3;
    /// A copy on every active member.
    pub const BROADCAST: u32 = 4;
    /// Everything to member `fixed` (the benchmark's ceiling).
    pub const FIXED: u32 = 5;
}

/// The engine's distribution table: the workers' `DistributionTable` as a map value.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineTable {
    /// One of [`engine_policy`].
    pub policy: u32,
    /// Hash layers ([`hash::L2`] | [`hash::L3`] | [`hash::L4`]).
    pub layers: u32,
    /// Round-robin: frames per member before the next (at least 1).
    pub rr_limit: u32,
    /// Members in `active`.
    pub active_len: u32,
    /// The member of [`engine_policy::FIXED`].
    pub fixed: u32,
    /// Explicit padding; always zero.
    pub pad: u32,
    /// The hash seed.
    pub seed: u64,
    /// Active members by slot, in configuration order.
    pub active: [u8; ENGINE_MEMBERS as usize],
    /// The member slot of each bucket.
    pub buckets: [u8; ENGINE_BUCKETS],
}

impl Default for EngineTable {
    fn default() -> Self {
        Self {
            policy: engine_policy::NONE,
            layers: 0,
            rr_limit: 1,
            active_len: 0,
            fixed: 0,
            pad: 0,
            seed: 0,
            active: [0; ENGINE_MEMBERS as usize],
            buckets: [0; ENGINE_BUCKETS],
        }
    }
}

const _: () = assert!(core::mem::size_of::<EngineTable>() == 320);

/// What the engine counts, [`EngineCounter::COUNT`] slots per port slot.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineCounter {
    /// Data frames received on the port and sent on (to the upper port or the members).
    RxPackets = 0,
    /// Their bytes (whole multi-buffer packets).
    RxBytes = 1,
    /// Frames redirected to the port.
    TxPackets = 2,
    /// Their bytes.
    TxBytes = 3,
    /// Dropped: the port is not collecting.
    NotCollecting = 4,
    /// Slow-protocol frames passed to the control path.
    SlowProtocol = 5,
    /// Dropped: shorter than an Ethernet header.
    Malformed = 6,
    /// Probe monitor frames passed to the control path.
    Probe = 7,
    /// Dropped: addressed to the control path but not asked for here.
    Unsolicited = 8,
    /// Dropped: no active member (or protocol `none`).
    NoActivePort = 9,
    /// Dropped: the redirect could not be made (no device in the slot, or a multi-buffer
    /// frame to broadcast, which the kernel cannot clone).
    NotRedirected = 10,
    /// Dropped: a control-path frame beyond its kind's rate on this port.
    RateLimited = 11,
    /// Dropped: an IEEE 802.1 link-local frame from downstream on the forward port.
    LinkLocal = 12,
}

impl EngineCounter {
    /// Counters per slot.
    pub const COUNT: u32 = 13;
}

/// One slot's counters (one map value, so a frame costs one lookup per port it touches),
/// indexed by [`EngineCounter`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineCounters {
    /// The counts.
    pub n: [u64; EngineCounter::COUNT as usize],
}

// SAFETY: repr(C), an array of u64 (no padding); any bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for EngineCounters {}

/// Frames (XDP engine) or packets (tc host path) each bucket of the table placed, one map
/// value per CPU so a frame costs one lookup.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketHits {
    /// The counts, by bucket.
    pub n: [u64; ENGINE_BUCKETS],
}

// SAFETY: repr(C), an array of u64 (no padding); any bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for BucketHits {}

// SAFETY: repr(C), two u32, six bytes and two explicit padding bytes (size asserted above);
// any bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for EnginePort {}

// SAFETY: repr(C), six u32, one u64 and byte arrays, no implicit padding (size asserted
// above); any bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for EngineTable {}

/// What the tests' hash program hashes with.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HashProbe {
    /// Hash layers ([`hash::L2`] | [`hash::L3`] | [`hash::L4`]).
    pub layers: u32,
    /// Explicit padding; always zero.
    pub pad: u32,
    /// The seed.
    pub seed: u64,
}

const _: () = assert!(core::mem::size_of::<HashProbe>() == 16);

// SAFETY: repr(C), two u32 and one u64, no implicit padding (size asserted above); any bit
// pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for HashProbe {}
