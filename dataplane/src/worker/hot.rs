//! The per-frame path: receive a batch, distribute it, queue and flush transmits, reap
//! completions, refill the fill rings, and leave members marked lost. Nothing here allocates,
//! locks, logs or makes a system call other than the kernel's wakeups.

use super::*;

impl Worker {
    /// When an active member of `live` is marked lost (its transmit failed: this worker's
    /// own, another worker's, or, for the XDP engine, the kernel's devmap flush), the table
    /// without those members: the one the control thread publishes once it has seen the link
    /// go, so no flow moves twice. One load per iteration while nothing changes.
    pub(super) fn without_lost(
        &mut self,
        live: &DistributionTable,
    ) -> Option<Arc<DistributionTable>> {
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
    pub(super) fn receive_batch(
        &mut self,
        table: &DistributionTable,
        port: usize,
    ) -> (usize, bool) {
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
        let id = p.id;
        let (packets, rx_bytes, invalid) = self.take_packets(port, id, take);
        let Some(p) = self.ports[port].as_mut() else {
            return (0, false);
        };
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

    /// Takes rx entries `0..take` of `port` (socket `id`) into `self.rx`, whole packets
    /// only: a packet with a bad descriptor, or cut by `take`, goes back to the free stack
    /// whole. Returns the packets and bytes taken and the packets dropped as invalid.
    fn take_packets(&mut self, port: usize, id: SocketId, take: u32) -> (u64, u64, u64) {
        let Some(p) = self.ports[port].as_ref() else {
            return (0, 0, 0);
        };
        let (mut packets, mut rx_bytes, mut invalid) = (0u64, 0u64, 0u64);
        let mut chain_bytes = 0u64;
        let mut chain_from = self.rx.len();
        let mut broken = false;
        for i in 0..take {
            match p.socket.rx_take(i, &self.umem) {
                Ok(frame) => {
                    self.ledger.received(frame.index(), id);
                    chain_bytes += u64::from(frame.len());
                    self.rx.push(frame);
                }
                Err(Some(frame)) => {
                    // A bad descriptor: its frame is taken back only if it was this
                    // socket's to fill.
                    if self.ledger.owner(frame.index()) == crate::ledger::Owner::Fill(id) {
                        self.ledger.received(frame.index(), id);
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
        (packets, rx_bytes, invalid)
    }

    /// Whether member `m` can take frames now: it has a socket whose device is not down.
    #[inline(always)]
    pub(super) fn can_send(&self, m: usize) -> bool {
        m < UPPER_SLOT && self.ports[m].as_ref().is_some_and(|p| !p.stalled)
    }

    /// Distributes the packets in `self.rx` (each one frame, or a chain whose head holds the
    /// headers): the hash and the round-robin count see each packet once, and every frame of
    /// a packet goes where its head goes, consecutively, so a chain is never split or
    /// interleaved.
    pub(super) fn distribute_upper(&mut self, table: &DistributionTable) {
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
        heads[packets] = self.rx.len() as u16;
        let heads = &heads[..=packets];
        self.decide(table, heads);
        let mut rx = std::mem::take(&mut self.rx);
        let no_frame = self.copy_broadcasts(table, &rx, heads);
        let dropped = self.queue_packets(&mut rx, heads);
        self.rx = rx;
        let c = self.counters.port(UPPER_SLOT);
        bump(&c.drops[DropReason::NoActivePort as usize], dropped);
        bump(&c.drops[DropReason::NoFreeFrame as usize], no_frame);
    }

    /// The egress of each packet of `self.rx` (packet `k` starts at `heads[k]`), by the
    /// table; each packet counts once in its bucket (a run of one bucket's packets in one
    /// write), and sampled sources are learnt.
    fn decide(&mut self, table: &DistributionTable, heads: &[u16]) {
        let packets = heads.len() - 1;
        let mut frames: [&[u8]; BATCH] = [&[]; BATCH];
        for (slot, &head) in frames.iter_mut().zip(&heads[..packets]) {
            *slot = self.umem.bytes(&self.rx[usize::from(head)]);
        }
        // Packets of one flow come in runs: one counter write per run, not per packet.
        let hits = &self.counters.buckets;
        let mut run = (0usize, 0u64);
        distribute_counted(
            table,
            &mut self.rr,
            &frames[..packets],
            &mut self.egress[..packets],
            |b| {
                if b != run.0 {
                    bump(&hits[run.0], run.1);
                    run = (b, 0);
                }
                run.1 += 1;
            },
        );
        bump(&hits[run.0], run.1);
        if let Some(learn) = &self.learn {
            for frame in frames[..packets].iter().step_by(SAMPLE_EVERY) {
                learn.record(frame);
            }
        }
    }

    /// Broadcast copies, from the packets of `rx` in place; afterwards each egress names
    /// where the original goes (a member that can send, or nowhere). Returns the copies not
    /// made for want of a free frame.
    fn copy_broadcasts(&mut self, table: &DistributionTable, rx: &[Frame], heads: &[u16]) -> u64 {
        let mut no_frame = 0;
        for k in 0..heads.len() - 1 {
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
        no_frame
    }

    /// Moves each packet of `rx` to its member's tx queue, whole; a packet with nowhere to
    /// go goes back to the free stack. Returns those dropped.
    fn queue_packets(&mut self, rx: &mut Vec<Frame>, heads: &[u16]) -> u64 {
        let mut dropped = 0;
        let mut frames = rx.drain(..);
        for k in 0..heads.len() - 1 {
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
        dropped
    }

    /// Queues a copy of every frame of `chain` (one packet) on member `m`'s tx queue; the
    /// caller has checked that enough frames are free.
    pub(super) fn copy_chain(&mut self, chain: &[Frame], m: usize) {
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

    pub(super) fn reap_completions(&mut self) {
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

    /// Posts free frames on the fill rings up to each port's level, starting at a different
    /// port every iteration.
    pub(super) fn refill(&mut self, table: &DistributionTable) {
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

    pub(super) fn flush(&mut self) {
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

    pub(super) fn kick_outstanding(&mut self) {
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
    pub(super) fn mark_lost(&self, ports: u64) {
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
pub(super) fn note_kick(p: &mut PortSocket, counters: &PortCounters, kick: Kick) {
    match kick {
        Kick::Down => p.stalled = true,
        Kick::Refused => bump(&counters.drops[DropReason::TxRefused as usize], 1),
        _ => {}
    }
}

/// Moves a socket's completed transmits back to the free stack, until its completion ring is
/// empty. Returns how many.
pub(super) fn reap(
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
pub(super) fn drain_tx(socket: &XskSocket) -> Kick {
    let mut last = Kick::Done;
    for _ in 0..MAX_KICKS {
        last = socket.kick_tx();
        if last != Kick::Again {
            break;
        }
    }
    last
}
