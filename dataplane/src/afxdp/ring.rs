//! The four rings of an AF_XDP socket as userspace sees them: the shared producer and consumer
//! words, the flags word and the descriptor array, with the indices cached as in libxdp.
//! The memory is the kernel's mapping for a real socket, or heap memory for the fake kernel
//! of the tests (`fake`, built for tests).
#![allow(unsafe_code)]

use std::os::fd::RawFd;
use std::ptr::NonNull;
#[cfg(any(test, feature = "testing"))]
use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicU32, Ordering};
#[cfg(any(test, feature = "testing"))]
use std::sync::Arc;

use super::{last_error, XskError};

/// Ring memory on the heap, laid out as the kernel lays out a mapped ring: the producer,
/// consumer and flags words a cache line apart, then the descriptor array. The fake kernel
/// ([`super::fake`]) plays the kernel's side of it.
#[cfg(any(test, feature = "testing"))]
#[derive(Debug)]
pub struct HeapRing {
    /// 8-byte aligned; every access goes through the pointers in [`RingMap`] or the fake
    /// kernel, as atomics for the three words.
    words: Box<[AtomicU64]>,
    entries: u32,
}

#[cfg(any(test, feature = "testing"))]
impl HeapRing {
    pub(super) const PRODUCER: usize = 0;
    pub(super) const CONSUMER: usize = 64;
    pub(super) const FLAGS: usize = 128;
    pub(super) const DESC: usize = 192;

    /// A zeroed ring of `entries` (a power of two) entries of `entry_size` bytes.
    pub(super) fn new(entries: u32, entry_size: usize) -> Arc<Self> {
        let bytes = Self::DESC + entries as usize * entry_size;
        Arc::new(Self {
            words: (0..bytes.div_ceil(8)).map(|_| AtomicU64::new(0)).collect(),
            entries,
        })
    }

    /// Entries.
    pub(super) fn entries(&self) -> u32 {
        self.entries
    }

    /// The memory's start. Writes through it are allowed: every byte is inside an
    /// `AtomicU64`, whose cell permits mutation through a shared reference.
    pub(super) fn base(&self) -> NonNull<u8> {
        NonNull::from(&self.words[0]).cast()
    }

    /// The word at byte offset `at` (one of the three index words).
    pub(super) fn word(&self, at: usize) -> &AtomicU32 {
        // SAFETY: `at` is 0, 64 or 128, inside the block and 4-byte aligned (the block is
        // 8-byte aligned); the word is only accessed atomically.
        unsafe { self.base().add(at).cast::<AtomicU32>().as_ref() }
    }
}

/// What holds a ring's memory.
#[derive(Debug)]
enum Backing {
    /// The kernel's mapping of the socket's ring, unmapped on drop.
    Kernel,
    /// Heap memory shared with the fake kernel.
    #[cfg(any(test, feature = "testing"))]
    Heap(#[allow(dead_code)] Arc<HeapRing>),
}

/// One ring's memory: the shared producer/consumer words, flags and the descriptor array.
#[derive(Debug)]
pub(super) struct RingMap {
    base: NonNull<libc::c_void>,
    len: usize,
    backing: Backing,
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    descs: NonNull<u8>,
}

impl RingMap {
    pub(super) fn map(
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
            backing: Backing::Kernel,
            producer: at(offsets.producer).cast(),
            consumer: at(offsets.consumer).cast(),
            flags: at(offsets.flags).cast(),
            descs: at(offsets.desc),
        })
    }

    /// A ring over heap memory (the fake kernel's): kept alive by the `Arc` it holds.
    #[cfg(any(test, feature = "testing"))]
    pub(super) fn heap(ring: &Arc<HeapRing>) -> Self {
        let base = ring.base();
        // SAFETY: the offsets lie inside the block `HeapRing::new` allocated.
        let at = |off: usize| unsafe { NonNull::new_unchecked(base.as_ptr().add(off)) };
        Self {
            base: base.cast(),
            len: 0,
            backing: Backing::Heap(Arc::clone(ring)),
            producer: at(HeapRing::PRODUCER).cast(),
            consumer: at(HeapRing::CONSUMER).cast(),
            flags: at(HeapRing::FLAGS).cast(),
            descs: at(HeapRing::DESC),
        }
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
        if matches!(self.backing, Backing::Kernel) {
            // SAFETY: unmaps exactly the mapping made in `map`.
            unsafe { libc::munmap(self.base.as_ptr(), self.len) };
        }
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
    pub(super) fn new(map: RingMap, size: u32) -> Self {
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
    pub(super) fn new(map: RingMap, size: u32) -> Self {
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
