//! Distribution: which member port transmits each frame of a batch.
//!
//! Pure functions, no I/O. The control thread derives a new immutable [`DistributionTable`] on
//! every membership change and publishes it; workers read the current one once per batch and
//! call [`distribute`].
//!
//! Hash-based distribution goes through a bucket table (hash -> bucket -> member) rather than
//! `hash % n`: when a member leaves only the flows of its buckets move, and when one joins it
//! takes buckets from the others until it has its share, and no other flow moves. `hash % n`
//! would reshuffle nearly every flow on any change.

use xlagg_common::{engine_policy, EngineTable, ENGINE_BUCKETS, ENGINE_MEMBERS};

use crate::flow::{hash_frame, HashLayers};

/// The most member ports one lagg can have.
pub const MAX_MEMBERS: usize = 32;
/// Buckets in the hash table; a power of two so the bucket is `hash & (BUCKETS - 1)`.
pub const BUCKETS: usize = 256;

// The XDP engine's maps hold the same table.
const _: () = assert!(MAX_MEMBERS == ENGINE_MEMBERS as usize && BUCKETS == ENGINE_BUCKETS);

/// Index of a member port in its lagg, in configuration order (0 is the first port added,
/// the failover master).
pub type MemberIndex = u8;

/// How frames from the upper side are spread over the active members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxPolicy {
    /// Everything to the first active member in configuration order.
    Failover,
    /// Bucket table over the hash of the chosen layers (loadbalance, and lacp once negotiated).
    Hash {
        /// Header layers fed to the hash.
        layers: HashLayers,
    },
    /// Each active member in turn, `limit` frames at a time.
    RoundRobin {
        /// Frames sent on one member before moving on (lagg's `rr_limit`, at least 1).
        limit: u32,
    },
    /// A copy on every active member.
    Broadcast,
    /// Nothing is transmitted.
    None,
    /// Everything to one member whatever its state: the benchmark's ceiling, the same worker
    /// path with the distribution decision taken out.
    #[cfg(feature = "testing")]
    Fixed(MemberIndex),
}

/// Where one frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Egress {
    /// Nowhere: no active member, or protocol `none`.
    Drop,
    /// One member.
    Port(MemberIndex),
    /// Every active member.
    AllActive,
}

/// An immutable snapshot of what the workers need to distribute a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistributionTable {
    policy: TxPolicy,
    active: [MemberIndex; MAX_MEMBERS],
    active_len: u8,
    buckets: [MemberIndex; BUCKETS],
    /// Members whose frames XDP delivers (bit per member): the workers keep full fill rings
    /// only there.
    collecting: u32,
    seed: u64,
    generation: u64,
}

