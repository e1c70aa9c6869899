//! Two LACP ends joined by N links, stepped on a virtual clock: convergence, timeouts, flaps,
//! re-selection, loss, timer rates, passive ends; with the invariants checked at every step.

use std::time::Duration;

use super::pdu::{self, LacpState, SlowPdu};
use super::*;

/// A deterministic xorshift generator for loss patterns.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

struct Link {
    up: bool,
}

struct Sim {
    now: Time,
    ends: [Lacp; 2],
    links: Vec<Link>,
    /// Per end: stop delivering what this end sends (it went silent).
    mute: [bool; 2],
    /// Probability (per mille) that a frame is lost.
    loss_per_mille: u64,
    rng: Rng,
    /// Every LACPDU sent: (time, end, port).
    sent: Vec<(Time, usize, usize)>,
}

fn cfg(system: u8, active: bool, fast: bool) -> LacpConfig {
    LacpConfig {
        system_priority: 0x8000,
        system: [0x02, 0, 0, 0, 0, system],
        key: 7,
        active,
        fast_timeout: fast,
        strict: true,
        fallback: false,
        min_links: 1,
        mux: MuxMode::Coupled,
        selection: SelectionPolicy::Speed,
    }
}

fn ports(system: u8, n: usize) -> Vec<(String, PortConfig)> {
    (0..n)
        .map(|i| {
            (
                format!("e{system}p{i}"),
                PortConfig {
                    number: i as u16 + 1,
                    priority: 0x8000,
                    mac: [0x02, 0, 0, 0, system, i as u8],
                },
            )
        })
        .collect()
}

impl Sim {
    fn new(n: usize, a: LacpConfig, b: LacpConfig) -> Sim {
        let now = Time(1_000_000_000);
        let mut sim = Sim {
            now,
            ends: [
                Lacp::new(a, &ports(1, n), now),
                Lacp::new(b, &ports(2, n), now),
            ],
            links: (0..n).map(|_| Link { up: true }).collect(),
            mute: [false; 2],
            loss_per_mille: 0,
            rng: Rng(0x9e37_79b9_7f4a_7c15),
            sent: Vec::new(),
        };
        for i in 0..n {
            sim.ends[0].handle_link(now, i, true, 10_000);
            sim.ends[1].handle_link(now, i, true, 10_000);
        }
        sim.deliver();
        sim
    }

    /// Moves every queued frame across its link (or loses it).
    fn deliver(&mut self) {
        loop {
            let mut moved = false;
            for end in 0..2 {
                while let Some(t) = self.ends[end].poll_transmit() {
                    moved = true;
                    if let Ok(SlowPdu::Lacp(_)) = pdu::parse(&t.frame) {
                        self.sent.push((self.now, end, t.port));
                    }
                    let lost = self.mute[end]
                        || !self.links[t.port].up
                        || (self.loss_per_mille > 0
                            && self.rng.next() % 1000 < self.loss_per_mille);
                    if !lost {
                        self.ends[1 - end].handle_frame(self.now, t.port, &t.frame);
                    }
                }
                while self.ends[end].poll_event().is_some() {}
            }
            self.check_invariants();
            if !moved {
                break;
            }
        }
    }

    fn check_invariants(&self) {
        for (e, end) in self.ends.iter().enumerate() {
            for (i, s) in end.status().iter().enumerate() {
                if s.actor.state.has(LacpState::DISTRIBUTING) {
                    assert!(
                        s.partner.state.has(LacpState::SYNCHRONIZATION),
                        "end {e} port {i} distributes while its partner is not in sync at {:?}",
                        self.now
                    );
                }
            }
        }
    }

