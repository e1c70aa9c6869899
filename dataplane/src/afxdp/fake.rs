//! The kernel's side of an AF_XDP socket, in userspace, for tests that need no root: heap
//! rings the socket uses as it would the kernel's mapping, and a [`FakeKernel`] that plays the
//! kernel on them. It receives a frame into the next fill-ring frame and posts it on the rx
//! ring (in copy mode's layout, after the headroom), and on a transmit wakeup takes the tx
//! ring up to its budget, keeps each packet it sent and completes its frames, as copy mode
//! does within `sendto`.
//!
//! A fault switch per socket makes the device down (a wakeup answers [`Kick::Down`] and
//! sends nothing), the receiver refuse (`EBUSY`: [`Kick::Refused`]) or the fill ring look
//! empty to the receive side.
#![allow(unsafe_code)]

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use super::ring::{HeapRing, RingMap};
use super::socket::{Desc, Kick, XskSocket};
use super::umem::{Mapping, Umem};
use super::{RingSizes, XskError, FRAME_SIZE, XDP_PACKET_HEADROOM};

/// What makes a fake socket fail, switched by the test.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// The device is down: transmit wakeups answer `ENETDOWN` and send nothing.
    pub down: bool,
    /// The receiver refuses (a veth peer's full ring): wakeups answer `EBUSY`.
    pub refuse: bool,
}

/// What the fake kernel saw and did.
#[derive(Debug, Default)]
pub struct Seen {
    /// Packets transmitted, in order, each the bytes of its frames joined.
    pub sent: Vec<Vec<u8>>,
    /// Transmit wakeups.
    pub tx_kicks: u64,
    /// Receive wakeups.
    pub rx_kicks: u64,
}

#[derive(Debug)]
struct State {
    faults: Faults,
    seen: Seen,
    /// Frames one transmit wakeup sends at most.
    tx_budget: u32,
    /// The packet being transmitted (a chain continues over frames).
    partial: Vec<u8>,
}

/// One side of a heap ring, as the kernel sees it.
#[derive(Debug)]
struct KernelRing {
    ring: Arc<HeapRing>,
}

impl KernelRing {
    fn slot_ptr<T>(&self, index: u32) -> *mut T {
        let slot = (index & (self.ring.entries() - 1)) as usize;
        // SAFETY: `slot` is below the ring's entries, so the entry lies inside the block.
        unsafe {
            self.ring
                .base()
                .add(HeapRing::DESC)
                .cast::<T>()
                .as_ptr()
                .add(slot)
        }
    }

    /// Consumer side (fill, tx): the next entry, if the producer has published one.
    fn pop<T: Copy>(&self) -> Option<T> {
        let prod = self.ring.word(HeapRing::PRODUCER).load(Ordering::Acquire);
        let cons = self.ring.word(HeapRing::CONSUMER).load(Ordering::Relaxed);
        if prod == cons {
            return None;
        }
        // SAFETY: the entry was published by the producer's release store read above.
        let entry = unsafe { self.slot_ptr::<T>(cons).read() };
        self.ring
            .word(HeapRing::CONSUMER)
            .store(cons.wrapping_add(1), Ordering::Release);
        Some(entry)
    }

    /// Producer side (rx, completion): publishes `entry` unless the ring is full.
    fn push<T: Copy>(&self, entry: T) -> bool {
        let prod = self.ring.word(HeapRing::PRODUCER).load(Ordering::Relaxed);
        let cons = self.ring.word(HeapRing::CONSUMER).load(Ordering::Acquire);
        if prod.wrapping_sub(cons) >= self.ring.entries() {
            return false;
        }
        // SAFETY: the slot is free (the consumer released it, acquired above).
        unsafe { self.slot_ptr::<T>(prod).write(entry) };
        self.ring
            .word(HeapRing::PRODUCER)
            .store(prod.wrapping_add(1), Ordering::Release);
        true
    }

    fn set_needs_wakeup(&self, on: bool) {
        let flag = if on { libc::XDP_RING_NEED_WAKEUP } else { 0 };
        self.ring
            .word(HeapRing::FLAGS)
            .store(flag, Ordering::Relaxed);
    }

    fn pending(&self) -> u32 {
        let prod = self.ring.word(HeapRing::PRODUCER).load(Ordering::Acquire);
        prod.wrapping_sub(self.ring.word(HeapRing::CONSUMER).load(Ordering::Relaxed))
    }
}

/// The kernel's side of one fake socket.
#[derive(Debug)]
pub struct FakeKernel {
    fill: KernelRing,
    completion: KernelRing,
    rx: KernelRing,
    tx: KernelRing,
    umem: Arc<Mapping>,
    state: Mutex<State>,
}

