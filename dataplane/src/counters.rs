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
}

impl DropReason {
    /// Number of reasons.
    pub const COUNT: usize = 4;
    /// All reasons in index order.
    pub const ALL: [DropReason; Self::COUNT] = [
        DropReason::TxRingFull,
        DropReason::NoActivePort,
        DropReason::NoFreeFrame,
        DropReason::InvalidDescriptor,
    ];

    /// The reason as status output and metrics name it.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::TxRingFull => "tx_ring_full",
            DropReason::NoActivePort => "no_active_port",
            DropReason::NoFreeFrame => "no_free_frame",
            DropReason::InvalidDescriptor => "invalid_descriptor",
        }
    }
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
    /// A snapshot.
    pub fn totals(&self) -> PortTotals {
        let mut drops = [0; DropReason::COUNT];
        for (d, c) in drops.iter_mut().zip(&self.drops) {
            *d = c.load(Ordering::Relaxed);
        }
        PortTotals {
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
}

impl WorkerCounters {
    /// Counters for `ports` ports.
    pub fn new(ports: usize) -> Self {
        Self {
            ports: (0..ports).map(|_| PortCounters::default()).collect(),
            busy_loops: AtomicU64::new(0),
            idle_loops: AtomicU64::new(0),
        }
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
