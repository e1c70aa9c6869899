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
//!    - from the upper port: [`distribute`] decides the member of each frame against the
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

use crate::afxdp::{
    self, BindMode, Frame, Kick, MappedWords, RingSizes, Umem, XskError, XskSocket,
};
use crate::counters::{bump, latency_bucket, DropReason, PortCounters, WorkerCounters, XskCounter};
use crate::distribution::{
    distribute_counted, DistributionTable, Egress, MemberIndex, RoundRobinCursor, MAX_MEMBERS,
};
use crate::learn::{RecentMacs, SAMPLE_EVERY};
use crate::ledger::{Ledger, SocketId};
use xlagg_common::LOST_EPOCH;

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
    /// Retire member slot `slot`: its queued frames are dropped, its socket handed to the loop,
    /// which closes it once its transmits complete and takes back every frame it held. The
    /// port's program must no longer redirect to it.
    Remove {
        /// Member slot.
        slot: usize,
    },
    /// Before a member whose device went down carries traffic again: if frames are stuck on
    /// its tx ring (queued while the device was down), close that socket without sending them
    /// and open a fresh one (answered with `Added`: register the new descriptor); otherwise
    /// nothing changes (`Kept`). Nothing queued before a link went down leaves after it
    /// returns.
    Reset {
        /// Member slot.
        slot: usize,
    },
    /// Fault injection for tests: the worker panics, as a bug would make it (the control
    /// thread must notice and recover).
    #[cfg(feature = "testing")]
    Crash,
}

impl Command {
    fn slot(&self) -> usize {
        match self {
            Command::Add { slot, .. } | Command::Remove { slot } | Command::Reset { slot } => *slot,
            #[cfg(feature = "testing")]
            Command::Crash => usize::MAX,
        }
    }
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
    /// The slot is empty now (its socket closes in the background).
    Removed {
        /// Member slot.
        slot: usize,
        /// Frames that were queued for it, dropped.
        dropped: usize,
    },
    /// Nothing was stuck: the socket stays.
    Kept {
        /// Member slot.
        slot: usize,
    },
}

/// The mailbox between the control thread and one running worker. Every call has a sequence
/// number, so an answer that comes after its call gave up is never taken for a later call's.
#[derive(Debug)]
pub struct WorkerControl {
    pending: AtomicBool,
    next: AtomicU64,
    commands: std::sync::Mutex<Vec<(u64, Command)>>,
    answers: std::sync::Mutex<Vec<(u64, Answer)>>,
    answered: std::sync::Condvar,
    /// Written by a call, polled by an idle worker with its sockets: a command never waits for
    /// the idle poll to time out.
    bell: std::os::unix::net::UnixStream,
    door: std::os::unix::net::UnixStream,
}

impl WorkerControl {
    /// A mailbox with its wakeup pair.
    ///
    /// # Errors
    /// The socket pair cannot be made.
    pub fn new() -> std::io::Result<Self> {
        let (bell, door) = std::os::unix::net::UnixStream::pair()?;
        bell.set_nonblocking(true)?;
        door.set_nonblocking(true)?;
        Ok(Self {
            pending: AtomicBool::new(false),
            next: AtomicU64::new(0),
            commands: std::sync::Mutex::new(Vec::new()),
            answers: std::sync::Mutex::new(Vec::new()),
            answered: std::sync::Condvar::new(),
            bell,
            door,
        })
    }