    /// Advances the clock to `until`, firing every deadline on the way.
    fn run_until(&mut self, until: Time) {
        let mut stuck = 0;
        loop {
            let next = self.ends.iter().filter_map(Lacp::poll_timeout).min();
            match next {
                Some(t) if t <= until => {
                    stuck = if t <= self.now { stuck + 1 } else { 0 };
                    assert!(
                        stuck < 100,
                        "a timer stays expired at {:?}: {:#?}",
                        self.now,
                        self.ends[0].ports
                    );
                    self.now = self.now.max(t);
                    for end in &mut self.ends {
                        end.handle_timeout(self.now);
                    }
                    self.deliver();
                }
                _ => break,
            }
        }
        self.now = until;
        for end in &mut self.ends {
            end.handle_timeout(self.now);
        }
        self.deliver();
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    fn distributing(&self, end: usize) -> Vec<bool> {
        (0..self.links.len())
            .map(|i| self.ends[end].is_distributing(i))
            .collect()
    }

    /// Time until every link distributes on both ends, stepping 10 ms at a time.
    fn converge_within(&mut self, limit: Duration) -> Duration {
        let start = self.now;
        while self.now.since(start) <= limit {
            if self.distributing(0).iter().all(|d| *d) && self.distributing(1).iter().all(|d| *d) {
                return self.now.since(start);
            }
            self.run_for(Duration::from_millis(10));
        }
        panic!(
            "no convergence within {limit:?}: A {:?} B {:?}\n{:#?}",
            self.distributing(0),
            self.distributing(1),
            self.ends[0].status()
        );
    }

    fn set_link(&mut self, i: usize, up: bool) {
        self.links[i].up = up;
        for end in &mut self.ends {
            end.handle_link(self.now, i, up, 10_000);
        }
        self.deliver();
    }

    /// Most LACPDUs sent by one port in any window of one Fast_Periodic_Time.
    fn max_tx_per_second(&self) -> usize {
        let mut worst = 0;
        for (i, &(t, end, port)) in self.sent.iter().enumerate() {
            let n = self.sent[i..]
                .iter()
                .filter(|&&(u, e, p)| e == end && p == port && u.since(t) < FAST_PERIODIC)
                .count();
            worst = worst.max(n);
        }
        worst
    }
}

mod convergence {
    use super::*;

    #[test]
    fn four_links_converge_in_about_aggregate_wait() {
        let mut sim = Sim::new(4, cfg(1, true, true), cfg(2, true, true));
        let took = sim.converge_within(Duration::from_secs(5));
        assert!(
            took >= AGGREGATE_WAIT,
            "not before aggregate_wait: {took:?}"
        );
        assert!(
            took <= AGGREGATE_WAIT + Duration::from_millis(100),
            "one exchange after: {took:?}"
        );
        let s = &sim.ends[0].status()[0];
        assert_eq!(s.partner.system, [0x02, 0, 0, 0, 0, 2]);
        assert_eq!(
            s.actor.state.to_string(),
            "<ACTIVITY,TIMEOUT,AGGREGATION,SYNC,COLLECTING,DISTRIBUTING>"
        );
        assert!(sim.max_tx_per_second() <= MAX_TX_PER_INTERVAL);
    }

    #[test]
    fn active_and_passive_aggregate_but_two_passive_ends_never_do() {
        let mut sim = Sim::new(2, cfg(1, true, true), cfg(2, false, true));
        sim.converge_within(Duration::from_secs(5));
        let mut sim = Sim::new(2, cfg(1, false, true), cfg(2, false, true));
        sim.run_for(Duration::from_secs(120));
        assert_eq!(sim.distributing(0), [false, false]);
        assert!(
            sim.sent.is_empty(),
            "passive ends send nothing: {:?}",
            sim.sent.len()
        );
    }

    #[test]
    fn independent_mux_collects_before_distributing() {
        let mut a = cfg(1, true, true);
        a.mux = MuxMode::Independent;
        let mut b = cfg(2, true, true);
        b.mux = MuxMode::Independent;
        let mut sim = Sim::new(2, a, b);
        sim.converge_within(Duration::from_secs(5));
        assert_eq!(sim.ends[0].status()[0].mux, mux::State::Distributing);
    }

    #[test]
    fn random_loss_of_a_third_still_converges_and_stays() {
        let mut sim = Sim::new(4, cfg(1, true, true), cfg(2, true, true));
        sim.loss_per_mille = 300;
        sim.converge_within(Duration::from_secs(30));
        sim.loss_per_mille = 0;
        sim.run_for(Duration::from_secs(10));
        assert_eq!(sim.distributing(0), [true; 4]);
        assert!(sim.max_tx_per_second() <= MAX_TX_PER_INTERVAL);
    }
}

mod timeouts {
    use super::*;

