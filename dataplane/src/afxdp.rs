//! AF_XDP sockets: UMEM, the fill/completion/rx/tx rings, bind and wakeups.
//!
//! This is the one module of the crate that talks to the kernel with `unsafe` (socket options,
//! `mmap`, raw ring memory); everything above it is safe code.
//!
//! Design:
//! - one [`Umem`] per worker, shared by the sockets of every port the worker serves
//!   (`XDP_SHARED_UMEM`; each socket has its own fill and completion ring, which the kernel
//!   allows for different devices and queues since 5.10). Forwarding then hands a received
//!   descriptor to another port's TX ring: no frame data is copied in userspace;
//! - `XDP_USE_NEED_WAKEUP` always: the kernel says when it needs a `sendto` or `poll`;
//! - `XDP_USE_SG` when the caller asks for multi-buffer (the socket that registers the UMEM
//!   binds with it, and every socket sharing the UMEM inherits it): a packet larger than a
//!   frame is then a chain of descriptors, each but the last marked `XDP_PKT_CONTD`
//!   ([`Frame::continues`]), on rx and tx alike;
//! - zero-copy is asked for first; when the driver refuses (veth, for one) the caller rebuilds
//!   in copy mode and logs it (see [`BindMode`]).
//!
//! Ring indices are cached as in libxdp; the shared producer/consumer words are touched with
//! acquire/release only when the cache runs out.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Size of one UMEM frame (chunk). Frames up to `FRAME_SIZE - 256` bytes fit (the kernel keeps
/// `XDP_PACKET_HEADROOM` in front of received data in copy mode).
pub const FRAME_SIZE: u32 = 2048;

/// Room the kernel keeps in front of received data in copy mode (`XDP_PACKET_HEADROOM`).
const XDP_PACKET_HEADROOM: u32 = 256;

/// Errors of the AF_XDP layer.
#[derive(Debug, thiserror::Error)]
pub enum XskError {
    /// A system call failed.
    #[error("{call} failed: {source}")]
    Sys {
        /// The call and what it was for.
        call: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A ring size that is not a power of two.
    #[error("{ring} ring size {size} is not a power of two")]
    RingSize {
        /// Which ring.
        ring: &'static str,
        /// The size asked for.
        size: u32,
    },
}

fn last_error(call: &'static str) -> XskError {
    XskError::Sys {
        call,
        source: io::Error::last_os_error(),
    }
}

/// Ring sizes for one socket; each a power of two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingSizes {
    /// Fill ring: free frames handed to the kernel for receiving.
    pub fill: u32,
    /// Completion ring: frames the kernel has finished transmitting.
    pub completion: u32,
    /// Receive ring.
    pub rx: u32,
    /// Transmit ring.
    pub tx: u32,
}

impl Default for RingSizes {
    fn default() -> Self {
        // A generous fill ring: with 2048 entries a single receiver lost up to a third of the
        // frames on veth; 4096 and more keeps fill-ring-empty drops rare.
        Self {
            fill: 4096,
            completion: 4096,
            rx: 4096,
            tx: 4096,
        }
    }
}

/// How a socket is bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindMode {
    /// The driver DMAs straight into the UMEM.
    ZeroCopy,
    /// The kernel copies between its buffers and the UMEM (veth, generic XDP).
    Copy,
}

impl std::fmt::Display for BindMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BindMode::ZeroCopy => "zero-copy",
            BindMode::Copy => "copy",
        })
    }
}

/// Anonymous, page-aligned memory registered as a UMEM, `frames * FRAME_SIZE` bytes.
#[derive(Debug)]
pub struct Umem {
    area: NonNull<u8>,
    len: usize,
    frames: u32,
    handed_out: bool,
}

/// One UMEM frame that userspace owns, with the bytes it holds (`addr` may lie past the
/// frame's start: the kernel puts received data after its headroom).
///
/// A `Frame` comes only from this module: [`Umem::take_frames`] (every frame, once), a
/// socket's rx ring ([`XskSocket::rx_take`]) or completion ring
/// ([`XskSocket::completion_take`]); it goes back to the kernel only through the fill or tx
/// ring ([`XskSocket::fill_put`], [`XskSocket::tx_put`]), which consume it. It is neither
/// `Copy` nor `Clone`, so safe code can neither read a frame the kernel may be writing nor
/// hand the same frame to the kernel twice.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    addr: u64,
    len: u32,
    options: u32,
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

