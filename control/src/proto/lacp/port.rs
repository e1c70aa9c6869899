//! Per-port LACP variables (802.1AX-2008 5.4.7) and the port's timer table.

use std::time::Duration;

use super::pdu::{LacpState, Lacpdu, PortInfo};
use super::{churn, mux, periodic, rx, Time};

/// Timers of one port, indexed by this enum (no sentinel values: a stopped timer is `None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Receive machine: partner information expires.
    CurrentWhile = 0,
    /// Periodic transmission.
    Periodic = 1,
    /// Mux: aggregate wait before attaching.
    WaitWhile = 2,
    /// Actor churn detection.
    ActorChurn = 3,
    /// Partner churn detection.
    PartnerChurn = 4,
    /// Transmit: NTT held back by the rate limit until then.
    TxHold = 5,
}

impl Timer {
    pub(crate) const COUNT: usize = 6;
}

/// Selection result for a port (802.1AX `Selected`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selected {
    /// Not selected: detach.
    Unselected,
    /// Selected an aggregator and may attach.
    Selected,
    /// Selected an aggregator that is not the active one: stays waiting.
    Standby,
}

impl std::fmt::Display for Selected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Selected::Unselected => "UNSELECTED",
            Selected::Selected => "SELECTED",
            Selected::Standby => "STANDBY",
        })
    }
}

/// Which link aggregation group a port belongs to: ports with the same partner system and key
/// aggregate; an individual port is a group of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LagId {
    /// Aggregatable with this partner.
    Partner {
        /// Partner system priority.
        system_priority: u16,
        /// Partner system.
        system: [u8; 6],
        /// Partner key.
        key: u16,
    },
    /// Individual: only this port (by index).
    Individual(usize),
}

/// Counters of one port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LacpCounters {
    /// LACPDUs received.
    pub lacpdu_rx: u64,
    /// LACPDUs sent.
    pub lacpdu_tx: u64,
    /// Marker PDUs received.
    pub marker_rx: u64,
    /// Marker Responses sent.
    pub marker_response_tx: u64,
    /// Marker Responses received.
    pub marker_response_rx: u64,
    /// Slow-protocol frames that failed to parse.
    pub illegal_rx: u64,
    /// Slow-protocol frames of a subtype other than LACP and Marker.
    pub unknown_rx: u64,
    /// LACPDUs carrying this system's own id (a loop: the port hears itself or a sibling);
    /// dropped.
    pub loop_rx: u64,
    /// Marker Informations left unanswered: more than [`MARKER_RESPONSES_PER_SECOND`] came
    /// in one second.
    ///
    /// [`MARKER_RESPONSES_PER_SECOND`]: super::MARKER_RESPONSES_PER_SECOND
    pub marker_response_dropped: u64,
    /// Times the actor churn machine entered ACTOR_CHURN.
    pub actor_churn: u64,
    /// Times the partner churn machine entered PARTNER_CHURN.
    pub partner_churn: u64,
    /// Times the port stopped distributing after having distributed (flaps).
    pub flaps: u64,
}

/// Administrative settings of one port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortConfig {
    /// Port number sent in LACPDUs (starts at 1: some switches reject 0).
    pub number: u16,
    /// Port priority.
    pub priority: u16,
    /// The port's MAC address (source of its slow-protocol frames).
    pub mac: [u8; 6],
}

