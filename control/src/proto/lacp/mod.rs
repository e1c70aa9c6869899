//! LACP (IEEE 802.1AX-2008, formerly 802.3ad clause 43) as a sans-IO core.
//!
//! No sockets, threads or clock: inputs are [`Lacp::handle_frame`] (a received slow-protocol
//! frame), [`Lacp::handle_link`] (link up/down and speed) and [`Lacp::handle_timeout`], each
//! with the current [`Time`]; outputs are [`Lacp::poll_transmit`] (frames to send),
//! [`Lacp::poll_event`] (collecting/distributing changes per port) and [`Lacp::poll_timeout`]
//! (the next deadline). The daemon drives it from the control thread with real time; tests
//! drive two of them against each other on a virtual clock.
//!
//! One module per machine of the standard: [`rx`] (5.4.12), [`periodic`] (5.4.13), selection
//! (5.4.14, here in `Lacp::select`), [`mux`] (5.4.15), transmit (5.4.16, here in
//! `Lacp::transmit`) and [`churn`] (5.4.17); [`pdu`] holds the wire formats. After every
//! input the machines run in a fixed order until nothing changes.
//!
//! Aggregator selection follows FreeBSD lagg: ports with the same partner system and key form
//! a candidate aggregation; the active one is the one with the greatest total speed
//! ([`SelectionPolicy::Speed`]), or the most ports (`Count`), or the current one for as long as
//! it has ports (`Stable`). Ports of the others are STANDBY.

pub mod churn;
pub mod mux;
pub mod pdu;
pub mod periodic;
pub mod port;
pub mod rx;

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use pdu::{LacpState, Lacpdu, Marker, PortInfo, SlowPdu, FRAME_LEN};
pub use port::{LacpCounters, LagId, PortConfig, Selected};
use port::{PortVars, Timer};

/// Fast_Periodic_Time.
pub const FAST_PERIODIC: Duration = Duration::from_secs(1);
/// Slow_Periodic_Time.
pub const SLOW_PERIODIC: Duration = Duration::from_secs(30);
/// Short_Timeout_Time (3 x fast periodic).
pub const SHORT_TIMEOUT: Duration = Duration::from_secs(3);
/// Long_Timeout_Time (3 x slow periodic).
pub const LONG_TIMEOUT: Duration = Duration::from_secs(90);
/// Churn_Detection_Time.
pub const CHURN_DETECTION: Duration = Duration::from_secs(60);
/// Aggregate_Wait_Time.
pub const AGGREGATE_WAIT: Duration = Duration::from_secs(2);
/// At most this many LACPDUs per Fast_Periodic_Time on one port.
pub const MAX_TX_PER_INTERVAL: usize = 3;
/// Marker Responses one port sends per second at most (the responder answers every Marker
/// Information, so this bounds what a stranger's flood of them can make us send).
pub const MARKER_RESPONSES_PER_SECOND: u32 = 3;

/// LACP's time: the cores' one time type.
pub use crate::proto::time::Time;

/// Mux control (802.1AX 5.4.15).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MuxMode {
    /// Collecting and distributing switched together.
    #[default]
    Coupled,
    /// Collect first; distribute once the partner collects.
    Independent,
}

/// How the active aggregation is chosen among candidates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SelectionPolicy {
    /// Greatest total port speed (lagg's default).
    #[default]
    Speed,
    /// Most ports.
    Count,
    /// Keep the current one while it has ports; otherwise by speed.
    Stable,
}

/// LACP settings of one lagg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LacpConfig {
    /// System priority (lower wins).
    pub system_priority: u16,
    /// System identifier, a MAC address.
    pub system: [u8; 6],
    /// Operational key of every port (never 0).
    pub key: u16,
    /// Active LACP (otherwise passive).
    pub active: bool,
    /// Ask the partner for a short timeout (lagg's `lacp_fast_timeout`).
    pub fast_timeout: bool,
    /// A port carries nothing until the partner is heard (lagg's `lacp_strict`).
    pub strict: bool,
    /// While no enabled port has heard the partner (each defaulted), the one of best port
    /// priority forwards alone until LACP comes up (`lacp_fallback`, as OVS's
    /// `lacp-fallback-ab`).
    pub fallback: bool,
    /// Fewer distributing ports than this: the lagg distributes on none.
    pub min_links: usize,
    /// Mux control.
    pub mux: MuxMode,
    /// Aggregator selection.
    pub selection: SelectionPolicy,
}

