//! Rebalancing without reordering (`rebalance = true`): when one member carries more than
//! `threshold` above the mean of the active members for `hold`, its buckets move to the
//! least-loaded member, hottest first while a move narrows the gap, and each only at a gap in
//! its own traffic: a bucket moves once its frame counter has stood still for `idle`. Every
//! frame of it sent before the move has then left the old member long before the first one
//! on the new member, so no flow is reordered (OVS rebalances every 10 s and reorders;
//! bonding's TLB/ALB reorders). A bucket that never pauses (one elephant flow that never
//! stops) stays where it is.
//!
//! Sans-IO: the caller passes the time, the buckets' cumulative frame counters (every engine
//! counts them) and the published table's bucket map and active set, at least every
//! [`Rebalancer::deadline`], and publishes the moves it returns.

use std::time::Duration;

use crate::proto::time::Time;

use xlagg_dataplane::distribution::{MemberIndex, BUCKETS, MAX_MEMBERS};

/// The settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RebalanceConfig {
    /// How far above the active members' mean rate the busiest may run, in percent.
    pub threshold_pct: u32,
    /// How long it must run above that before buckets move.
    pub hold: Duration,
    /// The gap in a bucket's traffic before it moves.
    pub idle: Duration,
    /// The window the rates are measured over.
    pub window: Duration,
}

/// One bucket to move.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Move {
    /// The bucket.
    pub bucket: usize,
    /// Its member now.
    pub from: MemberIndex,
    /// Its member after the move.
    pub to: MemberIndex,
    /// Its frames per second over the last window.
    pub rate: f64,
    /// How long it had been idle.
    pub gap: Duration,
}

/// A bucket waiting for a gap in its traffic.
#[derive(Clone, Copy, Debug)]
struct Pending {
    bucket: usize,
    from: MemberIndex,
    to: MemberIndex,
    /// Its counter when last seen changing, and since when it has stood still.
    seen: u64,
    still_since: Time,
    planned: Time,
}

/// The rebalancer of one lagg.
#[derive(Clone, Debug)]
pub struct Rebalancer {
    cfg: RebalanceConfig,
    window: Option<(Time, [u64; BUCKETS])>,
    rates: [f64; BUCKETS],
    over_since: Option<Time>,
    pending: Vec<Pending>,
    /// Each member's load by the last window, less and plus the buckets moved since.
    load: [f64; MAX_MEMBERS],
    /// Buckets moved since start.
    pub moves: u64,
    /// The last window's imbalance (busiest active member over the mean), if traffic flowed.
    pub imbalance: Option<f64>,
}

/// Most buckets planned at once.
const MAX_PENDING: usize = 32;

impl Rebalancer {
    /// A rebalancer with `cfg`.
    pub fn new(cfg: RebalanceConfig) -> Self {
        Self {
            cfg,
            window: None,
            rates: [0.0; BUCKETS],
            over_since: None,
            pending: Vec::new(),
            load: [0.0; MAX_MEMBERS],
            moves: 0,
            imbalance: None,
        }
    }

    /// Buckets waiting for a gap.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// When [`step`](Self::step) is due next: often enough to see a gap of `idle` while
    /// buckets wait for one, once a window otherwise.
    pub fn deadline(&self) -> Option<Time> {
        let (start, _) = self.window?;
        let window_end = start + self.cfg.window;
        if self.pending.is_empty() {
            Some(window_end)
        } else {
            let soon = self
                .pending
                .iter()
                .map(|p| p.still_since + self.cfg.idle)
                .min()
                .unwrap_or(window_end);
            Some(soon.min(window_end))
        }
    }

    /// Each active member's frames per second by the last window's bucket rates.
    fn loads(
        &self,
        buckets: &[MemberIndex; BUCKETS],
        active: &[MemberIndex],
    ) -> [f64; MAX_MEMBERS] {
        let mut load = [0.0; MAX_MEMBERS];
        for (b, &m) in buckets.iter().enumerate() {
            if active.contains(&m) {
                if let Some(l) = load.get_mut(usize::from(m)) {
                    *l += self.rates[b];
                }
            }
        }
        load
    }