impl Drop for Umem {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`. Sockets that registered it keep
        // their own pinned reference in the kernel.
        unsafe { libc::munmap(self.area.as_ptr().cast(), self.len) };
    }
}

/// The words of a BPF array map created with `BPF_F_MMAPABLE`, mapped into this process: the
/// kernel's programs and the workers write them, everyone reads them without a system call
/// (the lost-member words of the XDP engine's object). The mapping keeps the map alive.
#[derive(Debug)]
pub struct MappedWords {
    base: NonNull<u64>,
    words: usize,
}

// SAFETY: the mapping is only accessed through atomic operations.
unsafe impl Send for MappedWords {}
// SAFETY: as above.
unsafe impl Sync for MappedWords {}

impl MappedWords {
    /// Maps the `words` 8-byte values of the mmapable array map `fd`.
    ///
    /// # Errors
    /// When `mmap` refuses (a map without `BPF_F_MMAPABLE`, or shorter than asked).
    pub fn map(fd: std::os::fd::BorrowedFd<'_>, words: usize) -> Result<Self, XskError> {
        let len = words * 8;
        // SAFETY: a fresh shared mapping of the map's value area; the kernel checks the length
        // against the map.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(last_error("mmap (BPF array)"));
        }
        let base = NonNull::new(ptr.cast::<u64>()).ok_or_else(|| last_error("mmap (BPF array)"))?;
        Ok(Self { base, words })
    }

    fn word(&self, i: usize) -> Option<&AtomicU64> {
        // SAFETY: in bounds of the mapping, 8-byte aligned (page-aligned base), alive as long
        // as `self`; the kernel writes words whole, so atomic access sees old or new values.
        (i < self.words).then(|| unsafe { &*self.base.as_ptr().add(i).cast::<AtomicU64>() })
    }

    /// Word `i` (0 past the end).
    #[inline(always)]
    pub fn get(&self, i: usize) -> u64 {
        self.word(i).map_or(0, |w| w.load(Ordering::Acquire))
    }

    /// Sets word `i` (nothing past the end).
    pub fn set(&self, i: usize, value: u64) {
        if let Some(w) = self.word(i) {
            w.store(value, Ordering::Release);
        }
    }

    /// Marks word `i` with the time (CLOCK_MONOTONIC ns, low bit set, as the kernel's
    /// programs do) if it is clear, and then counts the mark in word `count`. Returns whether
    /// this call marked it.
    pub fn mark(&self, i: usize, count: usize) -> bool {
        let Some(w) = self.word(i) else {
            return false;
        };
        let ns = monotonic_ns();
        if w.compare_exchange(0, ns | 1, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        self.bump(count);
        true
    }

    /// Clears word `i` if it is set, and counts the change in word `count` (so readers that
    /// follow `count` look again). Returns whether it was set.
    pub fn clear(&self, i: usize, count: usize) -> bool {
        let Some(w) = self.word(i) else {
            return false;
        };
        if w.swap(0, Ordering::AcqRel) == 0 {
            return false;
        }
        self.bump(count);
        true
    }

    /// How long ago word `i` was marked (`None`: not marked).
    pub fn marked_for(&self, i: usize) -> Option<std::time::Duration> {
        let w = self.get(i);
        (w != 0).then(|| std::time::Duration::from_nanos(monotonic_ns().saturating_sub(w & !1)))
    }

    /// Adds one to word `i` (nothing past the end).
    pub fn bump(&self, i: usize) {
        if let Some(w) = self.word(i) {
            w.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// CLOCK_MONOTONIC in nanoseconds (the clock of `bpf_ktime_get_ns`).
fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    (now.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(now.tv_nsec as u64)
}

impl Drop for MappedWords {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.words * 8) };
    }
}

/// One mmap'd ring: the shared producer/consumer words, flags and the descriptor array.
#[derive(Debug)]
struct RingMap {
    base: NonNull<libc::c_void>,
    len: usize,
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    descs: NonNull<u8>,
}

impl RingMap {
    fn map(
        fd: RawFd,
        offsets: &libc::xdp_ring_offset,
        entries: u32,
        entry_size: usize,
        pgoff: libc::off_t,
        what: &'static str,
    ) -> Result<Self, XskError> {
        let len = offsets.desc as usize + entries as usize * entry_size;
        // SAFETY: maps the ring the kernel created for this socket at the documented page
        // offset; the result is checked.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(last_error(what));
        }
        let base = NonNull::new(base).ok_or_else(|| last_error(what))?;
        let at = |off: u64| {
            // SAFETY: the kernel's offsets lie inside the mapping of `len` bytes.
            unsafe { NonNull::new_unchecked(base.as_ptr().cast::<u8>().add(off as usize)) }
        };
        Ok(Self {
            base,
            len,
            producer: at(offsets.producer).cast(),
            consumer: at(offsets.consumer).cast(),
            flags: at(offsets.flags).cast(),
            descs: at(offsets.desc),
        })
    }

    #[inline(always)]
    fn producer(&self) -> &AtomicU32 {
        // SAFETY: a 4-byte aligned word inside the live mapping, only accessed atomically.
        unsafe { self.producer.as_ref() }
    }

    #[inline(always)]
    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.consumer.as_ref() }
    }

    #[inline(always)]
    fn needs_wakeup(&self) -> bool {
        // SAFETY: as for `producer`.
        let flags = unsafe { self.flags.as_ref() }.load(Ordering::Relaxed);
        flags & libc::XDP_RING_NEED_WAKEUP != 0
    }
}

impl Drop for RingMap {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`.
        unsafe { libc::munmap(self.base.as_ptr(), self.len) };
    }
}