    #[test]
    fn silent_partner_times_out_in_three_seconds_with_fast_timeout() {
        let mut sim = Sim::new(4, cfg(1, true, true), cfg(2, true, true));
        sim.converge_within(Duration::from_secs(5));
        sim.mute[1] = true;
        sim.run_for(Duration::from_millis(2900));
        assert_eq!(sim.distributing(0), [true; 4], "still within current_while");
        sim.run_for(Duration::from_millis(200));
        assert_eq!(sim.distributing(0), [false; 4], "expired after 3 s");
        let s = &sim.ends[0].status()[0];
        assert_eq!(s.rx, rx::State::Expired);
        sim.run_for(Duration::from_secs(4));
        assert_eq!(sim.ends[0].status()[0].rx, rx::State::Defaulted);
    }

    #[test]
    fn slow_partner_is_polled_every_30_s_and_fast_one_every_second() {
        // A asks for a short timeout, B for a long one: A transmits at B's (slow) rate and
        // B at A's (fast) rate, since the periodic rate follows the partner's Timeout bit.
        let mut sim = Sim::new(1, cfg(1, true, true), cfg(2, true, false));
        sim.converge_within(Duration::from_secs(5));
        sim.sent.clear();
        sim.run_for(Duration::from_secs(90));
        let by = |end| sim.sent.iter().filter(|s| s.1 == end).count();
        assert!(
            (2..=4).contains(&by(0)),
            "A sent {} in 90 s, expected about 3",
            by(0)
        );
        assert!(
            (88..=92).contains(&by(1)),
            "B sent {} in 90 s, expected about 90",
            by(1)
        );
        assert_eq!(sim.distributing(0), [true]);
    }

    #[test]
    fn long_timeout_partner_loss_takes_90_s() {
        let mut sim = Sim::new(1, cfg(1, true, false), cfg(2, true, false));
        sim.converge_within(Duration::from_secs(5));
        sim.mute[1] = true;
        sim.run_for(Duration::from_secs(80));
        assert_eq!(sim.distributing(0), [true]);
        sim.run_for(Duration::from_secs(11));
        assert_eq!(sim.distributing(0), [false]);
    }
}

mod flaps {
    use super::*;

    #[test]
    fn a_link_down_leaves_at_once_and_rejoins_after_aggregate_wait() {
        let mut sim = Sim::new(4, cfg(1, true, true), cfg(2, true, true));
        sim.converge_within(Duration::from_secs(5));
        sim.set_link(2, false);
        assert_eq!(sim.distributing(0), [true, true, false, true]);
        assert_eq!(sim.distributing(1), [true, true, false, true]);
        sim.run_for(Duration::from_secs(5));
        assert_eq!(sim.distributing(0), [true, true, false, true]);
        sim.set_link(2, true);
        sim.run_for(Duration::from_millis(1500));
        assert!(
            !sim.distributing(0)[2],
            "waits aggregate_wait before attaching"
        );
        sim.run_for(Duration::from_secs(1));
        assert_eq!(sim.distributing(0), [true; 4]);
        assert_eq!(sim.ends[0].status()[2].counters.flaps, 1);
    }

    /// A lone partner core whose LACPDUs the test delivers by hand to end 0's port 0.
    fn lone_partner(sim: &Sim, fast: bool) -> Lacp {
        let mut lone = Lacp::new(cfg(3, true, fast), &ports(3, 1), sim.now);
        lone.handle_link(sim.now, 0, true, 10_000);
        lone
    }

    #[test]
    fn a_converged_aggregate_raises_no_alarm() {
        let mut sim = Sim::new(2, cfg(1, true, true), cfg(2, true, true));
        sim.converge_within(Duration::from_secs(5));
        sim.run_for(Duration::from_secs(100));
        assert_eq!(sim.ends[0].alarms(sim.now), []);
        assert_eq!(sim.ends[1].alarms(sim.now), []);
    }

