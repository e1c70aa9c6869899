//! Where every UMEM frame of a worker is.
//!
//! A frame is at all times in exactly one place: the worker's free stack, the worker's hands
//! (a batch, a tx queue), the fill ring of one socket, or the tx ring of one socket (until its
//! completion). The ledger keeps that owner per frame and counts per socket, so that
//! - a socket that is closed gives back exactly the frames the kernel held for it (its fill
//!   ring's unused buffers, frames it received that were never read, transmits never
//!   completed), however it was closed;
//! - each port's fill level is known (posted frames are budgeted, not guessed from the ring);
//! - [`Ledger::audit`] proves, in debug builds and in tests, that no frame was lost or is held
//!   twice.
//!
//! Sockets are named by a [`SocketId`], not by port slot: a slot whose old socket is still
//! retiring can already hold a new one.

/// A socket of the worker, as the ledger knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SocketId(pub u16);

/// Sockets one worker may have at once (live and retiring).
pub const MAX_SOCKETS: usize = 256;

/// Who holds a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// The worker's free stack.
    Free,
    /// The worker: received and not yet handed on, or about to be.
    Worker,
    /// A socket's fill ring (or the kernel's receive buffers behind it).
    Fill(SocketId),
    /// A socket's tx ring, until its completion comes back.
    Tx(SocketId),
}

const FREE: u16 = 0;
const WORKER: u16 = 1;

impl Owner {
    #[inline(always)]
    fn code(self) -> u16 {
        match self {
            Owner::Free => FREE,
            Owner::Worker => WORKER,
            Owner::Fill(SocketId(s)) => 2 + 2 * s,
            Owner::Tx(SocketId(s)) => 3 + 2 * s,
        }
    }

    #[inline(always)]
    fn from_code(c: u16) -> Owner {
        match c {
            FREE => Owner::Free,
            WORKER => Owner::Worker,
            c if c % 2 == 0 => Owner::Fill(SocketId((c - 2) / 2)),
            c => Owner::Tx(SocketId((c - 3) / 2)),
        }
    }
}

/// The owner of every frame and the counts per socket.
#[derive(Debug)]
pub struct Ledger {
    owners: Vec<u16>,
    posted: Vec<u32>,
    in_flight: Vec<u32>,
    used: Vec<bool>,
}

impl Ledger {
    /// A ledger for `frames` frames, every one free.
    pub fn new(frames: u32) -> Self {
        Self {
            owners: vec![FREE; frames as usize],
            posted: vec![0; MAX_SOCKETS],
            in_flight: vec![0; MAX_SOCKETS],
            used: vec![false; MAX_SOCKETS],
        }
    }

    /// A socket id not in use, now in use; `None` when all are taken.
    pub fn open_socket(&mut self) -> Option<SocketId> {
        let i = self.used.iter().position(|u| !u)?;
        self.used[i] = true;
        self.posted[i] = 0;
        self.in_flight[i] = 0;
        Some(SocketId(i as u16))
    }

    /// The socket is closed: every frame its rings held is the worker's again. Returns their
    /// indexes (the caller puts them back on its free stack), and the id is free for reuse.
    pub fn close_socket(&mut self, id: SocketId) -> Vec<u32> {
        let (fill, tx) = (Owner::Fill(id).code(), Owner::Tx(id).code());
        let mut back = Vec::new();
        for (i, o) in self.owners.iter_mut().enumerate() {
            if *o == fill || *o == tx {
                *o = FREE;
                back.push(i as u32);
            }
        }
        let s = usize::from(id.0);
        self.posted[s] = 0;
        self.in_flight[s] = 0;
        self.used[s] = false;
        back
    }

    /// Who holds frame `index`.
    pub fn owner(&self, index: u32) -> Owner {
        Owner::from_code(self.owners[index as usize])
    }

    #[inline(always)]
    fn moved(&mut self, index: u32, from: Owner, to: Owner) {
        let slot = &mut self.owners[index as usize];
        debug_assert_eq!(
            Owner::from_code(*slot),
            from,
            "frame {index} moved to {to:?} from the wrong owner"
        );
        *slot = to.code();
    }

    /// A free frame goes on `id`'s fill ring.
    #[inline(always)]
    pub fn fill(&mut self, index: u32, id: SocketId) {
        self.moved(index, Owner::Free, Owner::Fill(id));
        self.posted[usize::from(id.0)] += 1;
    }

    /// `id`'s rx ring gave frame `index` back.
    #[inline(always)]
    pub fn received(&mut self, index: u32, id: SocketId) {
        self.moved(index, Owner::Fill(id), Owner::Worker);
        let p = &mut self.posted[usize::from(id.0)];
        *p = p.saturating_sub(1);
    }

    /// A frame of the worker's goes on `id`'s tx ring.
    #[inline(always)]
    pub fn transmit(&mut self, index: u32, id: SocketId) {
        self.moved(index, Owner::Worker, Owner::Tx(id));
        self.in_flight[usize::from(id.0)] += 1;
    }

    /// `id`'s completion ring gave frame `index` back: free.
    #[inline(always)]
    pub fn completed(&mut self, index: u32, id: SocketId) {
        self.moved(index, Owner::Tx(id), Owner::Free);
        let f = &mut self.in_flight[usize::from(id.0)];
        *f = f.saturating_sub(1);
    }

    /// The worker drops a frame it held: free.
    #[inline(always)]
    pub fn dropped(&mut self, index: u32) {
        self.moved(index, Owner::Worker, Owner::Free);
    }

