//! A worker's sockets over their life: opening one for a member that joins (once the kernel
//! has released the queue), retiring one whose member leaves (its transmits finish, then its
//! frames come back), resetting one whose device came back with transmits stuck on it.

use super::*;

/// A port's socket and what the loop knows about it.
#[derive(Debug)]
pub(super) struct PortSocket {
    pub(super) socket: XskSocket,
    pub(super) id: SocketId,
    /// The device was down at the last tx wakeup: its queued transmits wait on the ring. It is
    /// not woken again (nor counted as work) until a completion shows progress or the control
    /// thread resets it.
    pub(super) stalled: bool,
}

/// A socket on its way out: kept until its transmits complete (or are abandoned), then closed
/// and its frames taken back.
#[derive(Debug)]
pub(super) struct Retiring {
    pub(super) socket: XskSocket,
    pub(super) id: SocketId,
    /// Close when this passes, whatever is still in flight.
    pub(super) until: Instant,
    /// Close at once: what its ring holds must never be sent.
    pub(super) discard: bool,
}

/// A socket to open for a member slot once the kernel lets go of the queue: a socket closed on
/// the same device and queue is released by the kernel in the background, and binding before
/// that answers EBUSY. Tried every [`OPEN_RETRY`] until [`OPEN_PATIENCE`] runs out; the caller
/// gets its answer then.
#[derive(Debug)]
pub(super) struct Opening {
    pub(super) seq: u64,
    pub(super) slot: usize,
    pub(super) name: String,
    pub(super) ifindex: u32,
    pub(super) next_try: Instant,
    pub(super) until: Instant,
}

/// How often a pending open is tried again.
pub(super) const OPEN_RETRY: Duration = Duration::from_millis(1);
/// How long a pending open waits for the kernel to release the queue.
pub(super) const OPEN_PATIENCE: Duration = Duration::from_millis(1000);

impl Worker {
    /// Applies the control thread's commands (between iterations, so no frame is in a
    /// worker-side queue), then audits the ledger.
    pub(super) fn apply_commands(&mut self) {
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
    pub(super) fn try_openings(&mut self) {
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
    pub(super) fn open_port(&mut self, ifindex: u32) -> Result<PortSocket, (bool, String)> {
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
    pub(super) fn add_port(
        &mut self,
        seq: u64,
        slot: usize,
        name: String,
        ifindex: u32,
    ) -> Option<Answer> {
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
    pub(super) fn retire(&mut self, slot: usize, discard: bool) -> usize {
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

    pub(super) fn remove_port(&mut self, slot: usize) -> Answer {
        if slot >= MAX_MEMBERS {
            return Answer::Failed {
                slot,
                error: format!("slot {slot} is not a member slot"),
            };
        }
        let dropped = self.retire(slot, false);
        Answer::Removed { slot, dropped }
    }

    pub(super) fn reset_port(&mut self, seq: u64, slot: usize) -> Option<Answer> {
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

    /// Lets leaving sockets finish their transmits, then closes them and takes their frames
    /// back.
    pub(super) fn service_retiring(&mut self) {
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
}
