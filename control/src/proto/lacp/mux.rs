//! Mux machine, 802.1AX-2008 5.4.15: coupled control (Figure 5-15, collecting and
//! distributing switched together) by default, independent control (Figure 5-14, collect
//! first, distribute once the partner collects) as an option.

use std::fmt;

use super::pdu::LacpState;
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
    port.set_actor(LacpState::SYNCHRONIZATION, false);
    port.set_actor(LacpState::COLLECTING, false);
    port.set_actor(LacpState::DISTRIBUTING, false);
    port.ntt = true;
}

fn attached(port: &mut PortVars) {
    set_state(port, State::Attached);
    port.set_actor(LacpState::SYNCHRONIZATION, true);
    port.set_actor(LacpState::COLLECTING, false);
    port.set_actor(LacpState::DISTRIBUTING, false);
    port.ntt = true;
}

fn collecting_distributing(port: &mut PortVars) {
    set_state(port, State::CollectingDistributing);
    port.set_actor(LacpState::COLLECTING, true);
    port.set_actor(LacpState::DISTRIBUTING, true);
    port.ntt = true;
}

fn collecting(port: &mut PortVars) {
    set_state(port, State::Collecting);
    port.set_actor(LacpState::COLLECTING, true);
    port.set_actor(LacpState::DISTRIBUTING, false);
    port.ntt = true;
}

fn distributing(port: &mut PortVars) {
    set_state(port, State::Distributing);
    port.set_actor(LacpState::DISTRIBUTING, true);
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
    let partner_sync = port.partner_has(LacpState::SYNCHRONIZATION);
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
            } else if port.partner_has(LacpState::COLLECTING) {
                distributing(port);
            }
        }
        State::Distributing => {
            if !selected || !partner_sync || !port.partner_has(LacpState::COLLECTING) {
                port.set_actor(LacpState::DISTRIBUTING, false);
                collecting(port);
            }
        }
    }
    before != (port.mux, port.actor.state, port.ready_n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::lacp::port::test_port;
    use std::time::Duration;

    const T0: Time = Time(1_000_000_000);

    fn detached() -> PortVars {
        let mut p = test_port();
        p.enabled = true;
        run(&mut p, T0, false, MuxMode::Coupled);
        p.begin = false;
        assert_eq!(p.mux, State::Detached);
        p
    }

    fn attached(mode: MuxMode) -> PortVars {
        let mut p = detached();
        p.selected = Selected::Selected;
        run(&mut p, T0, false, mode);
        run(&mut p, T0 + AGGREGATE_WAIT, true, mode);
        run(&mut p, T0 + AGGREGATE_WAIT, true, mode);
        assert_eq!(p.mux, State::Attached);
        p
    }

    mod detached {
        use super::*;

        #[test]
        fn selection_starts_the_aggregate_wait() {
            let mut p = detached();
            assert!(!p.actor.state.has(LacpState::SYNCHRONIZATION));
            p.selected = Selected::Standby;
            run(&mut p, T0, false, MuxMode::Coupled);
            assert_eq!(p.mux, State::Waiting);
            assert_eq!(
                p.timers[Timer::WaitWhile as usize],
                Some(T0 + AGGREGATE_WAIT)
            );
        }
    }

    mod waiting {
        use super::*;

        #[test]
        fn attaches_only_when_selected_ready_and_waited() {
            let mut p = detached();
            p.selected = Selected::Selected;
            run(&mut p, T0, true, MuxMode::Coupled);
            run(
                &mut p,
                T0 + Duration::from_millis(1999),
                true,
                MuxMode::Coupled,
            );
            assert_eq!(p.mux, State::Waiting, "aggregate_wait not over");
            run(&mut p, T0 + AGGREGATE_WAIT, false, MuxMode::Coupled);
            run(&mut p, T0 + AGGREGATE_WAIT, false, MuxMode::Coupled);
            assert_eq!(
                p.mux,
                State::Waiting,
                "other ports of the aggregator not ready"
            );
            run(&mut p, T0 + AGGREGATE_WAIT, true, MuxMode::Coupled);
            assert_eq!(p.mux, State::Attached);
            assert!(p.actor.state.has(LacpState::SYNCHRONIZATION));
        }

        #[test]
        fn standby_never_attaches_and_unselected_detaches() {
            let mut p = detached();
            p.selected = Selected::Standby;
            run(&mut p, T0, true, MuxMode::Coupled);
            run(&mut p, T0 + AGGREGATE_WAIT * 2, true, MuxMode::Coupled);
            assert_eq!(p.mux, State::Waiting);
            p.selected = Selected::Unselected;
            run(&mut p, T0 + AGGREGATE_WAIT * 2, true, MuxMode::Coupled);
            assert_eq!(p.mux, State::Detached);
        }
    }

    mod attached {
        use super::*;

        #[test]
        fn partner_sync_starts_collecting_and_distributing_together_when_coupled() {
            let mut p = attached(MuxMode::Coupled);
            assert!(!p.actor.state.has(LacpState::COLLECTING));
            p.partner.state.set(LacpState::SYNCHRONIZATION, true);
            run(&mut p, T0 + AGGREGATE_WAIT, true, MuxMode::Coupled);
            assert_eq!(p.mux, State::CollectingDistributing);
            assert!(
                p.actor.state.has(LacpState::COLLECTING)
                    && p.actor.state.has(LacpState::DISTRIBUTING)
            );
        }

        #[test]
        fn unselected_detaches() {
            let mut p = attached(MuxMode::Coupled);
            p.selected = Selected::Unselected;
            run(&mut p, T0 + AGGREGATE_WAIT, true, MuxMode::Coupled);
            assert_eq!(p.mux, State::Detached);
        }
    }

    mod collecting_distributing {
        use super::*;

        #[test]
        fn losing_partner_sync_goes_back_to_attached() {
            let mut p = attached(MuxMode::Coupled);
            p.partner.state.set(LacpState::SYNCHRONIZATION, true);
            run(&mut p, T0 + AGGREGATE_WAIT, true, MuxMode::Coupled);
            p.partner.state.set(LacpState::SYNCHRONIZATION, false);
            run(&mut p, T0 + AGGREGATE_WAIT, true, MuxMode::Coupled);
            assert_eq!(p.mux, State::Attached);
            assert!(!p.actor.state.has(LacpState::DISTRIBUTING));
        }
    }

    mod independent {
        use super::*;

        #[test]
        fn collects_first_and_distributes_once_the_partner_collects() {
            let mut p = attached(MuxMode::Independent);
            p.partner.state.set(LacpState::SYNCHRONIZATION, true);
            run(&mut p, T0 + AGGREGATE_WAIT, true, MuxMode::Independent);
            assert_eq!(p.mux, State::Collecting);
            assert!(
                p.actor.state.has(LacpState::COLLECTING)
                    && !p.actor.state.has(LacpState::DISTRIBUTING)
            );
            p.partner.state.set(LacpState::COLLECTING, true);
            run(&mut p, T0 + AGGREGATE_WAIT, true, MuxMode::Independent);
            assert_eq!(p.mux, State::Distributing);
            p.partner.state.set(LacpState::COLLECTING, false);
            run(&mut p, T0 + AGGREGATE_WAIT, true, MuxMode::Independent);
            assert_eq!(
                p.mux,
                State::Collecting,
                "stops distributing when the partner stops collecting"
            );
        }
    }
}
