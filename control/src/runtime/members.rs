//! The lagg's rules as a sans-IO state machine: which members may carry traffic, which collect
//! and which distribute, which port is failover's active one, and when peers are told.
//!
//! Inputs are what the kernel and the monitors report, each with the time it happened: a
//! member's link (admin up and carrier) with updelay/downdelay applied here, an MTU below the
//! lagg's, micro-BFD's and the probe monitor's verdicts, LACP's mux decisions, members joining
//! and leaving. Outputs are polled: the decisions ([`MemberSet::decide`]), the active members
//! in configuration order ([`MemberSet::active`]), the members whose peers are due a
//! notification ([`MemberSet::due_notifications`]), events for the log and the timeline
//! ([`MemberSet::poll_event`]), and the next deadline ([`MemberSet::poll_timeout`]). One clock,
//! [`Time`], drives every timer; nothing here touches a socket, a map or the kernel, so every
//! rule is tested on a virtual clock (see the tests below and the simulation in
//! `members::sim`).
//!
//! The runtime around it (`lagg`) feeds it, publishes the distribution table from
//! [`MemberSet::active`], writes the XDP collecting flags from [`MemberSet::decide`], and sends
//! the notifications.

use std::collections::VecDeque;
use std::time::Duration;

use xlagg_dataplane::distribution::MemberIndex;

use crate::config::LaggProto;
use crate::proto::time::Time;

/// The settings the rules depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// The protocol.
    pub proto: LaggProto,
    /// Failover: collect on every usable member, not only the active one.
    pub rx_all: bool,
    /// A link coming up counts after this long.
    pub updelay: Duration,
    /// A link going down counts after this long.
    pub downdelay: Duration,
    /// Notifications per active-port change or returning port.
    pub notify_count: u32,
    /// Between two notifications of one member.
    pub notify_interval: Duration,
}

/// What the set knows about one member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Interface name (for events).
    pub name: String,
    /// The kernel's link (admin up and carrier) as last reported.
    pub link: bool,
    /// The link after updelay/downdelay.
    pub up: bool,
    /// A change waiting out its delay: (new state, when it takes effect).
    pub pending: Option<(bool, Time)>,
    /// Its MTU is at least the lagg's.
    pub mtu_ok: bool,
    /// Micro-BFD lets it carry traffic (true without BFD).
    pub bfd_ok: bool,
    /// The probe monitor lets it carry traffic (true without one).
    pub probe_ok: bool,
    /// LACP's mux verdict: (collecting, distributing).
    pub lacp: (bool, bool),
    /// Left the lagg; its slot waits for a member to join.
    pub retired: bool,
    /// Frames received on it reach the lagg (as last decided).
    pub collecting: bool,
    /// The distribution sends on it (as last decided).
    pub distributing: bool,
}

impl Member {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            link: false,
            up: false,
            pending: None,
            mtu_ok: true,
            bfd_ok: true,
            probe_ok: true,
            lacp: (false, false),
            retired: false,
            collecting: false,
            distributing: false,
        }
    }

    /// Link up after its delay, every monitor content, MTU large enough, not retired.
    pub fn usable(&self) -> bool {
        self.up && self.bfd_ok && self.probe_ok && self.mtu_ok && !self.retired
    }

    /// Why the distribution does not send on this member under `proto`, in words, the
    /// first reason in the order the rules apply them; `None` while it may (usable, and for
    /// lacp distributing).
    pub fn why_idle(&self, proto: LaggProto) -> Option<String> {
        let why = if self.retired {
            "it left the lagg"
        } else if proto == LaggProto::None {
            "laggproto none sends on no member"
        } else if !self.up {
            match self.pending {
                Some((true, _)) => "its link is up but waiting out updelay",
                _ => "its link is down (administratively down or no carrier)",
            }
        } else if !self.mtu_ok {
            "its MTU is below the lagg's"
        } else if !self.bfd_ok {
            "its micro-BFD session is not up"
        } else if !self.probe_ok {
            "its ARP/NS probes go unanswered"
        } else if proto == LaggProto::Lacp && !self.lacp.1 {
            "LACP has not put it in distributing"
        } else {
            return None;
        };
        Some(why.to_string())
    }
}

