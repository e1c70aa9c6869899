//! The UMEM: page-aligned memory the kernel and the worker share frames of, and the
//! [`Frame`] token that says who owns a frame.
#![allow(unsafe_code)]

use std::ptr::NonNull;

use super::{last_error, XskError, FRAME_SIZE, XDP_PACKET_HEADROOM};

/// Anonymous, page-aligned memory registered as a UMEM, `frames * FRAME_SIZE` bytes.
#[derive(Debug)]
pub struct Umem {
    pub(super) area: NonNull<u8>,
    pub(super) len: usize,
    /// The mapping, shared with the fake kernel of the tests (which writes received frames
    /// into it and reads transmitted ones): unmapped when the last holder goes.
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))]
    pub(super) mapping: std::sync::Arc<Mapping>,
    frames: u32,
    handed_out: bool,
}

/// One UMEM frame that userspace owns, with the bytes it holds (`addr` may lie past the
/// frame's start: the kernel puts received data after its headroom).
///
/// A `Frame` comes only from this module: [`Umem::take_frames`] (every frame, once), a
/// socket's rx ring ([`XskSocket::rx_take`](super::XskSocket::rx_take)) or completion ring
/// ([`XskSocket::completion_take`](super::XskSocket::completion_take)); it goes back to the kernel only through the fill or tx
/// ring ([`XskSocket::fill_put`](super::XskSocket::fill_put), [`XskSocket::tx_put`](super::XskSocket::tx_put)), which consume it. It is neither
/// `Copy` nor `Clone`, so safe code can neither read a frame the kernel may be writing nor
/// hand the same frame to the kernel twice.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub(super) addr: u64,
    pub(super) len: u32,
    pub(super) options: u32,
}

impl Frame {
    /// The frame's index in its UMEM.
    #[inline(always)]
    pub fn index(&self) -> u32 {
        (self.addr / u64::from(FRAME_SIZE)) as u32
    }

    /// Where its bytes start (UMEM offset).
    #[inline(always)]
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// How many bytes it holds.
    #[inline(always)]
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether it holds no bytes.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the packet goes on in the next descriptor (`XDP_PKT_CONTD`): every frame of a
    /// multi-buffer packet but the last.
    #[inline(always)]
    pub fn continues(&self) -> bool {
        self.options & libc::XDP_PKT_CONTD != 0
    }

    /// The same frame marked as continued by the next descriptor of its packet (or not):
    /// how a sender builds a multi-buffer packet on a socket bound with `XDP_USE_SG`.
    #[inline(always)]
    pub fn continued(mut self, on: bool) -> Frame {
        if on {
            self.options |= libc::XDP_PKT_CONTD;
        } else {
            self.options &= !libc::XDP_PKT_CONTD;
        }
        self
    }

    /// The same frame holding `len` bytes from its data start (at most to the frame's end).
    #[inline(always)]
    pub fn with_len(mut self, len: u32) -> Frame {
        let room = u64::from(FRAME_SIZE) - (self.addr - Umem::frame_base(self.addr));
        self.len = len.min(room as u32);
        self
    }
}

// SAFETY: the area is plain memory owned by this value; sharing references is as safe as for a
// `Box<[u8]>` (the kernel writes only frames handed to it on a fill ring).
unsafe impl Send for Umem {}

