//! The worker: one pinned thread per queue, moving frames between a lagg's member ports and its
//! upper port through AF_XDP sockets that share one UMEM.
//!
//! Each loop iteration, in batches:
//! 1. reap completions of every socket into the free-frame stack;
//! 2. top up every fill ring from the free stack;
//! 3. for each port, take up to one batch from its rx ring:
//!    - from a member: every frame goes to the upper port (receive policy was applied in XDP);
//!    - from the upper port: [`distribute`] decides the member of each frame against the
//!      table snapshot loaded once per iteration;
//!
//!    the descriptors are appended to per-port tx queues and flushed to the tx rings, so a
//!    frame's bytes are never copied in userspace (broadcast copies are the exception);
//! 4. wake the kernel for tx only where the ring asks for it; when idle for a while, block in
//!    `poll` with a short timeout (so the stop flag and new tables are seen promptly).
//!
//! Nothing in the per-frame path allocates, locks, logs or makes a system call: all buffers
//! are sized when the worker is built, counters are accumulated per batch.
//!
//! Ports live in fixed slots: member `m` in slot `m`, the upper port in [`UPPER_SLOT`], so a
//! member can join or leave a running worker ([`WorkerControl`]) without any other port's
//! slot, counters or table index changing. The control thread's commands are looked at once
//! per loop iteration (one relaxed load when there are none).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::afxdp::{self, BindMode, Desc, Kick, RingSizes, Umem, XskError, XskSocket};
use crate::counters::{bump, latency_bucket, DropReason, WorkerCounters, XskCounter};
use crate::distribution::{distribute, DistributionTable, Egress, RoundRobinCursor, MAX_MEMBERS};
use crate::learn::{RecentMacs, SAMPLE_EVERY};

/// Frames distributed together: the unit of [`distribute`].
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

/// Idle iterations before the worker blocks in `poll`.
const IDLE_SPINS: u32 = 256;
/// How long an idle worker blocks before looking at the stop flag again.
const IDLE_POLL_MS: i32 = 10;
/// How often the worker copies its sockets' kernel counters into its counters.
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

/// A change the control thread asks a running worker to make.
#[derive(Debug, Clone)]
pub enum Command {
    /// Open a socket on this device (on the worker's queue, over its UMEM) into member slot
    /// `slot`; the answer carries the socket's descriptor for the port's XSKMAP.
    Add {
        /// Member slot.
        slot: usize,
        /// Device name (for messages).
        name: String,
        /// Device index.
        ifindex: u32,
    },
    /// Retire member slot `slot`: its queued frames are dropped, its in-flight transmits
    /// completed, the frames in its rings reclaimed, its socket closed. The port's program
    /// must no longer redirect to it.
    Remove {
        /// Member slot.
        slot: usize,
    },
}

/// A worker's answer to a [`Command`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The socket is open: register this descriptor for the worker's queue.
    Added {
        /// Member slot.
        slot: usize,
        /// The socket's descriptor (owned by the worker).
        fd: i32,
    },
    /// The socket could not be opened.
    Failed {
        /// Member slot.
        slot: usize,
        /// Why.
        error: String,
    },
    /// The slot is empty now.
    Removed {
        /// Member slot.
        slot: usize,
        /// UMEM frames reclaimed from its rings.
        reclaimed: usize,
    },
}

/// The mailbox between the control thread and one running worker.
#[derive(Debug, Default)]
pub struct WorkerControl {
    pending: AtomicBool,
    commands: std::sync::Mutex<Vec<Command>>,
    answers: std::sync::Mutex<Vec<Answer>>,
    answered: std::sync::Condvar,
}

