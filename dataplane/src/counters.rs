//! Per-worker counters: one cache-line-aligned block per port, written by one worker with plain
//! stores (no atomic read-modify-write), read and summed by the control thread.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a worker dropped a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The destination's tx ring had no room.
    TxRingFull = 0,
    /// No member is active (or the protocol is `none`).
    NoActivePort = 1,
    /// No free UMEM frame for a broadcast copy.
    NoFreeFrame = 2,
    /// A received descriptor did not lie inside the UMEM.
    InvalidDescriptor = 3,
    /// The XDP engine could not redirect the frame (no device in the slot, or a multi-buffer
    /// frame to broadcast).
    NotRedirected = 4,
    /// The kernel dropped a frame on transmit (a copy-mode `sendto` answered EBUSY): the
    /// device had no carrier, or its receiver's ring was full.
    TxRefused = 5,
}

impl DropReason {
    /// Number of reasons.
    pub const COUNT: usize = 6;
    /// All reasons in index order.
    pub const ALL: [DropReason; Self::COUNT] = [
        DropReason::TxRingFull,
        DropReason::NoActivePort,
        DropReason::NoFreeFrame,
        DropReason::InvalidDescriptor,
        DropReason::NotRedirected,
        DropReason::TxRefused,
    ];

    /// The reason as status output and metrics name it.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::TxRingFull => "tx_ring_full",
            DropReason::NoActivePort => "no_active_port",
            DropReason::NoFreeFrame => "no_free_frame",
            DropReason::InvalidDescriptor => "invalid_descriptor",
            DropReason::NotRedirected => "not_redirected",
            DropReason::TxRefused => "tx_refused",
        }
    }
}

/// The kernel's counters of an AF_XDP socket (`XDP_STATISTICS`), copied by the worker twice a
/// second into [`PortCounters::xsk`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XskCounter {
    /// Frames the kernel dropped for other reasons.
    RxDropped = 0,
    /// Frames dropped because the rx ring was full (the worker fell behind).
    RxRingFull = 1,
    /// Times the kernel found the fill ring empty (no buffer for a frame).
    FillRingEmpty = 2,
    /// Invalid descriptors on the fill ring.
    RxInvalidDescriptor = 3,
    /// Invalid descriptors on the tx ring.
    TxInvalidDescriptor = 4,
    /// Times the kernel found the tx ring empty when asked to send.
    TxRingEmpty = 5,
}

impl XskCounter {
    /// Number of counters.
    pub const COUNT: usize = 6;
    /// All, in index order.
    pub const ALL: [XskCounter; Self::COUNT] = [
        XskCounter::RxDropped,
        XskCounter::RxRingFull,
        XskCounter::FillRingEmpty,
        XskCounter::RxInvalidDescriptor,
        XskCounter::TxInvalidDescriptor,
        XskCounter::TxRingEmpty,
    ];

    /// The name in status output and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            XskCounter::RxDropped => "rx_dropped",
            XskCounter::RxRingFull => "rx_ring_full",
            XskCounter::FillRingEmpty => "fill_ring_empty",
            XskCounter::RxInvalidDescriptor => "rx_invalid_descriptor",
            XskCounter::TxInvalidDescriptor => "tx_invalid_descriptor",
            XskCounter::TxRingEmpty => "tx_ring_empty",
        }
    }
}

/// Latency histogram buckets: four per power of two from 64 ns up to about 1 s.
pub const LATENCY_BUCKETS: usize = 96;
const LATENCY_FIRST_OCTAVE: u32 = 6;

/// The bucket of a latency in nanoseconds (below 64 ns: bucket 0; above about 1 s: the last).
#[inline(always)]
pub fn latency_bucket(ns: u64) -> usize {
    let ns = ns.max(1);
    let octave = 63 - ns.leading_zeros();
    if octave < LATENCY_FIRST_OCTAVE {
        return 0;
    }
    // The two bits below the leading one choose the quarter of the octave.
    let quarter = ((ns >> (octave - 2)) & 3) as usize;
    (((octave - LATENCY_FIRST_OCTAVE) as usize) * 4 + quarter).min(LATENCY_BUCKETS - 1)
}