/// A frame to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Port index.
    pub port: usize,
    /// The whole Ethernet frame.
    pub frame: [u8; FRAME_LEN],
}

/// What the dataplane must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LacpEvent {
    /// Port `port` starts or stops collecting and distributing (with min_links applied).
    LacpState {
        /// Port index.
        port: usize,
        /// Accept frames from the port.
        collecting: bool,
        /// Send frames on the port.
        distributing: bool,
    },
}

/// Gaps between a partner's LACPDUs above this, twice in a row, while we asked for fast
/// ones: the partner sends at its slow rate (30 s) whatever we ask.
pub const SLOW_PARTNER_GAP: Duration = Duration::from_millis(2500);

/// What can be wrong with a port's aggregation (see [`Lacp::alarms`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlarmKind {
    /// The port's partner differs from the other ports'.
    PartnerMismatch,
    /// The partner sends at its slow rate though we asked for fast LACPDUs.
    SlowPartner,
    /// No LACPDU from the partner: the port runs on defaults.
    Defaulted,
    /// The partner marks the link individual.
    Individual,
}

impl AlarmKind {
    /// Every kind.
    pub const ALL: [AlarmKind; 4] = [
        AlarmKind::PartnerMismatch,
        AlarmKind::SlowPartner,
        AlarmKind::Defaulted,
        AlarmKind::Individual,
    ];

    /// Its name in metrics and status.
    pub fn name(self) -> &'static str {
        match self {
            AlarmKind::PartnerMismatch => "partner_mismatch",
            AlarmKind::SlowPartner => "slow_partner",
            AlarmKind::Defaulted => "defaulted",
            AlarmKind::Individual => "individual",
        }
    }
}

/// One raised alarm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alarm {
    /// Port index.
    pub port: usize,
    /// What is wrong.
    pub kind: AlarmKind,
    /// What is wrong and what to do, in words.
    pub text: String,
}

/// Status of one port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LacpPortStatus {
    /// Port name.
    pub name: String,
    /// Our information as we send it.
    pub actor: PortInfo,
    /// What we hold of the partner.
    pub partner: PortInfo,
    /// Selection.
    pub selected: Selected,
    /// Receive machine state.
    pub rx: rx::State,
    /// Mux machine state.
    pub mux: mux::State,
    /// Counters.
    pub counters: LacpCounters,
}

/// The LACP core of one lagg.
#[derive(Debug)]
pub struct Lacp {
    cfg: LacpConfig,
    ports: Vec<PortVars>,
    active_lag: Option<LagId>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<LacpEvent>,
    reported: Vec<(bool, bool)>,
}

fn mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl fmt::Display for PortInfo {
    /// `(8000,00-0e-83-16-f5-00,000e,8000,0019)` as lagg prints actor and partner.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "({:04X},{},{:04X},{:04X},{:04X})",
            self.system_priority,
            mac(self.system).replace(':', "-"),
            self.key,
            self.port_priority,
            self.port
        )
    }
}

impl Lacp {
    /// A core for `ports` (name, settings), all links down, at time `now`.
    pub fn new(cfg: LacpConfig, ports: &[(String, PortConfig)], now: Time) -> Lacp {
        let vars = ports
            .iter()
            .map(|(name, pc)| Self::port_vars(&cfg, name, pc))
            .collect::<Vec<_>>();
        let n = vars.len();
        let mut lacp = Lacp {
            cfg,
            ports: vars,
            active_lag: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            reported: vec![(false, false); n],
        };
        lacp.run(now);
        lacp
    }