/// The flow hash seed of a lagg's `hash_seed` (0 by default): fixed, so a restart or
/// another box with the same setting places every flow alike, and spread over 64 bits.
pub fn flow_seed(hash_seed: u32) -> u64 {
    // splitmix64's finalizer over the setting, offset so that 0 is not a weak key.
    let mut z = (u64::from(hash_seed) ^ 0x7861_6767_0000_0000).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl DistributionTable {
    /// A table with no active member.
    pub fn new(policy: TxPolicy, seed: u64) -> Self {
        Self {
            policy,
            active: [0; MAX_MEMBERS],
            active_len: 0,
            buckets: [0; BUCKETS],
            collecting: u32::MAX,
            seed,
            generation: 0,
        }
    }

    /// The same table with the collecting members given as a bit set (bit `m`: member `m`).
    pub fn with_collecting(&self, mask: u32) -> Self {
        let mut next = self.clone();
        next.collecting = mask;
        next.generation = self.generation + 1;
        next
    }

    /// Whether member `m` collects (its frames reach the workers).
    #[inline(always)]
    pub fn is_collecting(&self, m: usize) -> bool {
        m < MAX_MEMBERS && self.collecting & (1 << m) != 0
    }

    /// The collecting members as a bit set.
    pub fn collecting(&self) -> u32 {
        self.collecting
    }

    /// The transmit policy.
    pub fn policy(&self) -> TxPolicy {
        self.policy
    }

    /// Active members, in configuration order.
    pub fn active(&self) -> &[MemberIndex] {
        &self.active[..usize::from(self.active_len)]
    }

    /// The member each bucket maps to (meaningful while at least one member is active).
    pub fn buckets(&self) -> &[MemberIndex; BUCKETS] {
        &self.buckets
    }

    /// Increases by one with every derived table.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The flow hash seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The same table hashing with `seed`: every flow may land in another bucket, and so on
    /// another member (see [`moved_share`](Self::moved_share)).
    pub fn with_seed(&self, seed: u64) -> Self {
        let mut next = self.clone();
        next.seed = seed;
        next.generation = self.generation + 1;
        next
    }

    /// The same table with `bucket` on `member` (the rebalancer's move; a member that is
    /// not active, or a bucket out of range, changes nothing).
    pub fn with_bucket(&self, bucket: usize, member: MemberIndex) -> Self {
        let mut next = self.clone();
        if bucket < BUCKETS && self.active().contains(&member) {
            next.buckets[bucket] = member;
            next.generation = self.generation + 1;
        }
        next
    }

    /// The share of flows a new seed moves to another member, expected over uniformly hashed
    /// flows: the chance that two independent buckets belong to different members,
    /// 1 - sum of each member's bucket share squared ((N-1)/N for N equal members).
    pub fn moved_share(&self) -> f64 {
        if self.active_len == 0 {
            return 0.0;
        }
        let mut counts = [0u32; MAX_MEMBERS];
        for &m in &self.buckets {
            if let Some(c) = counts.get_mut(usize::from(m)) {
                *c += 1;
            }
        }
        let n = BUCKETS as f64;
        1.0 - counts
            .iter()
            .map(|&c| (f64::from(c) / n).powi(2))
            .sum::<f64>()
    }

    /// The table as the XDP engine's program reads it: the same policy, active members,
    /// buckets and seed, so both engines place every frame alike.
    pub fn to_engine(&self) -> EngineTable {
        let mut t = EngineTable {
            seed: self.seed,
            active_len: u32::from(self.active_len),
            buckets: self.buckets,
            ..EngineTable::default()
        };
        t.active[..MAX_MEMBERS].copy_from_slice(&self.active);
        match self.policy {
            TxPolicy::Failover => t.policy = engine_policy::FAILOVER,
            TxPolicy::Hash { layers } => {
                t.policy = engine_policy::HASH;
                t.layers = u32::from(layers.bits());
            }
            TxPolicy::RoundRobin { limit } => {
                t.policy = engine_policy::ROUND_ROBIN;
                t.rr_limit = limit.max(1);
            }
            TxPolicy::Broadcast => t.policy = engine_policy::BROADCAST,
            TxPolicy::None => t.policy = engine_policy::NONE,
            #[cfg(feature = "testing")]
            TxPolicy::Fixed(member) => {
                t.policy = engine_policy::FIXED;
                t.fixed = u32::from(member);
            }
        }
        t
    }

    /// The next table for a new set of active members (given in any order, duplicates ignored,
    /// indices `>= MAX_MEMBERS` ignored).
    ///
    /// Buckets of members that stay keep their member, except those a joining member takes to
    /// reach its share; buckets of members that left go to the remaining members with the
    /// fewest buckets. Bucket counts stay within one of each other.
    pub fn with_active(&self, members: &[MemberIndex]) -> Self {
        let mut in_set = [false; MAX_MEMBERS];
        for &m in members {
            if usize::from(m) < MAX_MEMBERS {
                in_set[usize::from(m)] = true;
            }
        }
        let mut next = self.clone();
        next.generation = self.generation + 1;
        next.active_len = 0;
        for (m, _) in in_set.iter().enumerate().filter(|(_, on)| **on) {
            {
                next.active[usize::from(next.active_len)] = m as MemberIndex;
                next.active_len += 1;
            }
        }
        next.buckets = rebalance(&self.buckets, self.active(), next.active());
        next
    }
}

fn rebalance(
    prev: &[MemberIndex; BUCKETS],
    prev_active: &[MemberIndex],
    active: &[MemberIndex],
) -> [MemberIndex; BUCKETS] {
    let mut buckets = *prev;
    if active.is_empty() {
        return buckets;
    }
    if prev_active.is_empty() {
        for (b, slot) in buckets.iter_mut().enumerate() {
            *slot = active[b % active.len()];
        }
        return buckets;
    }
    let mut is_active = [false; MAX_MEMBERS];
    for &m in active {
        is_active[usize::from(m)] = true;
    }
    let mut count = [0usize; MAX_MEMBERS];
    for &m in buckets.iter() {
        if is_active[usize::from(m)] {
            count[usize::from(m)] += 1;
        }
    }
    // Buckets of members that left go, one by one, to the member with the fewest.
    for slot in buckets.iter_mut() {
        if !is_active[usize::from(*slot)] {
            let Some(&to) = active.iter().min_by_key(|&&m| count[usize::from(m)]) else {
                break;
            };
            *slot = to;
            count[usize::from(to)] += 1;
        }
    }
    // Members that joined take buckets, one at a time, from the member with the most, until
    // that member has at most one more than the emptiest joiner; nothing else moves.
    let joiners = || active.iter().copied().filter(|m| !prev_active.contains(m));
    while let Some(joiner) = joiners().min_by_key(|&m| count[usize::from(m)]) {
        let Some(&donor) = active
            .iter()
            .filter(|&&m| m != joiner)
            .max_by_key(|&&m| count[usize::from(m)])
        else {
            break;
        };
        if count[usize::from(donor)] <= count[usize::from(joiner)] + 1 {
            break;
        }
        let Some(slot) = buckets.iter_mut().rev().find(|m| **m == donor) else {
            break;
        };
        *slot = joiner;
        count[usize::from(donor)] -= 1;
        count[usize::from(joiner)] += 1;
    }
    buckets
}

/// A worker's position in round-robin transmission; lives across batches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundRobinCursor {
    position: usize,
    sent: u32,
}

