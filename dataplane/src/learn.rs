//! Source MACs recently seen from the upper port, for forward mode's learning frames: after an
//! active-port change the control thread sends one frame per MAC out of the new port, so the
//! switch relearns where those hosts are at once.
//!
//! The worker samples (one frame in [`SAMPLE_EVERY`]) and writes a fixed table of
//! [`SLOTS`] words, indexed by a hash of the MAC, with plain stores: no allocation, no lock, and
//! no extra cache miss for the frames it skips. The control thread reads the table and ages it
//! (see [`RecentMacs::sweep`]).

use std::sync::atomic::{AtomicU64, Ordering};

/// Table size (a power of two).
pub const SLOTS: usize = 256;
/// The worker records one frame's source MAC in this many.
pub const SAMPLE_EVERY: usize = 16;

const VALID: u64 = 1 << 63;

/// The table shared by a worker (writer) and the control thread (reader).
#[derive(Debug)]
pub struct RecentMacs {
    slots: Box<[AtomicU64]>,
}

impl Default for RecentMacs {
    fn default() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl RecentMacs {
    /// Records the source MAC of `frame` (bytes 6..12); frames shorter than that are ignored.
    #[inline(always)]
    pub fn record(&self, frame: &[u8]) {
        let Some(src) = frame.get(6..12) else {
            return;
        };
        let mut word = [0u8; 8];
        word[2..8].copy_from_slice(src);
        let mac = u64::from_be_bytes(word);
        let slot = (mac.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize & (SLOTS - 1);
        if self.slots[slot].load(Ordering::Relaxed) != mac | VALID {
            self.slots[slot].store(mac | VALID, Ordering::Relaxed);
        }
    }

    /// The MACs in the table now.
    pub fn macs(&self) -> Vec<[u8; 6]> {
        self.slots
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .filter(|w| w & VALID != 0)
            .map(|w| {
                let b = w.to_be_bytes();
                [b[2], b[3], b[4], b[5], b[6], b[7]]
            })
            .collect()
    }

    /// Empties the table and returns what it held: the control thread calls it once per aging
    /// period and keeps the result as the previous period's MACs.
    pub fn sweep(&self) -> Vec<[u8; 6]> {
        let macs = self.macs();
        for s in self.slots.iter() {
            s.store(0, Ordering::Relaxed);
        }
        macs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_sweeps_and_ignores_runts() {
        let t = RecentMacs::default();
        let mut frame = [0u8; 60];
        frame[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 7]);
        t.record(&frame);
        t.record(&frame);
        t.record(&frame[..8]);
        assert_eq!(t.macs(), vec![[2, 0, 0, 0, 0, 7]]);
        assert_eq!(t.sweep(), vec![[2, 0, 0, 0, 0, 7]]);
        assert!(t.macs().is_empty());
    }
}