    #[test]
    fn a_silent_partner_is_defaulted_and_one_that_speaks_clears_it() {
        let mut sim = Sim::new(2, cfg(1, true, true), cfg(2, true, true));
        sim.mute[1] = true;
        sim.run_for(Duration::from_secs(10));
        let alarms = sim.ends[0].alarms(sim.now);
        assert_eq!(
            alarms.iter().map(|a| (a.port, a.kind)).collect::<Vec<_>>(),
            [(0, AlarmKind::Defaulted), (1, AlarmKind::Defaulted)],
            "{alarms:?}"
        );
        assert!(alarms[0].text.contains("enable LACP"), "{}", alarms[0].text);
        sim.mute[1] = false;
        sim.converge_within(Duration::from_secs(5));
        assert_eq!(sim.ends[0].alarms(sim.now), []);
        sim.set_link(1, false);
        sim.run_for(Duration::from_secs(10));
        assert_eq!(
            sim.ends[0].alarms(sim.now),
            [],
            "a port without link raises none"
        );
    }

    #[test]
    fn a_partner_that_marks_the_link_individual_is_named() {
        let mut sim = Sim::new(1, cfg(1, true, true), cfg(2, true, true));
        sim.mute[1] = true;
        let mut lone = lone_partner(&sim, true);
        for _ in 0..5 {
            lone.handle_timeout(sim.now);
            while let Some(t) = lone.poll_transmit() {
                let Ok(SlowPdu::Lacp(mut pdu)) = pdu::parse(&t.frame) else {
                    continue;
                };
                pdu.actor.state.set(LacpState::AGGREGATION, false);
                let frame = pdu.emit([0x02, 0, 0, 0, 3, 0]);
                sim.ends[0].handle_frame(sim.now, 0, &frame);
            }
            sim.run_for(Duration::from_secs(1));
        }
        let alarms = sim.ends[0].alarms(sim.now);
        assert_eq!(alarms.len(), 1, "{alarms:?}");
        assert_eq!(alarms[0].kind, AlarmKind::Individual);
    }

    #[test]
    fn a_partner_that_sends_slowly_though_we_ask_fast_is_named() {
        let mut sim = Sim::new(1, cfg(1, true, true), cfg(2, true, true));
        sim.mute[1] = true;
        let mut lone = lone_partner(&sim, false);
        let deliver = |sim: &mut Sim, lone: &mut Lacp| {
            lone.handle_timeout(sim.now);
            while let Some(t) = lone.poll_transmit() {
                sim.ends[0].handle_frame(sim.now, 0, &t.frame);
            }
            // The partner ignores what end 0 asks: nothing end 0 sends reaches it.
        };
        for _ in 0..3 {
            deliver(&mut sim, &mut lone);
            sim.run_for(Duration::from_secs(30));
        }
        deliver(&mut sim, &mut lone);
        let alarms = sim.ends[0].alarms(sim.now);
        assert_eq!(alarms.len(), 1, "{alarms:?}");
        assert_eq!(alarms[0].kind, AlarmKind::SlowPartner, "{alarms:?}");
        assert!(alarms[0].text.contains("every 30 s"), "{}", alarms[0].text);
        // One late LACPDU among fast ones (a loss) raises nothing.
        let mut sim = Sim::new(1, cfg(1, true, true), cfg(2, true, true));
        sim.converge_within(Duration::from_secs(5));
        sim.mute[1] = true;
        sim.run_for(Duration::from_millis(2900));
        sim.mute[1] = false;
        sim.run_for(Duration::from_secs(5));
        assert_eq!(sim.ends[0].alarms(sim.now), []);
    }

    #[test]
    fn fallback_forwards_on_one_port_while_the_partner_is_silent_and_leaves_at_its_first_lacpdu() {
        let mut a = cfg(1, true, true);
        a.fallback = true;
        let mut sim = Sim::new(3, a, cfg(2, true, true));
        sim.mute[1] = true;
        sim.run_for(Duration::from_secs(2));
        assert_eq!(
            sim.ends[0].fallback_port(),
            None,
            "not before the partner times out"
        );
        assert_eq!(sim.distributing(0), [false; 3]);
        sim.run_for(Duration::from_secs(5));
        assert_eq!(
            sim.ends[0].fallback_port(),
            Some(0),
            "the best port priority, then number"
        );
        assert_eq!(sim.distributing(0), [true, false, false], "one port alone");
        sim.set_link(0, false);
        assert_eq!(
            sim.ends[0].fallback_port(),
            Some(1),
            "the next port takes over at once"
        );
        assert_eq!(sim.distributing(0), [false, true, false]);
        sim.set_link(0, true);
        sim.run_for(Duration::from_secs(5));
        assert_eq!(sim.ends[0].fallback_port(), Some(0), "and gives it back");
        // The partner's first LACPDU ends the fallback at once; LACP then aggregates all.
        sim.mute[1] = false;
        let heard = sim.ends[0].status()[0].counters.lacpdu_rx;
        while sim.ends[0].status()[0].counters.lacpdu_rx == heard {
            assert_eq!(sim.ends[0].fallback_port(), Some(0));
            sim.run_for(Duration::from_millis(10));
        }
        assert_eq!(
            sim.ends[0].fallback_port(),
            None,
            "left at the first LACPDU"
        );
        sim.converge_within(Duration::from_secs(5));
        assert_eq!(sim.distributing(0), [true; 3]);
        // Without fallback a silent partner leaves every port idle (lacp_strict).
        let mut sim = Sim::new(2, cfg(1, true, true), cfg(2, true, true));
        sim.mute[1] = true;
        sim.run_for(Duration::from_secs(10));
        assert_eq!(sim.ends[0].fallback_port(), None);
        assert_eq!(sim.distributing(0), [false, false]);
    }