/// Decides the egress of every frame in `frames`, writing `out[i]` for `frames[i]`.
///
/// Branches on the policy once per batch. Frames may be of any length, malformed included.
///
/// # Panics
/// If `out` is shorter than `frames`.
pub fn distribute(
    table: &DistributionTable,
    rr: &mut RoundRobinCursor,
    frames: &[&[u8]],
    out: &mut [Egress],
) {
    distribute_counted(table, rr, frames, out, |_| {});
}

/// [`distribute`], calling `hit(bucket)` for every frame the hash policy places (the
/// workers count the load of each bucket with it; inlined, so a no-op costs nothing).
///
/// # Panics
/// If `out` is shorter than `frames`.
#[inline(always)]
pub fn distribute_counted(
    table: &DistributionTable,
    rr: &mut RoundRobinCursor,
    frames: &[&[u8]],
    out: &mut [Egress],
    mut hit: impl FnMut(usize),
) {
    let out = &mut out[..frames.len()];
    let active = table.active();
    #[cfg(feature = "testing")]
    if let TxPolicy::Fixed(member) = table.policy {
        out.fill(Egress::Port(member));
        return;
    }
    if active.is_empty() {
        out.fill(Egress::Drop);
        return;
    }
    match table.policy {
        TxPolicy::None => out.fill(Egress::Drop),
        TxPolicy::Failover => out.fill(Egress::Port(active[0])),
        TxPolicy::Broadcast => out.fill(Egress::AllActive),
        #[cfg(feature = "testing")]
        TxPolicy::Fixed(member) => out.fill(Egress::Port(member)),
        TxPolicy::Hash { layers } => {
            // Touch every frame's headers first. Frames arrive cold (the kernel wrote them on
            // another core); these loads are independent, so the CPU overlaps their cache
            // misses, where hashing frame by frame would wait for each miss in turn.
            let mut touched = 0u8;
            for frame in frames {
                touched ^= frame.get(12).copied().unwrap_or(0);
            }
            std::hint::black_box(touched);
            for (frame, egress) in frames.iter().zip(out.iter_mut()) {
                let bucket = hash_frame(frame, layers, table.seed) as usize & (BUCKETS - 1);
                *egress = Egress::Port(table.buckets[bucket]);
                hit(bucket);
            }
        }
        TxPolicy::RoundRobin { limit } => {
            let limit = limit.max(1);
            for egress in out.iter_mut() {
                if rr.sent >= limit {
                    rr.sent = 0;
                    rr.position = rr.position.wrapping_add(1);
                }
                *egress = Egress::Port(active[rr.position % active.len()]);
                rr.sent += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A UDP frame of flow `flow`, padded to the minimum frame size.
    fn udp(flow: u16) -> Vec<u8> {
        let mut f = crate::flow::tests::udp4([10, 0, 0, 1], [10, 0, 1, 1], flow, 9);
        f.resize(60, 0);
        f
    }

    fn run(
        table: &DistributionTable,
        rr: &mut RoundRobinCursor,
        frames: &[Vec<u8>],
    ) -> Vec<Egress> {
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let mut out = vec![Egress::Drop; refs.len()];
        distribute(table, rr, &refs, &mut out);
        out
    }

    /// The member each of `flows` UDP flows (source ports 1..) leaves on.
    fn members_of_flows(table: &DistributionTable, flows: u16) -> Vec<Egress> {
        let frames: Vec<Vec<u8>> = (1..=flows).map(udp).collect();
        run(table, &mut RoundRobinCursor::default(), &frames)
    }

    #[test]
    fn another_hash_seed_moves_about_n_minus_one_in_n_flows_and_the_same_none() {
        let hash = TxPolicy::Hash {
            layers: HashLayers::DEFAULT,
        };
        for n in 2..=4u8 {
            let active: Vec<MemberIndex> = (0..n).collect();
            let before = DistributionTable::new(hash, flow_seed(0)).with_active(&active);
            let flows = 4096;
            let placed = members_of_flows(&before, flows);
            let same = before.with_seed(flow_seed(0));
            assert_eq!(
                members_of_flows(&same, flows),
                placed,
                "{n} members, the same seed"
            );
            for other in [1, 7, 0xdead_beef] {
                let after = before.with_seed(flow_seed(other));
                let moved = members_of_flows(&after, flows)
                    .iter()
                    .zip(&placed)
                    .filter(|(a, b)| a != b)
                    .count();
                let share = moved as f64 / f64::from(flows);
                let expect = f64::from(n - 1) / f64::from(n);
                assert!(
                    (share - expect).abs() < 0.05,
                    "{n} members, seed {other}: {share:.3} of flows moved, expected about {expect:.3}"
                );
                assert!(
                    (before.moved_share() - expect).abs() < 0.01,
                    "{}",
                    before.moved_share()
                );
            }
        }
    }

    #[test]
    fn the_default_seed_is_fixed_and_seeds_differ() {
        assert_eq!(flow_seed(0), flow_seed(0));
        let seeds: std::collections::BTreeSet<u64> = (0..1000).map(flow_seed).collect();
        assert_eq!(seeds.len(), 1000);
        assert_eq!(
            DistributionTable::new(TxPolicy::Failover, 0).moved_share(),
            0.0,
            "no active member, nothing moves"
        );
    }

    fn counts(table: &DistributionTable) -> [usize; MAX_MEMBERS] {
        let mut c = [0; MAX_MEMBERS];
        for &m in table.buckets() {
            c[usize::from(m)] += 1;
        }
        c
    }

    #[test]
    fn failover_uses_first_active_and_returns_to_master() {
        let t = DistributionTable::new(TxPolicy::Failover, 0).with_active(&[0, 1, 2]);
        let frames = vec![udp(1), udp(2)];
        let mut rr = RoundRobinCursor::default();
        assert_eq!(run(&t, &mut rr, &frames), [Egress::Port(0); 2]);
        let t = t.with_active(&[1, 2]);
        assert_eq!(run(&t, &mut rr, &frames), [Egress::Port(1); 2]);
        let t = t.with_active(&[2, 1, 0]);
        assert_eq!(t.active(), &[0, 1, 2]);
        assert_eq!(run(&t, &mut rr, &frames), [Egress::Port(0); 2]);
    }

    #[test]
    fn no_active_member_drops_and_none_always_drops() {
        let frames = vec![udp(1)];
        let mut rr = RoundRobinCursor::default();
        for policy in [
            TxPolicy::Failover,
            TxPolicy::Broadcast,
            TxPolicy::RoundRobin { limit: 1 },
        ] {
            let t = DistributionTable::new(policy, 0);
            assert_eq!(run(&t, &mut rr, &frames), [Egress::Drop]);
        }
        let t = DistributionTable::new(TxPolicy::None, 0).with_active(&[0, 1]);
        assert_eq!(run(&t, &mut rr, &frames), [Egress::Drop]);
    }

    #[test]
    fn a_moved_bucket_stays_moved_while_its_member_stays() {
        let t = DistributionTable::new(TxPolicy::Failover, 0).with_active(&[0, 1, 2]);
        let b = (0..BUCKETS)
            .find(|&b| t.buckets()[b] == 0)
            .expect("a bucket of 0");
        let moved = t.with_bucket(b, 2);
        assert_eq!(moved.buckets()[b], 2);
        assert_eq!(moved.generation(), t.generation() + 1);
        let same = (0..BUCKETS)
            .filter(|&x| moved.buckets()[x] == t.buckets()[x])
            .count();
        assert_eq!(same, BUCKETS - 1, "only that bucket");
        assert_eq!(t.with_bucket(b, 7), t, "not to a member that is not active");
        assert_eq!(t.with_bucket(BUCKETS, 1), t);
        // Member 1 leaves: the moved bucket keeps member 2.
        assert_eq!(moved.with_active(&[0, 2]).buckets()[b], 2);
    }

    #[test]
    fn counted_distribution_reports_each_hashed_frames_bucket() {
        let t = DistributionTable::new(
            TxPolicy::Hash {
                layers: HashLayers::DEFAULT,
            },
            7,
        )
        .with_active(&[0, 1, 2]);
        let frames: Vec<Vec<u8>> = (0..64).map(udp).collect();
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let mut out = vec![Egress::Drop; refs.len()];
        let mut hits = [0u32; BUCKETS];
        distribute_counted(&t, &mut RoundRobinCursor::default(), &refs, &mut out, |b| {
            hits[b] += 1
        });
        assert_eq!(hits.iter().sum::<u32>(), 64, "one bucket per frame");
        for (frame, egress) in refs.iter().zip(&out) {
            let b = hash_frame(frame, HashLayers::DEFAULT, 7) as usize & (BUCKETS - 1);
            assert!(hits[b] > 0);
            assert_eq!(*egress, Egress::Port(t.buckets()[b]), "the bucket's member");
        }
        let rr = DistributionTable::new(TxPolicy::RoundRobin { limit: 1 }, 0).with_active(&[0, 1]);
        let mut none = 0;
        distribute_counted(
            &rr,
            &mut RoundRobinCursor::default(),
            &refs,
            &mut out,
            |_| none += 1,
        );
        assert_eq!(none, 0, "only the hash policy has buckets");
    }

    #[test]
    fn broadcast_and_fixed() {
        let t = DistributionTable::new(TxPolicy::Broadcast, 0).with_active(&[0, 3]);
        let mut rr = RoundRobinCursor::default();
        assert_eq!(run(&t, &mut rr, &[udp(1)]), [Egress::AllActive]);
        #[cfg(feature = "testing")]
        {
            let t = DistributionTable::new(TxPolicy::Fixed(2), 0);
            assert_eq!(run(&t, &mut rr, &[udp(1)]), [Egress::Port(2)]);
        }
    }

    #[test]
    fn roundrobin_follows_rr_limit_across_batches() {
        let t =
            DistributionTable::new(TxPolicy::RoundRobin { limit: 2 }, 0).with_active(&[0, 1, 2, 3]);
        let mut rr = RoundRobinCursor::default();
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.extend(run(&t, &mut rr, &[udp(1), udp(1), udp(1)]));
        }
        let members: Vec<_> = seen
            .iter()
            .map(|e| match e {
                Egress::Port(m) => *m,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(members, [0, 0, 1, 1, 2, 2, 3, 3, 0]);
    }

    #[test]
    fn hash_spreads_flows_over_every_member() {
        let t = DistributionTable::new(
            TxPolicy::Hash {
                layers: HashLayers::DEFAULT,
            },
            42,
        )
        .with_active(&[0, 1, 2, 3]);
        let frames: Vec<_> = (0..1000).map(udp).collect();
        let mut per = [0usize; 4];
        for e in run(&t, &mut RoundRobinCursor::default(), &frames) {
            let Egress::Port(m) = e else { panic!("{e:?}") };
            per[usize::from(m)] += 1;
        }
        for (m, n) in per.iter().enumerate() {
            assert!(*n > 150, "member {m} got only {n} of 1000 flows: {per:?}");
        }
    }

    fn member_set() -> impl Strategy<Value = Vec<MemberIndex>> {
        proptest::collection::btree_set(0u8..MAX_MEMBERS as u8, 1..12)
            .prop_map(|s| s.into_iter().collect())
    }

    proptest! {
        #[test]
        fn a_flow_always_uses_one_member(active in member_set(), flow in any::<u16>(), seed in any::<u64>()) {
            let t = DistributionTable::new(TxPolicy::Hash { layers: HashLayers::DEFAULT }, seed).with_active(&active);
            let mut a = udp(flow);
            let mut b = udp(flow);
            // Payload bytes differ; headers do not.
            a[50] = 1;
            b[50] = 2;
            let out = run(&t, &mut RoundRobinCursor::default(), &[a, b]);
            prop_assert_eq!(out[0], out[1]);
            let Egress::Port(m) = out[0] else { panic!() };
            prop_assert!(active.contains(&m));
        }

        #[test]
        fn a_member_leaving_moves_only_its_flows(active in member_set(), pick in any::<prop::sample::Index>()) {
            let t = DistributionTable::new(TxPolicy::Hash { layers: HashLayers::DEFAULT }, 1).with_active(&active);
            let leaving = active[pick.index(active.len())];
            let rest: Vec<_> = active.iter().copied().filter(|&m| m != leaving).collect();
            let t2 = t.with_active(&rest);
            for b in 0..BUCKETS {
                if t.buckets()[b] != leaving {
                    prop_assert_eq!(t2.buckets()[b], t.buckets()[b], "bucket {} moved", b);
                } else if !rest.is_empty() {
                    prop_assert!(rest.contains(&t2.buckets()[b]));
                }
            }
        }

        #[test]
        fn a_member_joining_takes_only_its_share(active in member_set(), joiner in 0u8..MAX_MEMBERS as u8) {
            prop_assume!(!active.contains(&joiner));
            let t = DistributionTable::new(TxPolicy::Hash { layers: HashLayers::DEFAULT }, 1).with_active(&active);
            let mut more = active.clone();
            more.push(joiner);
            let t2 = t.with_active(&more);
            for b in 0..BUCKETS {
                if t2.buckets()[b] != t.buckets()[b] {
                    prop_assert_eq!(t2.buckets()[b], joiner, "bucket {} moved to an old member", b);
                }
            }
            let share = counts(&t2)[usize::from(joiner)];
            prop_assert!(share == BUCKETS / more.len() || share == BUCKETS.div_ceil(more.len()), "share {}", share);
        }

        #[test]
        fn buckets_stay_balanced_through_any_changes(sets in proptest::collection::vec(member_set(), 1..20)) {
            let mut t = DistributionTable::new(TxPolicy::Hash { layers: HashLayers::DEFAULT }, 1);
            for set in &sets {
                t = t.with_active(set);
                let c = counts(&t);
                let per: Vec<usize> = set.iter().map(|&m| c[usize::from(m)]).collect();
                let (lo, hi) = (per.iter().min().copied().unwrap_or(0), per.iter().max().copied().unwrap_or(0));
                prop_assert!(hi - lo <= 1, "unbalanced {:?} for {:?}", per, set);
                prop_assert_eq!(per.iter().sum::<usize>(), BUCKETS);
            }
        }
    }
}
