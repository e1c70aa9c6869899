//! The one time type of the sans-IO cores: the member set, LACP, micro-BFD, the lost-member
//! watch and the rebalancer all take `now` as a [`Time`], nanoseconds since an epoch the
//! caller chooses. A running lagg's epoch is its start (`Lagg::time` converts the control
//! loop's `Instant` once); the virtual-clock tests and simulations count from zero.

use std::time::{Duration, Instant};

/// A point in time, in nanoseconds since an arbitrary epoch (the caller's clock).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub u64);

impl Time {
    /// The epoch.
    pub const ZERO: Time = Time(0);
    /// Later than any time a clock gives: a deadline that never comes.
    pub const NEVER: Time = Time(u64::MAX);

    /// Time from a duration since the epoch.
    pub fn from_duration(d: Duration) -> Time {
        Time(d.as_nanos().min(u128::from(u64::MAX)) as u64)
    }

    /// Time `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Time {
        Time(ms.saturating_mul(1_000_000))
    }

    /// The duration since `earlier` (zero if `earlier` is later).
    pub fn since(self, earlier: Time) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// The duration since the epoch.
    pub fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// `now` on the clock whose epoch is `epoch` (zero before it).
    pub fn at(epoch: Instant, now: Instant) -> Time {
        Time::from_duration(now.saturating_duration_since(epoch))
    }

    /// This time as an instant of the clock whose epoch is `epoch` (`None` past what an
    /// `Instant` can hold, e.g. [`NEVER`](Self::NEVER) on some platforms).
    pub fn instant(self, epoch: Instant) -> Option<Instant> {
        epoch.checked_add(self.as_duration())
    }
}

impl std::ops::Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        Time(
            self.0
                .saturating_add(d.as_nanos().min(u128::from(u64::MAX)) as u64),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        let t = Time::from_millis(5);
        assert_eq!(t + Duration::from_millis(1), Time::from_millis(6));
        assert_eq!(Time::NEVER + Duration::from_secs(1), Time::NEVER);
        assert_eq!(t + Duration::MAX, Time::NEVER);
        assert_eq!(t.since(Time::from_millis(7)), Duration::ZERO);
        assert_eq!(t.since(Time::ZERO), Duration::from_millis(5));
        assert_eq!(Time::from_duration(Duration::MAX), Time::NEVER);
        assert_eq!(t.as_duration(), Duration::from_millis(5));
        let epoch = Instant::now();
        let later = epoch + Duration::from_millis(5);
        assert_eq!(Time::at(epoch, later), t);
        assert_eq!(Time::at(later, epoch), Time::ZERO);
        assert_eq!(t.instant(epoch), Some(later));
    }
}