impl WorkerControl {
    /// Posts a command and waits (at most `timeout`) for its answer.
    ///
    /// # Errors
    /// The worker did not answer in time (it may be stopped).
    pub fn call(&self, command: Command, timeout: Duration) -> Result<Answer, String> {
        let slot = match &command {
            Command::Add { slot, .. } | Command::Remove { slot } => *slot,
        };
        self.commands
            .lock()
            .map_err(|_| "worker mailbox poisoned".to_string())?
            .push(command);
        self.pending.store(true, Ordering::Release);
        let deadline = Instant::now() + timeout;
        let mut answers = self
            .answers
            .lock()
            .map_err(|_| "worker mailbox poisoned".to_string())?;
        loop {
            if let Some(i) = answers.iter().position(|a| match a {
                Answer::Added { slot: s, .. }
                | Answer::Failed { slot: s, .. }
                | Answer::Removed { slot: s, .. } => *s == slot,
            }) {
                return Ok(answers.remove(i));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("the worker did not answer within {timeout:?}"));
            }
            answers = self
                .answered
                .wait_timeout(answers, left)
                .map_err(|_| "worker mailbox poisoned".to_string())?
                .0;
        }
    }

    fn take(&self) -> Vec<Command> {
        self.pending.store(false, Ordering::Relaxed);
        self.commands
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }

    fn answer(&self, a: Answer) {
        if let Ok(mut answers) = self.answers.lock() {
            answers.push(a);
        }
        self.answered.notify_all();
    }
}

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
}

/// Opens one socket per port (`ifindexes`: members in order, then the upper port) on `queue`,
/// all over one UMEM. Zero-copy first unless `zero_copy` is `Off`; when any port refuses it,
/// every socket is reopened in copy mode and the reason logged.
///
/// # Errors
/// Socket errors, or a zero-copy refusal under [`ZeroCopy::Required`].
pub fn open_sockets(
    umem: &Umem,
    ifindexes: &[(String, u32)],
    queue: u32,
    sizes: RingSizes,
    zero_copy: ZeroCopy,
) -> Result<Vec<XskSocket>, (String, XskError)> {
    let open_all = |mode: BindMode| -> Result<Vec<XskSocket>, (String, XskError)> {
        let mut sockets: Vec<XskSocket> = Vec::with_capacity(ifindexes.len());
        for (name, ifindex) in ifindexes {
            let socket = XskSocket::open(umem, sockets.first(), *ifindex, queue, sizes, mode)
                .map_err(|e| (name.clone(), e))?;
            sockets.push(socket);
        }
        Ok(sockets)
    };
    if zero_copy == ZeroCopy::Off {
        return open_all(BindMode::Copy);
    }
    match open_all(BindMode::ZeroCopy) {
        Ok(sockets) => Ok(sockets),
        Err((port, e)) if zero_copy == ZeroCopy::Auto && afxdp::is_zero_copy_unsupported(&e) => {
            tracing::warn!(%port, queue, error = %e, "zero-copy AF_XDP refused; using copy mode on every port of this worker");
            open_all(BindMode::Copy)
        }
        Err(e) => Err(e),
    }
}

/// A worker, built by the control thread and then moved to its own thread by [`Worker::run`].
#[derive(Debug)]
pub struct Worker {
    umem: Umem,
    /// Sockets by slot (members `0..MAX_MEMBERS`, upper [`UPPER_SLOT`]).
    ports: Vec<Option<XskSocket>>,
    /// The occupied slots, in order (members, then the upper port).
    present: Vec<usize>,
    queue: u32,
    sizes: RingSizes,
    control: Option<Arc<WorkerControl>>,
    frames: u32,
    free: Vec<u64>,
    fill_target: u32,
    outstanding: Vec<u32>,
    table: Arc<ArcSwap<DistributionTable>>,
    counters: Arc<WorkerCounters>,
    stop: Arc<AtomicBool>,
    rr: RoundRobinCursor,
    learn: Option<Arc<RecentMacs>>,
    rx: [Desc; BATCH],
    egress: [Egress; BATCH],
    tx_queues: Vec<Vec<Desc>>,
    pollfds: Vec<libc::pollfd>,
}

const EMPTY_DESC: Desc = Desc {
    addr: 0,
    len: 0,
    options: 0,
};