    /// The variables of a new port (link down).
    fn port_vars(cfg: &LacpConfig, name: &str, pc: &PortConfig) -> PortVars {
        let mut state = LacpState(LacpState::AGGREGATION);
        state.set(LacpState::ACTIVITY, cfg.active);
        state.set(LacpState::TIMEOUT, cfg.fast_timeout);
        let actor = PortInfo {
            system_priority: cfg.system_priority,
            system: cfg.system,
            key: cfg.key,
            port_priority: pc.priority,
            port: pc.number,
            state,
        };
        // Partner defaults: with lacp_strict nothing is in sync until the partner speaks;
        // without it a silent partner counts as an aggregatable, synchronised one, so the
        // ports run as a static aggregate.
        let partner_admin = PortInfo {
            system_priority: 0,
            system: [0; 6],
            key: 0,
            port_priority: 0,
            port: pc.number,
            state: {
                let mut s = LacpState(LacpState::AGGREGATION);
                if !cfg.strict {
                    s.set(
                        LacpState::SYNCHRONIZATION
                            | LacpState::COLLECTING
                            | LacpState::DISTRIBUTING,
                        true,
                    );
                }
                // A defaulted port keeps polling at our own rate: with a long default a
                // partner that comes back would wait up to 30 s for our next LACPDU.
                s.set(LacpState::TIMEOUT, cfg.fast_timeout);
                s
            },
        };
        PortVars::new(name, *pc, actor, partner_admin)
    }

    /// A port joins at `index` (the next index, or one whose port left: it is replaced),
    /// link down until [`handle_link`](Self::handle_link) says otherwise.
    pub fn add_port(&mut self, now: Time, index: usize, name: &str, pc: PortConfig) {
        let vars = Self::port_vars(&self.cfg, name, &pc);
        if index < self.ports.len() {
            self.ports[index] = vars;
            self.reported[index] = (false, false);
        } else {
            self.ports.push(vars);
            self.reported.push((false, false));
        }
        self.run(now);
    }

    /// The configuration.
    pub fn config(&self) -> &LacpConfig {
        &self.cfg
    }

    /// A port's link went up or down (with its speed in Mb/s when up).
    pub fn handle_link(&mut self, now: Time, port: usize, up: bool, speed_mbps: u32) {
        if let Some(p) = self.ports.get_mut(port) {
            if p.enabled != up {
                tracing::info!(port = %p.name, "LACP: link {}", if up { "up" } else { "down" });
                // Tell the partner at once rather than at the first periodic transmission
                // (up to a second later), as Linux bonding does.
                p.ntt = up;
            }
            p.enabled = up;
            p.speed_mbps = speed_mbps;
        }
        self.run(now);
    }

    /// A slow-protocol frame arrived on `port`. Malformed frames are counted and dropped, and
    /// so is whatever a stranger on the segment could use to steer the port: a frame to
    /// another address than the Slow Protocols group address (01-80-C2-00-00-02, the only
    /// one a partner uses, as Linux bonding and FreeBSD lagg require) counts as illegal, an
    /// LACPDU with this system's own id counts as a loop. Marker Informations are answered
    /// at most [`MARKER_RESPONSES_PER_SECOND`] times a second per port, so that nobody turns
    /// the responder into a flood.
    pub fn handle_frame(&mut self, now: Time, port: usize, frame: &[u8]) {
        let own = (self.cfg.system_priority, self.cfg.system);
        let Some(p) = self.ports.get_mut(port) else {
            return;
        };
        let parsed = pdu::parse(frame);
        if !matches!(parsed, Err(pdu::PduError::NotSlowProtocol))
            && frame.get(..6) != Some(&pdu::SLOW_PROTOCOLS_MAC[..])
        {
            p.counters.illegal_rx += 1;
            tracing::debug!(port = %p.name, "slow-protocol frame not to 01-80-c2-00-00-02 dropped");
            return;
        }
        match parsed {
            Ok(SlowPdu::Lacp(pdu)) if (pdu.actor.system_priority, pdu.actor.system) == own => {
                p.counters.loop_rx += 1;
                tracing::debug!(port = %p.name, "LACPDU with our own system id dropped (a loop)");
                return;
            }
            Ok(SlowPdu::Lacp(pdu)) => {
                p.counters.lacpdu_rx += 1;
                if p.enabled {
                    p.pdu = Some(pdu);
                    if let Some(last) = p.last_pdu {
                        p.pdu_gaps = [Some(now.since(last)), p.pdu_gaps[0]];
                    }
                    p.last_pdu = Some(now);
                }
            }
            Ok(SlowPdu::Marker(m)) if !m.response => {
                p.counters.marker_rx += 1;
                let (since, sent) = p.marker_window;
                let (since, sent) = if now.since(since) >= Duration::from_secs(1) {
                    (now, 0)
                } else {
                    (since, sent)
                };
                if sent >= MARKER_RESPONSES_PER_SECOND {
                    p.counters.marker_response_dropped += 1;
                    p.marker_window = (since, sent);
                    return;
                }
                p.marker_window = (since, sent + 1);
                // Marker responder (5.5.3): every Marker Information gets a Marker Response
                // with the same fields, from this port.
                let response = Marker {
                    response: true,
                    ..m
                };
                self.transmits.push_back(Transmit {
                    port,
                    frame: response.emit(p.cfg.mac),
                });
                p.counters.marker_response_tx += 1;
            }
            Ok(SlowPdu::Marker(_)) => p.counters.marker_response_rx += 1,
            Err(pdu::PduError::UnknownSubtype(_)) => p.counters.unknown_rx += 1,
            Err(pdu::PduError::NotSlowProtocol) => {}
            Err(e) => {
                p.counters.illegal_rx += 1;
                tracing::debug!(port = %p.name, error = %e, "illegal slow-protocol frame dropped");
            }
        }
        self.run(now);
    }