/// Everything LACP keeps for one port.
#[derive(Clone, Debug)]
pub(crate) struct PortVars {
    pub(crate) cfg: PortConfig,
    pub(crate) actor: PortInfo,
    pub(crate) partner: PortInfo,
    pub(crate) partner_admin: PortInfo,
    pub(crate) selected: Selected,
    pub(crate) lag: Option<LagId>,
    pub(crate) ntt: bool,
    pub(crate) enabled: bool,
    pub(crate) speed_mbps: u32,
    pub(crate) ready_n: bool,
    pub(crate) timers: [Option<Time>; Timer::COUNT],
    pub(crate) rx: rx::State,
    pub(crate) periodic: periodic::State,
    pub(crate) mux: mux::State,
    pub(crate) actor_churn: churn::State,
    pub(crate) partner_churn: churn::State,
    /// A received LACPDU waiting for the receive machine.
    pub(crate) pdu: Option<Lacpdu>,
    /// The last three LACPDU transmission times (rate limit).
    pub(crate) tx_times: [Option<Time>; 3],
    /// Marker Responses sent in the current one-second window: (window start, count).
    pub(crate) marker_window: (Time, u32),
    pub(crate) counters: LacpCounters,
    pub(crate) was_distributing: bool,
    pub(crate) begin: bool,
    pub(crate) name: String,
    /// When the last LACPDU from the partner arrived, and the gaps before it and the one
    /// before that (how fast the partner really sends).
    pub(crate) last_pdu: Option<Time>,
    pub(crate) pdu_gaps: [Option<Duration>; 2],
}

impl PortVars {
    pub(crate) fn new(
        name: &str,
        cfg: PortConfig,
        actor: PortInfo,
        partner_admin: PortInfo,
    ) -> Self {
        Self {
            cfg,
            actor,
            partner: partner_admin,
            partner_admin,
            selected: Selected::Unselected,
            lag: None,
            ntt: false,
            enabled: false,
            speed_mbps: 0,
            ready_n: false,
            timers: [None; Timer::COUNT],
            rx: rx::State::Initialize,
            periodic: periodic::State::NoPeriodic,
            mux: mux::State::Detached,
            actor_churn: churn::State::Monitor,
            partner_churn: churn::State::Monitor,
            pdu: None,
            tx_times: [None; 3],
            marker_window: (Time(0), 0),
            counters: LacpCounters::default(),
            was_distributing: false,
            begin: true,
            name: name.to_string(),
            last_pdu: None,
            pdu_gaps: [None; 2],
        }
    }

    pub(crate) fn start(&mut self, timer: Timer, now: Time, after: Duration) {
        self.timers[timer as usize] = Some(now + after);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.timers[timer as usize] = None;
    }

    /// Whether `timer` runs and has expired at `now`.
    pub(crate) fn expired(&self, timer: Timer, now: Time) -> bool {
        self.timers[timer as usize].is_some_and(|t| now >= t)
    }

    pub(crate) fn actor_state(&self) -> LacpState {
        self.actor.state
    }

    pub(crate) fn set_actor(&mut self, bit: u8, on: bool) {
        self.actor.state.set(bit, on);
    }

    pub(crate) fn partner_has(&self, bit: u8) -> bool {
        self.partner.state.has(bit)
    }
}

/// A port for the machines' unit tests: actor active with a short timeout, aggregatable;
/// partner defaults all zero but aggregatable.
#[cfg(test)]
pub(crate) fn test_port() -> PortVars {
    let actor = PortInfo {
        system_priority: 0x8000,
        system: [2, 0, 0, 0, 0, 1],
        key: 1,
        port_priority: 0x8000,
        port: 1,
        state: LacpState(LacpState::ACTIVITY | LacpState::TIMEOUT | LacpState::AGGREGATION),
    };
    let partner_admin = PortInfo {
        port: 1,
        state: LacpState(LacpState::AGGREGATION),
        ..PortInfo::default()
    };
    let cfg = PortConfig {
        number: 1,
        priority: 0x8000,
        mac: [2, 0, 0, 0, 1, 0],
    };
    PortVars::new("t0", cfg, actor, partner_admin)
}

/// An LACPDU from a partner (system 02:..:02, key 9) that sees `actor` as its partner.
#[cfg(test)]
pub(crate) fn partner_pdu(actor: &PortInfo, state: u8) -> Lacpdu {
    Lacpdu {
        version: 1,
        actor: PortInfo {
            system_priority: 0x8000,
            system: [2, 0, 0, 0, 0, 2],
            key: 9,
            port_priority: 0x8000,
            port: 7,
            state: LacpState(state),
        },
        partner: *actor,
        collector_max_delay: 0,
    }
}