/// Why a frame could not be received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// No frame on the fill ring (the kernel counts `rx_fill_ring_empty`).
    FillEmpty,
    /// The rx ring is full (`rx_ring_full`).
    RxFull,
    /// Larger than one frame takes.
    TooLarge,
}

impl FakeKernel {
    /// A socket over heap rings of `sizes` on `umem`, with its fake kernel. `multi_buffer` as
    /// a real socket's `XDP_USE_SG`.
    ///
    /// # Errors
    /// When no eventfd can be made for it.
    pub fn socket(
        umem: &Umem,
        ifindex: u32,
        sizes: RingSizes,
        multi_buffer: bool,
    ) -> Result<(XskSocket, Arc<FakeKernel>), XskError> {
        let desc = std::mem::size_of::<Desc>();
        let rings = [
            HeapRing::new(sizes.fill, 8),
            HeapRing::new(sizes.completion, 8),
            HeapRing::new(sizes.rx, desc),
            HeapRing::new(sizes.tx, desc),
        ];
        let kernel = Arc::new(FakeKernel {
            fill: KernelRing {
                ring: Arc::clone(&rings[0]),
            },
            completion: KernelRing {
                ring: Arc::clone(&rings[1]),
            },
            rx: KernelRing {
                ring: Arc::clone(&rings[2]),
            },
            tx: KernelRing {
                ring: Arc::clone(&rings[3]),
            },
            umem: Arc::clone(&umem.mapping),
            state: Mutex::new(State {
                faults: Faults::default(),
                seen: Seen::default(),
                tx_budget: 32,
                partial: Vec::new(),
            }),
        });
        // Copy mode asks for a wakeup to transmit, never to receive.
        kernel.tx.set_needs_wakeup(true);
        let maps = rings.each_ref().map(RingMap::heap);
        let socket = XskSocket::over_fake(Arc::clone(&kernel), maps, sizes, ifindex, multi_buffer)?;
        Ok((socket, kernel))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Switches faults on or off.
    pub fn set_faults(&self, faults: Faults) {
        self.state().faults = faults;
    }

    /// Takes what was transmitted and the wakeups counted so far.
    pub fn take_seen(&self) -> Seen {
        std::mem::take(&mut self.state().seen)
    }

    /// Frames posted on the fill ring and not yet used.
    pub fn fill_posted(&self) -> u32 {
        self.fill.pending()
    }

    /// Descriptors on the tx ring not yet sent.
    pub fn tx_pending(&self) -> u32 {
        self.tx.pending()
    }

    /// Receives one packet of up to one frame, as copy mode does.
    ///
    /// # Errors
    /// See [`Refused`]; nothing is taken then.
    pub fn receive(&self, bytes: &[u8]) -> Result<(), Refused> {
        self.receive_chain(&[bytes])
    }

    /// Receives one packet as a chain of frames (multi-buffer), one piece per frame.
    ///
    /// # Errors
    /// See [`Refused`]; a chain that stops part way leaves what it posted.
    pub fn receive_chain(&self, pieces: &[&[u8]]) -> Result<(), Refused> {
        let room = (FRAME_SIZE - XDP_PACKET_HEADROOM) as usize;
        if pieces.iter().any(|p| p.len() > room) {
            return Err(Refused::TooLarge);
        }
        if self.rx.pending() as usize + pieces.len() > self.rx.ring.entries() as usize {
            return Err(Refused::RxFull);
        }
        if (self.fill.pending() as usize) < pieces.len() {
            return Err(Refused::FillEmpty);
        }
        for (k, piece) in pieces.iter().enumerate() {
            let Some(base) = self.fill.pop::<u64>() else {
                return Err(Refused::FillEmpty);
            };
            let addr = Umem::frame_base(base) + u64::from(XDP_PACKET_HEADROOM);
            self.write(addr, piece);
            let options = if k + 1 < pieces.len() {
                libc::XDP_PKT_CONTD
            } else {
                0
            };
            self.rx.push(Desc {
                addr,
                len: piece.len() as u32,
                options,
            });
        }
        Ok(())
    }

    /// Posts a raw descriptor on the rx ring, as a buggy kernel or driver would (tests of the
    /// worker's checks). Returns false when the ring is full.
    pub fn receive_raw(&self, desc: Desc) -> bool {
        self.rx.push(desc)
    }

    /// Takes one frame from the fill ring without receiving into it (as the kernel holds
    /// frames): it comes back only when the socket closes.
    pub fn hold_fill_frame(&self) -> Option<u64> {
        self.fill.pop::<u64>()
    }

    fn write(&self, addr: u64, bytes: &[u8]) {
        let (area, len) = (self.umem.area, self.umem.len);
        if addr as usize + bytes.len() > len {
            return;
        }
        // SAFETY: inside the mapping (checked above), in a frame the worker posted on the
        // fill ring, which it does not touch until the frame comes back on the rx ring.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                area.as_ptr().add(addr as usize),
                bytes.len(),
            );
        }
    }

    fn read(&self, addr: u64, len: u32) -> Vec<u8> {
        let (area, size) = (self.umem.area, self.umem.len);
        if addr as usize + len as usize > size {
            return Vec::new();
        }
        // SAFETY: inside the mapping (checked above), in a frame the worker put on the tx
        // ring, which it does not touch until the frame comes back on the completion ring.
        unsafe { std::slice::from_raw_parts(area.as_ptr().add(addr as usize), len as usize) }
            .to_vec()
    }

    /// A transmit wakeup: sends up to the budget, as copy mode's `sendto`.
    pub(super) fn kick_tx(&self) -> Kick {
        let mut st = self.state();
        st.seen.tx_kicks += 1;
        if st.faults.down {
            return Kick::Down;
        }
        if st.faults.refuse {
            return Kick::Refused;
        }
        let mut sent = 0;
        while sent < st.tx_budget {
            if self.completion.pending() >= self.completion.ring.entries() {
                return Kick::Again;
            }
            let Some(d) = self.tx.pop::<Desc>() else {
                return Kick::Done;
            };
            let bytes = self.read(d.addr, d.len);
            st.partial.extend_from_slice(&bytes);
            if d.options & libc::XDP_PKT_CONTD == 0 {
                let packet = std::mem::take(&mut st.partial);
                st.seen.sent.push(packet);
            }
            self.completion.push(Umem::frame_base(d.addr));
            sent += 1;
        }
        if self.tx.pending() > 0 {
            Kick::Again
        } else {
            Kick::Done
        }
    }

    pub(super) fn kick_rx(&self) {
        self.state().seen.rx_kicks += 1;
    }

    pub(super) fn set_tx_budget(&self, frames: u32) -> bool {
        self.state().tx_budget = frames.max(1);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes() -> RingSizes {
        RingSizes {
            fill: 8,
            completion: 8,
            rx: 8,
            tx: 8,
        }
    }

    #[test]
    fn a_frame_goes_around_fill_rx_tx_completion() {
        let mut umem = Umem::new(8).unwrap();
        let (mut socket, kernel) = FakeKernel::socket(&umem, 1, sizes(), false).unwrap();
        let mut frames = umem.take_frames();
        assert_eq!(socket.fill_free(2), 2);
        socket.fill_put(0, frames.pop().unwrap());
        socket.fill_put(1, frames.pop().unwrap());
        socket.fill_submit(2);
        assert_eq!(kernel.fill_posted(), 2);
        kernel.receive(b"hello").unwrap();
        assert_eq!(socket.rx_available(8), 1);
        let frame = socket.rx_take(0, &umem).unwrap();
        socket.rx_release(1);
        assert_eq!(umem.bytes(&frame), b"hello");
        assert_eq!(socket.tx_free(1), 1);
        socket.tx_put(0, frame);
        socket.tx_submit(1);
        assert!(socket.tx_needs_wakeup());
        assert_eq!(socket.kick_tx(), Kick::Done);
        assert_eq!(kernel.take_seen().sent, vec![b"hello".to_vec()]);
        assert_eq!(socket.completion_available(8), 1);
        assert!(socket.completion_take(0, &umem).is_some());
    }

    #[test]
    fn faults_answer_as_the_kernel_does_and_send_nothing() {
        let mut umem = Umem::new(4).unwrap();
        let (mut socket, kernel) = FakeKernel::socket(&umem, 1, sizes(), false).unwrap();
        let frame = umem.take_frames().pop().unwrap().with_len(60);
        socket.tx_free(1);
        socket.tx_put(0, frame);
        socket.tx_submit(1);
        kernel.set_faults(Faults {
            down: true,
            refuse: false,
        });
        assert_eq!(socket.kick_tx(), Kick::Down);
        kernel.set_faults(Faults {
            down: false,
            refuse: true,
        });
        assert_eq!(socket.kick_tx(), Kick::Refused);
        assert_eq!(kernel.tx_pending(), 1);
        assert!(kernel.take_seen().sent.is_empty());
        assert_eq!(kernel.receive(b"x"), Err(Refused::FillEmpty));
    }
}