/// The upper bound in nanoseconds of latency bucket `i` (exclusive).
pub fn latency_bucket_upper(i: usize) -> u64 {
    let octave = LATENCY_FIRST_OCTAVE as usize + i / 4;
    let quarter = (i % 4) as u64;
    (1u64 << octave) + (quarter + 1) * (1u64 << (octave - 2))
}

/// Counters of one port in one worker. Drops are counted on the port the frame came in on.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct PortCounters {
    /// Frames received from this port's AF_XDP socket.
    pub rx_packets: AtomicU64,
    /// Bytes received.
    pub rx_bytes: AtomicU64,
    /// Frames put on this port's tx ring.
    pub tx_packets: AtomicU64,
    /// Bytes put on the tx ring.
    pub tx_bytes: AtomicU64,
    /// Drops by [`DropReason`].
    pub drops: [AtomicU64; DropReason::COUNT],
    /// The kernel's socket counters by [`XskCounter`] (copies, not increments).
    pub xsk: [AtomicU64; XskCounter::COUNT],
}

/// A plain snapshot of [`PortCounters`] (or a sum of several).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortTotals {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames transmitted.
    pub tx_packets: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Drops by [`DropReason`].
    pub drops: [u64; DropReason::COUNT],
    /// Kernel socket counters by [`XskCounter`].
    pub xsk: [u64; XskCounter::COUNT],
}

impl PortTotals {
    /// Adds another snapshot.
    pub fn add(&mut self, other: &PortTotals) {
        self.rx_packets += other.rx_packets;
        self.rx_bytes += other.rx_bytes;
        self.tx_packets += other.tx_packets;
        self.tx_bytes += other.tx_bytes;
        for (a, b) in self.drops.iter_mut().zip(other.drops) {
            *a += b;
        }
        for (a, b) in self.xsk.iter_mut().zip(other.xsk) {
            *a += b;
        }
    }
}

/// Adds `n` to a counter only this thread writes: a load and a store, no locked instruction.
#[inline(always)]
pub fn bump(counter: &AtomicU64, n: u64) {
    if n != 0 {
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }
}

