//! The worker: one pinned thread per queue, moving frames between a lagg's member ports and its
//! upper port through AF_XDP sockets that share one UMEM.
//!
//! Each loop iteration, in batches:
//! 1. reap every socket's completions until the ring is empty, and service sockets being
//!    closed (their last transmits complete, then every frame they held comes back);
//! 2. top up the fill rings, starting at a different port each time so none is always last:
//!    full budget on the upper port and collecting members, a few frames on the others;
//! 3. for each port, take up to [`RX_BUDGET`] frames from its rx ring:
//!    - from a member: every frame goes to the upper port (receive policy was applied in XDP);
//!    - from the upper port: [`distribute`](crate::distribution::distribute) decides the member of each frame against the
//!      table snapshot loaded once per iteration;
//!
//!    frames are appended to per-port tx queues and flushed to the tx rings, so a frame's
//!    bytes are never copied in userspace (broadcast copies are the exception);
//! 4. wake the kernel for tx only where the ring asks for it and the device is up; when idle
//!    for a while, block in `poll` with a short timeout (so the stop flag and new tables are
//!    seen promptly). A port whose device is down does not count as work: the idle worker
//!    sleeps.
//!
//! Every UMEM frame is accounted for by the [`Ledger`]: free, in the worker's hands, on one
//! socket's fill ring or on one socket's tx ring. Frames are [`Frame`] tokens that only the
//! rings produce and consume, so safe code never touches a frame the kernel may be writing.
//! Closing a socket (a member leaving, or a socket reset) gives back exactly what the ledger
//! says it held; an audit checks the whole ledger at every membership change and at stop.
//!
//! Nothing in the per-frame path allocates, locks, logs or makes a system call: all buffers
//! are sized when the worker is built, counters are accumulated per batch.
//!
//! Ports live in fixed slots: member `m` in slot `m`, the upper port in [`UPPER_SLOT`], so a
//! member can join or leave a running worker ([`WorkerControl`]) without any other port's
//! slot, counters or table index changing. The control thread's commands are looked at once
//! per loop iteration (one relaxed load when there are none); none of them blocks the loop: a
//! leaving socket is handed to the loop's retiring list and closed when its transmits are done.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::afxdp::{self, BindMode, Frame, Kick, RingSizes, Umem, XskError, XskSocket};
use crate::counters::{bump, latency_bucket, DropReason, PortCounters, WorkerCounters, XskCounter};
use crate::distribution::{
    distribute_counted, DistributionTable, Egress, MemberIndex, RoundRobinCursor, MAX_MEMBERS,
};
use crate::learn::{RecentMacs, SAMPLE_EVERY};
use crate::ledger::{Ledger, SocketId};
use crate::mapped_words::MappedWords;
use xlagg_common::LOST_EPOCH;

mod control;
mod hot;
mod ports;
#[cfg(test)]
mod tests;

pub use control::{Answer, Command, WorkerControl};
use hot::{drain_tx, reap};
use ports::{Opening, PortSocket, Retiring};

/// Frames distributed together: the unit of [`distribute`](crate::distribution::distribute).
pub const BATCH: usize = 64;
/// Frames taken from one port's rx ring per iteration (in [`BATCH`]-sized pieces). Larger than
/// a batch so that each member's tx ring gets enough frames per wakeup: in copy mode every
/// `sendto` is a system call, and spreading one batch over N members would otherwise cost N
/// calls where a single port needs one.
pub const RX_BUDGET: usize = 256;
/// Frames one copy-mode `sendto` may transmit, where the kernel lets us raise it.
const TX_BUDGET: u32 = 256;
/// Wakeups per port per iteration at most, so one stuck port cannot hold the loop.
const MAX_KICKS: u32 = 16;
/// Fill ring level of a member that is not collecting (XDP drops its frames): enough for the
/// first burst after it starts collecting, before the next iteration raises it.
pub const PARKED_FILL: u32 = 64;
/// The least fill level a collecting port may have: a port added beyond it is refused.
pub const MIN_FILL: u32 = 256;
/// How long a leaving socket's transmits may take to complete before it is closed anyway.
const RETIRE_GRACE: Duration = Duration::from_millis(200);

/// Idle iterations before the worker blocks in `poll`.
const IDLE_SPINS: u32 = 256;
/// How long an idle worker blocks before looking at the stop flag again.
const IDLE_POLL_MS: i32 = 10;
/// How often the worker copies its sockets' kernel counters and its frame counts.
const SOCKET_STATS_EVERY: Duration = Duration::from_millis(500);