/// A monitor's verdict on a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The MTU is at least the lagg's.
    Mtu,
    /// Micro-BFD's session is up.
    Bfd,
    /// The probe monitor hears replies.
    Probe,
}

/// Something that happened, for the log and the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberEvent {
    /// The effective link changed.
    Link {
        /// Member.
        member: usize,
        /// Up or down.
        up: bool,
        /// It had waited out its delay.
        delayed: bool,
    },
    /// A link change now waits out updelay or downdelay.
    Waiting {
        /// Member.
        member: usize,
        /// The state it will take.
        up: bool,
        /// How long.
        delay: Duration,
    },
    /// A pending change was taken back before its delay ran out.
    Withdrawn {
        /// Member.
        member: usize,
    },
    /// Failover's active port changed.
    Failover {
        /// The port before.
        from: Option<usize>,
        /// The port now.
        to: Option<usize>,
    },
}

/// A notification still to send for a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Notification {
    member: usize,
    left: u32,
    due: Time,
}

/// The members of one lagg and the rules over them.
#[derive(Clone, Debug)]
pub struct MemberSet {
    rules: Rules,
    members: Vec<Member>,
    notifications: Vec<Notification>,
    events: VecDeque<MemberEvent>,
    /// Failover's active port as last decided.
    active_port: Option<usize>,
    /// Effective link changes since start.
    pub flaps: u64,
    /// Changes of failover's active port since start.
    pub failovers: u64,
}

impl MemberSet {
    /// Members named `names`, in configuration order, every link down.
    pub fn new(rules: Rules, names: &[String]) -> Self {
        Self {
            rules,
            members: names.iter().map(|n| Member::new(n)).collect(),
            notifications: Vec::new(),
            events: VecDeque::new(),
            active_port: None,
            flaps: 0,
            failovers: 0,
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> Rules {
        self.rules
    }

    /// Replaces the rules that may change in place (delays, notifications).
    pub fn set_rules(&mut self, rules: Rules) {
        self.rules = rules;
    }

    /// Member `i`.
    pub fn member(&self, i: usize) -> &Member {
        &self.members[i]
    }

    /// Every member slot, in order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Member `i` may carry traffic.
    pub fn usable(&self, i: usize) -> bool {
        self.members.get(i).is_some_and(Member::usable)
    }

    /// The kernel reports member `i`'s link; returns whether its effective link changed now
    /// (otherwise it waits out updelay/downdelay, or nothing changed).
    pub fn handle_link(&mut self, now: Time, i: usize, raw: bool) -> bool {
        let (up_delay, down_delay) = (self.rules.updelay, self.rules.downdelay);
        let Some(m) = self.members.get_mut(i).filter(|m| !m.retired) else {
            return false;
        };
        m.link = raw;
        if raw == m.up {
            if m.pending.take().is_some() {
                self.events.push_back(MemberEvent::Withdrawn { member: i });
            }
            return false;
        }
        let delay = if raw { up_delay } else { down_delay };
        if delay.is_zero() {
            m.up = raw;
            m.pending = None;
            self.flaps += 1;
            self.events.push_back(MemberEvent::Link {
                member: i,
                up: raw,
                delayed: false,
            });
            return true;
        }
        if m.pending.map(|(v, _)| v) != Some(raw) {
            m.pending = Some((raw, Time(now.0 + delay.as_nanos() as u64)));
            self.events.push_back(MemberEvent::Waiting {
                member: i,
                up: raw,
                delay,
            });
        }
        false
    }

    /// A monitor's verdict on member `i`; returns whether it changed.
    pub fn set_verdict(&mut self, i: usize, verdict: Verdict, ok: bool) -> bool {
        let Some(m) = self.members.get_mut(i) else {
            return false;
        };
        let slot = match verdict {
            Verdict::Mtu => &mut m.mtu_ok,
            Verdict::Bfd => &mut m.bfd_ok,
            Verdict::Probe => &mut m.probe_ok,
        };
        std::mem::replace(slot, ok) != ok
    }

    /// LACP's mux verdict on member `i`.
    pub fn set_lacp(&mut self, i: usize, collecting: bool, distributing: bool) {
        if let Some(m) = self.members.get_mut(i) {
            m.lacp = (collecting, distributing);
        }
    }

    /// Time passed: delayed link changes whose time came take effect. Returns those members.
    pub fn handle_timeout(&mut self, now: Time) -> Vec<usize> {
        let mut changed = Vec::new();
        for (i, m) in self.members.iter_mut().enumerate() {
            if let Some((v, t)) = m.pending {
                if now >= t {
                    m.up = v;
                    m.pending = None;
                    changed.push(i);
                    self.flaps += 1;
                    self.events.push_back(MemberEvent::Link {
                        member: i,
                        up: v,
                        delayed: true,
                    });
                }
            }
        }
        changed
    }

    /// Which members collect and which distribute, by the protocol's rules.
    pub fn decide(&self) -> Vec<(bool, bool)> {
        let first_up = self.members.iter().position(Member::usable);
        self.members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                if m.retired {
                    return (false, false);
                }
                match self.rules.proto {
                    LaggProto::None => (false, false),
                    LaggProto::Lacp => m.lacp,
                    LaggProto::Failover if !self.rules.rx_all => {
                        (m.usable() && first_up == Some(i), m.usable())
                    }
                    _ => (m.usable(), m.usable()),
                }
            })
            .collect()
    }

