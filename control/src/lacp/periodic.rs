//! Periodic Transmission machine, 802.1AX-2008 5.4.13 (Figure 5-11).
//!
//! The rate follows the *partner's* Timeout bit: every second when it asks for a short
//! timeout, every 30 s otherwise. Nothing is sent periodically when both ends are passive.

use std::fmt;

use super::pdu::PortState;
use super::port::{PortVars, Timer};
use super::{Time, FAST_PERIODIC, SLOW_PERIODIC};

/// Periodic machine states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// NO_PERIODIC.
    NoPeriodic,
    /// FAST_PERIODIC.
    Fast,
    /// SLOW_PERIODIC.
    Slow,
    /// PERIODIC_TX (transient).
    PeriodicTx,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::NoPeriodic => "NO_PERIODIC",
            State::Fast => "FAST_PERIODIC",
            State::Slow => "SLOW_PERIODIC",
            State::PeriodicTx => "PERIODIC_TX",
        })
    }
}

fn set_state(port: &mut PortVars, to: State) {
    if port.periodic != to && to != State::PeriodicTx && port.periodic != State::PeriodicTx {
        tracing::trace!(port = %port.name, "periodic {} -> {}", port.periodic, to);
    }
    port.periodic = to;
}

fn partner_short(port: &PortVars) -> bool {
    port.partner_has(PortState::TIMEOUT)
}

/// Runs the machine once; returns whether anything changed.
pub(crate) fn run(port: &mut PortVars, now: Time) -> bool {
    let before = port.periodic;
    let both_passive =
        !port.actor_state().has(PortState::ACTIVITY) && !port.partner_has(PortState::ACTIVITY);
    if port.begin || !port.enabled || both_passive {
        if port.periodic != State::NoPeriodic {
            set_state(port, State::NoPeriodic);
            port.stop(Timer::Periodic);
        }
        return before != port.periodic;
    }
    match port.periodic {
        State::NoPeriodic => enter_fast(port, now),
        State::Fast => {
            if port.expired(Timer::Periodic, now) {
                periodic_tx(port, now);
            } else if !partner_short(port) {
                enter_slow(port, now);
            }
        }
        State::Slow => {
            if port.expired(Timer::Periodic, now) || partner_short(port) {
                periodic_tx(port, now);
            }
        }
        State::PeriodicTx => periodic_tx(port, now),
    }
    before != port.periodic
}

fn enter_fast(port: &mut PortVars, now: Time) {
    set_state(port, State::Fast);
    port.start(Timer::Periodic, now, FAST_PERIODIC);
}

fn enter_slow(port: &mut PortVars, now: Time) {
    set_state(port, State::Slow);
    port.start(Timer::Periodic, now, SLOW_PERIODIC);
}

fn periodic_tx(port: &mut PortVars, now: Time) {
    set_state(port, State::PeriodicTx);
    port.ntt = true;
    if partner_short(port) {
        enter_fast(port, now);
    } else {
        enter_slow(port, now);
    }
}
