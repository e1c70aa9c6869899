//! Mux machine, 802.1AX-2008 5.4.15: coupled control (Figure 5-15, collecting and
//! distributing switched together) by default, independent control (Figure 5-14, collect
//! first, distribute once the partner collects) as an option.

use std::fmt;

use super::pdu::PortState;
use super::port::{PortVars, Selected, Timer};
use super::{MuxMode, Time, AGGREGATE_WAIT};

/// Mux machine states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// DETACHED.
    Detached,
    /// WAITING.
    Waiting,
    /// ATTACHED.
    Attached,
    /// COLLECTING (independent control only).
    Collecting,
    /// DISTRIBUTING (independent control only).
    Distributing,
    /// COLLECTING_DISTRIBUTING (coupled control).
    CollectingDistributing,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Detached => "DETACHED",
            State::Waiting => "WAITING",
            State::Attached => "ATTACHED",
            State::Collecting => "COLLECTING",
            State::Distributing => "DISTRIBUTING",
            State::CollectingDistributing => "COLLECTING_DISTRIBUTING",
        })
    }
}

fn set_state(port: &mut PortVars, to: State) {
    if port.mux != to {
        tracing::debug!(port = %port.name, "mux {} -> {}", port.mux, to);
    }
    port.mux = to;
}

fn detached(port: &mut PortVars) {
    set_state(port, State::Detached);
    port.set_actor(PortState::SYNCHRONIZATION, false);
    port.set_actor(PortState::COLLECTING, false);
    port.set_actor(PortState::DISTRIBUTING, false);
    port.ntt = true;
}

fn attached(port: &mut PortVars) {
    set_state(port, State::Attached);
    port.set_actor(PortState::SYNCHRONIZATION, true);
    port.set_actor(PortState::COLLECTING, false);
    port.set_actor(PortState::DISTRIBUTING, false);
    port.ntt = true;
}

fn collecting_distributing(port: &mut PortVars) {
    set_state(port, State::CollectingDistributing);
    port.set_actor(PortState::COLLECTING, true);
    port.set_actor(PortState::DISTRIBUTING, true);
    port.ntt = true;
}

fn collecting(port: &mut PortVars) {
    set_state(port, State::Collecting);
    port.set_actor(PortState::COLLECTING, true);
    port.set_actor(PortState::DISTRIBUTING, false);
    port.ntt = true;
}

fn distributing(port: &mut PortVars) {
    set_state(port, State::Distributing);
    port.set_actor(PortState::DISTRIBUTING, true);
    port.ntt = true;
}

/// Runs the machine once with the aggregator's `ready` (every port waiting to attach to the
/// same aggregator has waited out aggregate_wait); returns whether anything changed.
pub(crate) fn run(port: &mut PortVars, now: Time, ready: bool, mode: MuxMode) -> bool {
    let before = (port.mux, port.actor.state, port.ready_n);
    if port.begin {
        detached(port);
        return true;
    }
    let selected = port.selected == Selected::Selected;
    let partner_sync = port.partner_has(PortState::SYNCHRONIZATION);
    match port.mux {
        State::Detached => {
            if port.selected != Selected::Unselected {
                set_state(port, State::Waiting);
                port.ready_n = false;
                port.start(Timer::WaitWhile, now, AGGREGATE_WAIT);
            }
        }
        State::Waiting => {
            if port.expired(Timer::WaitWhile, now) {
                port.stop(Timer::WaitWhile);
                port.ready_n = true;
            }
            if port.selected == Selected::Unselected {
                port.stop(Timer::WaitWhile);
                port.ready_n = false;
                detached(port);
            } else if selected && ready && port.ready_n {
                attached(port);
            }
        }
        State::Attached => {
            if !selected {
                detached(port);
            } else if partner_sync {
                match mode {
                    MuxMode::Coupled => collecting_distributing(port),
                    MuxMode::Independent => collecting(port),
                }
            }
        }
        State::CollectingDistributing => {
            if !selected || !partner_sync {
                attached(port);
            }
        }
        State::Collecting => {
            if !selected || !partner_sync {
                attached(port);
            } else if port.partner_has(PortState::COLLECTING) {
                distributing(port);
            }
        }
        State::Distributing => {
            if !selected || !partner_sync || !port.partner_has(PortState::COLLECTING) {
                port.set_actor(PortState::DISTRIBUTING, false);
                collecting(port);
            }
        }
    }
    before != (port.mux, port.actor.state, port.ready_n)
}
