//! The words of a BPF array map created with `BPF_F_MMAPABLE`, mapped into this process.
#![allow(unsafe_code)]

use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::afxdp::{last_error, XskError};

/// The words of a BPF array map created with `BPF_F_MMAPABLE`, mapped into this process: the
/// kernel's programs and the workers write them, everyone reads them without a system call
/// (the lost-member words of the XDP engine's object). The mapping keeps the map alive.
#[derive(Debug)]
pub struct MappedWords {
    base: NonNull<u64>,
    words: usize,
    /// Heap words instead of a mapping: nothing to unmap.
    heap: Option<Box<[AtomicU64]>>,
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
        Ok(Self {
            base,
            words,
            heap: None,
        })
    }

    /// `words` zeroed words on the heap, shared the same way within this process: the unit
    /// tests' stand-in for the BPF map (of the workers and of the control thread's watch).
    pub fn heap(words: usize) -> Self {
        let heap: Box<[AtomicU64]> = (0..words.max(1)).map(|_| AtomicU64::new(0)).collect();
        Self {
            base: NonNull::from(&heap[0]).cast(),
            words,
            heap: Some(heap),
        }
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
        if self.heap.is_none() {
            // SAFETY: unmaps exactly the mapping made in `map`.
            unsafe { libc::munmap(self.base.as_ptr().cast(), self.words * 8) };
        }
    }
}