    /// Takes the counters at `now` and returns the buckets to move now.
    pub fn step(
        &mut self,
        now: Time,
        hits: &[u64; BUCKETS],
        buckets: &[MemberIndex; BUCKETS],
        active: &[MemberIndex],
    ) -> Vec<Move> {
        let Some((start, before)) = self.window else {
            self.window = Some((now, *hits));
            return Vec::new();
        };
        if now.since(start) >= self.cfg.window {
            let secs = now.since(start).as_secs_f64();
            for (b, rate) in self.rates.iter_mut().enumerate() {
                *rate = hits[b].saturating_sub(before[b]) as f64 / secs;
            }
            self.window = Some((now, *hits));
            self.judge(now, buckets, active);
        }
        self.take_idle(now, hits, buckets, active)
    }

    /// After a window: notes how long the busiest member has run over the threshold, and
    /// plans moves once it has for `hold`.
    fn judge(&mut self, now: Time, buckets: &[MemberIndex; BUCKETS], active: &[MemberIndex]) {
        let load = self.loads(buckets, active);
        self.load = load;
        let total: f64 = active.iter().map(|&m| load[usize::from(m)]).sum();
        if active.len() < 2 || total <= 0.0 {
            self.imbalance = None;
            self.over_since = None;
            self.pending.clear();
            return;
        }
        let mean = total / active.len() as f64;
        let by_load = |m: &&MemberIndex| load[usize::from(**m)];
        let (Some(&donor), Some(&receiver)) = (
            active
                .iter()
                .max_by(|a, b| by_load(a).total_cmp(&by_load(b))),
            active
                .iter()
                .min_by(|a, b| by_load(a).total_cmp(&by_load(b))),
        ) else {
            return;
        };
        let busiest = load[usize::from(donor)];
        self.imbalance = Some(busiest / mean);
        if busiest <= mean * (1.0 + f64::from(self.cfg.threshold_pct) / 100.0) {
            self.over_since = None;
            self.pending.clear();
            return;
        }
        let since = *self.over_since.get_or_insert(now);
        if now.since(since) < self.cfg.hold || !self.pending.is_empty() {
            return;
        }
        // Hottest first: every bucket whose move would narrow the gap between the two now;
        // at its gap each moves only if it still does (see `take_idle`).
        let gap = busiest - load[usize::from(receiver)];
        let mut candidates: Vec<usize> = (0..BUCKETS)
            .filter(|&b| buckets[b] == donor && self.rates[b] > 0.0 && self.rates[b] < gap)
            .collect();
        candidates.sort_by(|a, b| self.rates[*b].total_cmp(&self.rates[*a]));
        for b in candidates.into_iter().take(MAX_PENDING) {
            self.pending.push(Pending {
                bucket: b,
                from: donor,
                to: receiver,
                seen: u64::MAX,
                still_since: now,
                planned: now,
            });
        }
    }