impl Worker {
    /// A worker over `ports` (members in order, then the upper port) sharing `umem`.
    ///
    /// # Panics
    /// If `ports` does not hold `layout.members + 1` sockets, or there are more members than
    /// [`MAX_MEMBERS`].
    pub fn new(
        umem: Umem,
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
        let free: Vec<u64> = (0..frames).rev().map(Umem::frame_addr).collect();
        // Leave half the frames for rx rings and tx in flight.
        let fill_target = (frames / (2 * ports.len() as u32)).max(1);
        // Worst case between flushes: one port's whole rx budget to one port, or one copy of
        // each of its frames per member (broadcast).
        let tx_queues = (0..SLOTS).map(|_| Vec::with_capacity(RX_BUDGET)).collect();
        let raised = ports
            .iter()
            .all(|p| p.mode() == BindMode::ZeroCopy || p.set_tx_budget(TX_BUDGET));
        tracing::debug!(raised, "copy-mode tx budget per sendto");
        let mut slots: Vec<Option<XskSocket>> = (0..SLOTS).map(|_| None).collect();
        let mut present = Vec::with_capacity(SLOTS);
        let members = layout.members;
        for (i, socket) in ports.into_iter().enumerate() {
            let slot = if i < members { i } else { UPPER_SLOT };
            slots[slot] = Some(socket);
            present.push(slot);
        }
        Self {
            umem,
            queue: layout.queue,
            sizes: layout.sizes,
            control: layout.control,
            frames,
            free,
            fill_target,
            outstanding: vec![0; SLOTS],
            table,
            counters,
            stop,
            rr: RoundRobinCursor::default(),
            learn: layout.learn,
            rx: [EMPTY_DESC; BATCH],
            egress: [Egress::Drop; BATCH],
            tx_queues,
            pollfds: Vec::with_capacity(SLOTS),
            ports: slots,
            present,
        }
    }

    /// Applies the control thread's commands (between iterations, so no frame is in a
    /// worker-side queue).
    fn apply_commands(&mut self) {
        let Some(control) = self.control.clone() else {
            return;
        };
        for command in control.take() {
            let answer = match command {
                Command::Add {
                    slot,
                    name,
                    ifindex,
                } => self.add_port(slot, &name, ifindex),
                Command::Remove { slot } => self.remove_port(slot),
            };
            control.answer(answer);
        }
    }

    fn add_port(&mut self, slot: usize, name: &str, ifindex: u32) -> Answer {
        if slot >= MAX_MEMBERS || self.ports[slot].is_some() {
            return Answer::Failed {
                slot,
                error: format!("member slot {slot} is not free"),
            };
        }
        let (owner, mode) = match self.ports[UPPER_SLOT].as_ref() {
            Some(u) => (u, u.mode()),
            None => {
                return Answer::Failed {
                    slot,
                    error: "no upper socket to share the UMEM with".into(),
                }
            }
        };
        match XskSocket::open(
            &self.umem,
            Some(owner),
            ifindex,
            self.queue,
            self.sizes,
            mode,
        ) {
            Ok(socket) => {
                if mode == BindMode::Copy {
                    socket.set_tx_budget(TX_BUDGET);
                }
                let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
                // The slot may have been a departed member's: its counts are not this one's.
                self.counters.port(slot).reset();
                self.ports[slot] = Some(socket);
                self.rebuild_present();
                tracing::debug!(port = name, slot, queue = self.queue, "member socket added");
                Answer::Added { slot, fd }
            }
            Err(e) => Answer::Failed {
                slot,
                error: format!("{name} queue {}: {e}", self.queue),
            },
        }
    }

    fn remove_port(&mut self, slot: usize) -> Answer {
        if slot >= MAX_MEMBERS {
            return Answer::Failed {
                slot,
                error: format!("slot {slot} is not a member slot"),
            };
        }
        let Some(mut socket) = self.ports[slot].take() else {
            return Answer::Removed { slot, reclaimed: 0 };
        };
        let before = self.free.len();
        // Frames still queued for it go back to the free stack.
        for desc in self.tx_queues[slot].drain(..) {
            self.free.push(Umem::frame_base(desc.addr));
        }
        // Let the kernel finish what is on its tx ring, and collect the completions.
        let deadline = Instant::now() + Duration::from_millis(200);
        while self.outstanding[slot] > 0 && Instant::now() < deadline {
            drain_tx(&socket);
            reap(&mut socket, &mut self.free, &mut self.outstanding[slot]);
        }
        // Received but not yet taken, and the fill ring's unused buffers.
        let n = socket.rx.available(u32::MAX);
        for i in 0..n {
            self.free.push(Umem::frame_base(socket.rx.read(i).addr));
        }
        socket.rx.release(n);
        for addr in socket.fill.unconsumed() {
            self.free.push(Umem::frame_base(addr));
        }
        self.outstanding[slot] = 0;
        drop(socket);
        self.rebuild_present();
        // Never more frames than the UMEM has, whatever went wrong above.
        self.free.truncate(self.frames as usize);
        Answer::Removed {
            slot,
            reclaimed: self.free.len() - before,
        }
    }