/// Whether zero-copy is tried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ZeroCopy {
    /// Try zero-copy; fall back to copy mode with a warning.
    #[default]
    Auto,
    /// Copy mode only.
    Off,
    /// Zero-copy or fail.
    Required,
}

/// The slot of the upper port (members use slots `0..MAX_MEMBERS`).
pub const UPPER_SLOT: usize = MAX_MEMBERS;
/// Port slots of a worker (and counter blocks it needs).
pub const SLOTS: usize = MAX_MEMBERS + 1;

/// What a worker needs to know about its lagg.
#[derive(Clone, Debug)]
pub struct WorkerLayout {
    /// Number of member ports; they are ports `0..members`, the upper port is `members`.
    pub members: usize,
    /// The receive queue this worker serves on every port.
    pub queue: u32,
    /// Forward mode: where to record source MACs seen from the upper port.
    pub learn: Option<Arc<RecentMacs>>,
    /// Ring sizes, for sockets opened later.
    pub sizes: RingSizes,
    /// The mailbox for members joining and leaving, if the lagg allows it.
    pub control: Option<Arc<WorkerControl>>,
    /// Preferred busy polling: the sockets are set up for it ([`BUSY_POLL_US`],
    /// [`BATCH`] per poll) and the loop drives every port's NAPI with a `recvfrom` per
    /// iteration.
    pub busy_poll: bool,
    /// The lagg's lost-member words (see [`crate::engine::XdpEngine::lost_words`]): the
    /// kernel's drop watch marks a member whose carrier went, the worker one whose device is
    /// down, and a member whose word is set is left at the next iteration, by the table the
    /// control thread will publish without it.
    pub lost: Option<Arc<MappedWords>>,
}

/// How long one busy poll may run (`SO_BUSY_POLL`), microseconds.
pub const BUSY_POLL_US: u32 = 20;

/// The largest MTU whose frames (with an Ethernet header and one VLAN tag) fit one UMEM
/// frame; above it packets are descriptor chains and the sockets need multi-buffer.
pub const fn single_frame_mtu() -> u32 {
    Umem::single_frame_max() - 18
}

/// Opens one socket per port (`ifindexes`: members in order, then the upper port) on `queue`,
/// all over one UMEM. Zero-copy first unless `zero_copy` is `Off`; when any port refuses it,
/// every socket is reopened in copy mode and the reason logged.
///
/// Copy-mode sockets always carry multi-buffer packets (`XDP_USE_SG` costs a copy-mode
/// socket nothing for packets that fit a frame, and the MTU can then rise without new
/// sockets); zero-copy ones only when `jumbo` (packets larger than a frame are expected),
/// since drivers without multi-buffer zero-copy refuse the flag.
///
/// # Errors
/// Socket errors, or a zero-copy refusal under [`ZeroCopy::Required`].
pub fn open_sockets(
    umem: &Umem,
    ifindexes: &[(String, u32)],
    queue: u32,
    sizes: RingSizes,
    zero_copy: ZeroCopy,
    jumbo: bool,
) -> Result<Vec<XskSocket>, (String, XskError)> {
    let open_all = |mode: BindMode, multi_buffer: bool| {
        let mut sockets: Vec<XskSocket> = Vec::with_capacity(ifindexes.len());
        for (name, ifindex) in ifindexes {
            let socket = XskSocket::open(
                umem,
                sockets.first(),
                *ifindex,
                queue,
                sizes,
                mode,
                multi_buffer,
            )
            .map_err(|e| (name.clone(), e))?;
            sockets.push(socket);
        }
        Ok::<_, (String, XskError)>(sockets)
    };
    // Copy mode asks for multi-buffer even when the MTU does not need it; a kernel before
    // 6.6 does not know the flag (EINVAL), and then only a jumbo MTU is an error.
    let open_copy = || match open_all(BindMode::Copy, true) {
        Err((port, e)) if afxdp::is_invalid_argument(&e) => {
            if jumbo {
                return Err((
                    port,
                    XskError::Sys {
                        call: "bind(AF_XDP) with XDP_USE_SG",
                        source: std::io::Error::other(
                            "this kernel has no AF_XDP multi-buffer (Linux 6.6 or later): \
                             use an MTU of 1774 or less here",
                        ),
                    },
                ));
            }
            tracing::debug!(%port, "no AF_XDP multi-buffer in this kernel; MTU changes above 1774 restart the workers");
            open_all(BindMode::Copy, false)
        }
        other => other,
    };
    if zero_copy == ZeroCopy::Off {
        return open_copy();
    }
    match open_all(BindMode::ZeroCopy, jumbo) {
        Ok(sockets) => Ok(sockets),
        Err((port, e)) if zero_copy == ZeroCopy::Auto && afxdp::is_zero_copy_unsupported(&e) => {
            tracing::warn!(%port, queue, error = %e, "zero-copy AF_XDP refused; using copy mode on every port of this worker");
            open_copy()
        }
        Err(e) => Err(e),
    }
}