/// A ring userspace produces into (fill, tx).
#[derive(Debug)]
pub struct ProducerRing<T> {
    map: RingMap,
    mask: u32,
    size: u32,
    cached_prod: u32,
    cached_cons: u32,
    _entry: std::marker::PhantomData<T>,
}

// SAFETY: the ring is used by one thread at a time (it is moved into its worker); the shared
// words are atomics.
unsafe impl<T: Send> Send for ProducerRing<T> {}

impl<T: Copy> ProducerRing<T> {
    fn new(map: RingMap, size: u32) -> Self {
        Self {
            cached_prod: map.producer().load(Ordering::Relaxed),
            cached_cons: map.consumer().load(Ordering::Relaxed).wrapping_add(size),
            map,
            mask: size - 1,
            size,
            _entry: std::marker::PhantomData,
        }
    }

    /// Free slots, at most `want`.
    #[inline(always)]
    pub fn free(&mut self, want: u32) -> u32 {
        let free = self.cached_cons.wrapping_sub(self.cached_prod);
        if free >= want {
            return want;
        }
        self.cached_cons = self
            .map
            .consumer()
            .load(Ordering::Acquire)
            .wrapping_add(self.size);
        self.cached_cons.wrapping_sub(self.cached_prod).min(want)
    }

    /// Writes the entry `i` slots past the producer index. Only slots counted by the last
    /// [`free`](Self::free) may be written; they become visible on [`submit`](Self::submit).
    #[inline(always)]
    pub fn write(&mut self, i: u32, entry: T) {
        let slot = (self.cached_prod.wrapping_add(i) & self.mask) as usize;
        // SAFETY: `slot <= mask`, so the write stays inside the descriptor array of the live
        // mapping; entries are plain data.
        unsafe { self.map.descs.cast::<T>().as_ptr().add(slot).write(entry) };
    }

    /// Publishes `n` written entries to the kernel.
    #[inline(always)]
    pub fn submit(&mut self, n: u32) {
        self.cached_prod = self.cached_prod.wrapping_add(n);
        self.map
            .producer()
            .store(self.cached_prod, Ordering::Release);
    }

    /// Whether the kernel asks for a wakeup to process this ring.
    #[inline(always)]
    pub fn needs_wakeup(&self) -> bool {
        self.map.needs_wakeup()
    }
}