    /// Time passed: run whatever timers expired.
    pub fn handle_timeout(&mut self, now: Time) {
        self.run(now);
    }

    /// The next frame to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next dataplane change, if any.
    pub fn poll_event(&mut self) -> Option<LacpEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.ports
            .iter()
            .flat_map(|p| p.timers.iter().flatten())
            .min()
            .copied()
    }

    fn run(&mut self, now: Time) {
        for _ in 0..16 {
            let mut changed = false;
            for p in &mut self.ports {
                changed |= rx::run(p, now);
                changed |= periodic::run(p, now);
            }
            changed |= self.select();
            let ready = self.ready();
            for (i, p) in self.ports.iter_mut().enumerate() {
                changed |= mux::run(p, now, ready[i], self.cfg.mux);
                changed |= churn::run(p, now);
            }
            for p in &mut self.ports {
                p.begin = false;
            }
            if !changed {
                break;
            }
        }
        self.transmit(now);
        self.report();
    }

    /// Selection logic: assigns each port its aggregation (LagId) and picks the active one.
    fn select(&mut self) -> bool {
        let mut changed = false;
        for (i, p) in self.ports.iter_mut().enumerate() {
            let eligible = p.enabled && matches!(p.rx, rx::State::Current | rx::State::Defaulted);
            let lag = eligible.then(|| {
                if p.partner_has(LacpState::AGGREGATION)
                    && p.actor_state().has(LacpState::AGGREGATION)
                {
                    LagId::Partner {
                        system_priority: p.partner.system_priority,
                        system: p.partner.system,
                        key: p.partner.key,
                    }
                } else {
                    LagId::Individual(i)
                }
            });
            if lag != p.lag {
                p.lag = lag;
                if p.selected != Selected::Unselected {
                    p.selected = Selected::Unselected;
                }
                changed = true;
            }
        }
        // Candidate aggregations with their total speed and port count.
        let mut candidates: Vec<(LagId, u64, usize)> = Vec::new();
        for p in &self.ports {
            if let Some(lag) = p.lag {
                match candidates.iter_mut().find(|c| c.0 == lag) {
                    Some(c) => {
                        c.1 += u64::from(p.speed_mbps);
                        c.2 += 1;
                    }
                    None => candidates.push((lag, u64::from(p.speed_mbps), 1)),
                }
            }
        }
        let by_speed = |c: &&(LagId, u64, usize)| (c.1, c.2, std::cmp::Reverse(c.0));
        let best = match self.cfg.selection {
            SelectionPolicy::Stable if candidates.iter().any(|c| Some(c.0) == self.active_lag) => {
                self.active_lag
            }
            SelectionPolicy::Speed | SelectionPolicy::Stable => {
                candidates.iter().max_by_key(by_speed).map(|c| c.0)
            }
            SelectionPolicy::Count => candidates
                .iter()
                .max_by_key(|c| (c.2, c.1, std::cmp::Reverse(c.0)))
                .map(|c| c.0),
        };
        if best != self.active_lag {
            tracing::info!(from = ?self.active_lag, to = ?best, "LACP: active aggregation changed");
            self.active_lag = best;
            changed = true;
        }
        for p in &mut self.ports {
            let want = match p.lag {
                None => Selected::Unselected,
                Some(lag) if Some(lag) == self.active_lag => Selected::Selected,
                Some(_) => Selected::Standby,
            };
            // A port that was unselected (new partner, link change) must detach before it is
            // selected again, so that it waits out aggregate_wait with its new partner.
            if p.selected == Selected::Unselected && p.mux != mux::State::Detached {
                continue;
            }
            if p.selected != want {
                p.selected = want;
                changed = true;
            }
        }
        changed
    }

    /// `Ready` per port: every port waiting on the same aggregation has waited out
    /// aggregate_wait.
    fn ready(&self) -> Vec<bool> {
        self.ports
            .iter()
            .map(|p| {
                p.lag.is_some()
                    && self
                        .ports
                        .iter()
                        .filter(|q| q.lag == p.lag && q.mux == mux::State::Waiting)
                        .all(|q| q.ready_n)
            })
            .collect()
    }

    /// Transmit machine: an LACPDU for every port with NTT, at most three per second.
    fn transmit(&mut self, now: Time) {
        for (i, p) in self.ports.iter_mut().enumerate() {
            if p.periodic == periodic::State::NoPeriodic {
                // Neither end is active, or the port is down: nothing to say.
                p.ntt = false;
            }
            if !p.ntt || !p.enabled {
                p.stop(Timer::TxHold);
                continue;
            }
            // Rate limit: the oldest of the last three transmissions must be a full
            // Fast_Periodic_Time ago; otherwise hold NTT until then.
            let full = p.tx_times.iter().all(Option::is_some);
            if let Some(oldest) = p.tx_times.iter().flatten().min().copied().filter(|_| full) {
                if now.since(oldest) < FAST_PERIODIC {
                    p.start(Timer::TxHold, oldest, FAST_PERIODIC);
                    continue;
                }
            }
            p.stop(Timer::TxHold);
            let pdu = Lacpdu {
                version: 1,
                actor: p.actor,
                partner: p.partner,
                collector_max_delay: 0,
            };
            self.transmits.push_back(Transmit {
                port: i,
                frame: pdu.emit(p.cfg.mac),
            });
            p.counters.lacpdu_tx += 1;
            p.ntt = false;
            // Replace an empty slot, or else the oldest.
            if let Some(slot) = p
                .tx_times
                .iter_mut()
                .min_by_key(|t| t.map_or(0, |t| t.0.saturating_add(1)))
            {
                *slot = Some(now);
            }
        }
    }

    /// With `fallback`, while every enabled port is defaulted (no LACPDU from the partner on
    /// any): the port that forwards alone, the enabled one of best (lowest) port priority,
    /// then lowest port number.
    pub fn fallback_port(&self) -> Option<usize> {
        if !self.cfg.fallback {
            return None;
        }
        let enabled = || self.ports.iter().enumerate().filter(|(_, p)| p.enabled);
        if enabled().next().is_none() || enabled().any(|(_, p)| p.rx != rx::State::Defaulted) {
            return None;
        }
        enabled()
            .min_by_key(|(_, p)| (p.cfg.priority, p.cfg.number))
            .map(|(i, _)| i)
    }

    /// Queues dataplane events for every port whose effective state changed.
    fn report(&mut self) {
        let distributing = self
            .ports
            .iter()
            .filter(|p| p.actor_state().has(LacpState::DISTRIBUTING))
            .count();
        let up = distributing >= self.cfg.min_links.max(1);
        let fallback = self.fallback_port();
        for (i, p) in self.ports.iter_mut().enumerate() {
            let (collecting, dist) = match fallback {
                Some(f) => (f == i, f == i),
                None => (
                    up && p.actor_state().has(LacpState::COLLECTING),
                    up && p.actor_state().has(LacpState::DISTRIBUTING),
                ),
            };
            if (collecting, dist) != self.reported[i] {
                if p.was_distributing && !dist {
                    p.counters.flaps += 1;
                }
                p.was_distributing = dist;
                self.reported[i] = (collecting, dist);
                tracing::info!(port = %p.name, collecting, distributing = dist, "LACP: port state");
                self.events.push_back(LacpEvent::LacpState {
                    port: i,
                    collecting,
                    distributing: dist,
                });
            }
        }
    }

    /// Status of every port.
    pub fn status(&self) -> Vec<LacpPortStatus> {
        self.ports
            .iter()
            .map(|p| LacpPortStatus {
                name: p.name.clone(),
                actor: p.actor,
                partner: p.partner,
                selected: p.selected,
                rx: p.rx,
                mux: p.mux,
                counters: p.counters,
            })
            .collect()
    }

    /// Ports that see different partner systems or keys while aggregatable and current: a
    /// cabling or partner configuration mistake. Empty when all agree.
    pub fn partner_mismatch(&self) -> Vec<(String, PortInfo)> {
        let current: Vec<&PortVars> = self
            .ports
            .iter()
            .filter(|p| p.rx == rx::State::Current && p.partner_has(LacpState::AGGREGATION))
            .collect();
        let Some(first) = current.first() else {
            return Vec::new();
        };
        let differs = current.iter().any(|p| {
            p.partner.system != first.partner.system || p.partner.key != first.partner.key
        });
        if differs {
            current
                .iter()
                .map(|p| (p.name.clone(), p.partner))
                .collect()
        } else {
            Vec::new()
        }
    }

    /// What is wrong with each port's aggregation now, one alarm per port at most (the most
    /// specific): a partner other than the other ports' (cabling, or another key), a
    /// partner that sends slowly though we asked for fast LACPDUs (its LACP rate ignores
    /// ours: the port times out between its LACPDUs), no LACPDU at all (defaulted: no LACP
    /// on the partner's port), or a partner that marks the link individual.
    pub fn alarms(&self, now: Time) -> Vec<Alarm> {
        let mismatch: Vec<String> = self
            .partner_mismatch()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        let mut out = Vec::new();
        for (port, p) in self.ports.iter().enumerate() {
            if !p.enabled {
                continue;
            }
            let slow = p
                .pdu_gaps
                .iter()
                .all(|g| g.is_some_and(|g| g > SLOW_PARTNER_GAP))
                && p.last_pdu.is_some_and(|t| now.since(t) <= LONG_TIMEOUT);
            let (kind, text) = if mismatch.contains(&p.name) {
                (
                    AlarmKind::PartnerMismatch,
                    format!(
                        "its partner {} is not the other ports' partner: another switch, or another LAG or key on it; check the cabling and the switch's LAG",
                        p.partner
                    ),
                )
            } else if self.cfg.fast_timeout && slow {
                let gap = p.pdu_gaps[0].unwrap_or_default();
                (
                    AlarmKind::SlowPartner,
                    format!(
                        "we ask for fast LACPDUs (lacp_fast_timeout) but the partner sends one every {:.0} s, so the port times out between them: set the partner's LACP rate to fast, or drop lacp_fast_timeout",
                        gap.as_secs_f64()
                    ),
                )
            } else if p.rx == rx::State::Defaulted {
                (
                    AlarmKind::Defaulted,
                    "no LACPDU from the partner: its port runs no LACP (a static LAG, or none); enable LACP (active) on the partner's port".to_string(),
                )
            } else if p.rx == rx::State::Current && !p.partner_has(LacpState::AGGREGATION) {
                (
                    AlarmKind::Individual,
                    "the partner marks the link individual (not aggregatable): its port is not in a LAG".to_string(),
                )
            } else {
                continue;
            };
            out.push(Alarm { port, kind, text });
        }
        out
    }

    /// Changes the operational key of every port: the partner sees a new aggregation, and
    /// every port is selected again.
    pub fn set_key(&mut self, now: Time, key: u16) {
        self.cfg.key = key;
        for p in &mut self.ports {
            p.actor.key = key;
            p.selected = Selected::Unselected;
            p.ntt = true;
        }
        self.run(now);
    }

    /// Whether port `port` is distributing now (min_links applied).
    pub fn is_distributing(&self, port: usize) -> bool {
        self.reported.get(port).is_some_and(|r| r.1)
    }
}

#[cfg(test)]
mod sim;