    /// The worker takes a free frame (a broadcast copy).
    #[inline(always)]
    pub fn taken(&mut self, index: u32) {
        self.moved(index, Owner::Free, Owner::Worker);
    }

    /// Frames on `id`'s fill ring (and the kernel's receive buffers behind it).
    #[inline(always)]
    pub fn posted(&self, id: SocketId) -> u32 {
        self.posted[usize::from(id.0)]
    }

    /// Frames on `id`'s tx ring not completed yet.
    #[inline(always)]
    pub fn in_flight(&self, id: SocketId) -> u32 {
        self.in_flight[usize::from(id.0)]
    }

    /// Checks that every frame is in one place and the counts agree: `free` frames on the free
    /// stack (each listed once in `free_stack`), `held` in the worker's hands.
    ///
    /// # Errors
    /// What does not add up.
    pub fn audit(&self, free_stack: &[u32], held: usize) -> Result<(), String> {
        let mut seen = vec![false; self.owners.len()];
        for &i in free_stack {
            let i = i as usize;
            if i >= self.owners.len() {
                return Err(format!("frame {i} on the free stack is not in the UMEM"));
            }
            if std::mem::replace(&mut seen[i], true) {
                return Err(format!("frame {i} is on the free stack twice"));
            }
            if self.owners[i] != FREE {
                return Err(format!(
                    "frame {i} is on the free stack but owned by {:?}",
                    Owner::from_code(self.owners[i])
                ));
            }
        }
        let mut posted = vec![0u32; MAX_SOCKETS];
        let mut in_flight = vec![0u32; MAX_SOCKETS];
        let (mut free, mut worker) = (0usize, 0usize);
        for &o in &self.owners {
            match Owner::from_code(o) {
                Owner::Free => free += 1,
                Owner::Worker => worker += 1,
                Owner::Fill(SocketId(s)) => posted[usize::from(s)] += 1,
                Owner::Tx(SocketId(s)) => in_flight[usize::from(s)] += 1,
            }
        }
        if free != free_stack.len() {
            return Err(format!(
                "{free} frames are free but the free stack holds {}",
                free_stack.len()
            ));
        }
        if worker != held {
            return Err(format!(
                "{worker} frames are the worker's but it holds {held}"
            ));
        }
        for s in 0..MAX_SOCKETS {
            if posted[s] != self.posted[s] || in_flight[s] != self.in_flight[s] {
                return Err(format!(
                    "socket {s}: {} posted and {} in flight by the owners, {} and {} by the counts",
                    posted[s], in_flight[s], self.posted[s], self.in_flight[s]
                ));
            }
            if !self.used[s] && posted[s] + in_flight[s] > 0 {
                return Err(format!("closed socket {s} still holds frames"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_goes_round_and_a_closed_socket_gives_everything_back() {
        let mut l = Ledger::new(8);
        let a = l.open_socket().expect("id");
        let b = l.open_socket().expect("id");
        let mut free: Vec<u32> = (0..8).rev().collect();
        for _ in 0..3 {
            let i = free.pop().expect("free");
            l.fill(i, a);
        }
        l.fill(free.pop().expect("free"), b);
        assert_eq!((l.posted(a), l.posted(b)), (3, 1));
        // a receives frame 0 and sends it on b; b completes it.
        l.received(0, a);
        l.audit(&free, 1).expect("consistent");
        l.transmit(0, b);
        assert_eq!(l.in_flight(b), 1);
        l.audit(&free, 0).expect("consistent");
        // a is closed with two buffers on its fill ring: both come back.
        let back = l.close_socket(a);
        assert_eq!(back, [1, 2]);
        free.extend(back);
        l.audit(&free, 0).expect("consistent");
        l.completed(0, b);
        free.push(0);
        l.audit(&free, 0).expect("consistent");
        // b closes with frame 3 still posted: back too; nothing is left anywhere else.
        free.extend(l.close_socket(b));
        assert_eq!(free.len(), 8);
        l.audit(&free, 0).expect("consistent");
    }

    #[test]
    fn the_audit_finds_a_lost_or_doubled_frame() {
        let mut l = Ledger::new(4);
        let a = l.open_socket().expect("id");
        l.fill(3, a);
        assert!(l.audit(&[0, 1, 2], 0).is_ok());
        assert!(l
            .audit(&[0, 1], 0)
            .unwrap_err()
            .contains("3 frames are free"));
        assert!(l.audit(&[0, 1, 2, 2], 0).unwrap_err().contains("twice"));
        assert!(l
            .audit(&[0, 1, 3], 0)
            .unwrap_err()
            .contains("owned by Fill"));
        l.received(3, a);
        assert!(l.audit(&[0, 1, 2], 0).unwrap_err().contains("the worker's"));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "from the wrong owner")]
    fn a_frame_cannot_be_sent_that_the_worker_does_not_hold() {
        let mut l = Ledger::new(2);
        let a = l.open_socket().expect("id");
        l.transmit(1, a);
    }

    #[test]
    fn socket_ids_are_reused_once_closed() {
        let mut l = Ledger::new(1);
        let ids: Vec<SocketId> = (0..MAX_SOCKETS).filter_map(|_| l.open_socket()).collect();
        assert_eq!(ids.len(), MAX_SOCKETS);
        assert_eq!(l.open_socket(), None);
        l.close_socket(ids[7]);
        assert_eq!(l.open_socket(), Some(SocketId(7)));
    }
}