    #[test]
    fn partner_key_change_reselects_every_port() {
        let mut sim = Sim::new(2, cfg(1, true, true), cfg(2, true, true));
        sim.converge_within(Duration::from_secs(5));
        let now = sim.now;
        sim.ends[1].set_key(now, 9);
        sim.deliver();
        assert_eq!(sim.distributing(0), [false, false], "detached at once");
        sim.converge_within(Duration::from_secs(5));
        assert_eq!(sim.ends[0].status()[0].partner.key, 9);
    }

    #[test]
    fn ports_to_two_partners_make_two_candidates_and_the_faster_wins() {
        // A's ports 0..2 go to B; port 3 to a different system C, simulated by B's port 3
        // with another key: two aggregations, the one with more speed is active.
        let mut sim = Sim::new(4, cfg(1, true, true), cfg(2, true, true));
        sim.converge_within(Duration::from_secs(5));
        sim.ends[1].handle_link(sim.now, 3, false, 0);
        let lone = Lacp::new(cfg(3, true, true), &ports(3, 1), sim.now);
        let mut lone = lone;
        lone.handle_link(sim.now, 0, true, 10_000);
        // Deliver C's LACPDUs to A's port 3 a few times.
        for _ in 0..4 {
            while let Some(t) = lone.poll_transmit() {
                sim.ends[0].handle_frame(sim.now, 3, &t.frame);
            }
            sim.run_for(Duration::from_secs(1));
            lone.handle_timeout(sim.now);
        }
        assert!(
            !sim.ends[0].partner_mismatch().is_empty(),
            "two partner systems are flagged"
        );
        let st = sim.ends[0].status();
        assert_eq!(
            st[3].selected,
            Selected::Standby,
            "the single-port aggregation stands by"
        );
        assert_eq!(sim.distributing(0)[..3], [true, true, true]);
    }

    #[test]
    fn min_links_takes_the_lagg_down_below_it() {
        let mut a = cfg(1, true, true);
        a.min_links = 3;
        let mut sim = Sim::new(3, a, cfg(2, true, true));
        sim.converge_within(Duration::from_secs(5));
        sim.set_link(0, false);
        assert_eq!(sim.distributing(0), [false, false, false]);
        sim.set_link(0, true);
        sim.run_for(Duration::from_secs(3));
        assert_eq!(sim.distributing(0), [true, true, true]);
    }
}

mod marker_and_counters {
    use super::*;

    #[test]
    fn every_marker_information_gets_a_response_and_bad_frames_are_counted() {
        let mut sim = Sim::new(1, cfg(1, true, true), cfg(2, true, true));
        let m = pdu::Marker {
            response: false,
            port: 1,
            system: [2, 0, 0, 0, 0, 2],
            transaction: 42,
        };
        let now = sim.now;
        sim.ends[0].handle_frame(now, 0, &m.emit([2, 0, 0, 0, 2, 0]));
        let t = sim.ends[0].poll_transmit().expect("a response");
        assert_eq!(
            pdu::parse(&t.frame),
            Ok(SlowPdu::Marker(pdu::Marker {
                response: true,
                ..m
            }))
        );
        let mut junk = m.emit([2; 6]);
        junk[17] = 3;
        sim.ends[0].handle_frame(now, 0, &junk);
        junk[14] = 10;
        sim.ends[0].handle_frame(now, 0, &junk);
        let c = sim.ends[0].status()[0].counters;
        assert_eq!(
            (
                c.marker_rx,
                c.marker_response_tx,
                c.illegal_rx,
                c.unknown_rx
            ),
            (1, 1, 1, 1)
        );
    }