    /// Posts a command and waits (at most `timeout`) for its answer.
    ///
    /// # Errors
    /// The worker did not answer in time (it may be stopped).
    pub fn call(&self, command: Command, timeout: Duration) -> Result<Answer, String> {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = command.slot();
        self.commands
            .lock()
            .map_err(|_| "worker mailbox poisoned".to_string())?
            .push((seq, command));
        self.pending.store(true, Ordering::Release);
        let _ = std::io::Write::write(&mut &self.bell, &[1]);
        let deadline = Instant::now() + timeout;
        let mut answers = self
            .answers
            .lock()
            .map_err(|_| "worker mailbox poisoned".to_string())?;
        loop {
            // Answers to calls that gave up before this one are late: nobody takes them.
            answers.retain(|(s, _)| *s >= seq);
            if let Some(i) = answers.iter().position(|(s, _)| *s == seq) {
                return Ok(answers.remove(i).1);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "the worker did not answer within {timeout:?} (slot {slot})"
                ));
            }
            answers = self
                .answered
                .wait_timeout(answers, left)
                .map_err(|_| "worker mailbox poisoned".to_string())?
                .0;
        }
    }

    fn take(&self) -> Vec<(u64, Command)> {
        self.pending.store(false, Ordering::Relaxed);
        let mut sink = [0u8; 64];
        while matches!(std::io::Read::read(&mut &self.door, &mut sink), Ok(n) if n > 0) {}
        self.commands
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }

    fn answer(&self, seq: u64, a: Answer) {
        if let Ok(mut answers) = self.answers.lock() {
            answers.push((seq, a));
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

/// A port's socket and what the loop knows about it.
#[derive(Debug)]
struct PortSocket {
    socket: XskSocket,
    id: SocketId,
    /// The device was down at the last tx wakeup: its queued transmits wait on the ring. It is
    /// not woken again (nor counted as work) until a completion shows progress or the control
    /// thread resets it.
    stalled: bool,
}

/// A socket on its way out: kept until its transmits complete (or are abandoned), then closed
/// and its frames taken back.
#[derive(Debug)]
struct Retiring {
    socket: XskSocket,
    id: SocketId,
    /// Close when this passes, whatever is still in flight.
    until: Instant,
    /// Close at once: what its ring holds must never be sent.
    discard: bool,
}

/// A socket to open for a member slot once the kernel lets go of the queue: a socket closed on
/// the same device and queue is released by the kernel in the background, and binding before
/// that answers EBUSY. Tried every [`OPEN_RETRY`] until [`OPEN_PATIENCE`] runs out; the caller
/// gets its answer then.
#[derive(Debug)]
struct Opening {
    seq: u64,
    slot: usize,
    name: String,
    ifindex: u32,
    next_try: Instant,
    until: Instant,
}

/// How often a pending open is tried again.
const OPEN_RETRY: Duration = Duration::from_millis(1);
/// How long a pending open waits for the kernel to release the queue.
const OPEN_PATIENCE: Duration = Duration::from_millis(1000);

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

    /// Applies the control thread's commands (between iterations, so no frame is in a
    /// worker-side queue), then audits the ledger.
    fn apply_commands(&mut self) {
        let Some(control) = self.control.clone() else {
            return;
        };
        for (seq, command) in control.take() {
            let answer = match command {
                Command::Add {
                    slot,
                    name,
                    ifindex,
                } => self.add_port(seq, slot, name, ifindex),
                Command::Remove { slot } => Some(self.remove_port(slot)),
                Command::Reset { slot } => self.reset_port(seq, slot),
                #[cfg(feature = "testing")]
                #[allow(clippy::panic, reason = "fault injection: a test asked for this panic")]
                Command::Crash => panic!(
                    "worker of queue {} crashed on request (fault injection)",
                    self.queue
                ),
            };
            if let Some(answer) = answer {
                control.answer(seq, answer);
            }
        }
        self.try_openings();
        self.check_ledger("membership change");
    }

    /// Tries the pending opens that are due; answers those that succeed or run out of time.
    fn try_openings(&mut self) {
        let now = Instant::now();
        let mut i = 0;
        while i < self.opening.len() {
            if now < self.opening[i].next_try {
                i += 1;
                continue;
            }
            let ifindex = self.opening[i].ifindex;
            let answer = match self.open_port(ifindex) {
                Ok(port) => {
                    let o = &self.opening[i];
                    let (slot, seq) = (o.slot, o.seq);
                    let fd = std::os::fd::AsRawFd::as_raw_fd(&port.socket);
                    // The slot may have been a departed member's: its counts are not this one's.
                    self.counters.port(slot).reset();
                    self.ports[slot] = Some(port);
                    tracing::debug!(port = %o.name, slot, queue = self.queue, "member socket opened");
                    (seq, Answer::Added { slot, fd })
                }
                Err((true, _)) if now < self.opening[i].until => {
                    self.opening[i].next_try = now + OPEN_RETRY;
                    i += 1;
                    continue;
                }
                Err((_, e)) => {
                    let o = &self.opening[i];
                    (
                        o.seq,
                        Answer::Failed {
                            slot: o.slot,
                            error: format!("{} queue {}: {e}", o.name, self.queue),
                        },
                    )
                }
            };
            self.opening.swap_remove(i);
            self.rebuild_present();
            if let Some(control) = &self.control {
                control.answer(answer.0, answer.1);
            }
        }
    }

    /// Opens a socket on `ifindex` over the shared UMEM, in the upper socket's mode. The error
    /// says whether the queue is still busy (worth another try) and what failed.
    fn open_port(&mut self, ifindex: u32) -> Result<PortSocket, (bool, String)> {
        let Some(owner) = self.ports[UPPER_SLOT].as_ref() else {
            return Err((false, "no upper socket to share the UMEM with".into()));
        };
        let mode = owner.socket.mode();
        let socket = XskSocket::open(
            &self.umem,
            Some(&owner.socket),
            ifindex,
            self.queue,
            self.sizes,
            mode,
            owner.socket.multi_buffer(),
        )
        .map_err(|e| (afxdp::is_busy(&e), e.to_string()))?;
        if mode == BindMode::Copy {
            socket.set_tx_budget(TX_BUDGET);
        }
        if self.busy_poll {
            socket
                .set_busy_poll(BUSY_POLL_US, BATCH as u32)
                .map_err(|e| (false, e.to_string()))?;
        }
        let id = self.ledger.open_socket().ok_or((
            false,
            "too many sockets are still closing; try again".to_string(),
        ))?;
        Ok(PortSocket {
            socket,
            id,
            stalled: false,
        })
    }

    /// Queues the socket of a joining member; answered when it is open (or cannot be).
    fn add_port(&mut self, seq: u64, slot: usize, name: String, ifindex: u32) -> Option<Answer> {
        if slot >= MAX_MEMBERS
            || self.ports[slot].is_some()
            || self.opening.iter().any(|o| o.slot == slot)
        {
            return Some(Answer::Failed {
                slot,
                error: format!("member slot {slot} is not free"),
            });
        }
        let after = self.present.len() + self.opening.len() + 1;
        if self.fill_level(after) < MIN_FILL {
            return Some(Answer::Failed {
                slot,
                error: format!(
                    "the worker's UMEM ({} frames) is too small for {after} ports ({MIN_FILL} frames each on \
                     the fill ring and as many in flight): restart the lagg so it is sized for its members",
                    self.umem.frames()
                ),
            });
        }
        let now = Instant::now();
        self.opening.push(Opening {
            seq,
            slot,
            name,
            ifindex,
            next_try: now,
            until: now + OPEN_PATIENCE,
        });
        None
    }

    /// Moves slot `slot`'s socket to the retiring list; its queued frames are dropped.
    fn retire(&mut self, slot: usize, discard: bool) -> usize {
        let Some(port) = self.ports[slot].take() else {
            return 0;
        };
        let queued = self.tx_queues[slot].len();
        for frame in self.tx_queues[slot].drain(..) {
            self.ledger.dropped(frame.index());
            self.free.push(frame);
        }
        self.retiring.push(Retiring {
            discard: discard || port.stalled,
            socket: port.socket,
            id: port.id,
            until: Instant::now() + RETIRE_GRACE,
        });
        self.rebuild_present();
        queued
    }

    fn remove_port(&mut self, slot: usize) -> Answer {
        if slot >= MAX_MEMBERS {
            return Answer::Failed {
                slot,
                error: format!("slot {slot} is not a member slot"),
            };
        }
        let dropped = self.retire(slot, false);
        Answer::Removed { slot, dropped }
    }

    fn reset_port(&mut self, seq: u64, slot: usize) -> Option<Answer> {
        let Some(port) = self.ports.get(slot).and_then(Option::as_ref) else {
            return Some(Answer::Failed {
                slot,
                error: format!("member slot {slot} has no socket"),
            });
        };
        if slot >= MAX_MEMBERS || self.ledger.in_flight(port.id) == 0 {
            return Some(Answer::Kept { slot });
        }
        let ifindex = port.socket.ifindex();
        let stuck = self.ledger.in_flight(port.id);
        // Closed here, before anything can wake its transmit (the device is up again); the new
        // socket is opened once the kernel has released the queue.
        if let Some(old) = self.ports[slot].take() {
            for frame in self.tx_queues[slot].drain(..) {
                self.ledger.dropped(frame.index());
                self.free.push(frame);
            }
            let id = old.id;
            drop(old.socket);
            for index in self.ledger.close_socket(id) {
                self.free.push(self.umem.frame_of_closed_socket(index));
            }
        }
        self.rebuild_present();
        tracing::info!(
            slot,
            queue = self.queue,
            stuck,
            "frames queued while the link was down discarded; reopening the socket"
        );
        let now = Instant::now();
        self.opening.push(Opening {
            seq,
            slot,
            name: format!("slot {slot}"),
            ifindex,
            next_try: now,
            until: now + OPEN_PATIENCE,
        });
        None
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

    /// When an active member of `live` is marked lost (its transmit failed: this worker's
    /// own, another worker's, or, for the XDP engine, the kernel's devmap flush), the table
    /// without those members: the one the control thread publishes once it has seen the link
    /// go, so no flow moves twice. One load per iteration while nothing changes.
    fn without_lost(&mut self, live: &DistributionTable) -> Option<Arc<DistributionTable>> {
        let words = self.lost.as_ref()?;
        let epoch = words.get(LOST_EPOCH as usize);
        if epoch != self.lost_seen.0 {
            let mut down = 0u32;
            for m in 0..MAX_MEMBERS {
                if words.get(m) != 0 {
                    down |= 1 << m;
                }
            }
            self.lost_seen = (epoch, down);
        }
        let down = self.lost_seen.1;
        if down == 0 || live.active().iter().all(|&m| down & (1 << m) == 0) {
            return None;
        }
        if let Some((generation, was, table)) = &self.derived {
            if *generation == live.generation() && *was == down {
                return Some(Arc::clone(table));
            }
        }
        let rest: Vec<MemberIndex> = live
            .active()
            .iter()
            .copied()
            .filter(|&m| down & (1 << m) == 0)
            .collect();
        let table = Arc::new(live.with_active(&rest));
        self.derived = Some((live.generation(), down, Arc::clone(&table)));
        Some(table)
    }

    /// Takes up to one batch of descriptors from `port`'s rx ring, whole packets only (a
    /// multi-buffer chain cut by the batch's end stays for the next batch), and queues every
    /// packet for its egress. Returns the descriptors taken and whether the ring may hold
    /// more.
    fn receive_batch(&mut self, table: &DistributionTable, port: usize) -> (usize, bool) {
        let Some(p) = self.ports[port].as_mut() else {
            return (0, false);
        };
        let n = p.socket.rx_available(BATCH as u32);
        if n == 0 {
            return (0, false);
        }
        let mut take = n;
        while take > 0 && p.socket.rx_continues(take - 1) {
            take -= 1;
        }
        if take == 0 {
            // One chain longer than a batch: at MTU 9000 a chain has 6 descriptors in copy
            // mode (at most 18 in zero-copy), so this takes a kernel bug; taken and dropped
            // below as a broken chain, so the ring moves on.
            take = n;
        }
        let mut rx_bytes = 0u64;
        let mut chain_bytes = 0u64;
        let mut invalid = 0u64;
        let mut packets = 0u64;
        let mut chain_from = self.rx.len();
        let mut broken = false;
        for i in 0..take {
            match p.socket.rx_take(i, &self.umem) {
                Ok(frame) => {
                    self.ledger.received(frame.index(), p.id);
                    chain_bytes += u64::from(frame.len());
                    self.rx.push(frame);
                }
                Err(Some(frame)) => {
                    // A bad descriptor: its frame is taken back only if it was this
                    // socket's to fill.
                    if self.ledger.owner(frame.index()) == crate::ledger::Owner::Fill(p.id) {
                        self.ledger.received(frame.index(), p.id);
                        self.ledger.dropped(frame.index());
                        self.free.push(frame);
                    }
                    broken = true;
                }
                Err(None) => broken = true,
            }
            let ends = !p.socket.rx_continues(i);
            if ends || i + 1 == take {
                if broken || !ends {
                    // The packet goes whole or not at all.
                    for frame in self.rx.drain(chain_from..) {
                        self.ledger.dropped(frame.index());
                        self.free.push(frame);
                    }
                    invalid += 1;
                } else {
                    packets += 1;
                    rx_bytes += chain_bytes;
                }
                chain_from = self.rx.len();
                chain_bytes = 0;
                broken = false;
            }
        }
        p.socket.rx_release(take);
        let c = self.counters.port(port);
        bump(&c.rx_packets, packets);
        bump(&c.rx_bytes, rx_bytes);
        bump(&c.drops[DropReason::InvalidDescriptor as usize], invalid);
        if port == UPPER_SLOT {
            self.distribute_upper(table);
        } else {
            let upper = UPPER_SLOT;
            if self.tx_queues[upper].len() + self.rx.len() > self.tx_queues[upper].capacity() {
                self.flush();
            }
            self.tx_queues[upper].append(&mut self.rx);
        }
        (take as usize, n == BATCH as u32)
    }

    /// Whether member `m` can take frames now: it has a socket whose device is not down.
    #[inline(always)]
    fn can_send(&self, m: usize) -> bool {
        m < UPPER_SLOT && self.ports[m].as_ref().is_some_and(|p| !p.stalled)
    }

    /// Distributes the packets in `self.rx` (each one frame, or a chain whose head holds the
    /// headers): the hash and the round-robin count see each packet once, and every frame of
    /// a packet goes where its head goes, consecutively, so a chain is never split or
    /// interleaved.
    fn distribute_upper(&mut self, table: &DistributionTable) {
        let n = self.rx.len();
        // Where each packet starts in `rx`, and one past the last.
        let mut heads = [0u16; BATCH + 1];
        let mut packets = 0;
        let mut starts = true;
        for (i, frame) in self.rx.iter().enumerate() {
            if starts {
                heads[packets] = i as u16;
                packets += 1;
            }
            starts = !frame.continues();
        }
        heads[packets] = n as u16;
        {
            let mut frames: [&[u8]; BATCH] = [&[]; BATCH];
            for (slot, &head) in frames.iter_mut().zip(&heads[..packets]) {
                *slot = self.umem.bytes(&self.rx[usize::from(head)]);
            }
            let hits = &self.counters.buckets;
            distribute_counted(
                table,
                &mut self.rr,
                &frames[..packets],
                &mut self.egress[..packets],
                |b| bump(&hits[b], 1),
            );
            if let Some(learn) = &self.learn {
                for frame in frames[..packets].iter().step_by(SAMPLE_EVERY) {
                    learn.record(frame);
                }
            }
        }
        let mut dropped = 0u64;
        let mut no_frame = 0u64;
        let rx = std::mem::take(&mut self.rx);
        // Broadcast copies first, from the packets in place; each egress then names where
        // the original goes (a member, or nowhere).
        for k in 0..packets {
            let chain = &rx[usize::from(heads[k])..usize::from(heads[k + 1])];
            self.egress[k] = match self.egress[k] {
                Egress::Port(m) if self.can_send(usize::from(m)) => Egress::Port(m),
                Egress::Port(_) | Egress::Drop => Egress::Drop,
                Egress::AllActive => {
                    let active = table.active();
                    let last = active.iter().rposition(|&m| self.can_send(usize::from(m)));
                    let Some(last) = last else {
                        self.egress[k] = Egress::Drop;
                        continue;
                    };
                    for &m in &active[..last] {
                        let m = usize::from(m);
                        if !self.can_send(m) {
                            continue;
                        }
                        if self.free.len() < chain.len() {
                            no_frame += 1;
                            continue;
                        }
                        if self.tx_queues[m].len() + chain.len() > self.tx_queues[m].capacity() {
                            self.flush();
                        }
                        self.copy_chain(chain, m);
                    }
                    Egress::Port(active[last])
                }
            };
        }
        let mut rx = rx;
        let mut frames = rx.drain(..);
        for k in 0..packets {
            let len = usize::from(heads[k + 1] - heads[k]);
            match self.egress[k] {
                Egress::Port(m) => {
                    let m = usize::from(m);
                    if self.tx_queues[m].len() + len > self.tx_queues[m].capacity() {
                        self.flush();
                    }
                    self.tx_queues[m].extend(frames.by_ref().take(len));
                }
                Egress::Drop | Egress::AllActive => {
                    dropped += 1;
                    for frame in frames.by_ref().take(len) {
                        self.ledger.dropped(frame.index());
                        self.free.push(frame);
                    }
                }
            }
        }
        drop(frames);
        self.rx = rx;
        let c = self.counters.port(UPPER_SLOT);
        bump(&c.drops[DropReason::NoActivePort as usize], dropped);
        bump(&c.drops[DropReason::NoFreeFrame as usize], no_frame);
    }

    /// Queues a copy of every frame of `chain` (one packet) on member `m`'s tx queue; the
    /// caller has checked that enough frames are free.
    fn copy_chain(&mut self, chain: &[Frame], m: usize) {
        let from = self.tx_queues[m].len();
        for frame in chain {
            let Some(mut copy) = self.free.pop() else {
                break;
            };
            self.ledger.taken(copy.index());
            if self.umem.copy_into(frame, &mut copy) {
                self.tx_queues[m].push(copy);
            } else {
                self.ledger.dropped(copy.index());
                self.free.push(copy);
                // Take back what was queued of this packet: it goes whole or not at all.
                for copy in self.tx_queues[m].drain(from..) {
                    self.ledger.dropped(copy.index());
                    self.free.push(copy);
                }
                return;
            }
        }
    }

    fn reap_completions(&mut self) {
        for port in self.ports.iter_mut().flatten() {
            if reap(
                &mut port.socket,
                port.id,
                &self.umem,
                &mut self.ledger,
                &mut self.free,
            ) > 0
            {
                port.stalled = false;
            }
        }
    }

    /// Lets leaving sockets finish their transmits, then closes them and takes their frames
    /// back.
    fn service_retiring(&mut self) {
        let now = Instant::now();
        let mut i = 0;
        while i < self.retiring.len() {
            let r = &mut self.retiring[i];
            reap(
                &mut r.socket,
                r.id,
                &self.umem,
                &mut self.ledger,
                &mut self.free,
            );
            let done = r.discard || self.ledger.in_flight(r.id) == 0 || now >= r.until;
            if !done {
                if r.socket.tx_needs_wakeup() && drain_tx(&r.socket) == Kick::Down {
                    r.discard = true;
                }
                i += 1;
                continue;
            }
            let r = self.retiring.swap_remove(i);
            let id = r.id;
            // Closing the socket ends the kernel's use of every frame it held.
            drop(r.socket);
            for index in self.ledger.close_socket(id) {
                self.free.push(self.umem.frame_of_closed_socket(index));
            }
        }
    }

    /// Posts free frames on the fill rings up to each port's level, starting at a different
    /// port every iteration.
    fn refill(&mut self, table: &DistributionTable) {
        let ports = self.present.len();
        if ports == 0 {
            return;
        }
        self.refill_from = (self.refill_from + 1) % ports;
        for k in 0..ports {
            let slot = self.present[(self.refill_from + k) % ports];
            let level = if slot == UPPER_SLOT || table.is_collecting(slot) {
                self.fill_full
            } else {
                PARKED_FILL.min(self.fill_full)
            };
            let Some(p) = self.ports[slot].as_mut() else {
                continue;
            };
            let posted = self.ledger.posted(p.id);
            let want = level.saturating_sub(posted).min(self.free.len() as u32);
            let n = p.socket.fill_free(want);
            for i in 0..n {
                // `n <= free.len()`, so pop always yields.
                let Some(frame) = self.free.pop() else { break };
                self.ledger.fill(frame.index(), p.id);
                p.socket.fill_put(i, frame);
            }
            p.socket.fill_submit(n);
            // A zero-copy driver may wait for a wakeup even when nothing new was posted.
            if posted + n > 0 && p.socket.fill_needs_wakeup() {
                p.socket.kick_rx();
            }
        }
    }

    fn flush(&mut self) {
        let mut down = 0u64;
        for k in 0..self.present.len() {
            let port = self.present[k];
            if self.tx_queues[port].is_empty() {
                continue;
            }
            let Some(p) = self.ports[port].as_mut() else {
                continue;
            };
            let queue = &mut self.tx_queues[port];
            let len = queue.len();
            let mut room = p.socket.tx_free(len as u32) as usize;
            if room < len && !p.stalled {
                // Let the kernel drain the ring, then look again before dropping anything.
                let kick = drain_tx(&p.socket);
                note_kick(p, self.counters.port(port), kick);
                if kick == Kick::Down {
                    down |= 1 << port;
                }
                reap(
                    &mut p.socket,
                    p.id,
                    &self.umem,
                    &mut self.ledger,
                    &mut self.free,
                );
                room = p.socket.tx_free(len as u32) as usize;
            }
            // Whole packets only: a chain that does not fit the ring is dropped whole.
            while room > 0 && room < len && queue[room - 1].continues() {
                room -= 1;
            }
            let mut bytes = 0u64;
            let mut sent = 0u64;
            for (i, frame) in queue.drain(..room).enumerate() {
                bytes += u64::from(frame.len());
                sent += u64::from(!frame.continues());
                self.ledger.transmit(frame.index(), p.id);
                p.socket.tx_put(i as u32, frame);
            }
            p.socket.tx_submit(room as u32);
            let mut full = 0u64;
            for frame in queue.drain(..) {
                full += u64::from(!frame.continues());
                self.ledger.dropped(frame.index());
                self.free.push(frame);
            }
            let c = self.counters.port(port);
            bump(&c.tx_packets, sent);
            bump(&c.tx_bytes, bytes);
            bump(&c.drops[DropReason::TxRingFull as usize], full);
        }
        self.mark_lost(down);
    }

    fn kick_outstanding(&mut self) {
        let mut down = 0u64;
        for slot in 0..self.ports.len() {
            let Some(p) = self.ports[slot].as_mut() else {
                continue;
            };
            if p.stalled || self.ledger.in_flight(p.id) == 0 || !p.socket.tx_needs_wakeup() {
                continue;
            }
            let kick = drain_tx(&p.socket);
            note_kick(p, self.counters.port(slot), kick);
            if kick == Kick::Down {
                down |= 1 << slot;
            }
        }
        self.mark_lost(down);
    }

    /// Marks the members in `ports` (bit per slot) whose device is down in the lost-member
    /// words: from the next iteration their frames go by the table without them (see
    /// [`Worker::without_lost`]), until the control thread clears the mark.
    fn mark_lost(&self, ports: u64) {
        if ports == 0 {
            return;
        }
        let Some(words) = &self.lost else {
            return;
        };
        for slot in (0..MAX_MEMBERS).filter(|s| ports & (1 << s) != 0) {
            words.mark(slot, LOST_EPOCH as usize);
        }
    }
}

/// Takes in what a transmit wakeup of port `p` answered: a device that is down stalls (the
/// caller marks it lost); a frame the kernel dropped is counted. A refused transmit alone
/// marks nothing: a veth whose receiver's ring is full refuses too, and the drop watch (in the
/// kernel) marks a member whose carrier went at its first dropped frame.
fn note_kick(p: &mut PortSocket, counters: &PortCounters, kick: Kick) {
    match kick {
        Kick::Down => p.stalled = true,
        Kick::Refused => bump(&counters.drops[DropReason::TxRefused as usize], 1),
        _ => {}
    }
}

/// Moves a socket's completed transmits back to the free stack, until its completion ring is
/// empty. Returns how many.
fn reap(
    socket: &mut XskSocket,
    id: SocketId,
    umem: &Umem,
    ledger: &mut Ledger,
    free: &mut Vec<Frame>,
) -> u32 {
    let mut total = 0;
    loop {
        let n = socket.completion_available(u32::MAX);
        if n == 0 {
            return total;
        }
        for i in 0..n {
            if let Some(frame) = socket.completion_take(i, umem) {
                ledger.completed(frame.index(), id);
                free.push(frame);
            }
        }
        socket.completion_release(n);
        total += n;
    }
}

/// Wakes the kernel's transmit until it has taken the whole ring: copy mode sends a budget
/// per call and answers EAGAIN while frames remain (bounded by [`MAX_KICKS`]). Returns the
/// last answer.
fn drain_tx(socket: &XskSocket) -> Kick {
    let mut last = Kick::Done;
    for _ in 0..MAX_KICKS {
        last = socket.kick_tx();
        if last != Kick::Again {
            break;
        }
    }
    last
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