/// A ring userspace consumes from (rx, completion).
#[derive(Debug)]
pub struct ConsumerRing<T> {
    map: RingMap,
    mask: u32,
    cached_prod: u32,
    cached_cons: u32,
    _entry: std::marker::PhantomData<T>,
}

// SAFETY: as for ProducerRing.
unsafe impl<T: Send> Send for ConsumerRing<T> {}

impl<T: Copy> ConsumerRing<T> {
    fn new(map: RingMap, size: u32) -> Self {
        Self {
            cached_prod: map.producer().load(Ordering::Relaxed),
            cached_cons: map.consumer().load(Ordering::Relaxed),
            map,
            mask: size - 1,
            _entry: std::marker::PhantomData,
        }
    }

    /// Entries ready to read, at most `want`.
    #[inline(always)]
    pub fn available(&mut self, want: u32) -> u32 {
        let ready = self.cached_prod.wrapping_sub(self.cached_cons);
        if ready >= want {
            return want;
        }
        self.cached_prod = self.map.producer().load(Ordering::Acquire);
        self.cached_prod.wrapping_sub(self.cached_cons).min(want)
    }

    /// Reads the entry `i` slots past the consumer index (`i` below the last `available`).
    #[inline(always)]
    pub fn read(&self, i: u32) -> T {
        let slot = (self.cached_cons.wrapping_add(i) & self.mask) as usize;
        // SAFETY: `slot <= mask` keeps the read inside the descriptor array; the kernel
        // published the entry before its release store of the producer index we acquired.
        unsafe { self.map.descs.cast::<T>().as_ptr().add(slot).read() }
    }

    /// Hands `n` read entries back to the kernel.
    #[inline(always)]
    pub fn release(&mut self, n: u32) {
        self.cached_cons = self.cached_cons.wrapping_add(n);
        self.map
            .consumer()
            .store(self.cached_cons, Ordering::Release);
    }

    /// Whether the kernel asks for a wakeup (meaningful on the fill side only).
    #[inline(always)]
    pub fn needs_wakeup(&self) -> bool {
        self.map.needs_wakeup()
    }
}

/// What a tx wakeup achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kick {
    /// The kernel took everything on the ring.
    Done,
    /// The per-call budget ran out and frames remain: call again.
    Again,
    /// Transient: the device is busy or out of buffers; try later.
    Busy,
    /// The kernel dropped a frame (EBUSY in copy mode): the device has no carrier, or it
    /// took the frame and its receiver had no room (a veth whose peer's ring is full). Not a
    /// sign of a dead link by itself.
    Refused,
    /// The device is down: what the ring holds stays there until it is up.
    Down,
    /// An unexpected error.
    Failed,
}

/// A frame descriptor on the rx and tx rings.
pub type Desc = libc::xdp_desc;

/// Kernel statistics of one socket (`XDP_STATISTICS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Dropped for reasons other than the ones below.
    pub rx_dropped: u64,
    /// Invalid descriptors on the fill ring.
    pub rx_invalid_descs: u64,
    /// Invalid descriptors on the tx ring.
    pub tx_invalid_descs: u64,
    /// Dropped because the rx ring was full.
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty.
    pub rx_fill_ring_empty: u64,
    /// Times the kernel found the tx ring empty.
    pub tx_ring_empty: u64,
}

/// An AF_XDP socket bound to one queue of one device, with its four rings.
#[derive(Debug)]
pub struct XskSocket {
    /// Free frames for the kernel to receive into.
    fill: ProducerRing<u64>,
    /// Frames the kernel has transmitted.
    completion: ConsumerRing<u64>,
    /// Received frames.
    rx: ConsumerRing<Desc>,
    /// Frames to transmit.
    tx: ProducerRing<Desc>,
    fd: OwnedFd,
    ifindex: u32,
    queue: u32,
    mode: BindMode,
    multi_buffer: bool,
}

fn setsockopt<T>(
    fd: RawFd,
    name: libc::c_int,
    value: &T,
    what: &'static str,
) -> Result<(), XskError> {
    // SAFETY: `value` points to a live T of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(last_error(what));
    }
    Ok(())
}