    /// An LACPDU from a stranger that would make it the port's partner: another system id, a
    /// different key, the state of a partner that is in sync.
    fn strangers_pdu(sim: &Sim, system: [u8; 6]) -> Vec<u8> {
        // End 1's actor information with another system id and key.
        let mut actor = sim.ends[1].status()[0].actor;
        actor.system = system;
        actor.key = 0x4242;
        let pdu = pdu::Lacpdu {
            version: 1,
            actor,
            partner: sim.ends[0].status()[0].actor,
            collector_max_delay: 0,
        };
        pdu.emit(system).to_vec()
    }

    #[test]
    fn an_lacpdu_not_to_the_slow_protocols_address_steers_nothing() {
        let mut sim = Sim::new(2, cfg(1, true, true), cfg(2, true, true));
        sim.converge_within(Duration::from_secs(5));
        let mut frame = strangers_pdu(&sim, [0x02, 0x66, 0, 0, 0, 1]);
        // The same frame to the broadcast address, and to the port's own MAC.
        for dst in [[0xff; 6], [0x02, 0, 0, 0, 1, 0]] {
            frame[..6].copy_from_slice(&dst);
            let now = sim.now;
            sim.ends[0].handle_frame(now, 0, &frame);
            sim.run_for(Duration::from_secs(5));
            assert_eq!(sim.distributing(0), [true, true], "to {dst:02x?}");
        }
        assert_eq!(sim.ends[0].status()[0].counters.illegal_rx, 2);
        // To the right address, it is a partner change (the control that nothing else moved).
        frame[..6].copy_from_slice(&pdu::SLOW_PROTOCOLS_MAC);
        let now = sim.now;
        sim.ends[0].handle_frame(now, 0, &frame);
        assert_eq!(sim.ends[0].status()[0].partner.key, 0x4242);
    }

    #[test]
    fn an_lacpdu_with_our_own_system_id_is_a_loop_and_dropped() {
        let mut sim = Sim::new(2, cfg(1, true, true), cfg(2, true, true));
        sim.converge_within(Duration::from_secs(5));
        let own = sim.ends[0].status()[0].actor.system;
        let frame = strangers_pdu(&sim, own);
        for _ in 0..5 {
            let now = sim.now;
            sim.ends[0].handle_frame(now, 1, &frame);
            sim.run_for(Duration::from_millis(500));
        }
        assert_eq!(sim.distributing(0), [true, true]);
        assert_eq!(sim.ends[0].status()[1].counters.loop_rx, 5);
    }

    #[test]
    fn a_flood_of_marker_informations_gets_three_responses_a_second() {
        let mut sim = Sim::new(1, cfg(1, true, true), cfg(2, true, true));
        let m = pdu::Marker {
            response: false,
            port: 1,
            system: [2, 0, 0, 0, 0, 2],
            transaction: 7,
        };
        let frame = m.emit([2, 0, 0, 0, 2, 0]);
        let mut responses = 0;
        for i in 0..1000u64 {
            // 1000 Markers over two seconds.
            let now = Time(sim.now.0 + i * 2_000_000);
            sim.ends[0].handle_frame(now, 0, &frame);
            while let Some(t) = sim.ends[0].poll_transmit() {
                if matches!(pdu::parse(&t.frame), Ok(SlowPdu::Marker(_))) {
                    responses += 1;
                }
            }
        }
        assert!((3..=6).contains(&responses), "{responses} responses");
        let c = sim.ends[0].status()[0].counters;
        assert_eq!(c.marker_rx, 1000);
        assert_eq!(c.marker_response_dropped, 1000 - responses);
    }

    #[test]
    fn partner_churn_is_counted_when_the_partner_falls_silent() {
        // B is muted from the start: A never hears a partner in sync.
        let mut sim = Sim::new(1, cfg(1, true, true), cfg(2, true, true));
        sim.mute[1] = true;
        sim.run_for(Duration::from_secs(61));
        let c = sim.ends[0].status()[0].counters;
        assert_eq!((c.partner_churn, c.actor_churn), (1, 0), "{c:?}");
    }