    fn rebuild_present(&mut self) {
        self.present.clear();
        for (slot, p) in self.ports.iter().enumerate() {
            if p.is_some() {
                self.present.push(slot);
            }
        }
        self.fill_target = (self.frames / (2 * self.present.len().max(1) as u32)).max(1);
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
                if idle >= IDLE_SPINS && self.outstanding.iter().all(|&o| o == 0) {
                    afxdp::wait_readable(
                        self.ports.iter().flatten(),
                        &mut self.pollfds,
                        IDLE_POLL_MS,
                    );
                    idle = 0;
                }
            }
            if started >= stats_due {
                stats_due = started + SOCKET_STATS_EVERY;
                self.copy_socket_stats();
            }
        }
        tracing::debug!("worker stopped");
    }

    /// Copies the kernel's counters of every socket (one system call per socket).
    fn copy_socket_stats(&self) {
        for (i, port) in self.ports.iter().enumerate() {
            let Some(port) = port else { continue };
            if let Ok(s) = port.stats() {
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
    }

    /// One iteration; returns the number of frames received.
    pub fn step(&mut self) -> usize {
        let table = self.table.load();
        self.reap_completions();
        self.refill();
        let mut moved = 0;
        for k in 0..self.present.len() {
            let port = self.present[k];
            let mut taken = 0;
            let mut received = None;
            while taken < RX_BUDGET {
                let n = self.receive_batch(&table, port);
                if n > 0 && received.is_none() {
                    received = Some(Instant::now());
                }
                taken += n;
                if n < BATCH {
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

    /// Takes up to one batch from `port`'s rx ring and queues every frame for its egress.
    fn receive_batch(&mut self, table: &DistributionTable, port: usize) -> usize {
        let Some(socket) = self.ports[port].as_mut() else {
            return 0;
        };
        let n = socket.rx.available(BATCH as u32) as usize;
        if n == 0 {
            return 0;
        }
        let mut rx_bytes = 0u64;
        let mut valid = 0;
        for i in 0..n {
            let desc = socket.rx.read(i as u32);
            if self.umem.contains(desc.addr, desc.len) {
                rx_bytes += u64::from(desc.len);
                self.rx[valid] = desc;
                valid += 1;
            } else {
                bump(
                    &self.counters.port(port).drops[DropReason::InvalidDescriptor as usize],
                    1,
                );
                self.free.push(Umem::frame_base(desc.addr));
            }
        }
        socket.rx.release(n as u32);
        let c = self.counters.port(port);
        bump(&c.rx_packets, valid as u64);
        bump(&c.rx_bytes, rx_bytes);
        if port == UPPER_SLOT {
            self.distribute_upper(table, valid);
        } else {
            let upper = UPPER_SLOT;
            if self.tx_queues[upper].len() + valid > self.tx_queues[upper].capacity() {
                self.flush();
            }
            self.tx_queues[upper].extend_from_slice(&self.rx[..valid]);
        }
        n
    }

    fn distribute_upper(&mut self, table: &DistributionTable, n: usize) {
        {
            let mut frames: [&[u8]; BATCH] = [&[]; BATCH];
            for (slot, desc) in frames.iter_mut().zip(&self.rx[..n]) {
                *slot = self.umem.data(desc.addr, desc.len);
            }
            distribute(table, &mut self.rr, &frames[..n], &mut self.egress[..n]);
            if let Some(learn) = &self.learn {
                for frame in frames[..n].iter().step_by(SAMPLE_EVERY) {
                    learn.record(frame);
                }
            }
        }
        let upper = UPPER_SLOT;
        let mut dropped = 0u64;
        let mut no_frame = 0u64;
        for i in 0..n {
            let desc = self.rx[i];
            match self.egress[i] {
                Egress::Port(m)
                    if usize::from(m) < upper && self.ports[usize::from(m)].is_some() =>
                {
                    self.tx_queues[usize::from(m)].push(desc)
                }
                Egress::Port(_) | Egress::Drop => {
                    dropped += 1;
                    self.free.push(Umem::frame_base(desc.addr));
                }
                Egress::AllActive => {
                    let active = table.active();
                    for (k, &m) in active.iter().enumerate() {
                        let m = usize::from(m);
                        if m >= upper || self.ports[m].is_none() {
                            continue;
                        }
                        if k + 1 == active.len() {
                            // The last member takes the original frame.
                            self.tx_queues[m].push(desc);
                        } else if let Some(base) = self.free.pop() {
                            let addr = base + (desc.addr - Umem::frame_base(desc.addr));
                            if self.umem.copy_frame(desc.addr, addr, desc.len) {
                                self.tx_queues[m].push(Desc { addr, ..desc });
                            } else {
                                self.free.push(base);
                            }
                        } else {
                            no_frame += 1;
                        }
                    }
                    // The tx queues hold at most one batch: flush per broadcast frame.
                    if self.tx_queues.iter().any(|q| q.len() == q.capacity()) {
                        self.flush();
                    }
                }
            }
        }
        let c = self.counters.port(upper);
        bump(&c.drops[DropReason::NoActivePort as usize], dropped);
        bump(&c.drops[DropReason::NoFreeFrame as usize], no_frame);
    }

    fn reap_completions(&mut self) {
        for (port, socket) in self.ports.iter_mut().enumerate() {
            if let Some(socket) = socket {
                reap(socket, &mut self.free, &mut self.outstanding[port]);
            }
        }
    }

    fn refill(&mut self) {
        for socket in self.ports.iter_mut().flatten() {
            let want = (self.free.len() as u32).min(self.fill_target);
            let n = socket.fill.free(want);
            for i in 0..n {
                // `n <= free.len()`, so pop always yields.
                let addr = self.free.pop().unwrap_or_default();
                socket.fill.write(i, addr);
            }
            socket.fill.submit(n);
            if n > 0 && socket.fill.needs_wakeup() {
                socket.kick_rx();
            }
        }
    }

    fn flush(&mut self) {
        for k in 0..self.present.len() {
            let port = self.present[k];
            let queue = &mut self.tx_queues[port];
            if queue.is_empty() {
                continue;
            }
            let Some(socket) = self.ports[port].as_mut() else {
                continue;
            };
            let mut room = socket.tx.free(queue.len() as u32) as usize;
            if room < queue.len() {
                // Let the kernel drain the ring, then look again before dropping anything.
                drain_tx(socket);
                reap(socket, &mut self.free, &mut self.outstanding[port]);
                room = socket.tx.free(queue.len() as u32) as usize;
            }
            let mut bytes = 0u64;
            for (i, desc) in queue[..room].iter().enumerate() {
                bytes += u64::from(desc.len);
                socket.tx.write(i as u32, *desc);
            }
            socket.tx.submit(room as u32);
            self.outstanding[port] += room as u32;
            for desc in &queue[room..] {
                self.free.push(Umem::frame_base(desc.addr));
            }
            let c = self.counters.port(port);
            bump(&c.tx_packets, room as u64);
            bump(&c.tx_bytes, bytes);
            bump(
                &c.drops[DropReason::TxRingFull as usize],
                (queue.len() - room) as u64,
            );
            queue.clear();
        }
    }

    fn kick_outstanding(&mut self) {
        for (port, socket) in self.ports.iter().enumerate() {
            let Some(socket) = socket else { continue };
            if self.outstanding[port] > 0 && socket.tx.needs_wakeup() {
                drain_tx(socket);
            }
        }
    }
}

/// Moves a socket's completed transmit frames back to the free stack.
fn reap(socket: &mut XskSocket, free: &mut Vec<u64>, outstanding: &mut u32) {
    let n = socket.completion.available(BATCH as u32 * 4);
    for i in 0..n {
        free.push(Umem::frame_base(socket.completion.read(i)));
    }
    socket.completion.release(n);
    *outstanding -= n.min(*outstanding);
}

/// Wakes the kernel's transmit until it has taken the whole ring: copy mode sends a budget
/// per call and answers EAGAIN while frames remain (bounded by [`MAX_KICKS`]).
fn drain_tx(socket: &XskSocket) {
    for _ in 0..MAX_KICKS {
        if socket.kick_tx() != Kick::Again {
            break;
        }
    }
}

/// Default ring sizes and frame count for a worker serving `ports` ports.
pub fn default_frames(ports: usize, sizes: RingSizes) -> u32 {
    // Enough for every fill ring to be full and as much again in flight, at least 16384.
    ((ports as u32) * (sizes.fill + sizes.tx))
        .next_power_of_two()
        .max(16384)
}