/// A worker, built by the control thread and then moved to its own thread by [`Worker::run`].
#[derive(Debug)]
pub struct Worker {
    umem: Umem,
    /// Sockets by slot (members `0..MAX_MEMBERS`, upper [`UPPER_SLOT`]).
    ports: Vec<Option<PortSocket>>,
    /// The occupied slots, in order (members, then the upper port).
    present: Vec<usize>,
    retiring: Vec<Retiring>,
    opening: Vec<Opening>,
    queue: u32,
    sizes: RingSizes,
    control: Option<Arc<WorkerControl>>,
    ledger: Ledger,
    free: Vec<Frame>,
    /// Fill level of the upper port and of collecting members.
    fill_full: u32,
    /// Where the next refill starts (rotates).
    refill_from: usize,
    table: Arc<ArcSwap<DistributionTable>>,
    counters: Arc<WorkerCounters>,
    stop: Arc<AtomicBool>,
    rr: RoundRobinCursor,
    learn: Option<Arc<RecentMacs>>,
    busy_poll: bool,
    lost: Option<Arc<MappedWords>>,
    /// The count of marks last read, and the members marked then (bit set).
    lost_seen: (u64, u32),
    /// The live table's generation and the marked set it was derived for, and the
    /// derived table (the live one without those members).
    derived: Option<(u64, u32, Arc<DistributionTable>)>,
    rx: Vec<Frame>,
    egress: [Egress; BATCH],
    tx_queues: Vec<Vec<Frame>>,
    pollfds: Vec<libc::pollfd>,
}

impl Worker {
    /// A worker over `ports` (members in order, then the upper port) sharing `umem`.
    ///
    /// # Panics
    /// If `ports` does not hold `layout.members + 1` sockets, or there are more members than
    /// [`MAX_MEMBERS`].
    pub fn new(
        mut umem: Umem,
        ports: Vec<XskSocket>,
        layout: WorkerLayout,
        table: Arc<ArcSwap<DistributionTable>>,
        counters: Arc<WorkerCounters>,
        stop: Arc<AtomicBool>,
    ) -> Self {
        assert_eq!(
            ports.len(),
            layout.members + 1,
            "one socket per member plus the upper port"
        );
        assert!(layout.members <= MAX_MEMBERS);
        assert!(counters.ports() >= SLOTS, "counters for every slot");
        let frames = umem.frames();
        let mut free = umem.take_frames();
        free.reverse();
        let mut ledger = Ledger::new(frames);
        // Worst case between flushes: one port's whole rx budget to one port.
        let tx_queues = (0..SLOTS).map(|_| Vec::with_capacity(RX_BUDGET)).collect();
        let raised = ports
            .iter()
            .all(|p| p.mode() == BindMode::ZeroCopy || p.set_tx_budget(TX_BUDGET));
        tracing::debug!(raised, "copy-mode tx budget per sendto");
        let mut slots: Vec<Option<PortSocket>> = (0..SLOTS).map(|_| None).collect();
        let members = layout.members;
        for (i, socket) in ports.into_iter().enumerate() {
            let slot = if i < members { i } else { UPPER_SLOT };
            let id = ledger.open_socket().expect("fewer sockets than ids");
            slots[slot] = Some(PortSocket {
                socket,
                id,
                stalled: false,
            });
        }
        counters
            .frames
            .total
            .store(u64::from(frames), Ordering::Relaxed);
        let mut worker = Self {
            umem,
            queue: layout.queue,
            sizes: layout.sizes,
            control: layout.control,
            ledger,
            free,
            fill_full: 0,
            refill_from: 0,
            table,
            counters,
            stop,
            rr: RoundRobinCursor::default(),
            learn: layout.learn,
            busy_poll: layout.busy_poll,
            lost: layout.lost,
            lost_seen: (0, 0),
            derived: None,
            rx: Vec::with_capacity(BATCH),
            egress: [Egress::Drop; BATCH],
            tx_queues,
            pollfds: Vec::with_capacity(SLOTS),
            ports: slots,
            present: Vec::with_capacity(SLOTS),
            retiring: Vec::with_capacity(SLOTS),
            opening: Vec::new(),
        };
        worker.rebuild_present();
        worker
    }