    /// The distributing members (the table's active set), in configuration order.
    pub fn active(&self) -> Vec<MemberIndex> {
        self.decide()
            .iter()
            .enumerate()
            .filter(|(_, d)| d.1)
            .map(|(i, _)| i as MemberIndex)
            .collect()
    }

    /// Applies [`decide`](Self::decide) after members changed (`changed`): records the
    /// decisions, notes a failover, and schedules peer notifications (failover: the new
    /// active port; other protocols: the changed members that became usable). Returns the
    /// decisions.
    pub fn settle(&mut self, now: Time, changed: &[usize]) -> Vec<(bool, bool)> {
        let decisions = self.decide();
        for (m, d) in self.members.iter_mut().zip(&decisions) {
            m.collecting = d.0;
            m.distributing = d.1;
        }
        let active = decisions.iter().position(|d| d.1);
        if self.rules.proto == LaggProto::Failover {
            if active != self.active_port {
                self.failovers += 1;
                self.events.push_back(MemberEvent::Failover {
                    from: self.active_port,
                    to: active,
                });
                self.active_port = active;
                if let Some(a) = active {
                    self.schedule(a, now);
                }
            }
        } else {
            let returning: Vec<usize> = changed
                .iter()
                .copied()
                .filter(|&i| self.usable(i))
                .collect();
            for i in returning {
                self.schedule(i, now);
            }
        }
        decisions
    }

    /// Forgets the failover change at start (the first active port is not a failover).
    pub fn started(&mut self) {
        self.flaps = 0;
        self.failovers = 0;
    }

    fn schedule(&mut self, member: usize, now: Time) {
        if self.rules.notify_count == 0 {
            return;
        }
        self.notifications.retain(|n| n.member != member);
        self.notifications.push(Notification {
            member,
            left: self.rules.notify_count,
            due: now,
        });
    }

    /// The members whose peers are to be told now; each is rescheduled for its next
    /// notification, the last one dropped.
    pub fn due_notifications(&mut self, now: Time) -> Vec<usize> {
        let interval = self.rules.notify_interval.as_nanos() as u64;
        let mut due = Vec::new();
        for n in &mut self.notifications {
            if n.due <= now {
                due.push(n.member);
                n.left = n.left.saturating_sub(1);
                n.due = Time(now.0 + interval);
            }
        }
        self.notifications.retain(|n| n.left > 0);
        due
    }