    #[test]
    fn actor_churn_is_counted_on_a_port_that_stands_by() {
        // A's port 3 hears another system C while ports 0..2 aggregate with B: it stands by,
        // so its own sync never comes, though its partner (C) is heard all along.
        let mut sim = Sim::new(4, cfg(1, true, true), cfg(2, true, true));
        sim.converge_within(Duration::from_secs(5));
        sim.ends[1].handle_link(sim.now, 3, false, 0);
        let mut lone = Lacp::new(cfg(3, true, true), &ports(3, 1), sim.now);
        lone.handle_link(sim.now, 0, true, 10_000);
        for _ in 0..65 {
            while let Some(t) = lone.poll_transmit() {
                sim.ends[0].handle_frame(sim.now, 3, &t.frame);
            }
            sim.run_for(Duration::from_secs(1));
            lone.handle_timeout(sim.now);
        }
        let st = sim.ends[0].status();
        assert_eq!(st[3].selected, Selected::Standby);
        assert_eq!(st[3].counters.actor_churn, 1, "{:?}", st[3].counters);
        assert_eq!(
            st[0].counters.actor_churn, 0,
            "the aggregating ports are in sync"
        );
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Action {
        Wait(u16),
        Flap(usize),
        Mute(usize, bool),
        Loss(u16),
    }

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            (1u16..5000).prop_map(Action::Wait),
            (0usize..3).prop_map(Action::Flap),
            (0usize..2, any::<bool>()).prop_map(|(e, m)| Action::Mute(e, m)),
            (0u16..500).prop_map(Action::Loss),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever happens, no port distributes without a partner in sync (checked at every
        /// delivery by the simulator) and no port sends more than three LACPDUs a second.
        #[test]
        fn invariants_hold_under_any_sequence(actions in proptest::collection::vec(action(), 1..30), fast in any::<bool>()) {
            let mut sim = Sim::new(3, cfg(1, true, fast), cfg(2, true, true));
            for a in actions {
                match a {
                    Action::Wait(ms) => sim.run_for(Duration::from_millis(u64::from(ms))),
                    Action::Flap(i) => {
                        let up = sim.links[i].up;
                        sim.set_link(i, !up);
                    }
                    Action::Mute(e, m) => sim.mute[e] = m,
                    Action::Loss(p) => sim.loss_per_mille = u64::from(p),
                }
            }
            prop_assert!(sim.max_tx_per_second() <= MAX_TX_PER_INTERVAL, "tx limit");
            // And once everything is healthy again it converges.
            sim.mute = [false; 2];
            sim.loss_per_mille = 0;
            for i in 0..3 {
                if !sim.links[i].up {
                    sim.set_link(i, true);
                }
            }
            sim.converge_within(Duration::from_secs(10));
        }
    }
}

mod reconvergence {
    use super::*;

    /// One end sees its links come up a moment after the other and drops the first LACPDUs:
    /// still aggregate_wait plus an exchange, not a periodic interval more.
    #[test]
    fn after_an_outage_with_one_end_late_it_takes_aggregate_wait_only() {
        for late_ms in [0u64, 1, 5, 20] {
            let mut sim = Sim::new(4, cfg(1, true, true), cfg(2, true, true));
            sim.converge_within(Duration::from_secs(5));
            for i in 0..4 {
                sim.set_link(i, false);
            }
            sim.run_for(Duration::from_secs(1));
            let start = sim.now;
            sim.links.iter_mut().for_each(|l| l.up = true);
            for i in 0..4 {
                let now = sim.now;
                sim.ends[0].handle_link(now, i, true, 10_000);
            }
            sim.deliver();
            sim.run_for(Duration::from_millis(late_ms));
            for i in 0..4 {
                let now = sim.now;
                sim.ends[1].handle_link(now, i, true, 10_000);
            }
            sim.deliver();
            sim.converge_within(Duration::from_secs(5));
            let took = sim.now.since(start);
            assert!(
                took <= AGGREGATE_WAIT + Duration::from_millis(late_ms + 20),
                "B {late_ms} ms late: converged after {took:?}"
            );
        }
    }
}