fn getsockopt<T: Default>(fd: RawFd, name: libc::c_int, what: &'static str) -> Result<T, XskError> {
    let mut value = T::default();
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `value`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            name,
            (&mut value as *mut T).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(last_error(what));
    }
    Ok(value)
}

impl XskSocket {
    /// Opens a socket on `ifindex`/`queue` over `umem`.
    ///
    /// With `share_with: None` this socket registers the UMEM and is bound in `mode`; with
    /// `Some(owner)` it shares the owner's UMEM (and so its bind mode) and gets fill and
    /// completion rings of its own. `multi_buffer` (owner only; sharers inherit it) binds with
    /// `XDP_USE_SG`: packets larger than a frame come and go as descriptor chains.
    ///
    /// # Errors
    /// Any failing socket call, named; a bind error for zero-copy on a driver without it
    /// (EOPNOTSUPP) is the caller's cue to retry in copy mode.
    pub fn open(
        umem: &Umem,
        share_with: Option<&XskSocket>,
        ifindex: u32,
        queue: u32,
        sizes: RingSizes,
        mode: BindMode,
        multi_buffer: bool,
    ) -> Result<Self, XskError> {
        for (ring, size) in [
            ("fill", sizes.fill),
            ("completion", sizes.completion),
            ("rx", sizes.rx),
            ("tx", sizes.tx),
        ] {
            if !size.is_power_of_two() {
                return Err(XskError::RingSize { ring, size });
            }
        }
        // SAFETY: plain socket(2); the result is checked before it is wrapped.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(last_error("socket(AF_XDP)"));
        }
        // SAFETY: `raw` is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let raw = fd.as_raw_fd();
        if share_with.is_none() {
            let reg = libc::xdp_umem_reg {
                addr: umem.area.as_ptr() as u64,
                len: umem.len as u64,
                chunk_size: FRAME_SIZE,
                headroom: 0,
                flags: 0,
                tx_metadata_len: 0,
            };
            setsockopt(raw, libc::XDP_UMEM_REG, &reg, "setsockopt(XDP_UMEM_REG)")?;
        }
        setsockopt(
            raw,
            libc::XDP_UMEM_FILL_RING,
            &sizes.fill,
            "setsockopt(XDP_UMEM_FILL_RING)",
        )?;
        setsockopt(
            raw,
            libc::XDP_UMEM_COMPLETION_RING,
            &sizes.completion,
            "setsockopt(XDP_UMEM_COMPLETION_RING)",
        )?;
        setsockopt(raw, libc::XDP_RX_RING, &sizes.rx, "setsockopt(XDP_RX_RING)")?;
        setsockopt(raw, libc::XDP_TX_RING, &sizes.tx, "setsockopt(XDP_TX_RING)")?;
        let off: libc::xdp_mmap_offsets = getsockopt_offsets(raw)?;
        let fill = RingMap::map(
            raw,
            &off.fr,
            sizes.fill,
            8,
            libc::XDP_UMEM_PGOFF_FILL_RING as libc::off_t,
            "mmap (fill ring)",
        )?;
        let completion = RingMap::map(
            raw,
            &off.cr,
            sizes.completion,
            8,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING as libc::off_t,
            "mmap (completion ring)",
        )?;
        let rx = RingMap::map(
            raw,
            &off.rx,
            sizes.rx,
            std::mem::size_of::<Desc>(),
            libc::XDP_PGOFF_RX_RING,
            "mmap (rx ring)",
        )?;
        let tx = RingMap::map(
            raw,
            &off.tx,
            sizes.tx,
            std::mem::size_of::<Desc>(),
            libc::XDP_PGOFF_TX_RING,
            "mmap (tx ring)",
        )?;
        let (flags, shared_fd, mode, multi_buffer) = match share_with {
            // The kernel takes copy/zero-copy, need-wakeup and multi-buffer from the UMEM's
            // owner.
            Some(owner) => (
                libc::XDP_SHARED_UMEM,
                owner.fd.as_raw_fd() as u32,
                owner.mode,
                owner.multi_buffer,
            ),
            None => {
                let mode_flag = match mode {
                    BindMode::ZeroCopy => libc::XDP_ZEROCOPY,
                    BindMode::Copy => libc::XDP_COPY,
                };
                let sg = if multi_buffer { libc::XDP_USE_SG } else { 0 };
                (
                    mode_flag | libc::XDP_USE_NEED_WAKEUP | sg,
                    0,
                    mode,
                    multi_buffer,
                )
            }
        };
        let addr = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: flags,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: shared_fd,
        };
        // SAFETY: `addr` is a valid sockaddr_xdp of the size passed.
        let rc = unsafe {
            libc::bind(
                raw,
                (&addr as *const libc::sockaddr_xdp).cast(),
                std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(last_error("bind(AF_XDP)"));
        }
        Ok(Self {
            fill: ProducerRing::new(fill, sizes.fill),
            completion: ConsumerRing::new(completion, sizes.completion),
            rx: ConsumerRing::new(rx, sizes.rx),
            tx: ProducerRing::new(tx, sizes.tx),
            fd,
            ifindex,
            queue,
            mode,
            multi_buffer,
        })
    }

    /// Whether packets larger than a frame come and go as descriptor chains (`XDP_USE_SG`).
    pub fn multi_buffer(&self) -> bool {
        self.multi_buffer
    }

    /// Received frames ready to take, at most `want`.
    #[inline(always)]
    pub fn rx_available(&mut self, want: u32) -> u32 {
        self.rx.available(want)
    }

    /// Takes received entry `i` (below the last [`rx_available`](Self::rx_available)). A
    /// descriptor that does not lie inside one frame of `umem` (which the kernel never makes)
    /// comes back as `Err` with its frame, emptied, when the frame is `umem`'s.
    #[inline(always)]
    pub fn rx_take(&self, i: u32, umem: &Umem) -> Result<Frame, Option<Frame>> {
        let d = self.rx.read(i);
        if umem.contains(d.addr, d.len) {
            return Ok(Frame {
                addr: d.addr,
                len: d.len,
                options: d.options,
            });
        }
        let base = Umem::frame_base(d.addr);
        Err((base < umem.len as u64).then_some(Frame {
            addr: base,
            len: 0,
            options: 0,
        }))
    }

    /// Whether received entry `i` (below the last [`rx_available`](Self::rx_available)) is
    /// continued by the next one: read before taking, so that a packet is taken whole.
    #[inline(always)]
    pub fn rx_continues(&self, i: u32) -> bool {
        self.rx.read(i).options & libc::XDP_PKT_CONTD != 0
    }

    /// Hands `n` taken rx entries back to the kernel.
    #[inline(always)]
    pub fn rx_release(&mut self, n: u32) {
        self.rx.release(n);
    }

    /// Completed transmits ready to take, at most `want`.
    #[inline(always)]
    pub fn completion_available(&mut self, want: u32) -> u32 {
        self.completion.available(want)
    }

    /// Takes completion entry `i`: the frame, empty; `None` for an address outside `umem`.
    #[inline(always)]
    pub fn completion_take(&self, i: u32, umem: &Umem) -> Option<Frame> {
        let addr = Umem::frame_base(self.completion.read(i));
        (addr < umem.len as u64).then_some(Frame {
            addr,
            len: 0,
            options: 0,
        })
    }

    /// Hands `n` taken completion entries back to the kernel.
    #[inline(always)]
    pub fn completion_release(&mut self, n: u32) {
        self.completion.release(n);
    }

    /// Free fill ring slots, at most `want`.
    #[inline(always)]
    pub fn fill_free(&mut self, want: u32) -> u32 {
        self.fill.free(want)
    }

    /// Puts `frame` in fill slot `i` (below the last [`fill_free`](Self::fill_free)); the
    /// kernel owns it once submitted.
    #[inline(always)]
    pub fn fill_put(&mut self, i: u32, frame: Frame) {
        self.fill.write(i, Umem::frame_base(frame.addr));
    }

    /// Publishes `n` fill entries.
    #[inline(always)]
    pub fn fill_submit(&mut self, n: u32) {
        self.fill.submit(n);
    }

    /// Whether the kernel asks for a wakeup to take fill entries (zero-copy drivers).
    #[inline(always)]
    pub fn fill_needs_wakeup(&self) -> bool {
        self.fill.needs_wakeup()
    }

    /// Free tx ring slots, at most `want`.
    #[inline(always)]
    pub fn tx_free(&mut self, want: u32) -> u32 {
        self.tx.free(want)
    }

    /// Puts `frame` in tx slot `i` (below the last [`tx_free`](Self::tx_free)); the kernel
    /// owns it once submitted.
    #[inline(always)]
    pub fn tx_put(&mut self, i: u32, frame: Frame) {
        self.tx.write(
            i,
            Desc {
                addr: frame.addr,
                len: frame.len,
                options: frame.options,
            },
        );
    }

    /// Publishes `n` tx entries.
    #[inline(always)]
    pub fn tx_submit(&mut self, n: u32) {
        self.tx.submit(n);
    }

    /// Whether the kernel asks for a wakeup to transmit.
    #[inline(always)]
    pub fn tx_needs_wakeup(&self) -> bool {
        self.tx.needs_wakeup()
    }

    /// The device this socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The queue this socket is bound to.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// Copy or zero-copy.
    pub fn mode(&self) -> BindMode {
        self.mode
    }

    /// Asks the kernel to transmit what the tx ring holds.
    ///
    /// In copy mode one call transmits at most the socket's budget (32 frames unless raised
    /// with [`set_tx_budget`](Self::set_tx_budget)) and answers EAGAIN when frames remain.
    #[inline]
    pub fn kick_tx(&self) -> Kick {
        // SAFETY: sendto with no buffer and no address, as AF_XDP defines for a tx wakeup.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if rc >= 0 {
            return Kick::Done;
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN) => Kick::Again,
            Some(libc::EBUSY) => Kick::Refused,
            Some(libc::ENOBUFS) => Kick::Busy,
            Some(libc::ENETDOWN | libc::ENXIO) => Kick::Down,
            _ => Kick::Failed,
        }
    }

    /// Raises how many frames one `sendto` may transmit in copy mode
    /// (`XDP_MAX_TX_SKB_BUDGET`, Linux 6.16 and later). Returns false where the kernel does not
    /// have the option or refuses the value; the default budget (32) stays then.
    pub fn set_tx_budget(&self, frames: u32) -> bool {
        /// `XDP_MAX_TX_SKB_BUDGET` from linux/if_xdp.h (not in the libc crate yet).
        const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;
        setsockopt(
            self.fd.as_raw_fd(),
            XDP_MAX_TX_SKB_BUDGET,
            &frames,
            "setsockopt(XDP_MAX_TX_SKB_BUDGET)",
        )
        .is_ok()
    }

    /// Wakes the kernel to fill the rx ring from the fill ring (zero-copy drivers ask for it).
    #[inline]
    pub fn kick_rx(&self) {
        // SAFETY: recvfrom with no buffer, as AF_XDP defines for an rx wakeup.
        unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
    }

    /// Preferred busy polling: the kernel stops running this socket's NAPI from its softirq
    /// while the socket's owner polls it (each `recvfrom`/`sendto` runs it for up to `usec`
    /// microseconds, `budget` frames at a time), as long as the device defers its interrupts
    /// (`napi_defer_hard_irqs`, `gro_flush_timeout`).
    ///
    /// # Errors
    /// A kernel without preferred busy polling (before 5.11) or without CAP_NET_ADMIN.
    pub fn set_busy_poll(&self, usec: u32, budget: u32) -> Result<(), XskError> {
        /// From asm-generic/socket.h (not in the libc crate for every target).
        const SO_BUSY_POLL: libc::c_int = 46;
        const SO_PREFER_BUSY_POLL: libc::c_int = 69;
        const SO_BUSY_POLL_BUDGET: libc::c_int = 70;
        for (name, value, what) in [
            (SO_PREFER_BUSY_POLL, 1, "setsockopt(SO_PREFER_BUSY_POLL)"),
            (SO_BUSY_POLL, usec, "setsockopt(SO_BUSY_POLL)"),
            (
                SO_BUSY_POLL_BUDGET,
                budget,
                "setsockopt(SO_BUSY_POLL_BUDGET)",
            ),
        ] {
            let value = value as libc::c_int;
            // SAFETY: an int option of the size passed, on a live socket.
            let rc = unsafe {
                libc::setsockopt(
                    self.fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    name,
                    (&value as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(last_error(what));
            }
        }
        Ok(())
    }

    /// The kernel's counters for this socket.
    ///
    /// # Errors
    /// When `getsockopt(XDP_STATISTICS)` fails.
    pub fn stats(&self) -> Result<XskStats, XskError> {
        let s: XdpStatistics = getsockopt(
            self.fd.as_raw_fd(),
            libc::XDP_STATISTICS,
            "getsockopt(XDP_STATISTICS)",
        )?;
        Ok(XskStats {
            rx_dropped: s.0.rx_dropped,
            rx_invalid_descs: s.0.rx_invalid_descs,
            tx_invalid_descs: s.0.tx_invalid_descs,
            rx_ring_full: s.0.rx_ring_full,
            rx_fill_ring_empty: s.0.rx_fill_ring_empty_descs,
            tx_ring_empty: s.0.tx_ring_empty_descs,
        })
    }
}

impl AsRawFd for XskSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

struct XdpStatistics(libc::xdp_statistics);

impl Default for XdpStatistics {
    fn default() -> Self {
        Self(libc::xdp_statistics {
            rx_dropped: 0,
            rx_invalid_descs: 0,
            tx_invalid_descs: 0,
            rx_ring_full: 0,
            rx_fill_ring_empty_descs: 0,
            tx_ring_empty_descs: 0,
        })
    }
}

fn getsockopt_offsets(fd: RawFd) -> Result<libc::xdp_mmap_offsets, XskError> {
    let zero = libc::xdp_ring_offset {
        producer: 0,
        consumer: 0,
        desc: 0,
        flags: 0,
    };
    let mut off = libc::xdp_mmap_offsets {
        rx: zero,
        tx: zero,
        fr: zero,
        cr: zero,
    };
    let mut len = std::mem::size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `off`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            libc::XDP_MMAP_OFFSETS,
            (&mut off as *mut libc::xdp_mmap_offsets).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(last_error("getsockopt(XDP_MMAP_OFFSETS)"));
    }
    if (len as usize) < std::mem::size_of::<libc::xdp_mmap_offsets>() {
        return Err(XskError::Sys {
            call: "getsockopt(XDP_MMAP_OFFSETS)",
            source: io::Error::other(
                "kernel too old: no flags word in the ring offsets (need 5.4+)",
            ),
        });
    }
    Ok(off)
}