    /// The fill level a collecting port gets with `ports` ports: half the UMEM over the fill
    /// rings, the other half for frames in flight.
    fn fill_level(&self, ports: usize) -> u32 {
        (self.umem.frames() / (2 * ports.max(1) as u32)).min(self.sizes.fill)
    }

    fn rebuild_present(&mut self) {
        self.present.clear();
        for (slot, p) in self.ports.iter().enumerate() {
            if p.is_some() {
                self.present.push(slot);
            }
        }
        self.fill_full = self.fill_level(self.present.len());
    }

    /// Checks the ledger against the free stack; a failure is counted and logged.
    fn check_ledger(&self, when: &str) {
        let free: Vec<u32> = self.free.iter().map(Frame::index).collect();
        let held: usize = self.rx.len() + self.tx_queues.iter().map(Vec::len).sum::<usize>();
        if let Err(e) = self.ledger.audit(&free, held) {
            bump(&self.counters.frames.audit_failures, 1);
            tracing::error!(queue = self.queue, when, error = %e, "UMEM frame accounting is wrong");
            debug_assert!(false, "UMEM frame accounting is wrong at {when}: {e}");
        }
    }

    /// Audits the ledger now (for tests): every frame in exactly one place.
    ///
    /// # Errors
    /// What does not add up.
    pub fn audit(&self) -> Result<(), String> {
        let free: Vec<u32> = self.free.iter().map(Frame::index).collect();
        let held: usize = self.rx.len() + self.tx_queues.iter().map(Vec::len).sum::<usize>();
        self.ledger.audit(&free, held)
    }

