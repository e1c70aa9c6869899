//! What reaches the control path is rate-limited per port and per protocol, before the
//! kernel makes an skb of it or a packet socket queues it: a flood that looks like control
//! frames (from anywhere in the layer-2 domain: a switch floods the micro-BFD MAC through the
//! VLAN, and the probe MAC is public) costs a token-bucket look-up per frame, and the control
//! thread sees at most the rate below. What is dropped is counted (`rate_limited`).
//!
//! The buckets live in per-CPU arrays of the programs (one bucket per protocol, per port);
//! each CPU's bucket has the whole rate, so a flood spread over N receive queues gets N times
//! the rate at most. Tokens are kept in thousandths, so a rate below one per millisecond
//! refills smoothly; only integer arithmetic, no division by a variable.

/// A kind of control-path frame, each with its own bucket.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// IEEE 802.3 Slow Protocols (LACP, Marker).
    Slow = 0,
    /// Micro-BFD (RFC 7130).
    Bfd = 1,
    /// A reply to the port's ARP/NS probes.
    ProbeReply = 2,
}

impl Control {
    /// Kinds, so buckets per port.
    pub const COUNT: u32 = 3;

    /// Frames per second a port hands the control path, and the burst.
    ///
    /// - slow protocols: IEEE 802.3 Annex 43B caps a sender at 10 frames a second; LACP with
    ///   the fast timeout sends one a second and Marker answers are rarer;
    /// - micro-BFD: a session sends at its interval, 10 ms at the least (100 a second);
    /// - probe replies: up to 16 targets, each answering once per interval (10 ms at the
    ///   least) on every member, duplicated by a switch at worst.
    pub const fn rate(self) -> Rate {
        match self {
            Control::Slow => Rate {
                per_second: 50,
                burst: 25,
            },
            Control::Bfd => Rate {
                per_second: 400,
                burst: 100,
            },
            Control::ProbeReply => Rate {
                per_second: 4000,
                burst: 200,
            },
        }
    }
}

/// A sustained rate and the most taken at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Frames per second.
    pub per_second: u64,
    /// Frames taken at once after a quiet spell.
    pub burst: u64,
}

/// One bucket (a map value).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenBucket {
    /// Tokens, in thousandths.
    pub milli_tokens: u64,
    /// When it was last filled (ns, the programs' clock).
    pub last_ns: u64,
}

const _: () = assert!(core::mem::size_of::<TokenBucket>() == 16);

// SAFETY: repr(C), two u64, no padding (size asserted above); any bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for TokenBucket {}

impl TokenBucket {
    /// Takes a token at `now_ns` at `rate`; `false` when there is none (drop the frame). A
    /// bucket never used starts full.
    #[inline(always)]
    pub fn take(&mut self, now_ns: u64, rate: Rate) -> bool {
        let full = rate.burst * 1000;
        if self.last_ns == 0 {
            self.milli_tokens = full;
        } else {
            // At most a second's worth at once: the bucket is full by then anyway, and the
            // product stays far from overflow.
            let elapsed = now_ns.saturating_sub(self.last_ns).min(1_000_000_000);
            let refill = elapsed * rate.per_second / 1_000_000;
            self.milli_tokens = (self.milli_tokens + refill).min(full);
        }
        self.last_ns = now_ns;
        if self.milli_tokens < 1000 {
            return false;
        }
        self.milli_tokens -= 1000;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_new_bucket_takes_its_burst_then_the_rate() {
        let rate = Rate {
            per_second: 50,
            burst: 25,
        };
        let mut b = TokenBucket::default();
        let t0 = 5_000 * MS;
        let burst = (0..100).filter(|_| b.take(t0, rate)).count();
        assert_eq!(burst, 25);
        // A second of a flood at 10 per millisecond: the rate, no more.
        let taken = (1..=10_000u64)
            .filter(|i| b.take(t0 + i * MS / 10, rate))
            .count();
        assert!((49..=51).contains(&taken), "{taken}");
    }

    #[test]
    fn a_quiet_spell_refills_to_the_burst_only() {
        let rate = Control::Slow.rate();
        let mut b = TokenBucket::default();
        let t0 = MS;
        while b.take(t0, rate) {}
        // An hour later: the burst, not an hour's worth.
        let later = t0 + 3_600_000 * MS;
        let taken = (0..1000).filter(|_| b.take(later, rate)).count();
        assert_eq!(taken as u64, rate.burst);
    }

    #[test]
    fn a_sender_within_the_rate_is_never_refused() {
        // A fast-timeout LACP partner and a Marker exchange: a few frames a second.
        let rate = Control::Slow.rate();
        let mut b = TokenBucket::default();
        for i in 1..=600u64 {
            assert!(b.take(i * 200 * MS, rate), "frame {i}");
        }
    }
}