impl Umem {
    /// Maps `frames` frames of zeroed memory.
    ///
    /// # Errors
    /// When `mmap` fails (out of memory, `frames` of zero).
    pub fn new(frames: u32) -> Result<Self, XskError> {
        let len = frames as usize * FRAME_SIZE as usize;
        // SAFETY: an anonymous private mapping with no address hint; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED || len == 0 {
            return Err(last_error("mmap (UMEM)"));
        }
        let area = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| last_error("mmap (UMEM)"))?;
        Ok(Self {
            area,
            len,
            mapping: std::sync::Arc::new(Mapping { area, len }),
            frames,
            handed_out: false,
        })
    }

    /// The largest frame (Ethernet header and payload, no FCS) one UMEM frame holds as
    /// received: the rest of a larger one goes on in further frames, or, without
    /// multi-buffer, the kernel drops it.
    pub const fn single_frame_max() -> u32 {
        FRAME_SIZE - XDP_PACKET_HEADROOM
    }

    /// Every frame of the UMEM, empty, on the first call; nothing on later ones (each frame
    /// exists once).
    pub fn take_frames(&mut self) -> Vec<Frame> {
        if std::mem::replace(&mut self.handed_out, true) {
            return Vec::new();
        }
        (0..self.frames)
            .map(|i| Frame {
                addr: Self::frame_addr(i),
                len: 0,
                options: 0,
            })
            .collect()
    }

    /// Frame `index` again, empty, after the socket that held it on a ring was closed (the
    /// kernel no longer uses it). Only the worker's ledger knows which frames those are; it is
    /// the only caller.
    pub(crate) fn frame_of_closed_socket(&self, index: u32) -> Frame {
        Frame {
            addr: Self::frame_addr(index.min(self.frames.saturating_sub(1))),
            len: 0,
            options: 0,
        }
    }

    /// The bytes `frame` holds.
    #[inline(always)]
    pub fn bytes(&self, frame: &Frame) -> &[u8] {
        self.data(frame.addr, frame.len)
    }

    /// The bytes `frame` holds, to change.
    #[inline(always)]
    pub fn bytes_mut(&mut self, frame: &Frame) -> &mut [u8] {
        self.data_mut(frame.addr, frame.len)
    }

    /// Copies `src`'s bytes into `dst` at the same offset in its frame; `dst` then holds them.
    /// False (nothing copied) when either lies outside this UMEM or both are one frame.
    #[inline(always)]
    pub fn copy_into(&mut self, src: &Frame, dst: &mut Frame) -> bool {
        let at = Self::frame_base(dst.addr) + (src.addr - Self::frame_base(src.addr));
        if !self.copy_frame(src.addr, at, src.len) {
            return false;
        }
        dst.addr = at;
        dst.len = src.len;
        dst.options = src.options;
        true
    }

    /// Number of frames.
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// Address of frame `index` (its first byte's offset in the UMEM).
    pub fn frame_addr(index: u32) -> u64 {
        u64::from(index) * u64::from(FRAME_SIZE)
    }

    /// The frame start for any address inside a frame.
    pub fn frame_base(addr: u64) -> u64 {
        addr & !(u64::from(FRAME_SIZE) - 1)
    }

    /// Whether `len` bytes at `addr` lie inside one frame of this UMEM.
    #[inline(always)]
    pub fn contains(&self, addr: u64, len: u32) -> bool {
        let end = addr.saturating_add(u64::from(len));
        end <= self.len as u64
            && Self::frame_base(addr) == Self::frame_base(end.saturating_sub(1).max(addr))
    }

    /// The bytes at `addr`; empty when they do not lie inside one frame.
    #[inline(always)]
    fn data(&self, addr: u64, len: u32) -> &[u8] {
        if !self.contains(addr, len) {
            return &[];
        }
        // SAFETY: the range is inside the mapping (checked above); the frame is owned by the
        // caller (received, not yet handed back), so the kernel does not write it meanwhile.
        unsafe { std::slice::from_raw_parts(self.area.as_ptr().add(addr as usize), len as usize) }
    }

    /// Mutable bytes at `addr`; empty when out of range.
    #[inline(always)]
    fn data_mut(&mut self, addr: u64, len: u32) -> &mut [u8] {
        if !self.contains(addr, len) {
            return &mut [];
        }
        // SAFETY: as in `data`, and `&mut self` makes this the only reference from userspace.
        unsafe {
            std::slice::from_raw_parts_mut(self.area.as_ptr().add(addr as usize), len as usize)
        }
    }

    /// Copies `len` bytes from `src` to the frame at `dst`, both inside this UMEM.
    /// Returns false (and copies nothing) when either range is out of bounds.
    #[inline(always)]
    fn copy_frame(&mut self, src: u64, dst: u64, len: u32) -> bool {
        if !self.contains(src, len)
            || !self.contains(dst, len)
            || Self::frame_base(src) == Self::frame_base(dst)
        {
            return false;
        }
        // SAFETY: both ranges are inside the mapping and in different frames, so they do not
        // overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.area.as_ptr().add(src as usize),
                self.area.as_ptr().add(dst as usize),
                len as usize,
            );
        }
        true
    }
}

/// The UMEM's anonymous mapping.
#[derive(Debug)]
pub(super) struct Mapping {
    pub(super) area: NonNull<u8>,
    pub(super) len: usize,
}

// SAFETY: the mapping is plain memory; who may touch which frame is the rings' protocol
// (a frame is the worker's or the kernel's, never both), not the pointer's.
unsafe impl Send for Mapping {}
// SAFETY: as for Send.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `Umem::new`, once its last holder is
        // gone. Sockets that registered it keep their own pinned reference in the kernel.
        unsafe { libc::munmap(self.area.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_exist_once_and_carry_their_bytes() {
        let mut umem = Umem::new(4).expect("mmap");
        let mut frames = umem.take_frames();
        assert_eq!(frames.len(), 4);
        assert!(umem.take_frames().is_empty(), "each frame exists once");
        let a = frames.remove(1).with_len(3);
        umem.bytes_mut(&a).copy_from_slice(&[7, 8, 9]);
        let mut b = frames.remove(2);
        assert!(umem.copy_into(&a, &mut b));
        assert_eq!((b.index(), umem.bytes(&b)), (3, &[7u8, 8, 9][..]));
        assert_eq!(
            Frame {
                addr: 2048 + 2000,
                len: 0,
                options: 0
            }
            .with_len(100)
            .len(),
            48
        );
    }

    #[test]
    fn umem_bounds_are_enforced() {
        let mut umem = Umem::new(4).expect("mmap");
        assert_eq!(umem.data(0, 64).len(), 64);
        assert_eq!(umem.data(2048 - 10, 10).len(), 10);
        // Crosses a frame boundary, or past the end: refused.
        assert!(umem.data(2048 - 10, 11).is_empty());
        assert!(umem.data(4 * 2048, 1).is_empty());
        assert!(umem.data(u64::MAX - 4, 8).is_empty());
        umem.data_mut(256, 4).copy_from_slice(&[1, 2, 3, 4]);
        assert!(umem.copy_frame(256, 2048 + 256, 4));
        assert_eq!(umem.data(2048 + 256, 4), &[1, 2, 3, 4]);
        assert!(!umem.copy_frame(256, 300, 4), "same frame");
        assert_eq!(Umem::frame_base(2048 + 300), 2048);
    }
}