    /// Frames on the free stack.
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    /// Runs until the stop flag is set, pinned to `core` if given.
    pub fn run(mut self, core: Option<usize>) {
        if let Some(id) = core {
            if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
                tracing::warn!(core = id, "could not pin worker to core; running unpinned");
            }
        }
        tracing::debug!(ports = self.present.len(), "worker running");
        let mut idle = 0u32;
        let mut stats_due = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            if self
                .control
                .as_ref()
                .is_some_and(|c| c.pending.load(Ordering::Acquire))
            {
                self.apply_commands();
            } else if !self.opening.is_empty() {
                self.try_openings();
            }
            let started = Instant::now();
            let moved = self.step();
            if moved > 0 {
                idle = 0;
                bump(&self.counters.busy_loops, 1);
                let took = started.elapsed().as_nanos() as u64;
                bump(&self.counters.busy_ns, took);
            } else {
                bump(&self.counters.idle_loops, 1);
                idle += 1;
                if idle >= IDLE_SPINS && !self.has_pending_work() {
                    // Not the stalled ones: polling an AF_XDP socket also drives its transmit,
                    // and what waits on a stalled ring must not leave when the device returns.
                    let live = self
                        .ports
                        .iter()
                        .flatten()
                        .filter(|p| !p.stalled)
                        .map(|p| &p.socket);
                    let door = self
                        .control
                        .as_ref()
                        .map(|c| std::os::fd::AsRawFd::as_raw_fd(&c.door));
                    afxdp::wait_readable(live, door, &mut self.pollfds, IDLE_POLL_MS);
                    // Still idle after the wait: the next empty iteration waits again at
                    // once instead of spinning another IDLE_SPINS times.
                    idle = IDLE_SPINS - 1;
                }
            }
            if started >= stats_due {
                stats_due = started + SOCKET_STATS_EVERY;
                self.copy_stats();
            }
        }
        // Give every frame back before the audit: the sockets close with the worker.
        self.check_ledger("stop");
        tracing::debug!("worker stopped");
    }

    /// Transmits that can still make progress, or sockets waiting to close.
    fn has_pending_work(&self) -> bool {
        !self.retiring.is_empty()
            || !self.opening.is_empty()
            || self
                .ports
                .iter()
                .flatten()
                .any(|p| !p.stalled && self.ledger.in_flight(p.id) > 0)
    }

    /// Copies the kernel's counters of every socket (one system call per socket) and the frame
    /// counts into the worker's counters ([`run`](Self::run) does it twice a second).
    pub fn copy_stats(&self) {
        for (i, port) in self.ports.iter().enumerate() {
            let Some(port) = port else { continue };
            if let Ok(s) = port.socket.stats() {
                let c = &self.counters.port(i).xsk;
                for (counter, value) in [
                    (XskCounter::RxDropped, s.rx_dropped),
                    (XskCounter::RxRingFull, s.rx_ring_full),
                    (XskCounter::FillRingEmpty, s.rx_fill_ring_empty),
                    (XskCounter::RxInvalidDescriptor, s.rx_invalid_descs),
                    (XskCounter::TxInvalidDescriptor, s.tx_invalid_descs),
                    (XskCounter::TxRingEmpty, s.tx_ring_empty),
                ] {
                    c[counter as usize].store(value, Ordering::Relaxed);
                }
            }
        }
        let live = self.ports.iter().flatten().map(|p| p.id);
        let (posted, in_flight) = live.fold((0u64, 0u64), |(p, f), id| {
            (
                p + u64::from(self.ledger.posted(id)),
                f + u64::from(self.ledger.in_flight(id)),
            )
        });
        let retiring: u64 = self
            .retiring
            .iter()
            .map(|r| u64::from(self.ledger.posted(r.id) + self.ledger.in_flight(r.id)))
            .sum();
        let f = &self.counters.frames;
        f.free.store(self.free.len() as u64, Ordering::Relaxed);
        f.posted.store(posted, Ordering::Relaxed);
        f.in_flight.store(in_flight, Ordering::Relaxed);
        f.retiring.store(retiring, Ordering::Relaxed);
    }

    /// One iteration; returns the number of frames received.
    pub fn step(&mut self) -> usize {
        let live = self.table.load();
        let derived = self.without_lost(&live);
        let table: &DistributionTable = derived.as_deref().unwrap_or(&live);
        self.reap_completions();
        if !self.retiring.is_empty() {
            self.service_retiring();
        }
        self.refill(table);
        if self.busy_poll {
            // The ports' NAPI runs here, on this core, not in a softirq.
            for &slot in &self.present {
                if let Some(p) = self.ports[slot].as_ref().filter(|p| !p.stalled) {
                    p.socket.kick_rx();
                }
            }
        }
        let mut moved = 0;
        for k in 0..self.present.len() {
            let port = self.present[k];
            let mut taken = 0;
            let mut received = None;
            while taken < RX_BUDGET {
                let (n, more) = self.receive_batch(table, port);
                if n > 0 && received.is_none() {
                    received = Some(Instant::now());
                }
                taken += n;
                if !more {
                    break;
                }
            }
            if let Some(at) = received {
                self.flush();
                moved += taken;
                // Receive to transmit submit, for every frame of these batches.
                let ns = at.elapsed().as_nanos() as u64;
                bump(&self.counters.latency[latency_bucket(ns)], taken as u64);
                bump(&self.counters.latency_sum_ns, ns * taken as u64);
            }
        }
        self.kick_outstanding();
        moved
    }
}

/// UMEM frames for a worker serving `ports` ports (members and the upper port) and
/// `spare` more that may join at run time: every fill ring full and as much again in flight,
/// at least 16384.
pub fn frames_for(ports: usize, spare: usize, sizes: RingSizes) -> u32 {
    (((ports + spare) as u32) * (sizes.fill + sizes.tx))
        .next_power_of_two()
        .max(16384)
}

/// Members a lagg's UMEM has room for beyond those it starts with (hot membership).
pub const HOT_ADD_SPARE: usize = 4;

/// The memory a lagg's workers map: each worker's UMEM (sized for the members, the upper port
/// and [`HOT_ADD_SPARE`] more, up to [`MAX_MEMBERS`]) and four rings per socket.
pub fn lagg_memory(members: usize, ring: u32, workers: usize) -> u64 {
    let sizes = RingSizes {
        fill: ring,
        completion: ring,
        rx: ring,
        tx: ring,
    };
    let spare = MAX_MEMBERS.saturating_sub(members).min(HOT_ADD_SPARE);
    let ports = members + 1;
    let umem = u64::from(frames_for(ports, spare, sizes)) * u64::from(afxdp::FRAME_SIZE);
    let desc = std::mem::size_of::<afxdp::Desc>() as u64;
    let rings = (ports + spare) as u64 * u64::from(ring) * (8 + 8 + desc + desc);
    (umem + rings) * workers.max(1) as u64
}

/// Default ring sizes and frame count for a worker serving `ports` ports.
pub fn default_frames(ports: usize, sizes: RingSizes) -> u32 {
    frames_for(ports, 0, sizes)
}