impl PortCounters {
    /// Zeroes every counter (by the worker that owns the block, when a member takes over a
    /// departed member's slot).
    pub fn reset(&self) {
        for c in [
            &self.rx_packets,
            &self.rx_bytes,
            &self.tx_packets,
            &self.tx_bytes,
        ]
        .into_iter()
        .chain(&self.drops)
        .chain(&self.xsk)
        {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// A snapshot.
    pub fn totals(&self) -> PortTotals {
        let mut drops = [0; DropReason::COUNT];
        for (d, c) in drops.iter_mut().zip(&self.drops) {
            *d = c.load(Ordering::Relaxed);
        }
        let mut xsk = [0; XskCounter::COUNT];
        for (d, c) in xsk.iter_mut().zip(&self.xsk) {
            *d = c.load(Ordering::Relaxed);
        }
        PortTotals {
            xsk,
            rx_packets: self.rx_packets.load(Ordering::Relaxed),
            rx_bytes: self.rx_bytes.load(Ordering::Relaxed),
            tx_packets: self.tx_packets.load(Ordering::Relaxed),
            tx_bytes: self.tx_bytes.load(Ordering::Relaxed),
            drops,
        }
    }
}

/// The counters of one worker: a block per port of the lagg (members first, then the upper
/// port), plus loop statistics.
#[derive(Debug)]
pub struct WorkerCounters {
    ports: Box<[PortCounters]>,
    /// Loop iterations that moved at least one frame.
    pub busy_loops: AtomicU64,
    /// Loop iterations that moved nothing.
    pub idle_loops: AtomicU64,
    /// Nanoseconds spent in iterations that moved frames (busy ratio = its rate / 1e9).
    pub busy_ns: AtomicU64,
    /// Frames by time from their batch's receive to its transmit submit, in
    /// [`latency_bucket`]s.
    pub latency: Box<[AtomicU64; LATENCY_BUCKETS]>,
    /// Sum of those latencies over every frame, in nanoseconds.
    pub latency_sum_ns: AtomicU64,
    /// Where the worker's UMEM frames are (copied twice a second).
    pub frames: FrameCounts,
    /// Frames placed by each bucket of the distribution table (hash policy), the load
    /// behind the dashboard's bucket map.
    pub buckets: Box<[AtomicU64; crate::distribution::BUCKETS]>,
}

/// Where a worker's UMEM frames are, from its ledger: the four add up to `total` at every
/// copy; `audit_failures` counts ledger audits (at every membership change and at stop) that
/// found a frame lost or held twice.
#[derive(Debug, Default)]
pub struct FrameCounts {
    /// Frames in the UMEM.
    pub total: AtomicU64,
    /// On the free stack.
    pub free: AtomicU64,
    /// On fill rings (the kernel's receive buffers).
    pub posted: AtomicU64,
    /// On tx rings, not completed.
    pub in_flight: AtomicU64,
    /// On sockets that are being closed.
    pub retiring: AtomicU64,
    /// Ledger audits that failed.
    pub audit_failures: AtomicU64,
}

/// A plain copy of [`FrameCounts`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameSnapshot {
    /// Frames in the UMEM.
    pub total: u64,
    /// On the free stack.
    pub free: u64,
    /// On fill rings.
    pub posted: u64,
    /// On tx rings, not completed.
    pub in_flight: u64,
    /// On sockets being closed.
    pub retiring: u64,
    /// Failed ledger audits.
    pub audit_failures: u64,
}

impl FrameCounts {
    /// A copy.
    pub fn snapshot(&self) -> FrameSnapshot {
        FrameSnapshot {
            total: self.total.load(Ordering::Relaxed),
            free: self.free.load(Ordering::Relaxed),
            posted: self.posted.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            retiring: self.retiring.load(Ordering::Relaxed),
            audit_failures: self.audit_failures.load(Ordering::Relaxed),
        }
    }
}

impl WorkerCounters {
    /// Counters for `ports` ports.
    pub fn new(ports: usize) -> Self {
        Self {
            ports: (0..ports).map(|_| PortCounters::default()).collect(),
            busy_loops: AtomicU64::new(0),
            idle_loops: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            latency: Box::new(std::array::from_fn(|_| AtomicU64::new(0))),
            latency_sum_ns: AtomicU64::new(0),
            frames: FrameCounts::default(),
            buckets: Box::new(std::array::from_fn(|_| AtomicU64::new(0))),
        }
    }

    /// The frames placed by each bucket so far.
    pub fn bucket_hits(&self) -> [u64; crate::distribution::BUCKETS] {
        std::array::from_fn(|b| self.buckets[b].load(Ordering::Relaxed))
    }

    /// The block of port `index`.
    ///
    /// # Panics
    /// If `index` is not below the number of ports given to [`new`](Self::new).
    #[inline(always)]
    pub fn port(&self, index: usize) -> &PortCounters {
        &self.ports[index]
    }

    /// Number of port blocks.
    pub fn ports(&self) -> usize {
        self.ports.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_are_ordered_and_hold_their_values() {
        let mut last = 0;
        for i in 0..LATENCY_BUCKETS {
            let upper = latency_bucket_upper(i);
            assert!(upper > last, "bucket {i}");
            last = upper;
        }
        for ns in [
            64u64,
            65,
            80,
            95,
            96,
            127,
            128,
            1_000,
            10_000,
            123_456,
            999_999_999,
        ] {
            let b = latency_bucket(ns);
            assert!(
                ns < latency_bucket_upper(b),
                "{ns} below the upper bound of {b}"
            );
            if b > 0 {
                assert!(
                    ns >= latency_bucket_upper(b - 1),
                    "{ns} above the bound of {}",
                    b - 1
                );
            }
        }
        assert_eq!(latency_bucket(1), 0);
        assert_eq!(latency_bucket(u64::MAX), LATENCY_BUCKETS - 1);
    }
}