    /// The next time [`handle_timeout`](Self::handle_timeout) or
    /// [`due_notifications`](Self::due_notifications) has something to do.
    pub fn poll_timeout(&self) -> Option<Time> {
        let pending = self
            .members
            .iter()
            .filter_map(|m| m.pending.map(|(_, t)| t));
        pending
            .chain(self.notifications.iter().map(|n| n.due))
            .min()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<MemberEvent> {
        self.events.pop_front()
    }

    /// Member slot `slot` is left: it carries nothing and is notified no more.
    pub fn leave(&mut self, slot: usize) {
        if let Some(m) = self.members.get_mut(slot) {
            *m = Member {
                retired: true,
                ..Member::new(&m.name)
            };
        }
        self.notifications.retain(|n| n.member != slot);
    }

    /// A member named `name` joins into `slot` (a departed member's, or the next one), its
    /// link down until reported.
    pub fn join(&mut self, slot: usize, name: &str) {
        let m = Member::new(name);
        if slot < self.members.len() {
            self.members[slot] = m;
        } else {
            self.members.push(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn rules(proto: LaggProto) -> Rules {
        Rules {
            proto,
            rx_all: false,
            updelay: Duration::ZERO,
            downdelay: Duration::ZERO,
            notify_count: 1,
            notify_interval: Duration::from_millis(100),
        }
    }

    fn set(proto: LaggProto, n: usize) -> MemberSet {
        let names: Vec<String> = (0..n).map(|i| format!("em{i}")).collect();
        let mut s = MemberSet::new(rules(proto), &names);
        for i in 0..n {
            s.handle_link(Time(0), i, true);
        }
        s.settle(Time(0), &(0..n).collect::<Vec<_>>());
        s.started();
        while s.poll_event().is_some() {}
        let _ = s.due_notifications(Time(0));
        s
    }

    #[test]
    fn failover_sends_on_the_first_usable_port_and_takes_the_master_back() {
        let mut s = set(LaggProto::Failover, 3);
        assert_eq!(s.active(), [0, 1, 2], "every usable port is in the table");
        assert_eq!(s.decide()[0], (true, true));
        assert_eq!(s.decide()[1], (false, true), "backups do not collect");
        assert!(s.handle_link(Time(MS), 0, false));
        s.settle(Time(MS), &[0]);
        assert_eq!(s.active(), [1, 2]);
        assert_eq!(
            s.poll_event(),
            Some(MemberEvent::Link {
                member: 0,
                up: false,
                delayed: false
            })
        );
        assert_eq!(
            s.poll_event(),
            Some(MemberEvent::Failover {
                from: Some(0),
                to: Some(1)
            })
        );
        assert_eq!(
            s.due_notifications(Time(MS)),
            [1],
            "the new active port announces"
        );
        s.handle_link(Time(2 * MS), 0, true);
        s.settle(Time(2 * MS), &[0]);
        assert_eq!((s.failovers, s.flaps), (2, 2), "counted since start");
        assert_eq!(
            s.due_notifications(Time(2 * MS)),
            [0],
            "and the master on its return"
        );
    }

    #[test]
    fn an_idle_member_says_why_in_the_order_the_rules_apply() {
        let mut rules = rules(LaggProto::Lacp);
        rules.updelay = Duration::from_millis(200);
        let names: Vec<String> = (0..2).map(|i| format!("em{i}")).collect();
        let mut s = MemberSet::new(rules, &names);
        let why = |s: &MemberSet, i: usize| s.member(i).why_idle(LaggProto::Lacp);
        assert_eq!(
            why(&s, 0).as_deref(),
            Some("its link is down (administratively down or no carrier)")
        );
        s.handle_link(Time(0), 0, true);
        assert_eq!(
            why(&s, 0).as_deref(),
            Some("its link is up but waiting out updelay")
        );
        s.handle_link(Time(0), 1, true);
        let _ = s.handle_timeout(Time(300 * MS));
        assert_eq!(
            why(&s, 0).as_deref(),
            Some("LACP has not put it in distributing")
        );
        s.set_verdict(0, Verdict::Bfd, false);
        assert_eq!(
            why(&s, 0).as_deref(),
            Some("its micro-BFD session is not up")
        );
        s.set_lacp(1, true, true);
        assert_eq!(why(&s, 1), None);
        assert_eq!(
            s.member(1).why_idle(LaggProto::None).as_deref(),
            Some("laggproto none sends on no member")
        );
        s.leave(1);
        assert_eq!(why(&s, 1).as_deref(), Some("it left the lagg"));
    }

    #[test]
    fn rx_all_collects_on_every_usable_port() {
        let names: Vec<String> = (0..2).map(|i| format!("em{i}")).collect();
        let mut s = MemberSet::new(
            Rules {
                rx_all: true,
                ..rules(LaggProto::Failover)
            },
            &names,
        );
        s.handle_link(Time(0), 0, true);
        s.handle_link(Time(0), 1, true);
        assert_eq!(s.decide(), [(true, true), (true, true)]);
    }

    #[test]
    fn updelay_and_downdelay_hold_a_change_and_a_bounce_withdraws_it() {
        let names = vec!["em0".to_string()];
        let mut s = MemberSet::new(
            Rules {
                updelay: Duration::from_millis(1500),
                downdelay: Duration::from_millis(200),
                ..rules(LaggProto::LoadBalance)
            },
            &names,
        );
        assert!(!s.handle_link(Time(0), 0, true));
        assert_eq!(s.poll_timeout(), Some(Time(1500 * MS)));
        assert!(s.handle_timeout(Time(1499 * MS)).is_empty());
        assert_eq!(s.handle_timeout(Time(1500 * MS)), [0]);
        assert!(s.usable(0));
        // Down for 100 ms: shorter than the downdelay, nothing happens.
        assert!(!s.handle_link(Time(2000 * MS), 0, false));
        assert!(!s.handle_link(Time(2100 * MS), 0, true));
        assert!(s.handle_timeout(Time(3000 * MS)).is_empty());
        assert!(s.usable(0));
        let events: Vec<MemberEvent> = std::iter::from_fn(|| s.poll_event()).collect();
        assert!(
            events.contains(&MemberEvent::Withdrawn { member: 0 }),
            "{events:?}"
        );
    }

    #[test]
    fn a_monitor_or_the_mtu_takes_a_member_out_though_its_link_is_up() {
        let mut s = set(LaggProto::LoadBalance, 3);
        for v in [Verdict::Bfd, Verdict::Probe, Verdict::Mtu] {
            assert!(s.set_verdict(1, v, false));
            assert_eq!(s.active(), [0, 2], "{v:?}");
            assert!(!s.set_verdict(1, v, false), "no change twice");
            assert!(s.set_verdict(1, v, true));
            assert_eq!(s.active(), [0, 1, 2]);
        }
    }

    #[test]
    fn lacp_follows_the_mux_and_none_carries_nothing() {
        let mut s = set(LaggProto::Lacp, 2);
        assert!(s.active().is_empty(), "nothing before the mux decides");
        s.set_lacp(0, true, false);
        s.set_lacp(1, true, true);
        assert_eq!(s.decide(), [(true, false), (true, true)]);
        let s = set(LaggProto::None, 2);
        assert_eq!(s.decide(), [(false, false), (false, false)]);
    }

    #[test]
    fn notifications_repeat_at_their_interval_and_stop() {
        let names = vec!["em0".to_string(), "em1".to_string()];
        let mut s = MemberSet::new(
            Rules {
                notify_count: 3,
                ..rules(LaggProto::LoadBalance)
            },
            &names,
        );
        s.handle_link(Time(0), 1, true);
        s.settle(Time(0), &[1]);
        assert_eq!(s.due_notifications(Time(0)), [1]);
        assert!(s.due_notifications(Time(50 * MS)).is_empty());
        assert_eq!(s.poll_timeout(), Some(Time(100 * MS)));
        assert_eq!(s.due_notifications(Time(100 * MS)), [1]);
        assert_eq!(s.due_notifications(Time(200 * MS)), [1]);
        assert!(
            s.due_notifications(Time(300 * MS)).is_empty(),
            "three in all"
        );
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn a_member_that_leaves_carries_nothing_and_its_slot_takes_a_new_one() {
        let mut s = set(LaggProto::LoadBalance, 3);
        s.leave(1);
        assert_eq!(s.active(), [0, 2]);
        assert!(
            !s.handle_link(Time(MS), 1, true),
            "a departed slot ignores links"
        );
        s.join(1, "em7");
        assert_eq!(s.member(1).name, "em7");
        assert!(s.handle_link(Time(2 * MS), 1, true));
        assert_eq!(s.active(), [0, 1, 2]);
    }
}

/// The lagg on a virtual clock under random events: the invariants every decision keeps.
#[cfg(test)]
mod sim {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Input {
        Wait(u16),
        Link(usize, bool),
        Verdict(usize, u8, bool),
        Lacp(usize, bool, bool),
        Leave(usize),
        Join(usize),
    }

    fn input() -> impl Strategy<Value = Input> {
        prop_oneof![
            (1u16..3000).prop_map(Input::Wait),
            (0usize..4, any::<bool>()).prop_map(|(m, u)| Input::Link(m, u)),
            (0usize..4, 0u8..3, any::<bool>()).prop_map(|(m, v, ok)| Input::Verdict(m, v, ok)),
            (0usize..4, any::<bool>(), any::<bool>()).prop_map(|(m, c, d)| Input::Lacp(m, c, d)),
            (0usize..4).prop_map(Input::Leave),
            (0usize..4).prop_map(Input::Join),
        ]
    }

    fn proto() -> impl Strategy<Value = LaggProto> {
        prop_oneof![
            Just(LaggProto::Failover),
            Just(LaggProto::LoadBalance),
            Just(LaggProto::Lacp),
            Just(LaggProto::RoundRobin),
            Just(LaggProto::Broadcast),
            Just(LaggProto::None),
        ]
    }

    proptest! {
        #[test]
        fn decisions_keep_their_invariants(
            proto in proto(),
            updelay in 0u64..2000,
            downdelay in 0u64..2000,
            inputs in proptest::collection::vec(input(), 1..60),
        ) {
            let names: Vec<String> = (0..4).map(|i| format!("em{i}")).collect();
            let mut s = MemberSet::new(
                Rules {
                    proto,
                    rx_all: false,
                    updelay: Duration::from_millis(updelay),
                    downdelay: Duration::from_millis(downdelay),
                    notify_count: 2,
                    notify_interval: Duration::from_millis(100),
                },
                &names,
            );
            let mut now = Time(0);
            let mut table = xlagg_dataplane::distribution::DistributionTable::new(
                xlagg_dataplane::distribution::TxPolicy::Hash {
                    layers: xlagg_dataplane::flow::HashLayers::DEFAULT,
                },
                1,
            );
            for input in inputs {
                let mut changed = Vec::new();
                match input {
                    Input::Wait(ms) => {
                        now = Time(now.0 + u64::from(ms) * 1_000_000);
                        changed = s.handle_timeout(now);
                        let _ = s.due_notifications(now);
                    }
                    Input::Link(m, up) => {
                        if s.handle_link(now, m, up) {
                            changed.push(m);
                        }
                    }
                    Input::Verdict(m, v, ok) => {
                        let v = [Verdict::Mtu, Verdict::Bfd, Verdict::Probe][usize::from(v)];
                        if s.set_verdict(m, v, ok) {
                            changed.push(m);
                        }
                    }
                    Input::Lacp(m, c, d) => s.set_lacp(m, c, d),
                    Input::Leave(m) => s.leave(m),
                    Input::Join(m) => {
                        if s.member(m).retired {
                            s.join(m, &format!("em{m}"));
                        }
                    }
                }
                let decisions = s.settle(now, &changed);
                // Never distributing on a member that is down, failed by a monitor or gone;
                // under LACP, only where the mux said so.
                for (i, d) in decisions.iter().enumerate() {
                    let m = s.member(i);
                    if d.1 {
                        prop_assert!(proto != LaggProto::None);
                        if proto == LaggProto::Lacp {
                            prop_assert!(m.lacp.1 && !m.retired);
                        } else {
                            prop_assert!(m.usable(), "member {i} distributes while {m:?}");
                        }
                    }
                    if d.0 && proto != LaggProto::Lacp {
                        prop_assert!(m.usable());
                    }
                }
                // Failover sends on exactly the first usable port in configured order.
                if proto == LaggProto::Failover {
                    let first = (0..4).find(|&i| s.usable(i));
                    let sending = decisions.iter().position(|d| d.0);
                    prop_assert_eq!(sending, first);
                }
                // The table moves only the buckets of members that changed: a bucket whose
                // member stays keeps it, unless a joining member takes it.
                let active = s.active();
                let next = table.with_active(&active);
                if !table.active().is_empty() && !active.is_empty() {
                    let joined: Vec<MemberIndex> = active
                        .iter()
                        .copied()
                        .filter(|m| !table.active().contains(m))
                        .collect();
                    for (b, (&before, &after)) in table.buckets().iter().zip(next.buckets()).enumerate() {
                        if active.contains(&before) {
                            prop_assert!(
                                after == before || joined.contains(&after),
                                "bucket {} moved from {} to {} though {} stayed",
                                b, before, after, before
                            );
                        }
                    }
                }
                table = next;
            }
        }
    }
}