/// Waits until any of `sockets` (or `other`, e.g. a wakeup socket) has something to receive,
/// or `timeout_ms` passes.
pub fn wait_readable<'a>(
    sockets: impl Iterator<Item = &'a XskSocket>,
    other: Option<RawFd>,
    fds: &mut Vec<libc::pollfd>,
    timeout_ms: i32,
) {
    fds.clear();
    fds.extend(
        sockets
            .map(|s| s.fd.as_raw_fd())
            .chain(other)
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            }),
    );
    // SAFETY: `fds` holds `fds.len()` initialised pollfd entries.
    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
}

/// The OS error of a failed `bind`, if that is what `err` is.
fn bind_errno(err: &XskError) -> Option<i32> {
    match err {
        XskError::Sys {
            call: "bind(AF_XDP)",
            source,
        } => source.raw_os_error(),
        _ => None,
    }
}

/// Whether a bind error means the queue is still taken (a socket just closed there is
/// released by the kernel in the background): worth trying again shortly.
pub fn is_busy(err: &XskError) -> bool {
    bind_errno(err) == Some(libc::EBUSY)
}

/// Whether a bind error is EINVAL: a flag this kernel does not know (`XDP_USE_SG` before 6.6).
pub fn is_invalid_argument(err: &XskError) -> bool {
    bind_errno(err) == Some(libc::EINVAL)
}

/// Whether a bind error means "this driver cannot do zero-copy" (so copy mode may work).
pub fn is_zero_copy_unsupported(err: &XskError) -> bool {
    matches!(
        bind_errno(err),
        Some(libc::EOPNOTSUPP | libc::EINVAL | libc::EPROTONOSUPPORT)
    )
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
