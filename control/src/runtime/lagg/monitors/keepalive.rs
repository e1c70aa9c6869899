//! The periodic frames of LACP and micro-BFD while the control thread is busy elsewhere.
//!
//! One control thread runs every lagg: their timers, and also slow work (starting or
//! restarting a lagg loads programs, runs ethtool and opens sockets: a third of a second here,
//! more with large rings). A partner that stops hearing our periodic frames takes the link out:
//! micro-BFD at 50 ms x 3 after 150 ms. So each monitor leaves its last periodic frame per
//! member here, with its period, and a small thread of its own sends it again whenever the
//! control thread is late by half a period. In normal running the thread finds nothing late
//! and sends nothing; the protocols' decisions stay on the control thread (a repeated frame
//! says what the last one said, as a periodic transmission does).
//!
//! What is received meanwhile waits in the sockets and is read before the timers are looked
//! at, so our own detection does not expire on a stall.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use xlagg_sys::afpacket::PacketSocket;

/// How often the thread looks.
const LOOK_EVERY: Duration = Duration::from_millis(5);

/// One member's last periodic frame.
#[derive(Debug)]
struct Slot {
    socket: Arc<PacketSocket>,
    frame: Vec<u8>,
    every: Duration,
    last: Instant,
}

/// The slots of one monitor and the thread that keeps them going.
#[derive(Debug)]
pub(crate) struct Keepalive {
    slots: Arc<Mutex<Vec<Option<Slot>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn lock(slots: &Mutex<Vec<Option<Slot>>>) -> std::sync::MutexGuard<'_, Vec<Option<Slot>>> {
    slots
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Keepalive {
    /// Starts the thread (named after `what`, the lagg and its protocol).
    pub(crate) fn start(what: &str) -> Self {
        let slots: Arc<Mutex<Vec<Option<Slot>>>> = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (slots, stop) = (Arc::clone(&slots), Arc::clone(&stop));
            std::thread::Builder::new()
                .name(format!("xlagg-keep-{what}"))
                .spawn(move || run(&slots, &stop))
                .map_err(|e| {
                    tracing::warn!(what, error = %e, "no keepalive thread: a busy control thread may delay periodic frames")
                })
                .ok()
        };
        Self {
            slots,
            stop,
            thread,
        }
    }

    /// The control thread sent `frame`, member `slot`'s periodic frame due every `every`, on
    /// `socket`: sent again from here if the next is late.
    pub(crate) fn sent(
        &self,
        slot: usize,
        socket: &Arc<PacketSocket>,
        frame: &[u8],
        every: Duration,
    ) {
        let mut slots = lock(&self.slots);
        if slots.len() <= slot {
            slots.resize_with(slot + 1, || None);
        }
        slots[slot] = Some(Slot {
            socket: Arc::clone(socket),
            frame: frame.to_vec(),
            every,
            last: Instant::now(),
        });
    }

    /// Member `slot` sends nothing periodic any more (it left, or its session went down).
    pub(crate) fn clear(&self, slot: usize) {
        if let Some(s) = lock(&self.slots).get_mut(slot) {
            *s = None;
        }
    }
}

impl Drop for Keepalive {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sends each slot's frame again once it is late by half its period, until `stop`.
fn run(slots: &Mutex<Vec<Option<Slot>>>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(LOOK_EVERY);
        let now = Instant::now();
        for slot in lock(slots).iter_mut().flatten() {
            if now.duration_since(slot.last) >= slot.every + slot.every / 2 {
                // A failure here is the control thread's to see at its next send.
                let _ = slot.socket.send(&slot.frame);
                slot.last = now;
            }
        }
    }
}
