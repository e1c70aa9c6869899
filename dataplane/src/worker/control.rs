//! The mailbox between the control thread and a running worker: the [`Command`]s it takes
//! (members joining, leaving, sockets reset) and its [`Answer`]s.

use super::*;

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
    pub(super) fn slot(&self) -> usize {
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
    pub(super) pending: AtomicBool,
    next: AtomicU64,
    commands: std::sync::Mutex<Vec<(u64, Command)>>,
    answers: std::sync::Mutex<Vec<(u64, Answer)>>,
    answered: std::sync::Condvar,
    /// Written by a call, polled by an idle worker with its sockets: a command never waits for
    /// the idle poll to time out.
    bell: std::os::unix::net::UnixStream,
    pub(super) door: std::os::unix::net::UnixStream,
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

    pub(super) fn take(&self) -> Vec<(u64, Command)> {
        self.pending.store(false, Ordering::Relaxed);
        let mut sink = [0u8; 64];
        while matches!(std::io::Read::read(&mut &self.door, &mut sink), Ok(n) if n > 0) {}
        self.commands
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }

    pub(super) fn answer(&self, seq: u64, a: Answer) {
        if let Ok(mut answers) = self.answers.lock() {
            answers.push((seq, a));
        }
        self.answered.notify_all();
    }
}