    /// Moves the planned buckets whose counter has stood still for `idle`; gives up on one
    /// that found no gap in five windows, or whose member changed meanwhile.
    fn take_idle(
        &mut self,
        now: Time,
        hits: &[u64; BUCKETS],
        buckets: &[MemberIndex; BUCKETS],
        active: &[MemberIndex],
    ) -> Vec<Move> {
        let mut moves = Vec::new();
        let give_up = self.cfg.window * 5;
        let idle = self.cfg.idle;
        let rates = self.rates;
        let load = &mut self.load;
        self.pending.retain_mut(|p| {
            if buckets[p.bucket] != p.from || !active.contains(&p.to) {
                return false;
            }
            let (from, to) = (usize::from(p.from), usize::from(p.to));
            let r = rates[p.bucket];
            if r >= load[from] - load[to] {
                // The moves made since the plan closed the gap this one would have narrowed.
                return false;
            }
            if hits[p.bucket] != p.seen {
                p.seen = hits[p.bucket];
                p.still_since = now;
            } else if now.since(p.still_since) >= idle {
                load[from] -= r;
                load[to] += r;
                moves.push(Move {
                    bucket: p.bucket,
                    from: p.from,
                    to: p.to,
                    rate: rates[p.bucket],
                    gap: now.since(p.still_since),
                });
                return false;
            }
            now.since(p.planned) < give_up
        });
        self.moves += moves.len() as u64;
        if !moves.is_empty() && self.pending.is_empty() {
            // Judge the new spread over a whole hold again before moving more.
            self.over_since = None;
        }
        moves
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn cfg() -> RebalanceConfig {
        RebalanceConfig {
            threshold_pct: 20,
            hold: 1000 * MS,
            idle: 50 * MS,
            window: 1000 * MS,
        }
    }

    /// Two members, buckets alternating (even: 0, odd: 1).
    fn table() -> [MemberIndex; BUCKETS] {
        std::array::from_fn(|b| (b % 2) as MemberIndex)
    }

    /// Drives `r` for `secs` seconds in steps of 10 ms: bucket 0 (member 0) is an elephant
    /// at 1000 frames/s that never pauses; buckets 2, 4, 6, 8 (member 0) get 25 frames in
    /// a burst every 100 ms; bucket 1 (member 1) 100 frames/s, steadily.
    fn drive(
        r: &mut Rebalancer,
        t0: Time,
        secs: u64,
        hits: &mut [u64; BUCKETS],
        map: &mut [MemberIndex; BUCKETS],
    ) -> Vec<(Duration, Move)> {
        let mut moved = Vec::new();
        for step in 0..secs * 100 {
            let now = t0 + step as u32 * 10 * MS;
            hits[0] += 10;
            hits[1] += 1;
            if step % 10 == 0 {
                for b in [2, 4, 6, 8] {
                    hits[b] += 25;
                }
            }
            for m in r.step(now, hits, map, &[0, 1]) {
                assert_eq!(map[m.bucket], m.from);
                map[m.bucket] = m.to;
                moved.push((now.since(t0), m));
            }
        }
        moved
    }

    #[test]
    fn bursty_buckets_move_at_their_gaps_and_a_steady_elephant_stays() {
        let t0 = Time::ZERO;
        let mut r = Rebalancer::new(cfg());
        let mut hits = [0u64; BUCKETS];
        let mut map = table();
        let moved = drive(&mut r, t0, 6, &mut hits, &mut map);
        // Member 0: 1000 + 4 x 250 = 2000/s, member 1: 100/s; the mean 1050, 90 % over.
        assert!(!moved.is_empty(), "the bursty buckets move");
        for (at, m) in &moved {
            assert!(m.gap >= 50 * MS, "only at a gap: {m:?}");
            assert!(*at >= Duration::from_secs(2), "not before the hold: {at:?}");
            assert_ne!(m.bucket, 0, "the elephant never pauses, so it never moves");
            assert_eq!((m.from, m.to), (0, 1));
        }
        assert_eq!(map[0], 0);
        assert!(r.imbalance.is_some_and(|i| i < 1.9), "{:?}", r.imbalance);
        assert_eq!(r.moves, moved.len() as u64);
    }

    #[test]
    fn an_even_spread_moves_nothing() {
        let t0 = Time::ZERO;
        let mut r = Rebalancer::new(cfg());
        let mut hits = [0u64; BUCKETS];
        let map = table();
        for step in 0..1000u32 {
            for h in hits.iter_mut().take(16) {
                *h += 1;
            }
            assert_eq!(r.step(t0 + step * 10 * MS, &hits, &map, &[0, 1]), []);
        }
        assert_eq!(r.imbalance, Some(1.0));
        // One member, or no traffic: nothing to do either.
        let mut r = Rebalancer::new(cfg());
        let mut hits = [0u64; BUCKETS];
        for step in 0..500u32 {
            hits[0] += 10;
            assert_eq!(r.step(t0 + step * 10 * MS, &hits, &[0; BUCKETS], &[0]), []);
        }
        assert_eq!(r.imbalance, None);
    }

    #[test]
    fn a_bucket_whose_member_changed_meanwhile_is_left_alone() {
        let t0 = Time::ZERO;
        let mut r = Rebalancer::new(cfg());
        let mut hits = [0u64; BUCKETS];
        let mut map = table();
        // Over the threshold long enough to plan, with every bucket busy (no gap).
        for step in 0..250u32 {
            hits[2] += 10;
            hits[4] += 10;
            hits[1] += 1;
            assert_eq!(r.step(t0 + step * 10 * MS, &hits, &map, &[0, 1]), []);
        }
        assert!(r.pending() > 0, "planned");
        // Member 0 leaves: its buckets go to member 1, and nothing planned moves.
        map = [1; BUCKETS];
        for step in 250..400u32 {
            assert_eq!(r.step(t0 + step * 10 * MS, &hits, &map, &[1]), []);
        }
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn the_deadline_is_soon_while_buckets_wait_for_a_gap() {
        let t0 = Time::ZERO;
        let mut r = Rebalancer::new(cfg());
        assert_eq!(r.deadline(), None);
        let hits = [0u64; BUCKETS];
        r.step(t0, &hits, &table(), &[0, 1]);
        assert_eq!(r.deadline(), Some(t0 + 1000 * MS));
    }
}
